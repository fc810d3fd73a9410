package mockllm

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

type gmRequest struct {
	Contents           []gmContent `json:"contents"`
	SystemInstruction  *gmContent  `json:"systemInstruction"`
	SystemInstruction2 *gmContent  `json:"system_instruction"`
	Tools              []struct {
		FunctionDeclarations  []gmFunc `json:"functionDeclarations"`
		FunctionDeclarations2 []gmFunc `json:"function_declarations"`
	} `json:"tools"`
	ToolConfig *struct {
		FunctionCallingConfig *struct {
			Mode                 string   `json:"mode"`
			AllowedFunctionNames []string `json:"allowedFunctionNames"`
		} `json:"functionCallingConfig"`
	} `json:"toolConfig"`
	GenerationConfig  *gmGenConfig `json:"generationConfig"`
	GenerationConfig2 *gmGenConfig `json:"generation_config"`
}

type gmContent struct {
	Role  string `json:"role"`
	Parts []struct {
		Text             string `json:"text"`
		FunctionResponse *struct {
			Name     string          `json:"name"`
			Response json.RawMessage `json:"response"`
		} `json:"functionResponse"`
	} `json:"parts"`
}

type gmFunc struct {
	Name                 string          `json:"name"`
	Parameters           json.RawMessage `json:"parameters"`
	ParametersJSONSchema json.RawMessage `json:"parametersJsonSchema"`
}

type gmGenConfig struct {
	MaxOutputTokens    *int            `json:"maxOutputTokens"`
	ResponseMimeType   string          `json:"responseMimeType"`
	ResponseSchema     json.RawMessage `json:"responseSchema"`
	ResponseJSONSchema json.RawMessage `json:"responseJsonSchema"`
}

// parseGemini reads a generateContent request; the model and stream flag
// come from the path.
func parseGemini(body []byte) (conv, error) {
	var req gmRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return conv{}, errors.New("Invalid JSON payload received. Unexpected token.")
	}
	if len(req.Contents) == 0 {
		return conv{}, errors.New("* GenerateContentRequest.contents: contents is not specified\n")
	}
	var c conv
	if si := cmp(req.SystemInstruction, req.SystemInstruction2); si != nil {
		for _, part := range si.Parts {
			c.promptTokens += countWords(part.Text)
		}
	}
	for i, m := range req.Contents {
		var text strings.Builder
		var result []byte
		for _, part := range m.Parts {
			if part.FunctionResponse != nil {
				var cb bytes.Buffer
				if json.Compact(&cb, part.FunctionResponse.Response) == nil {
					if len(result) > 0 {
						result = append(result, '\n')
					}
					result = append(result, cb.Bytes()...)
				}
				continue
			}
			if part.Text != "" {
				if text.Len() > 0 {
					text.WriteByte('\n')
				}
				text.WriteString(part.Text)
			}
		}
		c.promptTokens += countWords(text.String()) + countWords(string(result))
		user := m.Role == "" || m.Role == "user"
		if user && result == nil {
			c.lastText = text.String()
		}
		if i == len(req.Contents)-1 {
			switch {
			case result != nil:
				c.last = lastToolResult
				c.toolResult = string(result)
			case user:
				c.last = lastUser
			}
		}
	}
	c.promptTokens = max(c.promptTokens, 1)
	for _, t := range req.Tools {
		for _, f := range append(t.FunctionDeclarations, t.FunctionDeclarations2...) {
			schema := f.Parameters
			if len(schema) == 0 {
				schema = f.ParametersJSONSchema
			}
			if f.Name != "" {
				c.tools = append(c.tools, toolDef{name: f.Name, schema: schema})
			}
		}
	}
	if tc := req.ToolConfig; tc != nil && tc.FunctionCallingConfig != nil {
		fc := tc.FunctionCallingConfig
		switch strings.ToUpper(fc.Mode) {
		case "NONE":
			c.choice.mode = choiceNone
		case "ANY":
			c.choice.mode = choiceRequired
			if len(fc.AllowedFunctionNames) > 0 {
				c.choice = toolChoice{mode: choiceNamed, name: fc.AllowedFunctionNames[0]}
			}
		}
	}
	if gc := cmp(req.GenerationConfig, req.GenerationConfig2); gc != nil {
		if gc.MaxOutputTokens != nil && *gc.MaxOutputTokens > 0 {
			c.maxTokens = *gc.MaxOutputTokens
		}
		if strings.EqualFold(gc.ResponseMimeType, "application/json") {
			c.format = formatJSONObject
			schema := gc.ResponseSchema
			if len(schema) == 0 {
				schema = gc.ResponseJSONSchema
			}
			if len(schema) > 0 {
				c.format, c.schema = formatSchema, schema
			}
		}
	}
	return c, nil
}

// cmp returns the first non-nil pointer.
func cmp[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}

func (p *plan) geminiFinish() string {
	if p.finish == finishLength {
		return "MAX_TOKENS"
	}
	return "STOP"
}

// tokenEvents is the number of token events of the stream: Gemini sends a
// function call whole, in one chunk.
func (p *plan) tokenEvents() int {
	if p.dialect == dialectGemini && p.kind == replyTool {
		return len(p.preamble) + 1
	}
	return len(p.preamble) + len(p.pieces)
}

// appendGeminiResponse appends one GenerateContentResponse holding parts
// (already rendered), with finishReason when final, and usage counting
// outTokens candidate tokens.
func (p *plan) appendGeminiResponse(b []byte, parts func([]byte) []byte, final bool, outTokens int) []byte {
	b = append(b, `{"candidates":[{"content":{"parts":[`...)
	b = parts(b)
	b = append(b, `],"role":"model"}`...)
	if final {
		b = append(b, `,"finishReason":"`...)
		b = append(b, p.geminiFinish()...)
		b = append(b, '"')
	}
	pt := p.conv.promptTokens
	b = append(b, `,"index":0}],"usageMetadata":{"promptTokenCount":`...)
	b = appendInt(b, pt)
	b = append(b, `,"candidatesTokenCount":`...)
	b = appendInt(b, outTokens)
	b = append(b, `,"totalTokenCount":`...)
	b = appendInt(b, pt+outTokens)
	b = append(b, `,"promptTokensDetails":[{"modality":"TEXT","tokenCount":`...)
	b = appendInt(b, pt)
	b = append(b, `}]},"modelVersion":`...)
	b = appendJSONString(b, p.conv.model)
	b = append(b, `,"responseId":"`...)
	b = append(b, p.id...)
	return append(b, `"}`...)
}

func (p *plan) appendGeminiCall(b []byte) []byte {
	b = append(b, `{"functionCall":{"name":`...)
	b = appendJSONString(b, p.toolName)
	b = append(b, `,"args":`...)
	b = append(b, join(p.pieces)...)
	return append(b, "}}"...)
}

func (p *plan) renderGemini() []byte {
	parts := func(b []byte) []byte {
		if p.kind == replyTool {
			if len(p.preamble) > 0 {
				b = append(b, `{"text":`...)
				b = appendJSONString(b, p.text)
				b = append(b, "},"...)
			}
			return p.appendGeminiCall(b)
		}
		b = append(b, `{"text":`...)
		b = appendJSONString(b, p.text)
		return append(b, '}')
	}
	return p.appendGeminiResponse(make([]byte, 0, 512+len(p.text)), parts, true, p.completionTokens())
}

func (p *plan) streamGemini(sr *streamRun) {
	b := sr.buf[:0]
	frame := func(i int) {
		switch {
		case sr.sse:
			b = append(b[:0], "data: "...)
		case i == 0:
			b = append(b[:0], '[')
		default:
			b = append(b[:0], ",\r\n"...)
		}
	}
	end := func() {
		if sr.sse {
			b = append(b, "\r\n\r\n"...)
		}
	}
	if p.kind == replyTool {
		// Text before the call streams as text chunks; the call comes
		// whole in the last chunk.
		for i, piece := range p.preamble {
			frame(i)
			b = p.appendGeminiResponse(b, geminiText(piece), false, i+1)
			end()
			if !sr.token(b) {
				sr.buf = b
				return
			}
		}
		frame(len(p.preamble))
		b = p.appendGeminiResponse(b, p.appendGeminiCall, true, p.completionTokens())
		end()
		if !sr.token(b) {
			sr.buf = b
			return
		}
	} else {
		for i, piece := range p.pieces {
			frame(i)
			b = p.appendGeminiResponse(b, geminiText(piece), i == len(p.pieces)-1, i+1)
			end()
			if !sr.token(b) {
				sr.buf = b
				return
			}
		}
	}
	if !sr.sse {
		sr.meta([]byte("]"))
	}
	sr.buf = b
}

// geminiText renders one text part holding piece.
func geminiText(piece string) func([]byte) []byte {
	return func(b []byte) []byte {
		b = append(b, `{"text":`...)
		b = appendJSONString(b, piece)
		return append(b, '}')
	}
}
