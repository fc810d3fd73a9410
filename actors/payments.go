package actors

// The platform actor's side of Stripe Checkout top-ups: the payment
// profile (the processor's customer and saved card), pending Checkout
// Sessions, and crediting a session exactly once when Stripe reports it
// paid. The actor serializes every outcome of a platform's sessions, so
// duplicate or concurrent deliveries of one event find the session already
// paid and credit nothing; a duplicate is answered only once the credit is
// durable.

import (
	"errors"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// EntryStripeTopup is the wallet entry of a paid Checkout Session.
const EntryStripeTopup = "stripe_topup"

// Checkout Session states.
const (
	CheckoutPending = "pending"
	CheckoutPaid    = "paid"
	CheckoutFailed  = "failed"
	CheckoutExpired = "expired"
)

// Stripe event types the gateway acts on.
const (
	StripeCheckoutCompleted      = "checkout.session.completed"
	StripeCheckoutAsyncSucceeded = "checkout.session.async_payment_succeeded"
	StripeCheckoutAsyncFailed    = "checkout.session.async_payment_failed"
	StripeCheckoutExpired        = "checkout.session.expired"
)

// centNanos is one US cent in nanos.
const centNanos = money.PerUSD / 100

// receivePayments handles the payment messages; it reports whether m was
// one.
func (a *platformActor) receivePayments(c actor.Context, m any) bool {
	switch m := m.(type) {
	case *pb.GetPaymentProfile:
		a.respondDurable(c, &pb.PaymentProfileView{Profile: snapshot(a.paymentProfile())})
	case *pb.SetPaymentProfile:
		a.setPaymentProfile(c, m)
	case *pb.RecordCheckout:
		a.recordCheckout(c, m)
	case *pb.CheckoutOutcome:
		a.checkoutOutcome(c, m)
	case *pb.ListTopupIntents:
		a.listTopupIntents(c)
	default:
		return false
	}
	return true
}

func (a *platformActor) paymentProfile() *pb.PaymentProfile {
	if a.p.Payment == nil {
		a.p.Payment = &pb.PaymentProfile{}
	}
	return a.p.Payment
}

// setPaymentProfile keeps the first customer ever set (concurrent first
// checkouts may each have asked for one) and replaces the payment method.
func (a *platformActor) setPaymentProfile(c actor.Context, m *pb.SetPaymentProfile) {
	prof := a.paymentProfile()
	changed := false
	if prof.CustomerId == "" && m.CustomerId != "" {
		prof.CustomerId, changed = m.CustomerId, true
	}
	if m.PaymentMethodId != "" && m.PaymentMethodId != prof.PaymentMethodId {
		prof.PaymentMethodId, changed = m.PaymentMethodId, true
	}
	view := &pb.PaymentProfileView{Profile: snapshot(prof)}
	if !changed {
		a.respondDurable(c, view)
		return
	}
	a.p.UpdatedAtMs = a.now().UnixMilli()
	a.commit(c, a.write(), view, false)
}

func (a *platformActor) loadCheckout(id string) (*pb.CheckoutSession, error) {
	a.readYourWrites()
	raw, err := a.env.Store.Get(persistence.CheckoutSessionKey(a.p.Id, id))
	if err != nil {
		return nil, err
	}
	var s pb.CheckoutSession
	if err := proto.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// recordCheckout records a session the edge created as pending; recording
// the same session again answers the first record.
func (a *platformActor) recordCheckout(c actor.Context, m *pb.RecordCheckout) {
	in := m.Session
	if in == nil || in.Id == "" || in.AmountNanos <= 0 {
		a.fail(c, errorf(ErrInvalid, "checkout session id and a positive amount are required"))
		return
	}
	cur, err := a.loadCheckout(in.Id)
	if err == nil {
		a.respondDurable(c, &pb.CheckoutRecorded{Session: cur})
		return
	}
	if !errors.Is(err, persistence.ErrNotFound) {
		a.fail(c, err)
		return
	}
	now := a.now().UnixMilli()
	s := &pb.CheckoutSession{Id: in.Id, PlatformId: a.p.Id, AmountNanos: in.AmountNanos, Status: CheckoutPending,
		Url: in.Url, CreatedAtMs: now, UpdatedAtMs: now}
	ops := []persistence.Op{persistence.Set(persistence.CheckoutSessionKey(a.p.Id, s.Id), marshal(s))}
	a.commit(c, ops, &pb.CheckoutRecorded{Session: snapshot(s)}, false)
}

// checkoutOutcome applies what a verified Stripe event says about one of
// the platform's sessions. A session the platform never created answers
// known=false and changes nothing.
func (a *platformActor) checkoutOutcome(c actor.Context, m *pb.CheckoutOutcome) {
	s, err := a.loadCheckout(m.SessionId)
	if errors.Is(err, persistence.ErrNotFound) {
		a.respondDurable(c, &pb.CheckoutOutcomeResult{Known: false})
		return
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	unchanged := &pb.CheckoutOutcomeResult{Known: true, Session: snapshot(s)}
	switch m.EventType {
	case StripeCheckoutCompleted, StripeCheckoutAsyncSucceeded:
		if m.PaymentStatus != "paid" || s.Status == CheckoutPaid {
			// Unpaid: an asynchronous method (bank debit) still settling;
			// its async_payment_succeeded event credits. Paid: a replay.
			a.respondDurable(c, unchanged)
			return
		}
		a.creditCheckout(c, s, m)
	case StripeCheckoutAsyncFailed, StripeCheckoutExpired:
		if s.Status != CheckoutPending {
			a.respondDurable(c, unchanged)
			return
		}
		s.Status = CheckoutFailed
		if m.EventType == StripeCheckoutExpired {
			s.Status = CheckoutExpired
		}
		s.UpdatedAtMs = a.now().UnixMilli()
		ops := []persistence.Op{persistence.Set(persistence.CheckoutSessionKey(a.p.Id, s.Id), marshal(s))}
		a.commit(c, ops, &pb.CheckoutOutcomeResult{Known: true, Session: snapshot(s)}, false)
	default:
		a.fail(c, errorf(ErrInvalid, "checkout event type %q is not handled", m.EventType))
	}
}

// creditCheckout credits a paid session: the wallet, its stripe_topup
// entry, the session's new state and the wallet.topped_up event in one
// commit, answered once durable.
func (a *platformActor) creditCheckout(c actor.Context, s *pb.CheckoutSession, m *pb.CheckoutOutcome) {
	amount := money.Nanos(s.AmountNanos)
	if paid := money.Nanos(m.AmountTotalCents) * centNanos; m.Currency != "usd" || paid != amount {
		// Sessions are created in USD for the recorded amount; credit
		// what was recorded and leave a trace of the difference.
		a.env.Log.Warn("checkout session paid amount differs from the recorded amount; crediting the recorded amount",
			"platform", a.id.Platform, "session", s.Id, "recorded_usd", amount.String(), "paid_cents", m.AmountTotalCents, "currency", m.Currency)
	}
	now := a.now()
	e, err := a.wallet.deposit(now, EntryStripeTopup, amount)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.p.UpdatedAtMs = now.UnixMilli()
	e.Reason, e.IdempotencyKey = "stripe_checkout", s.Id
	e.CheckoutSessionId, e.PaymentIntentId = s.Id, m.PaymentIntentId
	s.Status, s.PaymentIntentId, s.LedgerSeq, s.UpdatedAtMs = CheckoutPaid, m.PaymentIntentId, e.Seq, now.UnixMilli()
	ops := append(a.write(),
		a.wallet.entryOp(e),
		persistence.Set(persistence.CheckoutSessionKey(a.p.Id, s.Id), marshal(s)),
	)
	ops = append(ops, a.walletEvent(now, EventWalletToppedUp, amount, e)...)
	a.env.Log.Info("checkout session credited", "platform", a.id.Platform, "session", s.Id, "payment_intent", m.PaymentIntentId, "amount_usd", amount.String())
	a.commit(c, ops, &pb.CheckoutOutcomeResult{Known: true, Credited: true, Session: snapshot(s), Entry: e}, false)
}
