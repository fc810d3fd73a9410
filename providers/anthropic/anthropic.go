// Package anthropic translates Chat Completions to and from Anthropic's
// Messages API (POST {base}/v1/messages, headers x-api-key and
// anthropic-version: 2023-06-01) and calls it.
//
// Request translation:
//   - system and developer messages, wherever they are, are lifted into
//     "system" (joined with blank lines, in order);
//   - user content becomes text and image blocks (base64 data URLs as
//     base64 sources, http(s) URLs as url sources); tool messages become
//     user tool_result blocks; assistant tool_calls become tool_use blocks;
//   - runs of same-role messages are merged, empty messages dropped, as the
//     API requires alternating turns with content;
//   - tools → tools[{name,description,input_schema}]; tool_choice auto,
//     none, required, {function} → auto, none, any, tool;
//     parallel_tool_calls=false → disable_parallel_tool_use;
//   - max_tokens (required upstream) comes from max_completion_tokens,
//     max_tokens, or Config.DefaultMaxTokens; stop → stop_sequences;
//     temperature above Anthropic's maximum of 1 is clamped to 1; user →
//     metadata.user_id; n > 1 is refused; presence/frequency penalties and
//     seed have no equivalent and are dropped;
//   - response_format json_object adds a system instruction; json_schema is
//     emulated with a forced tool (see jsonTool) or, when the request has
//     tools of its own, a system instruction.
//
// Responses: text blocks join into content, tool_use blocks become
// tool_calls with the input as a JSON string; stop_reason end_turn and
// stop_sequence → stop, max_tokens → length, tool_use → tool_calls, refusal
// → content_filter; prompt tokens are input + cache creation + cache read
// tokens. Thinking blocks are dropped. The stream mapping is on decoder.
//
// It imports only package providers. A [Client] is safe for concurrent use.
package anthropic

import (
	"context"
	"time"

	"github.com/assistiv/gateway/providers"
)

// Name is the provider name used in errors and in "anthropic/<model>".
const Name = "anthropic"

// DefaultBaseURL is Anthropic's public endpoint.
const DefaultBaseURL = "https://api.anthropic.com"

// APIVersion is the anthropic-version header sent.
const APIVersion = "2023-06-01"

// Config tunes a [Client].
type Config struct {
	// DefaultMaxTokens is sent as max_tokens when the request has none.
	// Default 4096; 1 to 1,000,000. The edge may set the request's own
	// max_tokens from the catalog instead.
	DefaultMaxTokens int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{DefaultMaxTokens: 4096} }

// Client calls the Messages API.
type Client struct {
	t   *providers.Transport
	cfg Config
}

// New returns a client. A zero or out-of-range DefaultMaxTokens is
// replaced by the default.
func New(t *providers.Transport, cfg Config) *Client {
	if cfg.DefaultMaxTokens < 1 || cfg.DefaultMaxTokens > 1_000_000 {
		cfg.DefaultMaxTokens = DefaultConfig().DefaultMaxTokens
	}
	return &Client{t: t, cfg: cfg}
}

// Name returns the provider name.
func (c *Client) Name() string { return Name }

// Complete sends req and returns the translated response. It blocks until
// the upstream answered; cancelling ctx abandons the call. Errors:
// ctx.Err() or a *providers.Error.
func (c *Client) Complete(ctx context.Context, up providers.Upstream, req *providers.ChatRequest) (*providers.ChatResponse, error) {
	call, err := c.call(up, req, false)
	if err != nil {
		return nil, err
	}
	body, err := c.t.Do(ctx, call)
	if err != nil {
		return nil, err
	}
	return decodeResponse(req, body, c.t.Config().Now())
}

// Stream sends req with stream on and returns the translated stream once
// the upstream accepted it. Retries happen only before Stream returns.
// Cancelling ctx ends the stream: a pending Next returns ctx.Err().
func (c *Client) Stream(ctx context.Context, up providers.Upstream, req *providers.ChatRequest) (*providers.Stream, error) {
	call, err := c.call(up, req, true)
	if err != nil {
		return nil, err
	}
	return c.t.OpenStream(ctx, call, newDecoder(req, c.t.Config().Now()), req.IncludeUsage())
}

func (c *Client) call(up providers.Upstream, req *providers.ChatRequest, stream bool) (*providers.Call, error) {
	if up.APIKey == "" {
		return nil, providers.NewError(providers.ErrBadUpstream, Name, "no API key configured")
	}
	url, err := providers.Endpoint(up.BaseURL, DefaultBaseURL, "/v1", "/messages")
	if err != nil {
		return nil, err
	}
	body, err := encodeRequest(req, stream, c.cfg.DefaultMaxTokens)
	if err != nil {
		return nil, err
	}
	return &providers.Call{
		Provider: Name,
		URL:      url,
		Headers: []providers.Header{
			{Name: "x-api-key", Value: up.APIKey},
			{Name: "anthropic-version", Value: APIVersion},
		},
		Body:        body,
		Secret:      up.APIKey,
		DecodeError: decodeError,
	}, nil
}

// EncodeRequest returns the Messages API body for req. defaultMaxTokens is
// used when req sets no limit.
func EncodeRequest(req *providers.ChatRequest, stream bool, defaultMaxTokens int) ([]byte, error) {
	return encodeRequest(req, stream, defaultMaxTokens)
}

// DecodeResponse translates a Messages API response to req.
func DecodeResponse(req *providers.ChatRequest, body []byte, now time.Time) (*providers.ChatResponse, error) {
	return decodeResponse(req, body, now)
}

// NewDecoder returns the stream decoder for a response to req.
func NewDecoder(req *providers.ChatRequest, now time.Time) providers.EventDecoder {
	return newDecoder(req, now)
}

// DecodeError maps an error answer's body; status 0 derives the status
// from the error type, as for errors inside a stream.
func DecodeError(status int, body []byte) *providers.Error { return decodeError(status, body) }
