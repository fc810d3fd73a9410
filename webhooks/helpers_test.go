package webhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/goleak"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/egress"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/secrets"
	"github.com/assistiv/gateway/persistence"
	"github.com/assistiv/gateway/webhooks"
	"github.com/assistiv/gateway/webhooks/whsig"
)

// TestMain fails the package when a test leaves a goroutine behind: the
// service must stop its dispatcher, scheduler and every delivery on Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testKey is the master key of every test store, so a restarted service
// opens the secrets its predecessor sealed.
var testKey = bytes.Repeat([]byte{7}, secrets.KeySize)

// fastSchedule is four attempts within ~150 ms.
var fastSchedule = []time.Duration{0, 20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond}

type harness struct {
	t     testing.TB
	dir   string
	store *persistence.Store
	subs  *actors.Subscriptions
	svc   *webhooks.Service
	cfg   webhooks.Config
	logs  *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start opens a store in dir (a fresh temp dir when "") and a started
// service over it: private egress allowed, fastSchedule, no jitter.
func start(t testing.TB, dir string, tweak func(*webhooks.Config)) *harness {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	h := &harness{t: t, dir: dir, logs: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	scfg := persistence.DefaultConfig()
	scfg.Dir, scfg.Logger = dir, log
	scfg.OnFatal = func(err error) { t.Errorf("store failed: %v", err) }
	store, err := persistence.Open(scfg)
	if err != nil {
		t.Fatalf("persistence.Open: %v", err)
	}
	kr, err := secrets.NewKeyring(testKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := webhooks.DefaultConfig()
	cfg.Keyring, cfg.Logger = kr, log
	cfg.Egress = egress.Policy{AllowPrivate: true}
	cfg.Schedule, cfg.Jitter = fastSchedule, 0
	cfg.PollInterval = 20 * time.Millisecond
	if tweak != nil {
		tweak(&cfg)
	}
	h.cfg, h.store, h.subs = cfg, store, &actors.Subscriptions{}
	if h.svc, err = webhooks.New(cfg, store, h.subs); err != nil {
		store.Close()
		t.Fatalf("webhooks.New: %v", err)
	}
	h.svc.Start()
	t.Cleanup(h.close)
	return h
}

// close stops the service, then the store (idempotent).
func (h *harness) close() {
	if h.svc == nil {
		return
	}
	h.svc.Close()
	h.svc = nil
	if err := h.store.Close(); err != nil {
		h.t.Errorf("store.Close: %v", err)
	}
}

// platform writes a platform record (the service only checks existence).
func (h *harness) platform() ids.PlatformID {
	h.t.Helper()
	p := ids.PlatformID(ids.New(ids.PlatformPrefix, time.Now()))
	if err := h.store.Commit(persistence.Set(persistence.PlatformKey(string(p)), []byte("test"))); err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) endpoint(p ids.PlatformID, url string, types ...string) (webhooks.Endpoint, string) {
	h.t.Helper()
	e, secret, err := h.svc.CreateEndpoint(context.Background(), p, webhooks.EndpointInput{URL: &url, EventTypes: types})
	if err != nil {
		h.t.Fatalf("CreateEndpoint(%s): %v", url, err)
	}
	return e, secret
}

// emit writes one event to the outbox as an actor would (in its own
// commit), wakes the dispatcher, and returns the event id.
func (h *harness) emit(p ids.PlatformID, typ string) string {
	h.t.Helper()
	ev := actors.Event{
		ID: ids.New(actors.EventPrefix, time.Now()), EventType: typ,
		CreatedAt: time.Now().UTC().Format(time.RFC3339Nano),
		Data:      map[string]any{"platform_id": string(p), "balance_usd": json.Number("12.5")},
	}
	b, err := json.Marshal(ev)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.store.Commit(persistence.Set(persistence.OutboxKey(string(p), ev.ID), b)); err != nil {
		h.t.Fatal(err)
	}
	if h.svc != nil {
		h.svc.Wake()
	}
	return ev.ID
}

// message polls the delivery log until msg satisfies ok.
func (h *harness) waitMessage(p ids.PlatformID, eid, mid string, what string, ok func(webhooks.Message) bool) webhooks.Message {
	h.t.Helper()
	var m webhooks.Message
	waitFor(h.t, what, func() bool {
		var err error
		m, err = h.svc.GetMessage(p, eid, mid)
		return err == nil && ok(m)
	})
	return m
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// delivery is one request a receiver got.
type delivery struct {
	Path   string
	Header http.Header
	Body   []byte
	At     time.Time
}

// receiver is a webhook receiver on 127.0.0.1 whose answer to the n-th
// request (1-based) is status(n, req).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []delivery
	status func(n int, r *http.Request) int
}

func newReceiver(t testing.TB, status func(n int, r *http.Request) int) *receiver {
	t.Helper()
	rc := &receiver{status: status}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, delivery{Path: r.URL.Path, Header: r.Header.Clone(), Body: body, At: time.Now()})
		n := len(rc.got)
		rc.mu.Unlock()
		code := 200
		if rc.status != nil {
			code = rc.status(n, r)
		}
		if code >= 300 && code < 400 {
			w.Header().Set("Location", "/redirected")
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

// verify checks d against secret with our verifier and the Standard
// Webhooks reference library.
func verify(t testing.TB, secret string, d delivery) {
	t.Helper()
	if err := whsig.Verify(secret, d.Header, d.Body, time.Now(), 0); err != nil {
		t.Errorf("whsig.Verify(%s) = %v", d.Header.Get("webhook-id"), err)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("standardwebhooks.NewWebhook: %v", err)
	}
	if err := wh.Verify(d.Body, d.Header); err != nil {
		t.Errorf("reference library Verify(%s) = %v", d.Header.Get("webhook-id"), err)
	}
}

// fakeResolver answers every name with the current answer.
type fakeResolver struct {
	mu     sync.Mutex
	answer []netip.Addr
}

func (f *fakeResolver) set(addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = nil
	for _, a := range addrs {
		f.answer = append(f.answer, netip.MustParseAddr(a))
	}
}

func (f *fakeResolver) LookupNetIP(_ context.Context, _, _ string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]netip.Addr(nil), f.answer...), nil
}
