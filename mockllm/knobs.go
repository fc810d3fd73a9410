package mockllm

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// faultKind is what a request asks the mock to do instead of answering.
type faultKind uint8

const (
	faultNone        faultKind = iota
	faultStatus                // an HTTP error status with the provider's body
	faultHang                  // no response until the client leaves or HangMax
	faultMalformed             // broken JSON: mid-stream, or a truncated body
	faultDisconnect            // connection closed: mid-stream, or before any byte
	faultStall                 // stream stops mid-way, then closes after HangMax
	faultStreamError           // the provider's in-stream error event mid-way
)

// fault is an injected failure.
type fault struct {
	kind   faultKind
	status int // for faultStatus
}

// knobs is the effective per-request behaviour: config defaults, then model
// directives, then X-Mock-* headers, later ones winning.
type knobs struct {
	latency   time.Duration
	ttft      time.Duration
	tps       float64
	tokens    int // reply length; 0 means Config.Tokens
	fault     fault
	failFirst int
	failKey   string
}

// Request header names of the per-request controls.
const (
	HeaderLatency   = "X-Mock-Latency"
	HeaderTTFT      = "X-Mock-TTFT"
	HeaderTPS       = "X-Mock-Tokens-Per-Second"
	HeaderTokens    = "X-Mock-Tokens"
	HeaderError     = "X-Mock-Error"
	HeaderFailFirst = "X-Mock-Fail-First"
	HeaderFailKey   = "X-Mock-Fail-Key"
	HeaderTextTool  = "X-Mock-Text-And-Tool"
)

// errBadControl marks a malformed X-Mock-* header or mock- model directive;
// the request is answered 400 in the provider's error format.
var errBadControl = errors.New("mockllm: bad mock control")

// validFault reports whether v is an X-Mock-Error value.
func validFault(v string) bool {
	_, err := parseFault(v)
	return err == nil
}

// parseFault reads an X-Mock-Error value or the part after "error-" in a
// model directive.
func parseFault(v string) (fault, error) {
	switch strings.ReplaceAll(strings.ToLower(strings.TrimSpace(v)), "-", "_") {
	case "", "none":
		return fault{}, nil
	case "hang", "timeout":
		return fault{kind: faultHang}, nil
	case "malformed", "malformed_stream":
		return fault{kind: faultMalformed}, nil
	case "disconnect", "close":
		return fault{kind: faultDisconnect}, nil
	case "stall":
		return fault{kind: faultStall}, nil
	case "stream_error":
		return fault{kind: faultStreamError}, nil
	}
	code, err := strconv.Atoi(v)
	if err != nil || code < 400 || code > 599 {
		return fault{}, fmt.Errorf("%w: error %q: want a status 400-599, hang, malformed_stream, disconnect, stall or stream_error", errBadControl, v)
	}
	return fault{kind: faultStatus, status: code}, nil
}

// parseWait reads a Go duration ("250ms", "1.5s") or a bare number of
// milliseconds.
func parseWait(name, v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if ms, err := strconv.ParseFloat(v, 64); err == nil {
		if ms < 0 || ms > 600000 {
			return 0, fmt.Errorf("%w: %s %q out of range [0, 10m]", errBadControl, name, v)
		}
		return time.Duration(ms * float64(time.Millisecond)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > 10*time.Minute {
		return 0, fmt.Errorf("%w: %s %q: want a duration in [0, 10m] or milliseconds", errBadControl, name, v)
	}
	return d, nil
}

func parseCount(name, v string, max int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 || n > max {
		return 0, fmt.Errorf("%w: %s %q: want an integer in [0, %d]", errBadControl, name, v, max)
	}
	return n, nil
}

func parseRate(name, v string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || !(f >= 0 && f <= 1e6) {
		return 0, fmt.Errorf("%w: %s %q: want a number in [0, 1e6]", errBadControl, name, v)
	}
	return f, nil
}

// directives are the controls named in a model name (see the package doc).
// Fields hold -1 (or the zero fault) when the model does not set them.
type directives struct {
	latency, ttft time.Duration
	tps           float64
	tokens        int
	failFirst     int
	fault         fault
	textTool      bool // text-and-tool: a tool call opens with text
}

func noDirectives() directives {
	return directives{latency: -1, ttft: -1, tps: -1, tokens: -1, failFirst: -1}
}

// parseDirectives reads every "mock-<directive>" segment of model.
func parseDirectives(model string) (directives, error) {
	d := noDirectives()
	parts := strings.Split(strings.ToLower(model), "mock-")
	for _, p := range parts[1:] {
		p = strings.Trim(p, "-_.:")
		if p == "" {
			continue
		}
		if err := d.apply(p); err != nil {
			return d, fmt.Errorf("model %q: %w", model, err)
		}
	}
	return d, nil
}

func (d *directives) apply(p string) error {
	name, arg, _ := cutLast(p)
	var err error
	switch {
	case strings.HasPrefix(p, "error-"):
		d.fault, err = parseFault(strings.TrimPrefix(p, "error-"))
	case strings.HasPrefix(p, "fail-first-"):
		d.failFirst, err = parseCount("fail-first", strings.TrimPrefix(p, "fail-first-"), 1000000)
	case p == "text-and-tool":
		d.textTool = true
	case name == "latency":
		d.latency, err = parseWait("latency", arg)
	case name == "ttft":
		d.ttft, err = parseWait("ttft", arg)
	case name == "tps":
		d.tps, err = parseRate("tps", arg)
	case name == "tokens":
		d.tokens, err = parseCount("tokens", arg, 100000)
		if err == nil && d.tokens == 0 {
			err = fmt.Errorf("%w: tokens must be at least 1", errBadControl)
		}
	default:
		// Unknown directives are ignored, so that a plain model called
		// "mock-model" stays a plain model.
		if f, ferr := parseFault(p); ferr == nil {
			d.fault = f
		}
	}
	return err
}

// cutLast splits "latency-200ms" into "latency" and "200ms".
func cutLast(p string) (name, arg string, ok bool) {
	i := strings.LastIndexByte(p, '-')
	if i < 0 {
		return p, "", false
	}
	return p[:i], p[i+1:], true
}

// headerTokens reads X-Mock-Tokens alone: it is part of the reply cache key,
// so it is needed before the plan.
func headerTokens(h *fasthttp.RequestHeader) (int, error) {
	v := h.Peek(HeaderTokens)
	if len(v) == 0 {
		return 0, nil
	}
	n, err := parseCount(HeaderTokens, string(v), 100000)
	if err == nil && n == 0 {
		err = fmt.Errorf("%w: %s must be at least 1", errBadControl, HeaderTokens)
	}
	return n, err
}

// headerTextTool reads X-Mock-Text-And-Tool ("1", "true", "0", "false"),
// which shapes the reply and so is part of the reply cache key. def is the
// value when the header is absent.
func headerTextTool(h *fasthttp.RequestHeader, def bool) (bool, error) {
	v := h.Peek(HeaderTextTool)
	if len(v) == 0 {
		return def, nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(string(v)))
	if err != nil {
		return def, fmt.Errorf("%w: %s %q: want true or false", errBadControl, HeaderTextTool, v)
	}
	return b, nil
}

// resolveKnobs layers config defaults, the plan's model directives and the
// request headers.
func resolveKnobs(cfg *Config, d *directives, h *fasthttp.RequestHeader, tokens int) (knobs, error) {
	k := knobs{latency: cfg.Latency, ttft: cfg.TTFT, tps: cfg.TokensPerSecond, tokens: tokens}
	if d.latency >= 0 {
		k.latency = d.latency
	}
	if d.ttft >= 0 {
		k.ttft = d.ttft
	}
	if d.tps >= 0 {
		k.tps = d.tps
	}
	if d.failFirst >= 0 {
		k.failFirst = d.failFirst
	}
	k.fault = d.fault
	var err error
	if v := h.Peek(HeaderLatency); len(v) > 0 {
		if k.latency, err = parseWait(HeaderLatency, string(v)); err != nil {
			return k, err
		}
	}
	if v := h.Peek(HeaderTTFT); len(v) > 0 {
		if k.ttft, err = parseWait(HeaderTTFT, string(v)); err != nil {
			return k, err
		}
	}
	if v := h.Peek(HeaderTPS); len(v) > 0 {
		if k.tps, err = parseRate(HeaderTPS, string(v)); err != nil {
			return k, err
		}
	}
	if v := h.Peek(HeaderError); len(v) > 0 {
		if k.fault, err = parseFault(string(v)); err != nil {
			return k, err
		}
	}
	if v := h.Peek(HeaderFailFirst); len(v) > 0 {
		if k.failFirst, err = parseCount(HeaderFailFirst, string(v), 1000000); err != nil {
			return k, err
		}
	}
	if v := h.Peek(HeaderFailKey); len(v) > 0 {
		k.failKey = string(v)
	}
	return k, nil
}
