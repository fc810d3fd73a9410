package actors

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/persistence"
)

// Webhook event types.
const (
	EventBudgetToppedUp   = "budget.topped_up"
	EventBudgetDebited    = "budget.debited"
	EventBudgetLowBalance = "budget.low_balance"
	EventBudgetSuspended  = "budget.suspended"
	EventBudgetUnsuspend  = "budget.unsuspended"
	EventWalletLowBalance = "wallet.low_balance"
	EventWalletToppedUp   = "wallet.topped_up"
)

// EventTypes lists every event type, in documentation order.
var EventTypes = []string{
	EventBudgetToppedUp, EventBudgetDebited, EventBudgetLowBalance, EventBudgetSuspended,
	EventBudgetUnsuspend, EventWalletLowBalance, EventWalletToppedUp,
}

// EventPrefix starts every event id (the webhook-id of its deliveries).
const EventPrefix = "msg_"

func eventBit(typ string) uint64 {
	for i, t := range EventTypes {
		if t == typ {
			return 1 << i
		}
	}
	return 0
}

// EventMask returns the subscription bitmask of event types.
func EventMask(types []string) uint64 {
	var m uint64
	for _, t := range types {
		m |= eventBit(t)
	}
	return m
}

// Subscriptions tells actors which event types a platform's endpoints
// subscribe to, so an event nobody wants is never written. The webhooks
// package publishes it whenever endpoints change; safe for concurrent use.
type Subscriptions struct {
	m sync.Map // ids.PlatformID → uint64 mask
}

// Set publishes the event-type mask of platform p.
func (s *Subscriptions) Set(p ids.PlatformID, mask uint64) { s.m.Store(p, mask) }

func (s *Subscriptions) wants(p ids.PlatformID, typ string) bool {
	v, ok := s.m.Load(p)
	return ok && v.(uint64)&eventBit(typ) != 0
}

// Event is the JSON payload of a webhook event, as the outbox holds it.
type Event struct {
	ID        string         `json:"id"`
	EventType string         `json:"event_type"`
	CreatedAt string         `json:"created_at"`
	Data      map[string]any `json:"data"`
	// TraceParent is the W3C traceparent of the request that caused the
	// event, when it was traced. It is outbox metadata: the webhooks
	// dispatcher takes it off before the payload is signed and sent.
	TraceParent string `json:"traceparent,omitempty"`
}

// OutboxNotify, when set, is called (without blocking) after events were
// handed to the store, to wake the dispatcher.
type OutboxNotify func()

// wantsEvent reports whether an endpoint of platform p subscribes to typ:
// check it before building an event's data, which most calls would throw
// away (a settlement's budget.debited, with no endpoint listening).
func (e *Env) wantsEvent(p ids.PlatformID, typ string) bool {
	return e.Subscriptions != nil && e.Subscriptions.wants(p, typ)
}

// event returns the outbox op for an event of platform p when one of its
// endpoints subscribes to typ. data gets platform_id added.
func (e *Env) event(p ids.PlatformID, typ string, now time.Time, data map[string]any) []persistence.Op {
	return e.tracedEvent(p, typ, now, data, "")
}

// tracedEvent is event for a request traced under traceParent ("": none).
func (e *Env) tracedEvent(p ids.PlatformID, typ string, now time.Time, data map[string]any, traceParent string) []persistence.Op {
	if !e.wantsEvent(p, typ) {
		return nil
	}
	ev := Event{
		ID:          ids.New(EventPrefix, now),
		EventType:   typ,
		CreatedAt:   now.UTC().Format(time.RFC3339Nano),
		Data:        data,
		TraceParent: traceParent,
	}
	ev.Data["platform_id"] = string(p)
	b, err := json.Marshal(ev)
	if err != nil {
		e.Log.Error("encode event", "type", typ, "err", err)
		return nil
	}
	return []persistence.Op{persistence.Set(persistence.OutboxKey(string(p), ev.ID), b)}
}

// usd renders nanos as a JSON number in USD.
func usd(n int64) json.Number { return json.Number(money.Nanos(n).String()) }
