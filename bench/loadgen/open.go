package loadgen

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// OpenConfig configures an open-loop run.
type OpenConfig struct {
	Config
	// Rate is the intended request rate in requests per second, in
	// (0, 1e6]. Request i is due at Started + i/Rate.
	Rate float64
	// MaxInFlight bounds concurrent requests and so connections. When all
	// are busy, due requests wait (and their wait counts as latency).
	// Default 256, at most 20000.
	MaxInFlight int
	// LateAfter is how far behind its intended time a request may be sent
	// before it counts in [Result.Late]. Default 1 ms.
	LateAfter time.Duration
	// Drain is how long after Duration due-but-unsent requests may still be
	// sent; what is left then counts in [Result.Dropped]. Default 5 s.
	Drain time.Duration
}

// maxQueued bounds the pacer's queue of due requests waiting for a worker.
const maxQueued = 1 << 20

// Open runs an open-loop load: requests are due at a fixed rate for
// cfg.Duration, and each one's latency is measured from its due time. It
// returns when every started request has finished, at most
// Duration+Drain+Timeout after it was called, or earlier if ctx is done.
// Open refuses non-loopback targets with an error wrapping [ErrNotLoopback].
//
// One pacer goroutine releases requests at their due times to a pool of
// MaxInFlight workers. The pacer sleeps coarsely with a timer and the last
// stretch with a raw nanosleep that holds its P (see fineSleep), so callers
// that care about sub-millisecond send precision should run with
// GOMAXPROCS >= 2 even on one CPU; send lag is recorded either way.
func Open(ctx context.Context, cfg OpenConfig) (*Result, error) {
	t, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if !(cfg.Rate > 0 && cfg.Rate <= 1e6) {
		return nil, fmt.Errorf("loadgen: Rate %v out of range (0, 1e6]", cfg.Rate)
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 256
	}
	if cfg.MaxInFlight < 0 || cfg.MaxInFlight > 20000 {
		return nil, fmt.Errorf("loadgen: MaxInFlight %d out of range [1, 20000]", cfg.MaxInFlight)
	}
	if cfg.LateAfter == 0 {
		cfg.LateAfter = time.Millisecond
	}
	if cfg.Drain == 0 {
		cfg.Drain = 5 * time.Second
	}

	total := int64(cfg.Duration.Seconds() * cfg.Rate)
	if cfg.MaxRequests > 0 && cfg.MaxRequests < total {
		total = cfg.MaxRequests
	}
	nsPerReq := 1e9 / cfg.Rate
	hc := newClient(t, cfg.MaxInFlight, &cfg.Config)
	defer hc.CloseIdleConnections()
	rec := newRecorder(cfg.MaxInFlight, cfg.Stream)

	// Give the workers a moment to start before the first request is due,
	// so that their start-up is not counted as lag.
	start := time.Now().Add(5 * time.Millisecond)
	hardStop := start.Add(cfg.Duration + cfg.Drain)
	due := func(slot int64) time.Time { return start.Add(time.Duration(float64(slot) * nsPerReq)) }
	queue := make(chan int64, min(total, maxQueued))

	var sent atomic.Int64
	var wg sync.WaitGroup
	for i := range cfg.MaxInFlight {
		wg.Go(func() {
			w := newWorker(hc, &cfg.Config, rec.shard(i))
			for slot := range queue {
				d := due(slot)
				now := time.Now()
				if now.After(hardStop) || ctx.Err() != nil {
					continue // drain the queue; these count as dropped
				}
				sent.Add(1)
				lag := now.Sub(d)
				o := outcome{hasLag: true, lag: lag, late: lag > cfg.LateAfter}
				w.do(d, &o)
			}
		})
	}
	pace(ctx, total, due, hardStop, queue)
	close(queue)
	wg.Wait()
	s := sent.Load()
	return rec.result(start, s, total-s), nil
}

// pace releases slots 0..total-1 into queue at their due times, stopping
// early at hardStop or when ctx is done. A full queue blocks it; the delay
// shows up as lag, not as a lower rate.
func pace(ctx context.Context, total int64, due func(int64) time.Time, hardStop time.Time, queue chan<- int64) {
	const fine = 2 * time.Millisecond
	defer preparePacer()()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for slot := int64(0); slot < total; slot++ {
		d := due(slot)
		for {
			left := time.Until(d)
			if left <= 0 {
				break
			}
			if left > fine {
				if timer == nil {
					timer = time.NewTimer(left - fine)
				} else {
					timer.Reset(left - fine)
				}
				select {
				case <-timer.C:
				case <-ctx.Done():
					return
				}
				continue
			}
			fineSleep(left)
		}
		if ctx.Err() != nil || time.Now().After(hardStop) {
			return
		}
		select {
		case queue <- slot:
		case <-ctx.Done():
			return
		}
	}
}
