package webhooks

import (
	"encoding/json"
	"testing"

	"github.com/assistiv/gateway/actors"
)

// TestTraceParentIsOutboxMetadataOnly: an event written with the causing
// request's traceparent is delivered with exactly the bytes it would have
// had without one (what the receiver verifies and stores never changes
// with tracing).
func TestTraceParentIsOutboxMetadataOnly(t *testing.T) {
	ev := actors.Event{ID: "msg_1", EventType: "budget.debited", CreatedAt: "2026-12-07T05:00:00.123Z",
		Data: map[string]any{"platform_id": "plat_1", "amount_usd": json.Number("0.0012"), "note": "<&> é", "nested": map[string]any{"b": 1, "a": []int{2, 3}}}}
	plain, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	ev.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	traced, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := withoutTraceParent(traced); string(got) != string(plain) {
		t.Fatalf("payload changed:\n got %s\nwant %s", got, plain)
	}
}
