package webhooks

import (
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/assistiv/gateway/internal/ids"
)

// traceAttempt starts the span of one delivery attempt ("webhook deliver",
// a client span; a child of the settlement that wrote the event when that
// request was traced, else of a trace of its own) and puts its
// traceparent on req. The returned
// function ends it with the attempt's result. Without [Config.Tracer] it
// does nothing and allocates nothing. The span carries ids and the event
// type, never the payload, the URL or a secret.
func (s *Service) traceAttempt(req *http.Request, p ids.PlatformID, eid string, m *messageRecord) func(*result) {
	if s.cfg.Tracer == nil {
		return noTrace
	}
	ctx := req.Context()
	if m.TraceParent != "" {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": m.TraceParent})
	}
	_, span := s.cfg.Tracer.Start(ctx, "webhook deliver", trace.WithSpanKind(trace.SpanKindClient))
	if !span.IsRecording() {
		span.End()
		return noTrace
	}
	span.SetAttributes(
		attribute.String("assistiv.platform.id", string(p)),
		attribute.String("assistiv.webhook.endpoint_id", eid),
		attribute.String("assistiv.webhook.message_id", m.ID),
		attribute.String("assistiv.webhook.event_type", m.EventType),
		attribute.Int("assistiv.webhook.attempt", m.Attempts+1),
		attribute.String("server.address", req.URL.Hostname()),
	)
	sc := span.SpanContext()
	req.Header.Set("traceparent", "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-"+sc.TraceFlags().String())
	return func(res *result) {
		if res.code != 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", res.code))
		}
		if res.err != "" {
			span.SetAttributes(attribute.String("error.type", errorKind(res)))
			span.SetStatus(codes.Error, "")
		}
		span.End()
	}
}

func noTrace(*result) {}

// errorKind is a low-cardinality name of a failed attempt.
func errorKind(res *result) string {
	if res.code != 0 {
		return strconv.Itoa(res.code)
	}
	return "transport"
}
