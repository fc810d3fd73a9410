package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/assistiv/gateway/persistence"
)

// Crash take-over records (README "Cluster", "Crash"), shared by the nodes
// of a cluster through Postgres (migration 3):
//
//   - assistiv_cluster_nodes: each node's name, remote address, state (up,
//     recovering, left, lost) and incarnation (its run, one more at each
//     start). A node in state up or recovering that is not a member of the
//     cluster has crashed: its accounts are taken over provisionally.
//   - assistiv_takeovers: one row per account taken over from a crashed
//     run (node, incarnation), with the holder and the amount held back,
//     until it is released (recovered or lost).
//   - assistiv_node_tails: what a restarted node acknowledged after its
//     last snapshot (its changefeed tail), per account, for the accounts'
//     current owners to merge in.
//   - assistiv_lost_nodes: the operator's declarations that a node's disk
//     is gone, with the bound of the loss.

// The wallet's ledger account name (actors.WalletAccount; this package
// does not import actors).
const walletAccount = "wallet"

// Node states in assistiv_cluster_nodes.
const (
	StateUp         = "up"
	StateRecovering = "recovering"
	StateLeft       = "left"
	StateLost       = "lost"
)

// NodeState is one row of assistiv_cluster_nodes.
type NodeState struct {
	Node        string
	Address     string
	State       string
	Incarnation uint64
	UpdatedAt   time.Time
}

// Registry reads and writes the crash take-over records.
type Registry struct{ pool *pgxpool.Pool }

// NewRegistry returns a registry on pool (migrated by [Connect]).
func NewRegistry(pool *pgxpool.Pool) *Registry { return &Registry{pool: pool} }

// Nodes returns every node's row.
func (r *Registry) Nodes(ctx context.Context) ([]NodeState, error) {
	rows, err := r.pool.Query(ctx, `SELECT node, address, state, incarnation, updated_at FROM assistiv_cluster_nodes ORDER BY node`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (NodeState, error) {
		var s NodeState
		var inc int64
		err := row.Scan(&s.Node, &s.Address, &s.State, &inc, &s.UpdatedAt)
		s.Incarnation = uint64(inc)
		return s, err
	})
}

// Node returns one node's row (ok false when it never started).
func (r *Registry) Node(ctx context.Context, node string) (NodeState, bool, error) {
	var s NodeState
	var inc int64
	err := r.pool.QueryRow(ctx, `SELECT node, address, state, incarnation, updated_at FROM assistiv_cluster_nodes WHERE node = $1`, node).
		Scan(&s.Node, &s.Address, &s.State, &inc, &s.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, false, nil
	}
	s.Incarnation = uint64(inc)
	return s, err == nil, err
}

// SetState records node's state (and its remote address, when not empty).
func (r *Registry) SetState(ctx context.Context, node, address, state string) error {
	_, err := r.pool.Exec(ctx, `INSERT INTO assistiv_cluster_nodes (node, address, state, incarnation, updated_at)
		VALUES ($1, $2, $3, 1, now())
		ON CONFLICT (node) DO UPDATE SET state = excluded.state, updated_at = now(),
			address = CASE WHEN excluded.address = '' THEN assistiv_cluster_nodes.address ELSE excluded.address END`, node, address, state)
	return err
}

// TailReport says what [Registry.PublishTail] found.
type TailReport struct {
	Crashed     bool   // the previous run ended without a graceful leave
	Incarnation uint64 // the previous run's incarnation (0: first start)
	Records     int    // tail records published
	Watermark   uint64 // the snapshot watermark the tail starts after
}

// PublishTail runs at a node's start, before it snapshots or joins: it
// copies the records its previous run changed after its snapshot
// watermark (its changefeed tail: ledger entries, idempotency records,
// reservations still open, lease records, account records) to assistiv_node_tails, tagged with that
// run's incarnation, for the owners of those accounts to merge in; moves
// the node's watermark past them (the shared snapshot must not get this
// node's older copies of accounts others now hold); and starts the next
// incarnation in state recovering. A tail is published whatever the
// previous run's end; only a crashed run's accounts were taken over.
func (r *Registry) PublishTail(ctx context.Context, store *persistence.Store, node string) (TailReport, error) {
	var rep TailReport
	prev, seen, err := r.Node(ctx, node)
	if err != nil {
		return rep, err
	}
	if seen {
		rep.Incarnation = prev.Incarnation
		rep.Crashed = prev.State == StateUp || prev.State == StateRecovering
	}
	var wm int64
	if err := r.pool.QueryRow(ctx, `SELECT coalesce((SELECT watermark FROM assistiv_snapshot_nodes WHERE node = $1), 0)`, node).Scan(&wm); err != nil {
		return rep, err
	}
	rep.Watermark = uint64(wm)
	snap, err := store.DurableSnapshot()
	if err != nil {
		return rep, err
	}
	defer snap.Close()
	it, err := snap.NewIter(&pebble.IterOptions{
		LowerBound: persistence.ChangefeedKey(rep.Watermark + 1),
		UpperBound: []byte{persistence.FamilyChangefeed + 1},
	})
	if err != nil {
		return rep, err
	}
	seenKey := map[string]bool{}
	var keys [][]byte
	last := rep.Watermark
	for ok := it.First(); ok; ok = it.Next() {
		ops, err := persistence.DecodeFeed(it.Value())
		if err != nil {
			it.Close()
			return rep, err
		}
		for _, op := range ops {
			if op.Kind == 2 || seenKey[string(op.Key)] {
				continue
			}
			if _, _, ok := tailAccount(op.Key); ok {
				seenKey[string(op.Key)] = true
				keys = append(keys, append([]byte(nil), op.Key...))
			}
		}
		last = bytesToSeq(it.Key())
	}
	if err := it.Close(); err != nil {
		return rep, err
	}
	var rows [][]any
	for _, k := range keys {
		v, closer, err := snap.Get(k)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return rep, err
		}
		val := append([]byte{}, v...)
		closer.Close()
		p, acct, _ := tailAccount(k)
		rows = append(rows, []any{node, int64(rep.Incarnation), p, acct, k, val})
	}
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return rep, err
	}
	defer tx.Rollback(ctx)
	if len(rows) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM assistiv_node_tails WHERE node = $1 AND incarnation = $2`, node, int64(rep.Incarnation)); err != nil {
			return rep, err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"assistiv_node_tails"}, []string{"node", "incarnation", "platform_id", "account", "key", "value"}, pgx.CopyFromRows(rows)); err != nil {
			return rep, err
		}
	}
	if last > rep.Watermark {
		if _, err := tx.Exec(ctx, `INSERT INTO assistiv_snapshot_nodes (node, watermark, updated_at) VALUES ($1, $2, now())
			ON CONFLICT (node) DO UPDATE SET watermark = excluded.watermark`, node, int64(last)); err != nil {
			return rep, err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO assistiv_cluster_nodes (node, address, state, incarnation, updated_at)
		VALUES ($1, '', $2, 1, now())
		ON CONFLICT (node) DO UPDATE SET state = excluded.state, incarnation = assistiv_cluster_nodes.incarnation + 1, updated_at = now()`,
		node, StateRecovering); err != nil {
		return rep, err
	}
	if err := tx.Commit(ctx); err != nil {
		return rep, err
	}
	rep.Records = len(rows)
	if last > rep.Watermark {
		mark := make([]byte, 8)
		putSeq(mark, last)
		if err := store.CommitUntracked(
			persistence.DeleteRange(persistence.ChangefeedKey(0), persistence.ChangefeedKey(last+1)),
			persistence.Set(persistence.MetaKey("changefeed_next"), mark)); err != nil {
			return rep, fmt.Errorf("prune changefeed: %w", err)
		}
	}
	return rep, nil
}

// tailAccount returns the platform and ledger account a tail record
// belongs to, for the record families a take-over merges.
func tailAccount(k []byte) (platform, account string, ok bool) {
	if len(k) < 2 {
		return "", "", false
	}
	parts := bytes.Split(k[1:], []byte{0})
	switch k[0] {
	case persistence.FamilyLedger, persistence.FamilyIdempotency, persistence.FamilyReservation:
		if len(parts) >= 3 {
			return string(parts[0]), string(parts[1]), true
		}
	case persistence.FamilyLease:
		if len(parts) == 2 {
			return string(parts[0]), walletAccount, true
		}
	case persistence.FamilyEndUser:
		if len(parts) == 2 {
			return string(parts[0]), string(parts[1]), true
		}
	case persistence.FamilyPlatform:
		if len(parts) == 1 {
			return string(parts[0]), walletAccount, true
		}
	}
	return "", "", false
}

// Tail returns the records of node's run incarnation's tail that belong
// to one ledger account (an end-user id or the wallet), as key and value.
func (r *Registry) Tail(ctx context.Context, node string, incarnation uint64, platform, account string) (keys, values [][]byte, err error) {
	rows, err := r.pool.Query(ctx, `SELECT key, value FROM assistiv_node_tails
		WHERE node = $1 AND incarnation = $2 AND platform_id = $3 AND account = $4 ORDER BY key`, node, int64(incarnation), platform, account)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k, v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, nil, err
		}
		keys, values = append(keys, k), append(values, v)
	}
	return keys, values, rows.Err()
}

// Snapshot reads an account's records from the shared snapshot: the keys
// in exact, every key under each of prefixes, and the API key records the
// key index entries among them (families persistence.FamilyPlatKeys,
// FamilyUserKeys) point to.
func (r *Registry) Snapshot(ctx context.Context, exact, prefixes [][]byte) (keys, values [][]byte, err error) {
	q := `SELECT key, value FROM assistiv_kv WHERE key = ANY($1)`
	args := []any{exact}
	for _, p := range prefixes {
		args = append(args, p, persistence.PrefixEnd(p))
		q += fmt.Sprintf(` OR (key >= $%d AND key < $%d)`, len(args)-1, len(args))
	}
	rows, err := r.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, nil, err
	}
	var digests [][]byte
	for rows.Next() {
		var k, v []byte
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return nil, nil, err
		}
		keys, values = append(keys, k), append(values, v)
		if len(k) > 0 && (k[0] == persistence.FamilyPlatKeys || k[0] == persistence.FamilyUserKeys) {
			digests = append(digests, persistence.APIKeyKey(v))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	if len(digests) == 0 {
		return keys, values, nil
	}
	rows, err = r.pool.Query(ctx, `SELECT key, value FROM assistiv_kv WHERE key = ANY($1)`, digests)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k, v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, nil, err
		}
		keys, values = append(keys, k), append(values, v)
	}
	return keys, values, rows.Err()
}

// RecordTakeover notes that holder took identity over from node's run
// incarnation, holding back held nano-USD (once per account and run).
func (r *Registry) RecordTakeover(ctx context.Context, node string, incarnation uint64, identity, holder string, held int64) error {
	_, err := r.pool.Exec(ctx, `INSERT INTO assistiv_takeovers (node, incarnation, identity, holder, held_nanos, created_at)
		VALUES ($1, $2, $3, $4, $5, now()) ON CONFLICT (node, incarnation, identity) DO NOTHING`,
		node, int64(incarnation), identity, holder, held)
	return err
}

// ReleaseTakeover notes that an account's take-over ended: how is
// "recovered" (the tail merged in) or "lost".
func (r *Registry) ReleaseTakeover(ctx context.Context, node string, incarnation uint64, identity, how string, applied int) error {
	_, err := r.pool.Exec(ctx, `UPDATE assistiv_takeovers SET released_at = now(), release = $4, merged_entries = $5
		WHERE node = $1 AND incarnation = $2 AND identity = $3 AND released_at IS NULL`,
		node, int64(incarnation), identity, how, applied)
	return err
}

// PendingTakeovers counts the accounts taken over from node's run
// incarnation and not yet released.
func (r *Registry) PendingTakeovers(ctx context.Context, node string, incarnation uint64) (int, error) {
	var n int
	err := r.pool.QueryRow(ctx, `SELECT count(*) FROM assistiv_takeovers WHERE node = $1 AND incarnation = $2 AND released_at IS NULL`,
		node, int64(incarnation)).Scan(&n)
	return n, err
}

// LostReport is an operator's declaration that a node's disk is gone.
type LostReport struct {
	Node        string
	Incarnation uint64
	DeclaredAt  time.Time
	// LastSnapshotAt is when the node's last snapshot round committed:
	// what it acknowledged after this instant (at most one snapshot
	// interval before it died) is lost.
	LastSnapshotAt time.Time
	Watermark      uint64
	// Provisional is how many of its accounts were provisional at the
	// declaration (their holds are given back).
	Provisional int
	// HeldNanos is what those holds held back.
	HeldNanos int64
}

// DeclareLost records that node's disk will not come back: its state
// becomes lost (its accounts' holders give their holds back) and a loss
// report is kept. It refuses a node that never ran, left gracefully or is
// already declared lost; declaring a node that still runs is the
// operator's mistake (its accounts were never taken over, so nothing is
// released, but its next crash is then not taken over provisionally).
func (r *Registry) DeclareLost(ctx context.Context, node string) (LostReport, error) {
	rep := LostReport{Node: node}
	s, ok, err := r.Node(ctx, node)
	if err != nil {
		return rep, err
	}
	switch {
	case !ok:
		return rep, fmt.Errorf("no node %q has ever run in this cluster", node)
	case s.State == StateLeft:
		return rep, fmt.Errorf("node %q left gracefully: nothing of it is missing", node)
	case s.State == StateLost:
		return rep, fmt.Errorf("node %q is already declared lost", node)
	}
	rep.Incarnation = s.Incarnation
	var wm int64
	var at *time.Time
	if err := r.pool.QueryRow(ctx, `SELECT watermark, updated_at FROM assistiv_snapshot_nodes WHERE node = $1`, node).Scan(&wm, &at); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return rep, err
	}
	rep.Watermark = uint64(wm)
	if at != nil {
		rep.LastSnapshotAt = *at
	}
	if err := r.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(held_nanos), 0) FROM assistiv_takeovers WHERE node = $1 AND incarnation = $2 AND released_at IS NULL`,
		node, int64(s.Incarnation)).Scan(&rep.Provisional, &rep.HeldNanos); err != nil {
		return rep, err
	}
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return rep, err
	}
	defer tx.Rollback(ctx)
	if err := tx.QueryRow(ctx, `INSERT INTO assistiv_lost_nodes (node, incarnation, declared_at, last_snapshot_at, watermark, provisional, held_nanos)
		VALUES ($1, $2, now(), $3, $4, $5, $6) RETURNING declared_at`,
		node, int64(s.Incarnation), at, wm, rep.Provisional, rep.HeldNanos).Scan(&rep.DeclaredAt); err != nil {
		return rep, err
	}
	if _, err := tx.Exec(ctx, `UPDATE assistiv_cluster_nodes SET state = $2, updated_at = now() WHERE node = $1`, node, StateLost); err != nil {
		return rep, err
	}
	return rep, tx.Commit(ctx)
}

// LostReports lists every declaration, newest first.
func (r *Registry) LostReports(ctx context.Context) ([]LostReport, error) {
	rows, err := r.pool.Query(ctx, `SELECT node, incarnation, declared_at, last_snapshot_at, watermark, provisional, held_nanos
		FROM assistiv_lost_nodes ORDER BY declared_at DESC`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (LostReport, error) {
		var l LostReport
		var inc, wm int64
		var at *time.Time
		err := row.Scan(&l.Node, &inc, &l.DeclaredAt, &at, &wm, &l.Provisional, &l.HeldNanos)
		l.Incarnation, l.Watermark = uint64(inc), uint64(wm)
		if at != nil {
			l.LastSnapshotAt = *at
		}
		return l, err
	})
}

// UntakenTail returns the keys of node's run incarnation's tail whose
// account nobody took over: the restarted node still holds those accounts
// with the tail in them, and writes them again so that its snapshot
// rounds mirror them (PublishTail moved its watermark past them).
func (r *Registry) UntakenTail(ctx context.Context, node string, incarnation uint64) ([][]byte, error) {
	rows, err := r.pool.Query(ctx, `SELECT key FROM assistiv_node_tails t
		WHERE node = $1 AND incarnation = $2 AND NOT EXISTS (
			SELECT 1 FROM assistiv_takeovers k WHERE k.node = t.node AND k.incarnation = t.incarnation
			AND k.identity = CASE WHEN t.account = 'wallet' THEN 'plat/' || t.platform_id
				ELSE 'eu/' || t.platform_id || '/' || t.account END)
		ORDER BY key`, node, int64(incarnation))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[[]byte])
}
