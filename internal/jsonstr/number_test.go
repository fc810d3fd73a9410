package jsonstr

import (
	"encoding/json"
	"testing"
)

// FuzzNumberEnd: NumberEnd reads a whole input exactly when encoding/json
// takes that input for one number token.
func FuzzNumberEnd(f *testing.F) {
	for _, s := range []string{"0", "-0", "12", "1.5", "-1.25e+10", "1E5", "01", "1.", ".5", "-", "1e", "1e+", "+1", "0x10", "1.5.5", "2e400"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		whole := NumberEnd(b, 0) == len(b) && len(b) > 0
		// A number token alone: no white space around it (json.Valid
		// takes "0 " too).
		last := byte(0)
		if len(b) > 0 {
			last = b[len(b)-1]
		}
		number := len(b) > 0 && (b[0] == '-' || '0' <= b[0] && b[0] <= '9') && '0' <= last && last <= '9' && json.Valid(b)
		if whole != number {
			t.Fatalf("%q: NumberEnd reads it whole %v, encoding/json takes it for a number %v", b, whole, number)
		}
	})
}

func TestNumberEndStopsAtTheTokensEnd(t *testing.T) {
	for _, c := range []struct {
		in   string
		from int
		want int
	}{{`{"a":12,`, 5, 7}, {"-0.5e3}", 0, 6}, {"01", 0, 1}, {"1.x", 0, -1}, {"x", 0, -1}, {"", 0, -1}, {"7", 1, -1}} {
		if got := NumberEnd([]byte(c.in), c.from); got != c.want {
			t.Errorf("NumberEnd(%q, %d) = %d, want %d", c.in, c.from, got, c.want)
		}
	}
}
