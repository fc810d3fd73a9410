package dashboard

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/valyala/fasthttp"
)

// loginView is the sign-in page's data.
type loginView struct {
	CSRF    string
	Mode    string
	Email   string
	Error   string
	Expired bool
}

// anon renders a page outside a session.
func (d *Dashboard) anon(ctx *fasthttp.RequestCtx, status int, page, title string, data any) {
	ctx.Response.Header.Set("Cache-Control", "no-store")
	if err := d.write(ctx, status, page, view{Title: title, Data: data, Flash: flashText(string(ctx.QueryArgs().Peek("ok")))}); err != nil {
		d.log.Error("dashboard render", "page", page, "err", err)
		d.plainError(ctx, 500, "internal error")
	}
}

// loginToken returns the pre-session CSRF token (double-submit cookie),
// setting a fresh one when absent.
func (d *Dashboard) loginToken(ctx *fasthttp.RequestCtx) string {
	if t := string(ctx.Request.Header.Cookie(loginCookie)); len(t) >= 20 {
		return t
	}
	t := newToken()
	d.setCookie(ctx, loginCookie, t, 3600)
	return t
}

func (d *Dashboard) loginPage(ctx *fasthttp.RequestCtx) {
	if _, err := d.accounts.Session(string(ctx.Request.Header.Cookie(sessionCookie))); err == nil {
		redirect(ctx, Prefix+"/")
		return
	}
	d.anon(ctx, 200, "login", "Sign in", loginView{CSRF: d.loginToken(ctx), Mode: string(ctx.QueryArgs().Peek("as"))})
}

// clientAddr is the address failed sign-ins are counted against.
func clientAddr(ctx *fasthttp.RequestCtx) string {
	host, _, err := net.SplitHostPort(ctx.RemoteAddr().String())
	if err != nil {
		return ctx.RemoteAddr().String()
	}
	return host
}

// login signs in an operator (admin key) or a team member (email and
// password). Failures count per account and per address; past either
// limit the form answers 429 without checking the credentials.
func (d *Dashboard) login(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("Cache-Control", "no-store")
	args := ctx.PostArgs()
	cookieTok := string(ctx.Request.Header.Cookie(loginCookie))
	formTok := string(args.Peek("csrf"))
	if cookieTok == "" || subtle.ConstantTimeCompare([]byte(cookieTok), []byte(formTok)) != 1 || !sameOrigin(ctx) {
		d.plainError(ctx, 403, "The form's security token is missing or wrong. Reload the sign-in page and try again.")
		return
	}
	mode := string(args.Peek("mode"))
	email := strings.ToLower(strings.TrimSpace(string(args.Peek("email"))))
	account := "member:" + email
	if mode == "operator" {
		account = "operator"
	}
	addr := "addr:" + clientAddr(ctx)
	lv := loginView{CSRF: cookieTok, Mode: mode, Email: email}
	for _, l := range []struct {
		lim *limiter
		key string
	}{{d.byAcct, account}, {d.byAddr, addr}} {
		if blocked, wait := l.lim.Blocked(l.key); blocked {
			secs := int(wait.Seconds()) + 1
			ctx.Response.Header.Set("Retry-After", fmt.Sprint(secs))
			lv.Error = fmt.Sprintf("Too many failed sign-ins. Try again in %d minutes.", (secs+59)/60)
			d.log.Warn("dashboard sign-in refused: too many failures", "key", l.key)
			d.anon(ctx, 429, "login", "Sign in", lv)
			return
		}
	}
	var sess Session
	var err error
	if mode == "operator" {
		if !d.isOperatorKey(strings.TrimSpace(string(args.Peek("admin_key")))) {
			err = ErrBadCredentials
		}
		sess.Operator, sess.KeyTag = true, d.keyTag()
	} else {
		var m Member
		m, err = d.accounts.Authenticate(email, string(args.Peek("password")))
		sess.Platform, sess.Email = m.Platform, m.Email
	}
	if err != nil {
		d.log.Warn("dashboard sign-in failed", "account", account, "addr", clientAddr(ctx))
		d.byAcct.Fail(account)
		d.byAddr.Fail(addr)
		lv.Error = "Wrong email or password."
		if mode == "operator" {
			lv.Error = "That is not the admin key."
		}
		d.anon(ctx, 401, "login", "Sign in", lv)
		return
	}
	d.byAcct.Reset(account)
	d.log.Info("dashboard sign-in", "account", account, "platform", sess.Platform, "addr", clientAddr(ctx))
	raw, _, err := d.accounts.NewSession(sess)
	if err != nil {
		d.log.Error("dashboard session", "err", err)
		d.plainError(ctx, 500, "internal error")
		return
	}
	d.setCookie(ctx, sessionCookie, raw, 0)
	redirect(ctx, Prefix+"/")
}

func (d *Dashboard) home(r *req) error {
	if r.sess.Operator {
		redirect(r.ctx, Prefix+"/operator/platforms")
	} else {
		redirect(r.ctx, pp(r.sess.Platform, "overview"))
	}
	return nil
}

func (d *Dashboard) logout(r *req) error {
	if err := d.accounts.EndSession(r.sess); err != nil {
		return err
	}
	d.setCookie(r.ctx, sessionCookie, "", -1)
	redirect(r.ctx, Prefix+"/login?ok=signed_out")
	return nil
}

// logoutAll ends every session of the signed-in member.
func (d *Dashboard) logoutAll(r *req) error {
	if r.sess.Operator {
		return d.logout(r)
	}
	if err := d.accounts.EndSessionsOf(r.sess.Platform, r.sess.Email); err != nil {
		return err
	}
	d.setCookie(r.ctx, sessionCookie, "", -1)
	redirect(r.ctx, Prefix+"/login?ok=signed_out")
	return nil
}

type inviteView struct {
	CSRF   string
	Token  string
	Invite Invite
	Error  string
	Name   string
}

func (d *Dashboard) invitePage(ctx *fasthttp.RequestCtx) {
	tok, _ := ctx.UserValue("token").(string)
	inv, err := d.accounts.PeekInvite(tok)
	if err != nil {
		d.anon(ctx, 404, "invite", "Invite", inviteView{Error: "This invite link is invalid, already used or expired. Ask your platform's owner for a new one."})
		return
	}
	d.anon(ctx, 200, "invite", "Accept invite", inviteView{CSRF: d.loginToken(ctx), Token: tok, Invite: inv})
}

// acceptInvite sets the new member's name and password and signs them in.
func (d *Dashboard) acceptInvite(ctx *fasthttp.RequestCtx) {
	tok, _ := ctx.UserValue("token").(string)
	args := ctx.PostArgs()
	cookieTok := string(ctx.Request.Header.Cookie(loginCookie))
	if cookieTok == "" || subtle.ConstantTimeCompare([]byte(cookieTok), args.Peek("csrf")) != 1 || !sameOrigin(ctx) {
		d.plainError(ctx, 403, "The form's security token is missing or wrong. Reload the page and try again.")
		return
	}
	inv, err := d.accounts.PeekInvite(tok)
	if err != nil {
		d.anon(ctx, 404, "invite", "Invite", inviteView{Error: "This invite link is invalid, already used or expired."})
		return
	}
	pw := string(args.Peek("password"))
	if pw != string(args.Peek("password2")) {
		d.anon(ctx, 400, "invite", "Accept invite", inviteView{CSRF: cookieTok, Token: tok, Invite: inv, Error: "The two passwords differ.", Name: string(args.Peek("name"))})
		return
	}
	m, err := d.accounts.AcceptInvite(tok, string(args.Peek("name")), pw)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "dashboard: ")
		status := 400
		if errors.Is(err, ErrInviteInvalid) {
			status = 404
		}
		d.anon(ctx, status, "invite", "Accept invite", inviteView{CSRF: cookieTok, Token: tok, Invite: inv, Error: msg, Name: string(args.Peek("name"))})
		return
	}
	raw, _, err := d.accounts.NewSession(Session{Platform: m.Platform, Email: m.Email})
	if err != nil {
		d.plainError(ctx, 500, "internal error")
		return
	}
	d.setCookie(ctx, sessionCookie, raw, 0)
	redirect(ctx, pp(m.Platform, "overview"))
}

// inviteURL is the link an invitee opens.
func (d *Dashboard) inviteURL(ctx *fasthttp.RequestCtx, tok string) string {
	return d.absURL(ctx, Prefix+"/invite/"+tok)
}

// absURL makes a dashboard path absolute: under PublicURL, else the
// request's own scheme and host.
func (d *Dashboard) absURL(ctx *fasthttp.RequestCtx, path string) string {
	base := d.cfg.PublicURL
	if base == "" {
		scheme := "http"
		if ctx.IsTLS() {
			scheme = "https"
		}
		base = scheme + "://" + string(ctx.Host())
	}
	return strings.TrimRight(base, "/") + path
}
