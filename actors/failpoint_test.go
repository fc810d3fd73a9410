package actors

// F-3 (reliability.md §8) at the actor level: a budget top-up with an
// Idempotency-Key whose commit hits a failpoint is refused (store_failed,
// never acknowledged); after a power cut it is in the ledger at most once
// (exactly once when the cut follows its fsync), the balance agrees with
// the ledger, and retrying with the same key applies it exactly once.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

var errActorFailpoint = errors.New("injected failpoint")

type fpNode struct {
	store *persistence.Store
	dir   *Local
}

func openFPNode(t *testing.T, fs *vfs.MemFS, clk clock.Clock, fp func(string) error, onFatal func(error)) fpNode {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := persistence.DefaultConfig()
	cfg.Dir, cfg.FS, cfg.Logger, cfg.Failpoint = "/data", fs, log, fp
	cfg.OnFatal = onFatal
	if onFatal == nil {
		cfg.OnFatal = func(err error) { t.Errorf("store failed: %v", err) }
	}
	st, err := persistence.Open(cfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	env := NewEnv(st, clk, log)
	env.IdleTimeout = time.Hour
	n := fpNode{store: st, dir: NewLocal(env)}
	t.Cleanup(func() { n.dir.Close(); _ = n.store.Close() })
	return n
}

func (n fpNode) ask(t *testing.T, id Identity, msg proto.Message) (proto.Message, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.dir.Ask(ctx, id, msg)
}

func TestFailpointTopupIsNeverAckedAndRetriesOnce(t *testing.T) {
	const key = "fp-topup-1"
	initial := int64(2 * money.PerUSD)
	amount := int64(money.PerUSD / 4)
	for _, stage := range []string{persistence.FailpointBeforeApply, persistence.FailpointAfterApply, persistence.FailpointAfterSync} {
		t.Run(stage, func(t *testing.T) {
			start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
			clk := clock.NewFake(start)
			fs := vfs.NewCrashableMem()
			var armed atomic.Bool
			var atFire *vfs.MemFS
			var fatals atomic.Int64
			n := openFPNode(t, fs, clk, func(st string) error {
				if st == stage && armed.CompareAndSwap(true, false) {
					atFire = fs.CrashClone(vfs.CrashCloneCfg{})
					return errActorFailpoint
				}
				return nil
			}, func(error) { fatals.Add(1) })

			pid := ids.PlatformID(ids.New(ids.PlatformPrefix, start))
			if _, err := n.ask(t, PlatformActor(pid), &pb.CreatePlatform{Name: "fp", KeyName: "k"}); err != nil {
				t.Fatalf("CreatePlatform: %v", err)
			}
			res, err := n.ask(t, PlatformActor(pid), &pb.CreateEndUser{ExternalId: "ext"})
			if err != nil {
				t.Fatalf("CreateEndUser: %v", err)
			}
			uid := ids.EndUserID(res.(*pb.EndUserCreated).EndUser.Id)
			user := EndUserActor(pid, uid)
			if _, err := n.ask(t, user, &pb.SetBudget{Create: true, Budget: &pb.Budget{AmountNanos: initial, Period: PeriodOneTime}}); err != nil {
				t.Fatalf("SetBudget: %v", err)
			}
			topup := &pb.BudgetTopup{AmountNanos: amount, IdempotencyKey: key, RequestHash: hashOf(amount), Reason: "fp", RequestId: "r1"}

			armed.Store(true)
			_, err = n.ask(t, user, topup)
			if !errors.Is(err, ErrStoreFailed) {
				t.Fatalf("top-up at failpoint %s: err = %v, want store_failed", stage, err)
			}
			if fatals.Load() != 1 {
				t.Fatalf("OnFatal called %d times, want 1", fatals.Load())
			}
			final := fs.CrashClone(vfs.CrashCloneCfg{})

			for _, img := range []struct {
				name string
				fs   *vfs.MemFS
			}{{"cut at the failpoint", atFire}, {"cut after the failure", final}} {
				r := openFPNode(t, img.fs.CrashClone(vfs.CrashCloneCfg{}), clk, nil, nil)
				count := func() (int, int64) {
					res, err := r.ask(t, user, &pb.GetBudget{})
					if err != nil {
						t.Fatalf("%s: GetBudget: %v", img.name, err)
					}
					bal := res.(*pb.BudgetView).Budget.GetBalanceNanos()
					res, err = r.ask(t, user, &pb.ListLedger{Account: string(uid), Limit: 1000})
					if err != nil {
						t.Fatalf("%s: ListLedger: %v", img.name, err)
					}
					c, sum := 0, int64(0)
					for _, e := range res.(*pb.LedgerPage).Entries {
						sum += e.AmountNanos
						if e.GetIdempotencyKey() == key {
							c++
						}
					}
					if sum != bal {
						t.Fatalf("%s: ledger sums to %d, balance %d", img.name, sum, bal)
					}
					return c, bal
				}
				c, bal := count()
				before := c
				if c > 1 || bal != initial+int64(c)*amount {
					t.Fatalf("%s: refused top-up is in the ledger %d times, balance %d", img.name, c, bal)
				}
				switch {
				case stage == persistence.FailpointBeforeApply && c != 0:
					t.Fatalf("%s: a top-up failed before its apply is in the ledger", img.name)
				case stage == persistence.FailpointAfterSync && c != 1:
					t.Fatalf("%s: a top-up failed after its fsync is missing (synced records survive)", img.name)
				}
				// The client retries the unacknowledged request with its key.
				res, err := r.ask(t, user, proto.Clone(topup))
				if err != nil {
					t.Fatalf("%s: retry: %v", img.name, err)
				}
				if got := res.(*pb.BudgetView).GetReplayed(); got != (c == 1) {
					t.Fatalf("%s: retry replayed=%v with the original present %d times", img.name, got, c)
				}
				if c, bal = count(); c != 1 || bal != initial+amount {
					t.Fatalf("%s: after the retry the top-up is in the ledger %d times, balance %d", img.name, c, bal)
				}
				t.Logf("%s: present %d time(s) after the cut; once after the retry", img.name, before)
			}
		})
	}
}

// A settings change that never became durable (the store failed writing
// it) is never seen by end-user actors: the markup they charge is the one
// a restart would load.
func TestSettingsArePublishedOnlyOnceDurable(t *testing.T) {
	var armed atomic.Bool
	n := openFPNode(t, vfs.NewCrashableMem(), clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)), func(st string) error {
		if st == persistence.FailpointBeforeApply && armed.CompareAndSwap(true, false) {
			return errors.New("injected write failure")
		}
		return nil
	}, func(error) {})
	pid := ids.PlatformID(ids.New(ids.PlatformPrefix, time.Now()))
	if _, err := n.ask(t, PlatformActor(pid), &pb.CreatePlatform{Name: "s"}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.ask(t, PlatformActor(pid), &pb.PatchPlatform{Fields: []string{"markup_pct"}, Settings: &pb.PlatformSettings{MarkupBps: 1000}}); err != nil {
		t.Fatal(err)
	}
	if got := n.dir.env.shared(pid).markup.Load(); got != 1000 {
		t.Fatalf("durable markup not published: %d", got)
	}
	armed.Store(true)
	if _, err := n.ask(t, PlatformActor(pid), &pb.PatchPlatform{Fields: []string{"markup_pct"}, Settings: &pb.PlatformSettings{MarkupBps: 5000}}); err == nil {
		t.Fatal("the patch whose write failed was acknowledged")
	}
	if got := n.dir.env.shared(pid).markup.Load(); got != 1000 {
		t.Fatalf("end-user actors see markup %d bps from a change that never became durable, want 1000", got)
	}
}
