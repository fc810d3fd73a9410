package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/logs"
	"github.com/assistiv/gateway/persistence"
)

// peerNode is one gateway node of an in-process cluster: its own Pebble
// store, actor environment and actor system, with protoactor remote on
// 127.0.0.1 and the cluster Peers on top. Ownership of actors is decided
// by the test (owner), as placement would.
type peerNode struct {
	logs  *logs.Store
	store *persistence.Store
	env   *actors.Env
	dir   *actors.Local
	peers *Peers
	addr  string
}

// peerCluster is n nodes; members is what every node's Peers sees (a
// test can take a node out of it to make it miss broadcasts).
type peerCluster struct {
	nodes []*peerNode
	ttl   time.Duration

	mu      sync.Mutex
	members []string
	hidden  map[[2]int]bool // {from, to}: node from does not see node to
	placed  map[string]int  // platform or end-user id → owning node; default 0
}

func (pc *peerCluster) owner(id actors.Identity) int {
	key := string(id.Platform)
	if id.Kind == actors.KindEndUser {
		key = string(id.EndUser)
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.placed[key]
}

// place puts the actor of each id (a platform or end-user id) on node.
func (pc *peerCluster) place(node int, idsOf ...string) {
	pc.mu.Lock()
	for _, id := range idsOf {
		pc.placed[id] = node
	}
	pc.mu.Unlock()
}

// memberList is what node i's Peers sees.
func (pc *peerCluster) memberList(i int) []string {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	var out []string
	for j, a := range pc.members {
		if j < len(pc.nodes) && pc.hidden[[2]int{i, j}] {
			continue
		}
		out = append(out, a)
	}
	return out
}

// hide makes node from stop seeing node to (true) or see it again.
func (pc *peerCluster) hide(from, to int, hidden bool) {
	pc.mu.Lock()
	pc.hidden[[2]int{from, to}] = hidden
	pc.mu.Unlock()
}

// Ask routes to the owner's directory: the placement a cluster Directory
// provides, over real actors on real nodes.
func (pc *peerCluster) Ask(ctx context.Context, id actors.Identity, msg proto.Message) (proto.Message, error) {
	return pc.nodes[pc.owner(id)].dir.Ask(ctx, id, msg)
}

var _ actors.Directory = (*peerCluster)(nil)

// startPeerCluster starts n nodes with data under root. The remotes start
// one after the other with no traffic in between (see TestPeers). stop
// closes everything.
func startPeerCluster(root string, n int, ttl time.Duration) (pc *peerCluster, stop func(), err error) {
	pc = &peerCluster{ttl: ttl, hidden: map[[2]int]bool{}, placed: map[string]int{}}
	log := slog.New(slog.DiscardHandler)
	var closers []func()
	stop = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	for i := range n {
		cfg := persistence.DefaultConfig()
		cfg.Dir = filepath.Join(root, fmt.Sprintf("node%d", i))
		cfg.Logger = log
		store, err := persistence.Open(cfg)
		if err != nil {
			stop()
			return nil, nil, err
		}
		env := actors.NewEnv(store, nil, log)
		env.IdleTimeout = time.Minute
		env.AskTimeout = 5 * time.Second
		idx := i
		env.Owns = func(id actors.Identity) bool { return pc.owner(id) == idx }
		dir := actors.NewLocal(env)
		r := remote.NewRemote(dir.System(), remote.Configure("127.0.0.1", 0))
		r.Start()
		node := actors.NewNode(env)
		logDB, err := logs.OpenDB(cfg.Dir, log)
		if err != nil {
			stop()
			return nil, nil, err
		}
		lcfg := logs.DefaultConfig()
		lcfg.Logger = log
		lcfg.MaxScan = 7 // short pages under selective filters
		ls, err := logs.Open(lcfg, logDB)
		if err != nil {
			stop()
			return nil, nil, err
		}
		ls.Serve(node, fmt.Sprintf("node%d", i))
		peers, err := NewPeers(dir.System(), node, func() []string { return pc.memberList(idx) })
		if err != nil {
			stop()
			return nil, nil, err
		}
		env.SetPeers(peers, ttl)
		nd := &peerNode{logs: ls, store: store, env: env, dir: dir, peers: peers, addr: dir.System().Address()}
		pc.nodes = append(pc.nodes, nd)
		closers = append(closers, func() {
			peers.Close()
			dir.Close() // stops the actor system
			r.Shutdown(false)
			ls.Close()
			_ = logDB.Close()
			_ = store.Close()
		})
	}
	pc.mu.Lock()
	for _, nd := range pc.nodes {
		pc.members = append(pc.members, nd.addr)
	}
	pc.mu.Unlock()
	return pc, stop, nil
}

func createPlatform(t *testing.T, pc *peerCluster, p ids.PlatformID) *pb.PlatformCreated {
	t.Helper()
	res, err := pc.Ask(context.Background(), actors.PlatformActor(p), &pb.CreatePlatform{Name: string(p), KeyName: "default"})
	if err != nil {
		t.Fatalf("create %s: %v", p, err)
	}
	return res.(*pb.PlatformCreated)
}

func digestOf(t *testing.T, raw string) ids.Digest {
	t.Helper()
	_, d, err := ids.ParseKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// waitWithin polls cond until it holds or within passes; it returns how long
// that took and fails the test past within.
func waitWithin(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

func testRevocationReachesEveryNode(t *testing.T, pc *peerCluster) {
	p := ids.PlatformID(ids.New(ids.PlatformPrefix, time.Now()))
	pc.place(0, string(p))
	created := createPlatform(t, pc, p)
	d := digestOf(t, created.RawKey)

	// Nodes 1 and 2 hold no record of the key: their lookups ask the
	// cluster and get the owner's (node 0's) answer, and cache it.
	for i, nd := range pc.nodes {
		pr, err := nd.env.Auth.Lookup(d)
		if err != nil || pr.Platform != p || pr.KeyID != created.Key.Id {
			t.Fatalf("node %d: Lookup = %+v, %v; want the key of %s", i, pr, err, p)
		}
		if i > 0 {
			if _, err := nd.store.Get(persistence.APIKeyKey(d[:])); !errors.Is(err, persistence.ErrNotFound) {
				t.Fatalf("node %d holds the key record itself (%v): the test would not test the fan-out", i, err)
			}
		}
	}
	if _, err := pc.Ask(context.Background(), actors.PlatformActor(p), &pb.RevokeAPIKey{KeyId: created.Key.Id}); err != nil {
		t.Fatal(err)
	}
	for i, nd := range pc.nodes {
		took := waitWithin(t, time.Second, fmt.Sprintf("node %d refuses the revoked key", i), func() bool {
			_, err := nd.env.Auth.Lookup(d)
			return errors.Is(err, actors.ErrUnknownKey)
		})
		t.Logf("node %d refused the revoked key after %s", i, took)
	}
}

func testRevocationMissedIsCaughtByTTL(t *testing.T, pc *peerCluster) {
	p := ids.PlatformID(ids.New(ids.PlatformPrefix, time.Now()))
	pc.place(0, string(p))
	ttl := pc.ttl
	created := createPlatform(t, pc, p)
	d := digestOf(t, created.RawKey)
	if _, err := pc.nodes[1].env.Auth.Lookup(d); err != nil {
		t.Fatal(err)
	}
	// Node 0 no longer sees node 1 when it revokes: the broadcast misses
	// it. Node 1 still sees node 0, the owner, whom it asks again once
	// its cached entry is past the TTL.
	pc.hide(0, 1, true)
	defer pc.hide(0, 1, false)
	if _, err := pc.Ask(context.Background(), actors.PlatformActor(p), &pb.RevokeAPIKey{KeyId: created.Key.Id}); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.nodes[1].env.Auth.Lookup(d); err != nil {
		t.Fatalf("node 1 refused at once (%v): the broadcast was not missed, the test tests nothing", err)
	}
	took := waitWithin(t, ttl+time.Second, "node 1 refuses the revoked key after the TTL", func() bool {
		_, err := pc.nodes[1].env.Auth.Lookup(d)
		return errors.Is(err, actors.ErrUnknownKey)
	})
	t.Logf("node 1 refused after %s (TTL %s)", took, ttl)
}

func testSettingsReachEveryNode(t *testing.T, pc *peerCluster) {
	p := ids.PlatformID(ids.New(ids.PlatformPrefix, time.Now()))
	q := ids.PlatformID(ids.New(ids.PlatformPrefix, time.Now()))
	pc.place(1, string(p), string(q))
	createPlatform(t, pc, p)
	for i, nd := range pc.nodes {
		if got := nd.env.Applied(p); got.MarkupBps != 0 || len(got.Providers) != 0 {
			t.Fatalf("node %d applies %+v before any change", i, got)
		}
	}
	// Markup and default limits.
	patch := &pb.PatchPlatform{
		Settings: &pb.PlatformSettings{MarkupBps: 2500, DefaultRateLimits: &pb.RateLimits{RequestsPerMinute: 7}},
		Fields:   []string{"markup_pct", "default_rate_limits"},
	}
	if _, err := pc.Ask(context.Background(), actors.PlatformActor(p), patch); err != nil {
		t.Fatal(err)
	}
	for i, nd := range pc.nodes {
		took := waitWithin(t, time.Second, fmt.Sprintf("node %d applies the new markup and limits", i), func() bool {
			got := nd.env.Applied(p)
			return got.MarkupBps == 2500 && got.Limits.GetRequestsPerMinute() == 7
		})
		t.Logf("node %d applied the patch after %s", i, took)
	}
	// Providers: configured, then disabled.
	set := &pb.SetProvider{Config: &pb.ProviderConfig{Provider: "openai", SealedApiKey: []byte("sealed"), KeyLast4: "abcd"}, SetKey: true}
	if _, err := pc.Ask(context.Background(), actors.PlatformActor(p), set); err != nil {
		t.Fatal(err)
	}
	for i, nd := range pc.nodes {
		waitWithin(t, time.Second, fmt.Sprintf("node %d sees openai enabled", i), func() bool {
			return slices.Equal(nd.env.Applied(p).Providers, []string{"openai"})
		})
	}
	off := &pb.SetProvider{Config: &pb.ProviderConfig{Provider: "openai", Enabled: false}, SetEnabled: true}
	if _, err := pc.Ask(context.Background(), actors.PlatformActor(p), off); err != nil {
		t.Fatal(err)
	}
	for i, nd := range pc.nodes {
		waitWithin(t, time.Second, fmt.Sprintf("node %d sees openai disabled", i), func() bool {
			return len(nd.env.Applied(p).Providers) == 0
		})
	}
	// A node whose cache has no entry fills from the owner (node 1), not
	// from a stale record on its own disk: node 2 misses q's broadcasts.
	pc.hide(1, 2, true)
	defer pc.hide(1, 2, false)
	createPlatform(t, pc, q)
	patchQ := &pb.PatchPlatform{Settings: &pb.PlatformSettings{MarkupBps: 1200}, Fields: []string{"markup_pct"}}
	if _, err := pc.Ask(context.Background(), actors.PlatformActor(q), patchQ); err != nil {
		t.Fatal(err)
	}
	stale := &pb.Platform{Id: string(q), Name: "stale", Settings: &pb.PlatformSettings{MarkupBps: 9999}}
	raw, _ := proto.Marshal(stale)
	if err := pc.nodes[2].store.Commit(persistence.Set(persistence.PlatformKey(string(q)), raw)); err != nil {
		t.Fatal(err)
	}
	if got := pc.nodes[2].env.Applied(q).MarkupBps; got != 1200 {
		t.Fatalf("node 2 applies markup %d for %s, want the owner's 1200", got, q)
	}
}

// testListingsAcrossNodes: platform P owned by node 0. End-users and
// platforms are placed by the parity of their index; node 0 is a former
// owner of some users now on node 1 and still holds old copies of them,
// and of users node 1 has deleted since.
func testListingsAcrossNodes(t *testing.T, pc *peerCluster) {
	now := time.Now()
	p := ids.PlatformID(ids.New(ids.PlatformPrefix, now))
	const users = 41
	var userIDs []string
	ownerOf := map[string]int{}
	for i := range users {
		u := ids.New(ids.EndUserPrefix, now.Add(time.Duration(i)*time.Millisecond))
		userIDs = append(userIDs, u)
		ownerOf[u] = i % 2
	}
	var platformIDs []string
	for i := range 9 {
		q := ids.New(ids.PlatformPrefix, now.Add(time.Duration(i+1)*time.Millisecond))
		platformIDs = append(platformIDs, q)
		ownerOf[q] = (i + 1) % 2
	}
	ownerOf[string(p)] = 0
	for id, node := range ownerOf {
		pc.place(node, id)
	}

	put := func(node int, key []byte, m proto.Message) {
		t.Helper()
		raw, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := pc.nodes[node].store.Commit(persistence.Set(key, raw)); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	deleted := map[string]bool{}
	for i, u := range userIDs {
		rec := &pb.EndUser{Id: u, PlatformId: string(p), ExternalId: fmt.Sprintf("ext-%d", i), DisplayName: "current"}
		switch {
		case i%7 == 3 && ownerOf[u] == 1:
			// Deleted by its owner (node 1); node 0, a former owner,
			// still holds a copy.
			put(0, persistence.EndUserKey(string(p), u), &pb.EndUser{Id: u, PlatformId: string(p), DisplayName: "stale"})
			deleted[u] = true
			continue
		case i%5 == 1 && ownerOf[u] == 1:
			// Moved from node 0 to node 1: both hold it, node 0's is old.
			put(0, persistence.EndUserKey(string(p), u), &pb.EndUser{Id: u, PlatformId: string(p), DisplayName: "stale", ExternalId: rec.ExternalId})
		}
		put(ownerOf[u], persistence.EndUserKey(string(p), u), rec)
		want = append(want, u)
	}
	if len(deleted) == 0 || len(want) == users || pc.nodes[2] == nil {
		t.Fatal("fixture has no deleted or moved users")
	}
	// Platforms: P on node 0, the others on their owners, plus a stale
	// copy of one on its former owner.
	put(0, persistence.PlatformKey(string(p)), &pb.Platform{Id: string(p), Name: "current"})
	wantPlatforms := []string{string(p)}
	for i, q := range platformIDs {
		put(ownerOf[q], persistence.PlatformKey(q), &pb.Platform{Id: q, Name: "current"})
		if i == 2 {
			put(1-ownerOf[q], persistence.PlatformKey(q), &pb.Platform{Id: q, Name: "stale"})
		}
		wantPlatforms = append(wantPlatforms, q)
	}
	slices.Sort(wantPlatforms)

	for from, nd := range pc.nodes {
		for _, limit := range []int{1, 3, 7, 100} {
			var got []string
			after := ""
			for pages := 0; ; pages++ {
				if pages > users+1 {
					t.Fatalf("node %d limit %d: paging does not end", from, limit)
				}
				page, more, err := actors.ListEndUsers(context.Background(), nd.peers, pc, p, after, limit, "")
				if err != nil {
					t.Fatalf("node %d limit %d: %v", from, limit, err)
				}
				if len(page) > limit || (more && len(page) != limit) {
					t.Fatalf("node %d limit %d: page of %d, more %v", from, limit, len(page), more)
				}
				for _, u := range page {
					if u.DisplayName != "current" {
						t.Fatalf("node %d: listed %s from a stale copy", from, u.Id)
					}
					got = append(got, u.Id)
				}
				if !more {
					break
				}
				after = page[len(page)-1].Id
			}
			if !slices.Equal(got, want) {
				t.Fatalf("node %d limit %d: listed %d users %v\nwant %d %v", from, limit, len(got), got, len(want), want)
			}
		}
		// The external_id filter applies to the owner's copy.
		moved := ""
		for i, u := range userIDs {
			if i%5 == 1 && ownerOf[u] == 1 && !deleted[u] {
				moved = fmt.Sprintf("ext-%d", i)
				break
			}
		}
		page, more, err := actors.ListEndUsers(context.Background(), nd.peers, pc, p, "", 10, moved)
		if err != nil || more || len(page) != 1 || page[0].ExternalId != moved || page[0].DisplayName != "current" {
			t.Fatalf("node %d: external_id=%s listed %v (more %v, err %v)", from, moved, page, more, err)
		}

		var gotPlatforms, all []string
		after := ""
		for {
			page, more, err := actors.ListPlatforms(context.Background(), nd.peers, pc, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range page {
				if len(all) > 0 && q.Id <= all[len(all)-1] {
					t.Fatalf("node %d: platform %s listed after %s", from, q.Id, all[len(all)-1])
				}
				all = append(all, q.Id)
				if !slices.Contains(wantPlatforms, q.Id) {
					continue // another subtest's
				}
				if q.Name != "current" {
					t.Fatalf("node %d: listed platform %s from a stale copy", from, q.Id)
				}
				gotPlatforms = append(gotPlatforms, q.Id)
			}
			if !more {
				break
			}
			after = page[len(page)-1].Id
		}
		if !slices.Equal(gotPlatforms, wantPlatforms) {
			t.Fatalf("node %d: platforms %v, want %v", from, gotPlatforms, wantPlatforms)
		}
	}
}

// A listing needs every node's records: a node that does not answer fails
// it (503 at the edge) rather than returning a silently short page.
func testListingFailsWhenANodeIsDown(t *testing.T, pc *peerCluster) {
	p := ids.PlatformID(ids.New(ids.PlatformPrefix, time.Now()))
	pc.mu.Lock()
	live := slices.Clone(pc.members)
	pc.members = append(pc.members, "127.0.0.1:1") // a member that is gone
	pc.mu.Unlock()
	defer func() {
		pc.mu.Lock()
		pc.members = live
		pc.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _, err := actors.ListEndUsers(ctx, pc.nodes[0].peers, pc, p, "", 10, "")
	if !errors.Is(err, actors.ErrUnavailable) {
		t.Fatalf("listing with a dead member: %v, want unavailable", err)
	}
}

// testStoredResponsesAcrossNodes: a stored response (and its items) lives
// on the node that served the call; any node finds it by fan-out, and a
// deletion reaches every node's copy.
func testStoredResponsesAcrossNodes(t *testing.T, pc *peerCluster) {
	p, u := "plat_resp", "eu_resp"
	resp, item := "resp_1", "msg_1"
	if err := pc.nodes[2].store.Commit(
		persistence.Set(persistence.ResponseKey(p, u, resp), []byte(`{"response":{}}`)),
		persistence.Set(persistence.ResponseItemKey(p, u, item), []byte(`{"item":{}}`)),
	); err != nil {
		t.Fatal(err)
	}
	find := func(from int, id string, isItem bool) (string, bool) {
		t.Helper()
		res, err := pc.nodes[from].peers.FanOut(context.Background(), &pb.StoredResponseQuery{PlatformId: p, EndUserId: u, Id: id, Item: isItem})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != len(pc.nodes) {
			t.Fatalf("%d answers from %d nodes", len(res), len(pc.nodes))
		}
		for _, m := range res {
			if a := m.(*pb.StoredResponseAnswer); a.Found {
				return string(a.Value), true
			}
		}
		return "", false
	}
	if v, ok := find(0, resp, false); !ok || v != `{"response":{}}` {
		t.Fatalf("node 0 does not find node 2's response: %q %v", v, ok)
	}
	if v, ok := find(1, item, true); !ok || v != `{"item":{}}` {
		t.Fatalf("node 1 does not find node 2's item: %q %v", v, ok)
	}
	if _, ok := find(0, "resp_other", false); ok {
		t.Fatal("found a response nobody stored")
	}
	// Another end-user's id finds nothing.
	res, err := pc.nodes[0].peers.FanOut(context.Background(), &pb.StoredResponseQuery{PlatformId: p, EndUserId: "eu_other", Id: resp})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range res {
		if m.(*pb.StoredResponseAnswer).Found {
			t.Fatal("another end-user's response was found")
		}
	}
	if err := pc.nodes[0].peers.Broadcast(context.Background(), &pb.StoredResponsesDeleted{PlatformId: p, EndUserId: u, ResponseId: resp, ItemIds: []string{item}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := find(0, resp, false); ok {
		t.Fatal("the response outlived its deletion")
	}
	if _, ok := find(0, item, true); ok {
		t.Fatal("the item outlived its response's deletion")
	}
}

// testLogsPagedAcrossNodes: each node logs the calls it served; GET
// .../logs pages through all of them, newest first, from any node, with
// and without a selective filter (MaxScan 7 cuts nodes' pages short).
func testLogsPagedAcrossNodes(t *testing.T, pc *peerCluster) {
	p := ids.PlatformID(ids.New(ids.PlatformPrefix, time.Now()))
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	type written struct {
		rid string
		at  time.Time
		eu  ids.EndUserID
	}
	var all []written
	alice, bob := ids.EndUserID("eu_alice"), ids.EndUserID("eu_bob")
	for k := range 40 {
		node := (k * 7) % 3 // uneven interleaving across nodes
		if k%9 == 0 {
			node = 2 // a burst on one node
		}
		eu := bob
		if k%4 == 0 {
			eu = alice
		}
		w := written{rid: fmt.Sprintf("req_%03d", k), at: base.Add(time.Duration(k) * time.Millisecond), eu: eu}
		all = append(all, w)
		pc.nodes[node].logs.Writer().Write(logs.Entry{RequestID: w.rid, PlatformID: p, EndUserID: eu, Kind: "chat.completions",
			Model: "m", StatusCode: 200, CreatedAt: w.at})
	}
	// Two entries at the same instant on two nodes.
	for n := range 2 {
		w := written{rid: fmt.Sprintf("req_tie_%d", n), at: base.Add(45*time.Millisecond + 500*time.Microsecond), eu: bob} // after every other: the writer never lets time go back on a node
		all = append(all, w)
		pc.nodes[n].logs.Writer().Write(logs.Entry{RequestID: w.rid, PlatformID: p, EndUserID: bob, Kind: "chat.completions",
			Model: "m", StatusCode: 200, CreatedAt: w.at})
	}
	for _, nd := range pc.nodes {
		if err := nd.logs.Writer().Flush(); err != nil {
			t.Fatal(err)
		}
	}
	// Newest first; entries of one instant in (node, seq) order, which the
	// test does not predict: compare as sets per instant.
	slices.SortStableFunc(all, func(a, b written) int { return b.at.Compare(a.at) })
	check := func(from int, limit int, filter ids.EndUserID) {
		t.Helper()
		var want []written
		for _, w := range all {
			if filter == "" || w.eu == filter {
				want = append(want, w)
			}
		}
		var got []logs.Entry
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 200 {
				t.Fatalf("node %d limit %d filter %q: paging does not end", from, limit, filter)
			}
			page, err := logs.ListAcross(context.Background(), pc.nodes[from].peers, p,
				logs.Query{Filter: logs.Filter{EndUserID: filter}, Limit: limit, Cursor: cursor})
			if err != nil {
				t.Fatalf("node %d limit %d filter %q: %v", from, limit, filter, err)
			}
			if len(page.Entries) > limit {
				t.Fatalf("page of %d > limit %d", len(page.Entries), limit)
			}
			got = append(got, page.Entries...)
			if !page.HasMore {
				break
			}
			cursor = page.NextCursor
		}
		if len(got) != len(want) {
			t.Fatalf("node %d limit %d filter %q: %d entries, want %d", from, limit, filter, len(got), len(want))
		}
		seen := map[string]bool{}
		for i, e := range got {
			if seen[e.RequestID] {
				t.Fatalf("node %d limit %d: %s twice", from, limit, e.RequestID)
			}
			seen[e.RequestID] = true
			if !e.CreatedAt.Equal(want[i].at) {
				t.Fatalf("node %d limit %d filter %q: entry %d is %s at %s, want one at %s", from, limit, filter, i, e.RequestID, e.CreatedAt, want[i].at)
			}
			if filter != "" && e.EndUserID != filter {
				t.Fatalf("filter %q returned %s of %s", filter, e.RequestID, e.EndUserID)
			}
		}
	}
	for from := range pc.nodes {
		for _, limit := range []int{1, 4, 50} {
			check(from, limit, "")
			check(from, limit, alice)
		}
	}
	// A request logged on node 2 is found from node 0.
	e, err := logs.GetAcross(context.Background(), pc.nodes[0].peers, p, "req_000")
	if err != nil || e.RequestID != "req_000" {
		t.Fatalf("GetAcross = %+v, %v", e, err)
	}
	if _, err := logs.GetAcross(context.Background(), pc.nodes[0].peers, p, "req_none"); !errors.Is(err, logs.ErrNotFound) {
		t.Fatalf("GetAcross of an unknown id: %v", err)
	}
}

// peersChildEnv selects TestPeersChild in the child process TestPeers
// starts (as the value of childEnv, which also keeps TestMain's leak
// check out of the child: protoactor leaves goroutines behind by design).
const peersChildEnv = "peers"

// The child's cluster, started by init, before any test runs.
var (
	childCluster *peerCluster
	childStop    func()
	childRoot    string
	childErr     error
)

func init() {
	if os.Getenv(childEnv) != peersChildEnv {
		return
	}
	childRoot, childErr = os.MkdirTemp("", "peers-test-")
	if childErr == nil {
		childCluster, childStop, childErr = startPeerCluster(childRoot, 3, 2*time.Second)
	}
	// Let each remote's grpc server goroutine log its start (see
	// TestPeers) before the tests begin.
	time.Sleep(300 * time.Millisecond)
}

// TestPeers runs the Peers tests in a child process of this test binary
// (race detector included): three nodes, each with its own Pebble store,
// actor system and protoactor remote on 127.0.0.1.
//
// Starting a second remote in one process races inside protoactor-go:
// Remote.Start sets grpc's global logger (grpclog.SetLoggerV2) while the
// first remote's grpc server goroutine reads it to log its start
// (libraries.md §2.6 (a); production runs one remote per process). The
// child starts its three remotes in init, before any test, so those
// reports are attributed to no test; this test then accepts the child's
// race reports only if every one is that write in Remote.Start, and
// fails on any other (any race during a test also fails that test in the
// child).
func TestPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPeersChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+peersChildEnv)
	out, err := cmd.CombinedOutput()
	text := string(out)
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, "peers_test.go") || strings.HasPrefix(strings.TrimSpace(l), "---") {
			t.Log(strings.TrimSpace(l))
		}
	}
	if !strings.Contains(text, "--- PASS: TestPeersChild") || strings.Contains(text, "--- FAIL") {
		t.Fatalf("child did not pass the tests (%v):\n%s", err, text)
	}
	reports := strings.Split(text, "WARNING: DATA RACE")[1:]
	// With races reported outside any test (init's), the child's testing
	// package says so and exits 1 after its tests passed.
	if err != nil && (len(reports) == 0 || !strings.Contains(text, "race detected outside of test execution")) {
		t.Fatalf("child: %v\n%s", err, text)
	}
	for _, r := range reports {
		r, _, _ = strings.Cut(r, "==================")
		if !strings.Contains(r, "grpclog.SetLoggerV2") || !strings.Contains(r, "remote.(*Remote).Start") {
			t.Fatalf("child reported a race other than protoactor's remote start:\n%s", r)
		}
	}
	t.Logf("child: %d race report(s), all grpclog.SetLoggerV2 in protoactor's Remote.Start", len(reports))
}

func TestPeersChild(t *testing.T) {
	if os.Getenv(childEnv) != peersChildEnv {
		t.Skip("run by TestPeers in a child process")
	}
	if childErr != nil {
		t.Fatal(childErr)
	}
	t.Cleanup(func() {
		childStop()
		_ = os.RemoveAll(childRoot)
	})
	pc := childCluster
	t.Run("RevocationReachesEveryNode", func(t *testing.T) { testRevocationReachesEveryNode(t, pc) })
	t.Run("RevocationMissedIsCaughtByTTL", func(t *testing.T) { testRevocationMissedIsCaughtByTTL(t, pc) })
	t.Run("SettingsReachEveryNode", func(t *testing.T) { testSettingsReachEveryNode(t, pc) })
	t.Run("ListingsAcrossNodes", func(t *testing.T) { testListingsAcrossNodes(t, pc) })
	t.Run("StoredResponsesAcrossNodes", func(t *testing.T) { testStoredResponsesAcrossNodes(t, pc) })
	t.Run("LogsPagedAcrossNodes", func(t *testing.T) { testLogsPagedAcrossNodes(t, pc) })
	t.Run("ListingFailsWhenANodeIsDown", func(t *testing.T) { testListingFailsWhenANodeIsDown(t, pc) })
}
