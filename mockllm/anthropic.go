package mockllm

import (
	"encoding/json"
	"errors"
)

type anRequest struct {
	Model     string          `json:"model"`
	MaxTokens *int            `json:"max_tokens"`
	Messages  []oaMessage     `json:"messages"`
	System    json.RawMessage `json:"system"`
	Stream    bool            `json:"stream"`
	Tools     []struct {
		Type        string          `json:"type"`
		Name        string          `json:"name"`
		InputSchema json.RawMessage `json:"input_schema"`
	} `json:"tools"`
	ToolChoice *struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"tool_choice"`
}

// parseAnthropic reads a Messages API request.
func parseAnthropic(body []byte) (conv, error) {
	var req anRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return conv{}, errors.New("There was an error parsing the body of your request as JSON.")
	}
	switch {
	case req.Model == "":
		return conv{}, errors.New("model: Field required")
	case req.MaxTokens == nil:
		return conv{}, errors.New("max_tokens: Field required")
	case *req.MaxTokens < 1:
		return conv{}, errors.New("max_tokens: Input should be greater than or equal to 1")
	case len(req.Messages) == 0:
		return conv{}, errors.New("messages: at least one message is required")
	}
	c := conv{model: req.Model, stream: req.Stream, maxTokens: *req.MaxTokens}
	c.promptTokens = countWords(contentText(req.System))
	for i, m := range req.Messages {
		text := contentText(m.Content)
		c.promptTokens += countWords(text)
		result, isResult := toolResultText(m.Content)
		if m.Role == "user" && !isResult {
			c.lastText = text
		}
		if i == len(req.Messages)-1 && m.Role == "user" {
			c.last = lastUser
			if isResult {
				c.last = lastToolResult
				c.toolResult = result
			}
		}
	}
	c.promptTokens = max(c.promptTokens, 1)
	for _, t := range req.Tools {
		// Server tools (web_search_..., bash_...) have a versioned type and
		// no input_schema; the mock does not call them.
		if t.Name != "" && (t.Type == "" || t.Type == "custom") {
			c.tools = append(c.tools, toolDef{name: t.Name, schema: t.InputSchema})
		}
	}
	if tc := req.ToolChoice; tc != nil {
		switch tc.Type {
		case "none":
			c.choice.mode = choiceNone
		case "any":
			c.choice.mode = choiceRequired
		case "tool":
			c.choice = toolChoice{mode: choiceNamed, name: tc.Name}
		}
	}
	return c, nil
}

// toolResultText reports whether an Anthropic content list holds tool_result
// blocks, and their text.
func toolResultText(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '[' {
		return "", false
	}
	var blocks []struct {
		Type    string          `json:"type"`
		Content json.RawMessage `json:"content"`
	}
	if json.Unmarshal(raw, &blocks) != nil {
		return "", false
	}
	text, found := "", false
	for _, b := range blocks {
		if b.Type != "tool_result" {
			continue
		}
		if found {
			text += "\n"
		}
		found = true
		text += contentText(b.Content)
	}
	return text, found
}

func (p *plan) anthropicStop() string {
	switch p.finish {
	case finishLength:
		return "max_tokens"
	case finishTool:
		return "tool_use"
	}
	return "end_turn"
}

func (p *plan) appendAnthropicUsage(b []byte, output int) []byte {
	b = append(b, `{"input_tokens":`...)
	b = appendInt(b, p.conv.promptTokens)
	b = append(b, `,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":`...)
	b = appendInt(b, output)
	return append(b, '}')
}

func (p *plan) appendAnthropicHead(b []byte) []byte {
	b = append(b, `{"id":"msg_`...)
	b = append(b, p.id...)
	b = append(b, `","type":"message","role":"assistant","model":`...)
	return appendJSONString(b, p.conv.model)
}

func (p *plan) renderAnthropic() []byte {
	b := make([]byte, 0, 512+len(p.text))
	b = p.appendAnthropicHead(b)
	b = append(b, `,"content":[`...)
	if len(p.preamble) > 0 {
		b = append(b, `{"type":"text","text":`...)
		b = appendJSONString(b, p.text)
		b = append(b, `},`...)
	}
	if p.kind == replyTool {
		b = append(b, `{"type":"tool_use","id":"toolu_`...)
		b = append(b, p.toolID...)
		b = append(b, `","name":`...)
		b = appendJSONString(b, p.toolName)
		b = append(b, `,"input":`...)
		b = append(b, join(p.pieces)...)
		b = append(b, '}')
	} else {
		b = append(b, `{"type":"text","text":`...)
		b = appendJSONString(b, p.text)
		b = append(b, '}')
	}
	b = append(b, `],"stop_reason":"`...)
	b = append(b, p.anthropicStop()...)
	b = append(b, `","stop_sequence":null,"usage":`...)
	b = p.appendAnthropicUsage(b, p.completionTokens())
	return append(b, '}')
}

func (p *plan) streamAnthropic(sr *streamRun) {
	b := append(sr.buf[:0], "event: message_start\ndata: {\"type\":\"message_start\",\"message\":"...)
	b = p.appendAnthropicHead(b)
	b = append(b, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":`...)
	b = p.appendAnthropicUsage(b, 1)
	b = append(b, "}}\n\n"...)
	index := 0
	if len(p.preamble) > 0 {
		// A text block, then the tool_use block, as Claude streams a turn
		// that says something before calling a tool.
		b = appendAnthropicBlockStart(b, 0)
		b = append(b, `{"type":"text","text":""}`...)
		b = append(b, "}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n"...)
		if !sr.meta(b) {
			return
		}
		for _, piece := range p.preamble {
			b = appendAnthropicDelta(b[:0], 0, `{"type":"text_delta","text":`, piece)
			if !sr.token(b) {
				sr.buf = b
				return
			}
		}
		b = append(b[:0], "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"...)
		index = 1
	}
	b = appendAnthropicBlockStart(b, index)
	if p.kind == replyTool {
		b = append(b, `{"type":"tool_use","id":"toolu_`...)
		b = append(b, p.toolID...)
		b = append(b, `","name":`...)
		b = appendJSONString(b, p.toolName)
		b = append(b, `,"input":{}}`...)
	} else {
		b = append(b, `{"type":"text","text":""}`...)
	}
	b = append(b, "}\n\n"...)
	if index == 0 {
		b = append(b, "event: ping\ndata: {\"type\": \"ping\"}\n\n"...)
	}
	if !sr.meta(b) {
		return
	}
	delta := `{"type":"text_delta","text":`
	if p.kind == replyTool {
		delta = `{"type":"input_json_delta","partial_json":`
	}
	for _, piece := range p.pieces {
		b = appendAnthropicDelta(b[:0], index, delta, piece)
		if !sr.token(b) {
			sr.buf = b
			return
		}
	}
	b = append(b[:0], "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":"...)
	b = appendInt(b, index)
	b = append(b, "}\n\n"...)
	b = append(b, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\""...)
	b = append(b, p.anthropicStop()...)
	b = append(b, `","stop_sequence":null},"usage":{"output_tokens":`...)
	b = appendInt(b, p.completionTokens())
	b = append(b, "}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"...)
	sr.meta(b)
	sr.buf = b
}

// appendAnthropicBlockStart appends a content_block_start event up to its
// content_block value.
func appendAnthropicBlockStart(b []byte, index int) []byte {
	b = append(b, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":"...)
	b = appendInt(b, index)
	return append(b, `,"content_block":`...)
}

// appendAnthropicDelta appends a content_block_delta event: delta is the
// opening of the delta object up to its string member's value, piece the
// value.
func appendAnthropicDelta(b []byte, index int, delta, piece string) []byte {
	b = append(b, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":"...)
	b = appendInt(b, index)
	b = append(b, `,"delta":`...)
	b = append(b, delta...)
	b = appendJSONString(b, piece)
	return append(b, "}}\n\n"...)
}
