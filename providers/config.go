package providers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of [Config].
const (
	DefaultConnectTimeout    = 10 * time.Second
	DefaultResponseTimeout   = 10 * time.Minute
	DefaultStreamTimeout     = 30 * time.Minute
	DefaultStreamIdleTimeout = 5 * time.Minute
	DefaultMaxResponseBytes  = 32 << 20
	DefaultMaxStreamBytes    = 256 << 20
	DefaultMaxEventBytes     = 4 << 20
	DefaultMaxConnsPerHost   = 4096
)

// Config tunes a [Transport]. Build it with [DefaultConfig] and change
// fields; [NewTransport] validates it and never mutates the caller's copy.
type Config struct {
	// ConnectTimeout bounds one TCP (and TLS) connection attempt.
	// Default 10s; 1ms to 5m.
	ConnectTimeout time.Duration
	// ResponseTimeout bounds one attempt of a non-streamed call, from
	// sending the request to the last byte of the response, and the wait
	// for a streamed call's response headers. Default 10m; 1ms to 1h.
	ResponseTimeout time.Duration
	// StreamTimeout bounds a whole stream, so a never-ending stream ends.
	// Default 30m; 1ms to 24h.
	StreamTimeout time.Duration
	// StreamIdleTimeout bounds the silence between two reads of a stream
	// (keep-alive pings count as traffic). Default 5m; 1ms to 1h.
	StreamIdleTimeout time.Duration
	// MaxResponseBytes bounds a non-streamed response body and any error
	// body. Default 32 MiB; 1 KiB to 1 GiB.
	MaxResponseBytes int
	// MaxStreamBytes bounds the bytes read from one stream. Default 256 MiB;
	// 1 KiB to 16 GiB.
	MaxStreamBytes int64
	// MaxEventBytes bounds one SSE line and one SSE event. Default 4 MiB;
	// 1 KiB to 64 MiB.
	MaxEventBytes int
	// MaxConnsPerHost bounds open connections to one upstream host. A call
	// that finds none free waits up to ConnectTimeout. Default 4096.
	MaxConnsPerHost int
	// AllowPrivateEgress lets base URLs reach loopback, private, link-local
	// and other non-public addresses (ASSISTIV_ALLOW_PRIVATE_EGRESS). The
	// check runs on the address actually dialled, so DNS rebinding cannot
	// get around it. Default false.
	AllowPrivateEgress bool
	// UserAgent is sent on every upstream request. Default "assistiv-gateway".
	UserAgent string
	// Retry is the retry schedule.
	Retry RetryPolicy
	// Now is the clock for "created" timestamps. Default time.Now.
	Now func() time.Time
}

// RetryPolicy says when a failed attempt is tried again. Only failures
// before any response byte reached the caller are retried: connection
// failures and upstream 408/429/500/502/503/504/529. The delay before retry
// n (n ≥ 1) is min(BaseDelay·2^(n-1), MaxDelay), passed through Jitter, or
// the upstream's Retry-After when it is longer (a Retry-After beyond
// MaxDelay ends the retries).
type RetryPolicy struct {
	// MaxAttempts counts the first attempt; 1 disables retries. Default 3; 1 to 10.
	MaxAttempts int
	// BaseDelay is the first backoff. Default 250ms.
	BaseDelay time.Duration
	// MaxDelay caps one backoff. Default 8s.
	MaxDelay time.Duration
	// MaxElapsed: no attempt starts later than this after the first one.
	// Default 30s.
	MaxElapsed time.Duration
	// Jitter randomises a delay. Default: uniform in [d/2, d].
	Jitter func(d time.Duration) time.Duration
	// Sleep waits d or until ctx is done. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		ConnectTimeout:    DefaultConnectTimeout,
		ResponseTimeout:   DefaultResponseTimeout,
		StreamTimeout:     DefaultStreamTimeout,
		StreamIdleTimeout: DefaultStreamIdleTimeout,
		MaxResponseBytes:  DefaultMaxResponseBytes,
		MaxStreamBytes:    DefaultMaxStreamBytes,
		MaxEventBytes:     DefaultMaxEventBytes,
		MaxConnsPerHost:   DefaultMaxConnsPerHost,
		UserAgent:         "assistiv-gateway",
		Retry: RetryPolicy{
			MaxAttempts: 3,
			BaseDelay:   250 * time.Millisecond,
			MaxDelay:    8 * time.Second,
			MaxElapsed:  30 * time.Second,
		},
	}
}

// EnsureDefaults fills zero fields with their defaults.
func (c *Config) EnsureDefaults() {
	d := DefaultConfig()
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = d.ConnectTimeout
	}
	if c.ResponseTimeout == 0 {
		c.ResponseTimeout = d.ResponseTimeout
	}
	if c.StreamTimeout == 0 {
		c.StreamTimeout = d.StreamTimeout
	}
	if c.StreamIdleTimeout == 0 {
		c.StreamIdleTimeout = d.StreamIdleTimeout
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = d.MaxResponseBytes
	}
	if c.MaxStreamBytes == 0 {
		c.MaxStreamBytes = d.MaxStreamBytes
	}
	if c.MaxEventBytes == 0 {
		c.MaxEventBytes = d.MaxEventBytes
	}
	if c.MaxConnsPerHost == 0 {
		c.MaxConnsPerHost = d.MaxConnsPerHost
	}
	if c.UserAgent == "" {
		c.UserAgent = d.UserAgent
	}
	if c.Retry.MaxAttempts == 0 {
		c.Retry.MaxAttempts = d.Retry.MaxAttempts
	}
	if c.Retry.BaseDelay == 0 {
		c.Retry.BaseDelay = d.Retry.BaseDelay
	}
	if c.Retry.MaxDelay == 0 {
		c.Retry.MaxDelay = d.Retry.MaxDelay
	}
	if c.Retry.MaxElapsed == 0 {
		c.Retry.MaxElapsed = d.Retry.MaxElapsed
	}
	if c.Retry.Jitter == nil {
		c.Retry.Jitter = halfJitter
	}
	if c.Retry.Sleep == nil {
		c.Retry.Sleep = sleepCtx
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports the first field out of range.
func (c *Config) Validate() error {
	check := func(name string, v, lo, hi time.Duration) error {
		if v < lo || v > hi {
			return fmt.Errorf("providers: config %s = %v, want %v to %v", name, v, lo, hi)
		}
		return nil
	}
	ms := time.Millisecond
	if err := errors.Join(
		check("ConnectTimeout", c.ConnectTimeout, ms, 5*time.Minute),
		check("ResponseTimeout", c.ResponseTimeout, ms, time.Hour),
		check("StreamTimeout", c.StreamTimeout, ms, 24*time.Hour),
		check("StreamIdleTimeout", c.StreamIdleTimeout, ms, time.Hour),
		check("Retry.BaseDelay", c.Retry.BaseDelay, 0, time.Minute),
		check("Retry.MaxDelay", c.Retry.MaxDelay, 0, 10*time.Minute),
		check("Retry.MaxElapsed", c.Retry.MaxElapsed, 0, time.Hour),
	); err != nil {
		return err
	}
	if c.MaxResponseBytes < 1<<10 || c.MaxResponseBytes > 1<<30 {
		return fmt.Errorf("providers: config MaxResponseBytes = %d, want 1 KiB to 1 GiB", c.MaxResponseBytes)
	}
	if c.MaxStreamBytes < 1<<10 || c.MaxStreamBytes > 16<<30 {
		return fmt.Errorf("providers: config MaxStreamBytes = %d, want 1 KiB to 16 GiB", c.MaxStreamBytes)
	}
	if c.MaxEventBytes < 1<<10 || c.MaxEventBytes > 64<<20 {
		return fmt.Errorf("providers: config MaxEventBytes = %d, want 1 KiB to 64 MiB", c.MaxEventBytes)
	}
	if c.MaxConnsPerHost < 1 {
		return fmt.Errorf("providers: config MaxConnsPerHost = %d, want at least 1", c.MaxConnsPerHost)
	}
	if c.Retry.MaxAttempts < 1 || c.Retry.MaxAttempts > 10 {
		return fmt.Errorf("providers: config Retry.MaxAttempts = %d, want 1 to 10", c.Retry.MaxAttempts)
	}
	return nil
}

func halfJitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// backoff returns the delay before retry n (n ≥ 1).
func (p *RetryPolicy) backoff(n int) time.Duration {
	d := p.BaseDelay
	for i := 1; i < n && d < p.MaxDelay; i++ {
		d *= 2
	}
	if d > p.MaxDelay {
		d = p.MaxDelay
	}
	return p.Jitter(d)
}

// Upstream is where one call goes: the provider's base URL and the
// platform's key for it. The key is sent to BaseURL and nowhere else; no
// field of a client request can change either.
type Upstream struct {
	// BaseURL is scheme://host[:port][/prefix], e.g. "https://api.openai.com".
	// Empty means the provider's public endpoint. A trailing "/v1" (or
	// "/v1beta" for Google) is accepted and not doubled.
	BaseURL string
	// APIKey is the provider key. Never logged; redacted from error messages.
	APIKey string
}

// String describes u without its key.
func (u Upstream) String() string { return "upstream(" + u.BaseURL + ")" }

// Endpoint joins base (or def, when base is empty) with a path that starts
// with version ("/v1", "/v1beta") and returns the URL. base must be an
// absolute http or https URL without user info, query or fragment; a base
// already ending in version is not given it twice. Failures are an
// [*Error] matching [ErrBadUpstream].
func Endpoint(base, def, version, path string) (string, error) {
	k := endpointKey{base, def, version, path}
	if m := endpoints.m.Load(); m != nil {
		if u, ok := (*m)[k]; ok {
			return u, nil
		}
	}
	u, err := endpoint(base, def, version, path)
	if err != nil {
		return "", err // not remembered: a refusal is rare and cheap to repeat
	}
	endpoints.mu.Lock()
	defer endpoints.mu.Unlock()
	var next map[endpointKey]string
	if old := endpoints.m.Load(); old != nil && len(*old) < maxEndpoints {
		next = maps.Clone(*old)
	} else {
		next = make(map[endpointKey]string) // none yet, or too many base URLs: start over
	}
	next[k] = u
	endpoints.m.Store(&next)
	return u, nil
}

// endpoints remembers Endpoint's answers: every upstream call asks for
// its URL, and parsing the base URL each time cost a url.Parse and two
// allocations a call. Readers take no lock: the map is replaced whole
// (copied) when a base URL is added, which is rare. Its key is comparable
// without allocating (a sync.Map would box it).
var endpoints struct {
	mu sync.Mutex // one writer at a time
	m  atomic.Pointer[map[endpointKey]string]
}

type endpointKey struct{ base, def, version, path string }

// maxEndpoints bounds the remembered URLs (one per provider base URL in
// use, times the few paths each client asks for).
const maxEndpoints = 4096

func endpoint(base, def, version, path string) (string, error) {
	if base == "" {
		base = def
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", newErr(ErrBadUpstream, "provider base URL must be an absolute http(s) URL")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", newErr(ErrBadUpstream, "provider base URL must not carry user info, a query or a fragment")
	}
	p := strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(p, version) {
		p += version
	}
	return u.Scheme + "://" + u.Host + p + path, nil
}
