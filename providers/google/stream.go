package google

import (
	"encoding/json"
	"time"

	"github.com/assistiv/gateway/providers"
)

// maxCandidates bounds the candidates a stream may carry.
const maxCandidates = providers.MaxN

type candidateState struct {
	started  bool
	calls    int // tool calls relayed so far, the next tool_calls index
	finished bool
}

// decoder turns streamGenerateContent?alt=sse events, each a partial
// GenerateContentResponse, into chunks. For each candidate: the first event
// gives {role:"assistant"}; text parts give {content}; a functionCall part
// (Gemini sends each call whole) gives one tool_calls delta with index, id,
// name and the whole arguments; finishReason gives a chunk with only
// finish_reason. usageMetadata is cumulative; the last one counts. The
// stream has no terminal event: it ends at end of body, which is a
// truncation unless every candidate seen has finished.
type decoder struct {
	model      string
	created    int64
	id         string
	calls      int // function calls in the whole response, for ids
	candidates map[int]*candidateState
	usage      providers.Usage
	hasUsage   bool
}

func newDecoder(req *providers.ChatRequest, now time.Time) *decoder {
	m, _ := modelID(req.Model)
	return &decoder{model: m, created: now.Unix(), candidates: make(map[int]*candidateState)}
}

func (d *decoder) chunk(index int, delta providers.Delta, finish string) *providers.ChatChunk {
	return &providers.ChatChunk{
		ID: responseID(d.id), Object: providers.ObjectChatCompletionChunk, Created: d.created, Model: d.model,
		Choices: []providers.ChunkChoice{{Index: index, Delta: delta, FinishReason: providers.FinishReason(finish)}},
	}
}

func (d *decoder) Decode(ev *providers.Event) ([]*providers.ChatChunk, bool, error) {
	var r response
	if err := json.Unmarshal(ev.Data, &r); err != nil {
		return nil, false, providers.NewError(providers.ErrMalformed, Name, "stream event is not JSON: "+err.Error())
	}
	if len(r.Error) > 0 && string(r.Error) != "null" {
		e := decodeError(0, append(append([]byte(`{"error":`), r.Error...), '}'))
		if e == nil {
			e = providers.StatusError(Name, 500, "", "", "upstream error in stream")
		}
		e.Retryable = false
		return nil, false, e
	}
	if d.id == "" {
		d.id = r.ResponseID
	}
	if r.ModelVersion != "" {
		d.model = r.ModelVersion
	}
	if r.UsageMetadata != nil {
		u, err := r.UsageMetadata.usage()
		if err != nil {
			return nil, false, providerErr(err)
		}
		d.usage, d.hasUsage = u, true
	}
	var out []*providers.ChatChunk
	if len(r.Candidates) == 0 && r.PromptFeedback != nil && r.PromptFeedback.BlockReason != "" {
		st := d.candidate(0)
		if st == nil {
			return nil, false, providers.NewError(providers.ErrMalformed, Name, "too many candidates")
		}
		if !st.started {
			st.started = true
			out = append(out, d.chunk(0, providers.Delta{Role: providers.RoleAssistant, Content: providers.Str("")}, ""))
		}
		if !st.finished {
			st.finished = true
			out = append(out, d.chunk(0, providers.Delta{}, providers.FinishContentFilter))
		}
		return out, false, nil
	}
	for _, c := range r.Candidates {
		st := d.candidate(c.Index)
		if st == nil {
			return nil, false, providers.NewError(providers.ErrMalformed, Name, "candidate index out of range")
		}
		if st.finished {
			continue // nothing may follow a candidate's finish
		}
		if !st.started {
			st.started = true
			out = append(out, d.chunk(c.Index, providers.Delta{Role: providers.RoleAssistant, Content: providers.Str("")}, ""))
		}
		if c.Content != nil {
			for _, p := range c.Content.Parts {
				switch {
				case p.FunctionCall != nil:
					args := string(p.FunctionCall.Args)
					if len(p.FunctionCall.Args) == 0 || args == "null" {
						args = "{}"
					}
					tc := providers.ToolCallDelta{
						Index: st.calls, ID: callID(r.ResponseID, d.calls), Type: "function",
						Function: providers.FunctionCall{Name: p.FunctionCall.Name, Arguments: args},
					}
					st.calls++
					d.calls++
					out = append(out, d.chunk(c.Index, providers.Delta{ToolCalls: []providers.ToolCallDelta{tc}}, ""))
				case p.Thought:
				case p.Text != "":
					out = append(out, d.chunk(c.Index, providers.Delta{Content: providers.Str(p.Text)}, ""))
				}
			}
		}
		if f := finishReason(c.FinishReason, st.calls > 0); f != "" {
			st.finished = true
			out = append(out, d.chunk(c.Index, providers.Delta{}, f))
		}
	}
	return out, false, nil
}

func (d *decoder) candidate(i int) *candidateState {
	if i < 0 || i >= maxCandidates {
		return nil
	}
	st := d.candidates[i]
	if st == nil {
		st = &candidateState{}
		d.candidates[i] = st
	}
	return st
}

func (d *decoder) Finish() ([]*providers.ChatChunk, error) {
	if len(d.candidates) == 0 {
		return nil, providers.NewError(providers.ErrTruncated, Name, "gemini stream ended without a candidate")
	}
	for _, st := range d.candidates {
		if !st.finished {
			return nil, providers.NewError(providers.ErrTruncated, Name, "gemini stream ended before finishReason")
		}
	}
	return nil, nil
}

func (d *decoder) Usage() (providers.Usage, bool) { return d.usage, d.hasUsage }

var _ providers.EventDecoder = (*decoder)(nil)
