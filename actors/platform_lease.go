package actors

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// The platform actor's side of wallet leases (lease.go): it grants credit,
// takes returns, folds the leases' spend records into the wallet and
// closes the leases of a previous run at activation. A lease's
// outstanding credit (granted minus spend folded in) is a reservation on
// the wallet's [account]: a grant holds it, a return or a recovery gives
// it back, and folding a call's spend charges it, as settling a call
// charges a budget. It never exceeds the balance.

// holdLeases recomputes what the leases hold of the wallet (at load).
func (a *platformActor) holdLeases() {
	a.wallet.reserved = 0
	for _, l := range a.leases {
		a.wallet.hold(money.Nanos(l.GrantedNanos - l.SpentNanos))
	}
}

func (a *platformActor) walletView() *pb.WalletView {
	a.syncWallet()
	v := &pb.WalletView{Wallet: snapshot(a.p.Wallet), LeasedNanos: int64(a.wallet.reserved)}
	if l, ok := a.env.leases.Load(a.id.Platform); ok {
		v.ReservedNanos = l.(*walletLease).reserved.Load()
	}
	return v
}

func (a *platformActor) leaseOp(l *pb.Lease) persistence.Op {
	return persistence.Set(persistence.LeaseKey(a.p.Id, l.Id), marshal(l))
}

// grant adds credit to a lease (creating it): as much as asked for when
// the wallet's free balance has it, else what is free, and a refusal when
// that is less than the minimum. The answer follows the lease record's
// fsync, so no credit is ever spent that a crash could forget was granted.
func (a *platformActor) grant(c actor.Context, m *pb.LeaseGrant) {
	if m.WantNanos < 0 || m.MinNanos < 0 || m.LeaseId == "" {
		a.fail(c, errorf(ErrInvalid, "invalid lease grant"))
		return
	}
	g, ok := a.wallet.reserve(money.Nanos(m.WantNanos), money.Nanos(m.MinNanos))
	if !ok {
		a.fail(c, errorf(ErrWalletInsufficient, "the platform wallet cannot cover this request"))
		return
	}
	l := a.leases[m.LeaseId]
	if l == nil {
		l = &pb.Lease{Id: m.LeaseId, Node: m.Node, Incarnation: m.Incarnation, CreatedAtMs: a.now().UnixMilli()}
		a.leases[l.Id] = l
	}
	l.GrantedNanos += int64(g)
	a.commit(c, []persistence.Op{a.leaseOp(l)}, &pb.LeaseGranted{GrantedNanos: int64(g)}, false)
}

// giveBack takes unspent credit back from a lease.
func (a *platformActor) giveBack(c actor.Context, m *pb.LeaseReturn) {
	l := a.leases[m.LeaseId]
	if l == nil || m.AmountNanos < 0 || m.AmountNanos > l.GrantedNanos-l.SpentNanos {
		a.fail(c, errorf(ErrInvalid, "lease %s cannot return %d", m.LeaseId, m.AmountNanos))
		return
	}
	l.GrantedNanos -= m.AmountNanos
	a.wallet.unhold(money.Nanos(m.AmountNanos))
	a.commit(c, []persistence.Op{a.leaseOp(l)}, &pb.Ack{}, false)
}

// flushLeases folds every lease's spend records into the wallet: one usage
// entry per settled call (the wallet's transactions show each call's
// cost, as before leases), the records deleted in the same batch. This
// run's lease hands over its records in memory as the store applies them
// (no store read: with 1,000 platforms of a few calls each, a Pebble scan
// per flush per platform was 4 % of the gateway's CPU); another lease's
// are read from the store, after every write submitted so far is applied.
// Its cost is per call but batched: one message per flush interval, not
// two round trips per call.
func (a *platformActor) flushLeases(c actor.Context) {
	if len(a.leases) == 0 || a.env.Clustered() {
		// In a cluster spend records arrive carried by their lease's
		// node (foldCarried), every LeaseFlushInterval.
		return
	}
	now := a.now()
	before := a.wallet.balance
	var ops []persistence.Op
	var mine *walletLease
	if v, ok := a.env.leases.Load(a.id.Platform); ok {
		mine = v.(*walletLease)
	}
	waited := false
	for _, l := range a.leases {
		if mine != nil && l.Id == mine.id {
			// This run's lease: its records, as the store applied them.
			ops = append(ops, a.foldApplied(l, mine.takeApplied())...)
			continue
		}
		if !waited {
			a.waitApplied() // what the scan reads must be applied first
			waited = true
		}
		ops = append(ops, a.foldSpend(l)...)
	}
	if len(ops) == 0 {
		return
	}
	ops = append(ops, a.write()...)
	ops = append(ops, a.walletLowEvent(now, before)...)
	// No reply of its own: a reply that follows waits for it through
	// respondDurable.
	a.flushOps(ops, a.env.BillingDurability == DurabilityBatch)
	a.maybeAutoTopup(c)
}

// foldSpend turns a lease's spend records into wallet usage entries and
// returns the ops: the entries, the records' deletion, the lease record.
// The balance and the lease's outstanding credit fall together, so free
// credit is unchanged. It returns nil when the lease has no spend.
func (a *platformActor) foldSpend(l *pb.Lease) []persistence.Op {
	var ops []persistence.Op
	_ = a.env.Store.ScanPrefix(persistence.LeaseSpendPrefix(a.p.Id, l.Id), false, func(k, v []byte) bool {
		ops = append(ops, persistence.DeleteOnce(append([]byte(nil), k...)))
		var s pb.LeaseSpend
		if err := proto.Unmarshal(v, &s); err != nil {
			a.env.Log.Error("corrupt lease spend record", "platform", a.p.Id, "lease", l.Id, "err", err)
			return true
		}
		// In a cluster the lease's node carries its records in order
		// (foldCarried); what is left here after a crash between a fold
		// and the deletion is at or below folded_seq.
		ops = append(ops, a.foldOne(l, binary.BigEndian.Uint64(k[len(k)-8:]), &s, a.env.Clustered())...)
		return true
	})
	if len(ops) == 0 {
		return nil
	}
	return append(ops, a.leaseOp(l))
}

// foldApplied folds spend records of lease l that the store applied
// (walletLease.applied) and deletes them, as foldSpend does for the
// records it reads. It returns nil when there are none.
func (a *platformActor) foldApplied(l *pb.Lease, spends []appliedSpend) []persistence.Op {
	if len(spends) == 0 {
		return nil
	}
	ops := make([]persistence.Op, 0, 2*len(spends)+1)
	for _, s := range spends {
		ops = append(ops, persistence.DeleteOnce(persistence.LeaseSpendKey(a.p.Id, l.Id, s.seq)))
		ops = append(ops, a.foldOne(l, s.seq, s.spend, false)...)
	}
	return append(ops, a.leaseOp(l))
}

// foldOne folds one spend record of lease l into the wallet. With dedupe
// (cluster mode, where a lease's node sends its records in seq order with
// no gap) a record at or below the lease's folded_seq was folded already
// and is skipped. On a single node records become visible out of seq
// order (concurrent actors), are folded as read and deleted in the same
// batch, and folded_seq is not used.
func (a *platformActor) foldOne(l *pb.Lease, seq uint64, s *pb.LeaseSpend, dedupe bool) []persistence.Op {
	if dedupe {
		if seq <= l.FoldedSeq {
			return nil
		}
		l.FoldedSeq = seq
	}
	// The lease held the cost: charging it gives that hold back and
	// debits the balance, so free credit is unchanged.
	l.SpentNanos += s.CostNanos
	l.Calls++
	e := a.wallet.charge(time.UnixMilli(s.AtMs), money.Nanos(s.CostNanos), money.Nanos(s.CostNanos))
	e.RequestId, e.Model, e.PromptTokens, e.CompletionTokens = s.RequestId, s.Model, s.PromptTokens, s.CompletionTokens
	return []persistence.Op{a.wallet.entryOp(e)}
}

// foldCarried folds the spend records a lease's node carried in a cluster
// flush; the answer follows their durability, and only then does the
// lease's node delete its records. A flush sent twice folds nothing twice
// (folded_seq).
func (a *platformActor) foldCarried(c actor.Context, m *pb.LeaseFlush) {
	l := a.leases[m.LeaseId]
	if l == nil {
		if m.Close {
			a.respondDurable(c, &pb.Ack{}) // closed already (at this actor's recovery)
			return
		}
		a.fail(c, errorf(ErrInvalid, "no lease %s", m.LeaseId))
		return
	}
	now := a.now()
	before := a.wallet.balance
	var ops []persistence.Op
	for _, s := range m.Spends {
		if s.GetSpend() != nil {
			ops = append(ops, a.foldOne(l, s.Seq, s.Spend, true)...)
		}
	}
	if m.Close {
		returned := l.GrantedNanos - l.SpentNanos
		a.wallet.unhold(money.Nanos(returned))
		e := a.wallet.note(now, EntryLeaseReturned)
		e.Reason = fmt.Sprintf("lease %s of an earlier run of node %s closed: %s unspent credit returned",
			l.Id, l.Node, money.Nanos(max(returned, 0)))
		ops = append(ops, a.wallet.entryOp(e))
		delete(a.leases, l.Id)
		ops = append(ops, persistence.Delete(persistence.LeaseKey(a.p.Id, l.Id)))
		ops = append(ops, a.write()...)
		ops = append(ops, a.walletLowEvent(now, before)...)
		a.commit(c, ops, &pb.Ack{}, false)
		return
	}
	if len(ops) == 0 {
		a.respondDurable(c, &pb.Ack{})
		return
	}
	ops = append(ops, a.leaseOp(l))
	ops = append(ops, a.write()...)
	ops = append(ops, a.walletLowEvent(now, before)...)
	a.commit(c, ops, &pb.Ack{}, false)
	a.maybeAutoTopup(c)
}

// loadLeases reads the wallet's lease records. A lease this node granted
// in an earlier run is closed: its spend records are folded into the
// wallet and the credit it still held is returned, with a ledger entry
// that says so. Leases of other nodes are theirs to close.
func (a *platformActor) loadLeases() {
	var stale []*pb.Lease
	_ = a.env.Store.ScanPrefix(persistence.LeasesPrefix(a.p.Id), false, func(_, v []byte) bool {
		var l pb.Lease
		if err := proto.Unmarshal(v, &l); err != nil {
			a.env.Log.Error("corrupt lease record", "platform", a.p.Id, "err", err)
			return true
		}
		a.leases[l.Id] = &l
		if l.Node == a.env.Node && l.Incarnation != a.env.incarnation {
			stale = append(stale, &l)
		}
		return true
	})
	a.holdLeases()
	if len(stale) == 0 {
		return
	}
	now := a.now()
	var ops []persistence.Op
	for _, l := range stale {
		spent := l.SpentNanos
		ops = append(ops, a.foldSpend(l)...)
		returned := l.GrantedNanos - l.SpentNanos
		a.wallet.unhold(money.Nanos(returned))
		e := a.wallet.note(now, EntryLeaseReturned)
		e.Reason = fmt.Sprintf("lease %s of an earlier run closed at recovery: %s of recorded calls folded in, %s unspent credit returned",
			l.Id, money.Nanos(l.SpentNanos-spent), money.Nanos(max(returned, 0)))
		ops = append(ops, a.wallet.entryOp(e))
		delete(a.leases, l.Id)
		ops = append(ops, persistence.Delete(persistence.LeaseKey(a.p.Id, l.Id)))
	}
	ops = append(ops, a.write()...)
	a.flushOps(ops, false)
}
