package actors

import (
	"errors"
	"sync"

	"google.golang.org/protobuf/proto"

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
type Auth struct {
	store  *persistence.Store
	shards [64]authShard
	// resolve, in a cluster, replaces the local store read of a miss: a
	// key's record lives where its platform's (or end-user's) actor runs,
	// and this node's copy, if any, may be stale. Set before use.
	resolve func(d ids.Digest) ([]*pb.APIKey, error)
}

// SetResolver makes a cache miss ask resolve for every copy of the key's
// record in the cluster instead of reading this node's store: the key is
// live only if some copy is and none is revoked (revocation is final). An
// error from resolve is returned as is (the key's node may be
// unreachable). Call before the first Lookup.
func (a *Auth) SetResolver(resolve func(d ids.Digest) ([]*pb.APIKey, error)) { a.resolve = resolve }

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

// resolved is a miss answered by the cluster's resolver.
func (a *Auth) resolved(d ids.Digest) (*pb.APIKey, error) {
	recs, err := a.resolve(d)
	if err != nil {
		return nil, err
	}
	var live *pb.APIKey
	for _, k := range recs {
		if k.RevokedAtMs != 0 {
			return nil, ErrUnknownKey
		}
		live = k
	}
	if live == nil {
		return nil, ErrUnknownKey
	}
	return live, nil
}

type authShard struct {
	mu sync.RWMutex // guards m, tombs and tombAt
	m  map[ids.Digest]authEntry
	// tombs is a ring of this shard's revocation tombstones, oldest at
	// tombAt: past maxTombstonesPerShard the oldest leaves the map.
	tombs  []ids.Digest
	tombAt int
}

type authEntry struct {
	p       Principal
	revoked bool
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

func (a *Auth) shard(d ids.Digest) *authShard { return &a.shards[d[0]&63] }

// Lookup returns the principal of a live key.
func (a *Auth) Lookup(d ids.Digest) (Principal, error) {
	s := a.shard(d)
	s.mu.RLock()
	e, ok := s.m[d]
	s.mu.RUnlock()
	if ok {
		if e.revoked {
			return Principal{}, ErrUnknownKey
		}
		return e.p, nil
	}
	var err error
	var k *pb.APIKey
	if a.resolve != nil {
		if k, err = a.resolved(d); err != nil {
			return Principal{}, err
		}
	} else {
		k, err = a.KeyRecord(d)
		if errors.Is(err, persistence.ErrNotFound) {
			return Principal{}, ErrUnknownKey
		}
		if err != nil {
			return Principal{}, err
		}
	}
	if k.RevokedAtMs != 0 {
		// Not cached: revoked keys would fill memory (see tombstones).
		return Principal{}, ErrUnknownKey
	}
	e = authEntry{p: principalOf(k)}
	s.mu.Lock()
	if cur, ok := s.m[d]; ok {
		e = cur // a revocation (or a fresher fill) got here first
	} else {
		a.evictLocked(s)
		s.m[d] = e
	}
	s.mu.Unlock()
	if e.revoked {
		return Principal{}, ErrUnknownKey
	}
	return e.p, nil
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

// put caches a live key (at creation).
func (a *Auth) put(k *pb.APIKey) {
	var d ids.Digest
	copy(d[:], k.Digest)
	s := a.shard(d)
	s.mu.Lock()
	a.evictLocked(s)
	s.m[d] = authEntry{p: principalOf(k)}
	s.mu.Unlock()
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
