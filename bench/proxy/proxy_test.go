package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/assistiv/gateway/bench/upstream"
	"github.com/valyala/fasthttp"
)

// serve runs h on a fresh 127.0.0.1 port until the test ends.
func serve(tb testing.TB, h fasthttp.RequestHandler) string {
	tb.Helper()
	return serveWith(tb, &fasthttp.Server{Handler: h})
}

func serveWith(tb testing.TB, s *fasthttp.Server) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("Listen() error = %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	tb.Cleanup(func() {
		_ = s.Shutdown()
		<-done
	})
	return ln.Addr().String()
}

// startProxy starts a Proxy in front of upstreamAddr and returns its address.
func startProxy(tb testing.TB, upstreamAddr string) string {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.Upstream = upstreamAddr
	p, err := New(cfg)
	if err != nil {
		tb.Fatalf("New(%+v) error = %v", cfg, err)
	}
	return serveWith(tb, p.Server())
}

func TestProxyPassesRequestAndResponseBodies(t *testing.T) {
	up := serve(t, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("X-Echo-Method", string(ctx.Method()))
		ctx.Response.Header.Set("X-Echo-Auth", string(ctx.Request.Header.Peek("Authorization")))
		ctx.Response.Header.Set("X-Echo-Path", string(ctx.RequestURI()))
		ctx.SetStatusCode(fasthttp.StatusCreated)
		ctx.SetBody(append([]byte("echo:"), ctx.PostBody()...))
	})
	px := startProxy(t, up)

	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + px + "/v1/chat/completions?x=1")
	req.Header.SetMethod("POST")
	req.Header.Set("Authorization", "Bearer sk-test")
	req.SetBodyString(`{"model":"m"}`)
	if err := fasthttp.DoTimeout(req, resp, 10*time.Second); err != nil {
		t.Fatalf("Do via proxy error = %v", err)
	}
	for _, c := range []struct{ what, got, want string }{
		{"body", string(resp.Body()), `echo:{"model":"m"}`},
		{"method", string(resp.Header.Peek("X-Echo-Method")), "POST"},
		{"auth", string(resp.Header.Peek("X-Echo-Auth")), "Bearer sk-test"},
		{"path", string(resp.Header.Peek("X-Echo-Path")), "/v1/chat/completions?x=1"},
	} {
		if c.got != c.want {
			t.Errorf("via proxy: %s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if resp.StatusCode() != fasthttp.StatusCreated {
		t.Errorf("via proxy: status = %d, want %d", resp.StatusCode(), fasthttp.StatusCreated)
	}
}

func TestProxyPassesBenchUpstreamCompletionAndStream(t *testing.T) {
	cfg := upstream.DefaultConfig()
	cfg.Chunks, cfg.ChunkInterval = 5, 0
	px := startProxy(t, serve(t, upstream.Handler(cfg)))

	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + px + "/v1/chat/completions")
	req.Header.SetMethod("POST")
	req.SetBodyString(`{"model":"m"}`)
	if err := fasthttp.DoTimeout(req, resp, 10*time.Second); err != nil {
		t.Fatalf("Do(completion) error = %v", err)
	}
	if got := string(resp.Body()); got != upstream.Completion {
		t.Errorf("completion body = %q, want %q", got, upstream.Completion)
	}

	req.SetBodyString(`{"model":"m","stream":true}`)
	if err := fasthttp.DoTimeout(req, resp, 10*time.Second); err != nil {
		t.Fatalf("Do(stream) error = %v", err)
	}
	if got, want := bytes.Count(resp.Body(), []byte("data: ")), cfg.Chunks+1; got != want {
		t.Errorf("stream has %d data events, want %d; body %q", got, want, resp.Body())
	}
	if ct := string(resp.Header.ContentType()); ct != "text/event-stream" {
		t.Errorf("stream Content-Type = %q, want text/event-stream", ct)
	}
}

// gatedStream yields its first event, then blocks until gate is closed before
// yielding the second and ending.
type gatedStream struct {
	gate <-chan struct{}
	step int
}

func (g *gatedStream) Read(p []byte) (int, error) {
	g.step++
	switch g.step {
	case 1:
		return copy(p, "data: one\n\n"), nil
	case 2:
		select {
		case <-g.gate:
		case <-time.After(30 * time.Second): // never hang the test binary
		}
		return copy(p, "data: two\n\n"), nil
	}
	return 0, io.EOF
}

func TestProxyStreamsEachChunkBeforeTheNextExists(t *testing.T) {
	gate := make(chan struct{})
	up := serve(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/event-stream")
		ctx.Response.SetBodyStream(&gatedStream{gate: gate}, -1)
	})
	px := startProxy(t, up)

	c := &fasthttp.HostClient{Addr: px, StreamResponseBody: true}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + px + "/stream")
	if err := c.DoTimeout(req, resp, 60*time.Second); err != nil {
		t.Fatalf("Do(stream) error = %v", err)
	}
	defer resp.CloseBodyStream()
	br := bufio.NewReader(resp.BodyStream())
	// The upstream cannot produce "two" until the gate opens, so reading
	// "one" here proves the proxy forwarded the first chunk on its own.
	line, err := br.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first line via proxy = %q, %v; want %q", line, err, "data: one\n")
	}
	close(gate)
	rest, err := io.ReadAll(br)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("reading rest error = %v", err)
	}
	if want := "\ndata: two\n\n"; string(rest) != want {
		t.Errorf("rest via proxy = %q, want %q", rest, want)
	}
}

func TestProxyAnswers502WhenUpstreamIsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	px := startProxy(t, dead)
	status, _, err := fasthttp.Get(nil, "http://"+px+"/")
	if err != nil {
		t.Fatalf("Get via proxy error = %v", err)
	}
	if status != fasthttp.StatusBadGateway {
		t.Errorf("status with upstream down = %d, want %d", status, fasthttp.StatusBadGateway)
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err == nil {
		t.Errorf("Validate() without Upstream = nil, want error")
	}
	cfg.Upstream = "127.0.0.1:1"
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v, want nil", cfg, err)
	}
}
