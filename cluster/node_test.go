package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// testCluster runs gateway nodes in this process: each a real Pebble
// store in its own dir, an actors.Env, memberlist gossip and the
// protoactor remote (TLS) on 127.0.0.1.
type testCluster struct {
	t     testing.TB
	key   []byte
	log   *slog.Logger
	mu    sync.Mutex
	nodes map[string]*testNode // by name; stopped nodes removed
	seq   int
}

type testNode struct {
	name  string
	dir   string
	store *persistence.Store
	env   *actors.Env
	node  *Node
}

// raceChildEnv marks a re-executed test binary that runs the in-process
// cluster tests under the race detector (TestInProcessClusterUnderRace).
const raceChildEnv = "GATEWAY_CLUSTER_RACE_CHILD"

func newTestCluster(t testing.TB) *testCluster {
	if raceEnabled && os.Getenv(raceChildEnv) == "" {
		// Several protoactor remotes in one process race inside the
		// library (grpc's global logger, its gossip state, BlockList;
		// libraries.md §2.6), which fails any test under -race.
		// TestInProcessClusterUnderRace runs these tests in a child and
		// fails on any race whose access is in our code.
		t.Skip("under -race this runs in a child process: see TestInProcessClusterUnderRace")
	}
	key := make([]byte, KeySize)
	_, _ = rand.Read(key)
	c := &testCluster{t: t, key: key, log: slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})), nodes: map[string]*testNode{}}
	t.Cleanup(func() {
		c.mu.Lock()
		nodes := make([]*testNode, 0, len(c.nodes))
		for _, n := range c.nodes {
			nodes = append(nodes, n)
		}
		c.nodes = map[string]*testNode{}
		c.mu.Unlock()
		for _, n := range nodes {
			_ = n.node.Shutdown(context.Background())
			_ = n.store.Close()
		}
	})
	return c
}

// start starts a node and joins it to a running one (if any).
func (c *testCluster) start() *testNode {
	c.t.Helper()
	c.mu.Lock()
	c.seq++
	name := "n" + strconv.Itoa(c.seq)
	var seeds []string
	for _, n := range c.nodes {
		seeds = append(seeds, n.node.GossipAddr())
	}
	c.mu.Unlock()
	scfg := persistence.DefaultConfig()
	scfg.Dir, scfg.Logger = c.t.TempDir(), c.log
	scfg.OnFatal = func(err error) { c.t.Errorf("%s: store failed: %v", name, err) }
	st, err := persistence.Open(scfg)
	if err != nil {
		c.t.Fatal(err)
	}
	env := actors.NewEnv(st, nil, c.log)
	env.Node = name
	env.IdleTimeout = time.Hour
	env.LeaseChunk = 20 * money.PerUSD / 100 // $0.20: small, so leases refill often
	env.LeaseFlushInterval = 20 * time.Millisecond
	gossip := DefaultConfig()
	gossip.Seeds = seeds
	gossip.Debounce = 20 * time.Millisecond
	gossip.LeaveTimeout = time.Second
	n, err := Start(NodeConfig{Gossip: gossip, Key: c.key, Env: env, DrainTimeout: 500 * time.Millisecond})
	if err != nil {
		_ = st.Close()
		c.t.Fatalf("start %s: %v", name, err)
	}
	tn := &testNode{name: name, dir: scfg.Dir, store: st, env: env, node: n}
	c.t.Cleanup(func() { // before TempDir's cleanup (LIFO)
		c.mu.Lock()
		_, running := c.nodes[name]
		delete(c.nodes, name)
		c.mu.Unlock()
		if running {
			_ = n.Shutdown(context.Background())
			_ = st.Close()
		}
	})
	c.mu.Lock()
	c.nodes[name] = tn
	c.mu.Unlock()
	c.settle()
	return tn
}

// leave stops a node gracefully.
func (c *testCluster) leave(n *testNode) {
	c.t.Helper()
	c.mu.Lock()
	delete(c.nodes, n.name)
	c.mu.Unlock()
	if err := n.node.Shutdown(context.Background()); err != nil {
		c.t.Errorf("%s: shutdown: %v", n.name, err)
	}
	_ = n.store.Close()
	c.settle()
}

func (c *testCluster) live() []*testNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*testNode, 0, len(c.nodes))
	for _, n := range c.nodes {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b *testNode) int { return a.node.seqCompare(b.node) })
	return out
}

// settle waits until every live node sees exactly the live nodes.
func (c *testCluster) settle() {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		live := c.live()
		want := make([]string, 0, len(live))
		for _, n := range live {
			want = append(want, n.node.Address())
		}
		slices.Sort(want)
		ok := true
		for _, n := range live {
			if !slices.Equal(n.node.MemberAddresses(), want) {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			for _, n := range live {
				c.t.Logf("%s sees %v", n.name, n.node.MemberAddresses())
			}
			c.t.Fatalf("members did not converge on %v", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *Node) seqCompare(o *Node) int {
	switch {
	case n.self < o.self:
		return -1
	case n.self > o.self:
		return 1
	}
	return 0
}

func ask(t testing.TB, n *testNode, id actors.Identity, msg proto.Message) proto.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res, err := n.node.Ask(ctx, id, msg)
	if err != nil {
		t.Fatalf("%s: %s %T: %v", n.name, id, msg, err)
	}
	return res
}

// residency returns, for each identity active on any live node, the nodes
// where it is active.
func (c *testCluster) residency() map[actors.Identity][]string {
	out := map[actors.Identity][]string{}
	for _, n := range c.live() {
		for _, id := range n.node.local.Residents() {
			out[id] = append(out[id], n.name)
		}
	}
	return out
}

func (c *testCluster) checkUnique(step string) {
	c.t.Helper()
	for id, on := range c.residency() {
		if len(on) > 1 {
			c.t.Errorf("%s: %s active on %v at once", step, id, on)
		}
	}
}

func newPlatform(t testing.TB, n *testNode, walletNanos int64) ids.PlatformID {
	t.Helper()
	p := ids.PlatformID(ids.New(ids.PlatformPrefix, time.Now()))
	ask(t, n, actors.PlatformActor(p), &pb.CreatePlatform{Name: "cluster"})
	ask(t, n, actors.PlatformActor(p), &pb.SetProvider{Config: &pb.ProviderConfig{Provider: "openai", SealedApiKey: []byte("sealed"), Enabled: true}, SetKey: true, SetEnabled: true})
	if walletNanos > 0 {
		ask(t, n, actors.PlatformActor(p), &pb.WalletTopup{AmountNanos: walletNanos})
	}
	return p
}

func newUser(t testing.TB, n *testNode, p ids.PlatformID, ext string, budgetNanos int64) ids.EndUserID {
	t.Helper()
	res := ask(t, n, actors.PlatformActor(p), &pb.CreateEndUser{ExternalId: ext})
	u := ids.EndUserID(res.(*pb.EndUserCreated).EndUser.Id)
	if budgetNanos > 0 {
		ask(t, n, actors.EndUserActor(p, u), &pb.SetBudget{Create: true, Budget: &pb.Budget{AmountNanos: budgetNanos, Period: "never"}})
	}
	return u
}

func balance(t testing.TB, n *testNode, p ids.PlatformID, u ids.EndUserID) int64 {
	t.Helper()
	return ask(t, n, actors.EndUserActor(p, u), &pb.GetBudget{}).(*pb.BudgetView).GetBudget().GetBalanceNanos()
}

// ledgerSum returns the sum of an account's ledger entries and their count.
func ledgerSum(t testing.TB, n *testNode, id actors.Identity, account string) (int64, int) {
	t.Helper()
	var sum int64
	count := 0
	var before uint64
	for {
		page := ask(t, n, id, &pb.ListLedger{Account: account, Limit: 100, BeforeSeq: before}).(*pb.LedgerPage)
		for _, e := range page.Entries {
			sum += e.AmountNanos
			count++
		}
		if page.NextBeforeSeq == 0 {
			return sum, count
		}
		before = page.NextBeforeSeq
	}
}

// TestPlacementUniqueUnderJoinsAndLeaves grows a cluster to three nodes,
// takes nodes away and adds one, with requests flowing from every node
// throughout. At every step no account is active on two nodes at once,
// every node routes every account to the same owner, and every account's
// records moved with it (balances exact).
func TestPlacementUniqueUnderJoinsAndLeaves(tt *testing.T) {
	t := track(tt)
	c := newTestCluster(t)
	defer checksPassed(t)
	a := c.start()
	p := newPlatform(t, a, 0)
	const users = 24
	us := make([]ids.EndUserID, users)
	want := make([]int64, users)
	for i := range us {
		us[i] = newUser(t, a, p, "u"+strconv.Itoa(i), 1_000_000_000)
		want[i] = 1_000_000_000
	}
	var seq atomic.Int64
	// step sends a debit to every user from every live node (while
	// checking residency between requests), then checks balances and
	// owners.
	step := func(name string) {
		t.Helper()
		live := c.live()
		for i, u := range us {
			for _, n := range live {
				k := seq.Add(1)
				ask(t, n, actors.EndUserActor(p, u), &pb.BudgetTopup{AmountNanos: 1000, Debit: true, IdempotencyKey: "k" + strconv.FormatInt(k, 10), RequestHash: []byte{1}})
				want[i] -= 1000
			}
			c.checkUnique(name)
		}
		for i, u := range us {
			id := actors.EndUserActor(p, u)
			owner := live[0].node.Owner(id)
			for _, n := range live {
				if o := n.node.Owner(id); o != owner {
					t.Errorf("%s: %s owned by %s in %s's view, by %s in %s's", name, id, o, n.name, owner, live[0].name)
				}
				if got := balance(t, n, p, u); got != want[i] {
					t.Errorf("%s: %s balance via %s = %d, want %d", name, id, n.name, got, want[i])
				}
			}
		}
		c.checkUnique(name)
		owners := map[string]int{}
		for _, u := range us {
			owners[live[0].node.Owner(actors.EndUserActor(p, u))]++
		}
		t.Logf("%s: %d nodes, accounts per owner %v", name, len(live), owners)
	}
	step("one node")
	b := c.start()
	step("join b")
	c.start()
	step("join c")
	c.leave(b)
	step("b left")
	c.start()
	step("join d")
	c.leave(a)
	step("a left")
	for i, u := range us {
		sum, _ := ledgerSum(t, c.live()[0], actors.EndUserActor(p, u), "")
		if sum != want[i] {
			t.Errorf("%s: ledger sums to %d, balance %d", u, sum, want[i])
		}
	}
}

// TestConcurrentDebitsAndCallsForOneUserOnThreeNodes sends 64 concurrent
// streams of debits and inference calls (admit, settle) for one end-user,
// spread over three nodes: the balance and the ledger are exact.
func TestConcurrentDebitsAndCallsForOneUserOnThreeNodes(tt *testing.T) {
	t := track(tt)
	c := newTestCluster(t)
	defer checksPassed(t)
	a := c.start()
	c.start()
	c.start()
	live := c.live()
	p := newPlatform(t, a, 100*int64(money.PerUSD))
	const start = 10 * int64(money.PerUSD)
	u := newUser(t, a, p, "one", start)
	id := actors.EndUserActor(p, u)
	const workers, per = 64, 8
	var debited, settled atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := live[w%len(live)]
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for i := range per {
				key := fmt.Sprintf("w%d-%d", w, i)
				if (w+i)%2 == 0 {
					msg := &pb.BudgetTopup{AmountNanos: 1_000, Debit: true, IdempotencyKey: key, RequestHash: []byte{1}}
					if _, err := n.node.Ask(ctx, id, msg); err != nil {
						t.Errorf("%s: debit: %v", n.name, err)
						return
					}
					// The same key again, from another node: applied once.
					other := live[(w+1)%len(live)]
					if _, err := other.node.Ask(ctx, id, msg); err != nil {
						t.Errorf("%s: debit replay: %v", other.name, err)
						return
					}
					debited.Add(1_000)
					continue
				}
				if _, err := n.node.Ask(ctx, id, &pb.Admit{ReservationId: key, RequestId: key, MaxCostNanos: 5_000, Provider: "openai"}); err != nil {
					t.Errorf("%s: admit: %v", n.name, err)
					return
				}
				res, err := n.node.Ask(ctx, id, &pb.Settle{ReservationId: key, RequestId: key, CostNanos: 3_000, Model: "m"})
				if err != nil {
					t.Errorf("%s: settle: %v", n.name, err)
					return
				}
				settled.Add(res.(*pb.Settled).ChargedNanos)
			}
		}()
	}
	wg.Wait()
	want := start - debited.Load() - settled.Load()
	for _, n := range live {
		if got := balance(t, n, p, u); got != want {
			t.Errorf("balance via %s = %d, want %d (debited %d, settled %d)", n.name, got, want, debited.Load(), settled.Load())
		}
	}
	sum, entries := ledgerSum(t, a, id, "")
	if sum != want {
		t.Errorf("ledger sums to %d over %d entries, balance %d", sum, entries, want)
	}
	if wantEntries := 1 + workers*per; entries != wantEntries {
		t.Errorf("ledger has %d entries, want %d (budget set + one per operation)", entries, wantEntries)
	}
	c.checkUnique("after load")
}

// TestPlatformWithUsersOnEveryNodeNeverOverspends spends a small wallet
// from end-users owned by all three nodes (each node holds its own wallet
// lease) until the wallet refuses: the wallet never goes below zero, what
// was charged equals what left the wallet, and the wallet's ledger sums to
// its balance.
func TestPlatformWithUsersOnEveryNodeNeverOverspends(tt *testing.T) {
	t := track(tt)
	c := newTestCluster(t)
	defer checksPassed(t)
	a := c.start()
	c.start()
	c.start()
	live := c.live()
	const wallet = int64(money.PerUSD) // $1
	p := newPlatform(t, a, wallet)
	// Users until every node owns at least two.
	var users []ids.EndUserID
	owned := map[string]int{}
	for i := 0; len(owned) < len(live) || slices.ContainsFunc(live, func(n *testNode) bool { return owned[n.node.Address()] < 2 }); i++ {
		u := newUser(t, a, p, "w"+strconv.Itoa(i), 0)
		users = append(users, u)
		owned[a.node.Owner(actors.EndUserActor(p, u))]++
	}
	t.Logf("%d users, per owner %v", len(users), owned)
	var charged atomic.Int64
	var refused atomic.Int64
	var wg sync.WaitGroup
	for w := range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := live[w%len(live)]
			u := users[w%len(users)]
			id := actors.EndUserActor(p, u)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for i := 0; refused.Load() < 200; i++ {
				key := fmt.Sprintf("c%d-%d", w, i)
				if _, err := n.node.Ask(ctx, id, &pb.Admit{ReservationId: key, RequestId: key, MaxCostNanos: 7_000_000, Provider: "openai"}); err != nil {
					if !errors.Is(err, actors.ErrWalletInsufficient) {
						t.Errorf("%s: admit: %v", n.name, err)
						return
					}
					refused.Add(1)
					continue
				}
				res, err := n.node.Ask(ctx, id, &pb.Settle{ReservationId: key, RequestId: key, CostNanos: 6_000_000, Model: "m"})
				if err != nil {
					t.Errorf("%s: settle: %v", n.name, err)
					return
				}
				charged.Add(res.(*pb.Settled).WalletNanos)
			}
		}()
	}
	wg.Wait()
	// Return every node's lease, then read the wallet: every spend folded.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range live {
		n.env.ReturnLeases(ctx)
	}
	v := ask(t, a, actors.PlatformActor(p), &pb.GetWallet{}).(*pb.WalletView)
	bal := v.GetWallet().GetBalanceNanos()
	if bal < 0 {
		t.Errorf("wallet balance %d < 0", bal)
	}
	if got := wallet - bal; got != charged.Load() {
		t.Errorf("wallet fell by %d, calls were charged %d", got, charged.Load())
	}
	if charged.Load() > wallet {
		t.Errorf("charged %d > wallet %d", charged.Load(), wallet)
	}
	if v.LeasedNanos != 0 {
		t.Errorf("%d still leased after every lease was returned", v.LeasedNanos)
	}
	sum, _ := ledgerSum(t, a, actors.PlatformActor(p), actors.WalletAccount)
	if sum != bal {
		t.Errorf("wallet ledger sums to %d, balance %d", sum, bal)
	}
	t.Logf("charged %d of %d, %d refusals", charged.Load(), wallet, refused.Load())
}

// tlog writes log lines to the test's log.
type tlog struct{ t testing.TB }

func (w tlog) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}

var _ io.Writer = tlog{}

// TestInProcessClusterUnderRace runs the three-node tests of this file in
// a child test binary built with -race: each must pass, and no race the
// detector reports may have an access in our code (races with both
// accesses inside protoactor-go are logged, not failed).
func TestInProcessClusterUnderRace(t *testing.T) {
	if !raceEnabled || os.Getenv(raceChildEnv) != "" {
		t.Skip("only under -race, as the parent")
	}
	tests := []string{"TestPlacementUniqueUnderJoinsAndLeaves", "TestConcurrentDebitsAndCallsForOneUserOnThreeNodes", "TestPlatformWithUsersOnEveryNodeNeverOverspends", "TestGracefulLeaveUnderLoadLosesNothing", "TestKeysAuthenticateOnEveryNode", "TestNodeWithAnotherKeyCannotJoinOrTalk", "TestRestartedNodeClosesItsEarlierLeases"}
	cmd := exec.Command(os.Args[0], "-test.run=^("+strings.Join(tests, "|")+")$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), raceChildEnv+"=1")
	out, _ := cmd.CombinedOutput() // exit status 66 when the detector found any race
	report := string(out)
	for _, name := range tests {
		// A test of the child fails as soon as the detector reports any
		// race, ours or the library's; its own checks print this line.
		if !strings.Contains(report, "CHECKS PASSED "+name+"\n") {
			t.Errorf("%s: its checks did not pass in the child", name)
		}
	}
	if ours := racesInOurCode(report); len(ours) > 0 {
		t.Errorf("data races in our code:\n%s", strings.Join(ours, "\n"))
	}
	if t.Failed() {
		t.Logf("child output:\n%s", report)
		return
	}
	t.Logf("%d races reported, all inside protoactor-go", strings.Count(report, "WARNING: DATA RACE"))
}

// tracked is a test's T that remembers whether a check of the test
// failed: under -race, T.Failed also reports races inside protoactor-go.
type tracked struct {
	*testing.T
	failed atomic.Bool
}

func track(t *testing.T) *tracked { return &tracked{T: t} }

func (t *tracked) Errorf(format string, args ...any) {
	t.failed.Store(true)
	t.T.Helper()
	t.T.Errorf(format, args...)
}

func (t *tracked) Fatalf(format string, args ...any) {
	t.failed.Store(true)
	t.T.Helper()
	t.T.Fatalf(format, args...)
}

func (t *tracked) Error(args ...any) {
	t.failed.Store(true)
	t.T.Helper()
	t.T.Error(args...)
}

func (t *tracked) Fatal(args ...any) {
	t.failed.Store(true)
	t.T.Helper()
	t.T.Fatal(args...)
}

// checksPassed prints, in the -race child, that every check of the test
// passed (the race detector fails the test for races inside protoactor-go;
// TestInProcessClusterUnderRace reads this line).
func checksPassed(t *tracked) {
	if os.Getenv(raceChildEnv) != "" && !t.failed.Load() && !t.Skipped() {
		fmt.Printf("CHECKS PASSED %s\n", t.Name())
	}
}

// askRetryMoved is Node.Ask with the edge's retry (edge/retry.go): a
// refusal with actors.ErrMoved was not processed and is sent again.
func askRetryMoved(ctx context.Context, n *Node, id actors.Identity, msg proto.Message) (proto.Message, error) {
	for {
		res, err := n.Ask(ctx, id, msg)
		if err == nil || !errors.Is(err, actors.ErrMoved) {
			return res, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestGracefulLeaveUnderLoadLosesNothing stops one of three nodes while
// debits for a dozen accounts flow from every node: the stopping node's
// edge drains first (no new request reaches it), its actors hand over, and
// no request fails beyond the edge's own retry of "moved"; every
// acknowledged debit is in the balances and ledgers exactly once.
func TestGracefulLeaveUnderLoadLosesNothing(tt *testing.T) {
	t := track(tt)
	c := newTestCluster(t)
	defer checksPassed(t)
	a := c.start()
	b := c.start()
	leaver := c.start()
	p := newPlatform(t, a, 0)
	const users, start = 12, int64(1_000_000_000)
	us := make([]ids.EndUserID, users)
	for i := range us {
		us[i] = newUser(t, a, p, "g"+strconv.Itoa(i), start)
	}
	onLeaver := 0
	for _, u := range us {
		if leaver.node.Owner(actors.EndUserActor(p, u)) == leaver.node.Address() {
			onLeaver++
		}
	}
	t.Logf("%d of %d accounts on the node that leaves", onLeaver, users)
	var acked [users]atomic.Int64
	var leaving atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				nodes := []*testNode{a, b, leaver}
				if leaving.Load() {
					nodes = nodes[:2] // the leaver's edge has drained
				}
				n := nodes[(w+i)%len(nodes)]
				k := (w + i) % users
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				_, err := askRetryMoved(ctx, n.node, actors.EndUserActor(p, us[k]),
					&pb.BudgetTopup{AmountNanos: 1000, Debit: true, IdempotencyKey: fmt.Sprintf("g%d-%d", w, i), RequestHash: []byte{1}})
				cancel()
				if err != nil {
					if n == leaver && errors.Is(err, actors.ErrUnavailable) && leaving.Load() {
						continue // sent before the drain, answered after the stop: not acknowledged, not counted
					}
					t.Errorf("%s: debit: %v", n.name, err)
					return
				}
				acked[k].Add(1000)
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	leaving.Store(true)
	time.Sleep(50 * time.Millisecond) // requests already sent to the leaver finish (its edge drain)
	c.leave(leaver)
	c.checkUnique("after leave")
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	for i, u := range us {
		want := start - acked[i].Load()
		for _, n := range c.live() {
			if got := balance(t, n, p, u); got != want {
				t.Errorf("%s via %s: balance %d, want %d", u, n.name, got, want)
			}
		}
		if sum, _ := ledgerSum(t, a, actors.EndUserActor(p, u), ""); sum != want {
			t.Errorf("%s: ledger sums to %d, want %d", u, sum, want)
		}
	}
	c.checkUnique("end")
}

// TestKeysAuthenticateOnEveryNode: a key minted by a platform actor on one
// node authenticates on every node (each misses its cache and asks the
// cluster), and a revoked key is refused by a node that never saw it.
func TestKeysAuthenticateOnEveryNode(tt *testing.T) {
	t := track(tt)
	c := newTestCluster(t)
	defer checksPassed(t)
	a := c.start()
	c.start()
	c.start()
	p := newPlatform(t, a, 0)
	mint := func() (ids.Digest, string) {
		res := ask(t, a, actors.PlatformActor(p), &pb.CreateAPIKey{Name: "k"}).(*pb.APIKeyCreated)
		var d ids.Digest
		copy(d[:], res.Key.Digest)
		return d, res.Key.Id
	}
	live, _ := mint()
	revoked, revokedID := mint()
	ask(t, a, actors.PlatformActor(p), &pb.RevokeAPIKey{KeyId: revokedID})
	for _, n := range c.live() {
		pr, err := n.env.Auth.Lookup(live)
		if err != nil || pr.Platform != p {
			t.Errorf("%s: live key: %+v, %v", n.name, pr, err)
		}
		if _, err := n.env.Auth.Lookup(revoked); !errors.Is(err, actors.ErrUnknownKey) {
			t.Errorf("%s: revoked key: %v, want ErrUnknownKey", n.name, err)
		}
	}
}

// TestNodeWithAnotherKeyCannotJoinOrTalk: gossip sealed with another key is
// dropped (the join fails), and the remote's TLS refuses a peer whose
// certificate is not derived from the cluster key.
func TestNodeWithAnotherKeyCannotJoinOrTalk(tt *testing.T) {
	t := track(tt)
	c := newTestCluster(t)
	defer checksPassed(t)
	a := c.start()

	other := make([]byte, KeySize)
	_, _ = rand.Read(other)
	scfg := persistence.DefaultConfig()
	scfg.Dir, scfg.Logger = t.TempDir(), c.log
	st, err := persistence.Open(scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	gossip := DefaultConfig()
	gossip.Seeds = []string{a.node.GossipAddr()}
	if n, err := Start(NodeConfig{Gossip: gossip, Key: other, Env: actors.NewEnv(st, nil, c.log)}); err == nil {
		_ = n.Shutdown(context.Background())
		t.Fatal("a node with another cluster key joined")
	}

	// The remote: a TLS client holding another key's certificate is
	// refused by a's gRPC server.
	creds, err := remoteCredentials(other)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tlsDial(a.node.Address(), creds)
	if err == nil {
		conn.Close()
		t.Fatal("a's remote accepted a TLS peer with another key")
	}
	good, _ := remoteCredentials(c.key)
	conn, err = tlsDial(a.node.Address(), good)
	if err != nil {
		t.Fatalf("a's remote refused a peer with the cluster key: %v", err)
	}
	conn.Close()
}

// TestRestartedNodeClosesItsEarlierLeases: a node that dies holding a
// wallet lease with spend records not yet folded comes back on its disk
// (a new run, the same node name): the spend is folded into the wallet
// exactly once and the old lease's unspent credit returned, wherever the
// platform's actor runs. Until then the lease's credit stays held: the
// wallet is never overspent.
func TestRestartedNodeClosesItsEarlierLeases(tt *testing.T) {
	t := track(tt)
	c := newTestCluster(t)
	defer checksPassed(t)
	a := c.start()
	b := c.start()
	const wallet = int64(money.PerUSD)
	var p ids.PlatformID
	for p == "" || a.node.Owner(actors.PlatformActor(p)) != a.node.Address() {
		p = newPlatform(t, a, wallet)
	}
	var u ids.EndUserID
	for u == "" || a.node.Owner(actors.EndUserActor(p, u)) != b.node.Address() {
		u = newUser(t, a, p, "r"+strconv.Itoa(int(seqNow())), 0)
	}
	b.env.LeaseFlushInterval = time.Hour // the spend stays on b's disk
	var charged int64
	for i := range 5 {
		key := fmt.Sprintf("r%d", i)
		ask(t, b, actors.EndUserActor(p, u), &pb.Admit{ReservationId: key, RequestId: key, MaxCostNanos: 2_000_000, Provider: "openai"})
		charged += ask(t, b, actors.EndUserActor(p, u), &pb.Settle{ReservationId: key, RequestId: key, CostNanos: 1_000_000, Model: "m"}).(*pb.Settled).WalletNanos
	}
	before := ask(t, a, actors.PlatformActor(p), &pb.GetWallet{}).(*pb.WalletView)
	if before.LeasedNanos == 0 || before.Wallet.BalanceNanos != wallet {
		t.Fatalf("before the crash: leased %d, balance %d; want a lease and the spend not yet folded", before.LeasedNanos, before.Wallet.BalanceNanos)
	}
	// b dies; its lease's credit stays held.
	c.crash(b)
	mid := ask(t, a, actors.PlatformActor(p), &pb.GetWallet{}).(*pb.WalletView)
	if mid.LeasedNanos != before.LeasedNanos {
		t.Errorf("after the crash: leased %d, want %d still held", mid.LeasedNanos, before.LeasedNanos)
	}
	// b comes back on its disk.
	c.restart(b)
	deadline := time.Now().Add(20 * time.Second)
	for {
		v := ask(t, a, actors.PlatformActor(p), &pb.GetWallet{}).(*pb.WalletView)
		if v.LeasedNanos == 0 {
			if got := v.Wallet.BalanceNanos; got != wallet-charged {
				t.Errorf("balance %d after the old lease closed, want %d (wallet %d - charged %d)", got, wallet-charged, wallet, charged)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old lease was not closed: leased %d", v.LeasedNanos)
		}
		time.Sleep(50 * time.Millisecond)
	}
	sum, _ := ledgerSum(t, a, actors.PlatformActor(p), actors.WalletAccount)
	if bal := wallet - charged; sum != bal {
		t.Errorf("wallet ledger sums to %d, balance %d", sum, bal)
	}
}

var seqCounter atomic.Int64

func seqNow() int64 { return seqCounter.Add(1) }

// crash stops a node without a hand-over; its store is closed as a killed
// process's would be (Pebble's WAL holds what was synced).
func (c *testCluster) crash(n *testNode) {
	c.t.Helper()
	c.mu.Lock()
	delete(c.nodes, n.name)
	c.mu.Unlock()
	n.node.Crash()
	_ = n.store.Close()
	c.settle()
}

// restart starts a crashed node again on its data dir, with its name.
func (c *testCluster) restart(n *testNode) {
	c.t.Helper()
	var seeds []string
	for _, o := range c.live() {
		seeds = append(seeds, o.node.GossipAddr())
	}
	scfg := persistence.DefaultConfig()
	scfg.Dir, scfg.Logger = n.dir, c.log
	st, err := persistence.Open(scfg)
	if err != nil {
		c.t.Fatal(err)
	}
	env := actors.NewEnv(st, nil, c.log)
	env.Node = n.name
	env.IdleTimeout = time.Hour
	env.LeaseChunk = 20 * money.PerUSD / 100
	env.LeaseFlushInterval = 20 * time.Millisecond
	gossip := DefaultConfig()
	gossip.Seeds = seeds
	gossip.Debounce = 20 * time.Millisecond
	gossip.LeaveTimeout = time.Second
	node, err := Start(NodeConfig{Gossip: gossip, Key: c.key, Env: env, DrainTimeout: 500 * time.Millisecond})
	if err != nil {
		_ = st.Close()
		c.t.Fatalf("restart %s: %v", n.name, err)
	}
	n.store, n.env, n.node = st, env, node
	c.mu.Lock()
	c.nodes[n.name] = n
	c.mu.Unlock()
	c.t.Cleanup(func() {
		c.mu.Lock()
		_, running := c.nodes[n.name]
		delete(c.nodes, n.name)
		c.mu.Unlock()
		if running {
			_ = node.Shutdown(context.Background())
			_ = st.Close()
		}
	})
	c.settle()
}
