package suite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// SeedSpec is the shape of a data dir written by bench/cmd/benchseed.
type SeedSpec struct {
	Platforms, Users, LedgerPerUser int
	// Sample is how many end-users' raw keys are kept.
	Sample int
	// RPM is the platforms' default requests_per_minute (0: none).
	RPM int64
	// Upstream is every platform's openai base URL.
	Upstream string
}

// Seeded is a written data dir.
type Seeded struct {
	Spec SeedSpec
	Dir  string
	// Users are the sampled end-users (with raw keys), spread over all
	// platforms; Platforms are every platform with its key.
	Users, Platforms []seededUser
	// Took is how long benchseed ran; Bytes the data dir's size after.
	Took  time.Duration
	Bytes int64
}

// Seed writes a data dir of spec with env.SeedBin, or returns the one an
// earlier scenario of this run wrote with the same spec (scenarios that
// share one, like tenants and recovery, then run on the same dir in
// order). Seeding is setup, not measurement: it runs unpinned.
func (env *Env) Seed(ctx context.Context, spec SeedSpec) (*Seeded, error) {
	env.mu.Lock()
	if s, ok := env.seeds[spec]; ok {
		env.mu.Unlock()
		return s, nil
	}
	env.mu.Unlock()
	if env.SeedBin == "" {
		return nil, errors.New("no benchseed binary")
	}
	base := env.tmpPath("")
	dir, err := os.MkdirTemp(base, "seed-")
	if err != nil {
		return nil, err
	}
	s := &Seeded{Spec: spec, Dir: dir + "/data"}
	keys, plat := dir+"/keys.txt", dir+"/platform-keys.txt"
	args := []string{
		"-data-dir", s.Dir, "-platforms", strconv.Itoa(spec.Platforms), "-users", strconv.Itoa(spec.Users),
		"-ledger-per-user", strconv.Itoa(max(1, spec.LedgerPerUser)), "-sample", strconv.Itoa(spec.Sample),
		"-keys", keys, "-platform-keys", plat, "-rpm", strconv.FormatInt(spec.RPM, 10),
	}
	if spec.Upstream != "" {
		args = append(args, "-upstream", spec.Upstream)
	}
	env.logf("  seeding %d platforms, %d end-users, %d ledger entries per end-user", spec.Platforms, spec.Users, max(1, spec.LedgerPerUser))
	start := time.Now()
	cmd := exec.CommandContext(ctx, env.SeedBin, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("benchseed: %w: %s", err, out)
	}
	s.Took = time.Since(start)
	if s.Users, err = readKeys(keys); err != nil {
		return nil, err
	}
	if s.Platforms, err = readKeys(plat); err != nil {
		return nil, err
	}
	s.Bytes = dirSize(s.Dir)
	env.logf("  seeded in %v (%s)", s.Took.Round(time.Millisecond), fmtBytes(float64(s.Bytes)))
	env.mu.Lock()
	if env.seeds == nil {
		env.seeds = map[SeedSpec]*Seeded{}
	}
	env.seeds[spec] = s
	env.mu.Unlock()
	return s, nil
}

func dirSize(dir string) int64 {
	var n int64
	_ = walkFiles(dir, func(size int64) { n += size })
	return n
}

func walkFiles(dir string, fn func(int64)) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := dir + "/" + e.Name()
		if e.IsDir() {
			_ = walkFiles(p, fn)
			continue
		}
		if info, err := e.Info(); err == nil {
			fn(info.Size())
		}
	}
	return nil
}
