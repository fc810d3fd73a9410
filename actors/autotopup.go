package actors

// Auto top-up as a recorded intent (issues 11 and 15). The platform actor
// never asks the payment processor to charge before the intent is durable,
// and the intent's id is the processor's idempotency key:
//
//	below threshold → intent "pending" + pending index (synced)
//	                → Payments.Charge(intent id)            off the mailbox
//	success         → wallet credit + auto_topup entry + intent "succeeded"
//	                  + index deleted + wallet.topped_up    one commit
//	decline         → intent "failed" + auto_topup.last_error (+ disable
//	                  after MaxAutoTopupDeclines in a row)  one commit
//	unknown outcome → intent stays pending; asked again with the same id
//	                  after a growing delay
//	never received  → intent "voided" (the processor has no trace of an
//	                  intent older than its idempotency window)
//
// A crash before the charge leaves a pending intent; a crash after the
// charge but before the credit leaves one too. Either way the next
// activation of the platform (ResumeTopups activates every platform with a
// pending intent at start) asks the processor again under the same key,
// which answers with the first outcome instead of charging twice, and the
// credit is written once because it is written with the intent's change of
// status.

import (
	"context"
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// Intent states.
const (
	IntentPending   = "pending"
	IntentSucceeded = "succeeded"
	IntentFailed    = "failed"
	IntentVoided    = "voided"
)

// IntentPrefix starts every auto top-up intent id.
const IntentPrefix = "tpi_"

// MaxAutoTopupDeclines is how many declined auto top-ups in a row turn auto
// top-up off; the operator turns it back on with PUT .../wallet/auto-topup.
const MaxAutoTopupDeclines = 3

// Defaults of the auto top-up timing knobs on [Env].
const (
	DefaultAutoTopupRetryDelay     = 2 * time.Second
	DefaultAutoTopupDeclineBackoff = 15 * time.Minute
	maxAutoTopupRetryDelay         = 5 * time.Minute
	autoTopupChargeTimeout         = 30 * time.Second
)

// intentRecorded tells the platform actor its intent is durable (or not).
// Like the other auto top-up messages it never crosses nodes.
type intentRecorded struct {
	intentID string
	err      error
}

// autoTopupResult is sent to the platform actor by the goroutine that
// asked the processor to charge.
type autoTopupResult struct {
	intentID string
	res      ChargeResult
	err      error
}

// autoTopupRetry asks the platform actor to ask the processor again about
// a pending intent whose outcome was unknown.
type autoTopupRetry struct {
	intentID string
}

// receiveAutoTopup handles the actor-local auto top-up messages; it
// reports whether m was one.
func (a *platformActor) receiveAutoTopup(c actor.Context, m any) bool {
	switch m := m.(type) {
	case *intentRecorded:
		a.intentRecorded(c, m)
	case *autoTopupResult:
		a.autoTopupDone(c, m)
	case *autoTopupRetry:
		if a.intent != nil && a.intent.Id == m.intentID {
			a.startCharge(c)
		}
	default:
		return false
	}
	return true
}

// maybeAutoTopup records a new intent when auto top-up is on, the balance
// is below its threshold, no intent is in flight and the last decline is
// older than the decline backoff. The charge starts once the intent is
// durable.
func (a *platformActor) maybeAutoTopup(c actor.Context) {
	at := a.p.Wallet.GetAutoTopup()
	if a.charging || at == nil || !at.Enabled || a.wallet.balance >= money.Nanos(at.ThresholdNanos) {
		return
	}
	now := a.now()
	if at.ConsecutiveFailures > 0 && now.Before(time.UnixMilli(at.LastErrorAtMs).Add(a.env.AutoTopupDeclineBackoff)) {
		return
	}
	in := &pb.TopupIntent{
		Id:          ids.New(IntentPrefix, now),
		PlatformId:  a.p.Id,
		AmountNanos: at.AmountNanos,
		Status:      IntentPending,
		CreatedAtMs: now.UnixMilli(),
		UpdatedAtMs: now.UnixMilli(),
	}
	a.charging, a.intent, a.chargeRetries = true, in, 0
	ops := []persistence.Op{
		persistence.Set(persistence.TopupIntentKey(a.p.Id, in.Id), marshal(in)),
		persistence.Set(persistence.PendingTopupKey(a.p.Id, in.Id), nil),
	}
	if _, enabling := a.cur.(*pb.SetAutoTopup); enabling {
		// No debit crossed the threshold to announce it: wallet.low_balance
		// still precedes the charge, written with the intent.
		ops = append(ops, a.env.event(a.id.Platform, EventWalletLowBalance, now, map[string]any{
			"balance_usd": usd(int64(a.wallet.balance)), "threshold_usd": usd(at.ThresholdNanos), "auto_topup_amount_usd": usd(at.AmountNanos),
		})...)
	}
	root, self, id, notify := c.ActorSystem().Root, a.self, in.Id, a.env.Notify
	wake := notify != nil && hasEvent(ops)
	a.pending.Add(1)
	a.env.Store.Submit(persistence.Write{Ops: ops, Done: func(err error) {
		a.pending.Add(-1)
		if wake && err == nil {
			notify()
		}
		root.Send(self, &intentRecorded{intentID: id, err: err})
	}})
}

func (a *platformActor) intentRecorded(c actor.Context, m *intentRecorded) {
	if a.intent == nil || a.intent.Id != m.intentID {
		return
	}
	if m.err != nil {
		// Not durable, so never charged: forget it.
		a.env.Log.Error("auto top-up intent not recorded; no charge made", "platform", a.id.Platform, "intent", m.intentID, "err", m.err)
		a.charging, a.intent = false, nil
		return
	}
	a.startCharge(c)
}

// resumeAutoTopup finds the platform's pending intent after an activation
// (a restart, or a passivation that cannot happen while one is pending)
// and asks the processor for its outcome again.
func (a *platformActor) resumeAutoTopup(c actor.Context) {
	if a.p == nil {
		return
	}
	st := a.env.Store
	prefix := persistence.PendingTopupKey(a.p.Id, "") // ends in the 0x00 separator
	var pending []string
	err := st.ScanPrefix(prefix, false, func(k, _ []byte) bool {
		pending = append(pending, string(k[len(prefix):]))
		return true
	})
	if err != nil {
		a.env.Log.Error("scan pending auto top-ups", "platform", a.id.Platform, "err", err)
		return
	}
	for i, id := range pending {
		raw, err := st.Get(persistence.TopupIntentKey(a.p.Id, id))
		var in pb.TopupIntent
		if err == nil {
			err = proto.Unmarshal(raw, &in)
		}
		if err != nil {
			a.env.Log.Error("pending auto top-up unreadable", "platform", a.id.Platform, "intent", id, "err", err)
			continue
		}
		if i > 0 || a.intent != nil {
			// At most one intent is ever pending; a second would mean a
			// bug, and charging it blindly could double-charge.
			a.env.Log.Error("more than one pending auto top-up; resolving the first only", "platform", a.id.Platform, "intent", id)
			continue
		}
		a.env.Log.Warn("resuming auto top-up after restart", "platform", a.id.Platform, "intent", id)
		a.charging, a.intent, a.chargeRetries = true, &in, 0
		a.startCharge(c)
	}
}

// startCharge asks the processor to charge the pending intent off the
// mailbox; the outcome comes back as an autoTopupResult.
func (a *platformActor) startCharge(c actor.Context) {
	in := a.intent
	in.Attempts++
	prof := a.p.GetPayment()
	req := ChargeRequest{
		Platform:      a.id.Platform,
		IntentID:      in.Id,
		Amount:        money.Nanos(in.AmountNanos),
		Customer:      prof.GetCustomerId(),
		PaymentMethod: prof.GetPaymentMethodId(),
		CreatedAt:     time.UnixMilli(in.CreatedAtMs),
	}
	pay, root, self := a.env.Payments, c.ActorSystem().Root, a.self
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), autoTopupChargeTimeout)
		defer cancel()
		res, err := pay.Charge(ctx, req)
		if err == nil && res.Declined == "" && res.Void == "" && res.ChargeID == "" {
			err = errors.New("payments: charge reported neither a charge id nor a decline")
		}
		root.Send(self, &autoTopupResult{intentID: req.IntentID, res: res, err: err})
	}()
}

func (a *platformActor) autoTopupDone(c actor.Context, r *autoTopupResult) {
	in := a.intent
	if in == nil || in.Id != r.intentID {
		return // an outcome already recorded
	}
	switch {
	case r.err != nil:
		a.retryCharge(c, r.err)
	case r.res.Declined != "":
		a.chargeDeclined(c, r.res.Declined)
	case r.res.Void != "":
		a.voidIntent(c, r.res.Void)
	default:
		a.chargeSucceeded(c, r.res.ChargeID)
	}
}

// retryCharge schedules another ask about an intent whose outcome is
// unknown: the processor replays the first outcome under the same key, or
// charges now if the first request never reached it.
func (a *platformActor) retryCharge(c actor.Context, cause error) {
	d := a.env.AutoTopupRetryDelay << min(a.chargeRetries, 16)
	d = min(d, maxAutoTopupRetryDelay)
	a.chargeRetries++
	a.env.Log.Warn("auto top-up outcome unknown; asking again", "platform", a.id.Platform, "intent", a.intent.Id,
		"attempts", a.intent.Attempts, "retry_in", d, "err", cause)
	root, self, id := c.ActorSystem().Root, a.self, a.intent.Id
	time.AfterFunc(d, func() { root.Send(self, &autoTopupRetry{intentID: id}) })
}

func (a *platformActor) chargeDeclined(c actor.Context, reason string) {
	now := a.now()
	in := a.intent
	in.Status, in.Error, in.UpdatedAtMs = IntentFailed, reason, now.UnixMilli()
	at := a.p.Wallet.GetAutoTopup()
	if at != nil {
		at.ConsecutiveFailures++
		at.LastError, at.LastErrorAtMs = reason, now.UnixMilli()
		if at.Enabled && at.ConsecutiveFailures >= MaxAutoTopupDeclines {
			at.Enabled = false
			a.env.Log.Error("auto top-up disabled after consecutive declines", "platform", a.id.Platform,
				"declines", at.ConsecutiveFailures, "last_error", reason)
		}
	}
	a.p.UpdatedAtMs = now.UnixMilli()
	a.env.Log.Warn("auto top-up declined", "platform", a.id.Platform, "intent", in.Id, "reason", reason)
	a.finishIntent(c, a.write())
}

// voidIntent ends an intent the processor never received and that is too
// old to charge now; the wallet may still need a top-up, so a fresh intent
// starts if it is under the threshold.
func (a *platformActor) voidIntent(c actor.Context, reason string) {
	in := a.intent
	in.Status, in.Error, in.UpdatedAtMs = IntentVoided, reason, a.now().UnixMilli()
	a.env.Log.Warn("auto top-up intent voided; never charged", "platform", a.id.Platform, "intent", in.Id, "reason", reason)
	a.finishIntent(c, nil)
	a.maybeAutoTopup(c)
}

func (a *platformActor) chargeSucceeded(c actor.Context, chargeID string) {
	now := a.now()
	in := a.intent
	amount := money.Nanos(in.AmountNanos)
	// The processor has charged: the credit is applied whatever the
	// balance (no ceiling refuses money already taken).
	e := a.wallet.adjust(now, EntryAutoTopup, amount)
	e.Reason, e.IdempotencyKey, e.PaymentIntentId = "auto_topup", in.Id, chargeID
	in.Status, in.ChargeId, in.LedgerSeq, in.UpdatedAtMs = IntentSucceeded, chargeID, e.Seq, now.UnixMilli()
	if at := a.p.Wallet.GetAutoTopup(); at != nil {
		at.ConsecutiveFailures, at.LastError, at.LastErrorAtMs = 0, "", 0
	}
	ops := append(a.write(), a.wallet.entryOp(e))
	ops = append(ops, a.walletEvent(now, EventWalletToppedUp, amount, e)...)
	a.env.Log.Info("auto top-up credited", "platform", a.id.Platform, "intent", in.Id, "charge", chargeID, "amount_usd", amount.String())
	a.finishIntent(c, ops)
}

// finishIntent writes the intent's final state with ops (one commit) and
// lets the next auto top-up start.
func (a *platformActor) finishIntent(c actor.Context, ops []persistence.Op) {
	in := a.intent
	ops = append(ops,
		persistence.Set(persistence.TopupIntentKey(a.p.Id, in.Id), marshal(in)),
		persistence.Delete(persistence.PendingTopupKey(a.p.Id, in.Id)),
	)
	a.charging, a.intent, a.chargeRetries = false, nil, 0
	a.commit(c, ops, nil, false)
}

// listTopupIntents answers a platform's intents, newest first (at most 100).
func (a *platformActor) listTopupIntents(c actor.Context) {
	a.readYourWrites()
	out := &pb.TopupIntentList{}
	var failure error
	err := a.env.Store.ScanPrefix(persistence.TopupIntentsPrefix(a.p.Id), true, func(_, v []byte) bool {
		var in pb.TopupIntent
		if failure = proto.Unmarshal(v, &in); failure != nil {
			return false
		}
		out.Intents = append(out.Intents, &in)
		return len(out.Intents) < 100
	})
	if err == nil {
		err = failure
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	a.respondDurable(c, out)
}

// ResumeTopups activates every platform that has a pending auto top-up
// intent, so each asks the processor for its outcome (call it once at
// start, after a crash or not). It returns how many platforms it woke.
func ResumeTopups(ctx context.Context, dir Directory, st *persistence.Store) (int, error) {
	var platforms []ids.PlatformID
	seen := map[string]bool{}
	err := st.ScanPrefix(persistence.PendingTopupsPrefix, false, func(k, _ []byte) bool {
		rest := k[1:]
		for i, b := range rest {
			if b == 0 {
				rest = rest[:i]
				break
			}
		}
		if p := string(rest); !seen[p] {
			seen[p] = true
			platforms = append(platforms, ids.PlatformID(p))
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	var first error
	for _, p := range platforms {
		if _, err := dir.Ask(ctx, PlatformActor(p), &pb.GetWallet{}); err != nil && first == nil {
			first = err
		}
	}
	return len(platforms), first
}
