package google

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/assistiv/gateway/providers"
)

type response struct {
	Candidates     []candidate     `json:"candidates"`
	PromptFeedback *promptFeedback `json:"promptFeedback"`
	UsageMetadata  *usageMetadata  `json:"usageMetadata"`
	ModelVersion   string          `json:"modelVersion"`
	ResponseID     string          `json:"responseId"`
	Error          json.RawMessage `json:"error"` // only inside a stream
}

type candidate struct {
	Content      *content `json:"content"`
	FinishReason string   `json:"finishReason"`
	Index        int      `json:"index"`
}

type promptFeedback struct {
	BlockReason string `json:"blockReason"`
}

type usageMetadata struct {
	PromptTokenCount        int64 `json:"promptTokenCount"`
	CandidatesTokenCount    int64 `json:"candidatesTokenCount"`
	ThoughtsTokenCount      int64 `json:"thoughtsTokenCount"`
	ToolUsePromptTokenCount int64 `json:"toolUsePromptTokenCount"`
	TotalTokenCount         int64 `json:"totalTokenCount"`
}

// usage returns the counts as billed: thinking tokens are output, tool-use
// prompt tokens are input. (promptTokenCount already includes cached
// content.)
func (u *usageMetadata) usage() (providers.Usage, error) {
	for _, v := range []int64{u.PromptTokenCount, u.CandidatesTokenCount, u.ThoughtsTokenCount, u.ToolUsePromptTokenCount} {
		if v < 0 || v > providers.MaxUsageTokens {
			return providers.NewUsage(-1, 0)
		}
	}
	return providers.NewUsage(u.PromptTokenCount+u.ToolUsePromptTokenCount, u.CandidatesTokenCount+u.ThoughtsTokenCount)
}

// finishReason maps Gemini's finishReason; sawCall: the candidate made a
// function call.
func finishReason(r string, sawCall bool) string {
	switch r {
	case "":
		return ""
	case "MAX_TOKENS":
		return providers.FinishLength
	case "SAFETY", "RECITATION", "LANGUAGE", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY":
		return providers.FinishContentFilter
	}
	// STOP, MALFORMED_FUNCTION_CALL, OTHER, FINISH_REASON_UNSPECIFIED, ...
	if sawCall {
		return providers.FinishToolCalls
	}
	return providers.FinishStop
}

// callID synthesizes the id of the n-th function call of a response:
// Gemini has none. The ids are stable for a given response, and include
// the response id when there is one, so calls of different turns differ.
func callID(responseID string, n int) string {
	if responseID == "" {
		return fmt.Sprintf("call_%d", n)
	}
	return fmt.Sprintf("call_%s_%d", responseID, n)
}

func responseID(id string) string {
	if id == "" {
		return "chatcmpl-gemini"
	}
	return id
}

// decodeResponse translates a generateContent response.
func decodeResponse(req *providers.ChatRequest, body []byte, now time.Time) (*providers.ChatResponse, error) {
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, providers.NewError(providers.ErrMalformed, Name, "response is not a generateContent response: "+err.Error())
	}
	out := &providers.ChatResponse{
		ID: responseID(r.ResponseID), Object: providers.ObjectChatCompletion, Created: now.Unix(),
		Model: r.ModelVersion, Choices: []providers.Choice{},
	}
	if out.Model == "" {
		out.Model = req.Model
	}
	calls := 0
	for _, c := range r.Candidates {
		var text strings.Builder
		var tcs []providers.ToolCall
		if c.Content != nil {
			for _, p := range c.Content.Parts {
				switch {
				case p.FunctionCall != nil:
					args := string(p.FunctionCall.Args)
					if len(p.FunctionCall.Args) == 0 || args == "null" {
						args = "{}"
					}
					tcs = append(tcs, providers.ToolCall{
						ID: callID(r.ResponseID, calls), Type: "function",
						Function: providers.FunctionCall{Name: p.FunctionCall.Name, Arguments: args},
					})
					calls++
				case p.Thought:
					// thought summaries are not part of the answer
				default:
					text.WriteString(p.Text)
				}
			}
		}
		out.Choices = append(out.Choices, providers.Choice{
			Index:        c.Index,
			Message:      providers.Message{Role: providers.RoleAssistant, Content: providers.TextContent(text.String()), ToolCalls: tcs},
			FinishReason: providers.FinishReason(orStop(finishReason(c.FinishReason, len(tcs) > 0))),
		})
	}
	if len(out.Choices) == 0 {
		if r.PromptFeedback == nil || r.PromptFeedback.BlockReason == "" {
			return nil, providers.NewError(providers.ErrMalformed, Name, "response has no candidates")
		}
		// The prompt was blocked: an empty, filtered answer.
		out.Choices = append(out.Choices, providers.Choice{
			Message:      providers.Message{Role: providers.RoleAssistant},
			FinishReason: providers.FinishContentFilter,
		})
	}
	if r.UsageMetadata != nil {
		u, err := r.UsageMetadata.usage()
		if err != nil {
			return nil, providerErr(err)
		}
		out.Usage = &u
	}
	return out, nil
}

func orStop(s string) string {
	if s == "" {
		return providers.FinishStop
	}
	return s
}

// errorBody is Google's {"error":{"code","message","status"}}.
type errorBody struct {
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
	} `json:"error"`
}

// decodeError maps Google's error body; status 0 takes the body's code.
// A body may also be a JSON array holding one such object.
func decodeError(status int, body []byte) *providers.Error {
	var eb errorBody
	if json.Unmarshal(body, &eb) != nil || eb.Error == nil {
		var arr []errorBody
		if json.Unmarshal(body, &arr) != nil || len(arr) == 0 || arr[0].Error == nil {
			return nil
		}
		eb = arr[0]
	}
	if status == 0 {
		status = eb.Error.Code
		if status < 400 || status > 599 {
			status = http.StatusInternalServerError
		}
	}
	return providers.StatusError(Name, status, "", eb.Error.Status, eb.Error.Message)
}

func providerErr(err error) error {
	if e, ok := err.(*providers.Error); ok {
		e.Provider = Name
	}
	return err
}
