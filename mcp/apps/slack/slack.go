// Package slack is the MCP client of one app: its OAuth endpoints and
// scopes and its tools over the app's REST API ([apps.Spec]).
package slack

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/assistiv/gateway/mcp/apps"
)

// Spec is Slack (OAuth v2 with user scopes; Web API). The tools act
// as the user, so the user token (authed_user) is the one stored.
func Spec() *apps.Spec {
	return &apps.Spec{
		Name: "slack", Title: "Slack",
		AuthorizeURL:  "https://slack.com/oauth/v2/authorize",
		TokenURL:      "https://slack.com/api/oauth.v2.access",
		APIBase:       "https://slack.com/api",
		DefaultScopes: []string{"channels:read", "channels:history", "chat:write", "search:read"},
		ScopeSep:      ",", ScopeParam: "user_scope", AuthScheme: "Bearer",
		Tools: []apps.Tool{
			{Def: mcpgo.NewTool("list_channels",
				mcpgo.WithDescription("List Slack conversations the connected user can see."),
				mcpgo.WithString("types", mcpgo.MaxLength(100), mcpgo.Description("Comma-separated: public_channel, private_channel, mpim, im (default public_channel)")),
				mcpgo.WithNumber("limit", mcpgo.Min(1.0), mcpgo.Max(1000.0), mcpgo.Description("Maximum channels, 1-1000 (default 100)")),
				mcpgo.WithString("cursor", mcpgo.MaxLength(500), mcpgo.Description("next_cursor of a previous page")),
				apps.ReadOnly), Run: slackListChannels},
			{Def: mcpgo.NewTool("post_message",
				mcpgo.WithDescription("Post a message to a Slack channel as the connected user."),
				mcpgo.WithString("channel", mcpgo.Required(), mcpgo.MaxLength(100), mcpgo.Description("Channel id (e.g. C0123456789)")),
				mcpgo.WithString("text", mcpgo.Required(), mcpgo.MaxLength(40000), mcpgo.Description("Message text (mrkdwn)")),
				mcpgo.WithString("thread_ts", mcpgo.MaxLength(40), mcpgo.Description("Reply in this thread")),
				apps.Writes), Run: slackPost},
			{Def: mcpgo.NewTool("read_channel_history",
				mcpgo.WithDescription("Read recent messages of a Slack channel."),
				mcpgo.WithString("channel", mcpgo.Required(), mcpgo.MaxLength(100), mcpgo.Description("Channel id")),
				mcpgo.WithNumber("limit", mcpgo.Min(1.0), mcpgo.Max(1000.0), mcpgo.Description("Maximum messages, 1-1000 (default 50)")),
				mcpgo.WithString("cursor", mcpgo.MaxLength(500), mcpgo.Description("next_cursor of a previous page")),
				mcpgo.WithString("oldest", mcpgo.MaxLength(40), mcpgo.Description("Only messages after this timestamp")),
				mcpgo.WithString("latest", mcpgo.MaxLength(40), mcpgo.Description("Only messages before this timestamp")),
				apps.ReadOnly), Run: slackHistory},
			{Def: mcpgo.NewTool("search_messages",
				mcpgo.WithDescription("Search Slack messages with Slack's search syntax."),
				mcpgo.WithString("query", mcpgo.Required(), mcpgo.MaxLength(500), mcpgo.Description("Search query, e.g. 'deploy in:#ops'")),
				mcpgo.WithNumber("count", mcpgo.Min(1.0), mcpgo.Max(100.0), mcpgo.Description("Results per page, 1-100 (default 20)")),
				mcpgo.WithNumber("page", mcpgo.Min(1.0), mcpgo.Description("Page number (default 1)")),
				apps.ReadOnly), Run: slackSearch},
		},
	}
}

// slackDo calls a Web API method. Slack answers 200 with "ok": false on
// errors; those become upstream errors (auth failures as 401).
func slackDo(ctx context.Context, c *apps.Call, method, apiMethod string, q url.Values, body any) (any, error) {
	raw, err := c.Do(ctx, method, "/"+apiMethod, q, body)
	if err != nil {
		return nil, err
	}
	var env struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, &apps.UpstreamError{Status: c.Status, Msg: "malformed Slack response"}
	}
	if !env.OK {
		status := http.StatusBadRequest
		switch env.Error {
		case "not_authed", "invalid_auth", "token_revoked", "token_expired", "account_inactive":
			status = http.StatusUnauthorized
		case "ratelimited":
			status = http.StatusTooManyRequests
		}
		return nil, &apps.UpstreamError{Status: status, Msg: apps.SafeCode(env.Error)}
	}
	return raw, nil
}

func optParams(a apps.Args, q url.Values, names ...string) error {
	for _, n := range names {
		v, err := a.Str(n, false, 500)
		if err != nil {
			return err
		}
		if v != "" {
			q.Set(n, v)
		}
	}
	return nil
}

func slackListChannels(ctx context.Context, c *apps.Call, req mcpgo.CallToolRequest) (any, error) {
	a := apps.ArgsOf(req)
	limit, err := a.Integer("limit", 100, 1, 1000, false)
	if err != nil {
		return nil, err
	}
	q := url.Values{"limit": {strconv.FormatInt(limit, 10)}, "types": {"public_channel"}, "exclude_archived": {"true"}}
	if err := optParams(a, q, "types", "cursor"); err != nil {
		return nil, err
	}
	return slackDo(ctx, c, http.MethodGet, "conversations.list", q, nil)
}

func slackPost(ctx context.Context, c *apps.Call, req mcpgo.CallToolRequest) (any, error) {
	a := apps.ArgsOf(req)
	channel, err := a.Str("channel", true, 100)
	if err != nil {
		return nil, err
	}
	text, err := a.Str("text", true, 40000)
	if err != nil {
		return nil, err
	}
	thread, err := a.Str("thread_ts", false, 40)
	if err != nil {
		return nil, err
	}
	in := map[string]any{"channel": channel, "text": text}
	if thread != "" {
		in["thread_ts"] = thread
	}
	return slackDo(ctx, c, http.MethodPost, "chat.postMessage", nil, in)
}

func slackHistory(ctx context.Context, c *apps.Call, req mcpgo.CallToolRequest) (any, error) {
	a := apps.ArgsOf(req)
	channel, err := a.Str("channel", true, 100)
	if err != nil {
		return nil, err
	}
	limit, err := a.Integer("limit", 50, 1, 1000, false)
	if err != nil {
		return nil, err
	}
	q := url.Values{"channel": {channel}, "limit": {strconv.FormatInt(limit, 10)}}
	if err := optParams(a, q, "cursor", "oldest", "latest"); err != nil {
		return nil, err
	}
	return slackDo(ctx, c, http.MethodGet, "conversations.history", q, nil)
}

func slackSearch(ctx context.Context, c *apps.Call, req mcpgo.CallToolRequest) (any, error) {
	a := apps.ArgsOf(req)
	query, err := a.Str("query", true, 500)
	if err != nil {
		return nil, err
	}
	count, err := a.Integer("count", 20, 1, 100, false)
	if err != nil {
		return nil, err
	}
	page, err := a.Integer("page", 1, 1, 100, false)
	if err != nil {
		return nil, err
	}
	q := url.Values{"query": {query}, "count": {strconv.FormatInt(count, 10)}, "page": {strconv.FormatInt(page, 10)}}
	return slackDo(ctx, c, http.MethodGet, "search.messages", q, nil)
}
