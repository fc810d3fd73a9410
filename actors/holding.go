package actors

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// In a cluster an actor's records live on the disk of the node that runs
// it. When ownership moves, the new owner takes the records over before the
// actor reads them: at activation it asks every other live node for its
// copy (a [Holding]); a node that has the actor active passivates it first.
// The copy with the highest epoch wins; the new owner writes it, with an
// epoch one above every copy it saw, in one synced batch. Older copies stay
// where they are (their nodes never serve the actor again without taking
// the newest copy over first), so a transfer that fails half-way loses
// nothing, and the Postgres snapshot, fed by changes only, keeps the newest
// writer's values.

// Holding is one node's copy of an actor's records.
type Holding struct {
	Epoch  uint64 // 0: the node never took the actor over (its records, if any, were written there first)
	Keys   [][]byte
	Values [][]byte
}

// ClusterHooks connect an [Env] to a cluster. Package cluster sets them
// with [Env.SetCluster] before the first actor starts; a single node has
// none.
type ClusterHooks struct {
	// Router carries the asks actors make to other actors (lease grants,
	// returns and flushes) wherever those actors live.
	Router Directory
	// Fetch runs when an actor activates, before it reads its records: it
	// gathers the other nodes' copies and adopts the newest with
	// [Env.Adopt]. An error is logged and the actor goes on with what
	// this node holds.
	Fetch func(ctx context.Context, id Identity) error
	// KeyFallback, when set, is asked for an API key no live node holds
	// (its account's owner crashed and no node activated it since): it
	// returns the key's record from the Postgres snapshot, or nil.
	KeyFallback func(ctx context.Context, d ids.Digest) (*pb.APIKey, error)
}

// SetCluster installs h. It must be called before the first actor starts.
func (e *Env) SetCluster(h ClusterHooks) {
	e.router = h.Router
	e.fetch = h.Fetch
	e.Auth.fallback = h.KeyFallback
}

// Clustered reports whether the env runs in a cluster.
func (e *Env) Clustered() bool { return e.router != nil }

// fetchRecords runs the cluster's fetch hook, if any, for an activating
// actor.
func (e *Env) fetchRecords(id Identity) {
	if e.fetch == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.AskTimeout)
	defer cancel()
	if err := e.fetch(ctx, id); err != nil {
		e.Log.Warn("taking over records from other nodes", "actor", id.String(), "err", err)
	}
}

// ownedPrefixes returns the key prefixes (and exact keys, marked exact) of
// the records an actor owns. API key records (by digest) are reached
// through the key index entries under these prefixes.
func ownedPrefixes(id Identity) (exact [][]byte, prefixes [][]byte) {
	p, u := string(id.Platform), string(id.EndUser)
	if id.Kind == KindEndUser {
		return [][]byte{persistence.EndUserKey(p, u), persistence.WindowsKey(p, u), takeoverKey(id)},
			[][]byte{
				persistence.LedgerPrefix(p, u),
				persistence.IdempotencyPrefix(p, u),
				persistence.ReservationPrefix(p, u),
				persistence.UserKeysPrefix(p, u),
				persistence.WindowDeltasPrefix(p, u),
			}
	}
	return [][]byte{persistence.PlatformKey(p), takeoverKey(id)},
		[][]byte{
			persistence.PlatformKeysPrefix(p),
			persistence.ExternalPrefix(p),
			persistence.LedgerPrefix(p, WalletAccount),
			persistence.IdempotencyPrefix(p, WalletAccount),
			persistence.PaymentsPrefix(p),
			persistence.PendingTopupsOf(p),
			persistence.LeasesPrefix(p),
		}
}

func holdingKey(id Identity) []byte {
	return persistence.HoldingKey(byte(id.Kind), string(id.Platform), string(id.EndUser))
}

// Export returns this node's copy of id's records. Call it only when the
// actor is not active on this node ([Local.Evict] first).
func (e *Env) Export(id Identity) (Holding, error) {
	e.waitApplied()
	var h Holding
	raw, err := e.Store.Get(holdingKey(id))
	switch {
	case err == nil && len(raw) >= 8:
		h.Epoch = binary.BigEndian.Uint64(raw)
	case err != nil && !errors.Is(err, persistence.ErrNotFound):
		return Holding{}, err
	}
	add := func(k, v []byte) {
		h.Keys = append(h.Keys, append([]byte(nil), k...))
		h.Values = append(h.Values, append([]byte(nil), v...))
	}
	exact, prefixes := ownedPrefixes(id)
	for _, k := range exact {
		v, err := e.Store.Get(k)
		if errors.Is(err, persistence.ErrNotFound) {
			continue
		}
		if err != nil {
			return Holding{}, err
		}
		add(k, v)
	}
	var digests [][]byte
	for _, p := range prefixes {
		index := p[0] == persistence.FamilyPlatKeys || p[0] == persistence.FamilyUserKeys
		if err := e.Store.ScanPrefix(p, false, func(k, v []byte) bool {
			add(k, v)
			if index {
				digests = append(digests, append([]byte(nil), v...))
			}
			return true
		}); err != nil {
			return Holding{}, err
		}
	}
	for _, d := range digests {
		k := persistence.APIKeyKey(d)
		v, err := e.Store.Get(k)
		if errors.Is(err, persistence.ErrNotFound) {
			continue
		}
		if err != nil {
			return Holding{}, err
		}
		add(k, v)
	}
	return h, nil
}

// Adopt makes the newest of others and this node's own copy of id's
// records the one this node holds: when another node's copy is newer, this
// node's records of id are replaced by it; either way this node's epoch
// becomes one above every epoch seen, in one synced batch. Call it while
// no actor for id is active on this node (the activating actor calls it
// through the fetch hook before reading).
func (e *Env) Adopt(id Identity, others []Holding) error { return e.adopt(id, others, 0) }

// adopt is Adopt writing an epoch of at least floor.
func (e *Env) adopt(id Identity, others []Holding, floor uint64) error {
	mine, err := e.Export(id)
	if err != nil {
		return err
	}
	best, top := -1, mine.Epoch
	for i, h := range others {
		if len(h.Keys) != len(h.Values) {
			return errorf(ErrInvalid, "holding of %s: %d keys, %d values", id, len(h.Keys), len(h.Values))
		}
		// Ties between copies of epoch 0 (records written first on
		// another node, e.g. an end-user created by its platform's actor)
		// and an empty copy here go to the copy that has records.
		if h.Epoch > top || (h.Epoch == top && len(h.Keys) > 0 && len(mine.Keys) == 0 && best < 0) {
			best = i
		}
		top = max(top, h.Epoch)
	}
	var ops []persistence.Op
	if best >= 0 {
		for _, k := range mine.Keys {
			ops = append(ops, persistence.Delete(k))
		}
		h := others[best]
		for i, k := range h.Keys {
			ops = append(ops, persistence.Set(k, h.Values[i]))
		}
	}
	ops = append(ops, persistence.Set(holdingKey(id), binary.BigEndian.AppendUint64(nil, max(top+1, floor))))
	return e.Store.Commit(ops...)
}

// waitApplied blocks until every write submitted to the store before now
// is applied.
func (e *Env) waitApplied() {
	done := make(chan struct{})
	e.Store.Submit(persistence.Write{NoSync: true, Done: func(error) { close(done) }})
	<-done
}

// FailureError turns a [pb.Failure] reply (from an actor on another node)
// into the *[Error] a [Directory] returns.
func FailureError(f *pb.Failure) error { return fromFailure(f) }

// IsPassivated reports whether err is the refusal of an actor that had
// begun to stop: the message was not processed and may be sent again.
func IsPassivated(err error) bool { return errors.Is(err, errPassivated) }

// props returns the Props [Local] spawns the actor of identity id with:
// one per kind, shared by all its actors, which read their identity from
// their name (see actorName).
func (d *Local) props(id Identity) *actor.Props {
	if id.Kind == KindPlatform {
		return d.platformProps
	}
	return d.endUserProps
}

// A holding record's value is the epoch (8 bytes), followed by
// surrenderedFlag once another node has taken the copy over: the copy is
// then kept (it is harmless, and the newest copy may still be this one if
// the taker failed) but no longer handed to anyone at a graceful leave.
const surrenderedFlag = 1

// MarkSurrendered notes that another node took this node's copy of id's
// records over.
func (e *Env) MarkSurrendered(id Identity) error {
	raw, err := e.Store.Get(holdingKey(id))
	if err != nil || len(raw) < 8 {
		return nil // nothing held here under an epoch
	}
	return e.Store.Commit(persistence.Set(holdingKey(id), append(raw[:8:8], surrenderedFlag)))
}

// Held returns the actors whose records this node took over and has not
// surrendered since: what a gracefully leaving node hands to the new
// owners.
func (e *Env) Held() ([]Identity, error) {
	var out []Identity
	err := e.Store.ScanPrefix([]byte{persistence.FamilyHolding}, false, func(k, v []byte) bool {
		if len(v) != 8 || len(k) < 3 {
			return true
		}
		kind := Kind(k[1])
		rest := string(k[2:])
		i := strings.IndexByte(rest, 0)
		if i < 0 {
			return true
		}
		id := Identity{Kind: kind, Platform: ids.PlatformID(rest[:i]), EndUser: ids.EndUserID(rest[i+1:])}
		if (kind == KindPlatform) == (id.EndUser == "") && id.Platform != "" {
			out = append(out, id)
		}
		return true
	})
	return out, err
}
