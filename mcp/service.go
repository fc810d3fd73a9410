package mcp

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/egress"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/secrets"
	"github.com/assistiv/gateway/logs"
	"github.com/assistiv/gateway/persistence"
	"github.com/assistiv/gateway/skills"
)

// Deps are the components a [Service] calls.
type Deps struct {
	Store     *persistence.Store
	Directory actors.Directory
	// Keyring seals client secrets, tokens and verifiers (nil: activation
	// with a secret and connecting answer ErrNoKeyring).
	Keyring *secrets.Keyring
	// Logs records each tool call (nil: not recorded).
	Logs *logs.Writer
}

// Service is the MCP feature: app activations, the connect flow and the MCP
// server. Safe for concurrent use.
type Service struct {
	cfg     Config
	store   *persistence.Store
	dir     actors.Directory
	keyring *secrets.Keyring
	logs    *logs.Writer
	log     *slog.Logger
	http    *http.Client

	mcp        *server.MCPServer
	streamable *server.StreamableHTTPServer
	toolApp    map[string]string // tool name → app ("skills" for skill tools)
	sessionKey [32]byte
	sessions   sessionIndex // registered sessions by owner (list_changed)

	appMu   sync.Mutex // guards read-modify-write of activations
	stateMu sync.Mutex // serializes consuming OAuth states (single use)
	locks   lifecycleLocks

	closeOnce sync.Once
	stopSweep chan struct{} // closed by Close
	swept     chan struct{} // closed when the sweeper returns

	skills *skills.Catalog
}

// New builds the service and its MCP server. Call Close when done.
func New(cfg Config, d Deps) (*Service, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = DefaultConfig().SweepInterval
	}
	if cfg.SkillQuota == (skills.Quota{}) {
		cfg.SkillQuota = skills.DefaultQuota()
	}
	if cfg.Skills == (skills.Limits{}) {
		cfg.Skills = skills.DefaultLimits()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Store == nil || d.Directory == nil {
		return nil, errors.New("mcp: Store and Directory are required")
	}
	s := &Service{
		cfg: cfg, store: d.Store, dir: d.Directory, keyring: d.Keyring, logs: d.Logs, log: cfg.Logger,
		toolApp: map[string]string{},
	}
	s.locks.seed = maphash.MakeSeed()
	if _, err := rand.Read(s.sessionKey[:]); err != nil {
		return nil, err
	}
	tr := egress.Transport(cfg.Egress)
	tr.ResponseHeaderTimeout = cfg.CallTimeout
	tr.MaxIdleConnsPerHost = 16
	s.http = &http.Client{Transport: tr, Timeout: cfg.CallTimeout, CheckRedirect: egress.NoRedirect}
	cat, err := skills.New(skills.Config{Limits: cfg.Skills, Quota: cfg.SkillQuota, LegacyDir: cfg.SkillsDir, Clock: cfg.Clock, Logger: cfg.Logger}, d.Store, d.Keyring)
	if err != nil {
		return nil, err
	}
	s.skills = cat
	s.buildServer()
	s.stopSweep, s.swept = make(chan struct{}), make(chan struct{})
	go s.sweep(s.stopSweep, s.swept)
	return s, nil
}

// Close stops the pending-authorization sweeper, ends every MCP session
// and stops mcp-go's session sweeper. It waits at most until ctx ends for
// the sessions. Idempotent.
func (s *Service) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { close(s.stopSweep) })
	<-s.swept
	err := s.streamable.Shutdown(ctx)
	s.http.CloseIdleConnections()
	return err
}

func (s *Service) fmtTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// connection is one end-user's OAuth grant for one app (stored as JSON).
type connection struct {
	App           string `json:"app"`
	Epoch         uint64 `json:"epoch"`
	SealedTokens  []byte `json:"sealed_tokens"` // tokenSet JSON, sealed
	ExpiresAtMs   int64  `json:"expires_at_ms"` // 0: does not expire
	Scope         string `json:"scope,omitempty"`
	ConnectedAtMs int64  `json:"connected_at_ms"`
	RefreshedAtMs int64  `json:"refreshed_at_ms,omitempty"`
	// Rev counts the connection's transitions (see lifecycle.go).
	Rev uint64 `json:"rev"`
}

// tokenSet is what a connection seals.
type tokenSet struct {
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
func (s *Service) loadConnection(pid ids.PlatformID, eid ids.EndUserID, app string, act *activation) (*connection, error) {
	if act == nil || !act.Active {
		return nil, nil
	}
	raw, err := s.store.Get(persistence.MCPConnKey(string(pid), app, string(eid)))
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

func (s *Service) openTokens(pid ids.PlatformID, eid ids.EndUserID, c *connection) (tokenSet, error) {
	var t tokenSet
	if s.keyring == nil {
		return t, ErrNoKeyring
	}
	plain, err := s.keyring.Open(c.SealedTokens, tokensAAD(pid, eid, c.App))
	if err != nil {
		return t, err
	}
	err = json.Unmarshal(plain, &t)
	return t, err
}

func (s *Service) saveConnection(pid ids.PlatformID, eid ids.EndUserID, c *connection, t tokenSet) error {
	plain, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if c.SealedTokens, err = s.keyring.Seal(plain, tokensAAD(pid, eid, c.App)); err != nil {
		return err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return s.store.Commit(persistence.Set(persistence.MCPConnKey(string(pid), c.App, string(eid)), b))
}

// Disconnect deletes the end-user's connection to app (idempotent). It
// never waits for a token request in flight: a refresh that read the
// connection before stores nothing (see lifecycle.go).
func (s *Service) Disconnect(pid ids.PlatformID, eid ids.EndUserID, app string) error {
	if _, ok := registry[app]; !ok {
		return ErrUnknownApp
	}
	if _, err := s.removeConnection(pid, eid, app, 0); err != nil {
		return err
	}
	s.toolsChanged(pid, eid)
	return nil
}

// Skills returns the skill catalog (the edge serves its REST routes).
func (s *Service) Skills() *skills.Catalog { return s.skills }
