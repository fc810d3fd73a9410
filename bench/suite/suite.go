// Package suite is the benchmark's scenarios and the contract they share:
// a [Scenario] measures something and returns a [report.Scenario]; a
// [Variant] is one way of serving requests (the upstream directly, through
// the bare proxy, through the gateway) that scenarios compare; an [Env]
// holds what a run shares (quick mode, the process group, the CPU layout,
// the upstream).
//
// Flow of one run (cmd/benchrun is the only caller):
//
//	benchrun ──starts──▶ upstream (Env.Upstream)
//	    │
//	    └─ for each Scenario: Run(ctx, env)
//	           ├─ Variant.Start ──▶ Instance{BaseURL, Procs, Requests, Stop}
//	           ├─ Env.Measure(instance, Load) ──▶ loadgen ──▶ report.Point
//	           └─ report.Scenario{Points, Baselines}
//
// Scenarios run one at a time and measure one point at a time, so nothing
// here is concurrent except the load generator itself; Env's methods are
// nevertheless safe for concurrent use.
//
// suite imports loadgen, proc and report; it must not import the gateway's
// packages: the gateway is measured as a separate process, over HTTP.
package suite

import (
	"context"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/assistiv/gateway/bench/loadgen"
	"github.com/assistiv/gateway/bench/proc"
	"github.com/assistiv/gateway/bench/report"
)

// Scenario is one pluggable benchmark.
type Scenario interface {
	// Name is the scenario's short identifier, used on the command line
	// and in file names: lowercase, no spaces.
	Name() string
	// Run measures the scenario and returns its results. It honours
	// env.Quick (the quick run must be a small fraction of the full one),
	// stops every process it started before returning, and returns early
	// with ctx's error when ctx is done. A non-nil error with a partial
	// result is allowed: the runner reports both.
	Run(ctx context.Context, env *Env) (report.Scenario, error)
}

// Variant is one way of serving the benchmark's requests.
type Variant interface {
	// Name identifies the variant in reports: "direct", "bareproxy",
	// "gateway".
	Name() string
	// Start brings the variant up in front of env.Upstream and returns it
	// ready to serve. It starts processes with [Env.StartProcess] so they
	// are pinned, logged and stopped with the run. The caller must call
	// Instance.Stop.
	Start(ctx context.Context, env *Env) (*Instance, error)
}

// Instance is a running variant.
type Instance struct {
	// Variant is the variant's name.
	Variant string
	// BaseURL is where requests go, e.g. "http://127.0.0.1:34567".
	BaseURL string
	// Procs are the processes on the request path whose CPU time is
	// reported per request (the upstream included).
	Procs []*proc.Process
	// Requests are the request templates for this variant.
	Requests Templates
	// Stop stops the processes the variant started; it is idempotent.
	Stop func()
	// Store reads the gateway's money-store counters (its /metrics); nil
	// for a variant that is not a gateway.
	Store func(ctx context.Context) (report.StoreStats, error)
}

// Templates are the requests scenarios send. A variant that needs other
// paths or headers (the gateway's end-user Authorization, say) returns its
// own.
type Templates struct {
	// Chat is a non-streaming chat completion; Stream a streaming one.
	Chat, Stream loadgen.Request
	// Validate judges responses; nil means status 200.
	Validate loadgen.Validator
}

// ChatPath is the OpenAI-style path every variant serves today.
const ChatPath = "/v1/chat/completions"

// Request bodies of [DefaultTemplates].
const (
	ChatBody   = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}]}`
	StreamBody = `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Say hello."}]}`
)

// UpstreamKey is the provider key sent to the upstream: mockllm accepts any
// non-empty one, benchupstream ignores it. The gateway variant replaces it
// with the end-user's key (and sends its own provider key upstream).
const UpstreamKey = "bench-upstream-key"

// DefaultTemplates returns POST baseURL+[ChatPath] with JSON bodies for
// model gpt-4o-mini (which the gateway routes to its openai provider) and
// the upstream's key.
func DefaultTemplates(baseURL string) Templates {
	h := []loadgen.Header{{Key: "Content-Type", Value: "application/json"}, {Key: "Authorization", Value: "Bearer " + UpstreamKey}}
	return Templates{
		Chat:   loadgen.Request{Method: "POST", URL: baseURL + ChatPath, Header: h, Body: []byte(ChatBody)},
		Stream: loadgen.Request{Method: "POST", URL: baseURL + ChatPath, Header: h, Body: []byte(StreamBody)},
	}
}

// Upstream is the shared upstream process.
type Upstream struct {
	Addr, URL string
	Process   *proc.Process
	// Kind is "benchupstream" or "mockllm"; scenarios may shape requests
	// for it (only benchupstream honours the X-Bench-* headers).
	Kind string
}

// Env is what a run shares with its scenarios.
type Env struct {
	// Quick selects the short mode (BENCH_QUICK=1).
	Quick bool
	// Procs owns every child process.
	Procs *proc.Group
	// Layout is the CPU plan; StartProcess pins by role with it.
	Layout proc.Layout
	// Upstream is running before any scenario starts.
	Upstream Upstream
	// Variants are the variants to compare, baselines first.
	Variants []Variant
	// Log receives progress lines.
	Log *log.Logger
	// TmpDir holds the run's scratch files (data dirs, key files); the
	// runner removes it at the end.
	TmpDir string
	// GatewayBin is the gateway binary scenarios start on their own data
	// dirs; SeedBin is bench/cmd/benchseed, which writes such data dirs.
	GatewayBin, SeedBin string
	// TestBins are test binaries compiled before the run (go test -c), by
	// package path such as "./actors/"; "" when the package has none or
	// did not compile. Scenarios fall back to go test for packages not
	// listed.
	TestBins map[string]string
	// StartUpstream, if set, starts another upstream of the run's kind
	// with extra arguments (the streaming scenario uses it to shape
	// streams the gateway cannot ask for per request). The caller stops
	// it with Procs.Stop.
	StartUpstream func(ctx context.Context, extraArgs []string) (Upstream, error)

	// Profile asks the overhead scenario for a CPU profile of the gateway
	// even when it meets its targets (BENCH_PROFILE=1).
	Profile bool
	// PerfData, when set, is where the overhead profile's raw perf data
	// is kept (for perf report -i); empty: it is deleted.
	PerfData string

	mu     sync.Mutex // guards placed and seeds
	placed []report.Placement
	seeds  map[SeedSpec]*Seeded
}

// StartProcess starts spec through env.Procs, pinned to the layout's CPUs
// for its role unless spec.CPUs is already set ("upstream" gets the
// upstream's CPUs, any other role the proxy's), and records where it ran
// for the report.
func (env *Env) StartProcess(ctx context.Context, spec proc.Spec) (*proc.Process, error) {
	if spec.CPUs == "" {
		if spec.Role == "upstream" {
			spec.CPUs = env.Layout.Upstream
		} else {
			spec.CPUs = env.Layout.Proxy
		}
	}
	p, err := env.Procs.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	env.Place(report.Placement{Role: p.Role, Binary: p.Binary, CPUs: p.CPUs})
	return p, nil
}

// Place records a placement for the report, once per role and binary.
func (env *Env) Place(pl report.Placement) {
	env.mu.Lock()
	defer env.mu.Unlock()
	for _, q := range env.placed {
		if q.Role == pl.Role && q.Binary == pl.Binary {
			return
		}
	}
	env.placed = append(env.placed, pl)
}

// Placements returns what [Env.Place] recorded, in order.
func (env *Env) Placements() []report.Placement {
	env.mu.Lock()
	defer env.mu.Unlock()
	return append([]report.Placement(nil), env.placed...)
}

func (env *Env) logf(format string, args ...any) {
	if env.Log != nil {
		env.Log.Printf(format, args...)
	}
}

// StartAll starts every variant in env.Variants. On error it stops those
// already started. The returned stop function stops them all.
func (env *Env) StartAll(ctx context.Context) ([]*Instance, func(), error) {
	var insts []*Instance
	stop := func() {
		for i := len(insts) - 1; i >= 0; i-- {
			insts[i].Stop()
		}
	}
	for _, v := range env.Variants {
		inst, err := v.Start(ctx, env)
		if err != nil {
			stop()
			return nil, func() {}, fmt.Errorf("start variant %s: %w", v.Name(), err)
		}
		inst.Variant = v.Name()
		insts = append(insts, inst)
	}
	return insts, stop, nil
}

// baselineNames returns the names of env's variants, which scenarios use as
// baselines in order (direct first, then bareproxy).
func (env *Env) baselineNames() []string {
	var names []string
	for _, v := range env.Variants {
		if !IsGateway(v.Name()) {
			names = append(names, v.Name())
		}
	}
	return names
}

// pick returns quick if env.Quick, else full.
func pick[T any](env *Env, quick, full T) T {
	if env.Quick {
		return quick
	}
	return full
}

// sinceSec returns the seconds since t, rounded to milliseconds.
func sinceSec(t time.Time) float64 {
	return float64(time.Since(t).Milliseconds()) / 1000
}
