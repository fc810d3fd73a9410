// Package upstream is a trivial OpenAI-style chat completions server for the
// benchmark: a fixed JSON completion, or a server-sent event stream of N
// chunks at a fixed interval ending with "data: [DONE]". It is the stand-in
// upstream until cmd/mockllm is ready, and stays useful as the cheapest
// possible upstream (nearly all its cost is fasthttp's).
//
// A request streams when its body contains "stream":true (with or without a
// space after the colon). Two request headers override the configured stream
// shape, so one process serves every scenario: X-Bench-Chunks (count) and
// X-Bench-Chunk-Interval (a Go duration such as "20ms").
//
// Chunks are produced by the body reader that fasthttp's connection
// goroutine pulls from, so a stream costs no goroutine of its own; fasthttp
// flushes after every chunk it reads, so each chunk leaves in its own write.
//
// It imports nothing of the gateway's.
package upstream

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// Config shapes the responses.
type Config struct {
	// Chunks is the number of content chunks per stream before
	// "data: [DONE]". Default 200, range [0, 100000].
	Chunks int
	// ChunkInterval is the time between chunks. Default 20 ms; 0 sends them
	// back to back. At most 10 s.
	ChunkInterval time.Duration
	// FirstChunkDelay is the time before the first chunk. Default 0.
	FirstChunkDelay time.Duration
}

// DefaultConfig returns the configuration the benchmark uses.
func DefaultConfig() Config {
	return Config{Chunks: 200, ChunkInterval: 20 * time.Millisecond}
}

// Validate reports a field out of range.
func (c Config) Validate() error {
	if c.Chunks < 0 || c.Chunks > 100000 {
		return fmt.Errorf("upstream: Chunks %d out of range [0, 100000]", c.Chunks)
	}
	if c.ChunkInterval < 0 || c.ChunkInterval > 10*time.Second {
		return fmt.Errorf("upstream: ChunkInterval %v out of range [0, 10s]", c.ChunkInterval)
	}
	if c.FirstChunkDelay < 0 || c.FirstChunkDelay > 10*time.Second {
		return fmt.Errorf("upstream: FirstChunkDelay %v out of range [0, 10s]", c.FirstChunkDelay)
	}
	return nil
}

// Completion is the body of every non-streaming response.
const Completion = `{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench-model",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the bench upstream."},"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":9,"completion_tokens":7,"total_tokens":16}}`

// Chunk is the payload of every streamed content event.
const Chunk = `{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench-model",` +
	`"choices":[{"index":0,"delta":{"content":"tok "},"finish_reason":null}]}`

var (
	chunkEvent  = []byte("data: " + Chunk + "\n\n")
	doneEvent   = []byte("data: [DONE]\n\n")
	streamTrue  = []byte(`"stream":true`)
	streamTrue2 = []byte(`"stream": true`)
	completion  = []byte(Completion)
)

// Handler returns the fasthttp handler. GET /healthz answers 200 "ok"; every
// other request gets a completion or a stream. cfg must be valid.
func Handler(cfg Config) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/healthz" {
			ctx.SetBodyString("ok")
			return
		}
		body := ctx.PostBody()
		if !bytes.Contains(body, streamTrue) && !bytes.Contains(body, streamTrue2) {
			ctx.SetContentType("application/json")
			ctx.SetBody(completion)
			return
		}
		sc := cfg
		if v := ctx.Request.Header.Peek("X-Bench-Chunks"); len(v) > 0 {
			if n, err := strconv.Atoi(string(v)); err == nil && n >= 0 && n <= 100000 {
				sc.Chunks = n
			}
		}
		if v := ctx.Request.Header.Peek("X-Bench-Chunk-Interval"); len(v) > 0 {
			if d, err := time.ParseDuration(string(v)); err == nil && d >= 0 && d <= 10*time.Second {
				sc.ChunkInterval = d
			}
		}
		ctx.SetContentType("text/event-stream")
		ctx.Response.Header.Set("Cache-Control", "no-cache")
		ctx.Response.ImmediateHeaderFlush = true
		ctx.Response.SetBodyStream(&stream{cfg: sc, start: time.Now()}, -1)
	}
}

// stream produces one event per Read, each at its scheduled time
// (start + FirstChunkDelay + i*ChunkInterval, so delays do not accumulate).
// fasthttp's connection goroutine calls Read and flushes after each one.
type stream struct {
	cfg     Config
	start   time.Time
	i       int    // next chunk; cfg.Chunks means [DONE]
	pending []byte // rest of an event that did not fit the last Read
}

func (s *stream) Read(p []byte) (int, error) {
	if len(s.pending) == 0 {
		if s.i > s.cfg.Chunks {
			return 0, io.EOF
		}
		due := s.start.Add(s.cfg.FirstChunkDelay + time.Duration(s.i)*s.cfg.ChunkInterval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		if s.i == s.cfg.Chunks {
			s.pending = doneEvent
		} else {
			s.pending = chunkEvent
		}
		s.i++
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}
