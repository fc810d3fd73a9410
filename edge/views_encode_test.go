package edge

import (
	"encoding/json"
	"math/rand"
	"testing"

	"github.com/assistiv/gateway/internal/money"
)

// TestViewEncodersMatchMarshal: the hand-written encoders of a top-up's
// and a debit's answer write exactly what encoding/json.Marshal writes,
// over random values: empty and odd strings (HTML, controls, invalid
// UTF-8, U+2028), zero and negative amounts, nil pointers.
func TestViewEncodersMatchMarshal(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	strs := []string{"", "budget", "plain text", `<a href="x">&</a>`, "tab\there\nnew", "\x00\x1f", "caf\xe9", "\u2028\u2029", "é☃😀", `back\slash "quote"`}
	str := func() string { return strs[r.Intn(len(strs))] }
	amount := func() money.Nanos {
		switch r.Intn(4) {
		case 0:
			return 0
		case 1:
			return money.Nanos(-r.Int63n(1e15))
		default:
			return money.Nanos(r.Int63n(1e15))
		}
	}
	opt := func() *money.Nanos {
		if r.Intn(3) == 0 {
			return nil
		}
		n := amount()
		return &n
	}
	for i := 0; i < 2000; i++ {
		v := budgetMoveJSON{
			Budget: budgetJSON{Object: str(), EndUserID: str(), AmountUSD: amount(), Period: str(), BalanceUSD: amount(),
				ReservedUSD: opt(), AvailableUSD: opt(), IsSuspended: r.Intn(2) == 0, LowBalanceThresholdUSD: amount(),
				CreatedAt: str(), UpdatedAt: str()},
			Transaction: transactionJSON{ID: str(), Object: str(), Account: str(), Type: str(), AmountUSD: amount(),
				BalanceAfterUSD: amount(), IdempotencyKey: str(), Reason: str(), RequestID: str(), Model: str(),
				PromptTokens: r.Int63n(3) * r.Int63(), CompletionTokens: r.Int63n(3) * r.Int63(), UnchargedUSD: amount(),
				CheckoutSessionID: str(), PaymentIntentID: str(), Sequence: uint64(r.Int63n(3)) * r.Uint64(), CreatedAt: str()},
		}
		if r.Intn(2) == 0 {
			s := str()
			v.Budget.PeriodStart = &s
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.appendJSON(nil); string(got) != string(want) {
			t.Fatalf("appendJSON\n %s\nMarshal\n %s", got, want)
		}
	}
}
