package edge

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/persistence"
	"github.com/assistiv/gateway/providers"
)

// Stored responses grow linearly along a previous_response_id chain: each
// record holds its own turn only (this input and this output) and the id
// of the response it continued. A new turn rebuilds the conversation by
// walking the chain back, bounded by maxChainDepth records and
// maxConversationBytes. Records written before this layout carry the
// whole conversation in Messages; the walk stops there.
//
// A response older than Config.ResponseRetention (by its created_at) is
// not found and the sweeper deletes it. A deleted or expired response
// drops out of every conversation continuing it: the walk stops at the
// missing link, and the conversation starts after it.

// maxChainDepth bounds the records one conversation walks.
const maxChainDepth = 10000

// chainRecord is what the walk needs of a stored response.
type chainRecord struct {
	Response struct {
		CreatedAt int64 `json:"created_at"`
	} `json:"response"`
	Previous string              `json:"previous,omitempty"`
	Turn     []providers.Message `json:"turn,omitempty"`
	Messages []providers.Message `json:"messages,omitempty"` // legacy: the whole conversation
}

// expired reports whether a response created at createdAt (unix seconds)
// is past retention at now.
func (s *Server) expired(createdAt int64, now time.Time) bool {
	return createdAt > 0 && time.Unix(createdAt, 0).Add(s.cfg.ResponseRetention).Before(now)
}

// conversation returns the messages of the conversation ending with the
// principal's stored response id (its turn included).
func (s *Server) conversation(p actors.Principal, id string) ([]providers.Message, error) {
	var turns [][]providers.Message
	size := 0
	now := s.deps.Clock.Now()
	for depth := 0; id != "" && ids.Valid(responseIDPrefix, id); depth++ {
		if depth == maxChainDepth {
			return nil, errBadRequest("conversation_too_long", "the conversation is longer than %d turns; start a new one", maxChainDepth)
		}
		v, err := s.storedGet(p, id, false)
		if errors.Is(err, persistence.ErrNotFound) {
			break // deleted or swept: the conversation starts after it
		}
		if err != nil {
			return nil, err
		}
		var rec chainRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return nil, fmt.Errorf("stored response %s: %w", id, err)
		}
		if s.expired(rec.Response.CreatedAt, now) {
			break
		}
		if size += len(v); size > maxConversationBytes {
			return nil, errBadRequest("conversation_too_large", "the conversation is over %d bytes; start a new one", maxConversationBytes)
		}
		if rec.Messages != nil {
			turns = append(turns, rec.Messages)
			break
		}
		turns = append(turns, rec.Turn)
		id = rec.Previous
	}
	var out []providers.Message
	for i := len(turns) - 1; i >= 0; i-- {
		out = append(out, turns[i]...)
	}
	return out, nil
}

// turnMessages returns this turn's messages to store: its input and, when
// it completed, its output.
func (t *responseTurn) turnMessages() []providers.Message {
	return t.messagesAfter()[t.turnStart:]
}

// SweepResponses deletes every stored response past ResponseRetention at
// now and returns how many. The server runs it every hour while serving;
// synchronous and safe for concurrent use.
func (s *Server) SweepResponses(now time.Time) (int, error) {
	var expired [][]byte
	err := s.deps.Store.ScanPrefix([]byte{persistence.FamilyResponse}, false, func(k, v []byte) bool {
		var rec chainRecord
		if json.Unmarshal(v, &rec) == nil && s.expired(rec.Response.CreatedAt, now) {
			expired = append(expired, append([]byte(nil), k...))
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	for i := 0; i < len(expired); i += 512 {
		batch := expired[i:min(i+512, len(expired))]
		ops := make([]persistence.Op, 0, len(batch))
		for _, k := range batch {
			ops = append(ops, persistence.Delete(k))
		}
		if err := s.deps.Store.Commit(ops...); err != nil {
			return i, err
		}
	}
	return len(expired), nil
}

// sweepResponses runs SweepResponses every interval until quit closes.
func (s *Server) sweepResponses(interval time.Duration, quit <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-quit:
			return
		case <-t.C:
			if n, err := s.SweepResponses(s.deps.Clock.Now()); err != nil {
				s.log.Warn("sweep stored responses", "err", err)
			} else if n > 0 {
				s.log.Debug("swept stored responses", "deleted", n)
			}
		}
	}
}
