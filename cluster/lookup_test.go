package cluster

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
)

func members(addrs ...string) []*protocluster.Member {
	out := make([]*protocluster.Member, len(addrs))
	for i, a := range addrs {
		var port int32
		host := a[:len(a)-5]
		_, _ = fmt.Sscanf(a[len(a)-4:], "%d", &port)
		out[i] = &protocluster.Member{Id: a, Host: host, Port: port, Kinds: []string{KindEndUser, KindPlatform}}
	}
	return out
}

// TestRendezvousSameEverywhereAndMovesOnlyToTheJoiner: every lookup that
// sees the same members names the same owner whatever the order they were
// published in; a join moves only identities that go to the new member, a
// leave only those of the member that left; the spread is even.
func TestRendezvousSameEverywhereAndMovesOnlyToTheJoiner(t *testing.T) {
	a := newLookup("10.0.0.1:7001", nil)
	b := newLookup("10.0.0.2:7001", nil)
	a.update(members("10.0.0.1:7001", "10.0.0.2:7001", "10.0.0.3:7001"))
	b.update(members("10.0.0.3:7001", "10.0.0.1:7001", "10.0.0.2:7001"))
	const n = 30000
	ids := make([]string, n)
	before := make([]string, n)
	count := map[string]int{}
	for i := range ids {
		ids[i] = fmt.Sprintf("eu/plat_x/eu_%d", i)
		before[i] = a.Owner(ids[i])
		if o := b.Owner(ids[i]); o != before[i] {
			t.Fatalf("%s: owner %s in a, %s in b", ids[i], before[i], o)
		}
		count[before[i]]++
	}
	for m, c := range count {
		if c < n/3*9/10 || c > n/3*11/10 {
			t.Errorf("member %s owns %d of %d identities; want about a third", m, c, n)
		}
	}
	a.update(members("10.0.0.1:7001", "10.0.0.2:7001", "10.0.0.3:7001", "10.0.0.4:7001"))
	moved := 0
	for i, id := range ids {
		o := a.Owner(id)
		if o != before[i] {
			moved++
			if o != "10.0.0.4:7001" {
				t.Fatalf("%s moved from %s to %s on a join of 10.0.0.4", id, before[i], o)
			}
		}
	}
	if moved < n/4*9/10 || moved > n/4*11/10 {
		t.Errorf("a join moved %d of %d; want about a quarter", moved, n)
	}
	a.update(members("10.0.0.1:7001", "10.0.0.3:7001", "10.0.0.4:7001"))
	b.update(members("10.0.0.1:7001", "10.0.0.2:7001", "10.0.0.3:7001", "10.0.0.4:7001"))
	for _, id := range ids {
		was := b.Owner(id)
		now := a.Owner(id)
		if was != "10.0.0.2:7001" && now != was {
			t.Fatalf("%s moved from %s to %s when 10.0.0.2 left", id, was, now)
		}
	}
	if got := a.Members(); !slices.Equal(got, []string{"10.0.0.1:7001", "10.0.0.3:7001", "10.0.0.4:7001"}) {
		t.Errorf("Members = %v", got)
	}
}

// TestLookupConcurrentReadsDuringTopologyChanges runs readers (Owner, Get,
// Members, RemovePid) while the writer publishes member sets, under -race:
// every answer a reader gets is consistent with one whole published set
// (the owner is one of that set's members, and Get's PID is the one the
// resolver gave for that owner), never a mix.
func TestLookupConcurrentReadsDuringTopologyChanges(t *testing.T) {
	sets := [][]*protocluster.Member{
		members("10.0.0.1:7001", "10.0.0.2:7001"),
		members("10.0.0.1:7001", "10.0.0.2:7001", "10.0.0.3:7001"),
		members("10.0.0.2:7001", "10.0.0.3:7001"),
		members("10.0.0.3:7001"),
	}
	var resolves atomic.Int64
	l := newLookup("10.0.0.1:7001", func(owner string, ci *protocluster.ClusterIdentity) (*actor.PID, error) {
		resolves.Add(1)
		return actor.NewPID(owner, ci.Identity), nil
	})
	var changes atomic.Int64
	l.onChange = func(*view) { changes.Add(1) }
	if _, err := l.get(&protocluster.ClusterIdentity{Identity: "x", Kind: KindEndUser}); !errors.Is(err, errNoMembers) {
		t.Fatalf("get with no members = %v, want errNoMembers", err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad atomic.Int64
	for r := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("eu/p/u%d", (r*7919+i)%500)
				ms := l.Members()
				if o := l.Owner(id); o != "" && !slices.Contains(allAddrs, o) {
					bad.Add(1)
				}
				ci := &protocluster.ClusterIdentity{Identity: id, Kind: KindEndUser}
				pid := l.Get(ci)
				if pid != nil && (pid.Id != id || !slices.Contains(allAddrs, pid.Address)) {
					bad.Add(1)
				}
				if len(ms) > 0 && i%17 == 0 {
					l.RemovePid(ci, pid)
				}
			}
		}()
	}
	for i := range 2000 {
		l.update(sets[i%len(sets)])
	}
	close(stop)
	wg.Wait()
	if bad.Load() != 0 {
		t.Errorf("%d answers outside every published member set", bad.Load())
	}
	if changes.Load() != 2000 {
		t.Errorf("onChange called %d times for 2000 different consecutive sets", changes.Load())
	}
	// After the last publication every identity resolves to its owner in
	// that set.
	final := sets[(2000-1)%len(sets)]
	v := &view{members: []string{}}
	for _, m := range final {
		v.members = append(v.members, fmt.Sprintf("%s:%d", m.Host, m.Port))
	}
	for i := range 100 {
		id := fmt.Sprintf("eu/p/u%d", i)
		ci := &protocluster.ClusterIdentity{Identity: id, Kind: KindEndUser}
		if pid := l.Get(ci); pid == nil || pid.Address != v.owner(id) {
			t.Fatalf("%s resolves to %v, want owner %s", id, pid, v.owner(id))
		}
	}
	t.Logf("%d resolutions", resolves.Load())
}

var allAddrs = []string{"10.0.0.1:7001", "10.0.0.2:7001", "10.0.0.3:7001"}

func TestParseIdentityInvertsString(t *testing.T) {
	for _, s := range []string{"plat/plat_1", "eu/plat_1/eu_2"} {
		id, err := parseIdentity(s)
		if err != nil || id.String() != s {
			t.Errorf("parseIdentity(%q) = %v, %v", s, id, err)
		}
	}
	for _, s := range []string{"", "plat/", "eu/p", "eu/p/", "x/p", "eu/p/u/v"} {
		if _, err := parseIdentity(s); err == nil {
			t.Errorf("parseIdentity(%q) accepted", s)
		}
	}
}

func TestParseKey(t *testing.T) {
	if _, err := ParseKey("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="); err != nil {
		t.Errorf("32-byte key: %v", err)
	}
	for _, k := range []string{"", "not base64!", "c2hvcnQ="} {
		if _, err := ParseKey(k); err == nil {
			t.Errorf("ParseKey(%q) accepted", k)
		}
	}
}
