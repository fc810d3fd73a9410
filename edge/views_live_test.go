package edge_test

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/mockllm"
	"github.com/assistiv/gateway/mockllm/mocktest"
)

// The end-user view shows the reservations open on its budget (the
// record alone does not know them), a list shows them as null rather than
// a made-up 0, and a one-time budget has no period_start.
func TestEndUserViewShowsOpenReservationsAndOneTimeHasNoPeriodStart(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	p := newPlatform(t, g, "Views")
	u := p.endUser(t, g, "u")
	wantStatus(t, "set budget", g.Do(t, "POST", p.path("/end-users/"+u.id+"/budget"), p.key, map[string]any{"amount_usd": 10}), 201)

	if _, err := askUser(g, p, u, &pb.Admit{ReservationId: "r1", RequestId: "r1", EstimatedTokens: 10, MaxCostNanos: 1_500_000_000}); err != nil {
		t.Fatalf("Admit: %v", err)
	}
	v := wantStatus(t, "GET end-user", g.Do(t, "GET", p.path("/end-users/"+u.id), p.key, nil), 200)
	if got := num(v, "budget", "reserved_usd"); got != "1.5" {
		t.Fatalf("end-user view reserved_usd = %q, want 1.5 while a call is open: %v", got, v)
	}
	if got := num(v, "budget", "available_usd"); got != "8.5" {
		t.Fatalf("end-user view available_usd = %q, want 8.5", got)
	}
	if ps, ok := v["budget"].(map[string]any)["period_start"]; !ok || ps != nil {
		t.Fatalf("one-time budget period_start = %v, want null", ps)
	}
	b := wantStatus(t, "GET budget", g.Do(t, "GET", p.path("/end-users/"+u.id+"/budget"), p.key, nil), 200)
	if num(b, "reserved_usd") != "1.5" || b["period_start"] != nil {
		t.Fatalf("budget view = %v, want reserved 1.5 and period_start null", b)
	}
	l := list(t, g.Do(t, "GET", p.path("/end-users"), p.key, nil))
	if len(l) != 1 || l[0]["budget"].(map[string]any)["reserved_usd"] != nil {
		t.Fatalf("list shows %v, want reserved_usd null (unknown in a list)", l)
	}
	if _, err := askUser(g, p, u, &pb.Release{ReservationId: "r1"}); err != nil {
		t.Fatalf("Release: %v", err)
	}
	v = wantStatus(t, "GET end-user", g.Do(t, "GET", p.path("/end-users/"+u.id), p.key, nil), 200)
	if num(v, "budget", "reserved_usd") != "0" || num(v, "budget", "available_usd") != "10" {
		t.Fatalf("after release: %v", v["budget"])
	}
	// A monthly budget has its period start.
	wantStatus(t, "monthly budget", g.Do(t, "PATCH", p.path("/end-users/"+u.id+"/budget"), p.key, map[string]any{"period": "monthly"}), 200)
	v = wantStatus(t, "GET end-user", g.Do(t, "GET", p.path("/end-users/"+u.id), p.key, nil), 200)
	if ps := str(v, "budget", "period_start"); !strings.HasSuffix(ps[:10], "-01") {
		t.Fatalf("monthly period_start = %q, want the first of the month", ps)
	}
}

// A streamed answer outlives WriteTimeout on the streaming routes, query
// string or not (the route is matched on its path).
func TestStreamOutlivesWriteTimeoutWithAQueryString(t *testing.T) {
	mcfg := mockllm.DefaultConfig()
	mcfg.Tokens, mcfg.TokensPerSecond = 12, 8 // about 1.4 s of stream
	mockURL, _ := mocktest.Start(t, mcfg)
	g := edgetest.Start(t, edgetest.Options{WriteTimeout: 500 * time.Millisecond})
	p := newPlatform(t, g, "Stream")
	wantStatus(t, "provider", g.Do(t, "PUT", "/admin/v1/platforms/"+p.id+"/llm-providers/openai", edgetest.AdminKey,
		map[string]any{"api_key": "sk-upstream-key", "base_url": mockURL, "enabled": true}), 200)
	wantStatus(t, "wallet", g.Do(t, "POST", "/admin/v1/platforms/"+p.id+"/wallet/topup", edgetest.AdminKey, map[string]any{"amount_usd": 10}), 200)
	u := p.endUser(t, g, "u")
	for _, path := range []string{"/v1/chat/completions", "/v1/chat/completions?trace=1"} {
		req, _ := http.NewRequest("POST", g.URL+path, strings.NewReader(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+u.key)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := g.Client().Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		done := false
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if sc.Text() == "data: [DONE]" {
				done = true
			}
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !done {
			t.Fatalf("POST %s: status %d, [DONE] seen %v after %v (scan error %v): the stream was cut", path, resp.StatusCode, done, time.Since(start), sc.Err())
		}
		if time.Since(start) < 700*time.Millisecond {
			t.Fatalf("POST %s streamed in %v: the mock's pacing did not exceed WriteTimeout, the test proves nothing", path, time.Since(start))
		}
	}
}
