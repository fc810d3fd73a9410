package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/hashicorp/memberlist"
)

// nodeMeta is what each node gossips about itself, as JSON in memberlist's
// node metadata:
//
//	{"id":"<protoactor member id>","host":"10.0.0.5","port":7001,"kinds":["enduser","platform"]}
//
// host:port is the protoactor remote address; disthash hashes it, so every
// node must see the same value. Kinds is empty for a client.
type nodeMeta struct {
	ID    string   `json:"id"`
	Host  string   `json:"host"`
	Port  int      `json:"port"`
	Kinds []string `json:"kinds,omitempty"`
}

// maxMeta is memberlist's metadata limit (512 bytes).
const maxMeta = memberlist.MetaMaxSize

// ErrMetaTooLarge is returned when a node's metadata (id, address and
// kinds) does not fit in memberlist's 512 bytes.
var ErrMetaTooLarge = errors.New("cluster: node metadata exceeds memberlist's 512 bytes")

// errBadMeta is returned by decodeMeta for metadata that is not ours.
var errBadMeta = errors.New("cluster: bad node metadata")

// encodeMeta returns m's metadata bytes, or ErrMetaTooLarge.
func encodeMeta(m nodeMeta) ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > maxMeta {
		return nil, fmt.Errorf("%w (%d bytes)", ErrMetaTooLarge, len(b))
	}
	return b, nil
}

// decodeMeta parses metadata gossiped by another node. It reads at most
// maxMeta bytes and rejects anything incomplete.
func decodeMeta(b []byte) (nodeMeta, error) {
	var m nodeMeta
	if len(b) == 0 || len(b) > maxMeta {
		return nodeMeta{}, fmt.Errorf("%w: %d bytes", errBadMeta, len(b))
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nodeMeta{}, fmt.Errorf("%w: %v", errBadMeta, err)
	}
	if err := m.check(); err != nil {
		return nodeMeta{}, err
	}
	return m, nil
}

func (m nodeMeta) check() error {
	switch {
	case m.ID == "" || m.Host == "":
		return fmt.Errorf("%w: id and host are required", errBadMeta)
	case m.Port <= 0 || m.Port > 65535:
		return fmt.Errorf("%w: port %d", errBadMeta, m.Port)
	case slices.Contains(m.Kinds, ""):
		return fmt.Errorf("%w: empty kind", errBadMeta)
	}
	return nil
}

// membersOf converts memberlist's alive nodes into protoactor members. Nodes
// with bad metadata or without kinds (clients) are skipped, as is a second
// node claiming an id already seen (the lowest host:port wins). The result
// is sorted by member id and
// each member's kinds are sorted, so every node computes the same list from
// the same view. The result shares nothing with nodes.
func membersOf(nodes []*memberlist.Node) []*protocluster.Member {
	out := make([]*protocluster.Member, 0, len(nodes))
	for _, n := range nodes {
		if n == nil {
			continue
		}
		m, err := decodeMeta(n.Meta)
		if err != nil || len(m.Kinds) == 0 {
			continue
		}
		kinds := slices.Clone(m.Kinds)
		slices.Sort(kinds)
		out = append(out, &protocluster.Member{Id: m.ID, Host: m.Host, Port: int32(m.Port), Kinds: slices.Compact(kinds)})
	}
	slices.SortFunc(out, func(a, b *protocluster.Member) int {
		if c := strings.Compare(a.Id, b.Id); c != 0 {
			return c
		}
		if c := strings.Compare(a.Host, b.Host); c != 0 {
			return c
		}
		return int(a.Port - b.Port)
	})
	return slices.CompactFunc(out, func(a, b *protocluster.Member) bool { return a.Id == b.Id })
}
