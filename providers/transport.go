package providers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/assistiv/gateway/internal/egress"
)

// Transport sends upstream calls over a pooled fasthttp client, with the
// bounds and retry policy of its [Config]. It is safe for concurrent use;
// one Transport serves every provider client of a process.
//
// fasthttp has no per-request context. Transport gives it one: each attempt
// runs the fasthttp call on a helper goroutine, and the caller returns as
// soon as its context is done. Once response headers have arrived, a
// cancellation closes the connection at once, which unblocks any read and
// stops the upstream generating. Before the headers, an abandoned attempt
// is torn down when they arrive or when its deadline (ResponseTimeout or
// StreamTimeout) passes, whichever is first.
type Transport struct {
	cfg Config
	hc  *fasthttp.Client // streamed bodies (Open)
	// buf reads whole bodies into fasthttp's pooled buffers (Do): no body
	// stream, no per-read bookkeeping, one copy out. Its own pool.
	buf *fasthttp.Client
}

// Header is one request header.
type Header struct{ Name, Value string }

// ctxHeadersKey keys the headers [WithHeaders] adds to a context.
type ctxHeadersKey struct{}

// WithHeaders returns a context whose upstream calls also send hs (after
// the provider's own headers; a trace's traceparent, say). Without it a
// call pays one context lookup.
func WithHeaders(ctx context.Context, hs ...Header) context.Context {
	return context.WithValue(ctx, ctxHeadersKey{}, hs)
}

// Call is one upstream request, built by a provider package.
type Call struct {
	// Provider names the upstream in errors: "openai", "anthropic", ...
	Provider string
	// URL is the full endpoint, built with [Endpoint] from [Upstream.BaseURL].
	URL string
	// Headers are sent as given; they carry the key.
	Headers []Header
	// Body is the JSON request body. It must not change until the call returns.
	Body []byte
	// Secret is redacted from any error message.
	Secret string
	// DecodeError maps an error answer's body to an [*Error]; it may return
	// nil, and then the status alone decides.
	DecodeError func(status int, body []byte) *Error
}

// NewTransport validates cfg (after filling its zero fields with defaults)
// and returns a Transport.
func NewTransport(cfg Config) (*Transport, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Every dial goes through the one egress guard (internal/egress): the
	// name is resolved, each address checked, the checked address dialed
	// (no second lookup to rebind), and the socket address checked again.
	guard := egress.Policy{AllowPrivate: cfg.AllowPrivateEgress, Dialer: &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}}
	hc := &fasthttp.Client{
		Name:                      cfg.UserAgent,
		Dial:                      egress.FastHTTPDial(guard),
		MaxConnsPerHost:           cfg.MaxConnsPerHost,
		MaxConnWaitTimeout:        cfg.ConnectTimeout,
		MaxIdleConnDuration:       90 * time.Second,
		ReadBufferSize:            32 << 10,
		MaxIdemponentCallAttempts: 1,
		RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		StreamResponseBody:        true,
		DisablePathNormalizing:    true,
	}
	buf := &fasthttp.Client{
		Name:                      cfg.UserAgent,
		Dial:                      hc.Dial,
		MaxConnsPerHost:           cfg.MaxConnsPerHost,
		MaxConnWaitTimeout:        cfg.ConnectTimeout,
		MaxIdleConnDuration:       90 * time.Second,
		ReadBufferSize:            32 << 10,
		MaxIdemponentCallAttempts: 1,
		RetryIfErr:                hc.RetryIfErr,
		MaxResponseBodySize:       cfg.MaxResponseBytes,
		DisablePathNormalizing:    true,
	}
	return &Transport{cfg: cfg, hc: hc, buf: buf}, nil
}

// Config returns the effective configuration.
func (t *Transport) Config() Config { return t.cfg }

// CloseIdleConnections closes pooled connections that are not in use.
func (t *Transport) CloseIdleConnections() {
	t.hc.CloseIdleConnections()
	t.buf.CloseIdleConnections()
}

// Do sends c and returns the body of a 2xx answer, retrying per the policy.
// It blocks until the whole body has arrived, the context is done or a
// bound is hit. Errors: ctx.Err(), or an [*Error].
func (t *Transport) Do(ctx context.Context, c *Call) ([]byte, error) {
	b, err := t.open(ctx, c, false)
	if err != nil {
		return nil, err
	}
	return b.data, nil
}

// Open sends c and returns the open body of a 2xx answer, for streaming.
// Retries happen only inside Open; nothing is retried once it returned. The
// body's reads end at ctx cancellation (with ctx.Err()), after
// StreamIdleTimeout of silence, at StreamTimeout, or past MaxStreamBytes
// (with an [*Error]). The caller must Close it.
func (t *Transport) Open(ctx context.Context, c *Call) (*Body, error) {
	return t.open(ctx, c, true)
}

func (t *Transport) open(ctx context.Context, c *Call, stream bool) (*Body, error) {
	p := &t.cfg.Retry
	start := time.Now()
	for attempt := 1; ; attempt++ {
		b, err := t.attempt(ctx, c, stream)
		if err == nil {
			return b, nil
		}
		e := asError(err)
		if e == nil || !e.Retryable || attempt >= p.MaxAttempts {
			return nil, err
		}
		d := p.backoff(attempt)
		if e.RetryAfter > d {
			if e.RetryAfter > p.MaxDelay {
				return nil, err
			}
			d = e.RetryAfter
		}
		if time.Since(start)+d > p.MaxElapsed {
			return nil, err
		}
		if serr := p.Sleep(ctx, d); serr != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
	}
}

// attempt makes one request and returns the body of a 2xx answer.
func (t *Transport) attempt(ctx context.Context, c *Call, stream bool) (*Body, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(c.URL)
	req.Header.SetContentType("application/json")
	if stream {
		req.Header.Set("Accept", "text/event-stream")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	for _, h := range c.Headers {
		req.Header.Set(h.Name, h.Value)
	}
	if hs, ok := ctx.Value(ctxHeadersKey{}).([]Header); ok {
		for _, h := range hs {
			req.Header.Set(h.Name, h.Value)
		}
	}
	req.SetBodyRaw(c.Body)

	now := time.Now()
	limit := t.cfg.ResponseTimeout
	if stream {
		limit = t.cfg.StreamTimeout
	}
	deadline := now.Add(limit)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	done := doneChans.Get().(chan error)
	if !stream {
		return t.attemptBuffered(ctx, c, req, resp, deadline, now, done)
	}
	go func() { done <- t.hc.DoDeadline(req, resp, deadline) }()

	headers := time.NewTimer(t.cfg.ResponseTimeout)
	defer headers.Stop()
	var err error
	select {
	case err = <-done:
		doneChans.Put(done)
	case <-ctx.Done():
		go abandon(done, req, resp)
		return nil, ctx.Err()
	case <-headers.C:
		go abandon(done, req, resp)
		return nil, NewError(ErrTimeout, c.Provider, "no response headers from upstream in time")
	}
	if err != nil {
		resp.CloseBodyStream() //nolint:errcheck // nothing to report beyond err
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, classify(c.Provider, err)
	}

	b := newBody(ctx, req, resp, c.Provider)
	status := resp.StatusCode()
	if status >= 200 && status <= 299 {
		if stream {
			b.idle = t.cfg.StreamIdleTimeout
			b.max = t.cfg.MaxStreamBytes
			b.startIdle()
		}
		return b, nil
	}

	// An error answer: read a bounded body, map it.
	retryAfter := parseRetryAfter(resp, now)
	limitBytes := t.cfg.MaxResponseBytes
	if limitBytes > 1<<20 {
		limitBytes = 1 << 20
	}
	body, rerr := b.readAll(limitBytes)
	b.Close()
	if rerr != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, c.errorAnswer(status, body, retryAfter)
}

// attemptBuffered makes one non-streamed request: the whole answer is
// read into fasthttp's buffer before the call returns (the deadline bounds
// headers and body together), and a 2xx body is copied out, in a Body
// that holds only data.
func (t *Transport) attemptBuffered(ctx context.Context, c *Call, req *fasthttp.Request, resp *fasthttp.Response, deadline, now time.Time, done chan error) (*Body, error) {
	go func() { done <- t.buf.DoDeadline(req, resp, deadline) }()
	var err error
	select {
	case err = <-done:
		doneChans.Put(done)
	case <-ctx.Done():
		go abandon(done, req, resp)
		return nil, ctx.Err()
	}
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, fasthttp.ErrBodyTooLarge) {
			return nil, NewError(ErrResponseTooLarge, c.Provider, fmt.Sprintf("response body larger than %d bytes", t.cfg.MaxResponseBytes))
		}
		return nil, classify(c.Provider, err)
	}
	status := resp.StatusCode()
	if status >= 200 && status <= 299 {
		return &Body{data: append([]byte(nil), resp.Body()...), buffered: true}, nil
	}
	body := resp.Body()
	if len(body) > 1<<20 {
		body = body[:1<<20]
	}
	return nil, c.errorAnswer(status, body, parseRetryAfter(resp, now))
}

// errorAnswer maps an upstream's error answer (status, body) to an *Error.
func (c *Call) errorAnswer(status int, body []byte, retryAfter time.Duration) *Error {
	var e *Error
	if c.DecodeError != nil && len(body) > 0 {
		e = c.DecodeError(status, body)
	}
	if e == nil {
		e = StatusError(c.Provider, status, "", "", "")
	}
	e.Provider = c.Provider
	e.Message = Redact(e.Message, c.Secret)
	e.RetryAfter = retryAfter
	return e
}

// abandon waits for an attempt its caller gave up on and frees it,
// closing the connection if a response arrived.
// doneChans holds the empty result channels of attempts that were
// answered: the sending goroutine is past its only send, so the channel
// can carry the next attempt's result. An abandoned attempt's channel is
// left to the garbage collector.
var doneChans = sync.Pool{New: func() any { return make(chan error, 1) }}

func abandon(done <-chan error, req *fasthttp.Request, resp *fasthttp.Response) {
	<-done
	if rc, ok := resp.BodyStream().(fasthttp.ReadCloserWithError); ok {
		rc.CloseWithError(context.Canceled) //nolint:errcheck // discarding
	}
	resp.CloseBodyStream() //nolint:errcheck // discarding
	fasthttp.ReleaseRequest(req)
	fasthttp.ReleaseResponse(resp)
}

// classify maps a failed fasthttp call to an *Error.
func classify(provider string, err error) error {
	if errors.Is(err, egress.ErrForbiddenAddress) || errors.Is(err, egress.ErrInvalidURL) {
		return NewError(ErrBadUpstream, provider, "provider base URL resolves to a non-public address; set AllowPrivateEgress to allow it")
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return NewError(ErrConnect, provider, "cannot connect to upstream")
	}
	if errors.Is(err, fasthttp.ErrTimeout) || isTimeout(err) {
		return NewError(ErrTimeout, provider, "upstream timed out")
	}
	e := NewError(ErrConnect, provider, "upstream connection failed")
	// Resets and early closes are worth another attempt; TLS failures and
	// malformed answers would fail alike again.
	e.Retryable = errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, fasthttp.ErrNoFreeConns) || errors.Is(err, fasthttp.ErrDialTimeout)
	return e
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// parseRetryAfter reads retry-after-ms or Retry-After (seconds or an HTTP
// date), capped at one hour.
func parseRetryAfter(resp *fasthttp.Response, now time.Time) time.Duration {
	var d time.Duration
	if v := resp.Header.Peek("Retry-After-Ms"); len(v) > 0 {
		if ms, err := strconv.ParseFloat(string(v), 64); err == nil && ms > 0 {
			d = time.Duration(ms * float64(time.Millisecond))
		}
	} else if v := resp.Header.Peek("Retry-After"); len(v) > 0 {
		if s, err := strconv.ParseFloat(string(v), 64); err == nil && s > 0 {
			d = time.Duration(s * float64(time.Second))
		} else if at, err := time.Parse(time.RFC1123, string(v)); err == nil {
			d = at.Sub(now)
		}
	}
	if d < 0 {
		return 0
	}
	if d > time.Hour {
		return time.Hour
	}
	return d
}

// Body is the open body of a 2xx upstream answer. Read is for one
// goroutine; Close may be called from any goroutine, any number of times.
type Body struct {
	ctx      context.Context
	provider string
	req      *fasthttp.Request
	resp     *fasthttp.Response
	rc       fasthttp.ReadCloserWithError // nil when the answer has no body
	r        io.Reader

	idle  time.Duration
	max   int64
	read  int64
	timer *time.Timer

	base      time.Time    // when the idle timer started
	lastRead  atomic.Int64 // the last read with data, as time since base
	idleFired atomic.Bool
	closed    atomic.Bool
	stopCtx   func() bool
	ctxDone   chan struct{}
	closeOnce sync.Once

	// A non-streamed answer, read whole (attemptBuffered): data is all of
	// it and nothing else is set.
	data     []byte
	buffered bool
}

func newBody(ctx context.Context, req *fasthttp.Request, resp *fasthttp.Response, provider string) *Body {
	b := &Body{ctx: ctx, provider: provider, req: req, resp: resp, ctxDone: make(chan struct{})}
	b.r = resp.BodyStream()
	b.rc, _ = b.r.(fasthttp.ReadCloserWithError)
	rc := b.rc
	b.stopCtx = context.AfterFunc(ctx, func() {
		defer close(b.ctxDone)
		if rc != nil {
			rc.CloseWithError(ctx.Err()) //nolint:errcheck // interrupting a read
		}
	})
	return b
}

func (b *Body) startIdle() {
	if b.idle <= 0 || b.rc == nil {
		return
	}
	// A read does not reset the timer (a timer-heap update per event, 4 %
	// of a streaming gateway's user CPU): it stamps the time, and the timer,
	// when it fires, re-arms itself for what is left of the idle time
	// since the last read, or ends the stream.
	rc := b.rc
	b.base = time.Now()
	var self atomic.Pointer[time.Timer]
	t := time.AfterFunc(b.idle, func() {
		quiet := time.Since(b.base) - time.Duration(b.lastRead.Load())
		if quiet < b.idle {
			if t := self.Load(); t != nil {
				t.Reset(b.idle - quiet)
				return
			}
		}
		b.idleFired.Store(true)
		rc.CloseWithError(ErrTimeout) //nolint:errcheck // interrupting a read
	})
	self.Store(t)
	b.timer = t
}

// Read reads the body. Errors: ctx.Err() after cancellation; an [*Error]
// matching [ErrTimeout], [ErrResponseTooLarge] or [ErrConnect]; io.EOF at
// the end.
func (b *Body) Read(p []byte) (int, error) {
	if b.r == nil {
		return 0, io.EOF
	}
	if b.closed.Load() {
		return 0, NewError(ErrConnect, b.provider, "read after close")
	}
	if b.max > 0 && int64(len(p)) > b.max-b.read+1 {
		p = p[:b.max-b.read+1]
	}
	n, err := b.r.Read(p)
	b.read += int64(n)
	if n > 0 && b.timer != nil {
		b.lastRead.Store(int64(time.Since(b.base)))
	}
	if b.max > 0 && b.read > b.max {
		return n, NewError(ErrResponseTooLarge, b.provider, fmt.Sprintf("stream longer than %d bytes", b.max))
	}
	if err == nil || err == io.EOF {
		return n, err
	}
	switch {
	case b.ctx.Err() != nil:
		return n, b.ctx.Err()
	case b.idleFired.Load():
		return n, NewError(ErrTimeout, b.provider, "upstream stream went silent")
	case errors.Is(err, fasthttp.ErrTimeout) || isTimeout(err):
		return n, NewError(ErrTimeout, b.provider, "upstream timed out")
	}
	return n, NewError(ErrConnect, b.provider, "upstream connection lost mid-response")
}

// readAll reads the whole body, refusing more than max bytes.
func (b *Body) readAll(max int) ([]byte, error) {
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := b.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > max {
			return nil, NewError(ErrResponseTooLarge, b.provider, fmt.Sprintf("response body larger than %d bytes", max))
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// drainAndClose reads what is left of the body (at most max bytes, for at
// most wait) so that its connection goes back to the pool, then closes it.
// A body not at its end by then closes its connection, as Close does.
func (b *Body) drainAndClose(max int64, wait time.Duration) {
	if b.buffered || b.rc == nil || b.closed.Load() {
		b.Close() //nolint:errcheck // Close reports nothing
		return
	}
	rc := b.rc
	t := time.AfterFunc(wait, func() { rc.CloseWithError(ErrTimeout) }) //nolint:errcheck // interrupting a read
	var buf [512]byte
	for n := int64(0); n <= max; {
		k, err := b.Read(buf[:])
		n += int64(k)
		if err != nil {
			break
		}
	}
	t.Stop()
	b.Close() //nolint:errcheck // Close reports nothing
}

// Close releases the body and its connection; a body not read to the end
// closes the connection rather than reusing it.
func (b *Body) Close() error {
	if b.buffered {
		return nil
	}
	b.closeOnce.Do(func() {
		if b.timer != nil {
			b.timer.Stop()
		}
		if !b.stopCtx() {
			<-b.ctxDone // the AfterFunc is running or ran; wait before freeing
		}
		b.resp.CloseBodyStream() //nolint:errcheck // reuse or discard is fasthttp's call
		fasthttp.ReleaseRequest(b.req)
		fasthttp.ReleaseResponse(b.resp)
		b.closed.Store(true)
	})
	return nil
}

// OpenStream opens c as a stream and returns it decoded by dec into Chat
// Completions chunks, with this transport's event bound. It is what every
// adapter's Stream does once it has built its call and decoder. Retries
// happen only before it returns; the Stream owns the body.
func (t *Transport) OpenStream(ctx context.Context, c *Call, dec EventDecoder, includeUsage bool) (*Stream, error) {
	body, err := t.Open(ctx, c)
	if err != nil {
		return nil, err
	}
	return NewStream(body, dec, StreamConfig{MaxEventBytes: t.cfg.MaxEventBytes, IncludeUsage: includeUsage}), nil
}
