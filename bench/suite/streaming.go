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
	// Concurrent is the target number of open streams. Default 1000.
	Concurrent int
	// Chunks per stream, default 200; ChunkInterval between them, default
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
	if conc == 0 {
		conc = 1000
	}
	if chunks == 0 {
		chunks = 200
	}
	if interval == 0 {
		interval = 50 * time.Millisecond
	}
	streamDur := time.Duration(chunks) * interval
	rate := float64(conc) / streamDur.Seconds()
	// Arrivals run for the ramp (one stream duration) plus the steady part.
	dur := streamDur + pick(env, 2*time.Second, 16*time.Second)

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
	if env.Upstream.Kind != "benchupstream" {
		s.Description += fmt.Sprintf(" The upstream is %s, which may ignore the requested stream shape; "+
			"see events/stream.", env.Upstream.Kind)
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
