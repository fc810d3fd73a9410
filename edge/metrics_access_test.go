package edge_test

import (
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/assistiv/gateway/edge"
	"github.com/assistiv/gateway/edge/edgetest"
)

// /metrics on the main listener takes the admin key or the metrics token;
// nothing else reads it. With a separate metrics listener, the main
// listener has no /metrics at all.
func TestMetricsNeedTheAdminKeyOrTheMetricsToken(t *testing.T) {
	const token = "metrics-token-0123456789"
	g := edgetest.Start(t, edgetest.Options{EdgeConfig: func(c *edge.Config) { c.MetricsTokenDigest = sha256.Sum256([]byte(token)) }})
	p := newPlatform(t, g, "M")
	u := p.endUser(t, g, "u")
	for _, tc := range []struct {
		name, key string
		status    int
	}{
		{"no key", "", 401}, {"platform key", p.key, 401}, {"end-user key", u.key, 401}, {"wrong token", token + "x", 401},
		{"admin key", edgetest.AdminKey, 200}, {"metrics token", token, 200},
	} {
		r := g.Do(t, "GET", "/metrics", tc.key, nil)
		if r.Status != tc.status {
			t.Errorf("%s: GET /metrics = %d, want %d", tc.name, r.Status, tc.status)
		}
		if tc.status == 200 && !strings.Contains(string(r.Body), "assistiv_http_requests_total") {
			t.Errorf("%s: body lacks the request series: %.200s", tc.name, r.Body)
		}
		if tc.status == 401 && strings.Contains(string(r.Body), "assistiv_") {
			t.Errorf("%s: a refusal shows series", tc.name)
		}
	}

	sep := edgetest.Start(t, edgetest.Options{EdgeConfig: func(c *edge.Config) { c.MetricsSeparate = true }})
	if r := sep.Do(t, "GET", "/metrics", edgetest.AdminKey, nil); r.Status != 404 {
		t.Fatalf("main listener /metrics with a separate metrics listener = %d, want 404", r.Status)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ms := &fasthttp.Server{Handler: sep.Server.MetricsHandler()}
	go func() { _ = ms.Serve(ln) }()
	t.Cleanup(func() { _ = ms.Shutdown() })
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "assistiv_http_requests_total") {
		t.Fatalf("metrics listener = %d %.200s", resp.StatusCode, body)
	}
}

// The binary wires ASSISTIV_METRICS_LISTEN: metrics on their own listener,
// none on the main one.
func TestMetricsListenerOfTheBinary(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := edgetest.StartProcess(t, t.TempDir(), "ASSISTIV_METRICS_LISTEN="+addr)
	if r := p.Do(t, "GET", "/metrics", edgetest.AdminKey, nil); r.Status != 404 {
		t.Fatalf("main listener /metrics = %d, want 404", r.Status)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "go_goroutines") {
		t.Fatalf("metrics listener = %d %.200s", resp.StatusCode, body)
	}
	p.Stop(t)
}
