package actors

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/assistiv/gateway/internal/pb"
)

// TestMergeListingRandom pages through random clusters: records spread
// over three nodes, each owned by one node that may or may not hold it
// (a record only other nodes hold was moved or deleted: the owner, asked
// through confirm, has the truth), stale copies on former owners, and
// nodes that answer at most a few records per round.
func TestMergeListingRandom(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		const nodes = 3
		type rec struct {
			owner int
			live  bool // the owner knows it (else deleted or only stale copies)
			held  [nodes]bool
		}
		truth := map[string]*rec{}
		var ids []string
		for i := range 20 + rng.IntN(40) {
			id := fmt.Sprintf("eu_%04d", i*3+rng.IntN(3))
			if truth[id] != nil {
				continue
			}
			r := &rec{owner: rng.IntN(nodes), live: rng.IntN(5) != 0}
			if r.live && rng.IntN(4) != 0 {
				r.held[r.owner] = true // usually on the owner's disk; else only in its memory (taken over)
			}
			for n := range nodes {
				if n != r.owner && rng.IntN(4) == 0 {
					r.held[n] = true // a stale copy on a former owner
				}
			}
			truth[id] = r
			ids = append(ids, id)
		}
		sort.Strings(ids)
		var want []string
		for _, id := range ids {
			// Listed: what the owner knows, when some node holds a copy
			// (a record no disk holds is found by no scan).
			if r := truth[id]; r.live && slices.Contains(r.held[:], true) {
				want = append(want, id)
			}
		}
		cap := 1 + rng.IntN(4) // the most a node answers per round
		fetch := func(after string, n int) ([]nodePage[*pb.EndUser], error) {
			pages := make([]nodePage[*pb.EndUser], nodes)
			for node := range nodes {
				for _, id := range ids {
					r := truth[id]
					if id <= after || !r.held[node] {
						continue
					}
					if len(pages[node].copies) == min(n, cap) {
						pages[node].more = true
						break
					}
					name := "stale"
					if node == r.owner {
						name = "current"
					}
					pages[node].copies = append(pages[node].copies, recordCopy[*pb.EndUser]{
						id: id, rec: &pb.EndUser{Id: id, DisplayName: name}, owned: node == r.owner})
				}
			}
			return pages, nil
		}
		confirm := func(_ context.Context, id string) (*pb.EndUser, bool, error) {
			if r := truth[id]; r.held[r.owner] {
				// Every node answers all its ids up to the round's bound,
				// so the owner's copy was in hand: no need to ask it.
				t.Fatalf("seed %d: asked the owner of %s, whose copy was in hand", seed, id)
			}
			if !truth[id].live {
				return nil, false, nil
			}
			return &pb.EndUser{Id: id, DisplayName: "current"}, true, nil
		}
		for _, limit := range []int{1, 2, 5, 100} {
			var got []string
			after := ""
			for round := 0; ; round++ {
				if round > len(ids)+1 {
					t.Fatalf("seed %d limit %d: paging does not end", seed, limit)
				}
				page, more, err := mergeListing(context.Background(), after, limit, fetch, confirm)
				if err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
				if len(page) > limit || (more && len(page) != limit) {
					t.Fatalf("seed %d limit %d: page of %d, more %v", seed, limit, len(page), more)
				}
				for _, u := range page {
					if u.DisplayName != "current" {
						t.Fatalf("seed %d: %s from a stale copy", seed, u.Id)
					}
					got = append(got, u.Id)
				}
				if !more {
					break
				}
				after = page[len(page)-1].Id
			}
			if !slices.Equal(got, want) {
				t.Fatalf("seed %d limit %d cap %d:\n got %v\nwant %v", seed, limit, cap, got, want)
			}
		}
	}
}

func TestMergeListingRefusesDisorder(t *testing.T) {
	fetch := func(string, int) ([]nodePage[*pb.EndUser], error) {
		return []nodePage[*pb.EndUser]{{copies: []recordCopy[*pb.EndUser]{
			{id: "eu_2", rec: &pb.EndUser{Id: "eu_2"}, owned: true},
			{id: "eu_1", rec: &pb.EndUser{Id: "eu_1"}, owned: true},
		}}}, nil
	}
	confirm := func(context.Context, string) (*pb.EndUser, bool, error) { return nil, false, nil }
	if _, _, err := mergeListing(context.Background(), "", 10, fetch, confirm); err == nil {
		t.Fatal("a node's ids out of order were merged")
	}
	moreEmpty := func(string, int) ([]nodePage[*pb.EndUser], error) {
		return []nodePage[*pb.EndUser]{{more: true}}, nil
	}
	if _, _, err := mergeListing(context.Background(), "", 10, moreEmpty, confirm); err == nil {
		t.Fatal("a node with more and nothing sent did not fail the listing (it would loop)")
	}
}
