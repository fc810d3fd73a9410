package edge_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/assistiv/gateway/mockllm"
)

// fieldFate is what the gateway does today with one Chat Completions
// request field for one provider, as seen in the upstream request body.
type fieldFate struct {
	kind string // "sent" (translated or forwarded), "dropped", "refused"
	want string // for sent: a substring of the upstream body; for dropped: a substring that must be absent
}

func sent(s string) fieldFate    { return fieldFate{"sent", s} }
func dropped(s string) fieldFate { return fieldFate{"dropped", s} }

var refused = fieldFate{kind: "refused"}

// TestChatCompletionsFieldFatePerProvider pins the Chat Completions audit
// of README's "Chat Completions request fields" table as it stands: which
// fields each provider's translation sends (as is or translated), which it
// drops, and which it refuses with a 400 naming the field. Fields marked
// dropped are the ones the request-field allowlist is to decide on.
func TestChatCompletionsFieldFatePerProvider(t *testing.T) {
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 50)
	tools := `,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{}}}}]`
	cases := []struct {
		field, extra string
		fate         map[string]fieldFate // by provider
	}{
		{"temperature", `"temperature":1.5`, map[string]fieldFate{
			"openai": sent(`"temperature":1.5`), "xai": sent(`"temperature":1.5`), "anthropic": sent(`"temperature":1`), "google": sent(`"temperature":1.5`)}},
		{"top_p", `"top_p":0.5`, map[string]fieldFate{
			"openai": sent(`"top_p":0.5`), "xai": sent(`"top_p":0.5`), "anthropic": sent(`"top_p":0.5`), "google": sent(`"topP":0.5`)}},
		{"stop", `"stop":["ZZEND"]`, map[string]fieldFate{
			"openai": sent(`"stop":["ZZEND"]`), "xai": sent(`"stop":["ZZEND"]`), "anthropic": sent(`"stop_sequences":["ZZEND"]`), "google": sent(`"stopSequences":["ZZEND"]`)}},
		{"max_tokens", `"max_tokens":7`, map[string]fieldFate{
			"openai": sent(`"max_completion_tokens":7`), "xai": sent(`"max_tokens":7`), "anthropic": sent(`"max_tokens":7`), "google": sent(`"maxOutputTokens":7`)}},
		{"max_completion_tokens", `"max_completion_tokens":7`, map[string]fieldFate{
			"openai": sent(`"max_completion_tokens":7`), "xai": sent(`"max_completion_tokens":7`), "anthropic": sent(`"max_tokens":7`), "google": sent(`"maxOutputTokens":7`)}},
		{"seed", `"seed":4242`, map[string]fieldFate{
			"openai": sent(`"seed":4242`), "xai": sent(`"seed":4242`), "anthropic": dropped(`4242`), "google": sent(`"seed":4242`)}},
		{"presence_penalty", `"presence_penalty":0.25`, map[string]fieldFate{
			"openai": sent(`"presence_penalty":0.25`), "xai": sent(`"presence_penalty":0.25`), "anthropic": dropped(`0.25`), "google": sent(`"presencePenalty":0.25`)}},
		{"frequency_penalty", `"frequency_penalty":0.25`, map[string]fieldFate{
			"openai": sent(`"frequency_penalty":0.25`), "xai": sent(`"frequency_penalty":0.25`), "anthropic": dropped(`0.25`), "google": sent(`"frequencyPenalty":0.25`)}},
		{"user", `"user":"zz-user-9"`, map[string]fieldFate{
			"openai": sent(`"user":"zz-user-9"`), "xai": sent(`"user":"zz-user-9"`), "anthropic": sent(`"user_id":"zz-user-9"`), "google": dropped(`zz-user-9`)}},
		{"n", `"n":2`, map[string]fieldFate{
			"openai": sent(`"n":2`), "xai": sent(`"n":2`), "anthropic": refused, "google": sent(`"candidateCount":2`)}},
		{"parallel_tool_calls", `"parallel_tool_calls":false` + tools, map[string]fieldFate{
			"openai": sent(`"parallel_tool_calls":false`), "xai": sent(`"parallel_tool_calls":false`), "anthropic": sent(`"disable_parallel_tool_use":true`), "google": dropped(`parallel`)}},
		{"logprobs (unmodelled)", `"logprobs":true,"top_logprobs":2`, map[string]fieldFate{
			"openai": sent(`"logprobs":true`), "xai": sent(`"logprobs":true`), "anthropic": dropped(`logprobs`), "google": dropped(`logprobs`)}},
		{"reasoning_effort (unmodelled)", `"reasoning_effort":"low"`, map[string]fieldFate{
			"openai": sent(`"reasoning_effort":"low"`), "xai": sent(`"reasoning_effort":"low"`), "anthropic": dropped(`reasoning_effort`), "google": dropped(`reasoning_effort`)}},
	}
	for i, c := range cases {
		marker := "field check " + strconv.Itoa(i)
		for _, pm := range providerModels {
			f := c.fate[pm.provider]
			body := `{"model":"` + pm.model + `","messages":[{"role":"user","content":"` + marker + `"}],` + c.extra + `}`
			if !json.Valid([]byte(body)) {
				t.Fatalf("%s: bad test body %s", c.field, body)
			}
			before := e.mock.Requests()
			r := e.g.Do(t, "POST", "/v1/chat/completions", e.uk, body)
			if f.kind == "refused" {
				if r.Status != 400 || !strings.Contains(string(r.Body), strings.Fields(c.field)[0]) || e.mock.Requests() != before {
					t.Errorf("%s on %s: %d %s, want a 400 naming it before any upstream call", c.field, pm.provider, r.Status, r.Body)
				}
				continue
			}
			if r.Status != 200 {
				t.Errorf("%s on %s: %d %s", c.field, pm.provider, r.Status, r.Body)
				continue
			}
			up := lastUpstreamBody(t, e.mock, routeOf(pm.provider))
			if !strings.Contains(up, marker) {
				t.Fatalf("%s on %s: the last upstream body is another request's: %s", c.field, pm.provider, up)
			}
			if has := strings.Contains(up, f.want); has != (f.kind == "sent") {
				t.Errorf("%s on %s: %s %q, upstream body %s", c.field, pm.provider, f.kind, f.want, up)
			}
		}
	}
}
