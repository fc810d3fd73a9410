package mcp_test

import (
	"testing"
)

// A suspended budget or an empty wallet refuses MCP tool calls with 402
// (the HTTP status on a bare POST, the error code in the body), before any
// app API is reached; tools/list still works, and the calls resume when
// the budget is unsuspended and the wallet topped up.
func TestToolCallsRefused402WhenBudgetSuspendedOrWalletEmpty(t *testing.T) {
	e := setup(t)
	uid, u1 := e.g.CreateEndUser(t, e.pid, e.pkey, "u1")
	e.activate(e.pid, "github", true)
	e.connect(u1, "github")
	budget := "/v1/platforms/" + e.pid + "/end-users/" + uid + "/budget"
	if r := e.g.Do(t, "POST", budget, e.pkey, map[string]any{"amount_usd": 5}); r.Status != 201 {
		t.Fatalf("budget: %d %s", r.Status, r.Body)
	}
	call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_repositories","arguments":{}}}`
	list := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	before := len(e.apps["github"].calls())

	if r := e.g.Do(t, "PATCH", budget, e.pkey, map[string]any{"is_suspended": true}); r.Status != 200 {
		t.Fatalf("suspend: %d %s", r.Status, r.Body)
	}
	if r, _ := bareRPC(t, e.g, "/mcp", u1, call); r.Status != 402 || r.ErrorCode() != "budget_suspended" {
		t.Fatalf("tools/call with a suspended budget: %d %s, want 402 budget_suspended", r.Status, r.Body)
	}
	if r, res := bareRPC(t, e.g, "/mcp", u1, list); r.Status != 200 || len(res.Result.Tools) == 0 {
		t.Fatalf("tools/list with a suspended budget: %d %s, want the tools", r.Status, r.Body)
	}
	// A session client meets the same refusal.
	c := mcpClient(t, e.g.URL+"/mcp", u1)
	if _, err := callTool(t, c, "list_repositories", nil); err == nil {
		t.Fatal("session tools/call with a suspended budget succeeded")
	}
	if r := e.g.Do(t, "PATCH", budget, e.pkey, map[string]any{"is_suspended": false}); r.Status != 200 {
		t.Fatalf("unsuspend: %d %s", r.Status, r.Body)
	}
	if r, res := bareRPC(t, e.g, "/mcp", u1, call); r.Status != 200 || res.Result.IsError {
		t.Fatalf("tools/call after unsuspending: %d %s", r.Status, r.Body)
	}

	// Empty the wallet: an operator debit is not exposed, so use a fresh
	// platform that was never funded.
	pid2, pkey2 := e.g.CreatePlatform(t, "unfunded")
	_, v1 := e.g.CreateEndUser(t, pid2, pkey2, "v1")
	e.activate(pid2, "github", true)
	e.connect(v1, "github")
	if r, _ := bareRPC(t, e.g, "/mcp", v1, call); r.Status != 402 || r.ErrorCode() != "wallet_insufficient" {
		t.Fatalf("tools/call with an empty wallet: %d %s, want 402 wallet_insufficient", r.Status, r.Body)
	}
	if got := len(e.apps["github"].calls()) - before; got != 1 {
		t.Fatalf("the app API saw %d calls, want 1 (only the admitted one)", got)
	}
	fundWallet(t, e.g, pid2)
	if r, res := bareRPC(t, e.g, "/mcp", v1, call); r.Status != 200 || res.Result.IsError {
		t.Fatalf("tools/call after the top-up: %d %s", r.Status, r.Body)
	}
}
