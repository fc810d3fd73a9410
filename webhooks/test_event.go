package webhooks

import (
	"encoding/json"
	"time"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/persistence"
)

// EventTest is the type of the synthetic event SendTest delivers.
const EventTest = "webhook.test"

// SendTest queues one "webhook.test" message to endpoint eid only,
// whatever its event types, signed and retried like any delivery, so an
// admin can check their receiver. The endpoint must be enabled.
func (s *Service) SendTest(p ids.PlatformID, eid string) (Message, error) {
	now := s.clk.Now()
	id := ids.New(actors.EventPrefix, now)
	payload, err := json.Marshal(actors.Event{ID: id, EventType: EventTest, CreatedAt: now.UTC().Format(time.RFC3339Nano),
		Data: map[string]any{"platform_id": string(p), "endpoint_id": eid, "message": "a test event: your endpoint receives and verifies Assistiv webhooks"}})
	if err != nil {
		return Message{}, err
	}
	s.mu.Lock()
	e, err := s.lookupLocked(p, eid)
	if err != nil {
		s.mu.Unlock()
		return Message{}, err
	}
	if !e.rec.Enabled {
		s.mu.Unlock()
		return Message{}, conflict("endpoint_disabled", "the endpoint is disabled; enable it before sending a test event")
	}
	ms := now.UnixMilli()
	m := &messageRecord{ID: id, EndpointID: eid, EventType: EventTest, Payload: payload, Status: StatusPending,
		NextAttemptMs: ms + s.delay(0).Milliseconds(), CreatedAtMs: ms}
	done := s.submitLocked([]persistence.Op{
		persistence.Set(persistence.WebhookMessageKey(string(p), eid, id), encode(m)),
		persistence.Set(persistence.WebhookDueKey(string(p), eid, m.NextAttemptMs, id), nil),
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
