// Package whsig signs webhook deliveries and verifies them, following the
// Standard Webhooks specification v1 (symmetric scheme, as used by Svix).
// It owns the secret format (whsec_ + standard base64 of 24–64 random
// bytes), the three headers and the signature header syntax:
//
//	webhook-id:        msg_2b9...             same on every retry of an event
//	webhook-timestamp: 1614265330             Unix seconds of this attempt
//	webhook-signature: v1,<b64> v1,<b64>      one HMAC-SHA256 per secret
//
// The signed content is "<webhook-id>.<webhook-timestamp>.<body>", the exact
// bytes sent. Several v1 signatures let an endpoint rotate its secret without
// downtime: the sender signs with old and new secrets during the overlap and
// the receiver accepts the first that matches.
//
// Verification compares in constant time, checks the timestamp in both
// directions (5 minutes by default, like the reference libraries) and
// requires the timestamp in canonical decimal, so the value checked is the
// value signed. Deduplicating on webhook-id is the receiver's job.
//
// Concurrency: every function is pure and safe for concurrent use.
//
// The package is a leaf: it imports nothing of ours.
package whsig

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names (lower case, as the specification writes them; HTTP header
// names are case-insensitive).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every serialized signing secret.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a delivery's timestamp may be from the
// verifier's clock, in either direction, when Verify is given 0.
const DefaultTolerance = 5 * time.Minute

const (
	newSecretBytes = 32 // what NewSecret generates
	minSecretBytes = 24 // the specification's minimum (192 bits)
	maxSecretBytes = 64 // and maximum (512 bits)
)

var (
	// ErrInvalidSecret means a secret is not (whsec_ +) standard base64 of
	// 24 to 64 bytes.
	ErrInvalidSecret = errors.New("whsig: invalid signing secret")
	// ErrMissingHeaders means webhook-id, webhook-timestamp or
	// webhook-signature is absent or empty.
	ErrMissingHeaders = errors.New("whsig: missing webhook headers")
	// ErrInvalidHeaders means webhook-timestamp is not a canonical decimal
	// number of seconds.
	ErrInvalidHeaders = errors.New("whsig: invalid webhook timestamp header")
	// ErrInvalidSignature means no v1 signature in webhook-signature matches.
	ErrInvalidSignature = errors.New("whsig: no matching signature")
	// ErrTimestampTooOld means the timestamp is more than the tolerance in
	// the past: a replay, or a delivery held too long.
	ErrTimestampTooOld = errors.New("whsig: webhook timestamp too old")
	// ErrTimestampTooNew means the timestamp is more than the tolerance in
	// the future.
	ErrTimestampTooNew = errors.New("whsig: webhook timestamp too new")
)

// NewSecret returns a fresh secret: whsec_ and the standard base64 of 32
// random bytes. The error is always nil since Go 1.24 (crypto/rand cannot
// fail); it stays in the signature for sources that can.
func NewSecret() (string, error) {
	b := make([]byte, newSecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("whsig: new secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// ParseSecret returns the HMAC key of a serialized secret. The whsec_ prefix
// is optional (the reference libraries accept both). The error wraps
// [ErrInvalidSecret] and never quotes s.
func ParseSecret(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, SecretPrefix))
	if err != nil {
		return nil, fmt.Errorf("%w: not standard base64", ErrInvalidSecret)
	}
	if len(key) < minSecretBytes || len(key) > maxSecretBytes {
		return nil, fmt.Errorf("%w: %d bytes, want %d to %d", ErrInvalidSecret, len(key), minSecretBytes, maxSecretBytes)
	}
	return key, nil
}

// Sign returns the webhook-signature value for one delivery attempt: one
// "v1,<base64 HMAC-SHA256>" per key, in order, separated by spaces. Keys are
// parsed secrets ([ParseSecret]); with none the result is "". msgID must be
// a header-safe token without '.' (our ids are), and ts is truncated to
// whole seconds and must not be before 1970.
func Sign(keys [][]byte, msgID string, ts time.Time, body []byte) string {
	stamp := formatTimestamp(ts)
	var b strings.Builder
	b.Grow(len(keys) * (3 + base64.StdEncoding.EncodedLen(sha256.Size) + 1))
	for i, key := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		b.WriteString(base64.StdEncoding.EncodeToString(mac(key, msgID, stamp, body)))
	}
	return b.String()
}

// Headers returns the three headers of one delivery attempt, signed with
// keys as [Sign] does. Set them on the outgoing request as they are (for
// fasthttp: range over the map and Set each value).
func Headers(keys [][]byte, msgID string, ts time.Time, body []byte) http.Header {
	h := make(http.Header, 3)
	h.Set(HeaderID, msgID)
	h.Set(HeaderTimestamp, formatTimestamp(ts))
	h.Set(HeaderSignature, Sign(keys, msgID, ts, body))
	return h
}

// HeaderGetter reads one request header by name, case-insensitively.
// http.Header implements it.
type HeaderGetter interface {
	Get(name string) string
}

// Verify checks a received delivery against secret (serialized, see
// [ParseSecret]). It returns nil if the timestamp is within tolerance of now
// in both directions (a tolerance ≤ 0 means [DefaultTolerance]; exactly
// tolerance apart is accepted) and at least one v1 signature in
// webhook-signature matches, compared in constant time. Other versions (v1a,
// v2, ...) are skipped. body must be the raw bytes received, before any
// parsing. Errors: [ErrInvalidSecret], [ErrMissingHeaders],
// [ErrInvalidHeaders], [ErrTimestampTooOld], [ErrTimestampTooNew],
// [ErrInvalidSignature].
func Verify(secret string, headers HeaderGetter, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := ParseSecret(secret)
	if err != nil {
		return err
	}
	msgID, stamp, sigs := headers.Get(HeaderID), headers.Get(HeaderTimestamp), headers.Get(HeaderSignature)
	if msgID == "" || stamp == "" || sigs == "" {
		return ErrMissingHeaders
	}
	sec, ok := parseTimestamp(stamp)
	if !ok {
		return ErrInvalidHeaders
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts := time.Unix(sec, 0)
	if now.Sub(ts) > tolerance {
		return ErrTimestampTooOld
	}
	if ts.Sub(now) > tolerance {
		return ErrTimestampTooNew
	}
	want := mac(key, msgID, stamp, body)
	got := make([]byte, base64.StdEncoding.DecodedLen(sigLen))
	for version, value := range signatures(sigs) {
		if version != "v1" || len(value) != sigLen {
			continue
		}
		// Strict: a value differing only in its padding bits is not ours.
		n, err := base64.StdEncoding.Strict().Decode(got, []byte(value))
		if err != nil || n != sha256.Size {
			continue
		}
		if hmac.Equal(got[:n], want) {
			return nil
		}
	}
	return ErrInvalidSignature
}

// signatures yields the (version, value) pairs of a webhook-signature
// header: entries separated by spaces, each "version,value" split at the
// first comma. Empty entries and entries without a comma or version are
// skipped.
func signatures(header string) func(yield func(version, value string) bool) {
	return func(yield func(string, string) bool) {
		for entry := range strings.FieldsSeq(header) {
			version, value, ok := strings.Cut(entry, ",")
			if !ok || version == "" {
				continue
			}
			if !yield(version, value) {
				return
			}
		}
	}
}

// sigLen is the length of a base64 HMAC-SHA256, padding included.
var sigLen = base64.StdEncoding.EncodedLen(sha256.Size)

func mac(key []byte, msgID, stamp string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msgID))
	h.Write([]byte{'.'})
	h.Write([]byte(stamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

func formatTimestamp(ts time.Time) string { return strconv.FormatInt(ts.Unix(), 10) }

// parseTimestamp accepts only the canonical decimal form: digits, no sign,
// no leading zero, at most 18 digits (no overflow).
func parseTimestamp(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 18 || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
