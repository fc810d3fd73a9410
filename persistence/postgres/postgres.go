// Package postgres writes periodic snapshots of the node's Pebble store to
// Postgres with pgx, and rebuilds a lost data dir from the last snapshot.
//
// A snapshot round takes a Pebble snapshot, reads the changefeed records
// (persistence.FamilyChangefeed) after the watermark, reads the current
// values of every changed key from that same Pebble snapshot, and writes
// them in one Postgres transaction: an exact mirror table (assistiv_kv:
// key → value bytes, what restore reads) plus typed tables for people and
// reporting (assistiv_platforms, assistiv_end_users, assistiv_ledger_entries).
// Upserts are idempotent on keys, so a round replayed after a crash changes
// nothing. The watermark advances in the same transaction; only then are
// the changefeed records it covers deleted from Pebble.
//
// Postgres is never on the hot path: the snapshotter runs on its own
// goroutine, and while Postgres is down or slow the changefeed simply grows
// until the next successful round.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// Config configures a [Snapshotter].
type Config struct {
	// URL is the Postgres connection string. Required.
	URL string
	// Interval between snapshot rounds. Default 10 s, range 100 ms..1 h.
	Interval time.Duration
	// MaxRecords bounds the changefeed records one round reads (the rest
	// wait for the next round). Default 100000.
	MaxRecords int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Node, in a cluster, names this node's watermark: every node copies
	// its own changefeed into the shared tables, so each keeps its own
	// place (table assistiv_snapshot_nodes). Empty: the single node's
	// watermark (assistiv_snapshot_state).
	Node string
	// Skip, when set, leaves a changed key out of the snapshot (cluster
	// mode: records of accounts another node holds, whose copy here is
	// older; actors.Env.NotHeld). Called from the round's goroutine.
	Skip func(key []byte) bool
}

// DefaultConfig returns the defaults documented on [Config].
func DefaultConfig() Config {
	return Config{Interval: 10 * time.Second, MaxRecords: 100000}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.URL == "":
		return errors.New("postgres: Config.URL is required")
	case c.Interval < 100*time.Millisecond || c.Interval > time.Hour:
		return fmt.Errorf("postgres: Interval %s out of range 100ms..1h", c.Interval)
	case c.MaxRecords < 1:
		return errors.New("postgres: MaxRecords must be positive")
	}
	return nil
}

// Snapshotter copies store changes to Postgres every Interval.
type Snapshotter struct {
	cfg   Config
	store *persistence.Store
	pool  *pgxpool.Pool
	log   *slog.Logger
	mu    sync.Mutex // serializes rounds
	stop  chan struct{}
	wg    sync.WaitGroup
}

// Open connects to Postgres, creates or migrates the schema and returns a
// Snapshotter (not yet running; call Start).
func Open(ctx context.Context, cfg Config, store *persistence.Store) (*Snapshotter, error) {
	def := DefaultConfig()
	if cfg.Interval == 0 {
		cfg.Interval = def.Interval
	}
	if cfg.MaxRecords == 0 {
		cfg.MaxRecords = def.MaxRecords
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	pool, err := Connect(ctx, cfg.URL)
	if err != nil {
		return nil, err
	}
	return &Snapshotter{cfg: cfg, store: store, pool: pool, log: cfg.Logger, stop: make(chan struct{})}, nil
}

// Connect opens a pool and migrates the schema.
func Connect(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// migrations are applied in order, each once, recorded in
// assistiv_schema_migrations.
var migrations = []string{
	`CREATE TABLE IF NOT EXISTS assistiv_kv (
		key bytea PRIMARY KEY,
		value bytea NOT NULL,
		family smallint NOT NULL
	);
	CREATE TABLE IF NOT EXISTS assistiv_snapshot_state (
		id int PRIMARY KEY,
		watermark bigint NOT NULL,
		updated_at timestamptz NOT NULL
	);
	CREATE TABLE IF NOT EXISTS assistiv_platforms (
		kv_key bytea PRIMARY KEY,
		id text NOT NULL,
		name text NOT NULL,
		wallet_balance_nanos bigint NOT NULL,
		wallet_ledger_seq bigint NOT NULL,
		markup_bps bigint NOT NULL,
		created_at timestamptz NOT NULL,
		updated_at timestamptz NOT NULL
	);
	CREATE TABLE IF NOT EXISTS assistiv_end_users (
		kv_key bytea PRIMARY KEY,
		id text NOT NULL,
		platform_id text NOT NULL,
		external_id text NOT NULL,
		display_name text NOT NULL,
		has_budget boolean NOT NULL,
		budget_balance_nanos bigint NOT NULL,
		budget_amount_nanos bigint NOT NULL,
		budget_period text NOT NULL,
		is_suspended boolean NOT NULL,
		ledger_seq bigint NOT NULL,
		created_at timestamptz NOT NULL,
		updated_at timestamptz NOT NULL
	);
	CREATE TABLE IF NOT EXISTS assistiv_ledger_entries (
		kv_key bytea PRIMARY KEY,
		id text NOT NULL,
		platform_id text NOT NULL,
		account text NOT NULL,
		seq bigint NOT NULL,
		type text NOT NULL,
		amount_nanos bigint NOT NULL,
		balance_after_nanos bigint NOT NULL,
		idempotency_key text NOT NULL,
		reason text NOT NULL,
		request_id text NOT NULL,
		model text NOT NULL,
		prompt_tokens bigint NOT NULL,
		completion_tokens bigint NOT NULL,
		uncharged_nanos bigint NOT NULL,
		created_at timestamptz NOT NULL
	);
	CREATE INDEX IF NOT EXISTS assistiv_ledger_account ON assistiv_ledger_entries (platform_id, account, seq);
	CREATE INDEX IF NOT EXISTS assistiv_end_users_platform ON assistiv_end_users (platform_id, id);`,
	// 2: one watermark per node of a cluster (Config.Node).
	`CREATE TABLE IF NOT EXISTS assistiv_snapshot_nodes (
		node text PRIMARY KEY,
		watermark bigint NOT NULL,
		updated_at timestamptz NOT NULL
	);`,
	// 3: crash take-over (takeover.go).
	`CREATE TABLE IF NOT EXISTS assistiv_cluster_nodes (
		node text PRIMARY KEY,
		address text NOT NULL,
		state text NOT NULL,
		incarnation bigint NOT NULL,
		updated_at timestamptz NOT NULL
	);
	CREATE TABLE IF NOT EXISTS assistiv_takeovers (
		node text NOT NULL,
		incarnation bigint NOT NULL,
		identity text NOT NULL,
		holder text NOT NULL,
		held_nanos bigint NOT NULL,
		created_at timestamptz NOT NULL,
		released_at timestamptz,
		release text,
		merged_entries int,
		PRIMARY KEY (node, incarnation, identity)
	);
	CREATE TABLE IF NOT EXISTS assistiv_node_tails (
		node text NOT NULL,
		incarnation bigint NOT NULL,
		platform_id text NOT NULL,
		account text NOT NULL,
		key bytea NOT NULL,
		value bytea NOT NULL,
		PRIMARY KEY (node, incarnation, key)
	);
	CREATE INDEX IF NOT EXISTS assistiv_node_tails_account ON assistiv_node_tails (node, incarnation, platform_id, account);
	CREATE TABLE IF NOT EXISTS assistiv_lost_nodes (
		node text NOT NULL,
		incarnation bigint NOT NULL,
		declared_at timestamptz NOT NULL,
		last_snapshot_at timestamptz,
		watermark bigint NOT NULL,
		provisional int NOT NULL,
		held_nanos bigint NOT NULL,
		PRIMARY KEY (node, incarnation)
	);`,
}

// Migrate creates or upgrades the schema; safe to run concurrently with
// itself (an advisory lock serializes it).
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(774411)`); err != nil {
		return fmt.Errorf("postgres: migrate lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS assistiv_schema_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL)`); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	var have int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM assistiv_schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	for v := have + 1; v <= len(migrations); v++ {
		if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
			return fmt.Errorf("postgres: migration %d: %w", v, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO assistiv_schema_migrations (version, applied_at) VALUES ($1, now())`, v); err != nil {
			return fmt.Errorf("postgres: migration %d: %w", v, err)
		}
	}
	return tx.Commit(ctx)
}

// Start runs rounds every Interval until Close.
func (s *Snapshotter) Start() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.cfg.Interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				if _, err := s.Round(ctx); err != nil {
					s.log.Warn("postgres snapshot failed; will retry", "err", err)
				}
				cancel()
			}
		}
	}()
}

// Close stops the loop, runs a final round (best effort) and closes the pool.
func (s *Snapshotter) Close() {
	close(s.stop)
	s.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Round(ctx); err != nil {
		s.log.Warn("final postgres snapshot failed", "err", err)
	}
	s.pool.Close()
}

// Pool returns the connection pool.
func (s *Snapshotter) Pool() *pgxpool.Pool { return s.pool }

// snapshotted reports whether a family is mirrored. Changefeed records,
// open reservations (voided at recovery anyway) and saved rate windows are
// node-local and not copied.
func snapshotted(family byte) bool {
	switch family {
	case persistence.FamilyChangefeed, persistence.FamilyReservation, persistence.FamilyWindows, persistence.FamilyHolding:
		return false
	}
	return true
}

// Round copies every change after the watermark; it returns the new
// watermark. Safe to call concurrently with writes and with itself.
func (s *Snapshotter) Round(ctx context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var watermark uint64
	// One QueryRow only: an unscanned Row holds its pool connection.
	q, args := `SELECT coalesce((SELECT watermark FROM assistiv_snapshot_state WHERE id = 1), 0)`, []any(nil)
	if s.cfg.Node != "" {
		q, args = `SELECT coalesce((SELECT watermark FROM assistiv_snapshot_nodes WHERE node = $1), 0)`, []any{s.cfg.Node}
	}
	if err := s.pool.QueryRow(ctx, q, args...).Scan(&watermark); err != nil {
		return 0, fmt.Errorf("read watermark: %w", err)
	}
	// Only durable records: a snapshot taken after a synced marker and
	// handed over once its fsync is done, so nothing copied to Postgres
	// can be lost by this node's power cut (batch billing included).
	snap, err := s.store.DurableSnapshot()
	if err != nil {
		return 0, fmt.Errorf("durable snapshot: %w", err)
	}
	defer snap.Close()

	// Collect changed keys in feed order; the last change of a key wins.
	sets := map[string]bool{}
	var ranges [][2][]byte
	var order []string
	last := watermark
	full := false
	if v, closer, err := snap.Get(persistence.MetaChangefeedGap); err == nil {
		full = len(v) > 0
		closer.Close()
	}
	it, err := snap.NewIter(&pebble.IterOptions{
		LowerBound: persistence.ChangefeedKey(watermark + 1),
		UpperBound: []byte{persistence.FamilyChangefeed + 1},
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for ok := it.First(); ok && n < s.cfg.MaxRecords; ok = it.Next() {
		ops, err := persistence.DecodeFeed(it.Value())
		if err != nil {
			it.Close()
			return 0, err
		}
		for _, op := range ops {
			if len(op.Key) == 0 || !snapshotted(op.Key[0]) {
				continue
			}
			if op.Kind != 2 && s.cfg.Skip != nil && s.cfg.Skip(op.Key) {
				continue
			}
			k := string(op.Key)
			switch op.Kind {
			case 0, 1:
				if _, seen := sets[k]; !seen {
					order = append(order, k)
				}
				sets[k] = true
			case 2:
				ranges = append(ranges, [2][]byte{append([]byte(nil), op.Key...), append([]byte(nil), op.End...)})
			}
		}
		last = bytesToSeq(it.Key())
		n++
	}
	if err := it.Close(); err != nil {
		return 0, err
	}
	if full {
		// The store ran without a changefeed: mirror every record of the
		// snapshot, replacing whatever Postgres held.
		order = order[:0]
		for k := range sets {
			delete(sets, k)
		}
		ranges = append(ranges[:0], [2][]byte{{0x00}, {0xff}})
		it, err := snap.NewIter(&pebble.IterOptions{})
		if err != nil {
			return 0, err
		}
		for ok := it.First(); ok; ok = it.Next() {
			k := it.Key()
			if len(k) == 0 || !snapshotted(k[0]) || string(k) == string(persistence.MetaChangefeedGap) {
				continue
			}
			order = append(order, string(k))
		}
		if err := it.Close(); err != nil {
			return 0, err
		}
	}
	if last == watermark && !full {
		return watermark, nil
	}

	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	// Range deletes first: a key set after its range was deleted is in
	// sets and re-upserted below from the snapshot's current value.
	for _, r := range ranges {
		for _, t := range []string{"assistiv_kv", "assistiv_platforms", "assistiv_end_users", "assistiv_ledger_entries"} {
			col := "kv_key"
			if t == "assistiv_kv" {
				col = "key"
			}
			if _, err := tx.Exec(ctx, `DELETE FROM `+t+` WHERE `+col+` >= $1 AND `+col+` < $2`, r[0], r[1]); err != nil {
				return 0, err
			}
		}
	}
	var kvRows, platRows, userRows, ledgerRows [][]any
	var deletes [][]byte
	for _, k := range order {
		key := []byte(k)
		v, closer, err := snap.Get(key)
		if errors.Is(err, pebble.ErrNotFound) {
			deletes = append(deletes, key)
			continue
		}
		if err != nil {
			return 0, err
		}
		val := append([]byte{}, v...) // never nil: an empty value (an index entry) is '' not NULL
		closer.Close()
		kvRows = append(kvRows, []any{key, val, int16(key[0])})
		switch key[0] {
		case persistence.FamilyPlatform:
			var p pb.Platform
			if proto.Unmarshal(val, &p) == nil {
				platRows = append(platRows, []any{key, p.Id, p.Name, p.GetWallet().GetBalanceNanos(), int64(p.GetWallet().GetLedgerSeq()),
					p.GetSettings().GetMarkupBps(), ms(p.CreatedAtMs), ms(p.UpdatedAtMs)})
			}
		case persistence.FamilyEndUser:
			var u pb.EndUser
			if proto.Unmarshal(val, &u) == nil {
				b := u.Budget
				userRows = append(userRows, []any{key, u.Id, u.PlatformId, u.ExternalId, u.DisplayName, b != nil,
					b.GetBalanceNanos(), b.GetAmountNanos(), b.GetPeriod(), b.GetIsSuspended(), int64(u.LedgerSeq),
					ms(u.CreatedAtMs), ms(u.UpdatedAtMs)})
			}
		case persistence.FamilyLedger:
			var e pb.LedgerEntry
			if proto.Unmarshal(val, &e) == nil {
				ledgerRows = append(ledgerRows, []any{key, e.Id, e.PlatformId, e.Account, int64(e.Seq), e.Type, e.AmountNanos,
					e.BalanceAfterNanos, e.IdempotencyKey, e.Reason, e.RequestId, e.Model, e.PromptTokens, e.CompletionTokens,
					e.UnchargedNanos, ms(e.CreatedAtMs)})
			}
		}
	}
	if len(deletes) > 0 {
		for _, t := range []string{"assistiv_platforms", "assistiv_end_users", "assistiv_ledger_entries"} {
			if _, err := tx.Exec(ctx, `DELETE FROM `+t+` WHERE kv_key = ANY($1)`, deletes); err != nil {
				return 0, err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM assistiv_kv WHERE key = ANY($1)`, deletes); err != nil {
			return 0, err
		}
	}
	if err := upsert(ctx, tx, "assistiv_kv", "key", []string{"key", "value", "family"}, kvRows); err != nil {
		return 0, err
	}
	if err := upsert(ctx, tx, "assistiv_platforms", "kv_key", []string{"kv_key", "id", "name", "wallet_balance_nanos", "wallet_ledger_seq", "markup_bps", "created_at", "updated_at"}, platRows); err != nil {
		return 0, err
	}
	if err := upsert(ctx, tx, "assistiv_end_users", "kv_key", []string{"kv_key", "id", "platform_id", "external_id", "display_name", "has_budget", "budget_balance_nanos", "budget_amount_nanos", "budget_period", "is_suspended", "ledger_seq", "created_at", "updated_at"}, userRows); err != nil {
		return 0, err
	}
	if err := upsert(ctx, tx, "assistiv_ledger_entries", "kv_key", []string{"kv_key", "id", "platform_id", "account", "seq", "type", "amount_nanos", "balance_after_nanos", "idempotency_key", "reason", "request_id", "model", "prompt_tokens", "completion_tokens", "uncharged_nanos", "created_at"}, ledgerRows); err != nil {
		return 0, err
	}
	save := `INSERT INTO assistiv_snapshot_state (id, watermark, updated_at) VALUES (1, $1, now())
		ON CONFLICT (id) DO UPDATE SET watermark = excluded.watermark, updated_at = excluded.updated_at`
	args = []any{int64(last)}
	if s.cfg.Node != "" {
		save = `INSERT INTO assistiv_snapshot_nodes (node, watermark, updated_at) VALUES ($2, $1, now())
		ON CONFLICT (node) DO UPDATE SET watermark = excluded.watermark, updated_at = excluded.updated_at`
		args = append(args, s.cfg.Node)
	}
	if _, err := tx.Exec(ctx, save, args...); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	// The feed up to last is in Postgres: drop it from Pebble, remembering
	// where the sequence stands in case the feed is now empty.
	mark := make([]byte, 8)
	putSeq(mark, last)
	prune := []persistence.Op{
		persistence.DeleteRange(persistence.ChangefeedKey(0), persistence.ChangefeedKey(last+1)),
		persistence.Set(persistence.MetaKey("changefeed_next"), mark),
	}
	if full && !s.store.ChangefeedDisabled() {
		prune = append(prune, persistence.Delete(persistence.MetaChangefeedGap))
	}
	if err := s.store.CommitUntracked(prune...); err != nil {
		return 0, fmt.Errorf("prune changefeed: %w", err)
	}
	s.log.Debug("postgres snapshot", "watermark", last, "keys", len(order), "deletes", len(deletes), "ranges", len(ranges))
	return last, nil
}

// upsert stages rows with COPY into a temporary table, then merges them.
func upsert(ctx context.Context, tx pgx.Tx, table, pk string, cols []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	stage := "stage_" + table
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS `+stage+` (LIKE `+table+`) ON COMMIT DELETE ROWS`); err != nil {
		return err
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{stage}, cols, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("copy into %s: %w", stage, err)
	}
	set := ""
	for _, c := range cols {
		if c == pk {
			continue
		}
		if set != "" {
			set += ", "
		}
		set += c + " = excluded." + c
	}
	list := ""
	for i, c := range cols {
		if i > 0 {
			list += ", "
		}
		list += c
	}
	_, err := tx.Exec(ctx, `INSERT INTO `+table+` (`+list+`) SELECT `+list+` FROM `+stage+` ON CONFLICT (`+pk+`) DO UPDATE SET `+set)
	return err
}

func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

func bytesToSeq(k []byte) uint64 {
	var v uint64
	for _, b := range k[1:] {
		v = v<<8 | uint64(b)
	}
	return v
}

func putSeq(b []byte, v uint64) {
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

// ErrNotEmpty is returned by [Restore] into a data dir that holds records.
var ErrNotEmpty = errors.New("postgres: data dir is not empty; refusing to restore over it")

// Restore rebuilds store (which must hold no records but meta) from the
// last snapshot in Postgres, and returns how many records it wrote.
func Restore(ctx context.Context, pool *pgxpool.Pool, store *persistence.Store) (int, error) {
	empty := true
	if err := store.Scan([]byte{persistence.FamilyChangefeed}, nil, false, func(k, _ []byte) bool {
		empty = false
		return false
	}); err != nil {
		return 0, err
	}
	if !empty {
		return 0, ErrNotEmpty
	}
	var watermark int64
	if err := pool.QueryRow(ctx, `SELECT coalesce((SELECT watermark FROM assistiv_snapshot_state WHERE id = 1), 0)`).Scan(&watermark); err != nil {
		return 0, err
	}
	rows, err := pool.Query(ctx, `SELECT key, value FROM assistiv_kv ORDER BY key`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var ops []persistence.Op
	n := 0
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		err := store.CommitUntracked(ops...)
		ops = ops[:0]
		return err
	}
	for rows.Next() {
		var k, v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return n, err
		}
		if len(k) > 0 && k[0] == persistence.FamilyMeta && string(k) == string(persistence.MetaSchemaKey) {
			continue
		}
		ops = append(ops, persistence.Set(k, v))
		n++
		if len(ops) == 1000 {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	if err := flush(); err != nil {
		return n, err
	}
	// The restored node's changefeed continues after the snapshot's
	// watermark, so the next round picks up exactly what changes next.
	mark := make([]byte, 8)
	putSeq(mark, uint64(watermark))
	return n, store.CommitUntracked(persistence.Set(persistence.MetaKey("changefeed_next"), mark))
}
