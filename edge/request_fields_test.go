package edge_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assistiv/gateway/edge"
	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/mockllm"
	"github.com/assistiv/gateway/mockllm/mocktest"
)

// Request fields the gateway does not price are refused with a 400 that
// names them, before any upstream request: a client cannot buy at the
// provider what the gateway would not bill (service_tier priority), nor
// make the provider keep the platform's data (store: true). The fields it
// forwards at catalog prices pass.
func TestUnpricedRequestFieldsAreRefused(t *testing.T) {
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 50)
	base := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],`
	for _, c := range []struct {
		extra string
		ok    bool
		names string
	}{
		{`"service_tier":"priority"`, false, "service_tier"},
		{`"service_tier":"flex"`, false, "service_tier"},
		{`"store":true`, false, "store"},
		{`"modalities":["text","audio"],"audio":{"voice":"alloy","format":"wav"}`, false, "audio"},
		{`"web_search_options":{}`, false, "web_search_options"},
		{`"functions":[{"name":"f"}]`, false, "functions"},
		{`"zz_unknown":1`, false, "zz_unknown"},
		{`"service_tier":"auto"`, true, ""},
		{`"service_tier":"default","store":false,"logprobs":true,"top_logprobs":2,"metadata":{"a":"b"}`, true, ""},
	} {
		before := e.mock.Requests()
		r := e.g.Do(t, "POST", "/v1/chat/completions", e.uk, jsonRaw(base+c.extra+`}`))
		if c.ok {
			if r.Status != 200 {
				t.Errorf("%s: %d %s, want 200", c.extra, r.Status, r.Body)
			}
			continue
		}
		if r.Status != 400 || !strings.Contains(string(r.Body), c.names) {
			t.Errorf("%s: %d %s, want a 400 naming %s", c.extra, r.Status, r.Body, c.names)
		}
		if e.mock.Requests() != before {
			t.Errorf("%s: the refused request reached the upstream", c.extra)
		}
	}
}

// A model of a provider the platform has not enabled is a 400
// provider_not_enabled, not a 500.
func TestModelOfADisabledProviderIs400(t *testing.T) {
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 50)
	if r := e.g.Do(t, "PUT", "/admin/v1/platforms/"+e.pid+"/llm-providers/google", edgetest.AdminKey, map[string]any{"enabled": false}); r.Status != 200 {
		t.Fatalf("disable google: %d %s", r.Status, r.Body)
	}
	r := e.g.Do(t, "POST", "/v1/chat/completions", e.uk, jsonRaw(`{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}]}`))
	if r.Status != 400 || r.ErrorCode() != "provider_not_enabled" {
		t.Fatalf("disabled provider: %d %s, want 400 provider_not_enabled", r.Status, r.Body)
	}
}

// One platform cannot take every upstream connection: with a share of 2
// calls in flight per platform and provider, a third concurrent call of
// the same platform answers 429 upstream_capacity_exceeded before any
// reservation or upstream request, while another platform is served.
func TestPlatformShareOfTheUpstreamPool(t *testing.T) {
	mcfg := mockllm.DefaultConfig()
	mcfg.Latency = 1500 * time.Millisecond // the first two are still in flight when the others arrive
	mockURL, mock := mocktest.Start(t, mcfg)
	g := edgetest.Start(t, edgetest.Options{EdgeConfig: func(c *edge.Config) { c.UpstreamPerPlatform = 2 }})
	type tenant struct{ uk string }
	newTenant := func(name string) tenant {
		pid, pk := g.CreatePlatform(t, name)
		if r := g.Do(t, "PUT", "/admin/v1/platforms/"+pid+"/llm-providers/openai", edgetest.AdminKey,
			map[string]any{"api_key": "sk-share-0123456789", "base_url": mockURL, "enabled": true}); r.Status != 200 {
			t.Fatalf("provider: %d %s", r.Status, r.Body)
		}
		if r := g.Do(t, "POST", "/admin/v1/platforms/"+pid+"/wallet/topup", edgetest.AdminKey, map[string]any{"amount_usd": 10}); r.Status != 200 {
			t.Fatalf("wallet: %d %s", r.Status, r.Body)
		}
		_, uk := g.CreateEndUser(t, pid, pk, "u")
		return tenant{uk}
	}
	noisy, quiet := newTenant("noisy"), newTenant("quiet")
	body := jsonRaw(`{"model":"gpt-4o-mini","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
	statuses := make(chan int, 5)
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := g.Do(t, "POST", "/v1/chat/completions", noisy.uk, body)
			if r.Status == 429 && r.ErrorCode() != "upstream_capacity_exceeded" {
				t.Errorf("429 with code %s", r.ErrorCode())
			}
			statuses <- r.Status
		}()
	}
	time.Sleep(100 * time.Millisecond) // the noisy platform's calls are in flight
	if r := g.Do(t, "POST", "/v1/chat/completions", quiet.uk, body); r.Status != 200 {
		t.Errorf("another platform while the noisy one is at its share: %d %s", r.Status, r.Body)
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[200] != 2 || count[429] != 3 {
		t.Fatalf("five concurrent calls with a share of two: %v, want 2×200 and 3×429", count)
	}
	if got := mock.Stats().Total; got != 3 {
		t.Fatalf("%d upstream requests, want 3 (two of the noisy platform, one of the quiet)", got)
	}
}

// max_parallel_requests caps the calls one end-user has in flight: the
// platform default applies to every end-user, an override (even one that
// only sets another field) inherits it unless it sets its own, and a call
// past the cap answers 429 too_many_parallel_requests before any upstream
// request.
func TestMaxParallelRequestsPerEndUser(t *testing.T) {
	mcfg := mockllm.DefaultConfig()
	mcfg.Latency = 1500 * time.Millisecond // calls stay in flight while the next ones arrive
	e := newInferenceEnv(t, mcfg, 50)
	plat := "/v1/platforms/" + e.pid
	if r := e.g.Do(t, "PUT", plat+"/rate-limits", e.pk, map[string]any{"max_parallel_requests": 2}); r.Status != 200 {
		t.Fatalf("platform default: %d %s", r.Status, r.Body)
	}
	body := jsonRaw(`{"model":"gpt-4o-mini","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
	burst := func(key string, n int) map[int]int {
		statuses := make(chan int, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.g.Do(t, "POST", "/v1/chat/completions", key, body)
				if r.Status == 429 && r.ErrorCode() != "too_many_parallel_requests" {
					t.Errorf("429 with code %s", r.ErrorCode())
				}
				statuses <- r.Status
			}()
		}
		wg.Wait()
		close(statuses)
		count := map[int]int{}
		for s := range statuses {
			count[s]++
		}
		return count
	}
	before := e.mock.Stats().Total
	if got := burst(e.uk, 4); got[200] != 2 || got[429] != 2 {
		t.Fatalf("four concurrent calls under a platform cap of two: %v", got)
	}
	if n := e.mock.Stats().Total - before; n != 2 {
		t.Fatalf("%d upstream requests, want 2", n)
	}
	// An override that sets only requests_per_minute inherits the cap.
	over := plat + "/end-users/" + e.uid + "/rate-limits"
	if r := e.g.Do(t, "PUT", over, e.pk, map[string]any{"requests_per_minute": 1000}); r.Status != 200 {
		t.Fatalf("override: %d %s", r.Status, r.Body)
	}
	var v struct {
		Effective struct {
			MaxParallel int64 `json:"max_parallel_requests"`
		} `json:"effective"`
		Inherited []string `json:"inherited"`
	}
	e.g.Do(t, "GET", over, e.pk, nil).JSON(t, &v)
	if v.Effective.MaxParallel != 2 || !strings.Contains(strings.Join(v.Inherited, ","), "max_parallel_requests") {
		t.Fatalf("override without the field: effective %d, inherited %v", v.Effective.MaxParallel, v.Inherited)
	}
	// Its own value wins.
	if r := e.g.Do(t, "PUT", over, e.pk, map[string]any{"max_parallel_requests": 3}); r.Status != 200 {
		t.Fatalf("override: %d %s", r.Status, r.Body)
	}
	if got := burst(e.uk, 4); got[200] != 3 || got[429] != 1 {
		t.Fatalf("four concurrent calls under an override of three: %v", got)
	}
	if r := e.g.Do(t, "PUT", over, e.pk, map[string]any{"max_parallel_requests": -1}); r.Status != 400 {
		t.Fatalf("negative cap: %d %s", r.Status, r.Body)
	}
}

// An OpenAI-format request that needs no change reaches the upstream as
// the client sent it (only max_tokens renamed for OpenAI), and the
// upstream's answer reaches the client as it was sent; a request that
// must change (an alias model, a dropped steering field) is encoded from
// its fields, without the dropped field.
func TestOpenAIRequestsAreRelayedAsSentWhenNothingChanges(t *testing.T) {
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 50)
	send := func(body string) (sent, answer string) {
		t.Helper()
		r := e.g.Do(t, "POST", "/v1/chat/completions", e.uk, jsonRaw(body))
		if r.Status != 200 {
			t.Fatalf("%s: %d %s", body, r.Status, r.Body)
		}
		last, ok := e.mock.LastRequest(mockllm.RouteOpenAI)
		if !ok {
			t.Fatal("the upstream saw no request")
		}
		return string(last.Body), string(r.Body)
	}
	plain := `{"temperature":0.5,"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi","zz_kept":1}],"max_tokens":32}`
	sent, answer := send(plain)
	if want := strings.Replace(plain, `"max_tokens"`, `"max_completion_tokens"`, 1); sent != want {
		t.Fatalf("upstream got\n%s\nwant the client's bytes\n%s", sent, want)
	}
	if !strings.Contains(answer, `"usage"`) || !strings.Contains(answer, `"chat.completion"`) {
		t.Fatalf("answer: %s", answer)
	}
	steering := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"api_base":"http://127.0.0.1:1"}`
	if sent, _ = send(steering); strings.Contains(sent, "api_base") || sent == steering {
		t.Fatalf("a dropped field reached the upstream or the body was not re-encoded: %s", sent)
	}
	alias := `{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	if sent, _ = send(alias); !strings.Contains(sent, `"model":"gpt-4o-mini"`) {
		t.Fatalf("alias not rewritten: %s", sent)
	}
}
