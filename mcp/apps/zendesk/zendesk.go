// Package zendesk is the MCP client of one app: its OAuth endpoints and
// scopes and its tools over the app's REST API ([apps.Spec]).
package zendesk

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/assistiv/gateway/mcp/apps"
)

// Spec is Zendesk Support (OAuth per customer subdomain, token
// requests as JSON; API v2).
func Spec() *apps.Spec {
	ticketID := mcpgo.WithNumber("ticket_id", mcpgo.Required(), mcpgo.Min(1.0), mcpgo.Description("Ticket id"))
	return &apps.Spec{
		Name: "zendesk", Title: "Zendesk",
		AuthorizeURL:  "https://{subdomain}.zendesk.com/oauth/authorizations/new",
		TokenURL:      "https://{subdomain}.zendesk.com/oauth/tokens",
		APIBase:       "https://{subdomain}.zendesk.com/api/v2",
		DefaultScopes: []string{"read", "write"}, ScopeSep: " ", ScopeParam: "scope", AuthScheme: "Bearer",
		JSONToken: true, Subdomain: true,
		Tools: []apps.Tool{
			{Def: mcpgo.NewTool("search_tickets",
				mcpgo.WithDescription("Search Zendesk tickets with Zendesk's search syntax."),
				mcpgo.WithString("query", mcpgo.Required(), mcpgo.MaxLength(500), mcpgo.Description("Search terms, e.g. 'status:open printer'")),
				mcpgo.WithNumber("per_page", mcpgo.Min(1.0), mcpgo.Max(100.0), mcpgo.Description("Results per page, 1-100 (default 25)")),
				mcpgo.WithNumber("page", mcpgo.Min(1.0), mcpgo.Description("Page number (default 1)")),
				apps.ReadOnly), Run: zendeskSearch},
			{Def: mcpgo.NewTool("get_ticket",
				mcpgo.WithDescription("Get one Zendesk ticket."), ticketID, apps.ReadOnly), Run: zendeskGet},
			{Def: mcpgo.NewTool("create_ticket",
				mcpgo.WithDescription("Create a Zendesk ticket."),
				mcpgo.WithString("subject", mcpgo.Required(), mcpgo.MaxLength(500), mcpgo.Description("Subject")),
				mcpgo.WithString("body", mcpgo.Required(), mcpgo.MaxLength(65536), mcpgo.Description("First comment (the description)")),
				mcpgo.WithString("priority", mcpgo.Enum("low", "normal", "high", "urgent"), mcpgo.Description("Priority")),
				apps.Writes), Run: zendeskCreate},
			{Def: mcpgo.NewTool("add_comment",
				mcpgo.WithDescription("Add a comment to a Zendesk ticket."), ticketID,
				mcpgo.WithString("body", mcpgo.Required(), mcpgo.MaxLength(65536), mcpgo.Description("Comment text")),
				mcpgo.WithBoolean("public", mcpgo.Description("Visible to the requester (default true)")),
				apps.Writes), Run: zendeskComment},
		},
	}
}

func ticketPath(a apps.Args) (string, error) {
	n, err := a.Integer("ticket_id", 0, 1, 1<<53, true)
	if err != nil {
		return "", err
	}
	return "/tickets/" + strconv.FormatInt(n, 10) + ".json", nil
}

func zendeskSearch(ctx context.Context, c *apps.Call, req mcpgo.CallToolRequest) (any, error) {
	a := apps.ArgsOf(req)
	query, err := a.Str("query", true, 500)
	if err != nil {
		return nil, err
	}
	per, err := a.Integer("per_page", 25, 1, 100, false)
	if err != nil {
		return nil, err
	}
	page, err := a.Integer("page", 1, 1, 10000, false)
	if err != nil {
		return nil, err
	}
	q := url.Values{"query": {"type:ticket " + query}, "per_page": {strconv.FormatInt(per, 10)}, "page": {strconv.FormatInt(page, 10)}}
	return c.Do(ctx, http.MethodGet, "/search.json", q, nil)
}

func zendeskGet(ctx context.Context, c *apps.Call, req mcpgo.CallToolRequest) (any, error) {
	p, err := ticketPath(apps.ArgsOf(req))
	if err != nil {
		return nil, err
	}
	return c.Do(ctx, http.MethodGet, p, nil, nil)
}

func zendeskCreate(ctx context.Context, c *apps.Call, req mcpgo.CallToolRequest) (any, error) {
	a := apps.ArgsOf(req)
	subject, err := a.Str("subject", true, 500)
	if err != nil {
		return nil, err
	}
	body, err := a.Str("body", true, 65536)
	if err != nil {
		return nil, err
	}
	priority, err := a.Str("priority", false, 10)
	if err != nil {
		return nil, err
	}
	t := map[string]any{"subject": subject, "comment": map[string]any{"body": body}}
	if priority != "" {
		t["priority"] = priority
	}
	return c.Do(ctx, http.MethodPost, "/tickets.json", nil, map[string]any{"ticket": t})
}

func zendeskComment(ctx context.Context, c *apps.Call, req mcpgo.CallToolRequest) (any, error) {
	a := apps.ArgsOf(req)
	p, err := ticketPath(a)
	if err != nil {
		return nil, err
	}
	body, err := a.Str("body", true, 65536)
	if err != nil {
		return nil, err
	}
	public, err := a.Boolean("public", true)
	if err != nil {
		return nil, err
	}
	return c.Do(ctx, http.MethodPut, p, nil, map[string]any{"ticket": map[string]any{"comment": map[string]any{"body": body, "public": public}}})
}
