// Package openai speaks OpenAI's Chat Completions wire format
// (POST {base}/v1/chat/completions, "Authorization: Bearer <key>") and any
// upstream that copies it, such as xAI (see package xai).
//
// The canonical types of package providers are this format already, so the
// translation is thin: the request goes out nearly as parsed (unmodelled
// fields included), streamed requests always ask for
// stream_options.include_usage so billing gets usage, and max_tokens is sent
// as max_completion_tokens, which every current OpenAI chat model takes and
// the o-series requires. Responses are checked (shape, usage bounds) rather
// than rebuilt.
//
// It imports only package providers. A [Client] is safe for concurrent use.
package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/assistiv/gateway/providers"
)

// Name is the provider name used in errors and in "openai/<model>".
const Name = "openai"

// DefaultBaseURL is OpenAI's public endpoint.
const DefaultBaseURL = "https://api.openai.com"

// Client calls an OpenAI-compatible upstream.
type Client struct {
	t         *providers.Transport
	name      string
	base      string
	maxComp   bool                               // send max_tokens as max_completion_tokens
	decodeErr func(int, []byte) *providers.Error // made once, not per call
}

// New returns a client for OpenAI.
func New(t *providers.Transport) *Client {
	return newClient(&Client{t: t, name: Name, base: DefaultBaseURL, maxComp: true})
}

// NewCompatible returns a client for an upstream that speaks this wire
// format under another name and default base URL. max_tokens is passed
// through unchanged.
func NewCompatible(t *providers.Transport, name, defaultBaseURL string) *Client {
	return newClient(&Client{t: t, name: name, base: defaultBaseURL})
}

func newClient(c *Client) *Client {
	name := c.name
	c.decodeErr = func(status int, b []byte) *providers.Error { return decodeError(name, status, b) }
	return c
}

// Name returns the provider name.
func (c *Client) Name() string { return c.name }

// Complete sends req (with stream off) and returns the response. It blocks
// until the upstream answered; cancelling ctx abandons the call. Errors:
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
	if req.RelayAnswer {
		if r, ok := providers.RelayedAnswer(body); ok {
			return r, nil
		}
	}
	return decodeResponse(c.name, body)
}

// Stream sends req (with stream on) and returns the stream once the
// upstream accepted it. Retries happen only before Stream returns.
// Cancelling ctx ends the stream: a pending Next returns ctx.Err().
func (c *Client) Stream(ctx context.Context, up providers.Upstream, req *providers.ChatRequest) (*providers.Stream, error) {
	call, err := c.call(up, req, true)
	if err != nil {
		return nil, err
	}
	dec := newDecoder(c.name)
	dec.relay = req.RelayAnswer
	return c.t.OpenStream(ctx, call, dec, req.IncludeUsage())
}

func (c *Client) call(up providers.Upstream, req *providers.ChatRequest, stream bool) (*providers.Call, error) {
	if up.APIKey == "" {
		return nil, providers.NewError(providers.ErrBadUpstream, c.name, "no API key configured")
	}
	url, err := providers.Endpoint(up.BaseURL, c.base, "/v1", "/chat/completions")
	if err != nil {
		return nil, err
	}
	body, err := encodeRequest(c.name, req, stream, c.maxComp)
	if err != nil {
		return nil, err
	}
	return &providers.Call{
		Provider:    c.name,
		URL:         url,
		Headers:     []providers.Header{{Name: "Authorization", Value: "Bearer " + up.APIKey}},
		Body:        body,
		Secret:      up.APIKey,
		DecodeError: c.decodeErr,
	}, nil
}

// EncodeRequest returns the upstream body for req as OpenAI takes it.
func EncodeRequest(req *providers.ChatRequest, stream bool) ([]byte, error) {
	return encodeRequest(Name, req, stream, true)
}

func encodeRequest(name string, req *providers.ChatRequest, stream, maxComp bool) ([]byte, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	model := strings.TrimPrefix(req.Model, name+"/")
	if !stream {
		if b, ok := req.RelayBody(model, maxComp); ok {
			return b, nil
		}
	}
	r := *req
	r.Model = model
	r.Stream = stream
	r.StreamOptions = nil
	if stream {
		r.StreamOptions = &providers.StreamOptions{IncludeUsage: true}
	}
	if maxComp && r.MaxTokens != nil && r.MaxCompletionTokens == nil {
		r.MaxCompletionTokens, r.MaxTokens = r.MaxTokens, nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, providers.InvalidParam("", "cannot encode request: %v", err)
	}
	return b, nil
}

// DecodeResponse parses a non-streamed OpenAI response body.
func DecodeResponse(body []byte) (*providers.ChatResponse, error) {
	return decodeResponse(Name, body)
}

func decodeResponse(name string, body []byte) (*providers.ChatResponse, error) {
	var r providers.ChatResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, providers.NewError(providers.ErrMalformed, name, "response is not a chat completion: "+err.Error())
	}
	if r.Choices == nil {
		return nil, providers.NewError(providers.ErrMalformed, name, "response has no choices")
	}
	raw := r.Object != "" // checked below; nothing to fill in
	if r.Object == "" {
		r.Object = providers.ObjectChatCompletion
	}
	if r.Usage != nil {
		u, err := providers.NewUsage(r.Usage.PromptTokens, r.Usage.CompletionTokens)
		if err != nil {
			return nil, providerErr(err, name)
		}
		raw = raw && u.TotalTokens == r.Usage.TotalTokens
		r.Usage = &u
	}
	if raw {
		r.Raw = body
	}
	return &r, nil
}

// errorBody is OpenAI's {"error":{...}}; code and param may be strings,
// numbers or null.
type errorBody struct {
	Error *struct {
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Param   json.RawMessage `json:"param"`
		Code    json.RawMessage `json:"code"`
	} `json:"error"`
}

// DecodeError maps an OpenAI error answer to a *providers.Error.
func DecodeError(status int, body []byte) *providers.Error {
	return decodeError(Name, status, body)
}

func decodeError(name string, status int, body []byte) *providers.Error {
	var eb errorBody
	if json.Unmarshal(body, &eb) != nil || eb.Error == nil {
		return nil
	}
	e := providers.StatusError(name, status, "", scalar(eb.Error.Code), eb.Error.Message)
	e.Param = scalar(eb.Error.Param)
	if t := eb.Error.Type; t != "" && status < 500 {
		e.Type = t
	}
	return e
}

// scalar renders a JSON string or number as text; anything else as "".
func scalar(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

func providerErr(err error, name string) error {
	if e, ok := err.(*providers.Error); ok {
		e.Provider = name
	}
	return err
}

// decoder reads OpenAI's stream: "data: {chunk}" events ending with
// "data: [DONE]". The usage-only chunk is kept for Usage, not relayed: the
// Stream writes its own when the client asked for it.
type decoder struct {
	name     string
	usage    providers.Usage
	hasUsage bool
	relay    bool // chunks are sent on as received: scan them, decode only the unusual ones
	relayer  providers.ChunkRelay
	one      [1]*providers.ChatChunk
}

// NewDecoder returns the stream decoder for OpenAI's format.
func NewDecoder() providers.EventDecoder { return newDecoder(Name) }

func newDecoder(name string) *decoder { return &decoder{name: name} }

var doneMarker = []byte("[DONE]")

type streamChunk struct {
	providers.ChatChunk
	Error *json.RawMessage `json:"error"`
}

func (d *decoder) Decode(ev *providers.Event) ([]*providers.ChatChunk, bool, error) {
	data := bytes.TrimSpace(ev.Data)
	if bytes.Equal(data, doneMarker) {
		return nil, true, nil
	}
	if len(data) == 0 {
		return nil, false, nil
	}
	if d.relay {
		if c, ok := d.relayer.Chunk(data); ok {
			d.one[0] = c
			return d.one[:], false, nil
		}
	}
	var c streamChunk
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, false, providers.NewError(providers.ErrMalformed, d.name, "stream chunk is not JSON: "+err.Error())
	}
	if c.Error != nil {
		e := decodeError(d.name, 500, []byte(`{"error":`+string(*c.Error)+`}`))
		if e == nil {
			e = providers.StatusError(d.name, 500, "", "", "upstream error in stream")
		}
		e.Retryable = false
		return nil, false, e
	}
	chunk := c.ChatChunk
	// Relayed as received unless the chunk is changed below. The SSE
	// reader hands over each event's data: it stays valid.
	relay := chunk.Usage == nil && chunk.Choices != nil && chunk.Object != ""
	if chunk.Usage != nil {
		u, err := providers.NewUsage(chunk.Usage.PromptTokens, chunk.Usage.CompletionTokens)
		if err != nil {
			return nil, false, providerErr(err, d.name)
		}
		d.usage, d.hasUsage = u, true
		chunk.Usage = nil
		if len(chunk.Choices) == 0 {
			return nil, false, nil
		}
	}
	if chunk.Choices == nil {
		chunk.Choices = []providers.ChunkChoice{}
	}
	if chunk.Object == "" {
		chunk.Object = providers.ObjectChatCompletionChunk
	}
	if relay {
		chunk.Raw = data
	}
	return []*providers.ChatChunk{&chunk}, false, nil
}

func (d *decoder) Finish() ([]*providers.ChatChunk, error) {
	return nil, providers.NewError(providers.ErrTruncated, d.name, fmt.Sprintf("%s stream ended without [DONE]", d.name))
}

func (d *decoder) Usage() (providers.Usage, bool) { return d.usage, d.hasUsage }

var _ providers.EventDecoder = (*decoder)(nil)
