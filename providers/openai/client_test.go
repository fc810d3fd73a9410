package openai

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assistiv/gateway/providers"
	"github.com/assistiv/gateway/providers/internal/golden"
)

type seen struct {
	mu      sync.Mutex
	path    string
	headers http.Header
	body    map[string]any
	n       int
}

func upstream(t *testing.T, status int, contentType string, body []byte) (*httptest.Server, *seen) {
	t.Helper()
	s := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.path, s.headers, s.n = r.URL.Path, r.Header.Clone(), s.n+1
		json.Unmarshal(b, &s.body)
		s.mu.Unlock()
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, s
}

func transport(t *testing.T) *providers.Transport {
	t.Helper()
	cfg := providers.DefaultConfig()
	cfg.AllowPrivateEgress = true
	cfg.Retry.Sleep = func(ctx context.Context, d time.Duration) error { return ctx.Err() }
	tr, err := providers.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

const key = "sk-test-openai-key-0123456789"

func request(t *testing.T, extra string) *providers.ChatRequest {
	return golden.ParseRequest(t, []byte(`{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]`+extra+`}`))
}

func TestCompleteSendsBearerKeyToBaseURLOnly(t *testing.T) {
	srv, s := upstream(t, 200, "application/json", golden.Read(t, filepath.Join("testdata", "responses", "text.json")))
	c := New(transport(t))
	req := request(t, `,"api_base":"http://127.0.0.2:1","base_url":"http://127.0.0.2:1","max_tokens":5`)
	resp, err := c.Complete(context.Background(), providers.Upstream{BaseURL: srv.URL, APIKey: key}, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content.String() != "Hi." || resp.Usage.TotalTokens != 21 {
		t.Errorf("Complete = %+v", resp)
	}
	if s.path != "/v1/chat/completions" || s.headers.Get("Authorization") != "Bearer "+key {
		t.Errorf("upstream saw path %q auth %q", s.path, s.headers.Get("Authorization"))
	}
	if s.body["model"] != "gpt-4o-mini" || s.body["api_base"] != nil || s.body["base_url"] != nil || s.body["max_completion_tokens"] != 5.0 {
		t.Errorf("upstream body = %v", s.body)
	}
}

func TestStreamAsksForUsageAndRelaysChunks(t *testing.T) {
	srv, s := upstream(t, 200, "text/event-stream", golden.Read(t, filepath.Join("testdata", "streams", "tool_calls.sse")))
	c := New(transport(t))
	st, err := c.Stream(context.Background(), providers.Upstream{BaseURL: srv.URL, APIKey: key}, request(t, `,"stream":true`))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	chunks, err := providers.Collect(st)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) != 7 { // the usage chunk is not relayed: the client did not ask
		t.Errorf("got %d chunks, want 7", len(chunks))
	}
	if u, ok := st.Usage(); !ok || u.TotalTokens != 127 {
		t.Errorf("Usage() = %+v, %v", u, ok)
	}
	so, _ := s.body["stream_options"].(map[string]any)
	if s.body["stream"] != true || so["include_usage"] != true || s.headers.Get("Accept") != "text/event-stream" {
		t.Errorf("upstream body %v accept %q", s.body, s.headers.Get("Accept"))
	}
}

func TestErrorBodyMapped(t *testing.T) {
	tests := []struct {
		status     int
		body       string
		wantStatus int
		wantType   string
		wantCode   string
	}{
		{401, `{"error":{"message":"Incorrect API key provided: sk-test-openai-key-0123456789.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, 401, "invalid_request_error", "invalid_api_key"},
		{404, `{"error":{"message":"The model does not exist","type":"invalid_request_error","param":"model","code":"model_not_found"}}`, 404, "invalid_request_error", "model_not_found"},
		{429, `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`, 429, "requests", "rate_limit_exceeded"},
		{500, `not json`, 500, "server_error", ""},
	}
	for _, tt := range tests {
		srv, s := upstream(t, tt.status, "application/json", []byte(tt.body))
		_, err := New(transport(t)).Complete(context.Background(), providers.Upstream{BaseURL: srv.URL, APIKey: key}, request(t, ""))
		var e *providers.Error
		if !errors.As(err, &e) || e.Status != tt.wantStatus || e.Type != tt.wantType || e.Code != tt.wantCode || e.Provider != Name {
			t.Errorf("status %d: error = %#v", tt.status, err)
			continue
		}
		if strings.Contains(e.Message, key) {
			t.Errorf("status %d: message leaks key: %q", tt.status, e.Message)
		}
		if wantN := map[bool]int{true: 3, false: 1}[e.Retryable]; s.n != wantN {
			t.Errorf("status %d: %d attempts, want %d", tt.status, s.n, wantN)
		}
	}
}

func TestNoKeyNoCall(t *testing.T) {
	_, err := New(transport(t)).Complete(context.Background(), providers.Upstream{BaseURL: "http://127.0.0.1:1"}, request(t, ""))
	if !errors.Is(err, providers.ErrBadUpstream) {
		t.Errorf("Complete without key = %v, want ErrBadUpstream", err)
	}
}
