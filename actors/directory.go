package actors

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// Kind says which actor an [Identity] names.
type Kind uint8

// Actor kinds.
const (
	KindPlatform Kind = 1
	KindEndUser  Kind = 2
)

// Identity names one actor: a platform, or an end-user of a platform.
type Identity struct {
	Kind     Kind
	Platform ids.PlatformID
	EndUser  ids.EndUserID // with KindEndUser
}

// PlatformActor names the actor of platform p.
func PlatformActor(p ids.PlatformID) Identity { return Identity{Kind: KindPlatform, Platform: p} }

// EndUserActor names the actor of end-user u of platform p.
func EndUserActor(p ids.PlatformID, u ids.EndUserID) Identity {
	return Identity{Kind: KindEndUser, Platform: p, EndUser: u}
}

func (id Identity) String() string {
	if id.Kind == KindEndUser {
		return "eu/" + string(id.Platform) + "/" + string(id.EndUser)
	}
	return "plat/" + string(id.Platform)
}

// Directory delivers messages to actors by identity, activating them on
// demand, wherever they live. It hides whether the actor is local or on
// another node (the cluster package implements it for a cluster).
type Directory interface {
	// Ask sends msg to the actor named by id and waits for its reply, at
	// most until ctx ends. A refusal comes back as an *[Error] (match it
	// with errors.Is against the Err* values); a reply that is a
	// [pb.Failure] is never returned as a message. Safe for concurrent
	// use; blocks for the actor's processing and, for mutations, the
	// durability of their records. msg must not be modified after the call.
	Ask(ctx context.Context, id Identity, msg proto.Message) (proto.Message, error)
}

// Local is the single-node [Directory]: one protoactor-go actor system in
// this process. An actor is spawned on the first message for its identity
// and passivates after Env.IdleTimeout without messages (see idle.go), when
// it holds no open reservation. Activation and passivation are coordinated
// through a sharded table of in-flight calls, so no message is ever sent to
// an actor that has begun to stop.
type Local struct {
	env    *Env
	system *actor.ActorSystem
	seed   maphash.Seed
	shards [256]dirShard
	gen    uint64 // guarded by genMu
	genMu  sync.Mutex
	closed atomic.Bool
	guard  func(Identity) bool // see SetGuard; nil: always
	// props of each kind, shared by all its actors: an actor reads its
	// identity from its name (see actorName).
	platformProps, endUserProps *actor.Props
	pool                        *workerPool // runs their mailboxes; nil: protoactor's dispatcher
	// The idle sweep (idle.go): its tick, how many ticks make
	// Env.IdleTimeout (0: no sweep), and its goroutine's quit and done.
	tick                 atomic.Int64
	idleTicks            int64
	sweepQuit, sweepDone chan struct{}
}

type dirShard struct {
	mu sync.Mutex // guards m
	m  map[Identity]*dirEntry
}

type dirEntry struct {
	pid      *actor.PID
	inflight int   // calls sent and not yet answered; guarded by the shard's mu
	checkAt  int64 // the idle sweep's tick to send it an idleCheck at (0: none); guarded by the shard's mu
}

var _ Directory = (*Local)(nil)

// mailbox makes the mailboxes of the directory's actors: protoactor's
// lock-free one, whose idle user queue is 40 bytes (a node-based MPSC
// queue) where the default's is ~230 (a mutex-guarded ring of 10 slots).
// It allocates a 24-byte node per message instead; BenchmarkLocalAsk
// shows no CPU difference per ask.
var mailbox = actor.UnboundedLockfree()

// NewLocal starts an actor system for env and returns its directory.
func NewLocal(env *Env) *Local {
	log := env.Log
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return log.With("component", "protoactor")
	}))
	d := &Local{env: env, system: sys, seed: maphash.MakeSeed()}
	opts := []actor.PropsOption{actor.WithMailbox(mailbox)}
	if env.MailboxWorkers > 0 {
		d.pool = newWorkerPool(env.MailboxWorkers, mailboxThroughput)
		opts = append(opts, actor.WithDispatcher(d.pool))
	}
	d.platformProps = actor.PropsFromProducer(func() actor.Actor { return newPlatformActor(env, Identity{}) }, opts...)
	d.endUserProps = actor.PropsFromProducer(func() actor.Actor { return newEndUserActor(env, Identity{}) }, opts...)
	for i := range d.shards {
		d.shards[i].m = make(map[Identity]*dirEntry)
	}
	env.dir = d
	d.startIdleSweep()
	return d
}

// System returns the underlying actor system.
func (d *Local) System() *actor.ActorSystem { return d.system }

func (d *Local) shard(id Identity) *dirShard {
	var h maphash.Hash
	h.SetSeed(d.seed)
	h.WriteByte(byte(id.Kind))
	h.WriteString(string(id.Platform))
	h.WriteString(string(id.EndUser))
	return &d.shards[h.Sum64()&255]
}

func (d *Local) acquire(id Identity) *actor.PID { return d.acquireIn(d.shard(id), id) }

// acquireIn is acquire with id's shard s already found (Ask hashes id
// once for acquire and release).
func (d *Local) acquireIn(s *dirShard, id Identity) *actor.PID {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[id]
	if e == nil {
		if d.guard != nil && !d.guard(id) {
			return nil
		}
		d.genMu.Lock()
		d.gen++
		name := actorName(id, d.gen)
		d.genMu.Unlock()
		pid, err := d.system.Root.SpawnNamed(d.props(id), name)
		if err != nil {
			panic(fmt.Sprintf("actors: spawn %s: %v", name, err)) // names are unique by construction
		}
		e = &dirEntry{pid: pid}
		s.m[id] = e
	}
	e.inflight++
	return e.pid
}

func (d *Local) releaseCall(id Identity, pid *actor.PID) { d.releaseIn(d.shard(id), id, pid) }

// releaseIn is releaseCall with id's shard s already found.
func (d *Local) releaseIn(s *dirShard, id Identity, pid *actor.PID) {
	s.mu.Lock()
	if e := s.m[id]; e != nil && e.pid.Equal(pid) {
		e.inflight--
	}
	s.mu.Unlock()
}

// tryPassivate removes the actor's entry if no call to it is in flight, and
// reports whether it did; after true the actor receives no more messages.
func (d *Local) tryPassivate(id Identity, pid *actor.PID) bool {
	s := d.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[id]
	if e == nil || !e.pid.Equal(pid) {
		return true
	}
	if e.inflight > 0 {
		return false
	}
	delete(s.m, id)
	return true
}

// forget drops an entry unconditionally (the actor stopped itself, e.g.
// after deleting its end-user).
func (d *Local) forget(id Identity, pid *actor.PID) {
	s := d.shard(id)
	s.mu.Lock()
	if e := s.m[id]; e != nil && e.pid.Equal(pid) {
		delete(s.m, id)
	}
	s.mu.Unlock()
}

// PID activates the actor named by id if it is not active and returns its
// PID, for a sender on another node. Such a sender is not counted as a
// call in flight: if the actor passivates before the message arrives, the
// message is refused (passivated) or dead-lettered, never processed, and
// the sender asks for a PID again.
func (d *Local) PID(id Identity) (*actor.PID, error) {
	if d.closed.Load() {
		return nil, errorf(ErrUnavailable, "the actor system is stopped")
	}
	pid := d.acquire(id)
	if pid == nil {
		return nil, errorf(ErrMoved, "%s is not activated on this node", id)
	}
	d.releaseCall(id, pid)
	return pid, nil
}

// Residents returns the identities of the active actors.
func (d *Local) Residents() []Identity {
	var out []Identity
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		for id := range s.m {
			out = append(out, id)
		}
		s.mu.Unlock()
	}
	return out
}

// Evict stops the actor named by id if it is active here and waits until
// it has stopped: the messages already in its mailbox are processed first,
// and its writes are durable when Evict returns. The cluster calls it when
// the actor's ownership moves to another node. A later Ask activates the
// actor afresh.
//
// Calls this node's directory has in flight to the actor are answered
// first: Evict waits until none is in flight before it removes the entry
// (no local call is then sent to a stopping actor), at most until ctx ends.
// A sender on another node holding the actor's PID gets a dead letter or a
// passivated refusal and asks again.
//
// Calls admitted and not yet settled (open reservations) are settled here
// first: the actor drains (see below) until ctx ends. One still open then
// leaves its reservation record to the next owner, which voids it at
// activation as after a crash (an unsettled_on_crash entry: its cost is
// not charged; its wallet credit stays held by this node's lease until
// the lease is closed).
func (d *Local) Evict(ctx context.Context, id Identity) error {
	s := d.shard(id)
	s.mu.Lock()
	e := s.m[id]
	s.mu.Unlock()
	if e == nil {
		return nil
	}
	// Drain: the actor refuses everything (passivated: senders ask again,
	// elsewhere once the cluster has moved on) except the settlement of
	// calls it admitted, which still reach it (its entry stays, so PID
	// answers it), until it holds no open reservation and no write in
	// flight, or ctx ends.
	for {
		drained := make(evictDrain, 1)
		d.system.Root.Send(e.pid, drained)
		var ok bool
		select {
		case ok = <-drained:
		case <-ctx.Done():
		}
		if ok || ctx.Err() != nil {
			break
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	for {
		s.mu.Lock()
		if cur := s.m[id]; cur != e {
			s.mu.Unlock()
			break
		}
		if e.inflight == 0 || ctx.Err() != nil {
			delete(s.m, id)
			s.mu.Unlock()
			break
		}
		s.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
	// First the actor refuses every later message as passivated (senders
	// on other nodes that still hold its PID ask again elsewhere), then,
	// after a grace period for messages already on their way, it stops: a
	// message reaching a stopped actor's mailbox would be dropped
	// unanswered, a stopped PID answers dead letter.
	refusing := make(evictNow)
	d.system.Root.Send(e.pid, refusing)
	select {
	case <-refusing:
	case <-ctx.Done():
	}
	select {
	case <-time.After(evictGrace):
	case <-ctx.Done():
	}
	if err := d.system.Root.PoisonFuture(e.pid).Wait(); err != nil {
		return err
	}
	// Writes the actor submitted are durable once a later write is.
	done := make(chan error, 1)
	d.env.Store.Submit(persistence.Write{Done: func(err error) { done <- err }})
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// evictNow, sent by Evict, makes an actor refuse every later message as
// passivated; it closes the channel once it does.
type evictNow chan struct{}

// evictDrain, sent by Evict, makes an actor drain (see Evict); it answers
// whether it is drained.
type evictDrain chan bool

// poolStopTimeout bounds how long Close waits for the mailbox workers.
const poolStopTimeout = 5 * time.Second

// evictGrace is how long an evicted actor refuses messages before it stops.
const evictGrace = 200 * time.Millisecond

// SetGuard installs may: an actor not active on this node is activated only
// if may(id) (in a cluster: this node owns id and is not leaving);
// otherwise Ask and PID refuse with ErrMoved. Call before the first Ask.
func (d *Local) SetGuard(may func(Identity) bool) { d.guard = may }

// Resident returns the number of active actors.
func (d *Local) Resident() int {
	n := 0
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// localAsk carries one in-process Ask to an actor: the message and a
// one-slot channel for its reply. It replaces a protoactor future (a
// temporary process registered and removed per call, plus a timer): the
// actor writes its one reply into ch, which never blocks. Asks are pooled
// with their timer (stopped while pooled: Go 1.23 timers deliver no stale
// tick after Stop or Reset); one whose caller gave up is never reused, so a
// late reply cannot reach the next caller.
type localAsk struct {
	msg   proto.Message
	ch    chan proto.Message
	timer *time.Timer // nil until an ask without a context deadline needs it
}

var askPool = sync.Pool{New: func() any { return &localAsk{ch: make(chan proto.Message, 1)} }}

// Ask implements [Directory].
func (d *Local) Ask(ctx context.Context, id Identity, msg proto.Message) (proto.Message, error) {
	timeout := d.env.AskTimeout
	deadlineFromCtx := false
	if dl, ok := ctx.Deadline(); ok {
		if t := time.Until(dl); t <= timeout {
			timeout, deadlineFromCtx = t, true
		}
	}
	if timeout <= 0 {
		return nil, ctx.Err()
	}
	if d.closed.Load() {
		return nil, errorf(ErrUnavailable, "the actor system is stopped")
	}
	a := askPool.Get().(*localAsk)
	var expired <-chan time.Time
	if !deadlineFromCtx {
		if a.timer == nil {
			a.timer = time.NewTimer(timeout)
		} else {
			a.timer.Reset(timeout)
		}
		expired = a.timer.C
	}
	// done returns a to the pool once its reply was received (never while
	// a reply may still come).
	done := func() {
		if expired != nil {
			a.timer.Stop()
		}
		a.msg = nil
		askPool.Put(a)
	}
	s := d.shard(id)
	for attempt := 0; ; attempt++ {
		pid := d.acquireIn(s, id)
		if pid == nil {
			done()
			return nil, errorf(ErrMoved, "%s is not activated on this node", id)
		}
		a.msg = msg
		d.system.Root.Send(pid, a)
		var res proto.Message
		select {
		case res = <-a.ch:
		case <-ctx.Done():
			d.releaseIn(s, id, pid)
			if expired != nil {
				a.timer.Stop()
			}
			if deadlineFromCtx && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, errorf(ErrUnavailable, "%s did not answer within %s", id, timeout)
			}
			return nil, ctx.Err()
		case <-expired:
			d.releaseIn(s, id, pid)
			return nil, errorf(ErrUnavailable, "%s did not answer within %s", id, timeout)
		}
		d.releaseIn(s, id, pid)
		if f, ok := res.(*pb.Failure); ok {
			e := fromFailure(f)
			if e.Code == errPassivated.Code && attempt < 3 {
				continue
			}
			done()
			return nil, e
		}
		done()
		return res, nil
	}
}

// askFuture is Ask through a protoactor future: the path a remote sender
// takes. Kept for the benchmark that compares it with the local path.
func (d *Local) askFuture(ctx context.Context, id Identity, msg proto.Message) (proto.Message, error) {
	pid := d.acquire(id)
	if pid == nil {
		return nil, errorf(ErrMoved, "%s is not activated on this node", id)
	}
	defer d.releaseCall(id, pid)
	res, err := d.system.Root.RequestFuture(pid, msg, d.env.AskTimeout).Result()
	if err != nil {
		return nil, err
	}
	if f, ok := res.(*pb.Failure); ok {
		return nil, fromFailure(f)
	}
	m, ok := res.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("actors: %s answered a %T", id, res)
	}
	return m, nil
}

// Halt stops the actor system as a crash leaves it: no actor is stopped in
// turn, no lease is returned and nothing more is written; only the
// goroutines the Local runs (the idle sweep, the mailbox workers) end, so
// a process that halts a node (a test's crashed node) keeps none of them.
func (d *Local) Halt() {
	d.closed.Store(true)
	d.stopIdleSweep()
	d.system.Shutdown()
	if d.pool != nil && !d.pool.stop(poolStopTimeout) {
		d.env.Log.Warn("actors: a mailbox worker is still blocked in an actor after Halt", "waited", poolStopTimeout)
	}
}

// Close returns this node's wallet leases (their spend folded into the
// wallets, their free credit given back), then stops every actor, waiting
// for each to finish its current message. Asks after Close fail at once.
func (d *Local) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	d.env.ReturnLeases(ctx)
	cancel()
	d.closed.Store(true)
	d.stopIdleSweep()
	d.env.tells.Wait()
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		pids := make([]*actor.PID, 0, len(s.m))
		for _, e := range s.m {
			pids = append(pids, e.pid)
		}
		s.m = make(map[Identity]*dirEntry)
		s.mu.Unlock()
		for _, p := range pids {
			_ = d.system.Root.PoisonFuture(p).Wait()
		}
	}
	d.system.Shutdown()
	if d.pool != nil && !d.pool.stop(poolStopTimeout) {
		d.env.Log.Warn("actors: a mailbox worker is still blocked in an actor after Close", "waited", poolStopTimeout)
	}
}
