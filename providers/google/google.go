// Package google translates Chat Completions to and from Google's Gemini
// API (POST {base}/v1beta/models/{model}:generateContent, and
// :streamGenerateContent?alt=sse for streams; key in x-goog-api-key) and
// calls it.
//
// Request translation:
//   - system and developer messages → systemInstruction (joined with blank
//     lines); user → role "user"; assistant → role "model" with text and
//     functionCall parts; tool → role "user" with a functionResponse part
//     whose name is recovered from the earlier assistant tool call with the
//     same tool_call_id (or the message's name) and whose response is the
//     result object, or {"result": value} for a non-object result;
//   - runs of same-role contents are merged, empty ones dropped;
//   - images: base64 data URLs → inlineData, http(s) URLs → fileData;
//   - tools → tools[{functionDeclarations}] with parametersJsonSchema;
//     tool_choice auto, none, required, {function} → functionCallingConfig
//     mode AUTO, NONE, ANY, ANY with allowedFunctionNames;
//   - generationConfig: maxOutputTokens, temperature, topP, stopSequences,
//     candidateCount (n), presence/frequency penalties, seed;
//     response_format json_object → responseMimeType application/json,
//     json_schema → also responseJsonSchema.
//
// Responses: text parts join into content (thought parts are dropped),
// functionCall parts become tool_calls with synthesized ids (see callID);
// finishReason STOP → stop (tool_calls when the candidate called a
// function), MAX_TOKENS → length, SAFETY, RECITATION and the other filter
// reasons → content_filter; prompt tokens are promptTokenCount (+ tool-use
// prompt), completion tokens candidatesTokenCount + thoughtsTokenCount. A
// blocked prompt gives one empty choice with content_filter.
//
// The model goes into the URL path, so it must be a plain model name
// ([A-Za-z0-9._-]); anything else is refused before a request is made.
//
// It imports only package providers. A [Client] is safe for concurrent use.
package google

import (
	"context"
	"time"

	"github.com/assistiv/gateway/providers"
)

// Name is the provider name used in errors and in "google/<model>".
const Name = "google"

// DefaultBaseURL is the Gemini API's public endpoint.
const DefaultBaseURL = "https://generativelanguage.googleapis.com"

// Client calls the Gemini API.
type Client struct {
	t *providers.Transport
}

// New returns a client.
func New(t *providers.Transport) *Client { return &Client{t: t} }

// Name returns the provider name.
func (c *Client) Name() string { return Name }

// Complete sends req to generateContent and returns the translated
// response. It blocks until the upstream answered; cancelling ctx abandons
// the call. Errors: ctx.Err() or a *providers.Error.
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

// Stream sends req to streamGenerateContent and returns the translated
// stream once the upstream accepted it. Retries happen only before Stream
// returns. Cancelling ctx ends the stream: a pending Next returns ctx.Err().
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
	model, err := modelID(req.Model)
	if err != nil {
		return nil, err
	}
	method := ":generateContent"
	if stream {
		method = ":streamGenerateContent?alt=sse"
	}
	url, err := providers.Endpoint(up.BaseURL, DefaultBaseURL, "/v1beta", "/models/"+model+method)
	if err != nil {
		return nil, err
	}
	body, err := encodeRequest(req)
	if err != nil {
		return nil, err
	}
	return &providers.Call{
		Provider:    Name,
		URL:         url,
		Headers:     []providers.Header{{Name: "x-goog-api-key", Value: up.APIKey}},
		Body:        body,
		Secret:      up.APIKey,
		DecodeError: decodeError,
	}, nil
}

// EncodeRequest returns the generateContent body for req.
func EncodeRequest(req *providers.ChatRequest) ([]byte, error) { return encodeRequest(req) }

// DecodeResponse translates a generateContent response to req.
func DecodeResponse(req *providers.ChatRequest, body []byte, now time.Time) (*providers.ChatResponse, error) {
	return decodeResponse(req, body, now)
}

// NewDecoder returns the stream decoder for a response to req.
func NewDecoder(req *providers.ChatRequest, now time.Time) providers.EventDecoder {
	return newDecoder(req, now)
}

// DecodeError maps an error answer's body; status 0 takes the body's code,
// as for errors inside a stream.
func DecodeError(status int, body []byte) *providers.Error { return decodeError(status, body) }
