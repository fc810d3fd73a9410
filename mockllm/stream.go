package mockllm

import (
	"bufio"
	"time"

	"github.com/valyala/fasthttp"
)

// streamRun drives one streamed reply: pacing, flushing, fault injection
// and the outcome. It lives on fasthttp's stream-writer goroutine and never
// touches the RequestCtx.
type streamRun struct {
	s        *Server
	w        *bufio.Writer
	route    int
	knobs    knobs
	fault    faultKind
	errEvent []byte
	sse      bool // Gemini: SSE framing, else a JSON array
	total    int  // token events
	sent     int
	first    time.Time
	outcome  Outcome
	buf      []byte // event scratch space
}

// meta writes and flushes a non-token event (role chunk, message_start,
// block boundaries, usage, terminators). False means stop.
func (sr *streamRun) meta(ev []byte) bool {
	if sr.outcome != "" {
		return false
	}
	if _, err := sr.w.Write(ev); err != nil {
		sr.outcome = OutcomeClientGone
		return false
	}
	if err := sr.w.Flush(); err != nil {
		sr.outcome = OutcomeClientGone
		return false
	}
	return true
}

// token waits for the token's slot (TTFT before the first, 1/tps between
// later ones), injects the fault at the middle token, then writes ev.
func (sr *streamRun) token(ev []byte) bool {
	if sr.outcome != "" {
		return false
	}
	if sr.sent == 0 {
		if !sr.s.wait(sr.knobs.ttft) {
			sr.outcome = OutcomeShutdown
			return false
		}
		sr.first = time.Now()
	} else if sr.knobs.tps > 0 {
		due := sr.first.Add(time.Duration(float64(sr.sent) / sr.knobs.tps * float64(time.Second)))
		if !sr.s.wait(time.Until(due)) {
			sr.outcome = OutcomeShutdown
			return false
		}
	}
	if sr.fault != faultNone && sr.sent == sr.total/2 {
		return sr.inject(ev)
	}
	if !sr.meta(ev) {
		return false
	}
	sr.sent++
	return true
}

// inject performs the stream fault in place of token event ev.
func (sr *streamRun) inject(ev []byte) bool {
	switch sr.fault {
	case faultMalformed:
		// Half an event, then a blank line: the client sees a complete
		// event whose JSON is cut off.
		cut := append([]byte(nil), ev[:len(ev)/2]...)
		cut = append(cut, "\n\n"...)
		sr.meta(cut)
		sr.outcome = OutcomeMalformed
	case faultDisconnect:
		// Only on a hijacked connection, closed when the stream returns.
		sr.outcome = OutcomeDisconnect
	case faultStall:
		sr.outcome = OutcomeHang
		if !sr.s.wait(sr.s.cfg.HangMax) {
			sr.outcome = OutcomeShutdown
		}
	case faultStreamError:
		sr.meta(sr.errEvent)
		sr.outcome = OutcomeStreamError
	default:
		sr.outcome = OutcomeError
	}
	return false
}

// finish sets the outcome of a stream that ran to its end.
func (sr *streamRun) finish() {
	if sr.outcome == "" {
		sr.outcome = OutcomeOK
	}
}

// stream writes the streamed reply in the plan's wire format.
func (p *plan) stream(sr *streamRun) {
	switch p.dialect {
	case dialectAnthropic:
		p.streamAnthropic(sr)
	case dialectGemini:
		p.streamGemini(sr)
	default:
		p.streamOpenAI(sr)
	}
	sr.finish()
}

// render returns the non-streaming reply body.
func (p *plan) render() []byte {
	switch p.dialect {
	case dialectAnthropic:
		return p.renderAnthropic()
	case dialectGemini:
		return p.renderGemini()
	default:
		return p.renderOpenAI()
	}
}

// writeHeaders sets the status and headers of a successful reply.
func (s *Server) writeHeaders(ctx *fasthttp.RequestCtx, p *plan, stream, sse bool) {
	h := &ctx.Response.Header
	switch {
	case stream && sse:
		h.SetContentType("text/event-stream; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
	case p.dialect == dialectGemini:
		h.SetContentType("application/json; charset=UTF-8")
	default:
		h.SetContentType("application/json")
	}
	switch p.dialect {
	case dialectAnthropic:
		h.Set("Request-Id", "req_"+p.id)
	case dialectGemini:
	default:
		h.Set("X-Request-Id", "req_"+p.id)
	}
}
