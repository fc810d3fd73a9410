// Package mcp is the gateway's MCP server: what agents reach at /mcp and
// /mcp/skills (mcp-go, streamable HTTP) and its tool registry. The tools
// are the OAuth-backed apps' (GitHub, Slack, Zoho Mail, Zendesk; each app's
// client lives in mcp/apps/<app> over the base mcp/apps) and the skill
// catalog's (package skills). Activations, the connect flow and the
// connections whose tokens the tools use are package oauthconn; this
// package exposes them to the edge under the same names (conns.go).
//
// # Who sees what
//
// The edge authenticates the end-user key before any MCP exchange and hands
// [Service.ServeMCP] the principal. Every tool is registered once on one
// MCPServer; a tool filter (server.WithToolFilter, which mcp-go also
// enforces on tools/call) shows a request only the tools of apps its
// platform activated and its end-user connected, plus the skill tools when
// the platform has skills_enabled. A tools/call of a tool whose app is
// active but not connected reaches its handler, which answers the tool
// error not_connected saying how to connect; a tool of an inactive app is
// "not found" (JSON-RPC -32602), exactly like a tool that does not exist.
//
// Session ids are bound to their principal (an HMAC over platform and
// end-user), so one user's session id is refused for another.
//
// # Stateless and session modes
//
// A POST without Mcp-Session-Id (the spec's bare
// {"jsonrpc":"2.0","id":1,"method":"tools/list"}, no initialize) is served
// statelessly: mcp-go gives it a session that lives for that request only,
// and the answer is one JSON-RPC object. Clients that initialize get a
// session id as before and may open a GET listening stream, on which
// notifications/tools/list_changed arrives when an app is activated or
// deactivated (every session of the platform), connected or disconnected
// (the end-user's sessions), or skills_enabled changes (notify.go).
//
// # Payment
//
// A tools/call is refused with HTTP 402 (budget_suspended or
// wallet_insufficient) while the end-user's budget is suspended or the
// platform's wallet holds nothing beyond its open reservations; the
// handlers check again (tool error with the same code) for calls racing
// the change (payment.go).
//
// # Skills
//
// The five skill tools (skilltools.go: find_skill, fetch_skill,
// create_skill, delete_skill, submit_skill_review) are listed only when
// the platform has skills_enabled, on /mcp and /mcp/skills alike: with it
// off, /mcp/skills still initializes but lists no tools, and calling one
// is "tool not found". Another platform's private skill is the tool error
// not_found. The REST routes (the edge) do not depend on the flag.
//
// # Concurrency and imports
//
// A [Service] is safe for concurrent use. Its goroutines are mcp-go's (per
// stream, and the session sweeper) and oauthconn's pending sweeper, all
// stopped by Close. The session index has its own mutex. Outbound HTTP
// goes through an egress-guarded client that follows no redirects and
// bounds time and body size.
//
// mcp imports actors, persistence, oauthconn, skills, mcp/apps/..., logs
// and internal packages; never edge or cmd.
package mcp
