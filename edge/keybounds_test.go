package edge_test

import (
	"testing"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/persistence"
)

// Re-creating an end-user (idempotent on external_id) mints a key each
// time; past MaxKeysPerEndUser the oldest are revoked, so an end-user
// holds a bounded number of live keys. Another end-user is unaffected.
func TestKeysPerEndUserAreBounded(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	p := newPlatform(t, g, "Keys")
	other := p.endUser(t, g, "other")
	var id string
	var keys []string
	for i := 0; i < actors.MaxKeysPerEndUser+5; i++ {
		uid, key := g.CreateEndUser(t, p.id, p.key, "same")
		if id != "" && uid != id {
			t.Fatalf("re-creation returned another end-user %s, want %s", uid, id)
		}
		id = uid
		keys = append(keys, key)
	}
	for i, k := range keys {
		r := g.Do(t, "GET", "/v1/me", k, nil)
		if old := i < 5; old && r.Status != 401 || !old && r.Status != 200 {
			t.Errorf("key %d of %d: GET /v1/me = %d (oldest 5 must be revoked)", i, len(keys), r.Status)
		}
	}
	n := 0
	if err := g.Store.ScanPrefix(persistence.UserKeysPrefix(p.id, id), false, func(_, _ []byte) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	if n != actors.MaxKeysPerEndUser {
		t.Fatalf("the end-user has %d live keys, want %d", n, actors.MaxKeysPerEndUser)
	}
	wantStatus(t, "other end-user's key", g.Do(t, "GET", "/v1/me", other.key, nil), 200)
}

// A platform holds at most MaxEndpoints webhook endpoints (409
// too_many_endpoints past it); deleting one frees a slot; another
// platform is unaffected.
func TestWebhookEndpointsPerPlatformAreBounded(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{Webhooks: true})
	a, b := newPlatform(t, g, "A"), newPlatform(t, g, "B")
	body := map[string]any{"url": "http://127.0.0.1:9/hook", "event_types": []string{actors.EventWalletToppedUp}}
	path := func(pid string) string { return "/admin/v1/platforms/" + pid + "/webhook-endpoints" }
	var first string
	for i := 0; i < 20; i++ {
		r := wantStatus(t, "create endpoint", g.Do(t, "POST", path(a.id), edgetest.AdminKey, body), 201)
		if i == 0 {
			first = str(r, "id")
		}
	}
	wantError(t, "21st endpoint", g.Do(t, "POST", path(a.id), edgetest.AdminKey, body), 409, "too_many_endpoints")
	wantStatus(t, "other platform's endpoint", g.Do(t, "POST", path(b.id), edgetest.AdminKey, body), 201)
	wantStatus(t, "delete one", g.Do(t, "DELETE", path(a.id)+"/"+first, edgetest.AdminKey, nil), 200)
	wantStatus(t, "endpoint after a delete", g.Do(t, "POST", path(a.id), edgetest.AdminKey, body), 201)
}
