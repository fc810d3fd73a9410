package actors

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/pb"
)

// Listings. A platform's or an end-user's record lives on the disk of the
// node that hosts its actor; a node that hosted it before may still hold
// an older copy (ownership moved on a join, a leave or a crash). A
// listing therefore asks every node for the records after the cursor,
// in id order, and merges:
//
//   - a record is taken from the node that owns it when that node has it;
//   - a record only other nodes hold (a stale copy: the actor moved, or
//     the record was deleted by its owner since) is asked of its owner
//     through the [Directory], and left out when the owner knows nothing
//     of it;
//   - ids are unique and ascending, so the id of the last record returned
//     is a cursor that stays valid whichever node serves the next page.
//
// Each node answers at most n records; a node that has more bounds the
// round at its last id (beyond it, that node's records are unknown), and
// the next round continues from that bound until limit+1 records are in
// hand or no node has more. On one node every record is owned: one round,
// no Directory call.

// ListPlatforms returns up to limit platforms with ids after after (""
// from the first), in id order, and whether more follow.
func ListPlatforms(ctx context.Context, peers Peers, dir Directory, after string, limit int) ([]*pb.Platform, bool, error) {
	fetch := func(after string, n int) ([]nodePage[*pb.Platform], error) {
		res, err := peers.FanOut(ctx, &pb.ListPlatformsQuery{After: after, Limit: int32(n)})
		if err != nil {
			return nil, err
		}
		pages, err := answersOf[*pb.PlatformPage](res)
		if err != nil {
			return nil, err
		}
		out := make([]nodePage[*pb.Platform], len(pages))
		for i, p := range pages {
			out[i].more = p.HasMore
			for _, c := range p.Platforms {
				if c.GetPlatform() == nil {
					return nil, errors.New("actors: a node answered an empty platform copy")
				}
				out[i].copies = append(out[i].copies, recordCopy[*pb.Platform]{id: c.Platform.Id, rec: c.Platform, owned: c.Owned})
			}
		}
		return out, nil
	}
	confirm := func(ctx context.Context, id string) (*pb.Platform, bool, error) {
		res, err := dir.Ask(ctx, PlatformActor(ids.PlatformID(id)), &pb.GetPlatform{})
		if ErrIsNotFound(err) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		v, ok := res.(*pb.PlatformView)
		if !ok || v.Platform == nil {
			return nil, false, fmt.Errorf("actors: platform %s answered a %T", id, res)
		}
		return v.Platform, true, nil
	}
	return mergeListing(ctx, after, limit, fetch, confirm)
}

// ListEndUsers returns up to limit end-users of platform p with ids after
// after, in id order, only those with externalID when it is not empty,
// and whether more follow.
func ListEndUsers(ctx context.Context, peers Peers, dir Directory, p ids.PlatformID, after string, limit int, externalID string) ([]*pb.EndUser, bool, error) {
	fetch := func(after string, n int) ([]nodePage[*pb.EndUser], error) {
		res, err := peers.FanOut(ctx, &pb.ListEndUsersQuery{PlatformId: string(p), After: after, Limit: int32(n), ExternalId: externalID})
		if err != nil {
			return nil, err
		}
		pages, err := answersOf[*pb.EndUserPage](res)
		if err != nil {
			return nil, err
		}
		out := make([]nodePage[*pb.EndUser], len(pages))
		for i, pg := range pages {
			out[i].more = pg.HasMore
			for _, c := range pg.EndUsers {
				u := c.GetEndUser()
				if u == nil || u.PlatformId != string(p) {
					return nil, errors.New("actors: a node answered an end-user of another platform")
				}
				out[i].copies = append(out[i].copies, recordCopy[*pb.EndUser]{id: u.Id, rec: u, owned: c.Owned})
			}
		}
		return out, nil
	}
	confirm := func(ctx context.Context, id string) (*pb.EndUser, bool, error) {
		res, err := dir.Ask(ctx, EndUserActor(p, ids.EndUserID(id)), &pb.GetEndUser{})
		if ErrIsNotFound(err) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		v, ok := res.(*pb.EndUserView)
		if !ok || v.EndUser == nil {
			return nil, false, fmt.Errorf("actors: end-user %s answered a %T", id, res)
		}
		if externalID != "" && v.EndUser.ExternalId != externalID {
			return nil, false, nil
		}
		return v.EndUser, true, nil
	}
	return mergeListing(ctx, after, limit, fetch, confirm)
}

type recordCopy[T any] struct {
	id    string
	rec   T
	owned bool
}

// nodePage is one node's answer: its copies in ascending id order, and
// whether it holds more after the last.
type nodePage[T any] struct {
	copies []recordCopy[T]
	more   bool
}

func mergeListing[T proto.Message](ctx context.Context, after string, limit int,
	fetch func(after string, n int) ([]nodePage[T], error),
	confirm func(ctx context.Context, id string) (T, bool, error),
) ([]T, bool, error) {
	if limit < 1 {
		return nil, false, fmt.Errorf("actors: listing limit %d", limit)
	}
	out := make([]T, 0, limit+1)
	cur := after
	for {
		pages, err := fetch(cur, limit+1-len(out))
		if err != nil {
			return nil, false, err
		}
		// The round is complete up to the smallest last id among nodes
		// that have more.
		horizon, bounded := "", false
		for _, p := range pages {
			if !p.more {
				continue
			}
			if len(p.copies) == 0 {
				return nil, false, errors.New("actors: a node said it has more records but sent none")
			}
			if last := p.copies[len(p.copies)-1].id; !bounded || last < horizon {
				horizon, bounded = last, true
			}
		}
		best := make(map[string]recordCopy[T])
		for _, p := range pages {
			prev := cur
			for _, c := range p.copies {
				if c.id <= prev {
					return nil, false, fmt.Errorf("actors: a node answered ids out of order (%q after %q)", c.id, prev)
				}
				prev = c.id
				if bounded && c.id > horizon {
					break
				}
				if b, ok := best[c.id]; !ok || (c.owned && !b.owned) {
					best[c.id] = c
				}
			}
		}
		keys := make([]string, 0, len(best))
		for id := range best {
			keys = append(keys, id)
		}
		sort.Strings(keys)
		for _, id := range keys {
			c := best[id]
			rec := c.rec
			if !c.owned {
				r, ok, err := confirm(ctx, id)
				if err != nil {
					return nil, false, err
				}
				if !ok {
					continue
				}
				rec = r
			}
			out = append(out, rec)
			if len(out) > limit {
				return out[:limit], true, nil
			}
		}
		if !bounded {
			return out, false, nil
		}
		cur = horizon
	}
}
