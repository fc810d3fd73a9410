package edge_test

import (
	"testing"

	"github.com/assistiv/gateway/edge/edgetest"
)

// A platform key reads its own wallet ledger at
// /v1/platforms/{id}/wallet/transactions, the same entries the operator
// sees; an end-user key is refused and another platform's key gets 404.
func TestPlatformKeyReadsWalletTransactions(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	pid, pkey := g.CreatePlatform(t, "acme")
	_, otherKey := g.CreatePlatform(t, "other")
	_, euKey := g.CreateEndUser(t, pid, pkey, "u-1")
	admin := "/admin/v1/platforms/" + pid + "/wallet"
	for i, amount := range []string{"1.5", "0.000000001", "3"} {
		wantStatus(t, "operator topup", g.Do(t, "POST", admin+"/topup", edgetest.AdminKey,
			map[string]any{"amount_usd": jsonNumber(amount)}, "Idempotency-Key", "wire-"+string(rune('a'+i))), 200)
	}
	own := "/v1/platforms/" + pid + "/wallet/transactions"
	got := g.Do(t, "GET", own+"?limit=2", pkey, nil)
	want := g.Do(t, "GET", admin+"/transactions?limit=2", edgetest.AdminKey, nil)
	if got.Status != 200 || string(got.Body) != string(want.Body) {
		t.Fatalf("platform GET = %d %s\noperator GET = %d %s", got.Status, got.Body, want.Status, want.Body)
	}
	page := object(t, got.Body)
	if data, _ := page["data"].([]any); len(data) != 2 || str(page, "next_cursor") == "" {
		t.Fatalf("first page of 3 entries with limit 2 has no cursor: %s", got.Body)
	}
	rest := wantStatus(t, "second page", g.Do(t, "GET", own+"?limit=2&cursor="+str(page, "next_cursor"), pkey, nil), 200)
	if data, _ := rest["data"].([]any); len(data) != 1 || rest["has_more"] != false {
		t.Fatalf("second page = %v, want the last entry and has_more false", rest)
	}
	wantError(t, "end-user key", g.Do(t, "GET", own, euKey, nil), 403, "wrong_key_type")
	wantError(t, "other platform's key", g.Do(t, "GET", own, otherKey, nil), 404, "not_found")
}
