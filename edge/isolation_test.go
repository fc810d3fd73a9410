package edge_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/logs"
)

// route is one registered route.
type route struct {
	method, path string
	guard        string // "plat" (platform-scoped), "admin" or "" (other)
}

func (r route) String() string { return r.method + " " + r.path }

// routes lists every route the server registered, so a route added later
// is covered (or fails for want of a fixture) without editing this file.
func routes(tb testing.TB, g *edgetest.Gateway) []route {
	tb.Helper()
	var out []route
	for method, paths := range g.Server.RouteList() {
		for _, p := range paths {
			r := route{method: method, path: p}
			switch {
			case strings.HasPrefix(p, "/admin/"):
				r.guard = "admin"
			case strings.HasPrefix(p, "/v1/platforms/{platformId}"):
				r.guard = "plat"
			}
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b route) int { return strings.Compare(a.path+" "+a.method, b.path+" "+b.method) })
	if len(out) < 30 {
		tb.Fatalf("the server lists %d routes", len(out))
	}
	return out
}

// validBodies holds a body that the owner of the resources could send on
// each mutating platform-scoped route (the positive control proves it).
var validBodies = map[string]any{
	"PATCH /v1/platforms/{platformId}":                                   map[string]any{"display_name": "renamed"},
	"POST /v1/platforms/{platformId}/api-keys":                           map[string]any{"name": "new"},
	"PUT /v1/platforms/{platformId}/rate-limits":                         map[string]any{"requests_per_minute": 11},
	"POST /v1/platforms/{platformId}/end-users":                          map[string]any{"external_id": "new-user"},
	"PATCH /v1/platforms/{platformId}/end-users/{endUserId}":             map[string]any{"display_name": "renamed"},
	"POST /v1/platforms/{platformId}/end-users/{endUserId}/budget":       map[string]any{"amount_usd": 1},
	"PATCH /v1/platforms/{platformId}/end-users/{endUserId}/budget":      map[string]any{"amount_usd": 2},
	"POST /v1/platforms/{platformId}/end-users/{endUserId}/budget/topup": map[string]any{"amount_usd": 1},
	"POST /v1/platforms/{platformId}/end-users/{endUserId}/budget/debit": map[string]any{"amount_usd": 1},
	"PUT /v1/platforms/{platformId}/end-users/{endUserId}/rate-limits":   map[string]any{"requests_per_minute": 5},
	"PATCH /admin/v1/platforms/{platformId}":                             map[string]any{"display_name": "renamed"},
	"POST /admin/v1/platforms":                                           map[string]any{"name": "new"},
	"POST /admin/v1/platforms/{platformId}/wallet/topup":                 map[string]any{"amount_usd": 1},
	"PUT /admin/v1/platforms/{platformId}/wallet/auto-topup":             map[string]any{"enabled": false},
	"PUT /admin/v1/platforms/{platformId}/rate-limits":                   map[string]any{"requests_per_minute": 3},
	"POST /v1/platforms/{platformId}/wallet/checkout":                    map[string]any{"amount_usd": 5},
}

// unconfigured names the platform routes whose service these gateways run
// without (Stripe: payments_test.go covers it with stripe-mock); the
// owner's positive control reaches the handler and gets this code.
var unconfigured = map[string]string{
	"POST /v1/platforms/{platformId}/wallet/checkout": "payments_not_configured",
}

// bodyFor returns the body to send on r: none for GET and DELETE, the
// validBodies row for platform-scoped routes (a missing row fails), and {}
// for operator routes, which these tests only ever see refused at auth.
func bodyFor(tb testing.TB, r route) any {
	tb.Helper()
	if r.method == "GET" || r.method == "DELETE" {
		return nil
	}
	b, ok := validBodies[r.String()]
	if !ok {
		if r.guard != "plat" {
			return map[string]any{}
		}
		tb.Fatalf("route %s has no body in validBodies; add one", r)
	}
	return b
}

var paramRE = regexp.MustCompile(`\{[^}]+\}`)

// fixtures name the value of each route parameter.
type fixtures map[string]string

// fill substitutes fixtures into a route template. A platform-scoped route
// with a parameter that has no fixture fails the test; other routes get
// "x".
func fill(tb testing.TB, r route, f fixtures) string {
	tb.Helper()
	return paramRE.ReplaceAllStringFunc(r.path, func(p string) string {
		if v, ok := f[p[1:len(p)-1]]; ok {
			return v
		}
		if r.guard == "plat" {
			tb.Fatalf("route %s has parameter %s with no fixture here; add one", r, p)
		}
		return "x"
	})
}

// tenant is a platform with one fully furnished end-user, a second key
// and one call log.
type tenant struct {
	platform
	name, keyID, key2ID string
	user                endUser
	external, userName  string
	requestID           string // of its call log
}

func furnish(tb testing.TB, g *edgetest.Gateway, name string) tenant {
	tb.Helper()
	t := tenant{platform: newPlatform(tb, g, name), name: name, external: name + "-ext-user", userName: name + " Person"}
	t.keyID = str(wantStatus(tb, "GET /v1/me", g.Do(tb, "GET", "/v1/me", t.key, nil), 200), "key_id")
	t.key2ID = str(wantStatus(tb, "POST api-keys", g.Do(tb, "POST", t.path("/api-keys"), t.key, map[string]any{"name": name + "-second"}), 201), "id")
	r := wantStatus(tb, "POST end-users", g.Do(tb, "POST", t.path("/end-users"), t.key,
		map[string]any{"external_id": t.external, "display_name": t.userName, "metadata": map[string]any{"tenant": name}}), 201)
	t.user = endUser{str(r, "id"), str(r, "api_key", "raw_key")}
	u := t.path("/end-users/" + t.user.id)
	wantStatus(tb, "POST budget", g.Do(tb, "POST", u+"/budget", t.key, map[string]any{"amount_usd": 5}), 201)
	wantStatus(tb, "topup", g.Do(tb, "POST", u+"/budget/topup", t.key, map[string]any{"amount_usd": 1.5, "reason": name}, "Idempotency-Key", name+"-t1"), 200)
	wantStatus(tb, "PUT rate-limits", g.Do(tb, "PUT", u+"/rate-limits", t.key, map[string]any{"requests_per_minute": 9}), 200)
	wantStatus(tb, "PUT platform rate-limits", g.Do(tb, "PUT", t.path("/rate-limits"), t.key, map[string]any{"tokens_per_minute": 1000}), 200)
	t.requestID = fakeID(ids.RequestPrefix)
	g.Logs.Writer().Write(logs.Entry{RequestID: t.requestID, PlatformID: ids.PlatformID(t.id), EndUserID: ids.EndUserID(t.user.id),
		Kind: logs.KindChatCompletions, Model: "gpt-4o-mini", Provider: "openai", StatusCode: 200, PromptTokens: 3, CompletionTokens: 4})
	if err := g.Logs.Writer().Flush(); err != nil {
		tb.Fatal(err)
	}
	return t
}

// snapshot renders everything a tenant owns, as its own keys read it.
func (t tenant) snapshot(tb testing.TB, g *edgetest.Gateway) string {
	tb.Helper()
	var b strings.Builder
	for _, p := range []string{"", "/wallet", "/wallet/transactions", "/api-keys", "/rate-limits", "/end-users", "/logs", "/logs/" + t.requestID,
		"/end-users/" + t.user.id, "/end-users/" + t.user.id + "/budget",
		"/end-users/" + t.user.id + "/budget/transactions", "/end-users/" + t.user.id + "/rate-limits"} {
		r := g.Do(tb, "GET", t.path(p), t.key, nil)
		if r.Status != 200 {
			tb.Fatalf("snapshot GET %s = %d %s", p, r.Status, r.Body)
		}
		b.WriteString(p + " " + string(r.Body) + "\n")
	}
	for _, k := range []string{t.key, t.user.key} {
		b.WriteString(string(g.Do(tb, "GET", "/v1/me", k, nil).Body) + "\n")
	}
	return b.String()
}

// secrets are strings of t that another tenant must never see unless it
// put them in the request itself.
func (t tenant) secrets() []string {
	return []string{t.id, t.user.id, t.keyID, t.key2ID, t.requestID, t.name, t.external, t.userName, t.key[:12], t.user.key[:12]}
}

// normalize replaces the given ids and the request id of an error body with
// placeholders, so answers about different ids compare byte for byte.
func normalize(r *edgetest.Response, ids ...string) string {
	s := string(r.Body)
	if rid := r.Header.Get("X-Request-Id"); rid != "" {
		s = strings.ReplaceAll(s, rid, "{rid}")
	}
	for i, id := range ids {
		s = strings.ReplaceAll(s, id, "{id"+string(rune('0'+i))+"}")
	}
	return s
}

// Tenant isolation (reliability.md B-5): platform B's key on every
// platform-scoped route with A's ids answers 404 not_found, exactly what a
// nonexistent id of the same shape answers (same body, same size), shows
// nothing of A's, and changes nothing of A's. The owner's own key on the
// same requests succeeds, so each 404 is tenancy, not a bad request.
func TestTenantIsolationBOLAMatrix(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	a := furnish(t, g, "tenant-a")
	b := furnish(t, g, "tenant-b")
	before := a.snapshot(t, g)
	beforeB := b.snapshot(t, g)

	var scoped []route
	for _, r := range routes(t, g) {
		if r.guard == "plat" {
			scoped = append(scoped, r)
		}
	}
	if len(scoped) < 20 {
		t.Fatalf("found %d platform-scoped routes", len(scoped))
	}
	own := fixtures{"platformId": a.id, "endUserId": a.user.id, "keyId": a.key2ID, "requestId": a.requestID}
	ghost := fixtures{"platformId": fakeID(ids.PlatformPrefix), "endUserId": fakeID(ids.EndUserPrefix),
		"keyId": fakeID(ids.KeyPrefix), "requestId": fakeID(ids.RequestPrefix)}
	leaks := func(what, path string, r *edgetest.Response) {
		t.Helper()
		for _, s := range a.secrets() {
			if strings.Contains(string(r.Body), s) && !strings.Contains(path, s) {
				t.Errorf("%s shows A's %q: %s", what, s, r.Body)
			}
		}
	}
	// compare fails unless r, about A's ids, and g, about ids of the same
	// shape that name nothing, are the same bytes once the ids are aligned:
	// no oracle in the status, the body or its size.
	compare := func(what string, r, g *edgetest.Response, real, fake fixtures) {
		t.Helper()
		var rs, gs []string
		for _, k := range []string{"platformId", "endUserId", "keyId", "requestId"} {
			rs, gs = append(rs, real[k]), append(gs, fake[k])
		}
		if got, want := normalize(r, rs...), normalize(g, gs...); got != want {
			t.Errorf("%s answers\n%s\nbut ids that name nothing answer\n%s", what, got, want)
		}
	}

	for _, rt := range scoped {
		body := bodyFor(t, rt)
		// B's key on A's platform path.
		path := fill(t, rt, own)
		r := g.Do(t, rt.method, path, b.key, body)
		what := "B on " + rt.method + " " + path
		wantError(t, what, r, 404, "not_found")
		leaks(what, path, r)
		compare(what, r, g.Do(t, rt.method, fill(t, rt, ghost), b.key, body), own, ghost)

		// B's key under B's own path, with A's other ids.
		if !paramRE.MatchString(strings.TrimPrefix(rt.path, "/v1/platforms/{platformId}")) {
			continue
		}
		mixed := fixtures{"platformId": b.id, "endUserId": a.user.id, "keyId": a.key2ID, "requestId": a.requestID}
		mixedGhost := fixtures{"platformId": b.id, "endUserId": ghost["endUserId"], "keyId": ghost["keyId"], "requestId": ghost["requestId"]}
		path = fill(t, rt, mixed)
		r = g.Do(t, rt.method, path, b.key, body)
		what = "B on " + rt.method + " " + path
		wantError(t, what, r, 404, "not_found")
		leaks(what, path, r)
		compare(what, r, g.Do(t, rt.method, fill(t, rt, mixedGhost), b.key, body), mixed, mixedGhost)
	}
	if after := a.snapshot(t, g); after != before {
		t.Errorf("B's requests changed A:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if after := b.snapshot(t, g); after != beforeB {
		t.Errorf("404s changed B:\nbefore:\n%s\nafter:\n%s", beforeB, after)
	}

	// Positive control: A's own key on the same requests, against a fresh
	// end-user and key; creations first, deletions last.
	fresh := a.endUser(t, g, "control")
	spare := str(wantStatus(t, "POST api-keys", g.Do(t, "POST", a.path("/api-keys"), a.key, nil), 201), "id")
	control := slices.Clone(scoped)
	rank := func(r route) int {
		switch {
		case r.method == "POST" && strings.HasSuffix(r.path, "/budget"):
			return 0
		case r.method != "DELETE":
			return 1
		case strings.HasSuffix(r.path, "{endUserId}"):
			return 3
		}
		return 2
	}
	slices.SortStableFunc(control, func(x, y route) int { return rank(x) - rank(y) })
	mine := fixtures{"platformId": a.id, "endUserId": fresh.id, "keyId": spare, "requestId": a.requestID}
	for _, rt := range control {
		path := fill(t, rt, mine)
		r := g.Do(t, rt.method, path, a.key, bodyFor(t, rt))
		if code, ok := unconfigured[rt.String()]; ok {
			wantError(t, "owner's "+rt.String(), r, 503, code)
			continue
		}
		if r.Status != 200 && r.Status != 201 {
			t.Errorf("owner's %s %s = %d %s, want 2xx", rt.method, path, r.Status, r.Body)
		}
	}
}

// Keys authorize only their own surface (reliability.md B-6): an end-user
// key on platform routes is 403 wrong_key_type; platform and end-user keys
// on the operator API, and the admin key on platform routes, are 401. A
// mismatching X-Assistiv-Platform-Id is 403 platform_mismatch. None of
// these change anything.
func TestKeysAuthorizeOnlyTheirOwnSurface(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	a := furnish(t, g, "tenant-a")
	b := furnish(t, g, "tenant-b")
	before := a.snapshot(t, g)
	var wallet map[string]any

	for _, rt := range routes(t, g) {
		body := bodyFor(t, rt)
		path := fill(t, rt, fixtures{"platformId": a.id, "endUserId": a.user.id, "keyId": a.key2ID, "requestId": a.requestID})
		switch rt.guard {
		case "plat":
			wantError(t, "end-user key on "+rt.String(), g.Do(t, rt.method, path, a.user.key, body), 403, "wrong_key_type")
			wantError(t, "admin key on "+rt.String(), g.Do(t, rt.method, path, edgetest.AdminKey, body), 401, "invalid_api_key")
			wantError(t, "A's key with B's platform header on "+rt.String(),
				g.Do(t, rt.method, path, a.key, body, "X-Assistiv-Platform-Id", b.id), 403, "platform_mismatch")
		case "admin":
			for _, k := range []string{a.key, a.user.key, b.key} {
				wantError(t, "non-admin key on "+rt.String(), g.Do(t, rt.method, path, k, body), 401, "invalid_api_key")
			}
			wantError(t, "no key on "+rt.String(), g.Do(t, rt.method, path, "", body), 401, "missing_api_key")
		}
	}
	if after := a.snapshot(t, g); after != before {
		t.Errorf("refused requests changed A:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	wallet = wantStatus(t, "admin GET wallet", g.Do(t, "GET", "/admin/v1/platforms/"+a.id+"/wallet", edgetest.AdminKey, nil), 200)
	if num(wallet, "balance_usd") != "0" {
		t.Errorf("A's wallet = %v after refused top-ups, want 0", wallet)
	}

	// Inference routes take end-user keys only (design.md "Tenancy and
	// keys"). /mcp speaks JSON-RPC and is its own package's to test.
	for _, rt := range routes(t, g) {
		if !strings.HasPrefix(rt.path, "/v1/chat/") && !strings.HasPrefix(rt.path, "/v1/responses") {
			continue
		}
		path := fill(t, rt, fixtures{})
		wantError(t, "platform key on "+rt.String(), g.Do(t, rt.method, path, a.key, map[string]any{}), 403, "wrong_key_type")
		wantError(t, "admin key on "+rt.String(), g.Do(t, rt.method, path, edgetest.AdminKey, map[string]any{}), 401, "invalid_api_key")
	}

	wantError(t, "admin key on /v1/me", g.Do(t, "GET", "/v1/me", edgetest.AdminKey, nil), 401, "invalid_api_key")
	adminShaped, _ := ids.NewKey(ids.KindAdmin)
	wantError(t, "sk-admin_ key on /v1/me", g.Do(t, "GET", "/v1/me", adminShaped, nil), 401, "invalid_api_key")
	wantError(t, "end-user key with another platform's header", g.Do(t, "GET", "/v1/me", a.user.key, nil, "X-Assistiv-Platform-Id", b.id), 403, "platform_mismatch")
	for _, k := range []string{a.key, a.user.key} {
		me := wantStatus(t, "matching X-Assistiv-Platform-Id", g.Do(t, "GET", "/v1/me", k, nil, "X-Assistiv-Platform-Id", a.id), 200)
		if str(me, "platform_id") != a.id {
			t.Errorf("/v1/me platform_id = %q, want %q", str(me, "platform_id"), a.id)
		}
	}
	wantStatus(t, "matching header on a platform route", g.Do(t, "GET", a.path("/end-users"), a.key, nil, "X-Assistiv-Platform-Id", a.id), 200)
}

// Malformed, mistyped and unknown keys are refused before any lookup
// matters, and keys are accepted only in the Authorization header
// (reliability.md B-7).
func TestMalformedKeysAnswer401AndQueryKeys400(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	p := newPlatform(t, g, "Acme")
	u := p.endUser(t, g, "u")
	unknown, _ := ids.NewKey(ids.KindPlatform)
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	for _, c := range []struct {
		name, auth string
		code       string
	}{
		{"no header", "", "missing_api_key"},
		{"Basic scheme", "Basic " + p.key, "missing_api_key"},
		{"bare key", p.key, "missing_api_key"},
		{"empty bearer", "Bearer ", "missing_api_key"},
		{"garbage", "Bearer hello", "invalid_api_key"},
		{"wrong checksum", "Bearer " + flip(p.key, len(p.key)-1), "invalid_api_key"},
		{"changed body char", "Bearer " + flip(p.key, 20), "invalid_api_key"},
		{"end-user key changed", "Bearer " + flip(u.key, 10), "invalid_api_key"},
		{"truncated", "Bearer " + p.key[:len(p.key)-1], "invalid_api_key"},
		{"extended", "Bearer " + p.key + "0", "invalid_api_key"},
		{"prefix only", "Bearer " + p.key[:12], "invalid_api_key"},
		{"wrong prefix", "Bearer sk-xyz_" + p.key[8:], "invalid_api_key"},
		{"well-formed but unknown", "Bearer " + unknown, "invalid_api_key"},
		{"two keys", "Bearer " + p.key + " " + u.key, "invalid_api_key"},
		{"non-ASCII", "Bearer " + p.key[:20] + "é" + p.key[22:], "invalid_api_key"},
	} {
		r := g.Do(t, "GET", p.path("/end-users"), "", nil, "Authorization", c.auth)
		if c.auth == "" {
			r = g.Do(t, "GET", p.path("/end-users"), "", nil)
		}
		wantError(t, c.name, r, 401, c.code)
		if strings.Contains(string(r.Body), p.key) {
			t.Errorf("%s: error echoes the key: %s", c.name, r.Body)
		}
	}
	// The scheme is case-insensitive (RFC 9110) and surrounding space is trimmed.
	wantStatus(t, "lower-case bearer", g.Do(t, "GET", p.path("/end-users"), "", nil, "Authorization", "bearer "+p.key), 200)
	wantStatus(t, "trailing space", g.Do(t, "GET", p.path("/end-users"), "", nil, "Authorization", "Bearer "+p.key+"  "), 200)

	for _, q := range []string{"api_key", "key", "access_token"} {
		wantError(t, "key in ?"+q, g.Do(t, "GET", p.path("/end-users?"+q+"="+p.key), "", nil), 400, "api_key_in_query")
		wantError(t, "key in ?"+q+" and header", g.Do(t, "GET", p.path("/end-users?"+q+"="+p.key), p.key, nil), 400, "api_key_in_query")
		wantError(t, "key in ?"+q+" on /v1/me", g.Do(t, "GET", "/v1/me?"+q+"="+u.key, "", nil), 400, "api_key_in_query")
		wantError(t, "key in ?"+q+" on /admin", g.Do(t, "GET", "/admin/v1/platforms?"+q+"="+edgetest.AdminKey, "", nil), 400, "api_key_in_query")
	}
}

// Asking for end-users that do not exist (another tenant's, or made up)
// leaves no actor resident for long, so a platform key cannot pile up
// idle actors (reliability.md B-15).
func TestMissingEndUsersDoNotStayResident(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	p := newPlatform(t, g, "Acme")
	u := p.endUser(t, g, "real")
	wantStatus(t, "GET end-user", g.Do(t, "GET", p.path("/end-users/"+u.id), p.key, nil), 200)
	base := g.Actors.Resident()
	for range 100 {
		wantError(t, "GET missing end-user", g.Do(t, "GET", p.path("/end-users/"+fakeID(ids.EndUserPrefix)), p.key, nil), 404, "not_found")
	}
	if n := g.Actors.Resident(); n <= base {
		t.Fatalf("%d actors resident after 100 lookups (%d before): the lookups did not reach actors", n, base)
	}
	deadline := time.Now().Add(10 * time.Second)
	for g.Actors.Resident() > base {
		if time.Now().After(deadline) {
			t.Fatalf("%d actors still resident 10 s after lookups of missing end-users; %d before", g.Actors.Resident(), base)
		}
		time.Sleep(50 * time.Millisecond)
	}
	wantStatus(t, "the real end-user", g.Do(t, "GET", p.path("/end-users/"+u.id), p.key, nil), 200)
}
