package cluster

import (
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/hashicorp/memberlist"
)

// topologySink receives published member sets: protoactor's
// *cluster.MemberList in production, a recorder in tests. It is called from
// the publisher goroutine only, one call at a time; it may retain ms.
type topologySink interface {
	UpdateClusterTopology(ms protocluster.Members)
}

var _ topologySink = (*protocluster.MemberList)(nil)

// Provider is a protoactor-go cluster provider backed by memberlist. Give it
// to cluster.Configure; protoactor calls StartMember or StartClient once and
// Shutdown at the end. A Provider is started at most once. Its methods are
// safe for concurrent use.
type Provider struct {
	cfg Config

	mu   sync.Mutex // guards the fields below
	ml   *memberlist.Memberlist
	meta []byte // this node's encoded nodeMeta
	sink topologySink
	stop chan struct{} // closed by Shutdown
	done chan struct{} // closed when the publisher returns

	kick chan struct{} // capacity 1: "membership changed"; never blocks a sender

	// onPublished, when set before start (tests only), is called by the
	// publisher after each publication returns. It gives tests a
	// happens-before edge from what protoactor did during the publication.
	onPublished func(protocluster.Members)
}

var _ protocluster.ClusterProvider = (*Provider)(nil)

// New returns an unstarted provider for cfg, or cfg's validation error. cfg
// is copied; the caller may reuse it.
func New(cfg Config) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Seeds = slices.Clone(cfg.Seeds)
	cfg.SecretKey = slices.Clone(cfg.SecretKey)
	return &Provider{cfg: cfg, kick: make(chan struct{}, 1)}, nil
}

// StartMember joins the cluster as a member hosting c's kinds. protoactor
// calls it from cluster.StartMember after c's remote has started (and
// panics if it returns an error). It blocks while joining the seeds.
func (p *Provider) StartMember(c *protocluster.Cluster) error {
	return p.startCluster(c, c.GetClusterKinds())
}

// StartClient joins as a client: it sees the members but hosts no grains
// (it gossips no kinds, so no member counts it).
func (p *Provider) StartClient(c *protocluster.Cluster) error { return p.startCluster(c, nil) }

func (p *Provider) startCluster(c *protocluster.Cluster, kinds []string) error {
	host, port, err := c.ActorSystem.GetHostPort()
	if err != nil {
		return fmt.Errorf("cluster: actor system address: %w", err)
	}
	return p.start(nodeMeta{ID: c.ActorSystem.ID, Host: host, Port: port, Kinds: kinds}, c.MemberList)
}

// start creates the memberlist gossiping self, starts the publisher, joins
// the seeds and schedules the first publication to sink. On error nothing
// keeps running.
func (p *Provider) start(self nodeMeta, sink topologySink) error {
	meta, err := encodeMeta(self)
	if err != nil {
		return err
	}
	mc := memberlist.DefaultLANConfig()
	mc.ProbeInterval, mc.SuspicionMult = p.cfg.ProbeInterval, p.cfg.SuspicionMult
	// A suspect nobody else confirms stays suspect up to this many times
	// the suspicion timeout (memberlist's default 6): in a small cluster
	// there are few others to confirm, so keep it short.
	mc.SuspicionMaxTimeoutMult = 2
	mc.ProbeTimeout = min(mc.ProbeTimeout, p.cfg.ProbeInterval*3/5)
	mc.Name = p.cfg.NodeName
	if mc.Name == "" {
		mc.Name = self.ID
	}
	mc.BindAddr, mc.BindPort = p.cfg.BindAddr, p.cfg.BindPort
	mc.AdvertiseAddr, mc.AdvertisePort = p.cfg.AdvertiseAddr, p.cfg.AdvertisePort
	if mc.AdvertisePort == 0 {
		mc.AdvertisePort = p.cfg.BindPort // memberlist replaces 0 with the picked port
	}
	switch {
	case p.cfg.Logger != nil:
		mc.Logger = p.cfg.Logger
	case p.cfg.LogOutput != nil:
		mc.LogOutput = p.cfg.LogOutput
	default:
		mc.LogOutput = io.Discard
	}
	if len(p.cfg.SecretKey) > 0 {
		mc.SecretKey = p.cfg.SecretKey // keyring; GossipVerifyIncoming/Outgoing stay true
	}
	mc.Delegate = delegate{p}
	mc.Events = events{p}

	p.mu.Lock()
	if p.stop != nil {
		p.mu.Unlock()
		return fmt.Errorf("cluster: provider already started")
	}
	p.meta, p.sink = meta, sink
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	stop, done := p.stop, p.done
	p.mu.Unlock()

	ml, err := memberlist.Create(mc) // calls NodeMeta and NotifyJoin(self)
	if err != nil {
		close(done)
		return fmt.Errorf("cluster: memberlist: %w", err)
	}
	p.mu.Lock()
	p.ml = ml
	p.mu.Unlock()
	go p.publisher(ml, sink, stop, done)

	if len(p.cfg.Seeds) > 0 {
		if _, err := ml.Join(p.cfg.Seeds); err != nil {
			_ = p.Shutdown(false)
			return fmt.Errorf("cluster: join %v: %w", p.cfg.Seeds, err)
		}
	}
	p.changed()
	return nil
}

// GossipAddr returns the host:port other nodes can use as a seed, or "" if
// the provider is not running.
func (p *Provider) GossipAddr() string {
	p.mu.Lock()
	ml := p.ml
	p.mu.Unlock()
	if ml == nil {
		return ""
	}
	n := ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// changed signals the publisher. It never blocks: a signal already pending
// covers this change too.
func (p *Provider) changed() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// publisher is the only goroutine that publishes. After each signal it
// waits Debounce for the rest of the burst, then publishes the alive set.
// It returns when stop closes.
func (p *Provider) publisher(ml *memberlist.Memberlist, sink topologySink, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	var t *time.Timer
	if p.cfg.Debounce > 0 {
		t = time.NewTimer(p.cfg.Debounce)
		t.Stop()
		defer t.Stop()
	}
	for {
		select {
		case <-stop:
			return
		case <-p.kick:
		}
		if t != nil {
			t.Reset(p.cfg.Debounce)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
		// Signals that arrived while waiting are covered by this read; one
		// arriving from here on causes another publication.
		select {
		case <-p.kick:
		default:
		}
		ms := membersOf(ml.Members())
		sink.UpdateClusterTopology(ms)
		if p.onPublished != nil {
			p.onPublished(ms)
		}
	}
}

// Shutdown stops the publisher, waits for it, then leaves the cluster:
// gracefully, it broadcasts the leave and waits up to LeaveTimeout for it
// to spread; otherwise the others notice the node's failure. It is
// idempotent; calls after the first return nil. protoactor calls it only
// from a graceful cluster Shutdown, so after Cluster.Shutdown(false) the
// owner must call it.
func (p *Provider) Shutdown(graceful bool) error {
	p.mu.Lock()
	ml, stop, done := p.ml, p.stop, p.done
	p.ml = nil
	p.mu.Unlock()
	if ml == nil {
		return nil
	}
	close(stop)
	<-done
	var err error
	if graceful {
		if e := ml.Leave(p.cfg.LeaveTimeout); e != nil {
			err = fmt.Errorf("cluster: leave: %w", e)
		}
	}
	if e := ml.Shutdown(); e != nil && err == nil {
		err = fmt.Errorf("cluster: memberlist shutdown: %w", e)
	}
	return err
}

// delegate answers memberlist's questions about this node. memberlist may
// call it from several goroutines; every method returns at once.
type delegate struct{ p *Provider }

func (d delegate) NodeMeta(limit int) []byte {
	d.p.mu.Lock()
	defer d.p.mu.Unlock()
	if len(d.p.meta) > limit {
		return nil // cannot happen: encodeMeta enforced memberlist's limit
	}
	return d.p.meta
}
func (delegate) NotifyMsg([]byte)                {}
func (delegate) GetBroadcasts(int, int) [][]byte { return nil }
func (delegate) LocalState(bool) []byte          { return nil }
func (delegate) MergeRemoteState([]byte, bool)   {}

// events turns memberlist's membership events into publisher signals. They
// must not block memberlist, and do not.
type events struct{ p *Provider }

func (e events) NotifyJoin(*memberlist.Node)   { e.p.changed() }
func (e events) NotifyLeave(*memberlist.Node)  { e.p.changed() }
func (e events) NotifyUpdate(*memberlist.Node) { e.p.changed() }
