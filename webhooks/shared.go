package webhooks

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/persistence"
)

// EndpointRecords is where the endpoints of a service that shares them
// with other nodes live, with [persistence.Store]'s meanings
// ([persistence.ErrNotFound]; Commit atomic and durable when it returns).
// Each method may block on the network; safe for concurrent use.
type EndpointRecords interface {
	Get(key []byte) ([]byte, error)
	ScanPrefix(prefix []byte, reverse bool, fn func(k, v []byte) bool) error
	Commit(ops ...persistence.Op) error
}

// Sharing makes a [Service] one of several nodes that serve the same
// endpoints (a cluster): the endpoint records live in Records, which every
// node reads and writes; each node keeps its table of them in memory,
// reloads a platform's when another node announces a change, and reloads
// them all every Resync, the safety net for a missed announcement.
//
// Events are still dispatched and delivered by the node whose actor
// committed them (its outbox), so each event is delivered once
// cluster-wide, from one node, signed as on a lone node; the delivery log
// (messages) stays on that node's Pebble.
type Sharing struct {
	// Records holds the endpoint records (family 0x21 keys and values).
	Records EndpointRecords
	// Announce tells every other node that platform p's endpoints
	// changed; it returns when they have reloaded them, or ctx ended. Its
	// error is logged, not returned to the caller of the change.
	Announce func(ctx context.Context, p ids.PlatformID) error
	// PlatformExists reports whether platform p exists anywhere in the
	// cluster (this node's store need not hold it).
	PlatformExists func(ctx context.Context, p ids.PlatformID) (bool, error)
	// AskLog, when set, sends q to every node, this one included, each
	// answering with [Service.AnswerLog], and returns their answers; with
	// an error when some node did not answer (the answers of the others
	// come back too). Nil: the delivery log read is this node's alone.
	AskLog func(ctx context.Context, q LogQuery) ([]LogAnswer, error)
	// Resync is how often every endpoint is reloaded from Records.
	// Default 5 s, at least 100 ms.
	Resync time.Duration
}

// sharing is the state of a shared service. mu serializes this node's
// writes of endpoint records (so they reach Records in the order they
// were decided); it is taken before Service.mu, never after it, and may be
// held across network I/O. A reload never takes it (a node reloading on
// another's announcement while announcing its own change would otherwise
// wait for that node, which waits for it): instead writing and gen,
// guarded by Service.mu, let a reload see that a write of this node's
// started or ended while it read, and read again.
type sharing struct {
	Sharing
	mu      sync.Mutex
	writing int    // writes of endpoint records decided and not yet committed
	gen     uint64 // counts the starts and ends of those writes
}

// announceTimeout bounds an announcement after a change.
const announceTimeout = 2 * time.Second

// Share makes s a node of a cluster that shares its endpoints (see
// [Sharing]): it replaces the endpoints loaded from the node's store with
// those of sh.Records. Call it once, before Start.
func (s *Service) Share(sh Sharing) error {
	if sh.Records == nil || sh.Announce == nil || sh.PlatformExists == nil {
		return errors.New("webhooks: Sharing needs Records, Announce and PlatformExists")
	}
	if sh.Resync == 0 {
		sh.Resync = 5 * time.Second
	}
	if sh.Resync < 100*time.Millisecond {
		return errors.New("webhooks: Sharing.Resync must be at least 100ms")
	}
	s.shared = &sharing{Sharing: sh}
	return s.resync(nil)
}

// Reload reloads platform p's endpoints from the shared records (another
// node changed them). A no-op on a service that does not share.
func (s *Service) Reload(p ids.PlatformID) error {
	if s.shared == nil {
		return nil
	}
	return s.resync(&p)
}

// lockShared takes sharing.mu when s is shared and returns its unlock.
func (s *Service) lockShared() func() {
	if s.shared == nil {
		return func() {}
	}
	s.shared.mu.Lock()
	return s.shared.mu.Unlock
}

// persistLocked writes ops, which decisions made under s.mu depend on,
// and returns the wait for their durability, to call after releasing
// s.mu. Alone, everything goes to the store in s.mu's order. Shared, the
// endpoint records go to the shared records (the caller holds
// sharing.mu, which orders them) and the rest to the store; once
// durable, the other nodes are told.
func (s *Service) persistLocked(p ids.PlatformID, ops []persistence.Op) func() error {
	if s.shared == nil {
		done := s.submitLocked(ops)
		return func() error { return <-done }
	}
	var shared, local []persistence.Op
	for _, op := range ops {
		if len(op.Key) > 0 && op.Key[0] == persistence.FamilyWebhookEndpoint {
			shared = append(shared, op)
		} else {
			local = append(local, op)
		}
	}
	var done <-chan error
	if len(local) > 0 {
		done = s.submitLocked(local)
	}
	if len(shared) > 0 {
		s.shared.writing++
		s.shared.gen++
	}
	return func() error {
		var err error
		if len(shared) > 0 {
			err = s.shared.Records.Commit(shared...)
			s.mu.Lock()
			s.shared.writing--
			s.shared.gen++
			s.mu.Unlock()
			if err == nil {
				s.announce(p)
			}
		}
		if done != nil {
			err = errors.Join(err, <-done)
		}
		return err
	}
}

func (s *Service) announce(p ids.PlatformID) {
	ctx, cancel := context.WithTimeout(context.Background(), announceTimeout)
	defer cancel()
	if err := s.shared.Announce(ctx, p); err != nil {
		s.log.Warn("announcing a webhook endpoint change; the others catch up at their next resync", "platform", p, "err", err)
	}
}

// shareFailure records an endpoint's failure state (decided by a
// delivery on this node) in the shared records: it re-reads the record so
// that a concurrent change made elsewhere is kept, and sets only the
// fields a delivery decides.
func (s *Service) shareFailure(p ids.PlatformID, eid string, r *endpointRecord) {
	defer s.lockShared()()
	key := persistence.WebhookEndpointKey(string(p), eid)
	raw, err := s.shared.Records.Get(key)
	if errors.Is(err, persistence.ErrNotFound) {
		return // deleted meanwhile
	}
	var cur *endpointRecord
	if err == nil {
		cur, err = decodeEndpoint(raw)
	}
	if err != nil {
		s.log.Error("record a webhook endpoint's failure state", "endpoint", eid, "err", err)
		return
	}
	cur.FailingSinceMs = r.FailingSinceMs
	if !r.Enabled && cur.Enabled {
		cur.Enabled, cur.DisabledReason = false, r.DisabledReason
	}
	cur.UpdatedAtMs = max(cur.UpdatedAtMs, r.UpdatedAtMs)
	s.mu.Lock()
	s.shared.writing++
	s.shared.gen++
	s.mu.Unlock()
	err = s.shared.Records.Commit(persistence.Set(key, encode(cur)))
	s.mu.Lock()
	s.shared.writing--
	s.shared.gen++
	s.mu.Unlock()
	if err != nil {
		s.log.Error("record a webhook endpoint's failure state", "endpoint", eid, "err", err)
		return
	}
	s.announce(p)
}

// platformExists reports ErrNotFound unless platform p exists: in this
// node's store, or, shared, anywhere in the cluster.
func (s *Service) platformExists(ctx context.Context, p ids.PlatformID) error {
	if !ids.Valid(ids.PlatformPrefix, string(p)) {
		return notFound("platform", string(p))
	}
	if s.shared != nil {
		ok, err := s.shared.PlatformExists(ctx, p)
		if err == nil && !ok {
			err = notFound("platform", string(p))
		}
		return err
	}
	_, err := s.store.Get(persistence.PlatformKey(string(p)))
	if errors.Is(err, persistence.ErrNotFound) {
		return notFound("platform", string(p))
	}
	return err
}

// errBusy: a reload kept meeting this node's own writes.
var errBusy = errors.New("webhooks: endpoint records kept changing during a reload")

// resync reloads the endpoints of platform *only (nil: of every platform)
// from the shared records and brings the in-memory table in line: new
// and changed records are taken (a changed endpoint is rescanned), and an
// endpoint gone from the records is dropped with this node's messages
// for it. While a write of this node's is between its decision and its
// commit, what the records hold is older than the table: it reads again
// after that write, up to 100 times 10 ms apart.
func (s *Service) resync(only *ids.PlatformID) error {
	for range 100 {
		s.mu.Lock()
		gen, busy := s.shared.gen, s.shared.writing > 0
		s.mu.Unlock()
		if !busy {
			done, err := s.resyncFrom(only, gen)
			if done || err != nil {
				return err
			}
		}
		select {
		case <-s.ctx.Done():
			return ErrClosed
		case <-time.After(10 * time.Millisecond):
		}
	}
	return errBusy
}

// resyncFrom is one attempt of resync; it applies nothing and returns
// false when a write of this node's started or ended since gen.
func (s *Service) resyncFrom(only *ids.PlatformID, gen uint64) (bool, error) {
	prefix := []byte{persistence.FamilyWebhookEndpoint}
	if only != nil {
		prefix = persistence.WebhookEndpointsPrefix(string(*only))
	}
	type loaded struct {
		rec *endpointRecord
		raw []byte
	}
	found := map[ids.PlatformID]map[string]loaded{}
	var failure error
	err := s.shared.Records.ScanPrefix(prefix, false, func(_, v []byte) bool {
		r, err := decodeEndpoint(v)
		if err != nil {
			failure = err
			return false
		}
		p := ids.PlatformID(r.PlatformID)
		if found[p] == nil {
			found[p] = map[string]loaded{}
		}
		found[p][r.ID] = loaded{r, bytes.Clone(v)}
		return true
	})
	if err == nil {
		err = failure
	}
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false, ErrClosed
	}
	if s.shared.gen != gen {
		s.mu.Unlock()
		return false, nil
	}
	platforms := map[ids.PlatformID]bool{}
	if only != nil {
		platforms[*only] = true
	} else {
		for p := range s.endpoints {
			platforms[p] = true
		}
		for p := range found {
			platforms[p] = true
		}
	}
	var ops []persistence.Op
	changed := false
	for p := range platforms {
		eps := s.endpoints[p]
		for eid, e := range eps {
			if _, ok := found[p][eid]; ok {
				continue
			}
			e.deleted = true
			delete(eps, eid)
			msgs := persistence.WebhookMessagesPrefix(string(p), eid)
			due := persistence.WebhookDuePrefix(string(p), eid)
			ops = append(ops, persistence.DeleteRange(msgs, persistence.PrefixEnd(msgs)), persistence.DeleteRange(due, persistence.PrefixEnd(due)))
			changed = true
		}
		for eid, l := range found[p] {
			if s.endpoints[p] == nil {
				s.endpoints[p] = map[string]*endpoint{}
			}
			e := s.endpoints[p][eid]
			if e == nil {
				s.endpoints[p][eid] = &endpoint{rec: l.rec, inflight: map[string]bool{}}
				changed = true
				continue
			}
			if !bytes.Equal(encode(e.rec), l.raw) {
				e.rec, e.nextDue = l.rec, 0
				changed = true
			}
		}
		if len(s.endpoints[p]) == 0 {
			delete(s.endpoints, p)
		}
		s.publishLocked(p)
	}
	var done <-chan error
	if len(ops) > 0 {
		done = s.submitLocked(ops)
	}
	s.mu.Unlock()
	if done != nil {
		if err := <-done; err != nil {
			return false, err
		}
	}
	if changed {
		s.wakeScheduler()
	}
	return true, nil
}

// resyncLoop reloads every endpoint each Resync until Close.
func (s *Service) resyncLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.shared.Resync)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if err := s.resync(nil); err != nil && !errors.Is(err, ErrClosed) {
			s.log.Warn("reloading the shared webhook endpoints", "err", err)
		}
	}
}
