package mockllm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Server is the mock upstream. Its methods are safe for concurrent use.
type Server struct {
	cfg   Config
	fs    *fasthttp.Server
	cache *planCache
	rec   [nRoutes]*recorder
	c     counters
	seq   atomic.Int64 // request sequence for ErrorRate

	failMu sync.Mutex // guards fails
	fails  map[uint64]int

	quit     chan struct{} // closed by Close, or by Shutdown past its deadline
	quitOnce sync.Once

	mu       sync.Mutex // guards closed, draining, held; wg.Add happens under it
	closed   bool
	draining bool
	held     map[net.Conn]struct{} // hijacked connections of hangs
	wg       sync.WaitGroup        // hangs and stream writers
}

// New returns a server for cfg. cfg must pass [Config.Validate]; New panics
// otherwise, since an invalid config is a programming error of the caller
// (cmd validates flags first; tests use literals).
func New(cfg Config) *Server {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	s := &Server{
		cfg:   cfg,
		cache: newPlanCache(cfg.CacheEntries),
		fails: make(map[uint64]int),
		quit:  make(chan struct{}),
		held:  make(map[net.Conn]struct{}),
	}
	for i := range s.rec {
		s.rec[i] = newRecorder(cfg.RecordRequests)
	}
	s.fs = &fasthttp.Server{
		Handler:                      s.handle,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		MaxRequestBodySize:           cfg.MaxRequestBodySize,
		ReadBufferSize:               16 << 10,
		ReadTimeout:                  60 * time.Second,
		IdleTimeout:                  90 * time.Second,
		Logger:                       fasthttpLogger{cfg.Logger},
		SecureErrorLogMessage:        true,
	}
	return s
}

// fasthttpLogger sends fasthttp's own messages to slog at debug level.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	if f.l != nil {
		f.l.Debug(fmt.Sprintf(format, args...), "component", "fasthttp")
	}
}

// Handler returns the request handler, for serving the mock from a caller's
// own fasthttp server. Hangs and streams still end on [Server.Close].
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

// Serve serves ln until Close or Shutdown, then returns nil; it returns
// another error only if accepting fails. It may be called for several
// listeners at once.
func (s *Server) Serve(ln net.Listener) error { return s.fs.Serve(ln) }

// Close stops the server at once: it closes the listeners, cuts hangs,
// sleeps and streams short, waits for the connections in flight to close and
// returns. Safe to call more than once.
func (s *Server) Close() error {
	s.stop()
	err := s.fs.Shutdown()
	s.wg.Wait()
	return err
}

// Shutdown stops accepting, ends hangs at once, and lets replies and streams
// in flight finish until ctx ends; then it behaves like Close and returns
// ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	s.wakeHeldLocked()
	s.mu.Unlock()
	err := s.fs.ShutdownWithContext(ctx)
	if err != nil {
		s.stop()
		_ = s.fs.Shutdown()
	}
	s.stop()
	s.wg.Wait()
	return err
}

func (s *Server) stop() {
	s.quitOnce.Do(func() { close(s.quit) })
	s.mu.Lock()
	s.closed = true
	s.wakeHeldLocked()
	s.mu.Unlock()
}

func (s *Server) wakeHeldLocked() {
	for c := range s.held {
		_ = c.SetReadDeadline(time.Unix(1, 0))
	}
}

// enter registers a hang (c != nil) or a stream writer; false means the
// server is stopping and the caller must return at once.
func (s *Server) enter(c net.Conn, stream bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || (!stream && s.draining) {
		return false
	}
	if c != nil {
		s.held[c] = struct{}{}
	}
	s.wg.Add(1)
	return true
}

func (s *Server) leave(c net.Conn) {
	if c != nil {
		s.mu.Lock()
		delete(s.held, c)
		s.mu.Unlock()
	}
	s.wg.Done()
}

// wait sleeps d; false means the server stopped first.
func (s *Server) wait(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.quit:
		return false
	}
}

// Stats returns a snapshot of the request counters.
func (s *Server) Stats() Stats { return s.c.snapshot() }

// Requests returns the number of requests received on all provider routes.
func (s *Server) Requests() int64 {
	var n int64
	for i := range nRoutes {
		n += s.c.requests[i].Load()
	}
	return n
}

// RouteRequests returns the number of requests received on r.
func (s *Server) RouteRequests(r Route) int64 {
	if i := r.index(); i >= 0 {
		return s.c.requests[i].Load()
	}
	return 0
}

// Count returns how many requests on r ended with o.
func (s *Server) Count(r Route, o Outcome) int64 {
	i, j := r.index(), o.index()
	if i < 0 || j < 0 {
		return 0
	}
	return s.c.outcomes[i][j].Load()
}

// LastRequests returns copies of the most recent requests received on r
// (at most Config.RecordRequests), oldest first, whatever their outcome.
func (s *Server) LastRequests(r Route) []RecordedRequest {
	if i := r.index(); i >= 0 {
		return s.rec[i].last(r)
	}
	return nil
}

// LastRequest returns the most recent request received on r.
func (s *Server) LastRequest(r Route) (RecordedRequest, bool) {
	all := s.LastRequests(r)
	if len(all) == 0 {
		return RecordedRequest{}, false
	}
	return all[len(all)-1], true
}

// Reset zeroes the counters, forgets recorded requests and fail-first
// progress, and restarts the ErrorRate sequence.
func (s *Server) Reset() {
	s.c.reset()
	for _, r := range s.rec {
		r.reset()
	}
	s.failMu.Lock()
	clear(s.fails)
	s.failMu.Unlock()
	s.seq.Store(0)
}

// Run serves cfg.Listen until ctx ends, then shuts down gracefully within
// cfg.ShutdownTimeout. It returns nil after a clean shutdown.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("mockllm: listen: %w", err)
	}
	s := New(cfg)
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	log.Info("mockllm listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		_ = s.Close()
		return fmt.Errorf("mockllm: serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("mockllm shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err = s.Shutdown(sctx)
	if serr := <-errc; serr != nil && err == nil {
		err = serr
	}
	st := s.Stats()
	log.Info("mockllm stopped", "requests", st.Total)
	return err
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	switch string(path) {
	case "/v1/chat/completions", "/chat/completions":
		s.serve(ctx, RouteOpenAI, geminiTarget{})
	case "/v1/messages":
		s.serve(ctx, RouteAnthropic, geminiTarget{})
	case "/mock/stats":
		b, _ := json.Marshal(s.Stats())
		ctx.SetContentType("application/json")
		ctx.SetBody(b)
	case "/mock/reset":
		if !ctx.IsPost() {
			ctx.Error(`{"error":"use POST"}`, fasthttp.StatusMethodNotAllowed)
			return
		}
		s.Reset()
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"reset":true}`)
	case "/healthz":
		ctx.SetBodyString("ok")
	default:
		if g, ok := parseGeminiPath(path); ok {
			s.serve(ctx, RouteGemini, g)
			return
		}
		s.c.notFound.Add(1)
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"error":{"message":"mockllm: no route for this path","type":"invalid_request_error","param":null,"code":"not_found"}}`)
	}
}

// geminiTarget is the model and method named by a Gemini path.
type geminiTarget struct {
	path   []byte // "gemini-2.0-flash:streamGenerateContent", part of the cache key
	model  string
	stream bool
}

// parseGeminiPath accepts /v1beta/models/{model}:generateContent and
// :streamGenerateContent (and the same under /v1).
func parseGeminiPath(path []byte) (geminiTarget, bool) {
	var rest []byte
	for _, prefix := range [][]byte{[]byte("/v1beta/models/"), []byte("/v1/models/")} {
		if bytes.HasPrefix(path, prefix) {
			rest = path[len(prefix):]
			break
		}
	}
	i := bytes.LastIndexByte(rest, ':')
	if i <= 0 {
		return geminiTarget{}, false
	}
	g := geminiTarget{path: rest, model: string(rest[:i])}
	switch string(rest[i+1:]) {
	case "generateContent":
	case "streamGenerateContent":
		g.stream = true
	default:
		return geminiTarget{}, false
	}
	return g, true
}

// apiKey extracts the credential the route's provider expects.
func apiKey(ctx *fasthttp.RequestCtx, r Route) []byte {
	h := &ctx.Request.Header
	switch r {
	case RouteOpenAI:
		v := h.Peek("Authorization")
		if len(v) > 7 && bytes.EqualFold(v[:7], []byte("bearer ")) {
			return bytes.TrimSpace(v[7:])
		}
		return nil
	case RouteAnthropic:
		return h.Peek("X-Api-Key")
	default:
		if v := h.Peek("X-Goog-Api-Key"); len(v) > 0 {
			return v
		}
		return ctx.QueryArgs().Peek("key")
	}
}

// serve runs one provider request: record, authenticate, plan, then answer
// or inject the requested fault.
func (s *Server) serve(ctx *fasthttp.RequestCtx, r Route, g geminiTarget) {
	ri := r.index()
	s.c.requests[ri].Add(1)
	body := ctx.PostBody()
	if rec := s.rec[ri]; rec != nil {
		rec.record(ctx.Method(), ctx.RequestURI(), ctx.Request.Header.Header(), body)
	}
	d := dialectFor(r, "")
	if !ctx.IsPost() {
		s.fail(ctx, ri, OutcomeBadRequest, apiErr{405, errorBody(d, 405, "Method not allowed; use POST.", "")})
		return
	}
	key := apiKey(ctx, r)
	keyOK := len(key) > 0 && (s.cfg.APIKey == "" || string(key) == s.cfg.APIKey)

	tokens, terr := headerTokens(&ctx.Request.Header)
	textTool, xerr := headerTextTool(&ctx.Request.Header, s.cfg.TextAndTool)
	if terr == nil {
		terr = xerr
	}
	sh := shape{tokens: tokens, textTool: textTool}
	ck := s.cache.key(r, g.path, sh, body)
	p := s.cache.get(ck, g.path, sh, body)
	var perr error
	if p == nil {
		p, perr = s.plan(r, g, sh, body)
		if perr == nil {
			s.cache.put(ck, p)
		}
	}
	if p != nil {
		d = p.dialect
	}
	if !keyOK {
		s.fail(ctx, ri, OutcomeUnauthorized, authError(d, string(key)))
		return
	}
	if r == RouteAnthropic && len(ctx.Request.Header.Peek("Anthropic-Version")) == 0 {
		s.fail(ctx, ri, OutcomeBadRequest, apiErr{400, errorBody(d, 400, "anthropic-version: header is required", "")})
		return
	}
	if terr == nil {
		terr = perr
	}
	if terr != nil {
		s.fail(ctx, ri, OutcomeBadRequest, apiErr{400, errorBody(d, 400, terr.Error(), "")})
		return
	}
	k, err := resolveKnobs(&s.cfg, &p.directives, &ctx.Request.Header, tokens)
	if err != nil {
		s.fail(ctx, ri, OutcomeBadRequest, apiErr{400, errorBody(d, 400, err.Error(), "")})
		return
	}
	if p.conv.stream {
		s.c.streams[ri].Add(1)
	}
	if !s.wait(k.latency) {
		s.fail(ctx, ri, OutcomeShutdown, apiErr{503, errorBody(d, 503, "", "")})
		return
	}
	f := s.decideFault(k, ck)
	switch f.kind {
	case faultStatus:
		s.injectStatus(ctx, ri, d, f.status)
		return
	case faultHang:
		s.hang(ctx, ri)
		return
	}
	if !p.conv.stream {
		switch f.kind {
		case faultStall:
			s.hang(ctx, ri)
			return
		case faultStreamError:
			status := 500
			if d == dialectAnthropic {
				status = 529
			}
			s.injectStatus(ctx, ri, d, status)
			return
		case faultDisconnect:
			s.outcome(ri, OutcomeDisconnect)
			ctx.HijackSetNoResponse(true)
			ctx.Hijack(func(net.Conn) {})
			return
		}
		gen := k.ttft
		if k.tps > 0 && p.completionTokens() > 1 {
			gen += time.Duration(float64(p.completionTokens()-1) / k.tps * float64(time.Second))
		}
		if !s.wait(gen) {
			s.fail(ctx, ri, OutcomeShutdown, apiErr{503, errorBody(d, 503, "", "")})
			return
		}
		s.writeHeaders(ctx, p, false, false)
		if f.kind == faultMalformed {
			s.outcome(ri, OutcomeMalformed)
			ctx.SetBody(p.body[:len(p.body)/2])
			return
		}
		s.outcome(ri, OutcomeOK)
		ctx.SetBody(p.body)
		return
	}
	sse := r != RouteGemini || string(ctx.QueryArgs().Peek("alt")) == "sse"
	s.writeHeaders(ctx, p, true, sse)
	run := &streamRun{
		s:        s,
		route:    ri,
		knobs:    k,
		fault:    f.kind,
		total:    p.tokenEvents(),
		sse:      sse,
		errEvent: streamErrorEvent(d),
	}
	if f.kind == faultDisconnect || f.kind == faultStall {
		s.streamHijacked(ctx, ri, p, run)
		return
	}
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		// Runs on fasthttp's goroutine after the handler returned: it uses
		// only run and p, never ctx.
		run.w = w
		if !s.enter(nil, true) {
			s.outcome(ri, OutcomeShutdown)
			return
		}
		defer s.leave(nil)
		p.stream(run)
		s.outcome(ri, run.outcome)
	})
}

// streamHijacked streams over the raw connection, for the faults that end
// by closing it: fasthttp's stream writer hands events to the connection
// through a pipe, so a close from the writer could overtake events still in
// the pipe. Here every event is on the socket before the connection closes,
// which fasthttp does when the hijack handler returns.
func (s *Server) streamHijacked(ctx *fasthttp.RequestCtx, ri int, p *plan, run *streamRun) {
	ctx.Response.Header.SetContentLength(-1) // Transfer-Encoding: chunked
	head := bytes.Clone(ctx.Response.Header.Header())
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		if !s.enter(nil, true) {
			s.outcome(ri, OutcomeShutdown)
			return
		}
		defer s.leave(nil)
		if _, err := c.Write(head); err != nil {
			s.outcome(ri, OutcomeClientGone)
			return
		}
		run.w = bufio.NewWriter(chunkWriter{c})
		p.stream(run)
		s.outcome(ri, run.outcome)
	})
}

// chunkWriter frames each write as one HTTP/1.1 chunk.
type chunkWriter struct{ c net.Conn }

func (w chunkWriter) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	frame := make([]byte, 0, len(b)+16)
	frame = strconv.AppendInt(frame, int64(len(b)), 16)
	frame = append(frame, "\r\n"...)
	frame = append(frame, b...)
	frame = append(frame, "\r\n"...)
	if _, err := w.c.Write(frame); err != nil {
		return 0, err
	}
	return len(b), nil
}

// plan parses the body for route r and builds the reply shaped by the
// request's headers (and the config defaults they override).
func (s *Server) plan(r Route, g geminiTarget, sh shape, body []byte) (*plan, error) {
	tokens := sh.tokens
	var c conv
	var err error
	switch r {
	case RouteOpenAI:
		c, err = parseOpenAI(body)
	case RouteAnthropic:
		c, err = parseAnthropic(body)
	default:
		c, err = parseGemini(body)
		c.model, c.stream = g.model, g.stream
	}
	if err != nil {
		return nil, err
	}
	d, err := parseDirectives(c.model)
	if err != nil {
		return nil, err
	}
	n := s.cfg.Tokens
	if d.tokens > 0 {
		n = d.tokens
	}
	if tokens > 0 {
		n = tokens
	}
	h := fnv64b(fnv64(string(g.path))^uint64(r.index()+1), body)
	p := buildPlan(r, c, d, n, sh.textTool || d.textTool, h)
	p.keyPath = bytes.Clone(g.path)
	p.keyBody = bytes.Clone(body)
	p.keyShape = sh
	if !c.stream {
		p.body = p.render()
	}
	return p, nil
}

// decideFault applies fail-first and ErrorRate to the requested fault.
func (s *Server) decideFault(k knobs, cacheKey uint64) fault {
	f := k.fault
	if k.failFirst > 0 {
		key := cacheKey
		if k.failKey != "" {
			key = fnv64(k.failKey)
		}
		s.failMu.Lock()
		if len(s.fails) >= 100000 {
			clear(s.fails)
		}
		n := s.fails[key]
		s.fails[key] = n + 1
		s.failMu.Unlock()
		if n >= k.failFirst {
			return fault{}
		}
		if f.kind == faultNone {
			f = fault{kind: faultStatus, status: s.cfg.ErrorStatus}
		}
		return f
	}
	if f.kind == faultNone && s.cfg.ErrorRate > 0 {
		n := float64(s.seq.Add(1))
		if int64(n*s.cfg.ErrorRate) > int64((n-1)*s.cfg.ErrorRate) {
			f = fault{kind: faultStatus, status: s.cfg.ErrorStatus}
			if s.cfg.ErrorFault != "" {
				if ef, err := parseFault(s.cfg.ErrorFault); err == nil && ef.kind != faultNone {
					f = ef
				}
			}
		}
	}
	return f
}

func (s *Server) outcome(ri int, o Outcome) {
	s.c.outcomes[ri][o.index()].Add(1)
}

// fail answers with an error body and counts outcome o.
func (s *Server) fail(ctx *fasthttp.RequestCtx, ri int, o Outcome, e apiErr) {
	s.outcome(ri, o)
	ctx.SetStatusCode(e.status)
	ctx.SetContentType("application/json")
	ctx.SetBody(e.body)
}

func (s *Server) injectStatus(ctx *fasthttp.RequestCtx, ri int, d dialect, status int) {
	if status >= 400 && status < 600 {
		s.c.status[ri][status-400].Add(1)
	}
	if (status == 429 || status == 503 || status == 529) && s.cfg.RetryAfter > 0 {
		secs := int64((s.cfg.RetryAfter + time.Second - 1) / time.Second)
		ctx.Response.Header.Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	s.fail(ctx, ri, OutcomeError, apiErr{status, errorBody(d, status, "", "")})
}

// hang takes the connection over without answering and holds it until the
// client closes it, HangMax passes or the server stops; then closes it.
func (s *Server) hang(ctx *fasthttp.RequestCtx, ri int) {
	s.outcome(ri, OutcomeHang)
	max := s.cfg.HangMax
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		if !s.enter(c, false) {
			return
		}
		defer s.leave(c)
		_ = c.SetReadDeadline(time.Now().Add(max))
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	})
}
