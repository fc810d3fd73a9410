package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/cluster/wire"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// sharedTable holds the shared records: the same keys and values the
// services write to a lone node's Pebble, so they order alike (bytea
// compares bytewise).
const sharedTable = "assistiv_shared_kv"

// defaultSharedTimeout bounds one call to Postgres.
const defaultSharedTimeout = 5 * time.Second

// Shared is where a cluster keeps the records that belong to a platform
// rather than to one actor: webhook endpoints, MCP app activations and
// OAuth connections (and their pending flows), skills, and the dashboard's
// members, invites and sessions. A lone node keeps them in its Pebble; in
// a cluster every node must read the same ones, so they live in the
// cluster's Postgres (required in cluster mode), one table of key → value
// in Pebble's byte order, read and written by every node alike. No actor
// owns them, so no actor's records are read behind its back; they are not
// on the inference path.
//
// A service that keeps something derived from them in memory (the
// webhook service's endpoint table) is told of a change on another node
// by [Shared.Announce] (a broadcast over [Peers]) and reloads; each
// service also resynchronizes on a timer, the safety net for a missed
// broadcast. Services that keep nothing in memory read Postgres every
// time, so a revocation (a logout, a disconnect) holds on every node the
// moment its commit returns.
//
// Shared implements the store methods of the packages that use it
// (Get, Scan, ScanPrefix, Commit, CommitUntracked with
// [persistence.Store]'s meanings, [persistence.ErrNotFound] included). A
// commit is one Postgres transaction, durable when it returns. Safe for
// concurrent use; every method may block on Postgres for up to its
// timeout (5 s).
type Shared struct {
	pool    *pgxpool.Pool
	locks   *pgxpool.Pool // connections that hold advisory locks (Lock), apart from pool's work
	owned   bool          // the pool is ours to close
	peers   actors.Peers
	timeout time.Duration
	log     *slog.Logger

	mu      sync.RWMutex // guards watches and queries
	watches map[string][]func(platform string)
	queries map[string]func(body []byte) ([]byte, error)
}

// NewShared returns the shared records over pool, creating the table if
// needed. peers carries change announcements; node (this node's answering
// side) receives them. Both may be nil (no other node to tell).
func NewShared(ctx context.Context, pool *pgxpool.Pool, peers actors.Peers, node *actors.Node) (*Shared, error) {
	if pool == nil {
		return nil, errors.New("cluster: NewShared needs a Postgres pool")
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+sharedTable+` (
		key bytea PRIMARY KEY,
		value bytea NOT NULL
	)`); err != nil {
		return nil, fmt.Errorf("cluster: create %s: %w", sharedTable, err)
	}
	lcfg := pool.Config()
	lcfg.MaxConns = 16
	lcfg.MinConns = 0
	locks, err := pgxpool.NewWithConfig(ctx, lcfg)
	if err != nil {
		return nil, fmt.Errorf("cluster: shared records: lock pool: %w", err)
	}
	s := &Shared{pool: pool, locks: locks, peers: peers, timeout: defaultSharedTimeout, log: slog.Default(), watches: map[string][]func(string){},
		queries: map[string]func([]byte) ([]byte, error){}}
	if node != nil {
		node.Handle(&wire.SharedChanged{}, s.answer)
		node.Handle(&wire.SharedQuery{}, s.answerQuery)
	}
	return s, nil
}

// OpenShared connects to the Postgres at url and returns node's shared
// records (announcements over the node's peers). Close closes the pool.
func OpenShared(ctx context.Context, url string, node *Node) (*Shared, error) {
	pool, err := pgxpool.New(ctx, url)
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		if pool != nil {
			pool.Close()
		}
		return nil, fmt.Errorf("cluster: shared records: connect: %w", err)
	}
	s, err := NewShared(ctx, pool, node.Peers(), node.PeerNode())
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// SetLogger sets where s logs (default slog.Default()). Call it before use.
func (s *Shared) SetLogger(l *slog.Logger) { s.log = l }

// Close closes the lock connections, and the pool when [OpenShared]
// opened it. Call it after the services that use s have stopped.
func (s *Shared) Close() {
	s.locks.Close()
	if s.owned {
		s.pool.Close()
	}
}

func (s *Shared) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.timeout)
}

// Get returns the value at key, or [persistence.ErrNotFound].
func (s *Shared) Get(key []byte) ([]byte, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var v []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM `+sharedTable+` WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, persistence.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: shared get: %w", err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// Scan calls fn for each key in [start, end) (end nil: no bound) in order,
// or reverse order, until fn returns false. Keys and values are only valid
// during the call. fn may call other methods of s.
func (s *Shared) Scan(start, end []byte, reverse bool, fn func(k, v []byte) bool) error {
	ctx, cancel := s.ctx()
	defer cancel()
	q := `SELECT key, value FROM ` + sharedTable + ` WHERE key >= $1`
	args := []any{start}
	if end != nil {
		q += ` AND key < $2`
		args = append(args, end)
	}
	q += ` ORDER BY key`
	if reverse {
		q += ` DESC`
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("cluster: shared scan: %w", err)
	}
	// Read the rows before calling fn, which may use the pool itself
	// (nested calls would otherwise hold two connections each).
	type kv struct{ k, v []byte }
	var all []kv
	for rows.Next() {
		var r kv
		if err := rows.Scan(&r.k, &r.v); err != nil {
			rows.Close()
			return fmt.Errorf("cluster: shared scan: %w", err)
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cluster: shared scan: %w", err)
	}
	for _, r := range all {
		if !fn(r.k, r.v) {
			break
		}
	}
	return nil
}

// ScanPrefix is Scan over every key starting with prefix.
func (s *Shared) ScanPrefix(prefix []byte, reverse bool, fn func(k, v []byte) bool) error {
	return s.Scan(prefix, persistence.PrefixEnd(prefix), reverse, fn)
}

// Commit applies ops in order, in one transaction: all or none, durable
// when it returns nil.
func (s *Shared) Commit(ops ...persistence.Op) error {
	if len(ops) == 0 {
		return nil
	}
	ctx, cancel := s.ctx()
	defer cancel()
	b := &pgx.Batch{}
	for _, op := range ops {
		switch {
		case !op.Delete:
			v := op.Value
			if v == nil {
				v = []byte{}
			}
			b.Queue(`INSERT INTO `+sharedTable+` (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, op.Key, v)
		case op.End != nil:
			b.Queue(`DELETE FROM `+sharedTable+` WHERE key >= $1 AND key < $2`, op.Key, op.End)
		default:
			b.Queue(`DELETE FROM `+sharedTable+` WHERE key = $1`, op.Key)
		}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("cluster: shared commit: %w", err)
	}
	return nil
}

// CommitUntracked is Commit (Postgres has no changefeed to skip).
func (s *Shared) CommitUntracked(ops ...persistence.Op) error { return s.Commit(ops...) }

// Watch makes fn run whenever another node announces that the records of
// topic changed for a platform ([Shared.Announce]). fn runs on a goroutine
// of the peers actor while the announcing node waits: it should take at
// most a few hundred milliseconds.
func (s *Shared) Watch(topic string, fn func(platform string)) {
	s.mu.Lock()
	s.watches[topic] = append(s.watches[topic], fn)
	s.mu.Unlock()
}

func (s *Shared) notify(topic, platform string) {
	s.mu.RLock()
	fns := s.watches[topic]
	s.mu.RUnlock()
	for _, fn := range fns {
		fn(platform)
	}
}

// Announce tells every other node that topic's records of platform
// changed (this node's watches do not run: the announcer applied its own
// change). It returns once every other live node has run its watches, or
// ctx ended; an error names nodes that may not have (they catch up at
// their next resynchronization).
func (s *Shared) Announce(ctx context.Context, topic, platform string) error {
	if s.peers == nil {
		return nil
	}
	return s.peers.Broadcast(ctx, &wire.SharedChanged{Topic: topic, Platform: platform})
}

// answer applies another node's announcement.
func (s *Shared) answer(_ context.Context, msg proto.Message) (proto.Message, error) {
	m, ok := msg.(*wire.SharedChanged)
	if !ok {
		return nil, fmt.Errorf("cluster: shared: unexpected %T", msg)
	}
	s.notify(m.Topic, m.Platform)
	return &pb.Ack{}, nil
}

// HandleQuery makes fn answer topic's queries ([Shared.Query]) on this
// node. fn must be safe for concurrent use.
func (s *Shared) HandleQuery(topic string, fn func(body []byte) ([]byte, error)) {
	s.mu.Lock()
	s.queries[topic] = fn
	s.mu.Unlock()
}

// Query sends body to topic's handler on every node, this one included
// (a fan-out over peers), and returns the answers of those that answered;
// with an error wrapping actors.ErrUnavailable when some did not.
func (s *Shared) Query(ctx context.Context, topic string, body []byte) ([][]byte, error) {
	if s.peers == nil {
		b, err := s.runQuery(topic, body)
		if err != nil {
			return nil, err
		}
		return [][]byte{b}, nil
	}
	res, err := s.peers.FanOut(ctx, &wire.SharedQuery{Topic: topic, Body: body})
	out := make([][]byte, 0, len(res))
	for _, m := range res {
		a, ok := m.(*wire.SharedAnswer)
		if !ok {
			return nil, fmt.Errorf("cluster: a node answered a shared query with %T", m)
		}
		out = append(out, a.Body)
	}
	return out, err
}

func (s *Shared) runQuery(topic string, body []byte) ([]byte, error) {
	s.mu.RLock()
	fn := s.queries[topic]
	s.mu.RUnlock()
	if fn == nil {
		return nil, fmt.Errorf("cluster: no handler for shared query topic %q", topic)
	}
	return fn(body)
}

// answerQuery answers a node's SharedQuery.
func (s *Shared) answerQuery(_ context.Context, msg proto.Message) (proto.Message, error) {
	m, ok := msg.(*wire.SharedQuery)
	if !ok {
		return nil, fmt.Errorf("cluster: shared: unexpected %T", msg)
	}
	b, err := s.runQuery(m.Topic, m.Body)
	if err != nil {
		return nil, err
	}
	return &wire.SharedAnswer{Body: b}, nil
}

// Lock takes the cluster-wide lock called name and returns its release:
// a Postgres advisory lock held by a connection of its own (16 at most,
// apart from the records' pool, so a holder's reads and writes never wait
// for the waiters' connections). It waits at most the timeout (5 s). A
// node that dies releases its locks with its connections. The services
// whose records s keeps take it around their read-modify-writes, which a
// node-local mutex no longer serializes across nodes.
func (s *Shared) Lock(name string) (func(), error) {
	ctx, cancel := s.ctx()
	defer cancel()
	h := fnv.New64a()
	h.Write([]byte("assistiv/" + name))
	key := int64(h.Sum64())
	conn, err := s.locks.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: lock %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		conn.Release()
		return nil, fmt.Errorf("cluster: lock %s: %w", name, err)
	}
	return func() {
		ctx, cancel := s.ctx()
		defer cancel()
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, key); err != nil {
			// Ending the session releases the lock.
			_ = conn.Conn().Close(ctx)
		}
		conn.Release()
	}, nil
}

// SharedFamilies are the record families the services keep in the shared
// records in cluster mode: webhook endpoints, MCP app activations, OAuth
// connections and flows, skills (records, owner index, reviews, blob
// references and contents), dashboard accounts.
var SharedFamilies = []byte{
	persistence.FamilyWebhookEndpoint,
	persistence.FamilyMCPApp, persistence.FamilyMCPConn, persistence.FamilyOAuthState,
	persistence.FamilySkill, persistence.FamilySkillOwner, persistence.FamilySkillReview, persistence.FamilySkillBlob, persistence.FamilySkillData,
	persistence.FamilyDashboard,
}

// importBatch bounds the records one import transaction copies.
const importBatch = 500

// Import moves the records of families that store (a node's Pebble) still
// holds from a time it ran alone, or from an earlier version, into the
// shared records: each is inserted unless the shared records have that key
// already (theirs are newer: another node's, or this one's), then deleted
// from store, so it is imported once and never brought back after a
// deletion. A crash between the two steps imports the rest again at the
// next start, harmlessly. Run it at start-up before the services load.
// It returns how many records it copied.
func (s *Shared) Import(store *persistence.Store, families []byte) (int, error) {
	copied := 0
	for _, f := range families {
		start, end := []byte{f}, []byte{f + 1}
		for {
			type kv struct{ k, v []byte }
			var batch []kv
			if err := store.Scan(start, end, false, func(k, v []byte) bool {
				batch = append(batch, kv{bytes.Clone(k), bytes.Clone(v)})
				return len(batch) < importBatch
			}); err != nil {
				return copied, err
			}
			if len(batch) == 0 {
				break
			}
			ctx, cancel := s.ctx()
			b := &pgx.Batch{}
			for _, r := range batch {
				v := r.v
				if v == nil {
					v = []byte{}
				}
				b.Queue(`INSERT INTO `+sharedTable+` (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, r.k, v)
			}
			err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() })
			cancel()
			if err != nil {
				return copied, fmt.Errorf("cluster: import family %#x: %w", f, err)
			}
			last := batch[len(batch)-1].k
			if err := store.Commit(persistence.DeleteRange(start, append(bytes.Clone(last), 0))); err != nil {
				return copied, err
			}
			copied += len(batch)
		}
	}
	return copied, nil
}
