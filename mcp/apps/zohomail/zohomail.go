// Package zohomail is the MCP client of one app: its OAuth endpoints and
// scopes and its tools over the app's REST API ([apps.Spec]).
package zohomail

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/assistiv/gateway/mcp/apps"
)

// Spec is Zoho Mail (Zoho Accounts OAuth with offline access; Mail
// REST API). API calls name the mail account; its id is looked up once
// (GET /accounts) and cached in the sealed token set.
func Spec() *apps.Spec {
	return &apps.Spec{
		Name: "zoho_mail", Title: "Zoho Mail",
		AuthorizeURL:  "https://accounts.zoho.com/oauth/v2/auth",
		TokenURL:      "https://accounts.zoho.com/oauth/v2/token",
		APIBase:       "https://mail.zoho.com/api",
		DefaultScopes: []string{"ZohoMail.accounts.READ", "ZohoMail.folders.READ", "ZohoMail.messages.READ", "ZohoMail.messages.CREATE"},
		ScopeSep:      ",", ScopeParam: "scope", AuthScheme: "Zoho-oauthtoken",
		ExtraAuth: map[string]string{"access_type": "offline", "prompt": "consent"},
		Tools: []apps.Tool{
			{Def: mcpgo.NewTool("list_folders",
				mcpgo.WithDescription("List the mail folders of the connected Zoho Mail account."),
				apps.ReadOnly), Run: zohoFolders},
			{Def: mcpgo.NewTool("list_messages",
				mcpgo.WithDescription("List messages in a Zoho Mail folder (newest first)."),
				mcpgo.WithString("folder_id", mcpgo.MaxLength(40), mcpgo.Description("Folder id from list_folders (default: Inbox)")),
				mcpgo.WithNumber("limit", mcpgo.Min(1.0), mcpgo.Max(200.0), mcpgo.Description("Maximum messages, 1-200 (default 20)")),
				mcpgo.WithNumber("start", mcpgo.Min(1.0), mcpgo.Description("Index of the first message, from 1 (default 1)")),
				apps.ReadOnly), Run: zohoList},
			{Def: mcpgo.NewTool("read_message",
				mcpgo.WithDescription("Read the content of one Zoho Mail message."),
				mcpgo.WithString("folder_id", mcpgo.Required(), mcpgo.MaxLength(40), mcpgo.Description("Folder id of the message")),
				mcpgo.WithString("message_id", mcpgo.Required(), mcpgo.MaxLength(40), mcpgo.Description("Message id from list_messages")),
				apps.ReadOnly), Run: zohoRead},
			{Def: mcpgo.NewTool("send_message",
				mcpgo.WithDescription("Send an email from the connected Zoho Mail account."),
				mcpgo.WithString("to", mcpgo.Required(), mcpgo.MaxLength(2000), mcpgo.Description("Recipient addresses, comma-separated")),
				mcpgo.WithString("subject", mcpgo.Required(), mcpgo.MaxLength(500), mcpgo.Description("Subject")),
				mcpgo.WithString("content", mcpgo.Required(), mcpgo.MaxLength(200000), mcpgo.Description("Body (plain text)")),
				mcpgo.WithString("cc", mcpgo.MaxLength(2000), mcpgo.Description("Cc addresses, comma-separated")),
				apps.Writes), Run: zohoSend},
		},
	}
}

// zohoData calls the Mail API and returns its "data" member.
func zohoData(ctx context.Context, c *apps.Call, method, path string, q url.Values, body any) (json.RawMessage, error) {
	raw, err := c.Do(ctx, method, path, q, body)
	if err != nil {
		return nil, err
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil || env.Data == nil {
		return raw, nil
	}
	return env.Data, nil
}

// zohoAccount returns the account id and primary address of the
// connected mailbox.
func zohoAccount(ctx context.Context, c *apps.Call) (id, address string, err error) {
	if c.AccountID != "" {
		return c.AccountID, "", nil
	}
	data, err := zohoData(ctx, c, http.MethodGet, "/accounts", nil, nil)
	if err != nil {
		return "", "", err
	}
	var accts []struct {
		AccountID           json.Number `json:"accountId"`
		PrimaryEmailAddress string      `json:"primaryEmailAddress"`
	}
	if err := json.Unmarshal(data, &accts); err != nil || len(accts) == 0 || accts[0].AccountID == "" {
		return "", "", &apps.UpstreamError{Status: c.Status, Msg: "Zoho Mail listed no account"}
	}
	id = accts[0].AccountID.String()
	if err := apps.Slug("accountId", id); err != nil {
		return "", "", &apps.UpstreamError{Status: c.Status, Msg: "Zoho Mail answered an invalid account id"}
	}
	if c.SaveAccountID != nil {
		c.SaveAccountID(id)
	}
	return id, accts[0].PrimaryEmailAddress, nil
}

func zohoFolders(ctx context.Context, c *apps.Call, _ mcpgo.CallToolRequest) (any, error) {
	acct, _, err := zohoAccount(ctx, c)
	if err != nil {
		return nil, err
	}
	data, err := zohoData(ctx, c, http.MethodGet, "/accounts/"+acct+"/folders", nil, nil)
	if err != nil {
		return nil, err
	}
	return map[string]any{"account_id": acct, "folders": data}, nil
}

func zohoList(ctx context.Context, c *apps.Call, req mcpgo.CallToolRequest) (any, error) {
	a := apps.ArgsOf(req)
	folder, err := a.Str("folder_id", false, 40)
	if err != nil {
		return nil, err
	}
	limit, err := a.Integer("limit", 20, 1, 200, false)
	if err != nil {
		return nil, err
	}
	start, err := a.Integer("start", 1, 1, 1_000_000, false)
	if err != nil {
		return nil, err
	}
	acct, _, err := zohoAccount(ctx, c)
	if err != nil {
		return nil, err
	}
	q := url.Values{"limit": {strconv.FormatInt(limit, 10)}, "start": {strconv.FormatInt(start, 10)}}
	if folder != "" {
		if err := apps.Slug("folder_id", folder); err != nil {
			return nil, err
		}
		q.Set("folderId", folder)
	}
	data, err := zohoData(ctx, c, http.MethodGet, "/accounts/"+acct+"/messages/view", q, nil)
	if err != nil {
		return nil, err
	}
	return map[string]any{"account_id": acct, "messages": data}, nil
}

func zohoRead(ctx context.Context, c *apps.Call, req mcpgo.CallToolRequest) (any, error) {
	a := apps.ArgsOf(req)
	folder, err := a.Str("folder_id", true, 40)
	if err != nil {
		return nil, err
	}
	msg, err := a.Str("message_id", true, 40)
	if err != nil {
		return nil, err
	}
	if err := apps.Slug("folder_id", folder); err != nil {
		return nil, err
	}
	if err := apps.Slug("message_id", msg); err != nil {
		return nil, err
	}
	acct, _, err := zohoAccount(ctx, c)
	if err != nil {
		return nil, err
	}
	return zohoData(ctx, c, http.MethodGet, "/accounts/"+acct+"/folders/"+folder+"/messages/"+msg+"/content", nil, nil)
}

func zohoSend(ctx context.Context, c *apps.Call, req mcpgo.CallToolRequest) (any, error) {
	a := apps.ArgsOf(req)
	to, err := a.Str("to", true, 2000)
	if err != nil {
		return nil, err
	}
	subject, err := a.Str("subject", true, 500)
	if err != nil {
		return nil, err
	}
	content, err := a.Str("content", true, 200000)
	if err != nil {
		return nil, err
	}
	cc, err := a.Str("cc", false, 2000)
	if err != nil {
		return nil, err
	}
	// The sender is the account's primary address: look the account up
	// (not the cache) to learn it.
	c.AccountID = ""
	acct, from, err := zohoAccount(ctx, c)
	if err != nil {
		return nil, err
	}
	in := map[string]any{"fromAddress": from, "toAddress": to, "subject": subject, "content": content, "mailFormat": "plaintext"}
	if cc != "" {
		in["ccAddress"] = cc
	}
	return zohoData(ctx, c, http.MethodPost, "/accounts/"+acct+"/messages", nil, in)
}
