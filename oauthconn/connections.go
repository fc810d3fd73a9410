package oauthconn

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/persistence"
)

// connection is one end-user's OAuth grant for one app (stored as JSON).
type connection struct {
	App           string `json:"app"`
	Epoch         uint64 `json:"epoch"`
	SealedTokens  []byte `json:"sealed_tokens"` // Tokens JSON, sealed
	ExpiresAtMs   int64  `json:"expires_at_ms"` // 0: does not expire
	Scope         string `json:"scope,omitempty"`
	ConnectedAtMs int64  `json:"connected_at_ms"`
	RefreshedAtMs int64  `json:"refreshed_at_ms,omitempty"`
	// Rev counts the connection's transitions (see lifecycle.go).
	Rev uint64 `json:"rev"`
}

// Tokens is what a connection seals.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	// AccountID caches an app-specific account id (Zoho Mail's accountId).
	AccountID string `json:"account_id,omitempty"`
}

func tokensAAD(pid ids.PlatformID, eid ids.EndUserID, app string) []byte {
	return []byte("mcp_tokens|" + string(pid) + "|" + string(eid) + "|" + app)
}

// loadConnection returns the live connection of (pid, eid) to app, or nil
// when there is none or it belongs to an earlier activation epoch. act is
// the app's current activation (nil: none).
func (m *Manager) loadConnection(pid ids.PlatformID, eid ids.EndUserID, app string, act *Activation) (*connection, error) {
	if act == nil || !act.Active {
		return nil, nil
	}
	raw, err := m.store.Get(persistence.MCPConnKey(string(pid), app, string(eid)))
	if errors.Is(err, persistence.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c connection
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("decode connection: %w", err)
	}
	if c.Epoch != act.Epoch {
		return nil, nil
	}
	return &c, nil
}

func (m *Manager) openTokens(pid ids.PlatformID, eid ids.EndUserID, c *connection) (Tokens, error) {
	var t Tokens
	if m.keyring == nil {
		return t, ErrNoKeyring
	}
	plain, err := m.keyring.Open(c.SealedTokens, tokensAAD(pid, eid, c.App))
	if err != nil {
		return t, err
	}
	err = json.Unmarshal(plain, &t)
	return t, err
}

func (m *Manager) saveConnection(pid ids.PlatformID, eid ids.EndUserID, c *connection, t Tokens) error {
	plain, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if c.SealedTokens, err = m.keyring.Seal(plain, tokensAAD(pid, eid, c.App)); err != nil {
		return err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return m.store.Commit(persistence.Set(persistence.MCPConnKey(string(pid), c.App, string(eid)), b))
}

// Disconnect deletes the end-user's connection to app (idempotent). It
// never waits for a token request in flight: a refresh that read the
// connection before stores nothing (see lifecycle.go).
func (m *Manager) Disconnect(pid ids.PlatformID, eid ids.EndUserID, app string) error {
	if _, ok := m.specs[app]; !ok {
		return ErrUnknownApp
	}
	if _, err := m.removeConnection(pid, eid, app, 0); err != nil {
		return err
	}
	m.changed(pid, eid)
	return nil
}
