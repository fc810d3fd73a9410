// Package tracesample is the node's head sampler: the sampling decision
// for a request that starts a trace is taken by the edge before any span
// exists, so the requests it drops cost one random number and nothing
// else (no span, no context, no SDK call).
//
// The OpenTelemetry SDK decides inside Tracer.Start: by then it has
// generated ids under a lock, built a context and a non-recording span,
// and asked the sampler. At a 1 % ratio that is 99 % of the requests
// paying for a decision that keeps none of them. Here the edge asks
// [Sampler.SampleRoot] first and starts spans only for the requests it
// keeps, marking their context ([Mark]); the SDK's sampler is this
// package's [Sampler] too, and it records every span started under the
// mark, so a request the edge kept is never dropped again by a second,
// independent draw (which would make 1 % into 0.01 %).
//
// Everything else — a request with an incoming traceparent, a webhook
// delivery that starts a trace of its own — goes to the sampler
// OTEL_TRACES_SAMPLER names, as the SDK would have built it.
package tracesample

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Sampler samples root requests with a fixed probability at the edge and
// is the SDK's sampler for every span. Safe for concurrent use; immutable.
type Sampler struct {
	// threshold: a root request is kept when a uniform 64-bit draw is
	// below it; keepAll for a ratio of 1 (no draw at all).
	threshold uint64
	keepAll   bool
	base      sdktrace.Sampler
	desc      string
}

// New returns a sampler keeping a root request with probability ratio (in
// [0, 1]) and deciding every other span with base.
func New(ratio float64, base sdktrace.Sampler) *Sampler {
	s := &Sampler{base: base}
	switch {
	case ratio >= 1:
		s.keepAll = true
	case ratio > 0:
		// ratio < 1, so the product is below 2^64.
		s.threshold = uint64(ratio * math.Exp2(64))
	}
	s.desc = fmt.Sprintf("EdgeHead{ratio=%s,base=%s}", strconv.FormatFloat(ratio, 'g', -1, 64), base.Description())
	return s
}

// FromEnv builds the sampler OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
// name (the SDK's own variables and defaults: parentbased_always_on; a
// missing ratio is 1). The edge's root ratio is the configured sampler's
// probability for a span without a parent.
func FromEnv(getenv func(string) string) (*Sampler, error) {
	name := getenv("OTEL_TRACES_SAMPLER")
	ratio := 1.0
	if v := getenv("OTEL_TRACES_SAMPLER_ARG"); v != "" && (name == "traceidratio" || name == "parentbased_traceidratio") {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 || r > 1 || math.IsNaN(r) {
			return nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q must be a ratio in [0, 1]", v)
		}
		ratio = r
	}
	switch name {
	case "", "parentbased_always_on":
		return New(1, sdktrace.ParentBased(sdktrace.AlwaysSample())), nil
	case "always_on":
		return New(1, sdktrace.AlwaysSample()), nil
	case "always_off":
		return New(0, sdktrace.NeverSample()), nil
	case "parentbased_always_off":
		return New(0, sdktrace.ParentBased(sdktrace.NeverSample())), nil
	case "traceidratio":
		return New(ratio, sdktrace.TraceIDRatioBased(ratio)), nil
	case "parentbased_traceidratio":
		return New(ratio, sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER=%q is not supported (always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio)", name)
}

// SampleRoot draws the decision for a request that starts a trace: true
// with the configured probability. It takes no lock (math/rand/v2's
// runtime source) and allocates nothing.
func (s *Sampler) SampleRoot() bool {
	if s.keepAll {
		return true
	}
	return s.threshold != 0 && rand.Uint64() < s.threshold
}

type markKey struct{}

// Mark returns ctx marked as kept by the edge: every span started under
// it (the request's root and, through its context, its children) is
// recorded and sampled.
func Mark(ctx context.Context) context.Context {
	return context.WithValue(ctx, markKey{}, true)
}

// ShouldSample implements sdktrace.Sampler.
func (s *Sampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	if p.ParentContext != nil && p.ParentContext.Value(markKey{}) != nil {
		return sdktrace.SamplingResult{
			Decision:   sdktrace.RecordAndSample,
			Tracestate: trace.SpanContextFromContext(p.ParentContext).TraceState(),
		}
	}
	return s.base.ShouldSample(p)
}

// Description implements sdktrace.Sampler.
func (s *Sampler) Description() string { return s.desc }
