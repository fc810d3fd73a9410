package logs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/persistence"
)

// Config configures [Open].
type Config struct {
	// QueueDepth bounds the entries waiting for the writer goroutine; a
	// full queue drops new entries (counted). Default 16384, range 1..1<<20.
	QueueDepth int
	// MaxBatch bounds the entries folded into one store write.
	// Default 1024, range 1..65536.
	MaxBatch int
	// Linger is how long the writer waits, after an entry, for more to
	// fold into the same store write (a Flush, or MaxBatch entries, end
	// the wait): under load one write carries many entries rather than
	// one. Entries become readable up to Linger later. Default 2 ms;
	// negative writes each entry at once; range up to 1 minute.
	Linger time.Duration
	// Retention is how long entries are kept. Default 30 days, range
	// 1 minute..10 years.
	Retention time.Duration
	// SweepInterval is how often the janitor deletes expired entries.
	// Default 10 minutes, range 1 ms..24 h.
	SweepInterval time.Duration
	// MaxEntriesPerPlatform bounds one platform's entries: past it the
	// janitor deletes the platform's oldest ones (retention applies too).
	// Default 1,000,000, range 10..1e10.
	MaxEntriesPerPlatform int64
	// MaxScan bounds the entries one query examines; a selective filter
	// returns a short page with has_more and a cursor rather than scan on.
	// Default 10000, range 1..1000000.
	MaxScan int
	// Clock stamps entries and drives retention. Default the wall clock.
	Clock clock.Clock
	// Logger receives the package's log lines. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults documented on [Config].
func DefaultConfig() Config {
	return Config{
		QueueDepth:    16384,
		MaxBatch:      1024,
		Linger:        2 * time.Millisecond,
		Retention:     30 * 24 * time.Hour,
		SweepInterval: 10 * time.Minute,
		MaxScan:       10000,

		MaxEntriesPerPlatform: 1_000_000,
	}
}

// Validate reports the first invalid field of c.
func (c Config) Validate() error {
	switch {
	case c.QueueDepth < 1 || c.QueueDepth > 1<<20:
		return fmt.Errorf("logs: QueueDepth %d out of range 1..1048576", c.QueueDepth)
	case c.MaxBatch < 1 || c.MaxBatch > 65536:
		return fmt.Errorf("logs: MaxBatch %d out of range 1..65536", c.MaxBatch)
	case c.Linger > time.Minute:
		return fmt.Errorf("logs: Linger %s over 1m", c.Linger)
	case c.Retention < time.Minute || c.Retention > 10*365*24*time.Hour:
		return fmt.Errorf("logs: Retention %s out of range 1m..10y", c.Retention)
	case c.SweepInterval < time.Millisecond || c.SweepInterval > 24*time.Hour:
		return fmt.Errorf("logs: SweepInterval %s out of range 1ms..24h", c.SweepInterval)
	case c.MaxEntriesPerPlatform < 10 || c.MaxEntriesPerPlatform > 1e10:
		return fmt.Errorf("logs: MaxEntriesPerPlatform %d out of range 10..1e10", c.MaxEntriesPerPlatform)
	case c.MaxScan < 1 || c.MaxScan > 1_000_000:
		return fmt.Errorf("logs: MaxScan %d out of range 1..1000000", c.MaxScan)
	}
	return nil
}

// Store reads and expires the log entries its [Writer] writes. Its methods
// are safe for concurrent use.
type Store struct {
	cfg    Config
	db     *persistence.Store
	w      *Writer
	counts *platformCounts
	ready  chan struct{} // closed once the initial count is done
	quit   chan struct{}
	done   sync.WaitGroup
	close  sync.Once
}

// Open recovers the writer's sequence from db and starts the writer and
// retention janitor goroutines; Close stops them. Zero fields of cfg take
// their defaults; cfg itself is not modified. db must outlive the Store.
func Open(cfg Config, db *persistence.Store) (*Store, error) {
	def := DefaultConfig()
	if cfg.QueueDepth == 0 {
		cfg.QueueDepth = def.QueueDepth
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = def.MaxBatch
	}
	if cfg.Linger == 0 {
		cfg.Linger = def.Linger
	}
	if cfg.Retention == 0 {
		cfg.Retention = def.Retention
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = def.SweepInterval
	}
	if cfg.MaxScan == 0 {
		cfg.MaxScan = def.MaxScan
	}
	if cfg.MaxEntriesPerPlatform == 0 {
		cfg.MaxEntriesPerPlatform = def.MaxEntriesPerPlatform
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w, err := newWriter(db, cfg)
	if err != nil {
		return nil, fmt.Errorf("logs: recover sequence: %w", err)
	}
	s := &Store{cfg: cfg, db: db, w: w, quit: make(chan struct{}), counts: newPlatformCounts(w.seq)}
	w.onApplied = s.counts.written
	w.running.Add(1) // the drain goroutine starts only now: onApplied is set
	go w.drain()
	s.ready = make(chan struct{})
	s.done.Add(1)
	go s.janitor()
	return s, nil
}

// Writer returns the store's writer; nil for a nil Store, so
// s.Writer().Write(e) is safe when logs are not configured.
func (s *Store) Writer() *Writer {
	if s == nil {
		return nil
	}
	return s.w
}

// Close stops the janitor, then writes every queued entry and waits until
// the store has applied them. Call it before closing the persistence store.
// Idempotent.
func (s *Store) Close() {
	s.close.Do(func() {
		close(s.quit)
		s.done.Wait()
		s.w.close()
	})
}

// Get returns the newest entry of platform pid with request id rid, or
// [ErrNotFound].
func (s *Store) Get(pid ids.PlatformID, rid string) (Entry, error) {
	if !validID(string(pid)) || !validID(rid) {
		return Entry{}, ErrNotFound
	}
	s.w.catchUp()
	v, err := s.db.Get(persistence.LogRequestKey(string(pid), rid))
	if errors.Is(err, persistence.ErrNotFound) {
		return Entry{}, ErrNotFound
	}
	if err != nil {
		return Entry{}, err
	}
	if len(v) != 8 {
		return Entry{}, ErrCorrupt
	}
	seq := binary.BigEndian.Uint64(v)
	v, err = s.db.Get(persistence.LogEntryKey(string(pid), seq))
	if errors.Is(err, persistence.ErrNotFound) {
		return Entry{}, ErrNotFound // expired; the janitor removes the index row next
	}
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Seq: seq, PlatformID: pid}
	return e, decode(v, &e)
}

// List returns one page of platform pid's entries matching q, newest
// first. It examines at most [Config.MaxScan] entries. Errors:
// [ErrInvalidCursor], or the store's.
//
// Entries are keyed by writer sequence, and the set of visible sequences
// only grows at the top, so a cursor (the sequence below which to
// continue) neither skips nor repeats an entry while new ones arrive:
// paging from a first page returns exactly the entries that existed when
// that page was read.
func (s *Store) List(pid ids.PlatformID, q Query) (Page, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	if !validID(string(pid)) {
		return Page{}, nil
	}
	s.w.catchUp()
	prefix := persistence.LogEntriesPrefix(string(pid))
	lower, upper := prefix, persistence.PrefixEnd(prefix)
	if q.Cursor != "" {
		seq, err := DecodeCursor(q.Cursor)
		if err != nil {
			return Page{}, err
		}
		upper = persistence.LogEntryKey(string(pid), seq)
	}
	if !q.End.IsZero() {
		seq, err := s.seekTime(prefix, q.End.UnixNano())
		if err != nil {
			return Page{}, err
		}
		if k := persistence.LogEntryKey(string(pid), seq); bytes.Compare(k, upper) < 0 {
			upper = k
		}
	}
	if !q.Start.IsZero() {
		seq, err := s.seekTime(prefix, q.Start.UnixNano())
		if err != nil {
			return Page{}, err
		}
		lower = persistence.LogEntryKey(string(pid), seq)
	}
	var (
		page     Page
		scanned  int
		consumed uint64 // sequence of the last entry examined and settled
		failure  error
	)
	if bytes.Compare(lower, upper) >= 0 {
		return page, nil
	}
	err := s.db.Scan(lower, upper, true, func(k, v []byte) bool {
		seq := binary.BigEndian.Uint64(k[len(k)-8:])
		if scanned == s.cfg.MaxScan {
			page.HasMore = true
			return false
		}
		scanned++
		e := Entry{Seq: seq, PlatformID: pid}
		if failure = decode(v, &e); failure != nil {
			failure = fmt.Errorf("entry %d: %w", seq, failure)
			return false
		}
		if q.match(&e) {
			if len(page.Entries) == limit {
				page.HasMore = true
				return false
			}
			page.Entries = append(page.Entries, e)
		}
		consumed = seq
		return true
	})
	if err == nil {
		err = failure
	}
	if err != nil {
		return Page{}, err
	}
	if page.HasMore {
		page.NextCursor = EncodeCursor(consumed)
	}
	return page, nil
}

// seekTime returns the smallest sequence s such that every entry under
// prefix below s has created_at < at and every entry at or above s has
// created_at ≥ at. It relies on created_at never decreasing in sequence
// order (the writer's rule) and binary-searches the sequence space, one
// iterator seek per probe (at most 64).
func (s *Store) seekTime(prefix []byte, at int64) (uint64, error) {
	lo, hi := uint64(0), s.w.maxSeq.Load()+1
	end := persistence.PrefixEnd(prefix)
	for lo < hi {
		mid := lo + (hi-lo)/2
		var (
			found bool
			seq   uint64
			t     int64
			ok    bool
		)
		start := binary.BigEndian.AppendUint64(bytes.Clone(prefix), mid)
		err := s.db.Scan(start, end, false, func(k, v []byte) bool {
			found = true
			seq = binary.BigEndian.Uint64(k[len(k)-8:])
			t, ok = createdAtOf(v)
			return false
		})
		if err != nil {
			return 0, err
		}
		switch {
		case !found || seq >= hi:
			hi = mid
		case !ok:
			return 0, fmt.Errorf("entry %d: %w", seq, ErrCorrupt)
		case t >= at:
			hi = mid
		default:
			lo = seq + 1
		}
	}
	return lo, nil
}

// sweepChunk bounds the entries one retention write deletes.
const sweepChunk = 1000

// Sweep deletes every entry older than [Config.Retention] (by the clock)
// and its request index row, oldest first, per platform, then each
// platform's oldest entries past [Config.MaxEntriesPerPlatform]; it
// returns how many entries it deleted. The janitor calls it every SweepInterval; it is
// synchronous and safe to call concurrently with writes and queries.
func (s *Store) Sweep() (int, error) {
	<-s.ready // deletions count off entries the initial count has seen
	cutoff := s.cfg.Clock.Now().Add(-s.cfg.Retention).UnixNano()
	deleted := 0
	start, end := []byte{persistence.FamilyLogEntry}, []byte{persistence.FamilyLogEntry + 1}
	for {
		var pid string
		err := s.db.Scan(start, end, false, func(k, _ []byte) bool {
			if i := bytes.IndexByte(k[1:], 0); i >= 0 {
				pid = string(k[1 : 1+i])
			}
			return false
		})
		if err != nil {
			return deleted, err
		}
		if pid == "" {
			n, err := s.trimToCap()
			return deleted + n, err
		}
		n, err := s.sweepPlatform(pid, cutoff)
		deleted += n
		if err != nil {
			return deleted, err
		}
		start = persistence.PrefixEnd(persistence.LogEntriesPrefix(pid))
	}
}

func (s *Store) sweepPlatform(pid string, cutoff int64) (int, error) {
	boundary, err := s.seekTime(persistence.LogEntriesPrefix(pid), cutoff)
	if err != nil {
		return 0, err
	}
	return s.deleteBefore(pid, boundary)
}

// deleteBefore deletes the platform's entries with seq < boundary and
// their request index rows, oldest first, and counts them off.
func (s *Store) deleteBefore(pid string, boundary uint64) (int, error) {
	prefix := persistence.LogEntriesPrefix(pid)
	deleted := 0
	defer func() { s.counts.deleted(pid, deleted) }()
	for {
		type old struct {
			seq uint64
			rid string
		}
		var batch []old
		var failure error
		err := s.db.Scan(prefix, persistence.LogEntryKey(pid, boundary), false, func(k, v []byte) bool {
			var e Entry
			if failure = decode(v, &e); failure != nil {
				return false
			}
			batch = append(batch, old{binary.BigEndian.Uint64(k[len(k)-8:]), e.RequestID})
			return len(batch) < sweepChunk
		})
		if err == nil {
			err = failure
		}
		if err != nil || len(batch) == 0 {
			return deleted, err
		}
		last := batch[len(batch)-1].seq
		ops := []persistence.Op{persistence.DeleteRange(prefix, persistence.LogEntryKey(pid, last+1))}
		for _, o := range batch {
			// A later entry may have reused the request id; keep its row.
			ik := persistence.LogRequestKey(pid, o.rid)
			if v, err := s.db.Get(ik); err == nil && len(v) == 8 && binary.BigEndian.Uint64(v) == o.seq {
				ops = append(ops, persistence.Delete(ik))
			}
		}
		ch := make(chan error, 1)
		s.db.Submit(persistence.Write{Ops: ops, NoSync: true, Done: func(err error) { ch <- err }})
		if err := <-ch; err != nil {
			return deleted, err
		}
		deleted += len(batch)
	}
}

// janitor counts the entries per platform once, then runs Sweep every
// SweepInterval until Close.
func (s *Store) janitor() {
	defer s.done.Done()
	if err := s.countInitial(); err != nil {
		s.cfg.Logger.Warn("log entry count failed; the per-platform cap is off until restart", "err", err)
	}
	close(s.ready)
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
			if n, err := s.Sweep(); err != nil {
				s.cfg.Logger.Warn("log retention sweep failed", "err", err)
			} else if n > 0 {
				s.cfg.Logger.Debug("log retention sweep", "deleted", n)
			}
		}
	}
}

// OpenDB opens the per-call logs' own Pebble store under dataDir/logs:
// logs are append-mostly and expire, money records are small and
// overwritten, so they live apart and the logs' compactions never run in
// the money store. Its changefeed is off (call logs are per-node
// operational data, not part of the Postgres snapshot), and a write
// failure is logged instead of stopping the node: losing log entries is
// counted, never a reason to refuse money. Close it after the Store.
func OpenDB(dataDir string, log *slog.Logger) (*persistence.Store, error) {
	cfg := persistence.DefaultConfig()
	cfg.Dir, cfg.Subdir, cfg.Logger = dataDir, "logs", log
	cfg.AppendMostly, cfg.DisableChangefeed = true, true
	cfg.OnFatal = func(err error) { log.Error("log store failed; call logs are no longer written", "err", err) }
	return persistence.Open(cfg)
}
