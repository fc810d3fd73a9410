package edge_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/assistiv/gateway/edge/edgetest"
)

// acked is what a gateway acknowledged: every answer recorded here was a
// 2xx, so it must survive any crash after it.
type acked struct {
	platforms map[string]ackedPlatform // by id
	revoked   []string                 // raw keys revoked
	deleted   []endUser                // end-users deleted
}

type ackedPlatform struct {
	name, displayName string
	key               string   // default raw key
	keyIDs            []string // live platform key ids, sorted
	extraKeys         []string // raw keys created by POST api-keys, live
	wallet            string   // balance_usd
	users             map[string]*ackedUser
}

type ackedUser struct {
	external string
	keys     []string // raw keys, all live
	balance  string   // "" without a budget
	txns     []string // transaction ids, any order
	rpm      string   // rate-limit override; "" for none
	topupKey string   // an Idempotency-Key used on a top-up
	topupTx  string   // the transaction it made
}

// build makes a varied state through p and returns what was acknowledged.
// Writes run concurrently per platform so the group commit batches them.
func build(t *testing.T, p *edgetest.Process, platforms int) *acked {
	t.Helper()
	w := &acked{platforms: map[string]ackedPlatform{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range platforms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pid, key := edgetest.CreatePlatform(t, p.Client(), p.URL, fmt.Sprintf("plat-%d", i))
			ap := ackedPlatform{name: fmt.Sprintf("plat-%d", i), key: key, users: map[string]*ackedUser{}}
			path := func(rest string) string { return "/v1/platforms/" + pid + rest }
			ap.displayName = fmt.Sprintf("Platform %d", i)
			wantStatus(t, "PATCH platform", p.Do(t, "PATCH", path(""), key, map[string]any{"display_name": ap.displayName}), 200)
			ap.keyIDs = append(ap.keyIDs, str(wantStatus(t, "GET /v1/me", p.Do(t, "GET", "/v1/me", key, nil), 200), "key_id"))
			for k := range 3 {
				r := wantStatus(t, "POST api-keys", p.Do(t, "POST", path("/api-keys"), key, map[string]any{"name": fmt.Sprint("k", k)}), 201)
				if k == 0 {
					wantStatus(t, "revoke", p.Do(t, "DELETE", path("/api-keys/"+str(r, "id")), key, nil), 200)
					mu.Lock()
					w.revoked = append(w.revoked, str(r, "raw_key"))
					mu.Unlock()
					continue
				}
				ap.keyIDs = append(ap.keyIDs, str(r, "id"))
				ap.extraKeys = append(ap.extraKeys, str(r, "raw_key"))
			}
			slices.Sort(ap.keyIDs)
			top := wantStatus(t, "wallet topup", p.Do(t, "POST", "/admin/v1/platforms/"+pid+"/wallet/topup", edgetest.AdminKey,
				map[string]any{"amount_usd": 12.345678901}, "Idempotency-Key", "w-"+pid), 200)
			ap.wallet = num(top, "wallet", "balance_usd")

			for j := range 3 {
				ext := fmt.Sprintf("user-%d-%d", i, j)
				id, k1 := edgetest.CreateEndUser(t, p.Client(), p.URL, pid, key, ext)
				_, k2 := edgetest.CreateEndUser(t, p.Client(), p.URL, pid, key, ext)
				u := &ackedUser{external: ext, keys: []string{k1, k2}}
				up := func(rest string) string { return path("/end-users/" + id + rest) }
				if j == 2 {
					wantStatus(t, "DELETE end-user", p.Do(t, "DELETE", up(""), key, nil), 200)
					mu.Lock()
					w.deleted = append(w.deleted, endUser{id, k1}, endUser{id, k2})
					mu.Unlock()
					continue
				}
				b := wantStatus(t, "POST budget", p.Do(t, "POST", up("/budget"), key, map[string]any{"amount_usd": 10}), 201)
				u.balance = num(b, "balance_usd")
				for n, amt := range []string{"0.25", "1.000000001", "3"} {
					ik := fmt.Sprintf("t-%s-%d", id, n)
					r := wantStatus(t, "topup", p.Do(t, "POST", up("/budget/topup"), key, map[string]any{"amount_usd": jsonNumber(amt)}, "Idempotency-Key", ik), 200)
					u.balance = num(r, "budget", "balance_usd")
					u.txns = append(u.txns, str(r, "transaction", "id"))
					u.topupKey, u.topupTx = ik, str(r, "transaction", "id")
				}
				r := wantStatus(t, "debit", p.Do(t, "POST", up("/budget/debit"), key, map[string]any{"amount_usd": 0.5}), 200)
				u.balance = num(r, "budget", "balance_usd")
				u.txns = append(u.txns, str(r, "transaction", "id"))
				if j == 1 {
					wantStatus(t, "PUT rate-limits", p.Do(t, "PUT", up("/rate-limits"), key, map[string]any{"requests_per_minute": 42}), 200)
					u.rpm = "42"
				}
				ap.users[id] = u
			}
			mu.Lock()
			w.platforms[pid] = ap
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return w
}

// jsonNumber sends a decimal as a JSON number, digit for digit.
type jsonNumber string

func (n jsonNumber) MarshalJSON() ([]byte, error) { return []byte(n), nil }

// verify checks that p serves everything w acknowledged.
func (w *acked) verify(t *testing.T, p *edgetest.Process) {
	t.Helper()
	all := list(t, p.Do(t, "GET", "/admin/v1/platforms?limit=200", edgetest.AdminKey, nil))
	if len(all) != len(w.platforms) {
		t.Errorf("%d platforms after restart, acknowledged %d", len(all), len(w.platforms))
	}
	for pid, ap := range w.platforms {
		path := func(rest string) string { return "/v1/platforms/" + pid + rest }
		pl := wantStatus(t, "GET platform", p.Do(t, "GET", path(""), ap.key, nil), 200)
		if str(pl, "name") != ap.name || str(pl, "settings", "display_name") != ap.displayName {
			t.Errorf("platform %s = %v, want name %q display_name %q", pid, pl, ap.name, ap.displayName)
		}
		wl := wantStatus(t, "GET wallet", p.Do(t, "GET", path("/wallet"), ap.key, nil), 200)
		if num(wl, "balance_usd") != ap.wallet {
			t.Errorf("platform %s wallet = %s, want %s", pid, num(wl, "balance_usd"), ap.wallet)
		}
		var keyIDs []string
		for _, k := range list(t, p.Do(t, "GET", path("/api-keys"), ap.key, nil)) {
			keyIDs = append(keyIDs, str(k, "id"))
		}
		slices.Sort(keyIDs)
		if !slices.Equal(keyIDs, ap.keyIDs) {
			t.Errorf("platform %s keys = %v, want %v", pid, keyIDs, ap.keyIDs)
		}
		for _, k := range ap.extraKeys {
			me := wantStatus(t, "extra key", p.Do(t, "GET", "/v1/me", k, nil), 200)
			if str(me, "platform_id") != pid {
				t.Errorf("extra key authenticates platform %q, want %q", str(me, "platform_id"), pid)
			}
		}
		users := list(t, p.Do(t, "GET", path("/end-users?limit=100"), ap.key, nil))
		if len(users) != len(ap.users) {
			t.Errorf("platform %s has %d end-users, acknowledged %d", pid, len(users), len(ap.users))
		}
		for id, u := range ap.users {
			up := func(rest string) string { return path("/end-users/" + id + rest) }
			for _, k := range u.keys {
				me := wantStatus(t, "end-user key", p.Do(t, "GET", "/v1/me", k, nil), 200)
				if str(me, "end_user_id") != id {
					t.Errorf("end-user key authenticates %q, want %q", str(me, "end_user_id"), id)
				}
			}
			b := wantStatus(t, "GET budget", p.Do(t, "GET", up("/budget"), ap.key, nil), 200)
			if num(b, "balance_usd") != u.balance {
				t.Errorf("end-user %s balance = %s, want %s", id, num(b, "balance_usd"), u.balance)
			}
			var txns []string
			for _, e := range list(t, p.Do(t, "GET", up("/budget/transactions"), ap.key, nil)) {
				txns = append(txns, str(e, "id"))
			}
			for _, tx := range u.txns {
				if !slices.Contains(txns, tx) {
					t.Errorf("end-user %s lost transaction %s (has %v)", id, tx, txns)
				}
			}
			if len(txns) != len(u.txns)+1 { // + budget_set
				t.Errorf("end-user %s has %d transactions, want %d", id, len(txns), len(u.txns)+1)
			}
			rl := wantStatus(t, "GET rate-limits", p.Do(t, "GET", up("/rate-limits"), ap.key, nil), 200)
			got := ""
			if rl["override"] != nil {
				got = num(rl, "override", "requests_per_minute")
			}
			if got != u.rpm {
				t.Errorf("end-user %s override rpm = %q, want %q", id, got, u.rpm)
			}
		}
	}
	for _, k := range w.revoked {
		wantError(t, "revoked key", p.Do(t, "GET", "/v1/me", k, nil), 401, "invalid_api_key")
	}
	for _, u := range w.deleted {
		wantError(t, "deleted end-user's key", p.Do(t, "GET", "/v1/me", u.key, nil), 401, "invalid_api_key")
	}
}

// replayTopups checks that idempotency records survived: replaying a
// top-up answers the original transaction and moves no money.
func (w *acked) replayTopups(t *testing.T, p *edgetest.Process) {
	t.Helper()
	for pid, ap := range w.platforms {
		for id, u := range ap.users {
			r := p.Do(t, "POST", "/v1/platforms/"+pid+"/end-users/"+id+"/budget/topup", ap.key, map[string]any{"amount_usd": jsonNumber("3")}, "Idempotency-Key", u.topupKey)
			m := wantStatus(t, "replayed topup", r, 200)
			if r.Header.Get("Idempotent-Replayed") != "true" || str(m, "transaction", "id") != u.topupTx {
				t.Errorf("replay of %s = %s, want transaction %s replayed", u.topupKey, r.Body, u.topupTx)
			}
			b := wantStatus(t, "GET budget", p.Do(t, "GET", "/v1/platforms/"+pid+"/end-users/"+id+"/budget", ap.key, nil), 200)
			if num(b, "balance_usd") != u.balance {
				t.Errorf("balance after replay = %s, want %s", num(b, "balance_usd"), u.balance)
			}
		}
	}
}

// Everything acknowledged before a SIGKILL is there after a restart on the
// same data dir: platforms, settings, wallets, working keys, revoked keys
// still refused, end-users, deleted end-users still gone, budgets,
// transactions, rate limits and idempotency records. The kill comes right
// after the last acknowledged response.
func TestAcknowledgedWritesSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	dir := t.TempDir()
	p := edgetest.StartProcess(t, dir)
	w := build(t, p, 3)
	p.Kill()

	p = edgetest.StartProcess(t, dir)
	w.verify(t, p)
	w.replayTopups(t, p)
}

// A graceful stop (SIGTERM) loses nothing either, and the node that
// restarts keeps accepting writes on top of the old state.
func TestAcknowledgedWritesSurviveGracefulRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	dir := t.TempDir()
	p := edgetest.StartProcess(t, dir)
	w := build(t, p, 2)
	p.Stop(t)

	p = edgetest.StartProcess(t, dir)
	w.verify(t, p)
	more := build(t, p, 1)
	for id, ap := range more.platforms {
		w.platforms[id] = ap
	}
	w.revoked = append(w.revoked, more.revoked...)
	w.deleted = append(w.deleted, more.deleted...)
	p.Stop(t)

	p = edgetest.StartProcess(t, dir)
	w.verify(t, p)
}
