package mcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/logs"
)

// env is one gateway with the four app fakes and a platform.
type env struct {
	t      *testing.T
	g      *edgetest.Gateway
	clk    *clock.Fake
	apps   map[string]*fakeApp
	pid    string
	pkey   string
	noJump *http.Client // does not follow redirects: plays the browser step by step
}

func setup(t *testing.T) *env {
	t.Helper()
	return setupWith(t, edgetest.Options{})
}

// setupWith is setup with gateway options (its clock is always a fake).
func setupWith(t *testing.T, o edgetest.Options) *env {
	t.Helper()
	clk := clock.NewFake(time.Now())
	o.Clock = clk
	g := edgetest.Start(t, o)
	e := &env{t: t, g: g, clk: clk, apps: map[string]*fakeApp{},
		noJump: &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	for _, name := range []string{"github", "slack", "zoho_mail", "zendesk"} {
		f := newFakeApp(t, name)
		f.redirect = g.URL + "/oauth/callback"
		e.apps[name] = f
	}
	e.pid, e.pkey = g.CreatePlatform(t, "acme")
	fundWallet(t, g, e.pid)
	return e
}

// fundWallet tops up a platform's wallet: tool calls are refused (402)
// while it is empty.
func fundWallet(t *testing.T, g *edgetest.Gateway, pid string) {
	t.Helper()
	if r := g.Do(t, "POST", "/admin/v1/platforms/"+pid+"/wallet/topup", edgetest.AdminKey, map[string]any{"amount_usd": 10}); r.Status != 200 {
		t.Fatalf("wallet topup: %d %s", r.Status, r.Body)
	}
}

// activate PUTs app's activation on platform pid, pointing at its fake.
func (e *env) activate(pid, app string, active bool) *edgetest.Response {
	e.t.Helper()
	f := e.apps[app]
	body := map[string]any{
		"client_id": f.clientID, "client_secret": f.secret, "landing_url": "https://platform.example/app",
		"active": active, "authorize_url": f.url("/authorize"), "token_url": f.url("/token"), "api_base_url": f.url("/api"),
	}
	if app == "zendesk" {
		body["subdomain"] = "acme"
	}
	r := e.g.Do(e.t, "PUT", "/admin/v1/platforms/"+pid+"/mcp-apps/"+app, edgetest.AdminKey, body)
	if r.Status != 200 {
		e.t.Fatalf("PUT mcp-apps/%s: %d %s", app, r.Status, r.Body)
	}
	return r
}

func (e *env) get(u string) *http.Response {
	e.t.Helper()
	resp, err := e.noJump.Get(u)
	if err != nil {
		e.t.Fatalf("GET %s: %v", u, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// authorize starts the connect flow for key and plays the user consenting
// at the fake; it returns the gateway callback URL the browser would open.
func (e *env) authorize(key, app string) string {
	e.t.Helper()
	r := e.g.Do(e.t, "POST", "/v1/mcp/apps/"+app+"/connect", key, nil)
	if r.Status != 200 {
		e.t.Fatalf("connect %s: %d %s", app, r.Status, r.Body)
	}
	var out struct {
		AuthorizationURL string `json:"authorization_url"`
	}
	r.JSON(e.t, &out)
	resp := e.get(out.AuthorizationURL)
	if resp.StatusCode != 302 {
		e.t.Fatalf("fake authorize answered %d", resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

// callback opens the gateway callback URL and returns status and Location.
func (e *env) callback(u string) (int, string) {
	e.t.Helper()
	resp := e.get(u)
	return resp.StatusCode, resp.Header.Get("Location")
}

// connect plays the whole flow: authorize, callback, then the platform's
// back end confirming with the same end-user's key.
func (e *env) connect(key, app string) {
	e.t.Helper()
	if r := e.confirm(key, app, e.confirmation(e.authorize(key, app))); r.Status != 200 {
		e.t.Fatalf("confirm %s: %d %s", app, r.Status, r.Body)
	}
}

// confirmation opens the callback URL and returns the confirmation token
// the landing page receives.
func (e *env) confirmation(cb string) string {
	e.t.Helper()
	status, loc := e.callback(cb)
	u, err := url.Parse(loc)
	if status != 302 || err != nil || !strings.HasPrefix(loc, "https://platform.example/app/mcp/oauth-callback?") ||
		u.Query().Get("status") != "confirm" || u.Query().Get("confirmation") == "" {
		e.t.Fatalf("callback = %d %q, want 302 to the landing page with status=confirm and a confirmation", status, loc)
	}
	return u.Query().Get("confirmation")
}

func (e *env) confirm(key, app, token string) *edgetest.Response {
	e.t.Helper()
	return e.g.Do(e.t, "POST", "/v1/mcp/apps/"+app+"/connect/confirm", key, map[string]any{"confirmation": token})
}

func mcpClient(t *testing.T, url, key string, opts ...transport.StreamableHTTPCOption) *client.Client {
	t.Helper()
	opts = append(opts, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + key}))
	c, err := client.NewStreamableHttpClient(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	init := mcpgo.InitializeRequest{}
	init.Params.ProtocolVersion = "2025-06-18"
	init.Params.ClientInfo = mcpgo.Implementation{Name: "test", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("Initialize: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func toolNames(t *testing.T, c *client.Client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.ListTools(ctx, mcpgo.ListToolsRequest{})
	if err != nil {
		t.Fatalf("ListTools: %v", err)
	}
	names := []string{}
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	return names
}

func callTool(t *testing.T, c *client.Client, name string, args map[string]any) (*mcpgo.CallToolResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := mcpgo.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	return c.CallTool(ctx, req)
}

func resultText(r *mcpgo.CallToolResult) string {
	var b strings.Builder
	for _, c := range r.Content {
		if tc, ok := c.(mcpgo.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// mustCall calls a tool that must succeed and returns its text.
func mustCall(t *testing.T, c *client.Client, name string, args map[string]any) string {
	t.Helper()
	r, err := callTool(t, c, name, args)
	if err != nil {
		t.Fatalf("CallTool(%s): %v", name, err)
	}
	if r.IsError {
		t.Fatalf("CallTool(%s) is a tool error: %s", name, resultText(r))
	}
	return resultText(r)
}

// toolErrorCode returns error.code of a tool error result.
func toolErrorCode(t *testing.T, r *mcpgo.CallToolResult) string {
	t.Helper()
	if !r.IsError {
		t.Fatalf("want a tool error, got %s", resultText(r))
	}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(resultText(r)), &e); err != nil {
		t.Fatalf("tool error is not JSON: %s", resultText(r))
	}
	return e.Error.Code
}

var githubTools = []string{"comment_on_issue", "create_issue", "get_file_contents", "get_issue", "list_repositories", "search_issues"}

func TestToolsFollowActivationAndConnectionPerUser(t *testing.T) {
	e := setup(t)
	_, u1 := e.g.CreateEndUser(t, e.pid, e.pkey, "u1")
	_, u2 := e.g.CreateEndUser(t, e.pid, e.pkey, "u2")
	pidB, pkeyB := e.g.CreatePlatform(t, "other")
	_, v1 := e.g.CreateEndUser(t, pidB, pkeyB, "v1")

	c1 := mcpClient(t, e.g.URL+"/mcp", u1)
	c2 := mcpClient(t, e.g.URL+"/mcp", u2)
	cv := mcpClient(t, e.g.URL+"/mcp", v1)
	if got := toolNames(t, c1); len(got) != 0 {
		t.Fatalf("tools before activation = %v, want none", got)
	}
	// Not active: the tool does not exist for this user (JSON-RPC error).
	if _, err := callTool(t, c1, "list_repositories", nil); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("call of an inactive app's tool: err = %v, want a JSON-RPC not found error", err)
	}

	e.activate(e.pid, "github", true)
	if got := toolNames(t, c1); len(got) != 0 {
		t.Fatalf("tools after activation, before connecting = %v, want none", got)
	}
	r, err := callTool(t, c1, "list_repositories", nil)
	if err != nil {
		t.Fatalf("CallTool: %v", err)
	}
	if code := toolErrorCode(t, r); code != "not_connected" || !strings.Contains(resultText(r), "POST /v1/mcp/apps/github/connect") {
		t.Fatalf("unconnected call = %s, want not_connected naming the connect route", resultText(r))
	}

	e.connect(u1, "github")
	if got := toolNames(t, c1); !slices.Equal(got, githubTools) {
		t.Fatalf("u1 tools = %v, want %v", got, githubTools)
	}
	if got := toolNames(t, c2); len(got) != 0 {
		t.Fatalf("u2 (not connected) tools = %v, want none", got)
	}
	if got := toolNames(t, cv); len(got) != 0 {
		t.Fatalf("other platform's user tools = %v, want none", got)
	}
	if out := mustCall(t, c1, "list_repositories", map[string]any{"per_page": 5}); !strings.Contains(out, "octo/hello") {
		t.Fatalf("list_repositories = %s", out)
	}

	// The connection listing reflects the state, and another platform's
	// view shows nothing of it.
	var apps struct {
		Data []struct {
			App       string `json:"app"`
			Connected bool   `json:"connected"`
		} `json:"data"`
	}
	e.g.Do(t, "GET", "/v1/mcp/apps", u1, nil).JSON(t, &apps)
	if len(apps.Data) != 1 || apps.Data[0].App != "github" || !apps.Data[0].Connected {
		t.Fatalf("GET /v1/mcp/apps (u1) = %+v", apps)
	}
	e.g.Do(t, "GET", "/v1/mcp/apps", v1, nil).JSON(t, &apps)
	if len(apps.Data) != 0 {
		t.Fatalf("GET /v1/mcp/apps (other platform) = %+v, want none", apps)
	}

	// Disconnecting hides the tools again.
	if r := e.g.Do(t, "DELETE", "/v1/mcp/apps/github/connection", u1, nil); r.Status != 200 {
		t.Fatalf("DELETE connection: %d %s", r.Status, r.Body)
	}
	if got := toolNames(t, c1); len(got) != 0 {
		t.Fatalf("tools after disconnect = %v", got)
	}

	// Deactivation revokes every connection, and reactivating does not
	// bring them back.
	e.connect(u1, "github")
	e.connect(u2, "github")
	e.activate(e.pid, "github", false)
	for _, c := range []*client.Client{c1, c2} {
		if got := toolNames(t, c); len(got) != 0 {
			t.Fatalf("tools after deactivation = %v", got)
		}
	}
	if _, err := callTool(t, c1, "list_repositories", nil); err == nil {
		t.Fatal("call after deactivation succeeded")
	}
	e.activate(e.pid, "github", true)
	if got := toolNames(t, c1); len(got) != 0 {
		t.Fatalf("tools after reactivation = %v, want none (connections were revoked)", got)
	}
}

func TestEveryAppsToolsReachTheirAPI(t *testing.T) {
	e := setup(t)
	_, u1 := e.g.CreateEndUser(t, e.pid, e.pkey, "u1")
	for _, app := range []string{"github", "slack", "zoho_mail", "zendesk"} {
		e.activate(e.pid, app, true)
		e.connect(u1, app)
	}
	c := mcpClient(t, e.g.URL+"/mcp", u1)
	if got := toolNames(t, c); len(got) != 18 {
		t.Fatalf("tools = %v, want all 18", got)
	}
	cases := []struct {
		tool string
		args map[string]any
		want string
	}{
		{"list_repositories", nil, "octo/hello"},
		{"get_issue", map[string]any{"owner": "octo", "repo": "hello", "issue_number": 7}, "Fake issue seven"},
		{"create_issue", map[string]any{"owner": "octo", "repo": "hello", "title": "new bug", "labels": []any{"bug"}}, `"new bug"`},
		{"comment_on_issue", map[string]any{"owner": "octo", "repo": "hello", "issue_number": 7, "body": "thanks"}, `"thanks"`},
		{"search_issues", map[string]any{"query": "is:open crash"}, "match for is:open crash"},
		{"get_file_contents", map[string]any{"owner": "octo", "repo": "hello", "path": "docs/README.md"}, `"content":"hello world"`},
		{"list_channels", nil, "general"},
		{"post_message", map[string]any{"channel": "C1", "text": "hi from agent"}, "hi from agent"},
		{"read_channel_history", map[string]any{"channel": "C1", "limit": 10}, "fake history line"},
		{"search_messages", map[string]any{"query": "deploy"}, "found it"},
		{"list_folders", nil, "Inbox"},
		{"list_messages", map[string]any{"folder_id": "100"}, "fake zoho subject"},
		{"read_message", map[string]any{"folder_id": "100", "message_id": "m1"}, "fake zoho body"},
		{"send_message", map[string]any{"to": "you@example.com", "subject": "report", "content": "body"}, "m2"},
		{"search_tickets", map[string]any{"query": "printer"}, "type:ticket printer"},
		{"get_ticket", map[string]any{"ticket_id": 42}, "fake ticket"},
		{"create_ticket", map[string]any{"subject": "broken", "body": "it broke", "priority": "high"}, `"broken"`},
		{"add_comment", map[string]any{"ticket_id": 42, "body": "on it", "public": false}, "on it"},
	}
	for _, tc := range cases {
		if out := mustCall(t, c, tc.tool, tc.args); !strings.Contains(out, tc.want) {
			t.Errorf("CallTool(%s) = %s, want it to contain %s", tc.tool, out, tc.want)
		}
	}
	// Upstream errors are tool errors with the app's status.
	r, err := callTool(t, c, "read_channel_history", map[string]any{"channel": "C404"})
	if err != nil || toolErrorCode(t, r) != "upstream_error" {
		t.Fatalf("read_channel_history(C404) = %v %v, want upstream_error", r, err)
	}
	// Invalid arguments never reach the app.
	before := len(e.apps["github"].calls())
	r, err = callTool(t, c, "get_file_contents", map[string]any{"owner": "octo", "repo": "hello", "path": "../../etc/passwd"})
	if err != nil || toolErrorCode(t, r) != "invalid_arguments" || len(e.apps["github"].calls()) != before {
		t.Fatalf("traversal path: %v %v", r, err)
	}

	// Each call is in the platform's logs, as a tool call of its app.
	if err := e.g.Logs.Writer().Flush(); err != nil {
		t.Fatal(err)
	}
	page, err := e.g.Logs.List(ids.PlatformID(e.pid), logs.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, en := range page.Entries {
		if en.Kind == logs.KindTool {
			seen[en.Tool] = en.App
		}
	}
	if seen["post_message"] != "slack" || seen["create_ticket"] != "zendesk" || len(seen) < 18 {
		t.Fatalf("tool log entries = %v", seen)
	}
}

func TestOAuthStateIsSingleUseExpiringAndBound(t *testing.T) {
	e := setup(t)
	_, u1 := e.g.CreateEndUser(t, e.pid, e.pkey, "u1")
	_, u2 := e.g.CreateEndUser(t, e.pid, e.pkey, "u2")
	e.activate(e.pid, "slack", true)

	// Replay: the second use of a state is refused.
	cb := e.authorize(u1, "slack")
	if status, loc := e.callback(cb); status != 302 || !strings.Contains(loc, "status=confirm") {
		t.Fatalf("first callback = %d %s", status, loc)
	}
	if status, _ := e.callback(cb); status != 400 {
		t.Fatalf("replayed state answered %d, want 400", status)
	}

	// Expired: a state older than 10 minutes is refused.
	cb = e.authorize(u2, "slack")
	e.clk.Advance(11 * time.Minute)
	if status, _ := e.callback(cb); status != 400 {
		t.Fatalf("expired state answered %d, want 400", status)
	}

	// Another end-user's state: u2's code presented with u1's state fails
	// PKCE at the authorization server; nothing is stored for anyone.
	if r := e.g.Do(t, "DELETE", "/v1/mcp/apps/slack/connection", u1, nil); r.Status != 200 {
		t.Fatal(r.Status)
	}
	cb1 := e.authorize(u1, "slack")
	cb2 := e.authorize(u2, "slack")
	mixed := strings.Split(cb2, "&state=")[0] + "&state=" + strings.Split(cb1, "&state=")[1]
	if !strings.Contains(cb2, "?code=") || mixed == cb2 {
		t.Fatalf("unexpected callback URL shapes %q %q", cb1, cb2)
	}
	if status, loc := e.callback(mixed); status != 302 || !strings.Contains(loc, "status=error") {
		t.Fatalf("mixed code/state = %d %s, want a redirect with status=error", status, loc)
	}
	for _, k := range []string{u1, u2} {
		c := mcpClient(t, e.g.URL+"/mcp", k)
		if got := toolNames(t, c); len(got) != 0 {
			t.Fatalf("tools after a mixed callback = %v", got)
		}
	}

	// Missing or unknown state.
	for _, q := range []string{"", "?code=x", "?code=x&state=nope"} {
		if status, _ := e.callback(e.g.URL + "/oauth/callback" + q); status != 400 {
			t.Fatalf("callback%s answered %d, want 400", q, status)
		}
	}
	// The authorization server's refusal comes back as status=error.
	cb = e.authorize(u2, "slack")
	denied := strings.Replace(cb, "?code=", "?error=access_denied&code=", 1)
	if status, loc := e.callback(denied); status != 302 || !strings.Contains(loc, "status=error") {
		t.Fatalf("denied = %d %s", status, loc)
	}
}

func TestAccessTokenRefreshedWhenExpired(t *testing.T) {
	e := setup(t)
	_, u1 := e.g.CreateEndUser(t, e.pid, e.pkey, "u1")
	e.activate(e.pid, "zendesk", true)
	e.connect(u1, "zendesk")
	c := mcpClient(t, e.g.URL+"/mcp", u1)
	mustCall(t, c, "get_ticket", map[string]any{"ticket_id": 42})
	if n := e.apps["zendesk"].refreshes(); n != 0 {
		t.Fatalf("refreshes before expiry = %d", n)
	}
	e.clk.Advance(2 * time.Hour)
	e.apps["zendesk"].expireAccessTokens()
	mustCall(t, c, "get_ticket", map[string]any{"ticket_id": 42})
	mustCall(t, c, "get_ticket", map[string]any{"ticket_id": 42})
	if n := e.apps["zendesk"].refreshes(); n != 1 {
		t.Fatalf("refreshes after expiry = %d, want 1", n)
	}
}

func TestRateLimitedToolCall(t *testing.T) {
	e := setup(t)
	uid, u1 := e.g.CreateEndUser(t, e.pid, e.pkey, "u1")
	e.activate(e.pid, "github", true)
	e.connect(u1, "github")
	r := e.g.Do(t, "PUT", "/v1/platforms/"+e.pid+"/end-users/"+uid+"/rate-limits", e.pkey, map[string]any{"requests_per_minute": 1})
	if r.Status != 200 {
		t.Fatalf("set rate limits: %d %s", r.Status, r.Body)
	}
	c := mcpClient(t, e.g.URL+"/mcp", u1)
	mustCall(t, c, "list_repositories", nil)
	res, err := callTool(t, c, "list_repositories", nil)
	if err != nil || toolErrorCode(t, res) != "rate_limited" {
		t.Fatalf("second call = %v %v, want rate_limited", res, err)
	}
}

func TestMCPAuthenticatesBeforeAnyExchange(t *testing.T) {
	e := setup(t)
	_, u1 := e.g.CreateEndUser(t, e.pid, e.pkey, "u1")
	_, u2 := e.g.CreateEndUser(t, e.pid, e.pkey, "u2")
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	for _, tc := range []struct {
		name, key, path string
		status          int
		code            string
	}{
		{"no key", "", "/mcp", 401, "missing_api_key"},
		{"bad key", "sk-eu_nope", "/mcp", 401, "invalid_api_key"},
		{"platform key", e.pkey, "/mcp", 403, "wrong_key_type"},
		{"bad key skills", "sk-eu_nope", "/mcp/skills", 401, "invalid_api_key"},
	} {
		r := e.g.Do(t, "POST", tc.path, tc.key, init, "Accept", "application/json, text/event-stream")
		if r.Status != tc.status || r.ErrorCode() != tc.code || r.Header.Get("Mcp-Session-Id") != "" {
			t.Errorf("%s: %d %s, want %d %s and no session", tc.name, r.Status, r.Body, tc.status, tc.code)
		}
	}
	// A session id belongs to its end-user.
	r := e.g.Do(t, "POST", "/mcp", u1, init, "Accept", "application/json, text/event-stream")
	sid := r.Header.Get("Mcp-Session-Id")
	if r.Status != 200 || sid == "" {
		t.Fatalf("initialize: %d %s (session %q)", r.Status, r.Body, sid)
	}
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	if r := e.g.Do(t, "POST", "/mcp", u2, list, "Accept", "application/json, text/event-stream", "Mcp-Session-Id", sid, "Mcp-Protocol-Version", "2025-06-18"); r.Status != 404 {
		t.Fatalf("u1's session with u2's key: %d %s, want 404", r.Status, r.Body)
	}
	if r := e.g.Do(t, "POST", "/mcp", u1, list, "Accept", "application/json, text/event-stream", "Mcp-Session-Id", sid, "Mcp-Protocol-Version", "2025-06-18"); r.Status != 200 {
		t.Fatalf("u1's own session: %d %s", r.Status, r.Body)
	}
	// A foreign Origin is refused; malformed JSON-RPC is a JSON-RPC error.
	if r := e.g.Do(t, "POST", "/mcp", u1, init, "Accept", "application/json, text/event-stream", "Origin", "https://evil.example"); r.Status != 403 {
		t.Fatalf("foreign Origin: %d", r.Status)
	}
	r = e.g.Do(t, "POST", "/mcp", u1, `{"jsonrpc":"2.0","id":3,`, "Accept", "application/json, text/event-stream")
	if !bytes.Contains(r.Body, []byte(`"error"`)) || !bytes.Contains(r.Body, []byte("-32700")) {
		t.Fatalf("malformed JSON-RPC: %d %s, want a parse error", r.Status, r.Body)
	}
}

func TestActivationValidatesAndNeverShowsSecrets(t *testing.T) {
	e := setup(t)
	put := func(app string, body map[string]any) *edgetest.Response {
		return e.g.Do(t, "PUT", "/admin/v1/platforms/"+e.pid+"/mcp-apps/"+app, edgetest.AdminKey, body)
	}
	if r := put("jira", map[string]any{"active": false}); r.Status != 404 {
		t.Fatalf("unknown app: %d", r.Status)
	}
	if r := put("github", map[string]any{"client_id": "x", "active": true}); r.Status != 400 {
		t.Fatalf("activation without secret: %d %s", r.Status, r.Body)
	}
	if r := put("github", map[string]any{"token_url": "ftp://x"}); r.Status != 400 {
		t.Fatalf("ftp token_url: %d %s", r.Status, r.Body)
	}
	if r := e.g.Do(t, "PUT", "/admin/v1/platforms/plat_nope/mcp-apps/github", edgetest.AdminKey, map[string]any{"active": false}); r.Status != 404 {
		t.Fatalf("unknown platform: %d", r.Status)
	}
	if r := e.g.Do(t, "PUT", "/admin/v1/platforms/"+e.pid+"/mcp-apps/github", e.pkey, map[string]any{"active": false}); r.Status != 401 {
		t.Fatalf("platform key on the operator route: %d", r.Status)
	}
	r := e.activate(e.pid, "github", true)
	l := e.g.Do(t, "GET", "/admin/v1/platforms/"+e.pid+"/mcp-apps", edgetest.AdminKey, nil)
	for _, b := range [][]byte{r.Body, l.Body} {
		if bytes.Contains(b, []byte(canarySecret)) || bytes.Contains(b, []byte("sealed")) {
			t.Fatalf("response shows the secret: %s", b)
		}
	}
	if !bytes.Contains(l.Body, []byte(`"client_secret_set":true`)) {
		t.Fatalf("list = %s", l.Body)
	}
}

// TestNoSecretInClearAtRest runs the flows with canary secrets, then greps
// every file of the data dir (WAL and tables included), the logs and the
// responses for them.
func TestNoSecretInClearAtRest(t *testing.T) {
	e := setup(t)
	_, u1 := e.g.CreateEndUser(t, e.pid, e.pkey, "u1")
	var bodies [][]byte
	for _, app := range []string{"github", "slack", "zoho_mail", "zendesk"} {
		bodies = append(bodies, e.activate(e.pid, app, true).Body)
		e.connect(u1, app)
	}
	c := mcpClient(t, e.g.URL+"/mcp", u1)
	bodies = append(bodies, []byte(mustCall(t, c, "list_repositories", nil)), []byte(mustCall(t, c, "list_folders", nil)))
	e.clk.Advance(2 * time.Hour) // forces refreshes: new tokens are written too
	bodies = append(bodies, []byte(mustCall(t, c, "get_ticket", map[string]any{"ticket_id": 42})))
	bodies = append(bodies, e.g.Do(t, "GET", "/v1/mcp/apps", u1, nil).Body)
	_ = e.g.Logs.Writer().Flush()
	page, _ := e.g.Logs.List(ids.PlatformID(e.pid), logs.Query{Limit: 100})
	lj, _ := json.Marshal(page)
	bodies = append(bodies, lj)
	e.g.Close()
	canaries := [][]byte{[]byte(canarySecret), []byte(canaryAccess), []byte(canaryRefresh), []byte("code_verifier")}
	// The grep must be able to see records: the client id is stored in
	// clear, so finding it proves the WAL and tables were read.
	sawClientID := false
	err := filepath.WalkDir(e.g.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, c := range canaries {
			if bytes.Contains(b, c) {
				t.Errorf("%s holds %s in clear", p, c)
			}
		}
		sawClientID = sawClientID || bytes.Contains(b, []byte(e.apps["zendesk"].clientID))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sawClientID {
		t.Fatal("the data dir grep found no record at all")
	}
	for _, b := range bodies {
		for _, c := range canaries[:3] {
			if bytes.Contains(b, c) {
				t.Errorf("a response or log holds %s: %s", c, b)
			}
		}
	}
}

// TestListeningStreamsDoNotLeak opens GET listening streams (legacy
// protocol, continuous listening), closes the clients, and checks that the
// heartbeat ends their handlers.
func TestListeningStreamsDoNotLeak(t *testing.T) {
	e := setup(t)
	_, u1 := e.g.CreateEndUser(t, e.pid, e.pkey, "u1")
	warm := mcpClient(t, e.g.URL+"/mcp", u1)
	toolNames(t, warm)
	time.Sleep(300 * time.Millisecond)
	base := runtime.NumGoroutine()
	var cs []*client.Client
	for i := 0; i < 5; i++ {
		c := mcpClient(t, e.g.URL+"/mcp", u1, transport.WithContinuousListening())
		toolNames(t, c)
		cs = append(cs, c)
	}
	time.Sleep(300 * time.Millisecond)
	during := runtime.NumGoroutine()
	for _, c := range cs {
		_ = c.Close()
	}
	e.g.Client().CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	n := runtime.NumGoroutine()
	for n > base+2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > base+2 {
		t.Fatalf("goroutines: %d before the streams, %d during, %d after closing them", base, during, n)
	}
	t.Logf("goroutines: %d before the streams, %d during, %d after closing them", base, during, n)
}
