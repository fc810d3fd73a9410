package cluster

import (
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	protocluster "github.com/asynkron/protoactor-go/cluster"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" || os.Getenv(raceChildEnv) != "" {
		// A child of TestTwoProcessClusterRoutesToOneOwner: protoactor
		// leaves goroutines behind by design; the process exits anyway.
		os.Exit(m.Run())
	}
	goleak.VerifyTestMain(m,
		// protoactor-go's throttles (gossip) start a ticker goroutine that
		// nothing stops: a leak inside the library, one per node started.
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/cluster.NewGossipActor.NewThrottleWithLogger.func2.1"),
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/cluster.(*Gossiper).StartGossiping.NewThrottle.func3.1"),
		// protoactor-go's remote does not always close the gRPC client
		// connection of an endpoint to a node that left before its own
		// Shutdown: the connection's goroutines outlive it.
		goleak.IgnoreAnyFunction("google.golang.org/grpc.(*addrConn).resetTransport"),
		// The same, from grpc 1.8x on, for a node that stopped and never
		// came back (TestFanOutSkipsAStoppedMemberWhileItIsStillListed).
		goleak.IgnoreAnyFunction("google.golang.org/grpc.(*addrConn).resetTransportAndUnlock"),
		goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
	)
}

// recorder is a topologySink that keeps every publication as a
// comma-separated list of member ids.
type recorder struct {
	mu   sync.Mutex
	sets []string
}

func (r *recorder) UpdateClusterTopology(ms protocluster.Members) {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.Id
	}
	r.mu.Lock()
	r.sets = append(r.sets, strings.Join(ids, ","))
	r.mu.Unlock()
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sets)
}

func (r *recorder) last() string {
	s := r.all()
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startNode starts a provider on 127.0.0.1 with a free port, publishing to
// a recorder; no protoactor remote is started (see libraries.md §2.6: two
// remotes in one process race under -race).
func startNode(t testing.TB, id string, debounce time.Duration, seeds ...string) (*Provider, *recorder) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Seeds = seeds
	cfg.Debounce = debounce
	cfg.LeaveTimeout = time.Second
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	rec := &recorder{}
	if err := p.start(nodeMeta{ID: id, Host: "127.0.0.1", Port: 10000, Kinds: []string{"enduser", "platform"}}, rec); err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	t.Cleanup(func() { _ = p.Shutdown(false) })
	return p, rec
}

// TestJoinsAndLeaveArePublishedInOrderToEveryNode: three memberlists on
// loopback; every node publishes each join, then b's graceful leave, and
// the publications of each node move forward only.
func TestJoinsAndLeaveArePublishedInOrderToEveryNode(t *testing.T) {
	a, recA := startNode(t, "node-a", 20*time.Millisecond)
	waitFor(t, "a publishes itself", func() bool { return recA.last() == "node-a" })

	b, recB := startNode(t, "node-b", 20*time.Millisecond, a.GossipAddr())
	_, recC := startNode(t, "node-c", 20*time.Millisecond, a.GossipAddr())
	const all, afterLeave = "node-a,node-b,node-c", "node-a,node-c"
	for name, r := range map[string]*recorder{"a": recA, "b": recB, "c": recC} {
		waitFor(t, name+" publishes three members", func() bool { return r.last() == all })
	}

	if err := b.Shutdown(true); err != nil {
		t.Fatalf("b.Shutdown(true) = %v", err)
	}
	nB := len(recB.all())
	waitFor(t, "a publishes b's leave", func() bool { return recA.last() == afterLeave })
	waitFor(t, "c publishes b's leave", func() bool { return recC.last() == afterLeave })
	if got := recB.all(); len(got) != nB {
		t.Fatalf("b published after Shutdown returned: %q", got[nB:])
	}
	if err := b.Shutdown(true); err != nil {
		t.Fatalf("second Shutdown = %v, want nil", err)
	}

	// In order: a's history is "a", then growing sets, then the leave, and
	// never goes back to a set it already left.
	rank := map[string]int{"node-a": 0, "node-a,node-b": 1, all: 2, afterLeave: 3}
	hist := recA.all()
	prev := -1
	for i, s := range hist {
		r, ok := rank[s]
		if s == afterLeave && prev < 2 {
			r = 1 // c joined before b: not yet the leave
		}
		if !ok || r < prev {
			t.Fatalf("a's publications out of order at %d: %q", i, hist)
		}
		prev = r
	}
	if hist[len(hist)-1] != afterLeave {
		t.Fatalf("a's last publication = %q, want %q", hist[len(hist)-1], afterLeave)
	}
}

// TestBurstOfChangesIsPublishedOnce: signals within one debounce window
// produce one publication, not one each.
func TestBurstOfChangesIsPublishedOnce(t *testing.T) {
	const debounce = 100 * time.Millisecond
	p, rec := startNode(t, "node-a", debounce)
	waitFor(t, "first publication", func() bool { return rec.last() == "node-a" })
	time.Sleep(3 * debounce) // let the start's signals settle
	n := len(rec.all())
	for range 100 {
		p.changed() // what memberlist's NotifyJoin/Leave/Update do
	}
	waitFor(t, "the burst's publication", func() bool { return len(rec.all()) > n })
	time.Sleep(3 * debounce)
	if got := rec.all(); len(got) != n+1 {
		t.Fatalf("100 signals in one window gave %d publications, want 1", len(got)-n)
	}
}

// TestShutdownStopsPublisher: Shutdown waits for the publisher even when it
// is inside its debounce wait; goleak (TestMain) checks nothing is left.
func TestShutdownStopsPublisher(t *testing.T) {
	p, rec := startNode(t, "node-a", 5*time.Second)
	p.changed()
	start := time.Now()
	if err := p.Shutdown(true); err != nil {
		t.Fatalf("Shutdown(true) = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Shutdown took %s: it waited out the debounce", d)
	}
	if got := rec.all(); len(got) != 0 {
		t.Fatalf("published during a pending debounce after Shutdown: %q", got)
	}
	if err := p.start(nodeMeta{ID: "x", Host: "h", Port: 1, Kinds: []string{"k"}}, rec); err == nil {
		t.Fatal("restarting a shut-down provider succeeded")
	}
}

func TestJoinFailureLeavesNothingRunning(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Seeds = []string{"127.0.0.1:1"} // nothing listens on port 1
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.start(nodeMeta{ID: "a", Host: "127.0.0.1", Port: 10000, Kinds: []string{"k"}}, &recorder{}); err == nil {
		t.Fatal("start with an unreachable seed succeeded")
	}
	if p.GossipAddr() != "" {
		t.Fatal("memberlist still running after a failed start")
	}
}
