package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	randv2 "math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// leaseNode is one node on a crashable in-memory FS with a platform whose
// openai provider is enabled and whose wallet holds walletUSD.
type leaseNode struct {
	t     *testing.T
	fs    *vfs.MemFS
	store *persistence.Store
	env   *Env
	dir   *Local
	clk   *clock.Fake
	log   *slog.Logger
	chunk money.Nanos
	pid   ids.PlatformID
	users []ids.EndUserID
}

func newLeaseNode(t *testing.T, walletUSD int64, users int, chunk money.Nanos) *leaseNode {
	t.Helper()
	n := &leaseNode{t: t, fs: vfs.NewCrashableMem(), clk: clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)),
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), chunk: chunk}
	n.open(n.fs)
	t.Cleanup(func() { n.dir.Close(); _ = n.store.Close() })
	n.pid = ids.PlatformID(ids.New(ids.PlatformPrefix, n.clk.Now()))
	n.must(PlatformActor(n.pid), &pb.CreatePlatform{Name: "lease"})
	n.must(PlatformActor(n.pid), &pb.SetProvider{Config: &pb.ProviderConfig{Provider: "openai", SealedApiKey: []byte("sealed"), Enabled: true}, SetKey: true, SetEnabled: true})
	if walletUSD > 0 {
		n.must(PlatformActor(n.pid), &pb.WalletTopup{AmountNanos: walletUSD * int64(money.PerUSD)})
	}
	for i := 0; i < users; i++ {
		res := n.must(PlatformActor(n.pid), &pb.CreateEndUser{ExternalId: "u" + strconv.Itoa(i)})
		n.users = append(n.users, ids.EndUserID(res.(*pb.EndUserCreated).EndUser.Id))
	}
	return n
}

func (n *leaseNode) open(fs *vfs.MemFS) {
	n.t.Helper()
	cfg := persistence.DefaultConfig()
	cfg.Dir, cfg.FS, cfg.Logger = "/data", fs, n.log
	cfg.OnFatal = func(err error) { n.t.Errorf("store failed: %v", err) }
	st, err := persistence.Open(cfg)
	if err != nil {
		n.t.Fatalf("open store: %v", err)
	}
	env := NewEnv(st, n.clk, n.log)
	env.IdleTimeout = time.Hour
	env.LeaseChunk = n.chunk
	env.LeaseFlushInterval = time.Hour // flushes are driven by reads in these tests
	n.fs, n.store, n.env, n.dir = fs, st, env, NewLocal(env)
}

func (n *leaseNode) ask(id Identity, msg proto.Message) (proto.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.dir.Ask(ctx, id, msg)
}

func (n *leaseNode) must(id Identity, msg proto.Message) proto.Message {
	n.t.Helper()
	res, err := n.ask(id, msg)
	if err != nil {
		n.t.Fatalf("%T: %v", msg, err)
	}
	return res
}

func (n *leaseNode) wallet() *pb.WalletView {
	n.t.Helper()
	return n.must(PlatformActor(n.pid), &pb.GetWallet{}).(*pb.WalletView)
}

// walletLedger reads the whole wallet ledger, oldest first, and checks
// that it sums to balance with each balance_after the running sum.
func (n *leaseNode) walletLedger(balance int64) []*pb.LedgerEntry {
	n.t.Helper()
	var all []*pb.LedgerEntry
	var before uint64
	for {
		page := n.must(PlatformActor(n.pid), &pb.ListLedger{Limit: 1000, BeforeSeq: before}).(*pb.LedgerPage)
		all = append(page.Entries, all...)
		if page.NextBeforeSeq == 0 {
			break
		}
		before = page.NextBeforeSeq
	}
	// Pages are newest first; reverse into oldest first.
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	var sum int64
	for _, e := range all {
		sum += e.AmountNanos
		if e.BalanceAfterNanos != sum {
			n.t.Fatalf("wallet entry %d (%s %d): balance_after %d, running sum %d", e.Seq, e.Type, e.AmountNanos, e.BalanceAfterNanos, sum)
		}
	}
	if sum != balance {
		n.t.Fatalf("wallet ledger sums to %d, balance is %d", sum, balance)
	}
	return all
}

// TestLeasedCallsNeverOverspendTheWallet runs 64 concurrent callers, each
// its own end-user of one platform, admitting and settling calls against a
// $3 wallet through the node's lease (chunks of $0.40, so refills race with
// admissions). The wallet must end exactly at its top-up minus the sum of
// acknowledged settlements, never below zero, with leases never holding
// more than the balance, and every call refused 402 only when the wallet
// itself could not cover it.
func TestLeasedCallsNeverOverspendTheWallet(t *testing.T) {
	n := newLeaseNode(t, 3, 64, 400*money.PerUSD/1000)
	var settled, admitted, refused atomic.Int64
	stop := make(chan struct{})
	var watch sync.WaitGroup
	watch.Add(1)
	go func() { // the invariant, watched while calls run
		defer watch.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			w := n.wallet()
			if w.LeasedNanos > w.Wallet.BalanceNanos || w.Wallet.BalanceNanos < 0 {
				t.Errorf("leased %d > balance %d", w.LeasedNanos, w.Wallet.BalanceNanos)
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for i, u := range n.users {
		wg.Add(1)
		go func(i int, u ids.EndUserID) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(i)))
			id := EndUserActor(n.pid, u)
			for k := 0; k < 40; k++ {
				rid := fmt.Sprintf("r-%d-%d", i, k)
				worst := int64(1+rng.Intn(50)) * int64(money.PerUSD) / 1000 // $0.001..$0.05
				_, err := n.ask(id, &pb.Admit{ReservationId: rid, RequestId: rid, MaxCostNanos: worst, Provider: "openai"})
				if errors.Is(err, ErrWalletInsufficient) {
					refused.Add(1)
					continue
				}
				if err != nil {
					t.Errorf("admit: %v", err)
					return
				}
				admitted.Add(1)
				if rng.Intn(5) == 0 {
					if _, err := n.ask(id, &pb.Release{ReservationId: rid}); err != nil {
						t.Errorf("release: %v", err)
					}
					continue
				}
				cost := rng.Int63n(worst + 1)
				if _, err := n.ask(id, &pb.Settle{ReservationId: rid, RequestId: rid, CostNanos: cost, Model: "m"}); err != nil {
					t.Errorf("settle: %v", err)
					return
				}
				settled.Add(cost)
			}
		}(i, u)
	}
	wg.Wait()
	close(stop)
	watch.Wait()
	w := n.wallet()
	want := 3*int64(money.PerUSD) - settled.Load()
	if w.Wallet.BalanceNanos != want || w.ReservedNanos != 0 {
		t.Fatalf("wallet balance %d reserved %d, want %d and 0", w.Wallet.BalanceNanos, w.ReservedNanos, want)
	}
	if refused.Load() > 0 && w.Wallet.BalanceNanos >= 50*int64(money.PerUSD)/1000 {
		t.Fatalf("%d calls refused 402 while the wallet still holds %s", refused.Load(), money.Nanos(w.Wallet.BalanceNanos))
	}
	var usage int64
	calls := 0
	for _, e := range n.walletLedger(w.Wallet.BalanceNanos) {
		if e.Type == EntryUsage {
			usage -= e.AmountNanos
			calls++
		}
	}
	if usage != settled.Load() {
		t.Fatalf("wallet usage entries sum to %d, settlements to %d", usage, settled.Load())
	}
	t.Logf("%d admitted, %d refused 402, %d usage entries, balance %s", admitted.Load(), refused.Load(), calls, money.Nanos(w.Wallet.BalanceNanos))
	if admitted.Load() == 0 || refused.Load() == 0 {
		t.Fatalf("the run should both admit and exhaust the wallet: %d admitted, %d refused", admitted.Load(), refused.Load())
	}
}

// TestShortLeaseRefillsInsteadOf402 gives the lease chunks far smaller than
// one call: every admission finds the lease short and must be served by a
// refill, never refused while the wallet has money.
func TestShortLeaseRefillsInsteadOf402(t *testing.T) {
	n := newLeaseNode(t, 1, 8, 1) // chunks of 1 nano-USD
	var wg sync.WaitGroup
	for i, u := range n.users {
		wg.Add(1)
		go func(i int, u ids.EndUserID) {
			defer wg.Done()
			id := EndUserActor(n.pid, u)
			for k := 0; k < 20; k++ {
				rid := fmt.Sprintf("r-%d-%d", i, k)
				if _, err := n.ask(id, &pb.Admit{ReservationId: rid, RequestId: rid, MaxCostNanos: 1_000_000, Provider: "openai"}); err != nil {
					t.Errorf("admit with the wallet holding money: %v", err)
					return
				}
				if _, err := n.ask(id, &pb.Settle{ReservationId: rid, RequestId: rid, CostNanos: 500_000, Model: "m"}); err != nil {
					t.Errorf("settle: %v", err)
					return
				}
			}
		}(i, u)
	}
	wg.Wait()
	w := n.wallet()
	if want := int64(money.PerUSD) - 8*20*500_000; w.Wallet.BalanceNanos != want {
		t.Fatalf("balance %d, want %d", w.Wallet.BalanceNanos, want)
	}
	n.walletLedger(w.Wallet.BalanceNanos)
	// And an admission the wallet cannot cover is 402, after the refill
	// that could not be granted.
	_, err := n.ask(EndUserActor(n.pid, n.users[0]), &pb.Admit{ReservationId: "big", RequestId: "big", MaxCostNanos: 2 * int64(money.PerUSD), Provider: "openai"})
	if !errors.Is(err, ErrWalletInsufficient) {
		t.Fatalf("admit beyond the wallet: %v, want wallet_insufficient", err)
	}
}

// TestWalletLeasesMatchModel is a seeded random walk of wallet top-ups,
// admissions (some refused for the wallet), settlements, releases,
// passivations of the platform and end-user actors, flushes, graceful
// restarts and power cuts (only synced data kept, sometimes part of the
// unsynced tail) against a model of the wallet: after every step the
// balance equals the model's (top-ups minus acknowledged settlements),
// leased credit never exceeds it, the ledger sums to it and holds one
// usage entry per acknowledged settlement, and an admission is refused
// exactly when the wallet cannot cover it.
func TestWalletLeasesMatchModel(t *testing.T) {
	for seed := int64(1); seed <= 4; seed++ {
		t.Run("seed="+strconv.FormatInt(seed, 10), func(t *testing.T) { runLeaseModel(t, seed, 250) })
	}
}

type leaseResv struct {
	user  ids.EndUserID
	worst int64
}

func runLeaseModel(t *testing.T, seed int64, steps int) {
	rng := rand.New(rand.NewSource(seed))
	n := newLeaseNode(t, 0, 3, money.Nanos(1+rng.Intn(3))*money.PerUSD/10)
	var balance, usage, calls int64
	open := map[string]leaseResv{}
	held := func() (s int64) {
		for _, r := range open {
			s += r.worst
		}
		return s
	}
	seq := 0
	for step := 1; step <= steps; step++ {
		var what string
		switch r := rng.Intn(100); {
		case r < 12:
			amt := int64(1+rng.Intn(300)) * int64(money.PerUSD) / 1000
			n.must(PlatformActor(n.pid), &pb.WalletTopup{AmountNanos: amt})
			balance += amt
			what = "topup"
		case r < 45:
			seq++
			rid := "r" + strconv.Itoa(seq)
			u := n.users[rng.Intn(len(n.users))]
			worst := int64(1+rng.Intn(120)) * int64(money.PerUSD) / 1000
			_, err := n.ask(EndUserActor(n.pid, u), &pb.Admit{ReservationId: rid, RequestId: rid, MaxCostNanos: worst, Provider: "openai"})
			fits := worst <= balance-held()
			switch {
			case err == nil && fits:
				open[rid] = leaseResv{user: u, worst: worst}
				what = "admit"
			case errors.Is(err, ErrWalletInsufficient) && !fits:
				what = "admit refused"
			default:
				t.Fatalf("seed %d step %d: admit %d with %d free: err %v", seed, step, worst, balance-held(), err)
			}
		case r < 70, r < 78:
			if len(open) == 0 {
				what = "noop"
				break
			}
			rid, res := anyKey(rng, open)
			delete(open, rid)
			if r < 70 {
				cost := rng.Int63n(res.worst + 1)
				n.must(EndUserActor(n.pid, res.user), &pb.Settle{ReservationId: rid, RequestId: rid, CostNanos: cost, Model: "m"})
				balance -= cost
				usage += cost
				calls++
				what = "settle"
			} else {
				n.must(EndUserActor(n.pid, res.user), &pb.Release{ReservationId: rid})
				what = "release"
			}
		case r < 86:
			id := PlatformActor(n.pid)
			if rng.Intn(2) == 0 {
				id = EndUserActor(n.pid, n.users[rng.Intn(len(n.users))])
			}
			n.passivate(id)
			what = "passivate " + id.String()
		case r < 90:
			n.must(PlatformActor(n.pid), &pb.LeaseFlush{})
			what = "flush"
		case r < 95:
			n.dir.Close()
			if err := n.store.Close(); err != nil {
				t.Fatal(err)
			}
			n.open(n.fs)
			open = map[string]leaseResv{} // voided at activation
			what = "graceful restart"
		default:
			pct := []int{0, 0, 30}[rng.Intn(3)]
			cfg := vfs.CrashCloneCfg{UnsyncedDataPercent: pct}
			if pct > 0 {
				cfg.RNG = randv2.New(randv2.NewPCG(uint64(seed), uint64(step)))
			}
			crashed := n.fs.CrashClone(cfg)
			n.dir.Close() // writes only to the abandoned FS
			_ = n.store.Close()
			n.open(crashed)
			open = map[string]leaseResv{}
			what = "power cut"
		}
		w := n.wallet()
		if w.Wallet.BalanceNanos != balance {
			t.Fatalf("seed %d step %d (%s): balance %d, model %d", seed, step, what, w.Wallet.BalanceNanos, balance)
		}
		if w.LeasedNanos > w.Wallet.BalanceNanos || w.LeasedNanos < 0 {
			t.Fatalf("seed %d step %d (%s): leased %d exceeds the balance %d", seed, step, what, w.LeasedNanos, balance)
		}
		if w.ReservedNanos != held() {
			t.Fatalf("seed %d step %d (%s): reserved %d, model %d", seed, step, what, w.ReservedNanos, held())
		}
		if step%25 == 0 || step == steps {
			var u, c int64
			for _, e := range n.walletLedger(balance) {
				if e.Type == EntryUsage {
					u -= e.AmountNanos
					c++
				}
			}
			if u != usage || c != calls {
				t.Fatalf("seed %d step %d: %d usage entries summing to %d, model %d summing to %d", seed, step, c, u, calls, usage)
			}
		}
	}
}

func anyKey(rng *rand.Rand, m map[string]leaseResv) (string, leaseResv) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// Map order is random but not seeded: sort for a reproducible walk.
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	k := keys[rng.Intn(len(keys))]
	return k, m[k]
}

// passivate delivers the idle timeout to an actor now (it stays if it
// holds reservations or writes in flight).
func (n *leaseNode) passivate(id Identity) {
	s := n.dir.shard(id)
	s.mu.Lock()
	var pid *actor.PID
	if e := s.m[id]; e != nil {
		pid = e.pid
	}
	s.mu.Unlock()
	if pid != nil {
		n.dir.system.Root.Send(pid, &actor.ReceiveTimeout{})
	}
}

// TestCrashClosesTheLeaseAndReturnsItsCredit: a node that took a lease,
// settled calls and crashed (power cut) comes back with every acknowledged
// settlement in the wallet, the old lease closed, its unspent credit
// returned (a lease_returned entry says so) and nothing left leased.
func TestCrashClosesTheLeaseAndReturnsItsCredit(t *testing.T) {
	n := newLeaseNode(t, 10, 2, 2*money.PerUSD)
	u := EndUserActor(n.pid, n.users[0])
	for i := 0; i < 5; i++ {
		rid := "c" + strconv.Itoa(i)
		n.must(u, &pb.Admit{ReservationId: rid, RequestId: rid, MaxCostNanos: 100_000_000, Provider: "openai"})
		n.must(u, &pb.Settle{ReservationId: rid, RequestId: rid, CostNanos: 30_000_000, Model: "m"})
	}
	// One call in flight at the crash: its reservation is voided.
	n.must(u, &pb.Admit{ReservationId: "open", RequestId: "open", MaxCostNanos: 100_000_000, Provider: "openai"})
	if l := n.env.lease(n.pid); l.credit.Load() == 0 {
		t.Fatalf("the lease holds no credit before the crash")
	}
	crashed := n.fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	n.dir.Close()
	_ = n.store.Close()
	n.open(crashed)
	w := n.wallet()
	if want := 10*int64(money.PerUSD) - 5*30_000_000; w.Wallet.BalanceNanos != want || w.LeasedNanos != 0 || w.ReservedNanos != 0 {
		t.Fatalf("after the crash: balance %d leased %d reserved %d, want %d 0 0", w.Wallet.BalanceNanos, w.LeasedNanos, w.ReservedNanos, want)
	}
	entries := n.walletLedger(w.Wallet.BalanceNanos)
	returned := 0
	for _, e := range entries {
		if e.Type == EntryLeaseReturned {
			returned++
		}
	}
	if returned != 1 {
		t.Fatalf("%d lease_returned entries, want 1", returned)
	}
	// And the node leases again.
	n.must(u, &pb.Admit{ReservationId: "after", RequestId: "after", MaxCostNanos: 100_000_000, Provider: "openai"})
	if w := n.wallet(); w.LeasedNanos == 0 || w.ReservedNanos != 100_000_000 {
		t.Fatalf("after a new admission: leased %d reserved %d", w.LeasedNanos, w.ReservedNanos)
	}
}
