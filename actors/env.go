package actors

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"sort"
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
	// MailboxWorkers is how many long-lived goroutines run the actors'
	// mailbox turns (see workerPool); a turn finding none idle runs on a
	// goroutine of its own. 0: every turn on a new goroutine (protoactor's
	// default dispatcher). Default 8 per GOMAXPROCS.
	MailboxWorkers int
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

	// Peers reaches the other nodes of a cluster (nil: this node is
	// alone). With it, key revocations and platform settings are
	// broadcast, and key and settings caches fill from the owner's
	// records rather than this node's store. Set it with [Env.SetPeers].
	Peers Peers
	// Owns reports whether this node hosts the actor named by id (nil:
	// every actor is this node's). Listings and cache fills prefer the
	// owner's copy of a record; the cluster directory supplies it.
	Owns func(Identity) bool
	// cacheTTL bounds how long a cached key or platform settings entry is
	// trusted without a refresh (0: forever, the single-node default,
	// where every change is made on this node). The safety net behind
	// the broadcasts.
	cacheTTL time.Duration

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
		MailboxWorkers:     8 * runtime.GOMAXPROCS(0),
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

// DefaultCacheTTL is the cache TTL of a clustered node (see [Env.SetPeers]).
const DefaultCacheTTL = 10 * time.Second

// SetPeers makes env a member of a cluster reached through peers: key
// revocations and settings changes are broadcast, and a cached key or
// platform's settings is refreshed from its owner after ttl (0:
// [DefaultCacheTTL]). Call it before the first actor starts.
func (e *Env) SetPeers(peers Peers, ttl time.Duration) {
	if ttl <= 0 {
		ttl = DefaultCacheTTL
	}
	e.Peers = peers
	e.cacheTTL = ttl
	e.Auth.setPeers(peers, ttl, e.Clock, e.Log)
}

// broadcast sends msg to the other nodes in the background (logged if
// some did not take it: the cache TTL covers them).
func (e *Env) broadcast(msg proto.Message) {
	if e.Peers == nil {
		return
	}
	e.tells.Add(1)
	go func() {
		defer e.tells.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := e.Peers.Broadcast(ctx, msg); err != nil {
			e.Log.Warn("broadcast incomplete", "msg", string(msg.ProtoReflect().Descriptor().Name()), "err", err)
		}
	}()
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
// actors read on every admission: published by the platform actor (and,
// in a cluster, by the owner's broadcasts), read lock-free.
type sharedPlatform struct {
	limits    atomic.Pointer[pb.RateLimits]
	markup    atomic.Int64 // basis points
	providers atomic.Pointer[map[string]*pb.ProviderConfig]

	// In a cluster: when the entry was last filled from the owner (unix
	// ns), and whether a refresh is running.
	filledAt   atomic.Int64
	refreshing atomic.Bool

	mu sync.Mutex // serializes writers; guards version and gen
	// version is the newest publication applied (the owner's clock, ns).
	version int64
	// gen counts writes: a fill read from the owner before a newer write
	// must not overwrite it.
	gen uint64
	// loaded: filled or published at least once (cluster mode without
	// Peers: see loadShared).
	loaded atomic.Bool
}

func (sp *sharedPlatform) setLocked(pl *pb.Platform) {
	sp.limits.Store(proto.Clone(pl.GetSettings().GetDefaultRateLimits()).(*pb.RateLimits))
	sp.markup.Store(pl.GetSettings().GetMarkupBps())
	providers := make(map[string]*pb.ProviderConfig, len(pl.Providers))
	for name, pc := range pl.Providers {
		providers[name] = proto.Clone(pc).(*pb.ProviderConfig)
	}
	sp.providers.Store(&providers)
	sp.gen++
	sp.loaded.Store(true)
}

func (e *Env) shared(p ids.PlatformID) *sharedPlatform {
	if v, ok := e.platforms.Load(p); ok {
		sp := v.(*sharedPlatform)
		if e.cacheTTL > 0 && e.Clock.Now().UnixNano()-sp.filledAt.Load() > int64(e.cacheTTL) && sp.refreshing.CompareAndSwap(false, true) {
			e.tells.Add(1)
			go func() {
				defer e.tells.Done()
				defer sp.refreshing.Store(false)
				e.fillShared(p, sp)
			}()
		}
		return sp
	}
	// A miss fills a new entry before publishing it, so no admission
	// reads an empty one; concurrent first readers may each fill, and
	// the first stored wins (a publication that arrives meanwhile
	// stores its own entry, which wins too).
	sp := &sharedPlatform{}
	switch {
	case e.Peers == nil && e.Clustered():
		// Filled from the platform actor by loadShared.
	case e.Peers == nil:
		if raw, err := e.Store.Get(persistence.PlatformKey(string(p))); err == nil {
			var pl pb.Platform
			if proto.Unmarshal(raw, &pl) == nil {
				sp.setLocked(&pl)
			}
		}
	default:
		e.fillShared(p, sp)
	}
	v, _ := e.platforms.LoadOrStore(p, sp)
	return v.(*sharedPlatform)
}

// loadShared, in a cluster without Peers, fills this node's shared
// settings of platform p from its platform actor the first time an
// end-user actor of p activates here. With Peers, shared fills from the
// cluster and broadcasts keep it current.
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
	if pl := res.(*pb.PlatformView).GetPlatform(); pl != nil {
		sp.mu.Lock()
		if sp.version == 0 && !sp.loaded.Load() { // no publication got here first
			sp.setLocked(pl)
		}
		sp.mu.Unlock()
	}
}

// fillShared reads platform p's settings from the cluster (the owner's
// copy first) into sp, unless a publication got there while it read.
func (e *Env) fillShared(p ids.PlatformID, sp *sharedPlatform) {
	sp.mu.Lock()
	gen := sp.gen
	sp.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), peerFillTimeout)
	defer cancel()
	res, err := e.Peers.FanOut(ctx, &pb.PlatformQuery{PlatformId: string(p)})
	answers, aerr := answersOf[*pb.PlatformAnswer](res)
	if aerr != nil {
		err = aerr
	}
	var best *pb.PlatformAnswer
	for _, a := range answers {
		if a.Platform == nil {
			continue
		}
		if best == nil || (a.Owned && !best.Owned) || (a.Owned == best.Owned && a.Platform.UpdatedAtMs > best.Platform.UpdatedAtMs) {
			best = a
		}
	}
	if best == nil || (!best.Owned && err != nil) {
		if err != nil {
			e.Log.Warn("platform settings fill incomplete", "platform", p, "err", err)
		}
		return // try again at the next read past the TTL
	}
	sp.mu.Lock()
	if sp.gen == gen {
		sp.setLocked(best.Platform)
	}
	sp.mu.Unlock()
	sp.filledAt.Store(e.Clock.Now().UnixNano())
}

// publishPlatform makes pl's settings the ones this node's end-user actors
// read and, in a cluster, broadcasts them to the other nodes. Only the
// platform's actor calls it.
func (e *Env) publishPlatform(pl *pb.Platform) {
	sp := e.sharedEntry(pl)
	sp.mu.Lock()
	// The owner's own publications always apply, in order, even if the
	// wall clock steps back.
	version := max(e.Clock.Now().UnixNano(), sp.version+1)
	sp.version = version
	sp.setLocked(pl)
	sp.mu.Unlock()
	sp.filledAt.Store(e.Clock.Now().UnixNano())
	if e.Peers != nil {
		settings := &pb.Platform{Id: pl.Id, Name: pl.Name, CreatedAtMs: pl.CreatedAtMs, UpdatedAtMs: pl.UpdatedAtMs,
			Settings: pl.Settings, Providers: pl.Providers} // no wallet, no payment profile
		e.broadcast(&pb.PlatformPublished{Platform: proto.Clone(settings).(*pb.Platform), VersionNs: version})
	}
}

// sharedEntry returns the entry of pl's platform, created from pl when
// missing (so no reader sees an empty entry); the caller then applies pl
// under the entry's lock.
func (e *Env) sharedEntry(pl *pb.Platform) *sharedPlatform {
	p := ids.PlatformID(pl.Id)
	if v, ok := e.platforms.Load(p); ok {
		return v.(*sharedPlatform)
	}
	sp := &sharedPlatform{}
	sp.setLocked(pl)
	v, _ := e.platforms.LoadOrStore(p, sp)
	return v.(*sharedPlatform)
}

// applyPublished applies a publication of pl's settings unless a newer
// one was applied already.
func (e *Env) applyPublished(pl *pb.Platform, version int64) {
	sp := e.sharedEntry(pl)
	sp.mu.Lock()
	if version > sp.version {
		sp.version = version
		sp.setLocked(pl)
	}
	sp.mu.Unlock()
	sp.filledAt.Store(e.Clock.Now().UnixNano())
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

// AppliedSettings is the part of a platform's settings this node's
// end-user actors apply to admissions (see [Env.Applied]).
type AppliedSettings struct {
	MarkupBps int64
	Limits    *pb.RateLimits // shared: read only
	// Providers names the providers configured with a key and enabled.
	Providers []string
}

// Applied returns the settings of platform p this node applies now,
// filling them as an admission would. For diagnostics and tests of
// cache coherence.
func (e *Env) Applied(p ids.PlatformID) AppliedSettings {
	sp := e.shared(p)
	out := AppliedSettings{MarkupBps: sp.markup.Load(), Limits: sp.limits.Load()}
	if m := sp.providers.Load(); m != nil {
		for name, pc := range *m {
			if pc.Enabled && len(pc.SealedApiKey) > 0 {
				out.Providers = append(out.Providers, name)
			}
		}
	}
	sort.Strings(out.Providers)
	return out
}
