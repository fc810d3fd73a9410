package edge_test

// Money-path tests over HTTP (and, for inference admission, through the
// node's directory): reliability.md §8 L-1, L-2, L-4..L-7, L-9.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"google.golang.org/protobuf/proto"
)

// longTests reports whether GATEWAY_LONG_TESTS asks for the full-size
// load tests (64 × 1,000 debits instead of 64 × 200).
func longTests() bool { return os.Getenv("GATEWAY_LONG_TESTS") != "" }

func usd(tb testing.TB, s string) money.Nanos {
	tb.Helper()
	n, err := money.ParseUSD(s)
	if err != nil {
		tb.Fatalf("amount %q: %v", s, err)
	}
	return n
}

// ledger pages through an account's transactions (newest first, by
// cursor) and returns them oldest first.
func ledger(tb testing.TB, g *edgetest.Gateway, path, key string) []map[string]any {
	tb.Helper()
	var all []map[string]any
	cursor := ""
	for pages := 0; ; pages++ {
		q := path + "?limit=1000"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		r := g.Do(tb, "GET", q, key, nil)
		m := wantStatus(tb, "GET "+path, r, 200)
		all = append(all, list(tb, r)...)
		if m["has_more"] != true {
			break
		}
		cursor = str(m, "next_cursor")
		if cursor == "" || pages > 10_000 {
			tb.Fatalf("has_more without a usable next_cursor: %s", r.Body)
		}
	}
	sort.Slice(all, func(i, j int) bool { return seqOf(all[i]) < seqOf(all[j]) })
	return all
}

func seqOf(e map[string]any) int64 {
	n, _ := strconv.ParseInt(num(e, "sequence"), 10, 64)
	return n
}

// checkLedger is the Jepsen bank checker for one account: sequences are
// dense from 1, each balance_after is the running sum of amounts and never
// negative, ids are distinct, and the sum is the balance.
func checkLedger(tb testing.TB, entries []map[string]any, balance money.Nanos) {
	tb.Helper()
	var sum money.Nanos
	seen := map[string]bool{}
	for i, e := range entries {
		if seqOf(e) != int64(i+1) {
			tb.Fatalf("entry %d has sequence %d: the ledger has a gap or a duplicate", i, seqOf(e))
		}
		if id := str(e, "id"); seen[id] || id == "" {
			tb.Fatalf("entry %d: id %q repeated or empty", i, id)
		} else {
			seen[id] = true
		}
		sum += usd(tb, num(e, "amount_usd"))
		after := usd(tb, num(e, "balance_after_usd"))
		if after != sum {
			tb.Fatalf("entry #%d balance_after %s, running sum %s", i+1, after, sum)
		}
		if after < 0 {
			tb.Fatalf("entry #%d: balance went negative (%s)", i+1, after)
		}
	}
	if sum != balance {
		tb.Fatalf("ledger of %d entries sums to %s, balance is %s", len(entries), sum, balance)
	}
}

// budgetUser creates a platform and an end-user with a budget of amount
// (period one_time unless given) and returns them with its budget path.
func budgetUser(tb testing.TB, g *edgetest.Gateway, amount string, period ...string) (platform, endUser, string) {
	tb.Helper()
	p := newPlatform(tb, g, "Money")
	u := p.endUser(tb, g, "payer")
	up := p.path("/end-users/" + u.id + "/budget")
	body := map[string]any{"amount_usd": jsonNumber(amount)}
	if len(period) > 0 {
		body["period"] = period[0]
	}
	wantStatus(tb, "POST budget", g.Do(tb, "POST", up, p.key, body), 201)
	return p, u, up
}

func balanceOf(tb testing.TB, g *edgetest.Gateway, up, key string) (balance, reserved money.Nanos) {
	tb.Helper()
	b := wantStatus(tb, "GET budget", g.Do(tb, "GET", up, key, nil), 200)
	return usd(tb, num(b, "balance_usd")), usd(tb, num(b, "reserved_usd"))
}

// L-1: 64 goroutines debit one budget over HTTP at once. Every debit is
// applied exactly once: the final balance is exact, no answer ever shows
// a negative balance, and the ledger sums to the balance.
//
// 64 × 200 by default, 64 × 1,000 with GATEWAY_LONG_TESTS=1. A wall-clock
// budget (30 s; none in the long run) stops the workers early on a slow
// machine or under -race; the checks stay exact on the debits actually
// made.
func TestConcurrentDebitsKeepTheBalanceExact(t *testing.T) {
	workers, each := 64, 200
	budget := 30 * time.Second
	if longTests() {
		each, budget = 1000, time.Hour
	}
	if testing.Short() {
		each = 20
	}
	g := edgetest.Start(t, edgetest.Options{})
	p, _, up := budgetUser(t, g, "1")
	debit := usd(t, "0.000001")
	start := time.Now()
	deadline := start.Add(budget)
	var wg sync.WaitGroup
	var applied, failures atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each && time.Now().Before(deadline); i++ {
				r := g.Do(t, "POST", up+"/debit", p.key, map[string]any{"amount_usd": jsonNumber("0.000001")})
				if r.Status != 200 {
					if failures.Add(1) < 5 {
						t.Errorf("debit %d/%d = %d %s", w, i, r.Status, r.Body)
					}
					continue
				}
				applied.Add(1)
				var out struct {
					Budget struct {
						BalanceUSD money.Nanos `json:"balance_usd"`
					} `json:"budget"`
					Transaction struct {
						AmountUSD money.Nanos `json:"amount_usd"`
						Type      string      `json:"type"`
					} `json:"transaction"`
				}
				if err := json.Unmarshal(r.Body, &out); err != nil {
					t.Errorf("decode %s: %v", r.Body, err)
					continue
				}
				if out.Budget.BalanceUSD < 0 || out.Transaction.AmountUSD != -debit || out.Transaction.Type != "debit" {
					t.Errorf("debit answered %s", r.Body)
				}
				if i%50 == 0 { // reads interleaved with the writes
					if b, _ := balanceOf(t, g, up, p.key); b < 0 {
						t.Errorf("GET budget shows %s", b)
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	n := applied.Load()
	t.Logf("%d HTTP debits from %d goroutines in %v (%.0f/s)", n, workers, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	if n < int64(workers*each) {
		t.Logf("the %v budget stopped the load after %d of %d debits", budget, n, workers*each)
	}
	if failures.Load() > 0 {
		t.FailNow()
	}
	want := usd(t, "1") - money.Nanos(n)*debit
	balance, reserved := balanceOf(t, g, up, p.key)
	if balance != want || reserved != 0 {
		t.Fatalf("balance %s reserved %s after %d debits of %s; want %s and 0", balance, reserved, n, debit, want)
	}
	entries := ledger(t, g, up+"/transactions", p.key)
	if int64(len(entries)) != n+1 {
		t.Fatalf("ledger has %d entries, want %d debits + budget_set", len(entries), n)
	}
	checkLedger(t, entries, balance)
}

// L-1, exhausting: twice as many debits as the budget holds race for it.
// Exactly the affordable half succeed, the rest answer 402
// budget_exhausted, and the balance ends at exactly zero.
func TestConcurrentDebitsExhaustTheBudgetExactly(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	p, _, up := budgetUser(t, g, "16")
	var ok, exhausted atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				r := g.Do(t, "POST", up+"/debit", p.key, map[string]any{"amount_usd": 0.01})
				switch {
				case r.Status == 200:
					ok.Add(1)
				case r.Status == 402 && r.ErrorCode() == "budget_exhausted":
					exhausted.Add(1)
				default:
					t.Errorf("debit = %d %s", r.Status, r.Body)
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1600 || exhausted.Load() != 1600 {
		t.Fatalf("%d debits applied and %d refused; want 1600 and 1600", ok.Load(), exhausted.Load())
	}
	balance, _ := balanceOf(t, g, up, p.key)
	if balance != 0 {
		t.Fatalf("balance = %s, want 0", balance)
	}
	checkLedger(t, ledger(t, g, up+"/transactions", p.key), balance)
}

// askUser sends msg to the end-user's actor through the node's directory,
// as the inference path does.
func askUser(g *edgetest.Gateway, p platform, u endUser, msg proto.Message) (proto.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return g.Actors.Ask(ctx, actors.EndUserActor(ids.PlatformID(p.id), ids.EndUserID(u.id)), msg)
}

// L-2: 64 goroutines reserve the worst case of a request against a budget
// worth 10 of them, then settle (at most the worst case) or release.
// First in rounds that start together: each round admits exactly what the
// balance affords, no more and no fewer. Then free-running, settling and
// admitting at once. A watcher checks at every instant it observes that
// reserved never exceeds the balance. At the end nothing is overspent,
// every reservation is resolved and reserved is back to zero.
func TestReservationsRacingASmallBudgetNeverOverspend(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	p, u, up := budgetUser(t, g, "1")
	ask := func(msg proto.Message) (proto.Message, error) { return askUser(g, p, u, msg) }
	worst := int64(usd(t, "0.1"))
	var admitted, settled, released, refused, charged atomic.Int64
	stop := make(chan struct{})
	watcher := make(chan error, 1)
	var observed atomic.Int64
	go func() {
		defer close(watcher)
		for {
			select {
			case <-stop:
				return
			default:
			}
			res, err := ask(&pb.GetBudget{})
			if err != nil {
				watcher <- err
				return
			}
			v := res.(*pb.BudgetView)
			if v.ReservedNanos > v.Budget.GetBalanceNanos() || v.ReservedNanos > 10*worst || v.ReservedNanos < 0 {
				watcher <- fmt.Errorf("reserved %d with balance %d", v.ReservedNanos, v.Budget.GetBalanceNanos())
				return
			}
			observed.Add(1)
		}
	}()
	// resolve settles (cost ≤ worst) or releases an admitted reservation.
	resolve := func(rng *rand.Rand, rid string) {
		if rng.Intn(4) == 0 {
			if _, err := ask(&pb.Release{ReservationId: rid}); err != nil {
				t.Errorf("Release %s: %v", rid, err)
			}
			released.Add(1)
			return
		}
		cost := worst
		if rng.Intn(2) == 0 {
			cost = rng.Int63n(worst + 1)
		}
		if _, err := ask(&pb.Settle{ReservationId: rid, CostNanos: cost, RequestId: rid, Tokens: 10}); err != nil {
			t.Errorf("Settle %s: %v", rid, err)
			return
		}
		charged.Add(cost)
		settled.Add(1)
	}
	admit := func(rid string) bool {
		_, err := ask(&pb.Admit{ReservationId: rid, RequestId: rid, EstimatedTokens: 10, MaxCostNanos: worst})
		if errors.Is(err, actors.ErrBudgetExhausted) {
			refused.Add(1)
			return false
		}
		if err != nil {
			t.Errorf("Admit %s: %v", rid, err)
			return false
		}
		admitted.Add(1)
		return true
	}

	for round := 0; ; round++ {
		balance, _ := balanceOf(t, g, up, p.key)
		affordable := int(int64(balance) / worst)
		var wins []string
		var mu sync.Mutex
		var wg sync.WaitGroup
		startRound := make(chan struct{})
		for w := 0; w < 64; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rid := fmt.Sprintf("round-%d-%d", round, w)
				<-startRound
				if admit(rid) {
					mu.Lock()
					wins = append(wins, rid)
					mu.Unlock()
				}
			}()
		}
		close(startRound)
		wg.Wait()
		if len(wins) != min(64, affordable) {
			t.Fatalf("round %d: %d admitted with %s available; the balance affords exactly %d", round, len(wins), balance, affordable)
		}
		if _, reserved := balanceOf(t, g, up, p.key); reserved != money.Nanos(int64(len(wins))*worst) {
			t.Fatalf("round %d: reserved %s with %d open", round, reserved, len(wins))
		}
		if affordable == 0 {
			break
		}
		for i, rid := range wins {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resolve(rand.New(rand.NewSource(int64(round*100+i))), rid)
			}()
		}
		wg.Wait()
	}

	// Free-running: admissions race settlements on a refilled budget.
	wantStatus(t, "topup", g.Do(t, "POST", up+"/topup", p.key, map[string]any{"amount_usd": 1}), 200)
	topped := money.Nanos(1 * money.PerUSD)
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			for i := 0; i < 20; i++ {
				rid := fmt.Sprintf("free-%d-%d", w, i)
				if admit(rid) {
					resolve(rng, rid)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	if err := <-watcher; err != nil {
		t.Fatal(err)
	}
	if admitted.Load() != settled.Load()+released.Load() {
		t.Fatalf("%d admitted, %d settled + %d released", admitted.Load(), settled.Load(), released.Load())
	}
	balance, reserved := balanceOf(t, g, up, p.key)
	if reserved != 0 {
		t.Fatalf("reserved = %s after every reservation was resolved, want 0", reserved)
	}
	if want := usd(t, "1") + topped - money.Nanos(charged.Load()); balance != want || balance < 0 {
		t.Fatalf("balance = %s, want 2 - %s charged = %s", balance, money.Nanos(charged.Load()), want)
	}
	entries := ledger(t, g, up+"/transactions", p.key)
	checkLedger(t, entries, balance)
	usage := 0
	for _, e := range entries {
		if str(e, "type") == "usage" {
			usage++
			if num(e, "uncharged_usd") != "" {
				t.Errorf("usage entry %v has an uncharged part: a worst-case reservation must cover it", e)
			}
		}
	}
	if int64(usage) != settled.Load() {
		t.Fatalf("%d usage entries for %d settlements", usage, settled.Load())
	}
	t.Logf("admitted %d (settled %d, released %d), refused %d; watcher observed %d states",
		admitted.Load(), settled.Load(), released.Load(), refused.Load(), observed.Load())
}

// raceSameKey sends n identical requests with one Idempotency-Key at once
// and returns the answers.
func raceSameKey(t *testing.T, g *edgetest.Gateway, n int, path, key string, body any, idem string) []*edgetest.Response {
	t.Helper()
	out := make([]*edgetest.Response, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = g.Do(t, "POST", path, key, body, "Idempotency-Key", idem)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// checkAppliedOnce checks n answers to one idempotent request: each is
// 200 with the same body (or 409 idempotency_key_in_use), exactly one is
// the original and the others carry Idempotent-Replayed: true.
func checkAppliedOnce(t *testing.T, what string, rs []*edgetest.Response) []byte {
	t.Helper()
	var body []byte
	originals := 0
	for i, r := range rs {
		if r.Status == 409 && r.ErrorCode() == "idempotency_key_in_use" {
			continue
		}
		if r.Status != 200 {
			t.Fatalf("%s answer %d = %d %s", what, i, r.Status, r.Body)
		}
		if body == nil {
			body = r.Body
		} else if !bytes.Equal(body, r.Body) {
			t.Fatalf("%s answers differ:\n%s\n%s", what, body, r.Body)
		}
		switch r.Header.Get("Idempotent-Replayed") {
		case "":
			originals++
		case "true":
		default:
			t.Fatalf("%s: Idempotent-Replayed = %q", what, r.Header.Get("Idempotent-Replayed"))
		}
	}
	if originals != 1 {
		t.Fatalf("%s: %d answers without Idempotent-Replayed, want exactly 1 original", what, originals)
	}
	return body
}

// entriesWithKey counts ledger entries carrying an idempotency key.
func entriesWithKey(entries []map[string]any, key string) int {
	n := 0
	for _, e := range entries {
		if str(e, "idempotency_key") == key {
			n++
		}
	}
	return n
}

// L-4: 20 identical top-ups (and debits, and wallet top-ups) with one
// Idempotency-Key, at once: applied once, every answer the same bytes.
func TestConcurrentIdenticalTopupsApplyOnce(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	p, _, up := budgetUser(t, g, "10")
	for _, c := range []struct{ route, amount, want string }{
		{"topup", "2.5", "12.5"},
		{"debit", "0.75", "11.75"},
	} {
		rs := raceSameKey(t, g, 20, up+"/"+c.route, p.key, map[string]any{"amount_usd": jsonNumber(c.amount), "reason": "race"}, "same-key")
		body := checkAppliedOnce(t, c.route, rs)
		if got := num(object(t, body), "budget", "balance_usd"); got != c.want {
			t.Errorf("%s answer balance = %s, want %s", c.route, got, c.want)
		}
		balance, _ := balanceOf(t, g, up, p.key)
		if balance != usd(t, c.want) {
			t.Fatalf("after 20 identical %ss balance = %s, want %s (applied once)", c.route, balance, c.want)
		}
		entries := ledger(t, g, up+"/transactions", p.key)
		checkLedger(t, entries, balance)
	}
	entries := ledger(t, g, up+"/transactions", p.key)
	if n := entriesWithKey(entries, "same-key"); n != 2 {
		t.Fatalf("%d ledger entries carry the key, want 2 (one top-up, one debit)", n)
	}

	wp := "/admin/v1/platforms/" + p.id + "/wallet"
	rs := raceSameKey(t, g, 20, wp+"/topup", edgetest.AdminKey, map[string]any{"amount_usd": 3.25}, "wallet-key")
	body := checkAppliedOnce(t, "wallet topup", rs)
	if got := num(object(t, body), "wallet", "balance_usd"); got != "3.25" {
		t.Errorf("wallet topup answer balance = %s, want 3.25", got)
	}
	w := wantStatus(t, "GET wallet", g.Do(t, "GET", wp, edgetest.AdminKey, nil), 200)
	if num(w, "balance_usd") != "3.25" {
		t.Fatalf("wallet balance = %s after 20 identical top-ups, want 3.25", num(w, "balance_usd"))
	}
	wl := ledger(t, g, wp+"/transactions", edgetest.AdminKey)
	checkLedger(t, wl, usd(t, "3.25"))
	if n := entriesWithKey(wl, "wallet-key"); n != 1 {
		t.Fatalf("%d wallet entries carry the key, want 1", n)
	}
}

// L-5: the same key with another body answers 422 idempotency_key_reused
// and leaves the original alone; the original still replays.
func TestIdempotencyKeyReusedWithOtherBody422(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	p, _, up := budgetUser(t, g, "10")
	wp := "/admin/v1/platforms/" + p.id + "/wallet/topup"
	for _, c := range []struct {
		name, path, key string
	}{
		{"budget topup", up + "/topup", p.key},
		{"budget debit", up + "/debit", p.key},
		{"wallet topup", wp, edgetest.AdminKey},
	} {
		first := g.Do(t, "POST", c.path, c.key, map[string]any{"amount_usd": 1.5, "reason": "first"}, "Idempotency-Key", "k-"+c.name)
		wantStatus(t, c.name, first, 200)
		for _, other := range []map[string]any{
			{"amount_usd": 2, "reason": "first"},
			{"amount_usd": 1.5, "reason": "second"},
			{"amount_usd": 1.5},
		} {
			wantError(t, c.name+" other body", g.Do(t, "POST", c.path, c.key, other, "Idempotency-Key", "k-"+c.name), 422, "idempotency_key_reused")
		}
		again := g.Do(t, "POST", c.path, c.key, map[string]any{"amount_usd": 1.5, "reason": "first"}, "Idempotency-Key", "k-"+c.name)
		if again.Status != 200 || !bytes.Equal(again.Body, first.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("%s replay after 422s = %d %s, want the original %s", c.name, again.Status, again.Body, first.Body)
		}
	}
	balance, _ := balanceOf(t, g, up, p.key)
	if balance != usd(t, "10") { // +1.5 −1.5
		t.Fatalf("balance = %s, want 10", balance)
	}
	entries := ledger(t, g, up+"/transactions", p.key)
	if len(entries) != 3 {
		t.Fatalf("ledger has %d entries, want budget_set, topup, debit", len(entries))
	}
	checkLedger(t, entries, balance)
	w := wantStatus(t, "GET wallet", g.Do(t, "GET", "/v1/platforms/"+p.id+"/wallet", p.key, nil), 200)
	if num(w, "balance_usd") != "1.5" {
		t.Fatalf("wallet = %s, want 1.5", num(w, "balance_usd"))
	}
}

// L-6: a key is scoped to (platform, route, account): the same key on
// another end-user, another route, another platform or the wallet is a
// new request, and none of them disturbs the original's replay.
func TestIdempotencyKeysAreScopedPerPlatformRouteAndAccount(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	a, _, aUp := budgetUser(t, g, "10")
	a2 := a.endUser(t, g, "second")
	a2Up := a.path("/end-users/" + a2.id + "/budget")
	wantStatus(t, "POST budget", g.Do(t, "POST", a2Up, a.key, map[string]any{"amount_usd": 10}), 201)
	b, _, bUp := budgetUser(t, g, "10")

	const k = "shared-key"
	orig := g.Do(t, "POST", aUp+"/topup", a.key, map[string]any{"amount_usd": 1}, "Idempotency-Key", k)
	wantStatus(t, "original", orig, 200)
	for _, c := range []struct {
		name, path, key string
		body            map[string]any
	}{
		{"another end-user", a2Up + "/topup", a.key, map[string]any{"amount_usd": 2}},
		{"the debit route", aUp + "/debit", a.key, map[string]any{"amount_usd": 3}},
		{"another platform", bUp + "/topup", b.key, map[string]any{"amount_usd": 4}},
		{"platform A's wallet", "/admin/v1/platforms/" + a.id + "/wallet/topup", edgetest.AdminKey, map[string]any{"amount_usd": 5}},
		{"platform B's wallet", "/admin/v1/platforms/" + b.id + "/wallet/topup", edgetest.AdminKey, map[string]any{"amount_usd": 6}},
	} {
		r := g.Do(t, "POST", c.path, c.key, c.body, "Idempotency-Key", k)
		wantStatus(t, c.name, r, 200)
		if r.Header.Get("Idempotent-Replayed") != "" {
			t.Errorf("%s: the key was treated as a replay of another scope's request: %s", c.name, r.Body)
		}
	}
	again := g.Do(t, "POST", aUp+"/topup", a.key, map[string]any{"amount_usd": 1}, "Idempotency-Key", k)
	if !bytes.Equal(again.Body, orig.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("original replay = %s, want %s", again.Body, orig.Body)
	}
	for _, c := range []struct{ up, key, want string }{{aUp, a.key, "8"}, {a2Up, a.key, "12"}, {bUp, b.key, "14"}} {
		if bal, _ := balanceOf(t, g, c.up, c.key); bal != usd(t, c.want) {
			t.Errorf("%s balance = %s, want %s", c.up, bal, c.want)
		}
	}
	for _, c := range []struct{ id, want string }{{a.id, "5"}, {b.id, "6"}} {
		w := wantStatus(t, "GET wallet", g.Do(t, "GET", "/admin/v1/platforms/"+c.id+"/wallet", edgetest.AdminKey, nil), 200)
		if num(w, "balance_usd") != c.want {
			t.Errorf("wallet of %s = %s, want %s", c.id, num(w, "balance_usd"), c.want)
		}
	}
}

// The wallet over the operator and platform APIs: top-ups answer the
// wallet and the transaction, both GETs agree, and the wallet's ledger
// sums to its balance.
func TestWalletTopupsAndReads(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	p := newPlatform(t, g, "Wallet")
	wp := "/admin/v1/platforms/" + p.id + "/wallet"
	w := wantStatus(t, "GET wallet", g.Do(t, "GET", wp, edgetest.AdminKey, nil), 200)
	if num(w, "balance_usd") != "0" || num(w, "reserved_usd") != "0" || str(w, "object") != "wallet" {
		t.Fatalf("new wallet = %v", w)
	}
	balance := money.Nanos(0)
	for i, amt := range []string{"0.000000001", "12.5", "100000000", "3"} {
		r := wantStatus(t, "wallet topup", g.Do(t, "POST", wp+"/topup", edgetest.AdminKey, map[string]any{"amount_usd": jsonNumber(amt), "reason": "r"},
			"Idempotency-Key", fmt.Sprint("w", i)), 200)
		balance += usd(t, amt)
		if got := num(r, "wallet", "balance_usd"); got != balance.String() {
			t.Errorf("topup %s: balance %s, want %s", amt, got, balance)
		}
		if str(r, "transaction", "type") != "topup" || num(r, "transaction", "amount_usd") != amt ||
			str(r, "transaction", "account") != "wallet" || str(r, "transaction", "idempotency_key") != fmt.Sprint("w", i) ||
			num(r, "transaction", "sequence") != strconv.Itoa(i+1) || str(r, "transaction", "reason") != "r" {
			t.Errorf("topup %s transaction = %v", amt, r["transaction"])
		}
	}
	for _, get := range []struct{ path, key string }{{wp, edgetest.AdminKey}, {p.path("/wallet"), p.key}} {
		w := wantStatus(t, "GET "+get.path, g.Do(t, "GET", get.path, get.key, nil), 200)
		if num(w, "balance_usd") != balance.String() {
			t.Errorf("GET %s balance = %s, want %s", get.path, num(w, "balance_usd"), balance)
		}
	}
	checkLedger(t, ledger(t, g, wp+"/transactions", edgetest.AdminKey), balance)
	// A platform key cannot top up its own wallet.
	r := g.Do(t, "POST", p.path("/wallet/topup"), p.key, map[string]any{"amount_usd": 1})
	if r.Status != 404 && r.Status != 405 {
		t.Errorf("platform key POST /v1/.../wallet/topup = %d %s, want 404 or 405", r.Status, r.Body)
	}
}

// limitsJSON is a rate-limits object as the API renders it.
func limitsText(m map[string]any, path ...string) string {
	if len(path) > 0 {
		v, ok := m[path[0]]
		if !ok || v == nil {
			return "null"
		}
		m, _ = v.(map[string]any)
	}
	return fmt.Sprintf("rpm=%s tpm=%s rpd=%s", num(m, "requests_per_minute"), num(m, "tokens_per_minute"), num(m, "requests_per_day"))
}

// L-7 (API): a platform default applies to every end-user; an override
// replaces it for one user; DELETE restores the default. GET shows the
// override and the effective limits; the actor's admission obeys them.
func TestRateLimitDefaultsOverridesAndDelete(t *testing.T) {
	clk := clock.NewFake(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	g := edgetest.Start(t, edgetest.Options{Clock: clk})
	p := newPlatform(t, g, "Limits")
	u := p.endUser(t, g, "u")
	rl := p.path("/end-users/" + u.id + "/rate-limits")

	r := wantStatus(t, "PUT platform limits", g.Do(t, "PUT", p.path("/rate-limits"), p.key, map[string]any{"requests_per_minute": 5, "tokens_per_minute": 1000}), 200)
	if got := limitsText(r); got != "rpm=5 tpm=1000 rpd=0" {
		t.Fatalf("PUT platform limits = %s", got)
	}
	if got := limitsText(wantStatus(t, "GET platform limits", g.Do(t, "GET", p.path("/rate-limits"), p.key, nil), 200)); got != "rpm=5 tpm=1000 rpd=0" {
		t.Fatalf("GET platform limits = %s", got)
	}
	view := wantStatus(t, "GET user limits", g.Do(t, "GET", rl, p.key, nil), 200)
	if o, e := limitsText(view, "override"), limitsText(view, "effective"); o != "null" || e != "rpm=5 tpm=1000 rpd=0" {
		t.Fatalf("user limits override %s effective %s; want null and the platform default", o, e)
	}

	seq := 0
	admit := func(n int) (ok int, last *pb.RateLimitInfo, refusal *actors.Error) {
		for i := 0; i < n; i++ {
			seq++
			res, err := askUser(g, p, u, &pb.Admit{ReservationId: fmt.Sprint("a", seq), EstimatedTokens: 10})
			var e *actors.Error
			if errors.As(err, &e) && e.Code == "rate_limited" {
				return ok, last, e
			}
			if err != nil {
				t.Fatalf("Admit: %v", err)
			}
			ok++
			last = res.(*pb.Admitted).Rate
		}
		return ok, last, nil
	}
	n, last, refusal := admit(10)
	if n != 5 || refusal == nil {
		t.Fatalf("admitted %d of 10 under rpm=5", n)
	}
	if last.LimitRequests != 5 || last.RemainingRequests != 0 || last.ResetRequestsMs != 60000 ||
		last.LimitTokens != 1000 || last.RemainingTokens != 950 || last.ResetTokensMs != 60000 {
		t.Errorf("fifth admission's rate info = %v", last)
	}
	if refusal.Rate == nil || refusal.Rate.RetryAfterMs != 60000 || refusal.Rate.RemainingRequests != 0 || refusal.Rate.LimitRequests != 5 {
		t.Errorf("refusal rate info = %v, want retry 60000 ms, 0/5 left", refusal.Rate)
	}

	// Fields absent from an override inherit the platform default.
	view = wantStatus(t, "PUT override", g.Do(t, "PUT", rl, p.key, map[string]any{"requests_per_minute": 8}), 200)
	if o, e := limitsText(view, "override"), limitsText(view, "effective"); o != "rpm=8 tpm= rpd=" || e != "rpm=8 tpm=1000 rpd=0" {
		t.Fatalf("after PUT override: override %s effective %s", o, e)
	}
	if n, last, _ := admit(10); n != 3 || last.LimitRequests != 8 || last.RemainingRequests != 0 || last.LimitTokens != 1000 {
		t.Fatalf("under the override rpm=8 with 5 used: admitted %d, last %v; want 3 more", n, last)
	}
	view = wantStatus(t, "DELETE override", g.Do(t, "DELETE", rl, p.key, nil), 200)
	if o, e := limitsText(view, "override"), limitsText(view, "effective"); o != "null" || e != "rpm=5 tpm=1000 rpd=0" {
		t.Fatalf("after DELETE: override %s effective %s; want null and the default", o, e)
	}
	if n, _, refusal := admit(1); n != 0 || refusal == nil {
		t.Fatalf("default restored with 8 used in the window: admitted %d, want a refusal", n)
	}
	clk.Advance(time.Minute)
	if n, last, _ := admit(10); n != 5 || last.RemainingRequests != 0 {
		t.Fatalf("a minute later: admitted %d, want 5", n)
	}
	other := p.endUser(t, g, "other")
	view = wantStatus(t, "GET other's limits", g.Do(t, "GET", p.path("/end-users/"+other.id+"/rate-limits"), p.key, nil), 200)
	if e := limitsText(view, "effective"); e != "rpm=5 tpm=1000 rpd=0" {
		t.Fatalf("another end-user's effective limits = %s, want the platform default", e)
	}
}

// L-7 (load): 64 goroutines ask for admission at once while a fake clock
// steps between rounds. In every window of 60 s at most rpm are admitted;
// an exact window refuses nobody it could admit; every refusal's
// RetryAfterMs is exact, and the rate info's remaining counts are the
// distinct values a serial order would give.
func TestRateLimitUnderConcurrentAdmissions(t *testing.T) {
	const rpm = 10
	clk := clock.NewFake(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	g := edgetest.Start(t, edgetest.Options{Clock: clk})
	p := newPlatform(t, g, "Limits")
	u := p.endUser(t, g, "u")
	wantStatus(t, "PUT limits", g.Do(t, "PUT", p.path("/rate-limits"), p.key, map[string]any{"requests_per_minute": rpm}), 200)
	rng := rand.New(rand.NewSource(1))
	type round struct {
		at       time.Time
		admitted int
	}
	var rounds []round
	inWindow := func(now time.Time) (n int, oldest time.Time) {
		for _, r := range rounds {
			if r.at.After(now.Add(-time.Minute)) && r.admitted > 0 {
				if n == 0 {
					oldest = r.at
				}
				n += r.admitted
			}
		}
		return n, oldest
	}
	seq := 0
	for k := 0; k < 60; k++ {
		now := clk.Now()
		used, oldest := inWindow(now)
		var mu sync.Mutex
		var remaining []int64
		var retries []int64
		admitted := 0
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := 0; w < 64; w++ {
			seq++
			rid := fmt.Sprintf("r%d", seq)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res, err := askUser(g, p, u, &pb.Admit{ReservationId: rid})
				mu.Lock()
				defer mu.Unlock()
				var e *actors.Error
				switch {
				case err == nil:
					admitted++
					info := res.(*pb.Admitted).Rate
					remaining = append(remaining, info.RemainingRequests)
					if info.LimitRequests != rpm {
						t.Errorf("limit_requests = %d", info.LimitRequests)
					}
				case errors.As(err, &e) && e.Code == "rate_limited":
					retries = append(retries, e.Rate.RetryAfterMs)
				default:
					t.Errorf("Admit: %v", err)
				}
				if err == nil {
					if _, err := askUser(g, p, u, &pb.Release{ReservationId: rid}); err != nil {
						t.Errorf("Release: %v", err)
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		want := min(64, rpm-used)
		if admitted != want {
			t.Fatalf("round %d at +%v: admitted %d with %d in the window; want %d (no more, no spurious refusal)", k, now.Sub(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)), admitted, used, want)
		}
		sort.Slice(remaining, func(i, j int) bool { return remaining[i] > remaining[j] })
		for i, r := range remaining {
			if want := int64(rpm - used - 1 - i); r != want {
				t.Fatalf("round %d: remaining counts %v, want %d..%d each once", k, remaining, rpm-used-1, rpm-used-admitted)
			}
		}
		if admitted > 0 {
			oldest = now
			if used > 0 {
				_, oldest = inWindow(now)
			}
		}
		for _, ms := range retries {
			if want := oldest.Add(time.Minute).Sub(now).Milliseconds(); ms != want {
				t.Fatalf("round %d: RetryAfterMs %d, want %d", k, ms, want)
			}
		}
		rounds = append(rounds, round{now, admitted})
		if len(retries) > 0 && k%7 == 3 {
			// The client waits exactly as told: the next round is admitted.
			clk.Advance(time.Duration(retries[0]) * time.Millisecond)
		} else {
			clk.Advance(time.Duration(rng.Intn(21)) * time.Second)
		}
	}
	// Two-pointer sweep over admission times: no 60 s window holds more
	// than rpm.
	var best, sum int
	lo := 0
	for hi := range rounds {
		sum += rounds[hi].admitted
		for !rounds[lo].at.After(rounds[hi].at.Add(-time.Minute)) {
			sum -= rounds[lo].admitted
			lo++
		}
		best = max(best, sum)
	}
	if best != rpm {
		t.Fatalf("busiest 60 s window admitted %d, want exactly rpm=%d (never more; and the load saturates it)", best, rpm)
	}
	// A request at now+retry is admitted, one millisecond earlier it is not.
	for {
		_, err := askUser(g, p, u, &pb.Admit{ReservationId: fmt.Sprintf("fill%d", seq)})
		seq++
		var e *actors.Error
		if errors.As(err, &e) {
			before := clk.Now()
			clk.Advance(time.Duration(e.Rate.RetryAfterMs-1) * time.Millisecond)
			if _, err := askUser(g, p, u, &pb.Admit{ReservationId: "early"}); err == nil {
				t.Fatalf("admitted 1 ms before the RetryAfterMs (%d) given at %v", e.Rate.RetryAfterMs, before)
			}
			clk.Advance(time.Millisecond)
			if _, err := askUser(g, p, u, &pb.Admit{ReservationId: "on-time"}); err != nil {
				t.Fatalf("refused at exactly now+RetryAfterMs: %v", err)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// L-9: a daily budget resets at 00:00 UTC while 64 goroutines debit it.
// One period_reset entry, dated at the boundary; no debit lost across it;
// the first listing after the boundary already shows the reset.
func TestDailyResetUnderConcurrentDebits(t *testing.T) {
	clk := clock.NewFake(time.Date(2025, 6, 1, 23, 59, 0, 0, time.UTC))
	g := edgetest.Start(t, edgetest.Options{Clock: clk})
	p, _, up := budgetUser(t, g, "10", "daily")
	var done atomic.Int64
	var wg sync.WaitGroup
	advanced := make(chan struct{})
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				if i == 5 {
					<-advanced
				}
				wantStatus(t, "debit", g.Do(t, "POST", up+"/debit", p.key, map[string]any{"amount_usd": 0.01}), 200)
				done.Add(1)
			}
		}()
	}
	for done.Load() < 64*5 {
		time.Sleep(time.Millisecond) // wait for the first halves; not a timing assertion
	}
	clk.Set(time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC))
	// The very first message after the boundary is a listing.
	first := ledger(t, g, up+"/transactions", p.key)
	if last := first[len(first)-1]; str(last, "type") != "period_reset" {
		t.Fatalf("first listing after 00:00 ends with %v, want the period_reset", last)
	}
	close(advanced)
	wg.Wait()
	balance, _ := balanceOf(t, g, up, p.key)
	entries := ledger(t, g, up+"/transactions", p.key)
	checkLedger(t, entries, balance)
	resets, before, after := 0, 0, 0
	for _, e := range entries {
		switch str(e, "type") {
		case "period_reset":
			resets++
			if str(e, "created_at") != "2025-06-02T00:00:00.000Z" || num(e, "amount_usd") != "3.2" {
				t.Errorf("reset entry %v, want +3.2 dated 2025-06-02T00:00:00.000Z", e)
			}
		case "debit":
			if resets == 0 {
				before++
			} else {
				after++
			}
		}
	}
	if resets != 1 || before != 320 || after != 320 {
		t.Fatalf("%d resets, %d debits before and %d after; want 1, 320, 320", resets, before, after)
	}
	if balance != usd(t, "6.8") {
		t.Fatalf("balance = %s, want 10 - 320 × 0.01 = 6.8", balance)
	}
}

// B-2, the forms input_test.go does not send: control characters inside
// the key (tab; DEL, which net/http will not send, over a raw connection,
// refused by the HTTP parser itself) answer 400 and move no money; a quoted structured-header string is an
// ordinary printable key and replays.
func TestIdempotencyKeyControlCharactersAnswer400(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	p, _, up := budgetUser(t, g, "1")
	wantError(t, "tab in key", g.Do(t, "POST", up+"/topup", p.key, map[string]any{"amount_usd": 1}, "Idempotency-Key", "a\tb"), 400, "invalid_idempotency_key")

	conn, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"amount_usd":1}`
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nIdempotency-Key: a\x7fb\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		up+"/topup", p.key, len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// fasthttp refuses a DEL in any header value before routing.
	wantError(t, "DEL in key", &edgetest.Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}, 400, "malformed_request")

	first := g.Do(t, "POST", up+"/topup", p.key, map[string]any{"amount_usd": 1}, "Idempotency-Key", `"sf-string"`)
	wantStatus(t, "quoted key", first, 200)
	again := g.Do(t, "POST", up+"/topup", p.key, map[string]any{"amount_usd": 1}, "Idempotency-Key", `"sf-string"`)
	if !bytes.Equal(again.Body, first.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("quoted key replay = %s", again.Body)
	}
	if bal, _ := balanceOf(t, g, up, p.key); bal != usd(t, "2") {
		t.Fatalf("balance = %s, want 2 (one top-up applied)", bal)
	}
}
