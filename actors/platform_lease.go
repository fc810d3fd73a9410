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
// closes the leases of a previous run at activation.

// outstanding is the credit held by leases: granted minus spend already
// folded into the balance. It never exceeds the balance.
func (a *platformActor) outstanding() money.Nanos {
	var n money.Nanos
	for _, l := range a.leases {
		n += money.Nanos(l.GrantedNanos - l.SpentNanos)
	}
	return n
}

func (a *platformActor) walletView() *pb.WalletView {
	v := &pb.WalletView{Wallet: snapshot(a.p.Wallet), LeasedNanos: int64(a.outstanding())}
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
	free := money.Nanos(a.p.Wallet.BalanceNanos) - a.outstanding()
	g := min(money.Nanos(m.WantNanos), max(free, 0))
	if g < money.Nanos(m.MinNanos) || g == 0 && m.MinNanos > 0 {
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
	a.commit(c, []persistence.Op{a.leaseOp(l)}, &pb.Ack{}, false)
}

// flushLeases folds every lease's spend records into the wallet: one usage
// entry per settled call (the wallet's transactions show each call's
// cost, as before leases), the records deleted in the same batch. It
// reads what the end-user actors wrote, so it first waits until every
// write submitted so far is applied. Its cost is per call but batched:
// one message per flush interval, not two round trips per call.
func (a *platformActor) flushLeases(c actor.Context) {
	if len(a.leases) == 0 || a.env.Clustered() {
		// In a cluster spend records arrive carried by their lease's
		// node (foldCarried), every LeaseFlushInterval.
		return
	}
	a.waitApplied()
	now := a.now()
	before := a.p.Wallet.BalanceNanos
	var ops []persistence.Op
	for _, l := range a.leases {
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
	w := a.p.Wallet
	cost := money.Nanos(s.CostNanos)
	charged := min(cost, money.Nanos(max(w.BalanceNanos, 0)))
	w.BalanceNanos -= int64(charged)
	l.SpentNanos += s.CostNanos
	l.Calls++
	e := a.walletEntry(time.UnixMilli(s.AtMs), EntryUsage, -charged)
	e.RequestId, e.Model, e.PromptTokens, e.CompletionTokens = s.RequestId, s.Model, s.PromptTokens, s.CompletionTokens
	e.UnchargedNanos = int64(cost - charged)
	return []persistence.Op{persistence.Set(persistence.LedgerKey(a.p.Id, WalletAccount, e.Seq), marshal(e))}
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
	before := a.p.Wallet.BalanceNanos
	var ops []persistence.Op
	for _, s := range m.Spends {
		if s.GetSpend() != nil {
			ops = append(ops, a.foldOne(l, s.Seq, s.Spend, true)...)
		}
	}
	if m.Close {
		returned := l.GrantedNanos - l.SpentNanos
		e := a.walletEntry(now, EntryLeaseReturned, 0)
		e.Reason = fmt.Sprintf("lease %s of an earlier run of node %s closed: %s unspent credit returned",
			l.Id, l.Node, money.Nanos(max(returned, 0)))
		ops = append(ops, persistence.Set(persistence.LedgerKey(a.p.Id, WalletAccount, e.Seq), marshal(e)))
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
	if len(stale) == 0 {
		return
	}
	now := a.now()
	var ops []persistence.Op
	for _, l := range stale {
		spent := l.SpentNanos
		ops = append(ops, a.foldSpend(l)...)
		returned := l.GrantedNanos - l.SpentNanos
		e := a.walletEntry(now, EntryLeaseReturned, 0)
		e.Reason = fmt.Sprintf("lease %s of an earlier run closed at recovery: %s of recorded calls folded in, %s unspent credit returned",
			l.Id, money.Nanos(l.SpentNanos-spent), money.Nanos(max(returned, 0)))
		ops = append(ops, persistence.Set(persistence.LedgerKey(a.p.Id, WalletAccount, e.Seq), marshal(e)))
		delete(a.leases, l.Id)
		ops = append(ops, persistence.Delete(persistence.LeaseKey(a.p.Id, l.Id)))
	}
	ops = append(ops, a.write()...)
	a.flushOps(ops, false)
}
