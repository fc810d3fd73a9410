package edge

// Payments through Stripe: wallet top-ups through Checkout and Stripe's
// webhook. The platform actor records sessions and credits them; this
// file talks to Stripe (package payments) and to the actor.

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"

	"github.com/stripe/stripe-go/v82"
	"github.com/valyala/fasthttp"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/payments"
)

var (
	errPaymentsOff = &apiError{Status: 503, Type: typeInternal, Code: "payments_not_configured",
		Message: "Stripe is not configured on this gateway (ASSISTIV_STRIPE_SECRET_KEY, ASSISTIV_STRIPE_WEBHOOK_SECRET)"}
	errPaymentProvider = &apiError{Status: 502, Type: typeInternal, Code: "payment_provider_error",
		Message: "Stripe did not accept the request; try again"}
)

func (s *Server) paymentRoutes(r routeTable) {
	plat := func(h func(*call) error) fasthttp.RequestHandler {
		return s.withKey(s.ownPlatform(h), ids.KindPlatform)
	}
	r.POST("/v1/platforms/{platformId}/wallet/checkout", plat(s.walletCheckout))
	r.POST("/stripe/webhook", s.wrap(s.stripeWebhook))
	r.GET("/admin/v1/platforms/{platformId}/wallet/auto-topup/intents", s.adminOnly(s.topupIntents))
}

// PaymentsConfigured reports whether Stripe is configured, that is
// whether POST /v1/platforms/{id}/wallet/checkout can create a session
// (without Stripe it answers 503 payments_not_configured).
func (s *Server) PaymentsConfigured() bool { return s.deps.Stripe != nil }

// minStripeChargeUSD is Stripe's smallest USD charge.
const minStripeChargeUSD = money.PerUSD / 2

// chargeableAmount refuses, when Stripe is configured, an auto top-up
// amount Stripe cannot charge: fractions of a cent, or under 0.50 USD.
func (s *Server) chargeableAmount(at *pb.AutoTopup) error {
	if s.deps.Stripe == nil || !at.Enabled {
		return nil
	}
	a := money.Nanos(at.AmountNanos)
	if _, ok := payments.Cents(a); !ok || a < minStripeChargeUSD {
		return errBadRequest("invalid_amount", "amount_usd must be a whole number of cents and at least 0.50 for Stripe to charge it")
	}
	return nil
}

type topupIntentJSON struct {
	ID        string      `json:"id"`
	Object    string      `json:"object"`
	Status    string      `json:"status"`
	AmountUSD money.Nanos `json:"amount_usd"`
	ChargeID  string      `json:"charge_id,omitempty"`
	Error     string      `json:"error,omitempty"`
	Attempts  int32       `json:"attempts"`
	CreatedAt string      `json:"created_at"`
	UpdatedAt string      `json:"updated_at"`
}

// topupIntents lists the platform's auto top-up intents, newest first (at
// most 100): what was asked of the processor, and how it ended.
func (s *Server) topupIntents(c *call) error {
	res, err := c.askPlatform(&pb.ListTopupIntents{})
	if err != nil {
		return err
	}
	out := []topupIntentJSON{}
	for _, in := range res.(*pb.TopupIntentList).Intents {
		out = append(out, topupIntentJSON{ID: in.Id, Object: "topup_intent", Status: in.Status, AmountUSD: money.Nanos(in.AmountNanos),
			ChargeID: in.ChargeId, Error: in.Error, Attempts: in.Attempts, CreatedAt: ts(in.CreatedAtMs), UpdatedAt: ts(in.UpdatedAtMs)})
	}
	return c.writeJSON(200, map[string]any{"object": "list", "data": out})
}

type checkoutIn struct {
	AmountUSD  *money.Nanos `json:"amount_usd"`
	SuccessURL string       `json:"success_url"`
	CancelURL  string       `json:"cancel_url"`
}

// validate checks the amount (whole cents within the stated bounds) and
// the optional redirect URLs.
func (in *checkoutIn) validate() error {
	if in.AmountUSD == nil {
		return errBadRequest("missing_field", "amount_usd is required")
	}
	a := *in.AmountUSD
	if a < payments.MinCheckoutUSD*money.PerUSD || a > payments.MaxCheckoutUSD*money.PerUSD {
		return errBadRequest("invalid_amount", "amount_usd must be between %d and %d", payments.MinCheckoutUSD, payments.MaxCheckoutUSD)
	}
	if _, ok := payments.Cents(a); !ok {
		return errBadRequest("invalid_amount", "amount_usd must be a whole number of cents")
	}
	for field, v := range map[string]string{"success_url": in.SuccessURL, "cancel_url": in.CancelURL} {
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || len(v) > 2048 || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return errBadRequest("invalid_field", "%s must be an absolute http(s) URL of at most 2048 bytes", field)
		}
	}
	return nil
}

// walletCheckout creates a Stripe Checkout Session for a wallet top-up and
// records it as pending before answering {"id","url"}.
func (s *Server) walletCheckout(c *call) error {
	st := s.deps.Stripe
	if st == nil {
		return errPaymentsOff
	}
	var in checkoutIn
	if err := c.decodeJSON(&in, false); err != nil {
		return err
	}
	if err := in.validate(); err != nil {
		return err
	}
	key, err := c.idempotencyKey()
	if err != nil {
		return err
	}
	customer, err := s.stripeCustomer(c)
	if err != nil {
		return err
	}
	pid := c.platformID()
	req := payments.CheckoutRequest{Platform: pid, Customer: customer, Amount: *in.AmountUSD,
		SuccessURL: in.SuccessURL, CancelURL: in.CancelURL}
	if req.SuccessURL == "" {
		req.SuccessURL = s.deps.PublicURL + "/dashboard/p/" + string(pid) + "/billing?checkout=success&session_id={CHECKOUT_SESSION_ID}"
	}
	if req.CancelURL == "" {
		req.CancelURL = s.deps.PublicURL + "/dashboard/p/" + string(pid) + "/billing?checkout=cancelled"
	}
	if key != "" {
		// Scoped to the platform; hashed to stay within Stripe's 255 bytes.
		h := sha256.Sum256([]byte(string(pid) + "\x00" + key))
		req.IdempotencyKey = "assistiv-checkout-" + hex.EncodeToString(h[:])
	}
	ctx, cancel := c.context()
	defer cancel()
	co, err := st.CreateCheckout(ctx, req)
	if err != nil {
		var se *stripe.Error
		if errors.As(err, &se) && se.Type == stripe.ErrorTypeIdempotency {
			return &apiError{Status: 422, Type: typeIdempotency, Code: "idempotency_key_reused",
				Message: "Idempotency-Key was already used with a different request"}
		}
		s.log.Error("stripe checkout session", "platform", pid, "request_id", c.rid, "err", err)
		return errPaymentProvider
	}
	res, err := c.askPlatform(&pb.RecordCheckout{Session: &pb.CheckoutSession{Id: co.ID, AmountNanos: int64(*in.AmountUSD), Url: co.URL}})
	if err != nil {
		return err
	}
	cs := res.(*pb.CheckoutRecorded).Session
	return c.writeJSON(200, map[string]any{
		"id": cs.Id, "object": "checkout_session", "url": cs.Url, "amount_usd": money.Nanos(cs.AmountNanos),
		"status": cs.Status, "created_at": ts(cs.CreatedAtMs),
	})
}

// stripeCustomer returns the platform's Stripe customer, creating it on
// first use.
func (s *Server) stripeCustomer(c *call) (string, error) {
	res, err := c.askPlatform(&pb.GetPaymentProfile{})
	if err != nil {
		return "", err
	}
	if id := res.(*pb.PaymentProfileView).Profile.GetCustomerId(); id != "" {
		return id, nil
	}
	res, err = c.askPlatform(&pb.GetPlatform{})
	if err != nil {
		return "", err
	}
	name := res.(*pb.PlatformView).Platform.GetSettings().GetDisplayName()
	ctx, cancel := c.context()
	defer cancel()
	id, err := s.deps.Stripe.CreateCustomer(ctx, c.platformID(), name)
	if err != nil {
		s.log.Error("stripe customer", "platform", c.platformID(), "request_id", c.rid, "err", err)
		return "", errPaymentProvider
	}
	res, err = c.askPlatform(&pb.SetPaymentProfile{CustomerId: id})
	if err != nil {
		return "", err
	}
	return res.(*pb.PaymentProfileView).Profile.GetCustomerId(), nil
}

// stripeWebhook verifies and applies one Stripe event. A bad signature
// answers 400 and changes nothing; an event the gateway does not act on,
// or about a session it did not create, is acknowledged (200) and logged;
// a credit is durable before the 200, and a failure to make it durable
// answers 5xx so Stripe delivers again.
func (s *Server) stripeWebhook(c *call) error {
	st := s.deps.Stripe
	if st == nil {
		return errPaymentsOff
	}
	ev, err := st.ParseEvent(c.ctx.PostBody(), string(c.ctx.Request.Header.Peek("Stripe-Signature")))
	if errors.Is(err, payments.ErrBadSignature) {
		s.log.Warn("stripe webhook with a bad signature", "request_id", c.rid, "err", err)
		return errBadRequest("invalid_signature", "Stripe-Signature does not verify")
	}
	if err != nil {
		return errBadRequest("invalid_event", "the body is not a Stripe event")
	}
	ack := map[string]any{"received": true}
	if ev.Checkout == nil {
		s.log.Debug("stripe event ignored", "event", ev.ID, "type", ev.Type)
		return c.writeJSON(200, ack)
	}
	p, o := ev.Checkout.Platform, ev.Checkout.Outcome
	if !ids.Valid(ids.PlatformPrefix, string(p)) {
		s.log.Info("stripe event for a session the gateway did not create; ignored", "event", ev.ID, "type", ev.Type, "session", o.SessionId)
		return c.writeJSON(200, ack)
	}
	res, err := c.ask(actors.PlatformActor(p), o)
	if errors.Is(err, actors.ErrPlatformNotFound) {
		s.log.Warn("stripe event for an unknown platform; ignored", "event", ev.ID, "platform", p, "session", o.SessionId)
		return c.writeJSON(200, ack)
	}
	if err != nil {
		return err
	}
	r := res.(*pb.CheckoutOutcomeResult)
	if !r.Known {
		s.log.Warn("stripe event for an unknown checkout session; ignored", "event", ev.ID, "type", ev.Type, "platform", p, "session", o.SessionId)
		return c.writeJSON(200, ack)
	}
	if r.Credited && o.PaymentIntentId != "" {
		s.saveCard(c, p, o.PaymentIntentId)
	}
	ack["credited"] = r.Credited
	return c.writeJSON(200, ack)
}

// saveCard remembers the card a checkout was paid with for auto top-up.
// Failing is not fatal: a charge then uses any card saved on the customer.
func (s *Server) saveCard(c *call, p ids.PlatformID, paymentIntent string) {
	ctx, cancel := c.context()
	defer cancel()
	pm, err := s.deps.Stripe.PaymentMethodOf(ctx, paymentIntent)
	if err == nil && pm != "" {
		_, err = c.ask(actors.PlatformActor(p), &pb.SetPaymentProfile{PaymentMethodId: pm})
	}
	if err != nil {
		s.log.Warn("could not save the checkout's card for auto top-up", "platform", p, "payment_intent", paymentIntent, "err", err)
	}
}
