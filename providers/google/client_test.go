package google

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

const key = "AIza-test-google-key-0123456789"

func chatReq(t *testing.T, extra string) *providers.ChatRequest {
	return golden.ParseRequest(t, []byte(`{"model":"google/gemini-2.5-flash","messages":[{"role":"user","content":"hi"}]`+extra+`}`))
}

func client(t *testing.T) *Client { return New(transport(t)) }

func TestCompleteSendsKeyHeaderAndModelPath(t *testing.T) {
	srv, s := upstream(t, 200, "application/json", golden.Read(t, filepath.Join("testdata", "responses", "function_call.json")))
	resp, err := client(t).Complete(context.Background(), providers.Upstream{BaseURL: srv.URL, APIKey: key}, chatReq(t, `,"base_url":"http://127.0.0.2:1"`))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Choices[0].Message.ToolCalls) != 2 {
		t.Errorf("Complete = %+v", resp)
	}
	if s.path != "/v1beta/models/gemini-2.5-flash:generateContent" || s.headers.Get("X-Goog-Api-Key") != key || s.headers.Get("Authorization") != "" {
		t.Errorf("upstream saw path %q headers %v", s.path, s.headers)
	}
	if _, ok := s.body["contents"]; !ok || s.body["base_url"] != nil {
		t.Errorf("upstream body = %v", s.body)
	}
}

func TestStreamOverHTTP(t *testing.T) {
	var rawQuery string
	body := golden.Read(t, filepath.Join("testdata", "streams", "text.sse"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rawQuery = r.URL.Path + "?" + r.URL.RawQuery
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(body)
	}))
	defer srv.Close()
	st, err := client(t).Stream(context.Background(), providers.Upstream{BaseURL: srv.URL + "/v1beta", APIKey: key},
		chatReq(t, `,"stream":true`))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	chunks, err := providers.Collect(st)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) != 4 {
		t.Errorf("got %d chunks, want 4", len(chunks))
	}
	if rawQuery != "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse" {
		t.Errorf("upstream URL = %q", rawQuery)
	}
}

func TestModelCannotEscapePath(t *testing.T) {
	for _, m := range []string{"../files", "gemini?x=1", "a/b", "gemini-2.5-flash:countTokens", ""} {
		req := chatReq(t, "")
		req.Model = m
		_, err := client(t).Complete(context.Background(), providers.Upstream{BaseURL: "http://127.0.0.1:1", APIKey: key}, req)
		if !errors.Is(err, providers.ErrInvalidRequest) {
			t.Errorf("model %q: %v, want ErrInvalidRequest", m, err)
		}
	}
}

func TestErrorBodyMapped(t *testing.T) {
	tests := []struct {
		status   int
		body     string
		wantCode string
	}{
		{400, `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}}`, "INVALID_ARGUMENT"},
		{403, `{"error":{"code":403,"message":"Permission denied","status":"PERMISSION_DENIED"}}`, "PERMISSION_DENIED"},
		{429, `[{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}]`, "RESOURCE_EXHAUSTED"},
	}
	for _, tt := range tests {
		srv, _ := upstream(t, tt.status, "application/json", []byte(tt.body))
		_, err := client(t).Complete(context.Background(), providers.Upstream{BaseURL: srv.URL, APIKey: key}, chatReq(t, ""))
		var e *providers.Error
		if !errors.As(err, &e) || e.Status != tt.status || e.Code != tt.wantCode || e.Provider != Name {
			t.Errorf("status %d: error = %#v", tt.status, err)
		}
	}
}

func TestToolResultNeedsKnownCall(t *testing.T) {
	req := golden.ParseRequest(t, []byte(`{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"nope","content":"1"}]}`))
	if _, err := EncodeRequest(req); !errors.Is(err, providers.ErrInvalidRequest) {
		t.Errorf("EncodeRequest = %v, want ErrInvalidRequest", err)
	}
}

var _ = strings.Contains
