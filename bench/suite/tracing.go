package suite

import (
	"context"
	"fmt"
	"math"
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
// for several short rounds, in alternating order; the median of the
// rounds' traced/untraced ratios cancels the host's drift between rounds.
//
// That alone is not enough: of two identical untraced gateways, the one
// started second costs 2–3 % more CPU per request on these machines, round
// after round (an A/A run, 12 rounds: +2.5 % started second, −2.3 % with
// the start order swapped; the cause is outside the gateway's code). So the
// rounds run in two sessions with the start order swapped, fresh processes
// each, and the overhead is the geometric mean of the two sessions'
// medians: the start-order bias enters one with each sign and cancels.
type Tracing struct{}

var _ Scenario = Tracing{}

// Name returns "tracing".
func (Tracing) Name() string { return "tracing" }

// Run measures the rounds (the gateway binary is env.GatewayBin).
func (Tracing) Run(ctx context.Context, env *Env) (report.Scenario, error) {
	start := time.Now()
	rounds, dur := pick(env, 6, 32), pick(env, time.Second, 1500*time.Millisecond)
	const conns, ratio = 64, 0.01
	s := report.Scenario{
		Name:  "tracing",
		Title: "Tracing overhead (OpenTelemetry at 1 % sampling)",
		Description: fmt.Sprintf("Two gateways (billing_durability=batch) run side by side: tracing off, and tracing on "+
			"(OTEL_TRACES_SAMPLER=parentbased_traceidratio, ratio %g, OTLP/HTTP batches to a loopback sink that reads and drops them). "+
			"They take turns under a %d-connection closed loop of %s, %v per turn after a warm-up, for %d rounds in alternating order, "+
			"in two sessions of fresh processes with the start order swapped (the gateway started second costs 2–3 %% more on this host "+
			"whatever it runs). Overhead = geometric mean of the two sessions' medians of (traced gateway CPU µs/req ÷ untraced), minus 1. "+
			"Target: under %.0f %%.",
			ratio, conns, ChatPath, dur, rounds, TargetTracingCPU*100),
		Metrics: map[string]float64{"rounds": float64(rounds), "ratio": ratio},
	}
	defer func() { s.DurationSec = sinceSec(start) }()

	tb := report.Table{
		Title:   "Rounds, 64 connections",
		Columns: []string{"session", "round", "off µs/req", "on µs/req", "on ÷ off", "off req/s", "on req/s"},
	}
	var ratios, offs, ons, medians []float64
	for sess := 0; sess < 2 && ctx.Err() == nil; sess++ {
		r, err := tracingSession(ctx, env, sess == 1, (rounds+1)/2, dur, conns, ratio)
		if err != nil {
			return s, err
		}
		for i := range r.ratios {
			tb.Rows = append(tb.Rows, []string{r.order, fmt.Sprint(i + 1), fmt.Sprintf("%.1f", r.offs[i]), fmt.Sprintf("%.1f", r.ons[i]),
				fmt.Sprintf("%.3f", r.ratios[i]), fmtNum(r.offRPS[i]), fmtNum(r.onRPS[i])})
		}
		ratios, offs, ons = append(ratios, r.ratios...), append(offs, r.offs...), append(ons, r.ons...)
		m := median(r.ratios)
		medians = append(medians, m)
		s.Metrics["session_"+r.order] = m - 1
		env.logf("  tracing session %s: %+.1f%% (median of %d rounds)", r.order, (m-1)*100, len(r.ratios))
	}
	if len(medians) < 2 {
		return s, fmt.Errorf("tracing: %d of 2 sessions measured", len(medians))
	}
	over := math.Sqrt(medians[0]*medians[1]) - 1
	s.Metrics["overhead"] = over
	s.Metrics["off_cpu_us"], s.Metrics["on_cpu_us"] = median(offs), median(ons)
	s.Metrics["min_ratio"], s.Metrics["max_ratio"] = slices.Min(ratios), slices.Max(ratios)
	s.Tables = append(s.Tables, tb)
	env.logf("  tracing overhead at %g%%: %+.1f%% (geometric mean of the two sessions' medians; gateway %.1f vs %.1f µs/req; per-round ratios %.3f–%.3f)",
		ratio*100, over*100, median(ons), median(offs), slices.Min(ratios), slices.Max(ratios))
	return s, ctx.Err()
}

// tracingRounds are one session's per-round figures.
type tracingRounds struct {
	order                            string // "off-first" or "on-first": which gateway started first
	ratios, offs, ons, offRPS, onRPS []float64
}

// tracingSession starts the untraced and the traced gateway (the traced
// one first when onFirst), runs the rounds and stops both.
func tracingSession(ctx context.Context, env *Env, onFirst bool, rounds int, dur time.Duration, conns int, ratio float64) (tracingRounds, error) {
	res := tracingRounds{order: "off-first"}
	gws := []*Gateway{{Durability: "batch"}, {Durability: "batch", TraceRatio: ratio}}
	if onFirst {
		res.order = "on-first"
		gws[0], gws[1] = gws[1], gws[0]
	}
	var off, on *Instance
	for _, g := range gws {
		inst, err := g.Start(ctx, env)
		if err != nil {
			return res, err
		}
		inst.Variant = g.Name()
		defer inst.Stop()
		if g.TraceRatio > 0 {
			on = inst
		} else {
			off = inst
		}
	}
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
				return res, err
			}
			cpu[inst], rps[inst] = c, p.Throughput
		}
		if cpu[off] <= 0 || cpu[on] <= 0 {
			continue
		}
		res.ratios = append(res.ratios, cpu[on]/cpu[off])
		res.offs, res.ons = append(res.offs, cpu[off]), append(res.ons, cpu[on])
		res.offRPS, res.onRPS = append(res.offRPS, rps[off]), append(res.onRPS, rps[on])
	}
	if len(res.ratios) == 0 {
		return res, fmt.Errorf("tracing session %s: no round measured", res.order)
	}
	return res, nil
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
