package dashboard

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"strings"

	"github.com/valyala/fasthttp"
)

type claimView struct {
	CSRF  string
	Error string
	Email string
	Name  string
}

func (d *Dashboard) claimPage(ctx *fasthttp.RequestCtx) {
	d.anon(ctx, 200, "claim", "Claim your platform", claimView{CSRF: d.loginToken(ctx)})
}

// platformOfKey asks the API who a raw key is (GET /v1/me with the key, the
// API's own authentication) and returns its platform for a platform key.
func (d *Dashboard) platformOfKey(raw string) (string, bool) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("GET")
	ctx.Request.SetRequestURI("/v1/me")
	ctx.Request.Header.SetHost("dashboard.internal")
	ctx.Request.Header.Set("Authorization", "Bearer "+raw)
	d.edge.Handler()(&ctx)
	if ctx.Response.StatusCode() != 200 {
		return "", false
	}
	var me struct {
		KeyType    string `json:"key_type"`
		PlatformID string `json:"platform_id"`
	}
	if json.Unmarshal(ctx.Response.Body(), &me) != nil || me.KeyType != "platform" || me.PlatformID == "" {
		return "", false
	}
	return me.PlatformID, true
}

// claim lets the holder of a platform key create the platform's first
// owner, once: afterwards teammates join by invite only. Failures count
// against the address like failed sign-ins.
func (d *Dashboard) claim(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("Cache-Control", "no-store")
	args := ctx.PostArgs()
	cookieTok := string(ctx.Request.Header.Cookie(loginCookie))
	if cookieTok == "" || subtle.ConstantTimeCompare([]byte(cookieTok), args.Peek("csrf")) != 1 || !sameOrigin(ctx) {
		d.plainError(ctx, 403, "The form's security token is missing or wrong. Reload the page and try again.")
		return
	}
	addr := "addr:" + clientAddr(ctx)
	cv := claimView{CSRF: cookieTok, Email: string(args.Peek("email")), Name: string(args.Peek("name"))}
	if blocked, _ := d.byAddr.Blocked(addr); blocked {
		cv.Error = "Too many failed attempts. Try again later."
		d.anon(ctx, 429, "claim", "Claim your platform", cv)
		return
	}
	pid, ok := d.platformOfKey(strings.TrimSpace(string(args.Peek("platform_key"))))
	if !ok {
		d.byAddr.Fail(addr)
		d.log.Warn("dashboard claim with an invalid key", "addr", clientAddr(ctx))
		cv.Error = "That is not a valid platform key."
		d.anon(ctx, 401, "claim", "Claim your platform", cv)
		return
	}
	if string(args.Peek("password")) != string(args.Peek("password2")) {
		cv.Error = "The two passwords differ."
		d.anon(ctx, 400, "claim", "Claim your platform", cv)
		return
	}
	m, err := d.accounts.ClaimOwner(pid, cv.Email, cv.Name, string(args.Peek("password")))
	if err != nil {
		status := 400
		if errors.Is(err, ErrHasOwner) {
			status = 409
		}
		cv.Error = strings.TrimPrefix(err.Error(), "dashboard: ")
		d.anon(ctx, status, "claim", "Claim your platform", cv)
		return
	}
	d.log.Info("dashboard platform claimed with its key", "platform", pid, "email", m.Email, "addr", clientAddr(ctx))
	raw, _, err := d.accounts.NewSession(Session{Platform: m.Platform, Email: m.Email})
	if err != nil {
		d.plainError(ctx, 500, "internal error")
		return
	}
	d.setCookie(ctx, sessionCookie, raw, 0)
	redirect(ctx, pp(m.Platform, "overview"))
}
