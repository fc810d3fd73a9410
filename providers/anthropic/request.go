package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/assistiv/gateway/providers"
)

// Wire types of POST /v1/messages.
type request struct {
	Model         string          `json:"model"`
	MaxTokens     int             `json:"max_tokens"`
	System        string          `json:"system,omitempty"`
	Messages      []message       `json:"messages"`
	Tools         []tool          `json:"tools,omitempty"`
	ToolChoice    *toolChoice     `json:"tool_choice,omitempty"`
	StopSequences []string        `json:"stop_sequences,omitempty"`
	Temperature   *float64        `json:"temperature,omitempty"`
	TopP          *float64        `json:"top_p,omitempty"`
	Stream        bool            `json:"stream,omitempty"`
	Metadata      *requestMetdata `json:"metadata,omitempty"`
}

type requestMetdata struct {
	UserID string `json:"user_id"`
}

type message struct {
	Role    string  `json:"role"`
	Content []block `json:"content"`
}

// block is a content block; which fields are set depends on Type.
type block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	Source    *imageSource    `json:"source,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   []block         `json:"content,omitempty"`
}

type imageSource struct {
	Type      string `json:"type"` // base64 | url
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type toolChoice struct {
	Type                   string `json:"type"` // auto | any | tool | none
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

var emptySchema = json.RawMessage(`{"type":"object","properties":{}}`)

// jsonObjectInstruction is appended to the system prompt for
// response_format json_object, which Anthropic has no switch for.
const jsonObjectInstruction = "Respond with a single valid JSON object and nothing else: no prose, no code fences."

// jsonTool returns the name of the tool that carries a json_schema answer,
// or "" when the request does not use that emulation.
//
// response_format json_schema is emulated with a forced tool: the schema
// becomes the input_schema of a tool named after the schema, tool_choice
// forces it, and the tool's input is returned as the message content (with
// finish_reason "stop"). This works on every Claude model and gets the
// schema enforced by tool-use training. When the request has its own tools
// (or tool_choice "none"), forcing a tool would change its meaning, so the
// schema is given as a system instruction instead; so is a schema whose
// root is not an object, which input_schema cannot hold.
func jsonTool(req *providers.ChatRequest) string {
	rf := req.ResponseFormat
	if rf == nil || rf.Type != providers.FormatJSONSchema || rf.JSONSchema == nil {
		return ""
	}
	if len(req.Tools) > 0 || (req.ToolChoice != nil && req.ToolChoice.Mode == providers.ToolChoiceNone) {
		return ""
	}
	if !schemaIsObject(rf.JSONSchema.Schema) {
		return ""
	}
	return rf.JSONSchema.Name
}

func schemaIsObject(s json.RawMessage) bool {
	var probe struct {
		Type json.RawMessage `json:"type"`
	}
	if json.Unmarshal(s, &probe) != nil {
		return false
	}
	return bytes.Equal(bytes.TrimSpace(probe.Type), []byte(`"object"`))
}

// encodeRequest translates req into a Messages API body.
func encodeRequest(req *providers.ChatRequest, stream bool, defaultMaxTokens int) ([]byte, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if req.N != nil && *req.N > 1 {
		return nil, providers.Unsupported(Name, "n", "anthropic returns one choice; n must be 1")
	}
	out := request{
		Model:         strings.TrimPrefix(req.Model, Name+"/"),
		MaxTokens:     req.MaxOutputTokens(),
		StopSequences: req.Stop,
		TopP:          req.TopP,
		Stream:        stream,
	}
	if out.MaxTokens == 0 {
		out.MaxTokens = defaultMaxTokens
	}
	if t := req.Temperature; t != nil {
		v := *t
		if v > 1 { // OpenAI allows 0..2, Anthropic 0..1
			v = 1
		}
		out.Temperature = &v
	}
	if req.User != "" {
		out.Metadata = &requestMetdata{UserID: req.User}
	}

	var system []string
	for i := range req.Messages {
		m := &req.Messages[i]
		p := fmt.Sprintf("messages[%d]", i)
		var role string
		var blocks []block
		switch m.Role {
		case providers.RoleSystem, providers.RoleDeveloper:
			for _, part := range m.Content.Parts {
				if part.Type != providers.PartText {
					return nil, providers.Unsupported(Name, p+".content", "anthropic system prompts take text only")
				}
			}
			if s := m.Content.String(); s != "" {
				system = append(system, s)
			}
			continue
		case providers.RoleUser:
			role = "user"
			bs, err := userBlocks(m.Content, p)
			if err != nil {
				return nil, err
			}
			blocks = bs
		case providers.RoleAssistant:
			role = "assistant"
			if s := m.Content.String(); s != "" {
				blocks = append(blocks, block{Type: "text", Text: s})
			} else if m.Refusal != "" {
				blocks = append(blocks, block{Type: "text", Text: m.Refusal})
			}
			for j, tc := range m.ToolCalls {
				input, err := toolInput(tc.Function.Arguments)
				if err != nil {
					return nil, providers.InvalidParam(fmt.Sprintf("%s.tool_calls[%d].function.arguments", p, j), "%v", err)
				}
				blocks = append(blocks, block{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: input})
			}
		case providers.RoleTool:
			role = "user"
			res := block{Type: "tool_result", ToolUseID: m.ToolCallID}
			if m.Content.IsParts() {
				bs, err := userBlocks(m.Content, p)
				if err != nil {
					return nil, err
				}
				res.Content = bs
			} else if s := m.Content.Text; s != "" {
				res.Content = []block{{Type: "text", Text: s}}
			}
			blocks = []block{res}
		}
		if len(blocks) == 0 {
			continue // Anthropic refuses empty messages
		}
		// Anthropic wants user and assistant turns to alternate: merge runs.
		if n := len(out.Messages); n > 0 && out.Messages[n-1].Role == role {
			out.Messages[n-1].Content = append(out.Messages[n-1].Content, blocks...)
			continue
		}
		out.Messages = append(out.Messages, message{Role: role, Content: blocks})
	}
	if len(out.Messages) == 0 {
		return nil, providers.InvalidParam("messages", "anthropic needs at least one non-system message with content")
	}

	for _, t := range req.Tools {
		schema := t.Function.Parameters
		if len(schema) == 0 || string(bytes.TrimSpace(schema)) == "null" {
			schema = emptySchema
		}
		out.Tools = append(out.Tools, tool{Name: t.Function.Name, Description: t.Function.Description, InputSchema: schema})
	}
	if len(out.Tools) > 0 {
		if tc := req.ToolChoice; tc != nil {
			switch tc.Mode {
			case providers.ToolChoiceAuto:
				out.ToolChoice = &toolChoice{Type: "auto"}
			case providers.ToolChoiceNone:
				out.ToolChoice = &toolChoice{Type: "none"}
			case providers.ToolChoiceRequired:
				out.ToolChoice = &toolChoice{Type: "any"}
			case providers.ToolChoiceFunction:
				out.ToolChoice = &toolChoice{Type: "tool", Name: tc.Function}
			}
		}
		if req.ParallelToolCalls != nil && !*req.ParallelToolCalls {
			if out.ToolChoice == nil {
				out.ToolChoice = &toolChoice{Type: "auto"}
			}
			if out.ToolChoice.Type != "none" {
				out.ToolChoice.DisableParallelToolUse = true
			}
		}
	}

	if rf := req.ResponseFormat; rf != nil {
		switch rf.Type {
		case providers.FormatJSONObject:
			system = append(system, jsonObjectInstruction)
		case providers.FormatJSONSchema:
			if name := jsonTool(req); name != "" {
				desc := rf.JSONSchema.Description
				if desc == "" {
					desc = "Give the final answer as this tool's input."
				}
				out.Tools = []tool{{Name: name, Description: desc, InputSchema: rf.JSONSchema.Schema}}
				out.ToolChoice = &toolChoice{Type: "tool", Name: name}
			} else {
				schema := rf.JSONSchema.Schema
				if len(schema) == 0 {
					schema = json.RawMessage("{}")
				}
				system = append(system, "Respond with a single valid JSON value, and nothing else, that matches this JSON Schema:\n"+string(schema))
			}
		}
	}
	out.System = strings.Join(system, "\n\n")

	b, err := json.Marshal(out)
	if err != nil {
		return nil, providers.InvalidParam("", "cannot encode request: %v", err)
	}
	return b, nil
}

// userBlocks translates user (or tool result) content into blocks.
func userBlocks(c providers.Content, p string) ([]block, error) {
	if !c.IsParts() {
		if c.Text == "" {
			return nil, nil
		}
		return []block{{Type: "text", Text: c.Text}}, nil
	}
	blocks := make([]block, 0, len(c.Parts))
	for j, part := range c.Parts {
		q := fmt.Sprintf("%s.content[%d]", p, j)
		switch part.Type {
		case providers.PartText:
			if part.Text != "" {
				blocks = append(blocks, block{Type: "text", Text: part.Text})
			}
		case providers.PartImageURL:
			src, err := imageFrom(part.ImageURL.URL, q)
			if err != nil {
				return nil, err
			}
			blocks = append(blocks, block{Type: "image", Source: src})
		default:
			return nil, providers.Unsupported(Name, q+".type", "anthropic does not take %q content parts", part.Type)
		}
	}
	return blocks, nil
}

var imageTypes = map[string]bool{"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true}

// imageFrom turns an image_url into an image source: a base64 data URL
// becomes inline data, an http(s) URL a url source.
func imageFrom(u, p string) (*imageSource, error) {
	if mt, data, ok := providers.ParseDataURL(u); ok {
		if !imageTypes[mt] {
			return nil, providers.Unsupported(Name, p+".image_url.url", "anthropic images must be JPEG, PNG, GIF or WebP, got %q", mt)
		}
		return &imageSource{Type: "base64", MediaType: mt, Data: data}, nil
	}
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return &imageSource{Type: "url", URL: u}, nil
	}
	return nil, providers.InvalidParam(p+".image_url.url", "image URL must be http(s) or a base64 data URL")
}

// toolInput turns a tool call's arguments string into the JSON object
// Anthropic wants as input. Empty arguments mean no arguments.
func toolInput(args string) (json.RawMessage, error) {
	s := strings.TrimSpace(args)
	if s == "" {
		return json.RawMessage("{}"), nil
	}
	if !json.Valid([]byte(s)) || s[0] != '{' {
		return nil, fmt.Errorf("tool call arguments must be a JSON object")
	}
	return json.RawMessage(s), nil
}
