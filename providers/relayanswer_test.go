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

// oldRelayedAnswer is RelayedAnswer as it was before the one-pass
// reader (json.Valid, a scan of the members, encoding/json for object
// and usage): the reference the new one is compared with.
func oldRelayedAnswer(body []byte) (*ChatResponse, bool) {
	if !json.Valid(body) {
		return nil, false
	}
	const (
		gotObject = 1 << iota
		gotChoices
		gotUsage
	)
	var r ChatResponse
	var u Usage
	got := 0
	ok := true
	err := scanObject(body, func(k string, v []byte) bool {
		switch k {
		case "object":
			ok = got&gotObject == 0 && json.Unmarshal(v, &r.Object) == nil && r.Object != ""
			got |= gotObject
		case "choices":
			ok = got&gotChoices == 0 && v[0] == '['
			got |= gotChoices
		case "usage":
			ok = got&gotUsage == 0 && v[0] == '{' && json.Unmarshal(v, &u) == nil
			got |= gotUsage
		default:
			// encoding/json would take "Usage" for usage: such an answer
			// is decoded in full, so what is billed never depends on
			// which reader looked.
			ok = !strings.EqualFold(k, "usage") && !strings.EqualFold(k, "object") && !strings.EqualFold(k, "choices")
		}
		return ok
	})
	if err != nil || !ok || got != gotObject|gotChoices|gotUsage {
		return nil, false
	}
	checked, err := NewUsage(u.PromptTokens, u.CompletionTokens)
	if err != nil || checked.TotalTokens != u.TotalTokens {
		return nil, false
	}
	r.Usage, r.Raw = &checked, body
	return &r, true
}

// checkRelayedAnswer fails t when RelayedAnswer relays what the earlier
// reader would not, or reads it differently. It may refuse more (keys
// repeated or escaped): the caller then decodes in full.
func checkRelayedAnswer(t *testing.T, b []byte) (newOK, oldOK bool) {
	t.Helper()
	got, ok := RelayedAnswer(b)
	want, wok := oldRelayedAnswer(b)
	if ok && (!wok || !reflect.DeepEqual(got, want)) {
		t.Fatalf("RelayedAnswer(%q) = %+v; earlier reader %+v, %v", b, got, want, wok)
	}
	return ok, wok
}

func answerSeeds(t testing.TB) [][]byte {
	files, err := filepath.Glob("*/testdata/responses/*.json")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	for _, s := range []string{
		`{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"prompt_tokens_details":{"cached_tokens":0}}}`,
		`{"object":"chat.completion","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":3}}`,
		`{"object":"chat.completion","choices":[],"usage":{"prompt_tokens":-1,"completion_tokens":1,"total_tokens":0}}`,
		`{"object":"chat.completion","choices":[],"usage":{"prompt_tokens":1.0,"completion_tokens":1,"total_tokens":2}}`,
		`{"object":"chat.completion","choices":[],"usage":{"prompt_tokens":null,"completion_tokens":1,"total_tokens":1}}`,
		`{"object":"chat.completion","choices":[],"Usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`,
		`{"object":"chat.completion","choices":[],"usage":{"Prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`,
		`{"object":"chat.c\u006fmpletion","choices":{},"usage":{}}`, `{"object":"","choices":[],"usage":{}}`, `{"object":null}`,
		`{"object":"x","choices":[],"usage":{}} x`, `{"object":"x","choices":[],"usage":null}`, `[]`, ``,
	} {
		out = append(out, []byte(s))
	}
	return out
}

func TestRelayedAnswerMatchesEarlierReader(t *testing.T) {
	for _, b := range answerSeeds(t) {
		if ok, wok := checkRelayedAnswer(t, b); ok != wok && !json.Valid(b) {
			t.Errorf("RelayedAnswer(%q) = %v; earlier reader %v", b, ok, wok)
		}
	}
	rng := rand.New(rand.NewSource(2))
	seeds := answerSeeds(t)
	alphabet := []byte("{}[]\",:\\ \n0123456789.-eEtrufalsn\xffUu_")
	for i := 0; i < 20000; i++ {
		b := mutate(rng, seeds[rng.Intn(len(seeds))], alphabet)
		checkRelayedAnswer(t, b)
	}
}

// TestRelayedAnswerRelaysGoldenAnswers: the golden answers (the
// providers' outputs in the OpenAI format, and the OpenAI inputs) are
// relayed exactly when the earlier reader relayed them: nothing falls
// back to a full decode that did not before.
func TestRelayedAnswerRelaysGoldenAnswers(t *testing.T) {
	files, err := filepath.Glob("*/testdata/responses/*.json")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if !strings.HasSuffix(f, ".golden.json") && !strings.HasPrefix(f, "openai/") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if ok, wok := checkRelayedAnswer(t, b); ok != wok {
			t.Errorf("RelayedAnswer(%s) = %v; earlier reader %v", f, ok, wok)
		} else if ok {
			n++
		}
	}
	if n == 0 {
		t.Error("no golden answer relayed")
	}
	t.Logf("%d of %d relayed", n, len(files))
}

// FuzzRelayedAnswer: RelayedAnswer never relays an answer the earlier
// reader (json.Valid, then encoding/json) would not, nor reads its usage
// differently.
//
//	go test ./providers -run '^$' -fuzz FuzzRelayedAnswer -fuzztime 60s
func FuzzRelayedAnswer(f *testing.F) {
	for _, b := range answerSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkRelayedAnswer(t, b) })
}
