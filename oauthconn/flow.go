package oauthconn

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/mcp/apps"
	"github.com/assistiv/gateway/persistence"
)

// pendingAuth is an authorization in progress, keyed by the digest of its
// state (stored as JSON).
type pendingAuth struct {
	// Kind is "" for an authorization in progress (the key is the state's
	// digest) or kindGrant for an exchanged grant awaiting confirmation
	// (confirm.go; SealedVerifier then holds the sealed grant).
	Kind           string `json:"kind,omitempty"`
	PlatformID     string `json:"platform_id"`
	EndUserID      string `json:"end_user_id"`
	App            string `json:"app"`
	Epoch          uint64 `json:"epoch"`
	SealedVerifier []byte `json:"sealed_verifier"`
	// Current is, in a flow pointer (kind "flow" or "gflow"), the hex key
	// of the flow's current pending record (pending.go).
	Current     string `json:"current,omitempty"`
	CreatedAtMs int64  `json:"created_at_ms"`
	ExpiresAtMs int64  `json:"expires_at_ms"`
}

func verifierAAD(digest []byte) []byte { return []byte("oauth_verifier|" + hex.EncodeToString(digest)) }

func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("oauthconn: crypto/rand failed: " + err.Error()) // broken invariant: no randomness
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Connect starts the authorization of app for the end-user: it stores a
// single-use state (256 random bits, expiring after Config.StateTTL,
// bound to platform, end-user and app) with a PKCE verifier, and returns
// the authorization server URL to send the user's browser to.
func (m *Manager) Connect(ctx context.Context, pid ids.PlatformID, eid ids.EndUserID, app string) (string, error) {
	spec, ok := m.specs[app]
	if !ok {
		return "", ErrUnknownApp
	}
	act, err := m.LoadActivation(pid, app)
	if err != nil {
		return "", err
	}
	if act == nil || !act.Active {
		return "", ErrAppNotActive
	}
	if m.keyring == nil {
		return "", ErrNoKeyring
	}
	state := randomToken(32)
	verifier := randomToken(32) // 43 characters, RFC 7636 §4.1
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	digest := sha256.Sum256([]byte(state))
	sealed, err := m.keyring.Seal([]byte(verifier), verifierAAD(digest[:]))
	if err != nil {
		return "", err
	}
	now := m.cfg.Clock.Now()
	p := pendingAuth{PlatformID: string(pid), EndUserID: string(eid), App: app, Epoch: act.Epoch,
		SealedVerifier: sealed, CreatedAtMs: now.UnixMilli(), ExpiresAtMs: now.Add(m.cfg.StateTTL).UnixMilli()}
	if err := m.replacePending(persistence.OAuthStateKey(digest[:]), p); err != nil {
		return "", err
	}
	authorize, _, _ := act.Endpoints(spec)
	u, err := url.Parse(authorize)
	if err != nil {
		return "", fmt.Errorf("authorize URL of %s: %w", app, err)
	}
	q := u.Query()
	q.Set("response_type", "code")
	q.Set("client_id", act.ClientID)
	q.Set("redirect_uri", m.cfg.RedirectURI())
	if len(act.Scopes) > 0 {
		q.Set(spec.ScopeParam, strings.Join(act.Scopes, spec.ScopeSep))
	}
	q.Set("state", state)
	q.Set("code_challenge", challenge)
	q.Set("code_challenge_method", "S256")
	for k, v := range spec.ExtraAuth {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// CallbackResult says where to send the browser after the callback.
type CallbackResult struct {
	// Redirect is {landing_url}/mcp/oauth-callback?app=...&status=...
	// (status=confirm with a confirmation token, or status=error).
	Redirect string
	App      string
	// Connected is true when the grant was obtained and awaits the
	// starting end-user's confirmation; false when the authorization
	// server refused or the exchange failed (status=error).
	Connected bool
}

// consumeState deletes the pending authorization of state and returns it.
// A state is usable once: concurrent callbacks with one state serialize
// here and all but the first find nothing.
func (m *Manager) consumeState(state string) (*pendingAuth, []byte, error) {
	if state == "" || len(state) > 256 {
		return nil, nil, ErrInvalidState
	}
	digest := sha256.Sum256([]byte(state))
	p, err := m.consumePending(persistence.OAuthStateKey(digest[:]), "")
	if err != nil {
		return nil, nil, err
	}
	return p, digest[:], nil
}

// consumePending deletes the pending record at key and returns it when it
// is of kind and not expired (ErrInvalidState otherwise). Consuming is
// serialized: concurrent uses of one record find it once.
func (m *Manager) consumePending(key []byte, kind string) (*pendingAuth, error) {
	unlock, err := m.lockBoth(&m.stateMu, "oauth.state")
	if err != nil {
		return nil, err
	}
	defer unlock()
	raw, err := m.store.Get(key)
	if errors.Is(err, persistence.ErrNotFound) {
		return nil, ErrInvalidState
	}
	if err != nil {
		return nil, err
	}
	var p pendingAuth
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("decode pending authorization: %w", err)
	}
	if p.Kind != kind {
		return nil, ErrInvalidState // left in place: it is not this flow's
	}
	if err := m.store.Commit(persistence.Delete(key)); err != nil {
		return nil, err
	}
	if m.cfg.Clock.Now().UnixMilli() >= p.ExpiresAtMs {
		return nil, ErrInvalidState
	}
	return &p, nil
}

// Callback completes an authorization: it consumes state, exchanges code
// at the app's token endpoint with the PKCE verifier and the exact
// redirect_uri, and holds the tokens sealed until the end-user who
// started the flow confirms (see confirm.go). An unknown, used or expired
// state answers ErrInvalidState (there is no landing URL to go back to);
// any later failure redirects with status=error. authError is the
// authorization server's error parameter, if any.
func (m *Manager) Callback(ctx context.Context, code, state, authError string) (CallbackResult, error) {
	p, digest, err := m.consumeState(state)
	if err != nil {
		return CallbackResult{}, err
	}
	pid := ids.PlatformID(p.PlatformID)
	act, err := m.LoadActivation(pid, p.App)
	if err != nil {
		return CallbackResult{}, err
	}
	if act == nil || !act.Active || act.Epoch != p.Epoch {
		return CallbackResult{}, fmt.Errorf("%w: the app was deactivated", ErrInvalidState)
	}
	res := CallbackResult{App: p.App, Redirect: landing(act.LandingURL, p.App, "error")}
	if authError != "" || code == "" || len(code) > 2048 {
		return res, nil
	}
	verifier, err := m.keyring.Open(p.SealedVerifier, verifierAAD(digest))
	if err != nil {
		return CallbackResult{}, err
	}
	spec := m.specs[p.App]
	tok, err := m.tokenRequest(ctx, spec, act, pid, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {m.cfg.RedirectURI()},
		"code_verifier": {string(verifier)},
	})
	if err != nil {
		m.log.Warn("oauth code exchange failed", "platform_id", pid, "app", p.App, "err", err)
		return res, nil
	}
	// The grant waits for the starting end-user's confirmation
	// (confirm.go): the callback links nothing by itself. A deactivation
	// during the exchange voids it (the epoch is checked again here and at
	// confirmation).
	gate := m.appGate(pid, p.App)
	gate.RLock()
	cur, err := m.LoadActivation(pid, p.App)
	if err == nil && (cur == nil || !cur.Active || cur.Epoch != act.Epoch) {
		gate.RUnlock()
		return res, nil
	}
	var redirect string
	if err == nil {
		redirect, err = m.holdGrant(p, act, tok)
	}
	gate.RUnlock()
	if err != nil {
		return CallbackResult{}, err
	}
	res.Redirect, res.Connected = redirect, true
	return res, nil
}

func landing(base, app, status string) string {
	return base + "/mcp/oauth-callback?" + url.Values{"app": {app}, "status": {status}}.Encode()
}

// grant is a token endpoint's answer.
type grant struct {
	access, refresh, scope string
	expiresIn              time.Duration
}

// errTokenEndpoint is a refusal by the token endpoint; its text never
// carries a token.
type errTokenEndpoint struct {
	status int
	code   string
}

func (e *errTokenEndpoint) Error() string {
	return fmt.Sprintf("token endpoint answered %d %s", e.status, e.code)
}

// tokenRequest posts form (plus the client credentials) to the app's token
// endpoint and parses the grant, including Slack's authed_user shape and
// GitHub's errors inside a 200.
func (m *Manager) tokenRequest(ctx context.Context, spec *apps.Spec, act *Activation, pid ids.PlatformID, form url.Values) (grant, error) {
	secret, err := m.keyring.Open(act.SealedSecret, secretAAD(pid, act.App))
	if err != nil {
		return grant{}, err
	}
	form.Set("client_id", act.ClientID)
	form.Set("client_secret", string(secret))
	_, tokenURL, _ := act.Endpoints(spec)
	var body io.Reader
	ctype := "application/x-www-form-urlencoded"
	if spec.JSONToken {
		m := map[string]string{}
		for k := range form {
			m[k] = form.Get(k)
		}
		b, _ := json.Marshal(m)
		body, ctype = bytes.NewReader(b), "application/json"
	} else {
		body = strings.NewReader(form.Encode())
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.CallTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, body)
	if err != nil {
		return grant{}, fmt.Errorf("token request: %w", apps.ScrubURLError(err))
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Accept", "application/json")
	resp, err := m.http.Do(req)
	if err != nil {
		return grant{}, apps.ScrubURLError(err)
	}
	defer resp.Body.Close()
	raw, err := apps.ReadBounded(resp.Body, m.cfg.MaxResponseBytes)
	if err != nil {
		return grant{}, err
	}
	var out struct {
		OK           *bool            `json:"ok"`
		Error        string           `json:"error"`
		AccessToken  string           `json:"access_token"`
		RefreshToken string           `json:"refresh_token"`
		ExpiresIn    json.Number      `json:"expires_in"`
		Scope        string           `json:"scope"`
		AuthedUser   *json.RawMessage `json:"authed_user"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return grant{}, &errTokenEndpoint{status: resp.StatusCode, code: "malformed_response"}
	}
	if resp.StatusCode != http.StatusOK || out.Error != "" || (out.OK != nil && !*out.OK) {
		code := out.Error
		if code == "" {
			code = "http_" + strconv.Itoa(resp.StatusCode)
		}
		return grant{}, &errTokenEndpoint{status: resp.StatusCode, code: apps.SafeCode(code)}
	}
	g := grant{access: out.AccessToken, refresh: out.RefreshToken, scope: out.Scope}
	if n, err := out.ExpiresIn.Int64(); err == nil && n > 0 {
		g.expiresIn = time.Duration(n) * time.Second
	}
	if out.AuthedUser != nil {
		// Slack: the tools act as the user, so the user token wins.
		var u struct {
			AccessToken  string      `json:"access_token"`
			RefreshToken string      `json:"refresh_token"`
			ExpiresIn    json.Number `json:"expires_in"`
			Scope        string      `json:"scope"`
		}
		if json.Unmarshal(*out.AuthedUser, &u) == nil && u.AccessToken != "" {
			g = grant{access: u.AccessToken, refresh: u.RefreshToken, scope: u.Scope}
			if n, err := u.ExpiresIn.Int64(); err == nil && n > 0 {
				g.expiresIn = time.Duration(n) * time.Second
			}
		}
	}
	if g.access == "" {
		return grant{}, &errTokenEndpoint{status: resp.StatusCode, code: "no_access_token"}
	}
	return g, nil
}

// ErrReconnect means the stored grant no longer works: the user must
// connect again.
var ErrReconnect = errors.New("oauthconn: the connection expired; connect the app again")

// accessToken returns a usable access token of (pid, eid) for app,
// refreshing it first when it expires within Config.RefreshSkew. Refreshes
// of one connection serialize, so a rotating refresh token is used once.
func (m *Manager) AccessToken(ctx context.Context, pid ids.PlatformID, eid ids.EndUserID, app string) (Tokens, *Activation, error) {
	act, err := m.LoadActivation(pid, app)
	if err != nil {
		return Tokens{}, nil, err
	}
	c, err := m.loadConnection(pid, eid, app, act)
	if err != nil || c == nil {
		return Tokens{}, act, errors.Join(err, ErrNotConnected)
	}
	if !m.expiring(c) {
		t, err := m.openTokens(pid, eid, c)
		return t, act, err
	}
	// Across nodes refreshes of one connection may run at once: the
	// second's commit finds a newer revision (errStale), or its refresh
	// token refused and the newer grant kept (removeConnection onlyRev).
	mu := m.refreshLock(pid, eid, app)
	mu.Lock()
	defer mu.Unlock()
	// Another call may have refreshed while this one waited.
	if c, err = m.loadConnection(pid, eid, app, act); err != nil || c == nil {
		return Tokens{}, act, errors.Join(err, ErrNotConnected)
	}
	t, err := m.openTokens(pid, eid, c)
	if err != nil || !m.expiring(c) {
		return t, act, err
	}
	if t.RefreshToken == "" {
		return Tokens{}, act, ErrReconnect
	}
	g, err := m.tokenRequest(ctx, m.specs[app], act, pid, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {t.RefreshToken},
	})
	var te *errTokenEndpoint
	if errors.As(err, &te) && definitiveRefusal(te) {
		if removed, _ := m.removeConnection(pid, eid, app, c.Rev); removed {
			m.changed(pid, eid)
		}
		return Tokens{}, act, ErrReconnect
	}
	if err != nil {
		return Tokens{}, act, err // transient (429, 5xx, network): the connection stays
	}
	now := m.cfg.Clock.Now()
	t.AccessToken = g.access
	if g.refresh != "" {
		t.RefreshToken = g.refresh
	}
	c.ExpiresAtMs, c.RefreshedAtMs = 0, now.UnixMilli()
	if g.expiresIn > 0 {
		c.ExpiresAtMs = now.Add(g.expiresIn).UnixMilli()
	}
	if g.scope != "" {
		c.Scope = g.scope
	}
	switch err := m.commitConnection(pid, eid, c, t, false, c.Rev); {
	case errors.Is(err, errStale):
		// Disconnected, reconnected or deactivated while the token request
		// ran: the refreshed grant is dropped, never stored.
		return Tokens{}, act, ErrNotConnected
	case err != nil:
		return Tokens{}, act, err
	}
	return t, act, nil
}

func (m *Manager) expiring(c *connection) bool {
	return c.ExpiresAtMs != 0 && m.cfg.Clock.Now().Add(m.cfg.RefreshSkew).UnixMilli() >= c.ExpiresAtMs
}

// saveAccountID caches an app account id in the sealed token set.
func (m *Manager) SaveAccountID(pid ids.PlatformID, eid ids.EndUserID, app, account string) {
	act, err := m.LoadActivation(pid, app)
	if err != nil {
		return
	}
	mu := m.refreshLock(pid, eid, app)
	mu.Lock()
	defer mu.Unlock()
	c, err := m.loadConnection(pid, eid, app, act)
	if err != nil || c == nil {
		return
	}
	t, err := m.openTokens(pid, eid, c)
	if err != nil {
		return
	}
	t.AccountID = account
	_ = m.commitConnection(pid, eid, c, t, false, c.Rev) // errStale: the connection changed; nothing to cache
}
