package dashboard

import (
	"bufio"
	"encoding/json"
	"errors"

	"github.com/valyala/fasthttp"
)

// playgroundStream is the Playground's streaming form of the same call:
// the page script posts the form here and reads the API's own server-sent
// events as they arrive. The call's request id comes back in
// X-Assistiv-Request-Id so the page can then show its logged cost.
func (d *Dashboard) playgroundStream(r *req) error {
	eid := r.form("end_user_id")
	var eu endUserJSON
	if err := d.get(platformCaller(r.pid), platPath(r, "/end-users/"+pathSeg(eid)), nil, &eu); err != nil {
		return jsonError(r, err, "end_user_id")
	}
	inner := &fasthttp.RequestCtx{}
	q := &inner.Request
	q.Header.SetMethod("POST")
	q.SetRequestURI("/v1/chat/completions")
	q.Header.SetHost("dashboard.internal")
	q.Header.SetContentType("application/json")
	body, err := json.Marshal(map[string]any{
		"model": r.form("model"), "stream": true, "max_tokens": 256,
		"messages": []map[string]string{{"role": "user", "content": r.form("prompt")}},
	})
	if err != nil {
		return err
	}
	q.SetBody(body)
	d.edge.ServeInternal(inner, endUserCaller(r.pid, eu.ID))
	rid := string(inner.Response.Header.Peek("X-Request-Id"))
	if st := inner.Response.StatusCode(); st != 200 {
		var e struct {
			Error apiError `json:"error"`
		}
		_ = json.Unmarshal(inner.Response.Body(), &e)
		e.Error.Status = st
		return jsonError(r, &e.Error, "model", "messages")
	}
	stream := inner.Response.BodyStream()
	r.ctx.SetContentType("text/event-stream")
	r.ctx.Response.Header.Set("X-Assistiv-Request-Id", rid)
	r.ctx.Response.Header.Set("X-Accel-Buffering", "no")
	r.ctx.Response.ImmediateHeaderFlush = true
	r.ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer inner.Response.CloseBodyStream() //nolint:errcheck // ends the API's writer when the browser leaves
		buf := make([]byte, 4096)
		for {
			n, err := stream.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
				if werr := w.Flush(); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
	return nil
}

// playgroundCallInfo answers a call's logged cost and usage as JSON (for
// the streaming Playground, once the stream ends).
func (d *Dashboard) playgroundCallInfo(r *req) error {
	e := d.waitLog(r, r.param("rid"))
	if e == nil {
		return jsonError(r, &apiError{Status: 404, Code: "not_found", Message: "the call is not logged yet"})
	}
	r.ctx.SetContentType("application/json")
	b, err := json.Marshal(map[string]any{
		"request_id": e.RequestID, "cost_usd": usdText(e.CostUSD), "prompt_tokens": e.PromptTokens,
		"completion_tokens": e.CompletionTokens, "latency_ms": e.LatencyMs, "ttft_ms": e.TTFTMs,
		"log_url": pp(r.pid, "logs/"+e.RequestID),
	})
	if err != nil {
		return err
	}
	r.ctx.SetBody(b)
	return nil
}

// jsonError answers a script's request with the API's error and the form
// field it concerns.
func jsonError(r *req, err error, fields ...string) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		return err
	}
	r.errs = nil
	r.fail(err, fields...)
	field := ""
	for f := range r.errs {
		field = f
	}
	if field == "messages" {
		field = "prompt"
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": ae.Code, "message": ae.Message, "field": field}})
	r.ctx.SetStatusCode(ae.Status)
	r.ctx.SetContentType("application/json")
	r.ctx.SetBody(b)
	return nil
}
