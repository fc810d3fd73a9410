// Package proxy is a bare fasthttp reverse proxy to one upstream: the
// "one extra hop" baseline the gateway's overhead is measured against. It
// does the least a correct proxy must (strip hop-by-hop headers, forward
// method, path, headers and body, pass the response back, stream bodies of
// unknown length chunk by chunk) and nothing else, so its cost is the
// physical limit of adding a hop with fasthttp on this machine.
//
// Concurrency: [Proxy.Handler] is called by fasthttp on many goroutines at
// once; it shares only the HostClient, which is safe for concurrent use.
// The upstream response is handed to fasthttp as the body stream and
// released when fasthttp closes that stream, after the last byte is written
// or the client has gone; no goroutine is started per request.
//
// It imports nothing of the gateway's.
package proxy

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// Config configures a [Proxy].
type Config struct {
	// Upstream is the upstream's host:port. Required.
	Upstream string
	// MaxConns bounds connections to the upstream. Default 4096.
	MaxConns int
	// Timeout bounds one upstream exchange, including streaming the body.
	// Default 5 minutes.
	Timeout time.Duration
}

// DefaultConfig returns a Config with every default set except Upstream.
func DefaultConfig() Config {
	return Config{MaxConns: 4096, Timeout: 5 * time.Minute}
}

// Validate reports a missing or out-of-range field.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Upstream); err != nil {
		return fmt.Errorf("proxy: Upstream %q: %w", c.Upstream, err)
	}
	if c.MaxConns < 1 {
		return fmt.Errorf("proxy: MaxConns %d must be positive", c.MaxConns)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("proxy: Timeout %v must be positive", c.Timeout)
	}
	return nil
}

// Proxy forwards every request to one upstream.
type Proxy struct {
	hc      *fasthttp.HostClient
	timeout time.Duration
}

// New returns a Proxy for cfg, which it validates and does not retain.
func New(cfg Config) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Proxy{
		timeout: cfg.Timeout,
		hc: &fasthttp.HostClient{
			Addr:                          cfg.Upstream,
			MaxConns:                      cfg.MaxConns,
			MaxConnWaitTimeout:            cfg.Timeout,
			MaxIdemponentCallAttempts:     1,
			ReadTimeout:                   cfg.Timeout,
			WriteTimeout:                  cfg.Timeout,
			StreamResponseBody:            true,
			NoDefaultUserAgentHeader:      true,
			DisablePathNormalizing:        true,
			DisableHeaderNamesNormalizing: true,
		},
	}, nil
}

// hopHeaders are the hop-by-hop headers of RFC 9110 section 7.6.1 that a
// proxy must not forward. fasthttp frames bodies itself, so Content-Length
// and Transfer-Encoding are recomputed on each side.
var hopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// Handler serves one request by forwarding it. Upstream failures answer 502
// (504 on timeout) with a short text body.
func (p *Proxy) Handler(ctx *fasthttp.RequestCtx) {
	req := &ctx.Request
	for _, h := range hopHeaders {
		req.Header.Del(h)
	}
	resp := fasthttp.AcquireResponse()
	if err := p.hc.DoTimeout(req, resp, p.timeout); err != nil {
		fasthttp.ReleaseResponse(resp)
		code := fasthttp.StatusBadGateway
		if errors.Is(err, fasthttp.ErrTimeout) {
			code = fasthttp.StatusGatewayTimeout
		}
		ctx.Error("proxy: upstream: "+err.Error(), code)
		return
	}
	for _, h := range hopHeaders {
		resp.Header.Del(h)
	}
	resp.Header.CopyTo(&ctx.Response.Header)
	if resp.BodyStream() == nil { // no body at all, e.g. an answer to HEAD
		fasthttp.ReleaseResponse(resp)
		return
	}
	size := resp.Header.ContentLength()
	if size < 0 {
		// Unknown length (chunked, e.g. server-sent events): send headers
		// now, then each chunk as it arrives; fasthttp flushes after every
		// Read of the body stream.
		size = -1
		ctx.Response.ImmediateHeaderFlush = true
	}
	ctx.Response.SetBodyStream(&upstreamBody{resp: resp}, size)
}

// upstreamBody is the upstream response's body stream as the client-side
// response's body; Close releases the upstream response and its connection.
type upstreamBody struct {
	resp *fasthttp.Response
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	if b.resp == nil {
		return 0, errors.New("proxy: read after close")
	}
	return b.resp.BodyStream().Read(p)
}

// Close is called by fasthttp once the body has been written or abandoned.
func (b *upstreamBody) Close() error {
	if b.resp == nil {
		return nil
	}
	err := b.resp.CloseBodyStream()
	fasthttp.ReleaseResponse(b.resp)
	b.resp = nil
	return err
}

// Server returns a fasthttp.Server running p's handler with settings fit for
// benchmarking: no server-side timeouts shorter than a long stream, no
// Server header, no request logging.
func (p *Proxy) Server() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                       p.Handler,
		Name:                          "bareproxy",
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		NoDefaultDate:                 true,
		DisableHeaderNamesNormalizing: true,
		ReadBufferSize:                16 << 10,
		IdleTimeout:                   2 * time.Minute,
		CloseOnShutdown:               true,
	}
}
