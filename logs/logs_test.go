package logs

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/persistence"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func openDB(tb testing.TB, dir string, queueDepth int) *persistence.Store {
	tb.Helper()
	cfg := persistence.DefaultConfig()
	cfg.Dir = dir
	cfg.Logger = quiet
	if queueDepth > 0 {
		cfg.QueueDepth = queueDepth
	}
	cfg.OnFatal = func(err error) { tb.Errorf("store failed: %v", err) }
	db, err := persistence.Open(cfg)
	if err != nil {
		tb.Fatalf("persistence.Open: %v", err)
	}
	return db
}

func openLogs(tb testing.TB, db *persistence.Store, cfg Config) *Store {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	s, err := Open(cfg, db)
	if err != nil {
		tb.Fatalf("logs.Open: %v", err)
	}
	return s
}

// start opens a store and logs over a fresh temp dir, closed at cleanup.
func start(tb testing.TB, cfg Config) (*Store, *persistence.Store) {
	tb.Helper()
	db := openDB(tb, tb.TempDir(), 0)
	s := openLogs(tb, db, cfg)
	tb.Cleanup(func() { s.Close(); db.Close() })
	return s, db
}

func flush(tb testing.TB, s *Store) {
	tb.Helper()
	if err := s.Writer().Flush(); err != nil {
		tb.Fatalf("Flush: %v", err)
	}
}

const (
	platA = ids.PlatformID("plat_aaaaaaaaaaaaaaaaaaaaaaaaaa")
	platB = ids.PlatformID("plat_bbbbbbbbbbbbbbbbbbbbbbbbbb")
)

func entry(pid ids.PlatformID, n int) Entry {
	return Entry{
		RequestID: fmt.Sprintf("req_%026d", n), PlatformID: pid,
		EndUserID: ids.EndUserID(fmt.Sprintf("eu_%026d", n%3)), Kind: KindChatCompletions,
		Model: "gpt-4o-mini", Provider: "openai", StatusCode: 200,
		PromptTokens: int64(n), CompletionTokens: 2 * int64(n),
		Cost: money.Nanos(n) * 1500, ProviderCost: money.Nanos(n) * 1000,
		Latency: time.Duration(n) * time.Millisecond,
	}
}

// listAll pages through q until has_more is false.
func listAll(tb testing.TB, s *Store, pid ids.PlatformID, q Query) []Entry {
	tb.Helper()
	var out []Entry
	for i := 0; ; i++ {
		p, err := s.List(pid, q)
		if err != nil {
			tb.Fatalf("List(%s, %+v): %v", pid, q, err)
		}
		out = append(out, p.Entries...)
		if !p.HasMore {
			return out
		}
		if i > 100000 {
			tb.Fatal("paging does not end")
		}
		q.Cursor = p.NextCursor
	}
}

func requestIDs(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.RequestID
	}
	return out
}

// stall blocks the persistence committer (inside a NoSync Done) and fills
// its one-slot queue, so the next Submit blocks. release undoes it.
func stall(tb testing.TB, db *persistence.Store) (release func()) {
	tb.Helper()
	started, unblock := make(chan struct{}), make(chan struct{})
	db.Submit(persistence.Write{Ops: []persistence.Op{persistence.Set([]byte{0x7f, 1}, nil)}, NoSync: true,
		Done: func(error) { close(started); <-unblock }})
	<-started
	db.Submit(persistence.Write{Ops: []persistence.Op{persistence.Set([]byte{0x7f, 2}, nil)}, NoSync: true, Done: func(error) {}})
	var once sync.Once
	return func() { once.Do(func() { close(unblock) }) }
}

func TestWriteNeverBlocksFullQueueDropsAndCounts(t *testing.T) {
	db := openDB(t, t.TempDir(), 1)
	const depth = 64
	s := openLogs(t, db, Config{QueueDepth: depth, MaxBatch: 16})
	release := stall(t, db)
	defer func() { release(); s.Close(); db.Close() }()

	// The drain goroutine takes the first entry and blocks in Submit.
	s.Writer().Write(entry(platA, 0))
	deadline := time.Now().Add(10 * time.Second)
	for len(s.w.in) > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= depth+100; i++ {
			s.Writer().Write(entry(platA, i))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Write blocked while the store was stalled")
	}
	// The drain goroutine may have folded up to MaxBatch-1 of the burst
	// into the batch it was gathering before it blocked in Submit; every
	// other entry beyond the queue's depth is dropped and counted.
	const total, maxBatch = depth + 101, 16
	dropped := s.Writer().Dropped()
	if dropped < 100-(maxBatch-1) || dropped > 100 {
		t.Errorf("Dropped() = %d, want 85..100 (queue of %d full)", dropped, depth)
	}
	release()
	flush(t, s)
	st := s.Writer().Stats()
	if st.Written+st.Dropped != total || st.Dropped != dropped || st.Failed != 0 {
		t.Errorf("Stats() = %+v: written + dropped must be %d, dropped %d", st, total, dropped)
	}
	// Entries are batched: never more than one batch per MaxBatch entries
	// plus the first, lone one.
	if want := 2 + int(st.Written)/maxBatch; st.Batches > uint64(want) {
		t.Errorf("Stats().Batches = %d, want at most %d (entries batched)", st.Batches, want)
	}
	if got := len(listAll(t, s, platA, Query{Limit: MaxLimit})); got != int(st.Written) {
		t.Errorf("listed %d entries, want %d written", got, st.Written)
	}
}

func TestWriteRefusesInvalidAndClosed(t *testing.T) {
	s, _ := start(t, Config{})
	s.Writer().Write(Entry{RequestID: "req_1"})                        // no platform
	s.Writer().Write(Entry{PlatformID: platA})                         // no request id
	s.Writer().Write(Entry{PlatformID: platA, RequestID: "bad\x00id"}) // key separator
	var nilW *Writer
	nilW.Write(entry(platA, 1)) // no-op
	var nilS *Store
	nilS.Writer().Write(entry(platA, 1))
	s.Close()
	s.Writer().Write(entry(platA, 2))
	st := s.Writer().Stats()
	if st.Invalid != 3 || st.Dropped != 1 || st.Written != 0 {
		t.Errorf("Stats() = %+v, want Invalid 3 Dropped 1 Written 0", st)
	}
	if err := s.Writer().Flush(); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close = %v, want ErrClosed", err)
	}
}

func TestEntriesSurviveRestartAndSequenceContinues(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	db := openDB(t, dir, 0)
	s := openLogs(t, db, Config{Clock: clk})
	want := entry(platA, 1)
	want.Kind, want.Stream, want.TTFT, want.ErrorCode, want.StatusCode = KindTool, true, 42*time.Millisecond, "upstream_error", 502
	want.Tool, want.App = "create_issue", "github"
	s.Writer().Write(want)
	for i := 2; i <= 10; i++ {
		s.Writer().Write(entry(platA, i))
	}
	s.Close() // drains; no Flush
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openDB(t, dir, 0)
	s = openLogs(t, db, Config{Clock: clk})
	defer func() { s.Close(); db.Close() }()
	got, err := s.Get(platA, want.RequestID)
	if err != nil {
		t.Fatalf("Get after restart: %v", err)
	}
	want.Seq, want.CreatedAt = 1, clk.Now()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Get after restart =\n %+v\nwant\n %+v", got, want)
	}
	s.Writer().Write(entry(platA, 11))
	flush(t, s)
	all := listAll(t, s, platA, Query{})
	if len(all) != 11 || all[0].RequestID != entry(platA, 11).RequestID || all[0].Seq != 11 {
		t.Fatalf("after restart listed %d entries, newest %+v; want 11, newest seq 11", len(all), all[0])
	}
}

func TestFilters(t *testing.T) {
	s, _ := start(t, Config{})
	u1, u2 := ids.EndUserID("eu_11111111111111111111111111"), ids.EndUserID("eu_22222222222222222222222222")
	rows := []struct {
		user   ids.EndUserID
		model  string
		kind   Kind
		status int
	}{
		{u1, "gpt-4o", KindChatCompletions, 200},
		{u1, "claude-sonnet", KindResponses, 429},
		{u2, "gpt-4o", KindChatCompletions, 500},
		{u2, "claude-sonnet", KindChatCompletions, 201},
		{u1, "gpt-4o", KindTool, 402},
		{u2, "gpt-4o", KindChatCompletions, 200},
	}
	for i, r := range rows {
		s.Writer().Write(Entry{RequestID: fmt.Sprint("r", i), PlatformID: platA, EndUserID: r.user, Model: r.model, Kind: r.kind, StatusCode: r.status})
	}
	s.Writer().Write(Entry{RequestID: "other", PlatformID: platB, EndUserID: u1, Model: "gpt-4o", StatusCode: 200})
	flush(t, s)
	st := func(v string) Status {
		x, err := ParseStatus(v)
		if err != nil {
			t.Fatalf("ParseStatus(%q): %v", v, err)
		}
		return x
	}
	for _, tc := range []struct {
		name string
		f    Filter
		want []string // newest first
	}{
		{"none", Filter{}, []string{"r5", "r4", "r3", "r2", "r1", "r0"}},
		{"end_user", Filter{EndUserID: u1}, []string{"r4", "r1", "r0"}},
		{"model", Filter{Model: "claude-sonnet"}, []string{"r3", "r1"}},
		{"kind", Filter{Kind: KindTool}, []string{"r4"}},
		{"status exact", Filter{Status: st("200")}, []string{"r5", "r0"}},
		{"status 2xx", Filter{Status: st("2xx")}, []string{"r5", "r3", "r0"}},
		{"status 4XX", Filter{Status: st("4XX")}, []string{"r4", "r1"}},
		{"status 5xx", Filter{Status: st("5xx")}, []string{"r2"}},
		{"status error", Filter{Status: st("error")}, []string{"r4", "r2", "r1"}},
		{"user+model", Filter{EndUserID: u2, Model: "gpt-4o"}, []string{"r5", "r2"}},
		{"user+model+status", Filter{EndUserID: u2, Model: "gpt-4o", Status: st("error")}, []string{"r2"}},
		{"no match", Filter{EndUserID: "eu_33333333333333333333333333"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, limit := range []int{1, 2, 50} {
				got := requestIDs(listAll(t, s, platA, Query{Filter: tc.f, Limit: limit}))
				if len(got) == 0 {
					got = nil
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("List(limit %d, %+v) = %v, want %v", limit, tc.f, got, tc.want)
				}
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	for _, bad := range []string{"abc", "2x", "6xx", "099", "600", "20", "2000", "x2x", "errors", " 200"} {
		if _, err := ParseStatus(bad); !errors.Is(err, ErrInvalidStatus) {
			t.Errorf("ParseStatus(%q) = %v, want ErrInvalidStatus", bad, err)
		}
	}
}

func TestTimeRangeAndMonotonicCreatedAt(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	s, _ := start(t, Config{Clock: clk})
	for i := 0; i < 20; i++ { // one entry per minute, 00:00 … 00:19
		s.Writer().Write(entry(platA, i))
		clk.Advance(time.Minute)
	}
	// An entry stamped in the past is raised to the previous one's time.
	late := entry(platA, 20)
	late.CreatedAt = t0
	s.Writer().Write(late)
	flush(t, s)
	got, err := s.Get(platA, late.RequestID)
	if err != nil || !got.CreatedAt.Equal(t0.Add(19*time.Minute)) {
		t.Errorf("Get(late) = %v, %v; want created_at raised to 00:19", got.CreatedAt, err)
	}
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	for _, tc := range []struct {
		name       string
		start, end time.Time
		want       int
	}{
		{"start only", at(15), time.Time{}, 6}, // 15..19 and the raised one
		{"end only", time.Time{}, at(5), 5},    // 0..4
		{"both", at(5), at(10), 5},
		{"between entries", at(5).Add(30 * time.Second), at(7).Add(time.Second), 2},
		{"before all", time.Time{}, t0, 0},
		{"after all", at(30), time.Time{}, 0},
		{"empty window", at(8), at(8), 0},
	} {
		es := listAll(t, s, platA, Query{Filter: Filter{Start: tc.start, End: tc.end}, Limit: 3})
		if len(es) != tc.want {
			t.Errorf("%s: List(start %v, end %v) returned %d entries, want %d", tc.name, tc.start, tc.end, len(es), tc.want)
		}
		for _, e := range es {
			if (!tc.start.IsZero() && e.CreatedAt.Before(tc.start)) || (!tc.end.IsZero() && !e.CreatedAt.Before(tc.end)) {
				t.Errorf("%s: entry at %v outside [%v, %v)", tc.name, e.CreatedAt, tc.start, tc.end)
			}
		}
	}
}

func TestCursorPagingUnderConcurrentWrites(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Filter
	}{
		{"all", Filter{}},
		{"one end-user", Filter{EndUserID: "eu_00000000000000000000000001"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := start(t, Config{})
			var n atomic.Int64
			write := func() { s.Writer().Write(entry(platA, int(n.Add(1)))) }
			for i := 0; i < 300; i++ {
				write()
			}
			flush(t, s)

			stop := make(chan struct{})
			var wg sync.WaitGroup
			for g := 0; g < 4; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
							write()
							time.Sleep(50 * time.Microsecond)
						}
					}
				}()
			}
			var pages []Entry
			q := Query{Filter: tc.f, Limit: 7}
			first, err := s.List(platA, q)
			if err != nil {
				t.Fatal(err)
			}
			// Every matching entry that existed at the first read has a
			// sequence at or below the first page's newest; every later
			// entry has a higher one.
			top := first.Entries[0].Seq
			pages = append(pages, first.Entries...)
			for cur := first; cur.HasMore; {
				// Make sure entries land between pages.
				for i := 0; i < 5; i++ {
					write()
				}
				flush(t, s)
				q.Cursor = cur.NextCursor
				if cur, err = s.List(platA, q); err != nil {
					t.Fatal(err)
				}
				pages = append(pages, cur.Entries...)
			}
			close(stop)
			wg.Wait()
			flush(t, s)

			all := listAll(t, s, platA, Query{Filter: tc.f, Limit: MaxLimit})
			var want []string
			for _, e := range all {
				if e.Seq <= top {
					want = append(want, e.RequestID)
				}
			}
			got := requestIDs(pages)
			seen := map[string]bool{}
			for _, id := range got {
				if seen[id] {
					t.Errorf("entry %s returned twice", id)
				}
				seen[id] = true
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("pages returned %d entries, want the %d that existed at the first page (of %d now)", len(got), len(want), len(all))
			}
			if len(all) <= len(want) {
				t.Errorf("no entries arrived while paging (%d total)", len(all))
			}
		})
	}
}

func TestScanBoundReturnsShortPagesWithCursor(t *testing.T) {
	s, _ := start(t, Config{MaxScan: 10})
	rare := entry(platA, 0)
	rare.Model = "rare"
	s.Writer().Write(rare)
	for i := 1; i <= 95; i++ {
		s.Writer().Write(entry(platA, i))
	}
	flush(t, s)
	q := Query{Filter: Filter{Model: "rare"}}
	p, err := s.List(platA, q)
	if err != nil || len(p.Entries) != 0 || !p.HasMore || p.NextCursor == "" {
		t.Fatalf("List(model=rare) = %d entries, has_more %v, cursor %q, %v; want an empty page with a cursor", len(p.Entries), p.HasMore, p.NextCursor, err)
	}
	pages := 0
	var found []Entry
	for {
		pages++
		found = append(found, p.Entries...)
		if !p.HasMore {
			break
		}
		q.Cursor = p.NextCursor
		if p, err = s.List(platA, q); err != nil {
			t.Fatal(err)
		}
	}
	if len(found) != 1 || found[0].RequestID != rare.RequestID || pages != 10 {
		t.Errorf("paging found %v in %d pages, want the rare entry in 10 pages", requestIDs(found), pages)
	}
}

func TestRetentionJanitorDeletesOldEntriesAndIndex(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	s, db := start(t, Config{Clock: clk, Retention: time.Hour, SweepInterval: 2 * time.Millisecond})
	for i := 0; i < 2500; i++ { // old: more than two sweep chunks on platA
		s.Writer().Write(entry(platA, i))
	}
	s.Writer().Write(entry(platB, 0))
	clk.Advance(40 * time.Minute)
	for i := 2500; i < 2510; i++ {
		s.Writer().Write(entry(platA, i))
	}
	s.Writer().Write(entry(platB, 1))
	flush(t, s)
	if n, err := s.Sweep(); err != nil || n != 0 {
		t.Fatalf("Sweep before expiry = %d, %v; want 0", n, err)
	}
	clk.Advance(21 * time.Minute) // the first group is now 61 minutes old
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := listAll(t, s, platA, Query{Limit: MaxLimit})
		b := listAll(t, s, platB, Query{})
		if len(a) == 10 && len(b) == 1 {
			if a[9].RequestID != entry(platA, 2500).RequestID || b[0].RequestID != entry(platB, 1).RequestID {
				t.Errorf("kept %v and %v, want the 10 newer A entries and B's newer one", requestIDs(a), requestIDs(b))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("janitor left %d A and %d B entries, want 10 and 1", len(a), len(b))
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, e := range []Entry{entry(platA, 0), entry(platA, 2499), entry(platB, 0)} {
		if _, err := s.Get(e.PlatformID, e.RequestID); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(expired %s) = %v, want ErrNotFound", e.RequestID, err)
		}
		if _, err := db.Get(persistence.LogRequestKey(string(e.PlatformID), e.RequestID)); !errors.Is(err, persistence.ErrNotFound) {
			t.Errorf("index row of expired %s still present (%v)", e.RequestID, err)
		}
	}
	if _, err := s.Get(platA, entry(platA, 2505).RequestID); err != nil {
		t.Errorf("Get(kept entry) = %v", err)
	}
}

func TestTenantsAreInvisibleToEachOther(t *testing.T) {
	s, _ := start(t, Config{})
	s.Writer().Write(entry(platA, 1))
	flush(t, s)
	if es := listAll(t, s, platB, Query{}); len(es) != 0 {
		t.Errorf("List(platB) = %v, want none of platA's", requestIDs(es))
	}
	if _, err := s.Get(platB, entry(platA, 1).RequestID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(platB, platA's request) = %v, want ErrNotFound", err)
	}
	// A platform whose id is a prefix of another's sees nothing of it.
	short := ids.PlatformID("plat_aaaaaaaaaaaaaaaaaaaaaaaaa")
	if es := listAll(t, s, short, Query{}); len(es) != 0 {
		t.Errorf("List(prefix platform) = %v", requestIDs(es))
	}
}

func TestBadCursor(t *testing.T) {
	s, _ := start(t, Config{})
	for _, c := range []string{"x", "AAAAAAAAAAAA", EncodeCursor(5)[:11] + "!", "AQAAAAAAAAAB="} {
		if _, err := s.List(platA, Query{Cursor: c}); !errors.Is(err, ErrInvalidCursor) {
			t.Errorf("List(cursor %q) = %v, want ErrInvalidCursor", c, err)
		}
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	e := entry(platA, 7)
	e.CreatedAt = time.Unix(0, 1_777_000_000_123_456_789).UTC()
	e.Cost, e.ProviderCost, e.TTFT, e.Stream = -3, money.MaxAmount, time.Second, true
	var got Entry
	if err := decode(encode(nil, &e), &got); err != nil {
		t.Fatal(err)
	}
	got.PlatformID = e.PlatformID
	if !reflect.DeepEqual(got, e) {
		t.Errorf("decode(encode(e)) = %+v, want %+v", got, e)
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(EncodeCursor(1))
	f.Add(EncodeCursor(1 << 63))
	f.Add("")
	f.Add("AQAAAAAAAAAB")
	f.Add("AQAAAAAAAAAC")
	f.Fuzz(func(t *testing.T, s string) {
		seq, err := DecodeCursor(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidCursor) {
				t.Fatalf("DecodeCursor(%q) = %v, want ErrInvalidCursor", s, err)
			}
			return
		}
		if seq == 0 || EncodeCursor(seq) != s {
			t.Fatalf("DecodeCursor(%q) = %d, which encodes as %q", s, seq, EncodeCursor(seq))
		}
	})
}

func FuzzDecodeEntry(f *testing.F) {
	e := entry(platA, 3)
	f.Add(encode(nil, &e))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Entry
		if decode(b, &e) == nil {
			var again Entry
			if err := decode(encode(nil, &e), &again); err != nil {
				t.Fatalf("re-decode: %v", err)
			}
		}
	})
}

// TestLingerFoldsEntriesAndFlushDoesNotWait: entries written within the
// linger of the first go to the store in one write, not one each; a
// Flush ends the wait at once (the linger here is a minute: a Flush
// that waited it out would fail the test); and Close writes what is
// held.
func TestLingerFoldsEntriesAndFlushDoesNotWait(t *testing.T) {
	s, _ := start(t, Config{Linger: time.Minute})
	w := s.Writer()
	for i := 1; i <= 50; i++ {
		w.Write(entry(platA, i))
	}
	done := make(chan error, 1)
	go func() { done <- w.Flush() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Flush waited for the linger")
	}
	if got := len(listAll(t, s, platA, Query{})); got != 50 {
		t.Fatalf("listed %d entries after Flush, want 50", got)
	}
	if b := w.Stats().Batches; b != 1 {
		t.Fatalf("50 entries written within the linger took %d store writes, want 1", b)
	}

	// Without a linger, each entry that finds the queue empty is written
	// at once: an entry written after the writer went idle is its own write.
	s2, _ := start(t, Config{Linger: -1})
	w2 := s2.Writer()
	for i := 1; i <= 3; i++ {
		w2.Write(entry(platB, i))
		flush(t, s2)
	}
	if b := w2.Stats().Batches; b != 3 {
		t.Fatalf("3 entries flushed one by one without a linger took %d store writes, want 3", b)
	}
}

// TestQueriesReadLingeringEntries: a query ends the writer's linger and
// reads what it held (the linger is a minute: a query that did not would
// fail the test).
func TestQueriesReadLingeringEntries(t *testing.T) {
	s, _ := start(t, Config{Linger: time.Minute})
	w := s.Writer()
	e := entry(platA, 1)
	w.Write(e)
	deadline := time.Now().Add(10 * time.Second)
	for !w.lingering.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the writer never lingered")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := s.Get(platA, e.RequestID); err != nil {
		t.Fatalf("Get of a lingering entry: %v", err)
	}
	w.Write(entry(platA, 2))
	for !w.lingering.Load() {
		time.Sleep(time.Millisecond)
	}
	if got := len(listAll(t, s, platA, Query{})); got != 2 {
		t.Fatalf("List listed %d entries, want 2 (one of them lingering)", got)
	}
}
