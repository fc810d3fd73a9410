package actors

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"google.golang.org/protobuf/proto"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// A wallet lease is credit of a platform's wallet that the platform actor
// has granted to this node (one lease per platform per process
// incarnation). End-user actors reserve each call's worst-case provider
// cost from it and settle the actual cost into it, so an inference call
// sends no message to the platform actor: a hot platform is not one
// mailbox, on one node or across a cluster.
//
// Why per node and not per end-user actor: a node's lease is one small
// object whose counters are atomics (no lock on the hot path), refilled
// in chunks ahead of need; per-actor leases would split a small wallet
// into thousands of slivers held by idle actors and turn every refill of
// every user into a platform round trip.
//
// Invariants (tested in lease_test.go):
//   - credit + reserved + (spend not yet aggregated) = granted - aggregated
//     spend, and the sum over leases of granted - aggregated spend never
//     exceeds the wallet balance: leases plus settled usage never
//     overspend the wallet;
//   - a call refused for lack of lease credit while the wallet has money
//     is retried against a refill before it is answered 402;
//   - each settled call's wallet cost is a LeaseSpend record written in
//     the same batch as its budget entry; the platform actor folds those
//     records into the wallet's ledger (one usage entry per flush) and
//     deletes them in one batch, so a crash can neither lose nor double
//     them; a lease of a previous incarnation is closed at recovery with
//     its remaining credit returned to the wallet.
type walletLease struct {
	env      *Env
	platform ids.PlatformID
	id       string

	credit   atomic.Int64 // granted, neither reserved nor spent
	reserved atomic.Int64 // held by admitted calls
	seq      atomic.Uint64
	armed    atomic.Bool // a flush is scheduled

	refillMu  sync.Mutex // one refill at a time; never held on the hot path
	flushMu   sync.Mutex // one carried flush at a time (cluster mode)
	carried   uint64     // cluster mode: last spend seq the platform actor folded; guarded by flushMu
	marked    bool       // cluster mode: leaseMarker written; guarded by refillMu
	refilling atomic.Bool

	// Single node: the spend records applied to the store and not yet
	// folded, in the order they were applied. The platform actor folds
	// these (and deletes their records) without reading the store; a
	// record is listed only once applied, so its deletion can never come
	// first. A crash loses the list, not the records: the next run closes
	// this lease from the store (loadLeases).
	appliedMu sync.Mutex
	appliedQ  []appliedSpend
}

// appliedSpend is a spend record applied to the store, by its seq. (Its
// key is made again at the fold: keeping it here would hold about 100
// bytes a call until then.)
type appliedSpend struct {
	seq   uint64
	spend *pb.LeaseSpend
}

// applied lists a spend record once the store has applied it.
func (l *walletLease) applied(seq uint64, s *pb.LeaseSpend) {
	l.appliedMu.Lock()
	l.appliedQ = append(l.appliedQ, appliedSpend{seq, s})
	l.appliedMu.Unlock()
}

// takeApplied returns and clears the applied spend records not yet folded.
func (l *walletLease) takeApplied() []appliedSpend {
	l.appliedMu.Lock()
	q := l.appliedQ
	l.appliedQ = nil
	l.appliedMu.Unlock()
	return q
}

// lease returns this node's lease on platform p, creating it (empty) on
// first use.
func (e *Env) lease(p ids.PlatformID) *walletLease {
	if v, ok := e.leases.Load(p); ok {
		return v.(*walletLease)
	}
	l := &walletLease{env: e, platform: p, id: e.incarnation}
	v, _ := e.leases.LoadOrStore(p, l)
	return v.(*walletLease)
}

// tryReserve takes amount from the lease's credit if it has that much.
func (l *walletLease) tryReserve(amount money.Nanos) bool {
	a := int64(amount)
	for {
		c := l.credit.Load()
		if c < a {
			return false
		}
		if l.credit.CompareAndSwap(c, c-a) {
			l.reserved.Add(a)
			return true
		}
	}
}

// reserve holds amount of wallet credit for one call. When the lease runs
// short it asks the platform actor for more (blocking this caller, not
// the node), and refills ahead of need when credit runs low. It fails
// with wallet_insufficient only when the wallet itself cannot cover the
// amount, or unavailable when refills take longer than timeout.
func (l *walletLease) reserve(timeout time.Duration, amount money.Nanos) error {
	var ctx context.Context // made only when the lease is short: most calls never wait
	for {
		if l.tryReserve(amount) {
			if l.credit.Load() < int64(l.env.LeaseChunk)/4 {
				l.refillAsync()
			}
			return nil
		}
		if ctx == nil {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(context.Background(), timeout)
			defer cancel()
		}
		// Short: refill (a refusal means the wallet itself cannot cover
		// the amount) and try again; concurrent callers may take the new
		// credit first, so loop until the wallet says no or ctx ends.
		if err := l.refill(ctx, amount); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return errorf(ErrUnavailable, "wallet lease refill: %v", err)
		}
	}
}

// release gives a reservation back to the lease's credit.
func (l *walletLease) release(amount money.Nanos) {
	l.reserved.Add(-int64(amount))
	l.credit.Add(int64(amount))
}

// settle closes a reservation of held credit with the actual cost. A cost
// above what was held takes the difference from free credit; what the
// lease cannot cover is returned as uncharged. It returns the amount
// charged to the wallet.
func (l *walletLease) settle(held, cost money.Nanos) (charged, uncharged money.Nanos) {
	l.reserved.Add(-int64(held))
	if cost <= held {
		l.credit.Add(int64(held - cost))
		return cost, 0
	}
	extra := int64(cost - held)
	for {
		c := l.credit.Load()
		take := min(c, extra)
		if take <= 0 || l.credit.CompareAndSwap(c, c-take) {
			if take < 0 {
				take = 0
			}
			return held + money.Nanos(take), money.Nanos(extra - take)
		}
	}
}

// spent notes that a spend record was written and schedules a flush into
// the wallet within Env.LeaseFlushInterval.
func (l *walletLease) spent() {
	if l.armed.CompareAndSwap(false, true) {
		time.AfterFunc(l.env.LeaseFlushInterval, func() {
			l.armed.Store(false)
			if l.env.Clustered() {
				l.flushCarriedAsync()
				return
			}
			l.env.tell(PlatformActor(l.platform), &pb.LeaseFlush{})
		})
	}
}

func (l *walletLease) refillAsync() {
	if !l.refilling.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer l.refilling.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), l.env.AskTimeout)
		defer cancel()
		if err := l.refill(ctx, 0); err != nil {
			l.env.Log.Debug("lease refill ahead of need refused", "platform", l.platform, "err", err)
		}
	}()
}

// refill asks the platform actor for a chunk of credit, at least need
// beyond what the lease holds now. Concurrent callers share one request.
func (l *walletLease) refill(ctx context.Context, need money.Nanos) error {
	l.refillMu.Lock()
	defer l.refillMu.Unlock()
	have := money.Nanos(l.credit.Load())
	if need > 0 && have >= need {
		return nil // another caller's refill covered it
	}
	minimum := max(need-have, 0)
	want := max(l.env.LeaseChunk, minimum)
	if l.env.Clustered() && !l.marked {
		// Noted on this node's disk before any credit is granted, so a
		// later run closes it (CloseEarlierLeases) wherever its platform
		// actor runs.
		if err := l.env.Store.Commit(persistence.Set(leaseMarker(l.platform, l.id), nil)); err != nil {
			return err
		}
		l.marked = true
	}
	res, err := l.env.ask(ctx, PlatformActor(l.platform), &pb.LeaseGrant{
		LeaseId: l.id, Node: l.env.Node, Incarnation: l.env.incarnation,
		WantNanos: int64(want), MinNanos: int64(minimum),
	})
	if err != nil {
		return err
	}
	l.credit.Add(res.(*pb.LeaseGranted).GrantedNanos)
	return nil
}

// giveBack returns the lease's free credit to the wallet (at shutdown, or
// when the lease has been idle). Credit reserved by calls in flight stays.
func (l *walletLease) giveBack(ctx context.Context) error {
	c := l.credit.Swap(0)
	if c <= 0 {
		l.credit.Add(c)
		return nil
	}
	if _, err := l.env.ask(ctx, PlatformActor(l.platform), &pb.LeaseReturn{LeaseId: l.id, AmountNanos: c}); err != nil {
		l.credit.Add(c) // still ours
		return err
	}
	return nil
}

// ReturnLeases flushes every lease's spend into its wallet and returns its
// free credit: the node's part of a graceful stop (before the actors
// stop). Errors are logged; recovery at the next start closes whatever a
// failed return left open.
func (e *Env) ReturnLeases(ctx context.Context) {
	e.leases.Range(func(_, v any) bool {
		l := v.(*walletLease)
		var err error
		if e.Clustered() {
			err = l.flushCarried(ctx)
		} else {
			_, err = e.ask(ctx, PlatformActor(l.platform), &pb.LeaseFlush{})
		}
		if err != nil {
			e.Log.Warn("lease flush at shutdown", "platform", l.platform, "err", err)
		}
		if err := l.giveBack(ctx); err != nil {
			e.Log.Warn("lease return at shutdown", "platform", l.platform, "err", err)
		}
		return true
	})
}

// flushCarriedAsync runs flushCarried on its own goroutine (counted in
// Env.tells, so Close waits for it).
func (l *walletLease) flushCarriedAsync() {
	if l.env.dir == nil || l.env.dir.closed.Load() {
		return
	}
	l.env.tells.Add(1)
	go func() {
		defer l.env.tells.Done()
		ctx, cancel := context.WithTimeout(context.Background(), l.env.AskTimeout)
		defer cancel()
		if err := l.flushCarried(ctx); err != nil {
			l.env.Log.Warn("lease flush", "platform", l.platform, "err", err)
			l.spent() // try again after the next interval
		}
	}()
}

// flushCarried is a cluster node's lease flush: its spend records live on
// this node's disk, and the platform actor may run on another node, so
// they travel in the message. Once the platform actor has answered (its
// fold durable) the records are deleted here; a crash in between sends
// them again, and the lease's folded_seq makes the second fold a no-op.
// One flush at a time per lease.
func (l *walletLease) flushCarried(ctx context.Context) error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	for {
		n, err := l.flushBatch(ctx)
		if err != nil || n < maxCarried {
			return err
		}
	}
}

// maxCarried bounds the spend records one cluster flush carries.
const maxCarried = 4096

func (l *walletLease) flushBatch(ctx context.Context) (int, error) {
	n, err := l.env.carrySpends(ctx, l.platform, l.id, &l.carried)
	if err == nil && l.seq.Load() > l.carried {
		l.spent() // records still to come (a gap): flush again
	}
	return n, err
}

// carrySpends sends one batch of lease leaseID's spend records, those after
// *carried in seq order without a gap, to platform p's actor, advances
// *carried, and deletes what was folded.
func (e *Env) carrySpends(ctx context.Context, p ids.PlatformID, leaseID string, carried *uint64) (int, error) {
	prefix := persistence.LeaseSpendPrefix(string(p), leaseID)
	e.waitApplied()
	msg := &pb.LeaseFlush{LeaseId: leaseID}
	var keys [][]byte
	next := *carried + 1
	if err := e.Store.ScanPrefix(prefix, false, func(k, v []byte) bool {
		seq := binary.BigEndian.Uint64(k[len(k)-8:])
		if seq < next {
			keys = append(keys, append([]byte(nil), k...)) // folded; its deletion was lost
			return true
		}
		if seq != next {
			// A gap: an earlier call's record is not written yet (actors
			// commit concurrently). Records go in seq order, so stop here;
			// the next flush takes the rest.
			return false
		}
		var s pb.LeaseSpend
		if err := proto.Unmarshal(v, &s); err != nil {
			e.Log.Error("corrupt lease spend record", "platform", p, "lease", leaseID, "err", err)
			s = pb.LeaseSpend{} // folded as zero: order is kept
		}
		keys = append(keys, append([]byte(nil), k...))
		msg.Spends = append(msg.Spends, &pb.LeaseSpendAt{Seq: seq, Spend: &s})
		next++
		return len(msg.Spends) < maxCarried
	}); err != nil {
		return 0, err
	}
	if len(keys) == 0 {
		return 0, nil
	}
	if len(msg.Spends) > 0 {
		if _, err := e.ask(ctx, PlatformActor(p), msg); err != nil {
			return 0, err
		}
		*carried = msg.Spends[len(msg.Spends)-1].Seq
	}
	ops := make([]persistence.Op, len(keys))
	for i, k := range keys {
		ops[i] = persistence.Delete(k)
	}
	return len(msg.Spends), e.Store.Commit(ops...)
}

// leaseMarker is the node-local note that this node holds (or held) lease
// leaseID of platform p: a meta record "lease:<platform>:<lease>".
func leaseMarker(p ids.PlatformID, leaseID string) []byte {
	return persistence.MetaKey("lease:" + string(p) + ":" + leaseID)
}

// CloseEarlierLeases (cluster mode) closes the wallet leases this node
// held in its earlier runs: each one's spend records still on this disk
// are carried to its platform's actor, which folds them (once, by
// sequence) and then closes the lease, returning its unspent credit with a
// lease_returned entry. It returns how many it closed; leases it could not
// close (a platform unreachable) stay for the next start. A lease whose
// node never comes back stays outstanding: its credit is not spendable,
// never overspent.
func (e *Env) CloseEarlierLeases(ctx context.Context) (int, error) {
	type lease struct {
		p  ids.PlatformID
		id string
	}
	var old []lease
	prefix := persistence.MetaKey("lease:")
	if err := e.Store.ScanPrefix(prefix, false, func(k, _ []byte) bool {
		p, id, ok := strings.Cut(string(k[len(prefix):]), ":")
		if ok && id != e.incarnation {
			old = append(old, lease{ids.PlatformID(p), id})
		}
		return true
	}); err != nil {
		return 0, err
	}
	closed := 0
	var errs []error
	for _, l := range old {
		// At rest nothing is in flight: the records left start after
		// what was carried and acknowledged (deleted) before the stop.
		var carried uint64
		_ = e.Store.ScanPrefix(persistence.LeaseSpendPrefix(string(l.p), l.id), false, func(k, _ []byte) bool {
			carried = binary.BigEndian.Uint64(k[len(k)-8:]) - 1
			return false
		})
		var err error
		for n := maxCarried; n == maxCarried && err == nil; {
			n, err = e.carrySpends(ctx, l.p, l.id, &carried)
		}
		if err == nil {
			_, err = e.ask(ctx, PlatformActor(l.p), &pb.LeaseFlush{LeaseId: l.id, Close: true})
		}
		if err == nil {
			err = e.Store.Commit(persistence.Delete(leaseMarker(l.p, l.id)))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("lease %s of %s: %w", l.id, l.p, err))
			continue
		}
		closed++
	}
	return closed, errors.Join(errs...)
}
