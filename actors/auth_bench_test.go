package actors

import (
	"log/slog"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

// BenchmarkAuthLookupHit is the key check every call makes: a cached live
// key. "alone" is a single node (no TTL: the path of every call today);
// "cluster" adds the TTL check (one clock read).
//
//	go test ./actors -run '^$' -bench BenchmarkAuthLookupHit -benchmem
func BenchmarkAuthLookupHit(b *testing.B) {
	cfg := persistence.DefaultConfig()
	cfg.FS = vfs.NewMem()
	cfg.Logger = slog.New(slog.DiscardHandler)
	st, err := persistence.Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	for _, c := range []struct {
		name string
		ttl  time.Duration
	}{{"alone", 0}, {"cluster", time.Minute}} {
		b.Run(c.name, func(b *testing.B) {
			env := NewEnv(st, nil, nil)
			if c.ttl > 0 {
				env.SetPeers(SingleNode{n: NewNode(env)}, c.ttl)
			}
			_, d := ids.NewKey(ids.KindPlatform)
			env.Auth.put(&pb.APIKey{Id: "key_b", Kind: int32(ids.KindPlatform), PlatformId: "plat_b", Digest: d[:]})
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := env.Auth.Lookup(d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
