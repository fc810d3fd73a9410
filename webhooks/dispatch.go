package webhooks

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/persistence"
)

// dispatchLoop fans outbox events out to endpoints whenever it is woken,
// and every PollInterval as a safety net, until Close.
func (s *Service) dispatchLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		for {
			n, err := s.dispatchOnce()
			if err != nil {
				if s.ctx.Err() == nil {
					s.log.Error("dispatch outbox", "err", err)
				}
				break
			}
			if n < s.cfg.DispatchBatch {
				break
			}
		}
		select {
		case <-s.ctx.Done():
			return
		case <-s.wakeDispatch:
		case <-t.C:
		}
	}
}

type outboxEvent struct {
	key         []byte
	platform    ids.PlatformID
	id          string
	typ         string
	payload     []byte
	traceParent string // the causing request's span, when traced
}

// withoutTraceParent re-encodes an outbox event without its traceparent
// (outbox metadata, not payload): the same bytes the event would have had
// without it, since the members keep their order and data its bytes.
func withoutTraceParent(b []byte) []byte {
	var ev struct {
		ID        string          `json:"id"`
		EventType string          `json:"event_type"`
		CreatedAt string          `json:"created_at"`
		Data      json.RawMessage `json:"data"`
	}
	if json.Unmarshal(b, &ev) != nil {
		return b
	}
	out, err := json.Marshal(ev)
	if err != nil {
		return b
	}
	return out
}

// dispatchOnce moves up to DispatchBatch outbox events into messages: in
// one Pebble batch it deletes each event and writes one message (and its
// due entry) per enabled endpoint subscribed to the event's type. It
// returns how many events it consumed.
func (s *Service) dispatchOnce() (int, error) {
	var evs []outboxEvent
	err := s.store.Scan([]byte{persistence.FamilyOutbox}, []byte{persistence.FamilyOutbox + 1}, false, func(k, v []byte) bool {
		ev := outboxEvent{key: bytes.Clone(k), payload: bytes.Clone(v)}
		if i := bytes.IndexByte(k[1:], 0); i >= 0 {
			ev.platform = ids.PlatformID(k[1 : 1+i])
			ev.id = string(k[2+i:])
		}
		var head struct {
			ID          string `json:"id"`
			EventType   string `json:"event_type"`
			TraceParent string `json:"traceparent"`
		}
		if json.Unmarshal(v, &head) == nil {
			ev.typ = head.EventType
			if ev.id == "" {
				ev.id = head.ID
			}
			if head.TraceParent != "" {
				ev.traceParent = head.TraceParent
				ev.payload = withoutTraceParent(ev.payload)
			}
		}
		evs = append(evs, ev)
		return len(evs) < s.cfg.DispatchBatch
	})
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	now := s.nowMs()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	var ops []persistence.Op
	var woke []*endpoint
	for _, ev := range evs {
		ops = append(ops, persistence.Delete(ev.key))
		if ev.platform == "" || ev.id == "" || ev.typ == "" {
			s.log.Error("dropping malformed outbox record", "key_len", len(ev.key))
			continue
		}
		for eid, e := range s.endpoints[ev.platform] {
			if !e.rec.Enabled || !subscribed(e.rec, ev.typ) {
				continue
			}
			m := &messageRecord{
				ID: ev.id, EndpointID: eid, EventType: ev.typ, Payload: ev.payload, TraceParent: ev.traceParent,
				Status: StatusPending, NextAttemptMs: now + s.delay(0).Milliseconds(), CreatedAtMs: now,
			}
			ops = append(ops,
				persistence.Set(persistence.WebhookMessageKey(string(ev.platform), eid, ev.id), encode(m)),
				persistence.Set(persistence.WebhookDueKey(string(ev.platform), eid, m.NextAttemptMs, ev.id), nil))
			woke = append(woke, e)
		}
	}
	done := s.submitLocked(ops)
	s.mu.Unlock()
	if err := <-done; err != nil {
		return 0, err
	}
	if len(woke) > 0 {
		s.mu.Lock()
		for _, e := range woke {
			e.nextDue = 0 // rescan
		}
		s.mu.Unlock()
		s.wakeScheduler()
	}
	return len(evs), nil
}

func subscribed(r *endpointRecord, typ string) bool {
	for _, t := range r.EventTypes {
		if t == typ {
			return true
		}
	}
	return false
}
