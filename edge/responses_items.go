package edge

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/persistence"
)

// Item references. A stored response keeps each of its output items under
// [persistence.ResponseItemKey], in the same commit as the response record,
// so that a later request's input can name one by id
// ({"type":"item_reference","id":"msg_…"}, or just {"id":"msg_…"}), as
// OpenAI's Responses API allows and as the AI SDK does for the assistant
// text of an earlier step. The reference is replaced by the item itself
// before translation. Only the end-user's own items of stored responses
// resolve: another end-user's or platform's, an unstored (store: false)
// response's, a deleted response's and an unknown id are all the same 400
// naming the id.

// itemResolver returns the stored output item id names, as the JSON of an
// input item (a message or a function_call), or an error for the client.
type itemResolver func(id string) (json.RawMessage, error)

// storedItem is the record of one output item of a stored response.
type storedItem struct {
	ResponseID string          `json:"response_id"`
	Item       json.RawMessage `json:"item"`
}

// errItemNotFound is the answer to a reference that resolves to nothing the
// caller may read.
func errItemNotFound(i int, id string) *apiError {
	return errBadRequest("item_not_found", "input[%d]: item_reference %s names no item of your stored responses (items of responses created with store: false cannot be referenced)", i, strconv.Quote(id))
}

// itemResolver returns the resolver of the principal's stored items.
func (s *Server) itemResolver(p actors.Principal) itemResolver {
	return func(id string) (json.RawMessage, error) {
		if !ids.Valid(messageIDPrefix, id) && !ids.Valid(funcCallIDPrefix, id) {
			return nil, errItemNotFound(-1, id)
		}
		v, err := s.storedGet(p, id, true)
		if errors.Is(err, persistence.ErrNotFound) {
			return nil, errItemNotFound(-1, id)
		}
		if err != nil {
			return nil, err
		}
		var rec storedItem
		if err := json.Unmarshal(v, &rec); err != nil {
			return nil, fmt.Errorf("stored item %s: %w", id, err)
		}
		return rec.Item, nil
	}
}

// itemOps returns the writes that keep o's output items referenceable.
func itemOps(p actors.Principal, o *responseObject) ([]persistence.Op, error) {
	ops := make([]persistence.Op, 0, len(o.Output))
	for _, it := range o.Output {
		item, err := json.Marshal(it)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(storedItem{ResponseID: o.ID, Item: item})
		if err != nil {
			return nil, err
		}
		ops = append(ops, persistence.Set(persistence.ResponseItemKey(string(p.Platform), string(p.EndUser), it.ID), v))
	}
	return ops, nil
}

// itemDeletes returns the deletes of the output items of the stored
// response object resp.
func itemDeletes(p actors.Principal, resp json.RawMessage) ([]persistence.Op, error) {
	var o struct {
		Output []struct {
			ID string `json:"id"`
		} `json:"output"`
	}
	if err := json.Unmarshal(resp, &o); err != nil {
		return nil, err
	}
	ops := make([]persistence.Op, 0, len(o.Output))
	for _, it := range o.Output {
		if it.ID != "" {
			ops = append(ops, persistence.Delete(persistence.ResponseItemKey(string(p.Platform), string(p.EndUser), it.ID)))
		}
	}
	return ops, nil
}
