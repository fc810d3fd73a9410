package proc

import (
	"crypto/sha256"
	"os"
	"slices"
	"time"
)

// Speed is how fast this host was at one moment: one core hashing, and
// the data disk's fdatasync. Runs on a shared machine drift; a probe at
// the start and one at the end say by how much, so two reports can be
// compared knowing whether the machine was the same.
type Speed struct {
	// SHA256MBps is SHA-256 throughput on one core, MB/s.
	SHA256MBps float64
	// FsyncOverwriteMicros and FsyncAppendMicros are median fdatasync
	// latencies (wall, µs) of a 2 KiB write into a file's existing bytes
	// and at its end: the cost of a WAL fsync once its files are
	// recycled, and while they still grow.
	FsyncOverwriteMicros, FsyncAppendMicros float64
}

// ProbeSpeed measures Speed in about a tenth of a second, writing a
// scratch file under dir (the disk the gateways' data dirs are on).
func ProbeSpeed(dir string) (Speed, error) {
	var s Speed
	buf := make([]byte, 64<<10)
	const rounds = 256 // 16 MiB
	start := time.Now()
	for range rounds {
		sum := sha256.Sum256(buf)
		buf[0] = sum[0]
	}
	s.SHA256MBps = float64(rounds*len(buf)) / 1e6 / time.Since(start).Seconds()

	f, err := os.CreateTemp(dir, "speed-probe-")
	if err != nil {
		return s, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	const n, size = 100, 2 << 10
	if _, err := f.Write(make([]byte, n*size)); err != nil {
		return s, err
	}
	if err := syncData(f); err != nil {
		return s, err
	}
	block := make([]byte, size)
	timed := func(off int64) (time.Duration, error) {
		t := time.Now()
		if _, err := f.WriteAt(block, off); err != nil {
			return 0, err
		}
		err := syncData(f)
		return time.Since(t), err
	}
	var over, app []time.Duration
	for i := range n {
		d, err := timed(int64(i * size))
		if err != nil {
			return s, err
		}
		over = append(over, d)
	}
	for i := range n {
		d, err := timed(int64((n + i) * size))
		if err != nil {
			return s, err
		}
		app = append(app, d)
	}
	s.FsyncOverwriteMicros = medianMicros(over)
	s.FsyncAppendMicros = medianMicros(app)
	return s, nil
}

func medianMicros(ds []time.Duration) float64 {
	slices.Sort(ds)
	return float64(ds[len(ds)/2]) / float64(time.Microsecond)
}
