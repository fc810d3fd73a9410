// Package money holds the gateway's one unit of account, [Nanos] (an int64
// count of nano-USD, 1e-9 USD), and its exact conversions to and from the
// decimal USD numbers that JSON carries.
//
// No float64 ever touches an amount: parsing works on the decimal digits of
// the JSON number text and formatting prints integer parts. The package is a
// leaf: it imports nothing of ours, holds no state and is safe for concurrent
// use.
package money

import (
	"errors"
	"math"
	"math/bits"
	"strconv"
)

// Nanos is an amount of money in nano-USD (1e-9 USD). int64 holds about
// ±9.2 billion USD.
type Nanos int64

// PerUSD is the number of [Nanos] in one USD.
const PerUSD Nanos = 1_000_000_000

// MaxAmount is the largest magnitude [ParseUSD] accepts: one billion USD. It
// keeps every sum of a few amounts far from int64 overflow.
const MaxAmount Nanos = 1_000_000_000 * PerUSD

// Errors returned by [ParseUSD].
var (
	ErrSyntax    = errors.New("money: not a decimal number")
	ErrPrecision = errors.New("money: more than 9 decimal places")
	ErrRange     = errors.New("money: amount out of range")
	ErrOverflow  = errors.New("money: arithmetic overflow")
)

// ParseUSD converts the text of a JSON number (for example `5`, `0.25`,
// `1.5e2`) into an exact [Nanos] amount. It refuses anything that is not a
// JSON number, more than 9 decimal places, and magnitudes above
// [MaxAmount]. `-0` parses as zero. Callers decide whether negative or zero
// amounts make sense for their operation.
func ParseUSD(s string) (Nanos, error) {
	if len(s) == 0 || len(s) > 64 {
		return 0, ErrSyntax
	}
	i := 0
	neg := false
	if s[0] == '-' {
		neg = true
		i++
	}
	// Integer part: JSON forbids leading zeros other than a lone 0.
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intDigits := s[start:i]
	if len(intDigits) == 0 || (len(intDigits) > 1 && intDigits[0] == '0') {
		return 0, ErrSyntax
	}
	var fracDigits string
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		fracDigits = s[fs:i]
		if len(fracDigits) == 0 {
			return 0, ErrSyntax
		}
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		es := i
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		ds := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if ds == i || i-ds > 4 {
			return 0, ErrRange
		}
		e, err := strconv.Atoi(s[es:i])
		if err != nil {
			return 0, ErrSyntax
		}
		exp = e
	}
	if i != len(s) {
		return 0, ErrSyntax
	}
	// digits × 10^(exp - len(frac)) must be a whole number of nanos.
	digits := trimLeadingZeros(intDigits + fracDigits)
	scale := exp - len(fracDigits) + 9 // power of ten to apply to digits, in nanos
	// Drop trailing zeros that a negative scale would divide away.
	for scale < 0 && len(digits) > 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		scale++
	}
	if len(digits) == 0 {
		return 0, nil
	}
	if scale < 0 {
		return 0, ErrPrecision
	}
	if len(digits)+scale > 19 {
		return 0, ErrRange
	}
	var v uint64
	for j := 0; j < len(digits); j++ {
		v = v*10 + uint64(digits[j]-'0')
	}
	for ; scale > 0; scale-- {
		hi, lo := bits.Mul64(v, 10)
		if hi != 0 {
			return 0, ErrRange
		}
		v = lo
	}
	if v > uint64(MaxAmount) {
		return 0, ErrRange
	}
	n := Nanos(v)
	if neg {
		n = -n
	}
	return n, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func trimLeadingZeros(s string) string {
	for len(s) > 0 && s[0] == '0' {
		s = s[1:]
	}
	return s
}

// String formats n as a decimal USD number without trailing zeros, the form
// JSON responses carry: 1500000000 → "1.5", -1 → "-0.000000001".
func (n Nanos) String() string {
	return string(n.AppendUSD(nil))
}

// AppendUSD appends the decimal USD form of n (see [Nanos.String]) to b.
func (n Nanos) AppendUSD(b []byte) []byte {
	u := uint64(n)
	if n < 0 {
		b = append(b, '-')
		u = uint64(-(n + 1)) + 1 // correct for math.MinInt64 too
	}
	whole, frac := u/uint64(PerUSD), u%uint64(PerUSD)
	b = strconv.AppendUint(b, whole, 10)
	if frac == 0 {
		return b
	}
	var buf [9]byte
	for i := 8; i >= 0; i-- {
		buf[i] = byte('0' + frac%10)
		frac /= 10
	}
	end := 9
	for end > 0 && buf[end-1] == '0' {
		end--
	}
	b = append(b, '.')
	return append(b, buf[:end]...)
}

// MarshalJSON renders n as a JSON number in USD.
func (n Nanos) MarshalJSON() ([]byte, error) { return n.AppendUSD(nil), nil }

// UnmarshalJSON parses a JSON number in USD exactly (see [ParseUSD]).
// Strings, null and booleans are refused.
func (n *Nanos) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil // encoding/json's convention: null leaves the value as it is
	}
	v, err := ParseUSD(string(b))
	if err != nil {
		return err
	}
	*n = v
	return nil
}

// Add returns a+b, or [ErrOverflow].
func Add(a, b Nanos) (Nanos, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, ErrOverflow
	}
	return s, nil
}

// MulDivCeil returns ceil(a × num / den) for non-negative a, num and a
// positive den, computed in 128 bits, or [ErrOverflow] when the result does
// not fit.
func MulDivCeil(a Nanos, num, den int64) (Nanos, error) {
	if a < 0 || num < 0 || den <= 0 {
		return 0, ErrOverflow
	}
	hi, lo := bits.Mul64(uint64(a), uint64(num))
	if hi >= uint64(den) {
		return 0, ErrOverflow
	}
	q, r := bits.Div64(hi, lo, uint64(den))
	if r != 0 {
		q++
	}
	if q > math.MaxInt64 {
		return 0, ErrOverflow
	}
	return Nanos(q), nil
}
