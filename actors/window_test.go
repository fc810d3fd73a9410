package actors

import (
	"math/rand"
	"sort"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)

// windowStep is one call on a window at t0+at: check units under limit
// and, when admitted, add them.
type windowStep struct {
	at        time.Duration
	units     int64
	ok        bool
	retry     time.Duration // want, when refused
	wantUsed  int64         // used(now) after the step
	wantReset time.Duration // resetIn(now) after the step
}

func TestWindowScripts(t *testing.T) {
	const limit = 3
	tests := []struct {
		name    string
		granule time.Duration
		steps   []windowStep
	}{
		{
			name: "burst fills the window, the fourth waits for the first to expire",
			steps: []windowStep{
				{at: 0, units: 1, ok: true, wantUsed: 1, wantReset: time.Minute},
				{at: 10 * time.Second, units: 1, ok: true, wantUsed: 2, wantReset: 50 * time.Second},
				{at: 20 * time.Second, units: 1, ok: true, wantUsed: 3, wantReset: 40 * time.Second},
				// (t-60s, t] holds all three: refused until the first leaves at 60s.
				{at: 30 * time.Second, units: 1, ok: false, retry: 30 * time.Second, wantUsed: 3, wantReset: 30 * time.Second},
				// At exactly 60s the first admission (at 0) is out: (0, 60s].
				{at: time.Minute, units: 1, ok: true, wantUsed: 3, wantReset: 10 * time.Second},
				{at: time.Minute + time.Second, units: 1, ok: false, retry: 9 * time.Second, wantUsed: 3, wantReset: 9 * time.Second},
			},
		},
		{
			name: "one nanosecond before expiry is still refused",
			steps: []windowStep{
				{at: 0, units: 3, ok: true, wantUsed: 3, wantReset: time.Minute},
				{at: time.Minute - time.Nanosecond, units: 1, ok: false, retry: time.Nanosecond, wantUsed: 3, wantReset: time.Nanosecond},
				{at: time.Minute, units: 3, ok: true, wantUsed: 3, wantReset: time.Minute},
			},
		},
		{
			name: "units larger than the limit never fit",
			steps: []windowStep{
				{at: 0, units: limit + 1, ok: false, retry: 0, wantUsed: 0, wantReset: 0},
			},
		},
		{
			name: "retry waits for enough units to expire, not just the oldest",
			steps: []windowStep{
				{at: 0, units: 1, ok: true, wantUsed: 1, wantReset: time.Minute},
				{at: 5 * time.Second, units: 2, ok: true, wantUsed: 3, wantReset: 55 * time.Second},
				{at: 6 * time.Second, units: 2, ok: false, retry: 59 * time.Second, wantUsed: 3, wantReset: 54 * time.Second},
			},
		},
		{
			name: "clock going backwards counts the newer admissions and never goes negative",
			steps: []windowStep{
				{at: 30 * time.Second, units: 2, ok: true, wantUsed: 2, wantReset: time.Minute},
				// 10 s earlier: the entry at 30s is in the future and still counts.
				{at: 20 * time.Second, units: 1, ok: true, wantUsed: 3, wantReset: 70 * time.Second},
				{at: 25 * time.Second, units: 1, ok: false, retry: 65 * time.Second, wantUsed: 3, wantReset: 65 * time.Second},
				// Both were recorded at 30s, so both expire at 90s.
				{at: 90 * time.Second, units: 3, ok: true, wantUsed: 3, wantReset: time.Minute},
			},
		},
		{
			name:    "a granule merges admissions and expires them at its end",
			granule: 10 * time.Second,
			steps: []windowStep{
				{at: 1 * time.Second, units: 1, ok: true, wantUsed: 1, wantReset: 69 * time.Second},
				{at: 9 * time.Second, units: 1, ok: true, wantUsed: 2, wantReset: 61 * time.Second},
				{at: 15 * time.Second, units: 1, ok: true, wantUsed: 3, wantReset: 55 * time.Second},
				// Stricter than exact: the admission at 1s counts until 70s, not 61s.
				{at: 65 * time.Second, units: 1, ok: false, retry: 5 * time.Second, wantUsed: 3, wantReset: 5 * time.Second},
				{at: 70 * time.Second, units: 2, ok: true, wantUsed: 3, wantReset: 10 * time.Second},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWindow(time.Minute, tt.granule)
			for i, s := range tt.steps {
				now := t0.Add(s.at)
				ok, retry := w.check(now, s.units, limit)
				if ok != s.ok || (!ok && retry != s.retry) {
					t.Fatalf("step %d: check(+%v, %d, %d) = %v, %v; want %v, %v", i, s.at, s.units, limit, ok, retry, s.ok, s.retry)
				}
				if ok {
					w.add(now, s.units)
				}
				if got := w.used(now); got != s.wantUsed {
					t.Errorf("step %d: used(+%v) = %d, want %d", i, s.at, got, s.wantUsed)
				}
				if got := w.resetIn(now); got != s.wantReset {
					t.Errorf("step %d: resetIn(+%v) = %v, want %v", i, s.at, got, s.wantReset)
				}
			}
		})
	}
}

func TestWindowAdjust(t *testing.T) {
	tests := []struct {
		name     string
		adds     []time.Duration // one unit of 100 each, at t0+d
		adjustAt time.Duration
		delta    int64
		wantUsed int64
		// wantAfter is used() once every admission but the adjusted one's
		// entry has expired (at t0+adjustAt+span-1ns... see below).
	}{
		{"estimate lowered", []time.Duration{0, time.Second}, time.Second, -60, 140},
		{"estimate raised", []time.Duration{0, time.Second}, 0, 50, 250},
		{"never below zero", []time.Duration{0}, 0, -500, 0},
		{"expired entry: nothing changes", []time.Duration{0}, -time.Hour, -50, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWindow(time.Minute, 0)
			for _, d := range tt.adds {
				w.add(t0.Add(d), 100)
			}
			w.adjust(t0.Add(tt.adjustAt), tt.delta)
			if got := w.used(t0.Add(2 * time.Second)); got != tt.wantUsed {
				t.Errorf("adjust(+%v, %d); used = %d, want %d", tt.adjustAt, tt.delta, got, tt.wantUsed)
			}
		})
	}
}

// TestWindowAdjustFindsItsEntryAfterClockWentBack: an admission made while
// the clock is behind the newest entry is merged into that entry, so its
// settlement must correct that entry, not an older one that expires sooner.
func TestWindowAdjustFindsItsEntryAfterClockWentBack(t *testing.T) {
	w := newWindow(time.Minute, 0)
	w.add(t0.Add(10*time.Second), 100)                       // A, expires at 70s
	w.add(t0.Add(20*time.Second), 100)                       // B, expires at 80s
	at := w.add(t0.Add(5*time.Second), 100)                  // C: clock went back; merged into B
	w.adjust(at, +50)                                        // C actually used 150
	if got := w.used(t0.Add(75 * time.Second)); got != 250 { // A gone; B+C (250) remain
		t.Errorf("used after A expired = %d, want 250 (B 100 + C 150)", got)
	}
}

// probe returns a copy of w to look ahead with: check expires entries, so
// asking the window about a later time must not touch the real one.
func probe(w *window) *window {
	c := *w
	c.entries = append([]wentry(nil), w.entries...)
	return &c
}

// admission is one admitted request in the property test.
type admission struct {
	at    int64 // unix nanos of the clock reading
	units int64
}

// maxInAnySpan returns the most units admitted in any half-open interval
// (x, x+span], by a two-pointer sweep over admissions sorted by time: the
// busiest interval can always be taken to end at an admission.
func maxInAnySpan(adm []admission, span time.Duration) int64 {
	s := append([]admission(nil), adm...)
	sort.Slice(s, func(i, j int) bool { return s[i].at < s[j].at })
	var best, sum int64
	lo := 0
	for hi := range s {
		sum += s[hi].units
		for s[lo].at <= s[hi].at-int64(span) {
			sum -= s[lo].units
			lo++
		}
		best = max(best, sum)
	}
	return best
}

// inWindow sums the units admitted in (now-span, now].
func inWindow(adm []admission, now time.Time, span time.Duration) int64 {
	var n int64
	for _, a := range adm {
		if a.at > now.UnixNano()-int64(span) && a.at <= now.UnixNano() {
			n += a.units
		}
	}
	return n
}

// TestWindowNeverAdmitsMoreThanLimitInAnySpan is the property of
// reliability.md §3.2/§3.3: random arrivals (bursts, exact-boundary
// arrivals, a clock that stalls, jumps ahead and goes backwards), checked
// against a brute-force oracle.
func TestWindowNeverAdmitsMoreThanLimitInAnySpan(t *testing.T) {
	type shape struct {
		name      string
		span      time.Duration
		granule   time.Duration
		limit     int64
		maxUnits  int64
		backwards bool
	}
	shapes := []shape{
		{"rpm exact", time.Minute, 0, 10, 1, false},
		{"rpm exact clock backwards", time.Minute, 0, 10, 1, true},
		{"tpm exact units", time.Minute, 0, 1000, 300, false},
		{"tpm exact units clock backwards", time.Minute, 0, 1000, 300, true},
		{"rpd granule", 24 * time.Hour, time.Minute, 50, 1, false},
		{"rpd granule clock backwards", 24 * time.Hour, time.Minute, 50, 1, true},
	}
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			for seed := int64(1); seed <= 20; seed++ {
				rng := rand.New(rand.NewSource(seed))
				w := newWindow(sh.span, sh.granule)
				var adm, recorded []admission
				now := t0
				for i := 0; i < 3000; i++ {
					// Steps scaled to the span: mostly small, sometimes
					// exactly to an expiry, sometimes a jump or a reversal.
					switch r := rng.Intn(100); {
					case r < 40:
						// same instant: a burst
					case r < 80:
						now = now.Add(time.Duration(rng.Int63n(int64(sh.span) / 20)))
					case r < 88:
						now = now.Add(sh.span)
					case r < 93:
						now = now.Add(time.Duration(rng.Int63n(int64(sh.span) * 3)))
					default:
						if sh.backwards {
							now = now.Add(-time.Duration(rng.Int63n(int64(sh.span))))
						}
					}
					units := 1 + rng.Int63n(sh.maxUnits)
					ok, retry := w.check(now, units, sh.limit)
					if ok {
						rec := w.add(now, units)
						adm = append(adm, admission{now.UnixNano(), units})
						recorded = append(recorded, admission{rec.UnixNano(), units})
						continue
					}
					if units > sh.limit {
						if retry != 0 {
							t.Fatalf("seed %d step %d: check(%d > limit) retry = %v, want 0", seed, i, units, retry)
						}
						continue
					}
					if retry <= 0 {
						t.Fatalf("seed %d step %d: refused with retry %v", seed, i, retry)
					}
					if !sh.backwards && sh.granule == 0 {
						// Exact and monotonic: a refusal means the window
						// really is full, and retry is the least wait.
						if n := inWindow(adm, now, sh.span); n+units <= sh.limit {
							t.Fatalf("seed %d step %d: refused %d units with only %d of %d used in (now-span, now]", seed, i, units, n, sh.limit)
						}
						if ok, _ := probe(&w).check(now.Add(retry-time.Nanosecond), units, sh.limit); ok {
							t.Fatalf("seed %d step %d: retry %v is longer than needed", seed, i, retry)
						}
					}
					// A request at now+retry is admitted (no spurious refusal).
					if ok, again := probe(&w).check(now.Add(retry), units, sh.limit); !ok {
						t.Fatalf("seed %d step %d: refused again at now+retry (%v) with retry %v", seed, i, retry, again)
					}
					// Half the time the client waits exactly as told.
					if rng.Intn(2) == 0 {
						now = now.Add(retry)
						rec := w.add(now, units)
						adm = append(adm, admission{now.UnixNano(), units})
						recorded = append(recorded, admission{rec.UnixNano(), units})
					}
				}
				// In the window's own time (where add recorded each
				// admission: the reading, or the newest entry's time when
				// the clock was behind it), never more than limit in any
				// span, whatever the clock did.
				if got := maxInAnySpan(recorded, sh.span); got > sh.limit {
					t.Fatalf("seed %d: %d units recorded in one %v interval, limit %d", seed, got, sh.span, sh.limit)
				}
				// Over the raw clock readings the same holds while the
				// clock never goes backwards. A clock that reads ahead and
				// then steps back has already carried the older admissions
				// out of the window; no log of bounded memory can tell
				// which of the two readings was wrong, so that case is
				// bounded by the recorded-time check above only.
				if !sh.backwards {
					if got := maxInAnySpan(adm, sh.span); got > sh.limit {
						t.Fatalf("seed %d: %d units admitted in one %v interval, limit %d", seed, got, sh.span, sh.limit)
					}
				}
				if len(adm) < 100 {
					t.Fatalf("seed %d: only %d admissions; the schedule is too tight to test anything", seed, len(adm))
				}
				if w.sum < 0 {
					t.Fatalf("seed %d: window sum went negative: %d", seed, w.sum)
				}
			}
		})
	}
}

func TestWindowSnapshotRestore(t *testing.T) {
	w := newWindow(time.Minute, 0)
	w.add(t0, 2)
	w.add(t0.Add(30*time.Second), 3)
	snap := w.snapshot(t0.Add(45 * time.Second))
	r := newWindow(time.Minute, 0)
	r.restore(snap)
	for _, at := range []time.Duration{45 * time.Second, 61 * time.Second, 91 * time.Second} {
		if got, want := r.used(t0.Add(at)), w.used(t0.Add(at)); got != want {
			t.Errorf("restored used(+%v) = %d, want %d", at, got, want)
		}
	}
}

// TestWindowRecordsNoEarlierThanItsLatestReading (F-11): a reading ahead
// carries admissions out of the window; when the clock then steps back,
// new admissions are recorded at the reading ahead, so the window's own
// history never holds more than limit in any span.
func TestWindowRecordsNoEarlierThanItsLatestReading(t *testing.T) {
	w := newWindow(time.Minute, 0)
	w.add(t0, 3)
	if got := w.used(t0.Add(61 * time.Second)); got != 0 {
		t.Fatalf("used(+61s) = %d, want 0", got)
	}
	back := t0.Add(30 * time.Second)
	if ok, _ := w.check(back, 3, 3); !ok {
		t.Fatalf("check(+30s) refused with an empty window")
	}
	if got, want := w.add(back, 3), t0.Add(61*time.Second); !got.Equal(want) {
		t.Fatalf("add(+30s) recorded at %v, want the latest reading %v", got.Sub(t0), want.Sub(t0))
	}
	// Counted until +121s, not +90s.
	if ok, retry := w.check(t0.Add(100*time.Second), 1, 3); ok || retry != 21*time.Second {
		t.Fatalf("check(+100s) = %v, %v; want refused, 21s", ok, retry)
	}
}
