package logs

import (
	"bytes"
	"encoding/binary"
	"sync"

	"github.com/assistiv/gateway/persistence"
)

// platformCounts tracks how many entries each platform holds, so the
// janitor can enforce [Config.MaxEntriesPerPlatform] without scanning the
// log space on every sweep.
//
// The count is exact once ready: at Open the janitor counts every entry
// with seq ≤ base (the sequence recovered at Open) once, in the
// background; the writer counts the entries it writes (all have seq >
// base) as their batch applies; every deletion by the janitor subtracts.
// Until the first count completes, the cap is not enforced (retention
// still is). Safe for concurrent use.
type platformCounts struct {
	mu    sync.Mutex
	base  uint64           // entries with seq ≤ base are counted by the initial scan
	n     map[string]int64 // platform → entries
	ready bool
}

func newPlatformCounts(base uint64) *platformCounts {
	return &platformCounts{base: base, n: map[string]int64{}}
}

// written adds the entries of one applied batch (the writer's Done).
func (c *platformCounts) written(per map[string]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for pid, k := range per {
		c.n[pid] += k
	}
}

// deleted subtracts entries the janitor removed.
func (c *platformCounts) deleted(pid string, k int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[pid] -= int64(k); c.n[pid] <= 0 {
		delete(c.n, pid)
	}
}

// over returns the platforms holding more than max entries, with their
// excess (nil until the initial count is done).
func (c *platformCounts) over(max int64) map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ready {
		return nil
	}
	out := map[string]int64{}
	for pid, k := range c.n {
		if k > max {
			out[pid] = k - max
		}
	}
	return out
}

// get returns a platform's count and whether counts are exact yet.
func (c *platformCounts) get(pid string) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[pid], c.ready
}

// countInitial counts the entries with seq ≤ base, platform by platform, then
// marks the counts exact. Called once, by the janitor, before its first
// sweep.
func (s *Store) countInitial() error {
	c := s.counts
	per := map[string]int64{}
	err := s.db.Scan([]byte{persistence.FamilyLogEntry}, []byte{persistence.FamilyLogEntry + 1}, false, func(k, _ []byte) bool {
		i := bytes.IndexByte(k[1:], 0)
		if i < 0 || len(k) < 1+i+1+8 {
			return true
		}
		if binary.BigEndian.Uint64(k[len(k)-8:]) <= c.base {
			per[string(k[1:1+i])]++
		}
		return true
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for pid, k := range per {
		c.n[pid] += k
	}
	c.ready = true
	return nil
}

// trimToCap deletes each over-cap platform's oldest entries until it holds
// MaxEntriesPerPlatform; it returns how many it deleted.
func (s *Store) trimToCap() (int, error) {
	deleted := 0
	for pid, excess := range s.counts.over(s.cfg.MaxEntriesPerPlatform) {
		boundary, err := s.nthSeq(pid, excess)
		if err != nil {
			return deleted, err
		}
		n, err := s.deleteBefore(pid, boundary)
		deleted += n
		if err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}

// nthSeq returns the seq just after the platform's n-th oldest entry (so
// deleting below it removes exactly n entries).
func (s *Store) nthSeq(pid string, n int64) (uint64, error) {
	prefix := persistence.LogEntriesPrefix(pid)
	var seq uint64
	var seen int64
	err := s.db.ScanPrefix(prefix, false, func(k, _ []byte) bool {
		seen++
		seq = binary.BigEndian.Uint64(k[len(k)-8:])
		return seen < n
	})
	return seq + 1, err
}
