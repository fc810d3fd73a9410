package suite

import (
	"context"
	"fmt"
	"time"

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
	// Conns are the closed-loop connection counts. Default 64, 256.
	Conns []int
	// Rates are the open-loop request rates. Default 1000, 5000, 10000.
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
		conns = []int{64, 256}
	}
	rates := o.Rates
	if len(rates) == 0 {
		rates = []float64{1000, 5000, 10000}
	}
	inflight := o.MaxInFlight
	if inflight == 0 {
		inflight = 256
	}
	dur, warm := pick(env, 2*time.Second, 10*time.Second), pick(env, 500*time.Millisecond, 2*time.Second)

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
	return s, nil
}
