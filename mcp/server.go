package mcp

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/logs"
	"github.com/assistiv/gateway/mcp/apps"
	"github.com/assistiv/gateway/oauthconn"
)

// Surface is which MCP endpoint a request came to.
type Surface uint8

// The MCP endpoints.
const (
	// SurfaceAll is /mcp: connected apps' tools, plus the skill tools when
	// the platform has skills_enabled.
	SurfaceAll Surface = iota
	// SurfaceSkills is /mcp/skills: the skill tools only (when enabled).
	SurfaceSkills
)

// skillsApp is the pseudo-app of the skill tools in toolApp.
const skillsApp = "skills"

// Version is what the MCP server reports in initialize.
const Version = "0.1.0"

// request is what one MCP HTTP request carries through mcp-go to the
// filter and the tool handlers.
type request struct {
	p       actors.Principal
	surface Surface
	// calling is true for a POST whose JSON-RPC message (or batch) holds a
	// tools/call: then the filter also admits tools of active apps the
	// user has not connected, so their handlers can answer not_connected.
	calling bool

	once sync.Once
	vis  visibility
}

type visibility struct {
	active, connected map[string]bool
	skills            bool
	err               error
}

type requestKey struct{}

func requestFrom(ctx context.Context) *request {
	r, _ := ctx.Value(requestKey{}).(*request)
	return r
}

// visibility computes, once per HTTP request, which apps are active and
// connected and whether skills are on.
func (s *Service) visibility(ctx context.Context, r *request) visibility {
	r.once.Do(func() {
		v := visibility{active: map[string]bool{}, connected: map[string]bool{}}
		for _, name := range AppNames {
			act, err := s.conns.LoadActivation(r.p.Platform, name)
			if err != nil {
				v.err = err
				break
			}
			if act == nil || !act.Active {
				continue
			}
			v.active[name] = true
			connected, err := s.conns.Connected(r.p.Platform, r.p.EndUser, name, act)
			if err != nil {
				v.err = err
				break
			}
			v.connected[name] = connected
		}
		v.skills, _ = s.skillsEnabled(ctx, r.p.Platform)
		r.vis = v
	})
	return r.vis
}

func (s *Service) skillsEnabled(ctx context.Context, pid ids.PlatformID) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := s.dir.Ask(ctx, actors.PlatformActor(pid), &pb.GetPlatform{})
	if err != nil {
		return false, err
	}
	v, ok := res.(*pb.PlatformView)
	return ok && v.GetPlatform().GetSettings().GetSkillsEnabled(), nil
}

// filter is the server's tool filter: a request sees only what its
// platform and end-user may use. mcp-go applies it to tools/list and, per
// tool, to tools/call.
func (s *Service) filter(ctx context.Context, tools []mcpgo.Tool) []mcpgo.Tool {
	r := requestFrom(ctx)
	if r == nil {
		return nil
	}
	v := s.visibility(ctx, r)
	out := make([]mcpgo.Tool, 0, len(tools))
	for _, t := range tools {
		app := s.toolApp[t.Name]
		ok := false
		switch {
		case app == skillsApp:
			ok = v.skills
		case r.surface == SurfaceAll:
			ok = v.active[app] && (v.connected[app] || r.calling)
		}
		if ok {
			out = append(out, t)
		}
	}
	return out
}

func (s *Service) buildServer() {
	s.mcp = server.NewMCPServer("assistiv-gateway", Version,
		server.WithToolCapabilities(true), // list_changed: see toolsChanged
		server.WithHooks(s.sessionHooks()),
		server.WithToolFilter(s.filter),
		server.WithInputSchemaValidation(),
		server.WithRecovery(),
		server.WithLogger(s.log),
	)
	for _, name := range AppNames {
		spec := registry[name]
		for _, t := range spec.Tools {
			s.toolApp[t.Def.Name] = name
			s.mcp.AddTool(t.Def, s.appHandler(spec, t))
		}
	}
	for _, t := range s.skillTools() {
		s.toolApp[t.Tool.Name] = skillsApp
		s.mcp.AddTool(t.Tool, t.Handler)
	}
	s.streamable = server.NewStreamableHTTPServer(s.mcp,
		server.WithHeartbeatInterval(s.cfg.HeartbeatInterval),
		server.WithSessionIdleTTL(s.cfg.SessionIdleTTL),
		server.WithSessionIdManagerResolver(&sessionIDs{key: s.sessionKey}),
		server.WithStreamableHTTPLogger(s.log),
		// The request already carries our request value (ServeMCP); the
		// context func only refuses to run a request without one.
		server.WithHTTPContextFunc(func(ctx context.Context, r *http.Request) context.Context {
			if requestFrom(ctx) == nil && r != nil {
				if rr := requestFrom(r.Context()); rr != nil {
					return context.WithValue(ctx, requestKey{}, rr)
				}
			}
			return ctx
		}),
	)
}

// ServeMCP serves one MCP HTTP request (POST, GET or DELETE) for the
// authenticated end-user p. The caller has authenticated p before any MCP
// exchange and checked [Service.SessionOwnedBy]. The request runs on a
// fresh context (never the server framework's), cancelled when ServeMCP
// returns; GET listening streams end at the first failed heartbeat.
func (s *Service) ServeMCP(w http.ResponseWriter, r *http.Request, p actors.Principal, surface Surface) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rq := &request{p: p, surface: surface}
	if r.Method == http.MethodPost && r.Body != nil {
		body, err := io.ReadAll(r.Body) // bounded by the server's body limit
		if err == nil {
			rq.calling = holdsToolCall(body)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	s.streamable.ServeHTTP(w, r.WithContext(context.WithValue(ctx, requestKey{}, rq)))
}

// holdsToolCall reports whether a JSON-RPC message or batch holds a
// tools/call request.
func holdsToolCall(body []byte) bool { return holdsMethod(body, string(mcpgo.MethodToolsCall)) }

// holdsMethod reports whether a JSON-RPC message or batch holds a request
// of method.
func holdsMethod(body []byte, method string) bool {
	body = bytes.TrimSpace(body)
	type msg struct {
		Method string `json:"method"`
	}
	if len(body) > 0 && body[0] == '[' {
		var batch []msg
		if json.Unmarshal(body, &batch) != nil {
			return false
		}
		for _, m := range batch {
			if m.Method == method {
				return true
			}
		}
		return false
	}
	var m msg
	return json.Unmarshal(body, &m) == nil && m.Method == method
}

// ---- session ids bound to their end-user ----

const sessionPrefix = "mcp-session-"

// sessionIDs makes session ids "mcp-session-" + hex(nonce 16) + hex(mac
// 16), the MAC over (platform, end-user, nonce) under a per-process key: a
// session id presented with another user's key fails validation.
type sessionIDs struct{ key [32]byte }

func (m *sessionIDs) mac(owner, nonce string) string {
	h := hmac.New(sha256.New, m.key[:])
	h.Write([]byte(owner))
	h.Write([]byte{0})
	h.Write([]byte(nonce))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func ownerOf(p actors.Principal) string { return ownerKey(p.Platform, p.EndUser) }

// valid reports whether id was generated for owner.
func (m *sessionIDs) valid(id, owner string) bool {
	rest, ok := strings.CutPrefix(id, sessionPrefix)
	if !ok || len(rest) != 64 {
		return false
	}
	return hmac.Equal([]byte(rest[32:]), []byte(m.mac(owner, rest[:32])))
}

// ResolveSessionIdManager implements server.SessionIdManagerResolver.
func (m *sessionIDs) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	b := boundIDs{m: m}
	if r != nil {
		if rq := requestFrom(r.Context()); rq != nil {
			b.owner, b.known = ownerOf(rq.p), true
		}
	}
	return b
}

type boundIDs struct {
	m     *sessionIDs
	owner string
	known bool
}

func (b boundIDs) Generate() string {
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		panic("mcp: crypto/rand failed: " + err.Error())
	}
	nonce := hex.EncodeToString(n[:])
	return sessionPrefix + nonce + b.m.mac(b.owner, nonce)
}

// Validate admits a request without a session id (the stateless mode: a
// bare JSON-RPC POST is served by a session that lives for that request
// only) and a session id issued to this request's owner.
func (b boundIDs) Validate(id string) (bool, error) {
	if id == "" {
		return false, nil
	}
	if b.known && !b.m.valid(id, b.owner) {
		return false, errors.New("session id does not belong to this key")
	}
	return false, nil
}

func (b boundIDs) Terminate(string) (bool, error) { return false, nil }

// SessionOwnedBy reports whether an Mcp-Session-Id header value was issued
// to p. The edge refuses a request whose session id fails it (mcp-go does
// not validate session ids on GET).
func (s *Service) SessionOwnedBy(id string, p actors.Principal) bool {
	return (&sessionIDs{key: s.sessionKey}).valid(id, ownerOf(p))
}

// ---- tool calls ----

// toolError is a tool error result whose text is JSON:
// {"error":{"code","message"}}.
func toolError(code, format string, args ...any) *mcpgo.CallToolResult {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": fmt.Sprintf(format, args...)}})
	return mcpgo.NewToolResultError(string(b))
}

func toolJSON(v any) *mcpgo.CallToolResult {
	b, err := json.Marshal(v)
	if err != nil {
		return toolError("internal_error", "the result could not be encoded")
	}
	return mcpgo.NewToolResultText(string(b))
}

// callOutcome is what a tool call's log entry records.
type callOutcome struct {
	status int
	code   string
}

// countCall refuses a tool call while the budget is suspended or the
// wallet is empty (402), then counts it against the end-user's request
// rate limit. A refusal comes back as a tool error.
func (s *Service) countCall(ctx context.Context, p actors.Principal) (*mcpgo.CallToolResult, callOutcome) {
	if refused, out, code, msg := s.paymentRefusal(ctx, p); refused {
		return toolError(code, "%s", msg), out
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := s.dir.Ask(cctx, actors.EndUserActor(p.Platform, p.EndUser), &pb.CountRequest{})
	if err == nil {
		return nil, callOutcome{}
	}
	var ae *actors.Error
	if errors.As(err, &ae) {
		if errors.Is(err, actors.ErrRateLimited) {
			msg := "the end-user's request rate limit is exhausted"
			if ae.Rate != nil && ae.Rate.RetryAfterMs > 0 {
				msg += "; retry after " + strconv.FormatInt((ae.Rate.RetryAfterMs+999)/1000, 10) + " s"
			}
			return toolError("rate_limited", "%s", msg), callOutcome{429, "rate_limited"}
		}
		return toolError(ae.Code, "%s", ae.Message), callOutcome{403, ae.Code}
	}
	s.log.Error("count tool call", "err", err)
	return toolError("unavailable", "the gateway could not admit the call; retry"), callOutcome{503, "unavailable"}
}

func (s *Service) appHandler(spec *apps.Spec, t apps.Tool) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		r := requestFrom(ctx)
		if r == nil {
			return nil, errors.New("mcp: request without principal")
		}
		start := time.Now()
		res, out := s.runAppTool(ctx, r.p, spec, t, req)
		s.logCall(r.p, spec.Name, t.Def.Name, start, out)
		return res, nil
	}
}

func (s *Service) runAppTool(ctx context.Context, p actors.Principal, spec *apps.Spec, t apps.Tool, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, callOutcome) {
	if res, out := s.countCall(ctx, p); res != nil {
		return res, out
	}
	tok, act, err := s.conns.AccessToken(ctx, p.Platform, p.EndUser, spec.Name)
	switch {
	case errors.Is(err, ErrNotConnected) || errors.Is(err, oauthconn.ErrReconnect):
		why := "has not connected " + spec.Title
		if errors.Is(err, oauthconn.ErrReconnect) {
			why = "must reconnect " + spec.Title + " (the authorization expired or was revoked)"
		}
		return toolError("not_connected", "the end-user %s; connect it with POST /v1/mcp/apps/%s/connect (end-user key), open the returned authorization_url, then retry",
			why, spec.Name), callOutcome{409, "not_connected"}
	case err != nil:
		s.log.Warn("tool token", "app", spec.Name, "err", err)
		return toolError("upstream_error", "could not obtain a token for %s", spec.Title), callOutcome{502, "upstream_error"}
	}
	_, _, base := act.Endpoints(spec)
	c := &apps.Call{Spec: spec, Base: base, AccessToken: tok.AccessToken, AccountID: tok.AccountID,
		SaveAccountID: func(id string) { s.conns.SaveAccountID(p.Platform, p.EndUser, spec.Name, id) },
		HTTP:          s.http, Timeout: s.cfg.CallTimeout, MaxResponseBytes: s.cfg.MaxResponseBytes}
	v, err := t.Run(ctx, c, req)
	var ue *apps.UpstreamError
	switch {
	case err == nil:
		return toolJSON(v), callOutcome{status: 200}
	case errors.Is(err, ErrInvalid):
		return toolError("invalid_arguments", "%s", strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")), callOutcome{400, "invalid_arguments"}
	case errors.As(err, &ue) && ue.Status == http.StatusUnauthorized:
		return toolError("upstream_unauthorized", "%s refused the end-user's authorization (%s); reconnect with POST /v1/mcp/apps/%s/connect", spec.Title, ue.Msg, spec.Name),
			callOutcome{401, "upstream_unauthorized"}
	case errors.As(err, &ue):
		return toolError("upstream_error", "%s answered %d: %s", spec.Title, ue.Status, ue.Msg), callOutcome{ue.Status, "upstream_error"}
	default:
		s.log.Warn("tool call failed", "app", spec.Name, "tool", t.Def.Name, "err", err)
		return toolError("upstream_error", "%s could not be reached", spec.Title), callOutcome{502, "upstream_error"}
	}
}

func (s *Service) logCall(p actors.Principal, app, tool string, start time.Time, out callOutcome) {
	if s.logs == nil {
		return
	}
	if out.status == 0 {
		out.status = 200
	}
	s.logs.Write(logs.Entry{
		RequestID: ids.New(ids.RequestPrefix, start), PlatformID: p.Platform, EndUserID: p.EndUser,
		Kind: logs.KindTool, Provider: app, App: app, Tool: tool,
		StatusCode: out.status, ErrorCode: out.code, Latency: time.Since(start),
	})
}

// OriginAllowed reports whether an MCP request's Origin header may pass:
// absent (a non-browser client), or the origin of Config.PublicURL. The
// transport spec requires 403 for any other (DNS rebinding defence).
func (s *Service) OriginAllowed(origin string) bool {
	if origin == "" {
		return true
	}
	return strings.EqualFold(strings.TrimSuffix(origin, "/"), strings.TrimSuffix(s.cfg.PublicURL, "/"))
}
