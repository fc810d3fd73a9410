package edge_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/payments/stripetest"
)

// TestAutoTopupSurvivesKill9 runs the gateway binary against stripe-mock
// (behind the proxy) and kills it with SIGKILL at the two dangerous
// moments of an auto top-up: after the intent is recorded but before the
// charge reaches Stripe, and after Stripe charged but before the answer
// reached the gateway. Each restart resumes the pending intent under the
// same Idempotency-Key and ends with exactly one charge and one credit.
func TestAutoTopupSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	for _, c := range []struct {
		name          string
		action        stripetest.Action
		chargedBefore int
	}{
		{"between intent and charge", stripetest.Hold, 0},
		{"between charge and credit", stripetest.ExecuteAndHold, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			px := stripetest.Start(t)
			dir := t.TempDir()
			env := []string{"ASSISTIV_STRIPE_SECRET_KEY=sk_test_123", "ASSISTIV_STRIPE_WEBHOOK_SECRET=" + testWhsec,
				"ASSISTIV_STRIPE_API_BASE=" + px.URL}
			p := edgetest.StartProcess(t, dir, env...)
			pid, pkey := edgetest.CreatePlatform(t, p.Client(), p.URL, "crash")
			r := p.Do(t, "POST", "/v1/platforms/"+pid+"/wallet/checkout", pkey, map[string]any{"amount_usd": 25})
			session := str(wantStatus(t, "checkout", r, 200), "id")
			b, _ := json.Marshal(sessionEvent(actors.StripeCheckoutCompleted, session, pid, "paid", 2500))
			sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: b, Secret: testWhsec})
			wantStatus(t, "webhook", p.Do(t, "POST", "/stripe/webhook", "", sp.Payload, "Stripe-Signature", sp.Header), 200)

			px.Queue(c.action)
			wantStatus(t, "auto-topup", p.Do(t, "PUT", "/admin/v1/platforms/"+pid+"/wallet/auto-topup", edgetest.AdminKey,
				map[string]any{"enabled": true, "threshold_usd": 30, "amount_usd": 50}), 200)
			var key string
			select {
			case key = <-px.Held():
			case <-time.After(15 * time.Second):
				t.Fatalf("the charge never reached Stripe; logs:\n%s", p.Logs())
			}
			p.Kill()
			if n := px.Charges(); n != c.chargedBefore {
				t.Fatalf("%d charges at the crash, want %d", n, c.chargedBefore)
			}

			p2 := edgetest.StartProcess(t, dir, env...)
			balance := func() string {
				m := wantStatus(t, "wallet", p2.Do(t, "GET", "/admin/v1/platforms/"+pid+"/wallet", edgetest.AdminKey, nil), 200)
				return fmt.Sprint(m["balance_usd"])
			}
			deadline := time.Now().Add(20 * time.Second)
			for balance() != "75" {
				if time.Now().After(deadline) {
					t.Fatalf("balance %s, want 75 after recovery; logs:\n%s", balance(), p2.Logs())
				}
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(200 * time.Millisecond)
			if n := px.Charges(); n != 1 {
				t.Errorf("%d charges executed, want exactly 1", n)
			}
			reqs := chargeRequests(px)
			if len(reqs) < 2 {
				t.Errorf("%d charge requests, want the interrupted one and the resumed one", len(reqs))
			}
			for _, r := range reqs {
				if r.IdempotencyKey != key {
					t.Errorf("charge request under key %q, want the intent's %q", r.IdempotencyKey, key)
				}
			}
			m := wantStatus(t, "transactions", p2.Do(t, "GET", "/admin/v1/platforms/"+pid+"/wallet/transactions?limit=100", edgetest.AdminKey, nil), 200)
			auto := 0
			for _, e := range m["data"].([]any) {
				if e := e.(map[string]any); e["type"] == actors.EntryAutoTopup {
					auto++
					if e["idempotency_key"] != key {
						t.Errorf("auto_topup entry under %v, want %s", e["idempotency_key"], key)
					}
				}
			}
			if auto != 1 {
				t.Errorf("%d auto_topup entries, want 1", auto)
			}
			if !strings.Contains(p2.Logs(), "resuming auto top-up") {
				t.Errorf("the restart did not log the resumed intent; logs:\n%s", p2.Logs())
			}
			p2.Stop(t)
		})
	}
}
