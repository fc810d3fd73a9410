package oauthconn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/mcp/apps"
	"github.com/assistiv/gateway/persistence"
)

// Activation is a platform's configuration of one app (stored as JSON).
type Activation struct {
	App          string   `json:"app"`
	ClientID     string   `json:"client_id"`
	SealedSecret []byte   `json:"sealed_secret"`
	LandingURL   string   `json:"landing_url"`
	Scopes       []string `json:"scopes"`
	Active       bool     `json:"active"`
	AuthorizeURL string   `json:"authorize_url,omitempty"`
	TokenURL     string   `json:"token_url,omitempty"`
	APIBaseURL   string   `json:"api_base_url,omitempty"`
	Subdomain    string   `json:"subdomain,omitempty"`
	// Epoch changes on every deactivation; connections of another epoch
	// are void.
	Epoch       uint64 `json:"epoch"`
	CreatedAtMs int64  `json:"created_at_ms"`
	UpdatedAtMs int64  `json:"updated_at_ms"`
}

func (a *Activation) Endpoints(spec *apps.Spec) (authorize, token, api string) {
	sub := func(s string) string { return strings.ReplaceAll(s, "{subdomain}", a.Subdomain) }
	authorize, token, api = sub(spec.AuthorizeURL), sub(spec.TokenURL), sub(spec.APIBase)
	if a.AuthorizeURL != "" {
		authorize = a.AuthorizeURL
	}
	if a.TokenURL != "" {
		token = a.TokenURL
	}
	if a.APIBaseURL != "" {
		api = strings.TrimSuffix(a.APIBaseURL, "/")
	}
	return authorize, token, api
}

// AppInput is the operator's PUT of one app. Nil fields keep their stored
// value; the client secret is write-only.
type AppInput struct {
	ClientID     *string
	ClientSecret *string
	LandingURL   *string
	Scopes       []string // nil: keep (default scopes on creation)
	Active       *bool
	AuthorizeURL *string // endpoint overrides ("" clears)
	TokenURL     *string
	APIBaseURL   *string
	Subdomain    *string // Zendesk: the customer's subdomain
}

// AppView is what the operator API shows of an activation: never the
// secret, only whether one is set.
type AppView struct {
	App             string   `json:"app"`
	Object          string   `json:"object"`
	Active          bool     `json:"active"`
	Configured      bool     `json:"configured"`
	ClientID        string   `json:"client_id,omitempty"`
	ClientSecretSet bool     `json:"client_secret_set"`
	LandingURL      string   `json:"landing_url,omitempty"`
	Scopes          []string `json:"scopes"`
	AuthorizeURL    string   `json:"authorize_url,omitempty"`
	TokenURL        string   `json:"token_url,omitempty"`
	APIBaseURL      string   `json:"api_base_url,omitempty"`
	Subdomain       string   `json:"subdomain,omitempty"`
	Tools           []string `json:"tools"`
	UpdatedAtMs     int64    `json:"-"`
}

func (m *Manager) view(name string, a *Activation) AppView {
	spec := m.specs[name]
	v := AppView{App: name, Object: "mcp_app", Scopes: spec.DefaultScopes, Tools: spec.ToolNames()}
	if a == nil {
		return v
	}
	v.Active, v.Configured, v.ClientID = a.Active, true, a.ClientID
	v.ClientSecretSet = len(a.SealedSecret) > 0
	v.LandingURL, v.Scopes = a.LandingURL, a.Scopes
	v.AuthorizeURL, v.TokenURL, v.APIBaseURL, v.Subdomain = a.AuthorizeURL, a.TokenURL, a.APIBaseURL, a.Subdomain
	v.UpdatedAtMs = a.UpdatedAtMs
	return v
}

func secretAAD(pid ids.PlatformID, app string) []byte {
	return []byte("mcp_client_secret|" + string(pid) + "|" + app)
}

// loadActivation returns the platform's activation of app, or nil.
func (m *Manager) LoadActivation(pid ids.PlatformID, app string) (*Activation, error) {
	raw, err := m.store.Get(persistence.MCPAppKey(string(pid), app))
	if errors.Is(err, persistence.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var a Activation
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("decode activation %s/%s: %w", pid, app, err)
	}
	return &a, nil
}

// ListApps returns every supported app with the platform's configuration.
func (m *Manager) ListApps(pid ids.PlatformID) ([]AppView, error) {
	out := make([]AppView, 0, len(m.names))
	for _, name := range m.names {
		a, err := m.LoadActivation(pid, name)
		if err != nil {
			return nil, err
		}
		out = append(out, m.view(name, a))
	}
	return out, nil
}

// PutApp creates or updates the platform's activation of app. Turning an
// app inactive revokes every end-user connection to it in the same commit.
// The caller must have checked that the platform exists. Blocks until the
// change is durable.
func (m *Manager) PutApp(ctx context.Context, pid ids.PlatformID, app string, in AppInput) (AppView, error) {
	spec, ok := m.specs[app]
	if !ok {
		return AppView{}, ErrUnknownApp
	}
	unlock, err := m.lockBoth(&m.appMu, "oauth.apps") // serializes read-modify-write of activations
	if err != nil {
		return AppView{}, err
	}
	defer unlock()
	cur, err := m.LoadActivation(pid, app)
	if err != nil {
		return AppView{}, err
	}
	now := m.cfg.Clock.Now().UnixMilli()
	a := Activation{App: app, Scopes: spec.DefaultScopes, CreatedAtMs: now}
	if cur != nil {
		a = *cur
	}
	wasActive := a.Active
	if in.ClientID != nil {
		if err := checkText("client_id", *in.ClientID, 512); err != nil {
			return AppView{}, err
		}
		a.ClientID = *in.ClientID
	}
	if in.ClientSecret != nil {
		if err := checkText("client_secret", *in.ClientSecret, 1024); err != nil {
			return AppView{}, err
		}
		if m.keyring == nil {
			return AppView{}, ErrNoKeyring
		}
		sealed, err := m.keyring.Seal([]byte(*in.ClientSecret), secretAAD(pid, app))
		if err != nil {
			return AppView{}, err
		}
		a.SealedSecret = sealed
	}
	if in.LandingURL != nil {
		if err := m.checkLanding(*in.LandingURL); err != nil {
			return AppView{}, err
		}
		a.LandingURL = strings.TrimSuffix(*in.LandingURL, "/")
	}
	if in.Scopes != nil {
		for _, sc := range in.Scopes {
			if sc == "" || len(sc) > 200 || strings.ContainsAny(sc, " ,\t\r\n") || !utf8.ValidString(sc) {
				return AppView{}, invalidf("scopes must be non-empty tokens without spaces or commas")
			}
		}
		if len(in.Scopes) > 50 {
			return AppView{}, invalidf("at most 50 scopes")
		}
		a.Scopes = append([]string{}, in.Scopes...)
	}
	for _, o := range []struct {
		field string
		in    *string
		out   *string
	}{{"authorize_url", in.AuthorizeURL, &a.AuthorizeURL}, {"token_url", in.TokenURL, &a.TokenURL}, {"api_base_url", in.APIBaseURL, &a.APIBaseURL}} {
		if o.in == nil {
			continue
		}
		if *o.in != "" {
			if err := m.cfg.Egress.CheckURLContext(ctx, *o.in, true); err != nil {
				return AppView{}, invalidf("%s: %v", o.field, err)
			}
		}
		*o.out = *o.in
	}
	if in.Subdomain != nil {
		if !spec.Subdomain && *in.Subdomain != "" {
			return AppView{}, invalidf("subdomain applies only to zendesk")
		}
		if *in.Subdomain != "" && !validSubdomain(*in.Subdomain) {
			return AppView{}, invalidf("subdomain must be letters, digits and hyphens")
		}
		a.Subdomain = *in.Subdomain
	}
	if in.Active != nil {
		a.Active = *in.Active
	}
	if a.Active {
		switch {
		case a.ClientID == "" || len(a.SealedSecret) == 0:
			return AppView{}, invalidf("client_id and client_secret are required to activate %s", app)
		case a.LandingURL == "":
			return AppView{}, invalidf("landing_url is required to activate %s", app)
		case spec.Subdomain && a.Subdomain == "" && (a.AuthorizeURL == "" || a.TokenURL == "" || a.APIBaseURL == ""):
			return AppView{}, invalidf("subdomain is required to activate %s", app)
		}
	}
	a.UpdatedAtMs = now
	ops := []persistence.Op{}
	if wasActive && !a.Active {
		// Deactivation revokes every connection: a range delete now, and a
		// new epoch so a token exchange racing this commit stores a
		// connection that is already void.
		a.Epoch++
		prefix := persistence.MCPConnsPrefix(string(pid), app)
		ops = append(ops, persistence.DeleteRange(prefix, persistence.PrefixEnd(prefix)))
	}
	b, err := json.Marshal(&a)
	if err != nil {
		return AppView{}, err
	}
	ops = append(ops, persistence.Set(persistence.MCPAppKey(string(pid), app), b))
	gate := m.appGate(pid, app) // excludes connection commits (lifecycle.go)
	gate.Lock()
	err = m.store.Commit(ops...)
	gate.Unlock()
	if err != nil {
		return AppView{}, err
	}
	if wasActive != a.Active {
		m.changed(pid, "")
	}
	return m.view(app, &a), nil
}

func (m *Manager) checkLanding(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return invalidf("landing_url must be an absolute URL without query or fragment")
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && m.cfg.Egress.AllowPrivate) {
		return invalidf("landing_url must use https")
	}
	return nil
}

func checkText(field, v string, max int) error {
	if v == "" {
		return invalidf("%s must not be empty", field)
	}
	if len(v) > max || !utf8.ValidString(v) {
		return invalidf("%s must be valid UTF-8 of at most %d bytes", field, max)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return invalidf("%s contains control characters", field)
		}
	}
	return nil
}

func validSubdomain(s string) bool {
	if len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// UserApp is one app as an end-user sees it: whether the platform offers
// it and whether this user connected it.
type UserApp struct {
	App         string   `json:"app"`
	Object      string   `json:"object"`
	Title       string   `json:"title"`
	Active      bool     `json:"active"`
	Connected   bool     `json:"connected"`
	ConnectedAt *string  `json:"connected_at"`
	Scopes      []string `json:"scopes"`
	Tools       []string `json:"tools"`
}

// UserApps lists the apps the platform activated with the end-user's
// connection state.
func (m *Manager) UserApps(pid ids.PlatformID, eid ids.EndUserID) ([]UserApp, error) {
	out := []UserApp{}
	for _, name := range m.names {
		a, err := m.LoadActivation(pid, name)
		if err != nil {
			return nil, err
		}
		if a == nil || !a.Active {
			continue
		}
		spec := m.specs[name]
		u := UserApp{App: name, Object: "mcp_app", Title: spec.Title, Active: true, Scopes: a.Scopes, Tools: spec.ToolNames()}
		c, err := m.loadConnection(pid, eid, name, a)
		if err != nil {
			return nil, err
		}
		if c != nil {
			u.Connected = true
			t := m.fmtTime(c.ConnectedAtMs)
			u.ConnectedAt = &t
		}
		out = append(out, u)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].App < out[j].App })
	return out, nil
}
