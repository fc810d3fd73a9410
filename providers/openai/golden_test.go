package openai

import (
	"bytes"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/assistiv/gateway/providers"
	"github.com/assistiv/gateway/providers/internal/golden"
)

func TestTranslateRequestGolden(t *testing.T) {
	for _, in := range golden.SharedRequests(t) {
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			req := golden.ParseRequest(t, golden.Read(t, in))
			body, err := EncodeRequest(req, req.Stream)
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
			resp, err := DecodeResponse(golden.Read(t, in))
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
			s := providers.NewStream(io.NopCloser(bytes.NewReader(golden.Read(t, in))), NewDecoder(),
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

func FuzzOpenAIStream(f *testing.F) {
	for _, in := range []string{"text.sse", "tool_calls.sse", "error_event.sse", "truncated.sse"} {
		f.Add(golden.Read(f, filepath.Join("testdata", "streams", in)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := providers.NewStream(io.NopCloser(bytes.NewReader(b)), NewDecoder(),
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

// FuzzRelayedAnswer: an answer that providers.RelayedAnswer lets through
// as it is (usage read, choices not decoded) and that the full decoder
// also accepts is raw for the decoder too, with the same usage: relaying
// never bills differently from decoding. (The decoder refuses more: it
// decodes the choices, whose shape a relay does not check.)
func FuzzRelayedAnswer(f *testing.F) {
	f.Add([]byte(`{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}`))
	f.Add([]byte(`{"object":"chat.completion","choices":[],"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}`))
	f.Add([]byte(`{"object":"x","choices":[1],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2},"usage":{}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, ok := providers.RelayedAnswer(body)
		if !ok {
			return
		}
		full, err := DecodeResponse(body)
		if err != nil {
			return
		}
		if full.Raw == nil || full.Usage == nil || *full.Usage != *r.Usage {
			t.Fatalf("relayed usage %+v, decoder usage %+v raw=%v\n%s", *r.Usage, full.Usage, full.Raw != nil, body)
		}
	})
}
