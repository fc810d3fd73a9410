package cluster

import (
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/eventstream"
)

// Lookup is our identity lookup on protoactor-go's cluster.IdentityLookup
// interface: it places each identity on one member by rendezvous hashing
// over the member set the provider publishes (score = mix(FNV-1a(member
// address, identity)); the highest score owns), so every node that sees the
// same members computes the same owner, and a join or a leave moves only
// the identities whose top score changes (about 1/N of them).
//
// It replaces protoactor's disthash, whose table is swapped without a lock
// while requests read it.
//
// # Concurrency
//
// The member set is an immutable [view] behind an atomic pointer. The one
// writer is the topology subscriber, called by protoactor's event stream
// from the provider's publisher goroutine (one publication at a time); it
// builds a new view and swaps the pointer. Readers ([Lookup.Owner],
// [Lookup.Get], [Lookup.Members]) load the pointer once and read only that
// view, never a field that changes: no lock on the lookup path, and a
// reader sees one whole member set, the old or the new. The PID cache is a
// sync.Map whose entries carry the view version they were resolved under;
// an entry of an older version is ignored (and replaced) by readers, so a
// topology change invalidates the cache without a sweep. onChange, when
// set, is called by the writer after the swap, on the writer's goroutine;
// it must not block.
type Lookup struct {
	self     string // this node's remote address (host:port)
	view     atomic.Pointer[view]
	pids     sync.Map // identity string → cachedPID
	resolve  func(owner string, ci *protocluster.ClusterIdentity) (*actor.PID, error)
	onChange func(v *view)
	sub      *eventstream.Subscription
	es       *eventstream.EventStream
	mu       sync.Mutex // guards sub, es (Setup, Shutdown)
}

type cachedPID struct {
	version uint64
	pid     *actor.PID
}

// view is one published member set. Immutable once stored.
type view struct {
	version uint64
	members []string // remote addresses, sorted
}

var _ protocluster.IdentityLookup = (*Lookup)(nil)

// newLookup returns a lookup for the node at self. resolve returns the
// PID of an identity on its owner (activating it); it is called without
// any lock held.
func newLookup(self string, resolve func(owner string, ci *protocluster.ClusterIdentity) (*actor.PID, error)) *Lookup {
	l := &Lookup{self: self, resolve: resolve}
	l.view.Store(&view{})
	return l
}

// Setup subscribes to the cluster's topology events. protoactor calls it
// once from StartMember, before the provider publishes.
func (l *Lookup) Setup(c *protocluster.Cluster, _ []string, _ bool) {
	es := c.ActorSystem.EventStream
	sub := es.Subscribe(func(ev any) {
		if t, ok := ev.(*protocluster.ClusterTopology); ok {
			l.update(t.Members)
		}
	})
	l.mu.Lock()
	l.sub, l.es = sub, es
	l.mu.Unlock()
}

// Shutdown unsubscribes; the last view stays readable. Idempotent.
func (l *Lookup) Shutdown() {
	l.mu.Lock()
	sub, es := l.sub, l.es
	l.sub = nil
	l.mu.Unlock()
	if sub != nil {
		es.Unsubscribe(sub)
	}
}

// update installs a new member set (the writer; see the type's doc).
func (l *Lookup) update(ms []*protocluster.Member) {
	addrs := make([]string, 0, len(ms))
	for _, m := range ms {
		addrs = append(addrs, m.Host+":"+strconv.Itoa(int(m.Port)))
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	old := l.view.Load()
	if slices.Equal(old.members, addrs) {
		return
	}
	v := &view{version: old.version + 1, members: addrs}
	l.view.Store(v)
	l.pids.Clear() // entries of older versions are ignored anyway; this frees them
	if l.onChange != nil {
		l.onChange(v)
	}
}

// leave removes this node from its own view (a graceful leave): from then
// on it routes every identity to the other members.
func (l *Lookup) leave() {
	old := l.view.Load()
	members := slices.DeleteFunc(slices.Clone(old.members), func(a string) bool { return a == l.self })
	v := &view{version: old.version + 1, members: members}
	l.view.Store(v)
	if l.onChange != nil {
		l.onChange(v)
	}
}

// Owner returns the address of the member that owns identity, or "" when
// no member is known.
func (l *Lookup) Owner(identity string) string { return l.view.Load().owner(identity) }

// Members returns the current members' remote addresses, sorted.
func (l *Lookup) Members() []string { return slices.Clone(l.view.Load().members) }

func (v *view) owner(identity string) string {
	best, bestScore := "", uint64(0)
	for _, m := range v.members {
		if s := score(m, identity); best == "" || s > bestScore || (s == bestScore && m < best) {
			best, bestScore = m, s
		}
	}
	return best
}

// score is the rendezvous weight of member for identity: FNV-1a over
// member, a 0 byte and identity, then a 64-bit finalizer (splitmix64) so
// that members whose addresses differ in one digit do not score alike.
func score(member, identity string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(member); i++ {
		h = (h ^ uint64(member[i])) * prime
	}
	h = (h ^ 0) * prime
	for i := 0; i < len(identity); i++ {
		h = (h ^ uint64(identity[i])) * prime
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// Get returns the PID of the identity's activation on its owner,
// activating it there if needed; nil when there is no member or the owner
// cannot be reached. Results are cached until the topology changes or
// RemovePid drops them.
func (l *Lookup) Get(ci *protocluster.ClusterIdentity) *actor.PID {
	pid, _ := l.get(ci)
	return pid
}

func (l *Lookup) get(ci *protocluster.ClusterIdentity) (*actor.PID, error) {
	v := l.view.Load()
	if c, ok := l.pids.Load(ci.Identity); ok && c.(cachedPID).version == v.version {
		return c.(cachedPID).pid, nil
	}
	owner := v.owner(ci.Identity)
	if owner == "" {
		return nil, errNoMembers
	}
	pid, err := l.resolve(owner, ci)
	if err != nil {
		return nil, err
	}
	l.pids.Store(ci.Identity, cachedPID{version: v.version, pid: pid})
	return pid, nil
}

// RemovePid drops a cached PID (the activation passivated or moved).
func (l *Lookup) RemovePid(ci *protocluster.ClusterIdentity, pid *actor.PID) {
	if c, ok := l.pids.Load(ci.Identity); ok && (pid == nil || c.(cachedPID).pid.Equal(pid)) {
		l.pids.CompareAndDelete(ci.Identity, c)
	}
}
