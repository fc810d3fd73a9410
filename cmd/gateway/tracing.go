package main

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/assistiv/gateway/internal/tracesample"
)

// tracing is the node's OpenTelemetry tracer provider, configured by the
// standard variables (OTEL_EXPORTER_OTLP_ENDPOINT or ..._TRACES_ENDPOINT,
// OTEL_EXPORTER_OTLP_HEADERS, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, read by the exporter
// and the SDK themselves). Spans leave through OTLP/HTTP in batches.
type tracing struct {
	tp      *sdktrace.TracerProvider
	sampler *tracesample.Sampler
}

// newTracing returns nil when tracing is off (no endpoint, or
// OTEL_SDK_DISABLED=true): the edge then gets no tracer at all.
func newTracing(log *slog.Logger) (*tracing, error) {
	if !tracingOn(os.LookupEnv) {
		return nil, nil
	}
	exp, err := otlptracehttp.New(context.Background())
	if err != nil {
		return nil, err
	}
	attrs := []attribute.KeyValue{attribute.String("service.version", version)}
	if os.Getenv("OTEL_SERVICE_NAME") == "" && !strings.Contains(os.Getenv("OTEL_RESOURCE_ATTRIBUTES"), "service.name=") {
		attrs = append(attrs, attribute.String("service.name", "assistiv-gateway"))
	}
	if name := os.Getenv("ASSISTIV_NODE_NAME"); name != "" {
		attrs = append(attrs, attribute.String("service.instance.id", name))
	}
	// Default() reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (and
	// names the service unknown_service:gateway without them); ours, merged
	// last, win: they hold service.name only when neither variable does.
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
	if err != nil {
		return nil, err
	}
	// The sampler the variables name, wrapped so the edge can decide for
	// the requests that start a trace before it starts any span.
	smp, err := tracesample.FromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSampler(smp))
	log.Info("tracing on (OTLP/HTTP)", "sampler", os.Getenv("OTEL_TRACES_SAMPLER"), "sampler_arg", os.Getenv("OTEL_TRACES_SAMPLER_ARG"))
	return &tracing{tp: tp, sampler: smp}, nil
}

// tracer returns the gateway's tracer (nil on a nil t: tracing off).
func (t *tracing) tracer() trace.Tracer {
	if t == nil {
		return nil
	}
	return t.tp.Tracer("github.com/assistiv/gateway")
}

// headSampler returns the edge's head sampler (nil on a nil t).
func (t *tracing) headSampler() *tracesample.Sampler {
	if t == nil {
		return nil
	}
	return t.sampler
}

// Close exports the spans still queued (up to 5 s) and stops.
func (t *tracing) Close() {
	if t == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = t.tp.Shutdown(ctx)
}
