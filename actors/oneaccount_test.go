package actors

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
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

// accountModel is what an account must do, in plain integers: the model
// every use of [account] is checked against.
type accountModel struct {
	balance, reserved int64
	holds             []int64 // open reservations (calls, or lease credit)
}

// accountUse is one use of the one account type: how its owner reaches
// it. Both run the same random script against the same model.
type accountUse struct {
	name string
	// get returns the account the owner keeps (its budget's, its wallet).
	get func() *account
}

// TestOneAccountTypeForBudgetsAndWallets runs one property test, a random
// script of top-ups, debits, reservations (an admitted call on a budget,
// a lease grant on a wallet), settlements with costs above and below what
// was held, releases, adjustments and notes, against an end-user's budget
// and a platform's wallet, each reached the way its actor reaches it. Both
// are the same [account]: after every step its balance and reservations
// equal the model's, its ledger sums to its balance with every
// balance_after the running sum and dense sequence numbers, and the
// entries name the owner's account.
func TestOneAccountTypeForBudgetsAndWallets(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	eu := newEndUser(&pb.EndUser{Id: "eu_model", PlatformId: "plat_model"})
	eu.budget, _ = openBudget(&eu.money, now, 0, PeriodOneTime, 0, "budget created")
	pa := &platformActor{}
	pa.p = &pb.Platform{Id: "plat_model", Wallet: &pb.Wallet{}}
	pa.wallet = account{platform: "plat_model", name: WalletAccount}
	uses := []accountUse{
		{"budget", func() *account { return &eu.money }},
		{"wallet", func() *account { return &pa.wallet }},
	}
	for _, u := range uses {
		t.Run(u.name, func(t *testing.T) {
			for seed := int64(1); seed <= 20; seed++ {
				runAccountModel(t, u, seed, now)
			}
		})
	}
	// The wallet's account is what the platform record stores.
	pa.syncWallet()
	if pa.p.Wallet.BalanceNanos != int64(pa.wallet.balance) || pa.p.Wallet.LedgerSeq != pa.wallet.seq {
		t.Fatalf("wallet record %v, account balance %d seq %d", pa.p.Wallet, pa.wallet.balance, pa.wallet.seq)
	}
	// And the budget's what the end-user record stores.
	if r := eu.record(); r.Budget.BalanceNanos != int64(eu.money.balance) || r.LedgerSeq != eu.money.seq {
		t.Fatalf("end-user record %v, account balance %d seq %d", r, eu.money.balance, eu.money.seq)
	}
}

func runAccountModel(t *testing.T, u accountUse, seed int64, now time.Time) {
	t.Helper()
	a := u.get()
	rng := rand.New(rand.NewSource(seed))
	m := accountModel{balance: int64(a.balance), reserved: int64(a.reserved)}
	ledger := []*pb.LedgerEntry{}
	base := int64(a.balance) // what earlier seeds left: the script's entries sum from here
	first := a.seq + 1
	usd := func(max int64) int64 { return rng.Int63n(max*int64(money.PerUSD)) + 1 }
	for step := 0; step < 300; step++ {
		now = now.Add(time.Duration(rng.Intn(5000)) * time.Millisecond)
		var e *pb.LedgerEntry
		var err error
		var what string
		switch op := rng.Intn(9); op {
		case 0: // top-up
			amt := usd(50)
			what = fmt.Sprintf("credit %d", amt)
			e, err = a.credit(now, EntryTopup, money.Nanos(amt))
			if err == nil {
				m.balance += amt
			}
		case 1: // API debit: never below what is held
			amt := usd(50)
			what = fmt.Sprintf("debit %d", amt)
			e, err = a.debit(now, money.Nanos(amt))
			if amt <= m.balance-m.reserved {
				if err != nil {
					t.Fatalf("seed %d step %d %s: refused with %d available: %v", seed, step, what, m.balance-m.reserved, err)
				}
				m.balance -= amt
			} else if err == nil {
				t.Fatalf("seed %d step %d %s: accepted with %d available", seed, step, what, m.balance-m.reserved)
			}
		case 2, 3: // hold: an admitted call, a lease grant
			want, least := usd(20), int64(0)
			if rng.Intn(2) == 0 {
				least = want
			}
			what = fmt.Sprintf("reserve %d (least %d)", want, least)
			g, ok := a.reserve(money.Nanos(want), money.Nanos(least))
			free := max(m.balance-m.reserved, 0)
			wantG := min(want, free)
			if wantG < least || wantG == 0 && least > 0 {
				if ok {
					t.Fatalf("seed %d step %d %s: granted %d with %d free", seed, step, what, g, free)
				}
			} else {
				if !ok || int64(g) != wantG {
					t.Fatalf("seed %d step %d %s: got %d %v, want %d", seed, step, what, g, ok, wantG)
				}
				m.reserved += wantG
				m.holds = append(m.holds, wantG)
			}
		case 4, 5: // settle a hold with its actual cost (below or above it)
			if len(m.holds) == 0 {
				continue
			}
			i := rng.Intn(len(m.holds))
			held := m.holds[i]
			cost := rng.Int63n(2*held + 1)
			what = fmt.Sprintf("charge held %d cost %d", held, cost)
			m.holds = append(m.holds[:i], m.holds[i+1:]...)
			m.reserved -= held
			charged := min(cost, max(m.balance-m.reserved, 0))
			m.balance -= charged
			e = a.charge(now, money.Nanos(held), money.Nanos(cost))
			if -e.AmountNanos != charged || e.UnchargedNanos != cost-charged {
				t.Fatalf("seed %d step %d %s: entry %d uncharged %d, want -%d uncharged %d", seed, step, what, e.AmountNanos, e.UnchargedNanos, charged, cost-charged)
			}
		case 6: // release a hold: a failed call, a returned lease
			if len(m.holds) == 0 {
				continue
			}
			i := rng.Intn(len(m.holds))
			what = fmt.Sprintf("unhold %d", m.holds[i])
			a.unhold(money.Nanos(m.holds[i]))
			m.reserved -= m.holds[i]
			m.holds = append(m.holds[:i], m.holds[i+1:]...)
		case 7: // the owner's adjustment: budget set, period reset, auto top-up
			delta := usd(10)
			if rng.Intn(2) == 0 {
				delta = -min(delta, m.balance)
			}
			what = fmt.Sprintf("adjust %d", delta)
			e = a.adjust(now, EntryBudgetSet, money.Nanos(delta))
			m.balance += delta
		case 8: // an event that moves no money
			what = "note"
			e = a.note(now, EntryLeaseReturned)
		}
		if err == nil && e != nil {
			ledger = append(ledger, e)
		}
		if int64(a.balance) != m.balance || int64(a.reserved) != m.reserved {
			t.Fatalf("seed %d step %d %s: balance %d reserved %d, model %d %d", seed, step, what, a.balance, a.reserved, m.balance, m.reserved)
		}
		if a.balance < 0 || a.reserved < 0 {
			t.Fatalf("seed %d step %d %s: balance %d reserved %d", seed, step, what, a.balance, a.reserved)
		}
		sum := base
		for j, e := range ledger {
			sum += e.AmountNanos
			if e.BalanceAfterNanos != sum || e.Seq != first+uint64(j) || e.Account != a.name || e.PlatformId != a.platform {
				t.Fatalf("seed %d step %d %s: entry %d = %v, running sum %d", seed, step, what, j, e, sum)
			}
		}
		if sum != int64(a.balance) {
			t.Fatalf("seed %d step %d %s: ledger sums to %d, balance %d", seed, step, what, sum, a.balance)
		}
	}
	// Give what is still held back, so the next seed starts from no holds.
	for _, h := range m.holds {
		a.unhold(money.Nanos(h))
	}
}

// TestRecordsOfEarlierVersionsLoad writes a platform, its wallet ledger,
// an end-user with a budget, an override and metadata, and its ledger,
// as records the code before the one account type wrote them (the same
// protobuf messages, built field by field here, as bench/cmd/benchseed
// does), and checks that the new actors read them unchanged: the
// end-user record comes back field for field, and new entries continue
// both ledgers, which still sum to their balances.
func TestRecordsOfEarlierVersionsLoad(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := persistence.DefaultConfig()
	cfg.Dir, cfg.FS, cfg.Logger = "/data", vfs.NewMem(), log
	st, err := persistence.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)
	ms := now.UnixMilli()
	pid, uid := "plat_0old", "eu_0old"
	usd := func(n int64) int64 { return n * int64(money.PerUSD) }
	plat := &pb.Platform{Id: pid, Name: "old", CreatedAtMs: ms, UpdatedAtMs: ms,
		Settings: &pb.PlatformSettings{DisplayName: "old", MarkupBps: 2000},
		Wallet:   &pb.Wallet{BalanceNanos: usd(100), LedgerSeq: 1}}
	user := &pb.EndUser{Id: uid, PlatformId: pid, ExternalId: "ext-1", DisplayName: "Old User", MetadataJson: []byte(`{"tier":"gold"}`),
		CreatedAtMs: ms, UpdatedAtMs: ms,
		Budget: &pb.Budget{AmountNanos: usd(10), Period: PeriodMonthly, BalanceNanos: usd(7), IsSuspended: false, LowBalanceNanos: usd(1),
			PeriodStartMs: periodStart(PeriodMonthly, now).UnixMilli(), CreatedAtMs: ms, UpdatedAtMs: ms, LowBalanceNotified: false},
		RateLimits: &pb.RateLimits{RequestsPerMinute: 60},
		LedgerSeq:  2}
	ops := []persistence.Op{
		persistence.Set(persistence.PlatformKey(pid), marshal(plat)),
		persistence.Set(persistence.LedgerKey(pid, WalletAccount, 1), marshal(&pb.LedgerEntry{Id: "le_1", PlatformId: pid, Account: WalletAccount, Seq: 1,
			Type: EntryTopup, AmountNanos: usd(100), BalanceAfterNanos: usd(100), CreatedAtMs: ms})),
		persistence.Set(persistence.EndUserKey(pid, uid), marshal(user)),
		persistence.Set(persistence.ExternalKey(pid, "ext-1"), []byte(uid)),
		persistence.Set(persistence.LedgerKey(pid, uid, 1), marshal(&pb.LedgerEntry{Id: "le_2", PlatformId: pid, Account: uid, Seq: 1,
			Type: EntryBudgetSet, AmountNanos: usd(10), BalanceAfterNanos: usd(10), Reason: "default_budget", CreatedAtMs: ms})),
		persistence.Set(persistence.LedgerKey(pid, uid, 2), marshal(&pb.LedgerEntry{Id: "le_3", PlatformId: pid, Account: uid, Seq: 2,
			Type: EntryUsage, AmountNanos: -usd(3), BalanceAfterNanos: usd(7), CreatedAtMs: ms})),
	}
	if err := st.Commit(ops...); err != nil {
		t.Fatal(err)
	}
	env := NewEnv(st, clock.NewFake(now), log)
	d := NewLocal(env)
	t.Cleanup(func() { d.Close(); st.Close() })
	ask := func(id Identity, msg proto.Message) proto.Message {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := d.Ask(ctx, id, msg)
		if err != nil {
			t.Fatalf("%T: %v", msg, err)
		}
		return res
	}
	euID := EndUserActor(ids.PlatformID(pid), ids.EndUserID(uid))
	if got := ask(euID, &pb.GetEndUser{}).(*pb.EndUserView).EndUser; !proto.Equal(got, user) {
		t.Fatalf("end-user read back as\n%v\nwant\n%v", got, user)
	}
	v := ask(euID, &pb.BudgetTopup{AmountNanos: usd(2)}).(*pb.BudgetView)
	if v.Entry.Seq != 3 || v.Budget.BalanceNanos != usd(9) {
		t.Fatalf("top-up after load: entry #%d balance %d, want #3 and %d", v.Entry.Seq, v.Budget.BalanceNanos, usd(9))
	}
	w := ask(PlatformActor(ids.PlatformID(pid)), &pb.WalletTopup{AmountNanos: usd(5)}).(*pb.WalletView)
	if w.Entry.Seq != 2 || w.Wallet.BalanceNanos != usd(105) {
		t.Fatalf("wallet top-up after load: entry #%d balance %d, want #2 and %d", w.Entry.Seq, w.Wallet.BalanceNanos, usd(105))
	}
	for _, acct := range []struct {
		id      Identity
		balance int64
	}{{euID, usd(9)}, {PlatformActor(ids.PlatformID(pid)), usd(105)}} {
		page := ask(acct.id, &pb.ListLedger{Limit: 100}).(*pb.LedgerPage)
		var sum int64
		for i := len(page.Entries) - 1; i >= 0; i-- {
			sum += page.Entries[i].AmountNanos
			if page.Entries[i].BalanceAfterNanos != sum {
				t.Fatalf("%s: entry #%d balance_after %d, running sum %d", acct.id, page.Entries[i].Seq, page.Entries[i].BalanceAfterNanos, sum)
			}
		}
		if sum != acct.balance {
			t.Fatalf("%s: ledger sums to %d, want %d", acct.id, sum, acct.balance)
		}
	}
	// The record written back is the earlier format: what an earlier
	// version would read.
	raw, err := st.Get(persistence.EndUserKey(pid, uid))
	if err != nil {
		t.Fatal(err)
	}
	var back pb.EndUser
	if err := proto.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	want := proto.Clone(user).(*pb.EndUser)
	want.Budget.BalanceNanos, want.Budget.UpdatedAtMs, want.LedgerSeq = usd(9), ms, 3
	if !proto.Equal(&back, want) {
		t.Fatalf("stored end-user\n%v\nwant\n%v", &back, want)
	}
}
