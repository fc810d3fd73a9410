package edge

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/assistiv/gateway/internal/money"
)

var amountSeeds = []string{
	`{"amount_usd": 5}`,
	`{"amount_usd":0.000001}`,
	` { "amount_usd" : 12.5 , "reason" : "monthly grant" } `,
	`{"reason":"refund","amount_usd":1e-3}`,
	`{"amount_usd": 5, "amount_usd": 6}`,
	`{"Amount_USD": 5}`,
	`{"amount_usd": "5"}`,
	`{"amount_usd": null}`,
	`{"amount_usd": 5, "reason": "caf\u00e9"}`,
	`{"amount_usd": 5, "reason": "café"}`,
	`{"amount_usd": 5} x`,
	`{"amount_usd": 05}`,
	`{"amount_usd": 5.}`,
	`{"amount_usd": 0.0000000001}`,
	`{"amount_usd": 1e400}`,
	`{}`,
	`{"amount_usd": 5, "extra": 1}`,
}

func TestScanAmountReadsTheUsualBodies(t *testing.T) {
	for _, c := range []struct {
		body   string
		amount money.Nanos
		reason string
	}{
		{`{"amount_usd": 5}`, 5 * money.PerUSD, ""},
		{`{"amount_usd":0.000001}`, money.PerUSD / 1_000_000, ""},
		{` { "amount_usd" : 12.5 , "reason" : "monthly grant" } `, 12*money.PerUSD + money.PerUSD/2, "monthly grant"},
	} {
		var in amountIn
		if !scanAmount([]byte(c.body), &in) {
			t.Fatalf("%s: refused", c.body)
		}
		if in.AmountUSD == nil || *in.AmountUSD != c.amount || in.Reason != c.reason {
			t.Fatalf("%s: read %v %q, want %v %q", c.body, in.AmountUSD, in.Reason, c.amount, c.reason)
		}
	}
	// What encoding/json reads its own way is left to it.
	for _, body := range []string{`{"amount_usd": 5, "amount_usd": 6}`, `{"Amount_USD": 5}`, `{"amount_usd": null}`,
		`{"amount_usd": 5, "reason": "caf\u00e9"}`, `{"amount_usd": 5} x`, `{"amount_usd": 05}`, `{}`} {
		var in amountIn
		if scanAmount([]byte(body), &in) {
			t.Fatalf("%s: read by the fast path", body)
		}
	}
}

// FuzzScanAmountAgreesWithDecodeStrict: a body the fast path reads is one
// decodeStrict reads without error to the same amount and reason.
func FuzzScanAmountAgreesWithDecodeStrict(f *testing.F) {
	for _, s := range amountSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast amountIn
		if !scanAmount(body, &fast) {
			return
		}
		var strict amountIn
		if err := decodeStrict(body, &strict); err != nil {
			t.Fatalf("fast path read %s, decodeStrict refused it: %v", body, err)
		}
		if strict.AmountUSD == nil || fast.AmountUSD == nil || *strict.AmountUSD != *fast.AmountUSD || strict.Reason != fast.Reason {
			t.Fatalf("%s: fast %v %q, strict %v %q", body, fast.AmountUSD, fast.Reason, strict.AmountUSD, strict.Reason)
		}
	})
}

// TestAmountHashKeepsItsDigest: the request digest an idempotency record
// holds is sha256("%d\x00%s", amount, reason), as records written by
// earlier versions hold it (a replay after an upgrade must match); without
// a key there is nothing to compare, and none is made.
func TestAmountHashKeepsItsDigest(t *testing.T) {
	for _, c := range []struct {
		amount money.Nanos
		reason string
	}{{1, ""}, {5 * money.PerUSD, "monthly grant"}, {-3, "caf\xe9 \x00 x"}} {
		want := sha256.Sum256([]byte(fmt.Sprintf("%d\x00%s", int64(c.amount), c.reason)))
		if got := amountHash("k", c.amount, c.reason); string(got) != string(want[:]) {
			t.Fatalf("amountHash(%d, %q) = %x, want %x", c.amount, c.reason, got, want)
		}
	}
	if amountHash("", 1, "x") != nil {
		t.Fatal("a digest made without an idempotency key")
	}
}
