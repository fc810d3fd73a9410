package edge_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assistiv/gateway/edge/edgetest"
)

// Bad bodies answer 4xx with the one error shape (reliability.md B-3): the
// decoder is strict about content type, syntax, types, unknown fields and
// trailing data, and validates field contents.
func TestBadBodiesAnswer4xxWithErrorShape(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	p := newPlatform(t, g, "Acme")
	path := p.path("/end-users")
	for _, c := range []struct {
		name, ctype, body string
		status            int
		code              string
	}{
		{"no body", "application/json", "", 400, "missing_body"},
		{"whitespace body", "application/json", " \n\t", 400, "missing_body"},
		{"truncated", "application/json", `{"external_id":`, 400, "invalid_json"},
		{"syntax error", "application/json", `{"external_id" "x"}`, 400, "invalid_json"},
		{"trailing data", "application/json", `{"external_id":"x"} {}`, 400, "invalid_json"},
		{"trailing garbage", "application/json", `{"external_id":"x"}x`, 400, "invalid_json"},
		{"invalid UTF-8", "application/json", "{\"external_id\":\"\xff\xfe\"}", 400, "invalid_json"},
		{"array", "application/json", `[{"external_id":"x"}]`, 400, "invalid_field"},
		{"string", "application/json", `"x"`, 400, "invalid_field"},
		{"null", "application/json", `null`, 400, "missing_field"},
		{"empty object", "application/json", `{}`, 400, "missing_field"},
		{"wrong type", "application/json", `{"external_id":5}`, 400, "invalid_field"},
		{"unknown field", "application/json", `{"external_id":"x","is_admin":true}`, 400, "unknown_field"},
		{"empty external_id", "application/json", `{"external_id":""}`, 400, "missing_field"},
		{"control character", "application/json", `{"external_id":"a\u0007b"}`, 400, "invalid_field"},
		{"external_id too long", "application/json", `{"external_id":"` + strings.Repeat("x", 256) + `"}`, 400, "invalid_field"},
		{"metadata not an object", "application/json", `{"external_id":"x","metadata":[1]}`, 400, "invalid_field"},
		{"metadata too large", "application/json", `{"external_id":"x","metadata":{"a":"` + strings.Repeat("x", 17<<10) + `"}}`, 400, "invalid_field"},
		{"deep nesting", "application/json", `{"external_id":"x","metadata":{"a":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}}`, 400, "invalid_json"},
		{"text/plain", "text/plain", `{"external_id":"x"}`, 415, "unsupported_media_type"},
		{"form", "application/x-www-form-urlencoded", `external_id=x`, 415, "unsupported_media_type"},
		{"no content type", "", `{"external_id":"x"}`, 415, "unsupported_media_type"},
		{"json suffix", "application/jsonx", `{"external_id":"x"}`, 415, "unsupported_media_type"},
	} {
		var headers []string
		if c.ctype != "" {
			headers = []string{"Content-Type", c.ctype}
		}
		r := doRaw(t, g, "POST", path, p.key, c.body, headers...)
		wantError(t, c.name, r, c.status, c.code)
	}
	// The controls: the same route accepts a well-formed body, with or
	// without a charset parameter.
	wantStatus(t, "valid body", doRaw(t, g, "POST", path, p.key, `{"external_id":"x"}`, "Content-Type", "application/json"), 201)
	wantStatus(t, "charset", doRaw(t, g, "POST", path, p.key, `{"external_id":"y"}`, "Content-Type", "Application/JSON; charset=utf-8"), 201)
	if l := list(t, g.Do(t, "GET", path+"?limit=100", p.key, nil)); len(l) != 2 {
		t.Errorf("%d end-users after 2 valid creates among bad ones", len(l))
	}
}

// doRaw sends body as is, with exactly the given headers (no implicit
// Content-Type).
func doRaw(tb testing.TB, g *edgetest.Gateway, method, path, key, body string, headers ...string) *edgetest.Response {
	tb.Helper()
	req, err := http.NewRequest(method, g.URL+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := g.Client().Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return &edgetest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// Amounts are exact decimal USD: more than 9 decimals, negative or zero,
// strings, booleans and out-of-range numbers answer 400 invalid_amount and
// leave the balance alone; the smallest unit and exponents are accepted.
func TestAmountsOutsideNanoUSDAnswer400(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	p := newPlatform(t, g, "Acme")
	u := p.endUser(t, g, "u")
	up := p.path("/end-users/" + u.id + "/budget")
	wantStatus(t, "POST budget", g.Do(t, "POST", up, p.key, map[string]any{"amount_usd": 1}), 201)
	for _, amount := range []string{
		"1.0000000001", "0.0000000001", "1.5e-10", "-1", "-0.000000001", "0", "-0",
		`"5"`, `"1.5"`, "true", "{}", "[]", "1e400", "1e99999", "1000000001", "9223372036854775808",
		"1" + strings.Repeat("0", 80),
	} {
		r := doRaw(t, g, "POST", up+"/topup", p.key, `{"amount_usd":`+amount+`}`, "Content-Type", "application/json")
		wantError(t, "topup "+amount, r, 400, "invalid_amount")
		r = doRaw(t, g, "POST", "/admin/v1/platforms/"+p.id+"/wallet/topup", edgetest.AdminKey, `{"amount_usd":`+amount+`}`, "Content-Type", "application/json")
		wantError(t, "wallet topup "+amount, r, 400, "invalid_amount")
	}
	wantError(t, "topup null", doRaw(t, g, "POST", up+"/topup", p.key, `{"amount_usd":null}`, "Content-Type", "application/json"), 400, "missing_field")
	wantError(t, "budget -1", doRaw(t, g, "POST", p.path("/end-users/"+p.endUser(t, g, "v").id+"/budget"), p.key, `{"amount_usd":-1}`, "Content-Type", "application/json"), 400, "invalid_amount")
	b := wantStatus(t, "GET budget", g.Do(t, "GET", up, p.key, nil), 200)
	if num(b, "balance_usd") != "1" {
		t.Errorf("balance after refused top-ups = %s, want 1", num(b, "balance_usd"))
	}
	if l := list(t, g.Do(t, "GET", up+"/transactions", p.key, nil)); len(l) != 1 {
		t.Errorf("ledger has %d entries after refused top-ups, want 1 (budget_set)", len(l))
	}

	for _, c := range []struct{ amount, balance string }{
		{"0.000000001", "1.000000001"},
		{"1E2", "101.000000001"},
		{"2.5e-1", "101.250000001"},
	} {
		r := doRaw(t, g, "POST", up+"/topup", p.key, `{"amount_usd":`+c.amount+`}`, "Content-Type", "application/json")
		m := wantStatus(t, "topup "+c.amount, r, 200)
		if got := num(m, "budget", "balance_usd"); got != c.balance {
			t.Errorf("balance after topup %s = %s, want %s", c.amount, got, c.balance)
		}
	}
}

// Idempotency-Key is 1 to 255 printable ASCII characters, sent once.
func TestIdempotencyKeyHeaderIsValidated(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	p := newPlatform(t, g, "Acme")
	u := p.endUser(t, g, "u")
	up := p.path("/end-users/" + u.id + "/budget")
	wantStatus(t, "POST budget", g.Do(t, "POST", up, p.key, map[string]any{"amount_usd": 1}), 201)
	body := map[string]any{"amount_usd": 1}
	for _, c := range []struct {
		name    string
		headers []string
	}{
		{"empty", []string{"Idempotency-Key", ""}},
		{"256 characters", []string{"Idempotency-Key", strings.Repeat("k", 256)}},
		{"non-ASCII", []string{"Idempotency-Key", "ключ"}},
		{"duplicated", []string{"Idempotency-Key", "a", "Idempotency-Key", "b"}},
		{"duplicated equal", []string{"Idempotency-Key", "a", "Idempotency-Key", "a"}},
	} {
		wantError(t, "Idempotency-Key "+c.name, g.Do(t, "POST", up+"/topup", p.key, body, c.headers...), 400, "invalid_idempotency_key")
		wantError(t, "wallet Idempotency-Key "+c.name, g.Do(t, "POST", "/admin/v1/platforms/"+p.id+"/wallet/topup", edgetest.AdminKey, body, c.headers...), 400, "invalid_idempotency_key")
	}
	long := strings.Repeat("k", 255)
	first := wantStatus(t, "255 characters", g.Do(t, "POST", up+"/topup", p.key, body, "Idempotency-Key", long), 200)
	r := g.Do(t, "POST", up+"/topup", p.key, body, "Idempotency-Key", long)
	again := wantStatus(t, "255 characters again", r, 200)
	if r.Header.Get("Idempotent-Replayed") != "true" || str(first, "transaction", "id") != str(again, "transaction", "id") {
		t.Errorf("replay = %v (Idempotent-Replayed %q), want transaction %s", again, r.Header.Get("Idempotent-Replayed"), str(first, "transaction", "id"))
	}
	if got := num(again, "budget", "balance_usd"); got != "2" {
		t.Errorf("balance after a top-up and its replay = %s, want 2", got)
	}
}

// Routing errors: unknown routes are 404 route_not_found, known routes
// with another method 405; both in the error shape.
func TestUnknownRoute404AndWrongMethod405(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	p := newPlatform(t, g, "Acme")
	for _, path := range []string{"/", "/v2/me", "/v1/me/", "/v1/platforms", "/v1/platforms/" + p.id + "/end-users/x/y/z", "/admin/v1/platforms/" + p.id + "/nope", "/%2e%2e/admin"} {
		wantError(t, "GET "+path, g.Do(t, "GET", path, p.key, nil), 404, "route_not_found")
	}
	for _, c := range []struct{ method, path string }{
		{"POST", "/v1/me"},
		{"PUT", p.path("/end-users")},
		{"DELETE", p.path("")},
		{"PATCH", "/admin/v1/platforms"},
		{"POST", "/healthz"},
	} {
		wantError(t, c.method+" "+c.path, g.Do(t, c.method, c.path, p.key, nil), 405, "method_not_allowed")
	}
}

// Page sizes are clamped: a huge limit returns the route's maximum page
// (100 end-users) and says there is more.
func TestHugeLimitIsClamped(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	p := newPlatform(t, g, "Acme")
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 101; i += 4 {
				p.endUser(t, g, fmt.Sprintf("user-%03d", i))
			}
		}()
	}
	wg.Wait()
	for _, l := range []string{"101", "1000000", "9223372036854775807"} {
		r := g.Do(t, "GET", p.path("/end-users?limit="+l), p.key, nil)
		m := wantStatus(t, "limit "+l, r, 200)
		if n := len(list(t, r)); n != 100 || m["has_more"] != true {
			t.Errorf("limit=%s returned %d end-users, has_more %v; want 100, true", l, n, m["has_more"])
		}
	}
}

// rawExchange writes req on a fresh connection and reads one response,
// reading while it writes so a server that answers early (and closes) is
// still heard.
func rawExchange(tb testing.TB, addr string, req []byte) *edgetest.Response {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	go func() { _, _ = c.Write(req) }()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		tb.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read body: %v", err)
	}
	return &edgetest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// Bodies over MaxBodyBytes answer 413 request_too_large in the error shape,
// whether announced by Content-Length or streamed chunked, and the server
// keeps serving (reliability.md B-15).
func TestOversizedBodyAnswers413(t *testing.T) {
	const limit = 64 << 10
	g := edgetest.Start(t, edgetest.Options{MaxBodyBytes: limit})
	p := newPlatform(t, g, "Acme")
	addr := strings.TrimPrefix(g.URL, "http://")
	head := func(extra string) string {
		return "POST " + p.path("/end-users") + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + p.key +
			"\r\nContent-Type: application/json\r\n" + extra + "\r\n"
	}
	big := `{"external_id":"x","metadata":{"a":"` + strings.Repeat("x", limit) + `"}}`
	chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(big), big)

	for _, c := range []struct{ name, req string }{
		{"announced only", head(fmt.Sprintf("Content-Length: %d\r\n", 1<<30))},
		{"announced and sent", head(fmt.Sprintf("Content-Length: %d\r\n", len(big))) + big},
		{"chunked", head("Transfer-Encoding: chunked\r\n") + chunked},
	} {
		r := rawExchange(t, addr, []byte(c.req))
		wantError(t, c.name, r, 413, "request_too_large")
	}
	// Just under the limit is parsed (and refused for its metadata size).
	fits := `{"external_id":"x","metadata":{"a":"` + strings.Repeat("x", limit-64) + `"}}`
	wantError(t, "body under the limit", doRaw(t, g, "POST", p.path("/end-users"), p.key, fits, "Content-Type", "application/json"), 400, "invalid_field")
	wantStatus(t, "after 413s", g.Do(t, "GET", "/v1/me", p.key, nil), 200)
}

// Requests fasthttp cannot parse answer 400 in the error shape.
func TestUnparsableRequestAnswers400(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	addr := strings.TrimPrefix(g.URL, "http://")
	for _, c := range []struct{ name, req string }{
		{"huge header", "GET /v1/me HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n"},
		{"bad content length", "POST /v1/me HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"},
		{"bad chunk", "POST /v1/me HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
	} {
		r := rawExchange(t, addr, []byte(c.req))
		if r.Status < 400 || r.Status > 499 {
			t.Errorf("%s = %d %s, want 4xx", c.name, r.Status, r.Body)
			continue
		}
		if msg := errorShape(r.Header.Get, r.Body); msg != "" {
			t.Errorf("%s: %s", c.name, msg)
		}
	}
}

// Request methods outside HTTP's own set are counted under one label, so
// a client cannot grow the metrics without bound (reliability.md B-15).
func TestArbitraryMethodsDoNotGrowMetricSeries(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	for i := range 20 {
		r := g.Do(t, fmt.Sprintf("BOGUS%d", i), "/v1/me", "", nil)
		if r.Status != 405 && r.Status != 404 {
			t.Errorf("BOGUS%d /v1/me = %d %s", i, r.Status, r.Body)
		}
	}
	r := g.Do(t, "GET", "/metrics", edgetest.AdminKey, nil)
	if r.Status != 200 {
		t.Fatalf("GET /metrics = %d", r.Status)
	}
	if strings.Contains(string(r.Body), "BOGUS") {
		t.Errorf("metrics carry client-chosen methods as labels")
	}
	if !strings.Contains(string(r.Body), `method="OTHER"`) {
		t.Errorf("metrics lack the OTHER method label for non-standard methods")
	}
}
