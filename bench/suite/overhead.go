package suite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/assistiv/gateway/bench/loadgen"
	"github.com/assistiv/gateway/bench/proc"
	"github.com/assistiv/gateway/bench/report"
)

// Overhead is scenario 1: non-streaming chat completions directly, through
// the bare proxy and (once added) through the gateway. It measures
// saturation throughput over fixed connection counts (closed loop) and
// latency at fixed request rates (open loop, from the intended send time).
// Points are interleaved by load (every variant at 64 connections, then
// every variant at 256, ...) so that drift on the machine hits all variants
// alike.
type Overhead struct {
	// Conns are the closed-loop connection counts. Default 1 (latency at
	// one connection, without queueing), 64, 256.
	Conns []int
	// Rates are the open-loop request rates. Default 500, 2000, 5000
	// (quick: 500, 2000).
	Rates []float64
	// MaxInFlight bounds concurrent requests in open-loop points.
	// Default 256.
	MaxInFlight int
}

var _ Scenario = (*Overhead)(nil)

// Name returns "overhead".
func (*Overhead) Name() string { return "overhead" }

// Run measures every load on every variant of env.
func (o *Overhead) Run(ctx context.Context, env *Env) (report.Scenario, error) {
	start := time.Now()
	conns := o.Conns
	if len(conns) == 0 {
		conns = []int{1, 64, 256}
	}
	rates := o.Rates
	if len(rates) == 0 {
		rates = pick(env, []float64{500, 2000}, []float64{500, 2000, 5000})
	}
	inflight := o.MaxInFlight
	if inflight == 0 {
		inflight = 256
	}
	dur, warm := pick(env, 1500*time.Millisecond, 6*time.Second), pick(env, 500*time.Millisecond, 1500*time.Millisecond)

	s := report.Scenario{
		Name:  o.Name(),
		Title: "Overhead, non-streaming",
		Description: fmt.Sprintf("POST %s with a small JSON body, answered by a fixed completion. "+
			"Saturation: closed loop, each connection sends back to back, %v per point after %v warm-up. "+
			"Fixed rates: open loop, up to %d requests in flight, latency from each request's intended send time; "+
			"a rate is *not sustained* if anything was dropped, less than 95%% completed or more than 0.1%% failed. "+
			"CPU µs/req is user+system time of each process divided by successful requests "+
			"(10 ms tick resolution). The bare proxy is the physical limit of one extra hop.",
			ChatPath, dur, warm, inflight),
		Baselines: env.baselineNames(),
	}
	defer func() { s.DurationSec = sinceSec(start) }()

	insts, stop, err := env.StartAll(ctx)
	if err != nil {
		return s, err
	}
	defer stop()

	measure := func(inst *Instance, l Load) error {
		l.Request, l.Validate = inst.Requests.Chat, inst.Requests.Validate
		l.Duration, l.Warmup, l.Timeout = dur, warm, 10*time.Second
		p, err := env.Measure(ctx, inst, l)
		if err != nil {
			return fmt.Errorf("%s %s: %w", inst.Variant, l.Kind, err)
		}
		s.Points = append(s.Points, p)
		return nil
	}
	for _, c := range conns {
		for _, inst := range insts {
			if err := measure(inst, Load{Kind: report.KindSaturation, Conns: c}); err != nil {
				return s, err
			}
		}
	}
	for _, r := range rates {
		for _, inst := range insts {
			if err := measure(inst, Load{Kind: report.KindRate, Conns: inflight, Rate: r}); err != nil {
				return s, err
			}
		}
	}
	if why := missedOverheadTargets(&s); why != "" || env.Profile {
		if why == "" {
			why = "profiling was asked for (BENCH_PROFILE=1)"
		}
		for _, inst := range insts {
			if IsGateway(inst.Variant) {
				o.profile(ctx, env, &s, inst, why)
				break // one profile: the modes share the request path
			}
		}
	}
	return s, nil
}

// profile samples the gateway's CPU with perf while it serves a 64
// connection closed loop, and adds the flat and cumulative tops to s.
func (o *Overhead) profile(ctx context.Context, env *Env, s *report.Scenario, inst *Instance, why string) {
	var gw *proc.Process
	for _, p := range inst.Procs {
		if IsGateway(p.Role) {
			gw = p
		}
	}
	if gw == nil {
		return
	}
	dur := pick(env, 3*time.Second, 8*time.Second)
	env.logf("  profiling %s (pid %d) for %v: %s", inst.Variant, gw.PID, dur, why)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	loadDone := make(chan struct{})
	go func() { // owned by profile; ends with lctx or after the load's duration
		defer close(loadDone)
		_, _ = loadgen.Closed(lctx, loadgen.ClosedConfig{Conns: 64, Config: loadgen.Config{
			Request: inst.Requests.Chat, Validate: inst.Requests.Validate, Duration: dur + time.Second, Timeout: 10 * time.Second,
		}})
	}()
	time.Sleep(300 * time.Millisecond) // let the load reach steady state
	data := env.tmpPath("perf-" + inst.Variant + ".data")
	if env.PerfData != "" {
		data = env.PerfData
	}
	out, err := proc.Profile(ctx, gw.PID, dur, data, env.PerfData != "")
	cancel()
	<-loadDone
	title := fmt.Sprintf("CPU profile of %s under a 64-connection closed loop (perf, %v)", inst.Variant, dur)
	if err != nil {
		s.Texts = append(s.Texts, report.Text{Title: title, Body: "perf failed: " + err.Error()})
		return
	}
	s.Texts = append(s.Texts, report.Text{Title: title, Note: "Captured because " + why + ". " +
		"perf samples the process at 499 Hz; \"self\" is time in the function itself (pprof -top's flat), " +
		"\"children\" includes its callees (pprof -top -cum).", Body: out})
}

// missedOverheadTargets returns why a gateway variant misses the overhead
// targets (throughput ≥ 0.7× and CPU ≤ 1.5× the bare proxy at saturation),
// or "" when none does or nothing can be compared.
func missedOverheadTargets(s *report.Scenario) string {
	report.Compare(s)
	var why []string
	for i := range s.Points {
		p := &s.Points[i]
		if !IsGateway(p.Variant) || p.Kind != report.KindSaturation || p.Conns < 64 {
			continue
		}
		c, ok := p.CompareTo("bareproxy")
		if !ok {
			continue
		}
		if d, ok := c.Get("throughput"); ok && d.Ratio < TargetSaturationRatio {
			why = append(why, fmt.Sprintf("%s at %d conns has %.2f× the bare proxy's throughput", p.Variant, p.Conns, d.Ratio))
		}
		if r := cpuRatio(p, s); r > TargetCPURatio {
			why = append(why, fmt.Sprintf("%s at %d conns uses %.2f× the bare proxy's CPU per request", p.Variant, p.Conns, r))
		}
	}
	return strings.Join(why, "; ")
}
