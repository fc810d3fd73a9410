package webhooks

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/egress"
	"github.com/assistiv/gateway/internal/secrets"
)

// SvixSchedule is Svix's retry schedule: the delay before each attempt,
// counted from the previous attempt's failure (the first is immediate).
// Eight attempts over about 27 h 35 min.
var SvixSchedule = []time.Duration{
	0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// Config configures a [Service]. Build it from [DefaultConfig].
type Config struct {
	// Keyring seals endpoint signing secrets at rest. Required.
	Keyring *secrets.Keyring
	// Egress is the SSRF policy for endpoint URLs, applied at registration
	// (CheckURL) and at every connection (its dialer). Its AllowPrivate
	// also allows plain http. Default: the strict zero Policy.
	Egress egress.Policy
	// Clock stamps records and decides what is due. Default the real clock.
	Clock clock.Clock
	// Logger receives the service's log lines; secrets never reach it.
	// Default slog.Default().
	Logger *slog.Logger
	// Tracer, when set, gives each delivery attempt a span (nil: none).
	Tracer trace.Tracer

	// Schedule is the delay before each delivery attempt, counted from the
	// previous attempt (Schedule[0] from the message's creation or replay);
	// after len(Schedule) failed attempts the message is failed. Default
	// [SvixSchedule]; 1..50 entries, each 0..48 h. Tests shorten it.
	Schedule []time.Duration
	// Jitter spreads each non-zero delay uniformly by ±Jitter of itself, so
	// a receiver that comes back is not hit by every retry at once.
	// Default 0.1, range 0..0.5.
	Jitter float64
	// RequestTimeout bounds one delivery request, connect to last byte; a
	// hung receiver is cut here and the attempt fails. Default 10 s, range
	// 100 ms..60 s.
	RequestTimeout time.Duration
	// Workers bounds deliveries in flight on this node, across endpoints.
	// Default 64, range 1..4096.
	Workers int
	// PerEndpoint bounds deliveries in flight to one endpoint, so a slow or
	// dead endpoint holds at most this many workers. Default 4, range
	// 1..Workers.
	PerEndpoint int
	// DisableAfter disables an endpoint whose every attempt has failed for
	// this long (since the first failure after its last success; Svix's
	// rule). Default 5 days; 0 turns auto-disabling off (410 Gone still
	// disables).
	DisableAfter time.Duration
	// RotationOverlap is how long a rotated-out secret keeps signing beside
	// the new one (two v1 signatures). Default 24 h, range 0..30 days.
	RotationOverlap time.Duration
	// PollInterval is how often the dispatcher looks at the outbox without
	// being woken (a safety net: actors wake it after each commit that wrote
	// events). Default 1 s, range 10 ms..1 min.
	PollInterval time.Duration
	// DispatchBatch bounds the outbox events fanned out in one Pebble batch.
	// Default 256, range 1..4096.
	DispatchBatch int
	// MaxEndpoints bounds one platform's endpoints. Default 20, range 1..1000.
	MaxEndpoints int
	// Retention is how long delivered and failed messages stay in the
	// delivery log. Default 30 days; 0 keeps them forever.
	Retention time.Duration
}

// DefaultConfig returns the defaults documented on [Config] (without a
// Keyring, which the caller must set).
func DefaultConfig() Config {
	return Config{
		Schedule:        append([]time.Duration(nil), SvixSchedule...),
		Jitter:          0.1,
		RequestTimeout:  10 * time.Second,
		Workers:         64,
		PerEndpoint:     4,
		DisableAfter:    5 * 24 * time.Hour,
		RotationOverlap: 24 * time.Hour,
		PollInterval:    time.Second,
		DispatchBatch:   256,
		MaxEndpoints:    20,
		Retention:       30 * 24 * time.Hour,
	}
}

// Validate reports the first invalid field of c.
func (c Config) Validate() error {
	switch {
	case c.Keyring == nil:
		return errors.New("webhooks: Config.Keyring is required")
	case len(c.Schedule) < 1 || len(c.Schedule) > 50:
		return fmt.Errorf("webhooks: Schedule has %d entries, want 1..50", len(c.Schedule))
	case c.Jitter < 0 || c.Jitter > 0.5:
		return fmt.Errorf("webhooks: Jitter %v out of range 0..0.5", c.Jitter)
	case c.RequestTimeout < 100*time.Millisecond || c.RequestTimeout > time.Minute:
		return fmt.Errorf("webhooks: RequestTimeout %v out of range 100ms..1m", c.RequestTimeout)
	case c.Workers < 1 || c.Workers > 4096:
		return fmt.Errorf("webhooks: Workers %d out of range 1..4096", c.Workers)
	case c.PerEndpoint < 1 || c.PerEndpoint > c.Workers:
		return fmt.Errorf("webhooks: PerEndpoint %d out of range 1..Workers", c.PerEndpoint)
	case c.DisableAfter < 0:
		return errors.New("webhooks: DisableAfter must not be negative")
	case c.RotationOverlap < 0 || c.RotationOverlap > 30*24*time.Hour:
		return fmt.Errorf("webhooks: RotationOverlap %v out of range 0..720h", c.RotationOverlap)
	case c.PollInterval < 10*time.Millisecond || c.PollInterval > time.Minute:
		return fmt.Errorf("webhooks: PollInterval %v out of range 10ms..1m", c.PollInterval)
	case c.DispatchBatch < 1 || c.DispatchBatch > 4096:
		return fmt.Errorf("webhooks: DispatchBatch %d out of range 1..4096", c.DispatchBatch)
	case c.MaxEndpoints < 1 || c.MaxEndpoints > 1000:
		return fmt.Errorf("webhooks: MaxEndpoints %d out of range 1..1000", c.MaxEndpoints)
	case c.Retention < 0:
		return errors.New("webhooks: Retention must not be negative")
	}
	for i, d := range c.Schedule {
		if d < 0 || d > 48*time.Hour {
			return fmt.Errorf("webhooks: Schedule[%d] = %v out of range 0..48h", i, d)
		}
	}
	return nil
}
