package webhooks_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/egress"
	"github.com/assistiv/gateway/persistence"
	"github.com/assistiv/gateway/webhooks"
	"github.com/assistiv/gateway/webhooks/whsig"
)

// F-8: a receiver that answers 500 three times and then 200 gets the
// message on the fourth attempt, every attempt with the same webhook-id and
// a valid signature, and the log shows four attempts.
func TestFailingThreeTimesThenOKDeliversOnFourthAttempt(t *testing.T) {
	h := start(t, "", nil)
	rc := newReceiver(t, func(n int, _ *http.Request) int {
		if n <= 3 {
			return 500
		}
		return 200
	})
	p := h.platform()
	e, secret := h.endpoint(p, rc.URL+"/hook", actors.EventWalletToppedUp)
	id := h.emit(p, actors.EventWalletToppedUp)
	m := h.waitMessage(p, e.ID, id, "delivery", func(m webhooks.Message) bool { return m.Status == webhooks.StatusDelivered })
	if m.Attempts != 4 || m.LastStatusCode != 200 || m.LastError != "" || !m.NextAttemptAt.IsZero() || m.DeliveredAt.IsZero() {
		t.Errorf("message = %+v, want delivered on attempt 4 with code 200", m)
	}
	got := rc.deliveries()
	if len(got) != 4 {
		t.Fatalf("receiver got %d requests, want 4", len(got))
	}
	for i, d := range got {
		if d.Header.Get("webhook-id") != id {
			t.Errorf("attempt %d: webhook-id %q, want %q", i+1, d.Header.Get("webhook-id"), id)
		}
		if ct := d.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("attempt %d: Content-Type %q", i+1, ct)
		}
		verify(t, secret, d)
	}
	// The schedule's delays separate the attempts (20, 40, 80 ms).
	for i := 1; i < len(got); i++ {
		if gap := got[i].At.Sub(got[i-1].At); gap < fastSchedule[i] {
			t.Errorf("attempt %d came %v after the previous one, before the schedule's %v", i+1, gap, fastSchedule[i])
		}
	}
}

// After the last attempt of the schedule a message is failed, with the
// last code and error kept.
func TestMessageFailsAfterLastScheduledAttempt(t *testing.T) {
	h := start(t, "", nil)
	rc := newReceiver(t, func(int, *http.Request) int { return 503 })
	p := h.platform()
	e, _ := h.endpoint(p, rc.URL, actors.EventBudgetDebited)
	id := h.emit(p, actors.EventBudgetDebited)
	m := h.waitMessage(p, e.ID, id, "failure", func(m webhooks.Message) bool { return m.Status == webhooks.StatusFailed })
	if m.Attempts != len(fastSchedule) || m.LastStatusCode != 503 || m.LastError == "" {
		t.Errorf("message = %+v, want failed after %d attempts with 503", m, len(fastSchedule))
	}
	if rc.count() != len(fastSchedule) {
		t.Errorf("receiver got %d requests, want %d", rc.count(), len(fastSchedule))
	}
}

// F-8: 410 Gone fails the message at once and disables the endpoint; a
// disabled endpoint gets no new messages.
func TestGoneDisablesEndpoint(t *testing.T) {
	h := start(t, "", nil)
	rc := newReceiver(t, func(int, *http.Request) int { return http.StatusGone })
	p := h.platform()
	e, _ := h.endpoint(p, rc.URL, actors.EventWalletToppedUp)
	id := h.emit(p, actors.EventWalletToppedUp)
	m := h.waitMessage(p, e.ID, id, "failure", func(m webhooks.Message) bool { return m.Status == webhooks.StatusFailed })
	if m.Attempts != 1 || m.LastStatusCode != 410 {
		t.Errorf("message = %+v, want failed after 1 attempt with 410", m)
	}
	got, err := h.svc.GetEndpoint(p, e.ID)
	if err != nil || got.Enabled || got.DisabledReason != webhooks.DisabledGone {
		t.Errorf("GetEndpoint = %+v, %v; want disabled (gone)", got, err)
	}
	if !strings.Contains(h.logs.String(), "410 Gone") {
		t.Errorf("no log notice of the disabling; logs:\n%s", h.logs.String())
	}
	id2 := h.emit(p, actors.EventWalletToppedUp)
	// The dispatcher consumes the event without a message for the endpoint.
	waitFor(t, "outbox drained", func() bool { return outboxLen(t, h.store) == 0 })
	if _, err := h.svc.GetMessage(p, e.ID, id2); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("GetMessage(event after disabling) = %v, want ErrNotFound", err)
	}
	if rc.count() != 1 {
		t.Errorf("receiver got %d requests, want 1", rc.count())
	}
}

func outboxLen(t testing.TB, st *persistence.Store) int {
	n := 0
	if err := st.ScanPrefix([]byte{persistence.FamilyOutbox}, false, func(_, _ []byte) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	return n
}

// F-8: a 3xx is a failed attempt and the redirect is never followed.
func TestRedirectIsAFailureAndNotFollowed(t *testing.T) {
	h := start(t, "", nil)
	rc := newReceiver(t, func(_ int, r *http.Request) int {
		if r.URL.Path == "/redirected" {
			return 200
		}
		return http.StatusFound
	})
	p := h.platform()
	e, _ := h.endpoint(p, rc.URL+"/hook", actors.EventWalletToppedUp)
	id := h.emit(p, actors.EventWalletToppedUp)
	m := h.waitMessage(p, e.ID, id, "failure", func(m webhooks.Message) bool { return m.Status == webhooks.StatusFailed })
	if m.Attempts != len(fastSchedule) || m.LastStatusCode != 302 || !strings.Contains(m.LastError, "redirect") {
		t.Errorf("message = %+v, want %d failed attempts with 302", m, len(fastSchedule))
	}
	for _, d := range rc.deliveries() {
		if d.Path != "/hook" {
			t.Errorf("the redirect to %s was followed", d.Path)
		}
	}
}

// F-8: a hung endpoint holds at most PerEndpoint workers, each cut at the
// request timeout, and never delays delivery to another endpoint.
func TestHungEndpointDoesNotDelayOthers(t *testing.T) {
	h := start(t, "", func(c *webhooks.Config) {
		c.RequestTimeout = 500 * time.Millisecond
		c.PerEndpoint = 2
		c.Workers = 4
		c.Schedule = []time.Duration{0, time.Hour}
	})
	var hung atomic.Int32
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hung.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) }) // runs first: unblocks the handlers
	fast := newReceiver(t, nil)
	p := h.platform()
	slowEP, _ := h.endpoint(p, slow.URL, actors.EventBudgetDebited)
	h.endpoint(p, fast.URL, actors.EventBudgetDebited)

	const n = 10
	var sent []string
	for range n {
		sent = append(sent, h.emit(p, actors.EventBudgetDebited))
	}
	waitFor(t, "all messages at the healthy endpoint", func() bool { return fast.count() >= n })
	// The healthy endpoint got everything while the hung one still holds
	// its requests: deliveries did not wait for it.
	if c := hung.Load(); c == 0 || c > 2 {
		t.Errorf("hung endpoint has %d requests in flight, want 1..PerEndpoint(2)", c)
	}
	// Each hung request is cut at the timeout and recorded as a failure.
	m := h.waitMessage(p, slowEP.ID, sent[0], "timeout recorded", func(m webhooks.Message) bool { return m.Attempts > 0 })
	if !strings.Contains(m.LastError, "timeout") || m.LastStatusCode != 0 {
		t.Errorf("hung attempt = %+v, want a timeout error", m)
	}
	if m.LastLatency < 400*time.Millisecond || m.LastLatency > 5*time.Second {
		t.Errorf("hung attempt latency %v, want about the 500 ms timeout", m.LastLatency)
	}
}

// B-10: a name that resolved to a public address at registration and
// resolves to loopback at delivery (DNS rebinding) is refused at connect
// time; the receiver never sees a request.
func TestRebindingRefusedAtConnect(t *testing.T) {
	res := &fakeResolver{}
	res.set("93.184.216.34")
	h := start(t, "", func(c *webhooks.Config) { c.Egress = egress.Policy{Resolver: res} })
	rc := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the receiver on loopback was reached: %s", r.URL)
	}))
	t.Cleanup(rc.Close)
	port := rc.Listener.Addr().String()[strings.LastIndexByte(rc.Listener.Addr().String(), ':'):]
	p := h.platform()
	e, _ := h.endpoint(p, "https://hooks.example.com"+port+"/in", actors.EventWalletToppedUp)
	res.set("127.0.0.1") // the rebinding
	id := h.emit(p, actors.EventWalletToppedUp)
	m := h.waitMessage(p, e.ID, id, "refused attempt", func(m webhooks.Message) bool { return m.Attempts > 0 })
	if !strings.Contains(m.LastError, "forbidden address") || m.LastStatusCode != 0 {
		t.Errorf("attempt = %+v, want refused as a forbidden address", m)
	}
}

// B-10: with private egress off, registration refuses plain http and every
// target that is or resolves to a loopback, private, link-local or other
// non-global address, in any spelling.
func TestRegistrationRefusesPrivateTargets(t *testing.T) {
	res := &fakeResolver{}
	h := start(t, "", func(c *webhooks.Config) { c.Egress = egress.Policy{Resolver: res} })
	p := h.platform()
	for _, tc := range []struct{ url, resolves string }{
		{"http://127.0.0.1/", ""},
		{"http://10.0.0.1/", ""},
		{"http://169.254.169.254/latest/meta-data/", ""},
		{"http://[::1]/", ""},
		{"http://example.com/hook", "93.184.216.34"}, // https required
		{"https://127.0.0.1/", ""},
		{"https://10.0.0.1/", ""},
		{"https://172.16.0.1/", ""},
		{"https://192.168.1.1/", ""},
		{"https://100.64.0.1/", ""},
		{"https://169.254.169.254/", ""},
		{"https://0.0.0.0/", ""},
		{"https://[::1]/", ""},
		{"https://[::ffff:127.0.0.1]/", ""},
		{"https://[fc00::1]/", ""},
		{"https://[fe80::1]/", ""},
		{"https://2130706433/", ""},
		{"https://0x7f.1/", ""},
		{"https://localhost/", ""},
		{"https://[example.com]/", ""},
		{"https://internal.example.com/", "10.1.2.3"},
		{"https://mixed.example.com/", "93.184.216.34"},
		{"ftp://example.com/", ""},
		{"file:///etc/passwd", ""},
		{"/relative", ""},
	} {
		if tc.resolves != "" {
			res.set(tc.resolves)
		} else {
			res.set("93.184.216.34")
		}
		if tc.url == "https://mixed.example.com/" {
			res.set("93.184.216.34", "127.0.0.1")
		}
		u := tc.url
		_, _, err := h.svc.CreateEndpoint(context.Background(), p, webhooks.EndpointInput{URL: &u, EventTypes: []string{actors.EventWalletToppedUp}})
		var fe *webhooks.FieldError
		if !errors.As(err, &fe) || !errors.Is(err, webhooks.ErrInvalid) || !strings.Contains(fe.Code, "url") {
			t.Errorf("CreateEndpoint(%s) = %v, want an invalid url error", tc.url, err)
		}
	}
	res.set("93.184.216.34")
	u := "https://hooks.example.com/in"
	if _, _, err := h.svc.CreateEndpoint(context.Background(), p, webhooks.EndpointInput{URL: &u, EventTypes: []string{actors.EventWalletToppedUp}}); err != nil {
		t.Errorf("CreateEndpoint(%s) = %v, want success", u, err)
	}
}

// Rotation: during the overlap every delivery carries two v1 signatures,
// one per secret, each verifying alone (with ours and the reference
// library); the revealed secret is the new one.
func TestRotationSignsWithBothSecrets(t *testing.T) {
	h := start(t, "", nil)
	rc := newReceiver(t, nil)
	p := h.platform()
	e, oldSecret := h.endpoint(p, rc.URL, actors.EventWalletToppedUp)
	newSecret, view, err := h.svc.RotateSecret(p, e.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if newSecret == oldSecret || !strings.HasPrefix(newSecret, whsig.SecretPrefix) {
		t.Fatalf("RotateSecret = %q, want a fresh whsec_ secret", newSecret)
	}
	if d := time.Until(view.PreviousSecretExpiresAt); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("previous secret expires in %v, want the 24 h default overlap", d)
	}
	if got, _ := h.svc.Secret(p, e.ID); got != newSecret {
		t.Errorf("Secret after rotation is not the new secret")
	}
	h.emit(p, actors.EventWalletToppedUp)
	waitFor(t, "delivery", func() bool { return rc.count() == 1 })
	d := rc.deliveries()[0]
	sigs := strings.Fields(d.Header.Get("webhook-signature"))
	if len(sigs) != 2 || !strings.HasPrefix(sigs[0], "v1,") || !strings.HasPrefix(sigs[1], "v1,") {
		t.Fatalf("webhook-signature = %q, want two v1 signatures", d.Header.Get("webhook-signature"))
	}
	verify(t, oldSecret, d)
	verify(t, newSecret, d)
	for i, sig := range sigs {
		one := d.Header.Clone()
		one.Set("webhook-signature", sig)
		secret := []string{newSecret, oldSecret}[i]
		if err := whsig.Verify(secret, one, d.Body, time.Now(), 0); err != nil {
			t.Errorf("signature %d alone does not verify with its secret: %v", i, err)
		}
	}
	// A supplied secret is accepted when well formed, refused otherwise.
	if _, _, err := h.svc.RotateSecret(p, e.ID, "whsec_short"); !errors.Is(err, webhooks.ErrInvalid) {
		t.Errorf("RotateSecret(bad) = %v, want ErrInvalid", err)
	}
}

// Without overlap, a rotation signs with the new secret only.
func TestRotationWithoutOverlapSignsOnce(t *testing.T) {
	h := start(t, "", func(c *webhooks.Config) { c.RotationOverlap = 0 })
	rc := newReceiver(t, nil)
	p := h.platform()
	e, _ := h.endpoint(p, rc.URL, actors.EventWalletToppedUp)
	mine, _ := whsig.NewSecret()
	if _, _, err := h.svc.RotateSecret(p, e.ID, mine); err != nil {
		t.Fatal(err)
	}
	h.emit(p, actors.EventWalletToppedUp)
	waitFor(t, "delivery", func() bool { return rc.count() == 1 })
	d := rc.deliveries()[0]
	if n := len(strings.Fields(d.Header.Get("webhook-signature"))); n != 1 {
		t.Errorf("%d signatures, want 1", n)
	}
	verify(t, mine, d)
}

// Replay re-delivers a delivered message with the same webhook-id; a
// pending one cannot be replayed.
func TestReplayRedeliversWithSameWebhookID(t *testing.T) {
	h := start(t, "", nil)
	rc := newReceiver(t, nil)
	p := h.platform()
	e, secret := h.endpoint(p, rc.URL, actors.EventWalletToppedUp)
	id := h.emit(p, actors.EventWalletToppedUp)
	h.waitMessage(p, e.ID, id, "delivery", func(m webhooks.Message) bool { return m.Status == webhooks.StatusDelivered })
	m, err := h.svc.Replay(p, e.ID, id)
	if err != nil || m.Status != webhooks.StatusPending {
		t.Fatalf("Replay = %+v, %v", m, err)
	}
	m = h.waitMessage(p, e.ID, id, "redelivery", func(m webhooks.Message) bool {
		return m.Status == webhooks.StatusDelivered && m.Attempts == 2
	})
	got := rc.deliveries()
	if len(got) != 2 || got[0].Header.Get("webhook-id") != id || got[1].Header.Get("webhook-id") != id {
		t.Fatalf("deliveries %d, want 2 with webhook-id %s", len(got), id)
	}
	if !bytes.Equal(got[0].Body, got[1].Body) {
		t.Errorf("replayed body differs from the original")
	}
	verify(t, secret, got[1])
}

// F-7 in process: events left in the outbox and messages left pending by a
// stopped node are delivered after restart, with the same webhook-id.
func TestRestartDeliversOutboxAndPendingMessages(t *testing.T) {
	dir := t.TempDir()
	var ok atomic.Bool
	rc := newReceiver(t, func(int, *http.Request) int {
		if ok.Load() {
			return 200
		}
		return 500
	})
	h := start(t, dir, func(c *webhooks.Config) {
		c.Schedule = []time.Duration{0, 300 * time.Millisecond, 300 * time.Millisecond}
	})
	p := h.platform()
	e, secret := h.endpoint(p, rc.URL, actors.EventWalletToppedUp)
	pending := h.emit(p, actors.EventWalletToppedUp)
	h.waitMessage(p, e.ID, pending, "first failed attempt", func(m webhooks.Message) bool { return m.Attempts == 1 })
	h.close()
	// Written after the service stopped, as by an actor in the instant
	// before a crash: only the outbox has it.
	h2 := &harness{t: t, store: reopen(t, dir)}
	inOutbox := h2.emit(p, actors.EventWalletToppedUp)
	h2.store.Close()

	ok.Store(true)
	h = start(t, dir, nil)
	for _, id := range []string{pending, inOutbox} {
		h.waitMessage(p, e.ID, id, "delivery after restart", func(m webhooks.Message) bool { return m.Status == webhooks.StatusDelivered })
	}
	ids := map[string]int{}
	for _, d := range rc.deliveries() {
		ids[d.Header.Get("webhook-id")]++
		verify(t, secret, d)
	}
	if ids[pending] < 2 || ids[inOutbox] != 1 {
		t.Errorf("deliveries by webhook-id = %v; want the pending one retried under its id and the outbox one once", ids)
	}
}

func reopen(t testing.TB, dir string) *persistence.Store {
	t.Helper()
	cfg := persistence.DefaultConfig()
	cfg.Dir = dir
	st, err := persistence.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// An endpoint whose every attempt has failed for DisableAfter is disabled,
// with a log notice.
func TestSustainedFailureDisablesEndpoint(t *testing.T) {
	h := start(t, "", func(c *webhooks.Config) {
		c.DisableAfter = 100 * time.Millisecond
		c.Schedule = []time.Duration{0, 60 * time.Millisecond, 60 * time.Millisecond, 60 * time.Millisecond, 60 * time.Millisecond}
	})
	rc := newReceiver(t, func(int, *http.Request) int { return 500 })
	p := h.platform()
	e, _ := h.endpoint(p, rc.URL, actors.EventWalletToppedUp)
	h.emit(p, actors.EventWalletToppedUp)
	waitFor(t, "endpoint disabled", func() bool {
		got, err := h.svc.GetEndpoint(p, e.ID)
		return err == nil && !got.Enabled && got.DisabledReason == webhooks.DisabledFailing
	})
	if !strings.Contains(h.logs.String(), "every attempt failed") {
		t.Errorf("no log notice of the disabling")
	}
	// Enabling it again clears the reason.
	on := true
	got, err := h.svc.UpdateEndpoint(context.Background(), p, e.ID, webhooks.EndpointInput{Enabled: &on})
	if err != nil || !got.Enabled || got.DisabledReason != "" {
		t.Errorf("UpdateEndpoint(enable) = %+v, %v", got, err)
	}
}

// Secrets are sealed at rest and never logged.
func TestSecretsSealedAtRestAndNotLogged(t *testing.T) {
	h := start(t, "", nil)
	rc := newReceiver(t, nil)
	p := h.platform()
	e, secret := h.endpoint(p, rc.URL, actors.EventWalletToppedUp)
	rotated, _, err := h.svc.RotateSecret(p, e.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	h.emit(p, actors.EventWalletToppedUp)
	waitFor(t, "delivery", func() bool { return rc.count() == 1 })
	for _, s := range []string{secret, rotated} {
		raw := []byte(strings.TrimPrefix(s, whsig.SecretPrefix))
		err := h.store.Scan(nil, nil, false, func(k, v []byte) bool {
			if bytes.Contains(v, raw) || bytes.Contains(k, raw) {
				t.Errorf("a signing secret is in the clear under key %q", k)
			}
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(h.logs.String(), strings.TrimPrefix(s, whsig.SecretPrefix)) {
			t.Errorf("a signing secret was logged")
		}
	}
}

// Tenant isolation: another platform's endpoint and message ids answer
// ErrNotFound, exactly as ids that do not exist.
func TestOtherPlatformsIDsAreNotFound(t *testing.T) {
	h := start(t, "", nil)
	rc := newReceiver(t, nil)
	a, b := h.platform(), h.platform()
	e, _ := h.endpoint(a, rc.URL, actors.EventWalletToppedUp)
	id := h.emit(a, actors.EventWalletToppedUp)
	h.waitMessage(a, e.ID, id, "delivery", func(m webhooks.Message) bool { return m.Status == webhooks.StatusDelivered })
	checks := map[string]error{}
	_, checks["GetEndpoint"] = h.svc.GetEndpoint(b, e.ID)
	_, checks["Secret"] = h.svc.Secret(b, e.ID)
	_, _, checks["RotateSecret"] = h.svc.RotateSecret(b, e.ID, "")
	_, checks["ListMessages"] = h.svc.ListMessages(b, e.ID, webhooks.MessageQuery{})
	_, checks["GetMessage"] = h.svc.GetMessage(b, e.ID, id)
	_, checks["Replay"] = h.svc.Replay(b, e.ID, id)
	on := true
	_, checks["UpdateEndpoint"] = h.svc.UpdateEndpoint(context.Background(), b, e.ID, webhooks.EndpointInput{Enabled: &on})
	checks["DeleteEndpoint"] = h.svc.DeleteEndpoint(b, e.ID)
	for name, err := range checks {
		if !errors.Is(err, webhooks.ErrNotFound) {
			t.Errorf("%s(other platform's id) = %v, want ErrNotFound", name, err)
		}
	}
	if _, err := h.svc.GetEndpoint(a, e.ID); err != nil {
		t.Errorf("the owner lost its endpoint: %v", err)
	}
}

// A receiver's Retry-After stretches the next delay of the schedule.
func TestRetryAfterDelaysNextAttempt(t *testing.T) {
	h := start(t, "", nil)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(rc.Close)
	p := h.platform()
	e, _ := h.endpoint(p, rc.URL, actors.EventWalletToppedUp)
	id := h.emit(p, actors.EventWalletToppedUp)
	m := h.waitMessage(p, e.ID, id, "first attempt", func(m webhooks.Message) bool { return m.Attempts == 1 })
	if wait := m.NextAttemptAt.Sub(m.LastAttemptAt); m.LastStatusCode != 429 || wait < time.Second {
		t.Errorf("after a 429 with Retry-After: 1 the next attempt is %v later (code %d), want ≥ 1 s", wait, m.LastStatusCode)
	}
}
