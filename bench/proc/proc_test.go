package proc

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestCPUTimeOfSelfGrowsWithWork(t *testing.T) {
	before, err := CPUTime(0)
	if err != nil {
		t.Skipf("CPUTime(0) error = %v (no /proc?)", err)
	}
	x := 0
	for i := range 200_000_000 {
		x += i
	}
	_ = x
	after, err := CPUTime(os.Getpid())
	if err != nil {
		t.Fatalf("CPUTime(pid) error = %v", err)
	}
	if after < before {
		t.Errorf("CPUTime went backwards: %v then %v", before, after)
	}
}

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ncpu    int
		taskset bool
		want    Layout
	}{
		{"no taskset", 8, false, Layout{}},
		{"one cpu", 1, true, Layout{}},
		{"two cpus", 2, true, Layout{Loadgen: "0", Upstream: "1", Proxy: "1", Pinned: true}},
		{"four cpus", 4, true, Layout{Loadgen: "0", Upstream: "1", Proxy: "2", Pinned: true}},
	} {
		got := Plan(tc.ncpu, tc.taskset)
		got.Why = ""
		if got != tc.want {
			t.Errorf("%s: Plan(%d, %v) = %+v, want %+v", tc.name, tc.ncpu, tc.taskset, got, tc.want)
		}
	}
}

func TestCountCPUs(t *testing.T) {
	for in, want := range map[string]int{"0": 1, "0,2": 2, "1-3": 3, "0,2-3": 3, "x": 0, "3-1": 0} {
		if got := countCPUs(in); got != want {
			t.Errorf("countCPUs(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestStartReportsEarlyExitAndStopAllEndsChildren(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	g := &Group{LogDir: t.TempDir()}
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.Start(context.Background(), Spec{Role: "quitter", Path: sh, Args: []string{"-c", "echo bye; exit 3"}, Addr: addr})
	if !errors.Is(err, ErrExited) {
		t.Errorf("Start(exiting process) error = %v, want ErrExited", err)
	}

	// A process that never listens: Start times out, and the child is gone.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = g.Start(ctx, Spec{Role: "sleeper", Path: sh, Args: []string{"-c", "exec sleep 30"}, Addr: addr})
	if err == nil {
		t.Fatalf("Start(never-ready process) error = nil")
	}
	g.mu.Lock()
	left := len(g.procs)
	g.mu.Unlock()
	if left != 0 {
		t.Errorf("after failed starts the group still owns %d processes", left)
	}
}
