package google

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/assistiv/gateway/providers"
)

// Wire types of generateContent.
type request struct {
	Contents          []content   `json:"contents"`
	SystemInstruction *content    `json:"systemInstruction,omitempty"`
	Tools             []toolDecl  `json:"tools,omitempty"`
	ToolConfig        *toolConfig `json:"toolConfig,omitempty"`
	GenerationConfig  *genConfig  `json:"generationConfig,omitempty"`
}

type content struct {
	Role  string `json:"role,omitempty"`
	Parts []part `json:"parts"`
}

type part struct {
	Text             string            `json:"text,omitempty"`
	Thought          bool              `json:"thought,omitempty"`
	InlineData       *blob             `json:"inlineData,omitempty"`
	FileData         *fileData         `json:"fileData,omitempty"`
	FunctionCall     *functionCall     `json:"functionCall,omitempty"`
	FunctionResponse *functionResponse `json:"functionResponse,omitempty"`
}

type blob struct {
	MimeType string `json:"mimeType"`
	Data     string `json:"data"`
}

type fileData struct {
	MimeType string `json:"mimeType,omitempty"`
	FileURI  string `json:"fileUri"`
}

type functionCall struct {
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

type functionResponse struct {
	Name     string          `json:"name"`
	Response json.RawMessage `json:"response"`
}

type toolDecl struct {
	FunctionDeclarations []funcDecl `json:"functionDeclarations"`
}

// funcDecl uses parametersJsonSchema, which takes JSON Schema as clients
// write it; the older "parameters" field takes an OpenAPI subset and refuses
// common keywords such as additionalProperties.
type funcDecl struct {
	Name                 string          `json:"name"`
	Description          string          `json:"description,omitempty"`
	ParametersJSONSchema json.RawMessage `json:"parametersJsonSchema,omitempty"`
}

type toolConfig struct {
	FunctionCallingConfig functionCallingConfig `json:"functionCallingConfig"`
}

type functionCallingConfig struct {
	Mode                 string   `json:"mode"` // AUTO | ANY | NONE
	AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
}

// genConfig uses responseJsonSchema (full JSON Schema) rather than
// responseSchema (OpenAPI subset), for the same reason as funcDecl.
type genConfig struct {
	StopSequences      []string        `json:"stopSequences,omitempty"`
	ResponseMimeType   string          `json:"responseMimeType,omitempty"`
	ResponseJSONSchema json.RawMessage `json:"responseJsonSchema,omitempty"`
	CandidateCount     *int            `json:"candidateCount,omitempty"`
	MaxOutputTokens    *int            `json:"maxOutputTokens,omitempty"`
	Temperature        *float64        `json:"temperature,omitempty"`
	TopP               *float64        `json:"topP,omitempty"`
	PresencePenalty    *float64        `json:"presencePenalty,omitempty"`
	FrequencyPenalty   *float64        `json:"frequencyPenalty,omitempty"`
	Seed               *int64          `json:"seed,omitempty"`
}

// modelID returns the model as it goes into the URL path, refusing
// anything but a plain model name so a request cannot reach another
// endpoint of the upstream with the platform's key.
func modelID(m string) (string, error) {
	m = strings.TrimPrefix(m, Name+"/")
	m = strings.TrimPrefix(m, "models/")
	if m == "" || len(m) > 128 {
		return "", providers.InvalidParam("model", "invalid model name")
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "", providers.InvalidParam("model", "invalid model name %q", m)
		}
	}
	if strings.Contains(m, "..") {
		return "", providers.InvalidParam("model", "invalid model name %q", m)
	}
	return m, nil
}

// encodeRequest translates req into a generateContent body.
func encodeRequest(req *providers.ChatRequest) ([]byte, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if _, err := modelID(req.Model); err != nil {
		return nil, err
	}
	var out request
	var system []string
	names := make(map[string]string) // tool_call_id → function name, latest wins
	for i := range req.Messages {
		m := &req.Messages[i]
		p := fmt.Sprintf("messages[%d]", i)
		var role string
		var parts []part
		switch m.Role {
		case providers.RoleSystem, providers.RoleDeveloper:
			for _, pt := range m.Content.Parts {
				if pt.Type != providers.PartText {
					return nil, providers.Unsupported(Name, p+".content", "gemini system instructions take text only")
				}
			}
			if s := m.Content.String(); s != "" {
				system = append(system, s)
			}
			continue
		case providers.RoleUser:
			role = "user"
			ps, err := userParts(m.Content, p)
			if err != nil {
				return nil, err
			}
			parts = ps
		case providers.RoleAssistant:
			role = "model"
			if s := m.Content.String(); s != "" {
				parts = append(parts, part{Text: s})
			}
			for j, tc := range m.ToolCalls {
				args := json.RawMessage(strings.TrimSpace(tc.Function.Arguments))
				if len(args) == 0 {
					args = json.RawMessage("{}")
				}
				if !json.Valid(args) || args[0] != '{' {
					return nil, providers.InvalidParam(fmt.Sprintf("%s.tool_calls[%d].function.arguments", p, j), "tool call arguments must be a JSON object")
				}
				parts = append(parts, part{FunctionCall: &functionCall{Name: tc.Function.Name, Args: args}})
				names[tc.ID] = tc.Function.Name
			}
		case providers.RoleTool:
			role = "user"
			name := names[m.ToolCallID]
			if name == "" {
				name = m.Name
			}
			if name == "" {
				return nil, providers.InvalidParam(p+".tool_call_id", "tool_call_id %q matches no earlier assistant tool call; gemini needs the function name", m.ToolCallID)
			}
			parts = []part{{FunctionResponse: &functionResponse{Name: name, Response: toolResponse(m.Content)}}}
		}
		if len(parts) == 0 {
			continue
		}
		if n := len(out.Contents); n > 0 && out.Contents[n-1].Role == role {
			out.Contents[n-1].Parts = append(out.Contents[n-1].Parts, parts...)
			continue
		}
		out.Contents = append(out.Contents, content{Role: role, Parts: parts})
	}
	if len(out.Contents) == 0 {
		return nil, providers.InvalidParam("messages", "gemini needs at least one non-system message with content")
	}
	if len(system) > 0 {
		out.SystemInstruction = &content{Parts: []part{{Text: strings.Join(system, "\n\n")}}}
	}

	if len(req.Tools) > 0 {
		decls := make([]funcDecl, 0, len(req.Tools))
		for _, t := range req.Tools {
			schema := t.Function.Parameters
			if string(bytes.TrimSpace(schema)) == "null" {
				schema = nil
			}
			decls = append(decls, funcDecl{Name: t.Function.Name, Description: t.Function.Description, ParametersJSONSchema: schema})
		}
		out.Tools = []toolDecl{{FunctionDeclarations: decls}}
		if tc := req.ToolChoice; tc != nil {
			cfg := functionCallingConfig{}
			switch tc.Mode {
			case providers.ToolChoiceAuto:
				cfg.Mode = "AUTO"
			case providers.ToolChoiceNone:
				cfg.Mode = "NONE"
			case providers.ToolChoiceRequired:
				cfg.Mode = "ANY"
			case providers.ToolChoiceFunction:
				cfg.Mode = "ANY"
				cfg.AllowedFunctionNames = []string{tc.Function}
			}
			out.ToolConfig = &toolConfig{FunctionCallingConfig: cfg}
		}
	}

	g := genConfig{
		StopSequences:    req.Stop,
		Temperature:      req.Temperature,
		TopP:             req.TopP,
		PresencePenalty:  req.PresencePenalty,
		FrequencyPenalty: req.FrequencyPenalty,
		Seed:             req.Seed,
		CandidateCount:   req.N,
	}
	if n := req.MaxOutputTokens(); n > 0 {
		g.MaxOutputTokens = &n
	}
	if rf := req.ResponseFormat; rf != nil {
		switch rf.Type {
		case providers.FormatJSONObject:
			g.ResponseMimeType = "application/json"
		case providers.FormatJSONSchema:
			g.ResponseMimeType = "application/json"
			g.ResponseJSONSchema = rf.JSONSchema.Schema
		}
	}
	if len(g.StopSequences) > 0 || g.ResponseMimeType != "" || g.CandidateCount != nil || g.MaxOutputTokens != nil ||
		g.Temperature != nil || g.TopP != nil || g.PresencePenalty != nil || g.FrequencyPenalty != nil || g.Seed != nil {
		out.GenerationConfig = &g
	}

	b, err := json.Marshal(out)
	if err != nil {
		return nil, providers.InvalidParam("", "cannot encode request: %v", err)
	}
	return b, nil
}

// toolResponse wraps a tool result for functionResponse.response, which
// must be an object: a JSON object result is sent as is, anything else as
// {"result": <the JSON value, or the text as a string>}.
func toolResponse(c providers.Content) json.RawMessage {
	s := strings.TrimSpace(c.String())
	if s != "" && s[0] == '{' && json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	var v json.RawMessage
	if s != "" && json.Valid([]byte(s)) {
		v = json.RawMessage(s)
	} else {
		v, _ = json.Marshal(c.String())
	}
	b, _ := json.Marshal(map[string]json.RawMessage{"result": v})
	return b
}

// userParts translates user content into parts.
func userParts(c providers.Content, p string) ([]part, error) {
	if !c.IsParts() {
		if c.Text == "" {
			return nil, nil
		}
		return []part{{Text: c.Text}}, nil
	}
	parts := make([]part, 0, len(c.Parts))
	for j, pt := range c.Parts {
		q := fmt.Sprintf("%s.content[%d]", p, j)
		switch pt.Type {
		case providers.PartText:
			if pt.Text != "" {
				parts = append(parts, part{Text: pt.Text})
			}
		case providers.PartImageURL:
			u := pt.ImageURL.URL
			if mt, data, ok := providers.ParseDataURL(u); ok {
				parts = append(parts, part{InlineData: &blob{MimeType: mt, Data: data}})
			} else if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
				parts = append(parts, part{FileData: &fileData{MimeType: mimeFromPath(u), FileURI: u}})
			} else {
				return nil, providers.InvalidParam(q+".image_url.url", "image URL must be http(s) or a base64 data URL")
			}
		default:
			return nil, providers.Unsupported(Name, q+".type", "gemini does not take %q content parts", pt.Type)
		}
	}
	return parts, nil
}

// mimeFromPath guesses an image type from a URL's extension; "" when unsure.
func mimeFromPath(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	switch strings.ToLower(path.Ext(u)) {
	case ".png":
		return "image/png"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".gif":
		return "image/gif"
	case ".webp":
		return "image/webp"
	case ".heic":
		return "image/heic"
	}
	return ""
}
