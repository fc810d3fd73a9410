package actors

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// Billing durability modes (design.md "Persistence").
const (
	// DurabilitySync answers a settlement once its record is synced.
	DurabilitySync = "sync"
	// DurabilityBatch answers a settlement at once; the record is synced
	// with the next group commit.
	DurabilityBatch = "batch"
)

// Payments charges a platform's payment method for an auto top-up.
// Implementations must be idempotent on idempotencyKey and safe for
// concurrent use; Charge may block on the network.
type Payments interface {
	Charge(ctx context.Context, platform ids.PlatformID, amount money.Nanos, idempotencyKey string) (chargeID string, err error)
}

// Env is what every actor of a node shares: the store, the clock, the key
// cache. Build it with [NewEnv]; fields must not change after the first
// actor starts.
type Env struct {
	Store *persistence.Store
	Clock clock.Clock
	Log   *slog.Logger
	Auth  *Auth
	// IdleTimeout is how long an actor stays resident without messages.
	// Default 5 minutes.
	IdleTimeout time.Duration
	// AskTimeout bounds one Directory.Ask. Default 10 s.
	AskTimeout time.Duration
	// BillingDurability is DurabilitySync (default) or DurabilityBatch.
	BillingDurability string
	// Payments charges auto top-ups. Default: an [OfflinePayments] that
	// records each charge in the store.
	Payments Payments

	// Subscriptions says which webhook events to write (nil: none).
	Subscriptions *Subscriptions
	// Notify wakes the webhook dispatcher after events were written.
	Notify OutboxNotify

	dir       *Local
	platforms sync.Map // ids.PlatformID → *sharedPlatform
}

// NewEnv returns an Env over store with defaults filled in.
func NewEnv(store *persistence.Store, clk clock.Clock, log *slog.Logger) *Env {
	if clk == nil {
		clk = clock.Real{}
	}
	if log == nil {
		log = slog.Default()
	}
	return &Env{
		Store:             store,
		Clock:             clk,
		Log:               log,
		Auth:              NewAuth(store),
		IdleTimeout:       5 * time.Minute,
		AskTimeout:        10 * time.Second,
		BillingDurability: DurabilitySync,
		Payments:          &OfflinePayments{Store: store, Clock: clk},
	}
}

// sharedPlatform is the part of a platform's settings that its end-user
// actors read on every admission: published by the platform actor,
// read lock-free.
type sharedPlatform struct {
	limits atomic.Pointer[pb.RateLimits]
	markup atomic.Int64 // basis points
}

func (e *Env) shared(p ids.PlatformID) *sharedPlatform {
	if v, ok := e.platforms.Load(p); ok {
		return v.(*sharedPlatform)
	}
	sp := &sharedPlatform{}
	if raw, err := e.Store.Get(persistence.PlatformKey(string(p))); err == nil {
		var pl pb.Platform
		if proto.Unmarshal(raw, &pl) == nil {
			sp.limits.Store(pl.GetSettings().GetDefaultRateLimits())
			sp.markup.Store(pl.GetSettings().GetMarkupBps())
		}
	}
	v, _ := e.platforms.LoadOrStore(p, sp)
	return v.(*sharedPlatform)
}

func (e *Env) publishPlatform(pl *pb.Platform) {
	sp := e.shared(ids.PlatformID(pl.Id))
	sp.limits.Store(proto.Clone(pl.GetSettings().GetDefaultRateLimits()).(*pb.RateLimits))
	sp.markup.Store(pl.GetSettings().GetMarkupBps())
}

// OfflinePayments is the [Payments] of a gateway without a payment
// provider: it records every charge in the store and reports success, so
// auto top-up can be exercised end to end. A real provider plugs in behind
// the same interface.
type OfflinePayments struct {
	Store *persistence.Store
	Clock clock.Clock
}

// Charge records the charge under its idempotency key and returns its id.
func (o *OfflinePayments) Charge(ctx context.Context, platform ids.PlatformID, amount money.Nanos, idempotencyKey string) (string, error) {
	if amount <= 0 {
		return "", errors.New("payments: non-positive charge")
	}
	id := "ch_" + idempotencyKey
	rec := []byte(amount.String())
	if err := o.Store.Commit(persistence.Set(persistence.ChargeKey(string(platform), id), rec)); err != nil {
		return "", err
	}
	return id, nil
}
