package dashboard

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"strings"

	"github.com/valyala/fasthttp"
)

const (
	sessionCookie = "assistiv_session"
	loginCookie   = "assistiv_login_csrf"
)

// req is one dashboard request: the signed-in session and, on platform
// pages, the platform in scope.
type req struct {
	d    *Dashboard
	ctx  *fasthttp.RequestCtx
	sess Session
	pid  string
	// platformName is the scoped platform's display name (for the layout).
	platformName string
	// errs are API errors by form field; formErr is the one with no field.
	errs    map[string]string
	formErr string
	status  int
}

// form returns a submitted form value (url-encoded or multipart).
func (r *req) form(name string) string {
	if v := r.ctx.PostArgs().Peek(name); v != nil {
		return string(v)
	}
	if mf, err := r.ctx.MultipartForm(); err == nil && len(mf.Value[name]) > 0 {
		return mf.Value[name][0]
	}
	return ""
}

// query returns a query value.
func (r *req) query(name string) string { return string(r.ctx.QueryArgs().Peek(name)) }

// param returns a route parameter.
func (r *req) param(name string) string {
	v, _ := r.ctx.UserValue(name).(string)
	return v
}

// canWrite reports whether the session may change things.
func (r *req) canWrite() bool {
	return r.sess.Operator || r.sess.Role == RoleOwner || r.sess.Role == RoleAdmin
}

// isOwner reports whether the session manages the team.
func (r *req) isOwner() bool { return r.sess.Operator || r.sess.Role == RoleOwner }

// fail records an API error next to the field it concerns: the first of
// fields the message names, else the form as a whole.
func (r *req) fail(err error, fields ...string) {
	var ae *apiError
	msg := err.Error()
	status := 500
	if errors.As(err, &ae) {
		msg, status = ae.Message, ae.Status
	}
	if r.errs == nil {
		r.errs = map[string]string{}
	}
	r.status = status
	for _, f := range fields {
		if strings.Contains(msg, f) {
			r.errs[f] = msg
			return
		}
	}
	// The API's decoder refuses a malformed amount without naming it: the
	// field is the first amount the form sent that is not a number.
	if ae != nil && ae.Code == "invalid_amount" {
		for _, f := range fields {
			if v := strings.TrimSpace(r.form(f)); strings.HasSuffix(f, "_usd") && v != "" && !numberLiteral.MatchString(v) {
				r.errs[f] = msg
				return
			}
		}
	}
	r.formErr = msg
}

func newToken() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (d *Dashboard) secure(ctx *fasthttp.RequestCtx) bool { return d.cfg.SecureCookies || ctx.IsTLS() }

func (d *Dashboard) setCookie(ctx *fasthttp.RequestCtx, name, value string, maxAge int) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(name)
	c.SetValue(value)
	c.SetPath(Prefix)
	c.SetHTTPOnly(true)
	c.SetSecure(d.secure(ctx))
	c.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	if maxAge != 0 {
		c.SetMaxAge(maxAge)
	}
	ctx.Response.Header.SetCookie(c)
}

// sameOrigin refuses a cross-site POST by its Sec-Fetch-Site and Origin
// headers, in addition to the CSRF token. Browsers set both and scripts
// cannot forge them; a client without either (curl) is left to the token.
func sameOrigin(ctx *fasthttp.RequestCtx) bool {
	site := string(ctx.Request.Header.Peek("Sec-Fetch-Site"))
	if site != "" && site != "same-origin" && site != "none" {
		return false
	}
	o := string(ctx.Request.Header.Peek("Origin"))
	switch o {
	case "":
		return true
	case "null": // sent for some same-origin navigations; trusted only with Sec-Fetch-Site
		return site == "same-origin"
	}
	host := string(ctx.Host())
	return o == "http://"+host || o == "https://"+host
}

// authed wraps a page: it loads the session (else sends the browser to the
// sign-in page), checks the CSRF token and origin of every POST, and for
// platform pages the platform in scope: a member reaches only their own
// platform; any other id answers 404, as the API does.
func (d *Dashboard) authed(h func(*req) error, platformPage bool) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Cache-Control", "no-store")
		sess, err := d.accounts.Session(string(ctx.Request.Header.Cookie(sessionCookie)))
		if err == nil && sess.Operator && sess.KeyTag != d.keyTag() {
			err = ErrNoSession
		}
		if err != nil {
			if ctx.IsPost() {
				d.plainError(ctx, 401, "Your session ended. Sign in again.")
				return
			}
			redirect(ctx, Prefix+"/login")
			return
		}
		r := &req{d: d, ctx: ctx, sess: sess}
		if ctx.IsPost() {
			tok := string(ctx.PostArgs().Peek("csrf"))
			if mf, err := ctx.MultipartForm(); tok == "" && err == nil && len(mf.Value["csrf"]) == 1 {
				tok = mf.Value["csrf"][0]
			}
			if tok == "" {
				tok = string(ctx.Request.Header.Peek("X-CSRF-Token"))
			}
			if !sess.CheckCSRF(tok) || !sameOrigin(ctx) {
				d.plainError(ctx, 403, "The form's security token is missing or wrong. Reload the page and try again.")
				return
			}
		}
		if platformPage {
			r.pid = r.param("pid")
			if !sess.Operator && r.pid != sess.Platform {
				d.notFound(r)
				return
			}
			var p platformJSON
			if err := d.get(platformCaller(r.pid), "/v1/platforms/"+pathSeg(r.pid), nil, &p); err != nil {
				d.notFound(r)
				return
			}
			r.platformName = p.displayName()
			if ctx.IsPost() && !r.canWrite() {
				d.renderError(r, 403, "Viewers cannot change anything. Ask an owner for the admin role.")
				return
			}
		} else if !sess.Operator && strings.HasPrefix(string(ctx.Path()), Prefix+"/operator") {
			d.notFound(r)
			return
		}
		if err := h(r); err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.Status == 404 {
				d.notFound(r)
				return
			}
			if errors.As(err, &ae) {
				d.renderError(r, ae.Status, ae.Message)
				return
			}
			d.log.Error("dashboard page failed", "path", string(ctx.Path()), "err", err)
			d.renderError(r, 500, "Something went wrong on our side; it has been logged.")
		}
	}
}

// view is what every template receives.
type view struct {
	Title        string
	Nav          string
	Sess         Session
	PID          string
	PlatformName string
	CanWrite     bool
	IsOwner      bool
	Errs         map[string]string
	FormErr      string
	Flash        string
	Data         any
}

func (r *req) view(title, nav string, data any) view {
	return view{Title: title, Nav: nav, Sess: r.sess, PID: r.pid, PlatformName: r.platformName,
		CanWrite: r.canWrite(), IsOwner: r.isOwner(), Errs: r.errs, FormErr: r.formErr, Flash: flashText(r.query("ok")), Data: data}
}

// render writes a page; a failed form keeps the API's status.
func (r *req) render(page, title, nav string, data any) error {
	status := 200
	if r.status != 0 {
		status = r.status
	}
	return r.d.write(r.ctx, status, page, r.view(title, nav, data))
}

func (d *Dashboard) write(ctx *fasthttp.RequestCtx, status int, page string, v any) error {
	t, ok := d.pages[page]
	if !ok {
		return fmt.Errorf("dashboard: no template %q", page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		return err
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.SetBody(buf.Bytes())
	return nil
}

func (d *Dashboard) notFound(r *req) {
	d.renderError(r, 404, "There is no such page or object here.")
}

func (d *Dashboard) renderError(r *req, status int, msg string) {
	if err := d.write(r.ctx, status, "error", r.view(fmt.Sprintf("Error %d", status), "", msg)); err != nil {
		d.plainError(r.ctx, status, msg)
	}
}

func (d *Dashboard) plainError(ctx *fasthttp.RequestCtx, status int, msg string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(msg)
}

// flashes are the messages a redirect after a successful form shows.
var flashes = map[string]string{
	"saved": "Saved.", "created": "Created.", "topped_up": "Topped up.", "debited": "Debited.",
	"suspended": "Suspended.", "unsuspended": "Unsuspended.", "revoked": "Revoked.", "removed": "Removed.",
	"replayed": "Already done: this form was submitted before, nothing changed twice.", "deleted": "Deleted.",
	"signed_out": "You are signed out.", "rotated": "Secret rotated.", "sent": "Sent.", "signed_out_member": "Their sessions ended: they must sign in again.",
	"card_paid":      "Thank you. The wallet is credited as soon as Stripe confirms the payment.",
	"card_cancelled": "Card top-up cancelled: nothing was charged.",
}

func flashText(code string) string { return flashes[code] }

// parsePages parses the layout with each page template.
func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("").Funcs(funcs).ParseFS(assets, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	names, err := fsGlob("templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(assets, n)
		if err != nil {
			return nil, err
		}
		out[name] = t
	}
	return out, nil
}
