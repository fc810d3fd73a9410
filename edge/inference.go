package edge

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/logs"
	"github.com/assistiv/gateway/providers"
	"github.com/assistiv/gateway/providers/catalog"
)

// platformOf names the actor of the caller's platform.
func platformOf(c *call) actors.Identity { return actors.PlatformActor(c.principal.Platform) }

// billing is one inference call's reservation on both accounts, from
// admission to settlement.
type billing struct {
	s         *Server
	platform  ids.PlatformID
	endUser   ids.EndUserID
	resID     string
	rid       string
	model     catalog.Model
	promptEst int64
	rate      *pb.RateLimitInfo
	provider  *pb.ProviderConfig
	markup    int64 // basis points, as the platform actor reported at reservation
	done      bool
	settled   *pb.Settled // what the ledgers charged, once settled
	// traceParent is the settlement span's traceparent when traced ("":
	// not): the events the settlement writes carry it.
	traceParent string
}

// admit reserves the worst case on the end-user's budget (and its rate
// windows) and, in the same step, the provider cost on this node's lease of
// the platform wallet: one actor round trip. 402 and 429 come from here,
// before any upstream request.
func (s *Server) admit(ctx context.Context, p actors.Principal, rid string, m catalog.Model, promptEst, maxOut int64) (*billing, error) {
	worst, err := m.Cost(promptEst, maxOut)
	if err != nil {
		return nil, errBadRequest("invalid_request", "the request's worst-case cost is out of range")
	}
	b := &billing{s: s, platform: p.Platform, endUser: p.EndUser, resID: rid, rid: rid, model: m, promptEst: promptEst}
	// The admission's own deadline travels with it: an Admit the actor
	// reaches after this edge gave up reserves nothing. The reservation
	// expires (voided with a trace) if neither settled nor released within
	// the call's longest life plus the settlement's retries.
	// Its context is not a child of ctx (the upstream call's, which no
	// one cancels before admission returns): a child would register with
	// its parent and cost a map and a lock for nothing.
	dl := time.Now().Add(admitTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	actx, cancel := context.WithDeadline(context.Background(), dl)
	defer cancel()
	res, err := s.deps.Directory.Ask(actx, actors.EndUserActor(p.Platform, p.EndUser), &pb.Admit{
		ReservationId: rid, RequestId: rid, EstimatedTokens: promptEst + maxOut, MaxCostNanos: worst, Provider: m.Provider,
		DeadlineMs: dl.UnixMilli(), TtlMs: (s.cfg.UpstreamTimeout + 2*time.Minute).Milliseconds(),
	})
	if err != nil {
		return nil, err
	}
	ad := res.(*pb.Admitted)
	b.rate, b.provider, b.markup = ad.Rate, ad.Provider, ad.MarkupBps
	return b, nil
}

var (
	dataPrefix = []byte("data: ")
	eventEnd   = []byte("\n\n")
)

// admitTimeout bounds one admission (lease refills included).
const admitTimeout = 10 * time.Second

// release drops the reservation (the call produced nothing billable).
func (s *Server) release(b *billing) {
	defer s.calls.done(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.deps.Directory.Ask(ctx, actors.EndUserActor(b.platform, b.endUser), &pb.Release{ReservationId: b.resID}); err != nil {
		s.log.Error("release reservation", "request_id", b.rid, "err", err)
	}
}

// settle charges the actual usage: the end-user actor writes the budget's
// entry and the wallet lease's spend in one batch; its answer means they
// are durable (billing_durability=sync). The upstream was paid, so a
// settlement that could not be made is retried until it lands or 30 s
// pass; then the reservation stays open for crash recovery to void with
// its trace. With charge_if_unknown the actor charges a call whose
// reservation it does not hold (admitted on a node that crashed before
// the record reached its disk) and answers an attempt that landed
// already from its usage entry, so a retry never charges twice.
func (s *Server) settle(b *billing, u providers.Usage) (int64, error) {
	if b.done {
		return 0, nil
	}
	b.done = true
	defer s.calls.done(b)
	cost, err := b.model.Cost(u.PromptTokens, u.CompletionTokens)
	if err != nil {
		s.log.Error("cost overflow; releasing", "request_id", b.rid, "err", err)
		s.release(b)
		return 0, err
	}
	msg := &pb.Settle{
		ReservationId: b.resID, CostNanos: cost, Tokens: u.PromptTokens + u.CompletionTokens, RequestId: b.rid,
		Model: b.model.ID, PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens,
		TraceParent: b.traceParent, ChargeIfUnknown: true,
	}
	deadline := time.Now().Add(30 * time.Second)
	for attempt := 0; ; attempt++ {
		// The first attempt is bounded by the directory's own ask timeout
		// (10 s by default: well inside the 30 s): no context, no timer of
		// its own. A retry is bounded by what is left of the 30 s.
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if attempt > 0 {
			ctx, cancel = context.WithDeadline(ctx, deadline)
		}
		var res proto.Message
		res, err = s.deps.Directory.Ask(ctx, actors.EndUserActor(b.platform, b.endUser), msg)
		cancel()
		switch {
		case err == nil:
			b.settled, _ = res.(*pb.Settled)
			return cost, nil
		case !errors.Is(err, actors.ErrUnavailable) || time.Now().After(deadline):
			s.log.Error("settle", "request_id", b.rid, "attempts", attempt+1, "err", err)
			return cost, err
		}
		time.Sleep(time.Duration(min(attempt+1, 10)) * 20 * time.Millisecond)
	}
}

// estimateTokens is a cheap upper-leaning estimate of a request's prompt
// tokens for admission: about one token per 3 bytes of the JSON body.
func estimateTokens(body []byte) int64 { return int64(len(body))/3 + 16 }

// toAPI maps an upstream failure to what the client sees.
func upstreamError(err error) error {
	var pe *providers.Error
	if errors.As(err, &pe) {
		status, typ, code := pe.Status, pe.Type, pe.Code
		if status == 401 || status == 403 {
			// The platform's provider key was refused: not the caller's fault.
			status, typ, code = 502, typeInternal, "provider_auth_failed"
		}
		if status == 0 {
			status = 502
		}
		if code == "" {
			code = "upstream_error"
		}
		if typ == "" {
			typ = typeInternal
		}
		e := &apiError{Status: status, Type: typ, Code: code, Message: pe.Message}
		if pe.RetryAfter > 0 {
			e.Header = map[string]string{"Retry-After": strconv.Itoa(int((pe.RetryAfter + time.Second - 1) / time.Second))}
		}
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &apiError{Status: 504, Type: typeInternal, Code: "upstream_timeout", Message: "the upstream did not answer in time"}
	}
	return &apiError{Status: 502, Type: typeInternal, Code: "upstream_error", Message: "the upstream call failed"}
}

// inferenceBody returns the request body of an inference route: present
// and sent as JSON.
func inferenceBody(c *call) ([]byte, error) {
	body := c.ctx.PostBody()
	if len(body) == 0 {
		return nil, errBadRequest("missing_body", "this route needs a JSON body")
	}
	if !isJSONContentType(string(c.ctx.Request.Header.ContentType())) {
		return nil, &apiError{Status: 415, Type: typeInvalid, Code: "unsupported_media_type", Message: "Content-Type must be application/json"}
	}
	return body, nil
}

// inflight is an admitted inference call between its reservation and its
// settlement: the billing, the provider's client and target, and the
// context that bounds the upstream call (cancel it when done).
type inflight struct {
	b      *billing
	up     Upstream
	target providers.Upstream
	ctx    context.Context
	cancel context.CancelFunc
	start  time.Time
}

// begin resolves req.Model in the catalog (rewriting it to the catalog id),
// clamps an absurd output bound to the model's, admits the worst case on
// both accounts and opens the platform's provider key. On error nothing
// stays reserved. promptEst is the admission estimate of the prompt tokens.
func (s *Server) begin(c *call, req *providers.ChatRequest, promptEst int64) (*inflight, error) {
	m, err := catalog.Lookup(req.Model)
	if err != nil {
		return nil, &apiError{Status: 404, Type: typeNotFound, Code: "model_not_found", Message: "model " + strconv.Quote(req.Model) + " is not in the catalog"}
	}
	req.Model = m.ID
	maxOut := int64(req.MaxOutputTokens())
	if maxOut <= 0 || maxOut > m.MaxOutputTokens {
		maxOut = m.MaxOutputTokens
		if req.MaxOutputTokens() > 0 {
			// Clamp an absurd max_tokens to the model's limit before
			// reserving, and send the clamped value upstream.
			v := int(maxOut)
			if req.MaxCompletionTokens != nil {
				req.MaxCompletionTokens = &v
			} else {
				req.MaxTokens = &v
			}
		}
	}
	if req.N != nil && *req.N > 1 {
		// Every choice can run to the output bound: n of them are
		// billed, so n worst cases are reserved.
		maxOut *= int64(*req.N)
	}
	up, ok := s.deps.Upstreams[m.Provider]
	if !ok {
		return nil, &apiError{Status: 501, Type: typeInternal, Code: "provider_unavailable", Message: "no client for provider " + m.Provider}
	}
	platform := string(c.principal.Platform)
	if !s.calls.takeShare(platform, m.Provider, s.cfg.UpstreamPerPlatform) {
		return nil, &apiError{Status: 429, Type: typeRate, Code: "upstream_capacity_exceeded",
			Message: "this platform already has " + strconv.Itoa(s.cfg.UpstreamPerPlatform) + " calls in flight to " + m.Provider + " on this node; retry shortly",
			Header:  map[string]string{"Retry-After": "1"}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.UpstreamTimeout)
	start := time.Now()
	b, err := s.admitTraced(c, ctx, c.principal, c.rid, m, promptEst, maxOut)
	if err != nil {
		s.calls.giveShare(platform, m.Provider)
		cancel()
		return nil, err
	}
	s.calls.add(b, cancel) // its share is given back when it settles or is released
	key, err := s.keys.open(string(b.platform), m.Provider, b.provider.SealedApiKey)
	if err != nil {
		cancel()
		s.release(b)
		return nil, err
	}
	if b.rate != nil {
		setRateHeaders(&c.ctx.Response.Header, b.rate)
	}
	return &inflight{b: b, up: up, target: providers.Upstream{BaseURL: b.provider.BaseUrl, APIKey: key}, ctx: ctx, cancel: cancel, start: start}, nil
}

// chatCompletions is POST /v1/chat/completions (end-user keys only).
func (s *Server) chatCompletions(c *call) error {
	body, err := inferenceBody(c)
	if err != nil {
		return err
	}
	var req providers.ChatRequest
	if err := req.Parse(body); err != nil { // one pass; json.Unmarshal's errors
		return jsonError(err)
	}
	if err := req.Validate(); err != nil {
		return upstreamError(err)
	}
	// An OpenAI-format upstream is sent the client's bytes when nothing in
	// them changes, and its answer is relayed as received. (The body is
	// fasthttp's buffer: valid until this handler returns, which a
	// non-streamed call does not outlive.)
	req.RelayAnswer = true
	if !req.Stream {
		req.Body = body
	}
	promptEst := estimateTokens(body)
	began := time.Now()
	f, err := s.begin(c, &req, promptEst)
	if err != nil {
		s.logRefusal(c, logs.KindChatCompletions, req.Model, req.Stream, began, err)
		return err
	}
	b, start := f.b, f.start
	if req.Stream {
		return s.streamChat(c, f.ctx, f.cancel, f.up, f.target, &req, b, start)
	}
	defer f.cancel()
	resp, err := s.complete(c, f.up, f.ctx, f.target, &req)
	if err != nil {
		s.release(b)
		s.logCall(c, b, 0, providers.Usage{}, start, 0, false, upstreamError(err))
		return upstreamError(err)
	}
	u := providers.Usage{}
	if resp.Usage != nil {
		u = *resp.Usage
	} else {
		u = estimateUsage(promptEst, resp)
	}
	// The upstream completed and was paid: the client gets its answer even
	// if the settlement failed (an error here would make an SDK retry and
	// pay the provider twice); the failure is logged and the reservation
	// left for recovery.
	cost, _ := s.settleTraced(c, b, u)
	s.logCall(c, b, cost, u, start, 0, false, nil)
	out := resp.Raw // an OpenAI-format answer goes out as the upstream sent it
	if out == nil {
		if out, err = resp.AppendJSON(make([]byte, 0, 1024)); err != nil {
			return err
		}
	}
	c.ctx.SetStatusCode(200)
	c.ctx.SetContentType("application/json")
	// out is this call's own (the transport's copy of the upstream's
	// answer, or the encoding above) and is not touched again: no copy.
	c.ctx.Response.SetBodyRaw(out)
	return nil
}

// streamedUsage is what a stream is billed: the usage the upstream
// reported, never less than an estimate (about 4 bytes a token) of the
// content and tool arguments the client was sent. A stream that did not
// end normally (the client left, the upstream failed) has no final count
// from the provider: what it reported so far (Anthropic's message_start
// says output_tokens 1) is only a floor, so the delivered bytes decide
// when they say more. A complete stream without usage is estimated too.
func streamedUsage(st *providers.Stream, produced, promptEst int64, cut bool) providers.Usage {
	u, reported := st.Usage()
	if !reported || cut || u.CompletionTokens == 0 && produced > 0 {
		est := (produced + 3) / 4
		if u.PromptTokens == 0 {
			u.PromptTokens = promptEst
		}
		if est > u.CompletionTokens {
			u.CompletionTokens = est
		}
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
	return u
}

// estimateUsage stands in for usage when the upstream reported none.
func estimateUsage(promptEst int64, resp *providers.ChatResponse) providers.Usage {
	var n int64
	for _, ch := range resp.Choices {
		n += int64(len(ch.Message.Content.String()))
		for _, tc := range ch.Message.ToolCalls {
			n += int64(len(tc.Function.Arguments) + len(tc.Function.Name))
		}
	}
	out := (n + 3) / 4
	return providers.Usage{PromptTokens: promptEst, CompletionTokens: out, TotalTokens: promptEst + out}
}

func isJSONContentType(ct string) bool {
	for i := 0; i < len(ct); i++ {
		if ct[i] == ';' {
			ct = ct[:i]
			break
		}
	}
	for len(ct) > 0 && ct[len(ct)-1] == ' ' {
		ct = ct[:len(ct)-1]
	}
	return len(ct) == len("application/json") && (ct == "application/json" || equalFoldASCII(ct, "application/json"))
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// streamChat answers with server-sent events. The upstream stream is
// opened before the status is sent, so a refusal still gets a proper HTTP
// error; after that, chunks are written and flushed as they arrive. A
// failed flush means the client left: the upstream call is cancelled and
// what was produced is billed.
func (s *Server) streamChat(c *call, ctx context.Context, cancel context.CancelFunc, up Upstream, target providers.Upstream, req *providers.ChatRequest, b *billing, start time.Time) error {
	st, err := s.openStream(c, up, ctx, target, req)
	if err != nil {
		cancel()
		s.release(b)
		s.logCall(c, b, 0, providers.Usage{}, start, 0, true, upstreamError(err))
		return upstreamError(err)
	}
	c.ctx.SetStatusCode(200)
	c.ctx.SetContentType("text/event-stream")
	c.ctx.Response.Header.Set("Cache-Control", "no-cache")
	c.ctx.Response.Header.Set("X-Accel-Buffering", "no")
	c.ctx.Response.ImmediateHeaderFlush = true
	entry := s.newLog(c, b, start, true)
	promptEst := b.promptEst
	setEventStream(c.ctx, func(w eventWriter) {
		defer cancel()
		defer st.Close()
		var produced int64 // bytes of content and tool arguments streamed
		var ttft time.Duration
		var streamErr error
		gone := false
		buf := make([]byte, 0, 1024)
		for {
			ch, err := st.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					streamErr = err
				}
				break
			}
			produced += ch.Produced // a chunk relayed undecoded counted its own
			for _, cc := range ch.Choices {
				if cc.Delta.Content != nil {
					produced += int64(len(*cc.Delta.Content))
				}
				for _, tc := range cc.Delta.ToolCalls {
					produced += int64(len(tc.Function.Arguments) + len(tc.Function.Name))
				}
			}
			if ttft == 0 {
				ttft = time.Since(start)
			}
			if gone {
				continue
			}
			// An OpenAI-format chunk goes out as the upstream sent it,
			// gathered by w into the event's one HTTP chunk.
			raw := ch.Raw
			if raw == nil {
				buf = ch.AppendJSON(buf[:0])
				raw = buf
			}
			_, _ = w.Write(dataPrefix)
			_, _ = w.Write(raw)
			if _, err := w.Write(eventEnd); err != nil {
				gone = true
			} else if err := w.Flush(); err != nil {
				gone = true
			}
			if gone {
				cancel() // the client left: stop the upstream, bill what it produced
				break
			}
		}
		u := streamedUsage(st, produced, promptEst, gone || streamErr != nil)
		cost, serr := s.settleTraced(c, b, u)
		var final *apiError
		if streamErr != nil && !gone {
			final = upstreamError(streamErr).(*apiError)
			eb, _ := json.Marshal(errorBody{errorFields{Type: final.Type, Code: final.Code, Message: final.Message, RequestID: c.rid}})
			_, _ = w.Write([]byte("data: "))
			_, _ = w.Write(eb)
			_, _ = w.Write([]byte("\n\n"))
		}
		if serr != nil && final == nil {
			// The settlement did not land: no [DONE], which would tell the
			// client the call completed and was accounted for.
			final = toAPIError(serr, s.log, c.rid)
			if !gone {
				eb, _ := json.Marshal(errorBody{errorFields{Type: final.Type, Code: final.Code, Message: final.Message, RequestID: c.rid}})
				_, _ = w.Write([]byte("data: "))
				_, _ = w.Write(eb)
				_, _ = w.Write([]byte("\n\n"))
				_ = w.Flush()
			}
		} else if !gone {
			// In sync mode the settlement is durable before [DONE].
			_, _ = w.Write([]byte("data: [DONE]\n\n"))
			_ = w.Flush()
		} else if final == nil {
			final = &apiError{Status: 499, Code: "client_disconnected", Message: "the client closed the connection"}
		}
		entry.finish(cost, u, ttft, final)
		c.tr.streamEnd(u, final)
	})
	return nil
}
