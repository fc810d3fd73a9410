// Command benchseed writes a gateway data dir with many platforms,
// end-users and ledger entries directly through the gateway's own store, for
// the tenant-scale and recovery benchmarks: creating a million end-users
// over HTTP would take longer than the whole suite may.
//
//	benchseed -data-dir DIR -platforms 1000 -users 1000000 -ledger-per-user 10 \
//	    -upstream http://127.0.0.1:9090 -sample 100000 -keys keys.txt -platform-keys plat.txt
//
// Records are the ones the actors write, built with the same packages
// (persistence key helpers, internal/pb records, internal/ids keys, the
// data dir's master key for provider secrets):
//
//   - per platform, as platformActor.create + setProvider + topup write
//     them: the platform record (settings, openai provider sealed under
//     the master key, funded wallet), one platform key (record by digest +
//     platform key index) and the wallet's top-up ledger entry;
//   - per end-user, as platformActor.createEndUser writes them with a
//     platform default budget: the end-user record (budget, ledger seq),
//     the external-id index, the end-user key (record by digest + user key
//     index) and ledger entry 1 (budget_set), followed by ledger-per-user−1
//     usage entries, so the balance is what the ledger sums to.
//
// The changefeed is off (Config.DisableChangefeed): no snapshotter reads a
// bench data dir. Writes go through Store.Submit without waiting for each
// fsync (NoSync) and end with a barrier, so the dir is durable on exit.
//
// It writes the raw keys of every k-th end-user (spread over all
// platforms) to -keys as "platformID endUserID rawKey" lines, and every
// platform's key to -platform-keys as "platformID rawKey" lines. Raw keys
// exist nowhere else: the store keeps only digests.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/internal/secrets"
	"github.com/assistiv/gateway/persistence"
)

type options struct {
	dataDir              string
	platforms, users     int
	ledgerPerUser        int
	upstream             string
	rpm                  int64
	budgetUSD, walletUSD int64
	sample               int
	keysOut, platKeysOut string
}

func main() {
	var o options
	flag.StringVar(&o.dataDir, "data-dir", "", "data dir to create (must not exist or be empty)")
	flag.IntVar(&o.platforms, "platforms", 100, "platforms")
	flag.IntVar(&o.users, "users", 20000, "end-users in all, spread evenly over the platforms")
	flag.IntVar(&o.ledgerPerUser, "ledger-per-user", 1, "ledger entries per end-user (≥ 1: budget_set, then usage)")
	flag.StringVar(&o.upstream, "upstream", "", "base URL of every platform's openai provider (empty: none)")
	flag.Int64Var(&o.rpm, "rpm", 0, "platforms' default requests_per_minute (0: no limit)")
	flag.Int64Var(&o.budgetUSD, "budget-usd", 1000, "each end-user's monthly budget, USD")
	flag.Int64Var(&o.walletUSD, "wallet-usd", 1_000_000, "each platform's wallet balance, USD")
	flag.IntVar(&o.sample, "sample", 1000, "end-users whose raw keys are written to -keys")
	flag.StringVar(&o.keysOut, "keys", "", "file for the sampled end-user keys")
	flag.StringVar(&o.platKeysOut, "platform-keys", "", "file for the platform keys")
	flag.Parse()
	start := time.Now()
	n, err := seed(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchseed:", err)
		os.Exit(1)
	}
	log.Printf("benchseed: %d platforms, %d end-users, %d records in %v", o.platforms, o.users, n, time.Since(start).Round(time.Millisecond))
}

func (o options) validate() error {
	switch {
	case o.dataDir == "":
		return errors.New("-data-dir is required")
	case o.platforms < 1 || o.users < o.platforms:
		return errors.New("need at least one platform and one end-user per platform")
	case o.ledgerPerUser < 1:
		return errors.New("-ledger-per-user must be at least 1")
	case o.sample > 0 && o.keysOut == "":
		return errors.New("-sample needs -keys")
	}
	if ents, err := os.ReadDir(o.dataDir); err == nil && len(ents) > 0 {
		return fmt.Errorf("%s is not empty", o.dataDir)
	}
	return nil
}

// seeder batches ops into Writes of about batchOps and submits them without
// waiting for each, at most inFlight at a time: the store's committer folds
// every queued Write into one Pebble batch, and an unbounded queue makes
// batches of millions of records whose growth and sorting dominate.
type seeder struct {
	store   *persistence.Store
	ops     []persistence.Op
	records int
	errc    chan error
	slots   chan struct{} // one per Write in flight
}

const (
	batchOps = 2048
	inFlight = 32
)

func (s *seeder) add(ops ...persistence.Op) {
	s.ops = append(s.ops, ops...)
	s.records += len(ops)
	if len(s.ops) >= batchOps {
		s.flush()
	}
}

func (s *seeder) flush() {
	if len(s.ops) == 0 {
		return
	}
	errc, slots := s.errc, s.slots
	slots <- struct{}{}
	s.store.Submit(persistence.Write{Ops: s.ops, NoSync: true, Done: func(err error) {
		<-slots
		if err != nil {
			select {
			case errc <- err:
			default:
			}
		}
	}})
	s.ops = make([]persistence.Op, 0, batchOps+64)
}

func (s *seeder) err() error {
	select {
	case err := <-s.errc:
		return err
	default:
		return nil
	}
}

func seed(o options) (int, error) {
	if err := o.validate(); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return 0, err
	}
	// The gateway seals provider keys under the data dir's master key
	// file when ASSISTIV_MASTER_KEY is unset; create it the same way.
	key, _, err := secrets.LoadOrCreateKeyFile(o.dataDir)
	if err != nil {
		return 0, err
	}
	ring, err := secrets.NewKeyring(key)
	if err != nil {
		return 0, err
	}
	cfg := persistence.DefaultConfig()
	cfg.Dir, cfg.DisableChangefeed = o.dataDir, true
	store, err := persistence.Open(cfg)
	if err != nil {
		return 0, err
	}
	s := &seeder{store: store, errc: make(chan error, 1), slots: make(chan struct{}, inFlight)}

	var keysW, platW *bufio.Writer
	if o.keysOut != "" {
		f, err := os.Create(o.keysOut)
		if err != nil {
			store.Close()
			return 0, err
		}
		defer f.Close()
		keysW = bufio.NewWriter(f)
	}
	if o.platKeysOut != "" {
		f, err := os.Create(o.platKeysOut)
		if err != nil {
			store.Close()
			return 0, err
		}
		defer f.Close()
		platW = bufio.NewWriter(f)
	}
	every := 0
	if o.sample > 0 {
		every = max(1, o.users/o.sample)
	}

	now := time.Now()
	ms := now.UnixMilli()
	budget := o.budgetUSD * int64(money.PerUSD)
	const usageNanos = 1000 // $0.000001 per seeded usage entry
	u := 0
	for pi := range o.platforms {
		pid := ids.New(ids.PlatformPrefix, now)
		p := &pb.Platform{
			Id: pid, Name: fmt.Sprintf("bench-%d", pi), CreatedAtMs: ms, UpdatedAtMs: ms,
			Settings: &pb.PlatformSettings{
				DisplayName:   fmt.Sprintf("bench-%d", pi),
				DefaultBudget: &pb.BudgetTemplate{AmountNanos: budget, Period: "monthly"},
			},
			Wallet: &pb.Wallet{BalanceNanos: o.walletUSD * int64(money.PerUSD), LedgerSeq: 1},
		}
		if o.rpm > 0 {
			p.Settings.DefaultRateLimits = &pb.RateLimits{RequestsPerMinute: o.rpm}
		}
		if o.upstream != "" {
			const providerKey = "bench-upstream-key"
			// The AAD is edge.providerAAD's: "provider_key|<platform>|<provider>".
			sealed, err := ring.Seal([]byte(providerKey), []byte("provider_key|"+pid+"|openai"))
			if err != nil {
				store.Close()
				return 0, err
			}
			p.Providers = map[string]*pb.ProviderConfig{"openai": {
				Provider: "openai", SealedApiKey: sealed, KeyLast4: providerKey[len(providerKey)-4:],
				BaseUrl: o.upstream, Enabled: true,
			}}
		}
		pk, praw := apiKey(now, ids.KindPlatform, pid, "", "bench")
		s.add(
			persistence.Set(persistence.PlatformKey(pid), marshal(p)),
			persistence.Set(persistence.APIKeyKey(pk.Digest), marshal(pk)),
			persistence.Set(persistence.PlatformKeyIndex(pid, pk.Id), pk.Digest),
			persistence.Set(persistence.LedgerKey(pid, "wallet", 1), marshal(&pb.LedgerEntry{
				Id: ids.New(ids.EntryPrefix, now), PlatformId: pid, Account: "wallet", Seq: 1, Type: "topup",
				AmountNanos: p.Wallet.BalanceNanos, BalanceAfterNanos: p.Wallet.BalanceNanos, Reason: "benchseed", CreatedAtMs: ms,
			})),
		)
		if platW != nil {
			fmt.Fprintf(platW, "%s %s\n", pid, praw)
		}

		n := o.users / o.platforms
		if pi < o.users%o.platforms {
			n++
		}
		for j := range n {
			uid := ids.New(ids.EndUserPrefix, now)
			ext := fmt.Sprintf("user-%d-%d", pi, j)
			seq := uint64(o.ledgerPerUser)
			balance := budget - int64(o.ledgerPerUser-1)*usageNanos
			eu := &pb.EndUser{
				Id: uid, PlatformId: pid, ExternalId: ext, CreatedAtMs: ms, UpdatedAtMs: ms,
				Budget: &pb.Budget{
					AmountNanos: budget, Period: "monthly", BalanceNanos: balance,
					PeriodStartMs: monthStart(now).UnixMilli(), CreatedAtMs: ms, UpdatedAtMs: ms,
				},
				LedgerSeq: seq,
			}
			k, raw := apiKey(now, ids.KindEndUser, pid, uid, "")
			s.add(
				persistence.Set(persistence.LedgerKey(pid, uid, 1), marshal(&pb.LedgerEntry{
					Id: ids.New(ids.EntryPrefix, now), PlatformId: pid, Account: uid, Seq: 1, Type: "budget_set",
					AmountNanos: budget, BalanceAfterNanos: budget, Reason: "default_budget", CreatedAtMs: ms,
				})),
				persistence.Set(persistence.EndUserKey(pid, uid), marshal(eu)),
				persistence.Set(persistence.ExternalKey(pid, ext), []byte(uid)),
				persistence.Set(persistence.APIKeyKey(k.Digest), marshal(k)),
				persistence.Set(persistence.UserKeyIndex(pid, uid, k.Id), k.Digest),
			)
			for q := uint64(2); q <= seq; q++ {
				s.add(persistence.Set(persistence.LedgerKey(pid, uid, q), marshal(&pb.LedgerEntry{
					Id: ids.New(ids.EntryPrefix, now), PlatformId: pid, Account: uid, Seq: q, Type: "usage",
					AmountNanos: -usageNanos, BalanceAfterNanos: budget - int64(q-1)*usageNanos,
					RequestId: ids.New(ids.RequestPrefix, now), Model: "gpt-4o-mini", PromptTokens: 12, CompletionTokens: 20,
					CreatedAtMs: ms,
				})))
			}
			if keysW != nil && every > 0 && u%every == 0 {
				fmt.Fprintf(keysW, "%s %s %s\n", pid, uid, raw)
			}
			u++
		}
		if err := s.err(); err != nil {
			store.Close()
			return s.records, err
		}
	}
	s.flush()
	if err := store.Barrier(); err != nil {
		store.Close()
		return s.records, err
	}
	if err := errors.Join(s.err(), store.Close()); err != nil {
		return s.records, err
	}
	for _, w := range []*bufio.Writer{keysW, platW} {
		if w != nil {
			if err := w.Flush(); err != nil {
				return s.records, err
			}
		}
	}
	return s.records, nil
}

// apiKey mints a key record as platformActor.newKey does.
func apiKey(now time.Time, kind ids.KeyKind, pid, uid, name string) (*pb.APIKey, string) {
	raw, digest := ids.NewKey(kind)
	return &pb.APIKey{
		Id: ids.New(ids.KeyPrefix, now), PlatformId: pid, EndUserId: uid, Kind: int32(kind), Name: name,
		Prefix: ids.DisplayPrefix(raw), Digest: digest[:], CreatedAtMs: now.UnixMilli(),
	}, raw
}

func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// marshal is actors.marshal: deterministic protobuf.
func marshal(m proto.Message) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic("benchseed: marshal: " + err.Error()) // a broken record type, not input
	}
	return b
}
