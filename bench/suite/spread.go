package suite

import (
	"context"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/assistiv/gateway/bench/proc"
	"github.com/assistiv/gateway/bench/report"
)

// Spread is the platform-actor bottleneck case: the same number of active
// end-users, all of one platform, then spread over many platforms, each
// at saturation. Every call bills its platform's wallet; with node-local
// wallet leases no call messages the platform actor, so the two layouts
// should run alike. Before leases, one platform's users all went through
// that platform's one mailbox, twice per call.
type Spread struct{}

var _ Scenario = Spread{}

// Name returns "spread".
func (Spread) Name() string { return "spread" }

// Run seeds the two data dirs, and for each starts a gateway, activates
// every end-user, then drives a closed loop that sends each request as the
// next end-user in turn.
func (Spread) Run(ctx context.Context, env *Env) (report.Scenario, error) {
	start := time.Now()
	users, many := pick(env, 2_000, 10_000), pick(env, 200, 1_000)
	dur := pick(env, 4*time.Second, 8*time.Second)
	s := report.Scenario{
		Name:  "spread",
		Title: "End-users on one platform vs spread over many",
		Description: fmt.Sprintf("%d end-users (each with a budget; every platform with a funded wallet and its openai provider at the upstream) "+
			"are written by bench/cmd/benchseed twice: all on one platform, then spread evenly over %d platforms. For each layout a gateway "+
			"(billing_durability=batch) starts on the data dir, every end-user makes one call (activation), then a 64-connection closed loop "+
			"runs for %v, each request from the next end-user in turn, so every call debits a budget and its platform's wallet. "+
			"The target: throughput does not depend on the layout by more than 10 %%.", users, many, dur),
		Metrics: map[string]float64{"users": float64(users), "platforms": float64(many)},
	}
	if env.Quick {
		s.Description += " Quick mode: scaled down from 10,000 end-users and 1,000 platforms."
	}
	defer func() { s.DurationSec = sinceSec(start) }()
	t := report.Table{
		Title:   "Saturation, 64 connections",
		Columns: []string{"layout", "req/s", "p50", "p99", "p99.9", "max", "gateway CPU µs/req", "answers"},
	}
	for _, layout := range []struct {
		name, metric string
		platforms    int
	}{
		{fmt.Sprintf("%d end-users of one platform", users), "one_platform", 1},
		{fmt.Sprintf("%d end-users over %d platforms", users, many), "many_platforms", many},
	} {
		seeded, err := env.Seed(ctx, SeedSpec{Platforms: layout.platforms, Users: users, LedgerPerUser: 1, Sample: users, Upstream: env.Upstream.URL})
		if err != nil {
			return s, err
		}
		if len(seeded.Users) < users {
			return s, fmt.Errorf("benchseed wrote %d keys, want %d", len(seeded.Users), users)
		}
		gw, err := env.StartGateway(ctx, GatewayOptions{DataDir: seeded.Dir, ReadyTimeout: time.Minute})
		if err != nil {
			return s, err
		}
		keys := seeded.Users
		act := drive(ctx, driveConfig{Addr: gw.Proc.Addr, Workers: 64, N: users, Build: func(_, i int, req *fasthttp.Request) {
			chatRequest(req, gw.URL, keys[i].Key)
		}})
		env.logf("  %s: activated %d (%s)", layout.name, act.count2xx(), act.statusSummary())
		cpu0, _ := proc.CPUTime(gw.Proc.PID)
		res := drive(ctx, driveConfig{Addr: gw.Proc.Addr, Workers: 64, Until: time.Now().Add(dur), Build: func(_, i int, req *fasthttp.Request) {
			chatRequest(req, gw.URL, keys[i%users].Key)
		}})
		cpu1, _ := proc.CPUTime(gw.Proc.PID)
		env.Procs.Stop(gw.Proc)
		ok := res.count2xx()
		rps := res.rate()
		cpuPer := 0.0
		if ok > 0 {
			cpuPer = float64((cpu1 - cpu0).Microseconds()) / float64(ok)
		}
		env.logf("  %s: %.0f req/s, %.1f µs CPU/req (%s)", layout.name, rps, cpuPer, res.statusSummary())
		s.Metrics[layout.metric+"_rps"] = rps
		s.Metrics[layout.metric+"_cpu_us"] = cpuPer
		t.Rows = append(t.Rows, append(append([]string{layout.name, fmtNum(rps)}, distRow(res.OK)...), fmtNum(cpuPer), res.statusSummary()))
		if ctx.Err() != nil {
			break
		}
	}
	s.Tables = append(s.Tables, t)
	return s, ctx.Err()
}
