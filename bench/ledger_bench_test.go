package bench_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
	"google.golang.org/protobuf/proto"
)

// BenchmarkDurableDebits measures durable debits per second through the
// Local directory and a real Pebble store on disk: each op is an Ask of
// pb.BudgetTopup{Debit: true} answered only once its ledger entry is
// synced (group commit shares the fsyncs). The top level is the number of
// concurrent callers; "distinct" gives each caller its own end-user (actors
// in parallel), "shared" sends every caller to one end-user (one mailbox).
// Reports debits/s and batches/op (synced batches the committer handed to
// Pebble per debit: 1 means no grouping; Pebble may coalesce the fsyncs of
// several batches further); ns/op is wall time per debit.
//
//	go test ./bench -run '^$' -bench BenchmarkDurableDebits -benchtime 20000x
func BenchmarkDurableDebits(b *testing.B) {
	for _, callers := range []int{1, 64, 1024} {
		b.Run(strconv.Itoa(callers), func(b *testing.B) {
			for _, shared := range []bool{false, true} {
				name := "distinct"
				if shared {
					name = "shared"
				}
				b.Run(name, func(b *testing.B) { benchDebits(b, callers, shared) })
			}
		})
	}
}

func benchDebits(b *testing.B, callers int, shared bool) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := persistence.DefaultConfig()
	cfg.Dir, cfg.Logger = b.TempDir(), log
	cfg.OnFatal = func(err error) { b.Errorf("store failed: %v", err) }
	store, err := persistence.Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	env := actors.NewEnv(store, nil, log)
	dir := actors.NewLocal(env)
	defer func() {
		dir.Close()
		store.Close()
	}()
	pid := ids.PlatformID(ids.New(ids.PlatformPrefix, time.Now()))
	askP := func(id actors.Identity, msg proto.Message) proto.Message {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res, err := dir.Ask(ctx, id, msg)
		if err != nil {
			b.Errorf("%T: %v", msg, err) // may run off the benchmark goroutine
		}
		return res
	}
	if askP(actors.PlatformActor(pid), &pb.CreatePlatform{Name: "bench", KeyName: "k"}) == nil {
		b.FailNow()
	}
	users := 1
	if !shared {
		users = callers
	}
	targets := make([]actors.Identity, users)
	var wg sync.WaitGroup
	for i := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := askP(actors.PlatformActor(pid), &pb.CreateEndUser{ExternalId: "u" + strconv.Itoa(i)})
			if res == nil {
				return
			}
			id := actors.EndUserActor(pid, ids.EndUserID(res.(*pb.EndUserCreated).EndUser.Id))
			askP(id, &pb.SetBudget{Create: true, Budget: &pb.Budget{AmountNanos: int64(money.MaxAmount), Period: actors.PeriodOneTime}})
			targets[i] = id
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}

	before := store.Stats()
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			target := targets[c%users]
			msg := &pb.BudgetTopup{AmountNanos: 1, Debit: true}
			for next.Add(1) <= int64(b.N) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				_, err := dir.Ask(ctx, target, msg)
				cancel()
				if err != nil {
					b.Errorf("debit: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	st := store.Stats()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "debits/s")
	b.ReportMetric(float64(st.Commits-before.Commits)/float64(b.N), "batches/op")
}
