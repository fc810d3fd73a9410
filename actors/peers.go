package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// Peers reaches the nodes of a cluster. Records live on the disk of the
// node that wrote them (an actor's records on its owner's, a stored
// response on the node that served the call), so a read that is not one
// actor's goes to every node as a query and the answers are merged; a
// change that other nodes cache goes to every node as a broadcast.
// Messages are protobuf (package pb) so that they cross nodes unchanged.
//
// Implementations: [SingleNode] (this process only) and the cluster
// package's, over protoactor remote. Both are safe for concurrent use.
type Peers interface {
	// FanOut sends query to every live node, this one included, and
	// returns the answers of those that answered, one each, in no
	// particular order. Each node answers with [Node.Answer]. When a node
	// does not answer before ctx ends (or refuses), the answers of the
	// others come back together with an error wrapping [ErrUnavailable];
	// a caller that needs every node's records must treat that as a
	// failure. Blocks for the slowest node.
	FanOut(ctx context.Context, query proto.Message) ([]proto.Message, error)
	// Broadcast delivers msg to every live node other than this one,
	// which applies it with [Node.Answer]; the caller has applied it here
	// already. It returns once every node has applied it or ctx ended; an
	// error names nodes that may not have (their caches catch up within
	// the cache TTL, the safety net).
	Broadcast(ctx context.Context, msg proto.Message) error
}

// Node answers the queries and applies the broadcasts of [Peers] from
// this node's own records and caches. It is what a cluster member runs on
// receipt of a peer's message. Safe for concurrent use.
type Node struct {
	env      *Env
	mu       sync.RWMutex // guards handlers
	handlers map[protoreflect.FullName]PeerHandler
}

// PeerHandler answers one kind of query for a package that keeps records
// of its own (call logs); it must be safe for concurrent use.
type PeerHandler func(ctx context.Context, msg proto.Message) (proto.Message, error)

// NewNode returns env's answering side.
func NewNode(env *Env) *Node {
	return &Node{env: env, handlers: make(map[protoreflect.FullName]PeerHandler)}
}

// Handle makes h answer the queries of kind's message type. Handlers for
// the types [Node.Answer] knows itself are never called.
func (n *Node) Handle(kind proto.Message, h PeerHandler) {
	n.mu.Lock()
	n.handlers[kind.ProtoReflect().Descriptor().FullName()] = h
	n.mu.Unlock()
}

// SingleNode is the [Peers] of a gateway that runs alone: a query is
// answered by this node, a broadcast has nobody to reach.
type SingleNode struct{ n *Node }

var _ Peers = SingleNode{}

// NewSingleNode returns the Peers of a lone node over env.
func NewSingleNode(env *Env) SingleNode { return SingleNode{n: NewNode(env)} }

// Node returns the answering side, for [Node.Handle].
func (s SingleNode) Node() *Node { return s.n }

// FanOut implements [Peers]: this node's answer alone.
func (s SingleNode) FanOut(ctx context.Context, query proto.Message) ([]proto.Message, error) {
	m, err := s.n.Answer(ctx, query)
	if err != nil {
		return nil, err
	}
	return []proto.Message{m}, nil
}

// Broadcast implements [Peers]: there is no other node.
func (SingleNode) Broadcast(context.Context, proto.Message) error { return nil }

// maxPeerPage bounds one node's answer to a listing query.
const maxPeerPage = 1001

// Answer answers a query or applies a broadcast from another node (or,
// for [SingleNode], from this one), or hands it to the handler registered
// for its type ([Node.Handle]). An unknown message is an error.
func (n *Node) Answer(ctx context.Context, msg proto.Message) (proto.Message, error) {
	e := n.env
	switch m := msg.(type) {
	case *pb.ListPlatformsQuery:
		return e.localPlatforms(m)
	case *pb.ListEndUsersQuery:
		return e.localEndUsers(m)
	case *pb.KeyQuery:
		return e.localKey(m.Digest)
	case *pb.PlatformQuery:
		return e.localPlatform(ids.PlatformID(m.PlatformId))
	case *pb.StoredResponseQuery:
		key := persistence.ResponseKey(m.PlatformId, m.EndUserId, m.Id)
		if m.Item {
			key = persistence.ResponseItemKey(m.PlatformId, m.EndUserId, m.Id)
		}
		v, err := e.Store.Get(key)
		if errors.Is(err, persistence.ErrNotFound) {
			return &pb.StoredResponseAnswer{}, nil
		}
		if err != nil {
			return nil, err
		}
		return &pb.StoredResponseAnswer{Found: true, Value: v}, nil
	case *pb.KeysRevoked:
		for _, d := range m.Digests {
			if len(d) == len(ids.Digest{}) {
				e.Auth.revoke(d)
			}
		}
		return &pb.Ack{}, nil
	case *pb.PlatformPublished:
		if m.Platform != nil && m.Platform.Id != "" {
			e.applyPublished(m.Platform, m.VersionNs)
		}
		return &pb.Ack{}, nil
	case *pb.StoredResponsesDeleted:
		ops := []persistence.Op{persistence.Delete(persistence.ResponseKey(m.PlatformId, m.EndUserId, m.ResponseId))}
		for _, it := range m.ItemIds {
			ops = append(ops, persistence.Delete(persistence.ResponseItemKey(m.PlatformId, m.EndUserId, it)))
		}
		if err := e.Store.Commit(ops...); err != nil {
			return nil, err
		}
		return &pb.Ack{}, nil
	}
	n.mu.RLock()
	h := n.handlers[msg.ProtoReflect().Descriptor().FullName()]
	n.mu.RUnlock()
	if h != nil {
		return h(ctx, msg)
	}
	return nil, errorf(ErrInvalid, "a node cannot answer %T", msg)
}

// owns reports whether this node hosts the actor named by id.
func (e *Env) owns(id Identity) bool { return e.Owns == nil || e.Owns(id) }

func peerLimit(n int32) int {
	if n < 1 {
		return 1
	}
	if n > maxPeerPage {
		return maxPeerPage
	}
	return int(n)
}

func (e *Env) localPlatforms(q *pb.ListPlatformsQuery) (*pb.PlatformPage, error) {
	limit := peerLimit(q.Limit)
	start := []byte{persistence.FamilyPlatform}
	if q.After != "" {
		start = append(persistence.PlatformKey(q.After), 0)
	}
	out := &pb.PlatformPage{}
	var failure error
	err := e.Store.Scan(start, []byte{persistence.FamilyPlatform + 1}, false, func(_, v []byte) bool {
		if len(out.Platforms) == limit {
			out.HasMore = true
			return false
		}
		p := &pb.Platform{}
		if failure = proto.Unmarshal(v, p); failure != nil {
			return false
		}
		out.Platforms = append(out.Platforms, &pb.PlatformCopy{Platform: p, Owned: e.owns(PlatformActor(ids.PlatformID(p.Id)))})
		return true
	})
	if err == nil {
		err = failure
	}
	return out, err
}

func (e *Env) localEndUsers(q *pb.ListEndUsersQuery) (*pb.EndUserPage, error) {
	limit := peerLimit(q.Limit)
	prefix := persistence.EndUsersPrefix(q.PlatformId)
	start := prefix
	if q.After != "" {
		start = append(persistence.EndUserKey(q.PlatformId, q.After), 0)
	}
	out := &pb.EndUserPage{}
	var failure error
	err := e.Store.Scan(start, persistence.PrefixEnd(prefix), false, func(_, v []byte) bool {
		u := &pb.EndUser{}
		if failure = proto.Unmarshal(v, u); failure != nil {
			return false
		}
		if q.ExternalId != "" && u.ExternalId != q.ExternalId {
			return true
		}
		if len(out.EndUsers) == limit {
			out.HasMore = true
			return false
		}
		id := EndUserActor(ids.PlatformID(q.PlatformId), ids.EndUserID(u.Id))
		out.EndUsers = append(out.EndUsers, &pb.EndUserCopy{EndUser: u, Owned: e.owns(id)})
		return true
	})
	if err == nil {
		err = failure
	}
	return out, err
}

// localKey answers a KeyQuery: a revocation this node knows of (even one
// not yet durable) wins over its stored record.
func (e *Env) localKey(digest []byte) (*pb.KeyAnswer, error) {
	if len(digest) != len(ids.Digest{}) {
		return &pb.KeyAnswer{}, nil
	}
	var d ids.Digest
	copy(d[:], digest)
	raw, err := e.Store.Get(persistence.APIKeyKey(digest))
	if errors.Is(err, persistence.ErrNotFound) {
		return &pb.KeyAnswer{}, nil
	}
	if err != nil {
		return nil, err
	}
	k := &pb.APIKey{}
	if err := proto.Unmarshal(raw, k); err != nil {
		return nil, err
	}
	if k.RevokedAtMs == 0 && e.Auth.revokedHere(d) {
		k.RevokedAtMs = e.Clock.Now().UnixMilli()
	}
	return &pb.KeyAnswer{Key: k, Owned: e.owns(PlatformActor(ids.PlatformID(k.PlatformId)))}, nil
}

func (e *Env) localPlatform(p ids.PlatformID) (*pb.PlatformAnswer, error) {
	raw, err := e.Store.Get(persistence.PlatformKey(string(p)))
	if errors.Is(err, persistence.ErrNotFound) {
		return &pb.PlatformAnswer{}, nil
	}
	if err != nil {
		return nil, err
	}
	pl := &pb.Platform{}
	if err := proto.Unmarshal(raw, pl); err != nil {
		return nil, err
	}
	return &pb.PlatformAnswer{Platform: pl, Owned: e.owns(PlatformActor(p))}, nil
}

// answersOf converts a fan-out's answers to T, refusing any other type.
func answersOf[T proto.Message](res []proto.Message) ([]T, error) {
	out := make([]T, 0, len(res))
	for _, m := range res {
		t, ok := m.(T)
		if !ok {
			return nil, fmt.Errorf("actors: a node answered a %T", m)
		}
		out = append(out, t)
	}
	return out, nil
}

// FailureOf renders err as the failure a node sends back for a query or
// broadcast it could not answer: an actor refusal keeps its code, any
// other error is "unavailable".
func FailureOf(err error) *pb.Failure {
	var e *Error
	if errors.As(err, &e) {
		return e.failure()
	}
	return &pb.Failure{Code: ErrUnavailable.Code, Message: err.Error()}
}

// ErrorOf is the error of a failure a node sent back (see [FailureOf]).
func ErrorOf(f *pb.Failure) error { return fromFailure(f) }
