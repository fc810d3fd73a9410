package bench_test

import (
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/mockllm"
	"github.com/assistiv/gateway/mockllm/mocktest"
)

// BenchmarkResidentEndUserHeap measures what the whole gateway holds per
// end-user made resident by one chat completion through the edge: live Go
// heap after a GC, before and after activating 2,000 end-users over 100
// platforms (each with its own key), as the tenant scenario spreads them,
// on a gateway restarted after they were created (no key cached). With HEAP_PROFILE_DIR set it writes
// heap profiles before and after (go tool pprof -base before.pb.gz
// after.pb.gz) to show what the difference is made of.
//
//	go test ./bench -run '^$' -bench BenchmarkResidentEndUserHeap -benchtime 1x
func BenchmarkResidentEndUserHeap(b *testing.B) {
	const users, platforms = 2000, 100
	mcfg := mockllm.DefaultConfig()
	mcfg.Tokens = 5
	mockURL, _ := mocktest.Start(b, mcfg)
	g := edgetest.Start(b, edgetest.Options{BillingDurability: "batch", Log: slog.New(slog.DiscardHandler)})
	keys := make([]string, users)
	per := users / platforms
	for p := 0; p < platforms; p++ {
		pid, pk := fundedPlatform(b, g, "heap"+strconv.Itoa(p), mockURL, "openai")
		for i := 0; i < per; i++ {
			_, uk := g.CreateEndUser(b, pid, pk, "u"+strconv.Itoa(i))
			keys[p*per+i] = "Bearer " + uk
		}
	}
	// Start again on the same data dir: no key is cached, no actor
	// resident, as after a restart of a node with many end-users.
	g.Close()
	g = edgetest.Start(b, edgetest.Options{Dir: g.Dir, BillingDurability: "batch", Log: slog.New(slog.DiscardHandler)})
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":8}`)
	c := &fasthttp.Client{}
	chat := func(key string) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(g.URL + "/v1/chat/completions")
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.Header.Set("Authorization", key)
		req.SetBody(body)
		if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			b.Fatalf("chat: %v %d %s", err, resp.StatusCode(), resp.Body())
		}
	}
	// Warm every pool with a few calls of one user, then measure.
	for i := 0; i < 50; i++ {
		chat(keys[0])
	}
	dir := os.Getenv("HEAP_PROFILE_DIR")
	live := func(name string) uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if dir != "" {
			f, err := os.Create(dir + "/" + name + ".pb.gz")
			if err == nil {
				_ = pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
		}
		return ms.HeapAlloc
	}
	before := live("before")
	for _, k := range keys[1:] {
		chat(k)
	}
	after := live("after")
	b.ReportMetric(float64(int64(after)-int64(before))/float64(users-1), "live-B/end-user")
}
