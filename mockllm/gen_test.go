package mockllm

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestWordPiecesRejoinExactly(t *testing.T) {
	for _, s := range []string{"", "one", "  lead and trail  ", "a\nb\t c", `{"k": 1,  "v": "x y"}`} {
		pieces, cut := wordPieces(s, 0)
		if strings.Join(pieces, "") != s || cut {
			t.Errorf("wordPieces(%q) = %q, cut %v", s, pieces, cut)
		}
		if s != "" && len(pieces) != max(countWords(s), 1) {
			t.Errorf("wordPieces(%q): %d pieces for %d words", s, len(pieces), countWords(s))
		}
	}
	if p, cut := wordPieces("a b c d", 2); len(p) != 2 || !cut {
		t.Errorf("wordPieces capped = %q, %v", p, cut)
	}
}

func TestFragmentsRespectRunesAndMax(t *testing.T) {
	for _, tc := range []struct {
		s    string
		max  int
		want int
	}{
		{`{"a":"b"}`, 0, 2}, {strings.Repeat("x", 80), 0, 10}, {strings.Repeat("x", 80), 3, 3}, {"héllo wörld ünïcode", 0, 3}, {"", 0, 1},
	} {
		got := fragments(tc.s, tc.max)
		if len(got) != tc.want || strings.Join(got, "") != tc.s {
			t.Errorf("fragments(%q, %d) = %q, want %d pieces", tc.s, tc.max, got, tc.want)
		}
		for _, g := range got {
			if !json.Valid(appendJSONString(nil, g)) || strings.ContainsRune(g, '\uFFFD') {
				t.Errorf("fragments(%q) split a rune: %q", tc.s, g)
			}
		}
	}
}

func TestAppendJSONStringMatchesDecoder(t *testing.T) {
	for _, s := range []string{"plain", `q"uote\back`, "ctl\x00\x1f\n\r\t", "é ☃ \u2028", "bad\xffutf8"} {
		var back string
		if err := json.Unmarshal(appendJSONString(nil, s), &back); err != nil {
			t.Errorf("appendJSONString(%q) invalid: %v", s, err)
			continue
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); back != want {
			t.Errorf("appendJSONString(%q) round-trips to %q", s, back)
		}
	}
}

func TestParseDirectives(t *testing.T) {
	for _, tc := range []struct {
		model string
		want  directives
		err   bool
	}{
		{"gpt-4o", noDirectives(), false},
		{"mock-model", noDirectives(), false},
		{"mock-error-429", func() directives { d := noDirectives(); d.fault = fault{faultStatus, 429}; return d }(), false},
		{"mock-hang", func() directives { d := noDirectives(); d.fault = fault{kind: faultHang}; return d }(), false},
		{"x-mock-malformed-stream", func() directives { d := noDirectives(); d.fault = fault{kind: faultMalformed}; return d }(), false},
		{"gpt-4o-mock-tokens-5-mock-latency-200ms-mock-tps-10-mock-fail-first-2", func() directives {
			d := noDirectives()
			d.tokens, d.latency, d.tps, d.failFirst = 5, 200*time.Millisecond, 10, 2
			return d
		}(), false},
		{"mock-ttft-150", func() directives { d := noDirectives(); d.ttft = 150 * time.Millisecond; return d }(), false},
		{"mock-error-999", directives{}, true},
		{"mock-tokens-x", directives{}, true},
	} {
		got, err := parseDirectives(tc.model)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("parseDirectives(%q) = %+v, %v; want %+v", tc.model, got, err, tc.want)
		}
	}
}

func TestSampleJSONCoversKeywords(t *testing.T) {
	for _, tc := range []struct{ schema, want string }{
		{`{"type":"object","properties":{"b":{"type":"boolean"},"a":{"type":"integer","minimum":5}},"required":["b","a"]}`, `{"b":true,"a":5}`},
		{`{"type":"object","properties":{"x":{"type":"string"},"y":{"type":"number","exclusiveMaximum":1}}}`, `{"x":"sample x","y":0.999999999}`},
		{`{"type":"array","items":{"type":"integer"},"minItems":3,"uniqueItems":true}`, `[1,2,3]`},
		{`{"enum":["red","green"]}`, `"red"`},
		{`{"const":{"k":[1,2]}}`, `{"k":[1,2]}`},
		{`{"type":["null","string"],"format":"date-time"}`, `"2025-01-01T00:00:00Z"`},
		{`{"anyOf":[{"type":"null"},{"type":"integer","multipleOf":5,"minimum":3}]}`, `5`},
		{`{"allOf":[{"properties":{"a":{"type":"string","maxLength":2}},"required":["a"]},{"properties":{"b":{"type":"null"}},"required":["b"]}]}`, `{"a":"sa","b":null}`},
		{`{"$defs":{"n":{"type":"object","properties":{"next":{"$ref":"#/$defs/n"}}}},"$ref":"#/$defs/n"}`, ``},
		{`{"type":"OBJECT","properties":{"z":{"type":"STRING"},"a":{"type":"INTEGER","format":"int32"}},"propertyOrdering":["z","a"]}`, `{"z":"sample z","a":1}`},
		{`not json`, `{}`},
	} {
		got := sampleJSON([]byte(tc.schema))
		if !json.Valid([]byte(got)) {
			t.Errorf("sampleJSON(%s) = %s, invalid JSON", tc.schema, got)
		}
		if tc.want != "" && got != tc.want {
			t.Errorf("sampleJSON(%s) = %s, want %s", tc.schema, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"tokens":      func(c *Config) { c.Tokens = 0 },
		"error rate":  func(c *Config) { c.ErrorRate = 1.5 },
		"status":      func(c *Config) { c.ErrorStatus = 200 },
		"latency":     func(c *Config) { c.Latency = -1 },
		"tps":         func(c *Config) { c.TokensPerSecond = -1 },
		"hang max":    func(c *Config) { c.HangMax = 0 },
		"body size":   func(c *Config) { c.MaxRequestBodySize = 10 },
		"record ring": func(c *Config) { c.RecordRequests = -1 },
	} {
		c := DefaultConfig()
		mutate(&c)
		if c.Validate() == nil {
			t.Errorf("Validate accepted bad %s", name)
		}
	}
}

// BenchmarkOpenAINonStreamCached measures the hot path the gateway
// benchmarks hit: a repeated non-streaming request, served from the plan
// cache, without recording.
func BenchmarkOpenAINonStreamCached(b *testing.B) {
	cfg := DefaultConfig()
	cfg.RecordRequests = 0
	s := New(cfg)
	defer s.Close()
	h := s.Handler()
	body := []byte(`{"model":"gpt-4o","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there, how are you today?"}]}`)
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI("/v1/chat/completions")
		ctx.Request.Header.Set("Authorization", "Bearer sk-bench")
		ctx.Request.SetBody(body)
		h(&ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}
