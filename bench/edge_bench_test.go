package bench_test

import (
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/assistiv/gateway/edge/edgetest"
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
	c := &fasthttp.Client{MaxConnsPerHost: 512}
	var failures atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32) // 64 connections in flight on 2 cores: throughput, not round-trip latency
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(url)
		req.Header.Set("Authorization", "Bearer "+key)
		for pb.Next() {
			if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				failures.Add(1)
			}
		}
	})
	b.StopTimer()
	if n := failures.Load(); n > 0 {
		b.Fatalf("%d requests failed", n)
	}
	c.CloseIdleConnections()
}
