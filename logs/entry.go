package logs

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
)

// Kind says what sort of call an [Entry] records.
type Kind string

// The kinds of call that write log entries.
const (
	KindChatCompletions Kind = "chat.completions"
	KindResponses       Kind = "responses"
	KindTool            Kind = "tool"
)

// Valid reports whether k is one of the kinds above.
func (k Kind) Valid() bool {
	return k == KindChatCompletions || k == KindResponses || k == KindTool
}

// Entry is one inference or tool call's structured log line.
type Entry struct {
	// Seq is the per-node sequence the writer assigned; it orders a
	// platform's entries (newest first in lists). Ignored by [Writer.Write].
	Seq uint64

	RequestID  string // required: the gateway's request id (X-Request-Id)
	PlatformID ids.PlatformID
	EndUserID  ids.EndUserID
	Kind       Kind
	Model      string // as routed, e.g. "gpt-4o-mini"
	Provider   string // "openai", "anthropic", "google", "xai"; the app for tools
	StatusCode int    // HTTP status the client saw
	ErrorCode  string // error.code of a failed call; "" on success

	PromptTokens     int64
	CompletionTokens int64
	// Cost is what the end-user was charged (the budget debit, markup
	// included); ProviderCost is what the platform wallet paid.
	Cost         money.Nanos
	ProviderCost money.Nanos

	Latency time.Duration // request start to last byte
	TTFT    time.Duration // request start to first streamed token; 0: not measured
	Stream  bool

	// CreatedAt is when the call ended. [Writer.Write] sets it to the
	// clock's time when zero; the writer never lets it go backwards in
	// sequence order (an earlier value is raised to the previous entry's),
	// so sequence order is time order and time bounds become key bounds.
	CreatedAt time.Time

	// Tool calls only.
	Tool string // tool name, e.g. "create_issue"
	App  string // MCP app, e.g. "github"
}

// ErrCorrupt reports a stored entry this build cannot decode.
var ErrCorrupt = errors.New("logs: corrupt entry")

// maxField bounds every string field; longer values are truncated on write
// so one entry stays small.
const maxField = 1024

const encVersion = 1

// encode appends the stored form of e (without Seq and PlatformID, which
// the key holds) to b:
//
//	version(1)=1 created_at(8, big-endian unix ns)
//	request_id end_user_id kind model provider error_code tool app  (uvarint length + bytes each)
//	status_code prompt_tokens completion_tokens cost provider_cost latency_ns ttft_ns  (varint each)
//	flags(1): bit 0 stream
//
// created_at sits at a fixed offset so the retention janitor and time
// bounds read it without decoding the rest.
func encode(b []byte, e *Entry) []byte {
	b = append(b, encVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(e.CreatedAt.UnixNano()))
	for _, s := range []string{e.RequestID, string(e.EndUserID), string(e.Kind), e.Model, e.Provider, e.ErrorCode, e.Tool, e.App} {
		if len(s) > maxField {
			s = s[:maxField]
		}
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, v := range []int64{int64(e.StatusCode), e.PromptTokens, e.CompletionTokens, int64(e.Cost), int64(e.ProviderCost), int64(e.Latency), int64(e.TTFT)} {
		b = binary.AppendVarint(b, v)
	}
	var flags byte
	if e.Stream {
		flags |= 1
	}
	return append(b, flags)
}

// createdAtOf reads created_at (unix ns) from a stored entry.
func createdAtOf(v []byte) (int64, bool) {
	if len(v) < 9 || v[0] != encVersion {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(v[1:9])), true
}

// decode parses a stored entry into e. Strings are copied: v may be an
// iterator's buffer.
func decode(v []byte, e *Entry) error {
	at, ok := createdAtOf(v)
	if !ok {
		return ErrCorrupt
	}
	e.CreatedAt = time.Unix(0, at).UTC()
	v = v[9:]
	var strs [8]string
	for i := range strs {
		n, k := binary.Uvarint(v)
		if k <= 0 || n > uint64(len(v)-k) {
			return ErrCorrupt
		}
		strs[i] = string(v[k : k+int(n)])
		v = v[k+int(n):]
	}
	e.RequestID, e.EndUserID, e.Kind, e.Model = strs[0], ids.EndUserID(strs[1]), Kind(strs[2]), strs[3]
	e.Provider, e.ErrorCode, e.Tool, e.App = strs[4], strs[5], strs[6], strs[7]
	var nums [7]int64
	for i := range nums {
		n, k := binary.Varint(v)
		if k <= 0 {
			return ErrCorrupt
		}
		nums[i] = n
		v = v[k:]
	}
	if len(v) != 1 {
		return ErrCorrupt
	}
	e.StatusCode, e.PromptTokens, e.CompletionTokens = int(nums[0]), nums[1], nums[2]
	e.Cost, e.ProviderCost = money.Nanos(nums[3]), money.Nanos(nums[4])
	e.Latency, e.TTFT = time.Duration(nums[5]), time.Duration(nums[6])
	e.Stream = v[0]&1 != 0
	return nil
}
