// Package mcp is the gateway's MCP feature home: the MCP server that agents
// reach at /mcp and /mcp/skills (mcp-go, streamable HTTP), the registry of
// OAuth-backed apps (GitHub, Slack, Zoho Mail, Zendesk; each app's client
// and tools live in mcp/apps/<app> over the base mcp/apps), each
// platform's app activations, and the end-user OAuth connect flow (state,
// PKCE S256, token exchange and refresh, confirmation) whose tokens the
// tools use. The skill catalog is package skills.
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
// # Connection lifecycle and the connect flow
//
// A connection is one serialized state machine (lifecycle.go): commits
// under its mutex with compare-and-set on a revision, deactivation
// excluding connection commits through the app's gate, refreshes
// serialized per connection. A disconnect during a refresh wins; a
// deactivation during a token exchange stores nothing; a refresh answered
// 429 or 5xx keeps the connection (only a definitive refusal such as
// invalid_grant removes it).
//
// The callback never links an account by itself (confirm.go): it holds
// the exchanged grant, sealed and single use, and sends the browser to the
// platform's landing URL with status=confirm and a confirmation token;
// the platform's back end completes it with POST
// /v1/mcp/apps/{app}/connect/confirm and the signed-in end-user's key. A
// key other than the one that started the flow answers 403
// connection_user_mismatch and destroys the grant, so the authorization
// URL is not a bearer link.
//
// Pending records (0x42) are bounded: one authorization and one
// unconfirmed grant per end-user and app (a new one replaces the old), all
// expiring after Config.StateTTL and deleted by the sweeper (pending.go).
//
// # Secrets
//
// Client secrets, OAuth tokens and PKCE verifiers are sealed with
// internal/secrets (AES-256-GCM). The additional data names the record:
//
//	mcp_client_secret|<platform>|<app>
//	mcp_tokens|<platform>|<end-user>|<app>
//	oauth_verifier|<hex sha256(state)>
//
// so a sealed value moved to another tenant, user or app fails to open.
// States are stored under their SHA-256 digest; the raw state, tokens and
// secrets never reach the disk, a response or a log in clear.
//
// # Keys (values are JSON, owned by this package)
//
//	0x40 platformID 0x00 app                → activation
//	0x41 platformID 0x00 app 0x00 endUserID → connection
//	0x42 sha256(state)                      → pending authorization
//	0x42 sha256("confirm|" token)           → grant awaiting confirmation
//	0x42 sha256("flow|"/"gflow|" owner app) → pointer to the current one
//
// Deactivating an app range-deletes its connections and bumps the
// activation's epoch; a connection whose epoch differs from its app's is
// void, so a token exchange racing the deactivation cannot revive one.
//
// # Skills
//
// The skill catalog is package skills (records, sealed blobs, archive
// checks, quotas); this package serves it as five tools (skilltools.go:
// find_skill, fetch_skill, create_skill, delete_skill,
// submit_skill_review), listed only when the platform has
// skills_enabled, on /mcp and /mcp/skills alike: with it off, /mcp/skills
// still initializes but lists no tools, and calling one is "tool not
// found". Another platform's private skill is the tool error not_found.
// The REST routes (the edge) do not depend on the flag.
//
// # Concurrency and imports
//
// A [Service] is safe for concurrent use. Its goroutines are mcp-go's
// (per stream, and the session sweeper) and the pending-authorization
// sweeper, all stopped by Close. Locks: appMu → appGate → connMu (the
// connection lifecycle, lifecycle.go), refreshMu held across a token
// request and taken before either gate; stateMu (pending records) is
// never held with another. The skill catalog has its own lock (package
// skills).
// Outbound HTTP goes through an egress-guarded client that follows no
// redirects and bounds time and body size.
//
// mcp imports actors, persistence, skills, mcp/apps/..., logs and
// internal packages; never edge or cmd.
package mcp
