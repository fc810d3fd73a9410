package edge_test

import (
	"strings"
	"testing"
	"time"

	"github.com/assistiv/gateway/mockllm"
)

// TestAdmissionRefusalsAreLogged: a call refused at admission (429 rate
// limit, 402 budget) never reaches the upstream but is in the logs, so
// status=429 finds it.
func TestAdmissionRefusalsAreLogged(t *testing.T) {
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 5)
	if r := e.g.Do(t, "PUT", "/v1/platforms/"+e.pid+"/end-users/"+e.uid+"/rate-limits", e.pk, map[string]any{"requests_per_minute": 1}); r.Status != 200 {
		t.Fatalf("rate limits: %d %s", r.Status, r.Body)
	}
	body := map[string]any{"model": "gpt-4o-mini", "messages": []map[string]string{{"role": "user", "content": "hi"}}}
	if r := e.g.Do(t, "POST", "/v1/chat/completions", e.uk, body); r.Status != 200 {
		t.Fatalf("first call: %d %s", r.Status, r.Body)
	}
	r := e.g.Do(t, "POST", "/v1/chat/completions", e.uk, body)
	if r.Status != 429 {
		t.Fatalf("second call: %d, want 429", r.Status)
	}
	rid := r.Header.Get("X-Request-Id")
	// A 402: an end-user whose budget is empty.
	uid2, uk2 := e.g.CreateEndUser(t, e.pid, e.pk, "empty-budget")
	if r := e.g.Do(t, "POST", "/v1/platforms/"+e.pid+"/end-users/"+uid2+"/budget", e.pk, map[string]any{"amount_usd": 0}); r.Status != 201 {
		t.Fatalf("budget: %d %s", r.Status, r.Body)
	}
	r402 := e.g.Do(t, "POST", "/v1/chat/completions", uk2, body)
	if r402.Status != 402 {
		t.Fatalf("no budget: %d %s", r402.Status, r402.Body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		l := e.g.Do(t, "GET", "/v1/platforms/"+e.pid+"/logs?status=429", e.pk, nil)
		l2 := e.g.Do(t, "GET", "/v1/platforms/"+e.pid+"/logs?status=402&end_user_id="+uid2, e.pk, nil)
		if strings.Contains(string(l.Body), rid) && strings.Contains(string(l2.Body), r402.Header.Get("X-Request-Id")) {
			if !strings.Contains(string(l.Body), `"model":"gpt-4o-mini"`) || !strings.Contains(string(l.Body), `"provider":"openai"`) || !strings.Contains(string(l.Body), `"cost_usd":0`) {
				t.Fatalf("refusal entry: %s", l.Body)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("refusals not logged: 429 %s / 402 %s", l.Body, l2.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
