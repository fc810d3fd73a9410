package suite

import (
	"fmt"
	"strings"

	"github.com/assistiv/gateway/bench/report"
)

// Targets of the headline table (the numbers).
const (
	// TargetSaturationRatio: full-path saturation throughput at least this
	// fraction of the bare proxy's.
	TargetSaturationRatio = 0.7
	// TargetCPURatio: the gateway process's CPU per request at most this
	// multiple of the bare proxy process's.
	TargetCPURatio = 1.5
	// TargetCPURatioTranslated: the same for a translated provider
	// (variant gateway-anthropic).
	TargetCPURatioTranslated = 2.0
	// TargetHTTPDebitsPerSec: durable debits per second over HTTP.
	TargetHTTPDebitsPerSec = 50_000
	// TargetSpreadRatio: throughput with every end-user on one platform at
	// least this fraction of the throughput with them spread over many.
	TargetSpreadRatio = 0.9
	// TargetAddedP50Micros: added latency at one connection at most the
	// bare proxy's plus this, at p50.
	TargetAddedP50Micros = 100
	// TargetAddedP99Factor: added latency at one connection at most this
	// multiple of the bare proxy's, at p99.
	TargetAddedP99Factor = 2
	// TargetTTFTMicros: streaming adds at most this much more than the bare
	// proxy to TTFT p99.
	TargetTTFTMicros = 1000
	// TargetDebitsPerSec: durable debits per second.
	TargetDebitsPerSec = 100_000
	// TargetBytesPerActor: bytes per resident idle end-user actor.
	TargetBytesPerActor = 2048
	// TargetRecoverySec: restart to first served request, seconds.
	TargetRecoverySec = 10
	// TargetTracingCPU is the most tracing (on, 1 % sampled) may add to
	// the gateway's CPU per request (issue 18).
	TargetTracingCPU = 0.05
)

// cpuRatio returns the gateway process's CPU µs/request at p's load divided
// by the bare proxy process's at the same load, or 0 if either is missing.
func cpuRatio(p *report.Point, s *report.Scenario) float64 {
	gw := procMicros(p, "gateway")
	for i := range s.Points {
		q := &s.Points[i]
		if q.Variant == "bareproxy" && q.Key() == p.Key() {
			if bp := procMicros(q, "bareproxy"); bp > 0 && gw > 0 {
				return gw / bp
			}
		}
	}
	return 0
}

func procMicros(p *report.Point, role string) float64 {
	for _, c := range p.CPU {
		if c.Process == role {
			return c.MicrosPerReq
		}
	}
	return 0
}

func findPoint(s *report.Scenario, variant, kind string, conns int) *report.Point {
	for i := range s.Points {
		p := &s.Points[i]
		if p.Variant == variant && p.Kind == kind && (conns == 0 || p.Conns == conns) {
			return p
		}
	}
	return nil
}

func findScenario(r *report.Run, name string) *report.Scenario {
	for i := range r.Scenarios {
		if r.Scenarios[i].Name == name {
			return &r.Scenarios[i]
		}
	}
	return nil
}

func status(ok bool) string {
	if ok {
		return report.StatusPass
	}
	return report.StatusMiss
}

// Headline computes the targets table from a finished run. Rows whose
// scenario did not run (or lacked a baseline) say n/a.
func Headline(r *report.Run) []report.Target {
	for i := range r.Scenarios {
		report.Compare(&r.Scenarios[i])
	}
	var out []report.Target
	na := func(name, mode, why string) {
		out = append(out, report.Target{Name: name, Mode: mode, Measured: "–", Status: report.StatusNA, Detail: why})
	}
	modes := []string{"batch", "sync"}

	ov := findScenario(r, "overhead")
	for _, mode := range modes {
		v := "gateway-" + mode
		name := fmt.Sprintf("full-path saturation ≥ %.1f× bare proxy", TargetSaturationRatio)
		if ov == nil || findPoint(ov, v, report.KindSaturation, 0) == nil {
			na(name, mode, "overhead scenario or variant "+v+" not run")
		} else {
			var parts []string
			minR, ok := 0.0, true
			for _, c := range []int{64, 256} {
				p := findPoint(ov, v, report.KindSaturation, c)
				if p == nil {
					continue
				}
				cmp, found := p.CompareTo("bareproxy")
				if !found {
					continue
				}
				d, _ := cmp.Get("throughput")
				parts = append(parts, fmt.Sprintf("%.2f× at %d conns (%.0f vs %.0f req/s)", d.Ratio, c, d.This, d.Base))
				if minR == 0 || d.Ratio < minR {
					minR = d.Ratio
				}
				ok = ok && d.Ratio >= TargetSaturationRatio
			}
			if len(parts) == 0 {
				na(name, mode, "no bare proxy point to compare with")
			} else {
				out = append(out, report.Target{Name: name, Mode: mode, Measured: fmt.Sprintf("%.2f×", minR), Value: minR,
					Status: status(ok), Detail: "worst of: " + strings.Join(parts, "; ")})
			}
		}

		name = fmt.Sprintf("CPU per request ≤ %.1f× bare proxy", TargetCPURatio)
		if p := findPointOrNil(ov, v, 64); p == nil {
			na(name, mode, "no saturation point at 64 conns")
		} else if cr := cpuRatio(p, ov); cr == 0 {
			na(name, mode, "no CPU figures")
		} else {
			out = append(out, report.Target{Name: name, Mode: mode, Measured: fmt.Sprintf("%.2f×", cr), Value: cr, Status: status(cr <= TargetCPURatio),
				Detail: fmt.Sprintf("gateway process %.1f µs/req vs bareproxy process %.1f µs/req, saturation at 64 conns (upstream's CPU excluded)",
					procMicros(p, "gateway"), cpuOfBare(ov, p))})
		}

		name = fmt.Sprintf("added latency at 1 conn, p50 ≤ bare proxy's + %d µs", TargetAddedP50Micros)
		name99 := fmt.Sprintf("added latency at 1 conn, p99 ≤ %d× bare proxy's", TargetAddedP99Factor)
		g, b, d := findPointOrNil(ov, v, 1), findPointOrNil(ov, "bareproxy", 1), findPointOrNil(ov, "direct", 1)
		if g == nil || b == nil || d == nil || g.Latency == nil || b.Latency == nil || d.Latency == nil {
			na(name, mode, "no 1-connection points for gateway, bareproxy and direct")
			na(name99, mode, "no 1-connection points for gateway, bareproxy and direct")
		} else {
			ga, ba := g.Latency.P50-d.Latency.P50, b.Latency.P50-d.Latency.P50
			out = append(out, report.Target{Name: name, Mode: mode, Measured: fmt.Sprintf("+%.0f µs vs bare proxy", ga-ba), Value: ga - ba,
				Status: status(ga-ba <= TargetAddedP50Micros),
				Detail: fmt.Sprintf("added vs direct at p50: gateway %+.0f µs, bareproxy %+.0f µs (closed loop, 1 connection)", ga, ba)})
			ga, ba = g.Latency.P99-d.Latency.P99, b.Latency.P99-d.Latency.P99
			t := report.Target{Name: name99, Mode: mode, Detail: fmt.Sprintf("added vs direct at p99: gateway %+.0f µs, bareproxy %+.0f µs", ga, ba)}
			if ba <= 0 {
				// The bare proxy's p99 fell inside direct's noise: judge the
				// totals instead (gateway p99 ≤ 2× bare proxy p99).
				t.Value = g.Latency.P99 / b.Latency.P99
				t.Measured, t.Status = fmt.Sprintf("%.2f× (total p99)", t.Value), status(t.Value <= TargetAddedP99Factor)
				t.Detail += fmt.Sprintf("; the bare proxy added nothing measurable at p99 in this run, so this compares total p99: gateway %.0f µs vs bareproxy %.0f µs",
					g.Latency.P99, b.Latency.P99)
			} else {
				t.Value = ga / ba
				t.Measured, t.Status = fmt.Sprintf("%.2f×", t.Value), status(t.Value <= TargetAddedP99Factor)
			}
			out = append(out, t)
		}
	}

	name := fmt.Sprintf("CPU per request ≤ %.1f× bare proxy, translated provider", TargetCPURatioTranslated)
	if p := findPointOrNil(ov, "gateway-anthropic", 64); p == nil {
		na(name, "batch", "variant gateway-anthropic not run (it needs mockllm as the upstream)")
	} else if cr := cpuRatio(p, ov); cr == 0 {
		na(name, "batch", "no CPU figures")
	} else {
		detail := fmt.Sprintf("gateway process %.1f µs/req vs bareproxy process %.1f µs/req, saturation at 64 conns, OpenAI-format requests through the anthropic provider",
			procMicros(p, "gateway"), cpuOfBare(ov, p))
		if cmp, ok := p.CompareTo("bareproxy"); ok {
			if d, ok := cmp.Get("throughput"); ok {
				detail += fmt.Sprintf("; throughput %.2f× the bare proxy's (%.0f vs %.0f req/s)", d.Ratio, d.This, d.Base)
			}
		}
		out = append(out, report.Target{Name: name, Mode: "batch", Measured: fmt.Sprintf("%.2f×", cr), Value: cr,
			Status: status(cr <= TargetCPURatioTranslated), Detail: detail})
	}

	st := findScenario(r, "streaming")
	for _, mode := range modes {
		v := "gateway-" + mode
		name := fmt.Sprintf("streaming TTFT p99 ≤ bare proxy's + %d ms", TargetTTFTMicros/1000)
		var g, b *report.Point
		if st != nil {
			g, b = findPoint(st, v, report.KindStream, 0), findPoint(st, "bareproxy", report.KindStream, 0)
		}
		if g == nil || b == nil || g.TTFT == nil || b.TTFT == nil {
			na(name, mode, "streaming scenario, the variant or the bare proxy not measured")
			continue
		}
		diff := g.TTFT.P99 - b.TTFT.P99
		out = append(out, report.Target{Name: name, Mode: mode, Measured: fmt.Sprintf("%+.0f µs", diff), Value: diff,
			Status: status(diff <= TargetTTFTMicros && g.Failed == 0),
			Detail: fmt.Sprintf("TTFT p99 gateway %.0f µs vs bareproxy %.0f µs; gap p99 %.0f vs %.0f µs; failed streams %d",
				g.TTFT.P99, b.TTFT.P99, distOr(g.Gap).P99, distOr(b.Gap).P99, g.Failed)})
	}

	name = fmt.Sprintf("durable debits ≥ %d/s", TargetDebitsPerSec)
	lg := findScenario(r, "ledger")
	if lg == nil || len(lg.Metrics) == 0 {
		na(name, "", "ledger scenario not run")
	} else {
		v, how := lg.Metrics["go_debits_per_sec"], "BenchmarkDurableDebits (actors + WAL in-process), best caller count"
		if v == 0 {
			v, how = lg.Metrics["http_debits_per_sec"], "HTTP POST .../budget/debit to the gateway process, best of 1/64/1024 callers (BenchmarkDurableDebits not available)"
		} else if h := lg.Metrics["http_debits_per_sec"]; h > 0 {
			how += fmt.Sprintf("; over HTTP: %.0f/s", h)
		}
		out = append(out, report.Target{Name: name, Measured: fmt.Sprintf("%.0f/s", v), Value: v, Status: status(v >= TargetDebitsPerSec), Detail: how})
	}

	name = fmt.Sprintf("durable debits over HTTP ≥ %d/s", TargetHTTPDebitsPerSec)
	if lg == nil || lg.Metrics["http_debits_per_sec"] == 0 {
		na(name, "", "ledger scenario not run over HTTP")
	} else {
		v := lg.Metrics["http_debits_per_sec"]
		out = append(out, report.Target{Name: name, Mode: "batch", Measured: fmt.Sprintf("%.0f/s", v), Value: v, Status: status(v >= TargetHTTPDebitsPerSec),
			Detail: "POST .../budget/debit to the gateway process, best of 1/64/1024 callers"})
	}

	name = fmt.Sprintf("throughput independent of how end-users spread over platforms (≥ %.1f×)", TargetSpreadRatio)
	if sp := findScenario(r, "spread"); sp == nil || sp.Metrics["one_platform_rps"] == 0 || sp.Metrics["many_platforms_rps"] == 0 {
		na(name, "batch", "spread scenario not run")
	} else {
		one, many := sp.Metrics["one_platform_rps"], sp.Metrics["many_platforms_rps"]
		v := min(one, many) / max(one, many)
		out = append(out, report.Target{Name: name, Mode: "batch", Measured: fmt.Sprintf("%.2f×", v), Value: v, Status: status(v >= TargetSpreadRatio),
			Detail: fmt.Sprintf("%.0f end-users of one platform: %.0f req/s; the same number over %.0f platforms: %.0f req/s (64 conns, each request from the next end-user)",
				sp.Metrics["users"], one, sp.Metrics["platforms"], many)})
	}

	name = fmt.Sprintf("≤ %d KiB per resident idle end-user actor", TargetBytesPerActor/1024)
	if tn := findScenario(r, "tenants"); tn == nil || tn.Metrics["actors_activated"] == 0 {
		na(name, "", "tenant scenario not run")
	} else {
		// The live heap (what a GC found reachable, after the Zipf load)
		// is what resident actors hold; RSS and heap in use also count the
		// activation load's own memory (call logs, Pebble memtables,
		// connection buffers, garbage not yet collected): shown beside it.
		// A gateway without go_gc_heap_live_bytes is judged by RSS.
		// Judged by the in-process benchmark when it ran (forced GC: the
		// exact live heap), else by the process's live heap delta.
		v, how := tn.Metrics["bytes_per_end_user_inproc"], "BenchmarkResidentEndUserHeap: the whole gateway's live heap after a forced GC per end-user made resident by a chat call through the edge (key cached, actor resident)"
		if v == 0 {
			v, how = tn.Metrics["bytes_per_actor_live"], "live Go heap delta"
		}
		if v == 0 {
			v, how = tn.Metrics["bytes_per_actor_rss"], "RSS delta"
		}
		out = append(out, report.Target{Name: name, Mode: "batch", Measured: fmtBytes(v), Value: v, Status: status(v <= TargetBytesPerActor),
			Detail: fmt.Sprintf("%s; gateway process, %0.f end-users activated: live Go heap delta %s, RSS delta %s, Go heap in use delta %s per end-user; cold activation adds %.0f µs at p50, %.0f µs at p99",
				how, tn.Metrics["actors_activated"], fmtBytes(tn.Metrics["bytes_per_actor_live"]), fmtBytes(tn.Metrics["bytes_per_actor_rss"]), fmtBytes(tn.Metrics["bytes_per_actor_heap"]),
				tn.Metrics["cold_p50_us"]-tn.Metrics["warm_p50_us"], tn.Metrics["cold_p99_us"]-tn.Metrics["warm_p99_us"])})
	}

	name = fmt.Sprintf("tracing at 1 %% sampling adds < %.0f %% CPU per request", TargetTracingCPU*100)
	if tr := findScenario(r, "tracing"); tr == nil || tr.Metrics["off_cpu_us"] == 0 {
		na(name, "batch", "tracing scenario not run")
	} else {
		v := tr.Metrics["overhead"]
		out = append(out, report.Target{Name: name, Mode: "batch", Measured: fmt.Sprintf("%+.1f %%", v*100), Value: v, Status: status(v < TargetTracingCPU),
			Detail: fmt.Sprintf("%.0f alternating rounds at 64 conns in two sessions with the start order swapped (medians %+.1f %% traced gateway started second, %+.1f %% started first; the geometric mean cancels the second-started bias): gateway %.1f µs/req traced vs %.1f untraced (per-round ratios %.3f–%.3f)",
				tr.Metrics["rounds"], tr.Metrics["session_off-first"]*100, tr.Metrics["session_on-first"]*100,
				tr.Metrics["on_cpu_us"], tr.Metrics["off_cpu_us"], tr.Metrics["min_ratio"], tr.Metrics["max_ratio"])})
	}

	name = fmt.Sprintf("recovery < %d s", TargetRecoverySec)
	if rc := findScenario(r, "recovery"); rc == nil || len(rc.Metrics) == 0 {
		na(name, "", "recovery scenario not run")
	} else {
		c, k := rc.Metrics["clean_restart_sec"], rc.Metrics["crash_restart_sec"]
		worst := max(c, k)
		ok := c >= 0 && k >= 0 && worst < TargetRecoverySec
		out = append(out, report.Target{Name: name, Measured: fmt.Sprintf("%.2f s", worst), Value: worst, Status: status(ok),
			Detail: fmt.Sprintf("exec → /readyz 200 → first chat completion served; after a clean stop %.2f s, after SIGKILL %.2f s (negative: the first request failed)", c, k)})
	}

	name = "rate limit: max admitted / limit ≤ 1.0"
	if rl := findScenario(r, "ratelimit"); rl == nil || len(rl.Metrics) == 0 {
		na(name, "", "ratelimit scenario not run")
	} else {
		v := rl.Metrics["max_admitted_ratio"]
		out = append(out, report.Target{Name: name, Mode: "batch", Measured: fmt.Sprintf("%.2f", v), Value: v, Status: status(v <= 1.0 && v > 0),
			Detail: fmt.Sprintf("min admitted / limit %.2f; end-users over the limit %.0f; non-200/429 answers %.0f",
				rl.Metrics["min_admitted_ratio"], rl.Metrics["users_over_limit"], rl.Metrics["other_answers"])})
	}
	return out
}

func findPointOrNil(s *report.Scenario, variant string, conns int) *report.Point {
	if s == nil {
		return nil
	}
	return findPoint(s, variant, report.KindSaturation, conns)
}

func cpuOfBare(s *report.Scenario, p *report.Point) float64 {
	for i := range s.Points {
		q := &s.Points[i]
		if q.Variant == "bareproxy" && q.Key() == p.Key() {
			return procMicros(q, "bareproxy")
		}
	}
	return 0
}

func distOr(d *report.Dist) *report.Dist {
	if d == nil {
		return &report.Dist{}
	}
	return d
}
