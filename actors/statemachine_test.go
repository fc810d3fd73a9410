package actors

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	randv2 "math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// TestEndUserActorMatchesModel is reliability.md L-11 (with F-2's power
// loss): a seeded random sequence of top-ups, debits (some with reused
// Idempotency-Keys), admissions, settlements, releases, suspensions, clock
// steps across period boundaries (and backwards), passivations, graceful
// restarts and power cuts runs against the real end-user actor (Local
// directory, Pebble store on a crashable in-memory FS) and against a
// trivial model. After every step both end-users' balances, reservations
// and complete ledgers must be identical to the model's.
//
// A power cut clones the FS keeping only what was synced (and sometimes a
// random part of what was not, to tear the WAL tail), drops the old node
// and opens a new one on the clone. Every acknowledged mutation must be
// there. Reservation records are written without fsync by design, so the
// model knows only which of them must survive (a synced write was
// acknowledged after them) and which may; recovery must void exactly a set
// between the two with unsettled_on_crash entries.
//
// GATEWAY_SM_SEEDS=n runs n seeds instead of 4; a failure names its seed.
func TestEndUserActorMatchesModel(t *testing.T) {
	seeds := 4
	if v, err := strconv.Atoi(os.Getenv("GATEWAY_SM_SEEDS")); err == nil && v > 0 {
		seeds = v
	}
	steps := 400
	if testing.Short() {
		steps = 100
	}
	did := map[string]int{}
	for seed := int64(1); seed <= int64(seeds); seed++ {
		t.Run("seed="+strconv.FormatInt(seed, 10), func(t *testing.T) {
			for k, n := range runModel(t, seed, steps) {
				did[k] += n
			}
		})
	}
	// A run that never exercised a branch would pass vacuously.
	for _, k := range []string{"topup", "debit", "debit refused", "replay", "key reused", "admit", "admit refused",
		"settle", "uncharged", "release", "reset", "passivated", "restart", "crash", "voided", "amount"} {
		if did[k] == 0 && !t.Failed() {
			t.Errorf("%d seeds × %d steps never exercised %q; change the mix", seeds, steps, k)
		}
	}
	t.Logf("exercised: %v", did)
}

type smNode struct {
	fs    *vfs.MemFS
	store *persistence.Store
	env   *Env
	dir   *Local
}

type smKey struct {
	hash    []byte
	amount  int64
	reply   *pb.BudgetView
	refused string // the code of a remembered refusal (reply is nil)
}

// smResv is an admitted, not yet settled reservation, with what the model
// knows about the durability of its record.
type smResv struct {
	amount   int64
	open     bool
	setEpoch int // syncs acknowledged when it was admitted
	relEpoch int // ... when it was released
}

// smUser is the model of one end-user: a balance, a map and a list.
type smUser struct {
	id          ids.EndUserID
	period      string
	amount      int64
	balance     int64
	periodStart int64
	reserved    int64
	suspended   bool
	ledger      []*pb.LedgerEntry
	keys        map[string]smKey // route + "\x00" + key
	resv        map[string]*smResv
	nextRes     int
	reconcile   bool // a restart happened: expect unsettled_on_crash entries
	mustVoid    map[string]bool
	mayVoid     map[string]bool
}

type smHarness struct {
	t     *testing.T
	seed  int64
	step  int
	rng   *rand.Rand
	clk   *clock.Fake
	node  smNode
	pid   ids.PlatformID
	users []*smUser
	syncs int // synced writes acknowledged so far (store-wide)
	log   *slog.Logger
	// counts of what actually happened, so a run that never exercised
	// something fails instead of passing vacuously
	did map[string]int
}

func runModel(t *testing.T, seed int64, steps int) map[string]int {
	start := time.Date(2025, 1, 30, 22, 0, 0, 0, time.UTC)
	h := &smHarness{
		t: t, seed: seed, rng: rand.New(rand.NewSource(seed)), clk: clock.NewFake(start),
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), did: map[string]int{},
	}
	h.open(vfs.NewCrashableMem())
	defer func() { h.node.dir.Close(); _ = h.node.store.Close() }()

	h.pid = ids.PlatformID(ids.New(ids.PlatformPrefix, start))
	if _, err := h.ask(PlatformActor(h.pid), &pb.CreatePlatform{Name: "model", KeyName: "k"}); err != nil {
		t.Fatalf("CreatePlatform: %v", err)
	}
	h.syncs++
	for i, period := range []string{PeriodDaily, PeriodMonthly} {
		res, err := h.ask(PlatformActor(h.pid), &pb.CreateEndUser{ExternalId: "ext-" + strconv.Itoa(i)})
		if err != nil {
			t.Fatalf("CreateEndUser: %v", err)
		}
		h.syncs++
		u := &smUser{id: ids.EndUserID(res.(*pb.EndUserCreated).EndUser.Id), period: period,
			keys: map[string]smKey{}, resv: map[string]*smResv{}}
		u.amount = int64(5 * money.PerUSD)
		if _, err := h.ask(h.actor(u), &pb.SetBudget{Create: true, Budget: &pb.Budget{AmountNanos: u.amount, Period: period}}); err != nil {
			t.Fatalf("SetBudget: %v", err)
		}
		h.syncs++
		u.balance = u.amount
		u.periodStart = periodStart(period, h.clk.Now()).UnixMilli()
		u.add(EntryBudgetSet, u.amount, h.clk.Now().UnixMilli(), nil)
		h.users = append(h.users, u)
	}
	h.check("setup")

	for h.step = 1; h.step <= steps; h.step++ {
		u := h.users[h.rng.Intn(len(h.users))]
		var what string
		switch r := h.rng.Intn(100); {
		case r < 17:
			what = h.opMove(u, false)
		case r < 33:
			what = h.opMove(u, true)
		case r < 51:
			what = h.opAdmit(u)
		case r < 68:
			what = h.opSettle(u)
		case r < 74:
			what = h.opRelease(u)
		case r < 77:
			switch {
			case u.suspended || h.rng.Intn(3) == 0:
				what = h.opSuspend(u)
			case h.rng.Intn(2) == 0:
				what = h.opAmount(u)
			default:
				what = h.opRelease(u)
			}
		case r < 86:
			what = h.opClock(u)
		case r < 91:
			what = h.opPassivate(u)
		case r < 94:
			what = h.opRestart()
		default:
			what = h.opCrash()
		}
		h.check(what)
		if t.Failed() {
			t.Fatalf("seed %d: stopped at step %d (%s)", seed, h.step, what)
		}
	}
	return h.did
}

func (h *smHarness) open(fs *vfs.MemFS) {
	h.t.Helper()
	cfg := persistence.DefaultConfig()
	cfg.Dir = "/data"
	cfg.FS = fs
	cfg.Logger = h.log
	cfg.OnFatal = func(err error) { h.t.Errorf("store failed: %v", err) }
	st, err := persistence.Open(cfg)
	if err != nil {
		h.t.Fatalf("seed %d step %d: reopen the store: %v", h.seed, h.step, err)
	}
	env := NewEnv(st, h.clk, h.log)
	env.IdleTimeout = time.Hour // passivation is driven by the test
	h.node = smNode{fs: fs, store: st, env: env, dir: NewLocal(env)}
}

func (h *smHarness) ask(id Identity, msg proto.Message) (proto.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.node.dir.Ask(ctx, id, msg)
}

func (h *smHarness) actor(u *smUser) Identity { return EndUserActor(h.pid, u.id) }

func (h *smHarness) fatalf(format string, args ...any) {
	h.t.Helper()
	h.t.Fatalf("seed %d step %d: "+format, append([]any{h.seed, h.step}, args...)...)
}

// wantErr checks that err is a refusal with code.
func (h *smHarness) wantErr(what string, err error, code *Error) {
	h.t.Helper()
	if !errors.Is(err, code) {
		h.fatalf("%s: err = %v, want %s", what, err, code.Code)
	}
}

// add appends a model entry with the balance as it is now.
func (u *smUser) add(typ string, amount, atMs int64, fill func(*pb.LedgerEntry)) *pb.LedgerEntry {
	e := &pb.LedgerEntry{Seq: uint64(len(u.ledger) + 1), Type: typ, AmountNanos: amount,
		BalanceAfterNanos: u.balance, CreatedAtMs: atMs, Account: string(u.id)}
	if fill != nil {
		fill(e)
	}
	u.ledger = append(u.ledger, e)
	return e
}

// touch is what every message does first: the lazy period reset.
func (h *smHarness) touch(u *smUser) {
	boundary := periodStart(u.period, h.clk.Now()).UnixMilli()
	if boundary <= u.periodStart {
		return
	}
	delta := u.amount - u.balance
	u.balance = u.amount
	u.periodStart = boundary
	u.add(EntryPeriodReset, delta, boundary, func(e *pb.LedgerEntry) { e.Reason = "period_reset" })
	h.syncs++ // the reset is flushed synced; the reply that follows waits for it
	h.did["reset"]++
}

// amount draws from exact small amounts and the odd nano.
func (h *smHarness) amount(maxUSD int64) int64 {
	switch h.rng.Intn(4) {
	case 0:
		return 1 + h.rng.Int63n(1000) // nanos
	default:
		return 1 + h.rng.Int63n(maxUSD*int64(money.PerUSD))
	}
}

func hashOf(amount int64) []byte {
	s := sha256.Sum256([]byte(strconv.FormatInt(amount, 10)))
	return s[:]
}

func (h *smHarness) opMove(u *smUser, debit bool) string {
	route := "topup"
	if debit {
		route = "debit"
	}
	amount := h.amount(3)
	var key string
	if h.rng.Intn(2) == 0 {
		key = "key-" + strconv.Itoa(h.rng.Intn(6))
		if k, ok := u.keys[route+"\x00"+key]; ok && h.rng.Intn(4) != 0 {
			amount = k.amount // the same request again
		}
	}
	what := fmt.Sprintf("%s %s key=%q", route, money.Nanos(amount), key)
	res, err := h.ask(h.actor(u), &pb.BudgetTopup{AmountNanos: amount, IdempotencyKey: key,
		RequestHash: hashOf(amount), Reason: "model", RequestId: "req-" + strconv.Itoa(h.step), Debit: debit})
	h.touch(u)
	if key != "" {
		if k, ok := u.keys[route+"\x00"+key]; ok {
			if k.amount != amount {
				h.wantErr(what, err, ErrIdempotencyReused)
				h.did["key reused"]++
				return what + " → reused"
			}
			if k.refused != "" {
				var re *Error
				if !errors.As(err, &re) || re.Code != k.refused || !re.Replayed {
					h.fatalf("%s: replay of a refusal = %v, want the remembered %s marked replayed", what, err, k.refused)
				}
				h.did["refusal replayed"]++
				return what + " → refusal replayed"
			}
			if err != nil {
				h.fatalf("%s: replay failed: %v", what, err)
			}
			v := res.(*pb.BudgetView)
			if !v.Replayed {
				h.fatalf("%s: replay not marked Replayed", what)
			}
			v = proto.Clone(v).(*pb.BudgetView)
			v.Replayed = false
			if !proto.Equal(v, k.reply) {
				h.fatalf("%s: replay = %v, want the original reply %v", what, v, k.reply)
			}
			h.did["replay"]++
			return what + " → replayed"
		}
	}
	if debit && amount > u.balance-u.reserved {
		h.wantErr(what, err, ErrBudgetExhausted)
		h.did["debit refused"]++
		if key != "" {
			// Remembered under the key (synced with a record).
			u.keys[route+"\x00"+key] = smKey{hash: hashOf(amount), amount: amount, refused: ErrBudgetExhausted.Code}
			h.syncs++
		}
		return what + " → exhausted"
	}
	if err != nil {
		h.fatalf("%s: %v", what, err)
	}
	signed := amount
	typ := EntryTopup
	if debit {
		signed, typ = -amount, EntryDebit
	}
	u.balance += signed
	want := u.add(typ, signed, h.clk.Now().UnixMilli(), func(e *pb.LedgerEntry) {
		e.IdempotencyKey, e.Reason, e.RequestId = key, "model", "req-"+strconv.Itoa(h.step)
	})
	h.syncs++
	v := res.(*pb.BudgetView)
	if v.Budget.GetBalanceNanos() != u.balance || v.ReservedNanos != u.reserved || v.Replayed {
		h.fatalf("%s: reply balance %d reserved %d replayed %v, want %d %d false", what,
			v.Budget.GetBalanceNanos(), v.ReservedNanos, v.Replayed, u.balance, u.reserved)
	}
	if got, w := entryText(v.Entry), entryText(want); got != w {
		h.fatalf("%s: reply entry %s, want %s", what, got, w)
	}
	if key != "" {
		u.keys[route+"\x00"+key] = smKey{hash: hashOf(amount), amount: amount, reply: proto.Clone(v).(*pb.BudgetView)}
	}
	h.did[route]++
	return what
}

func (h *smHarness) opAdmit(u *smUser) string {
	id := fmt.Sprintf("r%d", u.nextRes)
	u.nextRes++
	cost := h.amount(2)
	what := fmt.Sprintf("admit %s cost=%s", id, money.Nanos(cost))
	_, err := h.ask(h.actor(u), &pb.Admit{ReservationId: id, RequestId: "req-" + id, EstimatedTokens: 100, MaxCostNanos: cost})
	h.touch(u)
	switch {
	case u.suspended:
		h.wantErr(what, err, ErrBudgetSuspended)
		h.did["admit refused"]++
		return what + " → suspended"
	case cost > u.balance-u.reserved:
		h.wantErr(what, err, ErrBudgetExhausted)
		h.did["admit refused"]++
		return what + " → exhausted"
	case err != nil:
		h.fatalf("%s: %v", what, err)
	}
	u.reserved += cost
	u.resv[id] = &smResv{amount: cost, open: true, setEpoch: h.syncs}
	h.did["admit"]++
	return what
}

// pick returns an open reservation, or now and then one that is not open.
func (h *smHarness) pick(u *smUser) string {
	var open []string
	for id, r := range u.resv {
		if r.open {
			open = append(open, id)
		}
	}
	sort.Strings(open)
	if len(open) == 0 || h.rng.Intn(10) == 0 {
		return fmt.Sprintf("r%d", h.rng.Intn(u.nextRes+1))
	}
	return open[h.rng.Intn(len(open))]
}

func (h *smHarness) opSettle(u *smUser) string {
	id := h.pick(u)
	cost := h.amount(4)
	what := fmt.Sprintf("settle %s cost=%s", id, money.Nanos(cost))
	_, err := h.ask(h.actor(u), &pb.Settle{ReservationId: id, CostNanos: cost, Tokens: 50, RequestId: "req-" + id, Model: "m"})
	h.touch(u)
	r := u.resv[id]
	if r == nil || !r.open {
		h.wantErr(what, err, ErrReservationUnknown)
		return what + " → unknown"
	}
	if err != nil {
		h.fatalf("%s: %v", what, err)
	}
	delete(u.resv, id) // the settlement deletes the record, synced
	u.reserved -= r.amount
	charge := min(cost, max(u.balance-u.reserved, 0))
	u.balance -= charge
	u.add(EntryUsage, -charge, h.clk.Now().UnixMilli(), func(e *pb.LedgerEntry) {
		e.RequestId, e.Model, e.UnchargedNanos = "req-"+id, "m", cost-charge
	})
	h.syncs++
	h.did["settle"]++
	if cost > charge {
		h.did["uncharged"]++
	}
	return what
}

func (h *smHarness) opRelease(u *smUser) string {
	id := h.pick(u)
	what := "release " + id
	if _, err := h.ask(h.actor(u), &pb.Release{ReservationId: id}); err != nil {
		h.fatalf("%s: %v", what, err)
	}
	h.touch(u)
	if r := u.resv[id]; r != nil && r.open {
		r.open = false
		r.relEpoch = h.syncs
		u.reserved -= r.amount
		h.did["release"]++
	}
	return what
}

func (h *smHarness) opSuspend(u *smUser) string {
	want := !u.suspended
	what := fmt.Sprintf("set is_suspended=%v", want)
	if _, err := h.ask(h.actor(u), &pb.SetBudget{Budget: &pb.Budget{IsSuspended: want}, Fields: []string{"is_suspended"}}); err != nil {
		h.fatalf("%s: %v", what, err)
	}
	h.touch(u)
	u.suspended = want
	h.syncs++
	return what
}

// opAmount changes the budget's period amount: the balance moves by the
// difference, never below zero.
func (h *smHarness) opAmount(u *smUser) string {
	amount := h.amount(8)
	what := fmt.Sprintf("set amount_usd=%s", money.Nanos(amount))
	res, err := h.ask(h.actor(u), &pb.SetBudget{Budget: &pb.Budget{AmountNanos: amount}, Fields: []string{"amount_usd"}})
	if err != nil {
		h.fatalf("%s: %v", what, err)
	}
	h.touch(u)
	delta := max(amount-u.amount, -u.balance)
	u.amount = amount
	if delta != 0 {
		u.balance += delta
		u.add(EntryBudgetSet, delta, h.clk.Now().UnixMilli(), func(e *pb.LedgerEntry) { e.Reason = "amount changed" })
	}
	h.syncs++
	if v := res.(*pb.BudgetView); v.Budget.BalanceNanos != u.balance || v.Budget.AmountNanos != u.amount {
		h.fatalf("%s: reply balance %d amount %d, model %d %d", what, v.Budget.BalanceNanos, v.Budget.AmountNanos, u.balance, u.amount)
	}
	h.did["amount"]++
	return what
}

// opClock moves the clock (across period boundaries, sometimes backwards)
// and lists the ledger first thing, so a reset must show in that very
// listing.
func (h *smHarness) opClock(u *smUser) string {
	steps := []time.Duration{time.Minute, 90 * time.Minute, 13 * time.Hour, 24 * time.Hour, 3 * 24 * time.Hour, 33 * 24 * time.Hour, -2 * time.Hour, -26 * time.Hour}
	d := steps[h.rng.Intn(len(steps))]
	h.clk.Advance(d)
	what := fmt.Sprintf("clock %+v → %s, list", d, h.clk.Now().Format(time.RFC3339))
	h.touch(u)
	h.compareLedger(u, what)
	return what
}

// actorPID returns the resident activation of id, or nil.
func (h *smHarness) actorPID(id Identity) *actor.PID {
	d := h.node.dir
	s := d.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[id]; e != nil {
		return e.pid
	}
	return nil
}

// opPassivate delivers the idle timeout to the actor now. An actor with
// open reservations (or writes in flight) must stay; one without must go,
// and its next activation must load exactly the same state.
func (h *smHarness) opPassivate(u *smUser) string {
	id := h.actor(u)
	holds := false
	for _, r := range u.resv {
		holds = holds || r.open
	}
	for i := 0; i < 500; i++ {
		pid := h.actorPID(id)
		if pid == nil {
			h.did["passivated"]++
			return "passivate (gone)"
		}
		h.node.dir.system.Root.Send(pid, &actor.ReceiveTimeout{})
		if holds {
			return "passivate (holds reservations: stays)"
		}
		time.Sleep(time.Millisecond) // poll; not a timing assertion
	}
	h.fatalf("an idle actor without reservations did not passivate")
	return ""
}

// opRestart stops the node gracefully and starts it again on the same FS.
func (h *smHarness) opRestart() string {
	h.node.dir.Close()
	if err := h.node.store.Close(); err != nil {
		h.fatalf("close: %v", err)
	}
	h.open(h.node.fs)
	// A graceful close flushes everything, unsynced records included: every
	// open reservation's record is there and must be voided; released ones
	// are gone.
	for _, u := range h.users {
		u.mustVoid, u.mayVoid = map[string]bool{}, map[string]bool{}
		for id, r := range u.resv {
			if r.open {
				u.mustVoid[id], u.mayVoid[id] = true, true
			}
		}
		h.afterRestart(u)
	}
	h.did["restart"]++
	return "graceful restart"
}

// opCrash cuts the power: only synced data survives (plus, sometimes, a
// random part of the unsynced tail).
func (h *smHarness) opCrash() string {
	pct := []int{0, 0, 20, 60}[h.rng.Intn(4)]
	cfg := vfs.CrashCloneCfg{UnsyncedDataPercent: pct}
	if pct > 0 {
		cfg.RNG = randv2.New(randv2.NewPCG(uint64(h.seed), uint64(h.step)))
	}
	crashed := h.node.fs.CrashClone(cfg)
	h.node.dir.Close()
	_ = h.node.store.Close() // writes only to the old FS
	h.open(crashed)
	for _, u := range h.users {
		u.mustVoid, u.mayVoid = map[string]bool{}, map[string]bool{}
		for id, r := range u.resv {
			// The record is durable once a synced write was acknowledged
			// after it; its release's delete likewise.
			if r.open && h.syncs > r.setEpoch {
				u.mustVoid[id] = true
			}
			if r.open || h.syncs == r.relEpoch {
				u.mayVoid[id] = true
			}
		}
		h.afterRestart(u)
	}
	h.did["crash"]++
	return fmt.Sprintf("power cut (unsynced kept %d%%)", pct)
}

func (h *smHarness) afterRestart(u *smUser) {
	u.reserved = 0
	u.resv = map[string]*smResv{}
	u.reconcile = true
}

// check compares both end-users with the model.
func (h *smHarness) check(what string) {
	h.t.Helper()
	for _, u := range h.users {
		res, err := h.ask(h.actor(u), &pb.GetBudget{})
		if err != nil {
			h.fatalf("after %s: GetBudget: %v", what, err)
		}
		h.touch(u)
		if u.reconcile {
			h.reconcile(u, what)
		}
		v := res.(*pb.BudgetView)
		b := v.Budget
		if b.BalanceNanos != u.balance || v.ReservedNanos != u.reserved || b.IsSuspended != u.suspended ||
			b.PeriodStartMs != u.periodStart || b.AmountNanos != u.amount {
			h.fatalf("after %s: %s budget balance=%d reserved=%d suspended=%v period_start=%d amount=%d; model %d %d %v %d %d",
				what, u.id, b.BalanceNanos, v.ReservedNanos, b.IsSuspended, b.PeriodStartMs, b.AmountNanos,
				u.balance, u.reserved, u.suspended, u.periodStart, u.amount)
		}
		if u.balance < 0 {
			h.fatalf("after %s: model balance negative", what)
		}
		h.compareLedger(u, what)
	}
}

// reconcile accepts the unsettled_on_crash entries recovery wrote: one per
// voided reservation, amount 0, only for reservations whose record could
// have survived, and for every one that had to.
func (h *smHarness) reconcile(u *smUser, what string) {
	u.reconcile = false
	got := h.readLedger(u, what)
	if len(got) < len(u.ledger) {
		h.fatalf("after %s: %s ledger has %d entries, the model %d: acknowledged entries were lost", what, u.id, len(got), len(u.ledger))
	}
	seen := map[string]bool{}
	for _, e := range got[len(u.ledger):] {
		id, _ := strings.CutPrefix(e.RequestId, "req-")
		if e.Type != EntryUnsettledOnCrash || e.AmountNanos != 0 || e.BalanceAfterNanos != u.balance || !u.mayVoid[id] || seen[id] {
			h.fatalf("after %s: recovery wrote %s; may void %v", what, entryText(e), u.mayVoid)
		}
		seen[id] = true
		u.add(EntryUnsettledOnCrash, 0, e.CreatedAtMs, func(m *pb.LedgerEntry) {
			m.RequestId, m.UnchargedNanos, m.Reason = e.RequestId, e.UnchargedNanos, e.Reason
		})
		h.did["voided"]++
	}
	for id := range u.mustVoid {
		if !seen[id] {
			h.fatalf("after %s: reservation %s was durable but recovery did not void it", what, id)
		}
	}
}

func (h *smHarness) readLedger(u *smUser, what string) []*pb.LedgerEntry {
	var all []*pb.LedgerEntry
	var before uint64
	for {
		res, err := h.ask(h.actor(u), &pb.ListLedger{Account: string(u.id), Limit: 1000, BeforeSeq: before})
		if err != nil {
			h.fatalf("after %s: ListLedger: %v", what, err)
		}
		p := res.(*pb.LedgerPage)
		all = append(all, p.Entries...)
		if p.NextBeforeSeq == 0 {
			break
		}
		before = p.NextBeforeSeq
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Seq < all[j].Seq })
	return all
}

func (h *smHarness) compareLedger(u *smUser, what string) {
	h.t.Helper()
	got := h.readLedger(u, what)
	var sum int64
	for _, e := range got {
		sum += e.AmountNanos
	}
	if sum != u.balance {
		h.fatalf("after %s: %s ledger sums to %d, model balance %d", what, u.id, sum, u.balance)
	}
	if len(got) != len(u.ledger) {
		h.fatalf("after %s: %s ledger has %d entries, model %d; last: %s / %s", what, u.id, len(got), len(u.ledger),
			entryText(got[len(got)-1]), entryText(u.ledger[len(u.ledger)-1]))
	}
	for i := range got {
		if g, w := entryText(got[i]), entryText(u.ledger[i]); g != w {
			h.fatalf("after %s: %s entry %d\n got  %s\n want %s", what, u.id, i, g, w)
		}
	}
}

// entryText renders the fields the model predicts (not ids).
func entryText(e *pb.LedgerEntry) string {
	if e == nil {
		return "<nil>"
	}
	return fmt.Sprintf("#%d %s %d bal=%d at=%s key=%q req=%q uncharged=%d",
		e.Seq, e.Type, e.AmountNanos, e.BalanceAfterNanos, time.UnixMilli(e.CreatedAtMs).UTC().Format(time.RFC3339Nano),
		e.IdempotencyKey, e.RequestId, e.UnchargedNanos)
}
