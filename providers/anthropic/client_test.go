package anthropic

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

const key = "sk-ant-test-key-0123456789"

func chatReq(t *testing.T, extra string) *providers.ChatRequest {
	return golden.ParseRequest(t, []byte(`{"model":"anthropic/claude-sonnet-4-6","messages":[{"role":"user","content":"hi"}]`+extra+`}`))
}

func client(t *testing.T) *Client { return New(transport(t), DefaultConfig()) }

func TestCompleteSendsHeadersAndDefaultMaxTokens(t *testing.T) {
	srv, s := upstream(t, 200, "application/json", golden.Read(t, filepath.Join("testdata", "responses", "tool_use.json")))
	resp, err := client(t).Complete(context.Background(), providers.Upstream{BaseURL: srv.URL, APIKey: key}, chatReq(t, `,"api_base":"http://127.0.0.2:1"`))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Choices[0].Message.ToolCalls) != 2 || resp.Choices[0].FinishReason != "tool_calls" {
		t.Errorf("Complete = %+v", resp)
	}
	if s.path != "/v1/messages" || s.headers.Get("X-Api-Key") != key || s.headers.Get("Anthropic-Version") != APIVersion || s.headers.Get("Authorization") != "" {
		t.Errorf("upstream saw path %q headers %v", s.path, s.headers)
	}
	if s.body["model"] != "claude-sonnet-4-6" || s.body["max_tokens"] != 4096.0 || s.body["api_base"] != nil {
		t.Errorf("upstream body = %v", s.body)
	}
}

func TestStreamOverHTTP(t *testing.T) {
	srv, s := upstream(t, 200, "text/event-stream", golden.Read(t, filepath.Join("testdata", "streams", "tool_use.sse")))
	st, err := client(t).Stream(context.Background(), providers.Upstream{BaseURL: srv.URL, APIKey: key},
		chatReq(t, `,"stream":true,"stream_options":{"include_usage":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	chunks, err := providers.Collect(st)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) != 10 || chunks[9].Usage == nil || chunks[9].Usage.TotalTokens != 561 {
		t.Errorf("got %d chunks, last %+v", len(chunks), chunks[len(chunks)-1])
	}
	if s.body["stream"] != true {
		t.Errorf("upstream body = %v", s.body)
	}
}

func TestErrorBodyMapped(t *testing.T) {
	tests := []struct {
		status, wantStatus int
		body, wantCode     string
		retryable          bool
	}{
		{400, 400, `{"type":"error","error":{"type":"invalid_request_error","message":"messages: field required"}}`, "invalid_request_error", false},
		{401, 401, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`, "authentication_error", false},
		{413, 413, `{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}`, "request_too_large", false},
		{429, 429, `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`, "rate_limit_error", true},
		{529, 503, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, "overloaded_error", true},
	}
	for _, tt := range tests {
		srv, s := upstream(t, tt.status, "application/json", []byte(tt.body))
		_, err := client(t).Complete(context.Background(), providers.Upstream{BaseURL: srv.URL, APIKey: key}, chatReq(t, ""))
		var e *providers.Error
		if !errors.As(err, &e) || e.Status != tt.wantStatus || e.Code != tt.wantCode || e.Retryable != tt.retryable {
			t.Errorf("status %d: error = %#v", tt.status, err)
			continue
		}
		if want := map[bool]int{true: 3, false: 1}[tt.retryable]; s.n != want {
			t.Errorf("status %d: %d attempts, want %d", tt.status, s.n, want)
		}
		if tt.status == 413 && !errors.Is(err, providers.ErrInvalidRequest) {
			t.Errorf("413 does not match ErrInvalidRequest")
		}
	}
}

func TestRefusesNGreaterThanOne(t *testing.T) {
	_, err := client(t).Complete(context.Background(), providers.Upstream{BaseURL: "http://127.0.0.1:1", APIKey: key}, chatReq(t, `,"n":2`))
	if !errors.Is(err, providers.ErrUnsupported) {
		t.Errorf("n=2: %v, want ErrUnsupported", err)
	}
}

var _ = strings.Contains
