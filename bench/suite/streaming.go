package suite

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/assistiv/gateway/bench/report"
)

// Streaming is scenario 2: server-sent event streams of Chunks chunks,
// ChunkInterval apart, started at a steady rate chosen so that about
// Concurrent streams are open at once. It records time to first token
// (from each stream's intended start) and the gaps between chunks, directly,
// through the bare proxy and (once added) through the gateway.
type Streaming struct {
	// Concurrent is the target number of open streams. Default 1000 (250
	// in quick mode).
	Concurrent int
	// Chunks per stream, default 200 (60 in quick mode); ChunkInterval between them, default
	// 50 ms (20 tokens/s, a realistic model speed). Sent to the upstream as X-Bench-Chunks and
	// X-Bench-Chunk-Interval (honoured by benchupstream).
	Chunks        int
	ChunkInterval time.Duration
}

var _ Scenario = (*Streaming)(nil)

// Name returns "streaming".
func (*Streaming) Name() string { return "streaming" }

// Run measures every variant of env in turn.
func (st *Streaming) Run(ctx context.Context, env *Env) (report.Scenario, error) {
	start := time.Now()
	conc, chunks, interval := st.Concurrent, st.Chunks, st.ChunkInterval
	// Quick mode keeps the shape (200 chunks, 50 ms apart: a realistic
	// model speed) but opens fewer streams for a shorter time.
	if conc == 0 {
		conc = pick(env, 250, 1000)
	}
	if chunks == 0 {
		chunks = pick(env, 60, 200)
	}
	if interval == 0 {
		interval = 50 * time.Millisecond
	}
	streamDur := time.Duration(chunks) * interval
	rate := float64(conc) / streamDur.Seconds()
	// Arrivals run for the ramp (one stream duration) plus the steady part.
	dur := streamDur + pick(env, 2*time.Second, 10*time.Second)

	s := report.Scenario{
		Name:  st.Name(),
		Title: "Streaming (SSE)",
		Description: fmt.Sprintf("Streams of %d chunks %v apart (%v each) start at %.0f/s for %v, "+
			"so about %d are open at once after the first %v. Open loop: TTFT is measured from each stream's "+
			"intended start and includes connecting for streams that open a new connection. "+
			"Gap is the time between consecutive chunks as the client sees them (the upstream sends them exactly "+
			"%v apart, so anything else is added on the way). CPU is per stream.",
			chunks, interval, streamDur, rate, dur, conc, streamDur, interval),
		Baselines: env.baselineNames(),
	}
	defer func() { s.DurationSec = sinceSec(start) }()
	if env.Upstream.Kind == "mockllm" && env.StartUpstream != nil {
		// The gateway does not forward X-Bench-*/X-Mock-* headers, so the
		// stream shape is set on a dedicated mockllm for every variant.
		tps := strconv.FormatFloat(float64(time.Second)/float64(interval), 'f', -1, 64)
		up, err := env.StartUpstream(ctx, []string{"-tokens", strconv.Itoa(chunks), "-tokens-per-second", tps})
		if err != nil {
			return s, fmt.Errorf("start the streaming upstream: %w", err)
		}
		saved := env.Upstream
		env.Upstream = up
		defer func() {
			env.Upstream = saved
			env.Procs.Stop(up.Process)
		}()
		s.Description += fmt.Sprintf(" The upstream is a dedicated mockllm started with -tokens %d -tokens-per-second %s.", chunks, tps)
	} else if env.Upstream.Kind != "benchupstream" {
		s.Description += fmt.Sprintf(" The upstream is %s, which may ignore the requested stream shape; "+
			"see events/stream.", env.Upstream.Kind)
	}
	if env.Quick {
		s.Description += " Quick mode: fewer and shorter streams than the full run."
	}

	insts, stop, err := env.StartAll(ctx)
	if err != nil {
		return s, err
	}
	defer stop()
	for _, inst := range insts {
		req := inst.Requests.Stream.
			WithHeader("X-Bench-Chunks", strconv.Itoa(chunks)).
			WithHeader("X-Bench-Chunk-Interval", interval.String())
		p, err := env.Measure(ctx, inst, Load{
			Kind: report.KindStream, Conns: conc + conc/5, Rate: rate,
			Duration: dur, Request: req, Validate: inst.Requests.Validate,
			Timeout: streamDur + 30*time.Second,
		})
		if err != nil {
			return s, fmt.Errorf("%s: %w", inst.Variant, err)
		}
		s.Points = append(s.Points, p)
	}
	return s, nil
}
