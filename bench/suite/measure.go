package suite

import (
	"context"
	"errors"
	"time"

	"github.com/assistiv/gateway/bench/loadgen"
	"github.com/assistiv/gateway/bench/proc"
	"github.com/assistiv/gateway/bench/report"
)

// Load is one measurement's load shape.
type Load struct {
	// Kind is report.KindSaturation (closed loop over Conns connections),
	// report.KindRate or report.KindStream (open loop at Rate with at most
	// Conns in flight).
	Kind  string
	Conns int
	Rate  float64
	// Duration is the measured time; Warmup runs the same load first,
	// unrecorded.
	Duration, Warmup time.Duration
	// Request is the template; Validate judges responses (nil: 200).
	Request  loadgen.Request
	Validate loadgen.Validator
	// Timeout bounds one request (default 30 s).
	Timeout time.Duration
}

// Sustained-rate rule: an open-loop point keeps up when nothing was dropped,
// at least 95% of the target rate completed successfully and at most 0.1%
// of requests failed.
const (
	sustainedFraction = 0.95
	maxErrorFraction  = 0.001
)

// Measure runs l against inst and returns the point, CPU time per request
// of inst's processes and of the load generator (this process) included.
func (env *Env) Measure(ctx context.Context, inst *Instance, l Load) (report.Point, error) {
	cfg := loadgen.Config{
		Request: l.Request, Validate: l.Validate, Timeout: l.Timeout,
		Stream: l.Kind == report.KindStream,
	}
	run := func(d time.Duration) (*loadgen.Result, error) {
		c := cfg
		c.Duration = d
		if l.Kind == report.KindSaturation {
			return loadgen.Closed(ctx, loadgen.ClosedConfig{Config: c, Conns: l.Conns})
		}
		return loadgen.Open(ctx, loadgen.OpenConfig{Config: c, Rate: l.Rate, MaxInFlight: l.Conns, Drain: 5 * time.Second})
	}
	if l.Warmup > 0 {
		if _, err := run(l.Warmup); err != nil {
			return report.Point{}, err
		}
	}
	procs := append([]*proc.Process(nil), inst.Procs...)
	var storeBefore report.StoreStats
	storeErr := errors.New("no store")
	if inst.Store != nil {
		storeBefore, storeErr = inst.Store(ctx)
	}
	before := cpuTimes(procs)
	res, err := run(l.Duration)
	if err != nil {
		return report.Point{}, err
	}
	after := cpuTimes(procs)
	var store *report.StoreStats
	if storeErr == nil {
		if st, err := inst.Store(ctx); err == nil && st.Fsyncs >= storeBefore.Fsyncs {
			store = &report.StoreStats{Batches: st.Batches - storeBefore.Batches, Fsyncs: st.Fsyncs - storeBefore.Fsyncs,
				SyncedWrites: st.SyncedWrites - storeBefore.SyncedWrites}
		}
	}

	p := report.Point{
		Variant: inst.Variant, Kind: l.Kind, Conns: l.Conns, Rate: l.Rate,
		DurationSec: res.Elapsed.Seconds(),
		Sent:        res.Sent, OK: res.OK, Failed: res.Failed, Dropped: res.Dropped, Late: res.Late,
		Throughput: res.Throughput(),
		Latency:    report.DistFrom(res.Latency),
		Service:    report.DistFrom(res.Service),
		TTFT:       report.DistFrom(res.TTFT),
		Gap:        report.DistFrom(res.Gap),
		Events:     res.Events,
		Store:      store,
	}
	if len(res.Errors) > 0 {
		p.Errors = res.Errors
	}
	if l.Kind != report.KindSaturation {
		p.Lag = report.DistFrom(res.Lag)
	}
	p.Sustained = res.OK > 0 && float64(res.ErrorCount()) <= maxErrorFraction*float64(res.Sent)
	if l.Kind == report.KindRate {
		p.Sustained = p.Sustained && res.Dropped == 0 && res.Throughput() >= sustainedFraction*l.Rate
	}
	for i, name := range cpuNames(procs) {
		d := after[i] - before[i]
		c := report.ProcCPU{Process: name, Seconds: d.Seconds()}
		if res.OK > 0 {
			c.MicrosPerReq = float64(d.Microseconds()) / float64(res.OK)
		}
		p.CPU = append(p.CPU, c)
	}
	if l.Kind == report.KindStream {
		env.logf("  %-10s %-10s rate=%-6g ok=%-6d ttft p50=%.0f p99=%.0f gap p50=%.0f p99=%.0f events=%d errors=%d dropped=%d",
			p.Variant, p.Kind, p.Rate, p.OK, dist(p.TTFT).P50, dist(p.TTFT).P99, dist(p.Gap).P50, dist(p.Gap).P99,
			p.Events, res.ErrorCount(), res.Dropped)
	} else {
		env.logf("  %-10s %-10s conns=%-4d rate=%-6g ok=%-7d req/s=%-7.0f p50=%-6.0f p99=%-6.0f p99.9=%-6.0f errors=%d dropped=%d",
			p.Variant, p.Kind, p.Conns, p.Rate, p.OK, p.Throughput, dist(p.Latency).P50, dist(p.Latency).P99, dist(p.Latency).P999,
			res.ErrorCount(), res.Dropped)
	}
	return p, ctx.Err()
}

func dist(d *report.Dist) *report.Dist {
	if d == nil {
		return &report.Dist{}
	}
	return d
}

// cpuTimes returns the CPU time of each process, then of this process (the
// load generator). An unreadable process counts as zero.
func cpuTimes(procs []*proc.Process) []time.Duration {
	out := make([]time.Duration, 0, len(procs)+1)
	for _, p := range procs {
		d, _ := proc.CPUTime(p.PID)
		out = append(out, d)
	}
	d, _ := proc.CPUTime(0)
	return append(out, d)
}

func cpuNames(procs []*proc.Process) []string {
	out := make([]string, 0, len(procs)+1)
	for _, p := range procs {
		out = append(out, p.Role)
	}
	return append(out, "loadgen")
}
