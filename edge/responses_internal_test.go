package edge

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/assistiv/gateway/providers"
)

func TestInputMessagesTranslatesEveryItemKind(t *testing.T) {
	for _, c := range []struct {
		name  string
		input string
		want  string // the messages as JSON
		err   string // error code, when it must fail
	}{
		{name: "string", input: `"hi"`, want: `[{"role":"user","content":"hi"}]`},
		{name: "easy message", input: `[{"role":"user","content":"hi"}]`, want: `[{"role":"user","content":"hi"}]`},
		{
			name:  "text and image parts",
			input: `[{"type":"message","role":"user","content":[{"type":"input_text","text":"what is this"},{"type":"input_image","image_url":"data:image/png;base64,AA==","detail":"low"}]}]`,
			want:  `[{"role":"user","content":[{"type":"text","text":"what is this"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA==","detail":"low"}}]}]`,
		},
		{
			name:  "replayed output message and its call join",
			input: `[{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Checking.","annotations":[]}]},{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c1","output":"ok"}]`,
			want:  `[{"role":"assistant","content":"Checking.","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","content":"ok","tool_call_id":"c1"}]`,
		},
		{
			name:  "consecutive calls after a user turn",
			input: `[{"role":"user","content":"go"},{"type":"function_call","call_id":"a","name":"f","arguments":"1"},{"type":"function_call","call_id":"b","name":"g","arguments":"2"}]`,
			want:  `[{"role":"user","content":"go"},{"role":"assistant","content":null,"tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"1"}},{"id":"b","type":"function","function":{"name":"g","arguments":"2"}}]}]`,
		},
		{
			name:  "output as parts",
			input: `[{"type":"function_call_output","call_id":"c1","output":[{"type":"input_text","text":"a"},{"type":"input_text","text":"b"}]}]`,
			want:  `[{"role":"tool","content":"ab","tool_call_id":"c1"}]`,
		},
		{name: "image in a system message", input: `[{"role":"system","content":[{"type":"input_image","image_url":"https://x/y.png"}]}]`, err: "invalid_input"},
		{
			name:  "item references resolve to the stored items, typed or bare",
			input: `[{"role":"user","content":"weather?"},{"type":"item_reference","id":"msg_stored"},{"id":"fc_stored"},{"type":"function_call_output","call_id":"c9","output":"sunny"}]`,
			want:  `[{"role":"user","content":"weather?"},{"role":"assistant","content":"Let me check.","tool_calls":[{"id":"c9","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},{"role":"tool","content":"sunny","tool_call_id":"c9"}]`,
		},
		{name: "unknown item reference", input: `[{"type":"item_reference","id":"msg_unknown"}]`, err: "item_not_found"},
		{name: "item reference without id", input: `[{"type":"item_reference"}]`, err: "invalid_input"},
		{name: "call without id", input: `[{"type":"function_call","name":"f"}]`, err: "invalid_input"},
		{name: "tool role", input: `[{"role":"tool","content":"x"}]`, err: "invalid_input"},
		{name: "object", input: `{"role":"user"}`, err: "invalid_input"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := inputMessages(json.RawMessage(c.input), storedItems)
			if c.err != "" {
				if ae, ok := err.(*apiError); !ok || ae.Code != c.err {
					t.Fatalf("inputMessages(%s) = %v, want error %s", c.input, err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("inputMessages(%s): %v", c.input, err)
			}
			b, _ := json.Marshal(got)
			if string(b) != c.want {
				t.Fatalf("inputMessages(%s)\n got %s\nwant %s", c.input, b, c.want)
			}
		})
	}
}

// storedItems resolves the two items the translation test references, as
// a stored response's output items are recorded (outputItem's JSON).
func storedItems(id string) (json.RawMessage, error) {
	items := map[string]outputItem{
		"msg_stored": {Type: "message", ID: "msg_stored", Status: statusCompleted, Content: []outputContent{{Type: "output_text", Text: "Let me check."}}},
		"fc_stored":  {Type: "function_call", ID: "fc_stored", Status: statusCompleted, CallID: "c9", Name: "get_weather", Arguments: `{"city":"Paris"}`},
	}
	it, ok := items[id]
	if !ok {
		return nil, errItemNotFound(-1, id)
	}
	return json.Marshal(it)
}

// eventTypes splits an SSE buffer into its event types, checking that each
// event's data names the same type and that sequence numbers count up.
func eventTypes(t *testing.T, buf []byte) []string {
	t.Helper()
	var out []string
	for i, block := range bytes.Split(bytes.TrimSpace(buf), []byte("\n\n")) {
		name, data, ok := strings.Cut(string(block), "\n")
		if !ok || !strings.HasPrefix(name, "event: ") || !strings.HasPrefix(data, "data: ") {
			t.Fatalf("malformed event %q", block)
		}
		var ev struct {
			Type string `json:"type"`
			Seq  int    `json:"sequence_number"`
		}
		if err := json.Unmarshal([]byte(data[6:]), &ev); err != nil || ev.Type != name[7:] || ev.Seq != i {
			t.Fatalf("event %d: %q (%v)", i, block, err)
		}
		out = append(out, ev.Type)
	}
	return out
}

func textChunk(s string) *providers.ChatChunk {
	return &providers.ChatChunk{Choices: []providers.ChunkChoice{{Delta: providers.Delta{Content: &s}}}}
}

func callChunk(id, name, args string) *providers.ChatChunk {
	return &providers.ChatChunk{Choices: []providers.ChunkChoice{{Delta: providers.Delta{ToolCalls: []providers.ToolCallDelta{
		{ID: id, Type: "function", Function: providers.FunctionCall{Name: name, Arguments: args}},
	}}}}}
}

func TestResponseEventsCloseTheMessageWhenACallStarts(t *testing.T) {
	obj := newResponseObject(&responsesRequest{}, "resp_x", "m", time.Unix(1, 0), true)
	ev := newResponseEvents(obj, time.Now)
	ev.begin()
	ev.chunk(textChunk("Let me "))
	ev.chunk(textChunk("check."))
	ev.chunk(callChunk("call_1", "get_weather", `{"ci`))
	ev.chunk(callChunk("", "", `ty":"Paris"}`))
	ev.chunk(&providers.ChatChunk{Choices: []providers.ChunkChoice{{FinishReason: providers.FinishToolCalls}}})
	ev.closeItem()
	obj.finishStatus(ev.finish)
	ev.end()
	want := []string{
		"response.created", "response.in_progress",
		"response.output_item.added", "response.content_part.added", "response.output_text.delta", "response.output_text.delta",
		"response.output_text.done", "response.content_part.done", "response.output_item.done",
		"response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.delta",
		"response.function_call_arguments.done", "response.output_item.done",
		"response.completed",
	}
	if got := eventTypes(t, ev.buf); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("events\n got %v\nwant %v", got, want)
	}
	if len(obj.Output) != 2 || obj.Output[0].Content[0].Text != "Let me check." || obj.Output[1].Arguments != `{"city":"Paris"}` ||
		obj.Output[1].CallID != "call_1" || obj.Output[0].Status != statusCompleted || obj.Output[1].Status != statusCompleted || obj.Status != statusCompleted {
		t.Fatalf("final object: %+v", obj)
	}
	m := obj.assistantMessage()
	if m.Content.Text != "Let me check." || len(m.ToolCalls) != 1 || m.ToolCalls[0].ID != "call_1" {
		t.Fatalf("assistantMessage() = %+v", m)
	}
	if ev.produced != int64(len("Let me check.")+len("get_weather")+len(`{"city":"Paris"}`)) {
		t.Fatalf("produced = %d", ev.produced)
	}
}

func TestResponseEventsFailureEndsWithErrorThenResponseFailed(t *testing.T) {
	obj := newResponseObject(&responsesRequest{}, "resp_x", "m", time.Unix(1, 0), true)
	ev := newResponseEvents(obj, time.Now)
	ev.begin()
	ev.chunk(textChunk("half"))
	obj.fail(&apiError{Status: 502, Code: "upstream_error", Message: "the upstream stream ended early"})
	ev.failed(&apiError{Status: 502, Code: "upstream_error", Message: "the upstream stream ended early"})
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	if !ev.flush(w) {
		t.Fatal("flush failed")
	}
	got := eventTypes(t, out.Bytes())
	if tail := strings.Join(got[len(got)-3:], " "); tail != "response.output_text.delta error response.failed" {
		t.Fatalf("events end with %s", tail)
	}
	if obj.Status != statusFailed || obj.Error == nil || obj.Error.Code != "server_error" || obj.Output[0].Status != statusIncomplete {
		t.Fatalf("failed object: %+v", obj)
	}
}

func TestResponseEventsLengthStopIsIncomplete(t *testing.T) {
	obj := newResponseObject(&responsesRequest{}, "resp_x", "m", time.Unix(1, 0), true)
	ev := newResponseEvents(obj, time.Now)
	ev.chunk(textChunk("cut"))
	ev.chunk(&providers.ChatChunk{Choices: []providers.ChunkChoice{{FinishReason: providers.FinishLength}}})
	ev.closeItem()
	obj.finishStatus(ev.finish)
	ev.end()
	got := eventTypes(t, ev.buf)
	if got[len(got)-1] != "response.incomplete" || obj.IncompleteDetails == nil || obj.IncompleteDetails.Reason != "max_output_tokens" {
		t.Fatalf("events %v, object %+v", got, obj)
	}
}
