package mockllm

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/assistiv/gateway/internal/jsonstr"
)

// words is the vocabulary of generated replies. Its order is part of the
// deterministic output: changing it changes every reply.
var words = [...]string{
	"the", "gateway", "routes", "each", "request", "to", "a", "provider",
	"model", "and", "returns", "tokens", "with", "budget", "checks", "for",
	"every", "tenant", "stream", "reply", "quickly", "while", "usage", "is",
	"counted", "exactly", "once", "so", "billing", "stays", "fair", "across",
	"platforms", "users", "keys", "limits", "retries", "upstream", "errors", "are",
	"handled", "gracefully", "by", "design", "latency", "remains", "low", "under",
	"load", "because", "actors", "own", "state", "that", "never", "leaks", "between",
	"accounts", "mock", "servers", "answer", "deterministic", "text", "here",
}

// fnv64 is 64-bit FNV-1a: stable across processes and releases, which the
// deterministic output needs (hash/maphash is seeded per process).
func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func fnv64b(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// splitmix64 advances *x and returns the next value of the sequence.
func splitmix64(x *uint64) uint64 {
	*x += 0x9e3779b97f4a7c15
	z := *x
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// sentencePieces returns n words drawn from [words] seeded by seed text, as
// stream pieces: the first capitalised, later ones with a leading space, the
// last ending in a period. Joining the pieces gives the sentence.
func sentencePieces(seed string, n int) []string {
	x := fnv64(seed)
	out := make([]string, n)
	for i := range out {
		w := words[splitmix64(&x)%uint64(len(words))]
		switch {
		case i == 0:
			w = strings.ToUpper(w[:1]) + w[1:]
		default:
			w = " " + w
		}
		if i == n-1 {
			w += "."
		}
		out[i] = w
	}
	return out
}

// wordPieces splits s into pieces of one word each, every piece but the first
// carrying the whitespace before its word, so that joining them gives s back
// exactly. It returns at most max pieces (max <= 0: no limit); when it stops
// early, truncated is true.
func wordPieces(s string, max int) (pieces []string, truncated bool) {
	start, i := 0, 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == len(s) {
			break
		}
		for i < len(s) && !isSpace(s[i]) {
			i++
		}
		if max > 0 && len(pieces) == max {
			return pieces, true
		}
		pieces = append(pieces, s[start:i])
		start = i
	}
	if start < len(s) {
		if len(pieces) == 0 {
			return []string{s}, false
		}
		pieces[len(pieces)-1] += s[start:]
	}
	return pieces, false
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

// countWords is the mock's token count of input text: whitespace-separated
// words.
func countWords(s string) int {
	n := 0
	inWord := false
	for i := 0; i < len(s); i++ {
		if isSpace(s[i]) {
			inWord = false
		} else if !inWord {
			inWord = true
			n++
		}
	}
	return n
}

// fragmentBytes is the target size of a JSON fragment (tool arguments and
// structured output are streamed in fragments of about this many bytes, one
// token each).
const fragmentBytes = 8

// fragments splits s into ceil(len/fragmentBytes) pieces, at most max
// (max <= 0: no limit), cut on rune boundaries, of near-equal size.
func fragments(s string, max int) []string {
	if s == "" {
		return []string{""}
	}
	n := (len(s) + fragmentBytes - 1) / fragmentBytes
	if max > 0 && n > max {
		n = max
	}
	out := make([]string, 0, n)
	rest := s
	for i := n; i > 0; i-- {
		size := len(rest) / i
		if i == 1 {
			size = len(rest)
		}
		for size < len(rest) && !utf8.RuneStart(rest[size]) {
			size++
		}
		if size == 0 && len(rest) > 0 {
			// Fewer runes than pieces left: take one rune.
			_, size = utf8.DecodeRuneInString(rest)
		}
		out = append(out, rest[:size])
		rest = rest[size:]
		if rest == "" {
			break
		}
	}
	return out
}

// hexID returns prefix followed by n hex digits derived from h.
func hexID(prefix string, h uint64, n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 0, len(prefix)+n)
	b = append(b, prefix...)
	x := h
	for i := 0; i < n; i++ {
		if i%16 == 0 && i > 0 {
			x = splitmix64(&h)
		}
		b = append(b, digits[x&15])
		x >>= 4
	}
	return string(b)
}

// appendJSONString appends s as a JSON string literal as an OpenAI-style
// upstream writes it (no HTML escaping). Invalid UTF-8 becomes U+FFFD;
// U+2028 and U+2029 are escaped so the output is safe in any JSON consumer.
func appendJSONString(dst []byte, s string) []byte { return jsonstr.Append(dst, s, false) }

func appendInt(dst []byte, n int) []byte { return strconv.AppendInt(dst, int64(n), 10) }
