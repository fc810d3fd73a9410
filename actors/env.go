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

// Payments charges a platform's saved payment method for an auto top-up.
// Implementations must be safe for concurrent use and idempotent on
// ChargeRequest.IntentID: a second call with the same intent (after a
// timeout or a crash) must return the first call's outcome and never
// charge again. Charge may block on the network.
//
// A nil error with an empty Declined and Void is a charge that succeeded; a
// non-empty Declined is a definite refusal (the card was declined, no card
// is saved); an error means the outcome is unknown, and the platform actor
// asks again later with the same intent.
type Payments interface {
	Charge(ctx context.Context, req ChargeRequest) (ChargeResult, error)
}

// ChargeRequest is one auto top-up charge.
type ChargeRequest struct {
	Platform ids.PlatformID
	// IntentID names the recorded intent; it is the processor's
	// idempotency key.
	IntentID string
	Amount   money.Nanos
	// Customer and PaymentMethod are the platform's payment profile
	// (empty when none is saved yet).
	Customer      string
	PaymentMethod string
	// CreatedAt is when the intent was recorded: a replay long after it
	// may outlive the processor's idempotency window.
	CreatedAt time.Time
}

// ChargeResult is a charge's definite outcome.
type ChargeResult struct {
	ChargeID string // the processor's payment id, on success
	Declined string // non-empty: refused, and why
	// Void, non-empty: the processor never received this intent and it
	// is too old to charge now; it is voided, never charged.
	Void string
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
	// AutoTopupRetryDelay is the first wait before asking the processor
	// again about a charge whose outcome was unknown; it doubles up to
	// 5 minutes. Default 2 s.
	AutoTopupRetryDelay time.Duration
	// AutoTopupDeclineBackoff is how long after a declined auto top-up no
	// new one starts. Default 15 minutes.
	AutoTopupDeclineBackoff time.Duration

	// Node names this node in lease records. Default "local".
	Node string
	// LeaseChunk is how much wallet credit this node's lease asks for at
	// a time (it takes less when the wallet has less). Default $5.
	LeaseChunk money.Nanos
	// LeaseFlushInterval bounds how long a settled call's wallet cost
	// waits before the platform actor folds it into the wallet's balance
	// and ledger (GET .../wallet flushes first, so it is exact whenever
	// read). Default 250 ms.
	LeaseFlushInterval time.Duration

	// Subscriptions says which webhook events to write (nil: none).
	Subscriptions *Subscriptions
	// Notify wakes the webhook dispatcher after events were written.
	Notify OutboxNotify

	dir         *Local
	router      Directory                                    // cluster mode: see ClusterHooks
	fetch       func(ctx context.Context, id Identity) error // cluster mode: see ClusterHooks
	platforms   sync.Map                                     // ids.PlatformID → *sharedPlatform
	leases      sync.Map                                     // ids.PlatformID → *walletLease
	incarnation string                                       // this process's run: names its leases
	tells       sync.WaitGroup
	// beforeMessage, for tests only (nil in production: one nil check per
	// message), runs before an end-user actor handles a user message; a
	// test makes it panic to check that a restarted actor keeps its live
	// reservations.
	beforeMessage func(msg any)
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
		Store:              store,
		Clock:              clk,
		Log:                log,
		Auth:               NewAuth(store),
		IdleTimeout:        5 * time.Minute,
		AskTimeout:         10 * time.Second,
		BillingDurability:  DurabilitySync,
		Payments:           &OfflinePayments{Store: store, Clock: clk},
		Node:               "local",
		LeaseChunk:         5 * money.PerUSD,
		LeaseFlushInterval: 250 * time.Millisecond,
		incarnation:        ids.New("ls", clk.Now()),

		AutoTopupRetryDelay:     DefaultAutoTopupRetryDelay,
		AutoTopupDeclineBackoff: DefaultAutoTopupDeclineBackoff,
	}
}

// ask sends msg to an actor of this node's directory and waits.
func (e *Env) ask(ctx context.Context, id Identity, msg proto.Message) (proto.Message, error) {
	if e.router != nil {
		return e.router.Ask(ctx, id, msg)
	}
	if e.dir == nil {
		return nil, errorf(ErrUnavailable, "no directory")
	}
	return e.dir.Ask(ctx, id, msg)
}

// tell sends msg without waiting for the answer (logged if it fails).
func (e *Env) tell(id Identity, msg proto.Message) {
	if e.dir == nil || e.dir.closed.Load() {
		return
	}
	e.tells.Add(1)
	go func() {
		defer e.tells.Done()
		ctx, cancel := context.WithTimeout(context.Background(), e.AskTimeout)
		defer cancel()
		if _, err := e.ask(ctx, id, msg); err != nil {
			e.Log.Warn("actor message failed", "to", id.String(), "msg", string(msg.ProtoReflect().Descriptor().Name()), "err", err)
		}
	}()
}

// sharedPlatform is the part of a platform's settings that its end-user
// actors read on every admission: published by the platform actor,
// read lock-free.
type sharedPlatform struct {
	limits    atomic.Pointer[pb.RateLimits]
	markup    atomic.Int64 // basis points
	providers atomic.Pointer[map[string]*pb.ProviderConfig]
	loaded    atomic.Bool // published at least once (cluster mode: see loadShared)
}

func (e *Env) shared(p ids.PlatformID) *sharedPlatform {
	if v, ok := e.platforms.Load(p); ok {
		return v.(*sharedPlatform)
	}
	sp := &sharedPlatform{}
	// In a cluster this node's copy of the platform record may be absent
	// or older than the owner's: loadShared asks the platform actor.
	if e.Clustered() {
		v, _ := e.platforms.LoadOrStore(p, sp)
		return v.(*sharedPlatform)
	}
	if raw, err := e.Store.Get(persistence.PlatformKey(string(p))); err == nil {
		var pl pb.Platform
		if proto.Unmarshal(raw, &pl) == nil {
			sp.limits.Store(pl.GetSettings().GetDefaultRateLimits())
			sp.markup.Store(pl.GetSettings().GetMarkupBps())
			sp.providers.Store(&pl.Providers)
		}
	}
	v, _ := e.platforms.LoadOrStore(p, sp)
	return v.(*sharedPlatform)
}

// loadShared, in a cluster, fills this node's shared settings of platform
// p from its platform actor the first time an end-user actor of p
// activates here. Later changes reach the node by the cluster's settings
// broadcast (package cluster), not through here.
func (e *Env) loadShared(p ids.PlatformID) {
	sp := e.shared(p)
	if !e.Clustered() || sp.loaded.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.AskTimeout)
	defer cancel()
	res, err := e.ask(ctx, PlatformActor(p), &pb.GetPlatform{})
	if err != nil {
		e.Log.Warn("loading platform settings from its actor", "platform", p, "err", err)
		return
	}
	if pl := res.(*pb.PlatformView).GetPlatform(); pl != nil && !sp.loaded.Load() {
		e.publishPlatform(pl)
	}
}

func (e *Env) publishPlatform(pl *pb.Platform) {
	sp := e.shared(ids.PlatformID(pl.Id))
	defer sp.loaded.Store(true)
	sp.limits.Store(proto.Clone(pl.GetSettings().GetDefaultRateLimits()).(*pb.RateLimits))
	sp.markup.Store(pl.GetSettings().GetMarkupBps())
	providers := make(map[string]*pb.ProviderConfig, len(pl.Providers))
	for name, pc := range pl.Providers {
		providers[name] = proto.Clone(pc).(*pb.ProviderConfig)
	}
	sp.providers.Store(&providers)
}

// provider returns platform p's config of provider name when it is
// configured with a key and enabled. The config is shared: read only.
func (e *Env) provider(p ids.PlatformID, name string) *pb.ProviderConfig {
	m := e.shared(p).providers.Load()
	if m == nil {
		return nil
	}
	pc := (*m)[name]
	if pc == nil || !pc.Enabled || len(pc.SealedApiKey) == 0 {
		return nil
	}
	return pc
}

// OfflinePayments is the [Payments] of a gateway without a payment
// provider: it records every charge in the store and reports success, so
// auto top-up can be exercised end to end. Stripe plugs in behind the same
// interface (package payments).
type OfflinePayments struct {
	Store *persistence.Store
	Clock clock.Clock
}

// Charge records the charge under its intent id and returns its id; a
// replay of the same intent returns the recorded charge.
func (o *OfflinePayments) Charge(ctx context.Context, req ChargeRequest) (ChargeResult, error) {
	if req.Amount <= 0 {
		return ChargeResult{Declined: "non-positive charge"}, nil
	}
	id := "ch_" + req.IntentID
	key := persistence.ChargeKey(string(req.Platform), id)
	if _, err := o.Store.Get(key); err == nil {
		return ChargeResult{ChargeID: id}, nil
	} else if !errors.Is(err, persistence.ErrNotFound) {
		return ChargeResult{}, err
	}
	if err := o.Store.Commit(persistence.Set(key, []byte(req.Amount.String()))); err != nil {
		return ChargeResult{}, err
	}
	return ChargeResult{ChargeID: id}, nil
}
