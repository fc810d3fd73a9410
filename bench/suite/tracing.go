package suite

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/assistiv/gateway/bench/report"
)

// Tracing measures what OpenTelemetry tracing at a 1 % sampling ratio adds
// to the gateway's CPU per request. One saturation point per variant (as
// the overhead scenario has) cannot resolve a few per cent on a shared
// machine: its run-to-run spread is larger than the effect. So two
// gateways run side by side (tracing off; tracing on at 1 %, exporting
// OTLP/HTTP to a loopback sink) and take turns under the same closed loop
// for several short rounds, in alternating order; the overhead is the
// median of the rounds' traced/untraced ratios, which cancels the host's
// drift between rounds.
type Tracing struct{}

var _ Scenario = Tracing{}

// Name returns "tracing".
func (Tracing) Name() string { return "tracing" }

// Run measures the rounds (the gateway binary is env.GatewayBin).
func (Tracing) Run(ctx context.Context, env *Env) (report.Scenario, error) {
	start := time.Now()
	rounds, dur := pick(env, 6, 12), pick(env, time.Second, 1500*time.Millisecond)
	const conns, ratio = 64, 0.01
	s := report.Scenario{
		Name:  "tracing",
		Title: "Tracing overhead (OpenTelemetry at 1 % sampling)",
		Description: fmt.Sprintf("Two gateways (billing_durability=batch) run side by side: tracing off, and tracing on "+
			"(OTEL_TRACES_SAMPLER=parentbased_traceidratio, ratio %g, OTLP/HTTP batches to a loopback sink that reads and drops them). "+
			"They take turns under a %d-connection closed loop of %s, %v per turn after a warm-up, for %d rounds in alternating order. "+
			"Overhead = median over rounds of (traced gateway CPU µs/req ÷ untraced), minus 1. Target: under %.0f %%.",
			ratio, conns, ChatPath, dur, rounds, TargetTracingCPU*100),
		Metrics: map[string]float64{"rounds": float64(rounds), "ratio": ratio},
	}
	defer func() { s.DurationSec = sinceSec(start) }()

	start2 := func(g *Gateway) (*Instance, error) {
		inst, err := g.Start(ctx, env)
		if err == nil {
			inst.Variant = g.Name()
		}
		return inst, err
	}
	off, err := start2(&Gateway{Durability: "batch"})
	if err != nil {
		return s, err
	}
	defer off.Stop()
	on, err := start2(&Gateway{Durability: "batch", TraceRatio: ratio})
	if err != nil {
		return s, err
	}
	defer on.Stop()

	measure := func(inst *Instance, warm time.Duration) (float64, report.Point, error) {
		p, err := env.Measure(ctx, inst, Load{Kind: report.KindSaturation, Conns: conns, Duration: dur, Warmup: warm,
			Timeout: 10 * time.Second, Request: inst.Requests.Chat, Validate: inst.Requests.Validate})
		if err != nil {
			return 0, p, err
		}
		if p.OK == 0 || p.Failed > 0 {
			return 0, p, fmt.Errorf("%s: %d ok, %d failed", inst.Variant, p.OK, p.Failed)
		}
		return procMicros(&p, "gateway"), p, nil
	}
	tb := report.Table{
		Title:   "Rounds, 64 connections",
		Columns: []string{"round", "off µs/req", "on µs/req", "on ÷ off", "off req/s", "on req/s"},
	}
	var ratios, offs, ons []float64
	for r := 0; r < rounds && ctx.Err() == nil; r++ {
		warm := 200 * time.Millisecond
		if r == 0 {
			warm = time.Second
		}
		order := []*Instance{off, on}
		if r%2 == 1 {
			order = []*Instance{on, off}
		}
		cpu := map[*Instance]float64{}
		rps := map[*Instance]float64{}
		for _, inst := range order {
			c, p, err := measure(inst, warm)
			if err != nil {
				return s, err
			}
			cpu[inst], rps[inst] = c, p.Throughput
		}
		if cpu[off] <= 0 || cpu[on] <= 0 {
			continue
		}
		q := cpu[on] / cpu[off]
		ratios, offs, ons = append(ratios, q), append(offs, cpu[off]), append(ons, cpu[on])
		tb.Rows = append(tb.Rows, []string{fmt.Sprint(r + 1), fmt.Sprintf("%.1f", cpu[off]), fmt.Sprintf("%.1f", cpu[on]),
			fmt.Sprintf("%.3f", q), fmtNum(rps[off]), fmtNum(rps[on])})
	}
	if len(ratios) == 0 {
		return s, fmt.Errorf("no round measured")
	}
	med := median(ratios)
	s.Metrics["overhead"] = med - 1
	s.Metrics["off_cpu_us"], s.Metrics["on_cpu_us"] = median(offs), median(ons)
	s.Metrics["min_ratio"], s.Metrics["max_ratio"] = slices.Min(ratios), slices.Max(ratios)
	s.Tables = append(s.Tables, tb)
	env.logf("  tracing overhead at %g%%: %+.1f%% (median of %d rounds; gateway %.1f vs %.1f µs/req; per-round ratios %.3f–%.3f)",
		ratio*100, (med-1)*100, len(ratios), median(ons), median(offs), slices.Min(ratios), slices.Max(ratios))
	return s, ctx.Err()
}

// median returns the median of v (not empty).
func median(v []float64) float64 {
	w := slices.Clone(v)
	slices.Sort(w)
	n := len(w)
	if n%2 == 1 {
		return w[n/2]
	}
	return (w[n/2-1] + w[n/2]) / 2
}
