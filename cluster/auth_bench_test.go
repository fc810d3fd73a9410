package cluster

import (
	"errors"
	"testing"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/ids"
)

// BenchmarkUnknownKeyLookup measures Auth.Lookup of one key no node knows,
// repeated (a client retrying a bad key), on a three-node cluster: every
// lookup that is not answered from memory asks every node.
func BenchmarkUnknownKeyLookup(b *testing.B) {
	c := newTestCluster(tb{b})
	a := c.start()
	c.start()
	c.start()
	var d ids.Digest
	copy(d[:], "a key digest that no node knows!!")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.env.Auth.Lookup(d); !errors.Is(err, actors.ErrUnknownKey) {
			b.Fatal(err)
		}
	}
}
