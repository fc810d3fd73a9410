package actors

import (
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
)

// An Admit that reaches the actor after its caller's deadline reserves
// nothing: neither the budget nor the wallet lease holds money for a call
// no one will settle or release.
func TestAdmitAfterTheCallersDeadlineReservesNothing(t *testing.T) {
	n := newLeaseNode(t, 10, 1, money.PerUSD)
	u := EndUserActor(n.pid, n.users[0])
	_, err := n.ask(u, &pb.Admit{ReservationId: "late", RequestId: "late", MaxCostNanos: 1000, Provider: "openai",
		DeadlineMs: time.Now().Add(-time.Millisecond).UnixMilli()})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("late admit: %v, want unavailable", err)
	}
	if w := n.wallet(); w.ReservedNanos != 0 {
		t.Fatalf("a late admit holds %d on the wallet lease", w.ReservedNanos)
	}
	v := n.must(u, &pb.GetEndUser{}).(*pb.EndUserView)
	if v.EndUser == nil {
		t.Fatal("no end-user view")
	}
	if _, err := n.ask(u, &pb.Settle{ReservationId: "late", CostNanos: 1}); !errors.Is(err, ErrReservationUnknown) {
		t.Fatalf("the late admit left a reservation: settle answered %v", err)
	}
}

// A reservation neither settled nor released by its expiry is voided: the
// budget and the lease get the credit back, the ledger records
// reservation_expired with what it held, and a late settlement finds it
// unknown.
func TestReservationExpiresWithATrace(t *testing.T) {
	n := newLeaseNode(t, 10, 1, money.PerUSD)
	u := EndUserActor(n.pid, n.users[0])
	n.must(u, &pb.SetBudget{Create: true, Budget: &pb.Budget{AmountNanos: int64(money.PerUSD)}})
	n.must(u, &pb.Admit{ReservationId: "r1", RequestId: "req-1", MaxCostNanos: 5000, Provider: "openai", TtlMs: 50})
	if w := n.wallet(); w.ReservedNanos != 5000 {
		t.Fatalf("reserved %d, want 5000", w.ReservedNanos)
	}
	var b *pb.BudgetView
	for i := 0; i < 200; i++ { // poll for the sweep; not a timing assertion
		b = n.must(u, &pb.GetBudget{}).(*pb.BudgetView)
		if b.ReservedNanos == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if b.ReservedNanos != 0 || b.Budget.BalanceNanos != int64(money.PerUSD) {
		t.Fatalf("after expiry: reserved %d balance %d", b.ReservedNanos, b.Budget.BalanceNanos)
	}
	if w := n.wallet(); w.ReservedNanos != 0 {
		t.Fatalf("the expired reservation still holds %d of the lease", w.ReservedNanos)
	}
	page := n.must(u, &pb.ListLedger{Limit: 10}).(*pb.LedgerPage)
	if len(page.Entries) == 0 || page.Entries[0].Type != EntryReservationExpired || page.Entries[0].RequestId != "req-1" || page.Entries[0].UnchargedNanos == 0 {
		t.Fatalf("newest entry %v, want reservation_expired for req-1 with what it held", page.Entries[0])
	}
	if _, err := n.ask(u, &pb.Settle{ReservationId: "r1", CostNanos: 1}); !errors.Is(err, ErrReservationUnknown) {
		t.Fatalf("settle after expiry: %v, want reservation_unknown", err)
	}
}

// An actor that panics while it holds reservations restarts from its
// durable state without voiding them: the calls in flight still settle,
// exactly once, and nothing is recorded as unsettled.
func TestPanicKeepsLiveReservations(t *testing.T) {
	n := newLeaseNode(t, 10, 1, money.PerUSD)
	u := EndUserActor(n.pid, n.users[0])
	n.must(u, &pb.SetBudget{Create: true, Budget: &pb.Budget{AmountNanos: int64(money.PerUSD)}})
	n.must(u, &pb.Admit{ReservationId: "r1", RequestId: "req-1", MaxCostNanos: 5000, Provider: "openai"})
	n.must(u, &pb.Admit{ReservationId: "r2", RequestId: "req-2", MaxCostNanos: 7000, Provider: "openai"})
	var panicked atomic.Bool
	n.env.beforeMessage = func(msg any) {
		if _, ok := msg.(*pb.CountRequest); ok && panicked.CompareAndSwap(false, true) {
			panic("injected panic while holding reservations")
		}
	}
	// The panicking message gets no answer (its ask times out); the
	// supervisor restarts the actor, which loads its durable state.
	go func() { _, _ = n.ask(u, &pb.CountRequest{}) }()
	for !panicked.Load() {
		time.Sleep(time.Millisecond)
	}
	n.env.beforeMessage = nil
	b := n.must(u, &pb.GetBudget{}).(*pb.BudgetView)
	if b.ReservedNanos != 12000 {
		t.Fatalf("after the panic: reserved %d, want 12000", b.ReservedNanos)
	}
	n.must(u, &pb.Settle{ReservationId: "r1", RequestId: "req-1", CostNanos: 3000, Model: "m"})
	n.must(u, &pb.Release{ReservationId: "r2"})
	b = n.must(u, &pb.GetBudget{}).(*pb.BudgetView)
	if b.ReservedNanos != 0 || b.Budget.BalanceNanos != int64(money.PerUSD)-3000 {
		t.Fatalf("after settling: reserved %d balance %d", b.ReservedNanos, b.Budget.BalanceNanos)
	}
	page := n.must(u, &pb.ListLedger{Limit: 10}).(*pb.LedgerPage)
	for _, e := range page.Entries {
		if e.Type == EntryUnsettledOnCrash {
			t.Fatalf("a live reservation was voided by the restart: %v", e)
		}
	}
	if w := n.wallet(); w.ReservedNanos != 0 || w.Wallet.BalanceNanos != 10*int64(money.PerUSD)-3000 {
		t.Fatalf("wallet after settling: reserved %d balance %d", w.ReservedNanos, w.Wallet.BalanceNanos)
	}
}

// Rate windows survive a power cut: the calls settled since the last
// windows checkpoint (their usage entries) and the call in flight at the
// cut (its reservation record) count after the restart, so the limit is
// never exceeded across the crash.
func TestRateWindowsSurviveAPowerCut(t *testing.T) {
	n := newLeaseNode(t, 10, 1, money.PerUSD)
	u := EndUserActor(n.pid, n.users[0])
	n.must(u, &pb.SetRateLimits{Limits: &pb.RateLimits{RequestsPerMinute: 4}})
	for i := 0; i < 3; i++ {
		rid := "s" + strconv.Itoa(i)
		n.must(u, &pb.Admit{ReservationId: rid, RequestId: rid, EstimatedTokens: 10, MaxCostNanos: 1000, Provider: "openai"})
		n.must(u, &pb.Settle{ReservationId: rid, RequestId: rid, CostNanos: 500, Tokens: 10, Model: "m", PromptTokens: 5, CompletionTokens: 5})
	}
	n.must(u, &pb.Admit{ReservationId: "open", RequestId: "open", EstimatedTokens: 10, MaxCostNanos: 1000, Provider: "openai"})
	if err := n.store.Sync(); err != nil { // the open call's record is durable
		t.Fatal(err)
	}
	crashed := n.fs.CrashClone(vfs.CrashCloneCfg{})
	n.dir.Close()
	_ = n.store.Close()
	n.open(crashed)
	_, err := n.ask(u, &pb.Admit{ReservationId: "fifth", RequestId: "fifth", EstimatedTokens: 10, MaxCostNanos: 1000, Provider: "openai"})
	if !errors.Is(err, ErrRateLimited) {
		t.Fatalf("a fifth call within the minute after a power cut: %v, want rate_limited (4 per minute, 4 already made)", err)
	}
}

// A settlement whose reservation is not open here (its admission was lost
// with a crashed node) is charged when the edge says the upstream was
// paid: the budget (with markup) and the wallet once, however often the
// edge retries; without the flag it is refused as before. An end-user
// with no budget gets a zero usage entry, so its retry is found too.
func TestLateSettleChargesOnceWhenTheReservationIsUnknown(t *testing.T) {
	n := newLeaseNode(t, 10, 2, money.PerUSD)
	u, bare := EndUserActor(n.pid, n.users[0]), EndUserActor(n.pid, n.users[1])
	n.must(u, &pb.SetBudget{Create: true, Budget: &pb.Budget{AmountNanos: int64(money.PerUSD)}})
	if _, err := n.ask(u, &pb.Settle{ReservationId: "lost", RequestId: "req-lost", CostNanos: 3000}); !errors.Is(err, ErrReservationUnknown) {
		t.Fatalf("settle of an unknown reservation without charge_if_unknown: %v, want reservation_unknown", err)
	}
	late := &pb.Settle{ReservationId: "lost", RequestId: "req-lost", CostNanos: 3000, Tokens: 40, Model: "m",
		PromptTokens: 30, CompletionTokens: 10, ChargeIfUnknown: true}
	var first *pb.Settled
	for i := 0; i < 3; i++ {
		got := n.must(u, late).(*pb.Settled)
		if got.ChargedNanos != 3000 || got.WalletNanos != 3000 || !got.HasBudget {
			t.Fatalf("late settle attempt %d = %v; want 3000 charged to the budget and the wallet", i, got)
		}
		if first == nil {
			first = got
		}
	}
	b := n.must(u, &pb.GetBudget{}).(*pb.BudgetView)
	if b.Budget.BalanceNanos != int64(money.PerUSD)-3000 || b.ReservedNanos != 0 {
		t.Fatalf("budget after three attempts: balance %d reserved %d; want charged once", b.Budget.BalanceNanos, b.ReservedNanos)
	}
	usage := 0
	for _, e := range n.must(u, &pb.ListLedger{Limit: 100}).(*pb.LedgerPage).Entries {
		if e.Type == EntryUsage {
			usage++
			if e.RequestId != "req-lost" || e.AmountNanos != -3000 || e.ProviderCostNanos != 3000 || e.Model != "m" {
				t.Fatalf("usage entry %v; want req-lost, -3000, provider cost 3000", e)
			}
		}
	}
	if usage != 1 {
		t.Fatalf("%d usage entries, want 1", usage)
	}

	for i := 0; i < 2; i++ {
		got := n.must(bare, &pb.Settle{ReservationId: "gone", RequestId: "req-bare", CostNanos: 500, ChargeIfUnknown: true}).(*pb.Settled)
		if got.HasBudget || got.ChargedNanos != 0 {
			t.Fatalf("late settle without a budget = %v; want nothing charged to a budget", got)
		}
		if i == 0 && got.WalletNanos != 500 {
			t.Fatalf("late settle without a budget: wallet %d, want 500", got.WalletNanos)
		}
	}
	w := n.wallet()
	if w.Wallet.BalanceNanos != 10*int64(money.PerUSD)-3500 {
		t.Fatalf("wallet %d; want 10 USD less 3000 and 500, each once", w.Wallet.BalanceNanos)
	}
	calls := map[string]int{}
	for _, e := range n.walletLedger(w.Wallet.BalanceNanos) {
		if e.Type == EntryUsage {
			calls[e.RequestId]++
		}
	}
	if calls["req-lost"] != 1 || calls["req-bare"] != 1 {
		t.Fatalf("wallet usage entries by request %v; want one each", calls)
	}
}
