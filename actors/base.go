package actors

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// base is what both actor kinds share: replying, durable replies, the
// read barrier and passivation.
type base struct {
	env     *Env
	id      Identity
	self    *actor.PID
	pending atomic.Int64 // writes submitted and not yet durable
	stopped bool
	// draining: the cluster is moving this actor to another node
	// (Local.Evict); it refuses every message but the settlement of a
	// call it admitted.
	draining bool
	to       replyTo // who the current message's reply goes to
	cur      any     // the current message, unwrapped
	// lastActive is the idle sweep's tick at the last message but an
	// idleCheck (idle.go).
	lastActive int64
}

// started notes the actor's PID and, unless the actor was made for a
// given identity, the identity its name carries (see actorName). An actor
// with neither (a bug) stops at once.
func (b *base) started(c actor.Context) bool {
	b.self = c.Self()
	if b.id.Kind != 0 {
		return true
	}
	id, ok := identityOf(b.self.Id)
	if !ok {
		b.env.Log.Error("actor name carries no identity; stopping it", "pid", b.self.Id)
		b.stopped = true
		c.Stop(b.self)
		return false
	}
	b.id = id
	return true
}

// replyTo is where a reply goes: the one-slot channel of an in-process
// [Local.Ask], or a sender PID (a protoactor future, a remote caller).
type replyTo struct {
	ch  chan proto.Message
	pid *actor.PID
}

func (r replyTo) send(root *actor.RootContext, msg proto.Message) {
	switch {
	case r.ch != nil:
		r.ch <- msg // one slot, one reply per ask: never blocks
	case r.pid != nil:
		root.Send(r.pid, msg)
	}
}

// message unwraps the current message, noting where its reply goes. Actor
// kinds call it once per user message and switch on what it returns.
func (b *base) message(c actor.Context) any {
	if _, ok := c.Message().(idleCheck); !ok {
		b.noteActivity()
	}
	if a, ok := c.Message().(*localAsk); ok {
		b.to = replyTo{ch: a.ch}
		b.cur = a.msg
		return a.msg
	}
	b.to = replyTo{pid: c.Sender()}
	b.cur = c.Message()
	return b.cur
}

// respond answers the current message's sender now.
func (b *base) respond(c actor.Context, msg proto.Message) {
	b.to.send(c.ActorSystem().Root, msg)
}

func (b *base) fail(c actor.Context, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = errorf(ErrStoreFailed, "%v", err)
		if !errors.Is(err, persistence.ErrFailed) && !errors.Is(err, persistence.ErrClosed) {
			e = &Error{Code: "internal_error", Message: err.Error()}
		}
	}
	b.respond(c, e.failure())
}

// commit makes ops durable and then answers the sender with reply (or a
// failure). The actor goes on with its next message meanwhile; records are
// ordered, so anything it answers later is durable after these ops are.
// With noSync the answer follows the write's application, not its fsync.
func (b *base) commit(c actor.Context, ops []persistence.Op, reply proto.Message, noSync bool) {
	b.commitThen(c, ops, reply, noSync, nil)
}

// commitThen is commit that runs then (on the store's goroutine, in
// commit order) once ops are durable and before the reply is sent: what
// other actors may see of this change is published only when it cannot be
// taken back.
func (b *base) commitThen(c actor.Context, ops []persistence.Op, reply proto.Message, noSync bool, then func()) {
	to := b.to
	root := c.ActorSystem().Root
	notify := b.env.Notify != nil && hasEvent(ops)
	b.pending.Add(1)
	b.env.Store.Submit(persistence.Write{Ops: ops, NoSync: noSync, Done: func(err error) {
		b.pending.Add(-1)
		if then != nil && err == nil {
			then()
		}
		if notify && err == nil {
			b.env.Notify()
		}
		if reply == nil {
			return // a write with no reply of its own
		}
		if err != nil {
			to.send(root, errorf(ErrStoreFailed, "%v", err).failure())
			return
		}
		to.send(root, reply)
	}})
}

// flushOps submits ops with no reply of its own; a reply that follows
// waits for them through respondDurable (or the ordering of commit).
func (b *base) flushOps(ops []persistence.Op, noSync bool) {
	b.pending.Add(1)
	b.env.Store.Submit(persistence.Write{Ops: ops, NoSync: noSync, Done: func(error) { b.pending.Add(-1) }})
}

// respondDurable answers with reply once every write this actor submitted
// so far is durable: reads never show state a crash could take back.
func (b *base) respondDurable(c actor.Context, reply proto.Message) {
	if b.pending.Load() == 0 {
		b.respond(c, reply)
		return
	}
	b.commit(c, nil, reply, false)
}

// waitApplied blocks until every write submitted to the store before now
// is applied, so an activation reads what a passivated predecessor wrote.
func (b *base) waitApplied() {
	done := make(chan struct{})
	b.env.Store.Submit(persistence.Write{NoSync: true, Done: func(error) { close(done) }})
	<-done
}

// readYourWrites makes this actor's submitted writes visible to store reads
// (applied, not necessarily synced) before it reads an index it maintains.
func (b *base) readYourWrites() {
	if b.pending.Load() > 0 {
		b.waitApplied()
	}
}

func (b *base) now() time.Time { return b.env.Clock.Now() }

// snapshot copies actor state into a reply. Replies travel by pointer to
// another goroutine (the caller, or the store's when the reply waits for
// durability) while the actor goes on mutating its state: a reply that
// shared the actor's own record would race with the next message and
// could show a balance and a reserved amount from different instants.
func snapshot[T proto.Message](m T) T { return proto.Clone(m).(T) }

func marshal(m proto.Message) []byte {
	out, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic("actors: marshal " + string(m.ProtoReflect().Descriptor().FullName()) + ": " + err.Error())
	}
	return out
}

// refusePassivated answers a message that reached an actor already
// passivating; the directory retries it on a fresh activation.
func (b *base) refusePassivated(c actor.Context) {
	b.respond(c, errPassivated.failure())
}

// idempotent looks up the idempotency record of acct for (route, key): it
// returns the stored reply when the same request was made before, an error
// when the key was used with another request, or nil, nil when the key is
// new. The record itself is written by [account.remember].
func (b *base) idempotent(acct *account, route, key string, hash []byte) (*pb.IdempotencyRecord, error) {
	b.readYourWrites()
	raw, err := b.env.Store.Get(acct.idempotencyKey(route, key))
	if errors.Is(err, persistence.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec pb.IdempotencyRecord
	if err := proto.Unmarshal(raw, &rec); err != nil {
		return nil, err
	}
	if string(rec.RequestHash) != string(hash) {
		return nil, errorf(ErrIdempotencyReused, "Idempotency-Key %q was already used with a different request", key)
	}
	return &rec, nil
}

func hasEvent(ops []persistence.Op) bool {
	for _, op := range ops {
		if len(op.Key) > 0 && op.Key[0] == persistence.FamilyOutbox {
			return true
		}
	}
	return false
}
