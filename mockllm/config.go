package mockllm

import (
	"fmt"
	"log/slog"
	"time"
)

// Config holds the server-wide defaults. Every knob except Listen, Logger,
// MaxRequestBodySize and the recording and cache sizes can be overridden per
// request (see the package documentation). The zero value is not useful; start
// from [DefaultConfig].
type Config struct {
	// Listen is the TCP address [Run] listens on. Default "127.0.0.1:9090".
	Listen string

	// APIKey, when non-empty, is the only key every provider route accepts.
	// When empty (the default) any non-empty key is accepted.
	APIKey string

	// Latency is waited before any response byte (headers included) of a
	// request that passed authentication. Default 0; range [0, 10m].
	Latency time.Duration

	// TTFT (time to first token) is waited, after the response headers, before
	// the first token of a stream; a non-streaming reply waits it too, as part
	// of its generation time. Default 0; range [0, 10m].
	TTFT time.Duration

	// TokensPerSecond paces tokens after the first one: 1/TokensPerSecond
	// between streamed tokens, and (tokens-1)/TokensPerSecond of generation
	// time before a non-streaming reply. 0 (the default) means no pacing;
	// range [0, 1e6].
	TokensPerSecond float64

	// Tokens is the length, in words (one word is one token), of a generated
	// text reply when the request names no smaller max tokens. Default 20;
	// range [1, 100000].
	Tokens int

	// TextAndTool makes every tool-call reply open with a short sentence of
	// text before the call, in the same turn, as Anthropic models often
	// answer (OpenAI: content and tool_calls in one message; Anthropic: a
	// text block then a tool_use block; Gemini: a text part then a
	// functionCall part). Default false.
	TextAndTool bool

	// ErrorRate is the fraction of authenticated requests that fail with
	// ErrorStatus, spread evenly and deterministically over the server's
	// request sequence (0.25 fails every 4th request). It applies only to
	// requests that inject no fault of their own. Default 0; range [0, 1].
	ErrorRate float64

	// ErrorFault, when set, is what the requests ErrorRate picks get
	// instead of ErrorStatus: any X-Mock-Error value (hang, malformed_stream,
	// disconnect, stall, stream_error, or a status). Default "".
	ErrorFault string

	// ErrorStatus is the HTTP status of failures caused by ErrorRate and of
	// fail-first failures that name no fault. Default 500; range [400, 599].
	ErrorStatus int

	// RetryAfter is sent as Retry-After (whole seconds, rounded up) on 429,
	// 503 and 529 answers. Default 1s; range [0, 1h].
	RetryAfter time.Duration

	// HangMax bounds a hang or a stalled stream: the connection is closed
	// without a response after it, unless the client leaves first or the
	// server closes. Default 60s; range (0, 1h].
	HangMax time.Duration

	// RecordRequests is how many recent requests (URI, headers, body) are kept
	// per route for [Server.LastRequests]. 0 disables recording, which
	// benchmarks may prefer. Default 32; range [0, 10000].
	RecordRequests int

	// CacheEntries bounds the cache of planned replies keyed by the exact
	// request (route, model path, body, token override). 0 disables it.
	// Only bodies up to 64 KiB are cached. Default 4096; range [0, 1e6].
	CacheEntries int

	// MaxRequestBodySize is the largest accepted request body, in bytes.
	// Default 32 MiB; range [1 KiB, 1 GiB].
	MaxRequestBodySize int

	// ShutdownTimeout bounds the graceful shutdown done by [Run] when its
	// context ends. Default 5s; range (0, 10m].
	ShutdownTimeout time.Duration

	// Logger receives the server's own log lines (listen address, shutdown,
	// fasthttp connection errors). Nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults documented on each [Config] field.
func DefaultConfig() Config {
	return Config{
		Listen:             "127.0.0.1:9090",
		Tokens:             20,
		ErrorStatus:        500,
		RetryAfter:         time.Second,
		HangMax:            60 * time.Second,
		RecordRequests:     32,
		CacheEntries:       4096,
		MaxRequestBodySize: 32 << 20,
		ShutdownTimeout:    5 * time.Second,
	}
}

// Validate reports the first field out of its documented range.
func (c Config) Validate() error {
	const maxWait = 10 * time.Minute
	switch {
	case c.Latency < 0 || c.Latency > maxWait:
		return fmt.Errorf("mockllm: Latency %v out of range [0, %v]", c.Latency, maxWait)
	case c.TTFT < 0 || c.TTFT > maxWait:
		return fmt.Errorf("mockllm: TTFT %v out of range [0, %v]", c.TTFT, maxWait)
	case !(c.TokensPerSecond >= 0 && c.TokensPerSecond <= 1e6):
		return fmt.Errorf("mockllm: TokensPerSecond %v out of range [0, 1e6]", c.TokensPerSecond)
	case c.Tokens < 1 || c.Tokens > 100000:
		return fmt.Errorf("mockllm: Tokens %d out of range [1, 100000]", c.Tokens)
	case !(c.ErrorRate >= 0 && c.ErrorRate <= 1):
		return fmt.Errorf("mockllm: ErrorRate %v out of range [0, 1]", c.ErrorRate)
	case c.ErrorFault != "" && !validFault(c.ErrorFault):
		return fmt.Errorf("mockllm: ErrorFault %q: want an X-Mock-Error value", c.ErrorFault)
	case c.ErrorStatus < 400 || c.ErrorStatus > 599:
		return fmt.Errorf("mockllm: ErrorStatus %d out of range [400, 599]", c.ErrorStatus)
	case c.RetryAfter < 0 || c.RetryAfter > time.Hour:
		return fmt.Errorf("mockllm: RetryAfter %v out of range [0, 1h]", c.RetryAfter)
	case c.HangMax <= 0 || c.HangMax > time.Hour:
		return fmt.Errorf("mockllm: HangMax %v out of range (0, 1h]", c.HangMax)
	case c.RecordRequests < 0 || c.RecordRequests > 10000:
		return fmt.Errorf("mockllm: RecordRequests %d out of range [0, 10000]", c.RecordRequests)
	case c.CacheEntries < 0 || c.CacheEntries > 1e6:
		return fmt.Errorf("mockllm: CacheEntries %d out of range [0, 1e6]", c.CacheEntries)
	case c.MaxRequestBodySize < 1<<10 || c.MaxRequestBodySize > 1<<30:
		return fmt.Errorf("mockllm: MaxRequestBodySize %d out of range [1KiB, 1GiB]", c.MaxRequestBodySize)
	case c.ShutdownTimeout <= 0 || c.ShutdownTimeout > maxWait:
		return fmt.Errorf("mockllm: ShutdownTimeout %v out of range (0, %v]", c.ShutdownTimeout, maxWait)
	}
	return nil
}
