package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
	"github.com/assistiv/gateway/persistence/postgres"
)

// Crash take-over (README "Cluster", "Crash"; actors/takeover.go).
//
// Every node records its state in Postgres (postgres.Registry): up once it
// joined, left once it handed its records over at a graceful leave. A node
// recorded up (or recovering) that is not a member has crashed. When this
// node activates an account whose owner, over the members plus the crashed
// nodes, is a crashed node, the crashed node may have acknowledged changes
// that no live copy holds: this node takes the newest of the live copies
// and the Postgres snapshot (by ledger sequence) and makes the account
// provisional (actors.Env.Provision: spendable credit capped at
// TakeoverConfig.Credit), recording the take-over in Postgres.
//
// A crashed node that starts again publishes its tail first
// (postgres.Registry.PublishTail, incarnation + 1); the sweeper of each
// node merges the tail of every provisional account it owns (the actor
// stopped meanwhile, its activation refused so no actor reads half-merged
// records) and gives the hold back; the restarted node joins only once no
// take-over of its previous run is pending (or after RecoverTimeout). An
// account of a node an operator declared lost gets its hold back without
// a tail, and the loss is logged at error level.

// TakeoverConfig turns crash take-over on (NodeConfig.Takeover).
type TakeoverConfig struct {
	// Registry is the shared Postgres record of nodes and take-overs.
	Registry *postgres.Registry
	// Name is this node's name (ASSISTIV_NODE_NAME), unique in the cluster
	// and the same across its restarts.
	Name string
	// Credit is what a provisional account may spend until the crashed
	// node's tail is merged or the node is declared lost (per account).
	Credit money.Nanos
	// RecoverTimeout bounds how long a restarted node waits, before it
	// joins, for the owners to merge its tail. Default 30 s.
	RecoverTimeout time.Duration
	// SweepInterval is how often the sweeper looks for provisional
	// accounts to settle. Default 250 ms.
	SweepInterval time.Duration
}

// takeover is a node's crash take-over state.
type takeover struct {
	cfg     TakeoverConfig
	merging sync.Map // actors.Identity → struct{}: activation refused while its records are merged

	nodesMu sync.Mutex
	nodes   []postgres.NodeState
	nodesAt time.Time

	// Which members this node saw leave its view (and not come back):
	// a node recorded up that left our view has crashed; one we never saw
	// may only be joining (our view lags) unless our view is settled.
	viewMu      sync.Mutex
	lastMembers map[string]bool
	departed    map[string]bool
	memberSince atomic.Int64 // unix nanos this node joined; 0 before

	provisional atomic.Int64 // provisional accounts held here (last sweep)
	takenOver   atomic.Int64 // accounts taken over provisionally by this node
	recovered   atomic.Int64 // provisional accounts settled by a merged tail
	lost        atomic.Int64 // provisional accounts settled by a lost declaration
	lostHeld    atomic.Int64 // nano-USD given back at lost declarations
}

// TakeoverStats are a node's take-over counters (metrics).
type TakeoverStats struct {
	Provisional, TakenOver, Recovered, Lost int64
	LostHeldNanos                           int64
}

// TakeoverStats returns the node's take-over counters (zero without
// take-over).
func (n *Node) TakeoverStats() TakeoverStats {
	if n.tk == nil {
		return TakeoverStats{}
	}
	return TakeoverStats{Provisional: n.tk.provisional.Load(), TakenOver: n.tk.takenOver.Load(),
		Recovered: n.tk.recovered.Load(), Lost: n.tk.lost.Load(), LostHeldNanos: n.tk.lostHeld.Load()}
}

// viewSettle is how long a view must have had to converge before a node
// recorded up that is not in it counts as crashed without having been
// seen to leave: this node's own membership and the other node's record.
const viewSettle = 5 * time.Second

// noteView records who left the view (called by the lookup's writer).
func (t *takeover) noteView(v *view) {
	t.viewMu.Lock()
	defer t.viewMu.Unlock()
	now := make(map[string]bool, len(v.members))
	for _, m := range v.members {
		now[m] = true
		delete(t.departed, m)
	}
	for m := range t.lastMembers {
		if !now[m] {
			if t.departed == nil {
				t.departed = map[string]bool{}
			}
			t.departed[m] = true
		}
	}
	t.lastMembers = now
}

// gone reports whether s, recorded up and not in this node's view, has
// crashed: it left this node's view, or both this node's membership and
// s's record are older than viewSettle (a node that just joined may not
// be in our view yet).
func (t *takeover) gone(s postgres.NodeState) bool {
	t.viewMu.Lock()
	left := t.departed[s.Address]
	t.viewMu.Unlock()
	since := t.memberSince.Load()
	return left || (since != 0 && time.Since(time.Unix(0, since)) > viewSettle && time.Since(s.UpdatedAt) > viewSettle)
}

func (t *takeover) isMerging(id actors.Identity) bool {
	_, ok := t.merging.Load(id)
	return ok
}

// knownNodes returns the registry's node rows, at most maxAge old.
func (t *takeover) knownNodes(ctx context.Context, maxAge time.Duration) ([]postgres.NodeState, error) {
	t.nodesMu.Lock()
	defer t.nodesMu.Unlock()
	if t.nodes != nil && time.Since(t.nodesAt) < maxAge {
		return t.nodes, nil
	}
	nodes, err := t.cfg.Registry.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	t.nodes, t.nodesAt = nodes, time.Now()
	return nodes, nil
}

// crashedOwner returns the crashed node that owned id, if the owner of id
// over the members of v plus the crashed nodes is one, and the
// incarnation whose tail is missing.
func (n *Node) crashedOwner(ctx context.Context, id actors.Identity, v *view) (postgres.NodeState, uint64, bool, error) {
	nodes, err := n.tk.knownNodes(ctx, 500*time.Millisecond)
	if err != nil {
		return postgres.NodeState{}, 0, false, err
	}
	member := make(map[string]bool, len(v.members))
	for _, m := range v.members {
		member[m] = true
	}
	all := append([]string(nil), v.members...)
	down := map[string]postgres.NodeState{}
	for _, s := range nodes {
		if s.Node == n.tk.cfg.Name || s.Address == "" || member[s.Address] {
			continue
		}
		if (s.State == postgres.StateUp || s.State == postgres.StateRecovering) && n.tk.gone(s) {
			down[s.Address] = s
			all = append(all, s.Address)
		}
	}
	if len(down) == 0 {
		return postgres.NodeState{}, 0, false, nil
	}
	s, ok := down[(&view{members: all}).owner(id.String())]
	if !ok {
		return postgres.NodeState{}, 0, false, nil
	}
	inc := s.Incarnation
	if s.State == postgres.StateRecovering {
		inc-- // its previous run's tail is published; that run crashed
	}
	return s, inc, true, nil
}

// takeOver adopts id's newest copy (the live ones in holdings, or the
// snapshot) and makes it provisional for the crashed node d.
func (n *Node) takeOver(ctx context.Context, id actors.Identity, holdings []actors.Holding, d postgres.NodeState, inc uint64) error {
	exact, prefixes := actors.OwnedKeys(id)
	keys, values, err := n.tk.cfg.Registry.Snapshot(ctx, exact, prefixes)
	if err != nil {
		return fmt.Errorf("reading the snapshot: %w", err)
	}
	if err := n.env.AdoptNewest(id, holdings, actors.Holding{Keys: keys, Values: values}); err != nil {
		return err
	}
	held, err := n.env.Provision(id, d.Node, inc, n.tk.cfg.Credit)
	if err != nil {
		return err
	}
	n.tk.takenOver.Add(1)
	n.log.Warn("account taken over from a crashed node: provisional until its tail is recovered or it is declared lost",
		"actor", id.String(), "crashed_node", d.Node, "incarnation", inc, "held_nanos", int64(held), "credit_nanos", int64(n.tk.cfg.Credit))
	return n.tk.cfg.Registry.RecordTakeover(ctx, d.Node, inc, id.String(), n.tk.cfg.Name, int64(held))
}

// awaitRecovery runs before a restarted node joins: it waits until every
// account taken over from its previous (crashed) run has its tail merged,
// at most RecoverTimeout.
func (n *Node) awaitRecovery() {
	ctx, cancel := context.WithTimeout(context.Background(), n.tk.cfg.RecoverTimeout)
	defer cancel()
	self, ok, err := n.tk.cfg.Registry.Node(ctx, n.tk.cfg.Name)
	if err != nil || !ok || self.State != postgres.StateRecovering || self.Incarnation < 2 {
		return
	}
	prev := self.Incarnation - 1
	for {
		pending, err := n.tk.cfg.Registry.PendingTakeovers(ctx, n.tk.cfg.Name, prev)
		if err == nil && pending == 0 {
			n.log.Info("tail of the previous run merged by the accounts' owners", "incarnation", prev)
			n.remirror(ctx, prev)
			return
		}
		select {
		case <-ctx.Done():
			n.log.Error("joining with take-overs of the previous run still pending; their owners merge them when they can",
				"incarnation", prev, "pending", pending, "err", err)
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// remirror writes again the tail records of accounts nobody took over
// while this node was down: it still holds them, and its snapshot rounds
// must copy them (the tail was published past its watermark).
func (n *Node) remirror(ctx context.Context, prev uint64) {
	keys, err := n.tk.cfg.Registry.UntakenTail(ctx, n.tk.cfg.Name, prev)
	if err != nil {
		n.log.Warn("reading the previous run's tail to snapshot it", "err", err)
		return
	}
	var ops []persistence.Op
	for _, k := range keys {
		v, err := n.env.Store.Get(k)
		if err != nil {
			continue // gone since (settled reservation, merged elsewhere)
		}
		ops = append(ops, persistence.Set(k, v))
	}
	if len(ops) == 0 {
		return
	}
	if err := n.env.Store.Commit(ops...); err != nil {
		n.log.Warn("writing the previous run's tail again to snapshot it", "err", err)
	}
}

// sweep runs until the node stops: it settles the provisional accounts
// this node owns whose crashed node came back (tail merged) or was
// declared lost (hold given back).
func (n *Node) sweep() {
	defer n.bg.Done()
	t := time.NewTicker(n.tk.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-n.quit:
			return
		case <-t.C:
		}
		marks, err := n.env.Provisionals()
		if err != nil {
			n.log.Warn("listing provisional accounts", "err", err)
			continue
		}
		n.tk.provisional.Store(int64(len(marks)))
		if len(marks) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 4*n.timeout)
		nodes, err := n.tk.knownNodes(ctx, 0)
		if err != nil {
			cancel()
			n.log.Warn("reading the cluster's nodes", "err", err)
			continue
		}
		byName := make(map[string]postgres.NodeState, len(nodes))
		for _, s := range nodes {
			byName[s.Node] = s
		}
		members := map[string]bool{}
		for _, m := range n.lookup.Members() {
			members[m] = true
		}
		for id, pv := range marks {
			if n.leaving.Load() || n.lookup.Owner(id.String()) != n.self {
				continue // a stale copy, or the account moves: its owner settles it
			}
			s := byName[pv.Node]
			switch {
			case s.State == postgres.StateLost:
				n.settle(ctx, id, pv, settleLost)
			case s.Incarnation > pv.Incarnation:
				n.settle(ctx, id, pv, settleRecovered)
			case s.State == postgres.StateUp && s.Incarnation == pv.Incarnation && members[s.Address]:
				// A false alarm: the node was only missing from the
				// taker's view; it never stopped, so nothing of it is
				// missing.
				n.settle(ctx, id, pv, settleAlive)
			}
		}
		cancel()
	}
}

// How a provisional account is settled.
const (
	settleRecovered = "recovered" // the crashed run's tail merged in
	settleLost      = "lost"      // declared lost: no tail
	settleAlive     = "alive"     // a false alarm: nothing is missing
)

// settle ends id's provisional state (how: settleRecovered, settleLost or
// settleAlive).
func (n *Node) settle(ctx context.Context, id actors.Identity, pv actors.Provisional, how string) {
	recovered := how == settleRecovered
	n.tk.merging.Store(id, struct{}{})
	defer n.tk.merging.Delete(id)
	reg := n.tk.cfg.Registry
	var items []actors.TailItem
	if recovered {
		keys, values, err := reg.Tail(ctx, pv.Node, pv.Incarnation, string(id.Platform), actors.LedgerAccount(id))
		if err != nil {
			n.log.Warn("reading a recovered node's tail", "actor", id.String(), "node", pv.Node, "err", err)
			return
		}
		for i := range keys {
			items = append(items, actors.TailItem{Key: keys[i], Value: values[i]})
		}
	}
	if err := n.local.Evict(ctx, id); err != nil {
		n.log.Warn("stopping a provisional account to settle it", "actor", id.String(), "err", err)
		return
	}
	if recovered {
		res, err := n.env.MergeTail(id, pv.Node, items)
		if err != nil {
			n.log.Error("merging a recovered node's tail", "actor", id.String(), "node", pv.Node, "err", err)
			return
		}
		n.tk.recovered.Add(1)
		n.log.Info("recovered node's tail merged", "actor", id.String(), "node", pv.Node, "incarnation", pv.Incarnation,
			"applied", res.Applied, "present", res.Present, "unsettled", res.Unsettled, "released_nanos", int64(res.Released))
		if err := reg.ReleaseTakeover(ctx, pv.Node, pv.Incarnation, id.String(), how, res.Applied); err != nil {
			n.log.Warn("recording a take-over's end", "actor", id.String(), "err", err)
		}
		return
	}
	held, _, err := n.env.ReleaseProvisional(id, pv.Node, how)
	if err != nil {
		n.log.Error("releasing a take-over hold", "actor", id.String(), "node", pv.Node, "err", err)
		return
	}
	if how == settleLost {
		n.tk.lost.Add(1)
		n.tk.lostHeld.Add(int64(held))
		n.log.Error("account of a node declared lost: what that node acknowledged after its last snapshot is gone; hold given back",
			"actor", id.String(), "node", pv.Node, "incarnation", pv.Incarnation, "released_nanos", int64(held))
	} else {
		n.log.Info("take-over of a node that never stopped (it was missing from this node's view) ended", "actor", id.String(), "node", pv.Node)
	}
	if err := reg.ReleaseTakeover(ctx, pv.Node, pv.Incarnation, id.String(), how, 0); err != nil {
		n.log.Warn("recording a take-over's end", "actor", id.String(), "err", err)
	}
}

// keyFallback reads an API key that no live node holds from the Postgres
// snapshot, only while some node has crashed (so that unknown keys sent
// at random never reach Postgres otherwise): the account of a crashed
// node's key is activated (taken over) by the request it authenticates.
func (n *Node) keyFallback(ctx context.Context, d ids.Digest) (*pb.APIKey, error) {
	if n.tk == nil {
		return nil, nil
	}
	nodes, err := n.tk.knownNodes(ctx, 500*time.Millisecond)
	if err != nil {
		return nil, err
	}
	member := map[string]bool{}
	for _, m := range n.lookup.Members() {
		member[m] = true
	}
	crashed := false
	for _, s := range nodes {
		if s.Node != n.tk.cfg.Name && s.Address != "" && !member[s.Address] &&
			(s.State == postgres.StateUp || s.State == postgres.StateRecovering) && n.tk.gone(s) {
			crashed = true
			break
		}
	}
	if !crashed {
		return nil, nil
	}
	_, values, err := n.tk.cfg.Registry.Snapshot(ctx, [][]byte{persistence.APIKeyKey(d[:])}, nil)
	if err != nil || len(values) == 0 {
		return nil, err
	}
	var k pb.APIKey
	if err := proto.Unmarshal(values[0], &k); err != nil {
		return nil, err
	}
	return &k, nil
}
