package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// It is 100 on every Linux architecture Go supports; reading it properly
// needs sysconf(_SC_CLK_TCK), i.e. cgo, which this package avoids.
const clockTicks = 100

// CPUTime returns the user plus system CPU time pid has used so far. pid 0
// means this process.
func CPUTime(pid int) (time.Duration, error) {
	path := "/proc/self/stat"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is parenthesised and may contain spaces:
	// fields are counted from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("proc: malformed " + path)
	}
	f := strings.Fields(string(b[i+1:]))
	// After ')': state is field 3, so utime (14) and stime (15) are f[11], f[12].
	if len(f) < 13 {
		return 0, errors.New("proc: short " + path)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("proc: parse %s: %w", path, err)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// Layout is which CPUs each role is pinned to; "" means unpinned.
type Layout struct {
	Loadgen, Upstream, Proxy string
	// Pinned is false when taskset is missing or there are too few CPUs.
	Pinned bool
	// Why explains the layout in one sentence for the report.
	Why string
}

// Plan picks a layout for ncpu CPUs given whether taskset is available:
// the load generator alone on CPU 0; with two CPUs the servers share CPU 1,
// with three or more the upstream gets CPU 1 and the proxy or gateway CPU 2.
func Plan(ncpu int, haveTaskset bool) Layout {
	switch {
	case !haveTaskset:
		return Layout{Why: "taskset not found: processes are not pinned"}
	case ncpu < 2:
		return Layout{Why: "fewer than 2 CPUs: processes are not pinned"}
	case ncpu == 2:
		return Layout{Loadgen: "0", Upstream: "1", Proxy: "1", Pinned: true,
			Why: "2 CPUs: load generator on CPU 0; upstream and proxy/gateway share CPU 1"}
	default:
		return Layout{Loadgen: "0", Upstream: "1", Proxy: "2", Pinned: true,
			Why: "load generator on CPU 0, upstream on CPU 1, proxy/gateway on CPU 2"}
	}
}

// FindTaskset returns taskset's path, or "" if it is not installed.
func FindTaskset() string {
	p, err := exec.LookPath("taskset")
	if err != nil {
		return ""
	}
	return p
}

// PinSelf pins every thread of this process to cpus with taskset -a and sets
// GOMAXPROCS to the number of CPUs in the list, but at least 2: the load
// generator's pacer holds a P while it sleeps precisely (see loadgen.Open),
// and the workers need another. Threads created later inherit the affinity.
func PinSelf(taskset, cpus string) error {
	out, err := exec.Command(taskset, "-a", "-p", "-c", cpus, strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("proc: taskset -a -p -c %s: %w: %s", cpus, err, out)
	}
	if n := countCPUs(cpus); n > 0 {
		runtime.GOMAXPROCS(max(n, 2))
	}
	return nil
}

// countCPUs counts the CPUs in a taskset list such as "0", "0,2" or "1-3".
func countCPUs(list string) int {
	n := 0
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return 0
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0
			}
		}
		n += b - a + 1
	}
	return n
}

// Profile samples pid's CPU with perf(1) for d (perf record -F 499 -g,
// written to dataPath) and returns perf report's flat ("self", like
// pprof -top) and cumulative ("children", like pprof -top -cum) tops. It
// needs perf installed and permission to trace pid. The data file is
// deleted afterwards unless keep is set.
func Profile(ctx context.Context, pid int, d time.Duration, dataPath string, keep bool) (string, error) {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return "", errors.New("proc: perf is not installed")
	}
	secs := strconv.FormatFloat(d.Seconds(), 'f', 1, 64)
	rec := exec.CommandContext(ctx, perf, "record", "-F", "499", "-g", "-p", strconv.Itoa(pid), "-o", dataPath, "--", "sleep", secs)
	if out, err := rec.CombinedOutput(); err != nil {
		return "", fmt.Errorf("proc: perf record: %w: %s", err, bytes.TrimSpace(out))
	}
	if !keep {
		defer os.Remove(dataPath)
	}
	var b strings.Builder
	for _, v := range []struct{ title, mode string }{
		{"self (flat)", "--no-children"},
		{"children (cumulative)", "--children"},
	} {
		out, err := exec.CommandContext(ctx, perf, "report", "-i", dataPath, "--stdio", v.mode, "-g", "none",
			"--sort", "symbol", "--percent-limit", "0.7").Output()
		if err != nil {
			return "", fmt.Errorf("proc: perf report: %w", err)
		}
		fmt.Fprintf(&b, "== %s ==\n", v.title)
		n := 0
		for _, line := range strings.Split(string(out), "\n") {
			if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if n++; n > 35 {
				break
			}
			// Drop perf's IPC columns ("-  -") and the padding.
			line = strings.TrimRight(line, " -")
			b.WriteString(line + "\n")
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}
