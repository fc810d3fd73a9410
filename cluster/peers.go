package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/pb"
)

// PeersActorName is the name of the actor every node runs to answer its
// peers' queries and apply their broadcasts.
const PeersActorName = "assistiv-peers"

// defaultPeerTimeout bounds a fan-out or broadcast whose context has no
// deadline.
const defaultPeerTimeout = 5 * time.Second

// Peers is the cluster's [actors.Peers] over protoactor remote. Every node
// runs a named actor ([PeersActorName]) on its actor system; a fan-out
// sends the query to that actor on every other member (and answers for
// this node in process), a broadcast sends to every other member. The
// member addresses (protoactor remote "host:port") come from the members
// function given to [NewPeers], called once per fan-out or broadcast; it
// may include this node's address, which is skipped.
//
// Concurrency: all methods are safe for concurrent use. The actor itself
// only hands each message to a goroutine of its own, which answers with
// [actors.Node.Answer] and replies to the sender, so a slow listing scan
// never delays a revocation behind it. Messages must be protobuf messages
// of package pb (protoactor remote serializes them by type name).
type Peers struct {
	system  *actor.ActorSystem
	node    *actors.Node
	members func() []string
	self    string
	pid     *actor.PID
	// listed and memberTimeout are set by SetLiveness before use (nil,
	// 0: every member is asked, for as long as the caller's context
	// allows).
	listed        func() (map[string]bool, bool)
	memberTimeout time.Duration
	downMu        sync.Mutex      // guards down
	down          map[string]bool // members that timed out, probed until they answer (liveness.go)

	wg     sync.WaitGroup // answers in flight
	closed chan struct{}
	once   sync.Once
}

var _ actors.Peers = (*Peers)(nil)

// NewPeers spawns the peers actor on system, whose remote must be started
// (its address is this node's), answering with node. members returns the
// remote addresses of the live members.
func NewPeers(system *actor.ActorSystem, node *actors.Node, members func() []string) (*Peers, error) {
	return NewPeersAs(system, node, system.Address(), members)
}

// NewPeersAs is [NewPeers] for a node whose address in the member list is
// self (its advertised remote address); its remote may start later.
func NewPeersAs(system *actor.ActorSystem, node *actors.Node, self string, members func() []string) (*Peers, error) {
	if node == nil || members == nil {
		return nil, errors.New("cluster: NewPeers needs a node and a members function")
	}
	p := &Peers{system: system, node: node, members: members, self: self, closed: make(chan struct{})}
	pid, err := system.Root.SpawnNamed(actor.PropsFromFunc(p.receive), PeersActorName)
	if err != nil {
		return nil, fmt.Errorf("cluster: spawn %s: %w", PeersActorName, err)
	}
	p.pid = pid
	return p, nil
}

// Close stops the peers actor and waits for the answers in flight. After
// Close this node answers no peer (their fan-outs report it unavailable).
func (p *Peers) Close() {
	p.once.Do(func() {
		close(p.closed)
		p.downMu.Lock() // a probe started before this line is counted in wg (timedOut)
		p.downMu.Unlock()
		_ = p.system.Root.PoisonFuture(p.pid).Wait()
		p.wg.Wait()
	})
}

func (p *Peers) receive(c actor.Context) {
	msg, ok := c.Message().(proto.Message)
	if !ok {
		return // lifecycle messages
	}
	sender := c.Sender()
	if sender == nil {
		return // every peer message is a request
	}
	select {
	case <-p.closed:
		c.Respond(actors.FailureOf(fmt.Errorf("node %s is leaving", p.self)))
		return
	default:
	}
	root := c.ActorSystem().Root
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), defaultPeerTimeout)
		defer cancel()
		res, err := p.node.Answer(ctx, msg)
		if err != nil {
			res = actors.FailureOf(err)
		}
		root.Send(sender, res)
	}()
}

// others returns the members' addresses other than this node's, without
// duplicates.
func (p *Peers) others() []string {
	all := p.members()
	out := make([]string, 0, len(all))
	seen := make(map[string]bool, len(all))
	for _, a := range all {
		if a == "" || a == p.self || seen[a] {
			continue
		}
		seen[a] = true
		out = append(out, a)
	}
	return out
}

// ask sends msg to the peers actor at addr and waits for its answer.
func (p *Peers) ask(ctx context.Context, addr string, msg proto.Message) (proto.Message, error) {
	timeout := defaultPeerTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	full := false // the member's own timeout applies, not the caller's shorter one
	if p.memberTimeout > 0 && timeout >= p.memberTimeout {
		timeout, full = p.memberTimeout, true
	}
	if timeout <= 0 {
		return nil, ctx.Err()
	}
	res, err := p.system.Root.RequestFuture(actor.NewPID(addr, PeersActorName), msg, timeout).Result()
	if full && errors.Is(err, actor.ErrTimeout) {
		p.timedOut(addr)
	}
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", addr, err)
	}
	switch m := res.(type) {
	case *pb.Failure:
		return nil, fmt.Errorf("node %s: %w", addr, actors.ErrorOf(m))
	case proto.Message:
		return m, nil
	}
	return nil, fmt.Errorf("node %s answered a %T", addr, res)
}

// each sends msg to every address concurrently and collects the answers
// of those that answered and the errors of the others.
func (p *Peers) each(ctx context.Context, addrs []string, msg proto.Message) ([]proto.Message, []error) {
	type result struct {
		m   proto.Message
		err error
	}
	results := make([]result, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := p.ask(ctx, a, msg)
			results[i] = result{m, err}
		}()
	}
	wg.Wait()
	var out []proto.Message
	var errs []error
	for _, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		out = append(out, r.m)
	}
	return out, errs
}

// unavailable wraps the errors of nodes that did not answer.
func unavailable(what string, errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: %w", actors.ErrUnavailable, what, errors.Join(errs...))
}

// FanOut implements [actors.Peers].
func (p *Peers) FanOut(ctx context.Context, query proto.Message) ([]proto.Message, error) {
	all := p.others()
	others, skipped := p.live(all)
	var out []proto.Message
	var errs []error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		out, errs = p.each(ctx, others, query)
	}()
	mine, err := p.node.Answer(ctx, query)
	wg.Wait()
	if err != nil {
		errs = append(errs, fmt.Errorf("node %s (this one): %w", p.self, err))
	} else {
		out = append(out, mine)
	}
	errs = append(errs, skipped...)
	return out, unavailable(fmt.Sprintf("%d of %d nodes did not answer", len(errs), len(all)+1), errs)
}

// Broadcast implements [actors.Peers].
func (p *Peers) Broadcast(ctx context.Context, msg proto.Message) error {
	all := p.others()
	others, skipped := p.live(all)
	_, errs := p.each(ctx, others, msg)
	errs = append(errs, skipped...)
	return unavailable(fmt.Sprintf("%d of %d nodes did not apply the broadcast", len(errs), len(all)), errs)
}
