package mockllm

import (
	"encoding/json"
	"errors"
	"strings"
)

// created is the fixed "created" timestamp of OpenAI-format replies
// (2025-01-01T00:00:00Z), fixed so that equal requests get equal bytes.
const created = 1735689600

type oaRequest struct {
	Model         string      `json:"model"`
	Messages      []oaMessage `json:"messages"`
	Stream        bool        `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens           *int `json:"max_tokens"`
	MaxCompletionTokens *int `json:"max_completion_tokens"`
	Tools               []struct {
		Type     string `json:"type"`
		Function struct {
			Name       string          `json:"name"`
			Parameters json.RawMessage `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
	ToolChoice     json.RawMessage `json:"tool_choice"`
	ResponseFormat *struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Schema json.RawMessage `json:"schema"`
		} `json:"json_schema"`
	} `json:"response_format"`
}

type oaMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// parseOpenAI reads a chat completions request. Errors carry the message
// the client sees.
func parseOpenAI(body []byte) (conv, error) {
	var req oaRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return conv{}, errors.New("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)")
	}
	if req.Model == "" {
		return conv{}, errors.New("you must provide a model parameter")
	}
	if len(req.Messages) == 0 {
		return conv{}, errors.New("[] is too short - 'messages'")
	}
	c := conv{model: req.Model, stream: req.Stream}
	if req.StreamOptions != nil {
		c.includeUsage = req.StreamOptions.IncludeUsage
	}
	for _, mt := range []*int{req.MaxCompletionTokens, req.MaxTokens} {
		if mt != nil {
			if *mt < 1 {
				return conv{}, errors.New("Invalid 'max_tokens': integer below minimum value. Expected a value >= 1.")
			}
			c.maxTokens = *mt
			break
		}
	}
	for i, m := range req.Messages {
		text := contentText(m.Content)
		c.promptTokens += countWords(text)
		if m.Role == "user" {
			c.lastText = text
		}
		if i == len(req.Messages)-1 {
			switch m.Role {
			case "user":
				c.last = lastUser
			case "tool", "function":
				c.last = lastToolResult
				c.toolResult = text
			}
		}
	}
	c.promptTokens = max(c.promptTokens, 1)
	for _, t := range req.Tools {
		if t.Function.Name != "" {
			c.tools = append(c.tools, toolDef{name: t.Function.Name, schema: t.Function.Parameters})
		}
	}
	c.choice = openAIChoice(req.ToolChoice)
	if rf := req.ResponseFormat; rf != nil {
		switch rf.Type {
		case "json_object":
			c.format = formatJSONObject
		case "json_schema":
			c.format = formatSchema
			if rf.JSONSchema != nil {
				c.schema = rf.JSONSchema.Schema
			}
		}
	}
	return c, nil
}

func openAIChoice(raw json.RawMessage) toolChoice {
	var mode string
	if json.Unmarshal(raw, &mode) == nil {
		switch mode {
		case "none":
			return toolChoice{mode: choiceNone}
		case "required":
			return toolChoice{mode: choiceRequired}
		}
		return toolChoice{}
	}
	var named struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(raw, &named) == nil && named.Function.Name != "" {
		return toolChoice{mode: choiceNamed, name: named.Function.Name}
	}
	return toolChoice{}
}

// contentText returns the text of an OpenAI or Anthropic message content:
// a string, or the text parts of a list of content parts (Anthropic
// tool_result blocks included), joined by newlines.
func contentText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Type    string          `json:"type"`
		Text    string          `json:"text"`
		Content json.RawMessage `json:"content"`
	}
	if json.Unmarshal(raw, &parts) != nil {
		return ""
	}
	var b strings.Builder
	for _, p := range parts {
		t := p.Text
		if p.Type == "tool_result" {
			t = contentText(p.Content)
		}
		if t == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(t)
	}
	return b.String()
}

func (p *plan) openAIFinish() string {
	switch p.finish {
	case finishLength:
		return "length"
	case finishTool:
		return "tool_calls"
	}
	return "stop"
}

func (p *plan) appendOpenAIUsage(b []byte) []byte {
	pt, ct := p.conv.promptTokens, p.completionTokens()
	b = append(b, `{"prompt_tokens":`...)
	b = appendInt(b, pt)
	b = append(b, `,"completion_tokens":`...)
	b = appendInt(b, ct)
	b = append(b, `,"total_tokens":`...)
	b = appendInt(b, pt+ct)
	return append(b, `,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`...)
}

func (p *plan) appendOpenAIHead(b []byte, object string) []byte {
	b = append(b, `{"id":"chatcmpl-`...)
	b = append(b, p.id...)
	b = append(b, `","object":"`...)
	b = append(b, object...)
	b = append(b, `","created":`...)
	b = appendInt(b, created)
	b = append(b, `,"model":`...)
	b = appendJSONString(b, p.conv.model)
	return b
}

func (p *plan) renderOpenAI() []byte {
	b := make([]byte, 0, 512+len(p.text))
	b = p.appendOpenAIHead(b, "chat.completion")
	b = append(b, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	if p.kind == replyTool {
		if len(p.preamble) > 0 {
			b = appendJSONString(b, p.text)
		} else {
			b = append(b, `null`...)
		}
		b = append(b, `,"tool_calls":[{"id":"call_`...)
		b = append(b, p.toolID...)
		b = append(b, `","type":"function","function":{"name":`...)
		b = appendJSONString(b, p.toolName)
		b = append(b, `,"arguments":`...)
		b = appendJSONString(b, join(p.pieces))
		b = append(b, `}}]`...)
	} else {
		b = appendJSONString(b, p.text)
	}
	b = append(b, `,"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"`...)
	b = append(b, p.openAIFinish()...)
	b = append(b, `"}],"usage":`...)
	b = p.appendOpenAIUsage(b)
	return append(b, `,"service_tier":"default","system_fingerprint":"fp_mockllm"}`...)
}

func (p *plan) streamOpenAI(sr *streamRun) {
	head := p.appendOpenAIHead([]byte("data: "), "chat.completion.chunk")
	head = append(head, `,"system_fingerprint":"fp_mockllm","choices":[{"index":0,"delta":`...)
	tail := `,"logprobs":null,"finish_reason":null}]}` + "\n\n"
	if p.conv.includeUsage {
		tail = `,"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n"
	}
	b := append(sr.buf[:0], head...)
	if p.kind == replyTool && len(p.preamble) == 0 {
		b = append(b, `{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_`...)
		b = p.appendOpenAICallStart(b)
	} else {
		b = append(b, `{"role":"assistant","content":"","refusal":null}`...)
	}
	b = append(b, tail...)
	if !sr.meta(b) {
		return
	}
	if len(p.preamble) > 0 {
		// Text first, then the call opens in its own chunk, as OpenAI
		// streams a message holding both.
		for _, piece := range p.preamble {
			b = append(b[:0], head...)
			b = append(b, `{"content":`...)
			b = appendJSONString(b, piece)
			b = append(b, '}')
			b = append(b, tail...)
			if !sr.token(b) {
				sr.buf = b
				return
			}
		}
		b = append(b[:0], head...)
		b = append(b, `{"tool_calls":[{"index":0,"id":"call_`...)
		b = p.appendOpenAICallStart(b)
		b = append(b, tail...)
		if !sr.meta(b) {
			return
		}
	}
	for _, piece := range p.pieces {
		b = append(b[:0], head...)
		if p.kind == replyTool {
			b = append(b, `{"tool_calls":[{"index":0,"function":{"arguments":`...)
			b = appendJSONString(b, piece)
			b = append(b, `}}]}`...)
		} else {
			b = append(b, `{"content":`...)
			b = appendJSONString(b, piece)
			b = append(b, '}')
		}
		b = append(b, tail...)
		if !sr.token(b) {
			sr.buf = b
			return
		}
	}
	b = append(b[:0], head...)
	b = append(b, `{},"logprobs":null,"finish_reason":"`...)
	b = append(b, p.openAIFinish()...)
	b = append(b, `"}]`...)
	if p.conv.includeUsage {
		b = append(b, `,"usage":null`...)
	}
	b = append(b, "}\n\n"...)
	if !sr.meta(b) {
		return
	}
	if p.conv.includeUsage {
		b = p.appendOpenAIHead(append(b[:0], "data: "...), "chat.completion.chunk")
		b = append(b, `,"system_fingerprint":"fp_mockllm","choices":[],"usage":`...)
		b = p.appendOpenAIUsage(b)
		b = append(b, "}\n\n"...)
		if !sr.meta(b) {
			return
		}
	}
	sr.meta([]byte("data: [DONE]\n\n"))
	sr.buf = b
}

// appendOpenAICallStart appends the rest of a streamed tool call's opening
// delta, after its `"id":"call_`.
func (p *plan) appendOpenAICallStart(b []byte) []byte {
	b = append(b, p.toolID...)
	b = append(b, `","type":"function","function":{"name":`...)
	b = appendJSONString(b, p.toolName)
	return append(b, `,"arguments":""}}],"refusal":null}`...)
}
