// Package edgetest starts a real gateway node in-process for tests: a Pebble
// store in a temporary directory, real protoactor actors, and the edge
// serving HTTP on 127.0.0.1. It also builds and runs the gateway binary as a
// child process for crash tests. Only tests import it.
package edgetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/edge"
	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/egress"
	"github.com/assistiv/gateway/internal/secrets"
	"github.com/assistiv/gateway/internal/tracesample"
	"github.com/assistiv/gateway/logs"
	"github.com/assistiv/gateway/mcp"
	"github.com/assistiv/gateway/payments"
	"github.com/assistiv/gateway/persistence"
	"github.com/assistiv/gateway/providers"
	"github.com/assistiv/gateway/webhooks"
)

// AdminKey is the operator key of test gateways.
const AdminKey = "test-admin-key-0123456789"

// Options tunes Start.
type Options struct {
	Dir               string      // data dir; default a fresh t.TempDir()
	Clock             clock.Clock // default the real clock
	IdleTimeout       time.Duration
	BillingDurability string
	Log               *slog.Logger
	// MaxBodyBytes overrides edge.Config.MaxBodyBytes (0: the default).
	MaxBodyBytes int
	// WriteTimeout overrides edge.Config.WriteTimeout (0: the default).
	WriteTimeout time.Duration
	// EdgeConfig adjusts the edge's config last.
	EdgeConfig func(*edge.Config)
	// Listener, when set, is served instead of a fresh 127.0.0.1 listener
	// (fuzz tests pass fasthttputil's in-memory listener). URL is then
	// "http://" + its address; when it has a Dial() method, the gateway's
	// client dials through it.
	Listener net.Listener
	// Webhooks runs a webhooks service (Gateway.Webhooks) with the
	// egress policy allowing loopback receivers, no jitter and
	// TestWebhookSchedule; WebhookConfig, when set, adjusts its config
	// last. The master key is a key file in Dir, so a restart over the
	// same Dir opens the same secrets.
	Webhooks      bool
	WebhookConfig func(*webhooks.Config)
	// ProviderConfig adjusts the upstream transport's config (private
	// egress is allowed and retries are fast by default).
	ProviderConfig func(*providers.Config)
	// MCPConfig adjusts the MCP service's config (PublicURL is the
	// gateway's URL, private egress is allowed, heartbeat 200 ms).
	MCPConfig func(*mcp.Config)
	// Stripe, when set, is the gateway's payment processor (auto top-up)
	// and serves wallet checkout and /stripe/webhook.
	Stripe *payments.Stripe
	// Env adjusts the actors' environment before any actor starts.
	Env func(*actors.Env)
	// Tracer, when set, traces the edge's requests (edge.Deps.Tracer).
	Tracer trace.Tracer
	// TraceSampler, with Tracer, is the edge's head sampler
	// (edge.Deps.TraceSampler; it must be the tracer provider's sampler).
	TraceSampler *tracesample.Sampler
	// BeforeServe, when set, runs after the gateway is built and before it
	// accepts connections (tests mount extra handlers such as the
	// dashboard with Server.Mount here).
	BeforeServe func(*Gateway)
}

// TestWebhookSchedule is the retry schedule of test gateways: four
// attempts within a few hundred milliseconds.
var TestWebhookSchedule = []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}

// Gateway is a running in-process node.
type Gateway struct {
	URL    string
	Dir    string
	Store  *persistence.Store
	Env    *actors.Env
	Actors *actors.Local
	Server *edge.Server
	// Webhooks is the webhooks service (nil unless Options.Webhooks).
	Webhooks *webhooks.Service
	// Logs is the per-call log store (always on).
	Logs *logs.Store
	// LogDB is the per-call logs' own Pebble store (Dir/logs).
	LogDB *persistence.Store
	// MCP is the MCP service (always on).
	MCP    *mcp.Service
	client *http.Client
	once   sync.Once
	done   chan error
}

// Start runs a node until the test ends (or Close).
func Start(tb testing.TB, o Options) *Gateway {
	tb.Helper()
	if o.Dir == "" {
		o.Dir = tb.TempDir()
	}
	if o.Log == nil {
		var w io.Writer = io.Discard
		if os.Getenv("EDGETEST_LOG") != "" { // debugging: the gateway's log on stderr
			w = os.Stderr
		}
		o.Log = slog.New(slog.NewTextHandler(w, nil))
	}
	scfg := persistence.DefaultConfig()
	scfg.Dir = o.Dir
	scfg.Logger = o.Log
	scfg.OnFatal = func(err error) { tb.Errorf("store failed: %v", err) }
	if o.BillingDurability == actors.DurabilityBatch {
		// As the gateway runs batch mode (its -batch-sync-interval default):
		// unsynced settlements reach the disk within 5 ms.
		scfg.MaxUnsyncedDelay = 5 * time.Millisecond
	}
	store, err := persistence.Open(scfg)
	if err != nil {
		tb.Fatalf("persistence.Open: %v", err)
	}
	env := actors.NewEnv(store, o.Clock, o.Log)
	if o.IdleTimeout > 0 {
		env.IdleTimeout = o.IdleTimeout
	}
	if o.BillingDurability != "" {
		env.BillingDurability = o.BillingDurability
	}
	key, _, err := secrets.LoadOrCreateKeyFile(o.Dir)
	if err != nil {
		tb.Fatalf("master key: %v", err)
	}
	kr, err := secrets.NewKeyring(key)
	if err != nil {
		tb.Fatalf("keyring: %v", err)
	}
	pcfg := providers.DefaultConfig()
	pcfg.AllowPrivateEgress = true
	pcfg.Retry.BaseDelay = 5 * time.Millisecond
	if o.ProviderConfig != nil {
		o.ProviderConfig(&pcfg)
	}
	upstreams, err := edge.NewUpstreams(pcfg)
	if err != nil {
		tb.Fatalf("edge.NewUpstreams: %v", err)
	}
	var hooks *webhooks.Service
	if o.Webhooks {
		wcfg := webhooks.DefaultConfig()
		wcfg.Keyring, wcfg.Clock, wcfg.Logger = kr, o.Clock, o.Log
		wcfg.Egress = egress.Policy{AllowPrivate: true}
		wcfg.Schedule, wcfg.Jitter = append([]time.Duration(nil), TestWebhookSchedule...), 0
		wcfg.PollInterval = 50 * time.Millisecond
		if o.WebhookConfig != nil {
			o.WebhookConfig(&wcfg)
		}
		env.Subscriptions = &actors.Subscriptions{}
		if hooks, err = webhooks.New(wcfg, store, env.Subscriptions); err != nil {
			tb.Fatalf("webhooks.New: %v", err)
		}
		env.Notify = hooks.Wake
		hooks.Start()
	}
	logDB, err := logs.OpenDB(o.Dir, o.Log)
	if err != nil {
		tb.Fatalf("logs.OpenDB: %v", err)
	}
	lg, err := logs.Open(logs.Config{Clock: o.Clock, Logger: o.Log}, logDB)
	if err != nil {
		tb.Fatalf("logs.Open: %v", err)
	}
	if o.Stripe != nil {
		env.Payments = o.Stripe
	}
	if o.Env != nil {
		o.Env(env)
	}
	dir := actors.NewLocal(env)
	ln := o.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			tb.Fatalf("listen: %v", err)
		}
	}
	mcfg := mcp.DefaultConfig()
	mcfg.PublicURL = "http://" + ln.Addr().String()
	mcfg.Egress = egress.Policy{AllowPrivate: true}
	mcfg.HeartbeatInterval = 200 * time.Millisecond
	mcfg.SkillsDir = filepath.Join(o.Dir, "skills")
	mcfg.Clock, mcfg.Logger = o.Clock, o.Log
	if o.MCPConfig != nil {
		o.MCPConfig(&mcfg)
	}
	msvc, err := mcp.New(mcfg, mcp.Deps{Store: store, Directory: dir, Keyring: kr, Logs: lg.Writer()})
	if err != nil {
		tb.Fatalf("mcp.New: %v", err)
	}
	cfg := edge.DefaultConfig()
	cfg.AdminKeyDigest = sha256.Sum256([]byte(AdminKey))
	if o.MaxBodyBytes > 0 {
		cfg.MaxBodyBytes = o.MaxBodyBytes
	}
	if o.WriteTimeout > 0 {
		cfg.WriteTimeout = o.WriteTimeout
	}
	if o.EdgeConfig != nil {
		o.EdgeConfig(&cfg)
	}
	var peers actors.Peers = actors.NewSingleNode(env)
	if env.Peers != nil { // set by o.Env: a cluster member
		peers = env.Peers
	}
	srv, err := edge.New(cfg, edge.Deps{Directory: dir, Auth: env.Auth, Store: store, Peers: peers, Clock: o.Clock, Log: o.Log, Webhooks: hooks,
		Secrets: kr, Egress: egress.Policy{AllowPrivate: true}, Upstreams: upstreams, Logs: lg, MCP: msvc,
		Stripe: o.Stripe, PublicURL: "http://" + ln.Addr().String(), Tracer: o.Tracer, TraceSampler: o.TraceSampler})
	if err != nil {
		tb.Fatalf("edge.New: %v", err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	if d, ok := ln.(interface{ Dial() (net.Conn, error) }); ok {
		tr.DialContext = func(context.Context, string, string) (net.Conn, error) { return d.Dial() }
	}
	g := &Gateway{
		URL: "http://" + ln.Addr().String(), Dir: o.Dir, Store: store, Env: env, Actors: dir, Server: srv, Webhooks: hooks, Logs: lg, LogDB: logDB, MCP: msvc,
		client: &http.Client{Timeout: 30 * time.Second, Transport: tr},
		done:   make(chan error, 1),
	}
	if o.BeforeServe != nil {
		o.BeforeServe(g)
	}
	go func() { g.done <- srv.Serve(ln) }()
	tb.Cleanup(g.Close)
	return g
}

// Close shuts the node down gracefully (idempotent).
func (g *Gateway) Close() {
	g.once.Do(func() {
		// Close the client's idle connections first: fasthttp counts a
		// connection that has not sent a request as busy for its first 5 s,
		// and the transport dials spares during bursts.
		g.client.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.MCP.Close(ctx) // ends MCP listening streams so the drain below is not held up
		_ = g.Server.Shutdown(ctx)
		<-g.done
		g.Actors.Close()
		if g.Webhooks != nil {
			g.Webhooks.Close()
		}
		g.Logs.Close() // drains queued entries before the store closes
		_ = g.LogDB.Close()
		_ = g.Store.Close()
	})
}

// Response is a buffered HTTP response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r *Response) JSON(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Map decodes the body as a JSON object.
func (r *Response) Map(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	r.JSON(tb, &m)
	return m
}

// ErrorCode returns error.code of an error body ("" when there is none).
func (r *Response) ErrorCode() string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

// Do sends one request to base (a gateway URL). body may be nil, a
// string/[]byte sent as is, or a value encoded as JSON. headers are
// name, value pairs.
func Do(tb testing.TB, client *http.Client, base, method, path, key string, body any, headers ...string) *Response {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			tb.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		tb.Fatalf("NewRequest: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read %s %s: %v", method, path, err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: out}
}

// Do sends one request to this gateway (see the package-level Do).
func (g *Gateway) Do(tb testing.TB, method, path, key string, body any, headers ...string) *Response {
	tb.Helper()
	return Do(tb, g.client, g.URL, method, path, key, body, headers...)
}

// Client returns the gateway's HTTP client (safe for concurrent use).
func (g *Gateway) Client() *http.Client { return g.client }

// CreatePlatform creates a platform through the operator API and returns
// its id and platform key.
func CreatePlatform(tb testing.TB, client *http.Client, base, name string) (id, key string) {
	tb.Helper()
	r := Do(tb, client, base, "POST", "/admin/v1/platforms", AdminKey, map[string]any{"name": name})
	if r.Status != 201 {
		tb.Fatalf("create platform: %d %s", r.Status, r.Body)
	}
	var out struct {
		Platform struct{ ID string } `json:"platform"`
		APIKey   struct {
			RawKey string `json:"raw_key"`
		} `json:"api_key"`
	}
	r.JSON(tb, &out)
	return out.Platform.ID, out.APIKey.RawKey
}

// CreatePlatform is the package-level CreatePlatform on this gateway.
func (g *Gateway) CreatePlatform(tb testing.TB, name string) (id, key string) {
	tb.Helper()
	return CreatePlatform(tb, g.client, g.URL, name)
}

// CreateEndUser creates (or re-creates) an end-user and returns its id and key.
func CreateEndUser(tb testing.TB, client *http.Client, base, platformID, platformKey, externalID string) (id, key string) {
	tb.Helper()
	r := Do(tb, client, base, "POST", "/v1/platforms/"+platformID+"/end-users", platformKey, map[string]any{"external_id": externalID})
	if r.Status != 201 && r.Status != 200 {
		tb.Fatalf("create end-user: %d %s", r.Status, r.Body)
	}
	var out struct {
		ID     string `json:"id"`
		APIKey struct {
			RawKey string `json:"raw_key"`
		} `json:"api_key"`
	}
	r.JSON(tb, &out)
	return out.ID, out.APIKey.RawKey
}

// CreateEndUser is the package-level CreateEndUser on this gateway.
func (g *Gateway) CreateEndUser(tb testing.TB, platformID, platformKey, externalID string) (id, key string) {
	tb.Helper()
	return CreateEndUser(tb, g.client, g.URL, platformID, platformKey, externalID)
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// BuildBinary builds cmd/gateway once per test process and returns its path.
func BuildBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		// Binaries of earlier test processes (one each, ~35 MB) are
		// removed once they are an hour old; this process's is fresh.
		if old, _ := filepath.Glob(filepath.Join(os.TempDir(), "gateway-bin-*")); len(old) > 0 {
			for _, d := range old {
				if fi, err := os.Stat(d); err == nil && time.Since(fi.ModTime()) > time.Hour {
					os.RemoveAll(d)
				}
			}
		}
		dir, err := os.MkdirTemp("", "gateway-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "gateway")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/gateway")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return buildPath
}

// Process is the gateway binary running as a child process.
type Process struct {
	URL    string
	Dir    string
	cmd    *exec.Cmd
	logs   *syncBuffer
	client *http.Client
	exited chan struct{} // closed once the process has been waited for
	err    error         // Wait's result, set before exited closes
}

// syncBuffer is a bytes.Buffer the child's output goroutine writes while
// a test reads it.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartProcess runs `gateway serve` on a free loopback port over dataDir
// and waits for /readyz.
func StartProcess(tb testing.TB, dataDir string, extraEnv ...string) *Process {
	tb.Helper()
	bin := BuildBinary(tb)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "serve", "-listen", addr, "-data-dir", dataDir)
	cmd.Env = append(os.Environ(), "ASSISTIV_ADMIN_KEY="+AdminKey, "ASSISTIV_LOG_LEVEL=warn")
	cmd.Env = append(cmd.Env, extraEnv...)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &Process{URL: "http://" + addr, Dir: dataDir, cmd: cmd, logs: logs, exited: make(chan struct{}),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	tb.Cleanup(p.Kill)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := p.client.Get(p.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.exited:
			tb.Fatalf("gateway exited with %v before it was ready; logs:\n%s", p.err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	p.Kill()
	tb.Fatalf("gateway did not become ready; logs:\n%s", logs.String())
	return nil
}

// Do sends one request to the process (see the package-level Do).
func (p *Process) Do(tb testing.TB, method, path, key string, body any, headers ...string) *Response {
	tb.Helper()
	return Do(tb, p.client, p.URL, method, path, key, body, headers...)
}

// Client returns the process's HTTP client (safe for concurrent use).
func (p *Process) Client() *http.Client { return p.client }

// Kill sends SIGKILL and waits for the process to exit (idempotent).
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.client.CloseIdleConnections()
}

// Stop sends SIGTERM and waits for a graceful exit; an exit status other
// than 0, or no exit within 30 s, fails the test.
func (p *Process) Stop(tb testing.TB) {
	tb.Helper()
	p.client.CloseIdleConnections()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.err != nil {
			tb.Errorf("gateway exited with %v; logs:\n%s", p.err, p.logs.String())
		}
	case <-time.After(30 * time.Second):
		p.Kill()
		tb.Errorf("gateway did not stop on SIGTERM; logs:\n%s", p.logs.String())
	}
}

// Logs returns what the process printed.
func (p *Process) Logs() string { return p.logs.String() }
