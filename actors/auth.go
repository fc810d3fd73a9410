package actors

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// Principal is who a key authenticates.
type Principal struct {
	Kind     ids.KeyKind
	KeyID    string
	Platform ids.PlatformID
	EndUser  ids.EndUserID // with ids.KindEndUser
	Prefix   string
}

// Auth maps key digests to principals from memory. A miss reads the key
// record from the local store once and caches the answer; revocation marks
// the entry revoked before the revocation is even durable, so a revoked key
// is refused from that instant on this node. Entries live in 64 shards,
// each with its own lock, so lookups of different users rarely contend.
// Safe for concurrent use.
//
// In a cluster ([Env.SetPeers]) a key's record lives on the disk of the
// node that hosts its platform's actor, so a miss asks every node
// ([pb.KeyQuery]) and takes the owner's answer; a revocation is broadcast
// and applied by every node at once ([pb.KeysRevoked]); and a cached live
// key is trusted for the cache TTL only: the first lookup past it starts
// a re-read from the cluster in the background (that call, and others
// until the answer, go on with the cached entry), so a node that missed a
// broadcast refuses a revoked key within the TTL and one round trip, and
// no call waits for the network on a hit. A key no node knows is
// remembered as unknown for [unknownKeyTTL] (bounded per shard, dropped
// when this node creates that key), so a client repeating a bad key costs
// the cluster one fan-out per TTL, not one per request.
type Auth struct {
	store  *persistence.Store
	shards [64]authShard

	// Set once before use by setPeers (nil, 0: alone on one node).
	peers Peers
	ttl   time.Duration
	clk   clock.Clock
	log   *slog.Logger
	// fallback, set once before use (ClusterHooks.KeyFallback), reads a
	// key no live node holds (its owner crashed) from elsewhere.
	fallback func(ctx context.Context, d ids.Digest) (*pb.APIKey, error)
}

// KeyRecord returns this node's copy of a key's record, or
// persistence.ErrNotFound.
func (a *Auth) KeyRecord(d ids.Digest) (*pb.APIKey, error) {
	raw, err := a.store.Get(persistence.APIKeyKey(d[:]))
	if err != nil {
		return nil, err
	}
	var k pb.APIKey
	if err := proto.Unmarshal(raw, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

type authShard struct {
	mu sync.RWMutex // guards m, tombs and tombAt
	m  map[ids.Digest]authEntry
	// tombs is a ring of this shard's revocation tombstones, oldest at
	// tombAt: past maxTombstonesPerShard the oldest leaves the map.
	tombs  []ids.Digest
	tombAt int
	// unknown holds, in a cluster, keys no node knew when last asked:
	// unix ns until which a lookup refuses them without asking again.
	unknown map[ids.Digest]int64
}

// unknownKeyTTL is how long a key no node knows is refused without asking
// the cluster again. A key's raw value exists only from its creation on
// (it is random and returned once), so no lookup can have seen it unknown
// before its creation answered; the TTL only bounds how stale an
// "unknown" answer from a node that lost the key's record can be.
const unknownKeyTTL = 1500 * time.Millisecond

// maxUnknownPerShard bounds the unknown keys remembered (64 × 1024): past
// it a shard drops the expired ones, else an arbitrary one.
const maxUnknownPerShard = 1024

type authEntry struct {
	p       Principal
	revoked bool
	exp     int64 // unix ns after which a live entry is asked again; 0: never
}

// maxAuthEntriesPerShard bounds the cache (64 × 32768 ≈ 2 M keys); past it
// a shard drops an arbitrary live entry, which the next lookup refills.
const maxAuthEntriesPerShard = 32768

// maxTombstonesPerShard bounds the revocation tombstones (64 × 1024 = 64 Ki
// revoked keys in memory). A tombstone only has to outlive the commit of
// its revocation (milliseconds, group commit): after that the store says
// the key is revoked, and a lookup reads it there. The oldest tombstone
// of a shard leaves when the shard's 1025th later revocation arrives.
const maxTombstonesPerShard = 1024

// ErrUnknownKey is returned by [Auth.Lookup] for a key that does not exist
// or was revoked.
var ErrUnknownKey = errors.New("actors: unknown or revoked key")

// NewAuth returns an empty cache over store.
func NewAuth(store *persistence.Store) *Auth {
	a := &Auth{store: store}
	for i := range a.shards {
		a.shards[i].m = make(map[ids.Digest]authEntry)
	}
	return a
}

func (a *Auth) setPeers(peers Peers, ttl time.Duration, clk clock.Clock, log *slog.Logger) {
	a.peers, a.ttl, a.clk, a.log = peers, ttl, clk, log
}

func (a *Auth) shard(d ids.Digest) *authShard { return &a.shards[d[0]&63] }

// Lookup returns the principal of a live key.
func (a *Auth) Lookup(d ids.Digest) (Principal, error) {
	s := a.shard(d)
	s.mu.RLock()
	e, ok := s.m[d]
	s.mu.RUnlock()
	if ok && e.exp != 0 {
		if now := a.clk.Now().UnixNano(); now > e.exp {
			a.refresh(d, now) // past the TTL: ask the owner again, off this call's path
		}
	}
	if ok {
		if e.revoked {
			return Principal{}, ErrUnknownKey
		}
		return e.p, nil
	}
	if a.peers != nil && a.knownUnknown(s, d) {
		return Principal{}, ErrUnknownKey
	}
	k, err := a.fetch(d)
	if err != nil {
		if a.peers != nil && errors.Is(err, ErrUnknownKey) {
			a.rememberUnknown(s, d)
		}
		return Principal{}, err
	}
	if k.RevokedAtMs != 0 {
		// Not cached: revoked keys would fill memory (see tombstones).
		return Principal{}, ErrUnknownKey
	}
	e = authEntry{p: principalOf(k)}
	if a.ttl > 0 {
		e.exp = a.clk.Now().Add(a.ttl).UnixNano()
	}
	s.mu.Lock()
	if cur, ok := s.m[d]; ok && (cur.revoked || cur.exp == 0) {
		e = cur // a revocation (or a fresher fill) got here first
	} else {
		if !ok {
			a.evictLocked(s)
		}
		s.m[d] = e
	}
	s.mu.Unlock()
	if e.revoked {
		return Principal{}, ErrUnknownKey
	}
	return e.p, nil
}

// refresh re-reads a live cached key whose TTL has passed, in the
// background; the caller goes on with the cached entry meanwhile. One
// refresh per key runs at a time: the entry's expiry moves out by
// peerFillTimeout first, so a failed refresh is retried soon after.
func (a *Auth) refresh(d ids.Digest, now int64) {
	s := a.shard(d)
	s.mu.Lock()
	e, ok := s.m[d]
	if !ok || e.revoked || e.exp == 0 || now <= e.exp {
		s.mu.Unlock()
		return // refreshed, revoked or dropped meanwhile
	}
	e.exp = now + int64(peerFillTimeout)
	s.m[d] = e
	s.mu.Unlock()
	go func() {
		k, err := a.fetch(d)
		switch {
		case errors.Is(err, ErrUnknownKey):
			s.mu.Lock()
			if cur, ok := s.m[d]; ok && !cur.revoked {
				delete(s.m, d) // no node knows it: the next lookup asks and refuses
			}
			s.mu.Unlock()
		case err != nil:
			a.log.Warn("key refresh failed; the cached key serves until the next try", "err", err)
		case k.RevokedAtMs != 0:
			a.revoke(d[:])
		default:
			s.mu.Lock()
			if cur, ok := s.m[d]; ok && !cur.revoked {
				s.m[d] = authEntry{p: principalOf(k), exp: a.clk.Now().Add(a.ttl).UnixNano()}
			}
			s.mu.Unlock()
		}
	}()
}

// fetch reads key d's record: from this node's store when alone, else
// from the cluster. ErrUnknownKey when no node has it.
func (a *Auth) fetch(d ids.Digest) (*pb.APIKey, error) {
	if a.peers == nil {
		k, err := a.KeyRecord(d)
		if errors.Is(err, persistence.ErrNotFound) {
			return nil, ErrUnknownKey
		}
		return k, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), peerFillTimeout)
	defer cancel()
	res, err := a.peers.FanOut(ctx, &pb.KeyQuery{Digest: d[:]})
	answers, aerr := answersOf[*pb.KeyAnswer](res)
	if aerr != nil {
		return nil, aerr
	}
	k, ok := pickKey(answers)
	if err != nil && !ok && (k == nil || k.RevokedAtMs == 0) {
		// The owner may be among the nodes that did not answer: refuse
		// to decide on copies alone.
		return nil, errorf(ErrUnavailable, "key lookup: %v", err)
	}
	if err != nil {
		a.log.Warn("key lookup incomplete; the owner answered", "err", err)
	}
	if k == nil && a.fallback != nil {
		if k, err = a.fallback(ctx, d); err != nil || k == nil {
			return nil, ErrUnknownKey
		}
	}
	if k == nil {
		return nil, ErrUnknownKey
	}
	return k, nil
}

// peerFillTimeout bounds a cache fill from the cluster (a key, a
// platform's settings): a member that died and is not yet out of the
// membership holds a fill up to this long.
const peerFillTimeout = 2 * time.Second

// pickKey chooses among the nodes' copies of a key. Revocation is final,
// so a revoked copy on any node wins; else the owner's copy when it
// answered (owned true); else any live copy (a former owner's: a deleted
// end-user's keys are revoked and broadcast, so a stale live copy is one
// whose broadcast this node never got, and the TTL bounds how long it
// serves).
func pickKey(answers []*pb.KeyAnswer) (k *pb.APIKey, owned bool) {
	var live *pb.APIKey
	for _, a := range answers {
		switch {
		case a.Key == nil:
		case a.Key.RevokedAtMs != 0:
			return a.Key, a.Owned
		case a.Owned:
			live, owned = a.Key, true
		case !owned:
			live = a.Key
		}
	}
	return live, owned
}

func principalOf(k *pb.APIKey) Principal {
	return Principal{
		Kind:     ids.KeyKind(k.Kind),
		KeyID:    k.Id,
		Platform: ids.PlatformID(k.PlatformId),
		EndUser:  ids.EndUserID(k.EndUserId),
		Prefix:   k.Prefix,
	}
}

func (a *Auth) evictLocked(s *authShard) {
	if len(s.m) < maxAuthEntriesPerShard {
		return
	}
	for d, e := range s.m {
		if !e.revoked {
			delete(s.m, d)
			return
		}
	}
}

// knownUnknown reports whether d was unknown to every node less than
// unknownKeyTTL ago.
func (a *Auth) knownUnknown(s *authShard, d ids.Digest) bool {
	s.mu.RLock()
	until, ok := s.unknown[d]
	s.mu.RUnlock()
	return ok && a.clk.Now().UnixNano() < until
}

// rememberUnknown records that no node knows d.
func (a *Auth) rememberUnknown(s *authShard, d ids.Digest) {
	now := a.clk.Now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unknown == nil {
		s.unknown = make(map[ids.Digest]int64)
	}
	if _, ok := s.unknown[d]; !ok && len(s.unknown) >= maxUnknownPerShard {
		for o, until := range s.unknown {
			if until <= now {
				delete(s.unknown, o)
			}
		}
		for o := range s.unknown {
			if len(s.unknown) < maxUnknownPerShard {
				break
			}
			delete(s.unknown, o)
		}
	}
	s.unknown[d] = now + int64(unknownKeyTTL)
}

// put caches a live key (at creation).
func (a *Auth) put(k *pb.APIKey) {
	var d ids.Digest
	copy(d[:], k.Digest)
	s := a.shard(d)
	s.mu.Lock()
	delete(s.unknown, d)
	a.evictLocked(s)
	e := authEntry{p: principalOf(k)}
	if a.ttl > 0 {
		e.exp = a.clk.Now().Add(a.ttl).UnixNano()
	}
	s.m[d] = e
	s.mu.Unlock()
}

// revokedHere reports whether this node holds a revocation tombstone for d.
func (a *Auth) revokedHere(d ids.Digest) bool {
	s := a.shard(d)
	s.mu.RLock()
	e, ok := s.m[d]
	s.mu.RUnlock()
	return ok && e.revoked
}

// revoke marks a key revoked.
func (a *Auth) revoke(digest []byte) {
	var d ids.Digest
	copy(d[:], digest)
	s := a.shard(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[d]; ok && e.revoked {
		return
	}
	s.m[d] = authEntry{revoked: true}
	if len(s.tombs) < maxTombstonesPerShard {
		s.tombs = append(s.tombs, d)
		return
	}
	if old := s.tombs[s.tombAt]; s.m[old].revoked {
		delete(s.m, old)
	}
	s.tombs[s.tombAt] = d
	s.tombAt = (s.tombAt + 1) % maxTombstonesPerShard
}

// Len returns how many live entries and revocation tombstones the cache
// holds (metrics and tests).
func (a *Auth) Len() (live, revoked int) {
	for i := range a.shards {
		s := &a.shards[i]
		s.mu.RLock()
		for _, e := range s.m {
			if e.revoked {
				revoked++
			} else {
				live++
			}
		}
		s.mu.RUnlock()
	}
	return live, revoked
}
