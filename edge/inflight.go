package edge

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// inflightCalls tracks admitted inference calls until they are settled or
// released, so a shutdown can end the ones still running (cancel their
// upstream call) and wait for their settlements before the actors stop.
type inflightCalls struct {
	mu    sync.Mutex // guards calls
	calls map[*billing]context.CancelFunc
	wg    sync.WaitGroup

	shares sync.Map // shareKey → *atomic.Int64: calls in flight
}

// takeShare counts one more call of platform to provider, unless it
// already has limit in flight; release it with giveShare.
func (f *inflightCalls) takeShare(platform, provider string, limit int) bool {
	k := shareKey{platform, provider}
	v, ok := f.shares.Load(k)
	if !ok { // the first call of this pair: only then allocate its counter
		v, _ = f.shares.LoadOrStore(k, new(atomic.Int64))
	}
	n := v.(*atomic.Int64)
	if n.Add(1) > int64(limit) {
		n.Add(-1)
		return false
	}
	return true
}

// shareKey names a platform's calls to one provider.
type shareKey struct{ platform, provider string }

func (f *inflightCalls) giveShare(platform, provider string) {
	if v, ok := f.shares.Load(shareKey{platform, provider}); ok {
		v.(*atomic.Int64).Add(-1)
	}
}

// add registers b, whose upstream call cancel ends.
func (f *inflightCalls) add(b *billing, cancel context.CancelFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = make(map[*billing]context.CancelFunc)
	}
	f.calls[b] = cancel
	f.wg.Add(1)
}

// done unregisters b and gives back its platform's share of the
// provider; calling it again, or for a call never added, does nothing.
func (f *inflightCalls) done(b *billing) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.calls[b]; ok {
		delete(f.calls, b)
		f.giveShare(string(b.platform), b.model.Provider)
		f.wg.Done()
	}
}

// cancelAll cancels every registered call's upstream and returns how many.
func (f *inflightCalls) cancelAll() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, cancel := range f.calls {
		cancel()
	}
	return len(f.calls)
}

// wait waits until no call is registered, at most d; it reports whether
// they all finished.
func (f *inflightCalls) wait(d time.Duration) bool {
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}
