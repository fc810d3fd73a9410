package edge_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/internal/ids"
)

// TestMain fails the package when any test leaves a goroutine behind
// (reliability.md L-13): every gateway a test starts must shut down fully.
// Two fasthttp goroutines are not ours to stop:
//   - updateServerDate: a process-wide ticker fasthttp starts once (on the
//     first response with a Date header; writeError's Response.Reset turns
//     the server's NoDefaultDate off) and never stops, by design.
//   - workerPool.Start.func2: the worker cleaner sleeps
//     MaxIdleWorkerDuration (10 s) between passes and only then notices
//     Shutdown's stop channel, so it outlives a stopped server by up to
//     10 s. Every other goroutine of a server left running (accept loop,
//     workers, store, actors) is still caught.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		// The cleaners of fasthttp clients (the provider transport, the
		// SDK-less test clients) sleep up to 10 s between checks before
		// noticing their client went idle; they hold nothing of ours.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*Client).mCleaner"),
	)
}

// requestIDPattern is the shape of X-Request-Id: "req_" and 26 Crockford
// base32 characters (internal/ids).
var requestIDPattern = regexp.MustCompile(`^req_[0-9a-hjkmnp-tv-z]{26}$`)

// errorShape reports what is wrong with an error response: it must carry an
// X-Request-Id, a JSON body {"error":{"type","code","message","request_id"}}
// with every field set, and request_id equal to the header. It returns ""
// for a well-formed error.
func errorShape(header func(string) string, body []byte) string {
	rid := header("X-Request-Id")
	if !requestIDPattern.MatchString(rid) {
		return fmt.Sprintf("X-Request-Id = %q, want req_<26 chars>", rid)
	}
	if ct := header("Content-Type"); ct != "application/json" {
		return fmt.Sprintf("Content-Type = %q, want application/json", ct)
	}
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(body, &outer); err != nil {
		return fmt.Sprintf("body %q is not a JSON object: %v", body, err)
	}
	if len(outer) != 1 || outer["error"] == nil {
		return fmt.Sprintf("body %s: want exactly one member, error", body)
	}
	var fields map[string]any
	if err := json.Unmarshal(outer["error"], &fields); err != nil {
		return fmt.Sprintf("error member of %s is not an object: %v", body, err)
	}
	for _, f := range []string{"type", "code", "message", "request_id"} {
		s, ok := fields[f].(string)
		if !ok || s == "" {
			return fmt.Sprintf("error.%s missing or empty in %s", f, body)
		}
	}
	if len(fields) != 4 {
		return fmt.Sprintf("error has %d members, want type, code, message, request_id: %s", len(fields), body)
	}
	if fields["request_id"] != rid {
		return fmt.Sprintf("error.request_id = %v, X-Request-Id = %q", fields["request_id"], rid)
	}
	return ""
}

// wantError checks that r is a well-formed error with status and code.
func wantError(tb testing.TB, what string, r *edgetest.Response, status int, code string) {
	tb.Helper()
	if r.Status != status || r.ErrorCode() != code {
		tb.Errorf("%s = %d %s, want %d %s", what, r.Status, r.Body, status, code)
		return
	}
	if msg := errorShape(r.Header.Get, r.Body); msg != "" {
		tb.Errorf("%s: %s", what, msg)
	}
}

// wantStatus checks r's status and returns its body as a JSON object.
func wantStatus(tb testing.TB, what string, r *edgetest.Response, status int) map[string]any {
	tb.Helper()
	if r.Status != status {
		tb.Fatalf("%s = %d %s, want %d", what, r.Status, r.Body, status)
	}
	return object(tb, r.Body)
}

// object decodes a JSON object keeping numbers as their text, so amounts
// compare exactly.
func object(tb testing.TB, body []byte) map[string]any {
	tb.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		tb.Fatalf("decode %s: %v", body, err)
	}
	return m
}

// str reads a string at a path of object members ("api_key", "raw_key").
func str(m map[string]any, path ...string) string {
	var cur any = m
	for _, p := range path {
		o, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = o[p]
	}
	s, _ := cur.(string)
	return s
}

// num reads a JSON number at a path as its decimal text ("" when absent),
// so amounts compare exactly.
func num(m map[string]any, path ...string) string {
	var cur any = m
	for _, p := range path {
		o, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = o[p]
	}
	n, _ := cur.(json.Number)
	return string(n)
}

// list returns the data array of a list response.
func list(tb testing.TB, r *edgetest.Response) []map[string]any {
	tb.Helper()
	m := object(tb, r.Body)
	if m["object"] != "list" {
		tb.Fatalf("object = %v, want list: %s", m["object"], r.Body)
	}
	data, ok := m["data"].([]any)
	if !ok {
		tb.Fatalf("data is not an array: %s", r.Body)
	}
	out := make([]map[string]any, len(data))
	for i, d := range data {
		out[i], _ = d.(map[string]any)
	}
	return out
}

// endUser is one created end-user.
type endUser struct{ id, key string }

// platform is one created platform with its default key.
type platform struct{ id, key string }

func newPlatform(tb testing.TB, g *edgetest.Gateway, name string) platform {
	tb.Helper()
	id, key := g.CreatePlatform(tb, name)
	return platform{id, key}
}

func (p platform) endUser(tb testing.TB, g *edgetest.Gateway, externalID string) endUser {
	tb.Helper()
	id, key := g.CreateEndUser(tb, p.id, p.key, externalID)
	return endUser{id, key}
}

func (p platform) path(rest string) string { return "/v1/platforms/" + p.id + rest }

// fakeID returns a well-formed id that names nothing.
func fakeID(prefix string) string { return ids.New(prefix, time.Now()) }
