package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/logs"
	"github.com/assistiv/gateway/persistence"
	"github.com/assistiv/gateway/providers"
)

// The Responses API (POST /v1/responses, GET and DELETE
// /v1/responses/{id}) runs on the chat path: a request is translated into a
// [providers.ChatRequest] (instructions → system message, input items →
// messages, flat function tools → chat tools, text.format →
// response_format), admitted, sent and settled exactly as a chat
// completion, and the chat answer (or its chunks) is translated back into a
// response object (or the Responses event sequence). Every provider
// therefore serves it.
//
// With store (the default), the response object and this turn's messages
// (this input, this output; instructions excluded, as they are not carried
// over) with the id it continued are written durably under
// [persistence.ResponseKey], scoped by platform and end-user, before the
// client learns the id. previous_response_id walks that chain back and puts
// its messages before the new input (responses_store.go: linear storage,
// retention).

// Id prefixes of the Responses API's objects.
const (
	responseIDPrefix = "resp_"
	messageIDPrefix  = "msg_"
	funcCallIDPrefix = "fc_"
	callIDPrefix     = "call_"
)

// Bounds of a Responses request beyond those of [providers.ChatRequest.Validate].
const (
	maxMetadataPairs = 16
	maxMetadataKey   = 64
	maxMetadataValue = 512
	// maxConversationBytes bounds one turn's request to the upstream, whole
	// history included, and so the record a stored response keeps.
	maxConversationBytes = 16 << 20
)

// Response statuses.
const (
	statusInProgress = "in_progress"
	statusCompleted  = "completed"
	statusIncomplete = "incomplete"
	statusFailed     = "failed"
	statusCancelled  = "cancelled"
)

// responsesRequest is a POST /v1/responses body: the fields the gateway
// acts on. checkResponsesFields audits the others.
type responsesRequest struct {
	Model              string            `json:"model"`
	Input              json.RawMessage   `json:"input"`
	Instructions       *string           `json:"instructions"`
	PreviousResponseID *string           `json:"previous_response_id"`
	Store              *bool             `json:"store"`
	Stream             bool              `json:"stream"`
	Tools              []responsesTool   `json:"tools"`
	ToolChoice         json.RawMessage   `json:"tool_choice"`
	Text               *responsesText    `json:"text"`
	MaxOutputTokens    *int              `json:"max_output_tokens"`
	Temperature        *float64          `json:"temperature"`
	TopP               *float64          `json:"top_p"`
	ParallelToolCalls  *bool             `json:"parallel_tool_calls"`
	Metadata           map[string]string `json:"metadata"`
	User               string            `json:"user"`
	SafetyIdentifier   string            `json:"safety_identifier"`
	Reasoning          json.RawMessage   `json:"reasoning"`
	Background         bool              `json:"background"`
}

// responsesTool is a Responses tool: flat, {"type":"function","name",...}.
type responsesTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// responsesText is the request's (and the response's) text config.
type responsesText struct {
	Format json.RawMessage `json:"format,omitempty"`
}

// textFormat is text.format.
type textFormat struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"schema"`
	Strict      *bool           `json:"strict"`
}

// inputItem is one element of an input array: a message (type "message",
// or none with a role), a function_call, a function_call_output, or an
// item_reference (type "item_reference", or none with an id and no role).
type inputItem struct {
	Type      string          `json:"type"`
	ID        string          `json:"id"`
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	CallID    string          `json:"call_id"`
	Name      string          `json:"name"`
	Arguments string          `json:"arguments"`
	Output    json.RawMessage `json:"output"`
}

// inputPart is one element of a message's content array.
type inputPart struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	ImageURL string `json:"image_url"`
	Detail   string `json:"detail"`
	FileID   string `json:"file_id"`
	Refusal  string `json:"refusal"`
}

func errInput(format string, args ...any) *apiError {
	return errBadRequest("invalid_input", format, args...)
}

// inputMessages translates input, a string or an array of items, into chat
// messages. Consecutive function_call items (and an assistant message just
// before them) become one assistant message with tool calls. An
// item_reference is replaced by the item resolve returns for it.
func inputMessages(raw json.RawMessage, resolve itemResolver) ([]providers.Message, error) {
	raw = bytes.TrimSpace(raw)
	if isNull(raw) {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, jsonError(err)
		}
		return []providers.Message{{Role: providers.RoleUser, Content: providers.TextContent(s)}}, nil
	}
	var items []inputItem
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, errInput("input must be a string or an array of items")
	}
	if len(items) > providers.MaxMessages {
		return nil, errInput("input has %d items (at most %d)", len(items), providers.MaxMessages)
	}
	out := make([]providers.Message, 0, len(items))
	joinable := false // the last message is an assistant turn a function_call may join
	for i, it := range items {
		if it.Type == "item_reference" || (it.Type == "" && it.Role == "" && it.ID != "") {
			var err error
			if it, err = resolveItem(it, i, resolve); err != nil {
				return nil, err
			}
		}
		switch it.Type {
		case "message", "":
			m, err := itemMessage(it, i)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
			joinable = m.Role == providers.RoleAssistant
		case "function_call":
			if it.CallID == "" || it.Name == "" {
				return nil, errInput("input[%d]: a function_call needs call_id and name", i)
			}
			tc := providers.ToolCall{ID: it.CallID, Type: "function", Function: providers.FunctionCall{Name: it.Name, Arguments: it.Arguments}}
			if !joinable {
				out = append(out, providers.Message{Role: providers.RoleAssistant})
			}
			last := &out[len(out)-1]
			last.ToolCalls = append(last.ToolCalls, tc)
			joinable = true
		case "function_call_output":
			if it.CallID == "" {
				return nil, errInput("input[%d]: a function_call_output needs call_id", i)
			}
			text, err := outputText(it.Output)
			if err != nil {
				return nil, errInput("input[%d].output: %s", i, err)
			}
			out = append(out, providers.Message{Role: providers.RoleTool, ToolCallID: it.CallID, Content: providers.TextContent(text)})
			joinable = false
		default:
			return nil, errInput("input[%d]: items of type %q are not supported", i, it.Type)
		}
	}
	return out, nil
}

// resolveItem returns the stored item the reference ref (input[i]) names.
func resolveItem(ref inputItem, i int, resolve itemResolver) (inputItem, error) {
	if ref.ID == "" {
		return ref, errInput("input[%d]: an item_reference needs id", i)
	}
	if resolve == nil {
		return ref, errItemNotFound(i, ref.ID)
	}
	raw, err := resolve(ref.ID)
	var ae *apiError
	if errors.As(err, &ae) && ae.Code == "item_not_found" {
		return ref, errItemNotFound(i, ref.ID)
	}
	if err != nil {
		return ref, err
	}
	var it inputItem
	if err := json.Unmarshal(raw, &it); err != nil {
		return ref, fmt.Errorf("stored item %s: %w", ref.ID, err)
	}
	if it.Type != "message" && it.Type != "function_call" {
		return ref, fmt.Errorf("stored item %s has type %q", ref.ID, it.Type)
	}
	return it, nil
}

// isNull reports whether a raw JSON value is absent or null.
func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || bytes.Equal(raw, []byte("null"))
}

// itemMessage translates a message item. User messages keep image parts;
// the other roles take text only.
func itemMessage(it inputItem, i int) (providers.Message, error) {
	m := providers.Message{Role: it.Role}
	switch it.Role {
	case providers.RoleUser, providers.RoleAssistant, providers.RoleSystem, providers.RoleDeveloper:
	case "":
		return m, errInput("input[%d]: a message needs a role", i)
	default:
		return m, errInput("input[%d]: role must be user, assistant, system or developer, got %q", i, it.Role)
	}
	c := bytes.TrimSpace(it.Content)
	if len(c) > 0 && c[0] == '"' {
		if err := json.Unmarshal(c, &m.Content.Text); err != nil {
			return m, jsonError(err)
		}
		return m, nil
	}
	var parts []inputPart
	if err := json.Unmarshal(c, &parts); err != nil || parts == nil {
		return m, errInput("input[%d].content must be a string or an array of parts", i)
	}
	var ps []providers.Part
	for j, p := range parts {
		switch p.Type {
		case "input_text", "output_text", "text":
			ps = append(ps, providers.Part{Type: providers.PartText, Text: p.Text})
		case "refusal":
			ps = append(ps, providers.Part{Type: providers.PartText, Text: p.Refusal})
		case "input_image":
			if it.Role != providers.RoleUser {
				return m, errInput("input[%d].content[%d]: images are only allowed in user messages", i, j)
			}
			if p.ImageURL == "" {
				return m, errInput("input[%d].content[%d]: input_image needs image_url (file_id is not supported)", i, j)
			}
			ps = append(ps, providers.Part{Type: providers.PartImageURL, ImageURL: &providers.ImageURL{URL: p.ImageURL, Detail: p.Detail}})
		default:
			return m, errInput("input[%d].content[%d]: parts of type %q are not supported", i, j, p.Type)
		}
	}
	textOnly := true
	for _, p := range ps {
		textOnly = textOnly && p.Type == providers.PartText
	}
	switch {
	case textOnly && (len(ps) == 1 || it.Role != providers.RoleUser):
		// A plain string suits every provider's system and assistant turns.
		m.Content = providers.TextContent(providers.PartsContent(ps...).String())
	default:
		m.Content = providers.PartsContent(ps...)
	}
	return m, nil
}

// outputText reads a function_call_output's output: a string, or an array
// of text parts.
func outputText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var parts []inputPart
	if err := json.Unmarshal(raw, &parts); err != nil || parts == nil {
		return "", errors.New("want a string or an array of input_text parts")
	}
	var b []byte
	for _, p := range parts {
		if p.Type != "input_text" && p.Type != "output_text" {
			return "", fmt.Errorf("parts of type %q are not supported", p.Type)
		}
		b = append(b, p.Text...)
	}
	return string(b), nil
}

// chatRequest translates r, after the conversation history, into a chat
// request; resolve finds the items r.Input references. input is the
// translation of r.Input alone.
func (r *responsesRequest) chatRequest(history []providers.Message, resolve itemResolver) (req *providers.ChatRequest, input []providers.Message, err error) {
	input, err = inputMessages(r.Input, resolve)
	if err != nil {
		return nil, nil, err
	}
	if len(input) == 0 {
		return nil, nil, errBadRequest("missing_field", "input is required")
	}
	req = &providers.ChatRequest{
		Model: r.Model, Stream: r.Stream, MaxTokens: r.MaxOutputTokens,
		Temperature: r.Temperature, TopP: r.TopP, ParallelToolCalls: r.ParallelToolCalls, User: r.User,
	}
	if req.User == "" {
		req.User = r.SafetyIdentifier
	}
	if err := reasoningEffort(req, r.Reasoning); err != nil {
		return nil, nil, err
	}
	if r.MaxOutputTokens != nil && *r.MaxOutputTokens < 1 {
		return nil, nil, errBadRequest("invalid_field", "max_output_tokens must be at least 1")
	}
	req.Messages = make([]providers.Message, 0, len(history)+len(input)+1)
	if r.Instructions != nil && *r.Instructions != "" {
		req.Messages = append(req.Messages, providers.Message{Role: providers.RoleSystem, Content: providers.TextContent(*r.Instructions)})
	}
	req.Messages = append(append(req.Messages, history...), input...)
	for i, t := range r.Tools {
		if t.Type != "function" {
			return nil, nil, errBadRequest("unsupported_tool", "tools[%d]: only function tools are supported, got %q", i, t.Type)
		}
		req.Tools = append(req.Tools, providers.Tool{Type: "function", Function: providers.FunctionDef{
			Name: t.Name, Description: t.Description, Parameters: t.Parameters, Strict: t.Strict,
		}})
	}
	if tc := r.ToolChoice; !isNull(tc) {
		var mode string
		var fn struct{ Type, Name string }
		switch {
		case json.Unmarshal(tc, &mode) == nil:
			req.ToolChoice = &providers.ToolChoice{Mode: mode}
		case json.Unmarshal(tc, &fn) == nil && fn.Type == "function":
			req.ToolChoice = &providers.ToolChoice{Mode: providers.ToolChoiceFunction, Function: fn.Name}
		default:
			return nil, nil, errBadRequest("invalid_field", "tool_choice must be \"auto\", \"none\", \"required\" or {\"type\":\"function\",\"name\"}")
		}
	}
	if r.Text != nil && !isNull(r.Text.Format) {
		var f textFormat
		if err := json.Unmarshal(r.Text.Format, &f); err != nil {
			return nil, nil, errBadRequest("invalid_field", "text.format must be an object")
		}
		switch f.Type {
		case providers.FormatText:
		case providers.FormatJSONObject:
			req.ResponseFormat = &providers.ResponseFormat{Type: providers.FormatJSONObject}
		case providers.FormatJSONSchema:
			req.ResponseFormat = &providers.ResponseFormat{Type: providers.FormatJSONSchema, JSONSchema: &providers.JSONSchema{
				Name: f.Name, Description: f.Description, Schema: f.Schema, Strict: f.Strict,
			}}
		default:
			return nil, nil, errBadRequest("invalid_field", "text.format.type must be text, json_object or json_schema, got %q", f.Type)
		}
	}
	return req, input, nil
}

// validate checks what the chat translation does not.
func (r *responsesRequest) validate() error {
	if r.Background {
		return errBadRequest("unsupported_parameter", "background responses are not supported")
	}
	if len(r.Metadata) > maxMetadataPairs {
		return errBadRequest("invalid_field", "metadata has more than %d pairs", maxMetadataPairs)
	}
	for k, v := range r.Metadata {
		if err := validText("metadata key", k, maxMetadataKey, true); err != nil {
			return err
		}
		if len(v) > maxMetadataValue {
			return errBadRequest("invalid_field", "metadata values are at most %d bytes", maxMetadataValue)
		}
	}
	return nil
}

// responseObject is a response as the API returns it.
type responseObject struct {
	ID                 string             `json:"id"`
	Object             string             `json:"object"`
	CreatedAt          int64              `json:"created_at"`
	Status             string             `json:"status"`
	Error              *responseError     `json:"error"`
	IncompleteDetails  *incompleteDetails `json:"incomplete_details"`
	Instructions       *string            `json:"instructions"`
	MaxOutputTokens    *int               `json:"max_output_tokens"`
	Model              string             `json:"model"`
	Output             []outputItem       `json:"output"`
	ParallelToolCalls  bool               `json:"parallel_tool_calls"`
	PreviousResponseID *string            `json:"previous_response_id"`
	Store              bool               `json:"store"`
	Temperature        *float64           `json:"temperature"`
	Text               responsesText      `json:"text"`
	ToolChoice         json.RawMessage    `json:"tool_choice"`
	Tools              []responsesTool    `json:"tools"`
	TopP               *float64           `json:"top_p"`
	Truncation         string             `json:"truncation"`
	Usage              *responseUsage     `json:"usage"`
	Metadata           map[string]string  `json:"metadata"`
}

type responseError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type incompleteDetails struct {
	Reason string `json:"reason"`
}

type responseUsage struct {
	InputTokens        int64 `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int64 `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int64 `json:"total_tokens"`
}

func usageOf(u providers.Usage) *responseUsage {
	return &responseUsage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens, TotalTokens: u.PromptTokens + u.CompletionTokens}
}

// outputItem is an element of output: a message or a function_call.
type outputItem struct {
	Type   string
	ID     string
	Status string
	// Content is a message's parts.
	Content []outputContent
	// CallID, Name and Arguments are a function_call's.
	CallID, Name, Arguments string
}

// MarshalJSON writes the item in its type's shape.
func (o outputItem) MarshalJSON() ([]byte, error) {
	if o.Type == "function_call" {
		return json.Marshal(struct {
			Type      string `json:"type"`
			ID        string `json:"id"`
			CallID    string `json:"call_id"`
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
			Status    string `json:"status"`
		}{o.Type, o.ID, o.CallID, o.Name, o.Arguments, o.Status})
	}
	content := o.Content
	if content == nil {
		content = []outputContent{}
	}
	return json.Marshal(struct {
		Type    string          `json:"type"`
		ID      string          `json:"id"`
		Role    string          `json:"role"`
		Status  string          `json:"status"`
		Content []outputContent `json:"content"`
	}{"message", o.ID, providers.RoleAssistant, o.Status, content})
}

// outputContent is a part of an output message: output_text or refusal.
type outputContent struct {
	Type string
	Text string
}

// MarshalJSON writes the part in its type's shape.
func (p outputContent) MarshalJSON() ([]byte, error) {
	if p.Type == "refusal" {
		return json.Marshal(struct {
			Type    string `json:"type"`
			Refusal string `json:"refusal"`
		}{p.Type, p.Text})
	}
	return json.Marshal(struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		Annotations []any  `json:"annotations"`
	}{"output_text", p.Text, []any{}})
}

// newResponseObject returns the in-progress response for r.
func newResponseObject(r *responsesRequest, id, model string, created time.Time, store bool) *responseObject {
	o := &responseObject{
		ID: id, Object: "response", CreatedAt: created.Unix(), Status: statusInProgress,
		Instructions: r.Instructions, MaxOutputTokens: r.MaxOutputTokens, Model: model,
		Output: []outputItem{}, ParallelToolCalls: r.ParallelToolCalls == nil || *r.ParallelToolCalls,
		Store: store, Temperature: r.Temperature, ToolChoice: r.ToolChoice, Tools: r.Tools, TopP: r.TopP,
		Truncation: "disabled", Metadata: r.Metadata,
	}
	if r.PreviousResponseID != nil && *r.PreviousResponseID != "" {
		o.PreviousResponseID = r.PreviousResponseID
	}
	if r.Text != nil && !isNull(r.Text.Format) {
		o.Text = *r.Text
	} else {
		o.Text.Format = json.RawMessage(`{"type":"text"}`)
	}
	if isNull(o.ToolChoice) {
		o.ToolChoice = json.RawMessage(`"auto"`)
	}
	if o.Tools == nil {
		o.Tools = []responsesTool{}
	}
	if o.Metadata == nil {
		o.Metadata = map[string]string{}
	}
	return o
}

// finishStatus sets the terminal status a finish reason implies.
func (o *responseObject) finishStatus(fr providers.FinishReason) {
	o.Status = statusCompleted
	switch fr {
	case providers.FinishLength:
		o.Status, o.IncompleteDetails = statusIncomplete, &incompleteDetails{Reason: "max_output_tokens"}
	case providers.FinishContentFilter:
		o.Status, o.IncompleteDetails = statusIncomplete, &incompleteDetails{Reason: "content_filter"}
	}
}

// fail marks o failed with e.
func (o *responseObject) fail(e *apiError) {
	code := "server_error"
	if e.Status == 429 {
		code = "rate_limit_exceeded"
	}
	o.Error = &responseError{Code: code, Message: e.Message}
	o.interrupt(statusFailed)
}

// cancel marks o cancelled: the client left before it ended.
func (o *responseObject) cancel() { o.interrupt(statusCancelled) }

// interrupt ends o with status before its output was complete.
func (o *responseObject) interrupt(status string) {
	o.Status = status
	for i := range o.Output {
		if o.Output[i].Status == statusInProgress {
			o.Output[i].Status = statusIncomplete
		}
	}
}

// assistantMessage is the chat message equivalent of o's output, for the
// stored conversation.
func (o *responseObject) assistantMessage() providers.Message {
	m := providers.Message{Role: providers.RoleAssistant}
	var text []byte
	for _, it := range o.Output {
		switch it.Type {
		case "message":
			for _, p := range it.Content {
				if p.Type == "refusal" {
					m.Refusal += p.Text
				} else {
					text = append(text, p.Text...)
				}
			}
		case "function_call":
			m.ToolCalls = append(m.ToolCalls, providers.ToolCall{ID: it.CallID, Type: "function",
				Function: providers.FunctionCall{Name: it.Name, Arguments: it.Arguments}})
		}
	}
	m.Content = providers.TextContent(string(text))
	return m
}

// outputOf translates a chat completion's first choice into output items.
func outputOf(resp *providers.ChatResponse, now time.Time) []outputItem {
	out := []outputItem{}
	if len(resp.Choices) == 0 {
		return out
	}
	msg := resp.Choices[0].Message
	text := msg.Content.String()
	if text != "" || msg.Refusal != "" || len(msg.ToolCalls) == 0 {
		it := outputItem{Type: "message", ID: ids.New(messageIDPrefix, now), Status: statusCompleted}
		if text != "" || msg.Refusal == "" {
			it.Content = append(it.Content, outputContent{Type: "output_text", Text: text})
		}
		if msg.Refusal != "" {
			it.Content = append(it.Content, outputContent{Type: "refusal", Text: msg.Refusal})
		}
		out = append(out, it)
	}
	for _, tc := range msg.ToolCalls {
		id := tc.ID
		if id == "" {
			id = ids.New(callIDPrefix, now)
		}
		out = append(out, outputItem{Type: "function_call", ID: ids.New(funcCallIDPrefix, now), Status: statusCompleted,
			CallID: id, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
	}
	return out
}

// storedResponse is the record of a stored response.
type storedResponse struct {
	// Response is the response object as last answered.
	Response json.RawMessage `json:"response"`
	// Previous is the id of the response this one continued ("": none).
	Previous string `json:"previous,omitempty"`
	// Turn is this turn's messages, without instructions: its input, and
	// its output when it completed (responses_store.go).
	Turn []providers.Message `json:"turn,omitempty"`
}

// loadResponse reads the principal's stored response id. Another end-user's
// or platform's id is not found, as one that never existed.
func (s *Server) loadResponse(p actors.Principal, id string, messages bool) (*storedResponse, error) {
	notFound := &apiError{Status: 404, Type: typeNotFound, Code: "response_not_found", Message: "response " + strconv.Quote(id) + " not found"}
	if !ids.Valid(responseIDPrefix, id) {
		return nil, notFound
	}
	v, err := s.storedGet(p, id, false)
	if errors.Is(err, persistence.ErrNotFound) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	var rec storedResponse
	if messages {
		err = json.Unmarshal(v, &rec)
	} else {
		var head struct {
			Response json.RawMessage `json:"response"`
		}
		err = json.Unmarshal(v, &head)
		rec.Response = head.Response
	}
	if err != nil {
		return nil, fmt.Errorf("stored response %s: %w", id, err)
	}
	var created struct {
		CreatedAt int64 `json:"created_at"`
	}
	if json.Unmarshal(rec.Response, &created) == nil && s.expired(created.CreatedAt, s.deps.Clock.Now()) {
		return nil, notFound
	}
	return &rec, nil
}

// saveResponse writes the record of o durably, in one commit with each of
// its output items (for item_reference): its turn's messages and the id
// it continued.
func (s *Server) saveResponse(p actors.Principal, o *responseObject, turn []providers.Message) error {
	resp, err := json.Marshal(o)
	if err != nil {
		return err
	}
	rec := storedResponse{Response: resp, Turn: turn}
	if o.PreviousResponseID != nil {
		rec.Previous = *o.PreviousResponseID
	}
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	ops, err := itemOps(p, o)
	if err != nil {
		return err
	}
	ops = append(ops, persistence.Set(persistence.ResponseKey(string(p.Platform), string(p.EndUser), o.ID), v))
	return s.deps.Store.Commit(ops...)
}

// responseTurn is one POST /v1/responses call after translation.
type responseTurn struct {
	obj       *responseObject
	store     bool
	history   []providers.Message // earlier turns and this input
	turnStart int                 // where this turn's input starts in history
}

// messagesAfter returns the conversation to store once the turn ended:
// with the output when it completed, without it otherwise.
func (t *responseTurn) messagesAfter() []providers.Message {
	if t.obj.Status != statusCompleted && t.obj.Status != statusIncomplete {
		return t.history
	}
	m := t.obj.assistantMessage()
	if m.Content.IsZero() && len(m.ToolCalls) == 0 && m.Refusal == "" {
		return t.history
	}
	return append(t.history[:len(t.history):len(t.history)], m)
}

// responsesLog starts the log entry of a Responses call.
func (s *Server) responsesLog(c *call, b *billing, start time.Time, stream bool) *callLog {
	l := s.newLog(c, b, start, stream)
	l.e.Kind = logs.KindResponses
	return l
}

// createResponse is POST /v1/responses (end-user keys only).
func (s *Server) createResponse(c *call) error {
	body, err := inferenceBody(c)
	if err != nil {
		return err
	}
	var in responsesRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return jsonError(err)
	}
	if err := checkResponsesFields(body); err != nil {
		return err
	}
	if err := in.validate(); err != nil {
		return err
	}
	var history []providers.Message
	if in.PreviousResponseID != nil && *in.PreviousResponseID != "" {
		if _, err := s.loadResponse(c.principal, *in.PreviousResponseID, false); err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.Status == 404 {
				return &apiError{Status: 404, Type: typeNotFound, Code: "previous_response_not_found",
					Message: "previous_response_id " + strconv.Quote(*in.PreviousResponseID) + " not found"}
			}
			return err
		}
		if history, err = s.conversation(c.principal, *in.PreviousResponseID); err != nil {
			return err
		}
	}
	req, input, err := in.chatRequest(history, s.itemResolver(c.principal))
	if err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return upstreamError(err)
	}
	enc, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if len(enc) > maxConversationBytes {
		return errBadRequest("conversation_too_large", "the conversation is %d bytes; at most %d can be sent", len(enc), maxConversationBytes)
	}
	promptEst := estimateTokens(enc)
	began := time.Now()
	f, err := s.begin(c, req, promptEst)
	if err != nil {
		s.logRefusal(c, logs.KindResponses, req.Model, req.Stream, began, err)
		return err
	}
	now := s.deps.Clock.Now()
	t := &responseTurn{store: in.Store == nil || *in.Store}
	t.obj = newResponseObject(&in, ids.New(responseIDPrefix, now), req.Model, now, t.store)
	t.history = append(append(make([]providers.Message, 0, len(history)+len(input)+1), history...), input...)
	t.turnStart = len(history)
	if req.Stream {
		return s.streamResponse(c, f, req, t)
	}
	defer f.cancel()
	resp, err := s.complete(c, f.up, f.ctx, f.target, req)
	if err != nil {
		s.release(f.b)
		s.responsesLog(c, f.b, f.start, false).finish(0, providers.Usage{}, 0, toAPIError(upstreamError(err), s.log, c.rid))
		return upstreamError(err)
	}
	u := providers.Usage{}
	if resp.Usage != nil {
		u = *resp.Usage
	} else {
		u = estimateUsage(promptEst, resp)
	}
	// As in chatCompletions: a completed, paid call is answered even when
	// its settlement failed (logged; the reservation is left for recovery).
	cost, _ := s.settleTraced(c, f.b, u)
	t.obj.Output = outputOf(resp, now)
	var fr providers.FinishReason
	if len(resp.Choices) > 0 {
		fr = resp.Choices[0].FinishReason
	}
	t.obj.finishStatus(fr)
	t.obj.Usage = usageOf(u)
	var fail *apiError
	if t.store {
		if err := s.saveResponse(c.principal, t.obj, t.turnMessages()); err != nil {
			fail = toAPIError(err, s.log, c.rid)
		}
	}
	s.responsesLog(c, f.b, f.start, false).finish(cost, u, 0, fail)
	if fail != nil {
		return fail
	}
	return c.writeJSON(200, t.obj)
}

// getResponse is GET /v1/responses/{responseId}.
func (s *Server) getResponse(c *call) error {
	rec, err := s.loadResponse(c.principal, c.param("responseId"), false)
	if err != nil {
		return err
	}
	c.ctx.SetStatusCode(200)
	c.ctx.SetContentType("application/json")
	c.ctx.SetBody(rec.Response)
	return nil
}

// deleteResponse is DELETE /v1/responses/{responseId}. The record and its
// output items (which can no longer be referenced) are gone durably before
// the answer.
func (s *Server) deleteResponse(c *call) error {
	id := c.param("responseId")
	rec, err := s.loadResponse(c.principal, id, false)
	if err != nil {
		return err
	}
	ops, err := itemDeletes(c.principal, rec.Response)
	if err != nil {
		return fmt.Errorf("stored response %s: %w", id, err)
	}
	key := persistence.ResponseKey(string(c.principal.Platform), string(c.principal.EndUser), id)
	if err := s.deps.Store.Commit(append(ops, persistence.Delete(key))...); err != nil {
		return err
	}
	if err := s.forgetStored(c.principal, id, rec.Response); err != nil {
		return err
	}
	return c.writeJSON(200, map[string]any{"id": id, "object": "response", "deleted": true})
}

// streamResponse answers with the Responses event sequence. As in
// streamChat, the upstream stream is opened before the status is sent, a
// failed flush means the client left (the upstream is cancelled and what it
// produced is billed), and the settlement and the stored record are durable
// before the terminal event.
func (s *Server) streamResponse(c *call, f *inflight, req *providers.ChatRequest, t *responseTurn) error {
	st, err := s.openStream(c, f.up, f.ctx, f.target, req)
	if err != nil {
		f.cancel()
		s.release(f.b)
		s.responsesLog(c, f.b, f.start, true).finish(0, providers.Usage{}, 0, toAPIError(upstreamError(err), s.log, c.rid))
		return upstreamError(err)
	}
	c.ctx.SetStatusCode(200)
	c.ctx.SetContentType("text/event-stream")
	c.ctx.Response.Header.Set("Cache-Control", "no-cache")
	c.ctx.Response.Header.Set("X-Accel-Buffering", "no")
	c.ctx.Response.ImmediateHeaderFlush = true
	entry := s.responsesLog(c, f.b, f.start, true)
	p, rid := c.principal, c.rid // c is not touched after the handler returns
	setEventStream(c.ctx, func(w eventWriter) {
		defer f.cancel()
		defer st.Close()
		ev := newResponseEvents(t.obj, time.Now)
		ev.begin()
		gone := !ev.flush(w)
		var ttft time.Duration
		var streamErr error
		for !gone {
			ch, err := st.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					streamErr = err
				}
				break
			}
			if ttft == 0 {
				ttft = time.Since(f.start)
			}
			ev.chunk(ch)
			if !ev.flush(w) {
				gone = true
				f.cancel() // the client left: stop the upstream, bill what it produced
			}
		}
		u := streamedUsage(st, ev.produced, f.b.promptEst, gone || streamErr != nil)
		cost, serr := s.settleTraced(c, f.b, u)
		t.obj.Usage = usageOf(u)
		var final *apiError
		failed := false
		switch {
		case gone:
			t.obj.cancel()
			final = &apiError{Status: 499, Code: "client_disconnected", Message: "the client closed the connection"}
		case streamErr != nil:
			final, failed = upstreamError(streamErr).(*apiError), true
			t.obj.fail(final)
		case serr != nil:
			// The settlement did not land: the response fails rather
			// than completes (as streamChat sends no [DONE]).
			ev.closeItem()
			final, failed = toAPIError(serr, s.log, rid), true
			t.obj.fail(final)
		default:
			ev.closeItem()
			t.obj.finishStatus(ev.finish)
		}
		if t.store {
			if err := s.saveResponse(p, t.obj, t.turnMessages()); err != nil {
				s.log.Error("store response", "request_id", rid, "err", err)
				if !gone && !failed {
					// Billed and relayed, but the id would not resolve:
					// say so rather than complete.
					final, failed = toAPIError(err, s.log, rid), true
					t.obj.fail(final)
				}
			}
		}
		if !gone {
			if failed {
				ev.failed(final)
			} else {
				ev.end()
			}
			ev.flush(w)
		}
		entry.finish(cost, u, ttft, final)
		c.tr.streamEnd(u, final) // c.tr is set before the handler and never changes
	})
	return nil
}
