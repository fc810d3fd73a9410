package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/money"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/internal/secrets"
	"github.com/assistiv/gateway/persistence"
)

// setupDemo makes `make run` useful at once: a platform "demo" whose four
// providers point at the mock upstream, a funded wallet, and an end-user
// with a $10 budget. On the first start it creates them; on later starts it
// mints fresh keys (raw keys are never stored, so they cannot be shown
// again). It prints the keys and a curl that works.
func setupDemo(dir actors.Directory, store *persistence.Store, ring *secrets.Keyring, upstream, gateway string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	metaKey := persistence.MetaKey("demo_platform")
	var pid ids.PlatformID
	var platformKey string
	if v, err := store.Get(metaKey); err == nil {
		pid = ids.PlatformID(v)
		res, err := dir.Ask(ctx, actors.PlatformActor(pid), &pb.CreateAPIKey{Name: "demo"})
		if err != nil {
			return err
		}
		platformKey = res.(*pb.APIKeyCreated).RawKey
	} else if errors.Is(err, persistence.ErrNotFound) {
		pid = ids.PlatformID(ids.New(ids.PlatformPrefix, time.Now()))
		res, err := dir.Ask(ctx, actors.PlatformActor(pid), &pb.CreatePlatform{Name: "demo", KeyName: "demo"})
		if err != nil {
			return err
		}
		platformKey = res.(*pb.PlatformCreated).RawKey
		if _, err := dir.Ask(ctx, actors.PlatformActor(pid), &pb.WalletTopup{AmountNanos: int64(100 * money.PerUSD), Reason: "demo"}); err != nil {
			return err
		}
		if err := store.Commit(persistence.Set(metaKey, []byte(pid))); err != nil {
			return err
		}
	} else {
		return err
	}
	for _, p := range []string{"openai", "anthropic", "google", "xai"} {
		sealed, err := ring.Seal([]byte("demo-key-for-the-mock-upstream"), []byte("provider_key|"+string(pid)+"|"+p))
		if err != nil {
			return err
		}
		if _, err := dir.Ask(ctx, actors.PlatformActor(pid), &pb.SetProvider{
			Config: &pb.ProviderConfig{Provider: p, SealedApiKey: sealed, KeyLast4: "mock", BaseUrl: upstream, Enabled: true},
			SetKey: true, SetBaseUrl: true, SetEnabled: true,
		}); err != nil {
			return err
		}
	}
	res, err := dir.Ask(ctx, actors.PlatformActor(pid), &pb.CreateEndUser{ExternalId: "demo-user", DisplayName: "Demo User"})
	if err != nil {
		return err
	}
	eu := res.(*pb.EndUserCreated)
	if eu.Created {
		if _, err := dir.Ask(ctx, actors.EndUserActor(pid, ids.EndUserID(eu.EndUser.Id)), &pb.SetBudget{
			Create: true, Budget: &pb.Budget{AmountNanos: int64(10 * money.PerUSD), Period: actors.PeriodMonthly},
		}); err != nil {
			return err
		}
	}
	if c, ok := dir.(interface{ Owner(actors.Identity) string }); ok {
		// Cluster mode: say which node runs the demo end-user's actor
		// (scripts/run-cluster.sh maps remote addresses to HTTP ports).
		fmt.Fprintf(os.Stderr, "\n  DEMO_END_USER_OWNER %s (cluster remote address of the node that owns end-user %s)\n",
			c.Owner(actors.EndUserActor(pid, ids.EndUserID(eu.EndUser.Id))), eu.EndUser.Id)
	}
	fmt.Fprintf(os.Stderr, `
  Demo platform ready (providers → mock upstream %s)
    platform id:   %s
    platform key:  %s
    end-user id:   %s
    end-user key:  %s

  Try:
    curl -s %s/v1/chat/completions -H "Authorization: Bearer %s" \
      -H "Content-Type: application/json" \
      -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hi"}]}'

`, upstream, pid, platformKey, eu.EndUser.Id, eu.RawKey, gateway, eu.RawKey)
	return nil
}
