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

func checkAppendJSON(t *testing.T, r *ChatResponse) {
	t.Helper()
	want, werr := json.Marshal(r)
	got, err := r.AppendJSON(nil)
	if (err == nil) != (werr == nil) || string(got) != string(want) {
		t.Fatalf("AppendJSON =\n%s, %v\njson.Marshal =\n%s, %v", got, err, want, werr)
	}
}

func checkChunkAppendJSON(t *testing.T, c *ChatChunk) {
	t.Helper()
	want, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.AppendJSON(nil); string(got) != string(want) {
		t.Fatalf("ChatChunk.AppendJSON =\n%s\njson.Marshal =\n%s", got, want)
	}
}

// TestAppendJSONMatchesMarshalOnGoldens: the translated answers the
// providers' goldens hold are written byte for byte as json.Marshal
// writes them.
func TestAppendJSONMatchesMarshalOnGoldens(t *testing.T) {
	files, err := filepath.Glob("*/testdata/responses/*.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var r ChatResponse
		if json.Unmarshal(b, &r) != nil || r.Choices == nil {
			continue // an error golden
		}
		n++
		checkAppendJSON(t, &r)
	}
	if n == 0 {
		t.Fatal("no golden answers")
	}
}

// randomText mixes what encoding/json escapes: controls, quotes, HTML
// characters, U+2028, invalid UTF-8.
func randomText(rng *rand.Rand) string {
	pieces := []string{"a", "Hé", "\"", "\\", "<", ">", "&", "\n", "\t", "\x00", "\x1f", "\x7f", "\u2028", "\u2029", "\xff", "\xe2\x80", "😀", "\b", "\f", "\r", ""}
	var sb strings.Builder
	for i := rng.Intn(6); i > 0; i-- {
		sb.WriteString(pieces[rng.Intn(len(pieces))])
	}
	return sb.String()
}

func randomResponse(rng *rand.Rand) *ChatResponse {
	r := &ChatResponse{ID: randomText(rng), Object: randomText(rng), Created: rng.Int63() - rng.Int63(), Model: randomText(rng), SystemFingerprint: randomText(rng)}
	if rng.Intn(4) > 0 {
		r.Choices = []Choice{}
	}
	for i := rng.Intn(3); i > 0; i-- {
		m := Message{Role: []string{RoleAssistant, RoleUser, ""}[rng.Intn(3)], Name: randomText(rng), ToolCallID: randomText(rng), Refusal: randomText(rng)}
		switch rng.Intn(3) {
		case 0:
			m.Content = TextContent(randomText(rng))
		case 1:
			m.Content = PartsContent(Part{Type: PartText, Text: randomText(rng)})
		}
		for j := rng.Intn(3); j > 0; j-- {
			m.ToolCalls = append(m.ToolCalls, ToolCall{ID: randomText(rng), Type: randomText(rng), Function: FunctionCall{Name: randomText(rng), Arguments: randomText(rng)}})
		}
		r.Choices = append(r.Choices, Choice{Index: rng.Intn(5), Message: m, FinishReason: FinishReason(randomText(rng))})
	}
	if rng.Intn(2) == 0 {
		r.Usage = &Usage{PromptTokens: rng.Int63n(1000), CompletionTokens: rng.Int63n(1000), TotalTokens: rng.Int63n(2000)}
	}
	return r
}

func randomChunk(rng *rand.Rand) *ChatChunk {
	c := &ChatChunk{ID: randomText(rng), Object: randomText(rng), Created: rng.Int63(), Model: randomText(rng), SystemFingerprint: randomText(rng)}
	if rng.Intn(4) > 0 {
		c.Choices = []ChunkChoice{}
	}
	for i := rng.Intn(3); i > 0; i-- {
		d := Delta{Role: randomText(rng)}
		if rng.Intn(2) == 0 {
			d.Content = Str(randomText(rng))
		}
		if rng.Intn(3) == 0 {
			d.Refusal = Str(randomText(rng))
		}
		for j := rng.Intn(3); j > 0; j-- {
			d.ToolCalls = append(d.ToolCalls, ToolCallDelta{Index: j, ID: randomText(rng), Type: randomText(rng), Function: FunctionCall{Name: randomText(rng), Arguments: randomText(rng)}})
		}
		c.Choices = append(c.Choices, ChunkChoice{Index: i, Delta: d, FinishReason: FinishReason(randomText(rng))})
	}
	if rng.Intn(2) == 0 {
		c.Usage = &Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3}
	}
	return c
}

func TestAppendJSONMatchesMarshalOnRandomAnswers(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 20000; i++ {
		checkAppendJSON(t, randomResponse(rng))
		checkChunkAppendJSON(t, randomChunk(rng))
	}
}

// FuzzAppendJSON: the hand-written string encoder writes any text as
// encoding/json does, in every field it fills.
//
//	go test ./providers -run '^$' -fuzz FuzzAppendJSON -fuzztime 60s
func FuzzAppendJSON(f *testing.F) {
	f.Add("hello", "<b>&</b>\u2028", "\xff\x00\"\\")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		checkAppendJSON(t, &ChatResponse{ID: a, Object: b, Model: c, SystemFingerprint: a,
			Choices: []Choice{{Message: Message{Role: a, Content: TextContent(b), Name: c, Refusal: c,
				ToolCalls: []ToolCall{{ID: a, Type: b, Function: FunctionCall{Name: c, Arguments: a}}}}, FinishReason: FinishReason(c)}}})
		checkChunkAppendJSON(t, &ChatChunk{ID: a, Object: b, Model: c, Choices: []ChunkChoice{{Delta: Delta{Role: a, Content: &b, Refusal: &c,
			ToolCalls: []ToolCallDelta{{ID: a, Type: b, Function: FunctionCall{Name: c, Arguments: a}}}}, FinishReason: FinishReason(b)}}})
	})
}

// TestAppendJSONKnowsEveryField fails when a type the hand-written
// encoder writes gains or loses a field: AppendJSON must then be taught
// it (the random comparisons above only fill the fields they know).
func TestAppendJSONKnowsEveryField(t *testing.T) {
	for _, c := range []struct {
		v      any
		fields int
	}{
		{ChatResponse{}, 8}, {Choice{}, 3}, {Message{}, 6}, {Content{}, 3}, {ToolCall{}, 3},
		{FunctionCall{}, 2}, {Usage{}, 3}, {ChatChunk{}, 9}, {ChunkChoice{}, 3}, {Delta{}, 4},
		{ToolCallDelta{}, 4},
	} {
		if n := reflect.TypeOf(c.v).NumField(); n != c.fields {
			t.Errorf("%T has %d fields; AppendJSON was written for %d", c.v, n, c.fields)
		}
	}
}
