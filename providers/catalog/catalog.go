// Package catalog is the model table compiled into the binary
// (models.json, embedded): which provider serves each model, its prices,
// its context window and its output limit.
//
// # Prices
//
// Prices are exact integers in picoUSD per token (1e-12 USD). The JSON
// holds them as providers publish them, decimal USD per million tokens, and
// since 1 USD/Mtok = 1e6 picoUSD/token, any price with at most six decimal
// places converts without rounding: $0.15/Mtok = 150,000 picoUSD/token,
// $2.50/Mtok = 2,500,000. [Model.Cost] multiplies in int64 with overflow
// checks and rounds the total up to the next nano-USD (1e-9 USD), the unit
// of our ledger, so a call never costs less than the provider bills.
//
// Prices are list prices for the standard tier. Not modelled: cached-input
// discounts and cache-write surcharges (cache tokens are billed as input),
// long-context tiers (Gemini 2.5 Pro above 200k prompt tokens), batch
// discounts.
//
// It imports nothing of ours. The table is read-only after init and safe
// for concurrent use.
package catalog

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Providers.
const (
	OpenAI    = "openai"
	Anthropic = "anthropic"
	Google    = "google"
	XAI       = "xai"
)

// ErrUnknownModel: no such model in the catalog (or not with that provider).
var ErrUnknownModel = errors.New("catalog: unknown model")

// ErrCostOverflow: a cost does not fit in int64 nano-USD.
var ErrCostOverflow = errors.New("catalog: cost overflows")

// ErrNegativeTokens: a token count below zero.
var ErrNegativeTokens = errors.New("catalog: negative token count")

// Model is one catalog entry.
type Model struct {
	ID       string // the model id the provider takes, e.g. "claude-sonnet-4-6"
	Provider string // OpenAI, Anthropic, Google or XAI
	// InputPico and OutputPico are picoUSD (1e-12 USD) per token.
	InputPico, OutputPico int64
	ContextWindow         int64 // tokens, prompt and output together
	MaxOutputTokens       int64 // tokens one response may produce
	Aliases               []string
	Mock                  bool // served only by the mock upstream (demos, tests)
}

// Cost returns the price of a call in nano-USD (1e-9 USD): input tokens at
// InputPico plus output tokens at OutputPico, summed exactly in picoUSD and
// then rounded up to the next nano-USD. It returns [ErrNegativeTokens] or
// [ErrCostOverflow] instead of a wrong number.
func (m Model) Cost(inputTokens, outputTokens int64) (int64, error) {
	if inputTokens < 0 || outputTokens < 0 {
		return 0, ErrNegativeTokens
	}
	in, ok := mul(inputTokens, m.InputPico)
	if !ok {
		return 0, ErrCostOverflow
	}
	out, ok := mul(outputTokens, m.OutputPico)
	if !ok {
		return 0, ErrCostOverflow
	}
	if in > math.MaxInt64-out {
		return 0, ErrCostOverflow
	}
	pico := in + out
	nano := pico / 1000
	if pico%1000 != 0 {
		nano++
	}
	return nano, nil
}

// mul multiplies non-negative a and b, reporting overflow.
func mul(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	if a > math.MaxInt64/b {
		return 0, false
	}
	return a * b, true
}

// Name returns "provider/id", the explicit form.
func (m Model) Name() string { return m.Provider + "/" + m.ID }

//go:embed models.json
var modelsJSON []byte

var (
	models []Model          // sorted by provider, then id
	byName map[string]Model // id and aliases
)

func init() {
	ms, err := parse(modelsJSON)
	if err != nil {
		panic("catalog: embedded models.json is invalid: " + err.Error()) // broken build, not input
	}
	models = ms
	byName = make(map[string]Model, 2*len(ms))
	for _, m := range ms {
		byName[m.ID] = m
		for _, a := range m.Aliases {
			byName[a] = m
		}
	}
}

type fileModel struct {
	ID              string   `json:"id"`
	Provider        string   `json:"provider"`
	InputPerMtok    string   `json:"input_per_mtok"`
	OutputPerMtok   string   `json:"output_per_mtok"`
	ContextWindow   int64    `json:"context_window"`
	MaxOutputTokens int64    `json:"max_output_tokens"`
	Aliases         []string `json:"aliases"`
	Mock            bool     `json:"mock"`
}

// parse reads a catalog file and checks it: known providers, unique names,
// exact prices, positive limits.
func parse(b []byte) ([]Model, error) {
	var f struct {
		Models []fileModel `json:"models"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	seen := make(map[string]bool)
	out := make([]Model, 0, len(f.Models))
	for _, fm := range f.Models {
		switch fm.Provider {
		case OpenAI, Anthropic, Google, XAI:
		default:
			return nil, fmt.Errorf("model %q: unknown provider %q", fm.ID, fm.Provider)
		}
		in, err := PicoPerToken(fm.InputPerMtok)
		if err != nil {
			return nil, fmt.Errorf("model %q input price: %w", fm.ID, err)
		}
		outP, err := PicoPerToken(fm.OutputPerMtok)
		if err != nil {
			return nil, fmt.Errorf("model %q output price: %w", fm.ID, err)
		}
		if fm.ContextWindow <= 0 || fm.MaxOutputTokens <= 0 {
			return nil, fmt.Errorf("model %q: limits must be positive", fm.ID)
		}
		for _, n := range append([]string{fm.ID}, fm.Aliases...) {
			if n == "" || strings.Contains(n, "/") || seen[n] {
				return nil, fmt.Errorf("model name %q empty, with '/', or listed twice", n)
			}
			seen[n] = true
		}
		out = append(out, Model{
			ID: fm.ID, Provider: fm.Provider, InputPico: in, OutputPico: outP,
			ContextWindow: fm.ContextWindow, MaxOutputTokens: fm.MaxOutputTokens,
			Aliases: fm.Aliases, Mock: fm.Mock,
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Provider != out[j].Provider {
			return out[i].Provider < out[j].Provider
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// maxPricePerMtok bounds a price at $1,000,000 per million tokens.
const maxPricePerMtok = 1_000_000

// PicoPerToken converts a decimal price in USD per million tokens ("2.50",
// "0.075") to picoUSD per token, exactly. At most six decimal places are
// allowed, so no rounding ever happens.
func PicoPerToken(usdPerMtok string) (int64, error) {
	s := strings.TrimSpace(usdPerMtok)
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(frac) > 6 || len(whole) > 7 {
		return 0, fmt.Errorf("price %q: want digits with at most 6 decimals", usdPerMtok)
	}
	var w, f int64
	for _, c := range whole {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("price %q: not a decimal number", usdPerMtok)
		}
		w = w*10 + int64(c-'0')
	}
	for i := 0; i < 6; i++ {
		f *= 10
		if i < len(frac) {
			c := frac[i]
			if c < '0' || c > '9' {
				return 0, fmt.Errorf("price %q: not a decimal number", usdPerMtok)
			}
			f += int64(c - '0')
		}
	}
	if w > maxPricePerMtok {
		return 0, fmt.Errorf("price %q: above %d USD per million tokens", usdPerMtok, maxPricePerMtok)
	}
	return w*1_000_000 + f, nil
}

// Lookup finds a model by id, alias or "provider/id". An explicit provider
// must be the model's own. Unknown names return [ErrUnknownModel].
func Lookup(name string) (Model, error) {
	provider, id, explicit := strings.Cut(name, "/")
	if !explicit {
		id, provider = name, ""
	}
	m, ok := byName[id]
	if !ok || (explicit && m.Provider != provider) {
		return Model{}, fmt.Errorf("%w: %q", ErrUnknownModel, name)
	}
	return m, nil
}

// Models returns every model, sorted by provider then id. The slice is the
// caller's.
func Models() []Model {
	return append([]Model(nil), models...)
}

// ByProvider returns the models one provider serves, sorted by id.
func ByProvider(provider string) []Model {
	var out []Model
	for _, m := range models {
		if m.Provider == provider {
			out = append(out, m)
		}
	}
	return out
}
