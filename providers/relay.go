package providers

import (
	"bytes"
	"strconv"
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
// the validator follows), an error or a usage in it, no object type or
// choices, a member of an unexpected type, a watched key repeated,
// escaped or spelt in another case (encoding/json would read it), so that
// relaying never counts, bills or ends a stream differently from
// decoding. Each call returns a new chunk; a stream's reader uses a
// [ChunkRelay], which reuses one.
func RelayChunk(data []byte) (*ChatChunk, bool) {
	var r ChunkRelay
	return r.Chunk(data)
}

// ChunkRelay reads the chunks of one relayed stream as [RelayChunk] does,
// without allocating: it walks each chunk once, validating as it goes,
// and returns the same chunk every time, valid until the next call. The
// id, object and model strings are the previous chunk's when it says the
// same (an upstream repeats them in every chunk of a stream). Not safe
// for concurrent use.
type ChunkRelay struct {
	c                 ChatChunk
	id, object, model string
	scratch           []byte
}

// Chunk reads data; see [RelayChunk].
func (r *ChunkRelay) Chunk(data []byte) (*ChatChunk, bool) {
	p := reqParser{b: data, scratch: r.scratch}
	var id, object, model []byte
	var created, produced int64
	hasChoices := false
	ok := p.members(topLevelFields, func(k []byte) bool {
		switch string(k) {
		case "id":
			return p.plainOrNull(&id)
		case "object":
			return p.plainOrNull(&object)
		case "model":
			return p.plainOrNull(&model)
		case "created":
			return p.int64(&created)
		case "usage", "error":
			return p.null() && p.delimited()
		case "system_fingerprint":
			return p.stringOrNull()
		default: // choices; null would be sent as [] by the decoder: not as received
			hasChoices = true
			return p.peek() == '[' && p.array(func() bool { return p.relayChoice(&produced) })
		}
	})
	r.scratch = p.scratch
	if !ok || !hasChoices || len(object) == 0 {
		return nil, false
	}
	if p.ws(); p.i != len(data) {
		return nil, false
	}
	r.c = ChatChunk{
		ID: intern(&r.id, id), Object: intern(&r.object, object), Created: created, Model: intern(&r.model, model),
		Raw: data, Produced: produced,
	}
	return &r.c, true
}

// intern returns *last when b says the same, else b as a new *last.
func intern(last *string, b []byte) string {
	if string(b) != *last {
		*last = string(b)
	}
	return *last
}

var (
	topLevelFields = []string{"id", "object", "created", "model", "choices", "usage", "error", "system_fingerprint"}
	choiceFields   = []string{"index", "delta", "finish_reason"}
	deltaFields    = []string{"role", "content", "tool_calls", "refusal"}
	toolCallFields = []string{"index", "id", "type", "function"}
	functionFields = []string{"name", "arguments"}
)

// relayChoice reads one streamed choice, adding its content and tool-call
// bytes to produced.
func (p *reqParser) relayChoice(produced *int64) bool {
	return p.peek() == '{' && p.members(choiceFields, func(k []byte) bool {
		switch string(k) {
		case "index":
			return p.integer()
		case "finish_reason":
			return p.stringOrNull()
		default: // delta
			if p.null() {
				return p.delimited()
			}
			return p.peek() == '{' && p.members(deltaFields, func(k []byte) bool {
				switch string(k) {
				case "role", "refusal":
					return p.stringOrNull()
				case "content":
					return p.countString(produced)
				default: // tool_calls
					if p.null() {
						return p.delimited()
					}
					return p.peek() == '[' && p.array(func() bool { return p.relayToolCall(produced) })
				}
			})
		}
	})
}

// relayToolCall reads one streamed tool call, adding its name and
// arguments bytes to produced.
func (p *reqParser) relayToolCall(produced *int64) bool {
	return p.peek() == '{' && p.members(toolCallFields, func(k []byte) bool {
		switch string(k) {
		case "index":
			return p.integer()
		case "id", "type":
			return p.stringOrNull()
		default: // function
			if p.null() {
				return p.delimited()
			}
			return p.peek() == '{' && p.members(functionFields, func([]byte) bool { return p.countString(produced) })
		}
	})
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
