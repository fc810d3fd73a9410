package edge_test

import (
	"strings"
	"testing"

	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/mockllm"
)

// Request fields the gateway does not price are refused with a 400 that
// names them, before any upstream request: a client cannot buy at the
// provider what the gateway would not bill (service_tier priority), nor
// make the provider keep the platform's data (store: true). The fields it
// forwards at catalog prices pass.
func TestUnpricedRequestFieldsAreRefused(t *testing.T) {
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 50)
	base := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],`
	for _, c := range []struct {
		extra string
		ok    bool
		names string
	}{
		{`"service_tier":"priority"`, false, "service_tier"},
		{`"service_tier":"flex"`, false, "service_tier"},
		{`"store":true`, false, "store"},
		{`"modalities":["text","audio"],"audio":{"voice":"alloy","format":"wav"}`, false, "audio"},
		{`"web_search_options":{}`, false, "web_search_options"},
		{`"functions":[{"name":"f"}]`, false, "functions"},
		{`"zz_unknown":1`, false, "zz_unknown"},
		{`"service_tier":"auto"`, true, ""},
		{`"service_tier":"default","store":false,"logprobs":true,"top_logprobs":2,"metadata":{"a":"b"}`, true, ""},
	} {
		before := e.mock.Requests()
		r := e.g.Do(t, "POST", "/v1/chat/completions", e.uk, jsonRaw(base+c.extra+`}`))
		if c.ok {
			if r.Status != 200 {
				t.Errorf("%s: %d %s, want 200", c.extra, r.Status, r.Body)
			}
			continue
		}
		if r.Status != 400 || !strings.Contains(string(r.Body), c.names) {
			t.Errorf("%s: %d %s, want a 400 naming %s", c.extra, r.Status, r.Body, c.names)
		}
		if e.mock.Requests() != before {
			t.Errorf("%s: the refused request reached the upstream", c.extra)
		}
	}
}

// A model of a provider the platform has not enabled is a 400
// provider_not_enabled, not a 500.
func TestModelOfADisabledProviderIs400(t *testing.T) {
	e := newInferenceEnv(t, mockllm.DefaultConfig(), 50)
	if r := e.g.Do(t, "PUT", "/admin/v1/platforms/"+e.pid+"/llm-providers/google", edgetest.AdminKey, map[string]any{"enabled": false}); r.Status != 200 {
		t.Fatalf("disable google: %d %s", r.Status, r.Body)
	}
	r := e.g.Do(t, "POST", "/v1/chat/completions", e.uk, jsonRaw(`{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}]}`))
	if r.Status != 400 || r.ErrorCode() != "provider_not_enabled" {
		t.Fatalf("disabled provider: %d %s, want 400 provider_not_enabled", r.Status, r.Body)
	}
}
