package providers

import (
	"encoding/json"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// slowParse is how a request body was read before [ChatRequest.Parse]:
// json.Unmarshal into the struct, whose UnmarshalJSON decoded the fields
// with encoding/json and scanned for the unknown ones.
func slowParse(b []byte) (ChatRequest, error) {
	var r ChatRequest
	err := json.Unmarshal(b, (*slowChatRequest)(&r))
	return r, err
}

// checkParse fails t unless Parse and the one-pass reader agree with the
// encoding/json reference on b: same request, same error.
func checkParse(t *testing.T, b []byte) {
	t.Helper()
	want, werr := slowParse(b)
	var fast ChatRequest
	p := reqParser{b: b}
	if p.request(&fast) {
		if werr != nil {
			t.Fatalf("one pass accepted %q; encoding/json: %v", b, werr)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("one pass read %q as\n%#v\nencoding/json as\n%#v", b, fast, want)
		}
	}
	var got ChatRequest
	gerr := got.Parse(b)
	if (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
		t.Fatalf("Parse(%q) error %v, want %v", b, gerr, werr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse(%q) =\n%#v\nwant\n%#v", b, got, want)
	}
	var viaJSON ChatRequest
	jerr := json.Unmarshal(b, &viaJSON)
	if (jerr == nil) != (werr == nil) || jerr != nil && jerr.Error() != werr.Error() || !reflect.DeepEqual(viaJSON, want) {
		t.Fatalf("json.Unmarshal(%q) = %#v, %v; want %#v, %v", b, viaJSON, jerr, want, werr)
	}
}

// parseSeeds are request bodies: the providers' golden requests and
// shapes the edge's tests send, valid and not.
func parseSeeds(t testing.TB) [][]byte {
	out := goldenRequests(t)
	for _, s := range inlineSeeds {
		out = append(out, []byte(s))
	}
	return out
}

// goldenRequests are the providers' golden request inputs.
func goldenRequests(t testing.TB) [][]byte {
	var out [][]byte
	for _, pat := range []string{"testdata/requests/*.json", "openai/testdata/requests/*.json"} {
		files, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		t.Fatal("no golden requests")
	}
	return out
}

// inlineSeeds: the first ones are well-formed requests the one-pass
// reader must take itself (TestParseOnePass); the rest are for the
// fallback.
var inlineSeeds = []string{
	`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":64}`,
	`{"model":"m","messages":[{"role":"user","content":"a\n\"b\" \u00e9 \ud83d\ude00 \/ \t"}],"stream":true,"stream_options":{"include_usage":true}}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA","detail":"low"}},{"type":"input_audio","input_audio":{"data":"x"}}]}]}`,
	`{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"r"}],"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object"},"strict":true}}],"tool_choice":{"type":"function","function":{"name":"f"}}}`,
	`{"model":"m","messages":[],"tool_choice":"auto","response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"a":[1,2.5e3,-0,true,false,null]},"strict":false}}}`,
	`{"model":"m","stop":"x","n":2,"seed":-5,"user":"u","top_p":0.5,"parallel_tool_calls":false,"logprobs":true,"metadata":{"k":"v"},"api_key":"k"}`,
	`{"model":"m","stop":["a","b"],"max_completion_tokens":10,"temperature":null,"max_tokens":null,"stop":null}`,
	`{"Model":"m"}`, `{"model":"m","model":"n"}`, `{"mod\u0065l":"m"}`, `{"model":"m","x":1,"x":2}`, `{"ſtream":true}`,
	`{"model":1}`, `{"max_tokens":1.5}`, `{"max_tokens":1e2}`, `{"max_tokens":99999999999999999999}`, `{"temperature":1e999}`,
	`{"messages":[null]}`, `{"messages":{}}`, `{"stop":[null]}`, `{"stop":5}`, `{"tool_choice":{"type":"x"}}`, `{"tool_choice":5}`,
	`{"model":"\ud800"}`, "{\"model\":\"\xff\"}", `{"model":"m"} x`, `{"model":"m",}`, `{"model" "m"}`, `[]`, `null`, ``, ` {} `,
	`{"messages":[{"role":"user","content":5}]}`, `{"messages":[{"role":"user","content":[null]}]}`, `{"messages":[{"content":[{"type":"text","text":"a","image_url":null}]}]}`,
	`{"stream":tru}`, `{"stream":truex}`, `{"n":-}`, `{"n":01}`, `{"a":"\x"}`, "{\"a\":\"\x01\"}", `{"a":[1,]}`, `{"a":{"b":}}`,
}

func TestParseMatchesEncodingJSON(t *testing.T) {
	for _, b := range parseSeeds(t) {
		checkParse(t, b)
	}
}

// TestParseRandomMutations compares the two readers on seeds with random
// bytes replaced, inserted or removed: mostly invalid input, where Parse
// must give encoding/json's errors.
func TestParseRandomMutations(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	seeds := parseSeeds(t)
	alphabet := []byte("{}[]\",:\\ \n0123456789.-+eEtruefalsnl\x00\xff\xc3\xa9uAZ_")
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for i := 0; i < n; i++ {
		b := mutate(rng, seeds[rng.Intn(len(seeds))], alphabet)
		checkParse(t, b)
	}
}

// mutate returns a copy of seed with one to three random bytes replaced,
// inserted or removed (bytes from alphabet).
func mutate(rng *rand.Rand, seed, alphabet []byte) []byte {
	b := append([]byte(nil), seed...)
	for m := rng.Intn(3) + 1; m > 0 && len(b) > 0; m-- {
		j := rng.Intn(len(b))
		c := alphabet[rng.Intn(len(alphabet))]
		switch rng.Intn(3) {
		case 0:
			b[j] = c
		case 1:
			b = append(b[:j], append([]byte{c}, b[j:]...)...)
		default:
			b = append(b[:j], b[j+1:]...)
		}
	}
	return b
}

// FuzzParseChatRequest: on every input, Parse returns what json.Unmarshal
// with the encoding/json reader returns, error included, and the one-pass
// reader never accepts what encoding/json refuses.
//
//	go test ./providers -run '^$' -fuzz FuzzParseChatRequest -fuzztime 60s
func FuzzParseChatRequest(f *testing.F) {
	for _, b := range parseSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkParse(t, b) })
}

// TestParseOnePass: the requests clients send (the golden requests and
// the edge's benchmark body) are read in one pass, not handed on.
func TestParseOnePass(t *testing.T) {
	seeds := goldenRequests(t)
	for _, s := range inlineSeeds[:6] {
		seeds = append(seeds, []byte(s))
	}
	for i, b := range seeds {
		var r ChatRequest
		if p := (reqParser{b: b}); !p.request(&r) {
			t.Errorf("seed %d: one-pass reader refused %s", i, b)
		}
	}
}

// FuzzValidJSON: validJSON never accepts what json.Valid refuses, and
// refuses what it accepts only past its nesting bound.
//
//	go test ./providers -run '^$' -fuzz FuzzValidJSON -fuzztime 60s
func FuzzValidJSON(f *testing.F) {
	for _, b := range parseSeeds(f) {
		f.Add(b)
	}
	for _, s := range []string{`1`, `-0.5e+3`, `"x"`, `[]`, ` null `, `true`, `[1,[2,{"a":"\u00e9"}]]`, `{"a":1}x`, `01`, `"\ud800"`, "\"\xff\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, want := validJSON(b), json.Valid(b)
		if got && !want {
			t.Fatalf("validJSON(%q) = true, json.Valid false", b)
		}
		if !got && want && maxDepth(b) <= maxParseDepth {
			t.Fatalf("validJSON(%q) = false, json.Valid true", b)
		}
	})
}

// maxDepth is the deepest nesting of brackets outside strings in b,
// which must be valid JSON.
func maxDepth(b []byte) int {
	depth, most, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			most = max(most, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return most
}

func TestValidJSONMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	seeds := parseSeeds(t)
	for i := 0; i < 20000; i++ {
		b := append([]byte(nil), seeds[rng.Intn(len(seeds))]...)
		if len(b) > 0 && rng.Intn(2) == 0 {
			j := rng.Intn(len(b))
			b = append(b[:j], b[j+1:]...)
		}
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid %v", b, got, want)
		}
	}
	deep := []byte(strings.Repeat("[", maxParseDepth+1) + strings.Repeat("]", maxParseDepth+1))
	if validJSON(deep) {
		t.Error("validJSON followed nesting past its bound")
	}
}
