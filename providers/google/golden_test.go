package google

import (
	"bytes"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assistiv/gateway/providers"
	"github.com/assistiv/gateway/providers/internal/golden"
)

var testNow = time.Unix(1750000000, 0)

const defaultRequest = `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}]}`

// requestFor returns the companion request of an upstream fixture, or a
// plain one.
func requestFor(t testing.TB, input string) *providers.ChatRequest {
	b := golden.Companion(t, input, ".request.json")
	if b == nil {
		b = []byte(defaultRequest)
	}
	return golden.ParseRequest(t, b)
}

func TestTranslateRequestGolden(t *testing.T) {
	for _, in := range golden.SharedRequests(t) {
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			req := golden.ParseRequest(t, golden.Read(t, in))
			body, err := EncodeRequest(req)
			got := []byte("error: " + errString(err) + "\n")
			if err == nil {
				got = golden.Indent(t, body)
			}
			golden.CheckAt(t, filepath.Join("testdata", "requests", name+".golden.json"), got)
		})
	}
}

func TestTranslateResponseGolden(t *testing.T) {
	for _, in := range golden.Inputs(t, "responses", "json") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			resp, err := DecodeResponse(requestFor(t, in), golden.Read(t, in), testNow)
			got := []byte("error: " + errString(err) + "\n")
			if err == nil {
				b, _ := json.Marshal(resp)
				got = golden.Indent(t, b)
			}
			golden.Check(t, in, ".json", got)
		})
	}
}

func TestTranslateStreamGolden(t *testing.T) {
	for _, in := range golden.Inputs(t, "streams", "sse") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			s := providers.NewStream(io.NopCloser(bytes.NewReader(golden.Read(t, in))), NewDecoder(requestFor(t, in), testNow),
				providers.StreamConfig{IncludeUsage: true})
			golden.Check(t, in, ".txt", golden.RenderStream(t, s))
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func FuzzGoogleStream(f *testing.F) {
	for _, in := range []string{"text.sse", "function_call.sse", "json_schema.sse", "error.sse", "truncated.sse"} {
		f.Add(golden.Read(f, filepath.Join("testdata", "streams", in)), in == "json_schema.sse")
	}
	plain := golden.ParseRequest(f, []byte(defaultRequest))
	schema := golden.ParseRequest(f, golden.Read(f, filepath.Join("testdata", "streams", "json_schema.request.json")))
	f.Fuzz(func(t *testing.T, b []byte, useSchema bool) {
		req := plain
		if useSchema {
			req = schema
		}
		s := providers.NewStream(io.NopCloser(bytes.NewReader(b)), NewDecoder(req, testNow),
			providers.StreamConfig{IncludeUsage: true, MaxEventBytes: 64 << 10})
		chunks, _ := providers.Collect(s)
		for _, c := range chunks {
			if _, err := json.Marshal(c); err != nil {
				t.Fatalf("chunk does not marshal: %v", err)
			}
		}
		if u, ok := s.Usage(); ok && (u.PromptTokens < 0 || u.CompletionTokens < 0 || u.TotalTokens != u.PromptTokens+u.CompletionTokens) {
			t.Fatalf("bad usage %+v", u)
		}
	})
}
