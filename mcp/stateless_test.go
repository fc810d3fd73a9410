package mcp_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/assistiv/gateway/edge/edgetest"
)

// rpcResult decodes a JSON-RPC answer sent as plain JSON (not SSE).
type rpcResult struct {
	ID     int `json:"id"`
	Result struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
		IsError bool `json:"isError"`
	} `json:"result"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// bareRPC posts one JSON-RPC message exactly as the spec's curl example
// does: no initialize, no session id, no Accept or protocol header.
func bareRPC(t *testing.T, g *edgetest.Gateway, path, key, body string) (*edgetest.Response, rpcResult) {
	t.Helper()
	r := g.Do(t, "POST", path, key, body)
	var out rpcResult
	if r.Status == 200 {
		if err := json.Unmarshal(r.Body, &out); err != nil {
			t.Fatalf("POST %s %s: answer is not one JSON-RPC object: %s", path, body, r.Body)
		}
	}
	return r, out
}

func names(res rpcResult) []string {
	out := []string{}
	for _, tl := range res.Result.Tools {
		out = append(out, tl.Name)
	}
	slices.Sort(out)
	return out
}

func TestBareToolsListWithoutInitializeIsStateless(t *testing.T) {
	e := setup(t)
	_, u1 := e.g.CreateEndUser(t, e.pid, e.pkey, "u1")
	_, u2 := e.g.CreateEndUser(t, e.pid, e.pkey, "u2")
	e.activate(e.pid, "github", true)
	e.connect(u1, "github")
	enableSkills(t, e.g, e.pid, e.pkey, true)

	list := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	r, res := bareRPC(t, e.g, "/mcp", u1, list)
	if r.Status != 200 || res.Error != nil || r.Header.Get("Mcp-Session-Id") != "" {
		t.Fatalf("bare tools/list on /mcp: %d %s (session %q), want 200 with tools and no session", r.Status, r.Body, r.Header.Get("Mcp-Session-Id"))
	}
	want := append(slices.Clone(githubTools), skillToolNames...)
	slices.Sort(want)
	if got := names(res); !slices.Equal(got, want) {
		t.Fatalf("bare tools/list on /mcp = %v, want %v", got, want)
	}
	// The same filter applies without a session: u2 has not connected.
	if _, res := bareRPC(t, e.g, "/mcp", u2, list); !slices.Equal(names(res), skillToolNames) {
		t.Fatalf("bare tools/list for u2 = %v, want only the skill tools", names(res))
	}
	r, res = bareRPC(t, e.g, "/mcp/skills", u1, list)
	if r.Status != 200 || !slices.Equal(names(res), skillToolNames) {
		t.Fatalf("bare tools/list on /mcp/skills: %d %s, want the five skill tools", r.Status, r.Body)
	}

	// A bare tools/call works too, and is authorized like a session's.
	call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_repositories","arguments":{"per_page":5}}}`
	if r, res := bareRPC(t, e.g, "/mcp", u1, call); r.Status != 200 || res.Result.IsError || len(res.Result.Content) == 0 ||
		!strings.Contains(res.Result.Content[0].Text, "octo/hello") {
		t.Fatalf("bare tools/call: %d %s", r.Status, r.Body)
	}
	if r, res := bareRPC(t, e.g, "/mcp", u2, call); r.Status != 200 || !res.Result.IsError || !strings.Contains(res.Result.Content[0].Text, "not_connected") {
		t.Fatalf("bare tools/call by an unconnected user: %d %s, want the tool error not_connected", r.Status, r.Body)
	}

	// Sessions stay available: an initialized client still works, and a
	// session id still belongs to its end-user only.
	c := mcpClient(t, e.g.URL+"/mcp", u1)
	if got := toolNames(t, c); !slices.Equal(got, want) {
		t.Fatalf("session tools/list = %v, want %v", got, want)
	}
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	sid := e.g.Do(t, "POST", "/mcp", u1, init, "Accept", "application/json, text/event-stream").Header.Get("Mcp-Session-Id")
	if sid == "" {
		t.Fatal("initialize minted no session id")
	}
	if r := e.g.Do(t, "POST", "/mcp", u2, list, "Mcp-Session-Id", sid); r.Status != 404 {
		t.Fatalf("u1's session id with u2's key: %d %s, want 404", r.Status, r.Body)
	}
}

// skillToolNames are the five skill tools, sorted.
var skillToolNames = []string{"create_skill", "delete_skill", "fetch_skill", "find_skill", "submit_skill_review"}
