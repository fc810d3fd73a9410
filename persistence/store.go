package persistence

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
)

// Errors returned by the store.
var (
	ErrNotFound = errors.New("persistence: not found")
	ErrFailed   = errors.New("persistence: store failed; refusing writes")
	ErrClosed   = errors.New("persistence: store closed")
)

// Config configures [Open].
type Config struct {
	// Dir is the data directory; Pebble lives in Dir/<Subdir>. Required.
	Dir string
	// Subdir names this store's Pebble directory under Dir. Default
	// "pebble" (the money and entity store); the per-call logs live in
	// their own store, "logs".
	Subdir string
	// MaxUnsyncedDelay, when positive, bounds how long a write applied
	// without fsync (NoSync) stays unsynced: the store forces an fsync
	// that often while such writes exist. It bounds what a power cut can
	// take from billing_durability=batch. Default 0: no timer.
	MaxUnsyncedDelay time.Duration
	// AppendMostly tunes Pebble for an append-mostly, TTL'd workload
	// (per-call logs): larger memtables and a lazier L0, so compaction
	// runs less often and in bigger steps. Leave it off for the money
	// store, whose records are small and overwritten.
	AppendMostly bool
	// QueueDepth bounds the writes waiting for the committer. A full queue
	// makes Submit block (backpressure). Default 65536, range 1..1<<20.
	QueueDepth int
	// MaxBatch bounds how many writes one commit folds together.
	// Default 4096, range 1..65536.
	MaxBatch int
	// Logger receives the store's log lines. Default slog.Default().
	Logger *slog.Logger
	// OnFatal is called once when a write or fsync fails. The store has
	// already refused further writes. Default: log and exit the process
	// with status 70, so the node stops rather than acknowledge (fsyncgate).
	OnFatal func(error)
	// DisableChangefeed turns off the changefeed records (for data dirs
	// that are never snapshotted, such as benchmarks of Pebble alone).
	DisableChangefeed bool
	// FS, when set, replaces the real filesystem (crash tests use Pebble's
	// strict in-memory FS).
	FS pebbleFS
	// Failpoint is for tests only; leave it nil in production (the store
	// then pays one nil check per batch). When set, the committer calls it
	// at each stage of a batch's life: [FailpointBeforeApply] (gathered,
	// nothing applied), [FailpointAfterApply] (applied to the memtable and
	// queued for the WAL, fsync not yet awaited, no Done run) and
	// [FailpointAfterSync] (fsynced, before the synced writes' Dones). A
	// non-nil error is treated as an I/O failure at that point: fail-stop,
	// OnFatal once, the batch's unacknowledged writes fail with
	// [ErrFailed] and every later write is refused. It runs on the
	// store's goroutines and must not block for long.
	Failpoint func(stage string) error
}

// Stages passed to [Config.Failpoint].
const (
	FailpointBeforeApply = "before-apply"
	FailpointAfterApply  = "after-apply"
	FailpointAfterSync   = "after-sync"
)

// DefaultConfig returns the defaults documented on [Config].
func DefaultConfig() Config {
	return Config{QueueDepth: 65536, MaxBatch: 4096}
}

// Validate reports the first invalid field of c.
func (c Config) Validate() error {
	switch {
	case c.Dir == "" && c.FS == nil:
		return errors.New("persistence: Config.Dir is required")
	case c.QueueDepth < 1 || c.QueueDepth > 1<<20:
		return fmt.Errorf("persistence: QueueDepth %d out of range 1..1048576", c.QueueDepth)
	case c.MaxBatch < 1 || c.MaxBatch > 65536:
		return fmt.Errorf("persistence: MaxBatch %d out of range 1..65536", c.MaxBatch)
	}
	return nil
}

// Op is one mutation in a [Write].
type Op struct {
	Key   []byte
	Value []byte // nil with Delete
	// Delete removes Key; with End set it removes the range [Key, End).
	Delete bool
	End    []byte
	// Once marks a Delete of a key that was Set exactly once since it
	// was last deleted (a reservation, a lease spend record): Pebble's
	// SingleDelete, which vanishes together with that value at the first
	// flush or compaction that sees both, so short-lived records leave no
	// tombstone for compactions to carry. Deleting a key set twice this
	// way is undefined (the older value may reappear): use Delete.
	Once bool
}

// Set returns an Op that sets key to value.
func Set(key, value []byte) Op { return Op{Key: key, Value: value} }

// Delete returns an Op that deletes key.
func Delete(key []byte) Op { return Op{Key: key, Delete: true} }

// DeleteOnce returns an Op that deletes key, a key Set exactly once since
// it was last deleted (see [Op.Once]).
func DeleteOnce(key []byte) Op { return Op{Key: key, Delete: true, Once: true} }

// DeleteRange returns an Op that deletes [start, end).
func DeleteRange(start, end []byte) Op { return Op{Key: start, End: end, Delete: true} }

// Write is a group of Ops applied atomically.
type Write struct {
	Ops []Op
	// NoSync lets Done run once the write is applied, before its fsync.
	// Used for records whose loss a crash recovery handles (reservations).
	NoSync bool
	// Untracked leaves the write out of the changefeed (the snapshotter's
	// own bookkeeping).
	Untracked bool
	// snapshot, when set, receives a Pebble snapshot taken right after the
	// write's batch is applied, before any later batch: once the write is
	// durable, so is everything the snapshot shows (DurableSnapshot).
	snapshot **pebble.Snapshot
	// Done is called exactly once, from the store's goroutine, with nil
	// when the write is durable (applied, for NoSync) or the error that
	// stopped it. It must not block. A Write with no Ops is a barrier: its
	// Done runs once every earlier write is durable (applied, for earlier
	// NoSync writes: a barrier orders, it syncs nothing by itself; the
	// next synced write makes them durable).
	Done func(error)
}

type syncItem struct {
	batch  *pebble.Batch // nil: nothing to wait for
	dones  []func(error)
	signal bool // tell the committer on s.synced when the fsync returned
}

// Store is the node's Pebble store with its group-commit pipeline. Its
// methods are safe for concurrent use.
type Store struct {
	cfg    Config
	db     *pebble.DB
	log    *slog.Logger
	in     chan Write
	syncq  chan syncItem
	failed atomic.Pointer[error]
	closed atomic.Bool
	wg     sync.WaitGroup

	mu            sync.RWMutex  // guards closing of in against concurrent Submit
	feedSeq       uint64        // owned by the committer goroutine after Open
	synced        chan struct{} // syncLoop → commitLoop: a synced batch's fsync returned (a wake-up, capacity 1)
	syncedBatches atomic.Uint64 // synced batches whose fsync returned
	commits       atomic.Uint64
	writes        atomic.Uint64
	batches       atomic.Uint64
	syncedWrites  atomic.Uint64
	dirty         atomic.Bool // unsynced writes applied since the last synced batch
	quit          chan struct{}
	fatalOne      sync.Once
}

// Open opens (creating if needed) the store in cfg.Dir and starts its
// committer. It never mutates the caller's cfg.
func Open(cfg Config) (*Store, error) {
	def := DefaultConfig()
	if cfg.QueueDepth == 0 {
		cfg.QueueDepth = def.QueueDepth
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = def.MaxBatch
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OnFatal == nil {
		log := cfg.Logger
		cfg.OnFatal = func(err error) {
			log.Error("store failed; stopping the node rather than acknowledge", "err", err)
			os.Exit(70)
		}
	}
	opts := &pebble.Options{Logger: quietLogger{cfg.Logger}}
	// Money records are small, written once and mostly never read again:
	// a memtable large enough that a call's short-lived records (its
	// reservation, its lease spend record) meet their SingleDelete before
	// the flush, and no compression in the upper levels, whose tables are
	// rewritten soon anyway (snappy was 4 % of the gateway's CPU under
	// load). The bottom levels, where the ledger settles, stay compressed.
	opts.MemTableSize = 32 << 20
	for i := range opts.Levels {
		if i < 4 {
			opts.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.NoCompression }
		}
	}
	if cfg.AppendMostly {
		opts.MemTableSize = 64 << 20
		opts.MemTableStopWritesThreshold = 4
		opts.L0CompactionThreshold = 8
		opts.L0StopWritesThreshold = 48
		opts.LBaseMaxBytes = 512 << 20
	}
	sub := cfg.Subdir
	if sub == "" {
		sub = "pebble"
	}
	dir := filepath.Join(cfg.Dir, sub)
	if cfg.FS != nil {
		opts.FS = cfg.FS
	} else if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("persistence: create data dir: %w", err)
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("persistence: open pebble: %w", err)
	}
	s := &Store{
		cfg:    cfg,
		db:     db,
		log:    cfg.Logger,
		in:     make(chan Write, cfg.QueueDepth),
		syncq:  make(chan syncItem, 1024),
		synced: make(chan struct{}, 1),
		quit:   make(chan struct{}),
	}
	if err := s.checkSchema(); err != nil {
		db.Close()
		return nil, err
	}
	if s.feedSeq, err = s.lastFeedSeq(); err != nil {
		db.Close()
		return nil, err
	}
	if cfg.DisableChangefeed {
		// Changes made now reach no changefeed: the next snapshotter must
		// copy everything, not just the feed after its watermark.
		if err := db.Set(MetaChangefeedGap, []byte{1}, pebble.Sync); err != nil {
			db.Close()
			return nil, err
		}
	}
	s.wg.Add(2)
	go s.commitLoop()
	go s.syncLoop()
	if cfg.MaxUnsyncedDelay > 0 {
		s.wg.Add(1)
		go s.syncEvery(cfg.MaxUnsyncedDelay)
	}
	return s, nil
}

func (s *Store) checkSchema() error {
	v, err := s.Get(MetaSchemaKey)
	if errors.Is(err, ErrNotFound) {
		return s.db.Set(MetaSchemaKey, []byte(strconv.Itoa(SchemaVersion)), pebble.Sync)
	}
	if err != nil {
		return err
	}
	if string(v) != strconv.Itoa(SchemaVersion) {
		return fmt.Errorf("persistence: data dir has schema version %s, this build reads %d", v, SchemaVersion)
	}
	return nil
}

func (s *Store) lastFeedSeq() (uint64, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{FamilyChangefeed},
		UpperBound: []byte{FamilyChangefeed + 1},
	})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if it.Last() && len(it.Key()) == 9 {
		return binary.BigEndian.Uint64(it.Key()[1:]), nil
	}
	// The snapshotter may have pruned the feed: keep counting from the
	// watermark it recorded.
	if v, err := s.Get(MetaKey("changefeed_next")); err == nil && len(v) == 8 {
		return binary.BigEndian.Uint64(v), nil
	}
	return 0, it.Error()
}

// Submit queues w for the committer. It blocks only while the queue is
// full. After a fatal error or Close, w.Done is called at once with
// [ErrFailed] or [ErrClosed].
func (s *Store) Submit(w Write) {
	if e := s.failed.Load(); e != nil {
		w.Done(fmt.Errorf("%w: %v", ErrFailed, *e))
		return
	}
	s.mu.RLock()
	if s.closed.Load() {
		s.mu.RUnlock()
		w.Done(ErrClosed)
		return
	}
	s.in <- w
	s.mu.RUnlock()
}

// Commit submits ops and waits until they are durable.
func (s *Store) Commit(ops ...Op) error {
	ch := make(chan error, 1)
	s.Submit(Write{Ops: ops, Done: func(err error) { ch <- err }})
	return <-ch
}

// CommitUntracked is Commit for writes left out of the changefeed.
func (s *Store) CommitUntracked(ops ...Op) error {
	ch := make(chan error, 1)
	s.Submit(Write{Ops: ops, Untracked: true, Done: func(err error) { ch <- err }})
	return <-ch
}

// Barrier waits until every write submitted before it is durable (see
// [Write]: NoSync writes are only applied).
func (s *Store) Barrier() error { return s.Commit() }

// Sync makes every write submitted before it durable, NoSync writes
// included: it commits a small synced marker record.
func (s *Store) Sync() error {
	return s.CommitUntracked(Set(MetaSyncMarker, []byte{1}))
}

// MetaSyncMarker is the record Sync and DurableSnapshot write to force an
// fsync: a key in the changefeed's family shorter than any feed record,
// so no snapshot or feed reader ever copies it.
var MetaSyncMarker = []byte{FamilyChangefeed}

// DurableSnapshot returns a Pebble snapshot that shows only durable
// records: it is taken right after a synced marker write is applied (so it
// shows that write and everything before it, nothing after) and returned
// once that write's fsync is done. The caller closes it.
func (s *Store) DurableSnapshot() (*pebble.Snapshot, error) {
	var snap *pebble.Snapshot
	ch := make(chan error, 1)
	s.Submit(Write{Ops: []Op{Set(MetaSyncMarker, []byte{1})}, Untracked: true, snapshot: &snap, Done: func(err error) { ch <- err }})
	if err := <-ch; err != nil {
		if snap != nil {
			snap.Close()
		}
		return nil, err
	}
	return snap, nil
}

// Checkpoint writes a consistent, openable copy of the store to dir (a
// path that must not exist yet; its parent must) without stopping writes:
// it first makes every write submitted before the call durable (a synced
// marker, as [Store.Sync]), then has Pebble hard-link the live tables and
// copy the manifest and the flushed WAL, so the copy holds every write
// acknowledged before the call and possibly some that raced it, each whole.
// dir must be on the data dir's file system for the links; otherwise
// Pebble copies. Safe for concurrent use with every other method.
func (s *Store) Checkpoint(dir string) error {
	if err := s.Sync(); err != nil {
		return err
	}
	if err := s.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("persistence: checkpoint: %w", err)
	}
	return nil
}

// syncEvery bounds how long an applied, unsynced write (billing in batch
// durability) waits for its fsync: every d, if such writes were applied
// since the last synced batch, it forces one.
func (s *Store) syncEvery(d time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
			if s.dirty.Load() && s.failed.Load() == nil {
				s.Submit(Write{Ops: []Op{Set(MetaSyncMarker, []byte{1})}, Untracked: true, Done: func(error) {}})
			}
		}
	}
}

// gathering is the batch the committer is building.
type gathering struct {
	snaps       []**pebble.Snapshot
	batch       *pebble.Batch
	dones       []func(error)
	noSyncDones []func(error)
	sync        bool // holds a synced write with ops
	n           int
	feed        []byte
	noFeed      bool // the store keeps no changefeed: feed stays empty
}

func (g *gathering) empty() bool { return g.n == 0 }

// add folds w into the batch.
func (g *gathering) add(w Write) {
	for _, op := range w.Ops {
		var kind byte
		switch {
		case op.Delete && op.End != nil:
			_ = g.batch.DeleteRange(op.Key, op.End, nil)
			kind = 2
		case op.Delete && op.Once:
			_ = g.batch.SingleDelete(op.Key, nil)
			kind = 1
		case op.Delete:
			_ = g.batch.Delete(op.Key, nil)
			kind = 1
		default:
			_ = g.batch.Set(op.Key, op.Value, nil)
		}
		if !w.Untracked && !g.noFeed {
			g.feed = appendFeed(g.feed, kind, op.Key, op.End)
		}
	}
	if w.snapshot != nil {
		g.snaps = append(g.snaps, w.snapshot)
	}
	if w.NoSync {
		g.noSyncDones = append(g.noSyncDones, w.Done)
	} else {
		if len(w.Ops) > 0 {
			g.sync = true
		}
		g.dones = append(g.dones, w.Done)
	}
	g.n++
}

// commitLoop gathers writes into batches and applies them in order. At
// most one synced batch is being fsynced at a time: while it is, the
// committer keeps gathering, and hands Pebble one larger batch when the
// fsync returns (a batch of only unsynced writes is applied at once: it
// waits for nothing and, everything before it being applied, keeps the
// order).
func (s *Store) commitLoop() {
	defer s.wg.Done()
	defer close(s.syncq)
	noFeed := s.cfg.DisableChangefeed
	g := &gathering{noFeed: noFeed}
	var handed uint64 // synced batches handed to syncLoop
	inflight := func() bool { return handed > s.syncedBatches.Load() }
	open := true
	for open || !g.empty() {
		if g.empty() {
			select {
			case w, ok := <-s.in:
				if !ok {
					open = false
					continue
				}
				if s.failed.Load() != nil {
					s.failAll(w, ErrFailed)
					continue
				}
				g.batch = s.db.NewBatch()
				g.add(w)
			case <-s.synced:
				continue
			}
		}
	drain:
		for open && g.n < s.cfg.MaxBatch {
			select {
			case w2, ok := <-s.in:
				if !ok {
					open = false
					break drain
				}
				g.add(w2)
			default:
				break drain
			}
		}
		if g.sync && inflight() && open && g.n < s.cfg.MaxBatch {
			// An fsync is in flight: gather until it returns.
			select {
			case w2, ok := <-s.in:
				if !ok {
					open = false
				} else {
					g.add(w2)
				}
			case <-s.synced:
			}
			continue
		}
		if s.apply(g) {
			handed++
		}
		g = &gathering{feed: g.feed[:0], noFeed: noFeed}
	}
}

// apply applies one gathered batch and hands it to syncLoop; it reports
// whether the batch waits for an fsync (syncLoop then signals s.synced).
func (s *Store) apply(g *gathering) bool {
	batch, dones, noSyncDones := g.batch, g.dones, g.noSyncDones
	if e := s.failed.Load(); e != nil {
		// The store failed while this batch was being gathered: apply
		// nothing more.
		batch.Close()
		for _, d := range append(dones, noSyncDones...) {
			d(fmt.Errorf("%w: %v", ErrFailed, *e))
		}
		return false
	}
	if len(g.feed) > 0 && !s.cfg.DisableChangefeed {
		s.feedSeq++
		_ = batch.Set(ChangefeedKey(s.feedSeq), g.feed, nil)
	}
	s.writes.Add(uint64(g.n))
	s.batches.Add(1)
	var err error
	if fp := s.cfg.Failpoint; fp != nil {
		if err = fp(FailpointBeforeApply); err != nil {
			err = fmt.Errorf("failpoint %s: %w", FailpointBeforeApply, err)
			batch.Close()
			s.fatal(fmt.Errorf("apply batch: %w", err))
			for _, d := range append(dones, noSyncDones...) {
				d(fmt.Errorf("%w: %v", ErrFailed, err))
			}
			return false
		}
	}
	sync := false
	nonEmpty := !batch.Empty()
	switch {
	case batch.Empty():
		batch.Close()
		batch = nil
	case g.sync:
		err = s.db.ApplyNoSyncWait(batch, pebble.Sync)
		sync = err == nil
	default:
		err = s.db.Apply(batch, pebble.NoSync)
		batch.Close()
		batch = nil
	}
	if err != nil {
		s.fatal(fmt.Errorf("apply batch: %w", err))
		for _, d := range append(dones, noSyncDones...) {
			d(fmt.Errorf("%w: %v", ErrFailed, err))
		}
		return false
	}
	for _, p := range g.snaps {
		*p = s.db.NewSnapshot() // nothing applied after this batch yet
	}
	if nonEmpty {
		// A synced batch covers every write before it; an unsynced one
		// leaves the store dirty until the next fsync.
		s.dirty.Store(!g.sync)
	}
	if fp := s.cfg.Failpoint; fp != nil {
		if err := fp(FailpointAfterApply); err != nil {
			// Applied (and maybe reaching the WAL) but acknowledged to
			// no one: fail-stop; syncLoop still waits for the batch
			// before closing it and fails its Dones.
			err = fmt.Errorf("failpoint %s: %w", FailpointAfterApply, err)
			s.fatal(fmt.Errorf("apply batch: %w", err))
			for _, d := range noSyncDones {
				d(fmt.Errorf("%w: %v", ErrFailed, err))
			}
			noSyncDones = nil
		}
	}
	for _, d := range noSyncDones {
		d(nil)
	}
	if sync {
		s.syncedWrites.Add(uint64(len(dones)))
	}
	s.syncq <- syncItem{batch: batch, dones: dones, signal: sync}
	return sync
}

func (s *Store) syncLoop() {
	defer s.wg.Done()
	for item := range s.syncq {
		var err error
		if item.batch != nil {
			err = item.batch.SyncWait()
			item.batch.Close()
			s.commits.Add(1)
			if fp := s.cfg.Failpoint; err == nil && fp != nil {
				if ferr := fp(FailpointAfterSync); ferr != nil {
					s.fatal(fmt.Errorf("sync WAL: failpoint %s: %w", FailpointAfterSync, ferr))
				}
			}
		}
		if err == nil {
			if e := s.failed.Load(); e != nil {
				err = *e
			}
		} else {
			s.fatal(fmt.Errorf("sync WAL: %w", err))
		}
		if err != nil {
			err = fmt.Errorf("%w: %v", ErrFailed, err)
		}
		for _, d := range item.dones {
			d(err)
		}
		if item.signal {
			s.syncedBatches.Add(1)
			select {
			case s.synced <- struct{}{}:
			default: // a wake-up is already pending
			}
		}
	}
}

func (s *Store) failAll(w Write, err error) { w.Done(err) }

func (s *Store) fatal(err error) {
	s.failed.CompareAndSwap(nil, &err)
	s.fatalOne.Do(func() { s.cfg.OnFatal(err) })
}

func appendFeed(b []byte, op byte, key, end []byte) []byte {
	b = append(b, op)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	if op == 2 {
		b = binary.AppendUvarint(b, uint64(len(end)))
		b = append(b, end...)
	}
	return b
}

// FeedOp is one change decoded from a changefeed record.
type FeedOp struct {
	Kind byte // 0 set, 1 delete, 2 delete range [Key, End)
	Key  []byte
	End  []byte
}

// DecodeFeed decodes a changefeed record.
func DecodeFeed(b []byte) ([]FeedOp, error) {
	var ops []FeedOp
	for len(b) > 0 {
		kind := b[0]
		b = b[1:]
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return nil, errors.New("persistence: corrupt changefeed record")
		}
		op := FeedOp{Kind: kind, Key: b[k : k+int(n)]}
		b = b[k+int(n):]
		if kind == 2 {
			n, k = binary.Uvarint(b)
			if k <= 0 || uint64(len(b)-k) < n {
				return nil, errors.New("persistence: corrupt changefeed record")
			}
			op.End = b[k : k+int(n)]
			b = b[k+int(n):]
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// Get returns a copy of the value at key, or [ErrNotFound]. It reads what
// has been applied, which may include writes not yet durable; actors only
// read their own records, which they wrote themselves.
func (s *Store) Get(key []byte) ([]byte, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(v)
	closer.Close()
	return out, nil
}

// Scan calls fn for each key in [start, end) in order (reverse order when
// reverse is set) until fn returns false. Keys and values are only valid
// during the call.
func (s *Store) Scan(start, end []byte, reverse bool, fn func(k, v []byte) bool) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		return err
	}
	defer it.Close()
	if reverse {
		for ok := it.Last(); ok; ok = it.Prev() {
			if !fn(it.Key(), it.Value()) {
				break
			}
		}
	} else {
		for ok := it.First(); ok; ok = it.Next() {
			if !fn(it.Key(), it.Value()) {
				break
			}
		}
	}
	return it.Error()
}

// ScanPrefix is Scan over every key starting with prefix.
func (s *Store) ScanPrefix(prefix []byte, reverse bool, fn func(k, v []byte) bool) error {
	return s.Scan(prefix, PrefixEnd(prefix), reverse, fn)
}

// Stats reports the committer's counters.
type Stats struct {
	Writes       uint64 // Writes folded into batches
	Commits      uint64 // synced batches (fsyncs waited for)
	Batches      uint64 // batches applied to Pebble
	SyncedWrites uint64 // writes acknowledged by those fsyncs
}

// Stats returns the committer's counters.
func (s *Store) Stats() Stats {
	return Stats{Writes: s.writes.Load(), Commits: s.commits.Load(), Batches: s.batches.Load(), SyncedWrites: s.syncedWrites.Load()}
}

// ChangefeedDisabled reports whether this store records no changefeed.
func (s *Store) ChangefeedDisabled() bool { return s.cfg.DisableChangefeed }

// Err returns the fatal error that stopped the store, or nil.
func (s *Store) Err() error {
	if e := s.failed.Load(); e != nil {
		return *e
	}
	return nil
}

// Close stops accepting writes, waits for queued ones to become durable,
// flushes and closes Pebble.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed.Swap(true) {
		s.mu.Unlock()
		return nil
	}
	close(s.quit)
	close(s.in)
	s.mu.Unlock()
	s.wg.Wait()
	if s.failed.Load() == nil {
		_ = s.db.Flush()
	}
	return s.db.Close()
}

// DB exposes the underlying Pebble database to this module's snapshot and
// restore code. Callers must not write through it while the store runs.
func (s *Store) DB() *pebble.DB { return s.db }

type quietLogger struct{ l *slog.Logger }

func (q quietLogger) Infof(format string, args ...any) {
	q.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}
func (q quietLogger) Errorf(format string, args ...any) {
	q.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}
func (q quietLogger) Fatalf(format string, args ...any) {
	q.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
	os.Exit(70)
}
