package mcp

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"

	"github.com/mark3labs/mcp-go/server"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/egress"
	"github.com/assistiv/gateway/internal/secrets"
	"github.com/assistiv/gateway/logs"
	"github.com/assistiv/gateway/mcp/apps"
	"github.com/assistiv/gateway/oauthconn"
	"github.com/assistiv/gateway/persistence"
	"github.com/assistiv/gateway/skills"
)

// Deps are the components a [Service] calls.
type Deps struct {
	Store *persistence.Store
	// Shared, when set, keeps the skill catalog and the OAuth records
	// (activations, flows, connections) instead of Store: in a cluster,
	// the records every node shares (cluster.Shared).
	Shared interface {
		skills.Records
		oauthconn.Records
	}
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

	conns  *oauthconn.Manager // activations, connect flows, connections
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
	if cfg.MaxSessionsPerEndUser == 0 {
		cfg.MaxSessionsPerEndUser = DefaultConfig().MaxSessionsPerEndUser
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
	if _, err := rand.Read(s.sessionKey[:]); err != nil {
		return nil, err
	}
	tr := egress.Transport(cfg.Egress)
	tr.ResponseHeaderTimeout = cfg.CallTimeout
	tr.MaxIdleConnsPerHost = 16
	s.http = &http.Client{Transport: tr, Timeout: cfg.CallTimeout, CheckRedirect: egress.NoRedirect}
	var records interface {
		skills.Records
		oauthconn.Records
	} = d.Store
	if d.Shared != nil {
		records = d.Shared
	}
	cat, err := skills.New(skills.Config{Limits: cfg.Skills, Quota: cfg.SkillQuota, LegacyDir: cfg.SkillsDir, Clock: cfg.Clock, Logger: cfg.Logger}, records, d.Keyring)
	if err != nil {
		return nil, err
	}
	s.skills = cat
	specs := make([]*apps.Spec, 0, len(AppNames))
	for _, name := range AppNames {
		specs = append(specs, registry[name])
	}
	s.conns = oauthconn.New(oauthconn.Config{PublicURL: cfg.PublicURL, Egress: cfg.Egress, StateTTL: cfg.StateTTL, CallTimeout: cfg.CallTimeout,
		MaxResponseBytes: cfg.MaxResponseBytes, RefreshSkew: cfg.RefreshSkew, SweepInterval: cfg.SweepInterval, Clock: cfg.Clock, Logger: cfg.Logger},
		records, d.Keyring, s.http, specs, s.toolsChanged)
	s.buildServer()
	return s, nil
}

// Close stops the pending-authorization sweeper, ends every MCP session
// and stops mcp-go's session sweeper. It waits at most until ctx ends for
// the sessions. Idempotent.
func (s *Service) Close(ctx context.Context) error {
	s.conns.Close()
	err := s.streamable.Shutdown(ctx)
	s.http.CloseIdleConnections()
	return err
}

// Skills returns the skill catalog (the edge serves its REST routes).
func (s *Service) Skills() *skills.Catalog { return s.skills }
