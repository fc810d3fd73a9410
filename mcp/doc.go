// Package mcp is the gateway's MCP feature home: the MCP server that agents
// reach at /mcp and /mcp/skills (mcp-go, streamable HTTP), the registry of
// OAuth-backed apps (GitHub, Slack, Zoho Mail, Zendesk) with their tools,
// each platform's app activations, and the end-user OAuth connect flow
// (state, PKCE S256, token exchange and refresh) whose tokens the tools use.
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
//
// Deactivating an app range-deletes its connections and bumps the
// activation's epoch; a connection whose epoch differs from its app's is
// void, so a token exchange racing the deactivation cannot revive one.
//
// # Concurrency and imports
//
// A [Service] is safe for concurrent use. Its only goroutines are mcp-go's
// (per stream, and the session sweeper stopped by Close). Two lock
// families, never held together: stateMu serializes consuming a state
// (single use), refreshMu shards serialize token refresh per connection.
// Outbound HTTP goes through an egress-guarded client that follows no
// redirects and bounds time and body size.
//
// mcp imports actors, persistence, logs and internal packages; never edge
// or cmd.
package mcp
