package actors

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/internal/clock"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// countingPeers is a real Peers (this node's) that counts the fan-outs
// that reach it.
type countingPeers struct {
	Peers
	fanOuts atomic.Int64
}

func (c *countingPeers) FanOut(ctx context.Context, q proto.Message) ([]proto.Message, error) {
	c.fanOuts.Add(1)
	return c.Peers.FanOut(ctx, q)
}

func clusteredAuthEnv(t *testing.T) (*Env, *clock.Fake, *countingPeers) {
	t.Helper()
	cfg := persistence.DefaultConfig()
	cfg.Dir, cfg.Logger = t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := persistence.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	env := NewEnv(st, clk, cfg.Logger)
	cp := &countingPeers{Peers: NewSingleNode(env)}
	env.SetPeers(cp, time.Minute)
	return env, clk, cp
}

// In a cluster a miss asks every node; a key no node knows is then
// refused without asking again for unknownKeyTTL, so repeating a bad key
// costs one fan-out per TTL, not one per request.
func TestUnknownKeyFansOutOncePerTTL(t *testing.T) {
	env, clk, cp := clusteredAuthEnv(t)
	var d ids.Digest
	copy(d[:], "an unknown key digest, 32 bytes!")
	for i := 0; i < 100; i++ {
		if _, err := env.Auth.Lookup(d); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("Lookup(unknown) #%d = %v, want ErrUnknownKey", i, err)
		}
	}
	if got := cp.fanOuts.Load(); got != 1 {
		t.Fatalf("100 lookups of one unknown key made %d fan-outs, want 1", got)
	}
	clk.Advance(unknownKeyTTL)
	if _, err := env.Auth.Lookup(d); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Lookup(unknown) after the TTL = %v, want ErrUnknownKey", err)
	}
	if got := cp.fanOuts.Load(); got != 2 {
		t.Fatalf("after the TTL the lookup made %d fan-outs in all, want 2", got)
	}
}

// A key created on this node is served at once even if its digest was
// remembered as unknown (creation drops the entry).
func TestUnknownKeyForgottenWhenCreated(t *testing.T) {
	env, _, _ := clusteredAuthEnv(t)
	d := randomDigest(t)
	if _, err := env.Auth.Lookup(d); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Lookup before creation = %v, want ErrUnknownKey", err)
	}
	env.Auth.put(&pb.APIKey{Digest: d[:], Id: "key_1", Kind: int32(ids.KindPlatform), PlatformId: "plat_1"})
	p, err := env.Auth.Lookup(d)
	if err != nil || p.KeyID != "key_1" {
		t.Fatalf("Lookup after creation = %+v, %v; want key_1", p, err)
	}
}

// A flood of distinct unknown keys cannot grow the memory without bound.
func TestUnknownKeysBounded(t *testing.T) {
	env, clk, cp := clusteredAuthEnv(t)
	const n = 64*maxUnknownPerShard + 5000
	for i := 0; i < n; i++ {
		d := randomDigest(t)
		if _, err := env.Auth.Lookup(d); !errors.Is(err, ErrUnknownKey) {
			t.Fatal(err)
		}
		if i%1000 == 0 {
			clk.Advance(time.Millisecond)
		}
	}
	if got := cp.fanOuts.Load(); got != n {
		t.Fatalf("%d distinct unknown keys made %d fan-outs, want %d", n, got, n)
	}
	total := 0
	for i := range env.Auth.shards {
		s := &env.Auth.shards[i]
		s.mu.RLock()
		if len(s.unknown) > maxUnknownPerShard {
			t.Errorf("shard %d remembers %d unknown keys, want at most %d", i, len(s.unknown), maxUnknownPerShard)
		}
		total += len(s.unknown)
		s.mu.RUnlock()
	}
	if total == 0 {
		t.Fatal("no unknown key remembered")
	}
}

// A lone node reads its own store and remembers nothing.
func TestUnknownKeyNotRememberedAlone(t *testing.T) {
	cfg := persistence.DefaultConfig()
	cfg.Dir, cfg.Logger = t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := persistence.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	env := NewEnv(st, clock.NewFake(time.Now()), cfg.Logger)
	d := randomDigest(t)
	if _, err := env.Auth.Lookup(d); !errors.Is(err, ErrUnknownKey) {
		t.Fatal(err)
	}
	if s := env.Auth.shard(d); s.unknown != nil {
		t.Fatalf("a lone node remembered %d unknown keys", len(s.unknown))
	}
}
