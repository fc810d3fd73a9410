// Package oauthconn is the OAuth side of the MCP apps: each platform's
// app activations (client credentials sealed), the end-user connect flow
// (state, PKCE S256, code exchange, confirmation by the end-user who
// started it), and the connections' lifecycle (token refresh,
// disconnect, deactivation) as one serialized state machine. Package mcp
// serves the tools that use the tokens; the edge serves the REST routes
// through mcp.
//
// # Secrets
//
// Client secrets, OAuth tokens, PKCE verifiers and held grants are sealed
// with internal/secrets (AES-256-GCM). The additional data names the
// record:
//
//	mcp_client_secret|<platform>|<app>
//	mcp_tokens|<platform>|<end-user>|<app>
//	oauth_verifier|<hex sha256(state)>
//	mcp_grant|<hex sha256("confirm|" token)>
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
// void. lifecycle.go describes the state machine, confirm.go the connect
// flow's binding to its end-user (and the threat it answers), pending.go
// the bounds on pending records.
//
// # Concurrency and imports
//
// A [Manager] is safe for concurrent use; its one goroutine (the pending
// sweeper) stops in Close. Locks: appMu → appGate → connMu; refreshMu is
// held across a token request and taken before either gate; stateMu
// (pending records) is never held with another. When the store is a
// [Locker] (records shared by a cluster's nodes), appMu, connMu and
// stateMu are each followed by a cross-node lock of the same scope
// ("oauth.apps", "oauth.conn/…", "oauth.state"), taken right after the
// mutex and released with it; the order stays the same. oauthconn imports
// persistence, mcp/apps (the app specs) and internal packages only.
package oauthconn

import (
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/egress"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/secrets"
	"github.com/assistiv/gateway/mcp/apps"
	"github.com/assistiv/gateway/persistence"
)

// Config configures a [Manager]. The caller (package mcp) validates it.
type Config struct {
	// PublicURL is the gateway's externally visible base URL; the OAuth
	// redirect_uri is PublicURL + "/oauth/callback".
	PublicURL string
	// Egress guards the endpoint overrides checked at activation.
	Egress egress.Policy
	// StateTTL bounds a pending authorization and a held grant.
	StateTTL time.Duration
	// CallTimeout bounds one token request.
	CallTimeout time.Duration
	// MaxResponseBytes bounds a token endpoint's answer.
	MaxResponseBytes int64
	// RefreshSkew refreshes access tokens this long before they expire.
	RefreshSkew time.Duration
	// SweepInterval is how often expired pending records are deleted.
	SweepInterval time.Duration
	// Clock tells the time (state and token expiry).
	Clock clock.Clock
	// Logger receives operational messages.
	Logger *slog.Logger
}

// RedirectURI returns the OAuth redirect_uri for PublicURL.
func (c Config) RedirectURI() string {
	return strings.TrimSuffix(c.PublicURL, "/") + "/oauth/callback"
}

// Records is the store a [Manager] keeps its records in, with
// [persistence.Store]'s meanings ([persistence.ErrNotFound], atomic and
// durable Commit): a lone node's Pebble store, or in a cluster the
// records every node shares (cluster.Shared), so that a connection made
// through one node (and a flow started on one node and called back on
// another) is seen by all.
type Records interface {
	Get(key []byte) ([]byte, error)
	Commit(ops ...persistence.Op) error
	ScanPrefix(prefix []byte, reverse bool, fn func(k, v []byte) bool) error
}

// Locker is an optional capability of a Records shared by several nodes
// (cluster.Shared): Lock takes the lock called name for every node that
// uses the same records, waiting a bounded time, and returns its
// release. A lone node's store has none: the package's mutex suffices.
type Locker interface {
	Lock(name string) (unlock func(), err error)
}

// lockBoth takes mu and, when the store is a [Locker], the lock called
// name across nodes; it returns their release.
func (m *Manager) lockBoth(mu *sync.Mutex, name string) (func(), error) {
	mu.Lock()
	l, ok := m.store.(Locker)
	if !ok {
		return mu.Unlock, nil
	}
	unlock, err := l.Lock(name)
	if err != nil {
		mu.Unlock()
		return nil, err
	}
	return func() { unlock(); mu.Unlock() }, nil
}

// Manager holds activations, connect flows and connections. Safe for
// concurrent use.
type Manager struct {
	cfg     Config
	store   Records
	keyring *secrets.Keyring
	http    *http.Client
	log     *slog.Logger
	specs   map[string]*apps.Spec
	names   []string // the apps in registration order
	changed func(ids.PlatformID, ids.EndUserID)

	appMu   sync.Mutex // guards read-modify-write of activations
	stateMu sync.Mutex // serializes consuming and replacing pending records
	locks   lifecycleLocks

	closeOnce sync.Once
	stopSweep chan struct{}
	swept     chan struct{}
}

// New returns a manager over store for the apps in specs (listed in that
// order) and starts its
// sweeper. client makes the token requests (egress-guarded, no
// redirects). changed, when not nil, is told after an activation changes
// (end-user "") or an end-user connects or disconnects; it must not block.
// keyring nil: activation with a secret and connecting answer ErrNoKeyring.
func New(cfg Config, store Records, keyring *secrets.Keyring, client *http.Client, specs []*apps.Spec, changed func(ids.PlatformID, ids.EndUserID)) *Manager {
	if changed == nil {
		changed = func(ids.PlatformID, ids.EndUserID) {}
	}
	m := &Manager{cfg: cfg, store: store, keyring: keyring, http: client, log: cfg.Logger, specs: map[string]*apps.Spec{}, changed: changed,
		stopSweep: make(chan struct{}), swept: make(chan struct{})}
	for _, sp := range specs {
		m.specs[sp.Name] = sp
		m.names = append(m.names, sp.Name)
	}
	m.locks.seed = maphash.MakeSeed()
	go m.sweep(m.stopSweep, m.swept)
	return m
}

// Close stops the sweeper. Idempotent.
func (m *Manager) Close() {
	m.closeOnce.Do(func() { close(m.stopSweep) })
	<-m.swept
}

func (m *Manager) fmtTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// Errors the edge maps to API errors (match with errors.Is).
var (
	// ErrUnknownApp: the app name is not a registered app.
	ErrUnknownApp = errors.New("oauthconn: unknown app")
	// ErrAppNotActive: the platform has not activated the app.
	ErrAppNotActive = errors.New("oauthconn: app not active")
	// ErrNotConnected: the end-user has no connection to the app.
	ErrNotConnected = errors.New("oauthconn: app not connected")
	// ErrInvalid wraps a message about invalid input, safe to show (the
	// sentinel of apps.ErrInvalid).
	ErrInvalid = apps.ErrInvalid
	// ErrInvalidState: the OAuth state is missing, unknown, used or expired.
	ErrInvalidState = errors.New("oauthconn: invalid or expired OAuth state")
	// ErrNoKeyring: secrets cannot be sealed (no master key configured).
	ErrNoKeyring = errors.New("oauthconn: no keyring to seal secrets")
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Connected reports whether the end-user has a live connection to app
// under its current activation act.
func (m *Manager) Connected(pid ids.PlatformID, eid ids.EndUserID, app string, act *Activation) (bool, error) {
	c, err := m.loadConnection(pid, eid, app, act)
	return c != nil, err
}
