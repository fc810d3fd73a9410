package edge_test

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/assistiv/gateway/actors"
	"github.com/assistiv/gateway/edge"
	"github.com/assistiv/gateway/edge/edgetest"
	"github.com/assistiv/gateway/internal/ids"
)

// TestServeInternalActsAsTheCallerOnly: an in-process request acts as its
// caller with the API's own rules (another platform's id answers 404, an
// admin caller is not a platform key and vice versa), and the network
// still needs a key on the same routes.
func TestServeInternalActsAsTheCallerOnly(t *testing.T) {
	g := edgetest.Start(t, edgetest.Options{})
	pa, _ := g.CreatePlatform(t, "a")
	pb, _ := g.CreatePlatform(t, "b")
	call := func(c edge.Caller, method, path string) int {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(method)
		ctx.Request.SetRequestURI(path)
		ctx.Request.Header.Set("Authorization", "Bearer "+edgetest.AdminKey) // ignored in-process
		g.Server.ServeInternal(&ctx, c)
		return ctx.Response.StatusCode()
	}
	asA := edge.Caller{Principal: actors.Principal{Kind: ids.KindPlatform, Platform: ids.PlatformID(pa)}}
	for _, tc := range []struct {
		name   string
		c      edge.Caller
		method string
		path   string
		want   int
	}{
		{"own platform", asA, "GET", "/v1/platforms/" + pa, 200},
		{"other platform", asA, "GET", "/v1/platforms/" + pb, 404},
		{"platform caller on an operator route", asA, "GET", "/admin/v1/platforms", 401},
		{"operator caller on a key route", edge.Caller{Admin: true}, "GET", "/v1/platforms/" + pa, 401},
		{"operator caller on an operator route", edge.Caller{Admin: true}, "GET", "/admin/v1/platforms/" + pb, 200},
		{"empty caller", edge.Caller{}, "GET", "/v1/me", 401},
		{"end-user caller on a platform route", edge.Caller{Principal: actors.Principal{Kind: ids.KindEndUser, Platform: ids.PlatformID(pa), EndUser: "eu_x"}}, "GET", "/v1/platforms/" + pa, 403},
	} {
		if got := call(tc.c, tc.method, tc.path); got != tc.want {
			t.Errorf("%s: %s %s = %d, want %d", tc.name, tc.method, tc.path, got, tc.want)
		}
	}
	if r := g.Do(t, "GET", "/v1/platforms/"+pa, "", nil); r.Status != 401 {
		t.Fatalf("network request without a key: %d", r.Status)
	}
}
