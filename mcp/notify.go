package mcp

import (
	"context"
	"net/http"
	"strings"
	"sync"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/ids"
)

// sessionIndex maps each registered MCP session (one an initialize or a
// GET listening stream registered with mcp-go) to its owner (platform and
// end-user), so a change of what a user may see reaches exactly that
// user's sessions. Entries leave with mcp-go's unregistration (DELETE,
// the end of a GET stream, the idle sweeper), so the index is bounded by
// the live sessions. Safe for concurrent use.
type sessionIndex struct {
	mu     sync.Mutex        // guards owners
	owners map[string]string // session id → ownerKey

}

func (x *sessionIndex) add(id, owner string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.owners == nil {
		x.owners = map[string]string{}
	}
	x.owners[id] = owner
}

func (x *sessionIndex) remove(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.owners, id)
}

// match returns the sessions whose owner is owner, or starts with prefix
// when owner is "".
func (x *sessionIndex) match(owner, prefix string) []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []string
	for id, o := range x.owners {
		if o == owner || owner == "" && strings.HasPrefix(o, prefix) {
			out = append(out, id)
		}
	}
	return out
}

// len is how many sessions are indexed (tests).
func (x *sessionIndex) len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.owners)
}

// sessionHooks keeps the index in step with mcp-go's session registry.
func (s *Service) sessionHooks() *server.Hooks {
	h := &server.Hooks{}
	h.AddOnRegisterSession(func(ctx context.Context, sess server.ClientSession) {
		if r := requestFrom(ctx); r != nil && sess.SessionID() != "" {
			s.sessions.add(sess.SessionID(), ownerOf(r.p))
		}
	})
	h.AddOnUnregisterSession(func(_ context.Context, sess server.ClientSession) {
		s.sessions.remove(sess.SessionID())
	})
	return h
}

// toolsChanged sends notifications/tools/list_changed to the sessions whose
// tool list just changed: every session of the platform (eid ""), after
// an app is activated or deactivated, or the end-user's, after a connect
// or disconnect. Delivery is best effort and never blocks: a session
// without a listening stream, or with a full queue, misses it and sees
// the new list on its next tools/list.
func (s *Service) toolsChanged(pid ids.PlatformID, eid ids.EndUserID) {
	var targets []string
	if eid == "" {
		targets = s.sessions.match("", string(pid)+"\x00")
	} else {
		targets = s.sessions.match(ownerKey(pid, eid), "")
	}
	for _, id := range targets {
		_ = s.mcp.SendNotificationToSpecificClient(id, mcpgo.MethodNotificationToolsListChanged, nil)
	}
}

// ownerKey is a session owner: platform and end-user.
func ownerKey(pid ids.PlatformID, eid ids.EndUserID) string {
	return string(pid) + "\x00" + string(eid)
}

// NotifyToolsChanged tells every MCP session of the platform that its
// tool list changed (the edge calls it after skills_enabled changes).
func (s *Service) NotifyToolsChanged(pid ids.PlatformID) { s.toolsChanged(pid, "") }

// count returns how many sessions owner holds.
func (x *sessionIndex) count(owner string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	for _, o := range x.owners {
		if o == owner {
			n++
		}
	}
	return n
}

// OpensSession reports whether an MCP request would open a session: a
// POST holding an initialize request, or a GET without Mcp-Session-Id (a
// listening stream on a fresh session).
func OpensSession(method string, body []byte, sessionID string) bool {
	switch method {
	case http.MethodGet:
		return sessionID == ""
	case http.MethodPost:
		return holdsMethod(body, string(mcpgo.MethodInitialize))
	}
	return false
}

// SessionAllowed reports whether p may open one more MCP session
// (Config.MaxSessionsPerEndUser). Sessions leave the count when deleted,
// when their GET stream ends, or after SessionIdleTTL.
func (s *Service) SessionAllowed(p actors.Principal) bool {
	return s.sessions.count(ownerOf(p)) < s.cfg.MaxSessionsPerEndUser
}
