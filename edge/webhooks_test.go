package edge_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/internal/egress"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/webhooks"
	"github.com/assistiv/gateway/webhooks/whsig"
)

// whDelivery is one request a test receiver got.
type whDelivery struct {
	header http.Header
	body   []byte
	event  actors.Event
	status int // what the receiver answered
}

// whReceiver is a webhook receiver on 127.0.0.1 answering answer() to
// every request.
type whReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []whDelivery
	answer func() int
}

func newWhReceiver(t testing.TB, answer func() int) *whReceiver {
	t.Helper()
	rc := &whReceiver{answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		d := whDelivery{header: r.Header.Clone(), body: body, status: 200}
		if rc.answer != nil {
			d.status = rc.answer()
		}
		if err := json.Unmarshal(body, &d.event); err != nil {
			t.Errorf("delivery body is not an event: %v: %s", err, body)
		}
		rc.mu.Lock()
		rc.got = append(rc.got, d)
		rc.mu.Unlock()
		w.WriteHeader(d.status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *whReceiver) deliveries() []whDelivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

// byType returns the accepted deliveries of event type typ.
func (rc *whReceiver) byType(typ string) []whDelivery {
	var out []whDelivery
	for _, d := range rc.deliveries() {
		if d.event.EventType == typ && d.status < 300 {
			out = append(out, d)
		}
	}
	return out
}

func whWait(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// whVerify checks a delivery with whsig and with the Standard Webhooks
// reference library (an independent implementation), B-12.
func whVerify(t testing.TB, secret string, d whDelivery) {
	t.Helper()
	if err := whsig.Verify(secret, d.header, d.body, time.Now(), 0); err != nil {
		t.Errorf("whsig.Verify(%s %s) = %v", d.event.EventType, d.event.ID, err)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(d.body, d.header); err != nil {
		t.Errorf("reference Verify(%s %s) = %v", d.event.EventType, d.event.ID, err)
	}
	if d.header.Get("webhook-id") != d.event.ID {
		t.Errorf("webhook-id %q, want the event id %q", d.header.Get("webhook-id"), d.event.ID)
	}
}

func whPath(pid string, rest string) string {
	return "/admin/v1/platforms/" + pid + "/webhook-endpoints" + rest
}

type whEndpoint struct {
	ID                      string   `json:"id"`
	Object                  string   `json:"object"`
	PlatformID              string   `json:"platform_id"`
	URL                     string   `json:"url"`
	Description             string   `json:"description"`
	EventTypes              []string `json:"event_types"`
	Enabled                 bool     `json:"enabled"`
	DisabledReason          *string  `json:"disabled_reason"`
	Secret                  string   `json:"secret"`
	PreviousSecretExpiresAt *string  `json:"previous_secret_expires_at"`
}

type whMessage struct {
	ID               string          `json:"id"`
	Object           string          `json:"object"`
	EndpointID       string          `json:"endpoint_id"`
	EventType        string          `json:"event_type"`
	Status           string          `json:"status"`
	Attempts         int             `json:"attempts"`
	LastResponseCode *int            `json:"last_response_code"`
	LastLatencyMs    *int64          `json:"last_latency_ms"`
	LastError        *string         `json:"last_error"`
	NextRetryAt      *string         `json:"next_retry_at"`
	Payload          json.RawMessage `json:"payload"`
}

type whMessageList struct {
	Object     string      `json:"object"`
	Data       []whMessage `json:"data"`
	HasMore    bool        `json:"has_more"`
	NextCursor *string     `json:"next_cursor"`
}

func whCreate(t testing.TB, client *http.Client, base, pid, url string, types ...string) whEndpoint {
	t.Helper()
	r := edgetest.Do(t, client, base, "POST", whPath(pid, ""), edgetest.AdminKey,
		map[string]any{"url": url, "event_types": types, "description": "test receiver"})
	if r.Status != 201 {
		t.Fatalf("create webhook endpoint: %d %s", r.Status, r.Body)
	}
	var e whEndpoint
	r.JSON(t, &e)
	return e
}

func whMessages(t testing.TB, g *edgetest.Gateway, pid, eid, query string) whMessageList {
	t.Helper()
	r := g.Do(t, "GET", whPath(pid, "/"+eid+"/messages"+query), edgetest.AdminKey, nil)
	if r.Status != 200 {
		t.Fatalf("list messages%s: %d %s", query, r.Status, r.Body)
	}
	var l whMessageList
	r.JSON(t, &l)
	return l
}

// Every event type arrives, driven by real API calls (and the directory's
// Admit/Settle with a provider for inference-like wallet use), each with a
// Standard Webhooks signature that both verifiers accept; then the
// delivery log lists them newest first by cursor and a replay re-delivers
// one with the same webhook-id.
func TestEveryWebhookEventArrivesSigned(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{Webhooks: true})
	rc := newWhReceiver(t, nil)
	pid, pkey := g.CreatePlatform(t, "hooks")
	ep := whCreate(t, g.Client(), g.URL, pid, rc.URL+"/in", actors.EventTypes...)
	if !strings.HasPrefix(ep.ID, webhooks.EndpointPrefix) || !strings.HasPrefix(ep.Secret, whsig.SecretPrefix) {
		t.Fatalf("created endpoint = %+v", ep)
	}
	if raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(ep.Secret, whsig.SecretPrefix)); err != nil || len(raw) < 24 {
		t.Fatalf("secret is not whsec_ + base64 of ≥ 24 bytes")
	}
	uid, _ := g.CreateEndUser(t, pid, pkey, "ext-1")
	budget := "/v1/platforms/" + pid + "/end-users/" + uid + "/budget"
	do := func(method, path, key string, body any, want int) {
		t.Helper()
		if r := g.Do(t, method, path, key, body); r.Status != want {
			t.Fatalf("%s %s = %d %s, want %d", method, path, r.Status, r.Body, want)
		}
	}
	do("POST", budget, pkey, map[string]any{"amount_usd": 10, "low_balance_threshold_usd": 5}, 201)
	do("POST", budget+"/topup", pkey, map[string]any{"amount_usd": 1}, 200) // budget.topped_up
	do("POST", budget+"/debit", pkey, map[string]any{"amount_usd": 7}, 200) // budget.debited, budget.low_balance (11 → 4 < 5)
	do("PATCH", budget, pkey, map[string]any{"is_suspended": true}, 200)    // budget.suspended
	do("PATCH", budget, pkey, map[string]any{"is_suspended": false}, 200)   // budget.unsuspended
	admin := "/admin/v1/platforms/" + pid + "/wallet"
	do("POST", admin+"/topup", edgetest.AdminKey, map[string]any{"amount_usd": 10}, 200) // wallet.topped_up
	do("PUT", admin+"/auto-topup", edgetest.AdminKey, map[string]any{"enabled": true, "threshold_usd": 5, "amount_usd": 20}, 200)
	// Wallet use as inference makes it: an end-user (without a budget)
	// admits a call that reserves 8 USD on the node's wallet lease, then
	// settles it (10 → 2 once the lease's spend is folded into the wallet,
	// below the 5 USD auto top-up threshold): wallet.low_balance, then the
	// auto top-up's wallet.topped_up.
	do("PUT", "/admin/v1/platforms/"+pid+"/llm-providers/openai", edgetest.AdminKey, map[string]any{"api_key": "sk-test-0123456789", "base_url": "http://127.0.0.1:9", "enabled": true}, 200)
	spender, _ := g.CreateEndUser(t, pid, pkey, "ext-spender")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	eu := actors.EndUserActor(ids.PlatformID(pid), ids.EndUserID(spender))
	if _, err := g.Actors.Ask(ctx, eu, &pb.Admit{ReservationId: "res-1", RequestId: "req-1", MaxCostNanos: 8e9, Provider: "openai"}); err != nil {
		t.Fatalf("Admit: %v", err)
	}
	if _, err := g.Actors.Ask(ctx, eu, &pb.Settle{ReservationId: "res-1", CostNanos: 8e9, RequestId: "req-1", Model: "test"}); err != nil {
		t.Fatalf("Settle: %v", err)
	}

	want := map[string]int{
		actors.EventBudgetToppedUp: 1, actors.EventBudgetDebited: 1, actors.EventBudgetLowBalance: 1,
		actors.EventBudgetSuspended: 1, actors.EventBudgetUnsuspend: 1,
		actors.EventWalletToppedUp: 2, actors.EventWalletLowBalance: 1,
	}
	whWait(t, "every event type", func() bool {
		for typ, n := range want {
			if len(rc.byType(typ)) < n {
				return false
			}
		}
		return true
	})
	for _, d := range rc.deliveries() {
		whVerify(t, ep.Secret, d)
		if d.event.Data["platform_id"] != pid {
			t.Errorf("%s: data.platform_id = %v, want %s", d.event.EventType, d.event.Data["platform_id"], pid)
		}
		if _, ok := d.event.Data["balance_usd"]; !ok {
			t.Errorf("%s: no data.balance_usd: %s", d.event.EventType, d.body)
		}
		if strings.HasPrefix(d.event.EventType, "budget.") && d.event.Data["end_user_id"] != uid {
			t.Errorf("%s: data.end_user_id = %v, want %s", d.event.EventType, d.event.Data["end_user_id"], uid)
		}
	}
	if got := len(rc.deliveries()); got != 8 {
		t.Errorf("receiver got %d deliveries, want 8 (one per event)", got)
	}
	// wallet.low_balance is written with the debit, before the charge.
	low := rc.byType(actors.EventWalletLowBalance)[0].event
	var auto *actors.Event
	for _, d := range rc.byType(actors.EventWalletToppedUp) {
		if d.event.Data["transaction_type"] == actors.EntryAutoTopup {
			auto = &d.event
		}
	}
	if auto == nil {
		t.Fatal("no wallet.topped_up for the auto top-up")
	}
	lowAt, _ := time.Parse(time.RFC3339Nano, low.CreatedAt)
	autoAt, _ := time.Parse(time.RFC3339Nano, auto.CreatedAt)
	if lowAt.IsZero() || autoAt.Before(lowAt) {
		t.Errorf("wallet.low_balance (%s at %s) does not precede the auto top-up (%s at %s)", low.ID, low.CreatedAt, auto.ID, auto.CreatedAt)
	}

	// The delivery log: newest first, by cursor, filtered by status.
	var all whMessageList
	whWait(t, "every attempt recorded", func() bool {
		all = whMessages(t, g, pid, ep.ID, "?limit=100")
		for _, m := range all.Data {
			if m.Status != "delivered" {
				return false
			}
		}
		return true
	})
	if len(all.Data) != 8 || all.HasMore {
		t.Fatalf("log has %d messages (has_more %v), want 8", len(all.Data), all.HasMore)
	}
	for i, m := range all.Data {
		if m.Object != "webhook_message" || m.Status != "delivered" || m.Attempts != 1 || m.LastResponseCode == nil || *m.LastResponseCode != 200 ||
			m.LastLatencyMs == nil || m.NextRetryAt != nil || m.EndpointID != ep.ID || len(m.Payload) == 0 {
			t.Errorf("message %d = %+v", i, m)
		}
		if i > 0 && m.ID >= all.Data[i-1].ID {
			t.Errorf("log is not newest first at %d", i)
		}
	}
	var paged []string
	cursor := ""
	for range 5 {
		l := whMessages(t, g, pid, ep.ID, "?limit=3"+cursor)
		for _, m := range l.Data {
			paged = append(paged, m.ID)
		}
		if !l.HasMore {
			break
		}
		cursor = "&cursor=" + *l.NextCursor
	}
	var newestFirst []string
	for _, m := range all.Data {
		newestFirst = append(newestFirst, m.ID)
	}
	if !slices.Equal(paged, newestFirst) {
		t.Errorf("pages give %v, want %v", paged, newestFirst)
	}
	if l := whMessages(t, g, pid, ep.ID, "?status=delivered"); len(l.Data) != 8 {
		t.Errorf("status=delivered lists %d, want 8", len(l.Data))
	}
	if l := whMessages(t, g, pid, ep.ID, "?status=failed"); len(l.Data) != 0 {
		t.Errorf("status=failed lists %d, want 0", len(l.Data))
	}
	if r := g.Do(t, "GET", whPath(pid, "/"+ep.ID+"/messages?status=bogus"), edgetest.AdminKey, nil); r.Status != 400 {
		t.Errorf("status=bogus = %d, want 400", r.Status)
	}

	// Replay: the same webhook-id again, signed afresh.
	mid := all.Data[len(all.Data)-1].ID
	r := g.Do(t, "POST", whPath(pid, "/"+ep.ID+"/messages/"+mid+"/replay"), edgetest.AdminKey, nil)
	if r.Status != 202 {
		t.Fatalf("replay = %d %s", r.Status, r.Body)
	}
	whWait(t, "replayed delivery", func() bool { return len(rc.deliveries()) == 9 })
	d := rc.deliveries()[8]
	if d.header.Get("webhook-id") != mid {
		t.Errorf("replay webhook-id %q, want %q", d.header.Get("webhook-id"), mid)
	}
	whVerify(t, ep.Secret, d)
	whWait(t, "replay recorded", func() bool {
		r := g.Do(t, "GET", whPath(pid, "/"+ep.ID+"/messages/"+mid), edgetest.AdminKey, nil)
		var m whMessage
		r.JSON(t, &m)
		return m.Status == "delivered" && m.Attempts == 2
	})
}

// The endpoint API: shapes, validation, secret reveal and rotation,
// update and delete; another platform's ids answer 404 everywhere.
func TestWebhookEndpointAPI(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{Webhooks: true})
	rc := newWhReceiver(t, nil)
	pid, _ := g.CreatePlatform(t, "a")
	other, _ := g.CreatePlatform(t, "b")
	ep := whCreate(t, g.Client(), g.URL, pid, rc.URL, actors.EventWalletToppedUp, actors.EventBudgetDebited, actors.EventWalletToppedUp)
	if ep.Object != "webhook_endpoint" || ep.PlatformID != pid || !ep.Enabled || ep.DisabledReason != nil ||
		!slices.Equal(ep.EventTypes, []string{actors.EventBudgetDebited, actors.EventWalletToppedUp}) || ep.Description != "test receiver" {
		t.Errorf("created = %+v", ep)
	}
	admin := edgetest.AdminKey
	bad := []struct {
		name string
		body any
		code string
	}{
		{"no event_types", map[string]any{"url": rc.URL}, "missing_field"},
		{"empty event_types", map[string]any{"url": rc.URL, "event_types": []string{}}, "missing_field"},
		{"unknown event type", map[string]any{"url": rc.URL, "event_types": []string{"budget.exploded"}}, "invalid_event_type"},
		{"no url", map[string]any{"event_types": []string{actors.EventWalletToppedUp}}, "missing_field"},
		{"not a URL", map[string]any{"url": "not a url", "event_types": []string{actors.EventWalletToppedUp}}, "invalid_url"},
		{"unknown field", map[string]any{"url": rc.URL, "event_types": []string{actors.EventWalletToppedUp}, "secret": "x"}, "unknown_field"},
	}
	for _, b := range bad {
		r := g.Do(t, "POST", whPath(pid, ""), admin, b.body)
		if r.Status != 400 || r.ErrorCode() != b.code {
			t.Errorf("create with %s = %d %s, want 400 %s", b.name, r.Status, r.Body, b.code)
		}
	}
	if r := g.Do(t, "POST", whPath(pid, ""), "sk-plat_nope", map[string]any{}); r.Status != 401 {
		t.Errorf("create without the admin key = %d, want 401", r.Status)
	}

	// GET and list never show the secret; the reveal route does.
	r := g.Do(t, "GET", whPath(pid, "/"+ep.ID), admin, nil)
	if r.Status != 200 || strings.Contains(string(r.Body), ep.Secret) || strings.Contains(string(r.Body), `"secret"`) {
		t.Errorf("GET endpoint = %d %s", r.Status, r.Body)
	}
	r = g.Do(t, "GET", whPath(pid, ""), admin, nil)
	if r.Status != 200 || strings.Contains(string(r.Body), ep.Secret) || !strings.Contains(string(r.Body), ep.ID) {
		t.Errorf("list endpoints = %d %s", r.Status, r.Body)
	}
	var sec struct {
		Secret                  string  `json:"secret"`
		PreviousSecretExpiresAt *string `json:"previous_secret_expires_at"`
	}
	r = g.Do(t, "GET", whPath(pid, "/"+ep.ID+"/secret"), admin, nil)
	r.JSON(t, &sec)
	if r.Status != 200 || sec.Secret != ep.Secret || r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("reveal = %d %s", r.Status, r.Body)
	}
	r = g.Do(t, "POST", whPath(pid, "/"+ep.ID+"/secret/rotate"), admin, nil)
	r.JSON(t, &sec)
	if r.Status != 200 || sec.Secret == ep.Secret || !strings.HasPrefix(sec.Secret, "whsec_") || sec.PreviousSecretExpiresAt == nil {
		t.Errorf("rotate = %d %s", r.Status, r.Body)
	}
	rotated := sec.Secret

	// PATCH changes what it names and keeps the rest.
	r = g.Do(t, "PATCH", whPath(pid, "/"+ep.ID), admin, map[string]any{"enabled": false, "description": "paused", "event_types": []string{actors.EventBudgetLowBalance}})
	var patched whEndpoint
	r.JSON(t, &patched)
	if r.Status != 200 || patched.Enabled || patched.DisabledReason == nil || *patched.DisabledReason != webhooks.DisabledByOperator ||
		patched.Description != "paused" || !slices.Equal(patched.EventTypes, []string{actors.EventBudgetLowBalance}) || patched.URL != rc.URL {
		t.Errorf("PATCH = %d %s", r.Status, r.Body)
	}
	if r := g.Do(t, "PATCH", whPath(pid, "/"+ep.ID), admin, map[string]any{"event_types": []string{}}); r.Status != 400 {
		t.Errorf("PATCH event_types [] = %d, want 400", r.Status)
	}

	// Tenant isolation: platform b's path with a's endpoint, and unknown ids.
	mid := ids.New(actors.EventPrefix, time.Now())
	for _, c := range []struct{ method, path string }{
		{"GET", whPath(other, "/"+ep.ID)},
		{"PATCH", whPath(other, "/"+ep.ID)},
		{"DELETE", whPath(other, "/"+ep.ID)},
		{"GET", whPath(other, "/"+ep.ID+"/secret")},
		{"POST", whPath(other, "/"+ep.ID+"/secret/rotate")},
		{"GET", whPath(other, "/"+ep.ID+"/messages")},
		{"GET", whPath(other, "/"+ep.ID+"/messages/"+mid)},
		{"POST", whPath(other, "/"+ep.ID+"/messages/"+mid+"/replay")},
		{"GET", whPath(pid, "/"+ep.ID+"/messages/"+mid)},
		{"POST", whPath(pid, "/"+ep.ID+"/messages/"+mid+"/replay")},
		{"GET", whPath(pid, "/ep_nope")},
		{"GET", whPath("plat_nope", "")},
		{"POST", whPath(ids.New(ids.PlatformPrefix, time.Now()), "")},
	} {
		var body any
		if c.method == "PATCH" || c.method == "POST" {
			body = map[string]any{"enabled": true, "url": rc.URL, "event_types": []string{actors.EventWalletToppedUp}}
			if strings.HasSuffix(c.path, "/rotate") || strings.HasSuffix(c.path, "/replay") {
				body = nil
			}
		}
		r := g.Do(t, c.method, c.path, admin, body)
		if r.Status != 404 || strings.Contains(string(r.Body), rotated) {
			t.Errorf("%s %s = %d %s, want 404", c.method, c.path, r.Status, r.Body)
		}
	}
	// The owner still has it; after DELETE it is gone.
	if r := g.Do(t, "GET", whPath(pid, "/"+ep.ID), admin, nil); r.Status != 200 {
		t.Errorf("owner GET after other's attempts = %d", r.Status)
	}
	if r := g.Do(t, "DELETE", whPath(pid, "/"+ep.ID), admin, nil); r.Status != 200 {
		t.Errorf("DELETE = %d %s", r.Status, r.Body)
	}
	if r := g.Do(t, "GET", whPath(pid, "/"+ep.ID), admin, nil); r.Status != 404 {
		t.Errorf("GET after DELETE = %d, want 404", r.Status)
	}
}

// B-10 through the API: with private egress off, loopback, private and
// link-local targets are refused at registration, and https is required.
func TestWebhookRegistrationRefusesPrivateTargets(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{Webhooks: true, WebhookConfig: func(c *webhooks.Config) {
		c.Egress = egress.Policy{} // ASSISTIV_ALLOW_PRIVATE_EGRESS off
	}})
	pid, _ := g.CreatePlatform(t, "strict")
	for _, u := range []string{
		"http://127.0.0.1:8080/hook", "http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/",
		"https://127.0.0.1/", "https://10.0.0.1/", "https://169.254.169.254/", "https://[::1]/",
		"https://[::ffff:127.0.0.1]/", "https://2130706433/", "https://0x7f.1/", "https://localhost/",
		"http://example.com/hook", // plain http
	} {
		r := g.Do(t, "POST", whPath(pid, ""), edgetest.AdminKey, map[string]any{"url": u, "event_types": []string{actors.EventWalletToppedUp}})
		if r.Status != 400 || r.ErrorCode() != "url_not_allowed" {
			t.Errorf("register %s = %d %s, want 400 url_not_allowed", u, r.Status, r.Body)
		}
	}
}

// F-7: events acknowledged before a kill -9 of the gateway process are all
// delivered after it restarts, under the same webhook-id they had before.
func TestWebhooksSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	var up atomic.Bool // false: the receiver fails everything
	rc := newWhReceiver(t, func() int {
		if up.Load() {
			return 200
		}
		return 503
	})
	dir := t.TempDir()
	env := []string{"ASSISTIV_ALLOW_PRIVATE_EGRESS=1", "ASSISTIV_WEBHOOK_TEST_SCHEDULE=0,500ms,500ms,500ms,500ms,500ms,500ms,500ms"}
	p := edgetest.StartProcess(t, dir, env...)
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	pid, _ := edgetest.CreatePlatform(t, client, p.URL, "crash")
	ep := whCreate(t, client, p.URL, pid, rc.URL, actors.EventWalletToppedUp)
	const n = 12
	txns := map[string]bool{}
	for i := range n {
		r := edgetest.Do(t, client, p.URL, "POST", "/admin/v1/platforms/"+pid+"/wallet/topup", edgetest.AdminKey,
			map[string]any{"amount_usd": 1}, "Idempotency-Key", "k"+string(rune('a'+i)))
		if r.Status != 200 {
			t.Fatalf("topup %d = %d %s", i, r.Status, r.Body)
		}
		var out struct {
			Transaction struct{ ID string } `json:"transaction"`
		}
		r.JSON(t, &out)
		txns[out.Transaction.ID] = true
	}
	p.Kill()                      // every top-up above was acknowledged, so its event is committed
	before := map[string]string{} // transaction id → webhook-id seen before the kill
	for _, d := range rc.deliveries() {
		before[d.event.Data["transaction_id"].(string)] = d.header.Get("webhook-id")
	}

	up.Store(true)
	p2 := edgetest.StartProcess(t, dir, env...)
	delivered := func() map[string]whDelivery {
		out := map[string]whDelivery{}
		for _, d := range rc.deliveries() {
			if d.status == 200 {
				out[d.event.Data["transaction_id"].(string)] = d
			}
		}
		return out
	}
	whWait(t, "every acknowledged event delivered after restart", func() bool {
		got := delivered()
		for tx := range txns {
			if _, ok := got[tx]; !ok {
				return false
			}
		}
		return true
	})
	for tx, d := range delivered() {
		if !txns[tx] {
			t.Errorf("delivered an event for unknown transaction %s", tx)
		}
		whVerify(t, ep.Secret, d)
		if id, ok := before[tx]; ok && id != d.header.Get("webhook-id") {
			t.Errorf("transaction %s: webhook-id %s before the crash, %s after", tx, id, d.header.Get("webhook-id"))
		}
	}
	t.Logf("%d of %d events had been attempted (and refused) before the kill", len(before), n)
	p2.Stop(t)
}
