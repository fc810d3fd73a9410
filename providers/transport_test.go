package providers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testTransport returns a Transport for 127.0.0.1 whose retries do not
// sleep but record the delays they would have waited.
func testTransport(t testing.TB, mod func(*Config)) (*Transport, *[]time.Duration) {
	t.Helper()
	var mu sync.Mutex
	delays := new([]time.Duration)
	cfg := DefaultConfig()
	cfg.AllowPrivateEgress = true
	cfg.Retry.Jitter = func(d time.Duration) time.Duration { return d }
	cfg.Retry.Sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		*delays = append(*delays, d)
		mu.Unlock()
		return ctx.Err()
	}
	if mod != nil {
		mod(&cfg)
	}
	tr, err := NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return tr, delays
}

func testCall(url string) *Call {
	return &Call{
		Provider: "test", URL: url, Body: []byte(`{}`), Secret: "sk-secret-key-1234",
		Headers: []Header{{Name: "Authorization", Value: "Bearer sk-secret-key-1234"}},
		DecodeError: func(status int, b []byte) *Error {
			return StatusError("test", status, "", "", strings.TrimSpace(string(b)))
		},
	}
}

// dataDecoder relays each event's data as content and ends at "[END]".
type dataDecoder struct{}

func (dataDecoder) Decode(ev *Event) ([]*ChatChunk, bool, error) {
	if string(ev.Data) == "[END]" {
		return nil, true, nil
	}
	return []*ChatChunk{{ID: "x", Object: ObjectChatCompletionChunk, Choices: []ChunkChoice{{Delta: Delta{Content: Str(string(ev.Data))}}}}}, false, nil
}
func (dataDecoder) Finish() ([]*ChatChunk, error) {
	return nil, NewError(ErrTruncated, "test", "no [END]")
}
func (dataDecoder) Usage() (Usage, bool) { return Usage{}, false }

func TestRetryOn429And500ThenSuccess(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			http.Error(w, "slow down", http.StatusTooManyRequests)
		case 2:
			http.Error(w, "oops", http.StatusInternalServerError)
		default:
			io.WriteString(w, `{"ok":true}`)
		}
	}))
	defer srv.Close()
	tr, delays := testTransport(t, nil)
	body, err := tr.Do(context.Background(), testCall(srv.URL))
	if err != nil || string(body) != `{"ok":true}` {
		t.Fatalf("Do = %q, %v; want ok body", body, err)
	}
	if got := n.Load(); got != 3 {
		t.Errorf("attempts = %d, want 3", got)
	}
	if want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}; fmt.Sprint(*delays) != fmt.Sprint(want) {
		t.Errorf("backoff delays = %v, want %v", *delays, want)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	tr, delays := testTransport(t, nil)
	if _, err := tr.Do(context.Background(), testCall(srv.URL)); err != nil {
		t.Fatal(err)
	}
	if len(*delays) != 1 || (*delays)[0] != 2*time.Second {
		t.Errorf("delays = %v, want [2s]", *delays)
	}
}

func TestRetriesStopAtMaxAttempts(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	tr, _ := testTransport(t, nil)
	_, err := tr.Do(context.Background(), testCall(srv.URL))
	var e *Error
	if !errors.As(err, &e) || e.Status != 503 || !e.Retryable || !errors.Is(err, ErrUpstream) {
		t.Fatalf("Do error = %v, want retryable 503", err)
	}
	if got := n.Load(); got != 3 {
		t.Errorf("attempts = %d, want 3", got)
	}
}

func TestNoRetryOnClientError(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Error(w, "bad key sk-secret-key-1234", http.StatusUnauthorized)
	}))
	defer srv.Close()
	tr, _ := testTransport(t, nil)
	_, err := tr.Do(context.Background(), testCall(srv.URL))
	var e *Error
	if !errors.As(err, &e) || e.Status != 401 || e.Type != "authentication_error" || e.Retryable {
		t.Fatalf("Do error = %#v, want 401 authentication_error", err)
	}
	if strings.Contains(e.Message, "sk-secret-key-1234") {
		t.Errorf("error message leaks the key: %q", e.Message)
	}
	if n.Load() != 1 {
		t.Errorf("attempts = %d, want 1", n.Load())
	}
}

func TestConnectionRefusedIsRetriedThenErrConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tr, delays := testTransport(t, nil)
	_, err = tr.Do(context.Background(), testCall("http://"+addr+"/v1/x"))
	if !errors.Is(err, ErrConnect) {
		t.Fatalf("Do error = %v, want ErrConnect", err)
	}
	if len(*delays) != 2 {
		t.Errorf("retries = %d, want 2", len(*delays))
	}
}

func TestPrivateEgressRefusedByDefault(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) }))
	defer srv.Close()
	tr, _ := testTransport(t, func(c *Config) { c.AllowPrivateEgress = false })
	// The same guard as webhooks and OAuth (internal/egress): the literal
	// loopback address and a localhost name are both refused at dial.
	for _, u := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)} {
		_, err := tr.Do(context.Background(), testCall(u))
		if !errors.Is(err, ErrBadUpstream) {
			t.Fatalf("Do(%s) error = %v, want ErrBadUpstream", u, err)
		}
	}
	if n.Load() != 0 {
		t.Errorf("server saw %d requests, want 0", n.Load())
	}
}

func TestResponseLargerThanLimitRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 8<<10)))
	}))
	defer srv.Close()
	tr, _ := testTransport(t, func(c *Config) { c.MaxResponseBytes = 1 << 10 })
	_, err := tr.Do(context.Background(), testCall(srv.URL))
	if !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("Do error = %v, want ErrResponseTooLarge", err)
	}
}

// sseServer serves a stream: it writes events, then waits for release
// (or the client leaving) before returning.
func sseServer(t *testing.T, events []string, release <-chan struct{}, attempts *atomic.Int32) *httptest.Server {
	t.Helper()
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		for _, e := range events {
			io.WriteString(w, e)
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
}

func TestStreamCancelMidStreamReturnsPromptly(t *testing.T) {
	release := make(chan struct{})
	var attempts atomic.Int32
	srv := sseServer(t, []string{"data: one\n\n"}, release, &attempts)
	defer srv.Close()
	defer close(release)
	tr, _ := testTransport(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	body, err := tr.Open(ctx, testCall(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	s := NewStream(body, dataDecoder{}, StreamConfig{})
	defer s.Close()
	if c, err := s.Next(); err != nil || *c.Choices[0].Delta.Content != "one" {
		t.Fatalf("first Next = %v, %v", c, err)
	}
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	start := time.Now()
	_, err = s.Next() // blocks: the server sends nothing more
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Next after cancel = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Next returned %v after cancel, want promptly", d)
	}
}

func TestStreamCancelBeforeHeadersReturnsPromptly(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // never answers
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	// Before headers, fasthttp cannot be interrupted: the abandoned attempt
	// keeps its connection until the server answers (see Transport).
	defer close(release)
	tr, _ := testTransport(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	start := time.Now()
	_, err := tr.Open(ctx, testCall(srv.URL))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Open = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Open returned after %v, want promptly", d)
	}
}

func TestStreamNoRetryAfterStart(t *testing.T) {
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack() // drop the connection mid-stream
		if err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()
	tr, delays := testTransport(t, nil)
	body, err := tr.Open(context.Background(), testCall(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	s := NewStream(body, dataDecoder{}, StreamConfig{})
	defer s.Close()
	chunks, err := Collect(s)
	if len(chunks) != 1 || err == nil {
		t.Fatalf("Collect = %d chunks, %v; want 1 chunk then an error", len(chunks), err)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not *Error", err)
	}
	if attempts.Load() != 1 || len(*delays) != 0 {
		t.Errorf("attempts = %d, retries = %d; want 1 and 0", attempts.Load(), len(*delays))
	}
}

func TestStreamIdleTimeout(t *testing.T) {
	release := make(chan struct{})
	var attempts atomic.Int32
	srv := sseServer(t, []string{"data: one\n\n"}, release, &attempts)
	defer srv.Close()
	defer close(release)
	tr, _ := testTransport(t, func(c *Config) { c.StreamIdleTimeout = 100 * time.Millisecond })
	if _, err := collectStream(t, tr, srv.URL); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Collect error = %v, want ErrTimeout", err)
	}
}

func TestStreamHugeEventRefused(t *testing.T) {
	release := make(chan struct{})
	close(release)
	var attempts atomic.Int32
	huge := "data: " + strings.Repeat("a", 10<<20) + "\n\n"
	srv := sseServer(t, []string{"data: one\n\n", huge, "data: [END]\n\n"}, release, &attempts)
	defer srv.Close()
	tr, _ := testTransport(t, nil)
	body, err := tr.Open(context.Background(), testCall(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	s := NewStream(body, dataDecoder{}, StreamConfig{MaxEventBytes: tr.Config().MaxEventBytes})
	defer s.Close()
	chunks, err := Collect(s)
	if len(chunks) != 1 || !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("Collect = %d chunks, %v; want 1 and ErrEventTooLarge", len(chunks), err)
	}
}

func TestStreamBytesBounded(t *testing.T) {
	release := make(chan struct{})
	close(release)
	var attempts atomic.Int32
	var events []string
	for i := 0; i < 100; i++ {
		events = append(events, "data: "+strings.Repeat("b", 100)+"\n\n")
	}
	srv := sseServer(t, events, release, &attempts)
	defer srv.Close()
	tr, _ := testTransport(t, func(c *Config) { c.MaxStreamBytes = 2 << 10 })
	body, err := tr.Open(context.Background(), testCall(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	s := NewStream(body, dataDecoder{}, StreamConfig{})
	defer s.Close()
	if _, err := Collect(s); !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("Collect error = %v, want ErrResponseTooLarge", err)
	}
}

func TestEndpoint(t *testing.T) {
	tests := []struct {
		name, base, want string
		bad              bool
	}{
		{"default", "", "https://api.example.com/v1/chat", false},
		{"host only", "http://127.0.0.1:9000", "http://127.0.0.1:9000/v1/chat", false},
		{"trailing v1", "https://proxy.example/v1/", "https://proxy.example/v1/chat", false},
		{"prefix", "https://proxy.example/openai", "https://proxy.example/openai/v1/chat", false},
		{"no scheme", "api.example.com", "", true},
		{"ftp", "ftp://api.example.com", "", true},
		{"userinfo", "https://u:p@api.example.com", "", true},
		{"query", "https://api.example.com?x=1", "", true},
	}
	// The second round is answered from the remembered URLs.
	for round := 0; round < 2; round++ {
		for _, tt := range tests {
			t.Run(fmt.Sprint(tt.name, round), func(t *testing.T) {
				got, err := Endpoint(tt.base, "https://api.example.com", "/v1", "/chat")
				if tt.bad {
					if !errors.Is(err, ErrBadUpstream) {
						t.Errorf("Endpoint(%q) error = %v, want ErrBadUpstream", tt.base, err)
					}
					return
				}
				if err != nil || got != tt.want {
					t.Errorf("Endpoint(%q) = %q, %v; want %q", tt.base, got, err, tt.want)
				}
			})
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		_, _ = Endpoint("http://127.0.0.1:9000", "https://api.example.com", "/v1", "/chat")
	}); n != 0 {
		t.Errorf("a remembered Endpoint allocates %v times, want 0", n)
	}
	for i := range maxEndpoints + 10 {
		base := fmt.Sprintf("https://p%d.example", i)
		if got, err := Endpoint(base, "", "/v1", "/chat"); err != nil || got != base+"/v1/chat" {
			t.Fatalf("Endpoint(%q) = %q, %v", base, got, err)
		}
	}
	if n := len(*endpoints.m.Load()); n > maxEndpoints {
		t.Errorf("%d remembered URLs, want at most %d", n, maxEndpoints)
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("DefaultConfig invalid: %v", err)
	}
	c.MaxEventBytes = 10
	if err := c.Validate(); err == nil {
		t.Error("Validate accepted MaxEventBytes=10")
	}
}

// countingServer serves SSE streams ending with "[END]" over HTTP/1.1
// chunked framing and counts the TCP connections it accepts. After the
// terminal event it waits for hold (nil: returns at once, sending the
// last chunk).
func countingServer(t *testing.T, hold <-chan struct{}) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		for _, e := range []string{"data: one\n\n", "data: [END]\n\n"} {
			io.WriteString(w, e)
			w.(http.Flusher).Flush()
		}
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
			}
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// collectStream opens a stream, reads it to its end (or its error) and
// closes it.
func collectStream(t *testing.T, tr *Transport, url string) ([]*ChatChunk, error) {
	t.Helper()
	body, err := tr.Open(context.Background(), testCall(url))
	if err != nil {
		t.Fatal(err)
	}
	s := NewStream(body, dataDecoder{}, StreamConfig{})
	defer s.Close()
	return Collect(s)
}

// readStream reads a one-chunk stream whole.
func readStream(t *testing.T, tr *Transport, url string) {
	t.Helper()
	if chunks, err := collectStream(t, tr, url); err != nil || len(chunks) != 1 {
		t.Fatalf("collect: %d chunks, %v", len(chunks), err)
	}
}

// A finished stream's connection goes back to the pool: the decoder stops
// at the terminal event, before the body's last chunk, and a body not
// read to its end would close its connection (a TCP handshake, and a
// socket in TIME_WAIT, per stream).
func TestFinishedStreamsReuseTheirConnection(t *testing.T) {
	srv, conns := countingServer(t, nil)
	tr, _ := testTransport(t, nil)
	for i := 0; i < 5; i++ {
		readStream(t, tr, srv.URL)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("5 sequential streams used %d connections, want 1", n)
	}
}

// An upstream that holds its connection open after the terminal event
// does not hold the stream's Close (bounded by drainWait), and its
// connection is not reused.
func TestFinishedStreamCloseDoesNotWaitForAnUpstreamThatHolds(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	srv, conns := countingServer(t, hold)
	tr, _ := testTransport(t, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		readStream(t, tr, srv.URL)
		readStream(t, tr, srv.URL)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for an upstream that holds its connection after the terminal event")
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (a held connection is not reused)", n)
	}
}

// The idle timeout counts from the last event, not from the stream's
// start: a stream whose events keep coming, each well within the idle
// time, outlives it several times over.
func TestStreamIdleTimeoutCountsFromTheLastEvent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		for i := 0; i < 12; i++ {
			io.WriteString(w, "data: tick\n\n")
			w.(http.Flusher).Flush()
			time.Sleep(40 * time.Millisecond)
		}
		io.WriteString(w, "data: [END]\n\n")
	}))
	defer srv.Close()
	tr, _ := testTransport(t, func(c *Config) { c.StreamIdleTimeout = 200 * time.Millisecond })
	if chunks, err := collectStream(t, tr, srv.URL); err != nil || len(chunks) != 12 {
		t.Fatalf("%d chunks, %v; want 12 and no timeout", len(chunks), err)
	}
}
