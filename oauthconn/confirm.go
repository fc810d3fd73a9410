package oauthconn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/persistence"
)

// The connect flow is bound to the end-user who started it.
//
// Threat: the authorization URL that POST /v1/mcp/apps/{app}/connect
// returns is a bearer link. An attacker who starts a flow with their own
// end-user key and gets a victim to open the URL would, if the callback
// stored the grant, link the victim's GitHub (Slack, ...) account to the
// attacker's end-user, and then act as the victim through the tools.
//
// Defence: the callback never stores a connection. It exchanges the code
// (codes expire within minutes) and keeps the grant sealed as a pending
// confirmation, single use, expiring after Config.StateTTL, then sends
// the browser to the platform's landing URL with status=confirm and a
// confirmation token. The platform's front end, where the user is signed
// in, has its back end call POST /v1/mcp/apps/{app}/connect/confirm with
// that user's end-user key and the token. The grant becomes a connection
// only when that key is the end-user who started the flow; any other key
// answers 403 connection_user_mismatch and the grant is destroyed, so the
// victim's account is never linked to the attacker. The token alone is
// useless without the starting user's key, and it is consumed on first
// use. The landing page should drop the token from its URL after use.

// ErrConfirmMismatch: a confirmation presented by an end-user other than
// the one who started the connect flow. The pending grant is destroyed.
var ErrConfirmMismatch = errors.New("oauthconn: the connection was started by another end-user")

// kindGrant marks a pending record that holds an exchanged grant awaiting
// confirmation (a plain pending authorization has kind "").
const kindGrant = "grant"

func confirmDigest(token string) []byte {
	d := sha256.Sum256([]byte("confirm|" + token))
	return d[:]
}

func grantAAD(digest []byte) []byte { return []byte("mcp_grant|" + hex.EncodeToString(digest)) }

// pendingGrant is what a grant awaiting confirmation seals.
type pendingGrant struct {
	Access, Refresh, Scope string
	ExpiresInSec           int64
}

// holdGrant stores an exchanged grant for confirmation and returns the
// landing redirect carrying the confirmation token.
func (m *Manager) holdGrant(p *pendingAuth, act *Activation, tok grant) (string, error) {
	token := randomToken(32)
	digest := confirmDigest(token)
	plain, err := json.Marshal(pendingGrant{Access: tok.access, Refresh: tok.refresh, Scope: tok.scope, ExpiresInSec: int64(tok.expiresIn.Seconds())})
	if err != nil {
		return "", err
	}
	sealed, err := m.keyring.Seal(plain, grantAAD(digest))
	if err != nil {
		return "", err
	}
	now := m.cfg.Clock.Now()
	rec := pendingAuth{Kind: kindGrant, PlatformID: p.PlatformID, EndUserID: p.EndUserID, App: p.App, Epoch: act.Epoch,
		SealedVerifier: sealed, CreatedAtMs: now.UnixMilli(), ExpiresAtMs: now.Add(m.cfg.StateTTL).UnixMilli()}
	if err := m.replacePending(persistence.OAuthStateKey(digest), rec); err != nil {
		return "", err
	}
	return act.LandingURL + "/mcp/oauth-callback?" + url.Values{"app": {p.App}, "status": {"confirm"}, "confirmation": {token}}.Encode(), nil
}

// Confirm completes a connect flow: the end-user (pid, eid) presents the
// confirmation token its platform's landing page received. The token is
// single use. ErrInvalidState: unknown, used or expired;
// ErrConfirmMismatch: another end-user (or app) started the flow.
func (m *Manager) Confirm(_ context.Context, pid ids.PlatformID, eid ids.EndUserID, app, token string) error {
	if _, ok := m.specs[app]; !ok {
		return ErrUnknownApp
	}
	if token == "" || len(token) > 256 {
		return ErrInvalidState
	}
	digest := confirmDigest(token)
	p, err := m.consumePending(persistence.OAuthStateKey(digest), kindGrant)
	if err != nil {
		return err
	}
	if p.PlatformID != string(pid) || p.EndUserID != string(eid) || p.App != app {
		m.log.Warn("oauth confirmation by another end-user refused; grant destroyed", "platform_id", pid, "app", app)
		return ErrConfirmMismatch
	}
	plain, err := m.keyring.Open(p.SealedVerifier, grantAAD(digest))
	if err != nil {
		return err
	}
	var g pendingGrant
	if err := json.Unmarshal(plain, &g); err != nil {
		return fmt.Errorf("decode pending grant: %w", err)
	}
	now := m.cfg.Clock.Now()
	c := &connection{App: app, Epoch: p.Epoch, Scope: g.Scope, ConnectedAtMs: now.UnixMilli()}
	if g.ExpiresInSec > 0 {
		c.ExpiresAtMs = now.UnixMilli() + g.ExpiresInSec*1000
	}
	switch err := m.commitConnection(pid, eid, c, Tokens{AccessToken: g.Access, RefreshToken: g.Refresh}, true, 0); {
	case errors.Is(err, errStale):
		return ErrAppNotActive // deactivated since the callback
	case err != nil:
		return err
	}
	m.changed(pid, eid)
	return nil
}
