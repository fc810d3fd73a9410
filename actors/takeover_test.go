package actors

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// sameUserNode is a second node (its own store, real actors) that serves
// the end-user of another budgetNode once it adopted its records.
func sameUserNode(t *testing.T, of *budgetNode) *budgetNode {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := persistence.DefaultConfig()
	cfg.Dir, cfg.FS, cfg.Logger = "/data", vfs.NewMem(), log
	cfg.OnFatal = func(err error) { t.Errorf("store failed: %v", err) }
	st, err := persistence.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	env := NewEnv(st, clock.NewFake(time.Date(2025, 1, 15, 11, 0, 0, 0, time.UTC)), log)
	n := &budgetNode{t: t, dir: NewLocal(env), id: of.id}
	t.Cleanup(func() { n.dir.Close(); st.Close() })
	return n
}

func (n *budgetNode) evict() {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.dir.Evict(ctx, n.id); err != nil {
		n.t.Fatal(err)
	}
}

// ledgerIDs returns how many times each entry id is in n's ledger.
func (n *budgetNode) ledgerIDs() map[string]int {
	n.t.Helper()
	out := map[string]int{}
	page := n.do(&pb.ListLedger{Limit: 1000}).(*pb.LedgerPage)
	for _, e := range page.Entries {
		out[e.Id]++
	}
	return out
}

// tailAfter returns what n wrote for its end-user after copy: ledger
// entries of a later sequence and idempotency records copy lacks.
func (n *budgetNode) tailAfter(copy Holding) []TailItem {
	n.t.Helper()
	had := map[string]bool{}
	for _, k := range copy.Keys {
		had[string(k)] = true
	}
	var out []TailItem
	env := n.dir.env
	for _, p := range [][]byte{persistence.LedgerPrefix(string(n.id.Platform), string(n.id.EndUser)), persistence.IdempotencyPrefix(string(n.id.Platform), string(n.id.EndUser))} {
		if err := env.Store.ScanPrefix(p, false, func(k, v []byte) bool {
			if !had[string(k)] {
				out = append(out, TailItem{Key: append([]byte(nil), k...), Value: append([]byte(nil), v...)})
			}
			return true
		}); err != nil {
			n.t.Fatal(err)
		}
	}
	return out
}

func debit(amount money.Nanos, key string) *pb.BudgetTopup {
	return &pb.BudgetTopup{AmountNanos: int64(amount), Debit: true, IdempotencyKey: key, RequestHash: hashOf(int64(amount))}
}

// An account taken over from a snapshot is provisional: it spends at most
// the credit; the crashed node's tail is then merged in once (an entry
// already answered on the new owner under the same idempotency key is
// not applied again), the hold comes back, the ledger sums to the balance
// and every entry id is there once. Merging the same tail again changes
// nothing.
func TestTakeoverCapsCreditThenMergesTheTailOnce(t *testing.T) {
	dead := newBudgetNode(t)
	dead.do(&pb.SetBudget{Create: true, Budget: &pb.Budget{AmountNanos: int64(10 * usd1)}})
	dead.do(debit(usd1, "k1"))
	dead.evict()
	snap, err := dead.dir.env.Export(dead.id) // the last snapshot
	if err != nil {
		t.Fatal(err)
	}
	// Acknowledged by the dead node after its snapshot.
	dead.do(debit(usd1/4, "k2"))
	dead.do(debit(usd1/2, ""))
	dead.evict()
	tail := dead.tailAfter(snap)

	owner := sameUserNode(t, dead)
	if err := owner.dir.env.AdoptNewest(owner.id, nil, snap); err != nil {
		t.Fatal(err)
	}
	held, err := owner.dir.env.Provision(owner.id, "dead", 1, 2*usd1)
	if err != nil || held != 7*usd1 {
		t.Fatalf("Provision: held %s, %v; want 7 USD (9 USD at the snapshot, 2 USD credit)", held, err)
	}
	if again, err := owner.dir.env.Provision(owner.id, "dead", 1, 2*usd1); err != nil || again != 0 {
		t.Fatalf("Provision again: %s, %v; want nothing more held", again, err)
	}
	owner.check("provisional", 2*usd1, 0)
	owner.do(debit(usd1/4, "k2")) // the client retried k2 here
	owner.do(debit(3*usd1/2, ""))
	if _, err := owner.ask(debit(usd1, "")); !errors.Is(err, ErrBudgetExhausted) {
		t.Fatalf("debit beyond the take-over credit: %v, want budget_exhausted", err)
	}
	owner.check("credit spent", usd1/4, 0)

	owner.evict()
	res, err := owner.dir.env.MergeTail(owner.id, "dead", tail)
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != 1 || res.Present != 1 || res.Released != 7*usd1 {
		t.Fatalf("merge: %+v; want 1 applied (the keyless debit), 1 present (k2), 7 USD released", res)
	}
	// 10 − 1 (k1) − 0.25 (k2, once) − 0.5 (dead) − 1.5 (owner).
	owner.check("merged", 10*usd1-usd1-usd1/4-usd1/2-3*usd1/2, 0)
	if _, ok, _ := owner.dir.env.ProvisionalOf(owner.id); ok {
		t.Fatal("still provisional after the merge")
	}
	ids := owner.ledgerIDs()
	for _, it := range tail {
		if it.Key[0] != persistence.FamilyLedger {
			continue
		}
		var e pb.LedgerEntry
		if err := proto.Unmarshal(it.Value, &e); err != nil {
			t.Fatal(err)
		}
		want := 1
		if e.IdempotencyKey == "k2" {
			want = 0 // applied on the owner under its own entry
		}
		if ids[e.Id] != want {
			t.Fatalf("tail entry %s (%s): %d times in the ledger, want %d", e.Id, e.IdempotencyKey, ids[e.Id], want)
		}
	}
	for id, c := range ids {
		if c != 1 {
			t.Fatalf("entry %s is in the ledger %d times", id, c)
		}
	}

	owner.evict()
	res, err = owner.dir.env.MergeTail(owner.id, "dead", tail)
	if err != nil || res.Applied != 0 || res.Released != 0 {
		t.Fatalf("merging again: %+v, %v; want nothing applied or released", res, err)
	}
	owner.check("merged twice", 10*usd1-usd1-usd1/4-usd1/2-3*usd1/2, 0)
}

// A node declared lost: the hold comes back without a tail.
func TestTakeoverReleasedWhenTheNodeIsLost(t *testing.T) {
	dead := newBudgetNode(t)
	dead.do(&pb.SetBudget{Create: true, Budget: &pb.Budget{AmountNanos: int64(5 * usd1)}})
	dead.evict()
	snap, err := dead.dir.env.Export(dead.id)
	if err != nil {
		t.Fatal(err)
	}
	owner := sameUserNode(t, dead)
	if err := owner.dir.env.AdoptNewest(owner.id, nil, snap); err != nil {
		t.Fatal(err)
	}
	if held, err := owner.dir.env.Provision(owner.id, "dead", 3, usd1); err != nil || held != 4*usd1 {
		t.Fatalf("Provision: %s, %v", held, err)
	}
	owner.do(debit(usd1/2, ""))
	owner.evict()
	if _, ok, err := owner.dir.env.ReleaseProvisional(owner.id, "other", "lost"); ok || err != nil {
		t.Fatalf("released for another node: %v %v", ok, err)
	}
	released, ok, err := owner.dir.env.ReleaseProvisional(owner.id, "dead", "lost")
	if err != nil || !ok || released != 4*usd1 {
		t.Fatalf("ReleaseProvisional: %s %v %v", released, ok, err)
	}
	owner.check("released", 5*usd1-usd1/2, 0)
	marks, err := owner.dir.env.Provisionals()
	if err != nil || len(marks) != 0 {
		t.Fatalf("markers after release: %v %v", marks, err)
	}
}

// AdoptNewest keeps the copy with the higher ledger sequence: the
// snapshot when the live copies are older, a live copy when it is newer.
func TestAdoptNewestPrefersTheHigherLedgerSequence(t *testing.T) {
	a := newBudgetNode(t)
	a.do(&pb.SetBudget{Create: true, Budget: &pb.Budget{AmountNanos: int64(5 * usd1)}})
	a.evict()
	older, _ := a.dir.env.Export(a.id)
	a.do(debit(usd1, ""))
	a.evict()
	newer, _ := a.dir.env.Export(a.id)

	b := sameUserNode(t, a)
	if err := b.dir.env.AdoptNewest(b.id, []Holding{{Epoch: 7, Keys: older.Keys, Values: older.Values}}, newer); err != nil {
		t.Fatal(err)
	}
	b.check("snapshot newer", 4*usd1, 0)

	c := sameUserNode(t, a)
	if err := c.dir.env.AdoptNewest(c.id, []Holding{{Epoch: 7, Keys: newer.Keys, Values: newer.Values}}, older); err != nil {
		t.Fatal(err)
	}
	c.check("live copy newer", 4*usd1, 0)
	if HoldingSeq(a.id, newer) <= HoldingSeq(a.id, older) {
		t.Fatalf("HoldingSeq: newer %d, older %d", HoldingSeq(a.id, newer), HoldingSeq(a.id, older))
	}
}

// NotHeld: a record of an actor this node never took over, or whose copy
// another node took since, stays out of the shared snapshot; records of
// held actors and records that are no actor's go in.
func TestNotHeldFollowsTheHoldingRecord(t *testing.T) {
	n := newBudgetNode(t)
	env := n.dir.env
	p, u := string(n.id.Platform), string(n.id.EndUser)
	userKeys := [][]byte{persistence.EndUserKey(p, u), persistence.LedgerKey(p, u, 3), persistence.IdempotencyKey(p, u, "debit", "k")}
	for _, k := range userKeys {
		if !env.NotHeld(k) {
			t.Fatalf("%q: held before any take-over", k)
		}
	}
	if env.NotHeld(persistence.OutboxKey(p, "evt")) || env.NotHeld(persistence.APIKeyKey([]byte("digest"))) {
		t.Fatal("a record that is no actor's is not held")
	}
	n.evict()
	if err := env.Adopt(n.id, nil); err != nil {
		t.Fatal(err)
	}
	for _, k := range userKeys {
		if env.NotHeld(k) {
			t.Fatalf("%q: not held after the take-over", k)
		}
	}
	if !env.NotHeld(persistence.LedgerKey(p, WalletAccount, 1)) {
		t.Fatal("the wallet's ledger is held without a take-over of the platform")
	}
	if err := env.MarkSurrendered(n.id); err != nil {
		t.Fatal(err)
	}
	if !env.NotHeld(persistence.EndUserKey(p, u)) {
		t.Fatal("held after another node took the copy")
	}
}

// A call whose settlement landed on the crashed node after its snapshot,
// with the answer lost, is settled again by the edge on the new owner
// (charge_if_unknown): merging the crashed node's tail then skips its
// usage entry, so the call is charged once.
func TestMergeTailSkipsAUsageChargedLateHere(t *testing.T) {
	dead := newBudgetNode(t)
	dead.do(&pb.SetBudget{Create: true, Budget: &pb.Budget{AmountNanos: int64(10 * usd1)}})
	dead.evict()
	snap, err := dead.dir.env.Export(dead.id)
	if err != nil {
		t.Fatal(err)
	}
	dead.do(&pb.Admit{ReservationId: "r1", RequestId: "req-1", MaxCostNanos: 5000})
	dead.do(&pb.Settle{ReservationId: "r1", RequestId: "req-1", CostNanos: 2000, Model: "m"})
	dead.do(debit(usd1, "")) // acknowledged after the snapshot too
	dead.evict()
	tail := dead.tailAfter(snap)

	owner := sameUserNode(t, dead)
	if err := owner.dir.env.AdoptNewest(owner.id, nil, snap); err != nil {
		t.Fatal(err)
	}
	got := owner.do(&pb.Settle{ReservationId: "r1", RequestId: "req-1", CostNanos: 2000, Model: "m", ChargeIfUnknown: true}).(*pb.Settled)
	if got.ChargedNanos != 2000 {
		t.Fatalf("late settle on the new owner = %v; want 2000 charged", got)
	}
	owner.evict()
	res, err := owner.dir.env.MergeTail(owner.id, "dead", tail)
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != 1 || res.Present != 1 {
		t.Fatalf("merge: %+v; want the debit applied and the usage entry found present", res)
	}
	owner.check("merged", 10*usd1-2000-usd1, 0)
	usage := 0
	for _, e := range owner.do(&pb.ListLedger{Limit: 100}).(*pb.LedgerPage).Entries {
		if e.Type == EntryUsage && e.RequestId == "req-1" {
			usage++
		}
	}
	if usage != 1 {
		t.Fatalf("%d usage entries for req-1, want 1", usage)
	}
}

// A provisional account's balance has the take-over hold taken out, and
// the hold comes back by a delta: nothing may set that balance absolutely
// meanwhile. A period boundary crossed while provisional resets the
// budget only once the account is recovered (dated at the boundary);
// changing the amount or deleting the budget is refused (409) until then.
// Without this the reset's balance plus the returned hold would credit
// the end-user the hold twice.
func TestProvisionalAccountDefersResetsAndAbsoluteBudgetChanges(t *testing.T) {
	dead := newBudgetNode(t)
	dead.do(&pb.SetBudget{Create: true, Budget: &pb.Budget{AmountNanos: int64(10 * usd1), Period: PeriodDaily}})
	dead.do(debit(usd1, "k1"))
	dead.evict()
	snap, err := dead.dir.env.Export(dead.id)
	if err != nil {
		t.Fatal(err)
	}

	owner := sameUserNode(t, dead)
	clk := owner.dir.env.Clock.(*clock.Fake)
	if err := owner.dir.env.AdoptNewest(owner.id, nil, snap); err != nil {
		t.Fatal(err)
	}
	if held, err := owner.dir.env.Provision(owner.id, "dead", 1, 2*usd1); err != nil || held != 7*usd1 {
		t.Fatalf("Provision: held %s, %v; want 7 USD", held, err)
	}
	owner.do(debit(usd1/2, ""))
	clk.Advance(24 * time.Hour) // the next day: a reset is due
	owner.check("provisional across a period boundary", 2*usd1-usd1/2, 0)
	if _, err := owner.ask(&pb.SetBudget{Budget: &pb.Budget{AmountNanos: int64(20 * usd1)}, Fields: []string{"amount_usd"}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("amount change while provisional: %v, want conflict", err)
	}
	if _, err := owner.ask(&pb.DeleteBudget{}); !errors.Is(err, ErrConflict) {
		t.Fatalf("budget delete while provisional: %v, want conflict", err)
	}
	owner.do(&pb.SetBudget{Budget: &pb.Budget{IsSuspended: true}, Fields: []string{"is_suspended"}}) // not absolute: allowed
	owner.do(&pb.SetBudget{Budget: &pb.Budget{IsSuspended: false}, Fields: []string{"is_suspended"}})

	owner.evict()
	if _, ok, err := owner.dir.env.ReleaseProvisional(owner.id, "dead", "lost"); err != nil || !ok {
		t.Fatalf("ReleaseProvisional: %v, %v", ok, err)
	}
	// Recovered: the day's reset applies now, to the whole amount.
	owner.check("recovered, then reset", 10*usd1, 0)
	page := owner.do(&pb.ListLedger{Limit: 1}).(*pb.LedgerPage)
	if e := page.Entries[0]; e.Type != EntryPeriodReset || e.BalanceAfterNanos != int64(10*usd1) {
		t.Fatalf("newest entry %v; want the deferred period_reset to 10 USD", e)
	}
	owner.do(&pb.SetBudget{Budget: &pb.Budget{AmountNanos: int64(20 * usd1)}, Fields: []string{"amount_usd"}})
	owner.check("amount changed after recovery", 20*usd1, 0)
}
