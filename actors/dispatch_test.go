package actors

import (
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/assistiv/gateway/internal/pb"
)

// poolSystem returns an actor system and a worker pool of n workers, both
// stopped when t ends, and checks that no goroutine outlives them.
func poolSystem(t *testing.T, n int) (*actor.ActorSystem, *workerPool) {
	t.Helper()
	before := runtime.NumGoroutine()
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	p := newWorkerPool(n, mailboxThroughput)
	t.Cleanup(func() {
		sys.Shutdown()
		if !p.stop(10 * time.Second) {
			t.Error("the pool's workers did not end")
		}
		// Goroutines end asynchronously (a turn's own goroutine returns
		// after its last message): wait for them, bounded.
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := runtime.NumGoroutine(); got > before {
			t.Errorf("%d goroutines after stop, %d before", got, before)
		}
	})
	return sys, p
}

// echo answers every *pb.Ack with an Ack.
func echo(c actor.Context) {
	if _, ok := c.Message().(*pb.Ack); ok {
		c.Respond(&pb.Ack{})
	}
}

// answers reports whether pid answers an Ack within a generous bound (a
// failure means it never would: no timing is asserted).
func answers(sys *actor.ActorSystem, pid *actor.PID) bool {
	_, err := sys.Root.RequestFuture(pid, &pb.Ack{}, 10*time.Second).Result()
	return err == nil
}

// TestWorkerPoolBusyActorStarvesNoOther: an actor whose mailbox never
// empties (it sends itself a message per message) keeps its turn, and so
// a worker, for as long as it runs; other actors are still served, by the
// other worker or by goroutines of their own.
func TestWorkerPoolBusyActorStarvesNoOther(t *testing.T) {
	for _, workers := range []int{1, 2} {
		sys, p := poolSystem(t, workers)
		var stop atomic.Bool
		var spins atomic.Int64
		busy, err := sys.Root.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
			if _, ok := c.Message().(*pb.Ack); ok && !stop.Load() {
				spins.Add(1)
				c.Send(c.Self(), &pb.Ack{})
			}
		}, actor.WithDispatcher(p)), "busy")
		if err != nil {
			t.Fatal(err)
		}
		sys.Root.Send(busy, &pb.Ack{})
		for spins.Load() < 1000 {
			runtime.Gosched()
		}
		at := spins.Load()
		for i := range 20 {
			other := sys.Root.Spawn(actor.PropsFromFunc(echo, actor.WithDispatcher(p)))
			if !answers(sys, other) {
				t.Fatalf("workers=%d: actor %d did not answer while another actor was busy", workers, i)
			}
		}
		// ... and the busy actor was not stopped by them either.
		deadline := time.Now().Add(10 * time.Second)
		for spins.Load() <= at+1000 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if n := spins.Load(); n <= at+1000 {
			t.Errorf("workers=%d: the busy actor stalled at %d messages", workers, n)
		}
		stop.Store(true)
		if err := sys.Root.PoisonFuture(busy).Wait(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWorkerPoolBlockedActors: actors blocked inside Receive (as in a
// lease refill) hold every worker and more; another actor still answers,
// and once they are released the pool stops cleanly.
func TestWorkerPoolBlockedActors(t *testing.T) {
	const workers, blocked = 2, 5
	sys, p := poolSystem(t, workers)
	release := make(chan struct{})
	var entered sync.WaitGroup
	entered.Add(blocked)
	var pids []*actor.PID
	for range blocked {
		pid := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
			if _, ok := c.Message().(*pb.Ack); ok {
				entered.Done()
				<-release
				c.Respond(&pb.Ack{})
			}
		}, actor.WithDispatcher(p)))
		pids = append(pids, pid)
	}
	futures := make([]*actor.Future, len(pids))
	for i, pid := range pids {
		futures[i] = sys.Root.RequestFuture(pid, &pb.Ack{}, 10*time.Second)
	}
	entered.Wait() // all blocked at once: more than there are workers
	other := sys.Root.Spawn(actor.PropsFromFunc(echo, actor.WithDispatcher(p)))
	if !answers(sys, other) {
		t.Fatal("an actor did not answer while others were blocked")
	}
	if p.spawned.Load() == 0 {
		t.Error("no turn ran on a goroutine of its own, yet every worker was blocked")
	}
	close(release)
	for i, f := range futures {
		if _, err := f.Result(); err != nil {
			t.Errorf("blocked actor %d: %v", i, err)
		}
	}
}

// TestWorkerPoolStop: stop waits for the workers, may be called twice, and
// a turn scheduled after it still runs.
func TestWorkerPoolStop(t *testing.T) {
	p := newWorkerPool(4, mailboxThroughput)
	var ran sync.WaitGroup
	ran.Add(100)
	for range 100 {
		p.Schedule(ran.Done)
	}
	ran.Wait()
	if !p.stop(10*time.Second) || !p.stop(time.Millisecond) {
		t.Error("stop reported workers still running, none was")
	}
	done := make(chan struct{})
	p.Schedule(func() { close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a turn scheduled after stop never ran")
	}
}

// TestLocalWithoutWorkers: MailboxWorkers 0 keeps protoactor's dispatcher.
func TestLocalWithoutWorkers(t *testing.T) {
	env := NewEnv(nil, nil, slog.New(slog.DiscardHandler))
	env.MailboxWorkers = 0
	d := NewLocal(env)
	if d.pool != nil {
		t.Error("NewLocal started a worker pool with MailboxWorkers 0")
	}
	d.system.Shutdown()
}

// TestWorkerPoolStopWithBlockedTurn: stop does not wait past its bound for
// a turn blocked in an actor; that worker ends when the turn does.
func TestWorkerPoolStopWithBlockedTurn(t *testing.T) {
	before := runtime.NumGoroutine()
	p := newWorkerPool(2, mailboxThroughput)
	release, entered := make(chan struct{}), make(chan struct{})
	p.turns <- func() { close(entered); <-release } // on a worker, surely
	<-entered
	if p.stop(50 * time.Millisecond) {
		t.Error("stop reported every worker ended while one was blocked in a turn")
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after the blocked turn ended, %d before", n, before)
	}
}
