package main

import (
	"strings"
	"testing"
)

// TestParseStripeNeedsBothSecrets: Stripe is on with both secrets, off
// with neither, and a half configuration refuses to start.
func TestParseStripeNeedsBothSecrets(t *testing.T) {
	for _, c := range []struct {
		key, whsec string
		ok         bool
	}{{"", "", true}, {"sk_test_1", "whsec_1", true}, {"sk_test_1", "", false}, {"", "whsec_1", false}} {
		t.Setenv("ASSISTIV_STRIPE_SECRET_KEY", c.key)
		t.Setenv("ASSISTIV_STRIPE_WEBHOOK_SECRET", c.whsec)
		t.Setenv("ASSISTIV_STRIPE_API_BASE", "http://127.0.0.1:12111")
		o, err := parse(nil)
		if (err == nil) != c.ok {
			t.Errorf("key %q whsec %q: err = %v, want ok=%v", c.key, c.whsec, err, c.ok)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), "ASSISTIV_STRIPE_WEBHOOK_SECRET") {
			t.Errorf("error %q does not name the variables", err)
		}
		if err == nil && (o.stripeSecretKey != c.key || o.stripeWebhookSecret != c.whsec || o.stripeAPIBase != "http://127.0.0.1:12111") {
			t.Errorf("options = %+v", o)
		}
	}
}
