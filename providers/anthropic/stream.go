package anthropic

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/assistiv/gateway/providers"
)

// streamEvent is the union of the Messages API stream events' data.
type streamEvent struct {
	Type         string          `json:"type"`
	Message      *response       `json:"message"`       // message_start
	Index        int             `json:"index"`         // content_block_*
	ContentBlock *responseBlock  `json:"content_block"` // content_block_start
	Delta        *streamDelta    `json:"delta"`         // content_block_delta, message_delta
	Usage        *usage          `json:"usage"`         // message_delta
	Error        json.RawMessage `json:"error"`         // error
}

type streamDelta struct {
	Type        string `json:"type"`
	Text        string `json:"text"`
	PartialJSON string `json:"partial_json"`
	StopReason  string `json:"stop_reason"`
}

// blockKind is what a content block index turned into.
type blockKind uint8

const (
	blockIgnored blockKind = iota // thinking, server tools, unknown
	blockText
	blockTool     // a tool call relayed as tool_calls
	blockJSONTool // the forced json_schema tool, relayed as content
)

type blockState struct {
	kind blockKind
	tool int // index among tool_calls, for blockTool
}

// decoder turns the Messages API event stream into chunks:
//
//	message_start                      → {role:"assistant", content:""}
//	content_block_start text           → (nothing; text comes in deltas)
//	content_block_start tool_use       → tool_calls[{index,id,type,function{name,arguments:""}}]
//	content_block_delta text_delta     → {content}
//	content_block_delta input_json_delta → tool_calls[{index,function{arguments}}]
//	                                     (content, for the forced json tool)
//	message_delta                      → finish_reason; usage.output_tokens
//	message_stop                       → end
//	ping, content_block_stop, thinking → (nothing)
//	error                              → *providers.Error
type decoder struct {
	jsonTool   string
	created    int64
	id, model  string
	started    bool
	blocks     map[int]blockState
	tools      int
	jsonForced bool
	counts     counts
}

func newDecoder(req *providers.ChatRequest, now time.Time) *decoder {
	return &decoder{jsonTool: jsonTool(req), created: now.Unix(), blocks: make(map[int]blockState)}
}

// maxBlocks bounds the content blocks one stream may open.
const maxBlocks = 4096

func (d *decoder) chunk(delta providers.Delta, finish string) *providers.ChatChunk {
	return &providers.ChatChunk{
		ID: d.id, Object: providers.ObjectChatCompletionChunk, Created: d.created, Model: d.model,
		Choices: []providers.ChunkChoice{{Index: 0, Delta: delta, FinishReason: providers.FinishReason(finish)}},
	}
}

func (d *decoder) Decode(ev *providers.Event) ([]*providers.ChatChunk, bool, error) {
	var e streamEvent
	if err := json.Unmarshal(ev.Data, &e); err != nil {
		return nil, false, providers.NewError(providers.ErrMalformed, Name, "stream event is not JSON: "+err.Error())
	}
	if e.Type == "" {
		e.Type = ev.Type
	}
	if e.Type != "message_start" && e.Type != "ping" && e.Type != "error" && !d.started {
		return nil, false, providers.NewError(providers.ErrMalformed, Name, e.Type+" before message_start")
	}
	switch e.Type {
	case "message_start":
		if d.started || e.Message == nil {
			return nil, false, providers.NewError(providers.ErrMalformed, Name, "bad message_start")
		}
		d.started = true
		d.id, d.model = e.Message.ID, e.Message.Model
		d.counts.update(e.Message.Usage)
		if _, err := d.counts.usage(); err != nil {
			return nil, false, providerErr(err)
		}
		return []*providers.ChatChunk{d.chunk(providers.Delta{Role: providers.RoleAssistant, Content: providers.Str("")}, "")}, false, nil

	case "content_block_start":
		if e.ContentBlock == nil || e.Index < 0 {
			return nil, false, providers.NewError(providers.ErrMalformed, Name, "bad content_block_start")
		}
		if _, dup := d.blocks[e.Index]; dup || len(d.blocks) >= maxBlocks {
			return nil, false, providers.NewError(providers.ErrMalformed, Name, fmt.Sprintf("content block %d started twice or too many blocks", e.Index))
		}
		b := e.ContentBlock
		switch b.Type {
		case "text":
			d.blocks[e.Index] = blockState{kind: blockText}
			if b.Text != "" {
				return []*providers.ChatChunk{d.chunk(providers.Delta{Content: providers.Str(b.Text)}, "")}, false, nil
			}
		case "tool_use":
			if d.jsonTool != "" && b.Name == d.jsonTool {
				d.blocks[e.Index] = blockState{kind: blockJSONTool}
				d.jsonForced = true
				return nil, false, nil
			}
			st := blockState{kind: blockTool, tool: d.tools}
			d.tools++
			d.blocks[e.Index] = st
			tc := providers.ToolCallDelta{Index: st.tool, ID: b.ID, Type: "function", Function: providers.FunctionCall{Name: b.Name}}
			return []*providers.ChatChunk{d.chunk(providers.Delta{ToolCalls: []providers.ToolCallDelta{tc}}, "")}, false, nil
		default:
			d.blocks[e.Index] = blockState{kind: blockIgnored}
		}
		return nil, false, nil

	case "content_block_delta":
		if e.Delta == nil {
			return nil, false, providers.NewError(providers.ErrMalformed, Name, "content_block_delta without delta")
		}
		st, ok := d.blocks[e.Index]
		if !ok {
			return nil, false, providers.NewError(providers.ErrMalformed, Name, fmt.Sprintf("delta for unstarted content block %d", e.Index))
		}
		switch e.Delta.Type {
		case "text_delta":
			if st.kind != blockText || e.Delta.Text == "" {
				return nil, false, nil
			}
			return []*providers.ChatChunk{d.chunk(providers.Delta{Content: providers.Str(e.Delta.Text)}, "")}, false, nil
		case "input_json_delta":
			if e.Delta.PartialJSON == "" {
				return nil, false, nil
			}
			switch st.kind {
			case blockJSONTool:
				return []*providers.ChatChunk{d.chunk(providers.Delta{Content: providers.Str(e.Delta.PartialJSON)}, "")}, false, nil
			case blockTool:
				tc := providers.ToolCallDelta{Index: st.tool, Function: providers.FunctionCall{Arguments: e.Delta.PartialJSON}}
				return []*providers.ChatChunk{d.chunk(providers.Delta{ToolCalls: []providers.ToolCallDelta{tc}}, "")}, false, nil
			}
		}
		return nil, false, nil // thinking_delta, signature_delta, citations_delta

	case "message_delta":
		d.counts.update(e.Usage)
		if _, err := d.counts.usage(); err != nil {
			return nil, false, providerErr(err)
		}
		if e.Delta != nil && e.Delta.StopReason != "" {
			return []*providers.ChatChunk{d.chunk(providers.Delta{}, finishReason(e.Delta.StopReason, d.jsonForced))}, false, nil
		}
		return nil, false, nil

	case "message_stop":
		return nil, true, nil

	case "error":
		pe := decodeError(0, append(append([]byte(`{"error":`), e.Error...), '}'))
		if pe == nil {
			pe = providers.StatusError(Name, 500, "", "", "upstream error in stream")
		}
		pe.Retryable = false // the stream was already relayed in part
		return nil, false, pe
	}
	return nil, false, nil // ping, content_block_stop, and event types added later
}

func (d *decoder) Finish() ([]*providers.ChatChunk, error) {
	return nil, providers.NewError(providers.ErrTruncated, Name, "anthropic stream ended without message_stop")
}

func (d *decoder) Usage() (providers.Usage, bool) {
	if !d.counts.seen {
		return providers.Usage{}, false
	}
	u, err := d.counts.usage()
	return u, err == nil
}

var _ providers.EventDecoder = (*decoder)(nil)
