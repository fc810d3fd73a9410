package providers

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Bounds Validate enforces. They are structural sanity limits, not any one
// provider's limits; upstreams still refuse what they cannot do.
const (
	MaxMessages     = 10_000
	MaxTools        = 512
	MaxStop         = 16
	MaxN            = 128
	maxFunctionName = 64
)

// Validate checks the request's shape and returns a 400 [*Error] (matching
// [ErrInvalidRequest]) naming the first field at fault, or nil.
func (r *ChatRequest) Validate() error {
	if strings.TrimSpace(r.Model) == "" {
		return InvalidParam("model", "model is required")
	}
	if len(r.Messages) == 0 {
		return InvalidParam("messages", "messages must be a non-empty array")
	}
	if len(r.Messages) > MaxMessages {
		return InvalidParam("messages", "too many messages: %d (at most %d)", len(r.Messages), MaxMessages)
	}
	for i := range r.Messages {
		if err := validateMessage(&r.Messages[i], i); err != nil {
			return err
		}
	}
	if len(r.Tools) > MaxTools {
		return InvalidParam("tools", "too many tools: %d (at most %d)", len(r.Tools), MaxTools)
	}
	names := make(map[string]bool, len(r.Tools))
	for i, t := range r.Tools {
		p := func() string { return indexed("tools", i) } // built only for an error
		if t.Type != "function" {
			return InvalidParam(p()+".type", "tool type must be \"function\", got %q", t.Type)
		}
		if err := validateFunctionName(t.Function.Name, func() string { return p() + ".function.name" }); err != nil {
			return err
		}
		if names[t.Function.Name] {
			return InvalidParam(p()+".function.name", "duplicate tool name %q", t.Function.Name)
		}
		names[t.Function.Name] = true
		if len(t.Function.Parameters) > 0 && !isJSONObjectOrNull(t.Function.Parameters) {
			return InvalidParam(p()+".function.parameters", "parameters must be a JSON Schema object")
		}
	}
	if tc := r.ToolChoice; tc != nil {
		switch tc.Mode {
		case ToolChoiceAuto, ToolChoiceNone:
		case ToolChoiceRequired:
			if len(r.Tools) == 0 {
				return InvalidParam("tool_choice", "tool_choice \"required\" needs tools")
			}
		case ToolChoiceFunction:
			if !names[tc.Function] {
				return InvalidParam("tool_choice", "tool_choice names function %q, which is not in tools", tc.Function)
			}
		default:
			return InvalidParam("tool_choice", "tool_choice must be \"auto\", \"none\", \"required\" or a function, got %q", tc.Mode)
		}
	}
	if rf := r.ResponseFormat; rf != nil {
		switch rf.Type {
		case FormatText, FormatJSONObject:
		case FormatJSONSchema:
			if rf.JSONSchema == nil {
				return InvalidParam("response_format.json_schema", "json_schema is required when type is \"json_schema\"")
			}
			if err := validateFunctionName(rf.JSONSchema.Name, func() string { return "response_format.json_schema.name" }); err != nil {
				return err
			}
			if len(rf.JSONSchema.Schema) > 0 && !isJSONObjectOrNull(rf.JSONSchema.Schema) {
				return InvalidParam("response_format.json_schema.schema", "schema must be a JSON object")
			}
		default:
			return InvalidParam("response_format.type", "response_format.type must be \"text\", \"json_object\" or \"json_schema\", got %q", rf.Type)
		}
	}
	if r.StreamOptions != nil && !r.Stream {
		return InvalidParam("stream_options", "stream_options is only allowed when stream is true")
	}
	if r.MaxTokens != nil && *r.MaxTokens < 1 {
		return InvalidParam("max_tokens", "max_tokens must be at least 1")
	}
	if r.MaxCompletionTokens != nil && *r.MaxCompletionTokens < 1 {
		return InvalidParam("max_completion_tokens", "max_completion_tokens must be at least 1")
	}
	if t := r.Temperature; t != nil && (*t < 0 || *t > 2) {
		return InvalidParam("temperature", "temperature must be between 0 and 2")
	}
	if p := r.TopP; p != nil && (*p < 0 || *p > 1) {
		return InvalidParam("top_p", "top_p must be between 0 and 1")
	}
	if p := r.PresencePenalty; p != nil && (*p < -2 || *p > 2) {
		return InvalidParam("presence_penalty", "presence_penalty must be between -2 and 2")
	}
	if p := r.FrequencyPenalty; p != nil && (*p < -2 || *p > 2) {
		return InvalidParam("frequency_penalty", "frequency_penalty must be between -2 and 2")
	}
	if len(r.Stop) > MaxStop {
		return InvalidParam("stop", "too many stop sequences: %d (at most %d)", len(r.Stop), MaxStop)
	}
	for i, s := range r.Stop {
		if s == "" {
			return InvalidParam(fmt.Sprintf("stop[%d]", i), "stop sequences must not be empty")
		}
	}
	if r.N != nil && (*r.N < 1 || *r.N > MaxN) {
		return InvalidParam("n", "n must be between 1 and %d", MaxN)
	}
	return r.checkExtra()
}

// forwardedExtra are the unmodelled request fields the gateway forwards to
// OpenAI-format upstreams (and drops in translation where the provider has
// no equivalent): none changes the price of the tokens the usage reports.
// Everything else is refused with a 400 naming it, so a client can never
// buy at the provider what the gateway does not price (README: "Request
// fields").
var forwardedExtra = map[string]bool{
	"logprobs": true, "top_logprobs": true, "logit_bias": true, "reasoning_effort": true,
	"metadata": true, "prediction": true, "verbosity": true,
	"service_tier": true, "store": true, // only their at-catalog-price values, below
}

func (r *ChatRequest) checkExtra() error {
	names := make([]string, 0, len(r.Extra))
	for k := range r.Extra {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := r.Extra[k]
		if !forwardedExtra[k] {
			return InvalidParam(k, "%s is not supported by the gateway", k)
		}
		switch k {
		case "service_tier":
			// priority (billed above the catalog price) and flex/scale are
			// not priced by the gateway; auto and default are the catalog.
			var tier string
			if json.Unmarshal(v, &tier) != nil || (tier != "auto" && tier != "default") {
				return InvalidParam(k, `service_tier %s is not supported: the gateway prices "auto" and "default" only`, string(v))
			}
		case "store":
			// The provider would keep the platform's prompts and answers.
			var store bool
			if json.Unmarshal(v, &store) != nil || store {
				return InvalidParam(k, "store must be false: the gateway does not let providers keep the platform's data (use the Responses API's store instead)")
			}
		}
	}
	return nil
}

func validateMessage(m *Message, i int) error {
	p := func() string { return indexed("messages", i) } // built only for an error
	switch m.Role {
	case RoleSystem, RoleDeveloper, RoleUser:
		if len(m.ToolCalls) > 0 {
			return InvalidParam(p()+".tool_calls", "only assistant messages may have tool_calls")
		}
	case RoleAssistant:
		if m.Content.IsZero() && len(m.ToolCalls) == 0 && m.Refusal == "" {
			return InvalidParam(p()+".content", "assistant message needs content or tool_calls")
		}
		for j, tc := range m.ToolCalls {
			q := func() string { return indexed(p()+".tool_calls", j) }
			if tc.ID == "" {
				return InvalidParam(q()+".id", "tool call id is required")
			}
			if tc.Type != "" && tc.Type != "function" {
				return InvalidParam(q()+".type", "tool call type must be \"function\"")
			}
			if err := validateFunctionName(tc.Function.Name, func() string { return q() + ".function.name" }); err != nil {
				return err
			}
		}
	case RoleTool:
		if m.ToolCallID == "" {
			return InvalidParam(p()+".tool_call_id", "tool message needs tool_call_id")
		}
	case "":
		return InvalidParam(p()+".role", "role is required")
	default:
		return InvalidParam(p()+".role", "role must be system, developer, user, assistant or tool, got %q", m.Role)
	}
	for j, part := range m.Content.Parts {
		q := func() string { return indexed(p()+".content", j) }
		switch part.Type {
		case PartText:
		case PartImageURL:
			if m.Role != RoleUser {
				return InvalidParam(q(), "image parts are only allowed in user messages")
			}
			if part.ImageURL == nil || part.ImageURL.URL == "" {
				return InvalidParam(q()+".image_url.url", "image_url.url is required")
			}
		case "":
			return InvalidParam(q()+".type", "content part type is required")
		}
	}
	return nil
}

// validateFunctionName enforces the name rule all four upstreams accept:
// 1 to 64 characters of [a-zA-Z0-9_-]. param names the field, for an
// error only.
func validateFunctionName(name string, param func() string) error {
	if name == "" {
		return InvalidParam(param(), "name is required")
	}
	if len(name) > maxFunctionName {
		return InvalidParam(param(), "name %q is longer than %d characters", name, maxFunctionName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return InvalidParam(param(), "name %q may only contain letters, digits, '_' and '-'", name)
		}
	}
	return nil
}

// indexed returns name[i], a parameter path for an error.
func indexed(name string, i int) string { return name + "[" + strconv.Itoa(i) + "]" }

func isJSONObjectOrNull(b json.RawMessage) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		case 'n':
			return string(strings.TrimSpace(string(b))) == "null"
		}
		return false
	}
	return false
}
