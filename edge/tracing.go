package edge

import (
	"context"
	"encoding/json"
	"net/url"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/tracesample"
	"github.com/assistiv/gateway/providers"
	"github.com/assistiv/gateway/providers/catalog"
)

// OpenTelemetry traces. With [Deps.Tracer] nil (OTEL_EXPORTER_OTLP_ENDPOINT
// unset) every hook below costs one nil check of call.tr and allocates
// nothing. With a tracer, a request whose span the sampler drops (not
// recording) is treated the same way: only the 1 % (say) that are sampled
// pay for spans. With [Deps.TraceSampler] a request that starts a trace
// is decided before any span exists (one random number for the 99 %);
// one carrying a traceparent still asks the SDK (parent-based sampling).
//
// The tree of one inference call:
//
//	POST /v1/chat/completions          server; platform, end user, usage
//	├── admission                      budget, rate windows and wallet lease
//	├── chat gpt-4o-mini               client: the upstream call (GenAI attributes);
//	│                                  its traceparent is sent to the provider
//	├── streaming                      streams: first to last event relayed
//	└── settlement                     the durable charge
//
// Attributes follow the GenAI semantic conventions (gen_ai.*) plus
// assistiv.platform.id, assistiv.end_user.id and assistiv.request.id. No
// span carries a key, a header, a prompt or a completion; with
// [Config.TraceContent] the upstream span also carries
// gen_ai.input.messages and (non-streamed) gen_ai.output.messages.

// reqTrace is one sampled request's spans. Its spans are safe for
// concurrent use (a stream's writer ends them on its own goroutine).
type reqTrace struct {
	tracer   trace.Tracer
	ctx      context.Context // carries root
	root     trace.Span
	up       trace.Span // the upstream call; for a stream, open until its last event
	stream   trace.Span // a stream relayed to the client
	provider string
	owned    bool // a stream ends root after its last event; set before the writer starts
	content  bool
}

var traceContext propagation.TraceContext

// headerCarrier reads a request's W3C trace headers.
type headerCarrier struct{ h *fasthttp.RequestHeader }

func (c headerCarrier) Get(k string) string { return string(c.h.Peek(k)) }
func (c headerCarrier) Set(k, v string)     { c.h.Set(k, v) }
func (c headerCarrier) Keys() []string      { return []string{"traceparent", "tracestate"} }

// traceRequest starts the request's span, as a child of an incoming
// traceparent. A span the sampler drops leaves c.tr nil. Until the span is
// known to record, nothing is copied out of the request (the unsampled
// 99 % pay the SDK's sampling decision and little else).
func (s *Server) traceRequest(c *call) {
	ctx := context.Background()
	h := &c.ctx.Request.Header
	if len(h.Peek("traceparent")) > 0 {
		ctx = traceContext.Extract(ctx, headerCarrier{h})
	}
	if smp := s.deps.TraceSampler; smp != nil && !trace.SpanContextFromContext(ctx).IsValid() {
		// A request that starts a trace: the edge decides here, and a
		// dropped one never reaches the SDK.
		if !smp.SampleRoot() {
			return
		}
		ctx = tracesample.Mark(ctx)
	}
	ctx, span := s.deps.Tracer.Start(ctx, spanName(c.ctx), trace.WithSpanKind(trace.SpanKindServer))
	if !span.IsRecording() {
		span.End()
		return
	}
	span.SetAttributes(
		attribute.String("http.request.method", string(c.ctx.Method())),
		attribute.String("url.path", string(c.ctx.Path())),
		attribute.String("assistiv.request.id", c.rid),
	)
	c.tr = &reqTrace{tracer: s.deps.Tracer, ctx: ctx, root: span, content: s.cfg.TraceContent}
}

// spanName is the request span's name: the method, and the path for the
// inference routes (they hold no ids: low cardinality). It allocates nothing.
func spanName(ctx *fasthttp.RequestCtx) string {
	m, p := ctx.Method(), ctx.Path()
	if string(m) == "POST" {
		switch string(p) {
		case "/v1/chat/completions":
			return "POST /v1/chat/completions"
		case "/v1/responses":
			return "POST /v1/responses"
		}
		return "POST"
	}
	for _, name := range []string{"GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"} {
		if string(m) == name {
			return name
		}
	}
	return "HTTP"
}

// endRequest ends the request's span once its answer is written, unless a
// stream owns it.
func (t *reqTrace) endRequest(ctx *fasthttp.RequestCtx, err error) {
	if t.owned {
		return
	}
	status := ctx.Response.StatusCode()
	t.root.SetAttributes(attribute.Int("http.response.status_code", status))
	if err != nil {
		t.root.SetAttributes(attribute.String("error.type", errorType(err)))
	}
	if status >= 500 {
		t.root.SetStatus(codes.Error, "")
	}
	t.root.End()
}

// errorType is the API error code of err (never its message: it may quote input).
func errorType(err error) string {
	if ae, ok := err.(*apiError); ok && ae.Code != "" {
		return ae.Code
	}
	return "internal_error"
}

// endSpan ends a child span, marking a failure.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.SetAttributes(attribute.String("error.type", errorType(err)))
		span.SetStatus(codes.Error, "")
	}
	span.End()
}

// admitTraced is [Server.admit] inside an "admission" span.
func (s *Server) admitTraced(c *call, ctx context.Context, p actors.Principal, rid string, m catalog.Model, promptEst, maxOut int64) (*billing, error) {
	t := c.tr
	if t == nil {
		return s.admit(ctx, p, rid, m, promptEst, maxOut)
	}
	t.provider = m.Provider
	t.root.SetAttributes(
		attribute.String("assistiv.platform.id", string(p.Platform)),
		attribute.String("assistiv.end_user.id", string(p.EndUser)),
		attribute.String("gen_ai.operation.name", "chat"),
		attribute.String("gen_ai.system", m.Provider),
		attribute.String("gen_ai.request.model", m.ID),
	)
	_, span := t.tracer.Start(t.ctx, "admission")
	span.SetAttributes(attribute.Int64("assistiv.admission.max_tokens", promptEst+maxOut))
	b, err := s.admit(ctx, p, rid, m, promptEst, maxOut)
	endSpan(span, err)
	return b, err
}

// startUpstream starts the upstream call's client span and returns ctx
// carrying its traceparent for the provider.
func (t *reqTrace) startUpstream(ctx context.Context, target providers.Upstream, req *providers.ChatRequest) (context.Context, trace.Span) {
	_, span := t.tracer.Start(t.ctx, "chat "+req.Model, trace.WithSpanKind(trace.SpanKindClient))
	attrs := []attribute.KeyValue{
		attribute.String("gen_ai.operation.name", "chat"),
		attribute.String("gen_ai.system", t.provider),
		attribute.String("gen_ai.provider.name", t.provider),
		attribute.String("gen_ai.request.model", req.Model),
		attribute.Bool("gen_ai.request.stream", req.Stream),
	}
	if n := req.MaxOutputTokens(); n > 0 {
		attrs = append(attrs, attribute.Int("gen_ai.request.max_tokens", n))
	}
	if req.Temperature != nil {
		attrs = append(attrs, attribute.Float64("gen_ai.request.temperature", *req.Temperature))
	}
	if req.TopP != nil {
		attrs = append(attrs, attribute.Float64("gen_ai.request.top_p", *req.TopP))
	}
	if u, err := url.Parse(target.BaseURL); err == nil && u.Hostname() != "" {
		attrs = append(attrs, attribute.String("server.address", u.Hostname())) // never the path or query
	}
	if t.content {
		if b, err := json.Marshal(req.Messages); err == nil {
			attrs = append(attrs, attribute.String("gen_ai.input.messages", string(b)))
		}
	}
	span.SetAttributes(attrs...)
	return providers.WithHeaders(ctx, providers.Header{Name: "traceparent", Value: traceparent(span.SpanContext())}), span
}

// passTraceparent, for a call tracing is on for but the sampler dropped,
// forwards a valid incoming traceparent to the upstream (re-rendered, never
// the client's bytes), so the caller's trace continues through the
// provider as W3C trace context asks. Nothing when tracing is off or the
// request has none.
func (s *Server) passTraceparent(c *call, ctx context.Context) context.Context {
	if s.deps.Tracer == nil {
		return ctx
	}
	h := &c.ctx.Request.Header
	if len(h.Peek("traceparent")) == 0 {
		return ctx
	}
	sc := trace.SpanContextFromContext(traceContext.Extract(context.Background(), headerCarrier{h}))
	if !sc.IsValid() {
		return ctx
	}
	return providers.WithHeaders(ctx, providers.Header{Name: "traceparent", Value: traceparent(sc)})
}

// traceparent renders a span context as a W3C traceparent header value.
func traceparent(sc trace.SpanContext) string {
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
}

// complete is up.Complete inside the upstream span.
func (s *Server) complete(c *call, up Upstream, ctx context.Context, target providers.Upstream, req *providers.ChatRequest) (*providers.ChatResponse, error) {
	t := c.tr
	if t == nil {
		return up.Complete(s.passTraceparent(c, ctx), target, req)
	}
	ctx, span := t.startUpstream(ctx, target, req)
	resp, err := up.Complete(ctx, target, req)
	if err != nil {
		endSpan(span, upstreamError(err))
		return resp, err
	}
	id, model := resp.ID, resp.Model
	reasons := make([]string, 0, len(resp.Choices))
	for _, ch := range resp.Choices {
		reasons = append(reasons, string(ch.FinishReason))
	}
	if id == "" && resp.Raw != nil {
		// A relayed answer (sent as the upstream wrote it) is not decoded
		// on the request path; a sampled one is, here, for its attributes.
		var head struct {
			ID      string `json:"id"`
			Model   string `json:"model"`
			Choices []struct {
				FinishReason string `json:"finish_reason"`
			} `json:"choices"`
		}
		if json.Unmarshal(resp.Raw, &head) == nil {
			id, model = head.ID, head.Model
			for _, ch := range head.Choices {
				reasons = append(reasons, ch.FinishReason)
			}
		}
	}
	attrs := []attribute.KeyValue{attribute.String("gen_ai.response.model", model), attribute.String("gen_ai.response.id", id)}
	attrs = append(attrs, attribute.StringSlice("gen_ai.response.finish_reasons", reasons))
	if resp.Usage != nil {
		attrs = append(attrs, usageAttrs(*resp.Usage)...)
	}
	if t.content {
		choices := resp.Choices
		if choices == nil && resp.Raw != nil {
			// A relayed answer's choices, decoded for this sampled span only.
			var full providers.ChatResponse
			if json.Unmarshal(resp.Raw, &full) == nil {
				choices = full.Choices
			}
		}
		msgs := make([]providers.Message, 0, len(choices))
		for _, ch := range choices {
			msgs = append(msgs, ch.Message)
		}
		if b, err := json.Marshal(msgs); err == nil {
			attrs = append(attrs, attribute.String("gen_ai.output.messages", string(b)))
		}
	}
	span.SetAttributes(attrs...)
	span.End()
	return resp, nil
}

// openStream is up.Stream inside the upstream span; an open stream keeps
// it, starts the "streaming" span and takes over the request span, which
// [reqTrace.streamEnd] ends after the last event.
func (s *Server) openStream(c *call, up Upstream, ctx context.Context, target providers.Upstream, req *providers.ChatRequest) (*providers.Stream, error) {
	t := c.tr
	if t == nil {
		return up.Stream(s.passTraceparent(c, ctx), target, req)
	}
	ctx, span := t.startUpstream(ctx, target, req)
	st, err := up.Stream(ctx, target, req)
	if err != nil {
		endSpan(span, upstreamError(err))
		return st, err
	}
	t.up = span
	_, t.stream = t.tracer.Start(t.ctx, "streaming")
	t.owned = true
	return st, nil
}

// streamEnd ends a stream's spans after its last event: final is how it
// ended when not completely (nil: [DONE] or the terminal event was sent).
// Safe on a nil t.
func (t *reqTrace) streamEnd(u providers.Usage, final *apiError) {
	if t == nil || !t.owned {
		return
	}
	ua := usageAttrs(u)
	t.up.SetAttributes(ua...)
	t.root.SetAttributes(ua...)
	t.root.SetAttributes(attribute.Int("http.response.status_code", 200))
	if final != nil {
		endSpan(t.stream, final)
		endSpan(t.up, final)
		t.root.SetAttributes(attribute.String("error.type", final.Code))
		if final.Status >= 500 {
			t.root.SetStatus(codes.Error, "")
		}
	} else {
		t.stream.End()
		t.up.End()
	}
	t.root.End()
}

// settleTraced is [Server.settle] inside a "settlement" span.
func (s *Server) settleTraced(c *call, b *billing, u providers.Usage) (int64, error) {
	t := c.tr
	if t == nil {
		return s.settle(b, u)
	}
	_, span := t.tracer.Start(t.ctx, "settlement")
	// The webhook events this settlement writes carry its span: their
	// deliveries become its children.
	b.traceParent = traceparent(span.SpanContext())
	cost, err := s.settle(b, u)
	span.SetAttributes(attribute.Int64("assistiv.cost_nanos", cost))
	span.SetAttributes(usageAttrs(u)...)
	t.root.SetAttributes(usageAttrs(u)...)
	endSpan(span, err)
	return cost, err
}

func usageAttrs(u providers.Usage) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.Int64("gen_ai.usage.input_tokens", u.PromptTokens),
		attribute.Int64("gen_ai.usage.output_tokens", u.CompletionTokens),
	}
}
