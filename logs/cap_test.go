package logs

import (
	"errors"
	"testing"
	"time"

	"github.com/assistiv/gateway/persistence"
)

func waitReady(t *testing.T, s *Store) {
	t.Helper()
	select {
	case <-s.ready:
	case <-time.After(10 * time.Second):
		t.Fatal("initial count did not finish")
	}
}

func keysOf(t *testing.T, db *persistence.Store, pid string) int {
	t.Helper()
	n := 0
	if err := db.ScanPrefix(persistence.LogEntriesPrefix(pid), false, func(_, _ []byte) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	return n
}

// A platform past MaxEntriesPerPlatform loses its oldest entries (and
// their index rows) at the next sweep; another platform keeps all of its
// own. The counts survive a restart (counted once at Open).
func TestPerPlatformCapDeletesTheOldestEntries(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir, 0)
	defer db.Close()
	cfg := Config{MaxEntriesPerPlatform: 100, SweepInterval: time.Hour}
	s := openLogs(t, db, cfg)
	waitReady(t, s)
	for i := 0; i < 250; i++ {
		s.Writer().Write(entry(platA, i))
	}
	for i := 0; i < 20; i++ {
		s.Writer().Write(entry(platB, i))
	}
	flush(t, s)
	if n, err := s.Sweep(); err != nil || n != 150 {
		t.Fatalf("Sweep = %d, %v; want 150 deleted", n, err)
	}
	if a, b := keysOf(t, db, string(platA)), keysOf(t, db, string(platB)); a != 100 || b != 20 {
		t.Fatalf("after the sweep A holds %d and B %d entries, want 100 and 20", a, b)
	}
	for i, want := range map[int]error{0: ErrNotFound, 149: ErrNotFound, 150: nil, 249: nil} {
		if _, err := s.Get(platA, entry(platA, i).RequestID); !errors.Is(err, want) {
			t.Errorf("Get(A entry %d) = %v, want %v", i, err, want)
		}
	}
	if _, err := db.Get(persistence.LogRequestKey(string(platA), entry(platA, 0).RequestID)); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("index row of a capped entry still present (%v)", err)
	}
	s.Close()

	// Restart: the initial count finds 100 and 20; 50 more A entries are
	// trimmed back to the newest 100.
	s = openLogs(t, db, cfg)
	defer s.Close()
	waitReady(t, s)
	if n, ok := s.counts.get(string(platA)); !ok || n != 100 {
		t.Fatalf("count of A after restart = %d (ready %v), want 100", n, ok)
	}
	for i := 250; i < 300; i++ {
		s.Writer().Write(entry(platA, i))
	}
	flush(t, s)
	if n, err := s.Sweep(); err != nil || n != 50 {
		t.Fatalf("Sweep after restart = %d, %v; want 50", n, err)
	}
	if a := keysOf(t, db, string(platA)); a != 100 {
		t.Fatalf("A holds %d entries, want 100", a)
	}
	if _, err := s.Get(platA, entry(platA, 200).RequestID); err != nil {
		t.Errorf("newest-100 entry lost: %v", err)
	}
}
