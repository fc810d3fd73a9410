package actors

import (
	"context"
	"log/slog"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// residentWithin reports whether id's residency becomes want within a
// generous bound (a failure means it never would: no timing is asserted).
func residentWithin(d *Local, id Identity, want bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if slices.Contains(d.Residents(), id) == want {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestIdleSweepPassivatesIdleActorsOnly: with the idle sweep, an end-user
// actor holding an open reservation stays resident past IdleTimeout, and
// passivates once the call is settled and IdleTimeout has passed again;
// the sweep's checks are no activity of their own.
func TestIdleSweepPassivatesIdleActorsOnly(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	cfg := persistence.DefaultConfig()
	cfg.Dir, cfg.FS, cfg.Logger = "/data", vfs.NewMem(), log
	st, err := persistence.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	env := NewEnv(st, nil, log)
	env.IdleTimeout = 100 * time.Millisecond
	d := NewLocal(env)
	defer func() { d.Close(); st.Close() }()
	if d.idleTicks == 0 {
		t.Fatal("NewLocal started no idle sweep")
	}
	ctx := context.Background()
	pid := ids.PlatformID(ids.New(ids.PlatformPrefix, time.Now()))
	settings := &pb.PlatformSettings{DefaultBudget: &pb.BudgetTemplate{AmountNanos: int64(20 * money.PerUSD), Period: PeriodMonthly}}
	if _, err := d.Ask(ctx, PlatformActor(pid), &pb.CreatePlatform{Name: "idle", Settings: settings}); err != nil {
		t.Fatal(err)
	}
	res, err := d.Ask(ctx, PlatformActor(pid), &pb.CreateEndUser{ExternalId: "x"})
	if err != nil {
		t.Fatal(err)
	}
	eu := EndUserActor(pid, ids.EndUserID(res.(*pb.EndUserCreated).EndUser.Id))
	if _, err := d.Ask(ctx, eu, &pb.Admit{ReservationId: "r1", RequestId: "r1", EstimatedTokens: 10, MaxCostNanos: 1000}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * env.IdleTimeout) // several sweeps: the actor declines each
	if !slices.Contains(d.Residents(), eu) {
		t.Fatal("an end-user actor holding an open reservation passivated")
	}
	if _, err := d.Ask(ctx, eu, &pb.Settle{ReservationId: "r1", RequestId: "r1", CostNanos: 500, Tokens: 5}); err != nil {
		t.Fatal(err)
	}
	if !residentWithin(d, eu, false) {
		t.Error("the end-user actor stayed resident after its last call was settled")
	}
	if !residentWithin(d, PlatformActor(pid), false) {
		t.Error("the idle platform actor stayed resident")
	}
	// A later call activates it afresh, with its state.
	if _, err := d.Ask(ctx, eu, &pb.GetEndUser{}); err != nil {
		t.Fatal(err)
	}
}

// TestLocalCloseEndsItsGoroutines: Close stops the idle sweep and the
// mailbox workers; nothing Local started outlives it.
func TestLocalCloseEndsItsGoroutines(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	cfg := persistence.DefaultConfig()
	cfg.Dir, cfg.FS, cfg.Logger = "/data", vfs.NewMem(), log
	st, err := persistence.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	before := runtime.NumGoroutine()
	env := NewEnv(st, nil, log)
	env.IdleTimeout = 50 * time.Millisecond
	d := NewLocal(env)
	pid := ids.PlatformID(ids.New(ids.PlatformPrefix, time.Now()))
	if _, err := d.Ask(context.Background(), PlatformActor(pid), &pb.CreatePlatform{Name: "close"}); err != nil {
		t.Fatal(err)
	}
	if d.pool == nil || d.sweepQuit == nil {
		t.Fatal("NewLocal started no mailbox workers or no idle sweep")
	}
	d.Close()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
