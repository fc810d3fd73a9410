package mockllm_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/assistiv/gateway/mockllm"
	"github.com/assistiv/gateway/mockllm/mocktest"
)

func TestMain(m *testing.M) {
	// fasthttp's worker-pool cleaner notices Stop only after its idle sleep
	// (MaxIdleWorkerDuration, 10s): it outlives Close by design, then exits.
	// The Date-header updater is one goroutine per process.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"))
}

// env is one mock server and an HTTP client for it.
type env struct {
	t    testing.TB
	base string
	srv  *mockllm.Server
	hc   *http.Client
}

func newEnv(t testing.TB, mutate func(*mockllm.Config)) *env {
	t.Helper()
	cfg := mockllm.DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	base, srv := mocktest.Start(t, cfg)
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &env{t: t, base: base, srv: srv, hc: &http.Client{Transport: tr, Timeout: 20 * time.Second}}
}

// provider request shapes
const (
	pOpenAI = iota
	pAnthropic
	pGemini
)

var providerNames = []string{"openai", "anthropic", "gemini"}

// do sends body to the provider route with valid auth plus extra headers.
func (e *env) do(provider int, body string, stream bool, hdr map[string]string) *http.Response {
	e.t.Helper()
	var url string
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	switch provider {
	case pOpenAI:
		url = e.base + "/v1/chat/completions"
		h.Set("Authorization", "Bearer sk-test-key-123")
	case pAnthropic:
		url = e.base + "/v1/messages"
		h.Set("X-Api-Key", "sk-ant-test")
		h.Set("Anthropic-Version", "2023-06-01")
	case pGemini:
		model := gjsonModel(body)
		if stream {
			url = e.base + "/v1beta/models/" + model + ":streamGenerateContent?alt=sse"
		} else {
			url = e.base + "/v1beta/models/" + model + ":generateContent"
		}
		h.Set("X-Goog-Api-Key", "AIza-test")
	}
	for k, v := range hdr {
		if v == "" {
			h.Del(k)
		} else {
			h.Set(k, v)
		}
	}
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header = h
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatalf("POST %s: %v", url, err)
	}
	return resp
}

// gjsonModel pulls "model" out of a test body (Gemini takes it in the
// path; the test bodies carry it for convenience and the mock ignores it).
func gjsonModel(body string) string {
	var v struct {
		Model string `json:"model"`
	}
	_ = json.Unmarshal([]byte(body), &v)
	if v.Model == "" {
		return "gemini-2.0-flash"
	}
	return v.Model
}

// request builds a body for provider with one user message, optional tools
// (name -> schema), max tokens (0: none) and stream flag.
func request(provider int, model, user string, stream bool, maxTokens int, tools map[string]string) string {
	var b strings.Builder
	switch provider {
	case pOpenAI:
		fmt.Fprintf(&b, `{"model":%q,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":%q}]`, model, user)
		if stream {
			b.WriteString(`,"stream":true,"stream_options":{"include_usage":true}`)
		}
		if maxTokens > 0 {
			fmt.Fprintf(&b, `,"max_tokens":%d`, maxTokens)
		}
		if len(tools) > 0 {
			b.WriteString(`,"tools":[`)
			i := 0
			for name, schema := range tools {
				if i > 0 {
					b.WriteString(",")
				}
				fmt.Fprintf(&b, `{"type":"function","function":{"name":%q,"parameters":%s}}`, name, schema)
				i++
			}
			b.WriteString("]")
		}
	case pAnthropic:
		if maxTokens == 0 {
			maxTokens = 1024
		}
		fmt.Fprintf(&b, `{"model":%q,"max_tokens":%d,"system":"be brief","messages":[{"role":"user","content":%q}]`, model, maxTokens, user)
		if stream {
			b.WriteString(`,"stream":true`)
		}
		if len(tools) > 0 {
			b.WriteString(`,"tools":[`)
			i := 0
			for name, schema := range tools {
				if i > 0 {
					b.WriteString(",")
				}
				fmt.Fprintf(&b, `{"name":%q,"description":"d","input_schema":%s}`, name, schema)
				i++
			}
			b.WriteString("]")
		}
	case pGemini:
		fmt.Fprintf(&b, `{"model":%q,"systemInstruction":{"parts":[{"text":"be brief"}]},"contents":[{"role":"user","parts":[{"text":%q}]}]`, model, user)
		if maxTokens > 0 {
			fmt.Fprintf(&b, `,"generationConfig":{"maxOutputTokens":%d}`, maxTokens)
		}
		if len(tools) > 0 {
			b.WriteString(`,"tools":[{"functionDeclarations":[`)
			i := 0
			for name, schema := range tools {
				if i > 0 {
					b.WriteString(",")
				}
				fmt.Fprintf(&b, `{"name":%q,"description":"d","parameters":%s}`, name, schema)
				i++
			}
			b.WriteString("]}]")
		}
	}
	b.WriteString("}")
	return b.String()
}

func readAll(t testing.TB, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return b
}

func decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, b)
	}
	return v
}

// sseEvent is one server-sent event with its arrival time.
type sseEvent struct {
	name string
	data string
	at   time.Time
}

// readSSE reads events until EOF; err is the read error other than EOF.
func readSSE(resp *http.Response) (events []sseEvent, err error) {
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	var cur sseEvent
	var data []string
	for {
		line, rerr := br.ReadString('\n')
		if rerr != nil {
			if rerr == io.EOF && line == "" {
				return events, nil
			}
			return events, rerr
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if len(data) > 0 || cur.name != "" {
				cur.data = strings.Join(data, "\n")
				cur.at = time.Now()
				events = append(events, cur)
			}
			cur, data = sseEvent{}, nil
		case strings.HasPrefix(line, "event:"):
			cur.name = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
}

func jsonOf(t testing.TB, s string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("event data is not JSON: %v: %q", err, s)
	}
	return v
}

// path walks decoded JSON: keys for objects, ints for arrays.
func path(v any, keys ...any) any {
	for _, k := range keys {
		switch kk := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[kk]
		case int:
			a, ok := v.([]any)
			if !ok || kk >= len(a) {
				return nil
			}
			v = a[kk]
		}
	}
	return v
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

// validate checks v against a JSON schema (the subset the mock generates
// for): type, properties, required, additionalProperties false, enum,
// const, items, min/maxItems, min/maxLength, minimum/maximum, $ref, anyOf.
func validate(root, schema, v any) error {
	s, ok := schema.(map[string]any)
	if !ok {
		return nil
	}
	if ref, ok := s["$ref"].(string); ok {
		cur := root
		for _, p := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cur = path(cur, p)
		}
		return validate(root, cur, v)
	}
	if alts, ok := s["anyOf"].([]any); ok {
		for _, a := range alts {
			if validate(root, a, v) == nil {
				return nil
			}
		}
		return fmt.Errorf("%v matches no anyOf", v)
	}
	if enum, ok := s["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			if fmt.Sprint(e) == fmt.Sprint(v) {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("%v not in enum %v", v, enum)
		}
	}
	types := []string{}
	switch t := s["type"].(type) {
	case string:
		types = append(types, strings.ToLower(t))
	case []any:
		for _, x := range t {
			types = append(types, strings.ToLower(x.(string)))
		}
	}
	if len(types) > 0 {
		ok := false
		for _, t := range types {
			switch t {
			case "object":
				_, ok2 := v.(map[string]any)
				ok = ok || ok2
			case "array":
				_, ok2 := v.([]any)
				ok = ok || ok2
			case "string":
				_, ok2 := v.(string)
				ok = ok || ok2
			case "integer":
				f, ok2 := v.(float64)
				ok = ok || (ok2 && f == math.Trunc(f))
			case "number":
				_, ok2 := v.(float64)
				ok = ok || ok2
			case "boolean":
				_, ok2 := v.(bool)
				ok = ok || ok2
			case "null":
				ok = ok || v == nil
			}
		}
		if !ok {
			return fmt.Errorf("%v (%T) is not of type %v", v, v, types)
		}
	}
	switch x := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := x[r.(string)]; !ok {
					return fmt.Errorf("missing required %q", r)
				}
			}
		}
		for k, val := range x {
			ps, ok := props[k]
			if !ok {
				if s["additionalProperties"] == false {
					return fmt.Errorf("unexpected property %q", k)
				}
				continue
			}
			if err := validate(root, ps, val); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
	case []any:
		if n, ok := s["minItems"].(float64); ok && float64(len(x)) < n {
			return fmt.Errorf("%d items < minItems %v", len(x), n)
		}
		if n, ok := s["maxItems"].(float64); ok && float64(len(x)) > n {
			return fmt.Errorf("%d items > maxItems %v", len(x), n)
		}
		for i, e := range x {
			if err := validate(root, s["items"], e); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
	case string:
		if n, ok := s["minLength"].(float64); ok && float64(len(x)) < n {
			return fmt.Errorf("%q shorter than %v", x, n)
		}
		if n, ok := s["maxLength"].(float64); ok && float64(len(x)) > n {
			return fmt.Errorf("%q longer than %v", x, n)
		}
	case float64:
		if n, ok := s["minimum"].(float64); ok && x < n {
			return fmt.Errorf("%v < minimum %v", x, n)
		}
		if n, ok := s["maximum"].(float64); ok && x > n {
			return fmt.Errorf("%v > maximum %v", x, n)
		}
	}
	return nil
}

func mustValidate(t testing.TB, schema string, doc []byte) {
	t.Helper()
	var s, v any
	if err := json.Unmarshal([]byte(schema), &s); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatalf("output is not JSON: %v: %s", err, doc)
	}
	if err := validate(s, s, v); err != nil {
		t.Errorf("output %s does not validate: %v", doc, err)
	}
}
