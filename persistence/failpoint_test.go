package persistence_test

// F-3 (reliability.md §8): failpoints at each stage of a batch's life in
// the group-commit pipeline. For every stage: no write is acknowledged
// (Done(nil) on a synced write) unless its record is already synced; after
// a power cut every acknowledged write is present; a multi-op write is
// all or nothing, in the live store and after the cut.
//
// Pebble v2 has no vfs.NewStrictMem/ResetToSyncedState; its successor,
// vfs.NewCrashableMem with CrashClone, is used instead: CrashClone keeps
// what was synced (and, when asked, a random part of what was not).
//
// Out of scope: the "panic during snapshot export" failpoint of F-3 (the
// snapshotter is not exercised here).

import (
	"errors"
	"math/rand"
	randv2 "math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/assistiv/gateway/persistence"
)

var errFailpoint = errors.New("injected failpoint")

var failpointStages = []string{persistence.FailpointBeforeApply, persistence.FailpointAfterApply, persistence.FailpointAfterSync}

// fpWriteOps is a three-key write, all keys set to the write's id.
func fpWriteOps(id int) []persistence.Op {
	v := []byte(strconv.Itoa(id))
	return []persistence.Op{
		persistence.Set(key("fp/%d/a", id), v),
		persistence.Set(key("fp/%d/b", id), v),
		persistence.Set(key("fp/%d/c", id), v),
	}
}

// fpPresence reports how many of write id's three keys s holds (with the
// right value); anything but 0 or 3 is a half-applied write.
func fpPresence(tb testing.TB, s *persistence.Store, id int) int {
	tb.Helper()
	n := 0
	for _, suffix := range []string{"a", "b", "c"} {
		v, err := s.Get(key("fp/%d/%s", id, suffix))
		switch {
		case errors.Is(err, persistence.ErrNotFound):
		case err != nil:
			tb.Fatalf("Get: %v", err)
		case string(v) != strconv.Itoa(id):
			tb.Fatalf("write %d key %s = %q", id, suffix, v)
		default:
			n++
		}
	}
	return n
}

// reopen opens a store over a crashed copy of the filesystem.
func reopen(tb testing.TB, fs *vfs.MemFS) *persistence.Store {
	tb.Helper()
	s := open(tb, "/data", fs, nil)
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// TestFailpointSingleWrite arms each failpoint, then sends one three-op
// write: it is refused, the store fails stop, and what a power cut at the
// failpoint leaves is exactly what the stage implies (nothing before the
// apply; all or nothing after it; all of it after the sync, yet never
// acknowledged).
func TestFailpointSingleWrite(t *testing.T) {
	for _, stage := range failpointStages {
		t.Run(stage, func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			var armed atomic.Bool
			var atFire *vfs.MemFS
			var fatals atomic.Int64
			var fatalErr error
			s := open(t, "/data", fs, func(c *persistence.Config) {
				c.Failpoint = func(st string) error {
					if st == stage && armed.CompareAndSwap(true, false) {
						atFire = fs.CrashClone(vfs.CrashCloneCfg{})
						return errFailpoint
					}
					return nil
				}
				c.OnFatal = func(err error) { fatals.Add(1); fatalErr = err }
			})
			defer s.Close()
			for id := 1; id <= 10; id++ {
				if err := s.Commit(fpWriteOps(id)...); err != nil {
					t.Fatalf("Commit %d before the failpoint: %v", id, err)
				}
			}
			armed.Store(true)
			const victim = 11
			if err := s.Commit(fpWriteOps(victim)...); !errors.Is(err, persistence.ErrFailed) {
				t.Fatalf("Commit at failpoint %s = %v, want ErrFailed", stage, err)
			}
			if fatals.Load() != 1 || !errors.Is(fatalErr, errFailpoint) {
				t.Fatalf("OnFatal called %d times with %v; want once with the failpoint error", fatals.Load(), fatalErr)
			}
			if !errors.Is(s.Err(), errFailpoint) {
				t.Errorf("Err() = %v, want the failpoint error", s.Err())
			}
			// Fail-stop: nothing more is accepted, synced or not.
			if err := s.Commit(fpWriteOps(12)...); !errors.Is(err, persistence.ErrFailed) {
				t.Errorf("Commit after the failure = %v, want ErrFailed", err)
			}
			done := make(chan error, 1)
			s.Submit(persistence.Write{Ops: fpWriteOps(13), NoSync: true, Done: func(err error) { done <- err }})
			if err := <-done; !errors.Is(err, persistence.ErrFailed) {
				t.Errorf("NoSync write after the failure: Done(%v), want ErrFailed", err)
			}
			live := fpPresence(t, s, victim)
			for _, id := range []int{12, 13} {
				if n := fpPresence(t, s, id); n != 0 {
					t.Errorf("write %d refused after the failure has %d keys in the store", id, n)
				}
			}
			final := fs.CrashClone(vfs.CrashCloneCfg{})

			// What each stage implies for the refused write.
			cut := reopen(t, atFire)
			atCut := fpPresence(t, cut, victim)
			switch stage {
			case persistence.FailpointBeforeApply:
				if live != 0 || atCut != 0 {
					t.Errorf("failed before apply, yet the write has %d keys live and %d after the cut", live, atCut)
				}
			case persistence.FailpointAfterApply:
				if live != 3 {
					t.Errorf("failed after apply: %d of 3 keys visible in the live store", live)
				}
				if atCut != 0 && atCut != 3 {
					t.Errorf("failed after apply: %d of 3 keys after the cut (half applied)", atCut)
				}
			case persistence.FailpointAfterSync:
				if live != 3 || atCut != 3 {
					t.Errorf("failed after sync: %d keys live, %d after the cut; want 3 and 3 (synced, not acknowledged)", live, atCut)
				}
			}
			for _, fsAfter := range []*vfs.MemFS{atFire, final} {
				r := cut
				if fsAfter == final {
					r = reopen(t, final)
				}
				for id := 1; id <= 10; id++ {
					if n := fpPresence(t, r, id); n != 3 {
						t.Fatalf("acknowledged write %d has %d of 3 keys after the cut", id, n)
					}
				}
				if n := fpPresence(t, r, victim); n != 0 && n != 3 {
					t.Fatalf("refused write has %d of 3 keys after the cut", n)
				}
			}
		})
	}
}

// TestFailpointsUnderLoad: 8 writers commit three-op writes (one in five
// NoSync) until a failpoint fires at a random batch. Each synced write's
// Done(nil) takes a power-cut image at that instant; the write must be
// whole in it (no acknowledgement before the sync). After the run, the
// live store and power-cut images (synced only, or with part of the
// unsynced tail) hold every acknowledged synced write whole and no write
// half; every write submitted after OnFatal fails.
func TestFailpointsUnderLoad(t *testing.T) {
	trials := 4
	if testing.Short() {
		trials = 2
	}
	for _, stage := range failpointStages {
		t.Run(stage, func(t *testing.T) {
			for trial := 0; trial < trials; trial++ {
				failpointTrial(t, stage, int64(trial)+1)
			}
		})
	}
}

type fpAck struct {
	id     int
	noSync bool
	err    error
	image  *vfs.MemFS // power-cut image taken inside Done (sampled)
}

func failpointTrial(t *testing.T, stage string, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	fs := vfs.NewCrashableMem()
	fireAt := int64(5 + rng.Intn(60))

	var (
		mu      sync.Mutex // orders acks against the failpoint's image
		acks    []fpAck
		atFire  *vfs.MemFS
		ackedAt int // len(acks) when the failpoint fired
		calls   atomic.Int64
		fatals  atomic.Int64
		fatal   atomic.Bool
	)
	var fatalErr error
	s := open(t, "/data", fs, func(c *persistence.Config) {
		c.Failpoint = func(st string) error {
			if st != stage || calls.Add(1) != fireAt {
				return nil
			}
			mu.Lock()
			atFire, ackedAt = fs.CrashClone(vfs.CrashCloneCfg{}), len(acks)
			mu.Unlock()
			return errFailpoint
		}
		c.OnFatal = func(err error) { fatalErr = err; fatals.Add(1); fatal.Store(true) }
	})

	const workers = 8
	var wg sync.WaitGroup
	var lateSuccess atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			wr := rand.New(rand.NewSource(seed*100 + int64(w)))
			for i := 0; i < 2000; i++ {
				id := w*10_000 + i + 1
				noSync := wr.Intn(5) == 0
				after := fatal.Load()
				done := make(chan error, 1)
				s.Submit(persistence.Write{Ops: fpWriteOps(id), NoSync: noSync, Done: func(err error) {
					a := fpAck{id: id, noSync: noSync, err: err}
					mu.Lock()
					// A power-cut image at every synced ack; kept for the
					// last 16 acks (those nearest the failpoint) and 1 in 16
					// of the others.
					if err == nil && !noSync {
						a.image = fs.CrashClone(vfs.CrashCloneCfg{})
					}
					acks = append(acks, a)
					if old := len(acks) - 17; old >= 0 && old%16 != 0 {
						acks[old].image = nil
					}
					mu.Unlock()
					done <- err
				}})
				err := <-done
				if after && err == nil {
					lateSuccess.Add(1)
				}
				if err != nil {
					if !errors.Is(err, persistence.ErrFailed) {
						t.Errorf("write %d: Done(%v), want ErrFailed", id, err)
					}
					return
				}
			}
		}(w)
	}
	wg.Wait()

	if atFire == nil {
		t.Fatalf("seed %d: failpoint %s never fired (called %d times, fire at %d)", seed, stage, calls.Load(), fireAt)
	}
	if fatals.Load() != 1 || !errors.Is(fatalErr, errFailpoint) {
		t.Fatalf("seed %d: OnFatal called %d times with %v", seed, fatals.Load(), fatalErr)
	}
	if n := lateSuccess.Load(); n > 0 {
		t.Fatalf("seed %d: %d writes submitted after OnFatal were acknowledged", seed, n)
	}

	// Live store: no write half applied.
	for _, a := range acks {
		n := fpPresence(t, s, a.id)
		if n != 0 && n != 3 {
			t.Fatalf("seed %d: write %d has %d of 3 keys in the live store", seed, a.id, n)
		}
		if a.err == nil && n != 3 {
			t.Fatalf("seed %d: acknowledged write %d has %d of 3 keys in the live store", seed, a.id, n)
		}
	}

	// Power-cut images: one at the failpoint, two after the run (synced
	// only; synced plus a random part of the unsynced tail).
	images := map[string]*vfs.MemFS{"at the failpoint": atFire}
	images["after the run"] = fs.CrashClone(vfs.CrashCloneCfg{})
	images["after the run, torn tail"] = fs.CrashClone(vfs.CrashCloneCfg{
		UnsyncedDataPercent: 50, RNG: randv2.New(randv2.NewPCG(uint64(seed), 1)),
	})
	_ = s.Close()

	checked := 0
	for i, a := range acks {
		if a.image == nil {
			continue
		}
		// The write acknowledged when this image was taken is whole in it.
		r := reopen(t, a.image)
		if n := fpPresence(t, r, a.id); n != 3 {
			t.Fatalf("seed %d, %s: write %d was acknowledged with %d of 3 keys synced", seed, stage, a.id, n)
		}
		// So is every synced write acknowledged before it.
		for _, b := range acks[:i] {
			if b.err == nil && !b.noSync {
				if n := fpPresence(t, r, b.id); n != 3 {
					t.Fatalf("seed %d: earlier acknowledged write %d has %d of 3 keys", seed, b.id, n)
				}
			}
		}
		_ = r.Close()
		checked++
	}
	for name, img := range images {
		r := reopen(t, img)
		limit := len(acks)
		if name == "at the failpoint" {
			limit = ackedAt
		}
		for i, a := range acks {
			n := fpPresence(t, r, a.id)
			if n != 0 && n != 3 {
				t.Fatalf("seed %d, %s: write %d has %d of 3 keys (half applied)", seed, name, a.id, n)
			}
			if i < limit && a.err == nil && !a.noSync && n != 3 {
				t.Fatalf("seed %d, %s: acknowledged write %d lost", seed, name, a.id)
			}
		}
		// The reopened store works.
		if err := r.Commit(persistence.Set(key("fp/after"), []byte("1"))); err != nil {
			t.Fatalf("seed %d, %s: Commit after reopening: %v", seed, name, err)
		}
		_ = r.Close()
	}
	ok, failed := 0, 0
	for _, a := range acks {
		if a.err == nil {
			ok++
		} else {
			failed++
		}
	}
	t.Logf("seed %d: fired at call %d; %d acknowledged, %d refused; %d ack-time images checked", seed, fireAt, ok, failed, checked)
}
