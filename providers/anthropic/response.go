package anthropic

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/assistiv/gateway/providers"
)

type response struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Role       string          `json:"role"`
	Model      string          `json:"model"`
	Content    []responseBlock `json:"content"`
	StopReason string          `json:"stop_reason"`
	Usage      *usage          `json:"usage"`
}

type responseBlock struct {
	Type  string          `json:"type"`
	Text  string          `json:"text"`
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

// usage is Anthropic's usage object. Pointers: message_delta may carry only
// some of the counts.
type usage struct {
	InputTokens              *int64 `json:"input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
}

// counts tracks the latest value of each count; Anthropic's counts are
// cumulative, so a later report replaces an earlier one.
type counts struct {
	input, output, cacheWrite, cacheRead int64
	seen                                 bool
}

func (c *counts) update(u *usage) {
	if u == nil {
		return
	}
	set := func(dst *int64, src *int64) {
		if src != nil {
			*dst = *src
			c.seen = true
		}
	}
	set(&c.input, u.InputTokens)
	set(&c.output, u.OutputTokens)
	set(&c.cacheWrite, u.CacheCreationInputTokens)
	set(&c.cacheRead, u.CacheReadInputTokens)
}

// usage returns the counts as billed: cache writes and reads count as
// prompt tokens.
func (c *counts) usage() (providers.Usage, error) {
	for _, v := range []int64{c.input, c.cacheWrite, c.cacheRead} {
		if v < 0 || v > providers.MaxUsageTokens {
			return providers.NewUsage(-1, 0)
		}
	}
	return providers.NewUsage(c.input+c.cacheWrite+c.cacheRead, c.output)
}

// finishReason maps stop_reason. jsonForced: the forced json tool ended the
// turn, which is a normal stop for the client.
func finishReason(stop string, jsonForced bool) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return providers.FinishLength
	case "tool_use":
		if jsonForced {
			return providers.FinishStop
		}
		return providers.FinishToolCalls
	case "refusal":
		return providers.FinishContentFilter
	}
	return providers.FinishStop // end_turn, stop_sequence, pause_turn
}

// decodeResponse translates a Messages API response.
func decodeResponse(req *providers.ChatRequest, body []byte, now time.Time) (*providers.ChatResponse, error) {
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, providers.NewError(providers.ErrMalformed, Name, "response is not a message: "+err.Error())
	}
	if r.Type != "message" {
		return nil, providers.NewError(providers.ErrMalformed, Name, "response type is "+r.Type+", not message")
	}
	jt := jsonTool(req)
	var text strings.Builder
	var calls []providers.ToolCall
	jsonForced := false
	for _, b := range r.Content {
		switch b.Type {
		case "text":
			text.WriteString(b.Text)
		case "tool_use":
			args := string(b.Input)
			if len(b.Input) == 0 || args == "null" {
				args = "{}"
			}
			if jt != "" && b.Name == jt {
				text.WriteString(args)
				jsonForced = true
				continue
			}
			calls = append(calls, providers.ToolCall{
				ID: b.ID, Type: "function",
				Function: providers.FunctionCall{Name: b.Name, Arguments: args},
			})
		}
		// thinking, redacted_thinking and server tool blocks have no
		// Chat Completions equivalent and are dropped.
	}
	var c counts
	c.update(r.Usage)
	u, err := c.usage()
	if err != nil {
		return nil, providerErr(err)
	}
	msg := providers.Message{Role: providers.RoleAssistant, Content: providers.TextContent(text.String()), ToolCalls: calls}
	return &providers.ChatResponse{
		ID:      r.ID,
		Object:  providers.ObjectChatCompletion,
		Created: now.Unix(),
		Model:   r.Model,
		Choices: []providers.Choice{{
			Index:        0,
			Message:      msg,
			FinishReason: providers.FinishReason(finishReason(r.StopReason, jsonForced)),
		}},
		Usage: &u,
	}, nil
}

type errorBody struct {
	Type  string `json:"type"`
	Error *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// statusForType gives the HTTP status of an error type, for errors that
// arrive inside a stream.
var statusForType = map[string]int{
	"invalid_request_error": http.StatusBadRequest,
	"authentication_error":  http.StatusUnauthorized,
	"billing_error":         http.StatusPaymentRequired,
	"permission_error":      http.StatusForbidden,
	"not_found_error":       http.StatusNotFound,
	"request_too_large":     http.StatusRequestEntityTooLarge,
	"rate_limit_error":      http.StatusTooManyRequests,
	"api_error":             http.StatusInternalServerError,
	"timeout_error":         http.StatusGatewayTimeout,
	"overloaded_error":      529,
}

// decodeError maps {"type":"error","error":{"type","message"}}.
func decodeError(status int, body []byte) *providers.Error {
	var eb errorBody
	if json.Unmarshal(body, &eb) != nil || eb.Error == nil {
		return nil
	}
	if status == 0 {
		status = statusForType[eb.Error.Type]
		if status == 0 {
			status = http.StatusInternalServerError
		}
	}
	if status == http.StatusPaymentRequired {
		// The platform's Anthropic account is out of credit: an upstream
		// fault, not the client's 402.
		status = http.StatusBadGateway
	}
	return providers.StatusError(Name, status, "", eb.Error.Type, eb.Error.Message)
}

func providerErr(err error) error {
	if e, ok := err.(*providers.Error); ok {
		e.Provider = Name
	}
	return err
}
