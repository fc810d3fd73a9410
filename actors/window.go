package actors

import "time"

// window is an exact sliding log of admissions over a fixed span: it never
// admits more than limit units in any interval of length span. Entries are
// (time, units) pairs in time order; entries within one granule are merged,
// and a merged entry counts as if it happened at the end of its granule for
// expiry, so merging can only make the window stricter, never looser.
//
// A token bucket or GCRA would admit up to 2N−1 across a boundary; this
// admits at most N, at the cost of memory proportional to the number of
// granules with admissions inside the span. Not safe for concurrent use.
//
// It is kept small (48 bytes) because every rate-limited resident actor
// holds three: the span and granule in milliseconds, expired entries
// sliced off the front (an append reallocates only live entries).
type window struct {
	entries   []wentry // oldest first
	sum       int64
	seen      int64 // latest time expire was called with (unix nanos)
	spanMs    int32
	granuleMs int32 // 0: exact timestamps
}

type wentry struct {
	at    int64 // unix nanos; for merged entries the end of their granule
	units int64
}

// newWindow returns a window of span (at most 24 days) merging admissions
// per granule (0: none); both are whole milliseconds.
func newWindow(span, granule time.Duration) window {
	return window{spanMs: int32(span / time.Millisecond), granuleMs: int32(granule / time.Millisecond)}
}

func (w *window) span() time.Duration    { return time.Duration(w.spanMs) * time.Millisecond }
func (w *window) granule() time.Duration { return time.Duration(w.granuleMs) * time.Millisecond }

// expire drops entries that left the window at now.
func (w *window) expire(now time.Time) {
	w.seen = max(w.seen, now.UnixNano())
	cut := now.UnixNano() - int64(w.span())
	i := 0
	for i < len(w.entries) && w.entries[i].at <= cut {
		w.sum -= w.entries[i].units
		i++
	}
	if i == len(w.entries) {
		w.entries = nil // an idle user gives its memory back
	} else if i > 0 {
		w.entries = w.entries[i:]
	}
}

// check reports whether units more may be admitted at now under limit, and
// if not, how long until they may (0 when they never can, units > limit).
func (w *window) check(now time.Time, units, limit int64) (ok bool, retry time.Duration) {
	w.expire(now)
	if w.sum+units <= limit {
		return true, 0
	}
	if units > limit {
		return false, 0
	}
	// Walk from the oldest entry until enough has expired.
	need := w.sum + units - limit
	for i := range w.entries {
		need -= w.entries[i].units
		if need <= 0 {
			d := time.Duration(w.entries[i].at + int64(w.span()) - now.UnixNano())
			if d < 0 {
				d = 0
			}
			return false, d
		}
	}
	return false, w.span()
}

// add records units admitted at now and returns the time under which
// they are recorded (what [window.adjust] takes). now must not be before
// the newest entry minus a granule; a clock that went backwards is treated
// as the latest time the window has seen, so windows never go negative and
// an admission is never recorded earlier than a reading that already
// carried older admissions out of the window.
func (w *window) add(now time.Time, units int64) time.Time {
	at := max(now.UnixNano(), w.seen)
	if w.granuleMs > 0 {
		g := int64(w.granule())
		at = (at/g + 1) * g
	}
	if n := len(w.entries); n > 0 {
		last := &w.entries[n-1]
		if at <= last.at {
			last.units += units
			w.sum += units
			return time.Unix(0, last.at)
		}
	}
	w.entries = append(w.entries, wentry{at: at, units: units})
	w.sum += units
	return time.Unix(0, at)
}

// adjust changes the units of the entry recorded at recorded (as returned
// by add): settlement correcting a token estimate. The entry may have
// expired already, in which case nothing changes. delta may be negative;
// units never go below 0.
func (w *window) adjust(recorded time.Time, delta int64) {
	at := recorded.UnixNano()
	for i := len(w.entries) - 1; i >= 0; i-- {
		e := &w.entries[i]
		if e.at < at {
			return
		}
		if e.at == at {
			if e.units+delta < 0 {
				delta = -e.units
			}
			e.units += delta
			w.sum += delta
			return
		}
	}
}

// used returns the units inside the window at now.
func (w *window) used(now time.Time) int64 {
	w.expire(now)
	return w.sum
}

// resetIn returns how long until the oldest entry leaves the window.
func (w *window) resetIn(now time.Time) time.Duration {
	w.expire(now)
	if len(w.entries) == 0 {
		return 0
	}
	d := time.Duration(w.entries[0].at + int64(w.span()) - now.UnixNano())
	if d < 0 {
		return 0
	}
	return d
}

// snapshot returns the live entries, for persisting across passivation.
func (w *window) snapshot(now time.Time) []wentry {
	w.expire(now)
	return append([]wentry(nil), w.entries...)
}

// restore replaces the entries (from snapshot).
func (w *window) restore(es []wentry) {
	w.entries, w.sum = append([]wentry(nil), es...), 0
	for _, e := range es {
		w.sum += e.units
	}
}
