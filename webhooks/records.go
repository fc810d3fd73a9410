package webhooks

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Message statuses.
const (
	StatusPending   = "pending"
	StatusDelivered = "delivered"
	StatusFailed    = "failed"
)

// Reasons an endpoint was disabled.
const (
	DisabledByOperator = "operator" // PATCH enabled=false
	DisabledGone       = "gone"     // the receiver answered 410 Gone
	DisabledFailing    = "failing"  // every attempt failed for Config.DisableAfter
)

// EndpointPrefix starts every endpoint id.
const EndpointPrefix = "ep_"

// endpointRecord is the stored form of an endpoint (family 0x21, JSON).
// Secrets are sealed with the master key; their additional data binds them
// to this platform, endpoint and slot (see secretAAD).
type endpointRecord struct {
	ID          string   `json:"id"`
	PlatformID  string   `json:"platform_id"`
	URL         string   `json:"url"`
	Description string   `json:"description,omitempty"`
	EventTypes  []string `json:"event_types"`
	Enabled     bool     `json:"enabled"`
	// DisabledReason says why Enabled is false (one of the Disabled*
	// constants); empty while enabled.
	DisabledReason string `json:"disabled_reason,omitempty"`
	// Secret is the sealed current signing secret ("whsec_…").
	Secret []byte `json:"secret"`
	// OldSecret is the sealed previous secret, which also signs until
	// OldSecretUntilMs (Unix ms) after a rotation.
	OldSecret        []byte `json:"old_secret,omitempty"`
	OldSecretUntilMs int64  `json:"old_secret_until_ms,omitempty"`
	// FailingSinceMs is when the first failed attempt after the last
	// success happened; 0 while the endpoint is healthy.
	FailingSinceMs int64 `json:"failing_since_ms,omitempty"`
	CreatedAtMs    int64 `json:"created_at_ms"`
	UpdatedAtMs    int64 `json:"updated_at_ms"`
}

// messageRecord is the stored form of one event fanned out to one endpoint
// (family 0x22, JSON). Payload holds the exact bytes that are signed and
// sent on every attempt.
type messageRecord struct {
	ID         string `json:"id"` // the event id: webhook-id of every attempt
	EndpointID string `json:"endpoint_id"`
	EventType  string `json:"event_type"`
	Payload    []byte `json:"payload"`
	Status     string `json:"status"`
	// Attempts counts every attempt made; RoundStart is Attempts when the
	// current round began (creation or the last replay), so the schedule
	// position is Attempts-RoundStart.
	Attempts   int `json:"attempts"`
	RoundStart int `json:"round_start,omitempty"`
	// NextAttemptMs is the due time while pending (it matches the message's
	// due entry), else 0.
	NextAttemptMs  int64  `json:"next_attempt_ms,omitempty"`
	LastAttemptMs  int64  `json:"last_attempt_ms,omitempty"`
	LastStatusCode int    `json:"last_status_code,omitempty"`
	LastLatencyMs  int64  `json:"last_latency_ms,omitempty"`
	LastError      string `json:"last_error,omitempty"`
	DeliveredAtMs  int64  `json:"delivered_at_ms,omitempty"`
	CreatedAtMs    int64  `json:"created_at_ms"`
	// TraceParent is the W3C traceparent of the request that caused the
	// event, when it was traced: every delivery attempt is a span under it.
	TraceParent string `json:"trace_parent,omitempty"`
}

func secretAAD(platformID, endpointID, slot string) []byte {
	return []byte("webhook_secret|" + platformID + "|" + endpointID + "|" + slot)
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Records are plain structs of strings, ints and bytes.
		panic("webhooks: record does not encode: " + err.Error())
	}
	return b
}

func decodeEndpoint(b []byte) (*endpointRecord, error) {
	var r endpointRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode endpoint record: %w", err)
	}
	return &r, nil
}

func decodeMessage(b []byte) (*messageRecord, error) {
	var r messageRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode message record: %w", err)
	}
	return &r, nil
}

// Errors returned by the service. Match them with errors.Is.
var (
	// ErrNotFound means no such platform, endpoint or message (or one of
	// another platform: tenants cannot tell the difference).
	ErrNotFound = errors.New("webhooks: not found")
	// ErrInvalid means a request field is invalid; the error is a
	// *[FieldError] saying which.
	ErrInvalid = errors.New("webhooks: invalid request")
	// ErrConflict means the request does not fit the current state (replay
	// of a pending message, too many endpoints).
	ErrConflict = errors.New("webhooks: conflict")
	// ErrClosed means the service has been closed.
	ErrClosed = errors.New("webhooks: service closed")
)

// FieldError is an [ErrInvalid] or [ErrConflict] with a stable code and a
// message safe to show the caller.
type FieldError struct {
	Kind    error  `json:"-"`    // ErrInvalid or ErrConflict
	Code    string `json:"code"` // e.g. "invalid_url", "invalid_event_type"
	Message string `json:"message"`
}

func (e *FieldError) Error() string { return e.Code + ": " + e.Message }

// Is makes errors.Is(err, ErrInvalid) (or ErrConflict) hold.
func (e *FieldError) Is(target error) bool { return target == e.Kind }

func invalid(code, format string, args ...any) error {
	return &FieldError{Kind: ErrInvalid, Code: code, Message: fmt.Sprintf(format, args...)}
}

func conflict(code, format string, args ...any) error {
	return &FieldError{Kind: ErrConflict, Code: code, Message: fmt.Sprintf(format, args...)}
}

func notFound(what, id string) error {
	return fmt.Errorf("%s %s: %w", what, strconv.Quote(id), ErrNotFound)
}
