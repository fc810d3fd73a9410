package providers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Message roles of the Chat Completions format.
const (
	RoleSystem    = "system"
	RoleDeveloper = "developer"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
)

// Content part types this package models. Other types are kept verbatim in
// [Part.Raw].
const (
	PartText     = "text"
	PartImageURL = "image_url"
)

// Tool choice modes ([ToolChoice.Mode]).
const (
	ToolChoiceAuto     = "auto"
	ToolChoiceNone     = "none"
	ToolChoiceRequired = "required"
	ToolChoiceFunction = "function"
)

// Response format types ([ResponseFormat.Type]).
const (
	FormatText       = "text"
	FormatJSONObject = "json_object"
	FormatJSONSchema = "json_schema"
)

// ChatRequest is an OpenAI-compatible POST /v1/chat/completions body.
//
// Optional scalars are pointers so that "absent" and "zero" stay distinct.
// Top-level fields the type does not model are kept in Extra and written back
// by MarshalJSON, so an OpenAI-compatible upstream receives them; the other
// upstreams ignore them. Fields that would choose where or how a call is
// made (api_base, base_url, api_key, headers, ...) are never kept: the
// provider key only goes to the configured base URL.
type ChatRequest struct {
	Model               string          `json:"model"`
	Messages            []Message       `json:"messages"`
	Tools               []Tool          `json:"tools,omitempty"`
	ToolChoice          *ToolChoice     `json:"tool_choice,omitempty"`
	ParallelToolCalls   *bool           `json:"parallel_tool_calls,omitempty"`
	ResponseFormat      *ResponseFormat `json:"response_format,omitempty"`
	Stream              bool            `json:"stream,omitempty"`
	StreamOptions       *StreamOptions  `json:"stream_options,omitempty"`
	MaxTokens           *int            `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int            `json:"max_completion_tokens,omitempty"`
	Temperature         *float64        `json:"temperature,omitempty"`
	TopP                *float64        `json:"top_p,omitempty"`
	Stop                Stop            `json:"stop,omitempty"`
	N                   *int            `json:"n,omitempty"`
	PresencePenalty     *float64        `json:"presence_penalty,omitempty"`
	FrequencyPenalty    *float64        `json:"frequency_penalty,omitempty"`
	Seed                *int64          `json:"seed,omitempty"`
	User                string          `json:"user,omitempty"`

	// Extra holds unmodelled top-level fields verbatim, keyed by name.
	Extra map[string]json.RawMessage `json:"-"`

	// Body, when set, is the request as the client sent it. An
	// OpenAI-format adapter sends these bytes on when they still say what
	// the fields say ([ChatRequest.RelayBody]) instead of encoding the
	// fields. Whoever changes a field after parsing need not clear it.
	Body []byte `json:"-"`
	// RelayAnswer says the caller sends an OpenAI-format answer on as
	// received ([ChatResponse.Raw]): the adapter then reads the answer's
	// usage without decoding the rest ([RelayedAnswer]), and Choices is
	// nil whenever Raw is set.
	RelayAnswer bool `json:"-"`
}

// knownRequestFields are the JSON names of ChatRequest's modelled fields.
// TestKnownRequestFields keeps it in step with the struct tags.
var knownRequestFields = map[string]bool{
	"model": true, "messages": true, "tools": true, "tool_choice": true,
	"parallel_tool_calls": true, "response_format": true, "stream": true,
	"stream_options": true, "max_tokens": true, "max_completion_tokens": true,
	"temperature": true, "top_p": true, "stop": true, "n": true,
	"presence_penalty": true, "frequency_penalty": true, "seed": true, "user": true,
}

// droppedRequestFields are fields a client might send to steer the gateway's
// own upstream call (LiteLLM CVE-2024-6587). They are discarded on parse.
var droppedRequestFields = map[string]bool{
	"api_base": true, "base_url": true, "api_key": true, "api_version": true,
	"api_type": true, "organization": true, "headers": true, "extra_headers": true,
	"extra_body": true, "extra_query": true, "custom_llm_provider": true,
	"timeout": true, "request_timeout": true,
}

type chatRequestAlias ChatRequest

// UnmarshalJSON parses a request, keeping unknown fields in Extra. A key
// given twice keeps its last value, as encoding/json does. It reads b in
// one pass ([ChatRequest.Parse]) when it can, else as
// [slowChatRequest.UnmarshalJSON] does. Callers holding the body should
// call Parse: json.Unmarshal validates all of b before it gets here.
func (r *ChatRequest) UnmarshalJSON(b []byte) error {
	var fast ChatRequest
	if p := (reqParser{b: b}); p.request(&fast) {
		*r = fast
		return nil
	}
	return (*slowChatRequest)(r).UnmarshalJSON(b)
}

// slowChatRequest is ChatRequest read by encoding/json: the reference
// [ChatRequest.Parse] falls back to, and compares itself with in tests.
type slowChatRequest ChatRequest

// UnmarshalJSON decodes the modelled fields with encoding/json, then
// finds the unknown ones by a scan of the top-level members (no second
// decode of the body).
func (r *slowChatRequest) UnmarshalJSON(b []byte) error {
	var a chatRequestAlias
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	a.Extra = nil
	err := scanObject(b, func(k string, v []byte) bool {
		if knownRequestFields[k] || droppedRequestFields[k] {
			return true
		}
		if a.Extra == nil {
			a.Extra = make(map[string]json.RawMessage)
		}
		a.Extra[k] = append(json.RawMessage(nil), v...)
		return true
	})
	if err != nil {
		return err
	}
	*r = slowChatRequest(a)
	return nil
}

// MarshalJSON writes the modelled fields, then Extra in key order. Extra
// never overrides a modelled field.
func (r ChatRequest) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(chatRequestAlias(r))
	if err != nil || len(r.Extra) == 0 {
		return b, err
	}
	keys := make([]string, 0, len(r.Extra))
	for k := range r.Extra {
		if !knownRequestFields[k] && !droppedRequestFields[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	buf.Write(b[:len(b)-1]) // drop '}'
	for _, k := range keys {
		v := r.Extra[k]
		if !json.Valid(v) {
			return nil, fmt.Errorf("extra field %q: invalid JSON", k)
		}
		kb, _ := json.Marshal(k)
		buf.WriteByte(',')
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// MaxOutputTokens returns max_completion_tokens, else max_tokens, else 0.
func (r *ChatRequest) MaxOutputTokens() int {
	if r.MaxCompletionTokens != nil {
		return *r.MaxCompletionTokens
	}
	if r.MaxTokens != nil {
		return *r.MaxTokens
	}
	return 0
}

// IncludeUsage reports whether the client asked for a final usage chunk.
func (r *ChatRequest) IncludeUsage() bool {
	return r.StreamOptions != nil && r.StreamOptions.IncludeUsage
}

// StreamOptions is the request's stream_options object.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage,omitempty"`
}

// Stop is the request's stop field: one string or an array of strings on the
// wire, always an array when written.
type Stop []string

// UnmarshalJSON accepts a string, an array of strings or null.
func (s *Stop) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*s = nil
		return nil
	case len(b) > 0 && b[0] == '"':
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = Stop{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("stop: want a string or an array of strings")
	}
	*s = many
	return nil
}

// Message is one entry of messages, or the message of a response choice.
type Message struct {
	Role       string     `json:"role"`
	Content    Content    `json:"content"`
	Name       string     `json:"name,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	Refusal    string     `json:"refusal,omitempty"`
}

type messageAlias Message

// MarshalJSON writes empty content as null for assistant messages (as
// OpenAI does when a reply is only tool calls) and as "" otherwise.
func (m Message) MarshalJSON() ([]byte, error) {
	if m.Content.IsZero() && m.Role != RoleAssistant {
		m.Content.empty = true
	}
	return json.Marshal(messageAlias(m))
}

// Content is a message's content: a plain string (Text) or an array of parts
// (Parts, non-nil). An empty string and null read as the zero Content.
type Content struct {
	Text  string
	Parts []Part

	empty bool // write "" rather than null; set by Message.MarshalJSON
}

// TextContent returns string content.
func TextContent(s string) Content { return Content{Text: s} }

// PartsContent returns array content.
func PartsContent(parts ...Part) Content {
	if parts == nil {
		parts = []Part{}
	}
	return Content{Parts: parts}
}

// IsZero reports whether c is null or the empty string.
func (c Content) IsZero() bool { return c.Text == "" && c.Parts == nil }

// IsParts reports whether c was given as an array of parts.
func (c Content) IsParts() bool { return c.Parts != nil }

// String returns the text of c: Text, or the text parts joined without a
// separator. Non-text parts are skipped.
func (c Content) String() string {
	if c.Parts == nil {
		return c.Text
	}
	var n int
	for _, p := range c.Parts {
		n += len(p.Text)
	}
	b := make([]byte, 0, n)
	for _, p := range c.Parts {
		if p.Type == PartText {
			b = append(b, p.Text...)
		}
	}
	return string(b)
}

// MarshalJSON writes parts as an array, text as a string, zero as null.
func (c Content) MarshalJSON() ([]byte, error) {
	switch {
	case c.Parts != nil:
		return json.Marshal(c.Parts)
	case c.Text != "" || c.empty:
		return json.Marshal(c.Text)
	}
	return []byte("null"), nil
}

// UnmarshalJSON accepts a string, an array of parts or null.
func (c *Content) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*c = Content{}
	switch {
	case bytes.Equal(b, []byte("null")):
		return nil
	case len(b) > 0 && b[0] == '"':
		return json.Unmarshal(b, &c.Text)
	case len(b) > 0 && b[0] == '[':
		var parts []Part
		if err := json.Unmarshal(b, &parts); err != nil {
			return err
		}
		if parts == nil {
			parts = []Part{}
		}
		c.Parts = parts
		return nil
	}
	return fmt.Errorf("content: want a string, an array of parts or null")
}

// Part is one element of array content.
type Part struct {
	Type     string    `json:"type"`
	Text     string    `json:"text,omitempty"`
	ImageURL *ImageURL `json:"image_url,omitempty"`

	// Raw holds the whole part verbatim when Type is neither text nor
	// image_url (input_audio, file, ...). Only OpenAI-compatible upstreams
	// can take such parts; the others refuse them.
	Raw json.RawMessage `json:"-"`
}

type partAlias Part

// UnmarshalJSON parses a part, keeping unmodelled types verbatim in Raw.
func (p *Part) UnmarshalJSON(b []byte) error {
	var a partAlias
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	if a.Type != PartText && a.Type != PartImageURL {
		a = partAlias{Type: a.Type, Raw: append(json.RawMessage(nil), b...)}
	}
	*p = Part(a)
	return nil
}

// MarshalJSON writes Raw for unmodelled types, the fields otherwise.
func (p Part) MarshalJSON() ([]byte, error) {
	if p.Type != PartText && p.Type != PartImageURL && len(p.Raw) > 0 {
		return p.Raw, nil
	}
	if p.Type == PartText {
		return json.Marshal(struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}{p.Type, p.Text})
	}
	return json.Marshal(partAlias(p))
}

// ImageURL is an image_url part's payload: an http(s) URL or a
// data:<mime>;base64,<data> URL.
type ImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

// Tool is one entry of tools. Only function tools exist in this format.
type Tool struct {
	Type     string      `json:"type"`
	Function FunctionDef `json:"function"`
}

// FunctionDef describes a callable function. Parameters is a JSON Schema
// object, kept verbatim.
type FunctionDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// ToolCall is a function call made by the assistant, in a message.
type ToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function FunctionCall `json:"function"`
}

// FunctionCall names the function and carries its arguments as a JSON
// string (as the model wrote them; not guaranteed to be valid JSON).
type FunctionCall struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// ToolChoice is the request's tool_choice: a mode string ("auto", "none",
// "required") or {"type":"function","function":{"name":...}}, which reads as
// Mode "function" with Function set.
type ToolChoice struct {
	Mode     string
	Function string
}

type toolChoiceObject struct {
	Type     string `json:"type"`
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
}

// UnmarshalJSON accepts the string and object forms.
func (t *ToolChoice) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		*t = ToolChoice{}
		return json.Unmarshal(b, &t.Mode)
	}
	var o toolChoiceObject
	if err := json.Unmarshal(b, &o); err != nil {
		return fmt.Errorf("tool_choice: want a string or a function object")
	}
	if o.Type != "function" {
		return fmt.Errorf("tool_choice: unsupported type %q", o.Type)
	}
	*t = ToolChoice{Mode: ToolChoiceFunction, Function: o.Function.Name}
	return nil
}

// MarshalJSON writes the string form for modes, the object form for a
// specific function.
func (t ToolChoice) MarshalJSON() ([]byte, error) {
	if t.Mode != ToolChoiceFunction {
		return json.Marshal(t.Mode)
	}
	var o toolChoiceObject
	o.Type = "function"
	o.Function.Name = t.Function
	return json.Marshal(o)
}

// ResponseFormat is the request's response_format.
type ResponseFormat struct {
	Type       string      `json:"type"`
	JSONSchema *JSONSchema `json:"json_schema,omitempty"`
}

// JSONSchema is response_format.json_schema. Schema is kept verbatim.
type JSONSchema struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// ParseDataURL splits a base64 data URL, "data:<media type>[;params];base64,<data>",
// into its media type (lowercased, without parameters) and its base64 data.
// ok is false for anything else.
func ParseDataURL(u string) (mediaType, data string, ok bool) {
	rest, found := strings.CutPrefix(u, "data:")
	if !found {
		return "", "", false
	}
	meta, data, found := strings.Cut(rest, ",")
	if !found {
		return "", "", false
	}
	params := strings.Split(meta, ";")
	if len(params) < 2 || !strings.EqualFold(params[len(params)-1], "base64") {
		return "", "", false
	}
	mediaType = strings.ToLower(strings.TrimSpace(params[0]))
	if mediaType == "" || data == "" {
		return "", "", false
	}
	return mediaType, data, true
}
