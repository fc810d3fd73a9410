package providers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestKnownRequestFieldsMatchStructTags(t *testing.T) {
	typ := reflect.TypeOf(ChatRequest{})
	tags := map[string]bool{}
	for i := 0; i < typ.NumField(); i++ {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			tags[name] = true
		}
	}
	if !reflect.DeepEqual(tags, knownRequestFields) {
		t.Errorf("knownRequestFields = %v, struct tags = %v", knownRequestFields, tags)
	}
}

func TestContentRoundTrips(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"string", `"hello"`, `"hello"`},
		{"parts", `[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"https://x/y.png","detail":"low"}}]`,
			`[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"https://x/y.png","detail":"low"}}]`},
		{"unknown part kept", `[{"type":"input_audio","input_audio":{"data":"AAA","format":"wav"}}]`,
			`[{"type":"input_audio","input_audio":{"data":"AAA","format":"wav"}}]`},
		{"empty parts", `[]`, `[]`},
		{"null", `null`, `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Content
			if err := json.Unmarshal([]byte(tt.in), &c); err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(c)
			if err != nil || string(got) != tt.want {
				t.Errorf("Marshal(Unmarshal(%s)) = %s, %v; want %s", tt.in, got, err, tt.want)
			}
		})
	}
	var c Content
	if err := json.Unmarshal([]byte(`42`), &c); err == nil {
		t.Error("Unmarshal(42) accepted a number as content")
	}
}

func TestMessageEmptyContent(t *testing.T) {
	got, _ := json.Marshal(Message{Role: RoleAssistant, ToolCalls: []ToolCall{{ID: "c", Type: "function", Function: FunctionCall{Name: "f", Arguments: "{}"}}}})
	if !bytes.Contains(got, []byte(`"content":null`)) {
		t.Errorf("assistant tool-call message = %s, want content null", got)
	}
	got, _ = json.Marshal(Message{Role: RoleUser})
	if !bytes.Contains(got, []byte(`"content":""`)) {
		t.Errorf("empty user message = %s, want content \"\"", got)
	}
}

func TestRequestKeepsUnknownFieldsAndDropsRoutingFields(t *testing.T) {
	in := `{"model":"m","messages":[{"role":"user","content":"hi"}],"seed":3,"logprobs":true,"reasoning_effort":"low",` +
		`"api_base":"http://evil","base_url":"http://evil","api_key":"x","extra_headers":{"a":"b"}}`
	var r ChatRequest
	if err := json.Unmarshal([]byte(in), &r); err != nil {
		t.Fatal(err)
	}
	if r.Seed == nil || *r.Seed != 3 {
		t.Errorf("seed = %v, want 3", r.Seed)
	}
	out, _ := json.Marshal(r)
	for _, bad := range []string{"api_base", "base_url", "api_key", "extra_headers", "evil"} {
		if bytes.Contains(out, []byte(bad)) {
			t.Errorf("Marshal kept %q: %s", bad, out)
		}
	}
	for _, good := range []string{`"logprobs":true`, `"reasoning_effort":"low"`} {
		if !bytes.Contains(out, []byte(good)) {
			t.Errorf("Marshal lost %s: %s", good, out)
		}
	}
}

func TestStopAndToolChoiceForms(t *testing.T) {
	var r ChatRequest
	in := `{"model":"m","messages":[{"role":"user","content":"x"}],"stop":"END","tool_choice":{"type":"function","function":{"name":"f"}}}`
	if err := json.Unmarshal([]byte(in), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Stop) != 1 || r.Stop[0] != "END" || r.ToolChoice.Mode != ToolChoiceFunction || r.ToolChoice.Function != "f" {
		t.Errorf("parsed stop=%v tool_choice=%+v", r.Stop, r.ToolChoice)
	}
	if err := json.Unmarshal([]byte(`{"stop":["a","b"],"tool_choice":"required"}`), &r); err != nil || len(r.Stop) != 2 || r.ToolChoice.Mode != "required" {
		t.Errorf("array stop / string tool_choice: %v %v %+v", err, r.Stop, r.ToolChoice)
	}
}

func TestValidate(t *testing.T) {
	ok := func() ChatRequest {
		return ChatRequest{Model: "m", Messages: []Message{{Role: RoleUser, Content: TextContent("hi")}}}
	}
	one, zero, hot := 1, 0, 3.0
	tests := []struct {
		name  string
		mod   func(*ChatRequest)
		param string // "" = valid
	}{
		{"valid", func(*ChatRequest) {}, ""},
		{"missing model", func(r *ChatRequest) { r.Model = " " }, "model"},
		{"empty messages", func(r *ChatRequest) { r.Messages = nil }, "messages"},
		{"bad role", func(r *ChatRequest) { r.Messages[0].Role = "robot" }, "messages[0].role"},
		{"missing role", func(r *ChatRequest) { r.Messages[0].Role = "" }, "messages[0].role"},
		{"tool without id", func(r *ChatRequest) {
			r.Messages = append(r.Messages, Message{Role: RoleTool, Content: TextContent("x")})
		}, "messages[1].tool_call_id"},
		{"empty assistant", func(r *ChatRequest) { r.Messages = append(r.Messages, Message{Role: RoleAssistant}) }, "messages[1].content"},
		{"tool call without id", func(r *ChatRequest) {
			r.Messages = append(r.Messages, Message{Role: RoleAssistant, ToolCalls: []ToolCall{{Function: FunctionCall{Name: "f"}}}})
		}, "messages[1].tool_calls[0].id"},
		{"image without url", func(r *ChatRequest) {
			r.Messages[0].Content = PartsContent(Part{Type: PartImageURL, ImageURL: &ImageURL{}})
		}, "messages[0].content[0].image_url.url"},
		{"bad tool name", func(r *ChatRequest) { r.Tools = []Tool{{Type: "function", Function: FunctionDef{Name: "a b"}}} }, "tools[0].function.name"},
		{"bad tool type", func(r *ChatRequest) { r.Tools = []Tool{{Type: "retrieval", Function: FunctionDef{Name: "f"}}} }, "tools[0].type"},
		{"tool_choice unknown fn", func(r *ChatRequest) {
			r.Tools = []Tool{{Type: "function", Function: FunctionDef{Name: "f"}}}
			r.ToolChoice = &ToolChoice{Mode: ToolChoiceFunction, Function: "g"}
		}, "tool_choice"},
		{"required without tools", func(r *ChatRequest) { r.ToolChoice = &ToolChoice{Mode: ToolChoiceRequired} }, "tool_choice"},
		{"json_schema without schema", func(r *ChatRequest) { r.ResponseFormat = &ResponseFormat{Type: FormatJSONSchema} }, "response_format.json_schema"},
		{"bad format", func(r *ChatRequest) { r.ResponseFormat = &ResponseFormat{Type: "xml"} }, "response_format.type"},
		{"stream_options without stream", func(r *ChatRequest) { r.StreamOptions = &StreamOptions{IncludeUsage: true} }, "stream_options"},
		{"max_tokens 0", func(r *ChatRequest) { r.MaxTokens = &zero }, "max_tokens"},
		{"temperature 3", func(r *ChatRequest) { r.Temperature = &hot }, "temperature"},
		{"n 0", func(r *ChatRequest) { r.N = &zero }, "n"},
		{"n 1", func(r *ChatRequest) { r.N = &one }, ""},
		{"empty stop", func(r *ChatRequest) { r.Stop = Stop{""} }, "stop[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok()
			tt.mod(&r)
			err := r.Validate()
			if tt.param == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Param != tt.param || e.Status != 400 || !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("Validate() = %v (param %q), want 400 on %q", err, paramOf(err), tt.param)
			}
		})
	}
}

func paramOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Param
	}
	return ""
}

func TestNewUsageRejectsNegativeAndAbsurd(t *testing.T) {
	for _, c := range [][2]int64{{-1, 0}, {0, -1}, {MaxUsageTokens + 1, 0}, {0, 1 << 62}} {
		if _, err := NewUsage(c[0], c[1]); !errors.Is(err, ErrInvalidUsage) {
			t.Errorf("NewUsage(%d, %d) error = %v, want ErrInvalidUsage", c[0], c[1], err)
		}
	}
	if u, err := NewUsage(10, 5); err != nil || u.TotalTokens != 15 {
		t.Errorf("NewUsage(10, 5) = %+v, %v", u, err)
	}
}

func TestParseDataURL(t *testing.T) {
	tests := []struct{ in, mt, data string }{
		{"data:image/png;base64,AAAA", "image/png", "AAAA"},
		{"data:IMAGE/JPEG;charset=x;base64,BB", "image/jpeg", "BB"},
		{"data:image/png,AAAA", "", ""},
		{"https://x/y.png", "", ""},
		{"data:;base64,AA", "", ""},
	}
	for _, tt := range tests {
		mt, data, ok := ParseDataURL(tt.in)
		if mt != tt.mt || data != tt.data || ok != (tt.mt != "") {
			t.Errorf("ParseDataURL(%q) = %q, %q, %v", tt.in, mt, data, ok)
		}
	}
}

func TestSSEReader(t *testing.T) {
	in := ": comment\n" +
		"event: message_start\ndata: {\"a\":1}\n\n" +
		"data: line1\ndata: line2\r\n\r\n" +
		"id: 7\nretry: 100\nunknown: x\ndata:nospace\n\n" +
		"event: lonely\n\n" + // no data: not dispatched
		"data: last-without-blank-line"
	r := NewSSEReader(strings.NewReader(in), 1<<10)
	want := []Event{
		{Type: "message_start", Data: []byte(`{"a":1}`)},
		{Data: []byte("line1\nline2")},
		{ID: "7", Data: []byte("nospace")},
		{Data: []byte("last-without-blank-line")},
	}
	for i, w := range want {
		ev, err := r.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.Type != w.Type || ev.ID != w.ID || string(ev.Data) != string(w.Data) {
			t.Errorf("event %d = {%q %q %q}, want {%q %q %q}", i, ev.Type, ev.ID, ev.Data, w.Type, w.ID, w.Data)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after last event: %v, want io.EOF", err)
	}
}

func TestSSEReaderRefusesHugeLineAndEvent(t *testing.T) {
	line := "data: " + strings.Repeat("x", 4096) + "\n\n"
	if _, err := NewSSEReader(strings.NewReader(line), 1024).Next(); !errors.Is(err, ErrEventTooLarge) {
		t.Errorf("huge line: %v, want ErrEventTooLarge", err)
	}
	many := strings.Repeat("data: "+strings.Repeat("y", 100)+"\n", 20) + "\n"
	if _, err := NewSSEReader(strings.NewReader(many), 1024).Next(); !errors.Is(err, ErrEventTooLarge) {
		t.Errorf("huge event: %v, want ErrEventTooLarge", err)
	}
}

func FuzzSSEReader(f *testing.F) {
	f.Add([]byte("data: a\n\n"))
	f.Add([]byte("event: x\r\ndata: b\rdata: c\n\n: c\n"))
	f.Add([]byte("data\n\nid: \x00\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewSSEReader(bytes.NewReader(b), 1024)
		for i := 0; i < len(b)+2; i++ {
			ev, err := r.Next()
			if err != nil {
				return
			}
			if len(ev.Data) > 1024 {
				t.Fatalf("event data %d bytes over the 1024 limit", len(ev.Data))
			}
		}
		t.Fatalf("reader produced more events than input bytes")
	})
}
