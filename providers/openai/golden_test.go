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

// producedOf counts a decoded chunk's content and tool-call bytes the way
// the edge does.
func producedOf(c *providers.ChatChunk) int64 {
	var n int64
	for _, cc := range c.Choices {
		if cc.Delta.Content != nil {
			n += int64(len(*cc.Delta.Content))
		}
		for _, tc := range cc.Delta.ToolCalls {
			n += int64(len(tc.Function.Arguments) + len(tc.Function.Name))
		}
	}
	return n
}

var relayChunkSeeds = []string{
	`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1733000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`,
	`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hé \"quoted\"\n\u00e9"},"finish_reason":null}]}`,
	`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}`,
	`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}]}`,
	`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"obfuscation":"abc"}`,
	`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}`,
	`{"error":{"message":"overloaded","type":"server_error"}}`,
	`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"Delta":{"content":"x"}}]}`,
	`{"object":"0","choices":null}`,
	`{"object":"x","choices":[{"delta":{"content":"a\u00e9"}}]}`,
}

func TestRelayChunkCountsAsTheDecoderDoes(t *testing.T) {
	want := []struct {
		ok       bool
		produced int64
	}{{true, 0}, {true, int64(len("Hé \"quoted\"\né"))}, {true, int64(len("get_weather"))}, {true, int64(len(`{"city":`))}, {true, 0}, {false, 0}, {false, 0}, {false, 0}, {false, 0}, {true, 3}}
	for i, s := range relayChunkSeeds {
		c, ok := providers.RelayChunk([]byte(s))
		if ok != want[i].ok {
			t.Fatalf("chunk %d: RelayChunk ok = %v, want %v: %s", i, ok, want[i].ok, s)
		}
		if ok && (c.Produced != want[i].produced || string(c.Raw) != s || c.Choices != nil) {
			t.Fatalf("chunk %d: produced %d raw %q choices %v; want produced %d", i, c.Produced, c.Raw, c.Choices, want[i].produced)
		}
	}
}

// FuzzRelayChunk: a chunk RelayChunk relays undecoded is one the full
// decoder turns into exactly one plain chunk with the same id, object,
// created and model and the same count of content and tool-call bytes:
// relaying never counts, bills or ends a stream differently.
func FuzzRelayChunk(f *testing.F) {
	for _, s := range relayChunkSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, ok := providers.RelayChunk(data)
		if !ok {
			return
		}
		chunks, done, err := newDecoder(Name).Decode(&providers.Event{Data: data})
		if err != nil || done || len(chunks) != 1 {
			t.Fatalf("relayed a chunk the decoder makes %d chunks of (done %v, err %v): %s", len(chunks), done, err, data)
		}
		c := chunks[0]
		if c.Raw == nil {
			t.Fatalf("the decoder would not relay this chunk as it is: %s", data)
		}
		if c.ID != r.ID || c.Object != r.Object || c.Created != r.Created || c.Model != r.Model {
			t.Fatalf("header %q %q %d %q, decoder %q %q %d %q: %s", r.ID, r.Object, r.Created, r.Model, c.ID, c.Object, c.Created, c.Model, data)
		}
		if p := producedOf(c); p != r.Produced {
			t.Fatalf("produced %d, decoder %d: %s", r.Produced, p, data)
		}
	})
}

// BenchmarkStreamChunk compares a relayed chunk (scanned, sent on as
// received) with a decoded one (decoded here, encoded again by the edge).
//
//	go test ./providers/openai -run '^$' -bench BenchmarkStreamChunk -benchmem
func BenchmarkStreamChunk(b *testing.B) {
	data := []byte(relayChunkSeeds[0])
	b.Run("relay", func(b *testing.B) {
		d := newDecoder(Name)
		d.relay = true
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := d.Decode(&providers.Event{Data: data}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode+encode", func(b *testing.B) {
		d := newDecoder(Name)
		b.ReportAllocs()
		for b.Loop() {
			cs, _, err := d.Decode(&providers.Event{Data: data})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(cs[0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestRelayedStreamAllocatesNothingPerChunk: reading a relayed stream
// reuses the SSE reader's buffers, the decoder's chunk and its strings,
// so a long stream costs a handful of allocations in all, not some per
// chunk; each chunk still comes out as the upstream sent it, counted.
func TestRelayedStreamAllocatesNothingPerChunk(t *testing.T) {
	const n = 500
	var body bytes.Buffer
	for i := 0; i < n; i++ {
		body.WriteString("data: " + relayChunkSeeds[1] + "\n\n")
	}
	body.WriteString("data: [DONE]\n\n")
	want := int64(len("Hé \"quoted\"\né"))
	var got int
	allocs := testing.AllocsPerRun(3, func() {
		d := newDecoder(Name)
		d.relay = true
		st := providers.NewStream(io.NopCloser(bytes.NewReader(body.Bytes())), d, providers.StreamConfig{})
		got = 0
		for {
			c, err := st.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(c.Raw) != relayChunkSeeds[1] || c.Produced != want || c.ID != "c" || c.Model != "m" {
				t.Fatalf("chunk %d: raw %q produced %d id %q model %q", got, c.Raw, c.Produced, c.ID, c.Model)
			}
			got++
		}
	})
	if got != n {
		t.Fatalf("read %d chunks, want %d", got, n)
	}
	// The stream, its reader and buffers, the decoder and the first
	// chunk's strings: a fixed cost, well under one allocation a chunk.
	if allocs > 20 {
		t.Errorf("%v allocations for a stream of %d chunks", allocs, n)
	}
}
