package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Idle passivation. Protoactor's receive timeout gives every actor a timer
// and the context extras that hold it (~300 bytes of an idle actor, see
// BenchmarkProtoactorFloor) and stops and resets that timer around every
// message. An actor of the directory whose identity exists uses the
// directory's idle sweep instead: it notes the sweep's tick at each message
// (one atomic load), its directory entry says when to look at it next, and
// a single goroutine, ticking idleSweepsPerTimeout times per
// Env.IdleTimeout, sends an idleCheck to every actor due (none with a call
// in flight). The actor passivates if no message came for at least
// IdleTimeout (at most a tick more), and otherwise asks to be looked at
// again when that would be so. One that declines to passivate (open
// reservations, writes in flight, a call in flight) is looked at again
// after another IdleTimeout.
//
// An actor for an identity that does not exist goes after a second: it
// keeps protoactor's receive timeout (such actors are few and short-lived).

// idleCheck, sent by the idle sweep, asks an actor to passivate if it has
// been idle for Env.IdleTimeout. It does not count as a message for
// idleness and never crosses nodes.
type idleCheck struct{}

// idleSweepsPerTimeout is how many times per Env.IdleTimeout the sweep
// looks for idle actors: an actor passivates between IdleTimeout and
// IdleTimeout plus a quarter of it after its last message.
const idleSweepsPerTimeout = 4

// startIdleSweep starts the sweep goroutine if actors passivate at all
// (Env.IdleTimeout > 0); Close stops it.
func (d *Local) startIdleSweep() {
	t := d.env.IdleTimeout
	if t <= 0 {
		return
	}
	period := max(t/idleSweepsPerTimeout, time.Millisecond)
	d.idleTicks = int64((t+period-1)/period) + 1 // a tick may have just begun at the last message
	d.sweepQuit, d.sweepDone = make(chan struct{}), make(chan struct{})
	go d.idleSweep(period)
}

func (d *Local) idleSweep(period time.Duration) {
	defer close(d.sweepDone)
	tk := time.NewTicker(period)
	defer tk.Stop()
	var due []*actor.PID
	for {
		select {
		case <-d.sweepQuit:
			return
		case <-tk.C:
		}
		tick := d.tick.Add(1)
		for i := range d.shards {
			s := &d.shards[i]
			due = due[:0]
			s.mu.Lock()
			for _, e := range s.m {
				if e.checkAt != 0 && e.checkAt <= tick && e.inflight == 0 {
					e.checkAt = 0 // the actor arms it again if it stays
					due = append(due, e.pid)
				}
			}
			s.mu.Unlock()
			for _, pid := range due {
				d.system.Root.Send(pid, idleCheck{})
			}
		}
	}
}

// stopIdleSweep stops the sweep and waits for it.
func (d *Local) stopIdleSweep() {
	if d.sweepQuit != nil {
		close(d.sweepQuit)
		<-d.sweepDone
		d.sweepQuit = nil
	}
}

// armIdle asks the sweep to send the actor named id (as pid) an idleCheck
// at tick at; it reports false if the directory has no entry for it.
func (d *Local) armIdle(id Identity, pid *actor.PID, at int64) bool {
	s := d.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[id]
	if e == nil || !e.pid.Equal(pid) {
		return false
	}
	e.checkAt = at
	return true
}

// sweeps reports whether b's idleness is the directory's sweep's to watch.
func (b *base) sweeps() bool { return b.env.dir != nil && b.env.dir.idleTicks > 0 }

// noteActivity records that b received a message (any but an idleCheck).
func (b *base) noteActivity() {
	if b.sweeps() {
		b.lastActive = b.env.dir.tick.Load()
	}
}

// startIdle arms b's passivation after d without messages (once it has
// started): the sweep's when d is Env.IdleTimeout, protoactor's receive
// timeout otherwise (or if the directory does not know b).
func (b *base) startIdle(c actor.Context, d time.Duration) {
	if d == b.env.IdleTimeout && b.sweeps() {
		dir := b.env.dir
		b.lastActive = dir.tick.Load()
		if dir.armIdle(b.id, b.self, b.lastActive+dir.idleTicks) {
			return
		}
	}
	c.SetReceiveTimeout(d)
}

// idleDue answers an idleCheck: true if b received no message for
// Env.IdleTimeout; otherwise the sweep looks again when that would be so.
func (b *base) idleDue() bool {
	if !b.sweeps() {
		return false
	}
	dir := b.env.dir
	if dir.tick.Load()-b.lastActive >= dir.idleTicks {
		return true
	}
	dir.armIdle(b.id, b.self, b.lastActive+dir.idleTicks)
	return false
}

// stayIdle, after b declined to passivate, has the sweep look at it again
// after another Env.IdleTimeout.
func (b *base) stayIdle() {
	if b.sweeps() {
		dir := b.env.dir
		dir.armIdle(b.id, b.self, dir.tick.Load()+dir.idleTicks)
	}
}
