package mcp_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assistiv/gateway/persistence"
)

// rawPost posts a body with an end-user key from any goroutine (no
// testing.T calls), returning status and body.
func rawPost(url, key, body string) (int, []byte, error) {
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// hold makes the app's token endpoint block requests of grantType until
// release is closed; started closes when the first one arrives.
func hold(f *fakeApp, grantType string) (started, release chan struct{}) {
	started, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	f.setTokenHook(func(gt string) {
		if gt == grantType {
			once.Do(func() { close(started) })
			<-release
		}
	})
	return started, release
}

func waitClosed(t *testing.T, c chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func (e *env) storedConnection(pid, uid, app string) bool {
	e.t.Helper()
	_, err := e.g.Store.Get(persistence.MCPConnKey(pid, app, uid))
	if err != nil && !errors.Is(err, persistence.ErrNotFound) {
		e.t.Fatal(err)
	}
	return err == nil
}

func (e *env) connected(key, app string) bool {
	e.t.Helper()
	var apps struct {
		Data []struct {
			App       string `json:"app"`
			Connected bool   `json:"connected"`
		} `json:"data"`
	}
	e.g.Do(e.t, "GET", "/v1/mcp/apps", key, nil).JSON(e.t, &apps)
	for _, a := range apps.Data {
		if a.App == app {
			return a.Connected
		}
	}
	return false
}

// A disconnect while a token refresh is in flight wins: the refresh's new
// grant is dropped, not stored, and the disconnect does not wait for the
// authorization server. (Run 100 times under -race in CI's race target.)
func TestLifecycleDisconnectDuringRefreshStaysDisconnected(t *testing.T) {
	e := setup(t)
	uid, u1 := e.g.CreateEndUser(t, e.pid, e.pkey, "u1")
	e.activate(e.pid, "zendesk", true)
	e.connect(u1, "zendesk")
	f := e.apps["zendesk"]
	e.clk.Advance(2 * time.Hour) // the access token is due for refresh
	f.expireAccessTokens()
	started, release := hold(f, "refresh_token")

	type answer struct {
		status int
		body   []byte
		err    error
	}
	done := make(chan answer, 1)
	go func() {
		s, b, err := rawPost(e.g.URL+"/mcp", u1, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_ticket","arguments":{"ticket_id":42}}}`)
		done <- answer{s, b, err}
	}()
	waitClosed(t, started, "the refresh to reach the token endpoint")
	t0 := time.Now()
	if r := e.g.Do(t, "DELETE", "/v1/mcp/apps/zendesk/connection", u1, nil); r.Status != 200 {
		t.Fatalf("disconnect: %d %s", r.Status, r.Body)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("disconnect waited %v for the token request", d)
	}
	close(release)
	a := <-done
	if a.err != nil || a.status != 200 || !strings.Contains(string(a.body), "not_connected") {
		t.Fatalf("tool call racing the disconnect: %d %s %v, want the tool error not_connected", a.status, a.body, a.err)
	}
	if e.storedConnection(e.pid, uid, "zendesk") || e.connected(u1, "zendesk") {
		t.Fatal("the refresh brought the disconnected connection back")
	}
}

// A deactivation while the code exchange of a connect is in flight wins:
// the callback stores nothing (not even a void record) and redirects with
// status=error; reactivating does not connect the user.
func TestLifecycleDeactivateDuringTokenExchangeStoresNothing(t *testing.T) {
	e := setup(t)
	uid, u1 := e.g.CreateEndUser(t, e.pid, e.pkey, "u1")
	e.activate(e.pid, "github", true)
	cb := e.authorize(u1, "github")
	started, release := hold(e.apps["github"], "authorization_code")
	type answer struct {
		status int
		loc    string
		err    error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := e.noJump.Get(cb)
		if err != nil {
			done <- answer{err: err}
			return
		}
		resp.Body.Close()
		done <- answer{resp.StatusCode, resp.Header.Get("Location"), nil}
	}()
	waitClosed(t, started, "the code exchange to reach the token endpoint")
	e.activate(e.pid, "github", false)
	close(release)
	a := <-done
	if a.err != nil || a.status != 302 || !strings.Contains(a.loc, "status=error") {
		t.Fatalf("callback racing the deactivation: %d %q %v, want a redirect with status=error", a.status, a.loc, a.err)
	}
	if e.storedConnection(e.pid, uid, "github") {
		t.Fatal("a connection record was stored after the deactivation")
	}
	e.activate(e.pid, "github", true)
	if e.connected(u1, "github") {
		t.Fatal("reactivation shows the user connected")
	}
}

// A refresh answered 429 (or 5xx) is transient: the connection stays and
// the next call, once the token endpoint recovers, refreshes and works. A
// definitive refusal (invalid_grant) removes it.
func TestLifecycleRefreshThrottledKeepsTheConnection(t *testing.T) {
	e := setup(t)
	uid, u1 := e.g.CreateEndUser(t, e.pid, e.pkey, "u1")
	e.activate(e.pid, "zendesk", true)
	e.connect(u1, "zendesk")
	f := e.apps["zendesk"]
	e.clk.Advance(2 * time.Hour)
	f.expireAccessTokens()
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_ticket","arguments":{"ticket_id":42}}}`
	for _, status := range []int{429, 503} {
		f.setRefreshStatus(status)
		r, res := bareRPC(t, e.g, "/mcp", u1, call)
		if r.Status != 200 || !res.Result.IsError || !strings.Contains(res.Result.Content[0].Text, "upstream_error") {
			t.Fatalf("refresh answered %d: %d %s, want the tool error upstream_error", status, r.Status, r.Body)
		}
		if !e.storedConnection(e.pid, uid, "zendesk") {
			t.Fatalf("a refresh answered %d deleted the connection", status)
		}
	}
	f.setRefreshStatus(0)
	if _, res := bareRPC(t, e.g, "/mcp", u1, call); res.Result.IsError {
		t.Fatalf("after the token endpoint recovered: %s", res.Result.Content[0].Text)
	}
	// invalid_grant: the grant is gone.
	e.clk.Advance(2 * time.Hour)
	f.expireAccessTokens()
	f.mu.Lock()
	f.refresh = map[string]bool{}
	f.mu.Unlock()
	_, res := bareRPC(t, e.g, "/mcp", u1, call)
	var te struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal([]byte(res.Result.Content[0].Text), &te)
	if te.Error.Code != "not_connected" || e.storedConnection(e.pid, uid, "zendesk") {
		t.Fatalf("after invalid_grant: %s (stored %v), want not_connected and no connection", res.Result.Content[0].Text, e.storedConnection(e.pid, uid, "zendesk"))
	}
}
