package payments_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/payments"
	"github.com/assistiv/gateway/payments/stripetest"
)

const whsec = "whsec_test_payments_0123456789"

func newClient(t *testing.T, base string) *payments.Stripe {
	t.Helper()
	s, err := payments.New(payments.Config{SecretKey: "sk_test_123", WebhookSecret: whsec, APIBase: base,
		MaxNetworkRetries: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewNeedsBothSecrets(t *testing.T) {
	if _, err := payments.New(payments.Config{SecretKey: "sk_test_1"}); err == nil {
		t.Error("New without a webhook secret succeeded")
	}
	if _, err := payments.New(payments.Config{WebhookSecret: whsec}); err == nil {
		t.Error("New without a secret key succeeded")
	}
}

func TestCents(t *testing.T) {
	for _, c := range []struct {
		usd   string
		cents int64
		ok    bool
	}{{"25", 2500, true}, {"0.01", 1, true}, {"10.005", 1000, false}, {"1.23", 123, true}} {
		n, err := money.ParseUSD(c.usd)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := payments.Cents(n)
		if ok != c.ok || (ok && got != c.cents) {
			t.Errorf("Cents(%s) = %d, %v; want %d, %v", c.usd, got, ok, c.cents, c.ok)
		}
	}
}

// TestCheckoutAgainstStripeMock creates a customer and a Checkout Session
// through stripe-mock, which refuses any parameter Stripe's API does not
// define, and checks what was sent.
func TestCheckoutAgainstStripeMock(t *testing.T) {
	px := stripetest.Start(t)
	s := newClient(t, px.URL)
	ctx := context.Background()
	cus, err := s.CreateCustomer(ctx, "plat_test", "Acme")
	if err != nil || !strings.HasPrefix(cus, "cus_") {
		t.Fatalf("CreateCustomer = %q, %v", cus, err)
	}
	co, err := s.CreateCheckout(ctx, payments.CheckoutRequest{Platform: "plat_test", Customer: cus, Amount: 25 * money.PerUSD,
		SuccessURL: "https://example.com/ok", CancelURL: "https://example.com/no", IdempotencyKey: "k1"})
	if err != nil {
		t.Fatalf("CreateCheckout: %v", err)
	}
	if !strings.HasPrefix(co.ID, "cs_") || !strings.HasPrefix(co.URL, "https://") {
		t.Errorf("checkout = %+v", co)
	}
	reqs := px.Requests("/v1/checkout/sessions")
	if len(reqs) != 1 {
		t.Fatalf("%d checkout requests, want 1", len(reqs))
	}
	f := reqs[0].Form
	want := map[string]string{
		"mode": "payment", "customer": cus, "client_reference_id": "plat_test",
		"line_items[0][price_data][unit_amount]": "2500", "line_items[0][price_data][currency]": "usd",
		"line_items[0][quantity]":                 "1",
		"payment_intent_data[setup_future_usage]": "off_session",
		"metadata[" + payments.MetaPlatform + "]": "plat_test",
		"success_url": "https://example.com/ok",
	}
	for k, v := range want {
		if f.Get(k) != v {
			t.Errorf("checkout param %s = %q, want %q", k, f.Get(k), v)
		}
	}
	if reqs[0].IdempotencyKey != "k1" {
		t.Errorf("checkout Idempotency-Key = %q", reqs[0].IdempotencyKey)
	}
	if c := px.Requests("/v1/customers"); len(c) != 1 || c[0].IdempotencyKey != "assistiv-customer-plat_test" {
		t.Errorf("customer requests = %+v", c)
	}
	if _, err := s.CreateCheckout(ctx, payments.CheckoutRequest{Platform: "plat_test", Customer: cus, Amount: money.PerUSD + 1}); err == nil {
		t.Error("a sub-cent amount was sent to Stripe")
	}
}

func TestChargeOutcomes(t *testing.T) {
	px := stripetest.Start(t)
	s := newClient(t, px.URL)
	ctx := context.Background()
	req := actors.ChargeRequest{Platform: "plat_x", IntentID: "tpi_one", Amount: 50 * money.PerUSD,
		Customer: "cus_1", PaymentMethod: "pm_1", CreatedAt: time.Now()}

	px.Queue(stripetest.Succeed)
	res, err := s.Charge(ctx, req)
	if err != nil || res.Declined != "" || !strings.HasPrefix(res.ChargeID, "pi_") {
		t.Fatalf("Charge = %+v, %v", res, err)
	}
	pis := px.Requests("/v1/payment_intents")
	f := pis[0].Form
	for k, v := range map[string]string{"amount": "5000", "currency": "usd", "customer": "cus_1", "payment_method": "pm_1",
		"confirm": "true", "off_session": "true", "metadata[" + payments.MetaIntent + "]": "tpi_one"} {
		if f.Get(k) != v {
			t.Errorf("payment intent param %s = %q, want %q", k, f.Get(k), v)
		}
	}
	if pis[0].IdempotencyKey != "tpi_one" {
		t.Errorf("Idempotency-Key = %q, want the intent id", pis[0].IdempotencyKey)
	}
	// A replay answers the first outcome and charges nothing more.
	again, err := s.Charge(ctx, req)
	if err != nil || again.ChargeID != res.ChargeID || px.Charges() != 1 {
		t.Errorf("replay = %+v, %v; charges %d, want the same id and 1 charge", again, err, px.Charges())
	}

	req.IntentID = "tpi_two"
	px.Queue(stripetest.Decline)
	res, err = s.Charge(ctx, req)
	if err != nil || !strings.Contains(res.Declined, "card_declined") || !strings.Contains(res.Declined, "insufficient_funds") {
		t.Errorf("declined charge = %+v, %v", res, err)
	}

	req.IntentID = "tpi_three"
	px.Queue(stripetest.ServerError)
	if res, err = s.Charge(ctx, req); err == nil {
		t.Errorf("a 500 gave a definite outcome %+v; want unknown (error)", res)
	}
	// A charge executed whose response is lost: the first call may see an
	// error (or net/http's own retry under the same Idempotency-Key gets
	// the replay); asking again answers the one charge.
	before := px.Charges()
	px.Queue(stripetest.ExecuteAndDrop)
	req.IntentID = "tpi_four"
	first, firstErr := s.Charge(ctx, req)
	res, err = s.Charge(ctx, req)
	if err != nil || res.ChargeID == "" || px.Charges() != before+1 || (firstErr == nil && first.ChargeID != res.ChargeID) {
		t.Errorf("after a lost response: first %+v, %v; again %+v, %v; charges %d → %d, want one charge and its id",
			first, firstErr, res, err, before, px.Charges())
	}

	req.Customer = ""
	if res, err = s.Charge(ctx, req); err != nil || res.Declined == "" {
		t.Errorf("charge without a customer = %+v, %v; want declined", res, err)
	}
}

// TestChargeBeyondIdempotencyWindow: a replay of an intent older than
// Stripe's idempotency window asks the search API instead of re-sending
// the charge, and voids the intent when Stripe has no PaymentIntent for it.
func TestChargeBeyondIdempotencyWindow(t *testing.T) {
	px := stripetest.Start(t)
	s := newClient(t, px.URL)
	ctx := context.Background()
	req := actors.ChargeRequest{Platform: "plat_x", IntentID: "tpi_old", Amount: 5 * money.PerUSD,
		Customer: "cus_1", PaymentMethod: "pm_1", CreatedAt: time.Now()}
	first, err := s.Charge(ctx, req)
	if err != nil || first.ChargeID == "" {
		t.Fatalf("Charge = %+v, %v", first, err)
	}
	req.CreatedAt = time.Now().Add(-30 * time.Hour)
	again, err := s.Charge(ctx, req)
	if err != nil || again.ChargeID != first.ChargeID || px.Charges() != 1 {
		t.Errorf("old replay = %+v, %v (charges %d); want the first charge found by search", again, err, px.Charges())
	}
	if n := len(px.Requests("/v1/payment_intents/search")); n != 1 {
		t.Errorf("%d searches, want 1", n)
	}
	req.IntentID = "tpi_never_sent"
	res, err := s.Charge(ctx, req)
	if err != nil || res.Void == "" || res.ChargeID != "" || px.Charges() != 1 || len(chargeCreates(px)) != 1 {
		t.Errorf("old intent never sent = %+v, %v (charges %d); want voided, not charged", res, err, px.Charges())
	}
}

func chargeCreates(px *stripetest.Proxy) []stripetest.Request {
	var out []stripetest.Request
	for _, r := range px.Requests("/v1/payment_intents") {
		if r.Method == "POST" && r.Path == "/v1/payment_intents" {
			out = append(out, r)
		}
	}
	return out
}

func signed(t *testing.T, secret string, at time.Time, ev map[string]any) ([]byte, string) {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: b, Secret: secret, Timestamp: at})
	return sp.Payload, sp.Header
}

func checkoutEvent(typ, session, status string) map[string]any {
	return map[string]any{
		"id": "evt_1", "object": "event", "type": typ, "api_version": "2019-02-19", "created": time.Now().Unix(),
		"data": map[string]any{"object": map[string]any{
			"id": session, "object": "checkout.session", "payment_status": status, "payment_intent": "pi_123",
			"amount_total": 2500, "currency": "usd", "client_reference_id": "plat_a",
			"metadata": map[string]any{payments.MetaPlatform: "plat_b"},
		}},
	}
}

func TestParseEvent(t *testing.T) {
	s := newClient(t, "http://127.0.0.1:1")
	body, sig := signed(t, whsec, time.Now(), checkoutEvent(actors.StripeCheckoutCompleted, "cs_1", "paid"))
	ev, err := s.ParseEvent(body, sig)
	if err != nil {
		t.Fatalf("ParseEvent: %v", err)
	}
	o := ev.Checkout.Outcome
	if ev.Checkout.Platform != "plat_b" || o.SessionId != "cs_1" || o.PaymentStatus != "paid" || o.PaymentIntentId != "pi_123" ||
		o.AmountTotalCents != 2500 || o.Currency != "usd" || o.EventType != actors.StripeCheckoutCompleted {
		t.Errorf("event = %+v %+v", ev.Checkout, o)
	}

	bad := []struct {
		name      string
		body, sig string
	}{
		{"wrong secret", string(body), func() string {
			_, h := signed(t, "whsec_other", time.Now(), checkoutEvent("x", "cs_1", "paid"))
			return h
		}()},
		{"altered body", strings.Replace(string(body), "2500", "250000", 1), sig},
		{"no header", string(body), ""},
		{"garbage header", string(body), "t=abc,v1=zz"},
	}
	old, oldSig := signed(t, whsec, time.Now().Add(-6*time.Minute), checkoutEvent(actors.StripeCheckoutCompleted, "cs_1", "paid"))
	bad = append(bad, struct {
		name      string
		body, sig string
	}{"older than 5 minutes", string(old), oldSig})
	for _, b := range bad {
		if _, err := s.ParseEvent([]byte(b.body), b.sig); !errors.Is(err, payments.ErrBadSignature) {
			t.Errorf("%s: err = %v, want ErrBadSignature", b.name, err)
		}
	}
	recent, recentSig := signed(t, whsec, time.Now().Add(-4*time.Minute), checkoutEvent(actors.StripeCheckoutCompleted, "cs_1", "paid"))
	if _, err := s.ParseEvent(recent, recentSig); err != nil {
		t.Errorf("a 4-minute-old event was refused: %v", err)
	}

	other, otherSig := signed(t, whsec, time.Now(), map[string]any{"id": "evt_2", "object": "event", "type": "customer.created",
		"data": map[string]any{"object": map[string]any{"id": "cus_1"}}})
	ev, err = s.ParseEvent(other, otherSig)
	if err != nil || ev.Checkout != nil || ev.Type != "customer.created" {
		t.Errorf("unhandled type = %+v, %v; want acknowledged, no checkout", ev, err)
	}
}
