package logs

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/pb"
)

// In a cluster each node keeps the logs of the calls it served. A listing
// asks every node for its page ([ListAcross]) and merges them newest
// first; its cursor holds each node's own position, so paging neither
// skips nor repeats an entry whichever node serves the next page:
//
//   - entries are ordered by (created_at, node, sequence), descending;
//     within a node that is its sequence order (the writer's rule);
//   - a node that has more bounds the page: nothing older than the last
//     entry it sent may be returned before its next entries are seen;
//   - a node's position advances past the entries returned from it only,
//     so what a page leaves out comes on a later page;
//   - a node missing from a cursor (it joined after the first page) is
//     read only up to the time of the first page.
//
// A node that does not answer fails the listing (unavailable): a page
// that silently lacks a node's entries would skip them for good.

// Serve makes n answer peers' log queries from this store; node names
// this node in cursors (stable across restarts: the node name).
func (s *Store) Serve(n *actors.Node, node string) {
	n.Handle(&pb.LogsQuery{}, func(_ context.Context, msg proto.Message) (proto.Message, error) {
		return s.answerList(node, msg.(*pb.LogsQuery))
	})
	n.Handle(&pb.LogGetQuery{}, func(_ context.Context, msg proto.Message) (proto.Message, error) {
		m := msg.(*pb.LogGetQuery)
		e, err := s.Get(ids.PlatformID(m.PlatformId), m.RequestId)
		if errors.Is(err, ErrNotFound) {
			return &pb.LogGetAnswer{}, nil
		}
		if err != nil {
			return nil, err
		}
		return &pb.LogGetAnswer{Found: true, Record: &pb.LogRecord{Seq: e.Seq, Value: encode(nil, &e)}}, nil
	})
}

func (s *Store) answerList(node string, m *pb.LogsQuery) (*pb.LogsPage, error) {
	out := &pb.LogsPage{Node: node}
	q := Query{Limit: int(m.Limit)}
	q.EndUserID = ids.EndUserID(m.EndUserId)
	q.Model = m.Model
	q.Kind = Kind(m.Kind)
	var err error
	if q.Status, err = ParseStatus(m.Status); err != nil {
		return nil, err
	}
	if m.StartNs != 0 {
		q.Start = time.Unix(0, m.StartNs)
	}
	if m.EndNs != 0 {
		q.End = time.Unix(0, m.EndNs)
	}
	if c := m.Cursor; c != nil {
		for _, d := range c.Done {
			if d == node {
				return out, nil
			}
		}
		if pos, ok := c.Positions[node]; ok {
			q.Cursor = pos
		} else if c.AsOfNs != 0 && (q.End.IsZero() || q.End.UnixNano() > c.AsOfNs) {
			q.End = time.Unix(0, c.AsOfNs) // joined after the first page
		}
	}
	page, err := s.List(ids.PlatformID(m.PlatformId), q)
	if err != nil {
		return nil, err
	}
	for i := range page.Entries {
		e := &page.Entries[i]
		out.Records = append(out.Records, &pb.LogRecord{Seq: e.Seq, Value: encode(nil, e)})
	}
	out.HasMore, out.NextCursor = page.HasMore, page.NextCursor
	return out, nil
}

var clusterCursorEncoding = base64.RawURLEncoding.Strict()

// maxClusterCursor bounds a cursor's length (positions of many nodes).
const maxClusterCursor = 64 << 10

func decodeClusterCursor(s string) (*pb.LogsCursor, error) {
	if len(s) > maxClusterCursor {
		return nil, ErrInvalidCursor
	}
	b, err := clusterCursorEncoding.DecodeString(s)
	if err != nil {
		return nil, ErrInvalidCursor
	}
	c := &pb.LogsCursor{}
	if err := proto.Unmarshal(b, c); err != nil || c.AsOfNs <= 0 {
		return nil, ErrInvalidCursor
	}
	for _, pos := range c.Positions {
		if _, err := DecodeCursor(pos); err != nil {
			return nil, ErrInvalidCursor
		}
	}
	return c, nil
}

func encodeClusterCursor(c *pb.LogsCursor) string {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("logs: marshal cursor: %v", err)) // a plain message always marshals
	}
	return clusterCursorEncoding.EncodeToString(b)
}

// candidate is one node's entry in a merge.
type candidate struct {
	node string
	e    Entry
}

// after reports whether a sorts after b newest first: a is older.
func (a *candidate) olderThan(b *candidate) bool {
	if !a.e.CreatedAt.Equal(b.e.CreatedAt) {
		return a.e.CreatedAt.Before(b.e.CreatedAt)
	}
	if a.node != b.node {
		return a.node < b.node
	}
	return a.e.Seq < b.e.Seq
}

// ListAcross returns one page of platform pid's entries matching q from
// every node reached by peers, newest first (see the rules above). Its
// cursors are not those of [Store.List]. Errors: [ErrInvalidCursor], or an
// unavailable node's.
func ListAcross(ctx context.Context, peers actors.Peers, pid ids.PlatformID, q Query) (Page, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	cur := &pb.LogsCursor{AsOfNs: time.Now().UnixNano()}
	first := q.Cursor == ""
	if !first {
		c, err := decodeClusterCursor(q.Cursor)
		if err != nil {
			return Page{}, err
		}
		cur = c
	}
	m := &pb.LogsQuery{PlatformId: string(pid), Limit: int32(limit), EndUserId: string(q.EndUserID),
		Model: q.Model, Kind: string(q.Kind), Status: q.Status.String()}
	if !first {
		m.Cursor = cur
	}
	if !q.Start.IsZero() {
		m.StartNs = q.Start.UnixNano()
	}
	if !q.End.IsZero() {
		m.EndNs = q.End.UnixNano()
	}
	res, err := peers.FanOut(ctx, m)
	if err != nil {
		return Page{}, err
	}
	type nodeState struct {
		page  *pb.LogsPage
		cands []candidate
		taken int
	}
	var nodes []*nodeState
	seen := map[string]bool{}
	var horizon *candidate // the newest "last entry" among nodes with more
	blocked := false       // a node with more sent nothing: nothing is safe to return
	for _, r := range res {
		p, ok := r.(*pb.LogsPage)
		if !ok {
			return Page{}, fmt.Errorf("logs: a node answered a %T", r)
		}
		if p.Node == "" || seen[p.Node] {
			return Page{}, fmt.Errorf("logs: two nodes answered as %q", p.Node)
		}
		seen[p.Node] = true
		ns := &nodeState{page: p}
		for _, rec := range p.Records {
			e := Entry{Seq: rec.Seq, PlatformID: pid}
			if err := decode(rec.Value, &e); err != nil {
				return Page{}, fmt.Errorf("logs: node %s entry %d: %w", p.Node, rec.Seq, err)
			}
			ns.cands = append(ns.cands, candidate{node: p.Node, e: e})
		}
		if p.HasMore {
			if len(ns.cands) == 0 {
				blocked = true
			} else if last := &ns.cands[len(ns.cands)-1]; horizon == nil || horizon.olderThan(last) {
				horizon = last
			}
		}
		nodes = append(nodes, ns)
	}
	var all []*candidate
	for _, ns := range nodes {
		for i := range ns.cands {
			all = append(all, &ns.cands[i])
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[j].olderThan(all[i]) })
	var page Page
	if !blocked {
		for _, c := range all {
			if len(page.Entries) == limit || (horizon != nil && c.olderThan(horizon)) {
				break
			}
			page.Entries = append(page.Entries, c.e)
			for _, ns := range nodes {
				if ns.page.Node == c.node {
					ns.taken++
				}
			}
		}
	}
	next := &pb.LogsCursor{Positions: map[string]string{}, AsOfNs: cur.AsOfNs, Done: append([]string(nil), cur.Done...)}
	more := false
	for _, ns := range nodes {
		name := ns.page.Node
		if slices.Contains(cur.Done, name) {
			continue
		}
		switch {
		case ns.taken == len(ns.cands) && !ns.page.HasMore:
			next.Done = append(next.Done, name)
			continue
		case ns.taken == len(ns.cands):
			next.Positions[name] = ns.page.NextCursor
		case ns.taken > 0:
			next.Positions[name] = EncodeCursor(ns.cands[ns.taken-1].e.Seq)
		default:
			// Nothing taken: the node stays where it was (a node never
			// read from continues from its newest entry, up to the first
			// page's time).
			if pos, ok := cur.Positions[name]; ok {
				next.Positions[name] = pos
			}
		}
		more = true
	}
	// Nodes that did not appear in this answer keep their positions (a
	// node cannot be missing: FanOut fails then; a node that left the
	// cluster took its entries with it).
	for name, pos := range cur.Positions {
		if !seen[name] {
			next.Positions[name] = pos
		}
	}
	if more {
		page.HasMore = true
		page.NextCursor = encodeClusterCursor(next)
	}
	return page, nil
}

// String returns the filter as [ParseStatus] reads it.
func (s Status) String() string {
	switch {
	case s.hi == 0:
		return ""
	case s.lo == 400 && s.hi == 599:
		return "error"
	case s.lo == s.hi:
		return strconv.Itoa(s.lo)
	}
	return strconv.Itoa(s.lo/100) + "xx"
}

// GetAcross returns the newest entry of request id rid of platform pid
// on any node, or [ErrNotFound].
func GetAcross(ctx context.Context, peers actors.Peers, pid ids.PlatformID, rid string) (Entry, error) {
	res, err := peers.FanOut(ctx, &pb.LogGetQuery{PlatformId: string(pid), RequestId: rid})
	var best *Entry
	for _, r := range res {
		a, ok := r.(*pb.LogGetAnswer)
		if !ok || !a.Found || a.Record == nil {
			continue
		}
		e := Entry{Seq: a.Record.Seq, PlatformID: pid}
		if derr := decode(a.Record.Value, &e); derr != nil {
			return Entry{}, derr
		}
		if best == nil || e.CreatedAt.After(best.CreatedAt) {
			best = &e
		}
	}
	if best != nil {
		return *best, nil
	}
	if err != nil {
		return Entry{}, err
	}
	return Entry{}, ErrNotFound
}
