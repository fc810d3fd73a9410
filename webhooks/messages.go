package webhooks

import (
	"errors"
	"time"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/persistence"
)

// Message is one event's delivery to one endpoint, as the delivery log
// shows it.
type Message struct {
	ID         string // the event id, sent as webhook-id on every attempt
	EndpointID string
	EventType  string
	Status     string // StatusPending, StatusDelivered or StatusFailed
	Attempts   int
	// LastStatusCode is the HTTP status of the last attempt; 0 when there
	// was none or no response (see LastError).
	LastStatusCode int
	LastLatency    time.Duration
	LastError      string
	NextAttemptAt  time.Time // zero unless pending
	LastAttemptAt  time.Time // zero before the first attempt
	DeliveredAt    time.Time // zero unless delivered
	CreatedAt      time.Time
	Payload        []byte // the exact JSON body sent
}

// MessageQuery selects a page of an endpoint's delivery log.
type MessageQuery struct {
	Status string // "" for all, or one of the Status* constants
	Before string // a message id from a previous page's Next: older than it
	Limit  int    // 1..250; default 50
}

// MessagePage is one page of a delivery log, newest first.
type MessagePage struct {
	Messages []Message
	// Next is the Before of the next page, "" on the last.
	Next string
}

func messageView(m *messageRecord) Message {
	t := func(ms int64) time.Time {
		if ms == 0 {
			return time.Time{}
		}
		return time.UnixMilli(ms).UTC()
	}
	return Message{
		ID: m.ID, EndpointID: m.EndpointID, EventType: m.EventType, Status: m.Status,
		Attempts: m.Attempts, LastStatusCode: m.LastStatusCode,
		LastLatency: time.Duration(m.LastLatencyMs) * time.Millisecond, LastError: m.LastError,
		NextAttemptAt: t(m.NextAttemptMs), LastAttemptAt: t(m.LastAttemptMs),
		DeliveredAt: t(m.DeliveredAtMs), CreatedAt: t(m.CreatedAtMs), Payload: m.Payload,
	}
}

// ValidMessageID reports whether id has the shape of an event id.
func ValidMessageID(id string) bool { return ids.Valid(actors.EventPrefix, id) }

// ListMessages returns a page of endpoint eid's delivery log, newest first.
func (s *Service) ListMessages(p ids.PlatformID, eid string, q MessageQuery) (MessagePage, error) {
	switch q.Status {
	case "", StatusPending, StatusDelivered, StatusFailed:
	default:
		return MessagePage{}, invalid("invalid_status", "status must be pending, delivered or failed")
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	q.Limit = min(q.Limit, 250)
	if q.Before != "" && !ValidMessageID(q.Before) {
		return MessagePage{}, invalid("invalid_cursor", "cursor is not one this API returned")
	}
	if _, err := s.GetEndpoint(p, eid); err != nil {
		return MessagePage{}, err
	}
	if s.shared != nil && s.shared.AskLog != nil {
		answers, err := s.askLog(LogQuery{Platform: string(p), Endpoint: eid, Query: q})
		if err != nil {
			return MessagePage{}, err
		}
		return mergePages(answers, q.Limit), nil
	}
	return s.messagesHere(p, eid, q)
}

// messagesHere is ListMessages over this node's delivery log (q checked).
func (s *Service) messagesHere(p ids.PlatformID, eid string, q MessageQuery) (MessagePage, error) {
	prefix := persistence.WebhookMessagesPrefix(string(p), eid)
	end := persistence.PrefixEnd(prefix)
	if q.Before != "" {
		end = persistence.WebhookMessageKey(string(p), eid, q.Before)
	}
	page := MessagePage{Messages: []Message{}}
	var failure error
	err := s.store.Scan(prefix, end, true, func(_, v []byte) bool {
		m, err := decodeMessage(v)
		if err != nil {
			failure = err
			return false
		}
		if q.Status != "" && m.Status != q.Status {
			return true
		}
		if len(page.Messages) == q.Limit {
			page.Next = page.Messages[q.Limit-1].ID
			return false
		}
		page.Messages = append(page.Messages, messageView(m))
		return true
	})
	if err == nil {
		err = failure
	}
	return page, err
}

// GetMessage returns one message of endpoint eid's delivery log.
func (s *Service) GetMessage(p ids.PlatformID, eid, mid string) (Message, error) {
	if _, err := s.GetEndpoint(p, eid); err != nil {
		return Message{}, err
	}
	if s.shared != nil && s.shared.AskLog != nil {
		if !ValidMessageID(mid) {
			return Message{}, notFound("message", mid)
		}
		answers, err := s.askLog(LogQuery{Platform: string(p), Endpoint: eid, MessageID: mid})
		if a, ok := foundIn(answers); ok && len(a.Messages) == 1 {
			return a.Messages[0], nil
		}
		if err != nil {
			return Message{}, err
		}
		return Message{}, notFound("message", mid)
	}
	m, err := s.getMessage(p, eid, mid)
	if err != nil {
		return Message{}, err
	}
	return messageView(m), nil
}

func (s *Service) getMessage(p ids.PlatformID, eid, mid string) (*messageRecord, error) {
	if !ValidMessageID(mid) {
		return nil, notFound("message", mid)
	}
	raw, err := s.store.Get(persistence.WebhookMessageKey(string(p), eid, mid))
	if errors.Is(err, persistence.ErrNotFound) {
		return nil, notFound("message", mid)
	}
	if err != nil {
		return nil, err
	}
	return decodeMessage(raw)
}

// Replay queues a delivered or failed message for immediate delivery with
// the same webhook-id, and a fresh round of the retry schedule. A pending
// message, or one of a disabled endpoint, answers ErrConflict.
func (s *Service) Replay(p ids.PlatformID, eid, mid string) (Message, error) {
	if s.shared == nil || s.shared.AskLog == nil {
		return s.replayHere(p, eid, mid)
	}
	if _, err := s.GetEndpoint(p, eid); err != nil {
		return Message{}, err
	}
	if !ValidMessageID(mid) {
		return Message{}, notFound("message", mid)
	}
	// The node holding the message replays it; the others answer not found.
	answers, err := s.askLog(LogQuery{Platform: string(p), Endpoint: eid, MessageID: mid, Replay: true})
	if a, ok := foundIn(answers); ok {
		if a.Conflict != nil {
			return Message{}, &FieldError{Kind: ErrConflict, Code: a.Conflict.Code, Message: a.Conflict.Message}
		}
		if len(a.Messages) == 1 {
			return a.Messages[0], nil
		}
	}
	if err != nil {
		return Message{}, err
	}
	return Message{}, notFound("message", mid)
}

// replayHere is Replay of a message in this node's delivery log.
func (s *Service) replayHere(p ids.PlatformID, eid, mid string) (Message, error) {
	now := s.nowMs()
	s.mu.Lock()
	e, err := s.lookupLocked(p, eid)
	if err != nil {
		s.mu.Unlock()
		return Message{}, err
	}
	m, err := s.getMessage(p, eid, mid)
	if err != nil {
		s.mu.Unlock()
		return Message{}, err
	}
	if !e.rec.Enabled {
		s.mu.Unlock()
		return Message{}, conflict("endpoint_disabled", "the endpoint is disabled; enable it before replaying")
	}
	if m.Status == StatusPending {
		s.mu.Unlock()
		return Message{}, conflict("message_pending", "the message is still pending delivery")
	}
	m.Status, m.RoundStart, m.NextAttemptMs, m.DeliveredAtMs = StatusPending, m.Attempts, now+s.delay(0).Milliseconds(), 0
	done := s.submitLocked([]persistence.Op{
		persistence.Set(persistence.WebhookMessageKey(string(p), eid, mid), encode(m)),
		persistence.Set(persistence.WebhookDueKey(string(p), eid, m.NextAttemptMs, mid), nil),
	})
	s.mu.Unlock()
	if err := <-done; err != nil {
		return Message{}, err
	}
	s.mu.Lock()
	e.nextDue = min(e.nextDue, m.NextAttemptMs)
	s.mu.Unlock()
	s.wakeScheduler()
	return messageView(m), nil
}
