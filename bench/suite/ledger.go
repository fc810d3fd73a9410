package suite

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/assistiv/gateway/bench/proc"
	"github.com/assistiv/gateway/bench/report"
)

// Ledger is scenario 3: durable debits per second through the end-user
// actors and the write-ahead log at 1, 64 and 1,024 concurrent callers,
// and the in-memory admit+settle cost.
//
// Three measurements, each reported if it can run:
//   - HTTP: POST .../budget/debit against a gateway process (batch mode;
//     debits are always synced before the answer), one end-user per
//     caller, closed loop. This includes HTTP parsing and the platform-key
//     check, so it is a lower bound for the actors and WAL alone.
//   - BenchmarkDurableDebits in ./bench (go test -bench), if present: the
//     actors and the store in-process, no HTTP.
//   - BenchmarkAdmitSettle in ./actors, if present: admit+settle of the
//     account state machine in memory, ns/op.
type Ledger struct {
	// Callers are the concurrency levels. Default 1, 64, 1024.
	Callers []int
}

var _ Scenario = (*Ledger)(nil)

// Name returns "ledger".
func (*Ledger) Name() string { return "ledger" }

// Run measures the three.
func (l *Ledger) Run(ctx context.Context, env *Env) (report.Scenario, error) {
	start := time.Now()
	callers := l.Callers
	if len(callers) == 0 {
		callers = []int{1, 64, 1024}
	}
	maxC := 0
	for _, c := range callers {
		maxC = max(maxC, c)
	}
	dur := pick(env, 2*time.Second, 5*time.Second)
	s := report.Scenario{
		Name:  "ledger",
		Title: "Ledger: durable debits",
		Description: fmt.Sprintf("*HTTP*: POST /v1/platforms/{id}/end-users/{id}/budget/debit (platform key, $0.000001) against the gateway process, "+
			"closed loop for %v per point, each caller debiting its own end-user (%d end-users seeded with benchseed and activated first). "+
			"An answer means the ledger entry and the end-user record are synced (group commit). "+
			"*go test*: the in-process Go benchmarks named below, when they exist in this tree (run on every CPU of the machine, as go test run by hand is: the runner, pinned to the load generator's CPU, would otherwise pass its pinning on; it is idle meanwhile).",
			dur, maxC),
		Baselines: nil,
		Metrics:   map[string]float64{},
	}
	defer func() { s.DurationSec = sinceSec(start) }()

	// HTTP debits.
	seeded, err := env.Seed(ctx, SeedSpec{Platforms: 1, Users: maxC, LedgerPerUser: 1, Sample: maxC})
	if err != nil {
		return s, err
	}
	gw, err := env.StartGateway(ctx, GatewayOptions{DataDir: seeded.Dir, ReadyTimeout: time.Minute})
	if err != nil {
		return s, err
	}
	defer env.Procs.Stop(gw.Proc)
	pkey := seeded.Platforms[0].Key
	users := seeded.Users
	body := []byte(`{"amount_usd":0.000001,"reason":"bench"}`)
	build := func(u seededUser, req *fasthttp.Request) {
		req.SetRequestURI(gw.URL + "/v1/platforms/" + u.Platform + "/end-users/" + u.EndUser + "/budget/debit")
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.Header.Set("Authorization", "Bearer "+pkey)
		req.SetBody(body)
	}
	warm := drive(ctx, driveConfig{Addr: gw.Proc.Addr, Workers: 64, N: len(users), Build: func(_, i int, req *fasthttp.Request) {
		build(users[i], req)
	}})
	if warm.count2xx() != int64(len(users)) {
		return s, fmt.Errorf("activating %d end-users with a debit: %s", len(users), warm.statusSummary())
	}
	t := report.Table{Title: "Durable debits over HTTP (gateway process)",
		Columns: []string{"callers", "debits/s", "p50 µs", "p99 µs", "p99.9 µs", "max µs", "gateway CPU µs/debit", "answers"}}
	best := 0.0
	for _, c := range callers {
		g0 := procCPU(gw.Proc.PID)
		r := drive(ctx, driveConfig{Addr: gw.Proc.Addr, Workers: c, Until: time.Now().Add(dur), Build: func(w, _ int, req *fasthttp.Request) {
			build(users[w%len(users)], req)
		}})
		cpuPer := "–"
		if n := r.count2xx(); n > 0 {
			cpuPer = fmtNum(float64((procCPU(gw.Proc.PID) - g0).Microseconds()) / float64(n))
		}
		t.Rows = append(t.Rows, append(append([]string{strconv.Itoa(c), fmtNum(r.rate())}, distRow(r.OK)...), cpuPer, r.statusSummary()))
		s.Metrics[fmt.Sprintf("http_debits_per_sec_c%d", c)] = r.rate()
		best = max(best, r.rate())
		env.logf("  http debits, %d callers: %.0f/s (%s)", c, r.rate(), r.statusSummary())
		if ctx.Err() != nil {
			break
		}
	}
	s.Metrics["http_debits_per_sec"] = best
	s.Tables = append(s.Tables, t)
	env.Procs.Stop(gw.Proc)

	// In-process Go benchmarks.
	gt := report.Table{Title: "In-process Go benchmarks (go test -bench)", Columns: []string{"benchmark", "iterations", "results", "debits/s"}}
	for _, b := range []struct{ pkg, name, file string }{
		{"./bench/", "BenchmarkDurableDebits", "bench/ledger_bench_test.go"},
		{"./actors/", "BenchmarkAdmitSettle", ""},
	} {
		if b.file != "" {
			if _, err := os.Stat(b.file); err != nil {
				gt.Rows = append(gt.Rows, []string{b.name, "–", "not run: " + b.file + " does not exist in this tree", "–"})
				continue
			}
		}
		lines, err := goBench(ctx, env, b.pkg, b.name, pick(env, "300ms", "1s"))
		if err != nil {
			gt.Rows = append(gt.Rows, []string{b.name, "–", "not run: " + err.Error(), "–"})
			continue
		}
		if len(lines) == 0 {
			gt.Rows = append(gt.Rows, []string{b.name, "–", "no such benchmark in " + b.pkg, "–"})
			continue
		}
		for _, bl := range lines {
			rate := bl.perSec()
			cell := "–"
			if strings.Contains(b.name, "Debits") && rate > 0 {
				cell = fmtNum(rate)
				s.Metrics["go_debits_per_sec"] = max(s.Metrics["go_debits_per_sec"], rate)
			}
			if strings.Contains(b.name, "AdmitSettle") {
				if ns, ok := bl.metrics["ns/op"]; ok {
					s.Metrics["admit_settle_ns_per_op"] = ns
				}
			}
			gt.Rows = append(gt.Rows, []string{bl.name, strconv.FormatInt(bl.iters, 10), bl.results(), cell})
		}
	}
	s.Tables = append(s.Tables, gt)
	return s, ctx.Err()
}

// procCPU returns pid's CPU time so far (0 if unreadable).
func procCPU(pid int) time.Duration {
	d, _ := proc.CPUTime(pid)
	return d
}

// benchLine is one result line of go test -bench.
type benchLine struct {
	name    string
	iters   int64
	metrics map[string]float64
	order   []string
}

// perSec returns the line's rate: a reported metric whose unit ends in
// "/s", else one op per ns/op.
func (b benchLine) perSec() float64 {
	for _, u := range b.order {
		if strings.HasSuffix(u, "/s") {
			return b.metrics[u]
		}
	}
	if ns := b.metrics["ns/op"]; ns > 0 {
		return 1e9 / ns
	}
	return 0
}

func (b benchLine) results() string {
	var parts []string
	for _, u := range b.order {
		parts = append(parts, fmtNum(b.metrics[u])+" "+u)
	}
	return strings.Join(parts, ", ")
}

// goBench runs one benchmark pattern in pkg and parses its result lines. It
// runs the test binary the runner compiled beforehand (env.TestBins), else
// go test.
func goBench(ctx context.Context, env *Env, pkg, name, benchtime string) ([]benchLine, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	pattern := "^" + name + "($|/)"
	var argv []string
	dir := ""
	if bin, ok := env.TestBins[pkg]; ok {
		if bin == "" {
			return nil, fmt.Errorf("%s has no test binary (no test files, or it did not compile: see the runner's log)", pkg)
		}
		argv = []string{bin, "-test.run", "^$", "-test.bench", pattern, "-test.benchtime", benchtime, "-test.count", "1"}
		dir = pkg
	} else {
		argv = []string{"go", "test", "-run", "^$", "-bench", pattern, "-benchtime", benchtime, "-count", "1", pkg}
	}
	// The runner pins itself to the load generator's CPU, and a child
	// inherits that: the benchmark would run on one CPU of the machine
	// (GOMAXPROCS 1). It gets every CPU, as go test run by hand does.
	if env.Procs != nil && env.Procs.Taskset != "" {
		argv = append([]string{env.Procs.Taskset, "-c", fmt.Sprintf("0-%d", runtime.NumCPU()-1)}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		tail := strings.TrimSpace(string(out))
		if len(tail) > 300 {
			tail = "…" + tail[len(tail)-300:]
		}
		return nil, fmt.Errorf("go test: %v: %s", err, strings.ReplaceAll(tail, "\n", " "))
	}
	return parseBench(string(out)), nil
}

func parseBench(out string) []benchLine {
	var lines []benchLine
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		iters, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		b := benchLine{name: f[0], iters: iters, metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			b.metrics[f[i+1]] = v
			b.order = append(b.order, f[i+1])
		}
		lines = append(lines, b)
	}
	return lines
}
