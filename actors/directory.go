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
// and passivates after Env.IdleTimeout without messages, when it holds no
// open reservation. Activation and passivation are coordinated through a
// sharded table of in-flight calls, so no message is ever sent to an actor
// that has begun to stop.
type Local struct {
	env    *Env
	system *actor.ActorSystem
	seed   maphash.Seed
	shards [256]dirShard
	gen    uint64 // guarded by genMu
	genMu  sync.Mutex
	closed atomic.Bool
	// props of each kind, shared by all its actors: an actor reads its
	// identity from its name (see actorName).
	platformProps, endUserProps *actor.Props
}

type dirShard struct {
	mu sync.Mutex // guards m
	m  map[Identity]*dirEntry
}

type dirEntry struct {
	pid      *actor.PID
	inflight int // calls sent and not yet answered; guarded by the shard's mu
}

var _ Directory = (*Local)(nil)

// NewLocal starts an actor system for env and returns its directory.
func NewLocal(env *Env) *Local {
	log := env.Log
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return log.With("component", "protoactor")
	}))
	d := &Local{env: env, system: sys, seed: maphash.MakeSeed(),
		platformProps: actor.PropsFromProducer(func() actor.Actor { return newPlatformActor(env, Identity{}) }),
		endUserProps:  actor.PropsFromProducer(func() actor.Actor { return newEndUserActor(env, Identity{}) }),
	}
	for i := range d.shards {
		d.shards[i].m = make(map[Identity]*dirEntry)
	}
	env.dir = d
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

func (d *Local) acquire(id Identity) *actor.PID {
	s := d.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[id]
	if e == nil {
		d.genMu.Lock()
		d.gen++
		name := actorName(id, d.gen)
		d.genMu.Unlock()
		props := d.endUserProps
		if id.Kind == KindPlatform {
			props = d.platformProps
		}
		pid, err := d.system.Root.SpawnNamed(props, name)
		if err != nil {
			panic(fmt.Sprintf("actors: spawn %s: %v", name, err)) // names are unique by construction
		}
		e = &dirEntry{pid: pid}
		s.m[id] = e
	}
	e.inflight++
	return e.pid
}

func (d *Local) releaseCall(id Identity, pid *actor.PID) {
	s := d.shard(id)
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
// actor writes its one reply into ch, which never blocks. Asks are pooled;
// one whose caller gave up is never reused, so a late reply cannot reach
// the next caller.
type localAsk struct {
	msg proto.Message
	ch  chan proto.Message
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
	var timer *time.Timer
	var expired <-chan time.Time
	if !deadlineFromCtx {
		timer = time.NewTimer(timeout)
		defer timer.Stop()
		expired = timer.C
	}
	for attempt := 0; ; attempt++ {
		pid := d.acquire(id)
		a := askPool.Get().(*localAsk)
		a.msg = msg
		d.system.Root.Send(pid, a)
		var res proto.Message
		select {
		case res = <-a.ch:
			a.msg = nil
			askPool.Put(a)
		case <-ctx.Done():
			d.releaseCall(id, pid)
			if deadlineFromCtx && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, errorf(ErrUnavailable, "%s did not answer within %s", id, timeout)
			}
			return nil, ctx.Err()
		case <-expired:
			d.releaseCall(id, pid)
			return nil, errorf(ErrUnavailable, "%s did not answer within %s", id, timeout)
		}
		d.releaseCall(id, pid)
		if f, ok := res.(*pb.Failure); ok {
			e := fromFailure(f)
			if e.Code == errPassivated.Code && attempt < 3 {
				continue
			}
			return nil, e
		}
		return res, nil
	}
}

// askFuture is Ask through a protoactor future: the path a remote sender
// takes. Kept for the benchmark that compares it with the local path.
func (d *Local) askFuture(ctx context.Context, id Identity, msg proto.Message) (proto.Message, error) {
	pid := d.acquire(id)
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

// Close returns this node's wallet leases (their spend folded into the
// wallets, their free credit given back), then stops every actor, waiting
// for each to finish its current message. Asks after Close fail at once.
func (d *Local) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	d.env.ReturnLeases(ctx)
	cancel()
	d.closed.Store(true)
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
}
