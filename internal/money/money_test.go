package money

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
)

func TestParseUSD(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Nanos
		err  error
	}{
		{"integer", "5", 5 * PerUSD, nil},
		{"zero", "0", 0, nil},
		{"negative zero", "-0", 0, nil},
		{"fraction", "0.25", 250_000_000, nil},
		{"nine decimals", "0.000000001", 1, nil},
		{"ten decimals", "0.0000000001", 0, ErrPrecision},
		{"ten decimals trailing zero", "0.0000000010", 1, nil},
		{"negative", "-1.5", -1_500_000_000, nil},
		{"exponent", "1.5e2", 150 * PerUSD, nil},
		{"negative exponent", "15e-1", 1_500_000_000, nil},
		{"exponent too precise", "1e-10", 0, ErrPrecision},
		{"huge exponent", "1e400", 0, ErrRange},
		{"max", "1000000000", MaxAmount, nil},
		{"above max", "1000000000.000000001", 0, ErrRange},
		{"way above", "99999999999999999999999", 0, ErrRange},
		{"NaN", "NaN", 0, ErrSyntax},
		{"Infinity", "Infinity", 0, ErrSyntax},
		{"string", `"5"`, 0, ErrSyntax},
		{"leading zero", "05", 0, ErrSyntax},
		{"plus sign", "+5", 0, ErrSyntax},
		{"dot only", "5.", 0, ErrSyntax},
		{"leading dot", ".5", 0, ErrSyntax},
		{"empty", "", 0, ErrSyntax},
		{"float sum text", "0.30000000000000004", 0, ErrPrecision},
		{"spaces", " 5", 0, ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseUSD(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("ParseUSD(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			if err == nil && got != tt.want {
				t.Fatalf("ParseUSD(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		in   Nanos
		want string
	}{
		{0, "0"}, {PerUSD, "1"}, {1_500_000_000, "1.5"}, {1, "0.000000001"},
		{-1, "-0.000000001"}, {-2 * PerUSD, "-2"}, {123_456_789_012, "123.456789012"},
		{math.MinInt64, "-9223372036.854775808"}, {math.MaxInt64, "9223372036.854775807"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("Nanos(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	var v struct {
		A Nanos `json:"amount_usd"`
	}
	if err := json.Unmarshal([]byte(`{"amount_usd":0.1}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.A != 100_000_000 {
		t.Fatalf("got %d", v.A)
	}
	if err := json.Unmarshal([]byte(`{"amount_usd":"0.1"}`), &v); err == nil {
		t.Fatal("string amount accepted")
	}
	b, _ := json.Marshal(v)
	if string(b) != `{"amount_usd":0.1}` {
		t.Fatalf("Marshal = %s", b)
	}
}

func TestMulDivCeil(t *testing.T) {
	got, err := MulDivCeil(10, 11500, 10000)
	if err != nil || got != 12 {
		t.Fatalf("MulDivCeil(10, 1.15) = %d, %v; want 12", got, err)
	}
	if _, err := MulDivCeil(math.MaxInt64, 2, 1); !errors.Is(err, ErrOverflow) {
		t.Fatalf("overflow not detected: %v", err)
	}
	if _, err := Add(math.MaxInt64, 1); !errors.Is(err, ErrOverflow) {
		t.Fatalf("Add overflow not detected: %v", err)
	}
}

func FuzzParseUSD(f *testing.F) {
	for _, s := range []string{"5", "0.1", "-0", "1e400", "1.000000001", "NaN", "9e9", "1E-9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseUSD(s)
		if err != nil {
			return
		}
		if n > MaxAmount || n < -MaxAmount {
			t.Fatalf("ParseUSD(%q) = %d outside range", s, n)
		}
		// Round trip through the canonical form is exact.
		back, err := ParseUSD(n.String())
		if err != nil || back != n {
			t.Fatalf("round trip %q -> %d -> %q -> %d, %v", s, n, n.String(), back, err)
		}
	})
}

// JSON null leaves a Nanos as it is (encoding/json's convention), so a
// view that answers null for an amount it does not know decodes.
func TestUnmarshalNullLeavesTheValue(t *testing.T) {
	n := Nanos(42)
	if err := n.UnmarshalJSON([]byte("null")); err != nil || n != 42 {
		t.Fatalf("null: %v, value %d", err, n)
	}
	if err := n.UnmarshalJSON([]byte(`"1"`)); err == nil {
		t.Fatal("a string amount was accepted")
	}
}
