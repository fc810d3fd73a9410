package actors

import (
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/persistence"

	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
)

// BenchmarkAdmitSettle is one inference call's pure money work: admit (rate
// windows, worst-case reservation) and settle (release, usage entry, TPM
// correction) on one account. No I/O, no actor.
func BenchmarkAdmitSettle(b *testing.B) {
	for _, c := range []struct {
		name string
		lim  *pb.RateLimits
	}{
		{"no-limits", &pb.RateLimits{}},
		{"rpm+tpm+rpd", &pb.RateLimits{RequestsPerMinute: 10_000, TokensPerMinute: 100_000_000, RequestsPerDay: 10_000_000}},
	} {
		b.Run(c.name, func(b *testing.B) {
			a := newEndUser(&pb.EndUser{Id: "eu_bench", PlatformId: "plat_bench",
				Budget: &pb.Budget{AmountNanos: int64(money.MaxAmount), BalanceNanos: int64(money.MaxAmount), Period: PeriodOneTime}})
			now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			ids := make([]string, 1024)
			for i := range ids {
				ids[i] = "res-" + strconv.Itoa(i)
			}
			admit := &pb.Admit{EstimatedTokens: 1200, MaxCostNanos: 50_000}
			settle := &pb.Settle{CostNanos: 20_000, Tokens: 900, Model: "gpt-x", PromptTokens: 700, CompletionTokens: 200}
			b.ReportAllocs()
			b.ResetTimer()
			defer reportCPU(b)()
			for i := 0; i < b.N; i++ {
				// 10 ms apart: at most 6,000 admissions in any minute, under
				// the 10,000 rpm limit, so the windows hold realistic logs.
				now = now.Add(10 * time.Millisecond)
				id := ids[i&1023]
				admit.ReservationId, admit.RequestId = id, id
				if _, err := a.admit(now, c.lim, admit); err != nil {
					b.Fatal(err)
				}
				settle.ReservationId, settle.RequestId = id, id
				if _, err := a.settle(now, settle); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLocalAsk compares one in-process round trip to an end-user actor
// (GetEndUser: no write, so the reply is immediate) through the pooled
// reply channel of Local.Ask with the same round trip through a protoactor
// future (a temporary process registered and removed, plus a timer).
//
//	go test ./actors -run '^$' -bench BenchmarkLocalAsk -benchmem
func BenchmarkLocalAsk(b *testing.B) {
	log := slog.New(slog.DiscardHandler)
	cfg := persistence.DefaultConfig()
	cfg.Dir, cfg.FS, cfg.Logger = "/data", vfs.NewMem(), log
	st, err := persistence.Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	env := NewEnv(st, nil, log)
	d := NewLocal(env)
	defer func() { d.Close(); st.Close() }()
	ctx := context.Background()
	pid := ids.PlatformID(ids.New(ids.PlatformPrefix, time.Now()))
	if _, err := d.Ask(ctx, PlatformActor(pid), &pb.CreatePlatform{Name: "b"}); err != nil {
		b.Fatal(err)
	}
	res, err := d.Ask(ctx, PlatformActor(pid), &pb.CreateEndUser{ExternalId: "x"})
	if err != nil {
		b.Fatal(err)
	}
	id := EndUserActor(pid, ids.EndUserID(res.(*pb.EndUserCreated).EndUser.Id))
	for _, c := range []struct {
		name string
		ask  func(context.Context, Identity, proto.Message) (proto.Message, error)
	}{{"channel", d.Ask}, {"future", d.askFuture}} {
		for _, par := range []int{1, 64} {
			b.Run(c.name+"/callers="+strconv.Itoa(par), func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism((par + 1) / 2)
				defer reportCPU(b)()
				defer reportSpawned(b, d)()
				b.RunParallel(func(p *testing.PB) {
					msg := &pb.GetEndUser{}
					for p.Next() {
						if _, err := c.ask(ctx, id, msg); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// processCPU returns the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU starts measuring the process's CPU time (user+sys, every
// goroutine: the callers', the actors', the runtime's); the function it
// returns reports it per op as cpu-ns/op. Use as `defer reportCPU(b)()`
// after b.ResetTimer. On a shared machine the figure also counts nothing
// of other processes, which is why it is steadier than ns/op.
func reportCPU(b *testing.B) func() {
	start := processCPU()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// BenchmarkCallAsks is one inference call's two asks as the edge makes
// them (Admit, then Settle, each with a context deadline) through Local
// to end-user actors, in batch durability (the settlement is answered
// when applied, synced by the next group commit) on an in-memory FS:
// mailbox scheduling, reply hand-off and the actor's work, with Pebble's
// apply but no fsync wait. Each caller has its own end-user.
//
//	go test ./actors -run '^$' -bench BenchmarkCallAsks -benchmem
func BenchmarkCallAsks(b *testing.B) {
	log := slog.New(slog.DiscardHandler)
	cfg := persistence.DefaultConfig()
	cfg.Dir, cfg.FS, cfg.Logger = "/data", vfs.NewMem(), log
	st, err := persistence.Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	env := NewEnv(st, nil, log)
	env.BillingDurability = DurabilityBatch
	d := NewLocal(env)
	defer func() { d.Close(); st.Close() }()
	ctx := context.Background()
	pid := ids.PlatformID(ids.New(ids.PlatformPrefix, time.Now()))
	settings := &pb.PlatformSettings{DefaultBudget: &pb.BudgetTemplate{AmountNanos: int64(money.MaxAmount), Period: PeriodOneTime}}
	if _, err := d.Ask(ctx, PlatformActor(pid), &pb.CreatePlatform{Name: "b", Settings: settings}); err != nil {
		b.Fatal(err)
	}
	users := make(chan Identity, 64)
	for i := range cap(users) {
		res, err := d.Ask(ctx, PlatformActor(pid), &pb.CreateEndUser{ExternalId: "x" + strconv.Itoa(i)})
		if err != nil {
			b.Fatal(err)
		}
		users <- EndUserActor(pid, ids.EndUserID(res.(*pb.EndUserCreated).EndUser.Id))
	}
	var seq atomic.Int64
	for _, par := range []int{1, 64} {
		b.Run("callers="+strconv.Itoa(par), func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism((par + 1) / 2)
			defer reportCPU(b)()
			defer reportSpawned(b, d)()
			b.RunParallel(func(p *testing.PB) {
				id := <-users
				defer func() { users <- id }()
				cctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				for p.Next() {
					rid := "r" + strconv.FormatInt(seq.Add(1), 10)
					if _, err := d.Ask(cctx, id, &pb.Admit{ReservationId: rid, RequestId: rid, EstimatedTokens: 100, MaxCostNanos: 5000}); err != nil {
						b.Error(err)
						return
					}
					if _, err := d.Ask(cctx, id, &pb.Settle{ReservationId: rid, RequestId: rid, CostNanos: 2000, Tokens: 80, Model: "m", PromptTokens: 50, CompletionTokens: 30}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// reportSpawned reports, as spawned/op, how many mailbox turns per op found
// no idle worker of d's pool and ran on a new goroutine (see workerPool).
func reportSpawned(b *testing.B, d *Local) func() {
	if d.pool == nil {
		return func() {}
	}
	start := d.pool.spawned.Load()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(d.pool.spawned.Load()-start)/float64(b.N), "spawned/op")
		}
	}
}
