package edge_test

// Payments through Stripe (issue 15), against stripe-mock behind the
// recording proxy of payments/stripetest; Stripe's webhooks are signed by
// the tests with stripe-go's own test-signature helper.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82/webhook"
	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/payments"
	"github.com/assistiv/gateway/payments/stripetest"
	"github.com/assistiv/gateway/persistence"
)

const testWhsec = "whsec_edge_payments_0123456789"

type stripeEnv struct {
	g  *edgetest.Gateway
	px *stripetest.Proxy
}

func startStripeGateway(t *testing.T, opts edgetest.Options) stripeEnv {
	t.Helper()
	px := stripetest.Start(t)
	sc, err := payments.New(payments.Config{SecretKey: "sk_test_123", WebhookSecret: testWhsec, APIBase: px.URL,
		MaxNetworkRetries: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	opts.Stripe = sc
	return stripeEnv{g: edgetest.Start(t, opts), px: px}
}

// checkout creates a Checkout Session for pid and returns its id.
func (e stripeEnv) checkout(t *testing.T, pid, pkey string, usd any) string {
	t.Helper()
	r := e.g.Do(t, "POST", "/v1/platforms/"+pid+"/wallet/checkout", pkey, map[string]any{"amount_usd": usd})
	m := wantStatus(t, "checkout", r, 200)
	id := str(m, "id")
	if !strings.HasPrefix(id, "cs_") || !strings.HasPrefix(str(m, "url"), "https://") || str(m, "status") != "pending" {
		t.Fatalf("checkout = %s", r.Body)
	}
	return id
}

func sessionEvent(typ, session, pid, paymentStatus string, cents int64) map[string]any {
	return map[string]any{
		"id": ids.New("evt_", time.Now()), "object": "event", "type": typ, "api_version": "2025-01-27.acacia",
		"created": time.Now().Unix(), "livemode": false,
		"data": map[string]any{"object": map[string]any{
			"id": session, "object": "checkout.session", "mode": "payment", "payment_status": paymentStatus,
			"payment_intent": "pi_for_" + session, "amount_total": cents, "currency": "usd",
			"client_reference_id": pid, "metadata": map[string]any{payments.MetaPlatform: pid},
		}},
	}
}

// deliver posts a Stripe event signed with secret at the given time.
func (e stripeEnv) deliver(t *testing.T, secret string, at time.Time, ev map[string]any) *edgetest.Response {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: b, Secret: secret, Timestamp: at})
	return e.g.Do(t, "POST", "/stripe/webhook", "", sp.Payload, "Stripe-Signature", sp.Header)
}

func walletBalance(t *testing.T, g *edgetest.Gateway, pid string) string {
	t.Helper()
	m := wantStatus(t, "wallet", g.Do(t, "GET", "/admin/v1/platforms/"+pid+"/wallet", edgetest.AdminKey, nil), 200)
	return fmt.Sprint(m["balance_usd"])
}

func walletEntries(t *testing.T, g *edgetest.Gateway, pid, typ string) []map[string]any {
	t.Helper()
	m := wantStatus(t, "transactions", g.Do(t, "GET", "/admin/v1/platforms/"+pid+"/wallet/transactions?limit=1000", edgetest.AdminKey, nil), 200)
	var out []map[string]any
	for _, e := range m["data"].([]any) {
		if e := e.(map[string]any); e["type"] == typ {
			out = append(out, e)
		}
	}
	return out
}

func storedCheckout(t *testing.T, st *persistence.Store, pid, id string) *pb.CheckoutSession {
	t.Helper()
	raw, err := st.Get(persistence.CheckoutSessionKey(pid, id))
	if err != nil {
		t.Fatalf("checkout session %s not stored: %v", id, err)
	}
	var s pb.CheckoutSession
	if err := proto.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func TestCheckoutCreatesAndRecordsSession(t *testing.T) {
	e := startStripeGateway(t, edgetest.Options{})
	pid, pkey := e.g.CreatePlatform(t, "Acme Pay")
	id := e.checkout(t, pid, pkey, 25)
	s := storedCheckout(t, e.g.Store, pid, id)
	if s.Status != actors.CheckoutPending || s.AmountNanos != 25e9 || s.PlatformId != pid {
		t.Errorf("stored session = %+v", s)
	}
	cs := e.px.Requests("/v1/checkout/sessions")
	cus := e.px.Requests("/v1/customers")
	if len(cs) != 1 || len(cus) != 1 {
		t.Fatalf("%d checkout and %d customer requests, want 1 and 1", len(cs), len(cus))
	}
	f := cs[0].Form
	if f.Get("mode") != "payment" || f.Get("payment_intent_data[setup_future_usage]") != "off_session" ||
		f.Get("line_items[0][price_data][unit_amount]") != "2500" || f.Get("client_reference_id") != pid ||
		!strings.HasPrefix(f.Get("customer"), "cus_") || !strings.HasPrefix(f.Get("success_url"), e.g.URL+"/") {
		t.Errorf("checkout session params = %v", f)
	}
	if cus[0].Form.Get("name") != "Acme Pay" || cus[0].Form.Get("metadata["+payments.MetaPlatform+"]") != pid {
		t.Errorf("customer params = %v", cus[0].Form)
	}
	// The customer is created once and reused.
	e.checkout(t, pid, pkey, json.Number("10.50"))
	if n := len(e.px.Requests("/v1/customers")); n != 1 {
		t.Errorf("%d customer creations after two checkouts, want 1", n)
	}
	if got := e.px.Requests("/v1/checkout/sessions")[1].Form.Get("line_items[0][price_data][unit_amount]"); got != "1050" {
		t.Errorf("10.50 USD sent as %s cents", got)
	}
	// The same Idempotency-Key answers the same session.
	path := "/v1/platforms/" + pid + "/wallet/checkout"
	r1 := wantStatus(t, "keyed checkout", e.g.Do(t, "POST", path, pkey, map[string]any{"amount_usd": 5}, "Idempotency-Key", "co-1"), 200)
	r2 := wantStatus(t, "keyed checkout again", e.g.Do(t, "POST", path, pkey, map[string]any{"amount_usd": 5}, "Idempotency-Key", "co-1"), 200)
	if r1["id"] != r2["id"] {
		t.Errorf("same Idempotency-Key gave sessions %v and %v", r1["id"], r2["id"])
	}
	wantError(t, "same key, other amount", e.g.Do(t, "POST", path, pkey, map[string]any{"amount_usd": 6}, "Idempotency-Key", "co-1"), 422, "idempotency_key_reused")
}

func TestCheckoutRefusals(t *testing.T) {
	e := startStripeGateway(t, edgetest.Options{})
	pid, pkey := e.g.CreatePlatform(t, "p")
	other, _ := e.g.CreatePlatform(t, "other")
	_, ukey := e.g.CreateEndUser(t, pid, pkey, "u1")
	path := "/v1/platforms/" + pid + "/wallet/checkout"
	for _, c := range []struct {
		body any
		code string
	}{
		{map[string]any{}, "missing_field"},
		{map[string]any{"amount_usd": "0.99"}, "invalid_amount"},
		{map[string]any{"amount_usd": 10000.01}, "invalid_amount"},
		{map[string]any{"amount_usd": "10.005"}, "invalid_amount"},
		{map[string]any{"amount_usd": -5}, "invalid_amount"},
		{map[string]any{"amount_usd": 5, "success_url": "javascript:alert(1)"}, "invalid_field"},
	} {
		wantError(t, fmt.Sprintf("checkout %v", c.body), e.g.Do(t, "POST", path, pkey, c.body), 400, c.code)
	}
	wantError(t, "another platform's checkout", e.g.Do(t, "POST", "/v1/platforms/"+other+"/wallet/checkout", pkey, map[string]any{"amount_usd": 5}), 404, "not_found")
	wantError(t, "end-user key", e.g.Do(t, "POST", path, ukey, map[string]any{"amount_usd": 5}), 403, "wrong_key_type")
	if n := len(e.px.Requests("/v1/")); n != 0 {
		t.Errorf("refused checkouts made %d Stripe requests", n)
	}
	e.checkout(t, pid, pkey, 10000) // the upper bound itself is allowed
	e.checkout(t, pid, pkey, 1)     // and the lower

	at := "/admin/v1/platforms/" + pid + "/wallet/auto-topup"
	for _, amt := range []string{"0.49", "5.001"} {
		wantError(t, "auto top-up of "+amt, e.g.Do(t, "PUT", at, edgetest.AdminKey,
			map[string]any{"enabled": true, "threshold_usd": 1, "amount_usd": json.Number(amt)}), 400, "invalid_amount")
	}

	plain := edgetest.Start(t, edgetest.Options{})
	ppid, ppkey := plain.CreatePlatform(t, "no stripe")
	wantError(t, "checkout without Stripe", plain.Do(t, "POST", "/v1/platforms/"+ppid+"/wallet/checkout", ppkey, map[string]any{"amount_usd": 5}), 503, "payments_not_configured")
	wantError(t, "webhook without Stripe", plain.Do(t, "POST", "/stripe/webhook", "", `{}`), 503, "payments_not_configured")
}

// TestStripeWebhookCreditsOnce: three concurrent deliveries of each of
// four sessions' checkout.session.completed (twelve at once) credit each
// session once, with one stripe_topup entry carrying the session and
// payment intent ids and one wallet.topped_up event each; a later replay
// credits nothing.
func TestStripeWebhookCreditsOnce(t *testing.T) {
	e := startStripeGateway(t, edgetest.Options{Webhooks: true})
	rc := newWhReceiver(t, nil)
	pid, pkey := e.g.CreatePlatform(t, "p")
	whCreate(t, e.g.Client(), e.g.URL, pid, rc.URL+"/in", actors.EventWalletToppedUp)
	cents := map[string]int64{}
	for _, usd := range []string{"25", "10.50", "1", "100.01"} {
		n, _ := money.ParseUSD(usd)
		c, _ := payments.Cents(n)
		cents[e.checkout(t, pid, pkey, json.Number(usd))] = c
	}
	id := e.checkout(t, pid, pkey, 25)
	cents[id] = 2500
	ev := sessionEvent(actors.StripeCheckoutCompleted, id, pid, "paid", 2500)

	var wg sync.WaitGroup
	var mu sync.Mutex
	credited := map[string]int{}
	for sid, c := range cents {
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.deliver(t, testWhsec, time.Now(), sessionEvent(actors.StripeCheckoutCompleted, sid, pid, "paid", c))
				if r.Status != 200 {
					t.Errorf("delivery = %d %s", r.Status, r.Body)
					return
				}
				if r.Map(t)["credited"] == true {
					mu.Lock()
					credited[sid]++
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	for sid := range cents {
		if credited[sid] != 1 {
			t.Errorf("session %s credited by %d of 3 concurrent deliveries, want 1", sid, credited[sid])
		}
	}
	if r := e.deliver(t, testWhsec, time.Now(), ev); r.Status != 200 || r.Map(t)["credited"] != false {
		t.Errorf("replay = %d %s", r.Status, r.Body)
	}
	if b := walletBalance(t, e.g, pid); b != "161.51" {
		t.Errorf("balance = %s, want 161.51 (25+10.50+1+100.01+25)", b)
	}
	entries := walletEntries(t, e.g, pid, actors.EntryStripeTopup)
	if len(entries) != len(cents) {
		t.Fatalf("%d stripe_topup entries, want %d", len(entries), len(cents))
	}
	for _, en := range entries {
		if sid, _ := en["checkout_session_id"].(string); en["payment_intent_id"] != "pi_for_"+sid || fmt.Sprint(en["amount_usd"]) != money.Nanos(cents[sid]*1e7).String() {
			t.Errorf("stripe_topup entry = %v", en)
		}
	}
	if s := storedCheckout(t, e.g.Store, pid, id); s.Status != actors.CheckoutPaid || s.PaymentIntentId != "pi_for_"+id {
		t.Errorf("session after credit = %+v", s)
	}
	whWait(t, "wallet.topped_up", func() bool { return len(rc.byType(actors.EventWalletToppedUp)) >= len(cents) })
	time.Sleep(200 * time.Millisecond)
	if got := len(rc.byType(actors.EventWalletToppedUp)); got != len(cents) {
		t.Errorf("%d wallet.topped_up events, want %d", got, len(cents))
	}
	// The card the checkout was paid with is saved for auto top-up.
	res, err := e.g.Actors.Ask(context.Background(), actors.PlatformActor(ids.PlatformID(pid)), &pb.GetPaymentProfile{})
	if err != nil || !strings.HasPrefix(res.(*pb.PaymentProfileView).Profile.GetPaymentMethodId(), "pm_") {
		t.Errorf("payment profile = %v, %v; want a saved pm_", res, err)
	}
}

func TestStripeWebhookRefusesBadSignatures(t *testing.T) {
	e := startStripeGateway(t, edgetest.Options{})
	pid, pkey := e.g.CreatePlatform(t, "p")
	id := e.checkout(t, pid, pkey, 25)
	ev := sessionEvent(actors.StripeCheckoutCompleted, id, pid, "paid", 2500)
	wantError(t, "wrong secret", e.deliver(t, "whsec_not_ours", time.Now(), ev), 400, "invalid_signature")
	wantError(t, "stale signature", e.deliver(t, testWhsec, time.Now().Add(-10*time.Minute), ev), 400, "invalid_signature")
	b, _ := json.Marshal(ev)
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: b, Secret: testWhsec})
	tampered := strings.Replace(string(sp.Payload), `"amount_total":2500`, `"amount_total":250000`, 1)
	wantError(t, "tampered body", e.g.Do(t, "POST", "/stripe/webhook", "", tampered, "Stripe-Signature", sp.Header), 400, "invalid_signature")
	wantError(t, "no signature", e.g.Do(t, "POST", "/stripe/webhook", "", b), 400, "invalid_signature")
	if bal := walletBalance(t, e.g, pid); bal != "0" {
		t.Errorf("balance after refused events = %s, want 0", bal)
	}
	if s := storedCheckout(t, e.g.Store, pid, id); s.Status != actors.CheckoutPending {
		t.Errorf("session after refused events = %s, want pending", s.Status)
	}
}

func TestStripeWebhookUnknownSessionIgnored(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	e := startStripeGateway(t, edgetest.Options{Log: log})
	pid, pkey := e.g.CreatePlatform(t, "p")
	e.checkout(t, pid, pkey, 25)
	for _, ev := range []map[string]any{
		sessionEvent(actors.StripeCheckoutCompleted, "cs_test_not_ours", pid, "paid", 2500),                        // unknown session
		sessionEvent(actors.StripeCheckoutCompleted, "cs_test_x", "plat_00000000000000000000000000", "paid", 2500), // unknown platform
		sessionEvent(actors.StripeCheckoutCompleted, "cs_test_y", "", "paid", 2500),                                // not the gateway's
		{"id": "evt_c", "object": "event", "type": "customer.updated", "data": map[string]any{"object": map[string]any{"id": "cus_1"}}},
	} {
		if r := e.deliver(t, testWhsec, time.Now(), ev); r.Status != 200 || r.Map(t)["received"] != true || r.Map(t)["credited"] == true {
			t.Errorf("event %v = %d %s, want acknowledged", ev["type"], r.Status, r.Body)
		}
	}
	if bal := walletBalance(t, e.g, pid); bal != "0" {
		t.Errorf("balance = %s, want 0", bal)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "unknown checkout session") || !strings.Contains(logs.String(), "cs_test_not_ours") {
		t.Errorf("the unknown session was not logged:\n%s", logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestStripeWebhookAsyncPayments(t *testing.T) {
	e := startStripeGateway(t, edgetest.Options{})
	pid, pkey := e.g.CreatePlatform(t, "p")
	slow := e.checkout(t, pid, pkey, 40)
	failed := e.checkout(t, pid, pkey, 30)
	// A bank debit: completed but unpaid credits nothing yet.
	for _, id := range []string{slow, failed} {
		if r := e.deliver(t, testWhsec, time.Now(), sessionEvent(actors.StripeCheckoutCompleted, id, pid, "unpaid", 4000)); r.Status != 200 {
			t.Fatalf("completed unpaid = %d %s", r.Status, r.Body)
		}
	}
	if bal := walletBalance(t, e.g, pid); bal != "0" {
		t.Fatalf("balance after unpaid completions = %s, want 0", bal)
	}
	e.deliver(t, testWhsec, time.Now(), sessionEvent(actors.StripeCheckoutAsyncSucceeded, slow, pid, "paid", 4000))
	e.deliver(t, testWhsec, time.Now(), sessionEvent(actors.StripeCheckoutAsyncFailed, failed, pid, "unpaid", 3000))
	e.deliver(t, testWhsec, time.Now(), sessionEvent(actors.StripeCheckoutAsyncSucceeded, slow, pid, "paid", 4000)) // replay
	if bal := walletBalance(t, e.g, pid); bal != "40" {
		t.Errorf("balance = %s, want 40", bal)
	}
	if s := storedCheckout(t, e.g.Store, pid, failed); s.Status != actors.CheckoutFailed {
		t.Errorf("failed session status = %s", s.Status)
	}
	if n := len(walletEntries(t, e.g, pid, actors.EntryStripeTopup)); n != 1 {
		t.Errorf("%d stripe_topup entries, want 1", n)
	}
}

// paidPlatform creates a platform whose Stripe customer and card are saved
// by a paid 25 USD checkout.
func (e stripeEnv) paidPlatform(t *testing.T) (pid, pkey string) {
	t.Helper()
	pid, pkey = e.g.CreatePlatform(t, "auto")
	id := e.checkout(t, pid, pkey, 25)
	if r := e.deliver(t, testWhsec, time.Now(), sessionEvent(actors.StripeCheckoutCompleted, id, pid, "paid", 2500)); r.Status != 200 {
		t.Fatalf("checkout completed = %d %s", r.Status, r.Body)
	}
	return pid, pkey
}

// spend makes one inference-like call of nanos on the wallet: an end-user
// without a budget admits it against the node's wallet lease and settles
// it, then the lease's spend is folded into the wallet (as its flush
// timer would), which is where auto top-up is decided.
func spend(t *testing.T, g *edgetest.Gateway, pid string, nanos int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	plat := actors.PlatformActor(ids.PlatformID(pid))
	if _, err := g.Actors.Ask(ctx, plat, &pb.SetProvider{Config: &pb.ProviderConfig{Provider: "openai", SealedApiKey: []byte("sealed"), Enabled: true}, SetKey: true, SetEnabled: true}); err != nil {
		t.Fatalf("SetProvider: %v", err)
	}
	res, err := g.Actors.Ask(ctx, plat, &pb.CreateEndUser{ExternalId: "spender"})
	if err != nil {
		t.Fatalf("CreateEndUser: %v", err)
	}
	eu := actors.EndUserActor(ids.PlatformID(pid), ids.EndUserID(res.(*pb.EndUserCreated).EndUser.Id))
	rid := ids.New("res_", time.Now())
	if _, err := g.Actors.Ask(ctx, eu, &pb.Admit{ReservationId: rid, RequestId: rid, MaxCostNanos: nanos, Provider: "openai"}); err != nil {
		t.Fatalf("Admit: %v", err)
	}
	if _, err := g.Actors.Ask(ctx, eu, &pb.Settle{ReservationId: rid, CostNanos: nanos, RequestId: rid, Model: "m"}); err != nil {
		t.Fatalf("Settle: %v", err)
	}
	if _, err := g.Actors.Ask(ctx, plat, &pb.LeaseFlush{}); err != nil {
		t.Fatalf("LeaseFlush: %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func intents(t *testing.T, g *edgetest.Gateway, pid string) []*pb.TopupIntent {
	t.Helper()
	res, err := g.Actors.Ask(context.Background(), actors.PlatformActor(ids.PlatformID(pid)), &pb.ListTopupIntents{})
	if err != nil {
		t.Fatal(err)
	}
	return res.(*pb.TopupIntentList).Intents
}

func TestAutoTopupChargesSavedCardOnce(t *testing.T) {
	e := startStripeGateway(t, edgetest.Options{})
	pid, _ := e.paidPlatform(t)
	wantStatus(t, "auto-topup", e.g.Do(t, "PUT", "/admin/v1/platforms/"+pid+"/wallet/auto-topup", edgetest.AdminKey,
		map[string]any{"enabled": true, "threshold_usd": 20, "amount_usd": 50}), 200)
	if n := e.px.Charges(); n != 0 {
		t.Fatalf("%d charges above the threshold", n)
	}
	spend(t, e.g, pid, 10e9) // 25 → 15, under 20
	waitFor(t, "the auto top-up credit", func() bool { return walletBalance(t, e.g, pid) == "65" })
	pis := chargeRequests(e.px)
	if len(pis) != 1 || e.px.Charges() != 1 {
		t.Fatalf("%d payment intent requests, %d charges; want 1", len(pis), e.px.Charges())
	}
	f := pis[0].Form
	if f.Get("amount") != "5000" || f.Get("confirm") != "true" || f.Get("off_session") != "true" ||
		!strings.HasPrefix(f.Get("payment_method"), "pm_") || !strings.HasPrefix(f.Get("customer"), "cus_") {
		t.Errorf("payment intent params = %v", f)
	}
	in := intents(t, e.g, pid)
	if len(in) != 1 || in[0].Status != actors.IntentSucceeded || pis[0].IdempotencyKey != in[0].Id || !strings.HasPrefix(in[0].Id, actors.IntentPrefix) {
		t.Fatalf("intents = %v; Idempotency-Key %q", in, pis[0].IdempotencyKey)
	}
	auto := walletEntries(t, e.g, pid, actors.EntryAutoTopup)
	if len(auto) != 1 || auto[0]["idempotency_key"] != in[0].Id || auto[0]["payment_intent_id"] != in[0].ChargeId || fmt.Sprint(auto[0]["amount_usd"]) != "50" {
		t.Errorf("auto_topup entries = %v", auto)
	}
	l := wantStatus(t, "intents", e.g.Do(t, "GET", "/admin/v1/platforms/"+pid+"/wallet/auto-topup/intents", edgetest.AdminKey, nil), 200)
	if d := l["data"].([]any); len(d) != 1 || d[0].(map[string]any)["status"] != "succeeded" || d[0].(map[string]any)["id"] != in[0].Id ||
		d[0].(map[string]any)["charge_id"] != in[0].ChargeId || fmt.Sprint(d[0].(map[string]any)["amount_usd"]) != "50" {
		t.Errorf("intents API = %v", l)
	}
	if _, err := e.g.Store.Get(persistence.PendingTopupKey(pid, in[0].Id)); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("pending index left after success: %v", err)
	}
}

// TestAutoTopupEnabledBelowThresholdAnnouncesLowBalance: enabling auto
// top-up on a wallet already under the threshold charges at once, and
// wallet.low_balance still arrives before the top-up's wallet.topped_up.
func TestAutoTopupEnabledBelowThresholdAnnouncesLowBalance(t *testing.T) {
	e := startStripeGateway(t, edgetest.Options{Webhooks: true})
	rc := newWhReceiver(t, nil)
	pid, _ := e.paidPlatform(t)
	whCreate(t, e.g.Client(), e.g.URL, pid, rc.URL+"/in", actors.EventWalletLowBalance, actors.EventWalletToppedUp)
	wantStatus(t, "auto-topup", e.g.Do(t, "PUT", "/admin/v1/platforms/"+pid+"/wallet/auto-topup", edgetest.AdminKey,
		map[string]any{"enabled": true, "threshold_usd": 30, "amount_usd": 50}), 200)
	whWait(t, "low balance and top-up", func() bool {
		return len(rc.byType(actors.EventWalletLowBalance)) >= 1 && len(rc.byType(actors.EventWalletToppedUp)) >= 1
	})
	low, top := rc.byType(actors.EventWalletLowBalance)[0].event, rc.byType(actors.EventWalletToppedUp)[0].event
	lowAt, _ := time.Parse(time.RFC3339Nano, low.CreatedAt)
	topAt, _ := time.Parse(time.RFC3339Nano, top.CreatedAt)
	if lowAt.IsZero() || topAt.Before(lowAt) || fmt.Sprint(low.Data["balance_usd"]) != "25" || fmt.Sprint(low.Data["threshold_usd"]) != "30" {
		t.Errorf("wallet.low_balance %v (%s) does not precede wallet.topped_up %v (%s)", low.Data, low.ID, top.Data, top.ID)
	}
	if top.Data["transaction_type"] != actors.EntryAutoTopup || fmt.Sprint(top.Data["balance_usd"]) != "75" {
		t.Errorf("wallet.topped_up = %v", top.Data)
	}
}

func TestAutoTopupDeclinesThenDisables(t *testing.T) {
	e := startStripeGateway(t, edgetest.Options{Env: func(env *actors.Env) { env.AutoTopupDeclineBackoff = 0 }})
	pid, _ := e.paidPlatform(t)
	e.px.Queue(stripetest.Decline, stripetest.Decline, stripetest.Decline)
	wallet := func() map[string]any {
		return wantStatus(t, "wallet", e.g.Do(t, "GET", "/admin/v1/platforms/"+pid+"/wallet", edgetest.AdminKey, nil), 200)
	}
	for i := 1; i <= actors.MaxAutoTopupDeclines; i++ {
		if i == 1 { // 25 is under the threshold: enabling starts the first
			wantStatus(t, "auto-topup", e.g.Do(t, "PUT", "/admin/v1/platforms/"+pid+"/wallet/auto-topup", edgetest.AdminKey,
				map[string]any{"enabled": true, "threshold_usd": 30, "amount_usd": 50}), 200)
		} else {
			spend(t, e.g, pid, 1e9)
		}
		waitFor(t, fmt.Sprintf("decline %d", i), func() bool {
			at := wallet()["auto_topup"].(map[string]any)
			return fmt.Sprint(at["consecutive_failures"]) == fmt.Sprint(i)
		})
		at := wallet()["auto_topup"].(map[string]any)
		if le, _ := at["last_error"].(string); !strings.Contains(le, "card_declined") || at["last_error_at"] == nil {
			t.Errorf("after decline %d auto_topup = %v, want last_error card_declined", i, at)
		}
		if want := i < actors.MaxAutoTopupDeclines; at["enabled"] != want {
			t.Errorf("after decline %d enabled = %v, want %v", i, at["enabled"], want)
		}
	}
	spend(t, e.g, pid, 1e9)
	time.Sleep(200 * time.Millisecond)
	if n := e.px.Charges(); n != actors.MaxAutoTopupDeclines {
		t.Errorf("%d charges, want %d (none after auto top-up turned off)", n, actors.MaxAutoTopupDeclines)
	}
	if bal := walletBalance(t, e.g, pid); bal != "22" {
		t.Errorf("balance = %s, want 22 (nothing credited)", bal)
	}
	for _, in := range intents(t, e.g, pid) {
		if in.Status != actors.IntentFailed || !strings.Contains(in.Error, "insufficient_funds") {
			t.Errorf("intent = %v, want failed with the decline", in)
		}
	}
	// Turning it back on clears the decline record.
	at := wantStatus(t, "re-enable", e.g.Do(t, "PUT", "/admin/v1/platforms/"+pid+"/wallet/auto-topup", edgetest.AdminKey,
		map[string]any{"enabled": true, "threshold_usd": 30, "amount_usd": 50}), 200)["auto_topup"].(map[string]any)
	if at["last_error"] != nil || fmt.Sprint(at["consecutive_failures"]) != "0" {
		t.Errorf("re-enabled auto_topup = %v", at)
	}
	waitFor(t, "the top-up after re-enabling", func() bool { return walletBalance(t, e.g, pid) == "72" })
}

// TestAutoTopupDeclineBackoff: after a decline no new charge starts until
// the backoff (15 minutes by default) has passed.
func TestAutoTopupDeclineBackoff(t *testing.T) {
	clk := clock.NewFake(time.Now())
	e := startStripeGateway(t, edgetest.Options{Clock: clk})
	pid, _ := e.paidPlatform(t)
	e.px.Queue(stripetest.Decline)
	wantStatus(t, "auto-topup", e.g.Do(t, "PUT", "/admin/v1/platforms/"+pid+"/wallet/auto-topup", edgetest.AdminKey,
		map[string]any{"enabled": true, "threshold_usd": 30, "amount_usd": 50}), 200)
	waitFor(t, "the decline", func() bool {
		return len(intents(t, e.g, pid)) == 1 && intents(t, e.g, pid)[0].Status == actors.IntentFailed
	})
	clk.Advance(actors.DefaultAutoTopupDeclineBackoff - time.Minute)
	spend(t, e.g, pid, 1e9)
	time.Sleep(200 * time.Millisecond)
	if n := e.px.Charges(); n != 1 {
		t.Fatalf("%d charges within the backoff, want 1", n)
	}
	clk.Advance(2 * time.Minute)
	spend(t, e.g, pid, 1e9)
	waitFor(t, "the top-up after the backoff", func() bool { return walletBalance(t, e.g, pid) == "73" })
	if n := e.px.Charges(); n != 2 {
		t.Errorf("%d charges, want 2", n)
	}
}

// TestAutoTopupUnknownOutcomeAskedAgain: a 500 before Stripe executes and a
// charge whose response is lost leave the outcome unknown; the actor asks
// again with the same key and credits exactly once per executed charge.
func TestAutoTopupUnknownOutcomeAskedAgain(t *testing.T) {
	e := startStripeGateway(t, edgetest.Options{Env: func(env *actors.Env) { env.AutoTopupRetryDelay = 20 * time.Millisecond }})
	pid, _ := e.paidPlatform(t)
	e.px.Queue(stripetest.ServerError, stripetest.ExecuteAndDrop)
	wantStatus(t, "auto-topup", e.g.Do(t, "PUT", "/admin/v1/platforms/"+pid+"/wallet/auto-topup", edgetest.AdminKey,
		map[string]any{"enabled": true, "threshold_usd": 30, "amount_usd": 50}), 200)
	waitFor(t, "the credit", func() bool { return walletBalance(t, e.g, pid) == "75" })
	time.Sleep(100 * time.Millisecond)
	if n := e.px.Charges(); n != 1 {
		t.Errorf("%d charges executed, want 1", n)
	}
	pis := chargeRequests(e.px)
	if len(pis) < 2 {
		t.Fatalf("%d payment intent requests, want the first and at least one more", len(pis))
	}
	for _, r := range pis {
		if r.IdempotencyKey != pis[0].IdempotencyKey {
			t.Errorf("asked again under key %q, first was %q", r.IdempotencyKey, pis[0].IdempotencyKey)
		}
	}
	if n := len(walletEntries(t, e.g, pid, actors.EntryAutoTopup)); n != 1 {
		t.Errorf("%d auto_topup entries, want 1", n)
	}
}

// chargeRequests are the PaymentIntent creations the proxy received.
func chargeRequests(px *stripetest.Proxy) []stripetest.Request {
	var out []stripetest.Request
	for _, r := range px.Requests("/v1/payment_intents") {
		if r.Method == "POST" && r.Path == "/v1/payment_intents" {
			out = append(out, r)
		}
	}
	return out
}
