package actors

// Auto top-up as a recorded intent under store failures and power cuts
// (issues 11 and 15): whichever commit of the flow fails, at whichever
// stage, and whichever image of the disk survives, the restarted node
// resolves the intent so that the processor charged at most once and every
// charge is credited exactly once.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
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

// processor stands in for the payment processor (a third-party service):
// idempotent on the intent id as Stripe is, and outside the gateway's
// store, so it remembers its charges across the gateway's crashes.
type processor struct {
	mu      sync.Mutex
	charges map[string]string // intent id → charge id
	calls   int
	voidN   int // void this many first-seen intents (as if too old and never received)
}

func (p *processor) Charge(_ context.Context, req ChargeRequest) (ChargeResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if req.Customer == "" {
		return ChargeResult{Declined: "no customer"}, nil
	}
	id, ok := p.charges[req.IntentID]
	if !ok && p.voidN > 0 {
		p.voidN--
		return ChargeResult{Void: "never received"}, nil
	}
	if !ok {
		id = fmt.Sprintf("pi_%d", len(p.charges)+1)
		p.charges[req.IntentID] = id
	}
	return ChargeResult{ChargeID: id}, nil
}

// clone copies the processor's memory: each surviving disk image meets
// the processor as it was at the crash.
func (p *processor) clone() *processor {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := &processor{charges: map[string]string{}}
	for k, v := range p.charges {
		c.charges[k] = v
	}
	return c
}

func (p *processor) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.charges)
}

func openPayNode(t *testing.T, fs *vfs.MemFS, clk clock.Clock, pay Payments, fp func(string) error, onFatal func(error)) fpNode {
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
	env.Payments = pay
	env.AutoTopupRetryDelay = 10 * time.Millisecond
	n := fpNode{store: st, dir: NewLocal(env)}
	t.Cleanup(func() { n.dir.Close(); _ = n.store.Close() })
	return n
}

// walletState returns the balance, the auto_topup entries and whether the
// ledger sums to the balance.
func walletState(t *testing.T, n fpNode, pid ids.PlatformID) (balance int64, autos int, intents []*pb.TopupIntent) {
	t.Helper()
	res, err := n.ask(t, PlatformActor(pid), &pb.GetWallet{})
	if err != nil {
		t.Fatalf("GetWallet: %v", err)
	}
	balance = res.(*pb.WalletView).Wallet.GetBalanceNanos()
	res, err = n.ask(t, PlatformActor(pid), &pb.ListLedger{Account: WalletAccount, Limit: 1000})
	if err != nil {
		t.Fatalf("ListLedger: %v", err)
	}
	sum := int64(0)
	for _, e := range res.(*pb.LedgerPage).Entries {
		sum += e.AmountNanos
		if e.Type == EntryAutoTopup {
			autos++
		}
	}
	if sum != balance {
		t.Fatalf("wallet ledger sums to %d, balance %d", sum, balance)
	}
	res, err = n.ask(t, PlatformActor(pid), &pb.ListTopupIntents{})
	if err != nil {
		t.Fatalf("ListTopupIntents: %v", err)
	}
	return balance, autos, res.(*pb.TopupIntentList).Intents
}

func TestAutoTopupExactlyOnceThroughPowerCuts(t *testing.T) {
	const initial, amount = 25 * int64(money.PerUSD), 50 * int64(money.PerUSD)
	for _, stage := range []string{persistence.FailpointBeforeApply, persistence.FailpointAfterApply, persistence.FailpointAfterSync} {
		for k := 1; k <= 3; k++ {
			t.Run(fmt.Sprintf("%s/batch%d", stage, k), func(t *testing.T) {
				clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
				fs := vfs.NewCrashableMem()
				proc := &processor{charges: map[string]string{}}
				var armed atomic.Bool
				var seen atomic.Int32
				var atFire *vfs.MemFS
				var fatals atomic.Int64
				n := openPayNode(t, fs, clk, proc, func(st string) error {
					if st == stage && armed.Load() && seen.Add(1) == int32(k) {
						atFire = fs.CrashClone(vfs.CrashCloneCfg{})
						return errActorFailpoint
					}
					return nil
				}, func(error) { fatals.Add(1) })

				pid := ids.PlatformID(ids.New(ids.PlatformPrefix, clk.Now()))
				plat := PlatformActor(pid)
				for _, m := range []proto.Message{
					&pb.CreatePlatform{Name: "fp", KeyName: "k"},
					&pb.WalletTopup{AmountNanos: initial},
					&pb.SetPaymentProfile{CustomerId: "cus_1", PaymentMethodId: "pm_1"},
				} {
					if _, err := n.ask(t, plat, m); err != nil {
						t.Fatalf("%T: %v", m, err)
					}
				}
				armed.Store(true)
				_, _ = n.ask(t, plat, &pb.SetAutoTopup{AutoTopup: &pb.AutoTopup{Enabled: true, ThresholdNanos: 30 * int64(money.PerUSD), AmountNanos: amount}})
				// Run until the failpoint killed the store or the top-up landed.
				deadline := time.Now().Add(5 * time.Second)
				for fatals.Load() == 0 {
					res, err := n.dir.Ask(context.Background(), plat, &pb.GetWallet{})
					if err == nil && res.(*pb.WalletView).Wallet.GetBalanceNanos() == initial+amount {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("neither a failure nor the top-up")
					}
					time.Sleep(5 * time.Millisecond)
				}
				time.Sleep(20 * time.Millisecond) // let a charge already asked for come back
				images := []struct {
					name string
					fs   *vfs.MemFS
				}{{"after the run", fs.CrashClone(vfs.CrashCloneCfg{})}}
				if atFire != nil {
					images = append(images, struct {
						name string
						fs   *vfs.MemFS
					}{"cut at the failpoint", atFire})
				}
				for _, img := range images {
					proc := proc.clone()
					r := openPayNode(t, img.fs.CrashClone(vfs.CrashCloneCfg{}), clk, proc, nil, nil)
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					if _, err := ResumeTopups(ctx, r.dir, r.store); err != nil {
						t.Fatalf("%s: ResumeTopups: %v", img.name, err)
					}
					cancel()
					var bal int64
					var autos int
					var ins []*pb.TopupIntent
					for deadline := time.Now().Add(5 * time.Second); ; {
						res, err := r.ask(t, plat, &pb.ListTopupIntents{})
						if err != nil {
							t.Fatalf("%s: ListTopupIntents: %v", img.name, err)
						}
						ins = res.(*pb.TopupIntentList).Intents
						pending := 0
						for _, in := range ins {
							if in.Status == IntentPending {
								pending++
							}
						}
						if pending == 0 {
							break
						}
						if time.Now().After(deadline) {
							t.Fatalf("%s: %d intents still pending", img.name, pending)
						}
						time.Sleep(5 * time.Millisecond)
					}
					bal, autos, ins = walletState(t, r, pid) // nothing pending: nothing changes now
					charged := proc.count()
					if charged > 1 {
						t.Fatalf("%s: the processor charged %d times, want at most 1", img.name, charged)
					}
					// Every charge is credited once, whatever the image:
					// a charge is only asked for once its intent is durable.
					if autos != charged || bal != initial+int64(autos)*amount {
						t.Fatalf("%s: %d charges, %d auto_topup entries, balance %d; intents %v", img.name, charged, autos, bal, ins)
					}
					t.Logf("%s: fired=%v charged=%d credited=%d", img.name, atFire != nil, charged, autos)
				}
			})
		}
	}
}

// TestAutoTopupVoidedIntentIsNeverCredited: an intent the processor never
// received (too old to charge) ends voided, uncredited, and a fresh intent
// tops the wallet up.
func TestAutoTopupVoidedIntentIsNeverCredited(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	proc := &processor{charges: map[string]string{}, voidN: 1}
	n := openPayNode(t, vfs.NewMem(), clk, proc, nil, nil)
	pid := ids.PlatformID(ids.New(ids.PlatformPrefix, clk.Now()))
	plat := PlatformActor(pid)
	for _, m := range []proto.Message{
		&pb.CreatePlatform{Name: "void", KeyName: "k"},
		&pb.WalletTopup{AmountNanos: 25 * int64(money.PerUSD)},
		&pb.SetPaymentProfile{CustomerId: "cus_1"},
		&pb.SetAutoTopup{AutoTopup: &pb.AutoTopup{Enabled: true, ThresholdNanos: 30 * int64(money.PerUSD), AmountNanos: 50 * int64(money.PerUSD)}},
	} {
		if _, err := n.ask(t, plat, m); err != nil {
			t.Fatalf("%T: %v", m, err)
		}
	}
	var ins []*pb.TopupIntent
	for deadline := time.Now().Add(5 * time.Second); ; {
		res, err := n.ask(t, plat, &pb.ListTopupIntents{})
		if err != nil {
			t.Fatal(err)
		}
		ins = res.(*pb.TopupIntentList).Intents
		if len(ins) == 2 && ins[0].Status != IntentPending && ins[1].Status != IntentPending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("intents = %v", ins)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The first was voided, the fresh one succeeded (both created in the
	// same fake millisecond, so in either order).
	if ins[0].Status == IntentVoided {
		ins[0], ins[1] = ins[1], ins[0]
	}
	if ins[0].Status != IntentSucceeded || ins[1].Status != IntentVoided || ins[1].Error == "" || ins[1].LedgerSeq != 0 {
		t.Errorf("intents = %v", ins)
	}
	bal, autos, _ := walletState(t, n, pid)
	if bal != 75*int64(money.PerUSD) || autos != 1 || proc.count() != 1 {
		t.Errorf("balance %d, %d auto_topup entries, %d charges; want 75 USD, 1, 1", bal, autos, proc.count())
	}
}
