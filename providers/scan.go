package providers

import (
	"encoding/json"
	"errors"
	"unicode/utf8"

	"github.com/assistiv/gateway/internal/jsonstr"
)

// errScan is what scanObject returns for input it cannot walk; callers
// only pass JSON that encoding/json has already accepted, so it signals a
// bug, and they fall back to a full decode.
var errScan = errors.New("providers: not a JSON object")

// scanObject calls fn with each top-level member of the JSON object b: its
// key (unescaped) and the raw bytes of its value. It does not validate: b
// must be JSON that encoding/json accepted. It replaces a second full
// decode of a request (into map[string]json.RawMessage) when only the
// names of the members, and the values of a few unknown ones, are needed:
// nested values are skipped by counting brackets outside strings. fn
// returning false stops the scan.
func scanObject(b []byte, fn func(key string, value []byte) bool) error {
	return scanMembers(b, func(key string, _, vstart, vend int) bool { return fn(key, b[vstart:vend]) })
}

// scanMembers is scanObject with positions: fn gets each member's key
// (unescaped), the index of the key's opening quote, and the bounds of
// its value, b[vstart:vend].
func scanMembers(b []byte, fn func(key string, kstart, vstart, vend int) bool) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errScan
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for i < len(b) {
		if b[i] != '"' {
			return errScan
		}
		kstart := i
		end, escaped := stringEnd(b, i)
		if end < 0 {
			return errScan
		}
		key := string(b[i+1 : end])
		if escaped || !utf8.ValidString(key) { // as encoding/json decodes it
			if err := json.Unmarshal(b[i:end+1], &key); err != nil {
				return errScan
			}
		}
		i = skipSpace(b, end+1)
		if i >= len(b) || b[i] != ':' {
			return errScan
		}
		i = skipSpace(b, i+1)
		vend := valueEnd(b, i)
		if vend < 0 {
			return errScan
		}
		if !fn(key, kstart, i, vend) {
			return nil
		}
		i = skipSpace(b, vend)
		if i >= len(b) {
			return errScan
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return nil
		default:
			return errScan
		}
	}
	return errScan
}

func skipSpace(b []byte, i int) int { return jsonstr.SkipSpace(b, i) }

// stringEnd returns the index of the closing quote of the string opening
// at b[i], and whether it holds escapes; -1 when it does not close.
func stringEnd(b []byte, i int) (int, bool) {
	escaped := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++ // the escaped byte (a \u's hex digits are plain bytes)
		case '"':
			return j, escaped
		}
	}
	return -1, false
}

// valueEnd returns the index just past the value starting at b[i].
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		end, _ := stringEnd(b, i)
		if end < 0 {
			return -1
		}
		return end + 1
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, _ := stringEnd(b, j)
				if end < 0 {
					return -1
				}
				j = end
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default: // number, true, false, null: up to a delimiter
		j := i
	scalar:
		for ; j < len(b); j++ {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				break scalar
			}
		}
		if j == i {
			return -1
		}
		return j
	}
}

// scanArray calls fn with the raw bytes of each element of the JSON array
// b. Like scanObject it does not validate: b must be JSON.
func scanArray(b []byte, fn func(elem []byte) bool) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return errScan
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return nil
	}
	for i < len(b) {
		end := valueEnd(b, i)
		if end < 0 {
			return errScan
		}
		if !fn(b[i:end]) {
			return nil
		}
		i = skipSpace(b, end)
		if i >= len(b) {
			return errScan
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return nil
		default:
			return errScan
		}
	}
	return errScan
}
