package mockllm_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assistiv/gateway/mockllm"
)

const weatherSchema = `{"type":"object","properties":{"location":{"type":"string","minLength":3},"unit":{"type":"string","enum":["celsius","fahrenheit"]},"days":{"type":"integer","minimum":1,"maximum":7},"detailed":{"type":"boolean"}},"required":["location","unit","days"],"additionalProperties":false}`

func TestOpenAINonStreamTextAndUsage(t *testing.T) {
	e := newEnv(t, nil)
	resp := e.do(pOpenAI, request(pOpenAI, "gpt-4o", "what is the weather like", false, 0, nil), false, nil)
	body := readAll(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	v := decode(t, body)
	if path(v, "object") != "chat.completion" || path(v, "model") != "gpt-4o" {
		t.Errorf("object/model = %v/%v", path(v, "object"), path(v, "model"))
	}
	text, _ := path(v, "choices", 0, "message", "content").(string)
	if n := len(strings.Fields(text)); n != 20 {
		t.Errorf("reply has %d words, want the default 20: %q", n, text)
	}
	if got := path(v, "choices", 0, "finish_reason"); got != "stop" {
		t.Errorf("finish_reason = %v", got)
	}
	// "be brief" + "what is the weather like" = 7 words.
	if pt, ct, tt := num(path(v, "usage", "prompt_tokens")), num(path(v, "usage", "completion_tokens")), num(path(v, "usage", "total_tokens")); pt != 7 || ct != 20 || tt != 27 {
		t.Errorf("usage = %d/%d/%d, want 7/20/27", pt, ct, tt)
	}
	if !strings.HasPrefix(resp.Header.Get("X-Request-Id"), "req_") {
		t.Errorf("X-Request-Id = %q", resp.Header.Get("X-Request-Id"))
	}
}

func TestMaxTokensCapsOutput(t *testing.T) {
	e := newEnv(t, nil)
	for p := range providerNames {
		t.Run(providerNames[p], func(t *testing.T) {
			v := decode(t, readAll(t, e.do(p, request(p, "m", "hello", false, 5, nil), false, nil)))
			var text, finish string
			var ct int
			switch p {
			case pOpenAI:
				text, _ = path(v, "choices", 0, "message", "content").(string)
				finish, _ = path(v, "choices", 0, "finish_reason").(string)
				ct = num(path(v, "usage", "completion_tokens"))
			case pAnthropic:
				text, _ = path(v, "content", 0, "text").(string)
				finish, _ = path(v, "stop_reason").(string)
				ct = num(path(v, "usage", "output_tokens"))
			case pGemini:
				text, _ = path(v, "candidates", 0, "content", "parts", 0, "text").(string)
				finish, _ = path(v, "candidates", 0, "finishReason").(string)
				ct = num(path(v, "usageMetadata", "candidatesTokenCount"))
			}
			want := []string{"length", "max_tokens", "MAX_TOKENS"}[p]
			if len(strings.Fields(text)) != 5 || ct != 5 || finish != want {
				t.Errorf("text %q (%d tokens), finish %q; want 5 words, finish %q", text, ct, finish, want)
			}
		})
	}
}

func TestOpenAIStreamEventsIncrementalWithUsage(t *testing.T) {
	e := newEnv(t, func(c *mockllm.Config) { c.Tokens = 10; c.TokensPerSecond = 50 })
	start := time.Now()
	events, err := readSSE(e.do(pOpenAI, request(pOpenAI, "gpt-4o", "stream please", true, 0, nil), true, nil))
	if err != nil {
		t.Fatal(err)
	}
	// role chunk, 10 tokens, finish chunk, usage chunk, [DONE]
	if len(events) != 14 {
		t.Fatalf("got %d events, want 14", len(events))
	}
	if events[13].data != "[DONE]" {
		t.Errorf("last event %q, want [DONE]", events[13].data)
	}
	var text strings.Builder
	for i, ev := range events[:13] {
		v := jsonOf(t, ev.data)
		if path(v, "object") != "chat.completion.chunk" {
			t.Errorf("event %d object = %v", i, path(v, "object"))
		}
		switch {
		case i == 0:
			if path(v, "choices", 0, "delta", "role") != "assistant" {
				t.Errorf("first chunk has no role: %s", ev.data)
			}
		case i <= 10:
			text.WriteString(path(v, "choices", 0, "delta", "content").(string))
		case i == 11:
			if path(v, "choices", 0, "finish_reason") != "stop" {
				t.Errorf("finish chunk: %s", ev.data)
			}
		case i == 12:
			if c, _ := path(v, "choices").([]any); len(c) != 0 || num(path(v, "usage", "completion_tokens")) != 10 {
				t.Errorf("usage chunk: %s", ev.data)
			}
		}
		if i < 12 {
			if u, ok := v["usage"]; !ok || u != nil {
				t.Errorf("chunk %d: usage should be present and null: %s", i, ev.data)
			}
		}
	}
	if n := len(strings.Fields(text.String())); n != 10 {
		t.Errorf("streamed text %q has %d words", text.String(), n)
	}
	// 10 tokens at 50/s: 180ms between the first and the last token. Assert
	// only that they did not arrive together.
	spread := events[10].at.Sub(events[1].at)
	if spread < 90*time.Millisecond {
		t.Errorf("tokens arrived within %v; want them paced over ~180ms", spread)
	}
	t.Logf("token spread %v, total %v", spread, time.Since(start))

	// Without include_usage there is no usage chunk and no usage field.
	body := strings.Replace(request(pOpenAI, "gpt-4o", "stream please", true, 0, nil), `,"stream_options":{"include_usage":true}`, "", 1)
	events, err = readSSE(e.do(pOpenAI, body, true, map[string]string{"X-Mock-Tokens-Per-Second": "0"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 13 || strings.Contains(events[11].data, "usage") {
		t.Errorf("without include_usage: %d events, finish chunk %s", len(events), events[len(events)-2].data)
	}
}

func TestOpenAIStreamEqualsNonStream(t *testing.T) {
	e := newEnv(t, nil)
	v := decode(t, readAll(t, e.do(pOpenAI, request(pOpenAI, "gpt-4o", "same seed", false, 0, nil), false, nil)))
	want := path(v, "choices", 0, "message", "content").(string)
	events, err := readSSE(e.do(pOpenAI, request(pOpenAI, "gpt-4o", "same seed", true, 0, nil), true, nil))
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	for _, ev := range events {
		if ev.data == "[DONE]" {
			continue
		}
		if s, ok := path(jsonOf(t, ev.data), "choices", 0, "delta", "content").(string); ok {
			got.WriteString(s)
		}
	}
	if got.String() != want {
		t.Errorf("stream text %q != non-stream %q", got.String(), want)
	}
}

func TestAnthropicNonStream(t *testing.T) {
	e := newEnv(t, nil)
	resp := e.do(pAnthropic, request(pAnthropic, "claude-sonnet-4", "hello claude", false, 0, nil), false, nil)
	v := decode(t, readAll(t, resp))
	if path(v, "type") != "message" || path(v, "role") != "assistant" || path(v, "stop_reason") != "end_turn" {
		t.Errorf("message = %v", v)
	}
	if !strings.HasPrefix(path(v, "id").(string), "msg_") || path(v, "content", 0, "type") != "text" {
		t.Errorf("id/content = %v %v", path(v, "id"), path(v, "content"))
	}
	if num(path(v, "usage", "input_tokens")) != 4 || num(path(v, "usage", "output_tokens")) != 20 {
		t.Errorf("usage = %v", path(v, "usage"))
	}
	if resp.Header.Get("Request-Id") == "" {
		t.Error("no request-id header")
	}
}

func TestAnthropicStreamEventSequence(t *testing.T) {
	e := newEnv(t, func(c *mockllm.Config) { c.Tokens = 6; c.TokensPerSecond = 40 })
	events, err := readSSE(e.do(pAnthropic, request(pAnthropic, "claude-sonnet-4", "hello claude", true, 0, nil), true, nil))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var text strings.Builder
	for _, ev := range events {
		names = append(names, ev.name)
		v := jsonOf(t, ev.data)
		if path(v, "type") != ev.name {
			t.Errorf("event %s has data type %v", ev.name, path(v, "type"))
		}
		switch ev.name {
		case "message_start":
			if num(path(v, "message", "usage", "input_tokens")) != 4 {
				t.Errorf("message_start usage: %s", ev.data)
			}
		case "content_block_delta":
			if path(v, "delta", "type") != "text_delta" {
				t.Errorf("delta: %s", ev.data)
			}
			text.WriteString(path(v, "delta", "text").(string))
		case "message_delta":
			if num(path(v, "usage", "output_tokens")) != 6 || path(v, "delta", "stop_reason") != "end_turn" {
				t.Errorf("message_delta: %s", ev.data)
			}
		}
	}
	want := []string{"message_start", "content_block_start", "ping",
		"content_block_delta", "content_block_delta", "content_block_delta",
		"content_block_delta", "content_block_delta", "content_block_delta",
		"content_block_stop", "message_delta", "message_stop"}
	if !slices.Equal(names, want) {
		t.Errorf("events = %v\nwant %v", names, want)
	}
	if spread := events[8].at.Sub(events[3].at); spread < 60*time.Millisecond {
		t.Errorf("deltas arrived within %v; want ~125ms", spread)
	}
	if len(strings.Fields(text.String())) != 6 {
		t.Errorf("text %q", text.String())
	}
}

func TestGeminiNonStreamAndStream(t *testing.T) {
	e := newEnv(t, func(c *mockllm.Config) { c.Tokens = 5 })
	v := decode(t, readAll(t, e.do(pGemini, request(pGemini, "gemini-2.0-flash", "hi gemini", false, 0, nil), false, nil)))
	want, _ := path(v, "candidates", 0, "content", "parts", 0, "text").(string)
	if path(v, "candidates", 0, "content", "role") != "model" || path(v, "candidates", 0, "finishReason") != "STOP" {
		t.Errorf("response = %v", v)
	}
	if num(path(v, "usageMetadata", "promptTokenCount")) != 4 || num(path(v, "usageMetadata", "candidatesTokenCount")) != 5 ||
		num(path(v, "usageMetadata", "totalTokenCount")) != 9 || path(v, "modelVersion") != "gemini-2.0-flash" {
		t.Errorf("usage/model = %v %v", path(v, "usageMetadata"), path(v, "modelVersion"))
	}

	events, err := readSSE(e.do(pGemini, request(pGemini, "gemini-2.0-flash", "hi gemini", true, 0, nil), true, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 5 {
		t.Fatalf("%d chunks, want 5", len(events))
	}
	var got strings.Builder
	for i, ev := range events {
		c := jsonOf(t, ev.data)
		got.WriteString(path(c, "candidates", 0, "content", "parts", 0, "text").(string))
		if num(path(c, "usageMetadata", "candidatesTokenCount")) != i+1 || num(path(c, "usageMetadata", "promptTokenCount")) != 4 {
			t.Errorf("chunk %d usage %v", i, path(c, "usageMetadata"))
		}
		if fr := path(c, "candidates", 0, "finishReason"); (i == 4) != (fr == "STOP") {
			t.Errorf("chunk %d finishReason %v", i, fr)
		}
	}
	if got.String() != want {
		t.Errorf("stream %q != non-stream %q", got.String(), want)
	}

	// Without alt=sse the stream is a JSON array of the same responses.
	req, _ := http.NewRequest("POST", e.base+"/v1beta/models/gemini-2.0-flash:streamGenerateContent?key=AIza-q",
		strings.NewReader(request(pGemini, "gemini-2.0-flash", "hi gemini", true, 0, nil)))
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var arr []map[string]any
	if err := json.Unmarshal(readAll(t, resp), &arr); err != nil || len(arr) != 5 {
		t.Errorf("JSON array stream: %d elements, err %v", len(arr), err)
	}
}

func TestToolCallStreamReassemblesToNonStream(t *testing.T) {
	e := newEnv(t, nil)
	tools := map[string]string{"get_weather": weatherSchema}
	for p := range providerNames {
		t.Run(providerNames[p], func(t *testing.T) {
			v := decode(t, readAll(t, e.do(p, request(p, "m", "weather in Paris?", false, 0, tools), false, nil)))
			var name, args, finish string
			switch p {
			case pOpenAI:
				name, _ = path(v, "choices", 0, "message", "tool_calls", 0, "function", "name").(string)
				args, _ = path(v, "choices", 0, "message", "tool_calls", 0, "function", "arguments").(string)
				finish, _ = path(v, "choices", 0, "finish_reason").(string)
				if path(v, "choices", 0, "message", "content") != nil {
					t.Errorf("content should be null with tool calls")
				}
			case pAnthropic:
				name, _ = path(v, "content", 0, "name").(string)
				in, _ := json.Marshal(path(v, "content", 0, "input"))
				args = string(in)
				finish, _ = path(v, "stop_reason").(string)
			case pGemini:
				name, _ = path(v, "candidates", 0, "content", "parts", 0, "functionCall", "name").(string)
				in, _ := json.Marshal(path(v, "candidates", 0, "content", "parts", 0, "functionCall", "args"))
				args = string(in)
				finish, _ = path(v, "candidates", 0, "finishReason").(string)
			}
			if name != "get_weather" || finish != []string{"tool_calls", "tool_use", "STOP"}[p] {
				t.Errorf("tool %q finish %q", name, finish)
			}
			mustValidate(t, weatherSchema, []byte(args))

			events, err := readSSE(e.do(p, request(p, "m", "weather in Paris?", true, 0, tools), true, nil))
			if err != nil {
				t.Fatal(err)
			}
			var streamed strings.Builder
			deltas := 0
			for _, ev := range events {
				if ev.data == "[DONE]" {
					continue
				}
				c := jsonOf(t, ev.data)
				var frag any
				switch p {
				case pOpenAI:
					frag = path(c, "choices", 0, "delta", "tool_calls", 0, "function", "arguments")
					if path(c, "choices", 0, "delta", "tool_calls", 0, "index") == nil && frag != nil {
						t.Errorf("tool_calls delta without index: %s", ev.data)
					}
				case pAnthropic:
					if path(c, "delta", "type") == "input_json_delta" {
						frag = path(c, "delta", "partial_json")
					}
				case pGemini:
					if a := path(c, "candidates", 0, "content", "parts", 0, "functionCall", "args"); a != nil {
						b, _ := json.Marshal(a)
						frag = string(b)
					}
				}
				if s, ok := frag.(string); ok && s != "" {
					deltas++
					streamed.WriteString(s)
				}
			}
			if p != pGemini && deltas < 3 {
				t.Errorf("arguments came in %d deltas, want several", deltas)
			}
			if got := normalizeJSON(t, streamed.String()); got != normalizeJSON(t, args) {
				t.Errorf("streamed args %s != non-stream %s", got, args)
			}
		})
	}
}

func normalizeJSON(t testing.TB, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %q: %v", s, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func TestToolChoiceNamedAndNone(t *testing.T) {
	e := newEnv(t, nil)
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"tools":[` +
		`{"type":"function","function":{"name":"a","parameters":{"type":"object"}}},` +
		`{"type":"function","function":{"name":"b","parameters":{"type":"object","properties":{"q":{"type":"string"}},"required":["q"]}}}],` +
		`"tool_choice":{"type":"function","function":{"name":"b"}}}`
	v := decode(t, readAll(t, e.do(pOpenAI, body, false, nil)))
	if got := path(v, "choices", 0, "message", "tool_calls", 0, "function", "name"); got != "b" {
		t.Errorf("forced tool = %v, want b", got)
	}
	none := strings.Replace(body, `{"type":"function","function":{"name":"b"}}}`, `"none"}`, 1)
	v = decode(t, readAll(t, e.do(pOpenAI, none, false, nil)))
	if _, ok := path(v, "choices", 0, "message", "content").(string); !ok {
		t.Errorf("tool_choice none should answer text: %v", v)
	}
}

func TestToolResultIsQuoted(t *testing.T) {
	e := newEnv(t, nil)
	result := `{"temp": 21,  "sky":"clear"}`
	bodies := []string{
		`{"model":"gpt-4o","messages":[{"role":"user","content":"weather?"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"w","arguments":"{}"}}]},{"role":"tool","tool_call_id":"call_1","content":` + jsonString(result) + `}],"tools":[{"type":"function","function":{"name":"w","parameters":{"type":"object"}}}]}`,
		`{"model":"claude","max_tokens":100,"messages":[{"role":"user","content":"weather?"},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"w","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":` + jsonString(result) + `}]}],"tools":[{"name":"w","input_schema":{"type":"object"}}]}`,
		`{"contents":[{"role":"user","parts":[{"text":"weather?"}]},{"role":"model","parts":[{"functionCall":{"name":"w","args":{}}}]},{"role":"user","parts":[{"functionResponse":{"name":"w","response":` + result + `}}]}],"tools":[{"functionDeclarations":[{"name":"w"}]}]}`,
	}
	for p, body := range bodies {
		v := decode(t, readAll(t, e.do(p, body, false, nil)))
		text := []any{
			path(v, "choices", 0, "message", "content"),
			path(v, "content", 0, "text"),
			path(v, "candidates", 0, "content", "parts", 0, "text"),
		}[p]
		want := result
		if p == pGemini {
			want = `{"temp":21,"sky":"clear"}` // Gemini's response is a JSON object, compacted
		}
		if s, _ := text.(string); !strings.Contains(s, want) {
			t.Errorf("%s: reply %q does not quote the tool result %q", providerNames[p], s, want)
		}
	}
}

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }

func TestStructuredOutputValidates(t *testing.T) {
	schema := `{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":18},` +
		`"tags":{"type":"array","items":{"type":"string","enum":["a","b"]},"minItems":2},` +
		`"address":{"$ref":"#/$defs/addr"},"score":{"type":["number","null"],"maximum":0.5},` +
		`"kind":{"anyOf":[{"type":"null"},{"type":"string","enum":["x","y"]}]}},` +
		`"required":["name","age","tags","address","score","kind"],"additionalProperties":false,` +
		`"$defs":{"addr":{"type":"object","properties":{"city":{"type":"string","maxLength":3}},"required":["city"],"additionalProperties":false}}}`
	e := newEnv(t, nil)
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"give json"}],"response_format":{"type":"json_schema","json_schema":{"name":"p","strict":true,"schema":` + schema + `}}}`
	v := decode(t, readAll(t, e.do(pOpenAI, body, false, nil)))
	mustValidate(t, schema, []byte(path(v, "choices", 0, "message", "content").(string)))

	gschema := `{"type":"OBJECT","properties":{"title":{"type":"STRING"},"count":{"type":"INTEGER"},"items":{"type":"ARRAY","items":{"type":"NUMBER"}}},"required":["title","count","items"],"propertyOrdering":["title","count","items"]}`
	gbody := `{"contents":[{"parts":[{"text":"json"}]}],"generationConfig":{"responseMimeType":"application/json","responseSchema":` + gschema + `}}`
	v = decode(t, readAll(t, e.do(pGemini, gbody, false, nil)))
	out := path(v, "candidates", 0, "content", "parts", 0, "text").(string)
	mustValidate(t, gschema, []byte(out))
	if !strings.HasPrefix(out, `{"title":`) {
		t.Errorf("propertyOrdering not kept: %s", out)
	}

	jo := `{"model":"gpt-4o","messages":[{"role":"user","content":"give json"}],"response_format":{"type":"json_object"}}`
	v = decode(t, readAll(t, e.do(pOpenAI, jo, false, nil)))
	var obj map[string]any
	if err := json.Unmarshal([]byte(path(v, "choices", 0, "message", "content").(string)), &obj); err != nil {
		t.Errorf("json_object output is not an object: %v", err)
	}
}

func TestDeterministicBytes(t *testing.T) {
	e1 := newEnv(t, nil)
	e2 := newEnv(t, func(c *mockllm.Config) { c.CacheEntries = 0 })
	for p := range providerNames {
		for _, stream := range []bool{false, true} {
			body := request(p, "m", "same question", stream, 0, map[string]string{"t": weatherSchema})
			a := readAll(t, e1.do(p, body, stream, nil))
			b := readAll(t, e1.do(p, body, stream, nil)) // cached plan
			c := readAll(t, e2.do(p, body, stream, nil)) // other server, no cache
			if string(a) != string(b) || string(a) != string(c) {
				t.Errorf("%s stream=%v: replies differ:\n%s\n%s\n%s", providerNames[p], stream, a, b, c)
			}
		}
		x := decode(t, readAll(t, e1.do(p, request(p, "m", "question one", false, 0, nil), false, nil)))
		y := decode(t, readAll(t, e1.do(p, request(p, "m", "question two", false, 0, nil), false, nil)))
		if x["id"] != nil && x["id"] == y["id"] {
			t.Errorf("%s: different requests got the same id", providerNames[p])
		}
	}
}

func TestAuthFailuresUseProviderBodies(t *testing.T) {
	e := newEnv(t, func(c *mockllm.Config) { c.APIKey = "right-key" })
	cases := []struct {
		name     string
		provider int
		model    string
		hdr      map[string]string
		status   int
		check    func(map[string]any) bool
	}{
		{"openai missing", pOpenAI, "gpt-4o", map[string]string{"Authorization": ""}, 401,
			func(v map[string]any) bool {
				return path(v, "error", "type") == "invalid_request_error" && path(v, "error", "code") == nil
			}},
		{"openai wrong", pOpenAI, "gpt-4o", nil, 401,
			func(v map[string]any) bool { return path(v, "error", "code") == "invalid_api_key" }},
		{"xai wrong", pOpenAI, "grok-3", nil, 400,
			func(v map[string]any) bool {
				return v["code"] == "Client specified an invalid argument" && strings.Contains(v["error"].(string), "Incorrect API key")
			}},
		{"anthropic missing", pAnthropic, "claude", map[string]string{"X-Api-Key": ""}, 401,
			func(v map[string]any) bool {
				return v["type"] == "error" && path(v, "error", "type") == "authentication_error"
			}},
		{"anthropic wrong", pAnthropic, "claude", nil, 401,
			func(v map[string]any) bool { return path(v, "error", "message") == "invalid x-api-key" }},
		{"gemini missing", pGemini, "gemini-2.0-flash", map[string]string{"X-Goog-Api-Key": ""}, 403,
			func(v map[string]any) bool { return path(v, "error", "status") == "PERMISSION_DENIED" }},
		{"gemini wrong", pGemini, "gemini-2.0-flash", nil, 400,
			func(v map[string]any) bool {
				return path(v, "error", "status") == "INVALID_ARGUMENT" && path(v, "error", "details", 0, "reason") == "API_KEY_INVALID"
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do(tc.provider, request(tc.provider, tc.model, "hi", false, 0, nil), false, tc.hdr)
			b := readAll(t, resp)
			if resp.StatusCode != tc.status || !tc.check(decode(t, b)) {
				t.Errorf("status %d body %s", resp.StatusCode, b)
			}
		})
	}
	hdr := map[string]string{"Authorization": "Bearer right-key", "X-Api-Key": "right-key", "X-Goog-Api-Key": "right-key"}
	for p := range providerNames {
		if resp := e.do(p, request(p, "m", "hi", false, 0, nil), false, hdr); resp.StatusCode != 200 {
			t.Errorf("%s with the configured key: %d %s", providerNames[p], resp.StatusCode, readAll(t, resp))
		} else {
			readAll(t, resp)
		}
	}
	resp := e.do(pAnthropic, request(pAnthropic, "m", "hi", false, 0, nil), false, map[string]string{"X-Api-Key": "right-key", "Anthropic-Version": ""})
	if b := readAll(t, resp); resp.StatusCode != 400 || !strings.Contains(string(b), "anthropic-version") {
		t.Errorf("missing anthropic-version: %d %s", resp.StatusCode, b)
	}
	if got := e.srv.Count(mockllm.RouteGemini, mockllm.OutcomeUnauthorized); got != 2 {
		t.Errorf("gemini unauthorized count = %d, want 2", got)
	}
}
