package providers

import (
	"encoding/json"
	"testing"
)

// BenchmarkRelayAnswer measures reading a relayed answer and a relayed
// stream chunk, next to the validation pass each used to start with.
//
//	go test ./providers -run '^$' -bench BenchmarkRelayAnswer -benchmem
func BenchmarkRelayAnswer(b *testing.B) {
	answer := []byte(`{"id":"chatcmpl-1","object":"chat.completion","created":1765000000,"model":"gpt-4o-mini",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you plan your trip to Tokyo today?","refusal":null},"logprobs":null,"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":20,"completion_tokens":14,"total_tokens":34,"prompt_tokens_details":{"cached_tokens":0}},"system_fingerprint":"fp_1"}`)
	chunk := []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1765000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1",` +
		`"choices":[{"index":0,"delta":{"content":" Tokyo"},"logprobs":null,"finish_reason":null}]}`)
	var relay ChunkRelay
	for _, c := range []struct {
		name string
		fn   func() bool
	}{
		{"answer", func() bool { _, ok := RelayedAnswer(answer); return ok }},
		{"answer-before", func() bool { _, ok := oldRelayedAnswer(answer); return ok }},
		{"chunk", func() bool { _, ok := RelayChunk(chunk); return ok }},
		{"chunk-of-a-stream", func() bool { _, ok := relay.Chunk(chunk); return ok }},
		{"valid", func() bool { return validJSON(chunk) }},
		{"valid-encoding-json", func() bool { return json.Valid(chunk) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if !c.fn() {
					b.Fatal("refused")
				}
			}
		})
	}
}
