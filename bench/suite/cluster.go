package suite

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/valyala/fasthttp"

	"github.com/assistiv/gateway/bench/proc"
	"github.com/assistiv/gateway/bench/report"
)

// Cluster is the forwarding scenario of the cluster issue: the same chat
// load through one gateway node, then through three clustered nodes with
// the load spread evenly over their edges, so about two requests in three
// land on a node that does not own the end-user and travel once to the
// owner and back. All gateway processes share the gateway's CPUs, so the
// figures compare the work per request on the same hardware (the cost of
// forwarding), not the throughput three machines would give.
type Cluster struct{}

var _ Scenario = Cluster{}

// Name returns "cluster".
func (Cluster) Name() string { return "cluster" }

// clusterKey and masterKey are this scenario's own secrets (32 bytes each).
var (
	clusterKey = base64.StdEncoding.EncodeToString([]byte("bench-cluster-key-32-bytes-long!"))
	masterKey  = base64.StdEncoding.EncodeToString([]byte("bench-master-key-32-bytes-long!!"))
)

// Run measures one node, then three.
func (Cluster) Run(ctx context.Context, env *Env) (report.Scenario, error) {
	start := time.Now()
	users, dur := 64, pick(env, 4*time.Second, 8*time.Second)
	s := report.Scenario{
		Name:  "cluster",
		Title: "One node vs three (forwarding cost)",
		Description: fmt.Sprintf("%d end-users of one platform (budgets, funded wallet, openai provider at the upstream) send chat completions "+
			"in a 64-connection closed loop for %v, each request from the next end-user: first to one gateway node (single-node mode), then "+
			"to three clustered nodes (memberlist + protoactor remote over mutual TLS, Postgres snapshots every second), the connections "+
			"split evenly over the three edges, so about 2 requests in 3 reach a node that does not own their end-user and are forwarded "+
			"to the owner. Every gateway process shares the gateway's CPUs: the table compares the work per request, not what three "+
			"machines would serve. Needs Postgres (ASSISTIV_TEST_POSTGRES_URL or the local test database).", users, dur),
		Metrics: map[string]float64{},
	}
	defer func() { s.DurationSec = sinceSec(start) }()
	pg := os.Getenv("ASSISTIV_TEST_POSTGRES_URL")
	if pg == "" {
		pg = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	conn, err := pgx.Connect(pctx, pg)
	cancel()
	if err != nil {
		s.Description += fmt.Sprintf(" Not run: Postgres unreachable (%v).", err)
		return s, nil
	}
	conn.Close(ctx)

	t := report.Table{
		Title:   "Saturation, 64 connections",
		Columns: []string{"layout", "req/s", "req/s per node", "p50", "p99", "p99.9", "max", "gateway CPU µs/req (all nodes)", "answers"},
	}
	row := func(name, metric string, nodes []*GatewayProc, keys []string) error {
		var cpu0 time.Duration
		for _, n := range nodes {
			d, _ := proc.CPUTime(n.Proc.PID)
			cpu0 += d
		}
		var next atomic.Int64
		results := make([]*driveResult, len(nodes))
		var wg sync.WaitGroup
		until := time.Now().Add(dur)
		for i, n := range nodes {
			wg.Add(1)
			go func() { // joined below
				defer wg.Done()
				results[i] = drive(ctx, driveConfig{Addr: n.Proc.Addr, Workers: 64 / len(nodes), Until: until, Build: func(_, _ int, req *fasthttp.Request) {
					chatRequest(req, n.URL, keys[int(next.Add(1))%len(keys)])
				}})
			}()
		}
		wg.Wait()
		var cpu1 time.Duration
		for _, n := range nodes {
			d, _ := proc.CPUTime(n.Proc.PID)
			cpu1 += d
		}
		all := results[0]
		for _, r := range results[1:] {
			all.merge(r)
		}
		ok := all.count2xx()
		rps := all.rate()
		cpuPer := 0.0
		if ok > 0 {
			cpuPer = float64((cpu1 - cpu0).Microseconds()) / float64(ok)
		}
		env.logf("  %s: %.0f req/s, %.1f µs CPU/req (%s)", name, rps, cpuPer, all.statusSummary())
		s.Metrics[metric+"_rps"], s.Metrics[metric+"_cpu_us"] = rps, cpuPer
		t.Rows = append(t.Rows, append(append([]string{name, fmtNum(rps), fmtNum(rps / float64(len(nodes)))}, distRow(all.OK)...), fmtNum(cpuPer), all.statusSummary()))
		return nil
	}

	// One node.
	one, err := env.StartGateway(ctx, GatewayOptions{})
	if err != nil {
		return s, err
	}
	keys, err := clusterUsers(ctx, one, env.Upstream.URL, users)
	if err == nil {
		err = row("one node", "one_node", []*GatewayProc{one}, keys)
	}
	env.Procs.Stop(one.Proc)
	if err != nil {
		return s, err
	}

	// Three nodes.
	run := strconv.FormatInt(time.Now().UnixNano(), 36) // snapshot watermarks of this run's nodes only
	var nodes []*GatewayProc
	defer func() {
		for _, n := range nodes {
			env.Procs.Stop(n.Proc)
		}
	}()
	var seed string
	for i := 1; i <= 3; i++ {
		gossip, err := proc.FreeAddr()
		if err != nil {
			return s, err
		}
		remote, err := proc.FreeAddr()
		if err != nil {
			return s, err
		}
		vars := []string{
			"ASSISTIV_NODE_NAME=bench-" + run + "-" + strconv.Itoa(i),
			"ASSISTIV_CLUSTER_BIND=" + gossip, "ASSISTIV_CLUSTER_REMOTE=" + remote,
			"ASSISTIV_CLUSTER_KEY=" + clusterKey, "ASSISTIV_MASTER_KEY=" + masterKey,
			"ASSISTIV_POSTGRES_URL=" + pg,
		}
		if seed != "" {
			vars = append(vars, "ASSISTIV_CLUSTER_JOIN="+seed)
		} else {
			seed = gossip
		}
		n, err := env.StartGateway(ctx, GatewayOptions{Env: vars, ReadyTimeout: time.Minute})
		if err != nil {
			return s, fmt.Errorf("cluster node %d: %w", i, err)
		}
		nodes = append(nodes, n)
	}
	time.Sleep(2 * time.Second) // gossip converges on three members
	keys, err = clusterUsers(ctx, nodes[0], env.Upstream.URL, users)
	if err != nil {
		return s, err
	}
	if err := row("three nodes, requests spread over all edges", "three_nodes", nodes, keys); err != nil {
		return s, err
	}
	if a, b := s.Metrics["one_node_cpu_us"], s.Metrics["three_nodes_cpu_us"]; a > 0 && b > 0 {
		// About 2/3 of the requests were forwarded.
		s.Metrics["forward_cost_us"] = (b - a) * 3 / 2
		t.Rows = append(t.Rows, []string{"forwarding cost per forwarded request (CPU, all nodes)", "–", "–", "–", "–", "–", "–", fmtNum(s.Metrics["forward_cost_us"]), "(three − one) × 3/2"})
	}
	s.Tables = append(s.Tables, t)
	return s, ctx.Err()
}

// clusterUsers creates a platform and n end-users with budgets through g
// and returns their keys.
func clusterUsers(ctx context.Context, g *GatewayProc, upstream string, n int) ([]string, error) {
	pid, pkey, err := g.CreatePlatform(ctx, "bench-cluster", upstream)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, n)
	for i := 0; i < n; i++ {
		var eu struct {
			ID     string `json:"id"`
			APIKey struct {
				RawKey string `json:"raw_key"`
			} `json:"api_key"`
		}
		if err := g.Do(ctx, "POST", "/v1/platforms/"+pid+"/end-users", pkey, map[string]any{"external_id": "bench-" + strconv.Itoa(i)}, &eu); err != nil {
			return nil, err
		}
		if err := g.Do(ctx, "POST", "/v1/platforms/"+pid+"/end-users/"+eu.ID+"/budget", pkey, map[string]any{"amount_usd": 1_000_000, "period": "monthly"}, nil); err != nil {
			return nil, err
		}
		keys = append(keys, eu.APIKey.RawKey)
	}
	return keys, nil
}
