package logs

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"
	"time"

	"github.com/assistiv/gateway/internal/ids"
)

// Errors of queries.
var (
	ErrNotFound      = errors.New("logs: entry not found")
	ErrInvalidCursor = errors.New("logs: invalid cursor")
	ErrInvalidStatus = errors.New("logs: invalid status filter")
)

// Status matches status codes: one exact code, a class (2xx … 5xx), or
// every error (400 and above). The zero value matches everything.
type Status struct {
	lo, hi int // inclusive; 0, 0: any
}

// ParseStatus parses a status filter: "" (any), an exact code "100".."599",
// a class "1xx".."5xx" (case-insensitive), or "error" (400..599).
func ParseStatus(s string) (Status, error) {
	switch {
	case s == "":
		return Status{}, nil
	case s == "error":
		return Status{400, 599}, nil
	case len(s) == 3 && s[0] >= '1' && s[0] <= '5' && (s[1] == 'x' || s[1] == 'X') && (s[2] == 'x' || s[2] == 'X'):
		c := int(s[0]-'0') * 100
		return Status{c, c + 99}, nil
	case len(s) == 3:
		n, err := strconv.Atoi(s)
		if err == nil && n >= 100 && n <= 599 {
			return Status{n, n}, nil
		}
	}
	return Status{}, ErrInvalidStatus
}

// Match reports whether code passes the filter.
func (s Status) Match(code int) bool {
	return s.hi == 0 || (code >= s.lo && code <= s.hi)
}

// Filter selects entries. Zero fields match everything.
type Filter struct {
	EndUserID ids.EndUserID
	Model     string
	Kind      Kind
	Status    Status
	// Start and End bound CreatedAt to [Start, End).
	Start, End time.Time
}

func (f *Filter) match(e *Entry) bool {
	return (f.EndUserID == "" || e.EndUserID == f.EndUserID) &&
		(f.Model == "" || e.Model == f.Model) &&
		(f.Kind == "" || e.Kind == f.Kind) &&
		f.Status.Match(e.StatusCode)
}

// Query is one page request.
type Query struct {
	Filter
	// Limit bounds the entries returned; 1..[MaxLimit], default
	// [DefaultLimit] when 0.
	Limit int
	// Cursor continues a previous page ([Page.NextCursor]); "" starts at
	// the newest entry.
	Cursor string
}

// Page limits.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Page is one page of entries, newest first.
type Page struct {
	Entries []Entry
	// HasMore says entries may remain; NextCursor continues after the last
	// entry examined. A page cut short by [Config.MaxScan] can hold fewer
	// than Limit entries (even none) and still have more.
	HasMore    bool
	NextCursor string
}

// A cursor is base64url (unpadded, strict) of version(1)=1 then the
// sequence (8, big-endian) below which the next page continues. It only
// narrows a scan inside the caller's own platform, so a forged cursor can
// reveal nothing; decoding still refuses anything this API did not produce.
const cursorVersion = 1

var cursorEncoding = base64.RawURLEncoding.Strict()

// EncodeCursor returns the cursor that continues below seq.
func EncodeCursor(seq uint64) string {
	b := binary.BigEndian.AppendUint64([]byte{cursorVersion}, seq)
	return cursorEncoding.EncodeToString(b)
}

// DecodeCursor parses a cursor from [EncodeCursor], or returns
// [ErrInvalidCursor].
func DecodeCursor(s string) (uint64, error) {
	if len(s) != 12 {
		return 0, ErrInvalidCursor
	}
	b, err := cursorEncoding.DecodeString(s)
	if err != nil || len(b) != 9 || b[0] != cursorVersion {
		return 0, ErrInvalidCursor
	}
	seq := binary.BigEndian.Uint64(b[1:])
	if seq == 0 {
		return 0, ErrInvalidCursor
	}
	return seq, nil
}
