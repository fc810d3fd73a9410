package edge

import (
	"encoding/json"
	"time"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/providers"
)

// responseEvents turns a chat stream's chunks into the Responses API's
// server-sent events, building the response object as it goes:
//
//	response.created, response.in_progress
//	per message:   output_item.added, content_part.added,
//	               output_text.delta…, output_text.done, content_part.done, output_item.done
//	per tool call: output_item.added, function_call_arguments.delta…,
//	               function_call_arguments.done, output_item.done
//	response.completed | response.incomplete, or error then response.failed
//
// Items are sequential: a new item closes the open one. Only choice 0 is
// read (the Responses API has no n). Events accumulate in a buffer that
// flush writes. Not safe for concurrent use; it does no I/O but flush.
type responseEvents struct {
	obj      *responseObject
	now      func() time.Time
	seq      int64
	buf      []byte
	open     int         // index in obj.Output of the open item, or -1
	calls    map[int]int // tool call index of the chunks → index in obj.Output
	finish   providers.FinishReason
	produced int64 // bytes of text and tool arguments relayed, for usage estimates
}

func newResponseEvents(obj *responseObject, now func() time.Time) *responseEvents {
	return &responseEvents{obj: obj, now: now, open: -1, calls: map[int]int{}}
}

// streamEvent is one event's data. Pointers tell absent from zero: each
// event type has its own set of fields.
type streamEvent struct {
	Type           string          `json:"type"`
	SequenceNumber int64           `json:"sequence_number"`
	Response       *responseObject `json:"response,omitempty"`
	OutputIndex    *int            `json:"output_index,omitempty"`
	ItemID         string          `json:"item_id,omitempty"`
	ContentIndex   *int            `json:"content_index,omitempty"`
	Item           *outputItem     `json:"item,omitempty"`
	Part           *outputContent  `json:"part,omitempty"`
	Delta          *string         `json:"delta,omitempty"`
	Text           *string         `json:"text,omitempty"`
	Arguments      *string         `json:"arguments,omitempty"`
	Code           *string         `json:"code,omitempty"`
	Message        *string         `json:"message,omitempty"`
	Param          *string         `json:"param,omitempty"`
}

func ptr[T any](v T) *T { return &v }

// emit appends one event. Values it points to are encoded at once, so the
// caller may change them afterwards.
func (e *responseEvents) emit(ev streamEvent) {
	ev.SequenceNumber = e.seq
	e.seq++
	b, err := json.Marshal(ev)
	if err != nil {
		panic("edge: response event does not encode: " + err.Error()) // broken invariant: all fields are plain data
	}
	e.buf = append(e.buf, "event: "...)
	e.buf = append(e.buf, ev.Type...)
	e.buf = append(e.buf, "\ndata: "...)
	e.buf = append(e.buf, b...)
	e.buf = append(e.buf, '\n', '\n')
}

// flush writes and flushes the pending events; false means the client left.
func (e *responseEvents) flush(w eventWriter) bool {
	if len(e.buf) == 0 {
		return true
	}
	_, err := w.Write(e.buf)
	e.buf = e.buf[:0]
	return err == nil && w.Flush() == nil
}

// begin emits response.created and response.in_progress.
func (e *responseEvents) begin() {
	e.emit(streamEvent{Type: "response.created", Response: e.obj})
	e.emit(streamEvent{Type: "response.in_progress", Response: e.obj})
}

// chunk translates one chat chunk.
func (e *responseEvents) chunk(ch *providers.ChatChunk) {
	for _, cc := range ch.Choices {
		if cc.Index != 0 {
			continue
		}
		if d := cc.Delta.Content; d != nil && *d != "" {
			e.text(*d)
		}
		for _, tc := range cc.Delta.ToolCalls {
			e.toolCall(tc)
		}
		if cc.FinishReason != "" {
			e.finish = cc.FinishReason
		}
	}
}

func (e *responseEvents) text(d string) {
	e.produced += int64(len(d))
	if e.open < 0 || e.obj.Output[e.open].Type != "message" {
		e.closeItem()
		e.open = len(e.obj.Output)
		e.obj.Output = append(e.obj.Output, outputItem{Type: "message", ID: ids.New(messageIDPrefix, e.now()), Status: statusInProgress})
		it := &e.obj.Output[e.open]
		e.emit(streamEvent{Type: "response.output_item.added", OutputIndex: ptr(e.open), Item: it})
		it.Content = []outputContent{{Type: "output_text"}}
		e.emit(streamEvent{Type: "response.content_part.added", ItemID: it.ID, OutputIndex: ptr(e.open), ContentIndex: ptr(0), Part: &it.Content[0]})
	}
	it := &e.obj.Output[e.open]
	it.Content[0].Text += d
	e.emit(streamEvent{Type: "response.output_text.delta", ItemID: it.ID, OutputIndex: ptr(e.open), ContentIndex: ptr(0), Delta: &d})
}

func (e *responseEvents) toolCall(tc providers.ToolCallDelta) {
	e.produced += int64(len(tc.Function.Name) + len(tc.Function.Arguments))
	idx, ok := e.calls[tc.Index]
	if !ok {
		e.closeItem()
		idx = len(e.obj.Output)
		e.calls[tc.Index] = idx
		e.open = idx
		e.obj.Output = append(e.obj.Output, outputItem{Type: "function_call", ID: ids.New(funcCallIDPrefix, e.now()),
			Status: statusInProgress, CallID: tc.ID, Name: tc.Function.Name})
		if e.obj.Output[idx].CallID == "" {
			e.obj.Output[idx].CallID = ids.New(callIDPrefix, e.now())
		}
		e.emit(streamEvent{Type: "response.output_item.added", OutputIndex: ptr(idx), Item: &e.obj.Output[idx]})
	}
	it := &e.obj.Output[idx]
	if it.Name == "" {
		it.Name = tc.Function.Name
	}
	if a := tc.Function.Arguments; a != "" {
		it.Arguments += a
		// A fragment for a call already closed (never seen from the
		// providers, which send calls one after another) still reaches the
		// final object, but gets no event after its done.
		if idx == e.open {
			e.emit(streamEvent{Type: "response.function_call_arguments.delta", ItemID: it.ID, OutputIndex: ptr(idx), Delta: &a})
		}
	}
}

// closeItem emits the done events of the open item, if any.
func (e *responseEvents) closeItem() {
	if e.open < 0 {
		return
	}
	idx := e.open
	e.open = -1
	it := &e.obj.Output[idx]
	it.Status = statusCompleted
	switch it.Type {
	case "message":
		e.emit(streamEvent{Type: "response.output_text.done", ItemID: it.ID, OutputIndex: ptr(idx), ContentIndex: ptr(0), Text: &it.Content[0].Text})
		e.emit(streamEvent{Type: "response.content_part.done", ItemID: it.ID, OutputIndex: ptr(idx), ContentIndex: ptr(0), Part: &it.Content[0]})
	case "function_call":
		e.emit(streamEvent{Type: "response.function_call_arguments.done", ItemID: it.ID, OutputIndex: ptr(idx), Arguments: &it.Arguments})
	}
	e.emit(streamEvent{Type: "response.output_item.done", OutputIndex: ptr(idx), Item: it})
}

// end emits the terminal event of a response that ran to its end:
// response.completed, or response.incomplete after a length or content
// filter stop.
func (e *responseEvents) end() {
	typ := "response.completed"
	if e.obj.Status == statusIncomplete {
		typ = "response.incomplete"
	}
	e.emit(streamEvent{Type: typ, Response: e.obj})
}

// failed emits an error event, then response.failed with the object.
func (e *responseEvents) failed(f *apiError) {
	e.emit(streamEvent{Type: "error", Code: &f.Code, Message: &f.Message})
	e.emit(streamEvent{Type: "response.failed", Response: e.obj})
}
