package suite

import (
	"context"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/assistiv/gateway/bench/loadgen"
	"github.com/assistiv/gateway/bench/report"
)

// tenantSeed is the data dir the tenant and recovery scenarios share:
// 1,000,000 end-users over 1,000 platforms with 10 ledger entries each
// (10,000,000 entries) in the full run; 20,000 over 100 (200,000 entries)
// in quick mode.
func tenantSeed(env *Env) (spec SeedSpec, active, probes int) {
	spec = SeedSpec{Platforms: pick(env, 100, 1000), Users: pick(env, 20_000, 1_000_000), LedgerPerUser: 10, Upstream: env.Upstream.URL}
	active, probes = pick(env, 5_000, 100_000), pick(env, 300, 1000)
	spec.Sample = active + probes
	return spec, active, probes
}

// Tenants is scenario 4: many registered end-users, a Zipf load over an
// active subset, the gateway's memory per resident end-user actor, and the
// latency of a request that activates a cold actor from Pebble.
type Tenants struct{}

var _ Scenario = Tenants{}

// Name returns "tenants".
func (Tenants) Name() string { return "tenants" }

// Run seeds (or reuses) the data dir, starts the gateway on it and measures.
func (Tenants) Run(ctx context.Context, env *Env) (report.Scenario, error) {
	start := time.Now()
	spec, active, probes := tenantSeed(env)
	zipfDur := pick(env, 4*time.Second, 10*time.Second)
	s := report.Scenario{
		Name:  "tenants",
		Title: "Tenant scale",
		Description: fmt.Sprintf("%d end-users over %d platforms (each with a budget and %d ledger entries) are written "+
			"straight into a data dir by bench/cmd/benchseed, with the records the actors write. The gateway (billing_durability=batch) starts on it; "+
			"then %d end-users are activated with one chat completion each (64 connections), the process's RSS "+
			"(/proc) and Go heap in use (/metrics) are read before and after, and a Zipf load (s=1) over those "+
			"%d runs for %v. Finally, at one connection, requests that activate a cold end-user (its actor "+
			"loads its record, saved rate windows and open reservations from Pebble and its key misses the auth cache) alternate with requests of a "+
			"resident one; the difference is the activation cost.",
			spec.Users, spec.Platforms, spec.LedgerPerUser, active, active, zipfDur),
		Metrics: map[string]float64{},
	}
	if env.Quick {
		s.Description += " Quick mode: scaled down from 1,000,000 end-users over 1,000 platforms and 100,000 active."
	}
	defer func() { s.DurationSec = sinceSec(start) }()

	seeded, err := env.Seed(ctx, spec)
	if err != nil {
		return s, err
	}
	if len(seeded.Users) < active+probes {
		return s, fmt.Errorf("benchseed wrote %d keys, want %d", len(seeded.Users), active+probes)
	}
	gw, err := env.StartGateway(ctx, GatewayOptions{DataDir: seeded.Dir, ReadyTimeout: 2 * time.Minute})
	if err != nil {
		return s, err
	}
	defer env.Procs.Stop(gw.Proc) // SIGTERM: a clean shutdown, for the recovery scenario
	addr := gw.Proc.Addr
	users := seeded.Users[:active]
	cold := seeded.Users[active : active+probes]

	// Warm up the process (connection pools, the platform actor of user 0).
	warmN := 20
	drive(ctx, driveConfig{Addr: addr, Workers: 4, N: warmN, Build: func(_, i int, req *fasthttp.Request) {
		chatRequest(req, gw.URL, users[i%4].Key)
	}})
	time.Sleep(time.Second)
	rss0, _ := rss(gw.Proc.PID)
	m0, _ := promMetrics(ctx, gw.URL)

	env.logf("  activating %d end-users", active)
	act := drive(ctx, driveConfig{Addr: addr, Workers: 64, N: active, Build: func(_, i int, req *fasthttp.Request) {
		chatRequest(req, gw.URL, users[i].Key)
	}})
	activated := act.count2xx()
	env.logf("  activated %d in %v (%s)", activated, act.Elapsed.Round(time.Millisecond), act.statusSummary())
	time.Sleep(2 * time.Second)
	rss1, _ := rss(gw.Proc.PID)
	m1, _ := promMetrics(ctx, gw.URL)

	// Zipf over the active set.
	cdf := newZipfCDF(active, 1.0)
	zs := make([]*zipf, 64)
	for w := range zs {
		zs[w] = &zipf{cdf: cdf, x: uint64(w)*0x9E3779B97F4A7C15 + 1}
	}
	zr := drive(ctx, driveConfig{Addr: addr, Workers: 64, Until: time.Now().Add(zipfDur), Build: func(w, _ int, req *fasthttp.Request) {
		chatRequest(req, gw.URL, users[zs[w].next()].Key)
	}})
	env.logf("  zipf: %.0f req/s (%s)", zr.rate(), zr.statusSummary())
	rss2, _ := rss(gw.Proc.PID)
	// The live heap is what the last GC found reachable: after the Zipf
	// load (many GCs) it holds the resident actors and no garbage.
	m2, _ := promMetrics(ctx, gw.URL)

	// Cold vs resident at one connection, interleaved.
	coldH, warmH := loadgen.NewHistogram(), loadgen.NewHistogram()
	var coldBad, warmBad int64
	drive(ctx, driveConfig{Addr: addr, Workers: 1, N: 2 * probes, Build: func(_, i int, req *fasthttp.Request) {
		if i%2 == 0 {
			chatRequest(req, gw.URL, cold[i/2].Key)
		} else {
			chatRequest(req, gw.URL, users[0].Key)
		}
	}, Done: func(i, status int, d time.Duration) {
		h, bad := coldH, &coldBad
		if i%2 == 1 {
			h, bad = warmH, &warmBad
		}
		if status != 200 {
			*bad++
			return
		}
		_ = h.RecordValue(max(1, d.Microseconds()))
	}})

	drss := float64(rss1 - rss0)
	dheap := m1["go_memstats_heap_inuse_bytes"] - m0["go_memstats_heap_inuse_bytes"]
	if activated > 0 {
		s.Metrics["bytes_per_actor_rss"] = drss / float64(activated)
		s.Metrics["bytes_per_actor_heap"] = dheap / float64(activated)
		if l0, ok := m0["go_gc_heap_live_bytes"]; ok {
			s.Metrics["bytes_per_actor_live"] = (m2["go_gc_heap_live_bytes"] - l0) / float64(activated)
		}
	}
	s.Metrics["actors_activated"] = float64(activated)
	// The in-process measure: the whole gateway's live heap after a forced
	// GC, per end-user made resident through the edge (no garbage, no
	// load in flight): BenchmarkResidentEndUserHeap in ./bench.
	if lines, err := goBench(ctx, env, "./bench/", "BenchmarkResidentEndUserHeap", "1x"); err != nil {
		env.logf("  BenchmarkResidentEndUserHeap: %v", err)
	} else {
		for _, bl := range lines {
			if v, ok := bl.metrics["live-B/end-user"]; ok {
				s.Metrics["bytes_per_end_user_inproc"] = v
			}
		}
	}
	s.Metrics["rss_before_bytes"], s.Metrics["rss_after_bytes"], s.Metrics["rss_after_zipf_bytes"] = float64(rss0), float64(rss1), float64(rss2)
	s.Metrics["seed_sec"] = seeded.Took.Seconds()
	cd, wd := report.DistFrom(coldH), report.DistFrom(warmH)
	if cd != nil && wd != nil {
		s.Metrics["cold_p50_us"], s.Metrics["cold_p99_us"] = cd.P50, cd.P99
		s.Metrics["warm_p50_us"], s.Metrics["warm_p99_us"] = wd.P50, wd.P99
	}

	s.Tables = append(s.Tables, report.Table{
		Title:   "Data dir",
		Columns: []string{"platforms", "end-users", "ledger entries", "size on disk", "seeding took", "gateway start to /readyz"},
		Rows: [][]string{{fmt.Sprint(spec.Platforms), fmt.Sprint(spec.Users), fmt.Sprint(spec.Users * spec.LedgerPerUser),
			fmtBytes(float64(seeded.Bytes)), seeded.Took.Round(time.Millisecond).String(), gw.Ready.Round(time.Millisecond).String()}},
	}, report.Table{
		Title:   "Memory per resident end-user actor",
		Columns: []string{"actors activated", "RSS before", "RSS after", "RSS delta / actor", "Go heap in use delta / actor", "live Go heap delta / actor (after the Zipf load)", "RSS after the Zipf load", "activation answers"},
		Rows: [][]string{{fmt.Sprint(activated), fmtBytes(float64(rss0)), fmtBytes(float64(rss1)),
			fmtBytes(s.Metrics["bytes_per_actor_rss"]), fmtBytes(s.Metrics["bytes_per_actor_heap"]), fmtBytes(s.Metrics["bytes_per_actor_live"]), fmtBytes(float64(rss2)), act.statusSummary()}},
	}, report.Table{
		Title:   "Latency, µs",
		Columns: []string{"load", "req/s", "p50", "p99", "p99.9", "max", "answers"},
		Rows: [][]string{
			append(append([]string{fmt.Sprintf("activation of %d end-users, 64 conns", active), fmtNum(act.rate())}, distRow(act.OK)...), act.statusSummary()),
			append(append([]string{fmt.Sprintf("Zipf over %d resident end-users, 64 conns", active), fmtNum(zr.rate())}, distRow(zr.OK)...), zr.statusSummary()),
			append(append([]string{"cold end-user (activates from Pebble), 1 conn", "–"}, distRow(coldH)...), fmt.Sprintf("non-200: %d", coldBad)),
			append(append([]string{"resident end-user, 1 conn (interleaved with the cold ones)", "–"}, distRow(warmH)...), fmt.Sprintf("non-200: %d", warmBad)),
		},
	})
	if cd != nil && wd != nil {
		s.Tables[len(s.Tables)-1].Rows = append(s.Tables[len(s.Tables)-1].Rows, []string{"added by activation (cold − resident)", "–",
			fmtNum(cd.P50 - wd.P50), fmtNum(cd.P99 - wd.P99), fmtNum(cd.P999 - wd.P999), "–", ""})
	}
	return s, ctx.Err()
}

// Recovery is scenario 5: how long a gateway takes to come back on the
// tenant scenario's data dir (1,000,000 end-users, 10,000,000 ledger
// entries in the full run), after a clean stop and after SIGKILL under load.
type Recovery struct{}

var _ Scenario = Recovery{}

// Name returns "recovery".
func (Recovery) Name() string { return "recovery" }

// Run restarts the gateway twice on the seeded dir.
func (Recovery) Run(ctx context.Context, env *Env) (report.Scenario, error) {
	start := time.Now()
	spec, active, _ := tenantSeed(env)
	s := report.Scenario{
		Name:  "recovery",
		Title: "Recovery",
		Description: fmt.Sprintf("The gateway restarts on the tenant scenario's data dir (%d end-users over %d platforms, "+
			"%d ledger entries, plus whatever the tenant scenario wrote). *Ready* runs from exec to the first 200 from /readyz "+
			"(polled every 5 ms); *first request* is then one chat completion of an end-user not active before (a cold actor); "+
			"*total* is the two together. The crash row kills the gateway with SIGKILL during a 64-connection load, so its restart "+
			"replays the write-ahead log and voids open reservations.",
			spec.Users, spec.Platforms, spec.Users*spec.LedgerPerUser),
		Metrics: map[string]float64{},
	}
	if env.Quick {
		s.Description += " Quick mode: scaled down from 1,000,000 end-users and 10,000,000 ledger entries."
	}
	defer func() { s.DurationSec = sinceSec(start) }()
	seeded, err := env.Seed(ctx, spec)
	if err != nil {
		return s, err
	}
	users := seeded.Users
	t := report.Table{Title: "Restart", Columns: []string{"restart after", "ready", "first request", "total", "data dir"}}
	restart := func(name string, probe seededUser) (*GatewayProc, time.Duration, error) {
		gw, err := env.StartGateway(ctx, GatewayOptions{DataDir: seeded.Dir, ReadyTimeout: 2 * time.Minute})
		if err != nil {
			return nil, 0, err
		}
		var first time.Duration
		var status int
		drive(ctx, driveConfig{Addr: gw.Proc.Addr, Workers: 1, N: 1, Build: func(_, _ int, req *fasthttp.Request) {
			chatRequest(req, gw.URL, probe.Key)
		}, Done: func(_, st int, d time.Duration) { first, status = d, st }})
		total := gw.Ready + first
		size := fmtBytes(float64(dirSize(seeded.Dir)))
		row := []string{name, gw.Ready.Round(time.Millisecond).String(), first.Round(10 * time.Microsecond).String(), total.Round(time.Millisecond).String(), size}
		if status != 200 {
			row[2] += fmt.Sprintf(" (status %d)", status)
			total = -1
		}
		t.Rows = append(t.Rows, row)
		env.logf("  restart after %s: ready %v, first request %v (status %d)", name, gw.Ready.Round(time.Millisecond), first, status)
		return gw, total, nil
	}

	probe := len(users) - 1
	gw, clean, err := restart("clean stop (SIGTERM)", users[probe])
	if err != nil {
		return s, err
	}
	// Load, then crash.
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan *driveResult, 1)
	go func() { // owned by Run; ends with lctx
		done <- drive(lctx, driveConfig{Addr: gw.Proc.Addr, Workers: 64, Timeout: 5 * time.Second, Build: func(w, i int, req *fasthttp.Request) {
			chatRequest(req, gw.URL, users[i%active].Key)
		}})
	}()
	time.Sleep(pick(env, time.Second, 3*time.Second))
	env.Procs.Kill(gw.Proc)
	cancel()
	lr := <-done
	env.logf("  killed under load after %d requests (%s)", lr.Sent, lr.statusSummary())
	gw2, crash, err := restart("crash (SIGKILL under load)", users[probe-1])
	if err != nil {
		return s, err
	}
	env.Procs.Stop(gw2.Proc)
	s.Tables = append(s.Tables, t)
	s.Metrics["clean_restart_sec"], s.Metrics["crash_restart_sec"] = clean.Seconds(), crash.Seconds()
	return s, ctx.Err()
}
