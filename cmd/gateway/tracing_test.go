package main

import (
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/assistiv/gateway/edge/edgetest"
)

// TestServeExportsTracesWhenOTLPEndpointIsSet: the binary with
// OTEL_EXPORTER_OTLP_ENDPOINT exports its request spans over OTLP/HTTP,
// under service.name assistiv-gateway, and honours OTEL_SERVICE_NAME's
// absence with that default.
func TestServeExportsTracesWhenOTLPEndpointIsSet(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var services, names []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ex collectortrace.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &ex) != nil {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, rs := range ex.ResourceSpans {
			for _, a := range rs.Resource.Attributes {
				if a.Key == "service.name" {
					services = append(services, a.Value.GetStringValue())
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					names = append(names, s.Name)
				}
			}
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	p := edgetest.StartProcess(t, t.TempDir(), "OTEL_EXPORTER_OTLP_ENDPOINT=http://"+ln.Addr().String(), "OTEL_BSP_SCHEDULE_DELAY=50", "OTEL_SERVICE_NAME=")
	pid, _ := edgetest.CreatePlatform(t, p.Client(), p.URL, "traced")
	if r := p.Do(t, "GET", "/admin/v1/platforms/"+pid, edgetest.AdminKey, nil); r.Status != 200 {
		t.Fatalf("GET platform: %d %s", r.Status, r.Body)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		n, svc := len(names), append([]string(nil), services...)
		mu.Unlock()
		if n >= 2 {
			for _, s := range svc {
				if s != "assistiv-gateway" {
					t.Errorf("service.name %q, want assistiv-gateway", s)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d spans exported; logs:\n%s", n, p.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Stop(t)
}
