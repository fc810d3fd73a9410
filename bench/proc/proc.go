// Package proc starts, pins, watches and stops the benchmark's child
// processes (upstream, bare proxy, gateway) and reads their CPU time.
//
// A [Group] owns every process it started: [Group.StopAll] ends them all,
// and on Linux each child also gets SIGKILL from the kernel if the runner
// thread that started it dies, so a crashed or interrupted run leaves no
// server behind. Processes are only ever signalled by their own pid.
//
// Pinning uses taskset(1) when it is installed and the machine has at least
// two CPUs; [Plan] decides which CPUs each role gets. CPU time comes from
// /proc/<pid>/stat (utime+stime), so it is Linux-only and has the kernel's
// clock-tick resolution (10 ms at the usual USER_HZ of 100): measure over
// seconds, not milliseconds.
//
// Group methods are safe for concurrent use. It imports nothing of the
// gateway's.
package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrExited is returned by [Group.Start] when the process exits before it is
// ready.
var ErrExited = errors.New("proc: process exited before it was ready")

// Spec describes a process to start.
type Spec struct {
	// Role names the process in logs and reports, e.g. "upstream".
	Role string
	// Path is the binary; Args its arguments; Env is added to the runner's
	// environment.
	Path string
	Args []string
	Env  []string
	// CPUs is a taskset CPU list such as "1"; "" runs unpinned.
	CPUs string
	// Addr is the host:port the process listens on; Start waits until it
	// accepts connections. Required.
	Addr string
	// ReadyPath, if set, is requested with GET after Addr accepts; any
	// answer below 500 means ready.
	ReadyPath string
	// ReadyTimeout bounds the wait. Default 15 s.
	ReadyTimeout time.Duration
	// ReadyEvery is the polling interval of the wait. Default 20 ms.
	ReadyEvery time.Duration
}

// Process is a started child.
type Process struct {
	Role    string
	PID     int
	Addr    string
	CPUs    string
	Binary  string
	LogPath string

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // exit status, valid after done
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Group owns the processes it started.
type Group struct {
	// LogDir receives one <role>-<pid>.log per process (stdout and
	// stderr). Required.
	LogDir string
	// Taskset is the taskset binary; "" disables pinning.
	Taskset string

	mu    sync.Mutex // guards procs
	procs []*Process
}

// Start starts spec and waits until it is ready, the context is done, or
// the process exits. On any failure the process is stopped and the error
// carries the tail of its log.
func (g *Group) Start(ctx context.Context, spec Spec) (*Process, error) {
	if spec.Addr == "" {
		return nil, fmt.Errorf("proc: %s: Spec.Addr is required", spec.Role)
	}
	if spec.ReadyTimeout == 0 {
		spec.ReadyTimeout = 15 * time.Second
	}
	if err := os.MkdirAll(g.LogDir, 0o755); err != nil {
		return nil, err
	}
	name, args := spec.Path, spec.Args
	if spec.CPUs != "" && g.Taskset != "" {
		name, args = g.Taskset, append([]string{"-c", spec.CPUs, spec.Path}, spec.Args...)
	} else {
		spec.CPUs = ""
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), spec.Env...)
	setPdeathsig(cmd)
	log, err := os.CreateTemp(g.LogDir, spec.Role+"-*.log")
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("proc: start %s (%s): %w", spec.Role, spec.Path, err)
	}
	p := &Process{
		Role: spec.Role, PID: cmd.Process.Pid, Addr: spec.Addr, CPUs: spec.CPUs,
		Binary: spec.Path, LogPath: log.Name(), cmd: cmd, done: make(chan struct{}),
	}
	go func() { // owned by p; ends when the process does
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	g.mu.Lock()
	g.procs = append(g.procs, p)
	g.mu.Unlock()

	if err := waitReady(ctx, p, spec); err != nil {
		g.Stop(p)
		return nil, fmt.Errorf("proc: %s not ready: %w\n%s", spec.Role, err, tail(p.LogPath, 2000))
	}
	return p, nil
}

func waitReady(ctx context.Context, p *Process, spec Spec) error {
	ctx, cancel := context.WithTimeout(ctx, spec.ReadyTimeout)
	defer cancel()
	every := spec.ReadyEvery
	if every <= 0 {
		every = 20 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if ready(p.Addr, spec.ReadyPath) {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%w (%v)", ErrExited, p.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// ready dials addr and, if path is set, sends a minimal GET.
func ready(addr, path string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	if path == "" {
		return true
	}
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr)
	buf := make([]byte, 12)
	n, _ := c.Read(buf)
	if n < 12 || !bytes.HasPrefix(buf, []byte("HTTP/1.")) {
		return false
	}
	code, err := strconv.Atoi(string(buf[9:12]))
	return err == nil && code < 500
}

// Stop ends p: SIGTERM, then SIGKILL after two seconds. It returns once p has
// exited and is idempotent.
func (g *Group) Stop(p *Process) {
	if !p.Exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(2 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, q := range g.procs {
		if q == p {
			g.procs = append(g.procs[:i], g.procs[i+1:]...)
			break
		}
	}
}

// Kill ends p with SIGKILL at once (a crash, for recovery benchmarks) and
// returns once it has exited.
func (g *Group) Kill(p *Process) {
	if !p.Exited() {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, q := range g.procs {
		if q == p {
			g.procs = append(g.procs[:i], g.procs[i+1:]...)
			break
		}
	}
}

// StopAll stops every process the group still owns, newest first.
func (g *Group) StopAll() {
	g.mu.Lock()
	procs := append([]*Process(nil), g.procs...)
	g.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		g.Stop(procs[i])
	}
}

// tail returns the last n bytes of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago. Another process could take it before the caller's child binds it;
// [Group.Start] then fails rather than measuring the wrong server, because
// the child exits on the bind error.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Executable resolves path to an absolute path of an existing regular file.
func Executable(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", err
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("proc: %s is not an executable file", abs)
	}
	return abs, nil
}
