// Package cluster places actors across gateway nodes. It implements
// protoactor-go's cluster.ClusterProvider on hashicorp/memberlist: each node
// gossips its protoactor member id, remote address and actor kinds as
// memberlist metadata, and the provider publishes the alive member set to
// protoactor's cluster, whose identity lookup (disthash) places every
// end-user and platform grain on exactly one live node.
//
// What is here today is membership. The cluster Directory (actors.Directory
// over cluster grains), the revocation broadcast and wallet leases of
// design.md "Cluster" build on it. Nothing in actors, edge or persistence
// imports this package; cmd wires it.
//
// Concurrency: memberlist calls the Provider's delegate methods from its own
// goroutines; they never block — they only signal one publisher goroutine,
// which debounces bursts and publishes topologies in order. Shutdown stops
// that goroutine and waits for it.
package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/hashicorp/memberlist"
)

// Config configures a [Provider].
type Config struct {
	// BindAddr and BindPort are memberlist's gossip address (TCP and UDP).
	// Port 0 picks a free port. Default 127.0.0.1:0.
	BindAddr string
	BindPort int
	// AdvertiseAddr, when set, is the address other nodes use.
	AdvertiseAddr string
	// Seeds are host:port gossip addresses of existing members to join.
	Seeds []string
	// Debounce gathers membership changes before one publication.
	// Default 100 ms, range 0..10 s.
	Debounce time.Duration
	// LogOutput receives memberlist's log lines. Default io.Discard.
	LogOutput io.Writer
}

// DefaultConfig returns the defaults documented on [Config].
func DefaultConfig() Config {
	return Config{BindAddr: "127.0.0.1", Debounce: 100 * time.Millisecond}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.BindAddr == "":
		return errors.New("cluster: BindAddr is required")
	case c.BindPort < 0 || c.BindPort > 65535:
		return fmt.Errorf("cluster: BindPort %d out of range", c.BindPort)
	case c.Debounce < 0 || c.Debounce > 10*time.Second:
		return fmt.Errorf("cluster: Debounce %s out of range 0..10s", c.Debounce)
	}
	return nil
}

// nodeMeta is what each node gossips about itself (memberlist allows 512
// bytes of metadata).
type nodeMeta struct {
	ID    string   `json:"id"`
	Host  string   `json:"host"`
	Port  int      `json:"port"`
	Kinds []string `json:"kinds,omitempty"`
}

// maxMeta is memberlist's metadata limit.
const maxMeta = memberlist.MetaMaxSize

// ErrMetaTooLarge is returned when a node's metadata does not fit.
var ErrMetaTooLarge = errors.New("cluster: node metadata exceeds memberlist's 512 bytes")

func encodeMeta(m nodeMeta) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > maxMeta {
		return nil, ErrMetaTooLarge
	}
	return b, nil
}

func decodeMeta(b []byte) (nodeMeta, error) {
	var m nodeMeta
	if len(b) == 0 || len(b) > maxMeta {
		return m, errors.New("cluster: bad node metadata size")
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, err
	}
	if m.ID == "" || m.Host == "" || m.Port <= 0 || m.Port > 65535 {
		return m, errors.New("cluster: incomplete node metadata")
	}
	return m, nil
}

// membersOf converts memberlist nodes into protoactor members: nodes with
// bad metadata or no kinds (clients) are skipped; the order is by member id
// so every node computes the same list.
func membersOf(nodes []*memberlist.Node) []*protocluster.Member {
	out := make([]*protocluster.Member, 0, len(nodes))
	for _, n := range nodes {
		m, err := decodeMeta(n.Meta)
		if err != nil || len(m.Kinds) == 0 {
			continue
		}
		out = append(out, &protocluster.Member{Id: m.ID, Host: m.Host, Port: int32(m.Port), Kinds: append([]string(nil), m.Kinds...)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Id < out[j].Id })
	return out
}

// topologySink receives published member sets: protoactor's MemberList in
// production, a recorder in tests.
type topologySink interface {
	UpdateClusterTopology(protocluster.Members)
}

// Provider is a protoactor cluster provider backed by memberlist.
type Provider struct {
	cfg Config

	mu   sync.Mutex // guards ml, meta, sink
	ml   *memberlist.Memberlist
	meta []byte
	sink topologySink

	kick chan struct{} // capacity 1: "membership changed"
	stop chan struct{}
	done chan struct{}
}

var _ protocluster.ClusterProvider = (*Provider)(nil)

// New returns a provider for cfg (validated; cfg is not retained by
// reference).
func New(cfg Config) (*Provider, error) {
	if cfg.LogOutput == nil {
		cfg.LogOutput = io.Discard
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Provider{cfg: cfg, kick: make(chan struct{}, 1)}, nil
}

// StartMember joins the cluster as a member hosting c's kinds.
func (p *Provider) StartMember(c *protocluster.Cluster) error {
	return p.startWith(c, c.GetClusterKinds())
}

// StartClient joins as a client: it sees members but hosts no grains.
func (p *Provider) StartClient(c *protocluster.Cluster) error { return p.startWith(c, nil) }

func (p *Provider) startWith(c *protocluster.Cluster, kinds []string) error {
	host, port, err := c.ActorSystem.GetHostPort()
	if err != nil {
		return fmt.Errorf("cluster: actor system address: %w", err)
	}
	return p.start(nodeMeta{ID: c.ActorSystem.ID, Host: host, Port: port, Kinds: kinds}, c.MemberList)
}

// start creates the memberlist, joins the seeds and starts the publisher.
func (p *Provider) start(self nodeMeta, sink topologySink) error {
	meta, err := encodeMeta(self)
	if err != nil {
		return err
	}
	mc := memberlist.DefaultLocalConfig()
	mc.Name = self.ID
	mc.BindAddr, mc.BindPort = p.cfg.BindAddr, p.cfg.BindPort
	mc.AdvertisePort = p.cfg.BindPort
	if p.cfg.AdvertiseAddr != "" {
		mc.AdvertiseAddr = p.cfg.AdvertiseAddr
	}
	mc.LogOutput = p.cfg.LogOutput
	mc.Delegate = delegate{p}
	mc.Events = events{p}
	p.mu.Lock()
	p.meta, p.sink = meta, sink
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	p.mu.Unlock()
	ml, err := memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("cluster: memberlist: %w", err)
	}
	p.mu.Lock()
	p.ml = ml
	p.mu.Unlock()
	go p.publisher()
	if len(p.cfg.Seeds) > 0 {
		if _, err := ml.Join(p.cfg.Seeds); err != nil {
			_ = p.Shutdown(false)
			return fmt.Errorf("cluster: join %v: %w", p.cfg.Seeds, err)
		}
	}
	p.changed()
	return nil
}

// GossipAddr returns the address other nodes can use as a seed.
func (p *Provider) GossipAddr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ml == nil {
		return ""
	}
	n := p.ml.LocalNode()
	return fmt.Sprintf("%s:%d", n.Addr, n.Port)
}

// changed signals the publisher without blocking.
func (p *Provider) changed() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// publisher publishes the alive member set after each burst of changes.
func (p *Provider) publisher() {
	defer close(p.done)
	for {
		select {
		case <-p.stop:
			return
		case <-p.kick:
		}
		if p.cfg.Debounce > 0 {
			t := time.NewTimer(p.cfg.Debounce)
			select {
			case <-p.stop:
				t.Stop()
				return
			case <-t.C:
			}
		}
		p.mu.Lock()
		ml, sink := p.ml, p.sink
		p.mu.Unlock()
		if ml == nil || sink == nil {
			continue
		}
		sink.UpdateClusterTopology(membersOf(ml.Members()))
	}
}

// Shutdown leaves the cluster (gracefully: announces the leave and waits up
// to 2 s for it to spread) and stops the publisher.
func (p *Provider) Shutdown(graceful bool) error {
	p.mu.Lock()
	ml, stop, done := p.ml, p.stop, p.done
	p.ml = nil
	p.mu.Unlock()
	if ml == nil {
		return nil
	}
	var err error
	if graceful {
		err = ml.Leave(2 * time.Second)
	}
	if e := ml.Shutdown(); err == nil {
		err = e
	}
	close(stop)
	<-done
	return err
}

// delegate answers memberlist's metadata questions.
type delegate struct{ p *Provider }

func (d delegate) NodeMeta(limit int) []byte {
	d.p.mu.Lock()
	defer d.p.mu.Unlock()
	if len(d.p.meta) > limit {
		return nil
	}
	return d.p.meta
}
func (delegate) NotifyMsg([]byte)                       {}
func (delegate) GetBroadcasts(int, int) [][]byte        { return nil }
func (delegate) LocalState(bool) []byte                 { return nil }
func (delegate) MergeRemoteState(buf []byte, join bool) {}

// events turns membership changes into publisher signals; never blocks.
type events struct{ p *Provider }

func (e events) NotifyJoin(*memberlist.Node)   { e.p.changed() }
func (e events) NotifyLeave(*memberlist.Node)  { e.p.changed() }
func (e events) NotifyUpdate(*memberlist.Node) { e.p.changed() }
