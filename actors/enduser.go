package actors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// endUserActor owns one end-user: its record, budget, ledger, rate windows
// and open reservations. Its rules live in [endUser] (money in its
// [account]); Receive only loads, dispatches, appends records and replies.
// What it keeps while idle is that compact state and little else: no
// protobuf message, no timer once no reservation is open.
type endUserActor struct {
	base
	eu           *endUser    // nil: no such end-user
	sweep        *time.Timer // the reservation sweep scheduled, while any is open
	sweepAt      int64       // when it fires (unix ms)
	checkpointAt int64       // the rate windows' last checkpoint (unix nanos)
	deltaSeq     uint64      // the last window delta written
	// deltas: window deltas may be stored since the last checkpoint, so
	// the next one deletes them. False only when known: a range deletion
	// per checkpoint would leave a tombstone per settlement second.
	deltas bool
}

// sweepReservations asks the actor to void its expired reservations. It
// never crosses nodes.
type sweepReservations struct{}

// defaultReservationTTL is how long a reservation may stay open when the
// admitting caller named no TTL.
const defaultReservationTTL = 15 * time.Minute

// scheduleSweep arranges a sweep at t (or earlier, if one is already due).
func (a *endUserActor) scheduleSweep(c actor.Context, t time.Time) {
	if a.sweep != nil && a.sweepAt <= t.UnixMilli() {
		return
	}
	if a.sweep != nil {
		a.sweep.Stop()
	}
	a.sweepAt = t.UnixMilli()
	self, root := a.self, c.ActorSystem().Root
	a.sweep = time.AfterFunc(time.Until(t)+time.Millisecond, func() { root.Send(self, sweepReservations{}) })
}

// unscheduleSweep stops the sweep timer once no reservation is open: an
// idle actor keeps no timer but its receive timeout.
func (a *endUserActor) unscheduleSweep() {
	if a.sweep != nil && a.eu != nil && a.eu.open.len() == 0 {
		a.sweep.Stop()
		a.sweep, a.sweepAt = nil, 0
	}
}

// sweep voids every reservation past its expiry: the reservation is
// released (budget and lease credit), recorded as reservation_expired with
// what it held, and its record deleted. A settlement that arrives later
// finds it unknown.
func (a *endUserActor) sweepExpired(c actor.Context) {
	a.sweep, a.sweepAt = nil, 0
	wall := time.Now()
	now := a.now()
	pid, uid := string(a.id.Platform), string(a.id.EndUser)
	var ops []persistence.Op
	var next time.Time
	for _, r := range a.eu.open.all() {
		if r.expires.IsZero() {
			continue
		}
		if r.expires.After(wall) {
			if next.IsZero() || r.expires.Before(next) {
				next = r.expires
			}
			continue
		}
		a.eu.release(r.id)
		if r.wallet > 0 {
			a.env.lease(a.id.Platform).release(r.wallet)
		}
		e := a.eu.money.note(now, EntryReservationExpired)
		e.RequestId, e.UnchargedNanos = r.requestID, int64(r.amount)
		e.Reason = "reservation " + r.id + " expired unsettled"
		ops = append(ops, persistence.DeleteOnce(r.recordKey(pid, uid)), a.eu.money.entryOp(e))
	}
	if len(ops) > 0 {
		ops = append(ops, a.userOp())
		a.flushOps(ops, false)
	}
	if !next.IsZero() {
		a.scheduleSweep(c, next)
	}
}

// newEndUserActor returns the actor of end-user id; with a zero id it
// learns its identity from its name when it starts (see actorName).
func newEndUserActor(env *Env, id Identity) actor.Actor {
	return &endUserActor{base: base{env: env, id: id}}
}

func (a *endUserActor) Receive(c actor.Context) {
	msg := a.message(c)
	switch msg.(type) {
	case *actor.Started:
		if !a.started(c) {
			return
		}
		for _, t := range a.load() {
			a.scheduleSweep(c, t)
		}
		// An actor for an end-user that does not exist (a typo, another
		// tenant's id) goes after a second, as the platform actor does.
		d := a.env.IdleTimeout
		if a.eu == nil && d > time.Second {
			d = time.Second
		}
		a.startIdle(c, d)
		return
	case *actor.ReceiveTimeout:
		a.passivate(c)
		return
	case idleCheck:
		if !a.stopped && a.idleDue() {
			a.passivate(c)
		}
		return
	case *actor.Stopping, *actor.Stopped, *actor.Restarting:
		return
	case evictNow:
		a.stopped = true
		close(msg.(evictNow))
		return
	case evictDrain:
		a.draining = true
		msg.(evictDrain) <- (a.eu == nil || a.eu.open.len() == 0) && a.pending.Load() == 0
		return
	case sweepReservations:
		if !a.stopped && a.eu != nil {
			a.sweepExpired(c)
		}
		return
	}
	defer a.done()
	if a.stopped || a.draining && !a.settlesOpen(msg) {
		a.refusePassivated(c)
		return
	}
	if h := a.env.beforeMessage; h != nil {
		h(msg)
	}
	if a.eu == nil {
		if _, ok := msg.(*pb.DeleteEndUser); ok {
			a.sweepKeys(c)
			return
		}
		a.fail(c, errorf(ErrNotFound, "end-user %s not found", a.id.EndUser))
		return
	}
	now := a.now()
	var pre []persistence.Op
	if e := a.eu.resetIfDue(now); e != nil {
		pre = a.entryOps(e)
	}
	switch m := msg.(type) {
	case *pb.GetEndUser:
		a.flush(pre)
		a.respondDurable(c, a.view())
	case *pb.PatchEndUser:
		u := a.eu
		if m.SetDisplayName {
			u.displayName = m.DisplayName
		}
		if m.SetMetadata {
			u.metadata = m.MetadataJson
		}
		u.updatedMs = now.UnixMilli()
		a.commit(c, append(pre, a.userOp()), a.view(), false)
	case *pb.DeleteEndUser:
		a.delete(c)
	case *pb.SetBudget:
		a.setBudget(c, pre, m)
	case *pb.GetBudget:
		a.flush(pre)
		if !a.eu.budget.set {
			a.fail(c, errorf(ErrNotFound, "end-user %s has no budget", a.id.EndUser))
			return
		}
		a.respondDurable(c, a.budgetView())
	case *pb.DeleteBudget:
		if !a.eu.budget.set {
			a.flush(pre)
			a.fail(c, errorf(ErrNotFound, "end-user %s has no budget", a.id.EndUser))
			return
		}
		if a.eu.provisional {
			a.flush(pre)
			a.fail(c, errRecovering("deleted"))
			return
		}
		// Close the budget's ledger with an entry taking the balance to
		// zero, so it still sums to the balance if a budget is created
		// again.
		e := a.eu.money.adjust(now, EntryBudgetSet, -a.eu.money.balance)
		e.Reason = "budget deleted"
		a.eu.budget = budget{}
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
		a.eu.limits = m.Limits
		a.eu.updatedMs = now.UnixMilli()
		a.commit(c, append(pre, a.userOp()), a.view(), false)
	case *pb.Admit:
		a.admit(c, pre, m)
	case *pb.CountRequest:
		a.flush(pre)
		info, err := a.eu.countRequest(now, a.limits())
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

// done ends a user message: the actor keeps no reference to it or to
// its sender while idle.
func (a *endUserActor) done() {
	a.cur, a.to = nil, replyTo{}
}

func (a *endUserActor) limits() *pb.RateLimits {
	return limitsFor(a.eu.limits, a.env.shared(a.id.Platform).limits.Load())
}

// view, budgetView and userOp are the boundaries where the compact state
// becomes protobuf: a fresh message each time, never shared with the
// actor's state.
func (a *endUserActor) view() *pb.EndUserView {
	return &pb.EndUserView{EndUser: a.eu.record(), EffectiveRateLimits: a.limits()}
}

func (a *endUserActor) budgetView() *pb.BudgetView {
	return &pb.BudgetView{Budget: a.eu.budgetRecord(), ReservedNanos: int64(a.eu.money.reserved)}
}

func (a *endUserActor) userOp() persistence.Op {
	return persistence.Set(persistence.EndUserKey(string(a.id.Platform), string(a.id.EndUser)), marshal(a.eu.record()))
}

func (a *endUserActor) entryOps(e *pb.LedgerEntry) []persistence.Op {
	return []persistence.Op{a.eu.money.entryOp(e), a.userOp()}
}

// flush writes ops (a lazy period reset) without a reply of its own; the
// reply that follows waits for them through respondDurable.
func (a *endUserActor) flush(ops []persistence.Op) {
	if len(ops) > 0 {
		a.flushOps(ops, false)
	}
}

// load reads the end-user's state and returns the expiries of the
// reservations it kept open (see below).
func (a *endUserActor) load() (restored []time.Time) {
	a.env.fetchRecords(a.id)
	a.waitApplied()
	st := a.env.Store
	pid, uid := string(a.id.Platform), string(a.id.EndUser)
	raw, err := st.Get(persistence.EndUserKey(pid, uid))
	if err != nil {
		return nil
	}
	var u pb.EndUser
	if err := proto.Unmarshal(raw, &u); err != nil {
		a.env.Log.Error("corrupt end-user record", "end_user", uid, "err", err)
		return nil
	}
	a.eu = newEndUser(&u)
	if _, ok, err := a.env.ProvisionalOf(a.id); err == nil && ok {
		a.eu.provisional = true
	}
	// The identity's strings are the PID's: the record's copies go.
	a.eu.money.platform, a.eu.money.name = pid, uid
	a.env.loadShared(a.id.Platform)
	if raw, err := st.Get(persistence.WindowsKey(pid, uid)); err == nil {
		a.restoreWindows(raw)
	}
	// What the checkpoint cannot know: calls settled after it (their
	// window deltas) and calls in flight at a crash (their reservation
	// records), put back into the windows so a crash never lets more than
	// a limit through in any window.
	limited := a.rateLimited()
	a.deltas = true // unknown unless replayed
	if limited {
		a.deltas = a.replayWindows()
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
			a.eu.restore(&r)
			restored = append(restored, time.UnixMilli(r.ExpiresAtMs))
			return true
		}
		// Every open reservation of an earlier run leaves a trace, budget
		// or not: the end-user's ledger says which call was in flight at
		// the crash.
		if proto.Unmarshal(v, &r) == nil {
			if limited {
				a.eu.recount(time.UnixMilli(r.CreatedAtMs), r.Tokens)
			}
			e := a.eu.money.note(now, EntryUnsettledOnCrash)
			e.RequestId = r.RequestId
			e.UnchargedNanos = r.AmountNanos
			e.Reason = "reservation " + r.Id + " open at crash"
			ops = append(ops, a.eu.money.entryOp(e))
		}
		ops = append(ops, persistence.DeleteOnce(append([]byte(nil), k...)))
		return true
	})
	if len(ops) > 0 {
		ops = append(ops, a.userOp())
		a.flush(ops)
	}
	return restored
}

// replayWindows counts into the rate windows the calls settled since the
// checkpoint: one small delta record each, written with its settlement.
// It reports whether there were any (or whether it could not tell).
func (a *endUserActor) replayWindows() (found bool) {
	err := a.env.Store.ScanPrefix(persistence.WindowDeltasPrefix(string(a.id.Platform), string(a.id.EndUser)), false, func(k, v []byte) bool {
		found = true
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
		a.eu.recount(time.UnixMilli(ms), tokens)
		return true
	})
	return found || err != nil
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
	if now.UnixNano()-a.checkpointAt >= int64(checkpointEvery) {
		a.checkpointAt = now.UnixNano()
		var ops []persistence.Op
		if a.deltas {
			prefix := persistence.WindowDeltasPrefix(pid, uid)
			ops = append(ops, persistence.DeleteRange(prefix, persistence.PrefixEnd(prefix)))
			a.deltas = false
		}
		if w := a.encodeWindows(now); w != nil {
			return append(ops, persistence.Set(persistence.WindowsKey(pid, uid), w))
		}
		return append(ops, persistence.Delete(persistence.WindowsKey(pid, uid)))
	}
	a.deltaSeq++
	a.deltas = true
	v := binary.AppendVarint(nil, admitted.UnixMilli())
	v = binary.AppendVarint(v, tokens)
	return []persistence.Op{persistence.Set(persistence.WindowDeltaKey(pid, uid, a.deltaSeq), v)}
}

func (a *endUserActor) passivate(c actor.Context) {
	if a.eu != nil && (a.eu.open.len() > 0 || a.pending.Load() > 0) {
		a.stayIdle()
		return
	}
	if a.eu != nil {
		// Save the rate windows before giving up the identity, so the
		// next activation (which first waits for this write) restores them.
		// The checkpoint replaces the deltas in the same write.
		now := a.now()
		key := persistence.WindowsKey(string(a.id.Platform), string(a.id.EndUser))
		ops := []persistence.Op{persistence.Delete(key)}
		if w := a.encodeWindows(now); w != nil {
			ops[0] = persistence.Set(key, w)
		}
		if a.deltas {
			deltas := persistence.WindowDeltasPrefix(string(a.id.Platform), string(a.id.EndUser))
			ops = append(ops, persistence.DeleteRange(deltas, persistence.PrefixEnd(deltas)))
		}
		a.env.Store.Submit(persistence.Write{Ops: ops, NoSync: true, Done: func(error) {}})
	}
	if a.env.dir != nil && !a.env.dir.tryPassivate(a.id, a.self) {
		a.stayIdle()
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
	w := a.eu.win
	if w == nil {
		return nil
	}
	ws := [][]wentry{w.rpm.snapshot(t), w.tpm.snapshot(t), w.rpd.snapshot(t)}
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
	rw := a.eu.windows()
	ws := []*window{&rw.rpm, &rw.tpm, &rw.rpd}
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
		persistence.Delete(persistence.ExternalKey(pid, a.eu.externalID)),
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
	a.eu = nil
	a.commit(c, ops, &pb.Ack{}, false)
}

// revokeKeys revokes every key indexed under this end-user and returns the
// ops that delete them. Index entries go one by one, not by range: a key
// the platform actor mints for a create racing with the delete may land
// between this scan and the delete's commit, and must stay findable for
// sweepKeys.
func (a *endUserActor) revokeKeys() []persistence.Op {
	var ops []persistence.Op
	var digests [][]byte
	_ = a.env.Store.ScanPrefix(persistence.UserKeysPrefix(string(a.id.Platform), string(a.id.EndUser)), false, func(k, digest []byte) bool {
		d := append([]byte(nil), digest...)
		a.env.Auth.revoke(d)
		digests = append(digests, d)
		ops = append(ops, persistence.Delete(persistence.APIKeyKey(d)), persistence.Delete(append([]byte(nil), k...)))
		return true
	})
	if len(digests) > 0 {
		a.env.broadcast(&pb.KeysRevoked{Digests: digests})
	}
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
	u := a.eu
	in := m.Budget
	if in == nil {
		in = &pb.Budget{}
	}
	if m.Create {
		if u.budget.set {
			a.flush(pre)
			a.fail(c, errorf(ErrConflict, "end-user %s already has a budget; PATCH it", a.id.EndUser))
			return
		}
		b, e := openBudget(&u.money, now, money.Nanos(in.AmountNanos), in.Period, money.Nanos(in.LowBalanceNanos), "budget created")
		b.suspended = in.IsSuspended
		u.budget = b
		a.commit(c, append(pre, a.entryOps(e)...), a.budgetView(), false)
		return
	}
	b := &u.budget
	if !b.set {
		a.flush(pre)
		a.fail(c, errorf(ErrNotFound, "end-user %s has no budget; POST one first", a.id.EndUser))
		return
	}
	if u.provisional && slices.Contains(m.Fields, "amount_usd") {
		a.flush(pre)
		a.fail(c, errRecovering("changed"))
		return
	}
	ops := pre
	for _, f := range m.Fields {
		switch f {
		case "amount_usd":
			// A new period amount applies from the next reset; the current
			// balance moves by the difference so the ledger explains it.
			delta := money.Nanos(in.AmountNanos) - b.amount
			b.amount = money.Nanos(in.AmountNanos)
			// Never below zero: an amount lowered under this period's
			// spend ends the period's allowance; it creates no debt.
			delta = max(delta, -u.money.balance)
			if delta != 0 {
				e := u.money.adjust(now, EntryBudgetSet, delta)
				e.Reason = "amount changed"
				ops = append(ops, u.money.entryOp(e))
			}
		case "period":
			if b.period != in.Period {
				b.period = period(in.Period)
				b.periodStartMs = periodStart(in.Period, now).UnixMilli()
			}
		case "is_suspended":
			if b.suspended != in.IsSuspended {
				typ := EventBudgetSuspended
				if !in.IsSuspended {
					typ = EventBudgetUnsuspend
				}
				b.suspended = in.IsSuspended
				ops = append(ops, a.env.event(a.id.Platform, typ, now, a.eventData())...)
			}
		case "low_balance_threshold_usd":
			b.low = money.Nanos(in.LowBalanceNanos)
		}
	}
	b.updatedMs = now.UnixMilli()
	ops = append(ops, a.userOp())
	a.commit(c, ops, a.budgetView(), false)
}

func (a *endUserActor) topup(c actor.Context, pre []persistence.Op, m *pb.BudgetTopup) {
	acct := &a.eu.money
	route := "topup"
	if m.Debit {
		route = "debit"
	}
	if m.IdempotencyKey != "" {
		rec, err := a.idempotent(acct, route, m.IdempotencyKey, m.RequestHash)
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
	e, err := a.eu.credit(now, money.Nanos(m.AmountNanos), m.Debit)
	if err != nil {
		var re *Error
		if m.IdempotencyKey != "" && errors.As(err, &re) && rememberedRefusal(re) {
			// Executed and refused by the account's state: remembered
			// under the key, so a retry after a top-up replays the 402
			// instead of applying (Stripe's semantics).
			ops := append(pre, acct.remember(now, route, m.IdempotencyKey, m.RequestHash, 0, re.failure()))
			a.commit(c, ops, re.failure(), false)
			return
		}
		a.flush(pre)
		a.fail(c, err)
		return
	}
	e.Reason, e.IdempotencyKey, e.RequestId = m.Reason, m.IdempotencyKey, m.RequestId
	reply := a.budgetView()
	reply.Entry = e
	ops := append(pre, a.entryOps(e)...)
	if m.IdempotencyKey != "" {
		ops = append(ops, acct.remember(now, route, m.IdempotencyKey, m.RequestHash, 200, reply))
	}
	typ := EventBudgetToppedUp
	if m.Debit {
		typ = EventBudgetDebited
	}
	ops = append(ops, a.entryEvent(now, typ, e, "")...)
	ops = append(ops, a.lowBalanceEvent(now, "")...)
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
	markup := a.env.shared(a.id.Platform).markup.Load()
	charge, err := WithMarkup(money.Nanos(m.MaxCostNanos), markup)
	if err != nil {
		a.fail(c, err)
		return
	}
	reply := &pb.Admitted{MarkupBps: markup}
	if a.eu.open.get(m.ReservationId) != nil {
		a.fail(c, errorf(ErrConflict, "reservation %s already open", m.ReservationId))
		return
	}
	lim := a.limits()
	req := &pb.Admit{ReservationId: m.ReservationId, RequestId: m.RequestId, EstimatedTokens: m.EstimatedTokens, MaxCostNanos: int64(charge)}
	// Refusals that cost nothing to check come first: a call the budget,
	// the rate windows or the parallel cap refuse never waits for a refill.
	info, err := a.eu.check(now, lim, m.EstimatedTokens, charge)
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
		if err := lease.reserve(a.env.AskTimeout, wallet); err != nil {
			a.fail(c, err)
			return
		}
		// A refill blocked this actor only: its state is as checked.
	}
	r := a.eu.recordAdmission(now, lim, req, info)
	ttl := time.Duration(m.TtlMs) * time.Millisecond
	if ttl <= 0 {
		ttl = defaultReservationTTL
	}
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
	a.flushOps([]persistence.Op{persistence.Set(r.recordKey(string(a.id.Platform), string(a.id.EndUser)), marshal(rec))}, true)
	a.respond(c, reply)
}

func (a *endUserActor) release(c actor.Context, pre []persistence.Op, m *pb.Release) {
	a.flush(pre)
	if r := a.eu.release(m.ReservationId); r != nil {
		if r.wallet > 0 {
			a.env.lease(a.id.Platform).release(r.wallet)
		}
		a.flushOps([]persistence.Op{persistence.DeleteOnce(r.recordKey(string(a.id.Platform), string(a.id.EndUser)))}, true)
		a.unscheduleSweep()
	}
	a.respond(c, &pb.Ack{})
}

// settle closes a reservation with the call's actual provider cost: the
// budget is charged the cost with markup, the wallet lease the cost, and
// both records (the budget's usage entry and the lease's spend record) go
// in one atomic batch.
func (a *endUserActor) settle(c actor.Context, pre []persistence.Op, m *pb.Settle) {
	now := a.now()
	charge, err := WithMarkup(money.Nanos(m.CostNanos), a.env.shared(a.id.Platform).markup.Load())
	if err != nil {
		a.flush(pre)
		a.fail(c, err)
		return
	}
	r := a.eu.open.get(m.ReservationId)
	if r == nil && m.ChargeIfUnknown && m.RequestId != "" && m.CostNanos >= 0 && m.Tokens >= 0 {
		a.settleLate(c, pre, m, charge)
		return
	}
	e, err := a.eu.settle(now, &pb.Settle{
		ReservationId: m.ReservationId, CostNanos: int64(charge), Tokens: m.Tokens, RequestId: m.RequestId,
		Model: m.Model, PromptTokens: m.PromptTokens, CompletionTokens: m.CompletionTokens,
	})
	if err != nil {
		a.flush(pre)
		a.fail(c, err)
		return
	}
	pid, uid := string(a.id.Platform), string(a.id.EndUser)
	// Room for what a settlement usually writes: the reservation's
	// deletion, the spend, the entry and the record (events are rare).
	ops := make([]persistence.Op, 0, len(pre)+6)
	ops = append(ops, pre...)
	ops = append(ops, persistence.DeleteOnce(r.recordKey(pid, uid)))
	var lease *walletLease
	var walletCharged int64
	var applied func()
	if r.wallet > 0 {
		lease = a.env.lease(a.id.Platform)
		charged, _ := lease.settle(r.wallet, money.Nanos(m.CostNanos))
		var op persistence.Op
		op, applied = a.spendOp(lease, now, m, charged)
		ops = append(ops, op)
		walletCharged = int64(charged)
		if e != nil {
			e.ProviderCostNanos = int64(charged)
		}
	}
	reply := &pb.Settled{WalletNanos: walletCharged}
	if e != nil {
		ops = append(ops, a.eu.money.entryOp(e), a.userOp())
		ops = append(ops, a.entryEvent(now, EventBudgetDebited, e, m.TraceParent)...)
		ops = append(ops, a.lowBalanceEvent(now, m.TraceParent)...)
		reply.ChargedNanos, reply.HasBudget = -e.AmountNanos, true
	}
	ops = append(ops, a.windowsOps(now, r.at, m.Tokens)...)
	a.commitThen(c, ops, reply, a.env.BillingDurability == DurabilityBatch, applied)
	if lease != nil {
		lease.spent()
	}
	a.unscheduleSweep()
}

// recordKey returns the key of r's reservation record for end-user uid of
// platform pid.
func (r *openReservation) recordKey(pid, uid string) []byte {
	if r.key == nil {
		r.key = persistence.ReservationKey(pid, uid, r.id)
	}
	return r.key
}

// errRecovering refuses a budget change that would set the balance of a
// provisional account (taken over from a crashed node) absolutely.
func errRecovering(what string) error {
	return errorf(ErrConflict, "this end-user's budget cannot be %s now: its account was taken over from a crashed node "+
		"and waits for that node's records (or for the node to be declared lost with `gateway cluster forget`); try again then", what)
}

// spendOp records a settled call's wallet cost on lease: the record the
// platform actor folds into the wallet's ledger. On a single node it also
// returns applied, to run once the record is applied to the store (pass
// it to commitThen): it hands the record to the lease in memory, so the
// platform actor folds it without reading it back (lease.applied).
func (a *endUserActor) spendOp(lease *walletLease, now time.Time, m *pb.Settle, charged money.Nanos) (op persistence.Op, applied func()) {
	spend := &pb.LeaseSpend{
		RequestId: m.RequestId, EndUserId: string(a.id.EndUser), CostNanos: int64(charged), Model: m.Model,
		PromptTokens: m.PromptTokens, CompletionTokens: m.CompletionTokens, AtMs: now.UnixMilli(),
	}
	seq := lease.seq.Add(1)
	op = persistence.Set(persistence.LeaseSpendKey(string(a.id.Platform), lease.id, seq), marshal(spend))
	if a.env.Clustered() {
		return op, nil // the lease's node carries its records from the store (carrySpends)
	}
	return op, func() { lease.applied(seq, spend) }
}

// lateSettleWindow bounds how far back settleLate looks for the usage
// entry of an earlier attempt: the edge retries a settlement for 30 s, and
// a crashed node's tail is merged with its entries' original times.
const lateSettleWindow = 15 * time.Minute

// settleLate settles a call whose reservation is not open here: the
// upstream was paid, but the admission was lost (made on a node that
// crashed before its reservation record reached the disk) or voided (the
// reservation expired). When the ledger holds a usage entry for the
// request, an earlier attempt landed: its figures are answered again and
// nothing is charged. Otherwise the call is charged now, budget (cost with
// markup) and wallet lease (cost, reserved first so a refill can cover
// it) alike, in one batch; without a budget a zero usage entry records
// the late settlement, so a retry of it finds it. The rate windows are
// not touched: the admission counted the call where it was made.
func (a *endUserActor) settleLate(c actor.Context, pre []persistence.Op, m *pb.Settle, charge money.Nanos) {
	a.flush(pre)
	a.readYourWrites()
	now := a.now()
	if e := a.usageOf(m.RequestId, now.Add(-lateSettleWindow)); e != nil {
		a.respondDurable(c, &pb.Settled{ChargedNanos: -e.AmountNanos, WalletNanos: e.ProviderCostNanos, HasBudget: a.eu.budget.set})
		return
	}
	cost := money.Nanos(m.CostNanos)
	lease := a.env.lease(a.id.Platform)
	held := cost
	if err := lease.reserve(a.env.AskTimeout, cost); err != nil {
		held = 0 // the wallet cannot cover it: charge what the lease has
	}
	walletCharged, _ := lease.settle(held, cost)
	pid, uid := string(a.id.Platform), string(a.id.EndUser)
	var e *pb.LedgerEntry
	if a.eu.budget.set {
		e = a.eu.money.charge(now, 0, charge)
		a.eu.budget.updatedMs = now.UnixMilli()
	} else {
		e = a.eu.money.note(now, EntryUsage)
	}
	e.RequestId, e.Model, e.PromptTokens, e.CompletionTokens = m.RequestId, m.Model, m.PromptTokens, m.CompletionTokens
	e.ProviderCostNanos = int64(walletCharged)
	e.Reason = "settled after its reservation " + m.ReservationId + " was lost or expired"
	var ops []persistence.Op
	var applied func()
	if walletCharged > 0 {
		var op persistence.Op
		op, applied = a.spendOp(lease, now, m, walletCharged)
		ops = append(ops, op)
	}
	ops = append(ops, a.entryOps(e)...)
	reply := &pb.Settled{WalletNanos: int64(walletCharged)}
	if a.eu.budget.set {
		ops = append(ops, a.entryEvent(now, EventBudgetDebited, e, m.TraceParent)...)
		ops = append(ops, a.lowBalanceEvent(now, m.TraceParent)...)
		reply.ChargedNanos, reply.HasBudget = -e.AmountNanos, true
	}
	a.env.Log.Warn("call settled without its reservation", "platform", pid, "end_user", uid,
		"request_id", m.RequestId, "reservation", m.ReservationId, "charged_nanos", reply.ChargedNanos, "wallet_nanos", walletCharged)
	a.commitThen(c, ops, reply, false, applied)
	if walletCharged > 0 {
		lease.spent()
	}
}

// usageOf returns the newest usage entry of this end-user's ledger for
// requestID, looking back to entries made at since; nil when there is
// none.
func (a *endUserActor) usageOf(requestID string, since time.Time) *pb.LedgerEntry {
	var found *pb.LedgerEntry
	floor := since.UnixMilli()
	_ = a.env.Store.ScanPrefix(persistence.LedgerPrefix(string(a.id.Platform), a.eu.money.name), true, func(_, v []byte) bool {
		var en pb.LedgerEntry
		if proto.Unmarshal(v, &en) != nil {
			return true
		}
		if en.Type == EntryUsage && en.RequestId == requestID {
			found = &en
			return false
		}
		return en.CreatedAtMs >= floor
	})
	return found
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
func (a *endUserActor) eventData() map[string]any {
	u := a.eu
	return map[string]any{
		"end_user_id": string(a.id.EndUser), "external_id": u.externalID,
		"balance_usd": usd(int64(u.money.balance)), "amount_usd": usd(int64(u.budget.amount)), "period": u.budget.period,
	}
}

// entryEvent is a budget.topped_up or budget.debited event for entry e.
func (a *endUserActor) entryEvent(now time.Time, typ string, e *pb.LedgerEntry, traceParent string) []persistence.Op {
	if !a.env.wantsEvent(a.id.Platform, typ) {
		return nil
	}
	d := a.eventData()
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
	return a.env.tracedEvent(a.id.Platform, typ, now, d, traceParent)
}

// lowBalanceEvent fires budget.low_balance once per crossing below the
// budget's threshold.
func (a *endUserActor) lowBalanceEvent(now time.Time, traceParent string) []persistence.Op {
	if !a.eu.lowBalanceCrossed() || !a.env.wantsEvent(a.id.Platform, EventBudgetLowBalance) {
		return nil
	}
	d := a.eventData()
	d["threshold_usd"] = usd(int64(a.eu.budget.low))
	return a.env.tracedEvent(a.id.Platform, EventBudgetLowBalance, now, d, traceParent)
}

// settlesOpen reports whether msg settles or releases a call this actor
// admitted and has not closed: what a draining actor still accepts.
func (a *endUserActor) settlesOpen(msg any) bool {
	if a.eu == nil {
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
	return a.eu.open.get(rid) != nil
}
