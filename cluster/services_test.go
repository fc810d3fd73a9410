package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/dashboard"
	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/egress"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/internal/secrets"
	"github.com/assistiv/gateway/mcp/apps"
	"github.com/assistiv/gateway/oauthconn"
	"github.com/assistiv/gateway/persistence"
	"github.com/assistiv/gateway/skills"
	"github.com/assistiv/gateway/webhooks"
	"github.com/assistiv/gateway/webhooks/whsig"
)

// testPostgres returns a Postgres URL scoped to a fresh schema, dropped
// at the end. Without a reachable server the test skips, except under
// CI=true, where it fails.
func testPostgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv("ASSISTIV_TEST_POSTGRES_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, base)
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Postgres unreachable at %s under CI: %v", base, err)
		}
		t.Skipf("Postgres unreachable at %s (set ASSISTIV_TEST_POSTGRES_URL): %v", base, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		pool.Close()
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

// svcNode is a cluster node with the services whose records the nodes
// share: webhooks, dashboard accounts, skills and OAuth connections.
type svcNode struct {
	*testNode
	shared   *Shared
	hooks    *webhooks.Service
	accounts *dashboard.Accounts
	skills   *skills.Catalog
	conns    *oauthconn.Manager
}

// testApp is an OAuth app whose authorization server is faked by the test.
func testApp() *apps.Spec {
	return &apps.Spec{Name: "testapp", Title: "Test app", AuthorizeURL: "https://auth.invalid/authorize",
		TokenURL: "https://auth.invalid/token", APIBase: "https://api.invalid", DefaultScopes: []string{"read"}, ScopeSep: " ", ScopeParam: "scope"}
}

// startSvc starts a node as testCluster.start does, with the services
// over shared records in the Postgres at pg. keyring is the cluster's
// master key.
func startSvc(c *testCluster, pg string, keyring *secrets.Keyring, resync time.Duration) *svcNode {
	t := c.t
	t.Helper()
	c.mu.Lock()
	c.seq++
	name := "n" + strconv.Itoa(c.seq)
	var seeds []string
	for _, n := range c.nodes {
		seeds = append(seeds, n.node.GossipAddr())
	}
	c.mu.Unlock()
	scfg := persistence.DefaultConfig()
	scfg.Dir, scfg.Logger = t.TempDir(), c.log
	st, err := persistence.Open(scfg)
	if err != nil {
		t.Fatal(err)
	}
	wcfg := webhooks.DefaultConfig()
	wcfg.Keyring, wcfg.Logger = keyring, c.log
	wcfg.Egress = egress.Policy{AllowPrivate: true}
	wcfg.PollInterval = 50 * time.Millisecond
	subs := &actors.Subscriptions{}
	hooks, err := webhooks.New(wcfg, st, subs)
	if err != nil {
		t.Fatal(err)
	}
	env := actors.NewEnv(st, nil, c.log)
	env.Node = name
	env.IdleTimeout = time.Hour
	env.LeaseChunk = 20 * money.PerUSD / 100
	env.LeaseFlushInterval = 20 * time.Millisecond
	env.Subscriptions = subs
	env.Notify = hooks.Wake
	gossip := DefaultConfig()
	gossip.Seeds = seeds
	gossip.Debounce = 20 * time.Millisecond
	gossip.LeaveTimeout = time.Second
	n, err := Start(NodeConfig{Gossip: gossip, Key: c.key, Env: env, DrainTimeout: 500 * time.Millisecond})
	if err != nil {
		_ = st.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	tn := &testNode{name: name, dir: scfg.Dir, store: st, env: env, node: n}
	t.Cleanup(func() {
		c.mu.Lock()
		_, running := c.nodes[name]
		delete(c.nodes, name)
		c.mu.Unlock()
		if running {
			_ = n.Shutdown(context.Background())
			_ = st.Close()
		}
	})
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	sh, err := NewShared(ctx, pool, n.Peers(), n.PeerNode())
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.ShareWebhooks(hooks, resync); err != nil {
		t.Fatal(err)
	}
	hooks.Start()
	cat, err := skills.New(skills.Config{}, sh, keyring)
	if err != nil {
		t.Fatal(err)
	}
	conns := oauthconn.New(oauthconn.Config{PublicURL: "https://gw.invalid", Egress: egress.Policy{AllowPrivate: true},
		StateTTL: 10 * time.Minute, CallTimeout: 10 * time.Second, MaxResponseBytes: 1 << 20, RefreshSkew: time.Minute,
		SweepInterval: time.Hour, Clock: clock.Real{}, Logger: c.log}, sh, keyring, &http.Client{Timeout: 10 * time.Second}, []*apps.Spec{testApp()}, nil)
	sn := &svcNode{testNode: tn, shared: sh, hooks: hooks, skills: cat, conns: conns,
		accounts: dashboard.NewAccounts(sh, clock.Real{}, time.Hour, time.Hour, bcrypt.MinCost)}
	t.Cleanup(func() { // runs before the node's (LIFO): services first
		conns.Close()
		hooks.Close()
		sh.Close()
		pool.Close()
	})
	c.mu.Lock()
	c.nodes[name] = tn
	c.mu.Unlock()
	c.settle()
	return sn
}

func startSvcCluster(t *testing.T, count int, resync time.Duration) (*testCluster, []*svcNode) {
	pg := testPostgres(t)
	c := newTestCluster(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyring, err := secrets.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	nodes := make([]*svcNode, count)
	for i := range nodes {
		nodes[i] = startSvc(c, pg, keyring, resync)
	}
	return c, nodes
}

// eventually polls cond every 10 ms until it holds or within passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// receiver records the webhook deliveries it gets.
type receiver struct {
	mu  sync.Mutex
	got []delivery
}

type delivery struct {
	header http.Header
	body   []byte
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.got = append(r.got, delivery{req.Header.Clone(), b})
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// platformNotOwnedBy creates a platform (through n) whose actor another
// node owns.
func platformNotOwnedBy(t testing.TB, n *svcNode) ids.PlatformID {
	t.Helper()
	for range 200 {
		p := ids.PlatformID(ids.New(ids.PlatformPrefix, time.Now()))
		if n.node.Owner(actors.PlatformActor(p)) == n.node.Address() {
			continue
		}
		ask(t, n.testNode, actors.PlatformActor(p), &pb.CreatePlatform{Name: "shared"})
		return p
	}
	t.Fatal("every platform id landed on one node")
	return ""
}

func nodeOwning(nodes []*svcNode, id actors.Identity) *svcNode {
	for _, n := range nodes {
		if n.node.Owner(id) == n.node.Address() {
			return n
		}
	}
	return nil
}

func TestWebhookEndpointCreatedOnOneNodeDeliversEventsRaisedOnAnother(tt *testing.T) {
	t := track(tt)
	_, nodes := startSvcCluster(tt, 3, 0)
	a := nodes[0]
	p := platformNotOwnedBy(t, a)
	owner := nodeOwning(nodes, actors.PlatformActor(p))
	if owner == nil || owner == a {
		t.Fatalf("platform %s: owner %v", p, owner)
	}

	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	ctx := context.Background()
	u := srv.URL + "/hook"
	ep, secret, err := a.hooks.CreateEndpoint(ctx, p, webhooks.EndpointInput{URL: &u, EventTypes: []string{actors.EventWalletToppedUp}})
	if err != nil {
		t.Fatalf("CreateEndpoint via %s: %v", a.name, err)
	}
	// Known on every node as soon as the create answered.
	for _, n := range nodes {
		got, err := n.hooks.GetEndpoint(p, ep.ID)
		if err != nil || got.URL != u {
			t.Fatalf("GetEndpoint via %s = %+v, %v; want the endpoint created via %s", n.name, got, err, a.name)
		}
		list, err := n.hooks.ListEndpoints(p)
		if err != nil || len(list) != 1 || list[0].ID != ep.ID {
			t.Fatalf("ListEndpoints via %s = %+v, %v", n.name, list, err)
		}
		if s, err := n.hooks.Secret(p, ep.ID); err != nil || s != secret {
			t.Fatalf("Secret via %s = %q, %v; want the one returned at creation", n.name, s, err)
		}
	}

	// The top-up's event is committed by the platform's owner (not a),
	// asked through the third node; it is delivered once, signed.
	var third *svcNode
	for _, n := range nodes {
		if n != a && n != owner {
			third = n
		}
	}
	ask(t, third.testNode, actors.PlatformActor(p), &pb.WalletTopup{AmountNanos: int64(money.PerUSD), IdempotencyKey: "t1"})
	eventually(t, 10*time.Second, "the top-up's webhook delivered", func() bool { return len(rcv.deliveries()) >= 1 })
	d := rcv.deliveries()[0]
	if err := whsig.Verify(secret, d.header, d.body, time.Now(), 5*time.Minute); err != nil {
		t.Fatalf("the delivery's signature does not verify with the endpoint's secret: %v", err)
	}
	var ev actors.Event
	if err := json.Unmarshal(d.body, &ev); err != nil || ev.EventType != actors.EventWalletToppedUp {
		t.Fatalf("delivered %s (%v); want a %s event", d.body, err, actors.EventWalletToppedUp)
	}
	msgID := d.header.Get("webhook-id")
	// Exactly one node holds the message, delivered: it was fanned out
	// once cluster-wide, and the receiver saw one delivery of it.
	eventually(t, 10*time.Second, "the message recorded as delivered", func() bool {
		m, err := owner.hooks.GetMessage(p, ep.ID, msgID)
		return err == nil && m.Status == webhooks.StatusDelivered
	})
	for _, n := range nodes {
		here, err := n.hooks.AnswerLog(webhooks.LogQuery{Platform: string(p), Endpoint: ep.ID, MessageID: msgID})
		if err != nil || here.Found != (n == owner) {
			t.Errorf("%s holds message %s: %v (%v); want only the owner %s to", n.name, msgID, here.Found, err, owner.name)
		}
	}
	if got := len(rcv.deliveries()); got != 1 {
		t.Errorf("the receiver got %d deliveries; want 1", got)
	}
	// The delivery log reads the same through every node (merged from
	// the nodes that delivered), and a replay through any node is made
	// by the node holding the message, same webhook-id.
	for _, n := range nodes {
		page, err := n.hooks.ListMessages(p, ep.ID, webhooks.MessageQuery{})
		if err != nil || len(page.Messages) != 1 || page.Messages[0].ID != msgID {
			t.Fatalf("ListMessages via %s = %+v, %v; want the one message", n.name, page, err)
		}
		m, err := n.hooks.GetMessage(p, ep.ID, msgID)
		if err != nil || m.Status != webhooks.StatusDelivered {
			t.Fatalf("GetMessage via %s = %+v, %v", n.name, m, err)
		}
	}
	if _, err := a.hooks.Replay(p, ep.ID, msgID); err != nil {
		t.Fatalf("Replay via %s: %v", a.name, err)
	}
	eventually(t, 10*time.Second, "the replay delivered", func() bool { return len(rcv.deliveries()) >= 2 })
	if d2 := rcv.deliveries()[1]; d2.header.Get("webhook-id") != msgID || !bytes.Equal(d2.body, d.body) {
		t.Errorf("the replay sent %s %s; want %s with the same body", d2.header.Get("webhook-id"), d2.body, msgID)
	}
	eventually(t, 10*time.Second, "the replay recorded as delivered", func() bool {
		m, err := third.hooks.GetMessage(p, ep.ID, msgID)
		return err == nil && m.Status == webhooks.StatusDelivered && m.Attempts == 2
	})

	// An update via one node is seen on the others at once.
	off := false
	if _, err := third.hooks.UpdateEndpoint(ctx, p, ep.ID, webhooks.EndpointInput{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if got, err := n.hooks.GetEndpoint(p, ep.ID); err != nil || got.Enabled {
			t.Errorf("GetEndpoint via %s after disabling via %s = %+v, %v", n.name, third.name, got, err)
		}
	}
	// Deleting via the owner: gone everywhere within 1 s.
	if err := owner.hooks.DeleteEndpoint(p, ep.ID); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		eventually(t, time.Second, "the deleted endpoint gone on "+n.name, func() bool {
			_, err := n.hooks.GetEndpoint(p, ep.ID)
			return errors.Is(err, webhooks.ErrNotFound)
		})
	}
	checksPassed(t)
}

// A node that missed an announcement (a change written to the shared
// records without one) catches up at its next resync.
func TestWebhookEndpointChangeWithoutAnnouncementReachesEveryNodeAtResync(tt *testing.T) {
	t := track(tt)
	_, nodes := startSvcCluster(tt, 2, 200*time.Millisecond)
	a, b := nodes[0], nodes[1]
	p := platformNotOwnedBy(t, a)
	u := "http://127.0.0.1:1/hook"
	ep, _, err := a.hooks.CreateEndpoint(context.Background(), p, webhooks.EndpointInput{URL: &u, EventTypes: []string{actors.EventWalletToppedUp}})
	if err != nil {
		t.Fatal(err)
	}
	key := persistence.WebhookEndpointKey(string(p), ep.ID)
	raw, err := a.shared.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	const moved = "http://127.0.0.1:2/moved"
	rec["url"] = moved
	changed, _ := json.Marshal(rec)
	if err := a.shared.Commit(persistence.Set(key, changed)); err != nil { // no announcement
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the unannounced change seen on "+b.name, func() bool {
		e, err := b.hooks.GetEndpoint(p, ep.ID)
		return err == nil && e.URL == moved
	})
	if err := a.shared.Commit(persistence.Delete(key)); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		eventually(t, 10*time.Second, "the unannounced delete seen on "+n.name, func() bool {
			_, err := n.hooks.GetEndpoint(p, ep.ID)
			return errors.Is(err, webhooks.ErrNotFound)
		})
	}
	checksPassed(t)
}

func TestWebhookEndpointOfUnknownPlatformIsNotFoundOnEveryNode(tt *testing.T) {
	t := track(tt)
	_, nodes := startSvcCluster(tt, 2, 0)
	u := "http://127.0.0.1:1/hook"
	p := ids.PlatformID(ids.New(ids.PlatformPrefix, time.Now()))
	for _, n := range nodes {
		if _, _, err := n.hooks.CreateEndpoint(context.Background(), p, webhooks.EndpointInput{URL: &u, EventTypes: []string{actors.EventWalletToppedUp}}); !errors.Is(err, webhooks.ErrNotFound) {
			t.Errorf("CreateEndpoint for an unknown platform via %s = %v; want not found", n.name, err)
		}
	}
	checksPassed(t)
}

func TestDashboardSessionOpenedOnOneNodeIsValidOnAllAndLogoutEndsItEverywhere(tt *testing.T) {
	t := track(tt)
	_, nodes := startSvcCluster(tt, 3, 0)
	a, b, c := nodes[0], nodes[1], nodes[2]
	p := string(platformNotOwnedBy(t, a))
	const email, password = "owner@example.com", "correct horse battery staple"
	if _, err := a.accounts.ClaimOwner(p, email, "Owner", password); err != nil {
		t.Fatalf("ClaimOwner via %s: %v", a.name, err)
	}
	// Sign in on b with the account made on a.
	m, err := b.accounts.Authenticate(email, password)
	if err != nil {
		t.Fatalf("Authenticate via %s: %v", b.name, err)
	}
	raw, _, err := a.accounts.NewSession(dashboard.Session{Platform: m.Platform, Email: m.Email})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		s, err := n.accounts.Session(raw)
		if err != nil || s.Email != email || s.Role != dashboard.RoleOwner {
			t.Fatalf("Session via %s = %+v, %v; want the owner's session opened via %s", n.name, s, err, a.name)
		}
	}
	// Log out on a: c refuses the cookie within 1 s.
	s, err := a.accounts.Session(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.accounts.EndSession(s); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "the session ended on "+c.name, func() bool {
		_, err := c.accounts.Session(raw)
		return errors.Is(err, dashboard.ErrNoSession)
	})
	checksPassed(t)
}

func TestSkillUploadedOnOneNodeIsServedByAll(tt *testing.T) {
	t := track(tt)
	_, nodes := startSvcCluster(tt, 3, 0)
	a := nodes[0]
	p := platformNotOwnedBy(t, a)
	body := []byte("---\nname: greeter\ndescription: says hello\n---\nSay hello.\n")
	v, err := a.skills.Create(p, "", "greeter", "says hello", []skills.Content{skills.NewContent("SKILL.md", body)})
	if err != nil {
		t.Fatalf("Create via %s: %v", a.name, err)
	}
	for _, n := range nodes {
		f, err := n.skills.Fetch(p, v.ID)
		if err != nil || len(f.Files) != 1 || f.Files[0].Content != string(body) {
			t.Fatalf("Fetch via %s = %+v, %v; want the skill created via %s", n.name, f, err, a.name)
		}
		list, _, err := n.skills.List(p, skills.Filter{Limit: 100})
		found := false
		for _, s := range list {
			found = found || s.ID == v.ID
		}
		if err != nil || !found {
			t.Fatalf("List via %s = %+v, %v; want %s in it", n.name, list, err, v.ID)
		}
	}
	// Another platform sees nothing of it, on any node.
	other := platformNotOwnedBy(t, a)
	for _, n := range nodes {
		if _, err := n.skills.Fetch(other, v.ID); err == nil {
			t.Errorf("Fetch by another platform via %s succeeded", n.name)
		}
	}
	if err := nodes[2].skills.Delete(p, v.ID); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if _, err := n.skills.Fetch(p, v.ID); err == nil {
			t.Errorf("Fetch via %s after the delete via %s succeeded", n.name, nodes[2].name)
		}
	}
	checksPassed(t)
}

// fakeAuthServer is an OAuth authorization server's token endpoint.
func fakeAuthServer(t testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("code") != "the-code" {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"at-1","token_type":"bearer","expires_in":3600,"refresh_token":"rt-1","scope":"read"}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestOAuthConnectionMadeThroughOneNodeIsSeenByAllAndDisconnectEverywhere(tt *testing.T) {
	t := track(tt)
	_, nodes := startSvcCluster(tt, 3, 0)
	a, b, c := nodes[0], nodes[1], nodes[2]
	p := platformNotOwnedBy(t, a)
	eu := ids.EndUserID(ids.New(ids.EndUserPrefix, time.Now()))
	auth := fakeAuthServer(t)
	ctx := context.Background()
	id, secret, landing, token, active := "client-1", "secret-1", "https://platform.example", auth.URL+"/token", true
	if _, err := a.conns.PutApp(ctx, p, "testapp", oauthconn.AppInput{ClientID: &id, ClientSecret: &secret, LandingURL: &landing, TokenURL: &token, Active: &active}); err != nil {
		t.Fatalf("PutApp via %s: %v", a.name, err)
	}
	for _, n := range nodes {
		act, err := n.conns.LoadActivation(p, "testapp")
		if err != nil || act == nil || !act.Active {
			t.Fatalf("LoadActivation via %s = %+v, %v", n.name, act, err)
		}
	}
	// The flow starts on a, the browser comes back to b, the end-user
	// confirms on c.
	authorize, err := a.conns.Connect(ctx, p, eu, "testapp")
	if err != nil {
		t.Fatalf("Connect via %s: %v", a.name, err)
	}
	au, err := url.Parse(authorize)
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.conns.Callback(ctx, "the-code", au.Query().Get("state"), "")
	if err != nil || !res.Connected {
		t.Fatalf("Callback via %s = %+v, %v; want the grant held", b.name, res, err)
	}
	ru, err := url.Parse(res.Redirect)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.conns.Confirm(ctx, p, eu, "testapp", ru.Query().Get("confirmation")); err != nil {
		t.Fatalf("Confirm via %s: %v", c.name, err)
	}
	for _, n := range nodes {
		tok, _, err := n.conns.AccessToken(ctx, p, eu, "testapp")
		if err != nil || tok.AccessToken != "at-1" {
			t.Fatalf("AccessToken via %s = %+v, %v; want the connection made via the others", n.name, tok, err)
		}
	}
	// Disconnect on a: c refuses within 1 s.
	if err := a.conns.Disconnect(p, eu, "testapp"); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "the connection gone on "+c.name, func() bool {
		_, _, err := c.conns.AccessToken(ctx, p, eu, "testapp")
		return errors.Is(err, oauthconn.ErrNotConnected)
	})
	checksPassed(t)
}

// TestSharedServicesUnderRace runs this file's cluster tests in a child
// test binary built with -race, as TestInProcessClusterUnderRace does for
// node_test.go's.
func TestSharedServicesUnderRace(t *testing.T) {
	if !raceEnabled || os.Getenv(raceChildEnv) != "" {
		t.Skip("only under -race, as the parent")
	}
	testPostgres(t) // skip (or fail under CI) here, not in the child
	tests := []string{"TestWebhookEndpointCreatedOnOneNodeDeliversEventsRaisedOnAnother", "TestWebhookEndpointOfUnknownPlatformIsNotFoundOnEveryNode",
		"TestWebhookEndpointChangeWithoutAnnouncementReachesEveryNodeAtResync", "TestFanOutSkipsAStoppedMemberWhileItIsStillListed",
		"TestDashboardSessionOpenedOnOneNodeIsValidOnAllAndLogoutEndsItEverywhere", "TestSkillUploadedOnOneNodeIsServedByAll",
		"TestOAuthConnectionMadeThroughOneNodeIsSeenByAllAndDisconnectEverywhere", "TestDashboardLastOwnerKeptUnderConcurrentRemovalsOnTwoNodes"}
	cmd := exec.Command(os.Args[0], "-test.run=^("+strings.Join(tests, "|")+")$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), raceChildEnv+"=1")
	out, _ := cmd.CombinedOutput()
	report := string(out)
	for _, name := range tests {
		if !strings.Contains(report, "CHECKS PASSED "+name+"\n") {
			t.Errorf("%s: its checks did not pass in the child", name)
		}
	}
	if ours := racesInOurCode(report); len(ours) > 0 {
		t.Errorf("data races in our code:\n%s", strings.Join(ours, "\n"))
	}
	if t.Failed() {
		t.Logf("child output:\n%s", report)
	}
}

// The shared lock excludes across nodes: a second holder waits for the
// first's release; another name is free meanwhile.
func TestSharedLockExcludesAcrossNodes(t *testing.T) {
	pg := testPostgres(t)
	ctx := context.Background()
	open := func() *Shared {
		pool, err := pgxpool.New(ctx, pg)
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewShared(ctx, pool, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close(); pool.Close() })
		return s
	}
	a, b := open(), open()
	unlockA, err := a.Lock("x")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan func(), 1)
	go func() {
		unlock, err := b.Lock("x")
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- unlock
	}()
	unlockY, err := b.Lock("y")
	if err != nil {
		t.Fatalf("Lock(y) while x is held: %v", err)
	}
	unlockY()
	select {
	case <-got:
		t.Fatal("a second node took lock x while the first held it")
	case <-time.After(300 * time.Millisecond):
	}
	unlockA()
	select {
	case unlock, ok := <-got:
		if !ok {
			t.Fatal("the second node's Lock(x) failed")
		}
		unlock()
	case <-time.After(10 * time.Second):
		t.Fatal("the second node never took lock x after its release")
	}
}

// Two owners removed at once through two nodes: one removal is refused,
// so a platform always keeps an owner (the member check and the commit
// are one critical section across nodes, not only within one).
func TestDashboardLastOwnerKeptUnderConcurrentRemovalsOnTwoNodes(tt *testing.T) {
	t := track(tt)
	_, nodes := startSvcCluster(tt, 2, 0)
	a, b := nodes[0], nodes[1]
	for i := 0; i < 10; i++ {
		p := "plat_race" + strconv.Itoa(i)
		one, two := "one"+strconv.Itoa(i)+"@example.com", "two"+strconv.Itoa(i)+"@example.com"
		if _, err := a.accounts.ClaimOwner(p, one, "One", "correct horse battery staple"); err != nil {
			t.Fatal(err)
		}
		inv, err := a.accounts.CreateInvite(p, two, dashboard.RoleOwner, one)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.accounts.AcceptInvite(inv, "Two", "correct horse battery staple"); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, n := range []*svcNode{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[j] = n.accounts.Remove(p, []string{one, two}[j])
			}()
		}
		wg.Wait()
		ms, err := b.accounts.Members(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 1 || (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("round %d: removals answered %v and %v, %d members left; want one refused (last owner) and one left", i, errs[0], errs[1], len(ms))
		}
	}
	checksPassed(t)
}

// Records a node kept alone move to the shared records once: what the
// shared records already hold wins, and the node's copies are gone, so a
// later deletion is never undone by a restart.
func TestImportMovesANodesOwnRecordsOnce(t *testing.T) {
	pg := testPostgres(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	sh, err := NewShared(ctx, pool, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	scfg := persistence.DefaultConfig()
	scfg.Dir = t.TempDir()
	st, err := persistence.Open(scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mine := persistence.DashboardKey("m", "plat_1", "a@example.com")
	both := persistence.DashboardKey("m", "plat_1", "b@example.com")
	skill := persistence.SkillKey("skill_1")
	other := persistence.PlatformKey("plat_1") // not a shared family: stays
	if err := st.Commit(persistence.Set(mine, []byte("local a")), persistence.Set(both, []byte("local b")),
		persistence.Set(skill, []byte("local skill")), persistence.Set(other, []byte("platform"))); err != nil {
		t.Fatal(err)
	}
	if err := sh.Commit(persistence.Set(both, []byte("shared b"))); err != nil {
		t.Fatal(err)
	}
	n, err := sh.Import(st, SharedFamilies)
	if err != nil || n != 3 {
		t.Fatalf("Import = %d, %v; want 3 records", n, err)
	}
	for k, want := range map[string]string{string(mine): "local a", string(both): "shared b", string(skill): "local skill"} {
		if v, err := sh.Get([]byte(k)); err != nil || string(v) != want {
			t.Errorf("shared %q = %q, %v; want %q", k, v, err, want)
		}
		if _, err := st.Get([]byte(k)); !errors.Is(err, persistence.ErrNotFound) {
			t.Errorf("local %q still there after the import (%v)", k, err)
		}
	}
	if v, err := st.Get(other); err != nil || string(v) != "platform" {
		t.Errorf("a platform record was touched: %q, %v", v, err)
	}
	if err := sh.Commit(persistence.Delete(mine)); err != nil {
		t.Fatal(err)
	}
	if n, err := sh.Import(st, SharedFamilies); err != nil || n != 0 {
		t.Fatalf("second Import = %d, %v; want nothing", n, err)
	}
	if _, err := sh.Get(mine); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("a record deleted from the shared records came back: %v", err)
	}
}
