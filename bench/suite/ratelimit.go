package suite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/assistiv/gateway/bench/report"
)

// RateLimit is scenario 6: rate-limit exactness under load. Every end-user
// has requests_per_minute = Limit (the platforms' default); each sends
// Attempts × Limit chat completions in a burst whose requests run
// concurrently on different connections, while thousands of other
// end-users do the same. Each end-user's burst lasts far less than the
// one-minute window, so at most Limit may be admitted (200) per end-user;
// the rest must be refused with 429.
type RateLimit struct {
	// Limit is requests_per_minute. Default 5.
	Limit int64
	// Attempts is how many times Limit each end-user tries. Default 2.
	Attempts int
}

var _ Scenario = (*RateLimit)(nil)

// Name returns "ratelimit".
func (*RateLimit) Name() string { return "ratelimit" }

// Run seeds the users, bursts and counts.
func (rl *RateLimit) Run(ctx context.Context, env *Env) (report.Scenario, error) {
	start := time.Now()
	limit, attempts := rl.Limit, rl.Attempts
	if limit == 0 {
		limit = 5
	}
	if attempts == 0 {
		attempts = 2
	}
	users, platforms, workers := pick(env, 1000, 10_000), 10, 256
	per := int(limit) * attempts
	s := report.Scenario{
		Name:  "ratelimit",
		Title: "Rate-limit exactness under load",
		Description: fmt.Sprintf("%d end-users over %d platforms, requests_per_minute = %d (platform default). Every end-user sends %d chat completions "+
			"(%d× its limit) as one burst: its requests are consecutive in the work queue, so %d connections run them concurrently; "+
			"bursts of different end-users follow in random order. Each end-user's burst ends within its one-minute window "+
			"(checked below), so admitted/limit must be at most 1.0 for every end-user.",
			users, platforms, limit, per, attempts, workers),
		Metrics: map[string]float64{},
	}
	if env.Quick {
		s.Description += " Quick mode: 1,000 end-users instead of 10,000."
	}
	defer func() { s.DurationSec = sinceSec(start) }()
	seeded, err := env.Seed(ctx, SeedSpec{Platforms: platforms, Users: users, LedgerPerUser: 1, Sample: users, RPM: limit, Upstream: env.Upstream.URL})
	if err != nil {
		return s, err
	}
	gw, err := env.StartGateway(ctx, GatewayOptions{DataDir: seeded.Dir, ReadyTimeout: time.Minute})
	if err != nil {
		return s, err
	}
	defer env.Procs.Stop(gw.Proc)
	us := seeded.Users
	order := rand.New(rand.NewPCG(1, 2)).Perm(len(us))

	type tally struct {
		admitted, refused, other int
		first, last              time.Time
	}
	tallies := make([]tally, len(us))
	var mu sync.Mutex // guards tallies
	r := drive(ctx, driveConfig{Addr: gw.Proc.Addr, Workers: workers, N: len(us) * per,
		Build: func(_, i int, req *fasthttp.Request) {
			chatRequest(req, gw.URL, us[order[i/per]].Key)
		},
		Done: func(i, status int, _ time.Duration) {
			now := time.Now()
			mu.Lock()
			t := &tallies[order[i/per]]
			switch status {
			case 200:
				t.admitted++
			case 429:
				t.refused++
			default:
				t.other++
			}
			if t.first.IsZero() {
				t.first = now
			}
			t.last = now
			mu.Unlock()
		}})
	var maxAdm, minAdm, over, other, refused, admitted int
	var maxSpan time.Duration
	minAdm = per
	hist := map[int]int{}
	for _, t := range tallies {
		maxAdm, minAdm = max(maxAdm, t.admitted), min(minAdm, t.admitted)
		if t.admitted > int(limit) {
			over++
		}
		hist[t.admitted]++
		other += t.other
		refused += t.refused
		admitted += t.admitted
		maxSpan = max(maxSpan, t.last.Sub(t.first))
	}
	ratio := float64(maxAdm) / float64(limit)
	s.Metrics["max_admitted_ratio"] = ratio
	s.Metrics["min_admitted_ratio"] = float64(minAdm) / float64(limit)
	s.Metrics["users_over_limit"] = float64(over)
	s.Metrics["max_burst_span_sec"] = maxSpan.Seconds()
	s.Metrics["other_answers"] = float64(other)
	env.logf("  rate limit: max admitted/limit %.2f, min %.2f, over %d, answers %s", ratio, float64(minAdm)/float64(limit), over, r.statusSummary())
	s.Tables = append(s.Tables, report.Table{
		Title: "Admitted per end-user",
		Columns: []string{"end-users", "limit/min", "requests", "200", "429", "other", "max admitted / limit", "min admitted / limit",
			"end-users over the limit", "longest burst", "req/s"},
		Rows: [][]string{{fmt.Sprint(users), fmt.Sprint(limit), fmt.Sprint(r.Sent), fmt.Sprint(admitted), fmt.Sprint(refused),
			fmt.Sprint(other), fmt.Sprintf("%.2f", ratio), fmt.Sprintf("%.2f", float64(minAdm)/float64(limit)), fmt.Sprint(over),
			maxSpan.Round(time.Millisecond).String(), fmtNum(float64(r.Sent) / r.Elapsed.Seconds())}},
	})
	var ks []int
	for k := range hist {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	ht := report.Table{Title: "Distribution of admitted requests per end-user", Columns: []string{"admitted", "end-users"}}
	for _, k := range ks {
		ht.Rows = append(ht.Rows, []string{fmt.Sprint(k), fmt.Sprint(hist[k])})
	}
	s.Tables = append(s.Tables, ht)
	if maxSpan >= time.Minute {
		return s, fmt.Errorf("a burst took %v, longer than the rate window: the count is not a per-window count", maxSpan)
	}
	return s, ctx.Err()
}
