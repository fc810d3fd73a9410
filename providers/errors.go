package providers

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Sentinels, matched with errors.Is through the [*Error] that carries them.
// The status each one is given is the one the edge should answer with.
var (
	// ErrInvalidRequest: the request cannot be sent (400). Upstream 400, 413
	// and 422 answers match it too.
	ErrInvalidRequest = errors.New("providers: invalid request")
	// ErrUnsupported: the request uses a feature this upstream lacks (400).
	ErrUnsupported = errors.New("providers: not supported by this provider")
	// ErrBadUpstream: the upstream configuration (base URL, key) is unusable (500).
	ErrBadUpstream = errors.New("providers: bad upstream configuration")
	// ErrConnect: no connection to the upstream, or it closed before answering (502).
	ErrConnect = errors.New("providers: cannot connect to upstream")
	// ErrTimeout: the upstream did not answer, or went silent, in time (504).
	ErrTimeout = errors.New("providers: upstream timed out")
	// ErrMalformed: the upstream answered with something unparseable (502).
	ErrMalformed = errors.New("providers: malformed upstream response")
	// ErrTruncated: the stream ended before the provider's terminal event (502).
	ErrTruncated = errors.New("providers: upstream stream ended early")
	// ErrResponseTooLarge: the response body passed Config.MaxResponseBytes
	// or the stream passed Config.MaxStreamBytes (502).
	ErrResponseTooLarge = errors.New("providers: upstream response too large")
	// ErrEventTooLarge: one SSE line or event passed Config.MaxEventBytes (502).
	ErrEventTooLarge = errors.New("providers: upstream event too large")
	// ErrInvalidUsage: usage numbers negative or absurd (502).
	ErrInvalidUsage = errors.New("providers: invalid upstream usage")
	// ErrUpstream: the upstream answered with an error status; the [*Error]
	// has its status, type and message.
	ErrUpstream = errors.New("providers: upstream error")
)

// Error is an upstream or translation failure in OpenAI's error vocabulary.
// Status is the HTTP status to answer the client with; Type and Code are
// what {"error":{"type","code","message"}} should carry.
type Error struct {
	Status    int
	Type      string // invalid_request_error, authentication_error, permission_error, not_found_error, rate_limit_error, server_error, ...
	Code      string // short machine code, e.g. upstream_timeout, invalid_api_key
	Message   string // safe to show: the provider key is redacted
	Param     string // request field at fault, when known
	Provider  string // "openai", "anthropic", "google", "xai"; "" before any upstream was involved
	Retryable bool   // a later identical attempt may succeed: 429, 5xx, connection failures

	// RetryAfter is the upstream's Retry-After, when it sent one.
	RetryAfter time.Duration

	err error // sentinel
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("providers: ")
	if e.Provider != "" {
		b.WriteString(e.Provider)
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "%d %s", e.Status, e.Type)
	if e.Code != "" {
		b.WriteString(" (")
		b.WriteString(e.Code)
		b.WriteString(")")
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Unwrap returns the sentinel the error carries.
func (e *Error) Unwrap() error { return e.err }

// Is matches [ErrInvalidRequest] for every 400/413/422 error, besides the
// carried sentinel.
func (e *Error) Is(target error) bool {
	if target == ErrInvalidRequest {
		return e.Status == http.StatusBadRequest || e.Status == http.StatusRequestEntityTooLarge || e.Status == http.StatusUnprocessableEntity
	}
	return false
}

// sentinelInfo is the status, type and code each sentinel gets.
var sentinelInfo = map[error]struct {
	status    int
	typ, code string
	retryable bool
}{
	ErrInvalidRequest:   {400, "invalid_request_error", "invalid_request", false},
	ErrUnsupported:      {400, "invalid_request_error", "unsupported_parameter", false},
	ErrBadUpstream:      {500, "server_error", "provider_misconfigured", false},
	ErrConnect:          {502, "server_error", "upstream_unreachable", true},
	ErrTimeout:          {504, "server_error", "upstream_timeout", false},
	ErrMalformed:        {502, "server_error", "upstream_malformed", false},
	ErrTruncated:        {502, "server_error", "upstream_truncated", false},
	ErrResponseTooLarge: {502, "server_error", "upstream_response_too_large", false},
	ErrEventTooLarge:    {502, "server_error", "upstream_event_too_large", false},
	ErrInvalidUsage:     {502, "server_error", "upstream_invalid_usage", false},
}

// newErr returns an *Error carrying sentinel with its standard status.
func newErr(sentinel error, msg string) *Error {
	info := sentinelInfo[sentinel]
	return &Error{Status: info.status, Type: info.typ, Code: info.code, Message: msg, Retryable: info.retryable, err: sentinel}
}

// NewError returns an [*Error] carrying sentinel (one of this package's
// Err* values) with its standard status, type and code.
func NewError(sentinel error, provider, msg string) *Error {
	e := newErr(sentinel, msg)
	e.Provider = provider
	return e
}

// InvalidParam returns a 400 [*Error] about one request field, matching
// [ErrInvalidRequest].
func InvalidParam(param, format string, args ...any) *Error {
	e := newErr(ErrInvalidRequest, fmt.Sprintf(format, args...))
	e.Param = param
	return e
}

// Unsupported returns a 400 [*Error] matching [ErrUnsupported] (and
// [ErrInvalidRequest]).
func Unsupported(provider, param, format string, args ...any) *Error {
	e := newErr(ErrUnsupported, fmt.Sprintf(format, args...))
	e.Provider = provider
	e.Param = param
	return e
}

// StatusError builds the [*Error] for an upstream error answer from its
// status and the fields a provider's error body gave. An empty typ is
// derived from the status. 529 ("overloaded") becomes 503.
func StatusError(provider string, status int, typ, code, msg string) *Error {
	out := status
	switch {
	case status == 529:
		out = http.StatusServiceUnavailable
	case status < 400 || status > 599:
		out = http.StatusBadGateway
	}
	if typ == "" {
		typ = typeForStatus(out)
	}
	if msg == "" {
		msg = http.StatusText(status)
		if msg == "" {
			msg = fmt.Sprintf("upstream status %d", status)
		}
	}
	return &Error{
		Status: out, Type: typ, Code: code, Message: msg, Provider: provider,
		Retryable: retryableStatus(status), err: ErrUpstream,
	}
}

func typeForStatus(status int) string {
	switch status {
	case 400, 413, 422:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 408:
		return "timeout_error"
	case 409:
		return "conflict_error"
	case 429:
		return "rate_limit_error"
	}
	return "server_error"
}

// retryableStatus reports whether an upstream status is worth another
// attempt: rate limits, timeouts and server trouble.
func retryableStatus(status int) bool {
	switch status {
	case 408, 429, 500, 502, 503, 504, 529:
		return true
	}
	return false
}

// Redact replaces every occurrence of secret in s. Upstream error messages
// sometimes quote the key they were sent.
func Redact(s, secret string) string {
	if len(secret) < 4 || !strings.Contains(s, secret) {
		return s
	}
	return strings.ReplaceAll(s, secret, "[redacted]")
}

// asError returns err's *Error, or nil.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
