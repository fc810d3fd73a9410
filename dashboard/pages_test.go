package dashboard_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// platformWithOwner creates a platform as the operator with the mock
// upstream behind openai, funds its wallet and returns the signed-in owner.
func (e *env) platformWithOwner(t *testing.T, name, email string) (pid string, owner *browser) {
	t.Helper()
	op := e.browser(t)
	op.signInOperator()
	pid, _, inv := op.createPlatform(name, email)
	op.get("/dashboard/p/" + pid + "/billing")
	op.post("/dashboard/p/"+pid+"/billing/topup", url.Values{"amount_usd": {"100"}, "idempotency_key": {"fund-" + pid}})
	op.want(200, "Topped up.", "$100")
	return pid, e.accept(t, inv, "Owner", pw)
}

func TestEndUserBudgetTopupIdempotentAndExact(t *testing.T) {
	e := start(t, nil)
	pid, o := e.platformWithOwner(t, "Money", "m@example.com")
	base := "/dashboard/p/" + pid
	o.get(base + "/end-users")
	o.want(200, "No end-users yet")
	o.post(base+"/end-users", url.Values{"external_id": {"user-42"}, "display_name": {"Jane"}})
	o.want(201-1, "End-user created", "sk-eu_")
	eid := find(t, eidRe, o.last)
	o.get(base + "/end-users/" + eid)
	o.want(200, "None")

	// An API error is shown next to its field, with the API's status.
	o.post(base+"/end-users/"+eid+"/budget", url.Values{"amount_usd": {"1e3"}, "period": {"monthly"}})
	if o.status != 400 || !regexp.MustCompile(`id="b-amount" name="amount_usd"[^>]*aria-invalid="true">\s*<span class="field-error">amounts must be JSON numbers`).MatchString(o.last) {
		t.Fatalf("bad amount: status %d, no field error:\n%s", o.status, clip(o.last))
	}
	o.post(base+"/end-users/"+eid+"/budget", url.Values{"amount_usd": {"10"}, "period": {"monthly"}})
	o.want(200, "Saved.", "$10")

	// Top up a nano-dollar amount: shown exactly, never rounded.
	o.get(base + "/end-users/" + eid)
	idem := find(t, regexp.MustCompile(`name="idempotency_key" value="([^"]+)"`), o.last)
	form := url.Values{"amount_usd": {"0.000000001"}, "reason": {"stipend"}, "idempotency_key": {idem}}
	o.post(base+"/end-users/"+eid+"/topup", form)
	o.want(200, "Topped up.", "$10.000000001", "$0.000000001")
	// The same form submitted again (a double click, a retry) is replayed.
	o.post(base+"/end-users/"+eid+"/topup", form)
	o.want(200, "nothing changed twice", "$10.000000001")
	if n := strings.Count(o.last, "<td>topup</td>"); n != 1 {
		t.Fatalf("%d topup ledger entries after a replayed form, want 1", n)
	}
	// Debit and suspend.
	o.post(base+"/end-users/"+eid+"/debit", url.Values{"amount_usd": {"0.5"}, "idempotency_key": {"d-1"}})
	o.want(200, "Debited.", "$9.500000001")
	o.post(base+"/end-users/"+eid+"/suspend", url.Values{"suspended": {"true"}})
	o.want(200, "Suspended.", "Unsuspend")
	o.post(base+"/end-users/"+eid+"/rate-limits", url.Values{"requests_per_minute": {"7"}, "tokens_per_minute": {"1000"}, "requests_per_day": {"100"}})
	o.want(200, "Saved.", "7/min", "(override)")
	o.get(base + "/end-users?external_id=user-42")
	o.want(200, "user-42", "suspended")

	// The ledger pages: 20 entries a page, then "Older entries" by cursor.
	for i := 0; i < 20; i++ {
		o.post(base+"/end-users/"+eid+"/topup", url.Values{"amount_usd": {"0.01"}, "idempotency_key": {fmt.Sprintf("page-%d", i)}})
		o.want(200, "Topped up.")
	}
	older := regexp.MustCompile(`href="(/dashboard/p/[^"]+\?cursor=[^"]+)">Older entries`)
	next := html.UnescapeString(find(t, older, o.last))
	if strings.Contains(o.last, "<td>budget_set</td>") {
		t.Fatal("the first page already holds the oldest entry")
	}
	o.get(next)
	o.want(200, "<td>budget_set</td>")
}

func TestScriptInDisplayNameRendersInert(t *testing.T) {
	e := start(t, nil)
	evil := `<script>alert(1)</script><img src=x onerror=alert(2)>`
	pid, o := e.platformWithOwner(t, evil, "x@example.com")
	base := "/dashboard/p/" + pid
	o.get(base + "/end-users")
	o.post(base+"/end-users", url.Values{"external_id": {evil}, "display_name": {evil}})
	o.want(200, "End-user created")
	eid := find(t, eidRe, o.last)
	o.get(base + "/settings")
	o.post(base+"/settings", url.Values{"display_name": {evil}, "markup_pct": {"0"}, "rpm": {"60"}, "tpm": {"100000"}, "rpd": {"10000"},
		"wallet_low_balance_usd": {"0"}, "budget_low_balance_usd": {"0"}})
	o.want(200, "Saved.")
	op := e.browser(t)
	op.signInOperator()
	for _, b := range []*browser{o, op} {
		for _, p := range []string{"/overview", "/end-users", "/end-users/" + eid, "/settings", "/team", "/playground"} {
			b.get(base + p)
			b.want(200)
			if strings.Contains(b.last, "<script>alert") || strings.Contains(b.last, "<img src=x") {
				t.Fatalf("%s renders markup from data:\n%s", p, clip(b.last))
			}
		}
	}
	op.get("/dashboard/operator/platforms")
	if strings.Contains(op.last, "<script>alert") || !strings.Contains(op.last, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatalf("operator list does not escape the platform name:\n%s", clip(op.last))
	}
}

func TestEveryPageSendsStrictCSPAndNoInlineScript(t *testing.T) {
	e := start(t, nil)
	pid, o := e.platformWithOwner(t, "CSP", "c@example.com")
	inline := regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]|\son[a-z]+=|style=`)
	for _, p := range []string{"overview", "end-users", "logs", "api-keys", "billing", "llm-configs", "settings", "team", "playground", "webhooks"} {
		o.get("/dashboard/p/" + pid + "/" + p)
		o.want(200)
		csp := o.header.Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "default-src 'none'", "frame-ancestors 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Fatalf("%s: CSP %q lacks %s", p, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Fatalf("%s: CSP allows inline code: %q", p, csp)
		}
		if m := inline.FindString(o.last); m != "" {
			t.Fatalf("%s has inline script or style %q", p, m)
		}
		if o.header.Get("X-Frame-Options") != "DENY" || o.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s: headers %v", p, o.header)
		}
	}
}

func TestProviderKeyModelsPlaygroundLogsAndOverview(t *testing.T) {
	e := start(t, nil)
	pid, o := e.platformWithOwner(t, "Flow", "f@example.com")
	base := "/dashboard/p/" + pid
	o.get(base + "/llm-configs")
	o.want(200, "No models yet")
	o.post(base+"/llm-configs/openai", url.Values{"api_key": {"sk-test-provider-key-wxyz"}, "base_url": {e.mockURL}, "enabled": {"true"}})
	o.want(200, "Saved.", "…wxyz", "gpt-4o-mini")
	if strings.Contains(o.last, "sk-test-provider-key") {
		t.Fatal("the provider key is shown back")
	}
	o.get(base + "/end-users")
	o.post(base+"/end-users", url.Values{"external_id": {"pg-user"}})
	eid := find(t, eidRe, o.last)
	o.get(base + "/end-users/" + eid)
	o.post(base+"/end-users/"+eid+"/budget", url.Values{"amount_usd": {"5"}, "period": {"monthly"}})
	// The test button: one tiny call, billed to the chosen end-user.
	o.get(base + "/llm-configs")
	o.post(base+"/llm-configs/openai/test", url.Values{"end_user_id": {eid}})
	o.want(200, `class="flash" role="status" id="test-openai">`, "billed to pg-user")
	o.get(base + "/playground")
	o.post(base+"/playground", url.Values{"end_user_id": {eid}, "model": {"gpt-4o-mini"}, "prompt": {"Say hi"}})
	o.want(200, "Answer", `id="pg-cost"`)
	rid := find(t, regexp.MustCompile(`href="/dashboard/p/`+pid+`/logs/(req_[0-9a-z]+)">in the logs`), o.last)
	o.get(base + "/logs")
	o.want(200, rid, "gpt-4o-mini")
	o.get(base + "/logs/" + rid)
	o.want(200, "pg-user"[:0], eid, "chat.completions")
	o.get(base + "/end-users/" + eid)
	o.want(200, rid, "<td>usage</td>"[:0])
	o.get(base + "/overview")
	o.want(200, "gpt-4o-mini: $", "Calls this month", ">pg-user</a>", "pg-user: $")
	o.get(base + "/logs")
	o.want(200, ">pg-user</a>")
	// A rate-limited call is refused before the upstream, shown on the form
	// with the API's message, and counted on the Overview.
	o.get(base + "/end-users/" + eid)
	o.post(base+"/end-users/"+eid+"/rate-limits", url.Values{"requests_per_minute": {"1"}})
	o.want(200, "Saved.", "1/min")
	o.get(base + "/playground")
	o.post(base+"/playground", url.Values{"end_user_id": {eid}, "model": {"gpt-4o-mini"}, "prompt": {"again"}})
	o.post(base+"/playground", url.Values{"end_user_id": {eid}, "model": {"gpt-4o-mini"}, "prompt": {"and again"}})
	o.want(429, `class="error"`)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		o.get(base + "/overview")
		if strings.Contains(o.last, "1 rate-limited") && strings.Contains(o.last, "refusals: 1</title>") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the refusal is not on the Overview:\n%s", clip(o.last))
		}
	}
	// Another platform's end-user id in the playground: refused as the API does.
	o.post(base+"/playground", url.Values{"end_user_id": {"eu_00000000000000000000000000"}, "model": {"gpt-4o-mini"}, "prompt": {"x"}})
	o.want(404)
}

func TestPlaygroundStreamNeedsCSRFAndRelaysTheAPIStream(t *testing.T) {
	e := start(t, nil)
	pid, o := e.platformWithOwner(t, "Stream", "s@example.com")
	base := "/dashboard/p/" + pid
	o.get(base + "/llm-configs")
	o.post(base+"/llm-configs/openai", url.Values{"api_key": {"sk-test-key-abcd"}, "base_url": {e.mockURL}, "enabled": {"true"}})
	o.get(base + "/end-users")
	o.post(base+"/end-users", url.Values{"external_id": {"s-user"}})
	eid := find(t, eidRe, o.last)
	o.get(base + "/end-users/" + eid)
	o.post(base+"/end-users/"+eid+"/budget", url.Values{"amount_usd": {"1"}, "period": {"monthly"}})
	form := url.Values{"end_user_id": {eid}, "model": {"gpt-4o-mini"}, "prompt": {"hi"}}
	post := func(token string) {
		req, _ := http.NewRequest("POST", o.base+base+"/playground/stream", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if token != "" {
			req.Header.Set("X-CSRF-Token", token)
		}
		o.do(req)
	}
	post("")
	if o.status != 403 {
		t.Fatalf("stream without CSRF token: %d", o.status)
	}
	post(o.csrf)
	if o.status != 200 || o.header.Get("Content-Type") != "text/event-stream" || !strings.Contains(o.last, `data: {"id"`) {
		t.Fatalf("stream: %d %s\n%s", o.status, o.header.Get("Content-Type"), clip(o.last))
	}
	rid := o.header.Get("X-Assistiv-Request-Id")
	o.get(base + "/playground/calls/" + rid)
	if o.status != 200 || !strings.Contains(o.last, `"cost_usd":"$0.`) {
		t.Fatalf("call info: %d %s", o.status, o.last)
	}
	// An unknown model: the API's 4xx as JSON naming the field.
	form.Set("model", "no-such-model")
	post(o.csrf)
	if o.status < 400 || !strings.Contains(o.last, `"field":"model"`) {
		t.Fatalf("unknown model: %d %s", o.status, o.last)
	}
}

func TestWebhookEndpointEditAndDelete(t *testing.T) {
	e := start(t, nil)
	pid, o := e.platformWithOwner(t, "Hooks", "h@example.com")
	base := "/dashboard/p/" + pid
	o.get(base + "/webhooks")
	o.want(200, "No endpoints")
	o.post(base+"/webhooks", url.Values{"url": {"ftp://nope"}, "event_types": {"budget.topped_up"}})
	if o.status != 400 || !strings.Contains(o.last, `class="field-error"`) {
		t.Fatalf("bad URL: %d\n%s", o.status, clip(o.last))
	}
	o.post(base+"/webhooks", url.Values{"url": {"https://hooks.example/x"}, "event_types": {"budget.topped_up", "wallet.topped_up"}})
	o.want(200, "Created.", "https://hooks.example/x")
	wid := find(t, regexp.MustCompile(`/webhooks/(\w+)/update`), o.last)
	o.post(base+"/webhooks/"+wid+"/update", url.Values{"event_types": {"wallet.low_balance"}})
	o.want(200, "Saved.", "disabled")
	if r := e.g.Do(t, "GET", "/admin/v1/platforms/"+pid+"/webhook-endpoints/"+wid, "test-admin-key-0123456789", nil); !strings.Contains(string(r.Body), `"event_types":["wallet.low_balance"]`) || !strings.Contains(string(r.Body), `"enabled":false`) {
		t.Fatalf("the API does not show the edit: %s", r.Body)
	}
	o.get(base + "/webhooks/" + wid + "?reveal=1")
	o.want(200, "whsec_")
	o.post(base+"/webhooks/"+wid+"/delete", nil)
	o.want(200, "Deleted.", "No endpoints")
}
