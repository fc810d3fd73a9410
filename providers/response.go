package providers

import (
	"encoding/json"
	"fmt"
)

// Finish reasons of the Chat Completions format.
const (
	FinishStop          = "stop"
	FinishLength        = "length"
	FinishToolCalls     = "tool_calls"
	FinishContentFilter = "content_filter"
)

// Object names written in responses.
const (
	ObjectChatCompletion      = "chat.completion"
	ObjectChatCompletionChunk = "chat.completion.chunk"
)

// ChatResponse is a non-streamed Chat Completions response.
type ChatResponse struct {
	ID                string   `json:"id"`
	Object            string   `json:"object"`
	Created           int64    `json:"created"`
	Model             string   `json:"model"`
	Choices           []Choice `json:"choices"`
	Usage             *Usage   `json:"usage,omitempty"`
	SystemFingerprint string   `json:"system_fingerprint,omitempty"`

	// Raw, when set, is the upstream's own answer in this format, checked
	// and unchanged: the edge sends it as it is instead of encoding the
	// decoded fields again (an OpenAI-format upstream's answer needs no
	// translation). Adapters that translate leave it nil.
	Raw []byte `json:"-"`
}

// Choice is one element of ChatResponse.Choices.
type Choice struct {
	Index        int          `json:"index"`
	Message      Message      `json:"message"`
	FinishReason FinishReason `json:"finish_reason"`
}

// FinishReason is a finish_reason; the empty value is written as null.
type FinishReason string

// MarshalJSON writes "" as null.
func (f FinishReason) MarshalJSON() ([]byte, error) {
	if f == "" {
		return []byte("null"), nil
	}
	return json.Marshal(string(f))
}

// UnmarshalJSON reads null as "".
func (f *FinishReason) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = ""
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*f = FinishReason(s)
	return nil
}

// ChatChunk is one streamed Chat Completions event. The usage chunk at the
// end of a stream with stream_options.include_usage has no choices (an empty
// array) and Usage set.
type ChatChunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"`
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	Choices           []ChunkChoice `json:"choices"`
	Usage             *Usage        `json:"usage,omitempty"`
	SystemFingerprint string        `json:"system_fingerprint,omitempty"`

	// Raw, when set, is the upstream's own event data for this chunk, in
	// this format and unchanged: the edge writes it as it is instead of
	// encoding the fields again. Adapters that translate, or that changed
	// the chunk, leave it nil.
	Raw []byte `json:"-"`
	// Produced, with Raw set and Choices nil (a chunk relayed without
	// decoding, see [RelayChunk]), is the bytes of content and tool-call
	// names and arguments the chunk carries.
	Produced int64 `json:"-"`
}

// ChunkChoice is one element of ChatChunk.Choices.
type ChunkChoice struct {
	Index        int          `json:"index"`
	Delta        Delta        `json:"delta"`
	FinishReason FinishReason `json:"finish_reason"`
}

// Delta is the increment a chunk carries for one choice.
type Delta struct {
	Role      string          `json:"role,omitempty"`
	Content   *string         `json:"content,omitempty"`
	ToolCalls []ToolCallDelta `json:"tool_calls,omitempty"`
	Refusal   *string         `json:"refusal,omitempty"`
}

// ToolCallDelta is a streamed fragment of a tool call. The first fragment of
// a call carries Index, ID, Type and Function.Name; later ones carry Index
// and a piece of Function.Arguments. Concatenating the pieces in order gives
// the arguments.
type ToolCallDelta struct {
	Index    int          `json:"index"`
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function FunctionCall `json:"function"`
}

// Usage is token usage as billed. PromptTokens includes cached and
// cache-creation tokens; CompletionTokens includes reasoning ("thinking")
// tokens; TotalTokens is their sum.
type Usage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
}

// MaxUsageTokens bounds every usage number an upstream may report. No model
// handles a billion tokens in one call; a larger number is a bug or an
// attack and must not become money.
const MaxUsageTokens = 1_000_000_000

// NewUsage checks counts reported by an upstream and returns their Usage. It
// returns an [*Error] matching [ErrInvalidUsage] when a count is negative or
// above [MaxUsageTokens].
func NewUsage(prompt, completion int64) (Usage, error) {
	if prompt < 0 || completion < 0 || prompt > MaxUsageTokens || completion > MaxUsageTokens {
		return Usage{}, newErr(ErrInvalidUsage, fmt.Sprintf("upstream reported usage prompt=%d completion=%d", prompt, completion))
	}
	return Usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion}, nil
}

// Str returns a pointer to s, for Delta.Content.
func Str(s string) *string { return &s }
