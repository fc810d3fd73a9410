package edge_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/assistiv/gateway/edge/edgetest"
)

// Key choices of a fuzzed request.
const (
	fuzzNoKey = iota
	fuzzAdmin
	fuzzPlatformA
	fuzzEndUserA
	fuzzPlatformB
	fuzzRevoked
	fuzzKeys
)

// FuzzRequests sends arbitrary methods, paths, headers and bodies through
// the real fasthttp server (over an in-memory listener) and checks the
// edge's promises (reliability.md B-3): it never panics or answers 5xx
// except for a failed store or an unavailable actor, every answer has an
// X-Request-Id, every error has the one JSON shape, and every other answer
// is JSON. Paths may name fixtures: {p} and {q} are platforms A and B, {u}
// A's end-user, {k} a spare key of A.
func FuzzRequests(f *testing.F) {
	for _, s := range []struct {
		method, path, ctype, hname, hvalue, body string
		key                                      uint8
	}{
		{"GET", "/v1/me", "", "", "", "", fuzzPlatformA},
		{"GET", "/v1/me", "", "X-Assistiv-Platform-Id", "{q}", "", fuzzEndUserA},
		{"GET", "/v1/me?api_key=x", "", "", "", "", fuzzNoKey},
		{"POST", "/admin/v1/platforms", "application/json", "", "", `{"name":"fz","settings":{"markup_pct":12.5,"default_budget":{"amount_usd":1,"period":"daily"}}}`, fuzzAdmin},
		{"PATCH", "/admin/v1/platforms/{p}", "application/json", "", "", `{"default_budget":null,"default_rate_limits":{"requests_per_minute":5}}`, fuzzAdmin},
		{"POST", "/admin/v1/platforms/{p}/wallet/topup", "application/json", "Idempotency-Key", "w1", `{"amount_usd":2.5,"reason":"x"}`, fuzzAdmin},
		{"PUT", "/admin/v1/platforms/{p}/wallet/auto-topup", "application/json", "", "", `{"enabled":true,"threshold_usd":1,"amount_usd":5}`, fuzzAdmin},
		{"GET", "/admin/v1/platforms?limit=2&cursor=cGxhdF8", "", "", "", "", fuzzAdmin},
		{"GET", "/admin/v1/platforms/{p}/wallet/transactions?limit=1", "", "", "", "", fuzzAdmin},
		{"PATCH", "/v1/platforms/{p}", "application/json", "", "", `{"display_name":"x","skills_enabled":true,"wallet_low_balance_usd":1}`, fuzzPlatformA},
		{"POST", "/v1/platforms/{p}/api-keys", "application/json", "", "", `{"name":"k"}`, fuzzPlatformA},
		{"DELETE", "/v1/platforms/{p}/api-keys/{k}", "", "", "", "", fuzzPlatformA},
		{"PUT", "/v1/platforms/{p}/rate-limits", "application/json", "", "", `{"requests_per_minute":10,"tokens_per_minute":1000,"requests_per_day":99}`, fuzzPlatformA},
		{"POST", "/v1/platforms/{p}/end-users", "application/json; charset=utf-8", "", "", `{"external_id":"e1","display_name":"E","metadata":{"a":[1,2,{"b":null}]}}`, fuzzPlatformA},
		{"GET", "/v1/platforms/{p}/end-users?limit=3&cursor=ZXVf&external_id=e1", "", "", "", "", fuzzPlatformA},
		{"PATCH", "/v1/platforms/{p}/end-users/{u}", "application/json", "", "", `{"display_name":"n","metadata":{}}`, fuzzPlatformA},
		{"POST", "/v1/platforms/{p}/end-users/{u}/budget", "application/json", "", "", `{"amount_usd":1e1,"period":"monthly","low_balance_threshold_usd":0.5}`, fuzzPlatformA},
		{"PATCH", "/v1/platforms/{p}/end-users/{u}/budget", "application/json", "", "", `{"amount_usd":3,"is_suspended":false,"period":"one_time"}`, fuzzPlatformA},
		{"POST", "/v1/platforms/{p}/end-users/{u}/budget/topup", "application/json", "Idempotency-Key", "t-1", `{"amount_usd":0.000000001}`, fuzzPlatformA},
		{"POST", "/v1/platforms/{p}/end-users/{u}/budget/debit", "application/json", "", "", `{"amount_usd":0.5,"reason":"r"}`, fuzzPlatformA},
		{"GET", "/v1/platforms/{p}/end-users/{u}/budget/transactions?limit=1&cursor=AAAAAAAAAAE", "", "", "", "", fuzzPlatformA},
		{"PUT", "/v1/platforms/{p}/end-users/{u}/rate-limits", "application/json", "", "", `{"requests_per_minute":1}`, fuzzPlatformA},
		{"DELETE", "/v1/platforms/{p}/end-users/{u}/rate-limits", "", "", "", "", fuzzPlatformA},
		{"DELETE", "/v1/platforms/{p}/end-users/{u}/budget", "", "", "", "", fuzzPlatformA},
		{"GET", "/v1/platforms/{p}/end-users/{u}", "", "", "", "", fuzzPlatformB},
		{"DELETE", "/v1/platforms/{q}/end-users/{u}", "", "", "", "", fuzzPlatformB},
		{"GET", "/v1/platforms/{p}/wallet", "", "", "", "", fuzzRevoked},
		{"POST", "/v1/platforms/{p}/end-users", "text/plain", "", "", `{"external_id":"e"}`, fuzzPlatformA},
		{"POST", "/v1/platforms/{p}/end-users", "application/json", "", "", `{"external_id":"e","x":1}`, fuzzPlatformA},
		{"POST", "/v1/platforms/{p}/end-users/{u}/budget/topup", "application/json", "", "", `{"amount_usd":1e400}`, fuzzPlatformA},
		{"GET", "/healthz", "", "", "", "", fuzzNoKey},
		{"GET", "/metrics", "", "", "", "", fuzzNoKey},
		{"BREW", "/v1/me", "", "", "", "", fuzzPlatformA},
		{"GET", "/nope/../v1/me", "", "", "", "", fuzzPlatformA},
		{"DELETE", "/v1/platforms/{p}/end-users/{u}", "", "", "", "", fuzzPlatformA},
	} {
		f.Add(s.method, s.path, s.key, s.ctype, s.hname, s.hvalue, []byte(s.body))
	}

	ln := fasthttputil.NewInmemoryListener()
	g := edgetest.Start(f, edgetest.Options{Listener: ln, MaxBodyBytes: 64 << 10})
	a := newPlatform(f, g, "fuzz-a")
	b := newPlatform(f, g, "fuzz-b")
	u := a.endUser(f, g, "fuzz-user")
	spare := str(wantStatus(f, "POST api-keys", g.Do(f, "POST", a.path("/api-keys"), a.key, nil), 201), "id")
	revoked := str(wantStatus(f, "POST api-keys", g.Do(f, "POST", a.path("/api-keys"), a.key, nil), 201), "raw_key")
	me := wantStatus(f, "GET /v1/me", g.Do(f, "GET", "/v1/me", revoked, nil), 200)
	wantStatus(f, "revoke", g.Do(f, "DELETE", a.path("/api-keys/"+str(me, "key_id")), a.key, nil), 200)
	keys := [fuzzKeys]string{"", edgetest.AdminKey, a.key, u.key, b.key, revoked}
	ids := strings.NewReplacer("{p}", a.id, "{q}", b.id, "{u}", u.id, "{k}", spare)
	// One connection per request, written and read by hand: fasthttp's
	// Client keeps a cleaner goroutine alive after the last request. A
	// request fasthttp cannot even write is no input for the server.
	errUnwritable := errors.New("unwritable request")
	exchange := func(req *fasthttp.Request, resp *fasthttp.Response) error {
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		if err := req.Write(bw); err != nil || bw.Flush() != nil {
			return errUnwritable
		}
		c, err := ln.Dial()
		if err != nil {
			return err
		}
		defer c.Close()
		// Under the fuzzer's 10 s hang detector, so a stuck server
		// reports here, with its input.
		if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
			return err
		}
		// A server that refuses a request early (413) closes before
		// reading it all: its answer still counts, the write error not.
		_, werr := c.Write(buf.Bytes())
		resp.SkipBody = string(req.Header.Method()) == "HEAD"
		if err := resp.Read(bufio.NewReader(c)); err != nil {
			return fmt.Errorf("read: %w (write: %v)", err, werr)
		}
		return nil
	}
	f.Fuzz(func(t *testing.T, method, path string, key uint8, ctype, hname, hvalue string, body []byte) {
		// The request line and headers must stay one request: a CR or LF
		// would smuggle a second one, whose answer this client never reads.
		for _, s := range []string{method, path, ctype, hname, hvalue} {
			if strings.ContainsAny(s, "\r\n\x00") {
				return
			}
		}
		if strings.ContainsAny(method, " \t:") || strings.ContainsAny(hname, " \t:") || strings.ContainsAny(path, " \t") {
			return
		}
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.Header.SetMethod(method)
		req.SetRequestURI("http://fuzz" + ids.Replace(path))
		req.SetConnectionClose()
		if k := keys[int(key)%fuzzKeys]; k != "" {
			req.Header.Set("Authorization", "Bearer "+k)
		}
		if ctype != "" {
			req.Header.SetContentType(ctype)
		}
		if hname != "" {
			req.Header.Add(hname, ids.Replace(hvalue))
		}
		req.SetBody(body)
		err := exchange(req, resp)
		if errors.Is(err, errUnwritable) {
			return
		}
		if err != nil {
			t.Fatalf("%s %q: %v", method, path, err)
		}
		status := resp.StatusCode()
		header := func(name string) string { return string(resp.Header.Peek(name)) }
		if !requestIDPattern.MatchString(header("X-Request-Id")) {
			t.Fatalf("%s %q = %d without a request id (X-Request-Id %q)", method, path, status, header("X-Request-Id"))
		}
		if method == "HEAD" || string(req.Header.Method()) == "HEAD" {
			return // no body to check
		}
		if status >= 500 {
			var e struct {
				Error struct{ Code string } `json:"error"`
			}
			_ = json.Unmarshal(resp.Body(), &e)
			if !outsideFailure(e.Error.Code) {
				t.Fatalf("%s %q = %d %s", method, path, status, resp.Body())
			}
		}
		if status >= 400 {
			if msg := errorShape(header, resp.Body()); msg != "" {
				t.Fatalf("%s %q = %d: %s", method, path, status, msg)
			}
			return
		}
		if len(resp.Body()) > 0 && !strings.HasPrefix(string(req.URI().Path()), "/metrics") && !json.Valid(resp.Body()) {
			t.Fatalf("%s %q = %d with a non-JSON body %q", method, path, status, resp.Body())
		}
	})
}

// outsideFailure reports whether a 5xx code blames something outside the
// request: the store, an actor that did not answer, an upstream provider,
// or a feature this node runs without (codes ending in _unavailable).
// internal_error, a panic or an unmapped error, never qualifies.
func outsideFailure(code string) bool {
	switch code {
	case "store_failed", "unavailable", "upstream_error", "upstream_timeout":
		return true
	}
	return strings.HasSuffix(code, "_unavailable")
}
