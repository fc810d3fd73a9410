package edge

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/router"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
	"go.opentelemetry.io/otel/trace"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/egress"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/secrets"
	"github.com/assistiv/gateway/internal/tracesample"
	"github.com/assistiv/gateway/logs"
	"github.com/assistiv/gateway/mcp"
	"github.com/assistiv/gateway/payments"
	"github.com/assistiv/gateway/persistence"
	"github.com/assistiv/gateway/webhooks"
)

// Config configures the HTTP front.
type Config struct {
	// MaxBodyBytes bounds a request body; larger bodies answer 413.
	// Default 4 MiB, range 1 KiB..64 MiB.
	MaxBodyBytes int
	// ReadTimeout bounds reading one request (headers and body).
	// Default 30 s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a non-streamed response. Default 60 s.
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long. Default 120 s.
	IdleTimeout time.Duration
	// MaxConnsPerIP bounds concurrent connections from one address
	// (0: no bound). Default 0.
	MaxConnsPerIP int
	// Concurrency bounds connections served at once. Default 65536.
	Concurrency int
	// AdminKeyDigest is the SHA-256 of the operator's admin key.
	AdminKeyDigest [32]byte
	// UpstreamTimeout bounds one inference call, streaming included.
	// Default 10 minutes.
	UpstreamTimeout time.Duration
	// UpstreamPerPlatform bounds the inference calls one platform has in
	// flight to one provider at once (this node): its share of the
	// provider host's connection pool, so one tenant cannot take every
	// upstream connection. Beyond it a call answers 429
	// upstream_capacity_exceeded. Default 2048 (half of the provider pool of 4096).
	UpstreamPerPlatform int
	// MetricsTokenDigest is the SHA-256 of a bearer token that may read
	// /metrics besides the admin key (zero: only the admin key).
	MetricsTokenDigest [32]byte
	// MetricsSeparate moves /metrics off the main listener (404 there):
	// the caller serves [Server.MetricsHandler] on its own listener.
	MetricsSeparate bool
	// ResponseRetention is how long stored Responses API responses are
	// kept. Default 30 days, range 1 minute..10 years.
	ResponseRetention time.Duration
	// ResponseSweepInterval is how often expired responses are deleted
	// while serving. Default 1 hour, range 1 ms..24 h.
	ResponseSweepInterval time.Duration
	// TraceContent lets spans carry prompts and completions
	// (gen_ai.input.messages, gen_ai.output.messages). Default off.
	TraceContent bool
}

// DefaultConfig returns the defaults documented on [Config].
func DefaultConfig() Config {
	return Config{
		MaxBodyBytes: 4 << 20,
		ReadTimeout:  30 * time.Second,
		WriteTimeout: 60 * time.Second,
		IdleTimeout:  120 * time.Second,
		Concurrency:  65536,

		UpstreamTimeout:     10 * time.Minute,
		UpstreamPerPlatform: 2048,

		ResponseRetention:     30 * 24 * time.Hour,
		ResponseSweepInterval: time.Hour,
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.MaxBodyBytes < 1<<10 || c.MaxBodyBytes > 64<<20:
		return fmt.Errorf("edge: MaxBodyBytes %d out of range 1KiB..64MiB", c.MaxBodyBytes)
	case c.ReadTimeout <= 0 || c.WriteTimeout <= 0 || c.IdleTimeout <= 0:
		return errors.New("edge: timeouts must be positive")
	case c.ResponseRetention < time.Minute || c.ResponseRetention > 10*365*24*time.Hour:
		return fmt.Errorf("edge: ResponseRetention %s out of range 1m..10y", c.ResponseRetention)
	case c.ResponseSweepInterval < time.Millisecond || c.ResponseSweepInterval > 24*time.Hour:
		return fmt.Errorf("edge: ResponseSweepInterval %s out of range 1ms..24h", c.ResponseSweepInterval)
	case c.UpstreamTimeout <= 0:
		return errors.New("edge: UpstreamTimeout must be positive")
	case c.UpstreamPerPlatform < 1:
		return errors.New("edge: UpstreamPerPlatform must be at least 1")
	case c.Concurrency <= 0:
		return errors.New("edge: Concurrency must be positive")
	case c.AdminKeyDigest == [32]byte{}:
		return errors.New("edge: AdminKeyDigest is required")
	}
	return nil
}

// Deps are the components the edge calls.
type Deps struct {
	Directory actors.Directory
	Auth      *actors.Auth
	Store     *persistence.Store
	// Peers answers listings from every node's records and carries
	// changes other nodes cache (actors.NewSingleNode when alone).
	Peers    actors.Peers
	Clock    clock.Clock
	Log      *slog.Logger
	Registry *prometheus.Registry
	// Webhooks serves the webhook-endpoints routes; nil leaves them out.
	Webhooks *webhooks.Service
	// Secrets seals provider keys (nil: provider configuration answers 503).
	Secrets *secrets.Keyring
	// Egress checks provider base URLs at registration.
	Egress egress.Policy
	// Upstreams are the provider clients by provider name.
	Upstreams map[string]Upstream
	// Logs records every inference call (nil: not recorded).
	Logs *logs.Store
	// MCP serves /mcp, /mcp/skills, /oauth/callback and the MCP app
	// routes; nil leaves them out.
	MCP *mcp.Service
	// Stripe serves wallet checkout and /stripe/webhook; nil: those
	// routes answer 503 payments_not_configured.
	Stripe *payments.Stripe
	// PublicURL is the gateway's public base URL (Checkout's default
	// return pages).
	PublicURL string
	// Tracer, when set, traces requests (edge/tracing.go); nil: off, and
	// the hot path pays one nil check.
	Tracer trace.Tracer
	// TraceSampler, with Tracer, decides at the edge which requests that
	// start a trace are traced, before any span exists (it must also be
	// the tracer provider's sampler: internal/tracesample). Nil: every
	// request asks the tracer, whose sampler decides.
	TraceSampler *tracesample.Sampler
}

// Server is the gateway's HTTP server.
type Server struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	srv      *fasthttp.Server
	router   *router.Router
	ready    atomic.Bool
	draining atomic.Bool
	metrics  *metrics
	keys     keyCache
	calls    inflightCalls // admitted inference calls not yet settled or released
	mounts   []mount

	sweepOnce  sync.Once
	sweepQuit  chan struct{} // closed by Shutdown: stops the response sweeper
	sweepDone  chan struct{}
	sweepStart sync.Once
}

// New builds the server and its routes.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Peers == nil {
		return nil, errors.New("edge: Deps.Peers is required (actors.NewSingleNode for one node)")
	}
	if deps.Directory != nil {
		deps.Directory = movedRetry{deps.Directory}
	}
	if deps.Clock == nil {
		deps.Clock = clock.Real{}
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, deps: deps, log: deps.Log}
	s.metrics = newMetrics(deps.Registry)
	s.sweepQuit, s.sweepDone = make(chan struct{}), make(chan struct{})
	s.keys.ring = deps.Secrets
	s.router = router.New()
	s.router.HandleMethodNotAllowed = true
	s.router.RedirectTrailingSlash = false
	s.router.RedirectFixedPath = false
	s.router.NotFound = func(ctx *fasthttp.RequestCtx) {
		writeError(ctx, &apiError{Status: 404, Type: typeNotFound, Code: "route_not_found",
			Message: fmt.Sprintf("no route for %s %s", ctx.Method(), ctx.Path())}, requestIDOf(ctx))
	}
	s.router.MethodNotAllowed = func(ctx *fasthttp.RequestCtx) {
		writeError(ctx, &apiError{Status: 405, Type: typeInvalid, Code: "method_not_allowed",
			Message: fmt.Sprintf("%s is not allowed on %s", ctx.Method(), ctx.Path())}, requestIDOf(ctx))
	}
	s.router.PanicHandler = func(ctx *fasthttp.RequestCtx, v any) {
		s.log.Error("handler panic", "request_id", requestIDOf(ctx), "panic", v)
		writeError(ctx, &apiError{Status: 500, Type: typeInternal, Code: "internal_error", Message: "internal error"}, requestIDOf(ctx))
	}
	s.routes()
	s.srv = &fasthttp.Server{
		Handler:                       s.handle,
		Name:                          "assistiv-gateway",
		ReadTimeout:                   cfg.ReadTimeout,
		WriteTimeout:                  cfg.WriteTimeout,
		IdleTimeout:                   cfg.IdleTimeout,
		MaxRequestBodySize:            cfg.MaxBodyBytes,
		MaxConnsPerIP:                 cfg.MaxConnsPerIP,
		Concurrency:                   cfg.Concurrency,
		DisableHeaderNamesNormalizing: false,
		NoDefaultServerHeader:         false,
		NoDefaultDate:                 true,
		ReduceMemoryUsage:             false,
		ErrorHandler:                  s.transportError,
		HeaderReceived:                s.headerConfig,
		Logger:                        fasthttpLogger{s.log},
	}
	return s, nil
}

// Serve accepts connections on ln until Shutdown. It marks the server
// ready first.
func (s *Server) Serve(ln net.Listener) error {
	s.sweepStart.Do(func() { go s.sweepResponses(s.cfg.ResponseSweepInterval, s.sweepQuit, s.sweepDone) })
	s.ready.Store(true)
	return s.srv.Serve(ln)
}

// Shutdown stops accepting connections and waits, at most until ctx ends,
// for in-flight requests to finish.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.ready.Store(false)
	s.sweepOnce.Do(func() {
		close(s.sweepQuit)
		s.sweepStart.Do(func() { close(s.sweepDone) }) // never started: nothing to wait for
	})
	<-s.sweepDone
	err := s.srv.ShutdownWithContext(ctx)
	// Calls still running when the drain ends (long streams) are ended
	// now rather than abandoned: each one's upstream is cancelled and it
	// settles what was produced, before the actors stop.
	if n := s.calls.cancelAll(); n > 0 {
		s.log.Warn("ending inference calls still running at shutdown; each bills what it produced", "calls", n)
	}
	if !s.calls.wait(15 * time.Second) {
		s.log.Error("inference calls did not settle within 15 s of shutdown; crash recovery will void them with a trace")
	}
	return err
}

// Handler returns the root handler (for tests and benchmarks that serve it
// themselves).
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

// requestIDKey is the user value that holds a request's *reqMeta.
const requestIDKey = "assistiv.request_id"

// reqMeta is what the root handler and the route a request matched note
// about it: one allocation a request, where a string user value and the
// router's SaveMatchedRoutePath took three.
type reqMeta struct {
	rid   string
	route *string // the matched route pattern (routeTable), nil: none
}

func metaOf(ctx *fasthttp.RequestCtx) *reqMeta {
	m, _ := ctx.UserValue(requestIDKey).(*reqMeta)
	return m
}

func requestIDOf(ctx *fasthttp.RequestCtx) string {
	if m := metaOf(ctx); m != nil {
		return m.rid
	}
	return ""
}

// routeTable registers the router's handlers, each wrapped to note its
// route pattern for the metrics (through a pointer made once per route).
type routeTable struct{ *router.Router }

func (t routeTable) Handle(method, path string, h fasthttp.RequestHandler) {
	p := &path
	t.Router.Handle(method, path, func(ctx *fasthttp.RequestCtx) {
		if m := metaOf(ctx); m != nil {
			m.route = p
		}
		h(ctx)
	})
}

func (t routeTable) GET(path string, h fasthttp.RequestHandler)    { t.Handle("GET", path, h) }
func (t routeTable) POST(path string, h fasthttp.RequestHandler)   { t.Handle("POST", path, h) }
func (t routeTable) PUT(path string, h fasthttp.RequestHandler)    { t.Handle("PUT", path, h) }
func (t routeTable) PATCH(path string, h fasthttp.RequestHandler)  { t.Handle("PATCH", path, h) }
func (t routeTable) DELETE(path string, h fasthttp.RequestHandler) { t.Handle("DELETE", path, h) }

// handle is the root: request id, metrics, routing.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	rid := ids.New(ids.RequestPrefix, start)
	meta := &reqMeta{rid: rid}
	ctx.SetUserValue(requestIDKey, meta)
	ctx.Response.Header.Set("X-Request-Id", rid)
	route := ""
	if m, ok := s.mounted(ctx.Path()); ok {
		m.h(ctx)
		route = m.prefix
	} else {
		s.router.Handler(ctx)
		if meta.route != nil {
			route = *meta.route
		}
	}
	if ctx.Response.Header.Peek("X-Request-Id") == nil {
		ctx.Response.Header.Set("X-Request-Id", rid)
	}
	if route == "" {
		route = "unmatched"
	}
	s.metrics.observe(ctx.Method(), route, ctx.Response.StatusCode(), time.Since(start))
}

// transportError renders errors fasthttp meets before a handler runs.
func (s *Server) transportError(ctx *fasthttp.RequestCtx, err error) {
	rid := ids.New(ids.RequestPrefix, time.Now())
	var e *apiError
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		e = &apiError{Status: 413, Type: typeInvalid, Code: "request_too_large", Message: fmt.Sprintf("request body exceeds %d bytes", s.cfg.MaxBodyBytes)}
	case isTimeout(err):
		e = &apiError{Status: 408, Type: typeInvalid, Code: "request_timeout", Message: "the request was not received in time"}
	default:
		e = &apiError{Status: 400, Type: typeInvalid, Code: "malformed_request", Message: "the HTTP request could not be parsed"}
	}
	writeError(ctx, e, rid)
	ctx.SetConnectionClose()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// adminOnly wraps an operator handler: the admin key is compared as a
// SHA-256 digest in constant time.
func (s *Server) adminOnly(h func(*call) error) fasthttp.RequestHandler {
	return s.wrap(func(c *call) error {
		if in, ok := internalCaller(c.ctx); ok {
			if !in.Admin {
				return errInvalidKey
			}
			c.admin = true
			return h(c)
		}
		raw, err := bearer(c.ctx)
		if err != nil {
			return err
		}
		d := sha256.Sum256([]byte(raw))
		if subtle.ConstantTimeCompare(d[:], s.cfg.AdminKeyDigest[:]) != 1 {
			return errInvalidKey
		}
		c.admin = true
		return h(c)
	})
}

// withKey wraps a handler that needs a platform or end-user key. kinds
// lists the key kinds the route accepts; another kind answers 403
// wrong_key_type.
func (s *Server) withKey(h func(*call) error, kinds ...ids.KeyKind) fasthttp.RequestHandler {
	return s.wrap(func(c *call) error {
		p, err := s.principal(c.ctx)
		if err != nil {
			return err
		}
		ok := false
		for _, k := range kinds {
			ok = ok || p.Kind == k
		}
		if !ok {
			return &apiError{Status: 403, Type: typePerm, Code: "wrong_key_type",
				Message: fmt.Sprintf("a %s key cannot call this route", p.Kind)}
		}
		if hp := c.ctx.Request.Header.Peek("X-Assistiv-Platform-Id"); len(hp) > 0 && string(hp) != string(p.Platform) {
			return &apiError{Status: 403, Type: typePerm, Code: "platform_mismatch",
				Message: "X-Assistiv-Platform-Id does not match the key's platform"}
		}
		c.principal = p
		return h(c)
	})
}

// principal is the in-process caller's principal, or the one of the
// presented key.
func (s *Server) principal(ctx *fasthttp.RequestCtx) (actors.Principal, error) {
	if in, ok := internalCaller(ctx); ok {
		if in.Admin || in.Principal.Platform == "" {
			return actors.Principal{}, errInvalidKey
		}
		return in.Principal, nil
	}
	raw, err := bearer(ctx)
	if err != nil {
		return actors.Principal{}, err
	}
	_, digest, err := ids.ParseKey(raw)
	if err != nil {
		return actors.Principal{}, errInvalidKey
	}
	p, err := s.deps.Auth.Lookup(digest)
	if errors.Is(err, actors.ErrUnknownKey) {
		return actors.Principal{}, errInvalidKey
	}
	return p, err
}

// bearer extracts the key from the Authorization header. Keys in the query
// string are refused so they never land in access logs.
func bearer(ctx *fasthttp.RequestCtx) (string, error) {
	args := ctx.QueryArgs()
	if args.Has("api_key") || args.Has("key") || args.Has("access_token") {
		return "", errKeyInQuery
	}
	h := ctx.Request.Header.Peek("Authorization")
	if len(h) == 0 {
		return "", errMissingKey
	}
	const p = "Bearer "
	if len(h) <= len(p) || !strings.EqualFold(string(h[:len(p)]), p) {
		return "", errMissingKey
	}
	return strings.TrimSpace(string(h[len(p):])), nil
}

// call is one request's context inside a handler.
type call struct {
	s         *Server
	ctx       *fasthttp.RequestCtx
	rid       string
	principal actors.Principal
	admin     bool
	tr        *reqTrace // nil unless this request is traced and sampled
}

func (s *Server) wrap(h func(*call) error) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		c := &call{s: s, ctx: ctx, rid: requestIDOf(ctx)}
		if s.deps.Tracer != nil {
			s.traceRequest(c)
		}
		err := h(c)
		if err != nil {
			writeError(ctx, toAPIError(err, s.log, c.rid), c.rid)
		}
		if c.tr != nil {
			c.tr.endRequest(ctx, err)
		}
	}
}

// context returns a context for actor calls, bounded by the write timeout.
func (c *call) context() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.s.cfg.WriteTimeout)
}

// health and readiness.
func (s *Server) healthz(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"status":"ok"}`)
}

func (s *Server) readyz(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	if !s.ready.Load() || s.draining.Load() {
		ctx.SetStatusCode(503)
		ctx.SetBodyString(`{"status":"not_ready"}`)
		return
	}
	if err := s.deps.Store.Err(); err != nil {
		ctx.SetStatusCode(503)
		ctx.SetBodyString(`{"status":"store_failed"}`)
		return
	}
	ctx.SetBodyString(`{"status":"ready"}`)
}

func (s *Server) metricsHandler() fasthttp.RequestHandler {
	return fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(s.deps.Registry, promhttp.HandlerOpts{}))
}

type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug(fmt.Sprintf(format, args...), "component", "fasthttp")
}

func sprintf(format string, args ...any) string {
	if len(args) == 0 {
		return format
	}
	return fmt.Sprintf(format, args...)
}
