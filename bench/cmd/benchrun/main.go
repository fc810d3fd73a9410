// Command benchrun runs the benchmark suite and writes its report: the
// wiring of bench/suite, bench/proc and bench/report, and nothing else.
//
//	go run ./bench/cmd/benchrun                 # full run, at most 15 minutes
//	BENCH_QUICK=1 go run ./bench/cmd/benchrun   # quick run, under 3 minutes
//
// It builds the bench's own binaries (benchupstream, bareproxy) when they
// are not found, starts the upstream and each variant's processes on free
// 127.0.0.1 ports pinned with taskset where possible, runs the selected
// scenarios with itself as the load generator, stops every child on exit
// (also on error, SIGINT or SIGTERM), and writes
// <out>/<UTC timestamp>.json, .md, the SVG plots under <out>/<timestamp>/
// and <out>/LATEST.md.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/assistiv/gateway/bench/proc"
	"github.com/assistiv/gateway/bench/report"
	"github.com/assistiv/gateway/bench/suite"
)

const module = "github.com/assistiv/gateway"

// options are benchrun's flags; see main for their meaning.
type options struct {
	quick                  bool
	out                    string
	upstream, upstreamArgs string
	bareproxy, gateway     string
	scenarios, variants    string
	timeout                time.Duration
	pin, profile           bool
	perfData               string
	render                 string
}

func main() {
	var o options
	o.quick = os.Getenv("BENCH_QUICK") == "1"
	flag.BoolVar(&o.quick, "quick", o.quick, "quick mode (also BENCH_QUICK=1): short points, under 3 minutes in all")
	flag.StringVar(&o.out, "out", envOr("BENCH_OUT", "bench/results"), "output directory, relative to the repository root (env BENCH_OUT)")
	flag.StringVar(&o.upstream, "upstream", "", "upstream binary (default bin/mockllm if present, else bin/benchupstream, else built)")
	flag.StringVar(&o.upstreamArgs, "upstream-args", "-listen {addr}", "upstream arguments; {addr} becomes its host:port (ASSISTIV_LISTEN is set too); mockllm also gets -record 0")
	flag.StringVar(&o.bareproxy, "bareproxy", "bin/bareproxy", "bare proxy binary (built if missing)")
	flag.StringVar(&o.gateway, "gateway", "bin/gateway", "gateway binary, for the gateway variant")
	flag.StringVar(&o.scenarios, "scenarios", envOr("BENCH_SCENARIOS", "overhead,streaming,ledger,tenants,recovery,ratelimit,spread,cluster,tracing"), "comma-separated scenarios (env BENCH_SCENARIOS)")
	flag.StringVar(&o.variants, "variants", envOr("BENCH_VARIANTS", "direct,bareproxy,gateway-batch,gateway-sync,gateway-anthropic"), "comma-separated variants, baselines first (env BENCH_VARIANTS)")
	flag.BoolVar(&o.profile, "profile", os.Getenv("BENCH_PROFILE") == "1", "profile the gateway during overhead even when it meets its targets (env BENCH_PROFILE=1)")
	flag.StringVar(&o.perfData, "perf-data", os.Getenv("BENCH_PERF_DATA"), "keep the overhead profile's raw perf data at this path, for perf report -i or perf script (env BENCH_PERF_DATA)")
	flag.DurationVar(&o.timeout, "timeout", 0, "stop the run after this long (default 3m quick, 15m full)")
	flag.BoolVar(&o.pin, "pin", true, "pin processes to CPUs with taskset when available")
	flag.StringVar(&o.render, "render", "", "only re-render the report of this saved <id>.json next to it")
	flag.Parse()
	if o.timeout == 0 {
		o.timeout = 15 * time.Minute
		if o.quick {
			o.timeout = 3 * time.Minute
		}
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// scenarioRegistry lists every scenario by name, in report order. New
// scenarios are added here.
func scenarioRegistry() []suite.Scenario {
	return []suite.Scenario{&suite.Overhead{}, &suite.Streaming{}, &suite.Ledger{}, suite.Tenants{}, suite.Recovery{}, &suite.RateLimit{}, suite.Spread{}, suite.Cluster{}, suite.Tracing{}}
}

// variantRegistry lists every variant by name.
func variantRegistry(o options) map[string]suite.Variant {
	return map[string]suite.Variant{
		"direct":        suite.Direct{},
		"bareproxy":     &suite.BareProxy{Bin: o.bareproxy},
		"gateway-batch": &suite.Gateway{Bin: o.gateway, Durability: "batch"},
		"gateway-sync":  &suite.Gateway{Bin: o.gateway, Durability: "sync"},
		// The translated path: OpenAI-format requests answered through
		// the platform's anthropic provider.
		"gateway-anthropic": &suite.Gateway{Bin: o.gateway, Durability: "batch", Model: "claude-haiku-4-5", Label: "gateway-anthropic"},
		// Tracing on, 1 % sampled (not in the default list: the tracing
		// scenario measures its overhead in alternating rounds).
		"gateway-batch-traced": &suite.Gateway{Bin: o.gateway, Durability: "batch", TraceRatio: 0.01},
	}
}

func run(o options) error {
	logger := log.New(os.Stderr, "benchrun: ", log.Ltime)
	if o.render != "" {
		r, err := report.Load(o.render)
		if err != nil {
			return err
		}
		r.Headline = suite.Headline(r)
		f, err := report.WriteFiles(filepath.Dir(o.render), r)
		logger.Printf("wrote %s", f.Markdown)
		return err
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if err := os.Chdir(root); err != nil {
		return err
	}
	scenarios, err := selectScenarios(o.scenarios)
	if err != nil {
		return err
	}
	variants, err := selectVariants(o)
	if err != nil {
		return err
	}

	started := time.Now()
	id := started.UTC().Format("20060102T150405Z")
	tmp, err := os.MkdirTemp("", "benchrun-"+id+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var notes []string

	// Build (before pinning, so the compiler gets every CPU).
	upstreamBin, upstreamKind, err := resolveUpstream(o.upstream, tmp, logger)
	if err != nil {
		return err
	}
	if o.bareproxy, err = ensureBuilt(o.bareproxy, "bareproxy", tmp, logger); err != nil {
		return err
	}
	if o.gateway, err = buildIfMissing(o.gateway, "./cmd/gateway", "gateway", tmp, logger); err != nil {
		return err
	}
	// benchseed writes the gateway's records with its packages: always
	// built from this tree, so it matches the gateway binary of `make bench`.
	seedBin, err := build("./bench/cmd/benchseed", "benchseed", tmp, logger)
	if err != nil {
		return err
	}
	// The ledger scenario's in-process benchmarks, compiled now so that
	// compiling does not count as (or disturb) a measurement.
	testBins := map[string]string{}
	for _, pkg := range []string{"./bench/", "./actors/"} {
		out := filepath.Join(tmp, strings.Trim(strings.ReplaceAll(pkg, "/", "_"), "._")+".test")
		cmd := exec.Command("go", "test", "-c", "-o", out, pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			logger.Printf("go test -c %s failed (%v); its benchmarks will be reported as not run", pkg, err)
			out = ""
		} else if _, err := os.Stat(out); err != nil {
			out = "" // no test files
		}
		testBins[pkg] = out
	}
	for i, v := range variants {
		switch v := v.(type) {
		case *suite.BareProxy:
			v.Bin = o.bareproxy
			variants[i] = v
		case *suite.Gateway:
			v.Bin = o.gateway
			variants[i] = v
		}
	}

	taskset := ""
	if o.pin {
		taskset = proc.FindTaskset()
	}
	layout := proc.Plan(runtime.NumCPU(), taskset != "")
	notes = append(notes, "Layout: "+layout.Why+".")
	if layout.Pinned {
		if err := proc.PinSelf(taskset, layout.Loadgen); err != nil {
			logger.Printf("pinning the load generator failed, running unpinned: %v", err)
			layout = proc.Layout{Why: "pinning failed: " + err.Error()}
			taskset = ""
		}
	} else {
		taskset = ""
	}

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, o.timeout)
	defer cancelTimeout()

	group := &proc.Group{LogDir: filepath.Join(tmp, "logs"), Taskset: taskset}
	defer group.StopAll()
	self, _ := os.Executable()
	env := &suite.Env{Quick: o.quick, Procs: group, Layout: layout, Variants: variants, Log: logger,
		TmpDir: tmp, GatewayBin: o.gateway, SeedBin: seedBin, TestBins: testBins, Profile: o.profile, PerfData: o.perfData}
	env.Place(report.Placement{Role: "loadgen", Binary: filepath.Base(self), CPUs: layout.Loadgen})

	up, kind, err := startUpstream(ctx, env, upstreamBin, upstreamKind, o, tmp, logger)
	if err != nil {
		return err
	}
	if kind != upstreamKind {
		notes = append(notes, fmt.Sprintf("%s did not start; fell back to benchupstream.", upstreamBin))
	}
	env.Upstream = up
	env.StartUpstream = func(ctx context.Context, extra []string) (suite.Upstream, error) {
		u, _, err := startUpstreamWith(ctx, env, up.Process.Binary, kind, o, extra)
		if err == nil {
			u.Kind = kind
		}
		return u, err
	}

	r := &report.Run{
		Schema: report.SchemaVersion, ID: id, Started: started.UTC(), Quick: o.quick,
		Host: hostInfo(),
	}
	probe := func(at string) {
		sp, err := proc.ProbeSpeed(tmp)
		if err != nil {
			logger.Printf("host speed probe (%s): %v", at, err)
			return
		}
		r.Speed = append(r.Speed, report.HostSpeed{At: at, SHA256MBps: sp.SHA256MBps,
			FsyncOverwriteMicros: sp.FsyncOverwriteMicros, FsyncAppendMicros: sp.FsyncAppendMicros})
	}
	probe("start")
	var runErr error
	for _, sc := range scenarios {
		if ctx.Err() != nil {
			break
		}
		logger.Printf("scenario %s", sc.Name())
		s, err := sc.Run(ctx, env)
		if s.Name == "" {
			s.Name, s.Title = sc.Name(), sc.Name()
		}
		if err != nil {
			s.Error = err.Error()
			logger.Printf("scenario %s: %v", sc.Name(), err)
			runErr = errors.Join(runErr, fmt.Errorf("scenario %s: %w", sc.Name(), err))
		}
		r.Scenarios = append(r.Scenarios, s)
	}
	if err := ctx.Err(); err != nil {
		notes = append(notes, "The run was cut short: "+context.Cause(ctx).Error()+".")
	}
	group.StopAll()
	probe("end")
	r.Headline = suite.Headline(r)
	r.Finished = time.Now().UTC()
	r.Layout = env.Placements()
	r.Notes = notes
	f, err := report.WriteFiles(o.out, r)
	if err != nil {
		return errors.Join(runErr, err)
	}
	logger.Printf("wrote %s, %s and %d plots (took %v)", f.JSON, f.Markdown, len(f.Plots), time.Since(started).Round(time.Second))
	return runErr
}

func selectScenarios(list string) ([]suite.Scenario, error) {
	var out []suite.Scenario
	for _, name := range splitList(list) {
		found := false
		for _, s := range scenarioRegistry() {
			if s.Name() == name {
				out, found = append(out, s), true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown scenario %q", name)
		}
	}
	return out, nil
}

func selectVariants(o options) ([]suite.Variant, error) {
	reg := variantRegistry(o)
	var out []suite.Variant
	for _, name := range splitList(o.variants) {
		v, ok := reg[name]
		if !ok {
			return nil, fmt.Errorf("unknown variant %q (known: direct, bareproxy, gateway-batch, gateway-sync, gateway-anthropic, gateway-batch-traced)", name)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, errors.New("no variants selected")
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// repoRoot walks up from the working directory to this module's go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module "+module+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the " + module + " repository")
		}
		dir = parent
	}
}

// resolveUpstream picks the upstream binary: the flag, else bin/mockllm,
// else bin/benchupstream, else a fresh build of benchupstream.
func resolveUpstream(flagPath, tmp string, logger *log.Logger) (path, kind string, err error) {
	if flagPath != "" {
		p, err := proc.Executable(flagPath)
		return p, kindOf(p), err
	}
	if p, err := proc.Executable("bin/mockllm"); err == nil {
		return p, "mockllm", nil
	}
	p, err := ensureBuilt("bin/benchupstream", "benchupstream", tmp, logger)
	return p, "benchupstream", err
}

func kindOf(path string) string {
	if strings.Contains(filepath.Base(path), "mockllm") {
		return "mockllm"
	}
	return "benchupstream"
}

// ensureBuilt returns path if it is an executable, else builds
// bench/cmd/<name> into tmp.
func ensureBuilt(path, name, tmp string, logger *log.Logger) (string, error) {
	if p, err := proc.Executable(path); err == nil {
		return p, nil
	}
	out := filepath.Join(tmp, name)
	logger.Printf("%s not found; building ./bench/cmd/%s", path, name)
	cmd := exec.Command("go", "build", "-o", out, "./bench/cmd/"+name)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	return out, nil
}

// startUpstream starts the upstream; if a mockllm fails to start it falls
// back to benchupstream, so a changed mockllm command line cannot break the
// whole run (the report says so).
func startUpstream(ctx context.Context, env *suite.Env, bin, kind string, o options, tmp string, logger *log.Logger) (suite.Upstream, string, error) {
	start := func(bin string) (suite.Upstream, error) {
		up, _, err := startUpstreamWith(ctx, env, bin, kindOf(bin), o, nil)
		return up, err
	}
	up, err := start(bin)
	if err == nil {
		up.Kind = kind
		return up, kind, nil
	}
	if kind != "mockllm" {
		return suite.Upstream{}, "", err
	}
	logger.Printf("upstream %s failed (%v); falling back to benchupstream", bin, err)
	fb, berr := ensureBuilt("bin/benchupstream", "benchupstream", tmp, logger)
	if berr != nil {
		return suite.Upstream{}, "", errors.Join(err, berr)
	}
	if up, err = start(fb); err != nil {
		return suite.Upstream{}, "", err
	}
	up.Kind = "benchupstream"
	return up, "benchupstream", nil
}

// startUpstreamWith starts one upstream process of kind with o's arguments
// plus extra; a mockllm also gets -record 0 (no request recording: it
// takes a lock per request).
func startUpstreamWith(ctx context.Context, env *suite.Env, bin, kind string, o options, extra []string) (suite.Upstream, string, error) {
	addr, err := proc.FreeAddr()
	if err != nil {
		return suite.Upstream{}, kind, err
	}
	var args []string
	for _, a := range strings.Fields(o.upstreamArgs) {
		args = append(args, strings.ReplaceAll(a, "{addr}", addr))
	}
	if kind == "mockllm" {
		args = append(args, "-record", "0")
	}
	args = append(args, extra...)
	p, err := env.StartProcess(ctx, proc.Spec{
		Role: "upstream", Path: bin, Args: args, Addr: addr, ReadyPath: "/healthz",
		Env: []string{"ASSISTIV_LISTEN=" + addr},
	})
	if err != nil {
		return suite.Upstream{}, kind, err
	}
	return suite.Upstream{Addr: addr, URL: "http://" + addr, Process: p, Kind: kind}, kind, nil
}

// buildIfMissing returns path if it is an executable, else builds pkg into
// tmp/name.
func buildIfMissing(path, pkg, name, tmp string, logger *log.Logger) (string, error) {
	if p, err := proc.Executable(path); err == nil {
		return p, nil
	}
	logger.Printf("%s not found; building %s", path, pkg)
	return build(pkg, name, tmp, logger)
}

// build builds pkg into tmp/name.
func build(pkg, name, tmp string, logger *log.Logger) (string, error) {
	out := filepath.Join(tmp, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	return out, nil
}

func hostInfo() report.Host {
	h := report.Host{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, NumCPU: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				h.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		h.Commit = strings.TrimSpace(string(out))
	}
	return h
}
