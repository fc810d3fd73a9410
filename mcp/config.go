package mcp

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/egress"

	"github.com/assistiv/gateway/skills"
)

// Config configures a [Service].
type Config struct {
	// PublicURL is the gateway's externally visible base URL (scheme, host,
	// optional port, no path). The OAuth redirect_uri is PublicURL +
	// "/oauth/callback", sent byte for byte in both the authorization and
	// the token request. Default http://127.0.0.1:8080.
	PublicURL string
	// Egress guards outbound calls (token endpoints, app APIs) and the
	// endpoint overrides checked at activation. Default: the strict policy.
	Egress egress.Policy
	// StateTTL bounds a pending authorization. Default 10 min, range 1 s..1 h.
	StateTTL time.Duration
	// CallTimeout bounds one outbound HTTP exchange. Default 20 s, range
	// 100 ms..5 min.
	CallTimeout time.Duration
	// MaxResponseBytes bounds an outbound response body. Default 2 MiB,
	// range 1 KiB..64 MiB.
	MaxResponseBytes int64
	// HeartbeatInterval is the heartbeat of MCP GET listening streams; a
	// stream whose client left ends at the next failed heartbeat. Default
	// 15 s; must be positive (without it fasthttp leaks the stream).
	HeartbeatInterval time.Duration
	// SessionIdleTTL drops MCP sessions idle this long. Default 30 min.
	SessionIdleTTL time.Duration
	// MaxSessionsPerEndUser bounds one end-user's live MCP sessions
	// (initialized ones and GET listening streams); past it opening one
	// more answers 429 too_many_sessions. Default 32, range 1..10000.
	MaxSessionsPerEndUser int
	// SweepInterval is how often expired pending authorizations and
	// grants are deleted. Default 1 min, range 1 s..1 h.
	SweepInterval time.Duration
	// RefreshSkew refreshes access tokens this long before they expire.
	// Default 60 s.
	RefreshSkew time.Duration
	// SkillsDir is where an earlier version kept the skills' sealed file
	// blobs (SkillsDir/blobs/…), normally <data dir>/skills; they are
	// still read (and removed with their skill). Blobs now live in Pebble.
	// The catalog needs a keyring (Deps.Keyring); without one uploads
	// answer ErrSkillsUnavailable and the skill tools "unavailable".
	SkillsDir string
	// Skills bounds each skill's archive and files. Default
	// [skills.DefaultLimits].
	Skills skills.Limits
	// SkillQuota bounds each platform's (and end-user's) skills. Default
	// [skills.DefaultQuota].
	SkillQuota skills.Quota
	// Clock tells the time (state expiry, token expiry). Default real.
	Clock clock.Clock
	// Logger receives operational messages. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults documented on [Config].
func DefaultConfig() Config {
	return Config{
		PublicURL:         "http://127.0.0.1:8080",
		StateTTL:          10 * time.Minute,
		CallTimeout:       20 * time.Second,
		MaxResponseBytes:  2 << 20,
		HeartbeatInterval: 15 * time.Second,
		SessionIdleTTL:    30 * time.Minute,

		MaxSessionsPerEndUser: 32,
		RefreshSkew:           time.Minute,
		SweepInterval:         time.Minute,
		Skills:                skills.DefaultLimits(),
		SkillQuota:            skills.DefaultQuota(),
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	u, err := url.Parse(c.PublicURL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("mcp: PublicURL %q must be an absolute http(s) URL without path or query", c.PublicURL)
	case c.StateTTL < time.Second || c.StateTTL > time.Hour:
		return fmt.Errorf("mcp: StateTTL %s out of range 1s..1h", c.StateTTL)
	case c.CallTimeout < 100*time.Millisecond || c.CallTimeout > 5*time.Minute:
		return fmt.Errorf("mcp: CallTimeout %s out of range 100ms..5m", c.CallTimeout)
	case c.MaxResponseBytes < 1<<10 || c.MaxResponseBytes > 64<<20:
		return fmt.Errorf("mcp: MaxResponseBytes %d out of range 1KiB..64MiB", c.MaxResponseBytes)
	case c.SweepInterval < time.Second || c.SweepInterval > time.Hour:
		return fmt.Errorf("mcp: SweepInterval %s out of range 1s..1h", c.SweepInterval)
	case c.MaxSessionsPerEndUser < 1 || c.MaxSessionsPerEndUser > 10000:
		return fmt.Errorf("mcp: MaxSessionsPerEndUser %d out of range 1..10000", c.MaxSessionsPerEndUser)
	case c.HeartbeatInterval <= 0:
		return errors.New("mcp: HeartbeatInterval must be positive")
	case c.SessionIdleTTL <= 0 || c.RefreshSkew < 0:
		return errors.New("mcp: SessionIdleTTL must be positive and RefreshSkew not negative")
	}
	if err := c.SkillQuota.Validate(); err != nil {
		return err
	}
	return c.Skills.Validate()
}

// RedirectURI returns the OAuth redirect_uri for PublicURL.
func (c Config) RedirectURI() string {
	return strings.TrimSuffix(c.PublicURL, "/") + "/oauth/callback"
}
