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
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// budgetNode is one node (in-memory Pebble, real actors) with one
// end-user, for budget API sequences.
type budgetNode struct {
	t   *testing.T
	dir *Local
	id  Identity
}

func newBudgetNode(t *testing.T) *budgetNode {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := persistence.DefaultConfig()
	cfg.Dir, cfg.FS, cfg.Logger = "/data", vfs.NewMem(), log
	cfg.OnFatal = func(err error) { t.Errorf("store failed: %v", err) }
	st, err := persistence.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	env := NewEnv(st, clock.NewFake(time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)), log)
	n := &budgetNode{t: t, dir: NewLocal(env)}
	t.Cleanup(func() { n.dir.Close(); st.Close() })
	pid := ids.PlatformID(ids.New(ids.PlatformPrefix, time.Now()))
	n.must(PlatformActor(pid), &pb.CreatePlatform{Name: "b"})
	res := n.must(PlatformActor(pid), &pb.CreateEndUser{ExternalId: "x"})
	n.id = EndUserActor(pid, ids.EndUserID(res.(*pb.EndUserCreated).EndUser.Id))
	return n
}

func (n *budgetNode) ask(msg proto.Message) (proto.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.dir.Ask(ctx, n.id, msg)
}

func (n *budgetNode) must(id Identity, msg proto.Message) proto.Message {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := n.dir.Ask(ctx, id, msg)
	if err != nil {
		n.t.Fatalf("%T: %v", msg, err)
	}
	return res
}

func (n *budgetNode) do(msg proto.Message) proto.Message {
	n.t.Helper()
	return n.must(n.id, msg)
}

// check asserts balance and reserved, and that the ledger sums to the
// balance with every balance_after the running sum.
func (n *budgetNode) check(what string, balance, reserved money.Nanos) {
	n.t.Helper()
	v := n.do(&pb.GetBudget{}).(*pb.BudgetView)
	if money.Nanos(v.Budget.BalanceNanos) != balance || money.Nanos(v.ReservedNanos) != reserved {
		n.t.Fatalf("%s: balance %s reserved %s, want %s %s", what, money.Nanos(v.Budget.BalanceNanos), money.Nanos(v.ReservedNanos), balance, reserved)
	}
	page := n.do(&pb.ListLedger{Limit: 1000}).(*pb.LedgerPage)
	var sum int64
	for i := len(page.Entries) - 1; i >= 0; i-- { // newest first
		e := page.Entries[i]
		sum += e.AmountNanos
		if e.BalanceAfterNanos != sum {
			n.t.Fatalf("%s: entry #%d %s balance_after %d, running sum %d", what, e.Seq, e.Type, e.BalanceAfterNanos, sum)
		}
	}
	if money.Nanos(sum) != balance {
		n.t.Fatalf("%s: ledger sums to %s, balance %s", what, money.Nanos(sum), balance)
	}
}

const usd1 = money.PerUSD

// A budget deleted and created again starts from its new amount, the
// ledger still sums to the balance (the delete is an entry of its own),
// and a reservation that spanned the delete is released exactly once.
func TestBudgetDeletedAndRecreatedKeepsTheLedgerSummed(t *testing.T) {
	n := newBudgetNode(t)
	n.do(&pb.SetBudget{Create: true, Budget: &pb.Budget{AmountNanos: int64(10 * usd1)}})
	n.do(&pb.BudgetTopup{AmountNanos: int64(3 * usd1), Debit: true})
	n.do(&pb.Admit{ReservationId: "r1", MaxCostNanos: int64(2 * usd1)})
	n.check("before delete", 7*usd1, 2*usd1)
	n.do(&pb.DeleteBudget{})
	if _, err := n.ask(&pb.GetBudget{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetBudget after delete: %v, want not_found", err)
	}
	n.do(&pb.Settle{ReservationId: "r1", CostNanos: int64(usd1)}) // no budget: nothing charged
	n.do(&pb.SetBudget{Create: true, Budget: &pb.Budget{AmountNanos: int64(5 * usd1)}})
	n.check("recreated", 5*usd1, 0)
	if _, err := n.ask(&pb.Admit{ReservationId: "r2", MaxCostNanos: int64(5 * usd1)}); err != nil {
		t.Fatalf("admit the whole new budget: %v", err)
	}
	if _, err := n.ask(&pb.BudgetTopup{AmountNanos: 1, Debit: true}); !errors.Is(err, ErrBudgetExhausted) {
		t.Fatalf("debit with everything reserved: %v, want budget_exhausted", err)
	}
}

// Lowering a budget's amount below what was spent this period takes the
// balance to zero, never below, and the ledger explains the change.
func TestBudgetAmountLoweredBelowSpentStopsAtZero(t *testing.T) {
	n := newBudgetNode(t)
	n.do(&pb.SetBudget{Create: true, Budget: &pb.Budget{AmountNanos: int64(10 * usd1)}})
	n.do(&pb.BudgetTopup{AmountNanos: int64(8 * usd1), Debit: true})
	v := n.do(&pb.SetBudget{Budget: &pb.Budget{AmountNanos: int64(5 * usd1)}, Fields: []string{"amount_usd"}}).(*pb.BudgetView)
	if v.Budget.AmountNanos != int64(5*usd1) || v.Budget.BalanceNanos != 0 {
		t.Fatalf("PATCH amount 10 → 5 after spending 8: amount %d balance %d, want 5 USD and 0", v.Budget.AmountNanos, v.Budget.BalanceNanos)
	}
	n.check("lowered", 0, 0)
	v = n.do(&pb.SetBudget{Budget: &pb.Budget{AmountNanos: int64(7 * usd1)}, Fields: []string{"amount_usd"}}).(*pb.BudgetView)
	if v.Budget.BalanceNanos != int64(2*usd1) {
		t.Fatalf("PATCH amount 5 → 7: balance %d, want 2 USD", v.Budget.BalanceNanos)
	}
	n.check("raised", 2*usd1, 0)
}
