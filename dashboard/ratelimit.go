package dashboard

import (
	"sync"
	"time"

	"github.com/assistiv/gateway/internal/clock"
)

// limiter counts failed sign-ins per key (an account or an address) in a
// sliding window; a key with max failures inside the window is refused
// until the oldest falls out. It lives in memory: each node limits on its
// own, and a restart forgets (the window is minutes long). Safe for
// concurrent use.
type limiter struct {
	clock  clock.Clock
	window time.Duration
	max    int
	mu     sync.Mutex
	fails  map[string][]time.Time
}

func newLimiter(clk clock.Clock, window time.Duration, max int) *limiter {
	return &limiter{clock: clk, window: window, max: max, fails: map[string][]time.Time{}}
}

// prune drops failures older than the window; mu is held.
func (l *limiter) prune(key string, now time.Time) []time.Time {
	f := l.fails[key]
	i := 0
	for i < len(f) && now.Sub(f[i]) >= l.window {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(l.fails, key)
		return nil
	}
	l.fails[key] = f
	return f
}

// Blocked reports whether key is refused now and for how long.
func (l *limiter) Blocked(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	f := l.prune(key, now)
	if len(f) < l.max {
		return false, 0
	}
	return true, f[0].Add(l.window).Sub(now)
}

// Fail records one failure of key. Keys are bounded in number: when the
// map grows past 100000 keys every stale key is dropped first.
func (l *limiter) Fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	if len(l.fails) > 100000 {
		for k := range l.fails {
			l.prune(k, now)
		}
	}
	f := l.prune(key, now)
	if len(f) >= l.max {
		f = f[1:]
	}
	l.fails[key] = append(f, now)
}

// Reset forgets key's failures (after a successful sign-in).
func (l *limiter) Reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, key)
}
