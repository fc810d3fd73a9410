package dashboard_test

import (
	"crypto/sha256"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/assistiv/gateway/dashboard"
	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/mockllm"
	"github.com/assistiv/gateway/mockllm/mocktest"
)

// env is a real gateway node (Pebble, actors, edge on 127.0.0.1) with the
// dashboard mounted, and the mock upstream beside it.
type env struct {
	g       *edgetest.Gateway
	d       *dashboard.Dashboard
	mockURL string
}

func start(t *testing.T, adjust func(*dashboard.Config)) *env {
	t.Helper()
	return startWith(t, adjust, edgetest.Options{Webhooks: true})
}

// startWith is start with the gateway's options (Stripe, say).
func startWith(t *testing.T, adjust func(*dashboard.Config), opts edgetest.Options) *env {
	t.Helper()
	e := &env{}
	mcfg := mockllm.DefaultConfig()
	mcfg.TokensPerSecond = 50 // a streamed answer arrives over about 400 ms
	e.mockURL, _ = mocktest.Start(t, mcfg)
	opts.BeforeServe = func(g *edgetest.Gateway) {
		cfg := dashboard.DefaultConfig()
		cfg.AdminKeyDigest = sha256.Sum256([]byte(edgetest.AdminKey))
		cfg.BcryptCost = bcrypt.MinCost
		if adjust != nil {
			adjust(&cfg)
		}
		d, err := dashboard.New(cfg, dashboard.Deps{Edge: g.Server, Store: g.Store})
		if err != nil {
			t.Fatalf("dashboard.New: %v", err)
		}
		g.Server.Mount(dashboard.Prefix, d.Handler())
		e.d = d
	}
	e.g = edgetest.Start(t, opts)
	return e
}

// browser is an HTTP client with a cookie jar that reads the CSRF token of
// the last page it loaded, as a browser would submit it.
type browser struct {
	t      *testing.T
	base   string
	c      *http.Client
	csrf   string
	last   string
	status int
	header http.Header
}

func (e *env) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: e.g.URL, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(req *http.Request) string {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	b.status, b.header, b.last = res.StatusCode, res.Header, string(body)
	if m := csrfRe.FindStringSubmatch(b.last); m != nil {
		b.csrf = html.UnescapeString(m[1])
	}
	return b.last
}

// get loads a page, following redirects within the dashboard.
func (b *browser) get(path string) string {
	b.t.Helper()
	for i := 0; i < 5; i++ {
		req, _ := http.NewRequest("GET", b.base+path, nil)
		b.do(req)
		if b.status != 303 && b.status != 302 {
			return b.last
		}
		path = b.header.Get("Location")
	}
	b.t.Fatalf("redirect loop at %s", path)
	return ""
}

// post submits a form with the current CSRF token (unless the form sets
// csrf itself) and follows a 303.
func (b *browser) post(path string, form url.Values) string {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	b.do(req)
	if b.status == 303 {
		return b.get(b.header.Get("Location"))
	}
	return b.last
}

func (b *browser) want(status int, contains ...string) {
	b.t.Helper()
	if b.status != status {
		b.t.Fatalf("status %d, want %d; body:\n%s", b.status, status, clip(b.last))
	}
	for _, c := range contains {
		if !strings.Contains(b.last, c) {
			b.t.Fatalf("page lacks %q; body:\n%s", c, clip(b.last))
		}
	}
}

func clip(s string) string {
	if len(s) > 3000 {
		return s[:3000] + "…"
	}
	return s
}

var (
	platKeyRe = regexp.MustCompile(`id="plat-key" class="secret" readonly value="([^"]+)"`)
	linkRe    = regexp.MustCompile(`id="(?:owner|invite)-link" class="secret" readonly value="([^"]+)"`)
	eidRe     = regexp.MustCompile(`href="end-users/(eu_[0-9a-z]+)">Open`)
)

func find(t *testing.T, re *regexp.Regexp, s string) string {
	t.Helper()
	m := re.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no %s in:\n%s", re, clip(s))
	}
	return html.UnescapeString(m[1])
}

// signInOperator signs b in with the admin key.
func (b *browser) signInOperator() {
	b.t.Helper()
	b.get("/dashboard/login?as=operator")
	b.post("/dashboard/login", url.Values{"mode": {"operator"}, "admin_key": {edgetest.AdminKey}})
	b.want(200, "Platforms")
}

// createPlatform creates a platform with an owner invite as the operator
// and returns the platform id, its key and the invite path.
func (b *browser) createPlatform(name, owner string) (pid, key, invitePath string) {
	b.t.Helper()
	b.get("/dashboard/operator/platforms")
	page := b.post("/dashboard/operator/platforms", url.Values{"name": {name}, "owner_email": {owner}})
	b.want(200, "shown <strong>once</strong>")
	key = find(b.t, platKeyRe, page)
	link := find(b.t, linkRe, page)
	u, err := url.Parse(link)
	if err != nil {
		b.t.Fatal(err)
	}
	m := regexp.MustCompile(`href="/dashboard/p/(plat_[0-9a-z]+)/overview">` + regexp.QuoteMeta(html.EscapeString(name)) + `<`).FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("platform %s not listed:\n%s", name, clip(page))
	}
	return m[1], key, u.Path
}

// accept accepts an invite in a fresh browser and returns it signed in.
func (e *env) accept(t *testing.T, invitePath, name, password string) *browser {
	t.Helper()
	b := e.browser(t)
	b.get(invitePath)
	b.want(200, "You are invited")
	b.post(invitePath, url.Values{"name": {name}, "password": {password}, "password2": {password}})
	b.want(200, "Overview")
	return b
}

// signIn signs a member in with email and password.
func (e *env) signIn(t *testing.T, email, password string) *browser {
	t.Helper()
	b := e.browser(t)
	b.get("/dashboard/login")
	b.post("/dashboard/login", url.Values{"mode": {"member"}, "email": {email}, "password": {password}})
	b.want(200, "Overview")
	return b
}
