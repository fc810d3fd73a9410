package mcp_test

import (
	"testing"
	"time"
)

// Pending authorizations are bounded: one flow in progress and one grant
// awaiting confirmation per end-user and app (a newer one replaces the
// older, whose state then fails), other tenants' flows are untouched, and
// the sweeper deletes expired records whether or not they were used.
func TestPendingAuthorizationsAreBoundedAndSwept(t *testing.T) {
	e := setup(t)
	_, u1 := e.g.CreateEndUser(t, e.pid, e.pkey, "u1")
	pidB, pkeyB := e.g.CreatePlatform(t, "other")
	_, v1 := e.g.CreateEndUser(t, pidB, pkeyB, "v1")
	e.activate(e.pid, "github", true)
	e.activate(pidB, "github", true)
	count := func() int {
		t.Helper()
		n, err := e.g.MCP.CountPending()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	base := count()

	other := e.authorize(v1, "github") // another tenant's flow in progress
	first := e.authorize(u1, "github")
	for i := 0; i < 50; i++ {
		e.authorize(u1, "github")
	}
	last := e.authorize(u1, "github")
	// u1: one state and its pointer; v1: the same.
	if got := count() - base; got != 4 {
		t.Fatalf("after 52 connects by one user (and 1 by another) the store holds %d pending records, want 4", got)
	}
	if status, _ := e.callback(first); status != 400 {
		t.Fatalf("a replaced flow's callback answered %d, want 400", status)
	}
	// Grants awaiting confirmation: one per user and app, too.
	tok1 := e.confirmation(last)
	for i := 0; i < 5; i++ {
		e.confirmation(e.authorize(u1, "github"))
	}
	if r := e.confirm(u1, "github", tok1); r.Status != 400 {
		t.Fatalf("a replaced grant's confirmation answered %d, want 400", r.Status)
	}
	if got := count() - base; got > 6 {
		t.Fatalf("pending records after repeated unconfirmed grants = %d, want at most 6", got)
	}
	if r := e.confirm(v1, "github", e.confirmation(other)); r.Status != 200 {
		t.Fatalf("the other tenant's flow was disturbed: %d %s", r.Status, r.Body)
	}

	// Nothing expired yet: the sweeper keeps them; past the TTL it deletes
	// all of them, used or not.
	if n, err := e.g.MCP.SweepPending(e.clk.Now()); err != nil || n != 0 {
		t.Fatalf("SweepPending before expiry = %d, %v; want 0", n, err)
	}
	e.clk.Advance(11 * time.Minute)
	if n, err := e.g.MCP.SweepPending(e.clk.Now()); err != nil || n == 0 {
		t.Fatalf("SweepPending after expiry = %d, %v", n, err)
	}
	if got := count(); got != base {
		t.Fatalf("after the sweep %d pending records remain, want %d", got, base)
	}
}
