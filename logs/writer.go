package logs

import (
	"encoding/binary"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/persistence"
)

// ErrClosed is returned by [Writer.Flush] after Close.
var ErrClosed = errors.New("logs: writer closed")

// seqMetaKey holds the writer's high-water mark, written in the same batch
// as the entries it covers: seq(8) then created_at unix ns(8), big-endian.
var seqMetaKey = persistence.MetaKey("log_seq")

// item is one queue slot: an entry, or a flush marker.
type item struct {
	e     Entry
	flush chan struct{}
}

// Writer queues log entries and writes them to the store in batches. Its
// methods are safe for concurrent use, and a nil *Writer accepts and
// discards entries, so callers need not check whether logs are configured.
type Writer struct {
	store    *persistence.Store
	clock    clock.Clock
	log      *slog.Logger
	maxBatch int
	linger   time.Duration // <= 0: no wait
	// lingering: drain holds entries while it waits for more (Linger);
	// a query first ends the wait (catchUp), so it reads them.
	lingering atomic.Bool

	mu     sync.RWMutex // guards closing of in against concurrent Write
	closed bool
	in     chan item

	// Owned by the drain goroutine once started.
	seq    uint64
	lastAt int64

	// onApplied receives each applied batch's entries per platform (the
	// store's counts); set before drain starts.
	onApplied func(map[string]int64)

	maxSeq  atomic.Uint64 // highest seq assigned; read by queries as a bound
	running sync.WaitGroup
	pending sync.WaitGroup // batches submitted whose Done has not run

	written atomic.Uint64
	dropped atomic.Uint64
	invalid atomic.Uint64
	failed  atomic.Uint64
	batches atomic.Uint64
}

// WriterStats are the writer's counters since Open.
type WriterStats struct {
	Written uint64 // entries applied to the store
	Dropped uint64 // entries refused because the queue was full or the writer closed
	Invalid uint64 // entries refused for a missing or malformed platform or request id
	Failed  uint64 // entries the store refused (closed or failed)
	Batches uint64 // store writes that carried entries
}

func newWriter(store *persistence.Store, cfg Config) (*Writer, error) {
	w := &Writer{
		store:    store,
		clock:    cfg.Clock,
		log:      cfg.Logger,
		maxBatch: cfg.MaxBatch,
		linger:   cfg.Linger,
		in:       make(chan item, cfg.QueueDepth),
	}
	v, err := store.Get(seqMetaKey)
	switch {
	case err == nil && len(v) == 16:
		w.seq = binary.BigEndian.Uint64(v[:8])
		w.lastAt = int64(binary.BigEndian.Uint64(v[8:]))
	case err == nil:
		return nil, ErrCorrupt
	case !errors.Is(err, persistence.ErrNotFound):
		return nil, err
	}
	w.maxSeq.Store(w.seq)
	return w, nil // Open starts drain
}

// Write queues e and returns at once: it never blocks on the queue or the
// disk, so the response path can call it freely. When the queue is full
// (the store cannot keep up), or after Close, e is dropped and counted in
// [Writer.Dropped]. An entry without a platform id or request id, or whose
// ids contain a 0x00 byte, is counted as invalid and dropped. CreatedAt is
// set to the clock's time when zero; Seq is ignored.
func (w *Writer) Write(e Entry) {
	if w == nil {
		return
	}
	if !validID(string(e.PlatformID)) || !validID(e.RequestID) {
		w.invalid.Add(1)
		return
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = w.clock.Now()
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.dropped.Add(1)
		return
	}
	select {
	case w.in <- item{e: e}:
	default:
		w.dropped.Add(1)
	}
}

// validID reports whether s can be a key component: 1..255 bytes, no 0x00.
func validID(s string) bool {
	return s != "" && len(s) <= 255 && strings.IndexByte(s, 0) < 0
}

// Flush waits until every entry queued before the call is applied to the
// store (readable, not necessarily synced). It blocks while the queue is
// full, so it is for tests and shutdown, not the response path. After
// Close it returns [ErrClosed].
func (w *Writer) Flush() error {
	ch := make(chan struct{})
	// Retry rather than block holding the read lock: a Close waiting for
	// the lock would otherwise stall every Write behind this Flush.
	for {
		queued, err := w.queueFlush(ch)
		if err != nil {
			return err
		}
		if queued {
			<-ch
			return nil
		}
		time.Sleep(time.Millisecond)
	}
}

// queueFlush queues a flush marker that closes ch once everything queued
// before it is applied, without blocking: false when the queue is full,
// [ErrClosed] after Close.
func (w *Writer) queueFlush(ch chan struct{}) (bool, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return false, ErrClosed
	}
	select {
	case w.in <- item{flush: ch}:
		return true, nil
	default:
		return false, nil
	}
}

// catchUp makes the entries the writer holds for its linger readable
// before a query reads: when it is lingering, a flush marker ends the
// wait and catchUp waits for the write, for at most a second (a full
// queue, an overloaded store: the query then reads what is there).
func (w *Writer) catchUp() {
	if w == nil || !w.lingering.Load() {
		return
	}
	ch := make(chan struct{})
	if queued, err := w.queueFlush(ch); !queued || err != nil {
		return // closed, or the queue is full: the writer is not lingering for long
	}
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}

func unixNano(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// Dropped returns how many entries were dropped because the queue was full
// or the writer closed.
func (w *Writer) Dropped() uint64 {
	if w == nil {
		return 0
	}
	return w.dropped.Load()
}

// Stats returns the writer's counters.
func (w *Writer) Stats() WriterStats {
	if w == nil {
		return WriterStats{}
	}
	return WriterStats{
		Written: w.written.Load(), Dropped: w.dropped.Load(), Invalid: w.invalid.Load(),
		Failed: w.failed.Load(), Batches: w.batches.Load(),
	}
}

// close stops accepting entries, writes every queued one and waits until
// the store has applied them. Idempotent.
func (w *Writer) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	close(w.in)
	w.mu.Unlock()
	w.running.Wait()
	w.pending.Wait()
}

// drain is the writer's one goroutine: it folds whatever has queued, and
// what arrives within Linger of the first entry (up to MaxBatch entries;
// a Flush ends the wait), into one store write and submits it without
// waiting, so batches pipeline behind the store's committer. While the
// store's own queue is full, Submit blocks here, the queue fills, and
// Write drops.
func (w *Writer) drain() {
	defer w.running.Done()
	var buf []byte
	var linger *time.Timer
	if w.linger > 0 {
		linger = time.NewTimer(time.Hour)
		linger.Stop()
	}
	for it := range w.in {
		// A batch's keys and values are cut from a few shared blocks and
		// its ops sized for what is queued: a handful of allocations a
		// batch, not five an entry. (They are the store's until the
		// batch's Done: each batch has its own.)
		queued := len(w.in) + 1
		ops := make([]persistence.Op, 0, 2*min(queued, w.maxBatch)+1)
		ar := arena{next: min(queued*entryBytes, maxArenaBlock)}
		var waiters []chan struct{}
		per := map[string]int64{}
		n := 0
		add := func(it item) {
			if it.flush != nil {
				waiters = append(waiters, it.flush)
				return
			}
			w.seq++
			at := it.e.CreatedAt.UnixNano()
			if at < w.lastAt {
				at = w.lastAt
			}
			w.lastAt = at
			e := it.e
			e.CreatedAt = unixNano(at)
			pid := string(e.PlatformID)
			per[pid]++
			buf = encode(buf[:0], &e)
			ops = append(ops,
				persistence.Set(persistence.AppendLogEntryKey(ar.take(len(pid)+10), pid, w.seq), append(ar.take(len(buf)), buf...)),
				persistence.Set(persistence.AppendLogRequestKey(ar.take(len(pid)+len(e.RequestID)+2), pid, e.RequestID),
					binary.BigEndian.AppendUint64(ar.take(8), w.seq)))
			n++
		}
		add(it)
		waiting := false // the linger timer runs
	more:
		for n < w.maxBatch && len(waiters) == 0 {
			select {
			case it, ok := <-w.in:
				if !ok {
					break more
				}
				add(it)
				continue
			default:
			}
			if linger == nil || n == 0 {
				break
			}
			if !waiting {
				linger.Reset(w.linger)
				waiting = true
			}
			w.lingering.Store(true)
			select {
			case it, ok := <-w.in:
				if !ok {
					break more
				}
				add(it)
			case <-linger.C:
				waiting = false
				break more
			}
		}
		w.lingering.Store(false)
		if waiting {
			linger.Stop()
		}
		if n > 0 {
			meta := binary.BigEndian.AppendUint64(nil, w.seq)
			ops = append(ops, persistence.Set(seqMetaKey, binary.BigEndian.AppendUint64(meta, uint64(w.lastAt))))
			w.maxSeq.Store(w.seq)
		}
		w.pending.Add(1)
		count := uint64(n)
		// Logs are not money: NoSync lets Done run once the batch is
		// applied. A crash may lose the last unsynced entries; the next
		// synced write of any kind (every settlement is one) makes them
		// durable, since the WAL is ordered.
		w.store.Submit(persistence.Write{Ops: ops, NoSync: true, Done: func(err error) {
			if err != nil {
				w.failed.Add(count)
				w.log.Warn("log entries not written", "entries", count, "err", err)
			} else if count > 0 {
				w.written.Add(count)
				w.batches.Add(1)
				if w.onApplied != nil {
					w.onApplied(per)
				}
			}
			for _, ch := range waiters {
				close(ch)
			}
			w.pending.Done()
		}})
	}
}

// entryBytes is about what one log entry's keys and values take; the
// first arena block of a batch is sized from it and the queue's length.
const entryBytes = 384

// maxArenaBlock bounds one arena block.
const maxArenaBlock = 64 << 10

// arena hands out byte slices cut from larger blocks. A slice it returned
// stays valid (and is never handed out twice) after the arena moves on to
// a new block.
type arena struct {
	block []byte
	next  int // the size of the next block
}

// take returns an empty slice with room for n bytes.
func (a *arena) take(n int) []byte {
	if cap(a.block)-len(a.block) < n {
		a.block = make([]byte, 0, max(n, a.next, 512))
		a.next = min(2*cap(a.block), maxArenaBlock)
	}
	l := len(a.block)
	a.block = a.block[:l+n]
	return a.block[l : l : l+n]
}
