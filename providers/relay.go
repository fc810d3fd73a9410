package providers

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Relaying: an OpenAI-format upstream is sent the client's own request
// bytes when they already say what the parsed request says, and its answer
// goes back to the client as received, with only the usage read out of
// it. Neither direction then pays for encoding JSON, and the answer's
// choices are never decoded. Every condition below is a reason to fall
// back to encoding (or decoding) in full, never an error.

// RelayBody returns the client's request bytes (r.Body) as they can be
// sent, non-streamed, to an OpenAI-format upstream that takes model as
// the model name, and true; or nil and false when the request must be
// encoded from its fields instead. The bytes qualify when the parsed
// request has not changed since it was read (model and output bound as
// the body says them), no top-level member is given twice, none is a
// dropped field (api_base, headers, ...: they never reach an upstream),
// and there is no stream_options and no stream other than false. With
// renameMaxTokens, a max_tokens member is sent as max_completion_tokens
// (the one edit made in place), as the encoder would.
func (r *ChatRequest) RelayBody(model string, renameMaxTokens bool) ([]byte, bool) {
	b := r.Body
	if len(b) == 0 || r.Stream || r.StreamOptions != nil || !plainJSONString(model) {
		return nil, false
	}
	const maxMembers = 32
	var seen [maxMembers]string
	n := 0
	renameAt := -1
	ok := true
	err := scanMembers(b, func(k string, kstart, vstart, vend int) bool {
		if n == maxMembers || droppedRequestFields[k] {
			ok = false
			return false
		}
		for _, s := range seen[:n] {
			if s == k {
				ok = false
				return false
			}
		}
		seen[n] = k
		n++
		v := b[vstart:vend]
		switch k {
		case "model":
			ok = len(v) == len(model)+2 && v[0] == '"' && string(v[1:len(v)-1]) == model
		case "stream":
			ok = string(v) == "false"
		case "stream_options":
			ok = false
		case "max_tokens":
			ok = r.MaxTokens != nil && string(v) == strconv.Itoa(*r.MaxTokens)
			if renameMaxTokens && r.MaxCompletionTokens == nil {
				renameAt = kstart
			}
		case "max_completion_tokens":
			ok = r.MaxCompletionTokens != nil && string(v) == strconv.Itoa(*r.MaxCompletionTokens)
		}
		return ok
	})
	if err != nil || !ok {
		return nil, false
	}
	// Every modelled bound the request holds must be in the body as it
	// is: a bound the gateway added (none today) would otherwise be lost.
	if r.MaxTokens != nil && !has(seen[:n], "max_tokens") || r.MaxCompletionTokens != nil && !has(seen[:n], "max_completion_tokens") {
		return nil, false
	}
	if renameAt < 0 {
		return b, true
	}
	const from, to = `"max_tokens"`, `"max_completion_tokens"`
	if string(b[renameAt:renameAt+len(from)]) != from {
		return nil, false // the key was written with escapes
	}
	out := make([]byte, 0, len(b)+len(to)-len(from))
	out = append(out, b[:renameAt]...)
	out = append(out, to...)
	return append(out, b[renameAt+len(from):]...), true
}

func has(keys []string, k string) bool {
	for _, s := range keys {
		if s == k {
			return true
		}
	}
	return false
}

// plainJSONString reports whether s is written in JSON as itself between
// quotes (printable ASCII without quote or backslash).
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return s != ""
}

// RelayedAnswer reads a non-streamed OpenAI-format answer that is to be
// sent on as received: it checks that body is JSON, an object with an
// object type, a choices array and a usage whose counts are in bounds
// and add up, and returns a ChatResponse holding only Object, Usage and
// Raw (= body); choices and the other members are not decoded. It
// returns false when the answer cannot be relayed as it is (no usage to
// bill, or counts the gateway would correct); then decode it in full.
// The choices are sent on as the upstream wrote them, as any proxy would:
// their shape is not checked.
func RelayedAnswer(body []byte) (*ChatResponse, bool) {
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
