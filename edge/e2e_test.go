package edge_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/pb"
)

// The quickstart over real HTTP: the operator creates a platform and gets
// its raw key once; the platform key and an end-user key each identify
// themselves on /v1/me; every response, errors and unknown routes
// included, carries an X-Request-Id that error bodies repeat.
func TestQuickstartOverHTTP(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	var all []*edgetest.Response
	do := func(method, path, key string, body any, headers ...string) *edgetest.Response {
		t.Helper()
		r := g.Do(t, method, path, key, body, headers...)
		all = append(all, r)
		return r
	}

	created := wantStatus(t, "POST /admin/v1/platforms", do("POST", "/admin/v1/platforms", edgetest.AdminKey, map[string]any{"name": "Acme"}), 201)
	pid := str(created, "platform", "id")
	raw := str(created, "api_key", "raw_key")
	keyID := str(created, "api_key", "id")
	if !ids.Valid(ids.PlatformPrefix, pid) {
		t.Fatalf("platform.id = %q, want plat_<26>", pid)
	}
	if !ids.Valid(ids.KeyPrefix, keyID) {
		t.Errorf("api_key.id = %q, want key_<26>", keyID)
	}
	if _, _, err := ids.ParseKey(raw); err != nil || !strings.HasPrefix(raw, "sk-plat_") {
		t.Fatalf("api_key.raw_key = %q: %v", raw, err)
	}
	if got := str(created, "api_key", "key_prefix"); got != raw[:12] {
		t.Errorf("api_key.key_prefix = %q, want %q", got, raw[:12])
	}
	if got := str(created, "platform", "name"); got != "Acme" {
		t.Errorf("platform.name = %q, want Acme", got)
	}

	// The raw key is shown once: reading the platform back never shows it.
	r := do("GET", "/admin/v1/platforms/"+pid, edgetest.AdminKey, nil)
	wantStatus(t, "GET /admin/v1/platforms/{id}", r, 200)
	if strings.Contains(string(r.Body), raw) || strings.Contains(string(r.Body), "raw_key") {
		t.Errorf("GET platform shows the raw key: %s", r.Body)
	}

	me := wantStatus(t, "GET /v1/me (platform key)", do("GET", "/v1/me", raw, nil), 200)
	for field, want := range map[string]string{
		"key_type": "platform", "platform_id": pid, "key_id": keyID, "key_prefix": raw[:12],
	} {
		if got := str(me, field); got != want {
			t.Errorf("/v1/me (platform key) %s = %q, want %q", field, got, want)
		}
	}
	if _, ok := me["end_user_id"]; ok {
		t.Errorf("/v1/me (platform key) has end_user_id: %v", me)
	}

	eu := wantStatus(t, "POST end-users", do("POST", "/v1/platforms/"+pid+"/end-users", raw,
		map[string]any{"external_id": "user-42", "display_name": "Jane Smith", "metadata": map[string]any{"plan": "pro"}}), 201)
	euID := str(eu, "id")
	euKey := str(eu, "api_key", "raw_key")
	if !ids.Valid(ids.EndUserPrefix, euID) {
		t.Fatalf("end-user id = %q, want eu_<26>", euID)
	}
	if !strings.HasPrefix(euKey, "sk-eu_") {
		t.Fatalf("end-user api_key.raw_key = %q, want sk-eu_*", euKey)
	}
	for _, c := range []struct{ got, want string }{
		{str(eu, "platform_id"), pid},
		{str(eu, "external_id"), "user-42"},
		{str(eu, "display_name"), "Jane Smith"},
		{str(eu, "metadata", "plan"), "pro"},
		{str(eu, "api_key", "kind"), "end_user"},
		{str(eu, "api_key", "end_user_id"), euID},
		{str(eu, "api_key", "key_prefix"), euKey[:12]},
	} {
		if c.got != c.want {
			t.Errorf("POST end-users: got %q, want %q in %v", c.got, c.want, eu)
		}
	}

	me = wantStatus(t, "GET /v1/me (end-user key)", do("GET", "/v1/me", euKey, nil), 200)
	for field, want := range map[string]string{
		"key_type": "end_user", "platform_id": pid, "end_user_id": euID, "key_id": str(eu, "api_key", "id"), "key_prefix": euKey[:12],
	} {
		if got := str(me, field); got != want {
			t.Errorf("/v1/me (end-user key) %s = %q, want %q", field, got, want)
		}
	}

	// Errors of every origin: auth, router, method, actor, validation.
	wantError(t, "GET /v1/me without a key", do("GET", "/v1/me", "", nil), 401, "missing_api_key")
	wantError(t, "GET /nope", do("GET", "/nope", "", nil), 404, "route_not_found")
	wantError(t, "GET /v1/platforms/{id}/nope", do("GET", "/v1/platforms/"+pid+"/nope", raw, nil), 404, "route_not_found")
	wantError(t, "DELETE /v1/me", do("DELETE", "/v1/me", raw, nil), 405, "method_not_allowed")
	wantError(t, "GET unknown end-user", do("GET", "/v1/platforms/"+pid+"/end-users/"+fakeID(ids.EndUserPrefix), raw, nil), 404, "not_found")
	wantError(t, "POST end-users {}", do("POST", "/v1/platforms/"+pid+"/end-users", raw, map[string]any{}), 400, "missing_field")
	do("GET", "/healthz", "", nil)

	seen := map[string]bool{}
	for i, r := range all {
		rid := r.Header.Get("X-Request-Id")
		if !requestIDPattern.MatchString(rid) {
			t.Errorf("response %d (%d) X-Request-Id = %q", i, r.Status, rid)
		}
		if seen[rid] {
			t.Errorf("response %d repeats X-Request-Id %q", i, rid)
		}
		seen[rid] = true
	}
}

// A listing of API keys shows each key's prefix and never its raw value
// or digest, in any encoding; no other response shows them either.
func TestKeyListingNeverShowsRawKeyOrDigest(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	p := newPlatform(t, g, "Acme")
	raws := map[string]string{} // key id → raw key
	me := wantStatus(t, "GET /v1/me", g.Do(t, "GET", "/v1/me", p.key, nil), 200)
	raws[str(me, "key_id")] = p.key
	for i := range 3 {
		k := wantStatus(t, "POST api-keys", g.Do(t, "POST", p.path("/api-keys"), p.key, map[string]any{"name": fmt.Sprintf("server-%d", i)}), 201)
		if str(k, "raw_key") == "" || str(k, "kind") != "platform" || str(k, "name") != fmt.Sprintf("server-%d", i) {
			t.Fatalf("POST api-keys = %v", k)
		}
		raws[str(k, "id")] = str(k, "raw_key")
	}
	var secrets []string // raw keys of every kind, end-users' included
	for _, raw := range raws {
		secrets = append(secrets, raw)
	}
	u1 := p.endUser(t, g, "u1")
	u2 := p.endUser(t, g, "u2")
	secrets = append(secrets, u1.key, u2.key)

	var forbidden []string
	for _, raw := range secrets {
		d := sha256.Sum256([]byte(raw))
		forbidden = append(forbidden, raw, raw[12:], // the part past the shown prefix
			hex.EncodeToString(d[:]), strings.ToUpper(hex.EncodeToString(d[:])),
			base64.StdEncoding.EncodeToString(d[:]), base64.RawStdEncoding.EncodeToString(d[:]),
			base64.URLEncoding.EncodeToString(d[:]), base64.RawURLEncoding.EncodeToString(d[:]))
	}
	scan := func(what string, body []byte) {
		t.Helper()
		for _, f := range forbidden {
			if strings.Contains(string(body), f) {
				t.Errorf("%s shows secret material %q: %s", what, f, body)
			}
		}
		for _, field := range []string{`"raw_key"`, `"digest"`, `"hash"`} {
			if strings.Contains(string(body), field) {
				t.Errorf("%s has a %s field: %s", what, field, body)
			}
		}
	}

	r := g.Do(t, "GET", p.path("/api-keys"), p.key, nil)
	wantStatus(t, "GET api-keys", r, 200)
	scan("GET api-keys", r.Body)
	data := list(t, r)
	if len(data) != len(raws) {
		t.Fatalf("GET api-keys lists %d keys, want %d: %s", len(data), len(raws), r.Body)
	}
	allowed := []string{"id", "object", "name", "kind", "key_prefix", "created_at"}
	for _, k := range data {
		for field := range k {
			if !slices.Contains(allowed, field) {
				t.Errorf("api key %v has field %q; allowed: %v", k["id"], field, allowed)
			}
		}
		raw, ok := raws[str(k, "id")]
		if !ok {
			t.Errorf("api key %v was never created", k["id"])
			continue
		}
		if str(k, "key_prefix") != raw[:12] || str(k, "kind") != "platform" || str(k, "object") != "api_key" || str(k, "created_at") == "" {
			t.Errorf("api key %v = %v, want key_prefix %q, kind platform", k["id"], k, raw[:12])
		}
	}

	for _, c := range []struct{ path, key string }{
		{p.path(""), p.key},
		{p.path("/end-users"), p.key},
		{p.path("/end-users/" + u1.id), p.key},
		{"/admin/v1/platforms/" + p.id, edgetest.AdminKey},
		{"/admin/v1/platforms", edgetest.AdminKey},
		{"/v1/me", u1.key},
		{"/v1/me", p.key},
	} {
		r := g.Do(t, "GET", c.path, c.key, nil)
		if r.Status != 200 {
			t.Errorf("GET %s = %d %s", c.path, r.Status, r.Body)
		}
		scan("GET "+c.path, r.Body)
	}
}

// Revoking a key refuses it from the next request on, leaves every other
// key working, and is scoped to the revoking platform: another tenant's
// key id, or one already revoked, is 404.
func TestRevokedKeyAnswers401(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	a := newPlatform(t, g, "A")
	b := newPlatform(t, g, "B")
	k2 := wantStatus(t, "POST api-keys", g.Do(t, "POST", a.path("/api-keys"), a.key, map[string]any{"name": "rotating"}), 201)
	k3 := wantStatus(t, "POST api-keys", g.Do(t, "POST", a.path("/api-keys"), a.key, nil), 201)
	u := a.endUser(t, g, "u")
	bKey := wantStatus(t, "GET /v1/me", g.Do(t, "GET", "/v1/me", b.key, nil), 200)

	// Warm the cache for the key about to be revoked.
	wantStatus(t, "GET /v1/me (k2)", g.Do(t, "GET", "/v1/me", str(k2, "raw_key"), nil), 200)

	r := wantStatus(t, "DELETE api-keys/{k2}", g.Do(t, "DELETE", a.path("/api-keys/"+str(k2, "id")), a.key, nil), 200)
	if r["revoked"] != true || str(r, "id") != str(k2, "id") {
		t.Errorf("DELETE api-keys = %v", r)
	}
	for _, path := range []string{"/v1/me", a.path(""), a.path("/end-users")} {
		wantError(t, "revoked key on "+path, g.Do(t, "GET", path, str(k2, "raw_key"), nil), 401, "invalid_api_key")
	}
	for _, k := range []string{a.key, str(k3, "raw_key"), u.key, b.key} {
		wantStatus(t, "GET /v1/me with a key not revoked", g.Do(t, "GET", "/v1/me", k, nil), 200)
	}
	keys := list(t, g.Do(t, "GET", a.path("/api-keys"), a.key, nil))
	for _, k := range keys {
		if str(k, "id") == str(k2, "id") {
			t.Errorf("revoked key %s still listed", str(k2, "id"))
		}
	}
	if len(keys) != 2 {
		t.Errorf("GET api-keys lists %d keys after revoking one of 3", len(keys))
	}

	wantError(t, "revoke twice", g.Do(t, "DELETE", a.path("/api-keys/"+str(k2, "id")), a.key, nil), 404, "not_found")
	// B cannot revoke A's key, neither under A's path nor under its own.
	wantError(t, "B revokes A's key under A's path", g.Do(t, "DELETE", a.path("/api-keys/"+str(k3, "id")), b.key, nil), 404, "not_found")
	wantError(t, "B revokes A's key under B's path", g.Do(t, "DELETE", b.path("/api-keys/"+str(k3, "id")), b.key, nil), 404, "not_found")
	// Nor can A revoke B's key under its own path.
	wantError(t, "A revokes B's key under A's path", g.Do(t, "DELETE", a.path("/api-keys/"+str(bKey, "key_id")), a.key, nil), 404, "not_found")
	wantError(t, "revoke a malformed key id", g.Do(t, "DELETE", a.path("/api-keys/nope"), a.key, nil), 404, "not_found")
	wantStatus(t, "k3 after B's attempts", g.Do(t, "GET", "/v1/me", str(k3, "raw_key"), nil), 200)
	wantStatus(t, "B's key after A's attempt", g.Do(t, "GET", "/v1/me", b.key, nil), 200)

	// A platform may revoke the very key it calls with; the next call is refused.
	wantStatus(t, "self-revoke", g.Do(t, "DELETE", a.path("/api-keys/"+str(k3, "id")), str(k3, "raw_key"), nil), 200)
	wantError(t, "self-revoked key", g.Do(t, "GET", "/v1/me", str(k3, "raw_key"), nil), 401, "invalid_api_key")
}

// Creating an end-user is idempotent on external_id: a repeat answers 200
// with the same end-user and a fresh key, and both keys work. Concurrent
// creates with one new external_id make exactly one end-user, because the
// platform actor handles them one at a time.
func TestEndUserCreateIsIdempotentOnExternalID(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	p := newPlatform(t, g, "Acme")

	first := wantStatus(t, "first POST", g.Do(t, "POST", p.path("/end-users"), p.key, map[string]any{"external_id": "user-42"}), 201)
	again := wantStatus(t, "repeat POST", g.Do(t, "POST", p.path("/end-users"), p.key, map[string]any{"external_id": "user-42"}), 200)
	if str(first, "id") != str(again, "id") {
		t.Errorf("repeat POST id = %q, want %q", str(again, "id"), str(first, "id"))
	}
	k1, k2 := str(first, "api_key", "raw_key"), str(again, "api_key", "raw_key")
	if k1 == "" || k2 == "" || k1 == k2 || str(first, "api_key", "id") == str(again, "api_key", "id") {
		t.Errorf("repeat POST keys: %q (%s) and %q (%s), want two fresh keys", k1, str(first, "api_key", "id"), k2, str(again, "api_key", "id"))
	}
	for _, k := range []string{k1, k2} {
		me := wantStatus(t, "GET /v1/me", g.Do(t, "GET", "/v1/me", k, nil), 200)
		if str(me, "end_user_id") != str(first, "id") {
			t.Errorf("/v1/me end_user_id = %q, want %q", str(me, "end_user_id"), str(first, "id"))
		}
	}

	const n = 20
	type answer struct {
		status  int
		id, key string
	}
	answers := make([]answer, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := g.Do(t, "POST", p.path("/end-users"), p.key, map[string]any{"external_id": "racer"})
			m := object(t, r.Body)
			answers[i] = answer{r.Status, str(m, "id"), str(m, "api_key", "raw_key")}
		}()
	}
	close(start)
	wg.Wait()
	created, keys := 0, map[string]bool{}
	for i, a := range answers {
		switch a.status {
		case 201:
			created++
		case 200:
		default:
			t.Errorf("concurrent POST %d = %d", i, a.status)
		}
		if a.id != answers[0].id {
			t.Errorf("concurrent POST %d made end-user %q, POST 0 made %q", i, a.id, answers[0].id)
		}
		keys[a.key] = true
	}
	if created != 1 {
		t.Errorf("concurrent POSTs answered 201 %d times, want once", created)
	}
	if len(keys) != n {
		t.Errorf("concurrent POSTs returned %d distinct keys, want %d", len(keys), n)
	}
	for k := range keys {
		me := wantStatus(t, "GET /v1/me", g.Do(t, "GET", "/v1/me", k, nil), 200)
		if str(me, "end_user_id") != answers[0].id {
			t.Errorf("key of a concurrent POST authenticates %q, want %q", str(me, "end_user_id"), answers[0].id)
		}
	}
	l := list(t, g.Do(t, "GET", p.path("/end-users?external_id=racer"), p.key, nil))
	if len(l) != 1 {
		t.Errorf("end-users with external_id racer: %d, want 1", len(l))
	}

	// HTTP parsing spaces requests out; straight through the Directory, a
	// burst lands in the platform actor's mailbox at once.
	for round := range 10 {
		ext := fmt.Sprintf("burst-%d", round)
		made := make([]string, 50)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range made {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res, err := g.Actors.Ask(context.Background(), actors.PlatformActor(ids.PlatformID(p.id)), &pb.CreateEndUser{ExternalId: ext})
				if err != nil {
					t.Errorf("CreateEndUser(%s): %v", ext, err)
					return
				}
				made[i] = res.(*pb.EndUserCreated).EndUser.GetId()
			}()
		}
		close(start)
		wg.Wait()
		distinct := map[string]bool{}
		for _, id := range made {
			distinct[id] = true
		}
		if len(distinct) != 1 {
			t.Errorf("a burst of 50 CreateEndUser(%s) made %d end-users, want 1", ext, len(distinct))
		}
	}
}

// Deleting an end-user cascades: its keys stop authenticating, its
// record, budget, ledger and rate limits answer 404, and re-creating its
// external_id makes a new end-user that inherits nothing.
func TestDeleteEndUserCascades(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	p := newPlatform(t, g, "Acme")
	u := p.endUser(t, g, "doomed")
	u2 := p.endUser(t, g, "doomed") // a second key for the same end-user
	if u2.id != u.id {
		t.Fatalf("re-create made %s, want %s", u2.id, u.id)
	}
	keep := p.endUser(t, g, "kept")
	up := func(rest string) string { return p.path("/end-users/" + u.id + rest) }

	wantStatus(t, "POST budget", g.Do(t, "POST", up("/budget"), p.key, map[string]any{"amount_usd": 10, "period": "monthly"}), 201)
	wantStatus(t, "topup", g.Do(t, "POST", up("/budget/topup"), p.key, map[string]any{"amount_usd": 2.5}, "Idempotency-Key", "t1"), 200)
	wantStatus(t, "topup", g.Do(t, "POST", up("/budget/topup"), p.key, map[string]any{"amount_usd": 1.25}), 200)
	wantStatus(t, "PUT rate-limits", g.Do(t, "PUT", up("/rate-limits"), p.key, map[string]any{"requests_per_minute": 7}), 200)
	wantStatus(t, "keep budget", g.Do(t, "POST", p.path("/end-users/"+keep.id+"/budget"), p.key, map[string]any{"amount_usd": 3}), 201)

	del := wantStatus(t, "DELETE end-user", g.Do(t, "DELETE", up(""), p.key, nil), 200)
	if del["deleted"] != true || str(del, "id") != u.id {
		t.Errorf("DELETE end-user = %v", del)
	}
	for _, k := range []string{u.key, u2.key} {
		wantError(t, "deleted end-user's key", g.Do(t, "GET", "/v1/me", k, nil), 401, "invalid_api_key")
	}
	for _, c := range []struct {
		method, rest string
		body         any
	}{
		{"GET", "", nil},
		{"PATCH", "", map[string]any{"display_name": "x"}},
		{"DELETE", "", nil},
		{"GET", "/budget", nil},
		{"PATCH", "/budget", map[string]any{"amount_usd": 1}},
		{"POST", "/budget/topup", map[string]any{"amount_usd": 2.5}},
		{"GET", "/budget/transactions", nil},
		{"GET", "/rate-limits", nil},
		{"PUT", "/rate-limits", map[string]any{"requests_per_minute": 1}},
		{"DELETE", "/rate-limits", nil},
	} {
		wantError(t, c.method+" deleted end-user"+c.rest, g.Do(t, c.method, up(c.rest), p.key, c.body), 404, "not_found")
	}

	for _, e := range list(t, g.Do(t, "GET", p.path("/end-users"), p.key, nil)) {
		if str(e, "id") == u.id {
			t.Errorf("deleted end-user %s still listed", u.id)
		}
	}
	if l := list(t, g.Do(t, "GET", p.path("/end-users?external_id=doomed"), p.key, nil)); len(l) != 0 {
		t.Errorf("external_id filter finds the deleted end-user: %v", l)
	}

	re := wantStatus(t, "re-create", g.Do(t, "POST", p.path("/end-users"), p.key, map[string]any{"external_id": "doomed"}), 201)
	nu := str(re, "id")
	if nu == u.id || !ids.Valid(ids.EndUserPrefix, nu) {
		t.Fatalf("re-created end-user id = %q, want a new id (old %q)", nu, u.id)
	}
	if re["budget"] != nil || re["rate_limits"] != nil {
		t.Errorf("re-created end-user inherits budget or limits: %v", re)
	}
	wantError(t, "budget of the re-created end-user", g.Do(t, "GET", p.path("/end-users/"+nu+"/budget"), p.key, nil), 404, "not_found")
	if l := list(t, g.Do(t, "GET", p.path("/end-users/"+nu+"/budget/transactions"), p.key, nil)); len(l) != 0 {
		t.Errorf("re-created end-user has transactions: %v", l)
	}
	rl := wantStatus(t, "rate limits of the re-created end-user", g.Do(t, "GET", p.path("/end-users/"+nu+"/rate-limits"), p.key, nil), 200)
	if rl["override"] != nil {
		t.Errorf("re-created end-user inherits the override: %v", rl)
	}
	wantError(t, "old key after re-create", g.Do(t, "GET", "/v1/me", u.key, nil), 401, "invalid_api_key")

	// The other end-user is untouched.
	wantStatus(t, "kept end-user's key", g.Do(t, "GET", "/v1/me", keep.key, nil), 200)
	b := wantStatus(t, "kept budget", g.Do(t, "GET", p.path("/end-users/"+keep.id+"/budget"), p.key, nil), 200)
	if num(b, "balance_usd") != "3" {
		t.Errorf("kept end-user's balance = %s, want 3", num(b, "balance_usd"))
	}
}

// End-users page by cursor: pages of the asked size, every end-user exactly
// once in id order, a null cursor on the last page, and 400 for a cursor
// the API never returned.
func TestEndUsersPageByCursor(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	p := newPlatform(t, g, "Acme")
	other := newPlatform(t, g, "Other")
	other.endUser(t, g, "elsewhere")
	want := map[string]bool{}
	for i := range 25 {
		want[p.endUser(t, g, fmt.Sprintf("user-%02d", i)).id] = true
	}

	var got []string
	cursor := ""
	var sizes []int
	for page := 0; page < 10; page++ {
		path := p.path("/end-users?limit=10")
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		r := g.Do(t, "GET", path, p.key, nil)
		m := wantStatus(t, "GET end-users page", r, 200)
		data := list(t, r)
		sizes = append(sizes, len(data))
		for _, e := range data {
			got = append(got, str(e, "id"))
		}
		next, _ := m["next_cursor"].(string)
		if (m["next_cursor"] == nil) == (m["has_more"] == true) {
			t.Errorf("page %d: has_more %v with next_cursor %v", page, m["has_more"], m["next_cursor"])
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if !slices.Equal(sizes, []int{10, 10, 5}) {
		t.Errorf("page sizes = %v, want [10 10 5]", sizes)
	}
	if !slices.IsSorted(got) {
		t.Errorf("end-users not in id order: %v", got)
	}
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Errorf("end-user %s listed twice", id)
		}
		seen[id] = true
		if !want[id] {
			t.Errorf("end-user %s listed but not created on this platform", id)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("listed %d distinct end-users, created %d", len(seen), len(want))
	}

	for _, c := range []string{
		"!!!",
		base64.RawURLEncoding.EncodeToString([]byte("garbage")),
		base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("x", 300))),
		base64.StdEncoding.EncodeToString([]byte(got[0])), // padded: not ours
		base64.RawURLEncoding.EncodeToString([]byte(p.id)),
	} {
		wantError(t, "cursor "+c, g.Do(t, "GET", p.path("/end-users?cursor="+url.QueryEscape(c)), p.key, nil), 400, "invalid_cursor")
	}
	for _, l := range []string{"0", "-1", "ten", "1.5", "99999999999999999999999"} {
		wantError(t, "limit "+l, g.Do(t, "GET", p.path("/end-users?limit="+l), p.key, nil), 400, "invalid_limit")
	}
}

// A create that finds an end-user while a DELETE of it is under way never
// leaves a working key for a deleted end-user: whichever way the race
// goes, the key the create returns works exactly when its end-user exists.
func TestNoKeyOutlivesItsDeletedEndUser(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	p := newPlatform(t, g, "Acme")
	for i := range 150 {
		ext := fmt.Sprintf("racer-%d", i)
		u := p.endUser(t, g, ext)
		var del, cre *edgetest.Response
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			del = g.Do(t, "DELETE", p.path("/end-users/"+u.id), p.key, nil)
		}()
		go func() {
			defer wg.Done()
			<-start
			cre = g.Do(t, "POST", p.path("/end-users"), p.key, map[string]any{"external_id": ext})
		}()
		close(start)
		wg.Wait()
		if del.Status != 200 || (cre.Status != 200 && cre.Status != 201) {
			t.Fatalf("race %d: DELETE = %d %s, POST = %d %s", i, del.Status, del.Body, cre.Status, cre.Body)
		}
		m := object(t, cre.Body)
		id, key := str(m, "id"), str(m, "api_key", "raw_key")
		me := g.Do(t, "GET", "/v1/me", key, nil)
		get := g.Do(t, "GET", p.path("/end-users/"+id), p.key, nil)
		if (me.Status == 200) != (get.Status == 200) {
			t.Errorf("race %d: POST answered %d for end-user %s (deleted one: %v); its key answers %d, the end-user %d",
				i, cre.Status, id, id == u.id, me.Status, get.Status)
		}
		wantError(t, "deleted end-user's first key", g.Do(t, "GET", "/v1/me", u.key, nil), 401, "invalid_api_key")
	}
}

// Metadata is the platform's own JSON: it comes back as sent, numbers
// digit for digit (no float64 rounding), on create, read and patch.
func TestEndUserMetadataRoundTripsExactly(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	p := newPlatform(t, g, "Acme")
	const md = `{"big":12345678901234567890,"cents":0.1,"exp":1e-7,"nested":{"id":9007199254740993,"list":[1.50,"x",null,true]}}`
	const want = `{"big":12345678901234567890,"cents":0.1,"exp":1e-7,"nested":{"id":9007199254740993,"list":[1.50,"x",null,true]}}`
	r := doRaw(t, g, "POST", p.path("/end-users"), p.key, `{"external_id":"m","metadata":`+md+`}`, "Content-Type", "application/json")
	id := str(wantStatus(t, "POST end-users", r, 201), "id")
	check := func(what string, body []byte) {
		t.Helper()
		var v struct {
			Metadata json.RawMessage `json:"metadata"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatal(err)
		}
		if string(v.Metadata) != want {
			t.Errorf("%s metadata = %s, want %s", what, v.Metadata, want)
		}
	}
	check("POST", r.Body)
	check("GET", g.Do(t, "GET", p.path("/end-users/"+id), p.key, nil).Body)
	r = doRaw(t, g, "PATCH", p.path("/end-users/"+id), p.key, `{"metadata":`+md+`}`, "Content-Type", "application/json")
	check("PATCH", r.Body)
}
