package postgres_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/assistiv/gateway/persistence"
	"github.com/assistiv/gateway/persistence/postgres"
)

// A node's tail (what it wrote after its snapshot watermark) is published
// at its next start, per account, tagged with the previous run; its
// watermark moves past it so the next snapshot round does not copy it; a
// second start publishes nothing more. Take-overs of the crashed run are
// counted until released, and a lost declaration keeps the bound of the
// loss.
func TestRegistryPublishesTheTailAndTracksTakeovers(t *testing.T) {
	url := testURL(t)
	ctx := context.Background()
	scfg := persistence.DefaultConfig()
	scfg.Dir, scfg.Logger = t.TempDir(), quiet()
	st, err := persistence.Open(scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := postgres.DefaultConfig()
	cfg.URL, cfg.Logger, cfg.Node = url, quiet(), "n1"
	snap, err := postgres.Open(ctx, cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Pool().Close()
	reg := postgres.NewRegistry(snap.Pool())

	// First start: nothing to publish; the node records itself up.
	rep, err := reg.PublishTail(ctx, st, "n1")
	if err != nil || rep.Records != 0 || rep.Crashed {
		t.Fatalf("first start: %+v, %v", rep, err)
	}
	if err := reg.SetState(ctx, "n1", "127.0.0.1:7000", postgres.StateUp); err != nil {
		t.Fatal(err)
	}
	ledger := func(seq uint64) []byte { return persistence.LedgerKey("plat_a", "eu_1", seq) }
	if err := st.Commit(persistence.Set(ledger(1), []byte("e1")), persistence.Set(persistence.EndUserKey("plat_a", "eu_1"), []byte("u1"))); err != nil {
		t.Fatal(err)
	}
	if _, err := snap.Round(ctx); err != nil {
		t.Fatal(err)
	}
	// After the snapshot: the tail.
	if err := st.Commit(
		persistence.Set(ledger(2), []byte("e2")),
		persistence.Set(persistence.IdempotencyKey("plat_a", "eu_1", "debit", "k"), []byte("i")),
		persistence.Set(persistence.LedgerKey("plat_a", "wallet", 9), []byte("w9")),
		persistence.Set(persistence.ReservationKey("plat_a", "eu_1", "res_1"), []byte("r")),
		persistence.Set(persistence.OutboxKey("plat_a", "evt"), []byte("not money")),
	); err != nil {
		t.Fatal(err)
	}
	// The node crashes (state stays up) and starts again.
	rep, err = reg.PublishTail(ctx, st, "n1")
	if err != nil || !rep.Crashed || rep.Incarnation != 1 || rep.Records != 4 {
		t.Fatalf("restart after a crash: %+v, %v; want 4 records of incarnation 1", rep, err)
	}
	keys, values, err := reg.Tail(ctx, "n1", 1, "plat_a", "eu_1")
	if err != nil || len(keys) != 3 {
		t.Fatalf("end-user tail: %d records, %v", len(keys), err)
	}
	for i, k := range keys {
		if bytes.Equal(k, ledger(2)) && string(values[i]) != "e2" {
			t.Fatalf("ledger entry 2: %q", values[i])
		}
		if bytes.Equal(k, ledger(1)) {
			t.Fatal("a snapshotted entry is in the tail")
		}
	}
	if keys, _, _ := reg.Tail(ctx, "n1", 1, "plat_a", "wallet"); len(keys) != 1 {
		t.Fatalf("wallet tail: %d records", len(keys))
	}
	self, ok, err := reg.Node(ctx, "n1")
	if err != nil || !ok || self.State != postgres.StateRecovering || self.Incarnation != 2 || self.Address != "127.0.0.1:7000" {
		t.Fatalf("after publishing: %+v %v %v", self, ok, err)
	}
	// The next round has nothing of the tail to copy; the feed is pruned.
	if wm, err := snap.Round(ctx); err != nil {
		t.Fatal(err)
	} else {
		var mirrored int
		if err := snap.Pool().QueryRow(ctx, `SELECT count(*) FROM assistiv_kv WHERE key = $1`, ledger(2)).Scan(&mirrored); err != nil || mirrored != 0 {
			t.Fatalf("the tail reached the shared snapshot (%d rows, %v; watermark %d)", mirrored, err, wm)
		}
	}
	feed := 0
	_ = st.ScanPrefix([]byte{persistence.FamilyChangefeed}, false, func(k, _ []byte) bool {
		if len(k) == 9 { // a feed record (0x02 seq), not the family's own flag key
			feed++
		}
		return true
	})
	if feed != 0 {
		t.Fatalf("%d changefeed records left after publishing", feed)
	}
	// Take-overs of the crashed run, then their release.
	if untaken, err := reg.UntakenTail(ctx, "n1", 1); err != nil || len(untaken) != 4 {
		t.Fatalf("untaken tail before any take-over: %d keys, %v", len(untaken), err)
	}
	if err := reg.RecordTakeover(ctx, "n1", 1, "eu/plat_a/eu_1", "n2", 700); err != nil {
		t.Fatal(err)
	}
	if err := reg.RecordTakeover(ctx, "n1", 1, "eu/plat_a/eu_1", "n3", 5); err != nil { // once per account
		t.Fatal(err)
	}
	if err := reg.RecordTakeover(ctx, "n1", 1, "plat/plat_a", "n2", 0); err != nil {
		t.Fatal(err)
	}
	if n, err := reg.PendingTakeovers(ctx, "n1", 1); err != nil || n != 2 {
		t.Fatalf("pending: %d %v", n, err)
	}
	// Both accounts were taken over: nothing of the tail is left to the
	// restarted node but another account's records.
	if err := reg.RecordTakeover(ctx, "n1", 1, "eu/plat_b/eu_9", "n2", 0); err != nil {
		t.Fatal(err)
	}
	if untaken, err := reg.UntakenTail(ctx, "n1", 1); err != nil || len(untaken) != 0 {
		t.Fatalf("untaken tail: %q %v", untaken, err)
	}
	if err := reg.ReleaseTakeover(ctx, "n1", 1, "eu/plat_b/eu_9", "recovered", 0); err != nil {
		t.Fatal(err)
	}
	if err := reg.ReleaseTakeover(ctx, "n1", 1, "plat/plat_a", "recovered", 1); err != nil {
		t.Fatal(err)
	}
	if n, _ := reg.PendingTakeovers(ctx, "n1", 1); n != 1 {
		t.Fatalf("pending after one release: %d", n)
	}
	// The node's disk is declared lost: the report keeps the bound.
	lost, err := reg.DeclareLost(ctx, "n1")
	if err != nil || lost.Incarnation != 2 || lost.LastSnapshotAt.IsZero() || lost.Watermark == 0 {
		t.Fatalf("DeclareLost: %+v %v", lost, err)
	}
	if _, err := reg.DeclareLost(ctx, "n1"); err == nil {
		t.Fatal("declared lost twice")
	}
	if _, err := reg.DeclareLost(ctx, "never-ran"); err == nil {
		t.Fatal("declared a node that never ran lost")
	}
	reports, err := reg.LostReports(ctx)
	if err != nil || len(reports) != 1 || reports[0].Node != "n1" {
		t.Fatalf("reports: %+v %v", reports, err)
	}
	if s, _, _ := reg.Node(ctx, "n1"); s.State != postgres.StateLost {
		t.Fatalf("state after the declaration: %s", s.State)
	}
	// Snapshot reads an account's records by exact key and prefix.
	k, v, err := reg.Snapshot(ctx, [][]byte{persistence.EndUserKey("plat_a", "eu_1")}, [][]byte{persistence.LedgerPrefix("plat_a", "eu_1")})
	if err != nil || len(k) != 2 || string(v[0]) == "" {
		t.Fatalf("Snapshot: %d records, %v", len(k), err)
	}
}
