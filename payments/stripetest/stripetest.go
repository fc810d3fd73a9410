// Package stripetest puts a recording proxy in front of stripe-mock,
// Stripe's official mock server, for tests. stripe-mock answers every API
// route with objects of the real shape and refuses requests its OpenAPI
// spec does not allow, but it keeps no state: it never replays an
// Idempotency-Key, never declines, and always answers a PaymentIntent as
// "requires_payment_method". The proxy adds what tests need of the real
// service: it records each request, replays responses by Idempotency-Key
// as Stripe does (counting only executed charges), and for PaymentIntent
// creations applies a queued action: succeed, decline with a card_error
// in Stripe's wire format, fail with a 500 before executing, execute and
// lose the response, or hold the request until the caller goes away.
// Only tests import it.
package stripetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvMockURL names the variable holding stripe-mock's base URL
// (.ci/run starts it and sets this).
const EnvMockURL = "ASSISTIV_TEST_STRIPE_MOCK"

// MockVersion is the stripe-mock release the tests are written against.
const MockVersion = "v0.203.0"

// MockURL returns stripe-mock's URL. Without it the test is skipped, or
// fails under CI=true.
func MockURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(EnvMockURL)
	why := ""
	if u == "" {
		why = EnvMockURL + " is not set"
	} else if c, err := net.DialTimeout("tcp", strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://"), 2*time.Second); err != nil {
		why = fmt.Sprintf("stripe-mock at %s is not reachable: %v", u, err)
	} else {
		c.Close()
		return strings.TrimRight(u, "/")
	}
	msg := why + "; run `go install github.com/stripe/stripe-mock@" + MockVersion +
		" && stripe-mock -http-addr 127.0.0.1:12111` and set " + EnvMockURL + "=http://127.0.0.1:12111 (.ci/run does this)"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}

// Action is what the proxy does with a PaymentIntent creation.
type Action int

// Actions for PaymentIntent creations.
const (
	// Succeed executes the charge and answers it as succeeded.
	Succeed Action = iota
	// Decline executes the charge and answers 402 card_declined
	// (insufficient_funds), as Stripe does; a replay answers the same.
	Decline
	// ServerError answers 500 without executing (nothing is remembered).
	ServerError
	// ExecuteAndDrop executes the charge (remembered for replays as
	// succeeded) and closes the connection without answering: a charge
	// that succeeded but timed out for the caller.
	ExecuteAndDrop
	// ExecuteAndHold executes the charge (remembered as succeeded) and
	// holds the response until the caller goes away.
	ExecuteAndHold
	// Hold holds the request without executing it until the caller goes
	// away.
	Hold
)

// Request is one request the proxy received.
type Request struct {
	Method         string
	Path           string
	IdempotencyKey string
	Form           url.Values
	Replayed       bool // answered from the idempotency store
}

type stored struct {
	status int
	body   []byte
	params string
}

// Proxy is a running proxy in front of stripe-mock.
type Proxy struct {
	URL  string
	mock string
	srv  *httptest.Server

	mu       sync.Mutex // guards the fields below
	requests []Request
	replies  map[string]stored // by method, path and Idempotency-Key
	actions  []Action
	charges  int
	executed []map[string]any // PaymentIntents created, for search
	// Held is signalled once per held request (Hold, ExecuteAndHold).
	held chan string
}

// Start runs a proxy on 127.0.0.1 in front of stripe-mock until the test
// ends.
func Start(tb testing.TB) *Proxy {
	tb.Helper()
	p := &Proxy{mock: MockURL(tb), replies: map[string]stored{}, held: make(chan string, 16)}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.srv.URL
	tb.Cleanup(p.srv.Close)
	return p
}

// Queue sets what the next PaymentIntent creations do, in order; once the
// queue is empty they succeed.
func (p *Proxy) Queue(a ...Action) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.actions = append(p.actions, a...)
}

// Charges is how many PaymentIntent creations executed (replays and
// requests refused before executing are not charges).
func (p *Proxy) Charges() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.charges
}

// Requests returns the requests received so far whose path starts with
// prefix.
func (p *Proxy) Requests(prefix string) []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Request
	for _, r := range p.requests {
		if strings.HasPrefix(r.Path, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// Held returns a channel that receives the Idempotency-Key of each request
// the proxy starts holding.
func (p *Proxy) Held() <-chan string { return p.held }

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	if r.Method == http.MethodGet {
		form = r.URL.Query()
	}
	req := Request{Method: r.Method, Path: r.URL.Path, IdempotencyKey: r.Header.Get("Idempotency-Key"), Form: form}
	key := r.Method + " " + r.URL.Path + " " + req.IdempotencyKey
	params := canonical(form)

	p.mu.Lock()
	prev, replay := p.replies[key]
	replay = replay && req.IdempotencyKey != ""
	req.Replayed = replay
	p.requests = append(p.requests, req)
	action := Succeed
	isCharge := r.Method == http.MethodPost && r.URL.Path == "/v1/payment_intents"
	if isCharge && !replay && len(p.actions) > 0 {
		action, p.actions = p.actions[0], p.actions[1:]
	}
	p.mu.Unlock()

	if replay {
		if prev.params != params {
			writeJSON(w, 400, map[string]any{"error": map[string]any{"type": "idempotency_error",
				"message": "Keys for idempotent requests can only be used with the same parameters they were first used with."}})
			return
		}
		w.Header().Set("Idempotent-Replayed", "true")
		writeRaw(w, prev.status, prev.body)
		return
	}
	if isCharge {
		p.charge(w, r, body, key, params, action)
		return
	}
	if r.Method == http.MethodGet && r.URL.Path == "/v1/payment_intents/search" {
		p.search(w, r.URL.Query().Get("query"))
		return
	}
	status, out, err := p.forward(r, body)
	if err != nil {
		writeJSON(w, 502, map[string]any{"error": map[string]any{"type": "api_error", "message": err.Error()}})
		return
	}
	p.remember(key, req.IdempotencyKey, status, out, params)
	writeRaw(w, status, out)
}

func (p *Proxy) charge(w http.ResponseWriter, r *http.Request, body []byte, key, params string, action Action) {
	switch action {
	case ServerError:
		writeJSON(w, 500, map[string]any{"error": map[string]any{"type": "api_error", "message": "An unknown error occurred"}})
		return
	case Hold:
		p.held <- r.Header.Get("Idempotency-Key")
		<-r.Context().Done()
		return
	}
	status, out, err := p.forward(r, body)
	if err != nil || status != 200 {
		if err == nil {
			writeRaw(w, status, out) // stripe-mock refused the request's shape
			return
		}
		writeJSON(w, 502, map[string]any{"error": map[string]any{"type": "api_error", "message": err.Error()}})
		return
	}
	var pi map[string]any
	if err := json.Unmarshal(out, &pi); err != nil {
		writeJSON(w, 502, map[string]any{"error": map[string]any{"type": "api_error", "message": err.Error()}})
		return
	}
	form, _ := url.ParseQuery(string(body))
	md := map[string]any{}
	for k, v := range form {
		if strings.HasPrefix(k, "metadata[") && strings.HasSuffix(k, "]") {
			md[k[len("metadata["):len(k)-1]] = v[0]
		}
	}
	pi["metadata"] = md
	p.mu.Lock()
	p.charges++
	p.executed = append(p.executed, pi)
	p.mu.Unlock()
	if action == Decline {
		pi["status"] = "requires_payment_method"
		e := map[string]any{"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
			"message": "Your card has insufficient funds.", "payment_intent": pi}
		b, _ := json.Marshal(map[string]any{"error": e})
		p.remember(key, r.Header.Get("Idempotency-Key"), 402, b, params)
		writeRaw(w, 402, b)
		return
	}
	pi["status"], pi["last_payment_error"] = "succeeded", nil
	b, _ := json.Marshal(pi)
	p.remember(key, r.Header.Get("Idempotency-Key"), 200, b, params)
	switch action {
	case ExecuteAndDrop:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case ExecuteAndHold:
		p.held <- r.Header.Get("Idempotency-Key")
		<-r.Context().Done()
		return
	}
	writeRaw(w, 200, b)
}

// search answers the PaymentIntent search API for queries of the form
// metadata['key']:'value' over the PaymentIntents created through the
// proxy (stripe-mock would answer its fixture whatever the query).
func (p *Proxy) search(w http.ResponseWriter, query string) {
	var k, v string
	if _, err := fmt.Sscanf(strings.NewReplacer("metadata['", "", "']:'", " ", "'", "").Replace(query), "%s %s", &k, &v); err != nil {
		writeJSON(w, 400, map[string]any{"error": map[string]any{"type": "invalid_request_error", "message": "unsupported search query " + query}})
		return
	}
	p.mu.Lock()
	data := []any{}
	for _, pi := range p.executed {
		if md, _ := pi["metadata"].(map[string]any); md[k] == v {
			data = append(data, pi)
		}
	}
	p.mu.Unlock()
	writeJSON(w, 200, map[string]any{"object": "search_result", "url": "/v1/payment_intents/search", "has_more": false, "data": data})
}

func (p *Proxy) remember(key, idem string, status int, body []byte, params string) {
	if idem == "" || status >= 500 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.replies[key] = stored{status: status, body: body, params: params}
}

func (p *Proxy) forward(r *http.Request, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(r.Method, p.mock+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	for _, h := range []string{"Authorization", "Content-Type", "Stripe-Version", "Idempotency-Key"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

func canonical(v url.Values) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s&", k, strings.Join(v[k], ","))
	}
	return b.String()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_stripetest")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
