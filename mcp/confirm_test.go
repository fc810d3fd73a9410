package mcp_test

import (
	"testing"
	"time"
)

// The connect URL is not a bearer link: an attacker who gets a victim to
// open the authorization URL the attacker's key started cannot link the
// victim's account. The callback only holds the grant; the platform's
// back end confirms with the signed-in user's key, which is the victim's:
// 403 connection_user_mismatch, the grant is destroyed, nobody is
// connected. Confirmations are single use and expire.
func TestConnectFlowIsBoundToTheEndUserWhoStartedIt(t *testing.T) {
	e := setup(t)
	_, attacker := e.g.CreateEndUser(t, e.pid, e.pkey, "attacker")
	_, victim := e.g.CreateEndUser(t, e.pid, e.pkey, "victim")
	pidB, pkeyB := e.g.CreatePlatform(t, "other")
	_, outsider := e.g.CreateEndUser(t, pidB, pkeyB, "outsider")
	e.activate(e.pid, "github", true)
	e.activate(pidB, "github", true)

	// The victim's browser runs the attacker's flow to its end.
	token := e.confirmation(e.authorize(attacker, "github"))
	if e.connected(attacker, "github") || e.connected(victim, "github") {
		t.Fatal("the callback alone connected someone")
	}
	if r := e.confirm(victim, "github", token); r.Status != 403 || r.ErrorCode() != "connection_user_mismatch" {
		t.Fatalf("victim's platform confirming the attacker's flow: %d %s, want 403 connection_user_mismatch", r.Status, r.Body)
	}
	if r := e.confirm(attacker, "github", token); r.Status != 400 || r.ErrorCode() != "invalid_state" {
		t.Fatalf("attacker confirming after the mismatch: %d %s, want 400 invalid_state (grant destroyed)", r.Status, r.Body)
	}
	if e.connected(attacker, "github") || e.connected(victim, "github") {
		t.Fatal("someone is connected after the refused confirmation")
	}

	// Another platform's end-user, or another app, is a mismatch too.
	token = e.confirmation(e.authorize(victim, "github"))
	if r := e.confirm(outsider, "github", token); r.Status != 403 {
		t.Fatalf("another platform's user confirming: %d %s, want 403", r.Status, r.Body)
	}
	e.activate(e.pid, "slack", true)
	token = e.confirmation(e.authorize(victim, "github"))
	if r := e.confirm(victim, "slack", token); r.Status != 403 {
		t.Fatalf("confirming a github flow as slack: %d %s, want 403", r.Status, r.Body)
	}

	// The starting user confirms once; a replay is refused.
	token = e.confirmation(e.authorize(victim, "github"))
	if r := e.confirm(victim, "github", token); r.Status != 200 || !e.connected(victim, "github") {
		t.Fatalf("the starting user's confirmation: %d %s", r.Status, r.Body)
	}
	if r := e.confirm(victim, "github", token); r.Status != 400 || r.ErrorCode() != "invalid_state" {
		t.Fatalf("replayed confirmation: %d %s, want 400 invalid_state", r.Status, r.Body)
	}
	// An expired confirmation is refused; the state token is not a
	// confirmation and vice versa.
	e.activate(e.pid, "zendesk", true)
	token = e.confirmation(e.authorize(attacker, "zendesk"))
	e.clk.Advance(11 * time.Minute)
	if r := e.confirm(attacker, "zendesk", token); r.Status != 400 || r.ErrorCode() != "invalid_state" {
		t.Fatalf("expired confirmation: %d %s, want 400 invalid_state", r.Status, r.Body)
	}
	if r := e.confirm(attacker, "zendesk", ""); r.Status != 400 {
		t.Fatalf("empty confirmation: %d", r.Status)
	}
	if status, _ := e.callback(e.g.URL + "/oauth/callback?code=x&state=" + token); status != 400 {
		t.Fatalf("a confirmation used as a state answered %d, want 400", status)
	}
}
