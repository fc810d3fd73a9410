package edge

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// Stored responses and their items are written by the edge of the node
// that served the call, on that node's disk. A read looks here first and,
// on a miss in a cluster, asks every node (one answer holds it: the ids
// are unique); a delete removes this node's copy and has every other node
// remove theirs. On a single node nothing but the local read happens.

// peerReadTimeout bounds a fan-out read of a stored response.
const peerReadTimeout = 2 * time.Second

func (s *Server) alone() bool {
	_, ok := s.deps.Peers.(actors.SingleNode)
	return ok
}

// storedGet returns principal p's stored response (or, with item, stored
// response item) id, or persistence.ErrNotFound.
func (s *Server) storedGet(p actors.Principal, id string, item bool) ([]byte, error) {
	key := persistence.ResponseKey(string(p.Platform), string(p.EndUser), id)
	if item {
		key = persistence.ResponseItemKey(string(p.Platform), string(p.EndUser), id)
	}
	v, err := s.deps.Store.Get(key)
	if !errors.Is(err, persistence.ErrNotFound) || s.alone() {
		return v, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), peerReadTimeout)
	defer cancel()
	res, ferr := s.deps.Peers.FanOut(ctx, &pb.StoredResponseQuery{
		PlatformId: string(p.Platform), EndUserId: string(p.EndUser), Id: id, Item: item})
	for _, m := range res {
		if a, ok := m.(*pb.StoredResponseAnswer); ok && a.Found {
			return a.Value, nil
		}
	}
	if ferr != nil {
		return nil, ferr // the node holding it may be the one that did not answer
	}
	return nil, persistence.ErrNotFound
}

// forgetStored has every other node drop its copy of stored response id
// and of its output items.
func (s *Server) forgetStored(p actors.Principal, id string, resp json.RawMessage) error {
	if s.alone() {
		return nil
	}
	var o struct {
		Output []struct {
			ID string `json:"id"`
		} `json:"output"`
	}
	if err := json.Unmarshal(resp, &o); err != nil {
		return err
	}
	m := &pb.StoredResponsesDeleted{PlatformId: string(p.Platform), EndUserId: string(p.EndUser), ResponseId: id}
	for _, it := range o.Output {
		if it.ID != "" {
			m.ItemIds = append(m.ItemIds, it.ID)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), peerReadTimeout)
	defer cancel()
	return s.deps.Peers.Broadcast(ctx, m)
}
