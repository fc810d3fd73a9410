package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/egress"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/persistence"
)

// noDue marks an endpoint with nothing pending that the scheduler knows of.
const noDue = math.MaxInt64

// Service owns webhook endpoints, the outbox dispatcher and the delivery
// workers of one node. Its methods are safe for concurrent use.
type Service struct {
	cfg   Config
	store *persistence.Store
	subs  *actors.Subscriptions
	clk   clock.Clock
	log   *slog.Logger
	http  *http.Client
	// shared is set by Share (before Start) when several nodes serve the
	// same endpoints; nil on a lone node.
	shared *sharing

	// mu guards endpoints, active and every endpoint's scheduling state,
	// and is held while submitting a write that depends on them, so the
	// store applies such writes in the order their decisions were made.
	// It is never held across network I/O or while waiting for a commit.
	mu        sync.Mutex
	endpoints map[ids.PlatformID]map[string]*endpoint
	active    int // deliveries in flight

	wakeDispatch chan struct{}
	wakeSched    chan struct{}
	ctx          context.Context // cancelled by Close; parents every request
	cancel       context.CancelFunc
	wg           sync.WaitGroup // dispatcher, scheduler and every delivery
	startOnce    sync.Once
	closeOnce    sync.Once
	closed       bool // guarded by mu
}

// endpoint is the in-memory state of one endpoint.
type endpoint struct {
	rec      *endpointRecord // replaced, never mutated, once published
	inflight map[string]bool // message ids being attempted
	// nextDue is the earliest due time (Unix ms) of a message that is not
	// in flight, as far as the scheduler knows: 0 means "scan", noDue
	// means nothing pending.
	nextDue int64
	deleted bool
}

// New builds the service over store. It loads the endpoints, publishes
// their subscriptions to subs (which the actors' Env must share) and
// returns; call Start to begin dispatching and delivering. It never
// mutates the caller's cfg.
func New(cfg Config, store *persistence.Store, subs *actors.Subscriptions) (*Service, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Schedule = append([]time.Duration(nil), cfg.Schedule...)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil || subs == nil {
		return nil, errors.New("webhooks: New needs a store and a Subscriptions")
	}
	tr := egress.Transport(cfg.Egress)
	tr.MaxIdleConnsPerHost = cfg.PerEndpoint
	tr.ResponseHeaderTimeout = cfg.RequestTimeout
	s := &Service{
		cfg:   cfg,
		store: store,
		subs:  subs,
		clk:   cfg.Clock,
		log:   cfg.Logger.With("component", "webhooks"),
		http: &http.Client{
			Transport:     tr,
			Timeout:       cfg.RequestTimeout,
			CheckRedirect: egress.NoRedirect, // 3xx is a failure, never followed
		},
		endpoints:    map[ids.PlatformID]map[string]*endpoint{},
		wakeDispatch: make(chan struct{}, 1),
		wakeSched:    make(chan struct{}, 1),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	var failure error
	err := store.Scan([]byte{persistence.FamilyWebhookEndpoint}, []byte{persistence.FamilyWebhookEndpoint + 1}, false, func(_, v []byte) bool {
		r, err := decodeEndpoint(v)
		if err != nil {
			failure = err
			return false
		}
		p := ids.PlatformID(r.PlatformID)
		if s.endpoints[p] == nil {
			s.endpoints[p] = map[string]*endpoint{}
		}
		s.endpoints[p][r.ID] = &endpoint{rec: r, inflight: map[string]bool{}}
		return true
	})
	if err == nil {
		err = failure
	}
	if err != nil {
		return nil, fmt.Errorf("webhooks: load endpoints: %w", err)
	}
	for p := range s.endpoints {
		s.publishLocked(p)
	}
	return s, nil
}

// Start runs the dispatcher and the scheduler. Whatever a previous run
// left (outbox events, pending messages) is picked up at once. Calling it
// again does nothing.
func (s *Service) Start() {
	s.startOnce.Do(func() {
		s.wg.Add(2)
		go s.dispatchLoop()
		go s.scheduleLoop()
		if s.shared != nil {
			s.wg.Add(1)
			go s.resyncLoop()
		}
		s.Wake()
	})
}

// Wake tells the dispatcher that events were committed to the outbox. It
// never blocks, so actors call it from the store's Done callbacks
// (actors.Env.Notify).
func (s *Service) Wake() {
	select {
	case s.wakeDispatch <- struct{}{}:
	default:
	}
}

func (s *Service) wakeScheduler() {
	select {
	case s.wakeSched <- struct{}{}:
	default:
	}
}

// Close stops dispatching, cancels deliveries in flight (an interrupted
// attempt is not recorded, so it is made again after the next start) and
// waits for every goroutine of the service. Call it before closing the
// store. It is idempotent.
func (s *Service) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		s.wg.Wait()
		s.http.CloseIdleConnections()
	})
}

// publishLocked tells the actors which event types platform p's enabled
// endpoints want.
func (s *Service) publishLocked(p ids.PlatformID) {
	var mask uint64
	for _, e := range s.endpoints[p] {
		if e.rec.Enabled && !e.deleted {
			mask |= actors.EventMask(e.rec.EventTypes)
		}
	}
	s.subs.Set(p, mask)
}

// submitLocked hands ops to the store in the order of s.mu and returns a
// channel that yields the commit's result.
func (s *Service) submitLocked(ops []persistence.Op) <-chan error {
	ch := make(chan error, 1)
	s.store.Submit(persistence.Write{Ops: ops, Done: func(err error) { ch <- err }})
	return ch
}

func (s *Service) nowMs() int64 { return s.clk.Now().UnixMilli() }
