package catalog

import (
	"errors"
	"math"
	"testing"
)

func TestPicoPerTokenExact(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"0.15", 150_000}, {"2.50", 2_500_000}, {"10", 10_000_000}, {"0.075", 75_000},
		{"0.000001", 1}, {"15.00", 15_000_000}, {"0", 0},
	}
	for _, tt := range tests {
		if got, err := PicoPerToken(tt.in); err != nil || got != tt.want {
			t.Errorf("PicoPerToken(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "1.2345678", "-1", "1e3", "abc", ".5", "2000000"} {
		if _, err := PicoPerToken(bad); err == nil {
			t.Errorf("PicoPerToken(%q) accepted", bad)
		}
	}
}

func TestCostExactAndRoundedUp(t *testing.T) {
	mini := Model{InputPico: 150_000, OutputPico: 600_000} // gpt-4o-mini
	tests := []struct {
		name    string
		m       Model
		in, out int64
		want    int64
	}{
		{"zero", mini, 0, 0, 0},
		{"one input token rounds up", mini, 1, 0, 150},                // 150,000 pico = 150 nano exactly
		{"one million each", mini, 1_000_000, 1_000_000, 750_000_000}, // $0.75
		{"sub-nano rounds up", Model{InputPico: 1}, 1, 0, 1},
		{"exactly one nano", Model{InputPico: 1000}, 1, 0, 1},
		{"one pico over", Model{InputPico: 1001}, 1, 0, 2},
		{"sum before rounding", Model{InputPico: 500, OutputPico: 500}, 1, 1, 1},
		{"sonnet 1234/567", Model{InputPico: 3_000_000, OutputPico: 15_000_000}, 1234, 567, 12_207_000},
	}
	for _, tt := range tests {
		got, err := tt.m.Cost(tt.in, tt.out)
		if err != nil || got != tt.want {
			t.Errorf("%s: Cost(%d, %d) = %d, %v; want %d", tt.name, tt.in, tt.out, got, err, tt.want)
		}
	}
}

func TestCostRefusesOverflowAndNegatives(t *testing.T) {
	m := Model{InputPico: 15_000_000, OutputPico: 75_000_000}
	if _, err := m.Cost(math.MaxInt64/2, 0); !errors.Is(err, ErrCostOverflow) {
		t.Errorf("huge input: %v, want ErrCostOverflow", err)
	}
	if _, err := m.Cost(math.MaxInt64/15_000_000, math.MaxInt64/75_000_000); !errors.Is(err, ErrCostOverflow) {
		t.Errorf("sum overflow: %v, want ErrCostOverflow", err)
	}
	if _, err := m.Cost(-1, 0); !errors.Is(err, ErrNegativeTokens) {
		t.Errorf("negative: %v, want ErrNegativeTokens", err)
	}
}

func TestLookupAndRouting(t *testing.T) {
	tests := []struct {
		name, provider, id string
		ok                 bool
	}{
		{"gpt-4o-mini", OpenAI, "gpt-4o-mini", true},
		{"openai/gpt-4o-mini", OpenAI, "gpt-4o-mini", true},
		{"anthropic/claude-sonnet-4-6", Anthropic, "claude-sonnet-4-6", true},
		{"claude-sonnet-4-5-20250929", Anthropic, "claude-sonnet-4-5", true},
		{"google/gemini-2.5-flash", Google, "gemini-2.5-flash", true},
		{"grok-4", XAI, "grok-4", true},
		{"openai/claude-sonnet-4-6", "", "", false},
		{"gpt-9", "", "", false},
		{"", "", "", false},
		{"/gpt-4o", "", "", false},
	}
	for _, tt := range tests {
		m, err := Lookup(tt.name)
		if !tt.ok {
			if !errors.Is(err, ErrUnknownModel) {
				t.Errorf("Lookup(%q) = %+v, %v; want ErrUnknownModel", tt.name, m, err)
			}
			continue
		}
		if err != nil || m.Provider != tt.provider || m.ID != tt.id {
			t.Errorf("Lookup(%q) = %s/%s, %v; want %s/%s", tt.name, m.Provider, m.ID, err, tt.provider, tt.id)
		}
	}
}

func TestEmbeddedCatalog(t *testing.T) {
	want := map[string][2]int64{ // published USD/Mtok × 1e6
		"gpt-4o": {2_500_000, 10_000_000}, "gpt-4o-mini": {150_000, 600_000}, "gpt-4.1": {2_000_000, 8_000_000},
		"o3": {2_000_000, 8_000_000}, "o4-mini": {1_100_000, 4_400_000},
		"claude-sonnet-4-6": {3_000_000, 15_000_000}, "claude-opus-4-6": {5_000_000, 25_000_000}, "claude-haiku-4-5": {1_000_000, 5_000_000},
		"gemini-2.5-pro": {1_250_000, 10_000_000}, "gemini-2.5-flash": {300_000, 2_500_000}, "gemini-2.5-flash-lite": {100_000, 400_000},
		"grok-4": {3_000_000, 15_000_000}, "grok-3": {3_000_000, 15_000_000}, "grok-3-mini": {300_000, 500_000},
	}
	for id, p := range want {
		m, err := Lookup(id)
		if err != nil || m.InputPico != p[0] || m.OutputPico != p[1] {
			t.Errorf("Lookup(%q) = %d/%d, %v; want %d/%d", id, m.InputPico, m.OutputPico, err, p[0], p[1])
		}
	}
	for _, p := range []string{OpenAI, Anthropic, Google, XAI} {
		if len(ByProvider(p)) < 3 {
			t.Errorf("ByProvider(%q) has %d models", p, len(ByProvider(p)))
		}
	}
	if len(Models()) < 20 {
		t.Errorf("Models() = %d entries", len(Models()))
	}
}

func TestParseRejectsBadCatalog(t *testing.T) {
	for name, in := range map[string]string{
		"provider": `{"models":[{"id":"a","provider":"azure","input_per_mtok":"1","output_per_mtok":"1","context_window":1,"max_output_tokens":1}]}`,
		"price":    `{"models":[{"id":"a","provider":"openai","input_per_mtok":"0.0000001","output_per_mtok":"1","context_window":1,"max_output_tokens":1}]}`,
		"dup":      `{"models":[{"id":"a","provider":"openai","input_per_mtok":"1","output_per_mtok":"1","context_window":1,"max_output_tokens":1},{"id":"a","provider":"xai","input_per_mtok":"1","output_per_mtok":"1","context_window":1,"max_output_tokens":1}]}`,
		"limits":   `{"models":[{"id":"a","provider":"openai","input_per_mtok":"1","output_per_mtok":"1","context_window":0,"max_output_tokens":1}]}`,
	} {
		if _, err := parse([]byte(in)); err == nil {
			t.Errorf("parse(%s) accepted", name)
		}
	}
}
