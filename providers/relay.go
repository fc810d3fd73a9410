package providers

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
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
// the body says them), no top-level member is given twice or has a key
// written with escapes, none is a dropped field (api_base, headers, ...:
// they never reach an upstream), and there is no stream_options and no
// stream other than false. With renameMaxTokens, a max_tokens member is
// sent as max_completion_tokens (the one edit made in place), as the
// encoder would. It walks the body's top level once and allocates only
// when it renames.
func (r *ChatRequest) RelayBody(model string, renameMaxTokens bool) ([]byte, bool) {
	b := r.Body
	if len(b) == 0 || r.Stream || r.StreamOptions != nil || !plainJSONString(model) {
		return nil, false
	}
	const maxMembers = 32
	var seen [maxMembers][]byte
	n := 0
	renameAt := -1
	hasMax, hasMaxComp := false, false
	var num [20]byte
	it := members{b: b}
	for it.next() {
		k, v := it.key, it.val
		if n == maxMembers || droppedRequestFields[string(k)] {
			return nil, false
		}
		for _, s := range seen[:n] {
			if bytes.Equal(s, k) {
				return nil, false
			}
		}
		seen[n] = k
		n++
		ok := true
		switch string(k) {
		case "model":
			ok = len(v) == len(model)+2 && v[0] == '"' && string(v[1:len(v)-1]) == model
		case "stream":
			ok = string(v) == "false"
		case "stream_options":
			ok = false
		case "max_tokens":
			hasMax = true
			ok = r.MaxTokens != nil && string(v) == string(strconv.AppendInt(num[:0], int64(*r.MaxTokens), 10))
			if renameMaxTokens && r.MaxCompletionTokens == nil {
				renameAt = it.kstart
			}
		case "max_completion_tokens":
			hasMaxComp = true
			ok = r.MaxCompletionTokens != nil && string(v) == string(strconv.AppendInt(num[:0], int64(*r.MaxCompletionTokens), 10))
		}
		if !ok {
			return nil, false
		}
	}
	if it.bad {
		return nil, false // an escaped key, or a body it cannot walk
	}
	// Every modelled bound the request holds must be in the body as it
	// is: a bound the gateway added (none today) would otherwise be lost.
	if r.MaxTokens != nil && !hasMax || r.MaxCompletionTokens != nil && !hasMaxComp {
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
// bill, or counts the gateway would correct), and when it cannot read it
// exactly as encoding/json would (a key repeated, escaped or spelt in
// another case); then decode it in full. The choices are sent on as the
// upstream wrote them, as any proxy would: their shape is not checked.
// It walks body once, validating as it goes, and allocates only the
// response.
func RelayedAnswer(body []byte) (*ChatResponse, bool) {
	both := new(struct { // one allocation for the answer and its usage
		r ChatResponse
		u Usage
	})
	r := &both.r
	r.Raw = body
	var u Usage
	hasChoices, hasUsage := false, false
	p := reqParser{b: body}
	ok := p.members(answerNames, func(k []byte) bool {
		switch string(k) {
		case "object":
			s, ok := p.stringValue()
			r.Object = s
			return ok && s != ""
		case "choices":
			hasChoices = true
			return p.peek() == '[' && p.skip()
		default: // usage
			hasUsage = true
			return p.peek() == '{' && p.members(usageNames, func(k []byte) bool {
				switch string(k) {
				case "prompt_tokens":
					return p.int64(&u.PromptTokens)
				case "completion_tokens":
					return p.int64(&u.CompletionTokens)
				default: // total_tokens
					return p.int64(&u.TotalTokens)
				}
			})
		}
	})
	if !ok || r.Object == "" || !hasChoices || !hasUsage {
		return nil, false
	}
	if p.ws(); p.i != len(body) {
		return nil, false
	}
	checked, err := NewUsage(u.PromptTokens, u.CompletionTokens)
	if err != nil || checked.TotalTokens != u.TotalTokens {
		return nil, false
	}
	both.u = checked
	r.Usage = &both.u
	return r, true
}

var (
	answerNames = []string{"object", "choices", "usage"}
	usageNames  = []string{"prompt_tokens", "completion_tokens", "total_tokens"}
)

// RelayChunk reads one streamed Chat Completions chunk (an OpenAI-format
// event's data) that is to be sent on as received. It returns a chunk
// holding ID, Object, Created, Model, Raw (= data) and Produced (the bytes
// of content and tool-call names and arguments it carries, as the edge
// counts them from decoded choices), with Choices left nil; or false when
// the chunk must be decoded in full: not JSON (or nested deeper than
// the validator follows), an error or a usage in it,
// a member of an unexpected type, a key repeated, escaped or spelt in
// another case (encoding/json would read it), so that relaying never
// counts, bills or ends a stream differently from decoding. It walks the
// chunk once more after validation and allocates only the chunk and its
// strings.
func RelayChunk(data []byte) (*ChatChunk, bool) {
	if !validJSON(data) {
		return nil, false
	}
	c := &ChatChunk{Raw: data}
	it := members{b: data}
	var seen fieldSet
	hasChoices := false
	for it.next() {
		k, v := it.key, it.val
		if !seen.add(k, topLevelFields) {
			return nil, false
		}
		ok := true
		switch string(k) {
		case "id":
			c.ID, ok = plainString(v)
		case "object":
			c.Object, ok = plainString(v)
		case "model":
			c.Model, ok = plainString(v)
		case "created":
			n, err := strconv.ParseInt(string(v), 10, 64)
			c.Created, ok = n, err == nil
		case "usage", "error":
			ok = isNull(v)
		case "system_fingerprint":
			ok = isStringOrNull(v)
		case "choices": // null would be sent as [] by the decoder: not as received
			hasChoices = true
			var n int64
			n, ok = arrayProduced(v, choiceProduced)
			ok = ok && v[0] == '['
			c.Produced += n
		}
		if !ok {
			return nil, false
		}
	}
	if it.bad || c.Object == "" || !hasChoices {
		return nil, false
	}
	return c, true
}

var (
	topLevelFields = []string{"id", "object", "created", "model", "choices", "usage", "error", "system_fingerprint"}
	choiceFields   = []string{"index", "delta", "finish_reason"}
	deltaFields    = []string{"role", "content", "tool_calls", "refusal"}
	toolCallFields = []string{"index", "id", "type", "function"}
	functionFields = []string{"name", "arguments"}
)

// arrayProduced sums fn over the elements of a JSON array (or null).
func arrayProduced(v []byte, fn func([]byte) (int64, bool)) (int64, bool) {
	if isNull(v) {
		return 0, true
	}
	if v[0] != '[' {
		return 0, false
	}
	var total int64
	i := skipSpace(v, 1)
	if i < len(v) && v[i] == ']' {
		return 0, true
	}
	for i < len(v) {
		end := valueEnd(v, i)
		if end < 0 {
			return 0, false
		}
		n, ok := fn(v[i:end])
		if !ok {
			return 0, false
		}
		total += n
		i = skipSpace(v, end)
		if i >= len(v) {
			return 0, false
		}
		if v[i] == ']' {
			return total, true
		}
		if v[i] != ',' {
			return 0, false
		}
		i = skipSpace(v, i+1)
	}
	return 0, false
}

// objectSum walks a JSON object (known valid) and sums what member says
// of each of its members; any member it refuses, a repeated key, or one
// spelt like a watched name in another case, refuses the object.
func objectSum(b []byte, watched []string, member func(k, v []byte) (int64, bool)) (int64, bool) {
	if b[0] != '{' {
		return 0, false
	}
	var n int64
	var seen fieldSet
	it := members{b: b}
	for it.next() {
		if !seen.add(it.key, watched) {
			return 0, false
		}
		m, ok := member(it.key, it.val)
		if !ok {
			return 0, false
		}
		n += m
	}
	return n, !it.bad
}

// choiceProduced counts one streamed choice's content and tool-call bytes.
func choiceProduced(b []byte) (int64, bool) { return objectSum(b, choiceFields, choiceMember) }

func choiceMember(k, v []byte) (int64, bool) {
	switch string(k) {
	case "index":
		return 0, isInt(v)
	case "finish_reason":
		return 0, isStringOrNull(v)
	case "delta":
		if isNull(v) {
			return 0, true
		}
		return objectSum(v, deltaFields, deltaMember)
	}
	return 0, true
}

func deltaMember(k, v []byte) (int64, bool) {
	switch string(k) {
	case "role", "refusal":
		return 0, isStringOrNull(v)
	case "content":
		l, ok := stringLen(v)
		return int64(l), ok
	case "tool_calls":
		return arrayProduced(v, toolCallProduced)
	}
	return 0, true
}

func toolCallProduced(b []byte) (int64, bool) { return objectSum(b, toolCallFields, toolCallMember) }

func toolCallMember(k, v []byte) (int64, bool) {
	switch string(k) {
	case "index":
		return 0, isInt(v)
	case "id", "type":
		return 0, isStringOrNull(v)
	case "function":
		if isNull(v) {
			return 0, true
		}
		return objectSum(v, functionFields, functionMember)
	}
	return 0, true
}

func functionMember(k, v []byte) (int64, bool) {
	if string(k) == "name" || string(k) == "arguments" {
		l, ok := stringLen(v)
		return int64(l), ok
	}
	return 0, true
}

func isInt(v []byte) bool {
	_, err := strconv.Atoi(string(v))
	return err == nil
}

func isNull(v []byte) bool { return string(v) == "null" }

func isStringOrNull(v []byte) bool { return v[0] == '"' || isNull(v) }

// stringValue returns what a JSON string (or null: nothing) decodes to:
// its own bytes when they hold no escape and are valid UTF-8 (no copy),
// else the decoded value.
func stringValue(v []byte) ([]byte, bool) {
	if isNull(v) {
		return nil, true
	}
	if v[0] != '"' {
		return nil, false
	}
	inner := v[1 : len(v)-1]
	if !needsDecoding(inner) {
		return inner, true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return nil, false
	}
	return []byte(s), true
}

// stringLen is the decoded length of a JSON string or null (0).
func stringLen(v []byte) (int, bool) {
	b, ok := stringValue(v)
	return len(b), ok
}

// plainString returns a JSON string's value (null: "").
func plainString(v []byte) (string, bool) {
	b, ok := stringValue(v)
	return string(b), ok
}

// needsDecoding reports whether a JSON string's bytes differ from its
// value: escapes, or invalid UTF-8 (which encoding/json replaces).
func needsDecoding(inner []byte) bool {
	return bytes.IndexByte(inner, '\\') >= 0 || !utf8.Valid(inner)
}

// members iterates over the members of a JSON object that is known to be
// valid JSON, without allocating: after next returns true, key is the raw
// key (between its quotes) and val the raw value. A key with escapes, or
// a structure it cannot walk, ends the iteration with bad set: the caller
// then decodes in full.
type members struct {
	b        []byte
	i        int
	started  bool
	bad      bool
	key, val []byte
	kstart   int // index in b of key's opening quote
}

func (m *members) next() bool {
	b := m.b
	i := m.i
	if !m.started {
		m.started = true
		i = skipSpace(b, 0)
		if i >= len(b) || b[i] != '{' {
			m.bad = true
			return false
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			return false
		}
	} else {
		i = skipSpace(b, i)
		if i >= len(b) {
			m.bad = true
			return false
		}
		if b[i] == '}' {
			return false
		}
		if b[i] != ',' {
			m.bad = true
			return false
		}
		i = skipSpace(b, i+1)
	}
	if i >= len(b) || b[i] != '"' {
		m.bad = true
		return false
	}
	end, escaped := stringEnd(b, i)
	if end < 0 || escaped {
		m.bad = true
		return false
	}
	m.kstart = i
	m.key = b[i+1 : end]
	i = skipSpace(b, end+1)
	if i >= len(b) || b[i] != ':' {
		m.bad = true
		return false
	}
	i = skipSpace(b, i+1)
	vend := valueEnd(b, i)
	if vend < 0 {
		m.bad = true
		return false
	}
	m.val = b[i:vend]
	m.i = vend
	return true
}

// fieldSet tracks the keys of one object that a relay reads, without
// allocating: a key seen twice, one that equals a watched name in another
// case (which encoding/json would read as that field), or more keys than
// it holds, mark the object for a full decode.
type fieldSet struct {
	keys [16][]byte
	n    int
}

// add records k and reports whether the object can still be relayed.
func (f *fieldSet) add(k []byte, watched []string) bool {
	for _, s := range f.keys[:f.n] {
		if bytes.Equal(s, k) {
			return false
		}
	}
	if f.n == len(f.keys) {
		return false
	}
	f.keys[f.n] = k
	f.n++
	for _, w := range watched {
		if len(k) == len(w) && string(k) != w && bytes.EqualFold(k, []byte(w)) {
			return false
		}
	}
	return true
}
