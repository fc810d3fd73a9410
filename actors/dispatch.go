package actors

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// workerPool is the protoactor [actor.Dispatcher] of the directory's
// actors. Protoactor schedules a turn whenever an idle mailbox receives a
// message; its default dispatcher runs each turn on a new goroutine. A new
// goroutine starts on a small stack that an actor's Receive soon outgrows,
// and growing it (runtime.newstack, copystack) was ~40 % of the CPU of an
// in-process ask in BenchmarkLocalAsk's profile, with the goroutine's
// creation and exit on top. The pool runs turns on a few long-lived
// goroutines instead, parked while idle, whose stacks stay grown.
//
// A turn goes to a parked worker, or, when none is parked (all run turns,
// or some are blocked inside an actor: a lease refill, an activation
// waiting for the store), to a new goroutine, as protoactor's default
// dispatcher does. So a blocked or busy actor never delays another: each
// turn has a goroutine of its own, and Go's scheduler shares the CPUs
// between them. A turn drains its mailbox (protoactor's loop), yielding
// the CPU every Throughput messages.
//
// Safe for concurrent use. After stop, every turn runs on a new goroutine.
type workerPool struct {
	turns      chan func() // unbuffered: a send succeeds only to a parked worker
	throughput int
	workers    int
	wg         sync.WaitGroup
	stopOnce   sync.Once
	stopped    atomic.Bool  // workers exit after their current turn
	clean      bool         // every worker ended within stop's bound; set by stop
	spawned    atomic.Int64 // turns that found no parked worker
}

var _ actor.Dispatcher = (*workerPool)(nil)

// mailboxThroughput is how many messages a turn processes between yields
// of the CPU (runtime.Gosched); protoactor's default.
const mailboxThroughput = 300

// newWorkerPool starts workers parked goroutines.
func newWorkerPool(workers, throughput int) *workerPool {
	p := &workerPool{turns: make(chan func()), throughput: throughput, workers: workers}
	p.wg.Add(workers)
	for range workers {
		go p.work()
	}
	return p
}

func (p *workerPool) work() {
	defer p.wg.Done()
	for {
		fn := <-p.turns
		if fn == nil {
			return // stop
		}
		fn()
		if p.stopped.Load() {
			return
		}
	}
}

// Schedule implements [actor.Dispatcher]: it runs fn on a parked worker,
// or on a new goroutine when none is parked. It never blocks.
func (p *workerPool) Schedule(fn func()) {
	select {
	case p.turns <- fn:
	default:
		p.spawned.Add(1)
		go fn()
	}
}

// Throughput implements [actor.Dispatcher].
func (p *workerPool) Throughput() int { return p.throughput }

// stop ends the workers: parked ones at once, busy ones after their
// current turn. It waits for them at most timeout and reports whether all
// ended (false: some turn is blocked in an actor; its worker ends when the
// turn does). Turns scheduled later run on goroutines of their own. Later
// calls return the first call's result.
func (p *workerPool) stop(timeout time.Duration) bool {
	p.stopOnce.Do(func() {
		p.stopped.Store(true)
		done := make(chan struct{})
		go func() { p.wg.Wait(); close(done) }()
		t := time.NewTimer(timeout)
		defer t.Stop()
		for {
			select {
			case p.turns <- nil: // a parked worker takes it and ends
			case <-done:
				p.clean = true
				return
			case <-t.C:
				return
			}
		}
	})
	return p.clean
}
