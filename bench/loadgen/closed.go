package loadgen

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ClosedConfig configures a closed-loop run.
type ClosedConfig struct {
	Config
	// Conns is the number of connections, each sending its next request as
	// soon as the previous one completes. In [1, 20000].
	Conns int
}

// Closed runs a closed-loop load over cfg.Conns connections until
// cfg.Duration has passed (or cfg.MaxRequests were sent, or ctx is done) and
// returns when every started request has finished. Latency is measured from
// each request's actual send. Closed refuses non-loopback targets with an
// error wrapping [ErrNotLoopback].
func Closed(ctx context.Context, cfg ClosedConfig) (*Result, error) {
	t, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if cfg.Conns < 1 || cfg.Conns > 20000 {
		return nil, fmt.Errorf("loadgen: Conns %d out of range [1, 20000]", cfg.Conns)
	}
	hc := newClient(t, cfg.Conns, &cfg.Config)
	defer hc.CloseIdleConnections()
	rec := newRecorder(cfg.Conns, cfg.Stream)

	start := time.Now()
	end := start.Add(cfg.Duration)
	var sent atomic.Int64
	var wg sync.WaitGroup
	for i := range cfg.Conns {
		wg.Go(func() {
			w := newWorker(hc, &cfg.Config, rec.shard(i))
			for ctx.Err() == nil {
				now := time.Now()
				if now.After(end) {
					return
				}
				if n := sent.Add(1); cfg.MaxRequests > 0 && n > cfg.MaxRequests {
					sent.Add(-1)
					return
				}
				var o outcome
				w.do(now, &o)
			}
		})
	}
	wg.Wait()
	return rec.result(start, sent.Load(), 0), nil
}
