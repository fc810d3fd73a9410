package actors

import (
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/pb"
	"github.com/assistiv/gateway/persistence"
)

func randomDigest(t *testing.T) ids.Digest {
	var d ids.Digest
	if _, err := rand.Read(d[:]); err != nil {
		t.Fatal(err)
	}
	return d
}

// Revocation tombstones are bounded per shard, the newest always refuse
// their key, and a lookup of a key stored as revoked is refused without
// being cached: a tenant revoking (or probing revoked) keys cannot grow
// the auth cache without bound.
func TestAuthCacheBoundsRevokedEntries(t *testing.T) {
	cfg := persistence.DefaultConfig()
	cfg.Dir, cfg.FS, cfg.Logger = "/data", vfs.NewMem(), slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := persistence.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a := NewAuth(st)

	const n = 64*maxTombstonesPerShard + 20000
	var last []ids.Digest
	for i := 0; i < n; i++ {
		d := randomDigest(t)
		a.revoke(d[:])
		if i >= n-1000 {
			last = append(last, d)
		}
	}
	if _, revoked := a.Len(); revoked > 64*maxTombstonesPerShard {
		t.Fatalf("after %d revocations the cache holds %d tombstones, want at most %d", n, revoked, 64*maxTombstonesPerShard)
	}
	// The most recent revocations are still refused from memory (their
	// records were never written: only the tombstone refuses them).
	for _, d := range last {
		s := a.shard(d)
		s.mu.RLock()
		e, ok := s.m[d]
		s.mu.RUnlock()
		if !ok || !e.revoked {
			t.Fatal("a recent revocation lost its tombstone")
		}
	}

	// Keys stored as revoked: refused, not cached.
	_, before := a.Len()
	liveBefore, _ := a.Len()
	for i := 0; i < 500; i++ {
		d := randomDigest(t)
		raw, _ := proto.Marshal(&pb.APIKey{Id: "key_x", Kind: int32(ids.KindEndUser), PlatformId: "plat_x", Digest: d[:], RevokedAtMs: 1})
		if err := st.Commit(persistence.Set(persistence.APIKeyKey(d[:]), raw)); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Lookup(d); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("Lookup(revoked) = %v, want ErrUnknownKey", err)
		}
	}
	if live, revoked := a.Len(); revoked != before || live != liveBefore {
		t.Fatalf("lookups of revoked keys changed the cache: live %d→%d, tombstones %d→%d", liveBefore, live, before, revoked)
	}
	// A live key is cached and then refused once revoked.
	d := randomDigest(t)
	raw, _ := proto.Marshal(&pb.APIKey{Id: "key_y", Kind: int32(ids.KindEndUser), PlatformId: "plat_x", Digest: d[:]})
	if err := st.Commit(persistence.Set(persistence.APIKeyKey(d[:]), raw)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Lookup(d); err != nil {
		t.Fatalf("Lookup(live) = %v", err)
	}
	a.revoke(d[:])
	if _, err := a.Lookup(d); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Lookup after revoke = %v, want ErrUnknownKey", err)
	}
}
