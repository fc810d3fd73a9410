package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/persistence"
	"github.com/assistiv/gateway/persistence/postgres"
)

// testURL returns a Postgres URL scoped to a fresh schema. Without a
// reachable server the test skips, except under CI=true, where it fails.
func testURL(t *testing.T) string {
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
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pool.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		pool.Close()
	})
	sep := "?"
	if bytes.ContainsRune([]byte(base), '?') {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// mirror returns every snapshotted record of the store.
func mirror(t *testing.T, st *persistence.Store) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := st.Scan([]byte{persistence.FamilyMeta}, nil, false, func(k, v []byte) bool {
		switch k[0] {
		case persistence.FamilyChangefeed, persistence.FamilyReservation, persistence.FamilyWindows, persistence.FamilyHolding:
			return true
		}
		if bytes.Equal(k, persistence.MetaSchemaKey) || bytes.HasPrefix(k, persistence.MetaKey("changefeed_next")) {
			return true
		}
		out[string(k)] = append([]byte(nil), v...)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func pgMirror(t *testing.T, pool *pgxpool.Pool) map[string][]byte {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT key, value FROM assistiv_kv`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var k, v []byte
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(k, persistence.MetaSchemaKey) || bytes.HasPrefix(k, persistence.MetaKey("changefeed_next")) {
			continue
		}
		out[string(k)] = v
	}
	return out
}

func sameMirror(t *testing.T, want, got map[string][]byte) {
	t.Helper()
	for k, v := range want {
		if g, ok := got[k]; !ok || !bytes.Equal(g, v) {
			t.Errorf("Postgres lacks or differs on key %x (family %#x)", k, k[0])
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("Postgres holds key %x (family %#x) that Pebble does not", k, k[0])
		}
	}
}

// checkLedgers verifies in Postgres that every end-user's ledger sums to
// its budget balance and the wallet's to the wallet balance.
func checkLedgers(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `
		SELECT u.id, u.budget_balance_nanos, coalesce(sum(l.amount_nanos), 0)
		FROM assistiv_end_users u LEFT JOIN assistiv_ledger_entries l ON l.platform_id = u.platform_id AND l.account = u.id
		WHERE u.has_budget GROUP BY u.id, u.budget_balance_nanos`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var id string
		var bal, sum int64
		if err := rows.Scan(&id, &bal, &sum); err != nil {
			t.Fatal(err)
		}
		if bal != sum {
			t.Errorf("end-user %s: Postgres balance %d, ledger sum %d", id, bal, sum)
		}
		n++
	}
	rows.Close()
	if n == 0 {
		t.Fatal("no end-user budgets in the snapshot")
	}
	var bal, sum int64
	if err := pool.QueryRow(ctx, `SELECT p.wallet_balance_nanos, coalesce((SELECT sum(amount_nanos) FROM assistiv_ledger_entries l WHERE l.platform_id = p.id AND l.account = 'wallet'), 0)
		FROM assistiv_platforms p LIMIT 1`).Scan(&bal, &sum); err != nil {
		t.Fatal(err)
	}
	if bal != sum {
		t.Errorf("wallet: Postgres balance %d, ledger sum %d", bal, sum)
	}
}

func TestSnapshotMatchesPebbleAndRestoreRebuildsIt(t *testing.T) {
	url := testURL(t)
	ctx := context.Background()
	g := edgetest.Start(t, edgetest.Options{})
	pid, pkey := g.CreatePlatform(t, "snap")
	if r := g.Do(t, "POST", "/admin/v1/platforms/"+pid+"/wallet/topup", edgetest.AdminKey, map[string]any{"amount_usd": 100}); r.Status != 200 {
		t.Fatalf("wallet topup: %d %s", r.Status, r.Body)
	}
	var users []string
	for i := 0; i < 5; i++ {
		uid, _ := g.CreateEndUser(t, pid, pkey, fmt.Sprintf("u%d", i))
		users = append(users, uid)
		if r := g.Do(t, "POST", "/v1/platforms/"+pid+"/end-users/"+uid+"/budget", pkey, map[string]any{"amount_usd": 10, "period": "monthly"}); r.Status != 201 {
			t.Fatalf("budget: %d %s", r.Status, r.Body)
		}
		for j := 0; j < 3; j++ {
			r := g.Do(t, "POST", "/v1/platforms/"+pid+"/end-users/"+uid+"/budget/topup", pkey,
				map[string]any{"amount_usd": 0.123456789}, "Idempotency-Key", fmt.Sprintf("k%d-%d", i, j))
			if r.Status != 200 {
				t.Fatalf("topup: %d %s", r.Status, r.Body)
			}
		}
	}
	cfg := postgres.DefaultConfig()
	cfg.URL = url
	cfg.Logger = quiet()
	snap, err := postgres.Open(ctx, cfg, g.Store)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Pool().Close()
	w1, err := snap.Round(ctx)
	if err != nil {
		t.Fatalf("Round: %v", err)
	}
	if w1 == 0 {
		t.Fatal("watermark did not advance")
	}
	sameMirror(t, mirror(t, g.Store), pgMirror(t, snap.Pool()))
	checkLedgers(t, snap.Pool())

	// Changes after the watermark, including a cascade delete, reach
	// Postgres on the next round; a round with nothing new is a no-op.
	if r := g.Do(t, "DELETE", "/v1/platforms/"+pid+"/end-users/"+users[0], pkey, nil); r.Status != 200 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := g.Do(t, "POST", "/v1/platforms/"+pid+"/end-users/"+users[1]+"/budget/debit", pkey, map[string]any{"amount_usd": 1}); r.Status != 200 {
		t.Fatalf("debit: %d %s", r.Status, r.Body)
	}
	w2, err := snap.Round(ctx)
	if err != nil || w2 <= w1 {
		t.Fatalf("second Round = %d, %v; want > %d", w2, err, w1)
	}
	if w3, err := snap.Round(ctx); err != nil || w3 != w2 {
		t.Fatalf("idle Round = %d, %v; want %d", w3, err, w2)
	}
	want := mirror(t, g.Store)
	sameMirror(t, want, pgMirror(t, snap.Pool()))
	checkLedgers(t, snap.Pool())

	// Restore into an empty data dir and serve from it: every balance and
	// ledger is back.
	budgetOf := func(g *edgetest.Gateway, uid string) string {
		return string(g.Do(t, "GET", "/v1/platforms/"+pid+"/end-users/"+uid+"/budget/transactions?limit=1000", pkey, nil).Body)
	}
	before := map[string]string{}
	for _, u := range users[1:] {
		before[u] = budgetOf(g, u)
	}
	wallet := string(g.Do(t, "GET", "/admin/v1/platforms/"+pid+"/wallet", edgetest.AdminKey, nil).Body)
	g.Close()

	dir := t.TempDir()
	scfg := persistence.DefaultConfig()
	scfg.Dir, scfg.Logger = dir, quiet()
	st, err := persistence.Open(scfg)
	if err != nil {
		t.Fatal(err)
	}
	n, err := postgres.Restore(ctx, snap.Pool(), st)
	if err != nil || n == 0 {
		t.Fatalf("Restore = %d, %v", n, err)
	}
	if _, err := postgres.Restore(ctx, snap.Pool(), st); err != postgres.ErrNotEmpty {
		t.Fatalf("second Restore error = %v, want ErrNotEmpty", err)
	}
	st.Close()
	g2 := edgetest.Start(t, edgetest.Options{Dir: dir})
	for u, b := range before {
		if got := budgetOf(g2, u); got != b {
			t.Errorf("restored ledger of %s differs:\n got %s\nwant %s", u, got, b)
		}
	}
	if got := string(g2.Do(t, "GET", "/admin/v1/platforms/"+pid+"/wallet", edgetest.AdminKey, nil).Body); got != wallet {
		t.Errorf("restored wallet = %s, want %s", got, wallet)
	}
	if r := g2.Do(t, "GET", "/v1/platforms/"+pid+"/end-users/"+users[0], pkey, nil); r.Status != 404 {
		t.Errorf("deleted end-user after restore: %d, want 404", r.Status)
	}
	sameMirror(t, want, mirror(t, g2.Store))
}

func TestSnapshotCatchesUpAfterPostgresOutage(t *testing.T) {
	url := testURL(t)
	ctx := context.Background()
	g := edgetest.Start(t, edgetest.Options{})
	pid, pkey := g.CreatePlatform(t, "outage")
	cfg := postgres.DefaultConfig()
	cfg.URL = url
	cfg.Logger = quiet()
	snap, err := postgres.Open(ctx, cfg, g.Store)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snap.Round(ctx); err != nil {
		t.Fatal(err)
	}
	snap.Pool().Close() // Postgres "goes away"
	uid, _ := g.CreateEndUser(t, pid, pkey, "during-outage")
	if r := g.Do(t, "POST", "/v1/platforms/"+pid+"/end-users/"+uid+"/budget", pkey, map[string]any{"amount_usd": 3}); r.Status != 201 {
		t.Fatalf("writes must not depend on Postgres: %d %s", r.Status, r.Body)
	}
	if _, err := snap.Round(ctx); err == nil {
		t.Fatal("Round succeeded with a closed pool")
	}
	// A new snapshotter (Postgres back) catches up from the watermark.
	snap2, err := postgres.Open(ctx, cfg, g.Store)
	if err != nil {
		t.Fatal(err)
	}
	defer snap2.Pool().Close()
	if _, err := snap2.Round(ctx); err != nil {
		t.Fatal(err)
	}
	sameMirror(t, mirror(t, g.Store), pgMirror(t, snap2.Pool()))
}

func TestFullCopyAfterRunningWithoutChangefeed(t *testing.T) {
	url := testURL(t)
	ctx := context.Background()
	dir := t.TempDir()
	// A node that ran without Postgres: no changefeed.
	scfg := persistence.DefaultConfig()
	scfg.Dir, scfg.Logger, scfg.DisableChangefeed = dir, quiet(), true
	st, err := persistence.Open(scfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if err := st.Commit(persistence.Set(persistence.EndUserKey("plat_x", fmt.Sprintf("eu_%02d", i)), []byte{byte(i)})); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	// Restarted with Postgres: the first round copies everything.
	scfg.DisableChangefeed = false
	st, err = persistence.Open(scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := postgres.DefaultConfig()
	cfg.URL, cfg.Logger = url, quiet()
	snap, err := postgres.Open(ctx, cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Pool().Close()
	if _, err := snap.Round(ctx); err != nil {
		t.Fatal(err)
	}
	sameMirror(t, mirror(t, st), pgMirror(t, snap.Pool()))
	if _, err := st.Get(persistence.MetaChangefeedGap); err == nil {
		t.Fatal("the gap flag survived a full copy")
	}
	// Later changes go through the feed as usual.
	if err := st.Commit(persistence.Delete(persistence.EndUserKey("plat_x", "eu_07"))); err != nil {
		t.Fatal(err)
	}
	if _, err := snap.Round(ctx); err != nil {
		t.Fatal(err)
	}
	sameMirror(t, mirror(t, st), pgMirror(t, snap.Pool()))
}

// TestNodesKeepTheirOwnWatermarks: two nodes of a cluster snapshot into the
// same tables, each from its own changefeed and at its own watermark; many
// rounds in a row never exhaust the pool.
func TestNodesKeepTheirOwnWatermarks(t *testing.T) {
	url := testURL(t)
	ctx := context.Background()
	type node struct {
		st   *persistence.Store
		snap *postgres.Snapshotter
	}
	nodes := map[string]*node{}
	for _, name := range []string{"a", "b"} {
		scfg := persistence.DefaultConfig()
		scfg.Dir, scfg.Logger = t.TempDir(), quiet()
		st, err := persistence.Open(scfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		cfg := postgres.DefaultConfig()
		cfg.URL, cfg.Logger, cfg.Node = url, quiet(), name
		snap, err := postgres.Open(ctx, cfg, st)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(snap.Close)
		nodes[name] = &node{st, snap}
	}
	for i := range 12 { // more rounds than the pool has connections
		for name, n := range nodes {
			if err := n.st.Commit(persistence.Set(persistence.MetaKey(fmt.Sprintf("%s-%d", name, i)), []byte(name))); err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			wm, err := n.snap.Round(rctx)
			cancel()
			if err != nil {
				t.Fatalf("%s round %d: %v", name, i, err)
			}
			var got int64
			if err := n.snap.Pool().QueryRow(ctx, `SELECT watermark FROM assistiv_snapshot_nodes WHERE node = $1`, name).Scan(&got); err != nil || uint64(got) != wm {
				t.Fatalf("%s: stored watermark %d (%v), round returned %d", name, got, err, wm)
			}
		}
	}
	pg := pgMirror(t, nodes["a"].snap.Pool())
	for name := range nodes {
		for i := range 12 {
			if v := pg[string(persistence.MetaKey(fmt.Sprintf("%s-%d", name, i)))]; string(v) != name {
				t.Errorf("record %s-%d of node %s missing from Postgres (%q)", name, i, name, v)
			}
		}
	}
}
