package dashboard

import (
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"path"
	"strings"
	"time"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"

	"github.com/assistiv/gateway/edge"
	"github.com/assistiv/gateway/internal/clock"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Prefix is where the dashboard is mounted.
const Prefix = "/dashboard"

// Config configures the dashboard.
type Config struct {
	// AdminKeyDigest is the SHA-256 of the operator's admin key (operators
	// sign in with the key itself).
	AdminKeyDigest [32]byte
	// SecureCookies sets the Secure flag on cookies; set it whenever the
	// dashboard is reached over TLS (a request seen over TLS sets it too).
	SecureCookies bool
	// SessionTTL bounds a session's life. Default 12 h.
	SessionTTL time.Duration
	// InviteTTL bounds an invite link's life. Default 72 h.
	InviteTTL time.Duration
	// LoginWindow and the two maxima bound failed sign-ins: per account
	// (an email, or "operator") and per client address. Defaults 15 min,
	// 5 and 20.
	LoginWindow     time.Duration
	MaxFailsAccount int
	MaxFailsAddress int
	// BcryptCost is the password hashing cost (default bcrypt's 10).
	BcryptCost int
	// PublicURL prefixes invite links (default: the request's host).
	PublicURL string
}

// DefaultConfig returns the defaults documented on [Config].
func DefaultConfig() Config {
	return Config{SessionTTL: 12 * time.Hour, InviteTTL: 72 * time.Hour, LoginWindow: 15 * time.Minute,
		MaxFailsAccount: 5, MaxFailsAddress: 20}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.AdminKeyDigest == [32]byte{}:
		return errors.New("dashboard: AdminKeyDigest is required")
	case c.SessionTTL <= 0 || c.InviteTTL <= 0 || c.LoginWindow <= 0:
		return errors.New("dashboard: TTLs and LoginWindow must be positive")
	case c.MaxFailsAccount <= 0 || c.MaxFailsAddress <= 0:
		return errors.New("dashboard: login failure maxima must be positive")
	}
	return nil
}

// Deps are the components the dashboard uses.
type Deps struct {
	// Edge answers every API call in-process.
	Edge *edge.Server
	// Store keeps members, invites and sessions: the node's Pebble store,
	// or in a cluster the records every node shares (cluster.Shared).
	Store Records
	Clock clock.Clock
	Log   *slog.Logger
}

// Dashboard is the web console. Its handler is safe for concurrent use.
type Dashboard struct {
	cfg      Config
	edge     *edge.Server
	log      *slog.Logger
	clock    clock.Clock
	accounts *Accounts
	byAcct   *limiter
	byAddr   *limiter
	pages    map[string]*template.Template
	router   *router.Router
	// card reports whether members may top up by card (Stripe is
	// configured on the gateway); csp is the page's policy.
	card bool
	csp  string
}

// stripeCheckoutOrigin is where Stripe Checkout pages live: the billing
// form's 303 goes there, so form-action must allow it.
const stripeCheckoutOrigin = "https://checkout.stripe.com"

// New builds the dashboard.
func New(cfg Config, deps Deps) (*Dashboard, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Edge == nil || deps.Store == nil {
		return nil, errors.New("dashboard: Edge and Store are required")
	}
	if deps.Clock == nil {
		deps.Clock = clock.Real{}
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	d := &Dashboard{
		cfg: cfg, edge: deps.Edge, log: deps.Log, clock: deps.Clock,
		accounts: NewAccounts(deps.Store, deps.Clock, cfg.SessionTTL, cfg.InviteTTL, cfg.BcryptCost),
		byAcct:   newLimiter(deps.Clock, cfg.LoginWindow, cfg.MaxFailsAccount),
		byAddr:   newLimiter(deps.Clock, cfg.LoginWindow, cfg.MaxFailsAddress),
	}
	d.card = d.edge.PaymentsConfigured()
	formAction := "'self'"
	if d.card {
		formAction += " " + stripeCheckoutOrigin
	}
	d.csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action " +
		formAction + "; base-uri 'none'; frame-ancestors 'none'"
	var err error
	if d.pages, err = parsePages(); err != nil {
		return nil, err
	}
	d.routes()
	return d, nil
}

// Accounts returns the team/session store (the operator's CLI and tests
// create owners through it).
func (d *Dashboard) Accounts() *Accounts { return d.accounts }

// Handler serves everything under [Prefix].
func (d *Dashboard) Handler() fasthttp.RequestHandler { return d.serve }

func (d *Dashboard) serve(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Set("Content-Security-Policy", d.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if ctx.IsHead() { // answered as GET without the body
		ctx.Request.Header.SetMethod(fasthttp.MethodGet)
		ctx.Response.SkipBody = true
	}
	if string(ctx.Path()) == Prefix {
		redirect(ctx, Prefix+"/")
		return
	}
	d.router.Handler(ctx)
}

func (d *Dashboard) isOperatorKey(raw string) bool {
	dg := sha256.Sum256([]byte(raw))
	return subtle.ConstantTimeCompare(dg[:], d.cfg.AdminKeyDigest[:]) == 1
}

// keyTag names the current admin key in operator sessions (a prefix of its
// digest's digest, so the session record never holds the key's digest).
func (d *Dashboard) keyTag() string {
	t := sha256.Sum256(d.cfg.AdminKeyDigest[:])
	return hex.EncodeToString(t[:8])
}

func (d *Dashboard) static(ctx *fasthttp.RequestCtx) {
	name, _ := ctx.UserValue("file").(string)
	b, err := fs.ReadFile(assets, "static/"+path.Clean("/" + name)[1:])
	if err != nil || strings.Contains(name, "..") {
		ctx.SetStatusCode(404)
		return
	}
	ctx.SetContentType(mime.TypeByExtension(path.Ext(name)))
	ctx.Response.Header.Set("Cache-Control", "public, max-age=300")
	ctx.SetBody(b)
}

// redirect answers 303 to a dashboard path.
func redirect(ctx *fasthttp.RequestCtx, to string) {
	ctx.Response.Header.Set("Location", to)
	ctx.SetStatusCode(fasthttp.StatusSeeOther)
}

func pp(pid, rest string) string { return fmt.Sprintf("%s/p/%s/%s", Prefix, pid, rest) }
