package dashboard_test

import (
	"crypto/sha256"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/assistiv/gateway/dashboard"
)

const pw = "correct horse battery"

func TestOperatorCreatesPlatformOwnerSignsIn(t *testing.T) {
	e := start(t, nil)
	op := e.browser(t)
	op.get("/dashboard/")
	op.want(200, "Sign in", "Operator? Sign in with the admin key")
	if res, err := http.Head(op.base + "/dashboard/login"); err != nil || res.StatusCode != 200 {
		t.Fatalf("HEAD /dashboard/login: %v %v", res, err)
	}
	op.get("/dashboard/login?as=operator")
	op.post("/dashboard/login", url.Values{"mode": {"operator"}, "admin_key": {"not-the-key-0123456789"}})
	op.want(401, "That is not the admin key.")
	op.signInOperator()
	pid, key, inv := op.createPlatform("Acme", "Owner@Example.com")
	if !strings.HasPrefix(key, "sk-plat_") {
		t.Fatalf("platform key %q", key)
	}
	// The key works on the API: the page's answer was the API's.
	if r := e.g.Do(t, "GET", "/v1/me", key, nil); r.Status != 200 || !strings.Contains(string(r.Body), pid) {
		t.Fatalf("/v1/me with the shown key: %d %s", r.Status, r.Body)
	}
	owner := e.accept(t, inv, "Olga Owner", pw)
	owner.want(200, "Acme", "owner@example.com · owner")
	// The invite is single-use.
	again := e.browser(t)
	again.get(inv)
	again.want(404, "invalid, already used or expired")
	// Sign out, then sign in with the password.
	owner.post("/dashboard/logout", nil)
	owner.want(200, "You are signed out.")
	owner.get("/dashboard/p/" + pid + "/overview")
	owner.want(200, "Sign in") // redirected to the sign-in page
	e.signIn(t, "owner@example.com", pw)
}

func TestCSRFTokenMissingOrWrongIsRefused(t *testing.T) {
	e := start(t, nil)
	op := e.browser(t)
	op.signInOperator()
	for name, form := range map[string]url.Values{
		"missing": {"name": {"X"}, "csrf": {""}},
		"wrong":   {"name": {"X"}, "csrf": {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
	} {
		op.post("/dashboard/operator/platforms", form)
		if op.status != 403 {
			t.Fatalf("%s token: status %d, want 403", name, op.status)
		}
	}
	// A cross-site POST with the right token is refused by its Origin too.
	op.get("/dashboard/operator/platforms")
	req, _ := http.NewRequest("POST", op.base+"/dashboard/operator/platforms", strings.NewReader(url.Values{"name": {"X"}, "csrf": {op.csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	op.do(req)
	if op.status != 403 {
		t.Fatalf("cross-origin POST: %d, want 403", op.status)
	}
	// Nothing was created.
	if r := e.g.Do(t, "GET", "/admin/v1/platforms", "test-admin-key-0123456789", nil); strings.Contains(string(r.Body), `"name":"X"`) {
		t.Fatalf("a refused form created a platform: %s", r.Body)
	}
	// The sign-in form has its own (double-submit) token.
	anon := e.browser(t)
	anon.post("/dashboard/login", url.Values{"mode": {"operator"}, "admin_key": {"test-admin-key-0123456789"}, "csrf": {"forged"}})
	if anon.status != 403 {
		t.Fatalf("login without the cookie token: %d", anon.status)
	}
}

func TestSessionCookieFlags(t *testing.T) {
	for _, secure := range []bool{false, true} {
		e := start(t, func(c *dashboard.Config) { c.SecureCookies = secure })
		b := e.browser(t)
		b.get("/dashboard/login?as=operator")
		form := url.Values{"mode": {"operator"}, "admin_key": {"test-admin-key-0123456789"}, "csrf": {b.csrf}}
		req, _ := http.NewRequest("POST", b.base+"/dashboard/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if secure {
			// The jar does not send Secure cookies over http: pass it by hand.
			for _, c := range b.c.Jar.Cookies(req.URL) {
				req.AddCookie(c)
			}
		}
		b.do(req)
		if b.status != 303 {
			t.Fatalf("login: %d %s", b.status, b.last)
		}
		var sc string
		for _, h := range b.header.Values("Set-Cookie") {
			if strings.HasPrefix(h, "assistiv_session=") {
				sc = h
			}
		}
		for _, want := range []string{"HttpOnly", "SameSite=Strict", "path=/dashboard"} {
			if !strings.Contains(sc, want) {
				t.Fatalf("session cookie %q lacks %s", sc, want)
			}
		}
		if strings.Contains(sc, "secure") != secure {
			t.Fatalf("session cookie %q: Secure should be %v", sc, secure)
		}
	}
}

func TestLoginRateLimitPerAccountAndAddress(t *testing.T) {
	e := start(t, func(c *dashboard.Config) { c.MaxFailsAccount, c.MaxFailsAddress = 3, 5 })
	op := e.browser(t)
	op.signInOperator()
	_, _, inv := op.createPlatform("Rate", "rl@example.com")
	e.accept(t, inv, "R", pw)

	b := e.browser(t)
	b.get("/dashboard/login")
	for i := 0; i < 3; i++ {
		b.post("/dashboard/login", url.Values{"mode": {"member"}, "email": {"rl@example.com"}, "password": {"wrong password!"}})
		b.want(401, "Wrong email or password.")
	}
	// The account is locked: even the right password is refused, unchecked.
	b.post("/dashboard/login", url.Values{"mode": {"member"}, "email": {"rl@example.com"}, "password": {pw}})
	b.want(429, "Too many failed sign-ins")
	if b.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	// Two more failures on other accounts reach the address limit (5).
	for _, em := range []string{"a@example.com", "b@example.com"} {
		b.post("/dashboard/login", url.Values{"mode": {"member"}, "email": {em}, "password": {"x"}})
		b.want(401)
	}
	b.post("/dashboard/login", url.Values{"mode": {"operator"}, "admin_key": {"test-admin-key-0123456789"}})
	b.want(429, "Too many failed sign-ins")
}

func TestRemovedTeammateSessionDiesAndViewerCannotChange(t *testing.T) {
	e := start(t, nil)
	op := e.browser(t)
	op.signInOperator()
	pid, _, inv := op.createPlatform("Team", "boss@example.com")
	owner := e.accept(t, inv, "Boss", pw)
	owner.get("/dashboard/p/" + pid + "/team")
	page := owner.post("/dashboard/p/"+pid+"/team/invite", url.Values{"email": {"view@example.com"}, "role": {"viewer"}})
	owner.want(200, "Invite link")
	viewer := e.accept(t, pathOf(t, find(t, linkRe, page)), "Vic", pw)
	viewer.want(200, "view@example.com · viewer")

	// A viewer sees pages without forms and cannot POST anything.
	viewer.get("/dashboard/p/" + pid + "/end-users")
	viewer.want(200, "End-users")
	if strings.Contains(viewer.last, "Create an end-user") {
		t.Fatal("viewer is offered the create form")
	}
	viewer.post("/dashboard/p/"+pid+"/end-users", url.Values{"external_id": {"sneaky"}})
	viewer.want(403, "Viewers cannot change anything")
	viewer.post("/dashboard/p/"+pid+"/team/invite", url.Values{"email": {"x@example.com"}, "role": {"owner"}})
	viewer.want(403)
	owner.get("/dashboard/p/" + pid + "/end-users")
	if strings.Contains(owner.last, "sneaky") {
		t.Fatal("a viewer's POST created an end-user")
	}
	// Secrets stay hidden from viewers: the webhook signing secret is not
	// revealed to them.
	owner.get("/dashboard/p/" + pid + "/webhooks")
	owner.post("/dashboard/p/"+pid+"/webhooks", url.Values{"url": {"https://hooks.example/v"}, "event_types": {"budget.topped_up"}})
	owner.want(200, "Created.")
	wid := find(t, regexp.MustCompile(`/webhooks/(\w+)/update`), owner.last)
	owner.get("/dashboard/p/" + pid + "/webhooks/" + wid + "?reveal=1")
	owner.want(200, "whsec_")
	viewer.get("/dashboard/p/" + pid + "/webhooks/" + wid + "?reveal=1")
	viewer.want(200, "hooks.example/v")
	if strings.Contains(viewer.last, "whsec_") {
		t.Fatal("a viewer sees the webhook signing secret")
	}

	// Removed: the very next request is refused.
	owner.get("/dashboard/p/" + pid + "/team")
	owner.post("/dashboard/p/"+pid+"/team/remove", url.Values{"email": {"view@example.com"}})
	owner.want(200, "Removed.")
	viewer.get("/dashboard/p/" + pid + "/overview")
	viewer.want(200, "Sign in")
	viewer.post("/dashboard/p/"+pid+"/end-users", url.Values{"external_id": {"late"}})
	viewer.want(401)
	// The last owner cannot be removed.
	owner.post("/dashboard/p/"+pid+"/team/remove", url.Values{"email": {"boss@example.com"}})
	owner.want(409, "at least one owner")
}

func TestSecondPlatformAdminGets404(t *testing.T) {
	e := start(t, nil)
	op := e.browser(t)
	op.signInOperator()
	pidA, _, invA := op.createPlatform("Alpha", "a@example.com")
	pidB, _, invB := op.createPlatform("Beta", "b@example.com")
	a := e.accept(t, invA, "A", pw)
	b := e.accept(t, invB, "B", pw)
	a.get("/dashboard/p/" + pidA + "/end-users")
	a.post("/dashboard/p/"+pidA+"/end-users", url.Values{"external_id": {"alpha-user"}})
	a.want(200, "End-user created")
	eid := find(t, eidRe, a.last)
	for _, page := range []string{"overview", "end-users", "end-users/" + eid, "logs", "api-keys", "billing", "llm-configs", "settings", "team", "playground", "webhooks"} {
		b.get("/dashboard/p/" + pidA + "/" + page)
		b.want(404)
	}
	// B's own platform with A's object id: 404 as the API answers.
	b.get("/dashboard/p/" + pidB + "/end-users/" + eid)
	b.want(404)
	b.post("/dashboard/p/"+pidA+"/end-users", url.Values{"external_id": {"x"}})
	b.want(404)
	// The operator pages are not a member's.
	b.get("/dashboard/operator/platforms")
	b.want(404)
}

func pathOf(t *testing.T, link string) string {
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Path
}

func TestSignOutEverywhereAndAdminKeyChangeEndSessions(t *testing.T) {
	e := start(t, nil)
	op := e.browser(t)
	op.signInOperator()
	pid, _, inv := op.createPlatform("Sessions", "s@example.com")
	laptop := e.accept(t, inv, "S", pw)
	phone := e.signIn(t, "s@example.com", pw)
	phone.get("/dashboard/p/" + pid + "/team")
	phone.post("/dashboard/logout-all", nil)
	phone.want(200, "You are signed out.")
	laptop.get("/dashboard/p/" + pid + "/overview")
	laptop.want(200, "Sign in")

	// An owner ends a teammate's sessions; the teammate stays a member.
	owner := e.signIn(t, "s@example.com", pw)
	owner.get("/dashboard/p/" + pid + "/team")
	owner.post("/dashboard/p/"+pid+"/team/invite", url.Values{"email": {"t@example.com"}, "role": {"admin"}})
	mate := e.accept(t, pathOf(t, find(t, linkRe, owner.last)), "T", pw)
	owner.get("/dashboard/p/" + pid + "/team")
	owner.post("/dashboard/p/"+pid+"/team/sessions", url.Values{"email": {"t@example.com"}})
	owner.want(200, "Their sessions ended", "t@example.com")
	mate.get("/dashboard/p/" + pid + "/overview")
	mate.want(200, "Sign in")
	e.signIn(t, "t@example.com", pw)

	// The same store served with another admin key (ASSISTIV_ADMIN_KEY
	// changed and the gateway restarted) ends the old key's operator
	// sessions, while the old key's dashboard still honours them.
	other, err := dashboard.New(func() dashboard.Config {
		c := dashboard.DefaultConfig()
		c.AdminKeyDigest = sha256.Sum256([]byte("a-rotated-admin-key-0123456789"))
		return c
	}(), dashboard.Deps{Edge: e.g.Server, Store: e.g.Store})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(op.base + "/dashboard/operator/platforms")
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/dashboard/operator/platforms")
	for _, c := range op.c.Jar.Cookies(u) {
		ctx.Request.Header.SetCookie(c.Name, c.Value)
	}
	other.Handler()(&ctx)
	if ctx.Response.StatusCode() != 303 || string(ctx.Response.Header.Peek("Location")) != "/dashboard/login" {
		t.Fatalf("old operator session under a new admin key: %d %s", ctx.Response.StatusCode(), ctx.Response.Header.Peek("Location"))
	}
	op.get("/dashboard/operator/platforms")
	op.want(200, "Create a platform")
}

func TestPlatformKeyClaimsTheFirstOwnerOnce(t *testing.T) {
	e := start(t, nil)
	pid, key := e.g.CreatePlatform(t, "Claimed")
	_, otherKey := e.g.CreatePlatform(t, "Other")
	euID, euKey := e.g.CreateEndUser(t, pid, key, "someone")
	_ = euID
	b := e.browser(t)
	b.get("/dashboard/claim")
	b.want(200, "Claim your platform")
	form := func(k, email string) url.Values {
		return url.Values{"platform_key": {k}, "email": {email}, "name": {"Cleo"}, "password": {pw}, "password2": {pw}}
	}
	for _, bad := range []string{"sk-plat_not-a-real-key", euKey, "test-admin-key-0123456789"} {
		b.post("/dashboard/claim", form(bad, "cleo@example.com"))
		b.want(401, "not a valid platform key")
	}
	b.post("/dashboard/claim", form(key, "cleo@example.com"))
	b.want(200, "Claimed", "cleo@example.com · owner")
	if !strings.Contains(b.last, "/dashboard/p/"+pid+"/") {
		t.Fatalf("claimed the wrong platform:\n%s", clip(b.last))
	}
	// Once: the key cannot mint a second owner.
	c := e.browser(t)
	c.get("/dashboard/claim")
	c.post("/dashboard/claim", form(key, "mallory@example.com"))
	c.want(409, "already has a team")
	// Another platform's key claims only that platform.
	c.post("/dashboard/claim", form(otherKey, "olly@example.com"))
	c.want(200, "Other", "olly@example.com · owner")
}
