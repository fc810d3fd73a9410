package cluster

import (
	"context"
	"strconv"
	"testing"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/internal/ids"
	"github.com/assistiv/gateway/internal/pb"
)

// BenchmarkAsk measures one GetBudget through Node.Ask on a two-node
// cluster (real remote over TLS on 127.0.0.1): "owner" when the asking node
// owns the end-user (the local short-circuit: no serialization), "forward"
// when the other node does (protobuf over the remote and back). The
// difference is the forwarding cost per request that lands on a non-owner.
func BenchmarkAsk(b *testing.B) {
	c := newTestCluster(tb{b})
	a := c.start()
	o := c.start()
	p := newPlatform(tb{b}, a, 0)
	var local, remote ids.EndUserID
	for i := 0; local == "" || remote == ""; i++ {
		u := newUser(tb{b}, a, p, "b"+strconv.Itoa(i), 1_000_000)
		if a.node.Owner(actors.EndUserActor(p, u)) == a.node.Address() {
			local = u
		} else if o.node.Owner(actors.EndUserActor(p, u)) == o.node.Address() {
			remote = u
		}
	}
	for _, bc := range []struct {
		name string
		u    ids.EndUserID
	}{{"owner", local}, {"forward", remote}} {
		b.Run(bc.name, func(b *testing.B) {
			id := actors.EndUserActor(p, bc.u)
			ctx := context.Background()
			if _, err := a.node.Ask(ctx, id, &pb.GetBudget{}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb_ *testing.PB) {
				for pb_.Next() {
					if _, err := a.node.Ask(ctx, id, &pb.GetBudget{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// tb adapts *testing.B to the helpers' testing.TB (they log through it).
type tb struct{ *testing.B }
