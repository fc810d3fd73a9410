package cluster

import (
	"strings"
	"sync"
	"testing"
	"time"

	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/hashicorp/memberlist"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMetaRoundTripAndLimits(t *testing.T) {
	m := nodeMeta{ID: "node-a", Host: "127.0.0.1", Port: 7001, Kinds: []string{"enduser", "platform"}}
	b, err := encodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeMeta(b)
	if err != nil || got.ID != m.ID || got.Port != m.Port || len(got.Kinds) != 2 {
		t.Fatalf("decodeMeta(encodeMeta(%+v)) = %+v, %v", m, got, err)
	}
	if _, err := encodeMeta(nodeMeta{ID: strings.Repeat("x", 600), Host: "h", Port: 1}); err != ErrMetaTooLarge {
		t.Fatalf("oversized metadata: %v, want ErrMetaTooLarge", err)
	}
	for name, in := range map[string]string{
		"empty": "", "not json": "{", "no id": `{"host":"h","port":1}`, "bad port": `{"id":"a","host":"h","port":70000}`,
	} {
		if _, err := decodeMeta([]byte(in)); err == nil {
			t.Errorf("%s: decodeMeta(%q) accepted", name, in)
		}
	}
}

func TestMembersOfSkipsClientsAndBadMetaInIDOrder(t *testing.T) {
	meta := func(id string, kinds ...string) []byte {
		b, _ := encodeMeta(nodeMeta{ID: id, Host: "127.0.0.1", Port: 9000, Kinds: kinds})
		return b
	}
	nodes := []*memberlist.Node{
		{Name: "c", Meta: meta("c", "enduser")},
		{Name: "client", Meta: meta("client")},
		{Name: "broken", Meta: []byte("{")},
		{Name: "a", Meta: meta("a", "enduser", "platform")},
	}
	got := membersOf(nodes)
	if len(got) != 2 || got[0].Id != "a" || got[1].Id != "c" || got[0].Port != 9000 {
		t.Fatalf("membersOf = %v", got)
	}
}

// recorder is a topologySink that keeps every publication.
type recorder struct {
	mu   sync.Mutex
	sets [][]string
}

func (r *recorder) UpdateClusterTopology(ms protocluster.Members) {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.Id
	}
	r.mu.Lock()
	r.sets = append(r.sets, ids)
	r.mu.Unlock()
}

func (r *recorder) last() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sets) == 0 {
		return nil
	}
	return r.sets[len(r.sets)-1]
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sets)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startNode(t *testing.T, id string, seeds []string) (*Provider, *recorder) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Seeds = seeds
	cfg.Debounce = 20 * time.Millisecond
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	if err := p.start(nodeMeta{ID: id, Host: "127.0.0.1", Port: 10000, Kinds: []string{"enduser", "platform"}}, rec); err != nil {
		t.Fatal(err)
	}
	return p, rec
}

func TestJoinsAndLeavesArePublishedToEveryNode(t *testing.T) {
	a, recA := startNode(t, "node-a", nil)
	defer a.Shutdown(false)
	waitFor(t, "a alone", func() bool { return strings.Join(recA.last(), ",") == "node-a" })

	b, recB := startNode(t, "node-b", []string{a.GossipAddr()})
	c, recC := startNode(t, "node-c", []string{a.GossipAddr()})
	defer c.Shutdown(false)
	all := "node-a,node-b,node-c"
	for name, r := range map[string]*recorder{"a": recA, "b": recB, "c": recC} {
		r := r
		waitFor(t, name+" sees three members", func() bool { return strings.Join(r.last(), ",") == all })
	}
	// A graceful leave reaches the others; the leaver's publisher stops.
	if err := b.Shutdown(true); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	n := recB.count()
	waitFor(t, "a sees b leave", func() bool { return strings.Join(recA.last(), ",") == "node-a,node-c" })
	waitFor(t, "c sees b leave", func() bool { return strings.Join(recC.last(), ",") == "node-a,node-c" })
	if recB.count() != n {
		t.Fatalf("the stopped provider kept publishing")
	}
	if err := b.Shutdown(true); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{{}, {BindAddr: "127.0.0.1", BindPort: -1}, {BindAddr: "127.0.0.1", Debounce: time.Hour}}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v) accepted", c)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}
