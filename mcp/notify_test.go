package mcp_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/mcp"
)

// listener is one initialized MCP session with its GET listening stream
// open, read on the wire (SSE), counting notifications/tools/list_changed.
type listener struct{ n atomic.Int64 }

func listen(t *testing.T, g *edgetest.Gateway, key string) *listener {
	t.Helper()
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	r := g.Do(t, "POST", "/mcp", key, init, "Accept", "application/json, text/event-stream")
	sid := r.Header.Get("Mcp-Session-Id")
	if r.Status != 200 || sid == "" {
		t.Fatalf("initialize: %d %s", r.Status, r.Body)
	}
	hdr := []string{"Accept", "application/json, text/event-stream", "Mcp-Session-Id", sid, "Mcp-Protocol-Version", "2025-06-18"}
	g.Do(t, "POST", "/mcp", key, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, hdr...)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", g.URL+"/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	for i := 0; i < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET listening stream: %v %v", err, resp)
	}
	l := &listener{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data:") && strings.Contains(sc.Text(), `"notifications/tools/list_changed"`) {
				l.n.Add(1)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-done
		g.Do(t, "DELETE", "/mcp", key, nil, hdr...)
	})
	return l
}

// waitFor waits until the count reaches want, then makes sure no extra one
// follows shortly.
func (l *listener) waitFor(t *testing.T, who string, want int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for l.n.Load() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if got := l.n.Load(); got != want {
		t.Fatalf("%s received %d tools/list_changed, want %d", who, got, want)
	}
}

// Activating, deactivating, connecting and disconnecting an app, and
// toggling skills, notify exactly the sessions whose tool list changed;
// the session index follows mcp-go's registry.
func TestToolsListChangedReachesExactlyTheAffectedSessions(t *testing.T) {
	e := setup(t)
	_, u1 := e.g.CreateEndUser(t, e.pid, e.pkey, "u1")
	_, u2 := e.g.CreateEndUser(t, e.pid, e.pkey, "u2")
	pidB, pkeyB := e.g.CreatePlatform(t, "other")
	_, v1 := e.g.CreateEndUser(t, pidB, pkeyB, "v1")
	before := e.g.MCP.SessionCount()
	n1, n2, nv := listen(t, e.g, u1), listen(t, e.g, u2), listen(t, e.g, v1)
	if got := e.g.MCP.SessionCount(); got != before+3 {
		t.Fatalf("session index holds %d, want %d", got, before+3)
	}

	e.activate(e.pid, "github", true)
	n1.waitFor(t, "u1 after activation", 1)
	n2.waitFor(t, "u2 after activation", 1)

	e.connect(u1, "github")
	n1.waitFor(t, "u1 after connecting", 2)
	n2.waitFor(t, "u2 after u1 connected", 1)

	if r := e.g.Do(t, "DELETE", "/v1/mcp/apps/github/connection", u1, nil); r.Status != 200 {
		t.Fatalf("disconnect: %d", r.Status)
	}
	n1.waitFor(t, "u1 after disconnecting", 3)

	e.activate(e.pid, "github", true) // no change of state: no notification
	n1.waitFor(t, "u1 after a no-op PUT", 3)

	e.activate(e.pid, "github", false)
	n1.waitFor(t, "u1 after deactivation", 4)
	n2.waitFor(t, "u2 after deactivation", 2)

	enableSkills(t, e.g, e.pid, e.pkey, true)
	n1.waitFor(t, "u1 after skills_enabled", 5)
	n2.waitFor(t, "u2 after skills_enabled", 3)

	nv.waitFor(t, "another platform's user", 0)
}

// Deleting a session removes it from the index: the index is bounded by
// the live sessions.
func TestSessionIndexForgetsDeletedSessions(t *testing.T) {
	e := setup(t)
	_, u1 := e.g.CreateEndUser(t, e.pid, e.pkey, "u1")
	before := e.g.MCP.SessionCount()
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	var sids []string
	for i := 0; i < 20; i++ {
		sids = append(sids, e.g.Do(t, "POST", "/mcp", u1, init, "Accept", "application/json, text/event-stream").Header.Get("Mcp-Session-Id"))
	}
	if got := e.g.MCP.SessionCount(); got != before+20 {
		t.Fatalf("after 20 sessions the index holds %d, want %d", got, before+20)
	}
	for _, sid := range sids {
		e.g.Do(t, "DELETE", "/mcp", u1, nil, "Mcp-Session-Id", sid, "Mcp-Protocol-Version", "2025-06-18")
	}
	if got := e.g.MCP.SessionCount(); got != before {
		t.Fatalf("after deleting them the index holds %d, want %d", got, before)
	}
}

// An end-user holds at most MaxSessionsPerEndUser sessions: one more
// initialize answers 429 too_many_sessions, stateless requests still
// work, another end-user is unaffected, and deleting a session frees a
// slot.
func TestSessionsPerEndUserAreBounded(t *testing.T) {
	e := setupWith(t, edgetest.Options{MCPConfig: func(c *mcp.Config) { c.MaxSessionsPerEndUser = 3 }})
	_, u1 := e.g.CreateEndUser(t, e.pid, e.pkey, "u1")
	_, u2 := e.g.CreateEndUser(t, e.pid, e.pkey, "u2")
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	var sids []string
	for i := 0; i < 3; i++ {
		r := e.g.Do(t, "POST", "/mcp", u1, init, "Accept", "application/json, text/event-stream")
		if r.Status != 200 {
			t.Fatalf("initialize %d: %d %s", i, r.Status, r.Body)
		}
		sids = append(sids, r.Header.Get("Mcp-Session-Id"))
	}
	if r := e.g.Do(t, "POST", "/mcp", u1, init, "Accept", "application/json, text/event-stream"); r.Status != 429 || r.ErrorCode() != "too_many_sessions" {
		t.Fatalf("fourth initialize: %d %s, want 429 too_many_sessions", r.Status, r.Body)
	}
	if r, _ := bareRPC(t, e.g, "/mcp", u1, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`); r.Status != 200 {
		t.Fatalf("stateless tools/list at the session cap: %d %s", r.Status, r.Body)
	}
	if r := e.g.Do(t, "POST", "/mcp", u2, init, "Accept", "application/json, text/event-stream"); r.Status != 200 {
		t.Fatalf("another end-user's initialize: %d", r.Status)
	}
	e.g.Do(t, "DELETE", "/mcp", u1, nil, "Mcp-Session-Id", sids[0], "Mcp-Protocol-Version", "2025-06-18")
	if r := e.g.Do(t, "POST", "/mcp", u1, init, "Accept", "application/json, text/event-stream"); r.Status != 200 {
		t.Fatalf("initialize after deleting a session: %d %s", r.Status, r.Body)
	}
}
