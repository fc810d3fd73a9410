package edge_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/edge"
	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/internal/tracesample"
	"github.com/assistiv/gateway/mockllm"
	"github.com/assistiv/gateway/mockllm/mocktest"
	"github.com/assistiv/gateway/webhooks"
)

// otlpReceiver is an in-process OTLP/HTTP collector: it decodes every
// export request's protobuf and keeps the spans.
type otlpReceiver struct {
	URL   string
	mu    sync.Mutex // guards spans
	spans []*tracepb.Span
	srv   *http.Server
}

func startReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &otlpReceiver{URL: "http://" + ln.Addr().String()}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want protobuf on /v1/traces", http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(req.Body)
		var ex collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &ex); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range ex.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				r.spans = append(r.spans, ss.Spans...)
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	})}
	go func() { _ = r.srv.Serve(ln) }()
	t.Cleanup(func() { r.srv.Close() })
	return r
}

// byTrace returns the received spans of one trace by name.
func (r *otlpReceiver) byTrace(traceID []byte) map[string]*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string]*tracepb.Span{}
	for _, s := range r.spans {
		if string(s.TraceId) == string(traceID) {
			m[s.Name] = s
		}
	}
	return m
}

func attrs(s *tracepb.Span) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes {
		v := kv.Value
		switch {
		case v.GetStringValue() != "":
			m[kv.Key] = v.GetStringValue()
		case v.GetArrayValue() != nil:
			var parts []string
			for _, e := range v.GetArrayValue().Values {
				parts = append(parts, e.GetStringValue())
			}
			m[kv.Key] = strings.Join(parts, ",")
		default:
			m[kv.Key] = strings.TrimSpace(strings.TrimPrefix(v.String(), "int_value:"))
		}
	}
	return m
}

// tracedEnv is a gateway exporting every span (always on) to an
// in-process receiver, with a platform whose openai provider is the mock.
type tracedEnv struct {
	recv    *otlpReceiver
	tp      *sdktrace.TracerProvider
	g       *edgetest.Gateway
	mock    *mockllm.Server
	pid, pk string
	uid, uk string
}

func newTracedEnv(t *testing.T, mcfg mockllm.Config, opts ...func(*edgetest.Options, trace.Tracer)) *tracedEnv {
	t.Helper()
	e := &tracedEnv{recv: startReceiver(t)}
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(e.recv.URL+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	e.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
	t.Cleanup(func() { _ = e.tp.Shutdown(context.Background()) })
	var mockURL string
	mockURL, e.mock = mocktest.Start(t, mcfg)
	o := edgetest.Options{Tracer: e.tp.Tracer("test")}
	for _, f := range opts {
		f(&o, o.Tracer)
	}
	e.g = edgetest.Start(t, o)
	e.pid, e.pk = e.g.CreatePlatform(t, "traced")
	if r := e.g.Do(t, "PUT", "/admin/v1/platforms/"+e.pid+"/llm-providers/openai", edgetest.AdminKey,
		map[string]any{"api_key": canaryProviderKey, "base_url": mockURL, "enabled": true}); r.Status != 200 {
		t.Fatalf("configure openai: %d %s", r.Status, r.Body)
	}
	if r := e.g.Do(t, "POST", "/admin/v1/platforms/"+e.pid+"/wallet/topup", edgetest.AdminKey, map[string]any{"amount_usd": 100}); r.Status != 200 {
		t.Fatalf("wallet topup: %d %s", r.Status, r.Body)
	}
	e.uid, e.uk = e.g.CreateEndUser(t, e.pid, e.pk, "traced-user")
	if r := e.g.Do(t, "POST", "/v1/platforms/"+e.pid+"/end-users/"+e.uid+"/budget", e.pk, map[string]any{"amount_usd": 50}); r.Status != 201 {
		t.Fatalf("budget: %d %s", r.Status, r.Body)
	}
	return e
}

const (
	incomingTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	incomingSpan  = "00f067aa0ba902b7"
	secretPrompt  = "PROMPT-CANARY-tell-nobody-51c2"
)

func (e *tracedEnv) chat(t *testing.T, stream bool) *http.Response {
	t.Helper()
	body := `{"model":"gpt-4o-mini","max_tokens":64,"messages":[{"role":"user","content":"` + secretPrompt + `"}]}`
	if stream {
		body = `{"model":"gpt-4o-mini","stream":true,"max_tokens":64,"messages":[{"role":"user","content":"` + secretPrompt + `"}]}`
	}
	req, _ := http.NewRequest("POST", e.g.URL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.uk)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+incomingTrace+"-"+incomingSpan+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// waitSpans waits until the trace has the named spans (export is
// synchronous with span end, which for a stream follows the last event).
func (e *tracedEnv) waitSpans(t *testing.T, traceID []byte, names ...string) map[string]*tracepb.Span {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := e.recv.byTrace(traceID)
		missing := ""
		for _, n := range names {
			if m[n] == nil {
				missing = n
			}
		}
		if missing == "" {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("span %q never arrived; got %v", missing, keys(m))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func keys(m map[string]*tracepb.Span) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// TestTracingChatSpanTreeWithGenAIAttributesAndNoSecrets: a chat call
// under an incoming traceparent produces the request span (its child),
// with admission, the upstream call and settlement under it; the GenAI
// attributes and the platform and end-user ids are set; the upstream got
// the upstream span's traceparent; no span carries a key, the prompt or
// the completion.
func TestTracingChatSpanTreeWithGenAIAttributesAndNoSecrets(t *testing.T) {
	e := newTracedEnv(t, mockllm.DefaultConfig())
	resp := e.chat(t, false)
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("chat: %d %s", resp.StatusCode, out)
	}
	tid, _ := hex.DecodeString(incomingTrace)
	spans := e.waitSpans(t, tid, "POST /v1/chat/completions", "admission", "chat gpt-4o-mini", "settlement")
	root := spans["POST /v1/chat/completions"]
	if hex.EncodeToString(root.ParentSpanId) != incomingSpan || root.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("request span: parent %x kind %v, want parent %s (the incoming traceparent), server", root.ParentSpanId, root.Kind, incomingSpan)
	}
	for _, n := range []string{"admission", "chat gpt-4o-mini", "settlement"} {
		if string(spans[n].ParentSpanId) != string(root.SpanId) {
			t.Errorf("span %q is not a child of the request span", n)
		}
	}
	up := spans["chat gpt-4o-mini"]
	if up.Kind != tracepb.Span_SPAN_KIND_CLIENT {
		t.Errorf("upstream span kind %v, want client", up.Kind)
	}
	ua := attrs(up)
	for k, want := range map[string]string{"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.request.max_tokens": "64"} {
		if ua[k] != want {
			t.Errorf("upstream span %s = %q, want %q", k, ua[k], want)
		}
	}
	for _, k := range []string{"gen_ai.response.model", "gen_ai.response.id", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.response.finish_reasons"} {
		if ua[k] == "" || ua[k] == "0" {
			t.Errorf("upstream span lacks %s (%v)", k, ua)
		}
	}
	ra := attrs(root)
	if ra["assistiv.platform.id"] != e.pid || ra["assistiv.end_user.id"] != e.uid || ra["http.response.status_code"] != "200" || ra["assistiv.request.id"] != resp.Header.Get("X-Request-Id") {
		t.Errorf("request span attributes %v", ra)
	}
	last, ok := e.mock.LastRequest(mockllm.RouteOpenAI)
	if !ok {
		t.Fatal("the mock saw no request")
	}
	wantTP := "00-" + incomingTrace + "-" + hex.EncodeToString(up.SpanId) + "-01"
	if got := last.Header.Get("traceparent"); got != wantTP {
		t.Errorf("upstream got traceparent %q, want %q", got, wantTP)
	}
	var completion struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	object(t, out) // a JSON object
	_ = json.Unmarshal(out, &completion)
	if len(completion.Choices) == 0 || len(completion.Choices[0].Message.Content) < 8 {
		t.Fatalf("no completion text in %s", out)
	}
	e.noSecrets(t, tid, completion.Choices[0].Message.Content)
}

// noSecrets fails when any span of the trace carries a key, the prompt or
// the completion.
func (e *tracedEnv) noSecrets(t *testing.T, tid []byte, completion string) {
	t.Helper()
	for name, s := range e.recv.byTrace(tid) {
		raw := s.String()
		for what, v := range map[string]string{"the provider key": canaryProviderKey, "the end-user key": e.uk, "the platform key": e.pk,
			"the admin key": edgetest.AdminKey, "the prompt": secretPrompt, "the completion": completion} {
			if strings.Contains(raw, v) {
				t.Errorf("span %q carries %s", name, what)
			}
		}
	}
}

// TestTracingStreamSpanEndsAtTheLastEvent: a streamed call's request span
// stays open while the stream runs (the handler returned long before) and
// ends after its last event, with the streaming span inside it.
func TestTracingStreamSpanEndsAtTheLastEvent(t *testing.T) {
	cfg := mockllm.DefaultConfig()
	cfg.Tokens = 30
	cfg.TokensPerSecond = 60 // half a second of stream
	e := newTracedEnv(t, cfg)
	resp := e.chat(t, true)
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream: %d %s", resp.StatusCode, b)
	}
	rd := bufio.NewReader(resp.Body)
	var firstEvent, done time.Time
	var text strings.Builder
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("read stream: %v", err)
		}
		if strings.HasPrefix(line, "data: {") && firstEvent.IsZero() {
			firstEvent = time.Now()
		}
		if strings.HasPrefix(line, "data: {") {
			var ch struct {
				Choices []struct {
					Delta struct{ Content string } `json:"delta"`
				} `json:"choices"`
			}
			_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ch)
			for _, c := range ch.Choices {
				text.WriteString(c.Delta.Content)
			}
		}
		if strings.HasPrefix(line, "data: [DONE]") {
			done = time.Now()
			break
		}
	}
	resp.Body.Close()
	tid, _ := hex.DecodeString(incomingTrace)
	spans := e.waitSpans(t, tid, "POST /v1/chat/completions", "admission", "chat gpt-4o-mini", "streaming", "settlement")
	root, st, up := spans["POST /v1/chat/completions"], spans["streaming"], spans["chat gpt-4o-mini"]
	rootEnd := time.Unix(0, int64(root.EndTimeUnixNano))
	if !rootEnd.After(firstEvent) {
		t.Errorf("request span ended at %v, before the first event reached the client (%v)", rootEnd, firstEvent)
	}
	if rootEnd.After(done.Add(time.Second)) {
		t.Errorf("request span ended at %v, long after [DONE] (%v)", rootEnd, done)
	}
	if root.EndTimeUnixNano < st.EndTimeUnixNano || root.EndTimeUnixNano < up.EndTimeUnixNano {
		t.Errorf("request span ended before its streaming or upstream span")
	}
	if d := time.Duration(root.EndTimeUnixNano - root.StartTimeUnixNano); d < 300*time.Millisecond {
		t.Errorf("request span lasted %v; the stream alone took about 500 ms", d)
	}
	if string(st.ParentSpanId) != string(root.SpanId) {
		t.Errorf("streaming span is not a child of the request span")
	}
	if a := attrs(up); a["gen_ai.usage.output_tokens"] == "" || a["gen_ai.usage.output_tokens"] == "0" {
		t.Errorf("streamed upstream span lacks output tokens: %v", a)
	}
	e.noSecrets(t, tid, text.String())
}

// TestTracingWebhookDeliveryIsAChildOfTheSettlement: the budget.debited
// event a traced call's settlement writes is delivered under that
// settlement's span (same trace, its child), the receiver gets the
// delivery span's traceparent, and the payload it gets (and verifies)
// carries no trace metadata.
func TestTracingWebhookDeliveryIsAChildOfTheSettlement(t *testing.T) {
	e := newTracedEnv(t, mockllm.DefaultConfig(), func(o *edgetest.Options, tr trace.Tracer) {
		o.Webhooks = true
		o.WebhookConfig = func(c *webhooks.Config) { c.Tracer = tr }
	})
	rc := newWhReceiver(t, nil)
	var ep whEndpoint
	r := e.g.Do(t, "POST", whPath(e.pid, ""), edgetest.AdminKey, map[string]any{"url": rc.URL, "event_types": []string{"budget.debited"}})
	if r.Status != 201 {
		t.Fatalf("create endpoint: %d %s", r.Status, r.Body)
	}
	if err := json.Unmarshal(r.Body, &ep); err != nil {
		t.Fatal(err)
	}
	resp := e.chat(t, false)
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("chat: %d %s", resp.StatusCode, out)
	}
	tid, _ := hex.DecodeString(incomingTrace)
	spans := e.waitSpans(t, tid, "settlement", "webhook deliver")
	deliver, settle := spans["webhook deliver"], spans["settlement"]
	if string(deliver.ParentSpanId) != string(settle.SpanId) {
		t.Errorf("webhook deliver's parent %x, want the settlement span %x", deliver.ParentSpanId, settle.SpanId)
	}
	whWait(t, "the budget.debited delivery", func() bool { return len(rc.byType("budget.debited")) > 0 })
	d := rc.byType("budget.debited")[0]
	if want := "00-" + incomingTrace + "-" + hex.EncodeToString(deliver.SpanId) + "-01"; d.header.Get("traceparent") != want {
		t.Errorf("receiver got traceparent %q, want %q", d.header.Get("traceparent"), want)
	}
	if strings.Contains(string(d.body), "traceparent") || d.event.TraceParent != "" {
		t.Errorf("the payload carries trace metadata: %s", d.body)
	}
	whVerify(t, ep.Secret, d)
}

// TestTracingUnsampledCallPassesTheIncomingTraceparentOn: a call whose
// incoming traceparent says "not sampled" records no span, yet the
// upstream still receives that trace context (re-rendered), so the
// caller's trace continues through the provider; a malformed one is not
// forwarded.
func TestTracingUnsampledCallPassesTheIncomingTraceparentOn(t *testing.T) {
	e := newTracedEnv(t, mockllm.DefaultConfig())
	send := func(tp string) string {
		t.Helper()
		body := `{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`
		sendTraced(t, "POST", e.g.URL+"/v1/chat/completions", e.uk, body, tp)
		last, _ := e.mock.LastRequest(mockllm.RouteOpenAI)
		return last.Header.Get("traceparent")
	}
	unsampled := "00-" + incomingTrace + "-" + incomingSpan + "-00"
	if got := send(unsampled); got != unsampled {
		t.Errorf("upstream got traceparent %q, want the unsampled incoming %q", got, unsampled)
	}
	tid, _ := hex.DecodeString(incomingTrace)
	if spans := e.recv.byTrace(tid); len(spans) != 0 {
		t.Errorf("an unsampled call recorded spans: %v", keys(spans))
	}
	// A malformed one starts a trace of the gateway's own (sampled here):
	// the client's bytes never reach the upstream.
	if got := send("00-zz-not-a-trace-01"); strings.Contains(got, "zz") || len(got) != len(unsampled) {
		t.Errorf("upstream got traceparent %q for a malformed incoming one", got)
	}
}

// TestTracingContentCaptureRecordsARelayedAnswer: with content capture
// on (opt-in), the upstream span records the prompt and the completion,
// also for an OpenAI-format answer relayed without decoding.
func TestTracingContentCaptureRecordsARelayedAnswer(t *testing.T) {
	e := newTracedEnv(t, mockllm.DefaultConfig(), func(o *edgetest.Options, _ trace.Tracer) {
		o.EdgeConfig = func(c *edge.Config) { c.TraceContent = true }
	})
	resp := e.chat(t, false)
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("chat: %d %s", resp.StatusCode, out)
	}
	var completion struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(out, &completion); err != nil || len(completion.Choices) == 0 || completion.Choices[0].Message.Content == "" {
		t.Fatalf("no completion in %s", out)
	}
	tid, _ := hex.DecodeString(incomingTrace)
	a := attrs(e.waitSpans(t, tid, "chat gpt-4o-mini")["chat gpt-4o-mini"])
	if !strings.Contains(a["gen_ai.input.messages"], secretPrompt) {
		t.Errorf("gen_ai.input.messages = %q, want the prompt", a["gen_ai.input.messages"])
	}
	want, _ := json.Marshal(completion.Choices[0].Message.Content)
	if !strings.Contains(a["gen_ai.output.messages"], string(want)) {
		t.Errorf("gen_ai.output.messages = %q, want the completion %s", a["gen_ai.output.messages"], want)
	}
}

// countingTracer counts the spans the edge asks for.
type countingTracer struct {
	trace.Tracer
	starts atomic.Int64
}

func (c *countingTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	c.starts.Add(1)
	return c.Tracer.Start(ctx, name, opts...)
}

// TestTracingEdgeHeadSamplerDecidesEachRootOnce: with the edge's head
// sampler, a request that starts a trace is decided before any span
// exists (a dropped one never calls the tracer) and a kept one is not
// drawn again by the SDK (at 50 %, about half the requests are traced,
// not a quarter); a request carrying a traceparent follows its parent.
func TestTracingEdgeHeadSamplerDecidesEachRootOnce(t *testing.T) {
	recv := startReceiver(t)
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(recv.URL+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	smp := tracesample.New(0.5, sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.5)))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(smp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ct := &countingTracer{Tracer: tp.Tracer("test")}
	g := edgetest.Start(t, edgetest.Options{Tracer: ct, TraceSampler: smp})
	_, pk := g.CreatePlatform(t, "sampled")

	get := func(traceparent string) {
		t.Helper()
		sendTraced(t, "GET", g.URL+"/v1/me", pk, "", traceparent)
	}
	roots := func() (n int) {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		for _, s := range recv.spans {
			if s.Name == "GET" && len(s.ParentSpanId) == 0 {
				n++
			}
		}
		return n
	}

	before := ct.starts.Load() // the set-up's own requests
	const n = 400
	for i := 0; i < n; i++ {
		get("")
	}
	starts := int(ct.starts.Load() - before)
	kept := roots()
	// Binomial(400, 0.5): 200 ± 10; sampled twice it would be 100 ± 9.
	if kept < 140 || kept > 260 {
		t.Errorf("%d of %d requests traced at a 50 %% ratio: want about half", kept, n)
	}
	if starts != kept {
		t.Errorf("the edge started %d spans for %d traced requests: dropped requests must not reach the tracer", starts, kept)
	}

	// A sampled incoming parent is followed (all traced, in its trace); an
	// unsampled one is not traced.
	tid, _ := hex.DecodeString(incomingTrace)
	for i := 0; i < 20; i++ {
		get("00-" + incomingTrace + "-" + incomingSpan + "-01")
	}
	recv.mu.Lock()
	inTrace := 0
	for _, s := range recv.spans {
		if string(s.TraceId) == string(tid) {
			inTrace++
		}
	}
	recv.mu.Unlock()
	if inTrace != 20 {
		t.Errorf("%d of 20 requests with a sampled traceparent were traced in its trace", inTrace)
	}
	other := "5bf92f3577b34da6a3ce929d0e0e4736"
	for i := 0; i < 20; i++ {
		get("00-" + other + "-" + incomingSpan + "-00")
	}
	oid, _ := hex.DecodeString(other)
	if spans := recv.byTrace(oid); len(spans) != 0 {
		t.Errorf("requests with an unsampled traceparent were traced: %v", keys(spans))
	}
}

// sendTraced sends one request with key and, when set, a traceparent and
// a JSON body, and fails the test unless it answers 200.
func sendTraced(t *testing.T, method, url, key, body, traceparent string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d", method, url, resp.StatusCode)
	}
}
