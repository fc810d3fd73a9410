package providers

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/assistiv/gateway/internal/jsonstr"
)

// Parse reads a Chat Completions request body into r, which must be the
// zero ChatRequest. It is json.Unmarshal(body, r) in one pass: a
// hand-written reader walks the body once, validating it and filling the
// fields as it goes, and hands anything it does not take exactly as
// encoding/json would (an error of any kind, a key given twice or spelt
// in another case, a number an int cannot hold, a string with a
// surrogate escape, ...) to json.Unmarshal, which then decides the
// result and the error. So its errors are json.Unmarshal's, and so is
// every request it accepts (FuzzParseChatRequest compares the two).
func (r *ChatRequest) Parse(body []byte) error {
	p := reqParser{b: body}
	if p.request(r) {
		return nil
	}
	*r = ChatRequest{}
	return json.Unmarshal(body, (*slowChatRequest)(r))
}

// reqParser is the one-pass reader behind [ChatRequest.Parse]. Each
// method consumes one value at p.i (after optional white space) and
// returns false when the input is not what it can read exactly like
// encoding/json; the caller then abandons the pass. Strings are copied
// out of b: nothing the result holds aliases the body.
type reqParser struct {
	b       []byte
	i       int
	depth   int
	scratch []byte // countString's buffer for strings with escapes
}

// maxParseDepth bounds nesting in skipped values; deeper input is left to
// encoding/json (which has its own, larger, limit).
const maxParseDepth = 200

func (p *reqParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, or 0 at the end.
func (p *reqParser) peek() byte {
	p.ws()
	if p.i >= len(p.b) {
		return 0
	}
	return p.b[p.i]
}

func (p *reqParser) request(r *ChatRequest) bool {
	if p.peek() != '{' {
		return false
	}
	var seen uint32
	ok := p.object(func(k []byte) bool {
		bit, known := requestFieldBit(k)
		if known {
			if seen&bit != 0 {
				return false // a repeated field: encoding/json merges, leave it to it
			}
			seen |= bit
		}
		switch string(k) {
		case "model":
			return p.str(&r.Model)
		case "messages":
			return p.messages(&r.Messages)
		case "tools":
			return p.tools(&r.Tools)
		case "tool_choice":
			return p.toolChoice(&r.ToolChoice)
		case "parallel_tool_calls":
			return p.optBool(&r.ParallelToolCalls)
		case "response_format":
			return p.responseFormat(&r.ResponseFormat)
		case "stream":
			return p.boolean(&r.Stream)
		case "stream_options":
			return p.streamOptions(&r.StreamOptions)
		case "max_tokens":
			return p.optInt(&r.MaxTokens)
		case "max_completion_tokens":
			return p.optInt(&r.MaxCompletionTokens)
		case "temperature":
			return p.optFloat(&r.Temperature)
		case "top_p":
			return p.optFloat(&r.TopP)
		case "stop":
			return p.stop(&r.Stop)
		case "n":
			return p.optInt(&r.N)
		case "presence_penalty":
			return p.optFloat(&r.PresencePenalty)
		case "frequency_penalty":
			return p.optFloat(&r.FrequencyPenalty)
		case "seed":
			return p.optInt64(&r.Seed)
		case "user":
			return p.str(&r.User)
		}
		if foldsTo(k, requestFieldNames) {
			return false
		}
		start := p.i
		if !p.skip() {
			return false
		}
		if droppedRequestFields[string(k)] {
			return true
		}
		if r.Extra == nil {
			r.Extra = make(map[string]json.RawMessage)
		}
		v := p.b[start:p.i]
		r.Extra[string(k)] = append(json.RawMessage(nil), v[skipSpace(v, 0):]...)
		return true
	})
	if !ok {
		return false
	}
	p.ws()
	return p.i == len(p.b)
}

// requestFieldNames lists ChatRequest's JSON names; the bit of a name is
// 1 << its index.
var requestFieldNames = []string{
	"model", "messages", "tools", "tool_choice", "parallel_tool_calls", "response_format",
	"stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature",
	"top_p", "stop", "n", "presence_penalty", "frequency_penalty", "seed", "user",
}

func requestFieldBit(k []byte) (uint32, bool) {
	for i, n := range requestFieldNames {
		if string(k) == n {
			return 1 << i, true
		}
	}
	return 0, false
}

// foldsTo reports whether k is not one of names but encoding/json could
// take it for one (it matches field names case-insensitively, with
// Unicode folding: any non-ASCII key is assumed to).
func foldsTo(k []byte, names []string) bool {
	upper := false
	for _, c := range k {
		if c >= 0x80 {
			return true
		}
		if 'A' <= c && c <= 'Z' {
			upper = true
		}
	}
	if !upper {
		return false
	}
	for _, n := range names {
		if len(n) == len(k) && equalFoldASCII(k, n) {
			return true
		}
	}
	return false
}

func equalFoldASCII(k []byte, n string) bool {
	for i := range k {
		a, b := k[i], n[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// object reads an object, calling member with each key (raw, between its
// quotes: keys with escapes are refused) with p.i at the value, which
// member must consume. The key aliases b.
func (p *reqParser) object(member func(k []byte) bool) bool {
	if p.peek() != '{' {
		return false
	}
	p.i++
	if p.peek() == '}' {
		p.i++
		return true
	}
	for {
		if p.peek() != '"' {
			return false
		}
		start := p.i + 1
		j := start
		for j < len(p.b) && p.b[j] != '"' && p.b[j] != '\\' && p.b[j] >= 0x20 {
			j++
		}
		if j >= len(p.b) || p.b[j] != '"' {
			return false // escapes or control bytes in a key
		}
		k := p.b[start:j]
		p.i = j + 1
		if p.peek() != ':' {
			return false
		}
		p.i++
		p.ws()
		if !member(k) {
			return false
		}
		if done, ok := p.sep('}'); done || !ok {
			return ok
		}
	}
}

// array reads an array, calling elem with p.i at each element.
func (p *reqParser) array(elem func() bool) bool {
	if p.peek() != '[' {
		return false
	}
	p.i++
	if p.peek() == ']' {
		p.i++
		return true
	}
	for {
		p.ws()
		if !elem() {
			return false
		}
		if done, ok := p.sep(']'); done || !ok {
			return ok
		}
	}
}

// sep reads what follows a member or an element: ',' (more follow) or
// end (the object or array is done: done). Anything else fails (ok false).
func (p *reqParser) sep(end byte) (done, ok bool) {
	switch p.peek() {
	case ',':
		p.i++
		return false, true
	case end:
		p.i++
		return true, true
	}
	return false, false
}

// null consumes a null literal if one is next.
func (p *reqParser) null() bool {
	if p.peek() == 'n' && len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "null" {
		p.i += 4
		return true
	}
	return false
}

// str reads a string into s; null leaves s as it is (encoding/json).
func (p *reqParser) str(s *string) bool {
	if p.null() {
		return true
	}
	v, ok := p.stringValue()
	if ok {
		*s = v
	}
	return ok
}

// stringValue reads a string (not null) and returns its value as
// encoding/json decodes it.
func (p *reqParser) stringValue() (string, bool) {
	if raw, ok := p.plainString(); ok {
		return string(raw), true
	}
	return p.escapedString()
}

// plainString reads a string whose bytes are its value (no escape, valid
// UTF-8) and returns them, aliasing b; for any other value it returns
// false and leaves p.i where it was.
func (p *reqParser) plainString() ([]byte, bool) {
	if p.peek() != '"' {
		return nil, false
	}
	start := p.i + 1
	j := start
	var high byte // OR of the bytes: bit 7 set when any is not ASCII
	for j < len(p.b) && plainByte[p.b[j]] {
		high |= p.b[j]
		j++
	}
	if j >= len(p.b) || p.b[j] != '"' || high >= 0x80 && !utf8.Valid(p.b[start:j]) {
		return nil, false
	}
	p.i = j + 1
	return p.b[start:j], true
}

// escapedString reads a string that plainString refused: one holding
// escapes or invalid UTF-8.
func (p *reqParser) escapedString() (string, bool) {
	b, ok := p.appendEscaped(nil)
	return string(b), ok
}

// appendEscaped is escapedString appending the value to dst.
func (p *reqParser) appendEscaped(dst []byte) ([]byte, bool) {
	if p.peek() != '"' {
		return dst, false
	}
	start := p.i + 1
	end := start
	for end < len(p.b) {
		c := p.b[end]
		if c == '\\' {
			end += 2
			continue
		}
		if c < 0x20 {
			return dst, false
		}
		if c == '"' {
			break
		}
		end++
	}
	if end >= len(p.b) {
		return dst, false
	}
	p.i = end + 1
	if out, ok := appendUnescaped(dst, p.b[start:end]); ok {
		return out, true
	}
	s, ok := p.decodeString(start-1, end+1)
	return append(dst, s...), ok // over what appendUnescaped left
}

// plainOrNull reads a string or null into *v: the string's value as
// encoding/json decodes it (aliasing b unless it holds escapes), nil for
// null.
func (p *reqParser) plainOrNull(v *[]byte) bool {
	if p.null() {
		*v = nil
		return p.delimited()
	}
	if raw, ok := p.plainString(); ok {
		*v = raw
		return true
	}
	s, ok := p.escapedString()
	*v = []byte(s)
	return ok
}

// countString reads a string or null and adds the length of its value to
// *n (null adds nothing). A string with escapes is decoded into
// p.scratch, not a new buffer.
func (p *reqParser) countString(n *int64) bool {
	if p.null() {
		return p.delimited()
	}
	if raw, ok := p.plainString(); ok {
		*n += int64(len(raw))
		return true
	}
	var ok bool
	p.scratch, ok = p.appendEscaped(p.scratch[:0])
	*n += int64(len(p.scratch))
	return ok
}

// stringOrNull reads and validates a string or null.
func (p *reqParser) stringOrNull() bool {
	if p.null() {
		return p.delimited()
	}
	return p.peek() == '"' && p.skipString()
}

// integer reads a number that encoding/json decodes into an int (not
// null).
func (p *reqParser) integer() bool {
	s, ok := p.number()
	if !ok {
		return false
	}
	_, err := strconv.ParseInt(string(s), 10, 64)
	return err == nil
}

// decodeString hands b[from:to], a whole string token, to encoding/json:
// for invalid UTF-8 and surrogate escapes, whose replacement rules are
// its own.
func (p *reqParser) decodeString(from, to int) (string, bool) {
	var s string
	if json.Unmarshal(p.b[from:to], &s) != nil {
		return "", false
	}
	return s, true
}

// unescape decodes the inside of a JSON string holding escapes; false for
// anything but the plain escapes and \u escapes of non-surrogates, and
// for invalid UTF-8.
func unescape(in []byte) (string, bool) {
	out, ok := appendUnescaped(make([]byte, 0, len(in)), in)
	return string(out), ok
}

// appendUnescaped is unescape appending the value to out.
func appendUnescaped(out, in []byte) ([]byte, bool) {
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c != '\\' {
			if c >= 0x80 {
				r, size := utf8.DecodeRune(in[i:])
				if r == utf8.RuneError && size == 1 {
					return out, false
				}
				out = append(out, in[i:i+size]...)
				i += size - 1
				continue
			}
			out = append(out, c)
			continue
		}
		i++
		if i >= len(in) {
			return out, false
		}
		switch in[i] {
		case '"', '\\', '/':
			out = append(out, in[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if i+4 >= len(in) {
				return out, false
			}
			var r rune
			for _, h := range in[i+1 : i+5] {
				switch {
				case '0' <= h && h <= '9':
					r = r<<4 | rune(h-'0')
				case 'a' <= h && h <= 'f':
					r = r<<4 | rune(h-'a'+10)
				case 'A' <= h && h <= 'F':
					r = r<<4 | rune(h-'A'+10)
				default:
					return out, false
				}
			}
			if 0xd800 <= r && r < 0xe000 {
				return out, false // surrogates: encoding/json's pairing rules
			}
			out = utf8.AppendRune(out, r)
			i += 4
		default:
			return out, false
		}
	}
	return out, true
}

func (p *reqParser) boolean(v *bool) bool {
	if p.null() {
		return true
	}
	switch {
	case len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "true":
		*v = true
		p.i += 4
	case len(p.b)-p.i >= 5 && string(p.b[p.i:p.i+5]) == "false":
		*v = false
		p.i += 5
	default:
		return false
	}
	return p.delimited()
}

func (p *reqParser) optBool(v **bool) bool {
	if p.null() {
		return p.delimited()
	}
	var b bool
	if !p.boolean(&b) {
		return false
	}
	*v = &b
	return true
}

// delimited reports whether a literal just read ends where a JSON token
// may end (so "truex" or "12a" is not taken for true or 12).
func (p *reqParser) delimited() bool {
	if p.i >= len(p.b) {
		return true
	}
	switch p.b[p.i] {
	case ' ', '\t', '\n', '\r', ',', '}', ']':
		return true
	}
	return false
}

// number reads a JSON number and returns its bytes.
func (p *reqParser) number() ([]byte, bool) {
	p.ws()
	start := p.i
	i := jsonstr.NumberEnd(p.b, start)
	if i < 0 {
		return nil, false
	}
	p.i = i
	return p.b[start:i], p.delimited()
}

func (p *reqParser) optInt(v **int) bool {
	if p.null() {
		return p.delimited()
	}
	var n int64 // as encoding/json reads into int
	if !p.int64(&n) {
		return false
	}
	x := int(n)
	if int64(x) != n {
		return false
	}
	*v = &x
	return true
}

func (p *reqParser) optInt64(v **int64) bool {
	if p.null() {
		return p.delimited()
	}
	n := new(int64)
	if !p.int64(n) {
		return false
	}
	*v = n
	return true
}

// int64 reads an integer into v; null leaves v as it is (encoding/json).
func (p *reqParser) int64(v *int64) bool {
	if p.null() {
		return p.delimited()
	}
	s, ok := p.number()
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil {
		return false
	}
	*v = n
	return true
}

func (p *reqParser) optFloat(v **float64) bool {
	if p.null() {
		return p.delimited()
	}
	s, ok := p.number()
	if !ok {
		return false
	}
	f, err := strconv.ParseFloat(string(s), 64)
	if err != nil {
		return false
	}
	*v = &f
	return true
}

// raw reads any value and returns a copy of its bytes (null included,
// as json.RawMessage keeps it).
func (p *reqParser) raw(v *json.RawMessage) bool {
	p.ws()
	start := p.i
	if !p.skip() {
		return false
	}
	*v = append(json.RawMessage(nil), p.b[start:p.i]...)
	return true
}

// skip reads and validates any value.
func (p *reqParser) skip() bool {
	switch p.peek() {
	case '{':
		p.depth++
		if p.depth > maxParseDepth {
			return false
		}
		ok := p.skipObject()
		p.depth--
		return ok
	case '[':
		p.depth++
		if p.depth > maxParseDepth {
			return false
		}
		ok := p.array(p.skip)
		p.depth--
		return ok
	case '"':
		return p.skipString()
	case 't':
		if len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "true" {
			p.i += 4
			return p.delimited()
		}
	case 'f':
		if len(p.b)-p.i >= 5 && string(p.b[p.i:p.i+5]) == "false" {
			p.i += 5
			return p.delimited()
		}
	case 'n':
		return p.null() && p.delimited()
	default:
		_, ok := p.number()
		return ok
	}
	return false
}

// validJSON reports whether b is one JSON value with only white space
// around it. It accepts nothing json.Valid refuses, and refuses what nests
// deeper than maxParseDepth (json.Valid allows more): callers treat false
// as "take the slow path", never as an error to report.
func validJSON(b []byte) bool {
	p := reqParser{b: b}
	if !p.skip() {
		return false
	}
	p.ws()
	return p.i == len(b)
}

// plainByte marks the bytes a JSON string holds as themselves: not a
// control, quote or backslash.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// skipObject validates an object; unlike object, it takes keys with
// escapes (nothing reads them).
func (p *reqParser) skipObject() bool {
	if p.peek() != '{' {
		return false
	}
	p.i++
	if p.peek() == '}' {
		p.i++
		return true
	}
	for {
		if p.peek() != '"' || !p.skipString() || p.peek() != ':' {
			return false
		}
		p.i++
		if !p.skip() {
			return false
		}
		if done, ok := p.sep('}'); done || !ok {
			return ok
		}
	}
}

// skipString validates a string without decoding it. encoding/json's
// scanner accepts any bytes but controls, and escapes of its list.
func (p *reqParser) skipString() bool {
	b := p.b
	for i := p.i + 1; i < len(b); i++ {
		for i < len(b) && plainByte[b[i]] {
			i++
		}
		if i >= len(b) {
			return false
		}
		switch c := b[i]; {
		case c == '"':
			p.i = i + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			i++
			if i >= len(b) {
				return false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return false
				}
				for _, h := range b[i+1 : i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false
					}
				}
				i += 4
			default:
				return false
			}
		}
	}
	return false
}

// member reads a nested object's member through fn (exact names) and
// skips the others, refusing a repeated or case-folded watched name.
func (p *reqParser) members(names []string, fn func(k []byte) bool) bool {
	var seen uint32
	return p.object(func(k []byte) bool {
		for i, n := range names {
			if string(k) == n {
				if seen&(1<<i) != 0 {
					return false
				}
				seen |= 1 << i
				return fn(k)
			}
		}
		if foldsTo(k, names) {
			return false
		}
		return p.skip()
	})
}

var (
	messageNames        = []string{"role", "content", "name", "tool_calls", "tool_call_id", "refusal"}
	partNames           = []string{"type", "text", "image_url"}
	imageURLNames       = []string{"url", "detail"}
	toolNames           = []string{"type", "function"}
	functionDefNames    = []string{"name", "description", "parameters", "strict"}
	toolCallNames       = []string{"id", "type", "function"}
	functionCallNames   = []string{"name", "arguments"}
	responseFormatNames = []string{"type", "json_schema"}
	jsonSchemaNames     = []string{"name", "description", "schema", "strict"}
	streamOptionsNames  = []string{"include_usage"}
	toolChoiceNames     = []string{"type", "function"}
	toolChoiceFnNames   = []string{"name"}
)

// elements reads an array of objects (null: nil), growing *s by one zero
// element per object and calling fill on it. A null element is left to
// encoding/json.
func elements[T any](p *reqParser, s *[]T, fill func(*T) bool) bool {
	if p.null() {
		*s = nil
		return p.delimited()
	}
	out := make([]T, 0, 4)
	ok := p.array(func() bool {
		if p.peek() != '{' {
			return false
		}
		var zero T
		out = append(out, zero)
		return fill(&out[len(out)-1])
	})
	if ok {
		*s = out
	}
	return ok
}

func (p *reqParser) messages(ms *[]Message) bool {
	return elements(p, ms, func(m *Message) bool {
		return p.members(messageNames, func(k []byte) bool {
			switch string(k) {
			case "role":
				return p.str(&m.Role)
			case "content":
				return p.content(&m.Content)
			case "name":
				return p.str(&m.Name)
			case "tool_calls":
				return elements(p, &m.ToolCalls, p.toolCall)
			case "tool_call_id":
				return p.str(&m.ToolCallID)
			default: // refusal
				return p.str(&m.Refusal)
			}
		})
	})
}

// content reads a message's content as [Content.UnmarshalJSON] does.
func (p *reqParser) content(c *Content) bool {
	switch p.peek() {
	case 'n':
		*c = Content{}
		return p.null() && p.delimited()
	case '"':
		*c = Content{}
		return p.str(&c.Text)
	case '[':
		parts := []Part{}
		ok := p.array(func() bool {
			if p.peek() != '{' {
				return false
			}
			parts = append(parts, Part{})
			return p.part(&parts[len(parts)-1])
		})
		*c = Content{Parts: parts}
		return ok
	}
	return false
}

// part reads a content part as [Part.UnmarshalJSON] does.
func (p *reqParser) part(pt *Part) bool {
	start := p.i
	ok := p.members(partNames, func(k []byte) bool {
		switch string(k) {
		case "type":
			return p.str(&pt.Type)
		case "text":
			return p.str(&pt.Text)
		default: // image_url
			if p.null() {
				pt.ImageURL = nil
				return p.delimited()
			}
			u := &ImageURL{}
			pt.ImageURL = u
			return p.members(imageURLNames, func(k []byte) bool {
				if string(k) == "url" {
					return p.str(&u.URL)
				}
				return p.str(&u.Detail)
			})
		}
	})
	if !ok {
		return false
	}
	if pt.Type != PartText && pt.Type != PartImageURL {
		*pt = Part{Type: pt.Type, Raw: append(json.RawMessage(nil), p.b[start:p.i]...)}
	}
	return true
}

func (p *reqParser) toolCall(tc *ToolCall) bool {
	return p.members(toolCallNames, func(k []byte) bool {
		switch string(k) {
		case "id":
			return p.str(&tc.ID)
		case "type":
			return p.str(&tc.Type)
		default: // function
			if p.null() {
				return p.delimited()
			}
			return p.members(functionCallNames, func(k []byte) bool {
				if string(k) == "name" {
					return p.str(&tc.Function.Name)
				}
				return p.str(&tc.Function.Arguments)
			})
		}
	})
}

func (p *reqParser) tools(ts *[]Tool) bool {
	return elements(p, ts, func(t *Tool) bool {
		return p.members(toolNames, func(k []byte) bool {
			if string(k) == "type" {
				return p.str(&t.Type)
			}
			if p.null() {
				return p.delimited()
			}
			f := &t.Function
			return p.schemaDef(functionDefNames, &f.Name, &f.Description, &f.Parameters, &f.Strict)
		})
	})
}

// schemaDef reads an object of a name, a description, a raw JSON schema
// (under the third of names) and strict: a tool's function, or a response
// format's json_schema.
func (p *reqParser) schemaDef(names []string, name, description *string, schema *json.RawMessage, strict **bool) bool {
	return p.members(names, func(k []byte) bool {
		switch string(k) {
		case "name":
			return p.str(name)
		case "description":
			return p.str(description)
		case names[2]:
			return p.raw(schema)
		default: // strict
			return p.optBool(strict)
		}
	})
}

// toolChoice reads tool_choice as [ToolChoice.UnmarshalJSON] does; the
// object form's failures are left to encoding/json.
func (p *reqParser) toolChoice(tc **ToolChoice) bool {
	if p.null() {
		*tc = nil
		return p.delimited()
	}
	if p.peek() == '"' {
		t := &ToolChoice{}
		*tc = t
		return p.str(&t.Mode)
	}
	var typ, name string
	ok := p.members(toolChoiceNames, func(k []byte) bool {
		if string(k) == "type" {
			return p.str(&typ)
		}
		if p.null() {
			return p.delimited()
		}
		return p.members(toolChoiceFnNames, func([]byte) bool { return p.str(&name) })
	})
	if !ok || typ != "function" {
		return false
	}
	*tc = &ToolChoice{Mode: ToolChoiceFunction, Function: name}
	return true
}

func (p *reqParser) responseFormat(rf **ResponseFormat) bool {
	if p.null() {
		*rf = nil
		return p.delimited()
	}
	f := &ResponseFormat{}
	*rf = f
	return p.members(responseFormatNames, func(k []byte) bool {
		if string(k) == "type" {
			return p.str(&f.Type)
		}
		if p.null() {
			f.JSONSchema = nil
			return p.delimited()
		}
		s := &JSONSchema{}
		f.JSONSchema = s
		return p.schemaDef(jsonSchemaNames, &s.Name, &s.Description, &s.Schema, &s.Strict)
	})
}

func (p *reqParser) streamOptions(so **StreamOptions) bool {
	if p.null() {
		*so = nil
		return p.delimited()
	}
	o := &StreamOptions{}
	*so = o
	return p.members(streamOptionsNames, func([]byte) bool { return p.boolean(&o.IncludeUsage) })
}

// stop reads stop as [Stop.UnmarshalJSON] does: a string, an array of
// strings (null elements are left to encoding/json) or null.
func (p *reqParser) stop(s *Stop) bool {
	switch p.peek() {
	case 'n':
		*s = nil
		return p.null() && p.delimited()
	case '"':
		v, ok := p.stringValue()
		*s = Stop{v}
		return ok
	}
	many := []string{}
	ok := p.array(func() bool {
		v, ok := p.stringValue()
		many = append(many, v)
		return ok
	})
	*s = many
	return ok
}
