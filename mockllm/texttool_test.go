package mockllm_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/assistiv/gateway/mockllm"
)

// turn is a reply reduced to what a client assembles: the text said, the
// tool called with its arguments, and the completion tokens reported.
type turn struct {
	text, tool, args string
	completion       int
	textBeforeCall   bool // every text byte arrived before the call started
}

// nonStreamTurn reads a non-streaming reply of provider p.
func nonStreamTurn(t *testing.T, p int, v map[string]any) turn {
	t.Helper()
	var tr turn
	switch p {
	case pOpenAI:
		tr.text, _ = path(v, "choices", 0, "message", "content").(string)
		tr.tool, _ = path(v, "choices", 0, "message", "tool_calls", 0, "function", "name").(string)
		tr.args, _ = path(v, "choices", 0, "message", "tool_calls", 0, "function", "arguments").(string)
		tr.completion = num(path(v, "usage", "completion_tokens"))
	case pAnthropic:
		blocks, _ := path(v, "content").([]any)
		for _, b := range blocks {
			switch path(b, "type") {
			case "text":
				tr.text, _ = path(b, "text").(string)
			case "tool_use":
				tr.tool, _ = path(b, "name").(string)
				in, _ := json.Marshal(path(b, "input"))
				tr.args = string(in)
			}
		}
		tr.completion = num(path(v, "usage", "output_tokens"))
	case pGemini:
		parts, _ := path(v, "candidates", 0, "content", "parts").([]any)
		for _, part := range parts {
			if s, ok := path(part, "text").(string); ok {
				tr.text = s
			}
			if fc := path(part, "functionCall"); fc != nil {
				tr.tool, _ = path(fc, "name").(string)
				in, _ := json.Marshal(path(fc, "args"))
				tr.args = string(in)
			}
		}
		tr.completion = num(path(v, "usageMetadata", "candidatesTokenCount"))
	}
	tr.textBeforeCall = true
	return tr
}

// streamTurn assembles a streamed reply of provider p.
func streamTurn(t *testing.T, p int, events []sseEvent) turn {
	t.Helper()
	var tr turn
	var text, args strings.Builder
	tr.textBeforeCall = true
	called := false
	for _, ev := range events {
		if ev.data == "[DONE]" {
			continue
		}
		c := jsonOf(t, ev.data)
		var frag, argFrag string
		switch p {
		case pOpenAI:
			frag, _ = path(c, "choices", 0, "delta", "content").(string)
			if n, ok := path(c, "choices", 0, "delta", "tool_calls", 0, "function", "name").(string); ok {
				tr.tool, called = n, true
			}
			argFrag, _ = path(c, "choices", 0, "delta", "tool_calls", 0, "function", "arguments").(string)
			if u := path(c, "usage", "completion_tokens"); u != nil {
				tr.completion = num(u)
			}
		case pAnthropic:
			if n, ok := path(c, "content_block", "name").(string); ok {
				tr.tool, called = n, true
			}
			switch path(c, "delta", "type") {
			case "text_delta":
				frag, _ = path(c, "delta", "text").(string)
			case "input_json_delta":
				argFrag, _ = path(c, "delta", "partial_json").(string)
			}
			if u := path(c, "usage", "output_tokens"); u != nil && path(c, "type") == "message_delta" {
				tr.completion = num(u)
			}
		case pGemini:
			for i := 0; i < 2; i++ {
				if s, ok := path(c, "candidates", 0, "content", "parts", i, "text").(string); ok {
					frag += s
				}
				if fc := path(c, "candidates", 0, "content", "parts", i, "functionCall"); fc != nil {
					tr.tool, called = path(fc, "name").(string)
					b, _ := json.Marshal(path(fc, "args"))
					argFrag = string(b)
				}
			}
			tr.completion = num(path(c, "usageMetadata", "candidatesTokenCount"))
		}
		if frag != "" && called {
			tr.textBeforeCall = false
		}
		text.WriteString(frag)
		args.WriteString(argFrag)
	}
	tr.text, tr.args = text.String(), args.String()
	return tr
}

// TestTextAndToolInOneTurn: with the knob (header, model directive or
// config), a tool-call reply opens with a sentence of text in every wire
// format, streamed the way the provider streams it (text first), with the
// same text, call and usage streamed or not; without it, the call is alone.
func TestTextAndToolInOneTurn(t *testing.T) {
	tools := map[string]string{"get_weather": weatherSchema}
	byConfig := newEnv(t, func(c *mockllm.Config) { c.TextAndTool = true })
	plain := newEnv(t, nil)
	cases := []struct {
		name  string
		e     *env
		model string
		hdr   map[string]string
		want  bool
	}{
		{"header", plain, "m", map[string]string{mockllm.HeaderTextTool: "true"}, true},
		{"directive", plain, "m-mock-text-and-tool", nil, true},
		{"xai directive", plain, "grok-3-mock-text-and-tool", nil, true},
		{"config", byConfig, "m", nil, true},
		{"header off over config", byConfig, "m", map[string]string{mockllm.HeaderTextTool: "0"}, false},
		{"off", plain, "m", nil, false},
	}
	for _, c := range cases {
		for p := range providerNames {
			if strings.HasPrefix(c.model, "grok") && p != pOpenAI {
				continue
			}
			t.Run(c.name+"/"+providerNames[p], func(t *testing.T) {
				body := request(p, c.model, "weather in Paris?", false, 0, tools)
				whole := nonStreamTurn(t, p, decode(t, readAll(t, c.e.do(p, body, false, c.hdr))))
				events, err := readSSE(c.e.do(p, request(p, c.model, "weather in Paris?", true, 0, tools), true, c.hdr))
				if err != nil {
					t.Fatal(err)
				}
				streamed := streamTurn(t, p, events)
				for _, tr := range []turn{whole, streamed} {
					if tr.tool != "get_weather" {
						t.Fatalf("no call to get_weather: %+v", tr)
					}
					mustValidate(t, weatherSchema, []byte(tr.args))
					if c.want != (tr.text != "") {
						t.Fatalf("text %q, want text: %v", tr.text, c.want)
					}
					if !tr.textBeforeCall {
						t.Fatalf("text arrived after the call started: %+v", tr)
					}
				}
				if streamed.text != whole.text || normalizeJSON(t, streamed.args) != normalizeJSON(t, whole.args) {
					t.Fatalf("streamed %+v != whole %+v", streamed, whole)
				}
				if c.want {
					words := len(strings.Fields(whole.text))
					if words < 1 || !strings.HasSuffix(whole.text, ".") {
						t.Fatalf("text %q is not a sentence", whole.text)
					}
					// The text's words are billed as output on top of the
					// call's, in both forms.
					plainBody := request(p, strings.ReplaceAll(c.model, "-mock-text-and-tool", ""), "weather in Paris?", false, 0, tools)
					alone := nonStreamTurn(t, p, decode(t, readAll(t, plain.do(p, plainBody, false, nil))))
					if whole.completion != alone.completion+words || streamed.completion != whole.completion {
						t.Fatalf("completion tokens: text+call %d streamed %d, call alone %d, text words %d", whole.completion, streamed.completion, alone.completion, words)
					}
				}
			})
		}
	}
	// A forced call (named tool choice) starts with the call, text or not,
	// as Claude does when the turn is prefilled.
	for p := range providerNames {
		body := request(p, "m", "weather in Paris?", false, 0, tools)
		switch p {
		case pOpenAI:
			body = strings.Replace(body, `"tools":`, `"tool_choice":{"type":"function","function":{"name":"get_weather"}},"tools":`, 1)
		case pAnthropic:
			body = strings.Replace(body, `"tools":`, `"tool_choice":{"type":"tool","name":"get_weather"},"tools":`, 1)
		case pGemini:
			body = strings.Replace(body, `"tools":`, `"toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["get_weather"]}},"tools":`, 1)
		}
		if tr := nonStreamTurn(t, p, decode(t, readAll(t, byConfig.do(p, body, false, nil)))); tr.tool != "get_weather" || tr.text != "" {
			t.Errorf("%s forced call: %+v (body %s)", providerNames[p], tr, body)
		}
	}
	// A bad header value is the provider's 400.
	r := plain.do(pOpenAI, request(pOpenAI, "m", "x", false, 0, tools), false, map[string]string{mockllm.HeaderTextTool: "perhaps"})
	if b := readAll(t, r); r.StatusCode != 400 || !strings.Contains(string(b), mockllm.HeaderTextTool) {
		t.Fatalf("bad %s: %d %s", mockllm.HeaderTextTool, r.StatusCode, b)
	}
}
