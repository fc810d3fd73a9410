package mockllm_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/assistiv/gateway/mockllm"
)

func TestInjectedStatusUsesProviderBodies(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		provider   int
		status     string
		retryAfter bool
		check      func(map[string]any) bool
	}{
		{pOpenAI, "429", true, func(v map[string]any) bool { return path(v, "error", "code") == "rate_limit_exceeded" }},
		{pOpenAI, "500", false, func(v map[string]any) bool { return path(v, "error", "type") == "server_error" }},
		{pOpenAI, "503", true, func(v map[string]any) bool { return path(v, "error", "type") == "server_error" }},
		{pAnthropic, "429", true, func(v map[string]any) bool { return path(v, "error", "type") == "rate_limit_error" }},
		{pAnthropic, "500", false, func(v map[string]any) bool { return path(v, "error", "type") == "api_error" }},
		{pAnthropic, "529", true, func(v map[string]any) bool {
			return path(v, "error", "type") == "overloaded_error" && path(v, "error", "message") == "Overloaded"
		}},
		{pGemini, "429", true, func(v map[string]any) bool { return path(v, "error", "status") == "RESOURCE_EXHAUSTED" }},
		{pGemini, "500", false, func(v map[string]any) bool { return path(v, "error", "status") == "INTERNAL" }},
		{pGemini, "503", true, func(v map[string]any) bool {
			return path(v, "error", "status") == "UNAVAILABLE" && num(path(v, "error", "code")) == 503
		}},
	}
	for _, tc := range cases {
		name := providerNames[tc.provider] + "/" + tc.status
		t.Run(name, func(t *testing.T) {
			for _, via := range []string{"header", "model"} {
				model, hdr := "m", map[string]string{"X-Mock-Error": tc.status}
				if via == "model" {
					model, hdr = "some-model-mock-error-"+tc.status, nil
				}
				for _, stream := range []bool{false, true} {
					resp := e.do(tc.provider, request(tc.provider, model, "hi", stream, 0, nil), stream, hdr)
					b := readAll(t, resp)
					if resp.StatusCode != atoi(tc.status) || !tc.check(decode(t, b)) {
						t.Errorf("%s stream=%v: status %d body %s", via, stream, resp.StatusCode, b)
					}
					if got := resp.Header.Get("Retry-After"); (got == "1") != tc.retryAfter {
						t.Errorf("%s: Retry-After = %q", via, got)
					}
				}
			}
		})
	}
	st := e.srv.Stats()
	if got := st.Routes[mockllm.RouteAnthropic].ErrorStatus["529"]; got != 4 {
		t.Errorf("anthropic 529 count = %d, want 4", got)
	}
	if got := st.Routes[mockllm.RouteOpenAI].Outcomes[mockllm.OutcomeError]; got != 12 {
		t.Errorf("openai error outcomes = %d, want 12", got)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestHangUntilClientLeavesOrHangMax(t *testing.T) {
	e := newEnv(t, func(c *mockllm.Config) { c.HangMax = 300 * time.Millisecond })
	// The client gives up first.
	hc := &http.Client{Transport: e.hc.Transport, Timeout: 100 * time.Millisecond}
	req, _ := http.NewRequest("POST", e.base+"/v1/chat/completions", strings.NewReader(request(pOpenAI, "mock-hang", "hi", false, 0, nil)))
	req.Header.Set("Authorization", "Bearer k")
	start := time.Now()
	if _, err := hc.Do(req); err == nil {
		t.Fatal("hang answered")
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Errorf("client timed out after %v", d)
	}
	// HangMax closes the connection without a response.
	start = time.Now()
	_, err := e.hc.Do(mustReq(t, e.base+"/v1/messages", request(pAnthropic, "m", "hi", true, 0, nil),
		"X-Api-Key", "k", "Anthropic-Version", "2023-06-01", "X-Mock-Error", "hang"))
	if err == nil {
		t.Fatal("hang answered")
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("connection closed after %v, want HangMax 300ms", d)
	}
	if got := e.srv.Count(mockllm.RouteAnthropic, mockllm.OutcomeHang); got != 1 {
		t.Errorf("hang outcomes = %d", got)
	}
}

func mustReq(t testing.TB, url, body string, kv ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	return req
}

func TestMalformedStreamMidway(t *testing.T) {
	e := newEnv(t, func(c *mockllm.Config) { c.Tokens = 8 })
	for p := range providerNames {
		events, err := readSSE(e.do(p, request(p, "m-mock-malformed-stream", "hi", true, 0, nil), true, nil))
		if err != nil {
			t.Fatalf("%s: %v", providerNames[p], err)
		}
		bad, good := 0, 0
		for _, ev := range events {
			var v any
			if json.Unmarshal([]byte(ev.data), &v) != nil {
				bad++
			} else {
				good++
			}
		}
		if bad != 1 || good < 3 {
			t.Errorf("%s: %d malformed, %d good events; want 1 malformed after several good", providerNames[p], bad, good)
		}
	}
	// Non-streaming: 200 with half a JSON body.
	resp := e.do(pOpenAI, request(pOpenAI, "m", "hi", false, 0, nil), false, map[string]string{"X-Mock-Error": "malformed_stream"})
	b := readAll(t, resp)
	var v any
	if resp.StatusCode != 200 || json.Unmarshal(b, &v) == nil {
		t.Errorf("non-stream malformed: %d %s", resp.StatusCode, b)
	}
	if got := e.srv.Count(mockllm.RouteOpenAI, mockllm.OutcomeMalformed); got != 2 {
		t.Errorf("malformed outcomes = %d", got)
	}
}

func TestDisconnectMidStream(t *testing.T) {
	e := newEnv(t, func(c *mockllm.Config) { c.Tokens = 8 })
	for p := range providerNames {
		events, err := readSSE(e.do(p, request(p, "m", "hi", true, 0, nil), true, map[string]string{"X-Mock-Error": "disconnect"}))
		if err == nil {
			t.Errorf("%s: stream ended cleanly after %d events; want a broken connection", providerNames[p], len(events))
		}
		if len(events) < 3 {
			t.Errorf("%s: only %d events before the disconnect", providerNames[p], len(events))
		}
	}
	// Non-streaming: closed before any byte.
	_, err := e.hc.Do(mustReq(t, e.base+"/v1/chat/completions", request(pOpenAI, "mock-disconnect", "hi", false, 0, nil), "Authorization", "Bearer k"))
	if err == nil {
		t.Error("non-stream disconnect answered")
	}
	if got := e.srv.Stats().Routes[mockllm.RouteOpenAI].Outcomes[mockllm.OutcomeDisconnect]; got < 2 {
		t.Errorf("disconnect outcomes = %d", got)
	}
}

func TestStallAndStreamError(t *testing.T) {
	e := newEnv(t, func(c *mockllm.Config) { c.Tokens = 6; c.HangMax = 200 * time.Millisecond })
	start := time.Now()
	events, err := readSSE(e.do(pOpenAI, request(pOpenAI, "m-mock-stall", "hi", true, 0, nil), true, nil))
	if err == nil || len(events) < 2 || time.Since(start) < 150*time.Millisecond {
		t.Errorf("stall: %d events, err %v after %v", len(events), err, time.Since(start))
	}
	events, err = readSSE(e.do(pAnthropic, request(pAnthropic, "m", "hi", true, 0, nil), true, map[string]string{"X-Mock-Error": "stream_error"}))
	if err != nil {
		t.Fatal(err)
	}
	last := events[len(events)-1]
	if last.name != "error" || path(jsonOf(t, last.data), "error", "type") != "overloaded_error" {
		t.Errorf("last anthropic event %s %s; want an overloaded_error event", last.name, last.data)
	}
	events, err = readSSE(e.do(pOpenAI, request(pOpenAI, "m", "hi", true, 0, nil), true, map[string]string{"X-Mock-Error": "stream_error"}))
	if err != nil || path(jsonOf(t, events[len(events)-1].data), "error", "type") != "server_error" {
		t.Errorf("openai stream_error: %v %v", err, events)
	}
}

func TestFailFirstThenSucceed(t *testing.T) {
	e := newEnv(t, nil)
	body := request(pAnthropic, "claude-mock-fail-first-2-mock-error-529", "retry me", false, 0, nil)
	var statuses []int
	for range 4 {
		resp := e.do(pAnthropic, body, false, nil)
		readAll(t, resp)
		statuses = append(statuses, resp.StatusCode)
	}
	if want := []int{529, 529, 200, 200}; !equalInts(statuses, want) {
		t.Errorf("statuses = %v, want %v", statuses, want)
	}
	// A different body has its own count; the default failure is ErrorStatus.
	statuses = nil
	for i := range 3 {
		resp := e.do(pOpenAI, request(pOpenAI, "m", "other", false, 0, nil), false, map[string]string{"X-Mock-Fail-First": "1"})
		readAll(t, resp)
		statuses = append(statuses, resp.StatusCode)
		_ = i
	}
	if want := []int{500, 200, 200}; !equalInts(statuses, want) {
		t.Errorf("header fail-first statuses = %v, want %v", statuses, want)
	}
	// X-Mock-Fail-Key groups different bodies.
	statuses = nil
	for i := range 3 {
		body := request(pGemini, "g", "body "+string(rune('a'+i)), false, 0, nil)
		resp := e.do(pGemini, body, false, map[string]string{"X-Mock-Fail-First": "2", "X-Mock-Fail-Key": "k1", "X-Mock-Error": "503"})
		readAll(t, resp)
		statuses = append(statuses, resp.StatusCode)
	}
	if want := []int{503, 503, 200}; !equalInts(statuses, want) {
		t.Errorf("fail-key statuses = %v, want %v", statuses, want)
	}
	// Reset forgets progress.
	e.srv.Reset()
	resp := e.do(pAnthropic, body, false, nil)
	readAll(t, resp)
	if resp.StatusCode != 529 {
		t.Errorf("after Reset: %d, want 529 again", resp.StatusCode)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestErrorRateIsEvenAndDeterministic(t *testing.T) {
	e := newEnv(t, func(c *mockllm.Config) { c.ErrorRate = 0.25; c.ErrorStatus = 503 })
	var statuses []int
	for range 8 {
		resp := e.do(pOpenAI, request(pOpenAI, "m", "hi", false, 0, nil), false, nil)
		readAll(t, resp)
		statuses = append(statuses, resp.StatusCode)
	}
	if want := []int{200, 200, 200, 503, 200, 200, 200, 503}; !equalInts(statuses, want) {
		t.Errorf("statuses = %v, want %v", statuses, want)
	}
}

func TestBadControlsAndBodiesAre400(t *testing.T) {
	e := newEnv(t, nil)
	for _, hdr := range []map[string]string{
		{"X-Mock-Latency": "soon"}, {"X-Mock-Error": "418x"}, {"X-Mock-Tokens": "0"}, {"X-Mock-Tokens-Per-Second": "-1"},
	} {
		resp := e.do(pOpenAI, request(pOpenAI, "m", "hi", false, 0, nil), false, hdr)
		if b := readAll(t, resp); resp.StatusCode != 400 || path(decode(t, b), "error", "message") == nil {
			t.Errorf("%v: %d %s", hdr, resp.StatusCode, b)
		}
	}
	for p, body := range []string{`{"model":"m"`, `{"model":"m","messages":[{"role":"user","content":"x"}]}`, `{"contents":[]}`} {
		resp := e.do(p, body, false, nil)
		if b := readAll(t, resp); resp.StatusCode != 400 {
			t.Errorf("%s bad body: %d %s", providerNames[p], resp.StatusCode, b)
		}
	}
	// A model that merely contains "mock-" is a plain model.
	resp := e.do(pOpenAI, request(pOpenAI, "mock-model", "hi", false, 0, nil), false, nil)
	if b := readAll(t, resp); resp.StatusCode != 200 {
		t.Errorf("mock-model: %d %s", resp.StatusCode, b)
	}
}

func TestLatencyAndTTFTKnobs(t *testing.T) {
	e := newEnv(t, nil)
	start := time.Now()
	readAll(t, e.do(pOpenAI, request(pOpenAI, "m-mock-latency-80ms", "hi", false, 0, nil), false, map[string]string{"X-Mock-TTFT": "40"}))
	if d := time.Since(start); d < 110*time.Millisecond {
		t.Errorf("non-stream took %v, want >= latency 80ms + ttft 40ms", d)
	}
	start = time.Now()
	resp := e.do(pGemini, request(pGemini, "g", "hi", true, 0, nil), true, map[string]string{"X-Mock-TTFT": "100ms"})
	headersAt := time.Since(start)
	events, err := readSSE(resp)
	if err != nil || len(events) == 0 {
		t.Fatal(err)
	}
	if first := events[0].at.Sub(start); first < 90*time.Millisecond {
		t.Errorf("first token after %v, want >= 100ms (headers after %v)", first, headersAt)
	}
}

func TestStatsEndpointResetAndRecordedRequests(t *testing.T) {
	e := newEnv(t, nil)
	readAll(t, e.do(pOpenAI, request(pOpenAI, "gpt-4o", "first", false, 0, nil), false, map[string]string{"X-Custom": "yes"}))
	events, _ := readSSE(e.do(pOpenAI, request(pOpenAI, "gpt-4o", "second", true, 0, nil), true, nil))
	_ = events
	readAll(t, e.do(pGemini, request(pGemini, "g", "third", false, 0, nil), false, map[string]string{"X-Goog-Api-Key": ""}))
	readAll(t, e.do(pGemini, request(pGemini, "g", "third", false, 0, nil), false, map[string]string{"X-Goog-Api-Key": "", "X-Test": "q"}))

	resp, err := e.hc.Get(e.base + "/mock/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st mockllm.Stats
	if err := json.Unmarshal(readAll(t, resp), &st); err != nil {
		t.Fatal(err)
	}
	oa := st.Routes[mockllm.RouteOpenAI]
	if st.Total != 4 || oa.Requests != 2 || oa.Streams != 1 || oa.Outcomes[mockllm.OutcomeOK] != 2 ||
		st.Routes[mockllm.RouteGemini].Outcomes[mockllm.OutcomeUnauthorized] != 2 {
		t.Errorf("stats = %+v", st)
	}
	if e.srv.Requests() != 4 || e.srv.RouteRequests(mockllm.RouteGemini) != 2 {
		t.Errorf("Requests() = %d", e.srv.Requests())
	}

	last, ok := e.srv.LastRequest(mockllm.RouteOpenAI)
	if !ok || !strings.Contains(string(last.Body), `"second"`) || last.Header.Get("Authorization") != "Bearer sk-test-key-123" ||
		last.URI != "/v1/chat/completions" || last.Method != "POST" {
		t.Errorf("last openai request = %+v", last)
	}
	all := e.srv.LastRequests(mockllm.RouteOpenAI)
	if len(all) != 2 || all[0].Header.Get("X-Custom") != "yes" {
		t.Errorf("recorded = %d, first headers %v", len(all), all[0].Header)
	}

	resp, err = e.hc.Post(e.base+"/mock/reset", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if st := e.srv.Stats(); st.Total != 0 || len(e.srv.LastRequests(mockllm.RouteOpenAI)) != 0 {
		t.Errorf("after reset: %+v", st)
	}
}

func TestRecordedRingIsBounded(t *testing.T) {
	e := newEnv(t, func(c *mockllm.Config) { c.RecordRequests = 3 })
	for i := range 5 {
		readAll(t, e.do(pAnthropic, request(pAnthropic, "m", "msg"+string(rune('0'+i)), false, 0, nil), false, nil))
	}
	all := e.srv.LastRequests(mockllm.RouteAnthropic)
	if len(all) != 3 || !strings.Contains(string(all[0].Body), "msg2") || !strings.Contains(string(all[2].Body), "msg4") {
		t.Errorf("ring holds %d: %q ... %q", len(all), all[0].Body, all[len(all)-1].Body)
	}
}

func TestCloseEndsHangsAndStreams(t *testing.T) {
	e := newEnv(t, func(c *mockllm.Config) { c.TokensPerSecond = 2; c.Tokens = 100 })
	errs := make(chan error, 2)
	go func() {
		_, err := e.hc.Do(mustReq(t, e.base+"/v1/chat/completions", request(pOpenAI, "mock-hang", "hi", false, 0, nil), "Authorization", "Bearer k"))
		errs <- err
	}()
	go func() {
		resp, err := e.hc.Do(mustReq(t, e.base+"/v1/chat/completions", request(pOpenAI, "m", "hi", true, 0, nil), "Authorization", "Bearer k"))
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		errs <- err
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	for range 2 {
		select {
		case <-errs:
		case <-time.After(5 * time.Second):
			t.Fatal("client still blocked after Close")
		}
	}
	if got := e.srv.Count(mockllm.RouteOpenAI, mockllm.OutcomeShutdown); got != 1 {
		t.Errorf("shutdown outcomes = %d, want the one stream", got)
	}
}

func TestShutdownLetsStreamsFinish(t *testing.T) {
	e := newEnv(t, func(c *mockllm.Config) { c.TokensPerSecond = 50; c.Tokens = 10 })
	done := make(chan error, 1)
	go func() {
		events, err := readSSE(e.do(pOpenAI, request(pOpenAI, "m", "hi", true, 0, nil), true, nil))
		if err == nil && (len(events) == 0 || events[len(events)-1].data != "[DONE]") {
			err = errors.New("stream cut short")
		}
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := contextWithTimeout(5 * time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("stream during graceful shutdown: %v", err)
	}
}

// ErrorFault turns the requests ErrorRate picks into that fault instead of
// ErrorStatus: here a malformed stream on every other request.
func TestErrorFaultReplacesTheStatusOfErrorRate(t *testing.T) {
	e := newEnv(t, func(c *mockllm.Config) { c.ErrorRate = 0.5; c.ErrorStatus = 503; c.ErrorFault = "malformed_stream" })
	var malformed, ok int
	for range 4 {
		resp := e.do(pOpenAI, request(pOpenAI, "m", "hi", true, 0, nil), false, nil)
		b := readAll(t, resp)
		switch {
		case resp.StatusCode != 200:
			t.Fatalf("status %d: ErrorFault must replace ErrorStatus", resp.StatusCode)
		case strings.Contains(string(b), "data: [DONE]"):
			ok++
		default:
			malformed++
		}
	}
	if ok != 2 || malformed != 2 {
		t.Fatalf("%d complete and %d malformed streams, want 2 and 2", ok, malformed)
	}
	cfg := mockllm.DefaultConfig()
	cfg.ErrorFault = "sometimes"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "ErrorFault") {
		t.Fatalf("an unknown ErrorFault: Validate = %v", err)
	}
}
