package suite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/assistiv/gateway/bench/proc"
	"github.com/assistiv/gateway/bench/report"
)

// Gateway runs bin/gateway in front of the upstream: the full request path
// (end-user key auth, rate-limit check, budget and wallet reservation and
// settlement, the per-call log entry, the write-ahead log). Each Start gets
// a fresh data dir, a platform whose openai provider points at the
// upstream, a funded wallet and one end-user with a budget and no rate
// limits, whose key the request templates carry.
type Gateway struct {
	// Bin is the gateway binary.
	Bin string
	// Durability is the billing durability, "batch" or "sync".
	Durability string
	// Model, when set, replaces the templates' model: "claude-haiku-4-5"
	// routes every call to the platform's anthropic provider (the same
	// upstream, which must then speak Anthropic's Messages API: mockllm
	// does), so the gateway translates both ways.
	Model string
	// Label names the variant when set (default "gateway-" + Durability).
	Label string
	// TraceRatio, when positive, turns OpenTelemetry tracing on with this
	// share of requests sampled (parentbased_traceidratio), exporting over
	// OTLP/HTTP to a loopback sink in the bench process that reads and
	// drops every batch: the cost of tracing without a collector's.
	TraceRatio float64
}

var _ Variant = (*Gateway)(nil)

// Name returns the label, or "gateway-batch" / "gateway-sync", with
// "-traced" when TraceRatio is set.
func (g *Gateway) Name() string {
	if g.Label != "" {
		return g.Label
	}
	if g.TraceRatio > 0 {
		return "gateway-" + g.Durability + "-traced"
	}
	return "gateway-" + g.Durability
}

// IsGateway reports whether a variant name is one of the gateway's: those
// are compared with the baselines and never serve as one.
func IsGateway(name string) bool { return strings.HasPrefix(name, "gateway") }

// Start starts the gateway on a fresh data dir and configures it over the
// operator API.
func (g *Gateway) Start(ctx context.Context, env *Env) (*Instance, error) {
	opts := GatewayOptions{Bin: g.Bin, Durability: g.Durability}
	stopSink := func() {}
	if g.TraceRatio > 0 {
		url, stop, err := startOTLPSink()
		if err != nil {
			return nil, err
		}
		stopSink = stop
		opts.Env = []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + url, "OTEL_TRACES_SAMPLER=parentbased_traceidratio",
			"OTEL_TRACES_SAMPLER_ARG=" + strconv.FormatFloat(g.TraceRatio, 'f', -1, 64)}
	}
	gw, err := env.StartGateway(ctx, opts)
	if err != nil {
		stopSink()
		return nil, err
	}
	stop := func() { env.Procs.Stop(gw.Proc); stopSink() }
	if g.Model != "" && env.Upstream.Kind != "mockllm" {
		stop()
		return nil, fmt.Errorf("variant %s needs mockllm as the upstream (it speaks the translated providers' formats), not %s", g.Name(), env.Upstream.Kind)
	}
	t, err := gw.SetupChat(ctx, env.Upstream.URL)
	if err != nil {
		stop()
		return nil, fmt.Errorf("configure gateway: %w", err)
	}
	if g.Model != "" {
		t.Chat.Body = bytes.Replace(t.Chat.Body, []byte(`"model":"gpt-4o-mini"`), []byte(`"model":"`+g.Model+`"`), 1)
		t.Stream.Body = bytes.Replace(t.Stream.Body, []byte(`"model":"gpt-4o-mini"`), []byte(`"model":"`+g.Model+`"`), 1)
	}
	return &Instance{
		BaseURL:  gw.URL,
		Procs:    []*proc.Process{env.Upstream.Process, gw.Proc},
		Requests: t,
		Stop:     stop,
		Store:    gw.StoreStats,
	}, nil
}

// startOTLPSink serves OTLP/HTTP on a free loopback port, reading and
// dropping every export; it returns the base URL and its stop.
func startOTLPSink() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// AdminKey is the operator key the bench's gateways run with.
const AdminKey = "bench-operator-key-0123456789"

// GatewayOptions configure [Env.StartGateway].
type GatewayOptions struct {
	// Bin is the gateway binary; "" means env.GatewayBin.
	Bin string
	// Durability is "batch" or "sync"; "" means batch.
	Durability string
	// DataDir is used as is when set (a seeded dir); else a fresh one is
	// made under env.TmpDir.
	DataDir string
	// Env is added to the process environment.
	Env []string
	// ReadyTimeout bounds the wait for /readyz. Default 15 s.
	ReadyTimeout time.Duration
	// Role names the process; default "gateway".
	Role string
}

// GatewayProc is a started gateway.
type GatewayProc struct {
	Proc    *proc.Process
	URL     string
	DataDir string
	// Ready is how long the process took from exec to /readyz answering 200.
	Ready time.Duration
	api   *apiClient
}

// StartGateway starts a gateway process and waits for /readyz.
func (env *Env) StartGateway(ctx context.Context, o GatewayOptions) (*GatewayProc, error) {
	if o.Bin == "" {
		o.Bin = env.GatewayBin
	}
	if o.Bin == "" {
		return nil, errors.New("no gateway binary (build it with make build)")
	}
	if o.Durability == "" {
		o.Durability = "batch"
	}
	if o.Role == "" {
		o.Role = "gateway"
	}
	if o.DataDir == "" {
		base := env.TmpDir
		if base == "" {
			base = os.TempDir()
		}
		d, err := os.MkdirTemp(base, "gateway-data-")
		if err != nil {
			return nil, err
		}
		o.DataDir = d
	}
	addr, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	spec := proc.Spec{
		Role: o.Role, Path: o.Bin, Args: []string{"serve"}, Addr: addr, ReadyPath: "/readyz",
		ReadyTimeout: o.ReadyTimeout, ReadyEvery: 5 * time.Millisecond,
		Env: append([]string{
			"ASSISTIV_LISTEN=" + addr,
			"ASSISTIV_DATA_DIR=" + o.DataDir,
			"ASSISTIV_ADMIN_KEY=" + AdminKey,
			"ASSISTIV_ALLOW_PRIVATE_EGRESS=true",
			"ASSISTIV_BILLING_DURABILITY=" + o.Durability,
			"ASSISTIV_LOG_LEVEL=warn",
		}, o.Env...),
	}
	start := time.Now()
	p, err := env.StartProcess(ctx, spec)
	if err != nil {
		return nil, err
	}
	url := "http://" + addr
	return &GatewayProc{Proc: p, URL: url, DataDir: o.DataDir, Ready: time.Since(start), api: newAPIClient(url)}, nil
}

// StoreStats reads the money store's group-commit counters from the
// gateway's /metrics (with the operator key).
func (g *GatewayProc) StoreStats(ctx context.Context) (report.StoreStats, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", g.URL+"/metrics", nil)
	if err != nil {
		return report.StoreStats{}, err
	}
	req.Header.Set("Authorization", "Bearer "+AdminKey)
	resp, err := g.api.hc.Do(req)
	if err != nil {
		return report.StoreStats{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return report.StoreStats{}, fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	return parseStoreStats(resp.Body)
}

// parseStoreStats reads the money store's counters from a Prometheus text
// exposition (expfmt's parser, as Prometheus reads it).
func parseStoreStats(r io.Reader) (report.StoreStats, error) {
	var st report.StoreStats
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return st, err
	}
	for name, dst := range map[string]*uint64{
		"assistiv_store_batches_total":       &st.Batches,
		"assistiv_store_fsyncs_total":        &st.Fsyncs,
		"assistiv_store_synced_writes_total": &st.SyncedWrites,
	} {
		f := families[name]
		if f == nil || len(f.GetMetric()) != 1 || f.GetMetric()[0].GetCounter() == nil {
			return st, fmt.Errorf("the money store's counter %s is not in /metrics", name)
		}
		*dst = uint64(f.GetMetric()[0].GetCounter().GetValue())
	}
	return st, nil
}

// SetupChat creates a platform whose openai provider points at upstreamURL,
// funds its wallet, creates an end-user with a large budget and returns
// chat templates that carry the end-user's key.
func (g *GatewayProc) SetupChat(ctx context.Context, upstreamURL string) (Templates, error) {
	pid, pkey, err := g.CreatePlatform(ctx, "bench", upstreamURL)
	if err != nil {
		return Templates{}, err
	}
	var eu struct {
		ID     string `json:"id"`
		APIKey struct {
			RawKey string `json:"raw_key"`
		} `json:"api_key"`
	}
	if err := g.api.do(ctx, "POST", "/v1/platforms/"+pid+"/end-users", pkey, map[string]any{"external_id": "bench-user"}, &eu); err != nil {
		return Templates{}, err
	}
	if err := g.api.do(ctx, "POST", "/v1/platforms/"+pid+"/end-users/"+eu.ID+"/budget", pkey,
		map[string]any{"amount_usd": 1_000_000, "period": "monthly"}, nil); err != nil {
		return Templates{}, err
	}
	t := DefaultTemplates(g.URL)
	t.Chat = t.Chat.WithHeader("Authorization", "Bearer "+eu.APIKey.RawKey)
	t.Stream = t.Stream.WithHeader("Authorization", "Bearer "+eu.APIKey.RawKey)
	return t, nil
}

// CreatePlatform creates a platform with its openai and anthropic providers at upstreamURL
// and a wallet of $100M, and returns its id and platform key.
func (g *GatewayProc) CreatePlatform(ctx context.Context, name, upstreamURL string) (id, key string, err error) {
	var pl struct {
		Platform struct {
			ID string `json:"id"`
		} `json:"platform"`
		APIKey struct {
			RawKey string `json:"raw_key"`
		} `json:"api_key"`
	}
	if err := g.api.do(ctx, "POST", "/admin/v1/platforms", AdminKey, map[string]any{"name": name}, &pl); err != nil {
		return "", "", err
	}
	id = pl.Platform.ID
	for _, provider := range []string{"openai", "anthropic"} {
		if err := g.api.do(ctx, "PUT", "/admin/v1/platforms/"+id+"/llm-providers/"+provider, AdminKey,
			map[string]any{"api_key": "bench-upstream-key", "base_url": upstreamURL, "enabled": true}, nil); err != nil {
			return "", "", err
		}
	}
	if err := g.api.do(ctx, "POST", "/admin/v1/platforms/"+id+"/wallet/topup", AdminKey,
		map[string]any{"amount_usd": 100_000_000}, nil, "Idempotency-Key", "bench-funding"); err != nil {
		return "", "", err
	}
	return id, pl.APIKey.RawKey, nil
}

// Do calls the gateway's API with key and decodes a 2xx JSON answer into
// out (nil: discard).
func (g *GatewayProc) Do(ctx context.Context, method, path, key string, body, out any) error {
	return g.api.do(ctx, method, path, key, body, out)
}

// apiClient calls the gateway's REST API for setup (not for measuring).
type apiClient struct {
	base string
	hc   *http.Client
}

func newAPIClient(base string) *apiClient {
	return &apiClient{base: base, hc: &http.Client{Timeout: 30 * time.Second}}
}

func (a *apiClient) do(ctx context.Context, method, path, key string, body, out any, headers ...string) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

// tmpPath returns a path under env.TmpDir (or the system temp dir).
func (env *Env) tmpPath(name string) string {
	base := env.TmpDir
	if base == "" {
		base = os.TempDir()
	}
	return filepath.Join(base, name)
}
