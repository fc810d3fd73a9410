package tracesample

import (
	"context"
	"math"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnvFollowsTheSDKVariables(t *testing.T) {
	for _, tc := range []struct {
		sampler, arg string
		root         float64 // probability of a root decision
		base         string  // prefix of the base sampler's description
	}{
		{"", "", 1, "ParentBased{root:AlwaysOnSampler"},
		{"parentbased_always_on", "", 1, "ParentBased{root:AlwaysOnSampler"},
		{"always_on", "", 1, "AlwaysOnSampler"},
		{"always_off", "", 0, "AlwaysOffSampler"},
		{"parentbased_always_off", "", 0, "ParentBased{root:AlwaysOffSampler"},
		{"traceidratio", "0.25", 0.25, "TraceIDRatioBased{0.25}"},
		{"parentbased_traceidratio", "0.01", 0.01, "ParentBased{root:TraceIDRatioBased{0.01}"},
		{"parentbased_traceidratio", "", 1, "ParentBased{root:TraceIDRatioBased{1}"}, // the SDK's default ratio is 1
	} {
		s, err := FromEnv(env(map[string]string{"OTEL_TRACES_SAMPLER": tc.sampler, "OTEL_TRACES_SAMPLER_ARG": tc.arg}))
		if err != nil {
			t.Fatalf("%s %s: %v", tc.sampler, tc.arg, err)
		}
		if !strings.Contains(s.Description(), "base="+tc.base) {
			t.Errorf("%s %s: description %q, want base %q", tc.sampler, tc.arg, s.Description(), tc.base)
		}
		const n = 100_000
		kept := 0
		for i := 0; i < n; i++ {
			if s.SampleRoot() {
				kept++
			}
		}
		want := tc.root * n
		sd := math.Sqrt(n * tc.root * (1 - tc.root))
		if math.Abs(float64(kept)-want) > 6*sd+0.5 {
			t.Errorf("%s %s: kept %d of %d roots, want %.0f ± %.0f", tc.sampler, tc.arg, kept, n, want, 6*sd)
		}
	}
}

func TestFromEnvRefusesWhatTheSDKWouldIgnore(t *testing.T) {
	for _, m := range []map[string]string{
		{"OTEL_TRACES_SAMPLER": "jaeger_remote"},
		{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"},
		{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "-0.1"},
		{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "one percent"},
		{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "NaN"},
	} {
		if _, err := FromEnv(env(m)); err == nil {
			t.Errorf("%v: accepted", m)
		}
	}
}

// TestMarkedSpansAreSampledOnce: a span started under the edge's mark is
// recorded whatever the base sampler would say (no second draw); an
// unmarked one gets exactly the base's decision.
func TestMarkedSpansAreSampledOnce(t *testing.T) {
	s := New(0.5, sdktrace.ParentBased(sdktrace.NeverSample()))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(s))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tr := tp.Tracer("test")

	ctx, root := tr.Start(Mark(context.Background()), "root")
	if !root.IsRecording() || !root.SpanContext().IsSampled() {
		t.Fatal("a marked root was not sampled")
	}
	_, child := tr.Start(ctx, "child")
	if !child.IsRecording() || child.SpanContext().TraceID() != root.SpanContext().TraceID() {
		t.Fatal("a marked root's child was not sampled in its trace")
	}
	if _, sp := tr.Start(context.Background(), "unmarked"); sp.IsRecording() {
		t.Fatal("an unmarked root was sampled although the base never samples")
	}
	// An unmarked child of a sampled remote parent follows the base (parent-based).
	remote := trace.NewSpanContext(trace.SpanContextConfig{TraceID: [16]byte{1}, SpanID: [8]byte{1}, TraceFlags: trace.FlagsSampled, Remote: true})
	if _, sp := tr.Start(trace.ContextWithRemoteSpanContext(context.Background(), remote), "remote child"); !sp.IsRecording() {
		t.Fatal("the child of a sampled remote parent was dropped")
	}
}

func TestSampleRootAllocatesNothing(t *testing.T) {
	s := New(0.01, sdktrace.TraceIDRatioBased(0.01))
	if n := testing.AllocsPerRun(1000, func() { s.SampleRoot() }); n != 0 {
		t.Fatalf("SampleRoot allocates %.1f times", n)
	}
}
