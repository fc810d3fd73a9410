package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/cluster/wire"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence/postgres"
)

// Kinds every member hosts. They are registered with protoactor so that a
// member advertises them (a node without kinds is a client and owns
// nothing); activation itself is the node's [actors.Local], reached through
// [Lookup], so protoactor never spawns these props.
const (
	KindEndUser  = "enduser"
	KindPlatform = "platform"
)

// holderName is the name of each node's holder actor: it activates actors
// for senders on other nodes and surrenders records when ownership moves.
const holderName = "gw-holder"

var errNoMembers = errors.New("cluster: no members")

// NodeConfig configures a [Node].
type NodeConfig struct {
	// Gossip configures membership (memberlist).
	Gossip Config
	// RemoteHost and RemotePort are where the protoactor remote (gRPC)
	// listens. Port 0 picks a free port.
	RemoteHost string
	RemotePort int
	// RemoteAdvertise, when set, is the host:port other nodes dial.
	RemoteAdvertise string
	// Key is the cluster key (32 bytes): memberlist's keyring and the
	// remote's TLS (see tls.go). Required.
	Key []byte
	// Env is this node's actor environment; Start installs the cluster
	// hooks on it.
	Env *actors.Env
	// Log receives the node's log lines (default: Env.Log).
	Log *slog.Logger
	// DrainTimeout bounds a graceful leave's hand-over: how long the node
	// keeps answering other nodes' requests for the records of its former
	// actors after leaving the member set. Default 3 s.
	DrainTimeout time.Duration
	// Takeover, when set, turns crash take-over on (takeover.go).
	Takeover *TakeoverConfig
}

// Node is one gateway node in a cluster: memberlist membership, the
// protoactor remote and cluster, our identity lookup, and the cluster
// implementation of [actors.Directory]. Its methods are safe for concurrent
// use.
type Node struct {
	cfg      NodeConfig
	env      *actors.Env
	local    *actors.Local
	system   *actor.ActorSystem
	cluster  *protocluster.Cluster
	provider *Provider
	lookup   *Lookup
	log      *slog.Logger
	self     string
	timeout  time.Duration
	peerNode *actors.Node // answers other nodes' queries and broadcasts (peers.go)
	peers    *Peers
	tk       *takeover // nil: no crash take-over

	leaving atomic.Bool
	stopped atomic.Bool

	quit chan struct{}  // closed when the node stops
	bg   sync.WaitGroup // background goroutines (closeEarlierLeases)

	fetchedMu sync.Mutex
	fetched   map[actors.Identity]uint64 // view version of this node's last take-over of each actor
	rebalMu   sync.Mutex                 // one rebalance at a time
}

var _ actors.Directory = (*Node)(nil)

// Start starts a node: the actor system with remote (TLS), the holder
// actor, the cluster with our lookup, and joins the gossip seeds. On error
// nothing keeps running.
func Start(cfg NodeConfig) (n *Node, err error) {
	if cfg.Env == nil {
		return nil, errors.New("cluster: NodeConfig.Env is required")
	}
	if len(cfg.Key) != KeySize {
		return nil, fmt.Errorf("cluster: the cluster key must be %d bytes", KeySize)
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 3 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = cfg.Env.Log
	}
	cfg.Gossip.SecretKey = cfg.Key
	provider, err := New(cfg.Gossip)
	if err != nil {
		return nil, err
	}
	creds, err := remoteCredentials(cfg.Key)
	if err != nil {
		return nil, err
	}
	n = &Node{cfg: cfg, env: cfg.Env, provider: provider, log: cfg.Log, timeout: cfg.Env.AskTimeout,
		fetched: make(map[actors.Identity]uint64), quit: make(chan struct{})}
	n.local = actors.NewLocal(cfg.Env)
	n.system = n.local.System()
	cfg.Env.SetCluster(actors.ClusterHooks{Router: n, Fetch: n.fetch, KeyFallback: n.keyFallback})
	if tc := cfg.Takeover; tc != nil {
		if tc.Registry == nil || tc.Name == "" {
			return nil, errors.New("cluster: Takeover needs a Registry and a Name")
		}
		if tc.RecoverTimeout == 0 {
			tc.RecoverTimeout = 30 * time.Second
		}
		if tc.SweepInterval == 0 {
			tc.SweepInterval = 250 * time.Millisecond
		}
		n.tk = &takeover{cfg: *tc}
	}
	n.local.SetGuard(func(id actors.Identity) bool {
		return !n.leaving.Load() && n.lookup.Owner(id.String()) == n.self && (n.tk == nil || !n.tk.isMerging(id))
	})

	opts := []remote.ConfigOption{
		remote.WithDialOptions(grpc.WithTransportCredentials(creds)),
		remote.WithServerOptions(grpc.Creds(creds)),
	}
	if cfg.RemoteAdvertise != "" {
		opts = append(opts, remote.WithAdvertisedHost(cfg.RemoteAdvertise))
	}
	host := cfg.RemoteHost
	if host == "" {
		host = "127.0.0.1"
	}
	port := cfg.RemotePort
	if port == 0 {
		// protoactor needs the port before the server starts (it names
		// PIDs with it): pick a free one.
		if port, err = freePort(host); err != nil {
			return nil, err
		}
	}
	rc := remote.Configure(host, port, opts...)
	kinds := []*protocluster.Kind{
		protocluster.NewKind(KindEndUser, actor.PropsFromFunc(func(actor.Context) {})),
		protocluster.NewKind(KindPlatform, actor.PropsFromFunc(func(actor.Context) {})),
	}
	n.self = rc.Address()
	if cfg.RemoteAdvertise != "" {
		n.self = cfg.RemoteAdvertise
	}
	n.lookup = newLookup(n.self, n.resolve)
	n.lookup.onChange = func(v *view) {
		if n.tk != nil {
			n.tk.noteView(v)
		}
		go n.rebalance()
	}
	cc := protocluster.Configure("assistiv", provider, n.lookup, rc,
		protocluster.WithKinds(kinds...), protocluster.WithRequestTimeout(n.timeout))
	n.cluster = protocluster.New(n.system, cc)
	// Reads across nodes and coherent caches (peers.go): set up before
	// any actor can start here.
	n.peerNode = actors.NewNode(cfg.Env)
	if n.peers, err = NewPeersAs(n.system, n.peerNode, n.self, n.MemberAddresses); err != nil {
		n.local.Close()
		return nil, err
	}
	n.peers.SetLiveness(provider.listedAddrs, 0)
	cfg.Env.Owns = func(id actors.Identity) bool { return n.lookup.Owner(id.String()) == n.self }
	cfg.Env.SetPeers(n.peers, 0)
	if n.tk != nil {
		n.awaitRecovery() // a restarted node joins once its tail is merged
	}
	if err := startMember(n.cluster); err != nil {
		_ = provider.Shutdown(false)
		n.cluster.Gossip.Shutdown()
		if n.cluster.Remote != nil {
			n.cluster.Remote.Shutdown(false)
		}
		n.local.Close()
		return nil, err
	}
	if _, err := n.system.Root.SpawnNamed(actor.PropsFromFunc(n.receiveHolder), holderName); err != nil {
		_ = n.Shutdown(context.Background())
		return nil, err
	}
	if n.tk != nil {
		n.tk.memberSince.Store(time.Now().UnixNano())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := n.tk.cfg.Registry.SetState(ctx, n.tk.cfg.Name, n.self, postgres.StateUp)
		cancel()
		if err != nil {
			_ = n.Shutdown(context.Background())
			return nil, fmt.Errorf("cluster: recording this node up: %w", err)
		}
		n.bg.Add(1)
		go n.sweep()
	}
	n.bg.Add(1)
	go n.closeEarlierLeases()
	return n, nil
}

// closeEarlierLeases closes the wallet leases of this node's earlier runs
// (actors.Env.CloseEarlierLeases), retrying every 2 s while a platform is
// unreachable, for at most 5 minutes or until the node stops.
func (n *Node) closeEarlierLeases() {
	defer n.bg.Done()
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); {
		ctx, cancel := context.WithTimeout(context.Background(), n.timeout)
		closed, err := n.env.CloseEarlierLeases(ctx)
		cancel()
		if closed > 0 {
			n.log.Info("closed wallet leases of earlier runs", "leases", closed)
		}
		if err == nil {
			return
		}
		n.log.Warn("closing wallet leases of earlier runs; will retry", "err", err)
		select {
		case <-n.quit:
			return
		case <-time.After(2 * time.Second):
		}
	}
}

// startMember runs protoactor's StartMember, which panics when the
// provider fails (for example a seed that does not answer).
func startMember(c *protocluster.Cluster) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cluster: start member: %v", r)
		}
	}()
	c.StartMember()
	return nil
}

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Address returns this node's remote address (host:port).
func (n *Node) Address() string { return n.self }

// GossipAddr returns this node's gossip address, a seed for other nodes.
func (n *Node) GossipAddr() string { return n.provider.GossipAddr() }

// MemberAddresses returns the remote addresses (host:port) of the current
// members, this node included, sorted: where a named actor on each member
// can be reached (PID{Address: a, Id: name}).
func (n *Node) MemberAddresses() []string { return n.lookup.Members() }

// System returns the node's actor system (remote enabled).
func (n *Node) System() *actor.ActorSystem { return n.system }

// Local returns the node's local directory (the actors it runs).
func (n *Node) Local() *actors.Local { return n.local }

// Owner returns the remote address of the node that owns id in this
// node's view ("" when there is no member).
func (n *Node) Owner(id actors.Identity) string { return n.lookup.Owner(id.String()) }

func clusterIdentity(id actors.Identity) *protocluster.ClusterIdentity {
	kind := KindPlatform
	if id.Kind == actors.KindEndUser {
		kind = KindEndUser
	}
	return &protocluster.ClusterIdentity{Identity: id.String(), Kind: kind}
}

func toWire(id actors.Identity) *wire.Ident {
	return &wire.Ident{Kind: uint32(id.Kind), Platform: string(id.Platform), EndUser: string(id.EndUser)}
}

func fromWire(w *wire.Ident) (actors.Identity, error) {
	id := actors.Identity{Kind: actors.Kind(w.GetKind()), Platform: ids.PlatformID(w.GetPlatform()), EndUser: ids.EndUserID(w.GetEndUser())}
	switch {
	case id.Platform == "":
		return id, errors.New("cluster: identity without platform")
	case id.Kind == actors.KindPlatform && id.EndUser == "":
	case id.Kind == actors.KindEndUser && id.EndUser != "":
	default:
		return id, fmt.Errorf("cluster: bad identity kind %d", id.Kind)
	}
	return id, nil
}

// errMoved marks an Activate answered "moved".
var errMoved = errors.New("cluster: moved")

// resolve returns the PID of ci on owner (the lookup's resolver).
func (n *Node) resolve(owner string, ci *protocluster.ClusterIdentity) (*actor.PID, error) {
	id, err := parseIdentity(ci.Identity)
	if err != nil {
		return nil, err
	}
	if owner == n.self {
		return n.local.PID(id)
	}
	res, err := n.system.Root.RequestFuture(actor.NewPID(owner, holderName), &wire.Activate{Id: toWire(id)}, n.timeout).Result()
	if err != nil {
		return nil, err
	}
	a, ok := res.(*wire.Activated)
	switch {
	case !ok:
		return nil, fmt.Errorf("cluster: %s answered activation with %T", owner, res)
	case a.Moved:
		return nil, errMoved
	case a.Error != "":
		return nil, errors.New(a.Error)
	}
	return actor.NewPID(a.Address, a.PidId), nil
}

// parseIdentity inverts actors.Identity.String ("plat/<p>" or
// "eu/<p>/<u>"; ids contain no '/').
func parseIdentity(s string) (actors.Identity, error) {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	parts = append(parts, s[start:])
	switch {
	case len(parts) == 2 && parts[0] == "plat" && parts[1] != "":
		return actors.PlatformActor(ids.PlatformID(parts[1])), nil
	case len(parts) == 3 && parts[0] == "eu" && parts[1] != "" && parts[2] != "":
		return actors.EndUserActor(ids.PlatformID(parts[1]), ids.EndUserID(parts[2])), nil
	}
	return actors.Identity{}, fmt.Errorf("cluster: bad identity %q", s)
}

// Ask implements [actors.Directory]. An actor this node owns is asked
// through the local directory: an in-process call, no serialization. An
// actor owned by another node gets the message through the remote, once:
// a message that may have been processed (a timeout) is never sent again,
// and only refusals that prove it was not (dead letter, passivated, moved)
// are retried, after the owner is looked up afresh.
func (n *Node) Ask(ctx context.Context, id actors.Identity, msg proto.Message) (proto.Message, error) {
	ci := clusterIdentity(id)
	backoff := 20 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if attempt >= 8 {
				return nil, &actors.Error{Code: actors.ErrMoved.Code, Message: fmt.Sprintf("%s: ownership is moving; retry", id)}
			}
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			backoff = min(2*backoff, 500*time.Millisecond)
		}
		if n.stopped.Load() {
			return nil, &actors.Error{Code: actors.ErrUnavailable.Code, Message: "the node is stopped"}
		}
		owner := n.lookup.Owner(ci.Identity)
		if owner == "" {
			return nil, &actors.Error{Code: actors.ErrUnavailable.Code, Message: "the cluster has no members"}
		}
		if owner == n.self {
			res, err := n.local.Ask(ctx, id, msg)
			if err != nil && (actors.IsPassivated(err) || errors.Is(err, actors.ErrMoved)) {
				continue // ownership moved under us: look again
			}
			return res, err
		}
		pid, err := n.lookup.get(ci)
		if err != nil {
			if errors.Is(err, errMoved) || errors.Is(err, actor.ErrTimeout) || errors.Is(err, actor.ErrDeadLetter) {
				continue // the owner's view differs from ours, or it is going; look again
			}
			return nil, &actors.Error{Code: actors.ErrUnavailable.Code, Message: fmt.Sprintf("%s: %v", id, err)}
		}
		timeout := n.timeout
		if dl, ok := ctx.Deadline(); ok {
			timeout = min(timeout, time.Until(dl))
		}
		if timeout <= 0 {
			return nil, ctx.Err()
		}
		res, err := n.system.Root.RequestFuture(pid, msg, timeout).Result()
		if err != nil {
			if errors.Is(err, actor.ErrDeadLetter) {
				n.lookup.RemovePid(ci, pid)
				continue
			}
			return nil, &actors.Error{Code: actors.ErrUnavailable.Code, Message: fmt.Sprintf("%s did not answer: %v", id, err)}
		}
		switch r := res.(type) {
		case *actor.DeadLetterResponse:
			n.lookup.RemovePid(ci, pid)
			continue
		case *pb.Failure:
			e := actors.FailureError(r)
			if actors.IsPassivated(e) || errors.Is(e, actors.ErrMoved) {
				n.lookup.RemovePid(ci, pid)
				continue
			}
			return nil, e
		case proto.Message:
			return r, nil
		default:
			return nil, fmt.Errorf("cluster: %s answered a %T", id, res)
		}
	}
}

// receiveHolder is the holder actor: Activate and Surrender from other
// nodes. Surrender waits for an actor to stop and reads the store, so it
// runs on its own goroutine and answers with Send.
func (n *Node) receiveHolder(c actor.Context) {
	switch m := c.Message().(type) {
	case *wire.Activate:
		id, err := fromWire(m.Id)
		switch {
		case err != nil:
			c.Respond(&wire.Activated{Error: err.Error()})
		default:
			// The guard activates only what this node owns (and not while
			// leaving); an actor still draining here is answered, so the
			// calls it admitted settle where they were admitted.
			pid, err := n.local.PID(id)
			if errors.Is(err, actors.ErrMoved) {
				c.Respond(&wire.Activated{Moved: true})
				return
			}
			if err != nil {
				c.Respond(&wire.Activated{Error: err.Error()})
				return
			}
			c.Respond(&wire.Activated{Address: pid.Address, PidId: pid.Id})
		}
	case *wire.Surrender:
		sender := c.Sender()
		go func() {
			n.system.Root.Send(sender, n.surrender(m))
		}()
	case *wire.Take:
		sender := c.Sender()
		go func() {
			n.system.Root.Send(sender, n.take(m))
		}()
	}
}

// take adopts records a leaving node hands over (if newer than ours).
func (n *Node) take(m *wire.Take) *wire.Holding {
	id, err := fromWire(m.Id)
	if err != nil {
		return &wire.Holding{Error: err.Error()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.timeout)
	defer cancel()
	if err := n.local.Evict(ctx, id); err != nil {
		return &wire.Holding{Error: "stopping the actor: " + err.Error()}
	}
	h := m.GetHolding()
	if err := n.env.Adopt(id, []actors.Holding{{Epoch: h.GetEpoch(), Keys: h.GetKeys(), Values: h.GetValues()}}); err != nil {
		return &wire.Holding{Error: err.Error()}
	}
	return &wire.Holding{}
}

// handOver sends every actor's records this node holds to the member that
// owns it once this node is gone (a graceful leave, after every actor here
// stopped and before the node leaves the member set, so the next owner has
// the newest copy before the first request reaches it).
func (n *Node) handOver(ctx context.Context) {
	held, err := n.env.Held()
	if err != nil {
		n.log.Error("listing held records at leave", "err", err)
		return
	}
	after := n.lookup.view.Load() // leave() already removed this node
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, id := range held {
		owner := after.owner(id.String())
		if owner == "" {
			return // the last node: nobody to hand over to
		}
		h, err := n.env.Export(id)
		if err != nil {
			n.log.Error("exporting records at leave", "actor", id.String(), "err", err)
			failed.Add(1)
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			res, err := n.system.Root.RequestFuture(actor.NewPID(owner, holderName),
				&wire.Take{Id: toWire(id), Holding: &wire.Holding{Epoch: h.Epoch, Keys: h.Keys, Values: h.Values}}, n.timeout).Result()
			if err == nil {
				if r, ok := res.(*wire.Holding); !ok || r.Error != "" {
					err = fmt.Errorf("%v", res)
				}
			}
			if err != nil {
				failed.Add(1)
				n.log.Warn("handing records over at leave", "actor", id.String(), "to", owner, "err", err)
				return
			}
			_ = n.env.MarkSurrendered(id)
		}()
	}
	wg.Wait()
	n.log.Info("records handed over at leave", "actors", len(held), "failed", failed.Load())
}

// surrender stops this node's activation of an actor (if any) and returns
// this node's copy of its records.
func (n *Node) surrender(m *wire.Surrender) *wire.Holding {
	id, err := fromWire(m.Id)
	if err != nil {
		return &wire.Holding{Error: err.Error()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.timeout)
	defer cancel()
	if err := n.local.Evict(ctx, id); err != nil {
		return &wire.Holding{Error: "stopping the actor: " + err.Error()}
	}
	defer func() { _ = n.env.MarkSurrendered(id) }()
	n.fetchedMu.Lock()
	delete(n.fetched, id) // our copy is no longer the newest once taken
	n.fetchedMu.Unlock()
	h, err := n.env.Export(id)
	if err != nil {
		return &wire.Holding{Error: err.Error()}
	}
	return &wire.Holding{Epoch: h.Epoch, Keys: h.Keys, Values: h.Values}
}

// fetch is the actors' fetch hook: before an actor activates here, take
// over the newest copy of its records from the other members (each stops
// its own activation first). It is skipped when this node already took the
// actor over under the current member set: no other node can have owned it
// since.
func (n *Node) fetch(ctx context.Context, id actors.Identity) error {
	v := n.lookup.view.Load()
	n.fetchedMu.Lock()
	ver, ok := n.fetched[id]
	n.fetchedMu.Unlock()
	if ok && ver == v.version {
		return nil
	}
	others := make([]string, 0, len(v.members))
	for _, m := range v.members {
		if m != n.self {
			others = append(others, m)
		}
	}
	holdings := make([]actors.Holding, len(others))
	errs := make([]error, len(others))
	surrender := func(i int, m string, timeout time.Duration) {
		res, err := n.system.Root.RequestFuture(actor.NewPID(m, holderName), &wire.Surrender{Id: toWire(id)}, timeout).Result()
		if err != nil {
			errs[i] = fmt.Errorf("%s: %w", m, err)
			return
		}
		h, ok := res.(*wire.Holding)
		switch {
		case !ok:
			errs[i] = fmt.Errorf("%s answered %T", m, res)
		case h.Error != "":
			errs[i] = fmt.Errorf("%s: %s", m, h.Error)
		default:
			errs[i], holdings[i] = nil, actors.Holding{Epoch: h.Epoch, Keys: h.Keys, Values: h.Values}
		}
	}
	var wg sync.WaitGroup
	for i, m := range others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			timeout := n.timeout
			if dl, ok := ctx.Deadline(); ok {
				timeout = min(timeout, time.Until(dl))
			}
			surrender(i, m, timeout)
		}()
	}
	wg.Wait()
	// A member that did not answer may hold the newest copy: activating
	// without it would serve older records (its acknowledged writes
	// hidden). Its actor was draining calls whose settlements now reach
	// this node, which waits for the take-over: once its drain gave up,
	// it answers at once. Ask it again, twice at most, while it is a
	// member.
	for attempt := 0; attempt < 2; attempt++ {
		again := false
		for i, m := range others {
			if errs[i] != nil && slices.Contains(n.lookup.Members(), m) {
				again = true
				surrender(i, m, n.timeout)
			}
		}
		if !again {
			break
		}
	}
	if n.tk != nil {
		// Its own deadline: the members' answers may have used up ctx,
		// and without the check the account would activate unbounded.
		tctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d, inc, crashed, err := n.crashedOwner(tctx, id, v)
		if err == nil && crashed {
			err = n.takeOver(tctx, id, holdings, d, inc)
		}
		cancel()
		if err != nil {
			n.log.Warn("crash take-over check failed; activating from the live copies", "actor", id.String(), "err", err)
		} else if crashed {
			if err := errors.Join(errs...); err != nil {
				return err
			}
			n.fetchedMu.Lock()
			n.fetched[id] = v.version
			n.fetchedMu.Unlock()
			return nil
		}
	}
	if err := n.env.Adopt(id, holdings); err != nil {
		return err
	}
	if err := errors.Join(errs...); err != nil {
		return err // not recorded as fetched: the next activation asks again
	}
	n.fetchedMu.Lock()
	n.fetched[id] = v.version
	n.fetchedMu.Unlock()
	return nil
}

// rebalance stops this node's activations of actors it no longer owns
// (after a topology change): their mailboxes drain, their writes become
// durable, and the new owner takes their records over at its activation.
func (n *Node) rebalance() {
	n.rebalMu.Lock()
	defer n.rebalMu.Unlock()
	sem := make(chan struct{}, 256) // evictions wait a grace period each: run them side by side
	var wg sync.WaitGroup
	for _, id := range n.local.Residents() {
		if !n.leaving.Load() && n.lookup.Owner(id.String()) == n.self {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			ctx, cancel := context.WithTimeout(context.Background(), n.timeout)
			defer cancel()
			if err := n.local.Evict(ctx, id); err != nil {
				n.log.Warn("stopping an actor that moved", "actor", id.String(), "err", err)
			}
		}()
	}
	wg.Wait()
}

// Shutdown leaves the cluster gracefully: the node drops itself from its
// own view and leaves the gossip (the others rebalance), stops its actors
// (their writes durable), returns its wallet leases to their platforms,
// keeps answering the new owners' take-over requests for DrainTimeout, then
// stops the remote and the actor system. protoactor's Cluster.Shutdown does
// not call the provider's Shutdown on a non-graceful stop; this does, in
// every case. Idempotent.
func (n *Node) Shutdown(ctx context.Context) error {
	if !n.leaving.CompareAndSwap(false, true) {
		return nil
	}
	close(n.quit)
	// Stop serving (requests from other nodes are answered "moved" and
	// retried), stop every actor here, hand the records over to their
	// next owners, and only then leave the member set: the next owners
	// have the newest copies before any request reaches them. Then return
	// the wallet leases (through the platforms' new owners).
	n.lookup.leave()
	n.rebalance()
	lctx, cancel := context.WithTimeout(ctx, 2*n.timeout)
	n.handOver(lctx)
	cancel()
	if n.tk != nil {
		// Before leaving the gossip: the others must not take this
		// node's accounts over as a crashed node's.
		lctx, cancel = context.WithTimeout(ctx, n.timeout)
		if err := n.tk.cfg.Registry.SetState(lctx, n.tk.cfg.Name, "", postgres.StateLeft); err != nil {
			n.log.Error("recording this node's graceful leave; the others will take its accounts over as a crashed node's", "err", err)
		}
		cancel()
	}
	perr := n.provider.Shutdown(true)
	// The others now route this node's former actors (the platforms
	// included) to their next owners, which hold the records: fold this
	// node's lease spend into the wallets and return the free credit.
	lctx, cancel = context.WithTimeout(ctx, 2*n.timeout)
	n.env.ReturnLeases(lctx)
	cancel()
	select {
	case <-time.After(n.cfg.DrainTimeout):
	case <-ctx.Done():
	}
	n.stopped.Store(true)
	n.bg.Wait()
	n.lookup.Shutdown()
	n.peers.Close()
	n.cluster.Gossip.Shutdown()
	n.cluster.Remote.Shutdown(true)
	n.local.Close()
	return perr
}

// Peers returns the node's [actors.Peers] (listings, logs and stored
// responses across nodes; revocation and settings broadcasts).
func (n *Node) Peers() *Peers { return n.peers }

// PeerNode returns the answering side of this node, where packages with
// records of their own register their queries (logs.Store.Serve).
func (n *Node) PeerNode() *actors.Node { return n.peerNode }

// Crash stops the node without a hand-over (tests: a node that dies). Its
// disk keeps what it wrote.
func (n *Node) Crash() {
	if !n.leaving.CompareAndSwap(false, true) {
		return
	}
	close(n.quit)
	n.stopped.Store(true)
	n.bg.Wait()
	_ = n.provider.Shutdown(false)
	n.lookup.Shutdown()
	n.cluster.Gossip.Shutdown() // local: a crashed node says nothing more
	n.cluster.Remote.Shutdown(false)
	n.local.Halt()
}
