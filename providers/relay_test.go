package providers

import (
	"encoding/json"
	"reflect"
	"testing"
)

func parseRequest(t testing.TB, body string) *ChatRequest {
	t.Helper()
	var r ChatRequest
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	r.Body = []byte(body)
	return &r
}

func TestRelayBodySendsTheClientsBytesOnlyWhenNothingChanged(t *testing.T) {
	const msgs = `"messages":[{"role":"user","content":"hi","zz_nested":1}]`
	for _, c := range []struct {
		name, body string
		rename     bool
		edit       func(*ChatRequest)
		want       string // "" when the body must be encoded instead
	}{
		{name: "plain", body: `{"model":"gpt-4o-mini",` + msgs + `,"temperature":0.2,"logprobs":true}`,
			want: `{"model":"gpt-4o-mini",` + msgs + `,"temperature":0.2,"logprobs":true}`},
		{name: "stream false", body: `{"stream":false,"model":"gpt-4o-mini",` + msgs + `}`,
			want: `{"stream":false,"model":"gpt-4o-mini",` + msgs + `}`},
		{name: "max_tokens renamed", body: `{"model":"gpt-4o-mini",` + msgs + `, "max_tokens" : 64}`, rename: true,
			want: `{"model":"gpt-4o-mini",` + msgs + `, "max_completion_tokens" : 64}`},
		{name: "max_tokens kept without rename", body: `{"model":"gpt-4o-mini",` + msgs + `,"max_tokens":64}`,
			want: `{"model":"gpt-4o-mini",` + msgs + `,"max_tokens":64}`},
		{name: "both bounds: none renamed", body: `{"model":"m",` + msgs + `,"max_tokens":8,"max_completion_tokens":9}`, rename: true,
			want: `{"model":"m",` + msgs + `,"max_tokens":8,"max_completion_tokens":9}`},
		{name: "model rewritten (alias)", body: `{"model":"openai/gpt-4o-mini",` + msgs + `}`,
			edit: func(r *ChatRequest) { r.Model = "gpt-4o-mini" }},
		{name: "max_tokens clamped", body: `{"model":"m",` + msgs + `,"max_tokens":99999999}`,
			edit: func(r *ChatRequest) { v := 100; r.MaxTokens = &v }},
		{name: "bound added", body: `{"model":"m",` + msgs + `}`,
			edit: func(r *ChatRequest) { v := 100; r.MaxTokens = &v }},
		{name: "escaped key renamed", body: `{"model":"m",` + msgs + `,"max_tok\u0065ns":5}`, rename: true},
		{name: "escaped model", body: `{"model":"\u006d",` + msgs + `}`},
		{name: "dropped field", body: `{"model":"m",` + msgs + `,"api_base":"http://evil"}`},
		{name: "dropped field escaped", body: `{"model":"m",` + msgs + `,"api_b\u0061se":"http://evil"}`},
		{name: "duplicate key", body: `{"model":"m",` + msgs + `,"model":"m"}`},
		{name: "duplicate extra", body: `{"model":"m",` + msgs + `,"x_a":1,"x_a":2}`},
		{name: "stream true", body: `{"model":"m",` + msgs + `,"stream":true}`},
		{name: "stream_options", body: `{"model":"m",` + msgs + `,"stream_options":{"include_usage":true}}`},
		{name: "null bound", body: `{"model":"m",` + msgs + `,"max_tokens":null}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := parseRequest(t, c.body)
			if c.edit != nil {
				c.edit(r)
			}
			got, ok := r.RelayBody(r.Model, c.rename)
			if c.want == "" {
				if ok {
					t.Fatalf("relayed %s; want it encoded", got)
				}
				return
			}
			if !ok || string(got) != c.want {
				t.Fatalf("RelayBody = %s, %v; want %s", got, ok, c.want)
			}
		})
	}
}

// FuzzRelayBody: whenever RelayBody relays a parsed request's bytes, they
// decode to exactly the request the encoder would have described (the
// rename applied), so an upstream cannot see anything else than what was
// validated and billed.
func FuzzRelayBody(f *testing.F) {
	for _, s := range []string{
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":64}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"n":2,"stop":"s","x_extra":{"a":[1]}}`,
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":3,"stream":false,"user":"u"}`,
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":1,"max_tokens":2}`,
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, body []byte, rename bool) {
		var r ChatRequest
		if json.Unmarshal(body, &r) != nil || r.Validate() != nil {
			return
		}
		r.Body = body
		out, ok := r.RelayBody(r.Model, rename)
		if !ok {
			return
		}
		want := r
		want.Body = nil
		if rename && want.MaxTokens != nil && want.MaxCompletionTokens == nil {
			want.MaxCompletionTokens, want.MaxTokens = want.MaxTokens, nil
		}
		var got ChatRequest
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("relayed body does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("relayed body says\n%+v\nwant\n%+v\nbody %s", got, want, out)
		}
	})
}

func TestRelayedAnswerReadsUsageOnly(t *testing.T) {
	const choices = `"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]`
	for _, c := range []struct {
		name, body string
		ok         bool
		usage      Usage
	}{
		{"openai answer", `{"id":"c","object":"chat.completion",` + choices + `,"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":0}}}`, true, Usage{5, 7, 12}},
		{"no usage", `{"object":"chat.completion",` + choices + `}`, false, Usage{}},
		{"no object", `{` + choices + `,"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`, false, Usage{}},
		{"total does not add up", `{"object":"chat.completion",` + choices + `,"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":9}}`, false, Usage{}},
		{"negative", `{"object":"chat.completion",` + choices + `,"usage":{"prompt_tokens":-1,"completion_tokens":1,"total_tokens":0}}`, false, Usage{}},
		{"too large", `{"object":"chat.completion",` + choices + `,"usage":{"prompt_tokens":1,"completion_tokens":2000000000,"total_tokens":2000000001}}`, false, Usage{}},
		{"usage twice", `{"object":"chat.completion",` + choices + `,"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2},"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18}}`, false, Usage{}},
		{"choices not an array", `{"object":"chat.completion","choices":null,"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`, false, Usage{}},
		{"invalid JSON", `{"object":"chat.completion",` + choices + `,"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}`, false, Usage{}},
		{"invalid JSON inside choices", `{"object":"chat.completion","choices":[{,}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`, false, Usage{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, ok := RelayedAnswer([]byte(c.body))
			if ok != c.ok {
				t.Fatalf("RelayedAnswer ok = %v, want %v", ok, c.ok)
			}
			if !ok {
				return
			}
			if string(r.Raw) != c.body || r.Usage == nil || *r.Usage != c.usage || r.Choices != nil {
				t.Fatalf("RelayedAnswer = raw %q usage %+v choices %v", r.Raw, r.Usage, r.Choices)
			}
		})
	}
}
