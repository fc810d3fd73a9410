package actors

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// endUserActor owns one end-user: its record, budget, ledger, rate windows
// and open reservations. Its rules live in [account]; Receive only loads,
// dispatches, appends records and replies.
type endUserActor struct {
	base
	acct         *account    // nil: no such end-user
	restored     []time.Time // expiries of reservations restored at activation
	sweepAt      time.Time   // the earliest sweep scheduled
	checkpointAt time.Time   // the rate windows' last checkpoint
	deltaSeq     uint64      // the last window delta written
}

// sweepReservations asks the actor to void its expired reservations. It
// never crosses nodes.
type sweepReservations struct{}

// defaultReservationTTL is how long a reservation may stay open when the
// admitting caller named no TTL.
const defaultReservationTTL = 15 * time.Minute

// scheduleSweep arranges a sweep at t (or earlier, if one is already due).
func (a *endUserActor) scheduleSweep(c actor.Context, t time.Time) {
	if !a.sweepAt.IsZero() && !a.sweepAt.After(t) {
		return
	}
	a.sweepAt = t
	self, root := a.self, c.ActorSystem().Root
	time.AfterFunc(time.Until(t)+time.Millisecond, func() { root.Send(self, sweepReservations{}) })
}

// sweep voids every reservation past its expiry: the reservation is
// released (budget and lease credit), recorded as reservation_expired with
// what it held, and its record deleted. A settlement that arrives later
// finds it unknown.
func (a *endUserActor) sweep(c actor.Context) {
	a.sweepAt = time.Time{}
	wall := time.Now()
	now := a.now()
	pid, uid := string(a.id.Platform), string(a.id.EndUser)
	var ops []persistence.Op
	var next time.Time
	for id, r := range a.acct.open {
		if r.expires.IsZero() {
			continue
		}
		if r.expires.After(wall) {
			if next.IsZero() || r.expires.Before(next) {
				next = r.expires
			}
			continue
		}
		held, wallet, rid := r.amount, r.wallet, r.requestID
		a.acct.release(id)
		if wallet > 0 {
			a.env.lease(a.id.Platform).release(wallet)
		}
		e := a.acct.entry(now, EntryReservationExpired, 0)
		e.RequestId, e.UnchargedNanos = rid, int64(held)
		e.Reason = "reservation " + id + " expired unsettled"
		ops = append(ops, persistence.DeleteOnce(persistence.ReservationKey(pid, uid, id)),
			persistence.Set(persistence.LedgerKey(pid, uid, e.Seq), marshal(e)))
	}
	if len(ops) > 0 {
		ops = append(ops, a.userOp())
		a.flushOps(ops, false)
	}
	if !next.IsZero() {
		a.scheduleSweep(c, next)
	}
}

func newEndUserActor(env *Env, id Identity) actor.Actor {
	return &endUserActor{base: base{env: env, id: id}}
}

func (a *endUserActor) Receive(c actor.Context) {
	msg := a.message(c)
	switch msg.(type) {
	case *actor.Started:
		a.self = c.Self()
		a.load(c)
		for _, t := range a.restored {
			a.scheduleSweep(c, t)
		}
		a.restored = nil
		// An actor for an end-user that does not exist (a typo, another
		// tenant's id) goes after a second, as the platform actor does.
		d := a.env.IdleTimeout
		if a.acct == nil && d > time.Second {
			d = time.Second
		}
		c.SetReceiveTimeout(d)
		return
	case *actor.ReceiveTimeout:
		a.passivate(c)
		return
	case *actor.Stopping, *actor.Stopped, *actor.Restarting:
		return
	case evictNow:
		a.stopped = true
		close(msg.(evictNow))
		return
	case evictDrain:
		a.draining = true
		msg.(evictDrain) <- (a.acct == nil || len(a.acct.open) == 0) && a.pending.Load() == 0
		return
	case sweepReservations:
		if !a.stopped && a.acct != nil {
			a.sweep(c)
		}
		return
	}
	if a.stopped || a.draining && !a.settlesOpen(msg) {
		a.refusePassivated(c)
		return
	}
	if h := a.env.beforeMessage; h != nil {
		h(msg)
	}
	if a.acct == nil {
		if _, ok := msg.(*pb.DeleteEndUser); ok {
			a.sweepKeys(c)
			return
		}
		a.fail(c, errorf(ErrNotFound, "end-user %s not found", a.id.EndUser))
		return
	}
	now := a.now()
	var pre []persistence.Op
	if e := a.acct.resetIfDue(now); e != nil {
		pre = a.entryOps(e)
	}
	switch m := msg.(type) {
	case *pb.GetEndUser:
		a.flush(pre)
		a.respondDurable(c, a.view())
	case *pb.PatchEndUser:
		u := a.acct.user
		if m.SetDisplayName {
			u.DisplayName = m.DisplayName
		}
		if m.SetMetadata {
			u.MetadataJson = m.MetadataJson
		}
		u.UpdatedAtMs = now.UnixMilli()
		a.commit(c, append(pre, a.userOp()), a.view(), false)
	case *pb.DeleteEndUser:
		a.delete(c)
	case *pb.SetBudget:
		a.setBudget(c, pre, m)
	case *pb.GetBudget:
		a.flush(pre)
		if a.acct.user.Budget == nil {
			a.fail(c, errorf(ErrNotFound, "end-user %s has no budget", a.id.EndUser))
			return
		}
		a.respondDurable(c, &pb.BudgetView{Budget: snapshot(a.acct.user.Budget), ReservedNanos: int64(a.acct.reserved)})
	case *pb.DeleteBudget:
		if a.acct.user.Budget == nil {
			a.flush(pre)
			a.fail(c, errorf(ErrNotFound, "end-user %s has no budget", a.id.EndUser))
			return
		}
		// Close the budget's ledger with an entry taking the balance to
		// zero, so it still sums to the balance if a budget is created
		// again.
		b := a.acct.user.Budget
		closing := money.Nanos(-b.BalanceNanos)
		b.BalanceNanos = 0
		e := a.acct.entry(now, EntryBudgetSet, closing)
		e.Reason = "budget deleted"
		a.acct.user.Budget = nil
		a.commit(c, append(pre, a.entryOps(e)...), &pb.Ack{}, false)
	case *pb.BudgetTopup:
		a.topup(c, pre, m)
	case *pb.ListLedger:
		a.flush(pre)
		// The listing reads the store: it must see this actor's writes,
		// the lazy reset just flushed included, or it would not sum to
		// the balance.
		a.readYourWrites()
		a.respondDurable(c, listLedger(a.env.Store, string(a.id.Platform), string(a.id.EndUser), m))
	case *pb.SetRateLimits:
		a.acct.user.RateLimits = m.Limits
		a.acct.user.UpdatedAtMs = now.UnixMilli()
		a.commit(c, append(pre, a.userOp()), a.view(), false)
	case *pb.Admit:
		a.admit(c, pre, m)
	case *pb.CountRequest:
		a.flush(pre)
		info, err := a.acct.countRequest(now, a.limits())
		if err != nil {
			a.fail(c, err)
			return
		}
		a.respond(c, &pb.Admitted{Rate: info})
	case *pb.Settle:
		a.settle(c, pre, m)
	case *pb.Release:
		a.release(c, pre, m)
	default:
		a.flush(pre)
		a.fail(c, errorf(ErrInvalid, "end-user actor cannot handle %T", m))
	}
}

func (a *endUserActor) limits() *pb.RateLimits {
	return limitsFor(a.acct.user.RateLimits, a.env.shared(a.id.Platform).limits.Load())
}

func (a *endUserActor) view() *pb.EndUserView {
	return &pb.EndUserView{EndUser: snapshot(a.acct.user), EffectiveRateLimits: a.limits()}
}

func (a *endUserActor) userOp() persistence.Op {
	u := a.acct.user
	return persistence.Set(persistence.EndUserKey(u.PlatformId, u.Id), marshal(u))
}

func (a *endUserActor) entryOps(e *pb.LedgerEntry) []persistence.Op {
	return []persistence.Op{
		persistence.Set(persistence.LedgerKey(e.PlatformId, e.Account, e.Seq), marshal(e)),
		a.userOp(),
	}
}

// flush writes ops (a lazy period reset) without a reply of its own; the
// reply that follows waits for them through respondDurable.
func (a *endUserActor) flush(ops []persistence.Op) {
	if len(ops) > 0 {
		a.flushOps(ops, false)
	}
}

func (a *endUserActor) load(c actor.Context) {
	a.env.fetchRecords(a.id)
	a.waitApplied()
	st := a.env.Store
	pid, uid := string(a.id.Platform), string(a.id.EndUser)
	raw, err := st.Get(persistence.EndUserKey(pid, uid))
	if err != nil {
		return
	}
	var u pb.EndUser
	if err := proto.Unmarshal(raw, &u); err != nil {
		a.env.Log.Error("corrupt end-user record", "end_user", uid, "err", err)
		return
	}
	a.acct = newAccount(&u)
	a.env.loadShared(a.id.Platform)
	if raw, err := st.Get(persistence.WindowsKey(pid, uid)); err == nil {
		a.restoreWindows(raw)
	}
	// What the checkpoint cannot know: calls settled after it (their
	// window deltas) and calls in flight at a crash (their reservation
	// records), put back into the windows so a crash never lets more than
	// a limit through in any window.
	limited := a.rateLimited()
	if limited {
		a.replayWindows()
	}
	// Reservations still open here were admitted before a crash and never
	// settled: void them, recording what they held for reconciliation.
	var ops []persistence.Op
	now := a.now()
	_ = st.ScanPrefix(persistence.ReservationPrefix(pid, uid), false, func(k, v []byte) bool {
		var r pb.Reservation
		if proto.Unmarshal(v, &r) == nil && r.Incarnation == a.env.incarnation {
			// This process admitted it: the actor restarted (after a
			// panic), the call is still in flight and its lease credit
			// still held. Keep it open; it settles or expires as usual.
			a.acct.restore(&r)
			a.restored = append(a.restored, time.UnixMilli(r.ExpiresAtMs))
			return true
		}
		// Every open reservation of an earlier run leaves a trace, budget
		// or not: the end-user's ledger says which call was in flight at
		// the crash.
		if proto.Unmarshal(v, &r) == nil {
			if limited {
				a.acct.recount(time.UnixMilli(r.CreatedAtMs), r.Tokens)
			}
			e := a.acct.entry(now, EntryUnsettledOnCrash, 0)
			e.RequestId = r.RequestId
			e.UnchargedNanos = r.AmountNanos
			e.Reason = "reservation " + r.Id + " open at crash"
			ops = append(ops, persistence.Set(persistence.LedgerKey(pid, uid, e.Seq), marshal(e)))
		}
		ops = append(ops, persistence.DeleteOnce(append([]byte(nil), k...)))
		return true
	})
	if len(ops) > 0 {
		ops = append(ops, a.userOp())
		a.flush(ops)
	}
}

// replayWindows counts into the rate windows the calls settled since the
// checkpoint: one small delta record each, written with its settlement.
func (a *endUserActor) replayWindows() {
	_ = a.env.Store.ScanPrefix(persistence.WindowDeltasPrefix(string(a.id.Platform), string(a.id.EndUser)), false, func(k, v []byte) bool {
		if len(k) >= 8 {
			a.deltaSeq = max(a.deltaSeq, binary.BigEndian.Uint64(k[len(k)-8:]))
		}
		ms, n := binary.Varint(v)
		if n <= 0 {
			return true
		}
		tokens, m := binary.Varint(v[n:])
		if m <= 0 {
			return true
		}
		a.acct.recount(time.UnixMilli(ms), tokens)
		return true
	})
}

// rateLimited reports whether any rate limit applies to this end-user.
func (a *endUserActor) rateLimited() bool {
	lim := a.limits()
	return lim.RequestsPerMinute > 0 || lim.RequestsPerDay > 0 || lim.TokensPerMinute > 0
}

// checkpointEvery bounds how often a settlement carries a windows
// checkpoint; what happened since the last one is replayed from the
// ledger at activation.
const checkpointEvery = time.Second

// windowsOps returns what a settlement writes for the rate windows when
// rate limits apply: a checkpoint of the windows (which replaces every
// delta) at most every checkpointEvery, and in between one small delta
// for the call (its admission time and tokens).
func (a *endUserActor) windowsOps(now, admitted time.Time, tokens int64) []persistence.Op {
	if !a.rateLimited() {
		return nil
	}
	pid, uid := string(a.id.Platform), string(a.id.EndUser)
	if now.Sub(a.checkpointAt) >= checkpointEvery {
		a.checkpointAt = now
		prefix := persistence.WindowDeltasPrefix(pid, uid)
		ops := []persistence.Op{persistence.DeleteRange(prefix, persistence.PrefixEnd(prefix))}
		if w := a.encodeWindows(now); w != nil {
			return append(ops, persistence.Set(persistence.WindowsKey(pid, uid), w))
		}
		return append(ops, persistence.Delete(persistence.WindowsKey(pid, uid)))
	}
	a.deltaSeq++
	v := binary.AppendVarint(nil, admitted.UnixMilli())
	v = binary.AppendVarint(v, tokens)
	return []persistence.Op{persistence.Set(persistence.WindowDeltaKey(pid, uid, a.deltaSeq), v)}
}

func (a *endUserActor) passivate(c actor.Context) {
	if a.acct != nil && (len(a.acct.open) > 0 || a.pending.Load() > 0) {
		return
	}
	if a.acct != nil {
		// Save the rate windows before giving up the identity, so the
		// next activation (which first waits for this write) restores them.
		// The checkpoint replaces the deltas in the same write.
		now := a.now()
		key := persistence.WindowsKey(string(a.id.Platform), string(a.id.EndUser))
		deltas := persistence.WindowDeltasPrefix(string(a.id.Platform), string(a.id.EndUser))
		ops := []persistence.Op{persistence.DeleteRange(deltas, persistence.PrefixEnd(deltas)), persistence.Delete(key)}
		if w := a.encodeWindows(now); w != nil {
			ops[1] = persistence.Set(key, w)
		}
		a.env.Store.Submit(persistence.Write{Ops: ops, NoSync: true, Done: func(error) {}})
	}
	if a.env.dir != nil && !a.env.dir.tryPassivate(a.id, a.self) {
		return
	}
	a.stopped = true
	c.Stop(a.self)
}

// windowsV2 opens a windows checkpoint that carries its time (unix ms); an
// older checkpoint starts directly with the RPM window's length, a
// minimal uvarint, which never begins 0xff 0x00.
var windowsV2 = []byte{0xff, 0x00}

func (a *endUserActor) encodeWindows(t time.Time) []byte {
	ws := [][]wentry{a.acct.rpm.snapshot(t), a.acct.tpm.snapshot(t), a.acct.rpd.snapshot(t)}
	if len(ws[0])+len(ws[1])+len(ws[2]) == 0 {
		return nil
	}
	b := append([]byte(nil), windowsV2...)
	b = binary.AppendVarint(b, t.UnixMilli())
	for _, w := range ws {
		b = binary.AppendUvarint(b, uint64(len(w)))
		for _, e := range w {
			b = binary.AppendVarint(b, e.at)
			b = binary.AppendVarint(b, e.units)
		}
	}
	return b
}

// restoreWindows loads a checkpoint and returns its time (unix ms; 0 for
// a checkpoint of the older format, which was written only at
// passivation).
func (a *endUserActor) restoreWindows(b []byte) (at int64) {
	if bytes.HasPrefix(b, windowsV2) {
		v, k := binary.Varint(b[len(windowsV2):])
		if k <= 0 {
			return 0
		}
		at, b = v, b[len(windowsV2)+k:]
	}
	ws := []*window{&a.acct.rpm, &a.acct.tpm, &a.acct.rpd}
	for _, w := range ws {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > 1<<20 {
			return at
		}
		b = b[k:]
		es := make([]wentry, 0, n)
		for i := uint64(0); i < n; i++ {
			t, k1 := binary.Varint(b)
			if k1 <= 0 {
				return at
			}
			units, k2 := binary.Varint(b[k1:])
			if k2 <= 0 {
				return at
			}
			b = b[k1+k2:]
			es = append(es, wentry{at: t, units: units})
		}
		w.restore(es)
	}
	return at
}

func (a *endUserActor) delete(c actor.Context) {
	pid, uid := string(a.id.Platform), string(a.id.EndUser)
	ops := []persistence.Op{
		persistence.Delete(persistence.EndUserKey(pid, uid)),
		persistence.Delete(persistence.ExternalKey(pid, a.acct.user.ExternalId)),
		persistence.Delete(persistence.WindowsKey(pid, uid)),
		persistence.DeleteRange(persistence.WindowDeltasPrefix(pid, uid), persistence.PrefixEnd(persistence.WindowDeltasPrefix(pid, uid))),
	}
	ops = append(ops, a.revokeKeys()...)
	for _, app := range persistence.MCPAppNames {
		ops = append(ops, persistence.Delete(persistence.MCPConnKey(pid, app, uid)))
	}
	for _, p := range [][]byte{
		persistence.ResponsesPrefix(pid, uid),
		persistence.LedgerPrefix(pid, uid),
		persistence.IdempotencyPrefix(pid, uid),
		persistence.ReservationPrefix(pid, uid),
	} {
		ops = append(ops, persistence.DeleteRange(p, persistence.PrefixEnd(p)))
	}
	a.acct = nil
	a.commit(c, ops, &pb.Ack{}, false)
}

// revokeKeys revokes every key indexed under this end-user and returns the
// ops that delete them. Index entries go one by one, not by range: a key
// the platform actor mints for a create racing with the delete may land
// between this scan and the delete's commit, and must stay findable for
// sweepKeys.
func (a *endUserActor) revokeKeys() []persistence.Op {
	var ops []persistence.Op
	_ = a.env.Store.ScanPrefix(persistence.UserKeysPrefix(string(a.id.Platform), string(a.id.EndUser)), false, func(k, digest []byte) bool {
		d := append([]byte(nil), digest...)
		a.env.Auth.revoke(d)
		ops = append(ops, persistence.Delete(persistence.APIKeyKey(d)), persistence.Delete(append([]byte(nil), k...)))
		return true
	})
	return ops
}

// sweepKeys answers DeleteEndUser for an end-user already deleted: it
// revokes keys minted for it since (see revokeKeys) and answers not_found
// once that is durable. The edge sends it when a create that found the
// end-user turns out to have raced with its deletion.
func (a *endUserActor) sweepKeys(c actor.Context) {
	a.commit(c, a.revokeKeys(), errorf(ErrNotFound, "end-user %s not found", a.id.EndUser).failure(), false)
}

func (a *endUserActor) setBudget(c actor.Context, pre []persistence.Op, m *pb.SetBudget) {
	now := a.now()
	u := a.acct.user
	in := m.Budget
	if in == nil {
		in = &pb.Budget{}
	}
	if m.Create {
		if u.Budget != nil {
			a.flush(pre)
			a.fail(c, errorf(ErrConflict, "end-user %s already has a budget; PATCH it", u.Id))
			return
		}
		if !ValidPeriod(in.Period) {
			in.Period = PeriodOneTime
		}
		b := &pb.Budget{
			AmountNanos: in.AmountNanos, Period: in.Period, BalanceNanos: in.AmountNanos,
			IsSuspended: in.IsSuspended, LowBalanceNanos: in.LowBalanceNanos,
			PeriodStartMs: periodStart(in.Period, now).UnixMilli(),
			CreatedAtMs:   now.UnixMilli(), UpdatedAtMs: now.UnixMilli(),
		}
		u.Budget = b
		e := a.acct.entry(now, EntryBudgetSet, money.Nanos(b.AmountNanos))
		e.Reason = "budget created"
		a.commit(c, append(pre, a.entryOps(e)...), &pb.BudgetView{Budget: snapshot(b), ReservedNanos: int64(a.acct.reserved)}, false)
		return
	}
	b := u.Budget
	if b == nil {
		a.flush(pre)
		a.fail(c, errorf(ErrNotFound, "end-user %s has no budget; POST one first", u.Id))
		return
	}
	ops := pre
	for _, f := range m.Fields {
		switch f {
		case "amount_usd":
			// A new period amount applies from the next reset; the current
			// balance moves by the difference so the ledger explains it.
			delta := in.AmountNanos - b.AmountNanos
			b.AmountNanos = in.AmountNanos
			// Never below zero: an amount lowered under this period's
			// spend ends the period's allowance; it creates no debt.
			delta = max(delta, -b.BalanceNanos)
			if delta != 0 {
				b.BalanceNanos += delta
				e := a.acct.entry(now, EntryBudgetSet, money.Nanos(delta))
				e.Reason = "amount changed"
				ops = append(ops, a.entryOps(e)...)
			}
		case "period":
			if b.Period != in.Period {
				b.Period = in.Period
				b.PeriodStartMs = periodStart(in.Period, now).UnixMilli()
			}
		case "is_suspended":
			if b.IsSuspended != in.IsSuspended {
				typ := EventBudgetSuspended
				if !in.IsSuspended {
					typ = EventBudgetUnsuspend
				}
				ops = append(ops, a.env.event(a.id.Platform, typ, now, a.eventData(b))...)
			}
			b.IsSuspended = in.IsSuspended
		case "low_balance_threshold_usd":
			b.LowBalanceNanos = in.LowBalanceNanos
		}
	}
	b.UpdatedAtMs = now.UnixMilli()
	ops = append(ops, a.userOp())
	a.commit(c, ops, &pb.BudgetView{Budget: snapshot(b), ReservedNanos: int64(a.acct.reserved)}, false)
}

func (a *endUserActor) topup(c actor.Context, pre []persistence.Op, m *pb.BudgetTopup) {
	pid, uid := string(a.id.Platform), string(a.id.EndUser)
	route := "topup"
	if m.Debit {
		route = "debit"
	}
	if m.IdempotencyKey != "" {
		rec, err := a.idempotent(pid, uid, route, m.IdempotencyKey, m.RequestHash)
		if err != nil {
			a.flush(pre)
			a.fail(c, err)
			return
		}
		if rec != nil && rec.Status == 0 {
			// The original was refused after it executed: replay the
			// refusal, durable first like any replay.
			a.flush(pre)
			var f pb.Failure
			if err := proto.Unmarshal(rec.Reply, &f); err != nil {
				a.fail(c, err)
				return
			}
			f.Replayed = true
			a.commit(c, nil, &f, false)
			return
		}
		if rec != nil {
			// The original's record is in the store; answer only once it
			// (and everything before it) is durable.
			a.flush(pre)
			var v pb.BudgetView
			if err := proto.Unmarshal(rec.Reply, &v); err != nil {
				a.fail(c, err)
				return
			}
			v.Replayed = true
			a.commit(c, nil, &v, false)
			return
		}
	}
	now := a.now()
	e, err := a.acct.credit(now, money.Nanos(m.AmountNanos), m.Debit)
	if err != nil {
		var re *Error
		if m.IdempotencyKey != "" && errors.As(err, &re) && rememberedRefusal(re) {
			// Executed and refused by the account's state: remembered
			// under the key, so a retry after a top-up replays the 402
			// instead of applying (Stripe's semantics).
			rec := &pb.IdempotencyRecord{Key: m.IdempotencyKey, RequestHash: m.RequestHash, Status: 0, Reply: marshal(re.failure()), CreatedAtMs: now.UnixMilli()}
			ops := append(pre, persistence.Set(persistence.IdempotencyKey(pid, uid, route, m.IdempotencyKey), marshal(rec)))
			a.commit(c, ops, re.failure(), false)
			return
		}
		a.flush(pre)
		a.fail(c, err)
		return
	}
	e.Reason, e.IdempotencyKey, e.RequestId = m.Reason, m.IdempotencyKey, m.RequestId
	reply := &pb.BudgetView{Budget: proto.Clone(a.acct.user.Budget).(*pb.Budget), ReservedNanos: int64(a.acct.reserved), Entry: e}
	ops := append(pre, a.entryOps(e)...)
	if m.IdempotencyKey != "" {
		rec := &pb.IdempotencyRecord{Key: m.IdempotencyKey, RequestHash: m.RequestHash, Status: 200, Reply: marshal(reply), CreatedAtMs: now.UnixMilli()}
		ops = append(ops, persistence.Set(persistence.IdempotencyKey(pid, uid, route, m.IdempotencyKey), marshal(rec)))
	}
	typ := EventBudgetToppedUp
	if m.Debit {
		typ = EventBudgetDebited
	}
	ops = append(ops, a.entryEvent(now, typ, e)...)
	ops = append(ops, a.lowBalanceEvent(now)...)
	a.commit(c, ops, reply, false)
}

func (a *endUserActor) admit(c actor.Context, pre []persistence.Op, m *pb.Admit) {
	now := a.now()
	a.flush(pre)
	wall := time.Now()
	if m.DeadlineMs > 0 && wall.UnixMilli() > m.DeadlineMs {
		// The caller gave up before this Admit was processed: reserving
		// now would hold money no one will settle or release.
		a.fail(c, errorf(ErrUnavailable, "admission processed after the caller's deadline"))
		return
	}
	charge, err := a.withMarkup(m.MaxCostNanos)
	if err != nil {
		a.fail(c, err)
		return
	}
	reply := &pb.Admitted{MarkupBps: a.env.shared(a.id.Platform).markup.Load()}
	if _, dup := a.acct.open[m.ReservationId]; dup {
		a.fail(c, errorf(ErrConflict, "reservation %s already open", m.ReservationId))
		return
	}
	lim := a.limits()
	req := &pb.Admit{ReservationId: m.ReservationId, RequestId: m.RequestId, EstimatedTokens: m.EstimatedTokens, MaxCostNanos: int64(charge)}
	// Refusals that cost nothing to check come first: a call the budget,
	// the rate windows or the parallel cap refuse never waits for a refill.
	info, err := a.acct.check(now, lim, m.EstimatedTokens, charge)
	if err != nil {
		a.fail(c, err)
		return
	}
	var lease *walletLease
	wallet := money.Nanos(m.MaxCostNanos)
	if m.Provider != "" {
		if reply.Provider = a.env.provider(a.id.Platform, m.Provider); reply.Provider == nil {
			a.fail(c, errorf(ErrProviderNotEnabled, "provider %s is not configured and enabled for this platform", m.Provider))
			return
		}
		lease = a.env.lease(a.id.Platform)
		ctx, cancel := context.WithTimeout(context.Background(), a.env.AskTimeout)
		err := lease.reserve(ctx, wallet)
		cancel()
		if err != nil {
			a.fail(c, err)
			return
		}
		// A refill blocked this actor only: its state is as checked.
	}
	a.acct.record(now, lim, req, info)
	ttl := time.Duration(m.TtlMs) * time.Millisecond
	if ttl <= 0 {
		ttl = defaultReservationTTL
	}
	r := a.acct.open[m.ReservationId]
	r.expires = wall.Add(ttl)
	if lease != nil {
		r.wallet = wallet
	}
	a.scheduleSweep(c, r.expires)
	reply.Rate = info
	// The reservation record is appended without waiting for its fsync:
	// time to first token pays nothing for it. Recovery voids any that a
	// crash left open.
	rec := &pb.Reservation{Id: m.ReservationId, RequestId: m.RequestId, AmountNanos: int64(charge), Tokens: m.EstimatedTokens, CreatedAtMs: now.UnixMilli(),
		WalletNanos: int64(r.wallet), ExpiresAtMs: r.expires.UnixMilli(), Incarnation: a.env.incarnation}
	a.flushOps([]persistence.Op{persistence.Set(persistence.ReservationKey(string(a.id.Platform), string(a.id.EndUser), m.ReservationId), marshal(rec))}, true)
	a.respond(c, reply)
}

func (a *endUserActor) release(c actor.Context, pre []persistence.Op, m *pb.Release) {
	a.flush(pre)
	if r, ok := a.acct.open[m.ReservationId]; ok {
		if r.wallet > 0 {
			a.env.lease(a.id.Platform).release(r.wallet)
		}
		a.acct.release(m.ReservationId)
		a.flushOps([]persistence.Op{persistence.DeleteOnce(persistence.ReservationKey(string(a.id.Platform), string(a.id.EndUser), m.ReservationId))}, true)
	}
	a.respond(c, &pb.Ack{})
}

// settle closes a reservation with the call's actual provider cost: the
// budget is charged the cost with markup, the wallet lease the cost, and
// both records (the budget's usage entry and the lease's spend record) go
// in one atomic batch.
func (a *endUserActor) settle(c actor.Context, pre []persistence.Op, m *pb.Settle) {
	now := a.now()
	charge, err := a.withMarkup(m.CostNanos)
	if err != nil {
		a.flush(pre)
		a.fail(c, err)
		return
	}
	r := a.acct.open[m.ReservationId]
	e, err := a.acct.settle(now, a.limits(), &pb.Settle{
		ReservationId: m.ReservationId, CostNanos: int64(charge), Tokens: m.Tokens, RequestId: m.RequestId,
		Model: m.Model, PromptTokens: m.PromptTokens, CompletionTokens: m.CompletionTokens,
	})
	if err != nil {
		a.flush(pre)
		a.fail(c, err)
		return
	}
	pid, uid := string(a.id.Platform), string(a.id.EndUser)
	ops := append(pre, persistence.DeleteOnce(persistence.ReservationKey(pid, uid, m.ReservationId)))
	var lease *walletLease
	var walletCharged int64
	if r.wallet > 0 {
		lease = a.env.lease(a.id.Platform)
		charged, _ := lease.settle(r.wallet, money.Nanos(m.CostNanos))
		spend := &pb.LeaseSpend{
			RequestId: m.RequestId, EndUserId: uid, CostNanos: int64(charged), Model: m.Model,
			PromptTokens: m.PromptTokens, CompletionTokens: m.CompletionTokens, AtMs: now.UnixMilli(),
		}
		ops = append(ops, persistence.Set(persistence.LeaseSpendKey(pid, lease.id, lease.seq.Add(1)), marshal(spend)))
		walletCharged = int64(charged)
		if e != nil {
			e.ProviderCostNanos = int64(charged)
		}
	}
	reply := &pb.Settled{WalletNanos: walletCharged}
	if e != nil {
		ops = append(ops, a.entryOps(e)...)
		ops = append(ops, a.entryEvent(now, EventBudgetDebited, e)...)
		ops = append(ops, a.lowBalanceEvent(now)...)
		reply.ChargedNanos, reply.HasBudget = -e.AmountNanos, true
	}
	ops = append(ops, a.windowsOps(now, r.at, m.Tokens)...)
	a.commit(c, ops, reply, a.env.BillingDurability == DurabilityBatch)
	if lease != nil {
		lease.spent()
	}
}

// rememberedRefusal reports whether a refusal of an idempotent money
// request is stored under its key: refusals the account's state decided
// (no budget, not enough balance). Validation refusals (amount out of
// range) and 409s while the first request is in flight are not: the
// request never executed.
func rememberedRefusal(e *Error) bool {
	return e.Code == ErrBudgetExhausted.Code || e.Code == ErrNotFound.Code
}

// ErrIsNotFound reports whether err is a not_found refusal.
func ErrIsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// eventData is what every budget event carries: who, and the balance now.
func (a *endUserActor) eventData(b *pb.Budget) map[string]any {
	u := a.acct.user
	return map[string]any{
		"end_user_id": u.Id, "external_id": u.ExternalId,
		"balance_usd": usd(b.BalanceNanos), "amount_usd": usd(b.AmountNanos), "period": b.Period,
	}
}

// entryEvent is a budget.topped_up or budget.debited event for entry e.
func (a *endUserActor) entryEvent(now time.Time, typ string, e *pb.LedgerEntry) []persistence.Op {
	if a.env.Subscriptions == nil {
		return nil
	}
	d := a.eventData(a.acct.user.Budget)
	amt := e.AmountNanos
	if amt < 0 {
		amt = -amt
	}
	d["amount_usd"] = usd(amt)
	d["transaction_id"] = e.Id
	d["transaction_type"] = e.Type
	if e.Reason != "" {
		d["reason"] = e.Reason
	}
	if e.RequestId != "" {
		d["request_id"] = e.RequestId
	}
	if e.Model != "" {
		d["model"] = e.Model
	}
	return a.env.event(a.id.Platform, typ, now, d)
}

// lowBalanceEvent fires budget.low_balance once per crossing below the
// budget's threshold.
func (a *endUserActor) lowBalanceEvent(now time.Time) []persistence.Op {
	if !a.acct.lowBalanceCrossed() {
		return nil
	}
	b := a.acct.user.Budget
	d := a.eventData(b)
	d["threshold_usd"] = usd(b.LowBalanceNanos)
	return a.env.event(a.id.Platform, EventBudgetLowBalance, now, d)
}

// withMarkup turns a provider cost into the end-user's charge: cost ×
// (1 + markup), rounded up to the next nano-USD, in exact integers.
func (a *endUserActor) withMarkup(cost int64) (money.Nanos, error) {
	if cost < 0 {
		return 0, errorf(ErrInvalid, "negative cost")
	}
	bps := a.env.shared(a.id.Platform).markup.Load()
	if bps == 0 {
		return money.Nanos(cost), nil
	}
	v, err := money.MulDivCeil(money.Nanos(cost), 10_000+bps, 10_000)
	if err != nil {
		return 0, errorf(ErrAmountOutOfRange, "cost with markup overflows")
	}
	return v, nil
}

// settlesOpen reports whether msg settles or releases a call this actor
// admitted and has not closed: what a draining actor still accepts.
func (a *endUserActor) settlesOpen(msg any) bool {
	if a.acct == nil {
		return false
	}
	var rid string
	switch m := msg.(type) {
	case *pb.Settle:
		rid = m.ReservationId
	case *pb.Release:
		rid = m.ReservationId
	default:
		return false
	}
	_, ok := a.acct.open[rid]
	return ok
}
