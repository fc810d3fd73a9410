package edge_test

import (
	"testing"

	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/webhooks"
)

// TestWebhookTestEvent: POST .../test delivers one signed "webhook.test"
// to that endpoint only (whatever its event types); another platform's
// endpoint id answers 404 and a disabled endpoint 409.
func TestWebhookTestEvent(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{Webhooks: true})
	pid, _ := g.CreatePlatform(t, "hooks")
	other, _ := g.CreatePlatform(t, "other")
	rc := newWhReceiver(t, nil)
	var ep whEndpoint
	r := g.Do(t, "POST", whPath(pid, ""), edgetest.AdminKey, map[string]any{"url": rc.URL + "/a", "event_types": []string{"wallet.topped_up"}})
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &ep)
	var second whEndpoint
	g.Do(t, "POST", whPath(pid, ""), edgetest.AdminKey, map[string]any{"url": rc.URL + "/b", "event_types": []string{"wallet.topped_up"}}).JSON(t, &second)

	r = g.Do(t, "POST", whPath(pid, "/"+ep.ID+"/test"), edgetest.AdminKey, nil)
	if r.Status != 202 {
		t.Fatalf("test event: %d %s", r.Status, r.Body)
	}
	whWait(t, "the test delivery", func() bool { return len(rc.byType(webhooks.EventTest)) == 1 })
	d := rc.byType(webhooks.EventTest)[0]
	whVerify(t, ep.Secret, d)
	if d.event.Data["endpoint_id"] != ep.ID || d.event.Data["platform_id"] != pid {
		t.Fatalf("test event data %v", d.event.Data)
	}
	var msgs struct {
		Data []whMessage `json:"data"`
	}
	whWait(t, "the delivered message", func() bool {
		g.Do(t, "GET", whPath(pid, "/"+ep.ID+"/messages"), edgetest.AdminKey, nil).JSON(t, &msgs)
		return len(msgs.Data) == 1 && msgs.Data[0].Status == "delivered"
	})
	g.Do(t, "GET", whPath(pid, "/"+second.ID+"/messages"), edgetest.AdminKey, nil).JSON(t, &msgs)
	if len(msgs.Data) != 0 {
		t.Fatalf("the other endpoint got %d messages", len(msgs.Data))
	}
	if r := g.Do(t, "POST", whPath(other, "/"+ep.ID+"/test"), edgetest.AdminKey, nil); r.Status != 404 {
		t.Fatalf("another platform's endpoint: %d %s", r.Status, r.Body)
	}
	g.Do(t, "PATCH", whPath(pid, "/"+ep.ID), edgetest.AdminKey, map[string]any{"enabled": false})
	if r := g.Do(t, "POST", whPath(pid, "/"+ep.ID+"/test"), edgetest.AdminKey, nil); r.Status != 409 {
		t.Fatalf("disabled endpoint: %d %s", r.Status, r.Body)
	}
}
