package dashboard_test

// Card top-ups on the Billing page: the form posts to the dashboard, which
// calls the API's wallet checkout route in-process and sends the browser
// to Stripe Checkout. Stripe is stripe-mock behind payments/stripetest.

import (
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/payments"
	"github.com/assistiv/gateway/payments/stripetest"
	"github.com/assistiv/gateway/persistence"
)

const checkoutPath = "/v1/checkout/sessions"

// startStripe starts the gateway with Stripe (stripe-mock behind the
// recording proxy) and the dashboard.
func startStripe(t *testing.T) (*env, *stripetest.Proxy) {
	t.Helper()
	px := stripetest.Start(t)
	sc, err := payments.New(payments.Config{SecretKey: "sk_test_dashboard", WebhookSecret: "whsec_dashboard_0123456789",
		APIBase: px.URL, MaxNetworkRetries: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return startWith(t, nil, edgetest.Options{Webhooks: true, Stripe: sc}), px
}

// postNoFollow submits a form with the page's CSRF token and does not
// follow the answer's redirect (it leaves the dashboard).
func (b *browser) postNoFollow(path string, form url.Values) {
	b.t.Helper()
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	b.do(req)
}

// storedSessions are the platform's recorded Checkout Sessions.
func storedSessions(t *testing.T, st *persistence.Store, pid string) []*pb.CheckoutSession {
	t.Helper()
	var out []*pb.CheckoutSession
	err := st.ScanPrefix(persistence.CheckoutSessionKey(pid, ""), false, func(_, v []byte) bool {
		var s pb.CheckoutSession
		if err := proto.Unmarshal(v, &s); err != nil {
			t.Fatal(err)
		}
		out = append(out, &s)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var cardFieldErr = regexp.MustCompile(`id="c-amount" name="amount_usd"[^>]*aria-invalid="true">\s*<span class="field-error">amount_usd must be between 1 and 10000`)

func TestCardTopupRedirectsToStripeCheckout(t *testing.T) {
	e, px := startStripe(t)
	pid, o := e.platformWithOwner(t, "Cards", "cards@example.com")
	billing := "/dashboard/p/" + pid + "/billing"

	o.get(billing)
	o.want(200, "Top up with card", `<label for="c-amount">Amount (USD)</label>`, `name="csrf"`)
	if csp := o.header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://checkout.stripe.com;") {
		t.Fatalf("CSP does not let the form go on to Stripe Checkout: %s", csp)
	}
	idem := find(t, regexp.MustCompile(`(?s)action="[^"]*/billing/checkout">.*?name="idempotency_key" value="([^"]+)"`), o.last)

	// The API's refusal is shown next to the field; Stripe is not asked.
	o.postNoFollow(billing+"/checkout", url.Values{"amount_usd": {"0.5"}, "idempotency_key": {idem}})
	if o.status != 400 || !cardFieldErr.MatchString(o.last) {
		t.Fatalf("amount under the minimum: status %d, no field error:\n%s", o.status, clip(o.last))
	}
	// No CSRF token: refused before any call.
	o.postNoFollow(billing+"/checkout", url.Values{"amount_usd": {"25.50"}, "csrf": {"forged"}})
	if o.status != 403 {
		t.Fatalf("checkout without the CSRF token: status %d", o.status)
	}
	if n := len(px.Requests(checkoutPath)); n != 0 {
		t.Fatalf("%d checkout sessions asked of Stripe after refused forms, want 0", n)
	}

	// A valid amount: 303 to the session's Stripe URL, recorded pending.
	o.get(billing)
	form := url.Values{"amount_usd": {"25.50"}, "idempotency_key": {idem}}
	o.postNoFollow(billing+"/checkout", form)
	loc := o.header.Get("Location")
	if o.status != 303 || !strings.HasPrefix(loc, "https://") {
		t.Fatalf("checkout: status %d, Location %q; body:\n%s", o.status, loc, clip(o.last))
	}
	sessions := storedSessions(t, e.g.Store, pid)
	if len(sessions) != 1 || sessions[0].Status != "pending" || sessions[0].Url != loc || sessions[0].AmountNanos != 25_500_000_000 {
		t.Fatalf("recorded sessions = %v, want one pending of 25.50 USD at %s", sessions, loc)
	}
	reqs := px.Requests(checkoutPath)
	f := reqs[0].Form
	if f.Get("line_items[0][price_data][unit_amount]") != "2550" || f.Get("client_reference_id") != pid ||
		f.Get("success_url") != e.g.URL+billing+"?ok=card_paid" || f.Get("cancel_url") != e.g.URL+billing+"?ok=card_cancelled" {
		t.Fatalf("Stripe was asked %v", f)
	}
	// The same form again (a double click) is the same session.
	o.postNoFollow(billing+"/checkout", form)
	if o.status != 303 || o.header.Get("Location") != loc || len(storedSessions(t, e.g.Store, pid)) != 1 {
		t.Fatalf("resubmitted form: status %d, Location %q, want the same session", o.status, o.header.Get("Location"))
	}
	// Stripe sends the browser back to the billing page.
	o.get(billing + "?ok=card_paid")
	o.want(200, "credited as soon as Stripe confirms")

	// A viewer sees no form and cannot POST; the operator funds directly.
	page := o.post("/dashboard/p/"+pid+"/team/invite", url.Values{"email": {"view@example.com"}, "role": {"viewer"}})
	viewer := e.accept(t, pathOf(t, find(t, linkRe, page)), "Vic", pw)
	viewer.get(billing)
	viewer.want(200, "An owner or admin of your team can top up the wallet by card")
	if strings.Contains(viewer.last, "Top up with card") || strings.Contains(viewer.last, "/billing/checkout") {
		t.Fatal("viewer is offered the card top-up form")
	}
	viewer.postNoFollow(billing+"/checkout", url.Values{"amount_usd": {"10"}, "idempotency_key": {"viewer-1"}})
	viewer.want(403, "Viewers cannot change anything")
	op := e.browser(t)
	op.signInOperator()
	op.get(billing)
	op.want(200, "Top up the wallet")
	if strings.Contains(op.last, "Top up with card") {
		t.Fatal("operator is offered the card form")
	}
	op.postNoFollow(billing+"/checkout", url.Values{"amount_usd": {"10"}, "idempotency_key": {"op-1"}})
	op.want(403)
	if n := len(storedSessions(t, e.g.Store, pid)); n != 1 {
		t.Fatalf("%d sessions after refused viewer/operator forms, want 1", n)
	}
}

func TestNoCardTopupWithoutStripe(t *testing.T) {
	e := start(t, nil)
	pid, o := e.platformWithOwner(t, "NoCards", "nocards@example.com")
	billing := "/dashboard/p/" + pid + "/billing"
	o.get(billing)
	o.want(200, "operator funds the wallet and sets auto top-up")
	if strings.Contains(o.last, "Top up with card") || strings.Contains(o.last, "/billing/checkout") {
		t.Fatal("card top-up offered without Stripe")
	}
	if csp := o.header.Get("Content-Security-Policy"); strings.Contains(csp, "stripe") {
		t.Fatalf("CSP names Stripe without Stripe configured: %s", csp)
	}
	// A hand-made POST gets the API's own answer.
	o.postNoFollow(billing+"/checkout", url.Values{"amount_usd": {"10"}, "idempotency_key": {"k-1"}})
	o.want(503, "Stripe is not configured on this gateway")
	if n := len(storedSessions(t, e.g.Store, pid)); n != 0 {
		t.Fatalf("%d sessions recorded without Stripe", n)
	}
}
