package edge

import (
	"crypto/rand"
	"testing"

	"github.com/assistiv/gateway/internal/secrets"
)

// Rotating a provider key many times leaves one cached key per
// (platform, provider), and the newest key is the one served.
func TestProviderKeyCacheHoldsOneKeyPerProvider(t *testing.T) {
	var mk [32]byte
	if _, err := rand.Read(mk[:]); err != nil {
		t.Fatal(err)
	}
	ring, err := secrets.NewKeyring(mk[:])
	if err != nil {
		t.Fatal(err)
	}
	k := &keyCache{ring: ring}
	for i := 0; i < 200; i++ {
		for _, pl := range []string{"plat_a", "plat_b"} {
			plain := "sk-" + pl + "-" + string(rune('a'+i%26))
			sealed, err := ring.Seal([]byte(plain), providerAAD(pl, "openai"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := k.open(pl, "openai", sealed)
			if err != nil || got != plain {
				t.Fatalf("open rotation %d of %s = %q, %v; want %q", i, pl, got, err, plain)
			}
		}
	}
	if n := k.len(); n != 2 {
		t.Fatalf("after 400 rotations the cache holds %d keys, want 2", n)
	}
	// A sealed key of another platform does not open under this one.
	sealed, _ := ring.Seal([]byte("sk-x"), providerAAD("plat_a", "openai"))
	if _, err := k.open("plat_b", "openai", sealed); err == nil {
		t.Fatal("plat_a's sealed key opened for plat_b")
	}
}
