package edge

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/mcp"
)

// mcpRoutes mounts the MCP server (/mcp, /mcp/skills), the OAuth callback
// and the MCP app REST routes, when the node runs an MCP service.
func (s *Server) mcpRoutes(r routeTable) {
	if s.deps.MCP == nil {
		return
	}
	for path, surface := range map[string]mcp.Surface{"/mcp": mcp.SurfaceAll, "/mcp/skills": mcp.SurfaceSkills} {
		h := s.mcpEndpoint(surface)
		r.POST(path, h)
		r.GET(path, h)
		r.DELETE(path, h)
	}
	r.GET("/oauth/callback", s.wrap(s.oauthCallback))
	s.skillRoutes(r)

	r.PUT("/admin/v1/platforms/{platformId}/mcp-apps/{app}", s.adminOnly(s.putMCPApp))
	r.GET("/admin/v1/platforms/{platformId}/mcp-apps", s.adminOnly(s.listMCPApps))

	endUser := func(h func(*call) error) fasthttp.RequestHandler { return s.withKey(h, ids.KindEndUser) }
	r.GET("/v1/mcp/apps", endUser(s.listUserMCPApps))
	r.POST("/v1/mcp/apps/{app}/connect", endUser(s.connectMCPApp))
	r.POST("/v1/mcp/apps/{app}/connect/confirm", endUser(s.confirmMCPApp))
	r.DELETE("/v1/mcp/apps/{app}/connection", endUser(s.disconnectMCPApp))
}

// mcpEndpoint authenticates the end-user key before any MCP exchange (401,
// or 403 wrong_key_type for a platform key), checks Origin and the session
// id's owner, refuses a tools/call with 402 while the end-user's budget is
// suspended or the platform's wallet is empty, then hands the request to mcp-go through the net/http
// adaptor (which streams on Flush).
func (s *Server) mcpEndpoint(surface mcp.Surface) fasthttp.RequestHandler {
	return s.withKey(func(c *call) error {
		svc := s.deps.MCP
		if !svc.OriginAllowed(string(c.ctx.Request.Header.Peek("Origin"))) {
			return &apiError{Status: 403, Type: typePerm, Code: "forbidden_origin", Message: "this Origin may not call the MCP endpoint"}
		}
		if sid := c.ctx.Request.Header.Peek("Mcp-Session-Id"); len(sid) > 0 && !svc.SessionOwnedBy(string(sid), c.principal) {
			return &apiError{Status: 404, Type: typeNotFound, Code: "session_not_found", Message: "no such MCP session for this key; initialize a new one"}
		}
		p := c.principal
		if mcp.OpensSession(string(c.ctx.Method()), c.ctx.PostBody(), string(c.ctx.Request.Header.Peek("Mcp-Session-Id"))) && !svc.SessionAllowed(p) {
			return &apiError{Status: 429, Type: typeRate, Code: "too_many_sessions",
				Message: "this end-user holds the most MCP sessions allowed; end one (DELETE /mcp with its Mcp-Session-Id), reuse one, or send requests without a session"}
		}
		if c.ctx.IsPost() && mcp.HoldsToolCall(c.ctx.PostBody()) {
			ctx, cancel := c.context()
			err := svc.PaymentCheck(ctx, p)
			cancel()
			if err != nil {
				return err // 402 budget_suspended / wallet_insufficient
			}
		}
		fasthttpadaptor.NewFastHTTPHandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			svc.ServeMCP(w, r, p, surface)
		})(c.ctx)
		return nil
	}, ids.KindEndUser)
}

// mcpError maps the mcp package's errors to API errors.
func mcpError(err error) error {
	switch {
	case errors.Is(err, mcp.ErrUnknownApp):
		return &apiError{Status: 404, Type: typeNotFound, Code: "app_not_found", Message: "unknown MCP app; one of " + strings.Join(mcp.AppNames, ", ")}
	case errors.Is(err, mcp.ErrAppNotActive):
		return &apiError{Status: 409, Type: typeConflict, Code: "app_not_active", Message: "the platform has not activated this app"}
	case errors.Is(err, mcp.ErrConfirmMismatch):
		return &apiError{Status: 403, Type: typePerm, Code: "connection_user_mismatch", Message: "this connection was started by another end-user; it was discarded. Start the connection again with this end-user's key"}
	case errors.Is(err, mcp.ErrInvalidState):
		return &apiError{Status: 400, Type: typeInvalid, Code: "invalid_state", Message: "the OAuth state is missing, unknown, already used or expired; start the connection again"}
	case errors.Is(err, mcp.ErrInvalid):
		return errBadRequest("invalid_field", "%s", strings.TrimPrefix(err.Error(), mcp.ErrInvalid.Error()+": "))
	case errors.Is(err, mcp.ErrNoKeyring):
		return &apiError{Status: 503, Type: typeInternal, Code: "secrets_unavailable", Message: "the gateway has no master key to seal secrets"}
	}
	return err
}

type mcpAppIn struct {
	ClientID     *string         `json:"client_id"`
	ClientSecret *string         `json:"client_secret"`
	LandingURL   *string         `json:"landing_url"`
	Scopes       json.RawMessage `json:"scopes"`
	Active       *bool           `json:"active"`
	AuthorizeURL *string         `json:"authorize_url"`
	TokenURL     *string         `json:"token_url"`
	APIBaseURL   *string         `json:"api_base_url"`
	Subdomain    *string         `json:"subdomain"`
}

// scopesOf accepts a list of scopes or one string separated by spaces or
// commas.
func scopesOf(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		if list == nil {
			list = []string{}
		}
		return list, nil
	}
	var one string
	if json.Unmarshal(raw, &one) != nil {
		return nil, errBadRequest("invalid_field", "scopes must be a list of strings or one string")
	}
	return strings.FieldsFunc(one, func(r rune) bool { return r == ' ' || r == ',' }), nil
}

func (s *Server) putMCPApp(c *call) error {
	var in mcpAppIn
	if err := c.decodeJSON(&in, false); err != nil {
		return err
	}
	scopes, err := scopesOf(in.Scopes)
	if err != nil {
		return err
	}
	if _, err := c.askPlatform(&pb.GetPlatform{}); err != nil {
		return err
	}
	ctx, cancel := c.context()
	defer cancel()
	v, err := s.deps.MCP.PutApp(ctx, c.platformID(), c.param("app"), mcp.AppInput{
		ClientID: in.ClientID, ClientSecret: in.ClientSecret, LandingURL: in.LandingURL, Scopes: scopes, Active: in.Active,
		AuthorizeURL: in.AuthorizeURL, TokenURL: in.TokenURL, APIBaseURL: in.APIBaseURL, Subdomain: in.Subdomain,
	})
	if err != nil {
		return mcpError(err)
	}
	return c.writeJSON(200, mcpAppView(v))
}

type mcpAppJSON struct {
	mcp.AppView
	UpdatedAt *string `json:"updated_at"`
}

func mcpAppView(v mcp.AppView) mcpAppJSON { return mcpAppJSON{v, optTime(v.UpdatedAtMs)} }

func (s *Server) listMCPApps(c *call) error {
	if _, err := c.askPlatform(&pb.GetPlatform{}); err != nil {
		return err
	}
	list, err := s.deps.MCP.ListApps(c.platformID())
	if err != nil {
		return err
	}
	out := listJSON[mcpAppJSON]{Object: "list", Data: make([]mcpAppJSON, 0, len(list))}
	for _, v := range list {
		out.Data = append(out.Data, mcpAppView(v))
	}
	return c.writeJSON(200, out)
}

func (s *Server) listUserMCPApps(c *call) error {
	list, err := s.deps.MCP.UserApps(c.principal.Platform, c.principal.EndUser)
	if err != nil {
		return err
	}
	return c.writeJSON(200, listJSON[mcp.UserApp]{Object: "list", Data: list})
}

func (s *Server) connectMCPApp(c *call) error {
	ctx, cancel := c.context()
	defer cancel()
	u, err := s.deps.MCP.Connect(ctx, c.principal.Platform, c.principal.EndUser, c.param("app"))
	if err != nil {
		return mcpError(err)
	}
	c.ctx.Response.Header.Set("Cache-Control", "no-store")
	return c.writeJSON(200, map[string]any{"object": "mcp_authorization", "app": c.param("app"), "authorization_url": u})
}

// confirmMCPApp completes a connect flow: the platform's back end sends
// the confirmation token its landing page received, with the key of the
// end-user signed in there. Only the end-user who started the flow can
// complete it (403 connection_user_mismatch otherwise).
func (s *Server) confirmMCPApp(c *call) error {
	var in struct {
		Confirmation string `json:"confirmation"`
	}
	if err := c.decodeJSON(&in, false); err != nil {
		return err
	}
	if in.Confirmation == "" {
		return errBadRequest("missing_field", "confirmation is required (the landing page's confirmation parameter)")
	}
	ctx, cancel := c.context()
	defer cancel()
	if err := s.deps.MCP.Confirm(ctx, c.principal.Platform, c.principal.EndUser, c.param("app"), in.Confirmation); err != nil {
		return mcpError(err)
	}
	return c.writeJSON(200, map[string]any{"object": "mcp_connection", "app": c.param("app"), "connected": true})
}

func (s *Server) disconnectMCPApp(c *call) error {
	if err := s.deps.MCP.Disconnect(c.principal.Platform, c.principal.EndUser, c.param("app")); err != nil {
		return mcpError(err)
	}
	return c.writeJSON(200, map[string]any{"object": "mcp_connection", "app": c.param("app"), "deleted": true})
}

// oauthCallback is where the app's authorization server sends the user's
// browser back. It carries no key: the single-use state names the
// platform, end-user and app.
func (s *Server) oauthCallback(c *call) error {
	q := c.ctx.QueryArgs()
	c.ctx.Response.Header.Set("Cache-Control", "no-store")
	c.ctx.Response.Header.Set("Referrer-Policy", "no-referrer")
	ctx, cancel := c.context()
	defer cancel()
	res, err := s.deps.MCP.Callback(ctx, string(q.Peek("code")), string(q.Peek("state")), string(q.Peek("error")))
	if err != nil {
		return mcpError(err)
	}
	c.ctx.Redirect(res.Redirect, fasthttp.StatusFound)
	return nil
}
