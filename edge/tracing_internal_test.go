package edge

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/assistiv/gateway/providers"
)

// TestTracingOffCostsNoAllocation: with no tracer the request's hooks
// (the wrap check, the stream's end, the span name) allocate nothing.
func TestTracingOffCostsNoAllocation(t *testing.T) {
	s := &Server{}
	var rc fasthttp.RequestCtx
	rc.Request.Header.SetMethod("POST")
	rc.Request.SetRequestURI("/v1/chat/completions")
	c := &call{s: s, ctx: &rc}
	var u providers.Usage
	if n := testing.AllocsPerRun(1000, func() {
		if s.deps.Tracer != nil {
			s.traceRequest(c)
		}
		if c.tr != nil {
			c.tr.endRequest(c.ctx, nil)
		}
		c.tr.streamEnd(u, nil)
		_ = spanName(&rc)
	}); n != 0 {
		t.Errorf("tracing off: %v allocations per request, want 0", n)
	}
	if got := spanName(&rc); got != "POST /v1/chat/completions" {
		t.Errorf("spanName = %q", got)
	}
}
