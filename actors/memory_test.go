package actors

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// memActors is how many actors each memory benchmark activates.
const memActors = 5000

// heapInUse returns the live heap after two collections (the second
// frees what the first's finalizers released).
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkIdleEndUserMemory measures the Go heap one resident, idle
// end-user actor holds: memActors end-users (each with a monthly budget,
// as the bench's tenants scenario seeds them) are created, then each is
// activated by one admitted and settled call and left idle (resident:
// the idle timeout is an hour). The heap in use after GC, before and
// after the activations, divided by the actors activated, is reported as
// heapB/actor; it counts everything an activation keeps (protoactor's
// process, mailbox and context, the directory entry, the actor's state).
//
//	go test ./actors -run '^$' -bench BenchmarkIdleEndUserMemory -benchtime 1x
//
// With IDLE_HEAP_PROFILE=<file> set it also writes heap profiles before
// (<file>.before) and after the activations, for
// `go tool pprof -sample_index=inuse_space -diff_base <file>.before <file>`
// (run with -memprofilerate 256 for a fine-grained one).
func BenchmarkIdleEndUserMemory(b *testing.B) {
	for _, c := range []struct {
		name string
		lim  *pb.RateLimits
	}{
		{"no-limits", nil},
		{"rpm+tpm+rpd", &pb.RateLimits{RequestsPerMinute: 600, TokensPerMinute: 1_000_000, RequestsPerDay: 10_000}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var per float64
			for i := 0; i < b.N; i++ {
				per = idleEndUserHeap(b, c.lim)
			}
			b.ReportMetric(per, "heapB/actor")
		})
	}
}

func idleEndUserHeap(b *testing.B, lim *pb.RateLimits) float64 {
	b.Helper()
	b.StopTimer()
	log := slog.New(slog.DiscardHandler)
	cfg := persistence.DefaultConfig()
	// A real directory: an in-memory FS would count the WAL the
	// activations write as heap.
	cfg.Dir, cfg.Logger = b.TempDir(), log
	st, err := persistence.Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	env := NewEnv(st, nil, log)
	env.IdleTimeout = time.Hour
	d := NewLocal(env)
	defer func() { d.Close(); st.Close() }()
	ctx := context.Background()
	pid := ids.PlatformID(ids.New(ids.PlatformPrefix, time.Now()))
	settings := &pb.PlatformSettings{DefaultBudget: &pb.BudgetTemplate{AmountNanos: int64(20 * money.PerUSD), Period: PeriodMonthly}, DefaultRateLimits: lim}
	if _, err := d.Ask(ctx, PlatformActor(pid), &pb.CreatePlatform{Name: "mem", Settings: settings}); err != nil {
		b.Fatal(err)
	}
	users := make([]Identity, memActors)
	for i := range users {
		res, err := d.Ask(ctx, PlatformActor(pid), &pb.CreateEndUser{ExternalId: "user-" + strconv.Itoa(i)})
		if err != nil {
			b.Fatal(err)
		}
		users[i] = EndUserActor(pid, ids.EndUserID(res.(*pb.EndUserCreated).EndUser.Id))
	}
	if err := st.Barrier(); err != nil {
		b.Fatal(err)
	}
	before := heapInUse()
	if f := os.Getenv("IDLE_HEAP_PROFILE"); f != "" {
		out, _ := os.Create(f + ".before")
		_ = pprof.WriteHeapProfile(out)
		out.Close()
	}
	b.StartTimer()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(users); i += 8 {
				rid := "res-" + strconv.Itoa(i)
				if _, err := d.Ask(ctx, users[i], &pb.Admit{ReservationId: rid, RequestId: rid, EstimatedTokens: 400, MaxCostNanos: 50_000}); err != nil {
					b.Error(err)
					return
				}
				if _, err := d.Ask(ctx, users[i], &pb.Settle{ReservationId: rid, RequestId: rid, CostNanos: 20_000, Tokens: 300, Model: "gpt-4o-mini", PromptTokens: 100, CompletionTokens: 200}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if err := st.Barrier(); err != nil {
		b.Fatal(err)
	}
	if n := d.Resident(); n < memActors {
		b.Fatalf("%d actors resident, want at least %d", n, memActors)
	}
	after := heapInUse()
	if f := os.Getenv("IDLE_HEAP_PROFILE"); f != "" {
		out, _ := os.Create(f)
		_ = pprof.WriteHeapProfile(out)
		out.Close()
	}
	runtime.KeepAlive(users)
	return float64(int64(after)-int64(before)) / memActors
}

// emptyActor is the least an actor can be: no state, a receive timeout
// (every gateway actor has one: it is how they passivate).
type emptyActor struct{}

func (emptyActor) Receive(c actor.Context) {
	switch c.Message().(type) {
	case *actor.Started:
		c.SetReceiveTimeout(time.Hour)
	case *pb.Ack:
		c.Respond(&pb.Ack{})
	}
}

// BenchmarkProtoactorFloor measures what protoactor itself costs per
// resident actor, with nothing of ours in it: memActors stateless actors
// spawned by name from one shared Props with the directory's mailbox (as
// the directory spawns them),
// with and without a receive timeout (every gateway actor has one: it is
// how they passivate). Names and the slice holding the PIDs are made
// before the first reading, so the figure is protoactor's alone: the
// process registry's entry, the PID, the actor context and its extras,
// the mailbox and its two queues, the timer. It is the floor under
// BenchmarkIdleEndUserMemory.
//
//	go test ./actors -run '^$' -bench BenchmarkProtoactorFloor -benchtime 1x
func BenchmarkProtoactorFloor(b *testing.B) {
	for _, timeout := range []bool{false, true} {
		name := "no-timeout"
		if timeout {
			name = "receive-timeout"
		}
		b.Run(name, func(b *testing.B) {
			var per float64
			for i := 0; i < b.N; i++ {
				sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
				props := actor.PropsFromProducer(func() actor.Actor { return emptyActor{} }, actor.WithMailbox(mailbox))
				if !timeout {
					props = actor.PropsFromFunc(func(c actor.Context) {
						if _, ok := c.Message().(*pb.Ack); ok {
							c.Respond(&pb.Ack{})
						}
					}, actor.WithMailbox(mailbox))
				}
				names := make([]string, memActors)
				for j := range names {
					names[j] = actorName(EndUserActor("plat_0123456789abcdefghijklmn", ids.EndUserID("eu_0123456789abcdefghijklmn"+strconv.Itoa(j))), uint64(j+1))
				}
				pids := make([]*actor.PID, memActors)
				before := heapInUse()
				for j := range pids {
					pid, err := sys.Root.SpawnNamed(props, names[j])
					if err != nil {
						b.Fatal(err)
					}
					pids[j] = pid
				}
				// Let every actor process Started.
				for _, pid := range pids {
					_ = sys.Root.RequestFuture(pid, &pb.Ack{}, time.Second).Wait()
				}
				after := heapInUse()
				per = float64(int64(after)-int64(before)) / memActors
				for _, pid := range pids {
					_ = sys.Root.PoisonFuture(pid).Wait()
				}
				sys.Shutdown()
			}
			b.ReportMetric(per, "heapB/actor")
		})
	}
}
