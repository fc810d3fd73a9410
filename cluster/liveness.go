package cluster

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/assistiv/gateway/internal/pb"
)

// listedAddrs returns the remote addresses (host:port) of the members
// memberlist currently lists (not dead, not left). ok is false when the
// provider is not running (nothing is known then). memberlist (v0.7)
// does not tell a suspect member from an alive one through its API, so a
// member that stopped answering is found by [Peers] itself (see
// SetLiveness).
func (p *Provider) listedAddrs() (listed map[string]bool, ok bool) {
	p.mu.Lock()
	ml := p.ml
	p.mu.Unlock()
	if ml == nil {
		return nil, false
	}
	nodes := ml.Members()
	listed = make(map[string]bool, len(nodes))
	for _, n := range nodes {
		if n == nil {
			continue
		}
		m, err := decodeMeta(n.Meta)
		if err != nil {
			continue
		}
		listed[m.Host+":"+strconv.Itoa(m.Port)] = true // as protocluster.Member.Address
	}
	return listed, true
}

// defaultMemberTimeout bounds one member's answer to a fan-out or a
// broadcast (see [Peers.SetLiveness]).
const defaultMemberTimeout = 2 * time.Second

// probeEvery is how often a member that stopped answering is asked again
// in the background.
const probeEvery = 500 * time.Millisecond

// SetLiveness bounds each member's answer to memberTimeout (0: 2 s) and
// makes p skip, in fan-outs and broadcasts, the members that would only
// make the caller wait: those memberlist no longer lists (dead, not yet
// out of the published member set), and those that let a request time
// out (a stopped node stays listed, suspect, for seconds). A member that
// timed out is asked again in the background every 500 ms until it
// answers, and skipped meanwhile. A skipped member counts as one that did
// not answer (the error wraps actors.ErrUnavailable), at once. listed
// returning ok false skips nothing on its account. Call it before p is
// used.
func (p *Peers) SetLiveness(listed func() (map[string]bool, bool), memberTimeout time.Duration) {
	if memberTimeout <= 0 {
		memberTimeout = defaultMemberTimeout
	}
	p.listed, p.memberTimeout = listed, memberTimeout
}

// live splits addrs into the members to ask and the errors of those
// skipped.
func (p *Peers) live(addrs []string) ([]string, []error) {
	if p.memberTimeout == 0 {
		return addrs, nil
	}
	var listed map[string]bool
	ok := false
	if p.listed != nil {
		listed, ok = p.listed()
	}
	p.downMu.Lock()
	defer p.downMu.Unlock()
	var out []string
	var skipped []error
	for _, a := range addrs {
		switch {
		case ok && !listed[a]:
			skipped = append(skipped, fmt.Errorf("node %s: %w", a, errNotListed))
		case p.down[a]:
			skipped = append(skipped, fmt.Errorf("node %s: %w", a, errNotAnswering))
		default:
			out = append(out, a)
		}
	}
	return out, skipped
}

// Errors of skipped members.
var (
	errNotListed    = errors.New("no longer in the membership; skipped")
	errNotAnswering = errors.New("did not answer within the member timeout; skipped until it answers again")
)

// timedOut records that the member at addr let a request run into the
// member timeout, and starts its background probe.
func (p *Peers) timedOut(addr string) {
	p.downMu.Lock()
	defer p.downMu.Unlock()
	select {
	case <-p.closed:
		return // Close waits for no new probe
	default:
	}
	if p.down == nil {
		p.down = map[string]bool{}
	}
	if p.down[addr] {
		return
	}
	p.down[addr] = true
	p.wg.Add(1)
	go p.probe(addr)
}

// probe asks the member at addr a trivial query every probeEvery until it
// answers (then it is asked again in fan-outs), it leaves the membership,
// or p closes.
func (p *Peers) probe(addr string) {
	defer p.wg.Done()
	defer func() {
		p.downMu.Lock()
		delete(p.down, addr)
		p.downMu.Unlock()
	}()
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		select {
		case <-p.closed:
			return
		case <-t.C:
		}
		if p.listed != nil {
			if listed, ok := p.listed(); ok && !listed[addr] {
				return // gone: nothing to skip any more
			}
		}
		_, err := p.system.Root.RequestFuture(actor.NewPID(addr, PeersActorName), &pb.PlatformQuery{}, p.memberTimeout).Result()
		if err == nil {
			return
		}
	}
}
