package bench_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/internal/tracesample"
	"github.com/assistiv/gateway/mockllm"
	"github.com/assistiv/gateway/mockllm/mocktest"
	"github.com/assistiv/gateway/persistence"
)

// BenchmarkEdgeMe measures GET /v1/me through the full edge over real HTTP
// on 127.0.0.1: parse, request id, key checksum + digest, in-memory key
// cache, JSON answer. Run with -cpu 1,2 and compare to BenchmarkEdgeBudget.
func BenchmarkEdgeMe(b *testing.B) {
	g := edgetest.Start(b, edgetest.Options{})
	_, key := g.CreatePlatform(b, "bench")
	run(b, g.URL+"/v1/me", key)
}

// BenchmarkEdgeBudget measures GET .../budget: auth plus a round trip
// through the end-user actor (protoactor mailbox and future) and back.
func BenchmarkEdgeBudget(b *testing.B) {
	g := edgetest.Start(b, edgetest.Options{})
	pid, pk := g.CreatePlatform(b, "bench")
	uid, _ := g.CreateEndUser(b, pid, pk, "u")
	if r := g.Do(b, "POST", "/v1/platforms/"+pid+"/end-users/"+uid+"/budget", pk, map[string]any{"amount_usd": 5}); r.Status != 201 {
		b.Fatalf("budget: %d %s", r.Status, r.Body)
	}
	run(b, g.URL+"/v1/platforms/"+pid+"/end-users/"+uid+"/budget", pk)
}

func run(b *testing.B, url, key string) {
	b.Helper()
	hammer(b, func(req *fasthttp.Request) {
		req.SetRequestURI(url)
		req.Header.Set("Authorization", "Bearer "+key)
	}, nil)
}

// hammer sends b.N requests over 64 connections (32 goroutines per CPU on
// 2 cores: throughput, not round-trip latency), reports allocations and
// process CPU per op, and fails the benchmark unless every answer is 200.
// prepare builds each connection's request once; each, when set, adjusts
// it before every send (i counts the sends of all connections).
func hammer(b *testing.B, prepare func(*fasthttp.Request), each func(req *fasthttp.Request, i int)) {
	b.Helper()
	c := &fasthttp.Client{MaxConnsPerHost: 512}
	var failures, next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	cpu0 := processCPU()
	b.RunParallel(func(p *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		prepare(req)
		for p.Next() {
			if each != nil {
				each(req, int(next.Add(1)))
			}
			if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				if failures.Add(1) == 1 {
					b.Logf("first failure: %v %d %s", err, resp.StatusCode(), resp.Body())
				}
			}
		}
	})
	b.StopTimer()
	reportCPU(b, cpu0)
	if n := failures.Load(); n > 0 {
		b.Fatalf("%d requests failed", n)
	}
	c.CloseIdleConnections()
}

// processCPU is the process's user+system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process CPU time (user+system) per op since
// start as cpu-µs/op. The figure covers everything in the process: the
// gateway, the load-generating client and the in-process mock upstream.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(processCPU()-start)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
}

// BenchmarkEdgeChat measures POST /v1/chat/completions through the full
// path in one process: auth, admission, the upstream call to an in-process
// mockllm over 127.0.0.1, settlement, the call log. Profile it with
// -cpuprofile to see the gateway's share next to the client's and mock's.
//
//	go test ./bench -run '^$' -bench 'BenchmarkEdgeChat' -benchtime 3s
func BenchmarkEdgeChat(b *testing.B) {
	for _, mode := range []string{"batch", "sync"} {
		b.Run(mode, func(b *testing.B) { benchChat(b, mode, "gpt-4o-mini", 1, 64) })
	}
}

// BenchmarkEdgeChatAnthropic is BenchmarkEdgeChat on a translated provider.
func BenchmarkEdgeChatAnthropic(b *testing.B) { benchChat(b, "batch", "claude-haiku-4-5", 1, 64) }

// BenchmarkEdgeChatSpread is the platform-actor bottleneck case: 10,000
// end-users of one platform against 10,000 end-users spread over 1,000
// platforms, each request from the next user in turn. With wallet leases
// no call messages the platform actor, so the two should be within noise
// of each other.
//
//	go test ./bench -run '^$' -bench 'BenchmarkEdgeChatSpread' -benchtime 20000x
func BenchmarkEdgeChatSpread(b *testing.B) {
	b.Run("platforms=1/users=10000", func(b *testing.B) { benchChat(b, "batch", "gpt-4o-mini", 1, 10_000) })
	b.Run("platforms=1000/users=10", func(b *testing.B) { benchChat(b, "batch", "gpt-4o-mini", 1000, 10) })
}

// BenchmarkEdgeChatTracing is BenchmarkEdgeChat (batch) with tracing off,
// on with 1 % of requests sampled (the budget: under 5 % more CPU
// per request than off) and on with every request sampled, exporting over
// OTLP/HTTP to an in-process collector that decodes nothing. Compare ns/op
// and allocs/op of the three.
//
//	go test ./bench -run '^$' -bench 'BenchmarkEdgeChatTracing' -benchtime 20000x -count 5
func BenchmarkEdgeChatTracing(b *testing.B) {
	b.Run("off", func(b *testing.B) { benchChatTraced(b, "batch", "gpt-4o-mini", 1, 64, nil, nil) })
	for _, ratio := range []float64{0.01, 1} {
		name := strconv.FormatFloat(ratio*100, 'f', -1, 64) + "%"
		// The gateway's way: the edge decides before any span exists.
		b.Run("sampled="+name, func(b *testing.B) {
			smp := tracesample.New(ratio, sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)))
			tp := newBenchTracer(b, smp)
			benchChatTraced(b, "batch", "gpt-4o-mini", 1, 64, tp.Tracer("bench"), smp)
		})
	}
	// For comparison: the SDK's own sampler decides inside Tracer.Start
	// for every request (what the gateway did before the edge's head sampler).
	b.Run("sdk-sampled=1%", func(b *testing.B) {
		tp := newBenchTracer(b, sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01)))
		benchChatTraced(b, "batch", "gpt-4o-mini", 1, 64, tp.Tracer("bench"), nil)
	})
}

// newBenchTracer exports batches over OTLP/HTTP to a loopback sink.
func newBenchTracer(b *testing.B, sampler sdktrace.Sampler) *sdktrace.TracerProvider {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	sink := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	})}
	go func() { _ = sink.Serve(ln) }()
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL("http://"+ln.Addr().String()+"/v1/traces"))
	if err != nil {
		b.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithSampler(sampler))
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		sink.Close()
	})
	return tp
}

// fundedPlatform creates a platform whose providers point at the mock
// upstream, with a $1M wallet.
func fundedPlatform(b *testing.B, g *edgetest.Gateway, name, mockURL string, providers ...string) (pid, key string) {
	b.Helper()
	pid, key = g.CreatePlatform(b, name)
	for _, prov := range providers {
		if r := g.Do(b, "PUT", "/admin/v1/platforms/"+pid+"/llm-providers/"+prov, edgetest.AdminKey,
			map[string]any{"api_key": "sk-bench-0123456789", "base_url": mockURL, "enabled": true}); r.Status != 200 {
			b.Fatalf("provider: %d %s", r.Status, r.Body)
		}
	}
	if r := g.Do(b, "POST", "/admin/v1/platforms/"+pid+"/wallet/topup", edgetest.AdminKey, map[string]any{"amount_usd": 1_000_000}); r.Status != 200 {
		b.Fatalf("wallet: %d %s", r.Status, r.Body)
	}
	return pid, key
}

func benchChat(b *testing.B, mode, model string, platforms, usersPer int) {
	benchChatTraced(b, mode, model, platforms, usersPer, nil, nil)
}

func benchChatTraced(b *testing.B, mode, model string, platforms, usersPer int, tracer trace.Tracer, smp *tracesample.Sampler) {
	mcfg := mockllm.DefaultConfig()
	mcfg.Tokens = 20
	mockURL, _ := mocktest.Start(b, mcfg)
	g := edgetest.Start(b, edgetest.Options{BillingDurability: mode, Log: slog.New(slog.DiscardHandler), Tracer: tracer, TraceSampler: smp})
	var keys []string
	for p := 0; p < platforms; p++ {
		pid, pk := fundedPlatform(b, g, "bench"+strconv.Itoa(p), mockURL, "openai", "anthropic")
		for i := 0; i < usersPer; i++ {
			uid, uk := g.CreateEndUser(b, pid, pk, "u"+strconv.Itoa(i))
			if usersPer <= 64 { // budgets for the small runs; the spread runs bill the wallet only
				if r := g.Do(b, "POST", "/v1/platforms/"+pid+"/end-users/"+uid+"/budget", pk, map[string]any{"amount_usd": 1_000_000}); r.Status != 201 {
					b.Fatalf("budget: %d %s", r.Status, r.Body)
				}
			}
			keys = append(keys, "Bearer "+uk)
		}
	}
	before := g.Store.Stats()
	hammerChat(b, g, []byte(`{"model":"`+model+`","messages":[{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":64}`), keys)
	reportStore(b, before, g.Store.Stats())
}

// reportStore reports the money store's fsyncs and Pebble batches per op
// (the group commit's sharing: batch mode's fsyncs are its timer's).
func reportStore(b *testing.B, before, after persistence.Stats) {
	n := float64(b.N)
	b.ReportMetric(float64(after.Commits-before.Commits)/n, "fsyncs/op")
	b.ReportMetric(float64(after.Batches-before.Batches)/n, "batches/op")
}

// hammerChat posts body to /v1/chat/completions under hammer, each
// request with the next end-user's key.
func hammerChat(b *testing.B, g *edgetest.Gateway, body []byte, keys []string) {
	hammer(b, func(req *fasthttp.Request) {
		req.SetRequestURI(g.URL + "/v1/chat/completions")
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.SetBody(body)
	}, func(req *fasthttp.Request, i int) { req.Header.Set("Authorization", keys[i%len(keys)]) })
}

// BenchmarkEdgeStream measures streamed chat completions through the full
// edge over real HTTP on 127.0.0.1: 64 streams at a time, each 200 chunks
// paced 1 ms apart by the mock upstream (so each chunk is read and relayed
// on its own, as at the bench's 1,000 streams), read whole by the client.
// cpu-µs/op is per stream (÷ 202 for an event).
//
//	go test ./bench -run '^$' -bench BenchmarkEdgeStream -benchtime 2000x
func BenchmarkEdgeStream(b *testing.B) {
	mcfg := mockllm.DefaultConfig()
	mcfg.Tokens, mcfg.TokensPerSecond = 200, 1000
	mockURL, _ := mocktest.Start(b, mcfg)
	g := edgetest.Start(b, edgetest.Options{BillingDurability: "batch", Log: slog.New(slog.DiscardHandler)})
	pid, pk := fundedPlatform(b, g, "bench", mockURL, "openai")
	var keys []string
	for i := 0; i < 64; i++ {
		_, uk := g.CreateEndUser(b, pid, pk, "u"+strconv.Itoa(i))
		keys = append(keys, "Bearer "+uk)
	}
	hammerChat(b, g, []byte(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Say hello."}]}`), keys)
}

// BenchmarkEdgeDebit measures POST .../budget/debit through the full edge
// over real HTTP on 127.0.0.1 (64 connections, each debit its own
// end-user's, answered once its ledger entry is synced): the management
// API's money path, next to BenchmarkDurableDebits' in-process figure.
//
//	go test ./bench -run '^$' -bench BenchmarkEdgeDebit -benchtime 20000x
func BenchmarkEdgeDebit(b *testing.B) {
	g := edgetest.Start(b, edgetest.Options{BillingDurability: "batch", Log: slog.New(slog.DiscardHandler)})
	pid, pk := g.CreatePlatform(b, "bench")
	const users = 64
	urls := make([]string, users)
	for i := range urls {
		uid, _ := g.CreateEndUser(b, pid, pk, "u"+strconv.Itoa(i))
		base := "/v1/platforms/" + pid + "/end-users/" + uid + "/budget"
		if r := g.Do(b, "POST", base, pk, map[string]any{"amount_usd": 1_000_000}); r.Status != 201 {
			b.Fatalf("budget: %d %s", r.Status, r.Body)
		}
		urls[i] = g.URL + base + "/debit"
	}
	body := []byte(`{"amount_usd":0.000001}`)
	hammer(b, func(req *fasthttp.Request) {
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.Header.Set("Authorization", "Bearer "+pk)
		req.SetBody(body)
	}, func(req *fasthttp.Request, i int) { req.SetRequestURI(urls[i%users]) })
}
