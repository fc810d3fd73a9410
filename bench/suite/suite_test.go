package suite

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/assistiv/gateway/bench/proc"
	"github.com/assistiv/gateway/bench/report"
	"github.com/assistiv/gateway/bench/upstream"
	"github.com/valyala/fasthttp"
)

// inProcess is a Variant served by an in-process benchupstream handler, so
// the scenario plumbing can be tested without building binaries.
type inProcess struct {
	name string
}

func (v inProcess) Name() string { return v.name }

func (v inProcess) Start(context.Context, *Env) (*Instance, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cfg := upstream.DefaultConfig()
	s := &fasthttp.Server{Handler: upstream.Handler(cfg)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	url := "http://" + ln.Addr().String()
	return &Instance{BaseURL: url, Requests: DefaultTemplates(url), Stop: func() {
		_ = s.Shutdown()
		<-done
	}}, nil
}

func TestOverheadProducesComparablePointsPerVariant(t *testing.T) {
	env := &Env{
		Quick:    true,
		Procs:    &proc.Group{LogDir: t.TempDir()},
		Variants: []Variant{inProcess{"direct"}, inProcess{"other"}},
	}
	s, err := (&Overhead{Conns: []int{2}, Rates: []float64{200}}).Run(context.Background(), env)
	if err != nil {
		t.Fatalf("Overhead.Run() error = %v", err)
	}
	if len(s.Points) != 4 {
		t.Fatalf("Overhead.Run() gave %d points, want 4 (2 loads x 2 variants)", len(s.Points))
	}
	report.Compare(&s)
	for _, p := range s.Points {
		if p.OK == 0 || p.Latency == nil || len(p.Errors) != 0 {
			t.Errorf("point %s/%s: OK=%d errors=%v latency=%v", p.Variant, p.Kind, p.OK, p.Errors, p.Latency)
		}
		if p.Variant == "other" {
			if _, ok := p.CompareTo("direct"); !ok {
				t.Errorf("point other/%s has no comparison with direct", p.Kind)
			}
		}
		if got := p.CPU[len(p.CPU)-1].Process; got != "loadgen" {
			t.Errorf("last CPU entry = %q, want loadgen", got)
		}
	}
}

func TestEnvPlaceRecordsEachRoleOnce(t *testing.T) {
	env := &Env{}
	env.Place(report.Placement{Role: "upstream", Binary: "a", CPUs: "1"})
	env.Place(report.Placement{Role: "upstream", Binary: "a", CPUs: "1"})
	env.Place(report.Placement{Role: "bareproxy", Binary: "b", CPUs: "1"})
	if got := len(env.Placements()); got != 2 {
		t.Errorf("Placements() has %d entries, want 2", got)
	}
}

func TestParseStoreStats(t *testing.T) {
	in := `# HELP assistiv_store_batches_total Batches the group committer handed Pebble.
# TYPE assistiv_store_batches_total counter
assistiv_store_batches_total 12345
# TYPE assistiv_store_fsyncs_total counter
assistiv_store_fsyncs_total 6.5e+06
# TYPE assistiv_store_synced_writes_total counter
assistiv_store_synced_writes_total 4.2e+07
# TYPE assistiv_store_writes_total counter
assistiv_store_writes_total 99
# TYPE http_requests_total counter
http_requests_total{route="/v1/chat/completions"} 7
`
	st, err := parseStoreStats(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := (report.StoreStats{Batches: 12345, Fsyncs: 6_500_000, SyncedWrites: 42_000_000}); st != want {
		t.Errorf("parseStoreStats = %+v, want %+v", st, want)
	}
	missing := strings.Replace(in, "assistiv_store_synced_writes_total 4.2e+07\n", "", 1)
	if _, err := parseStoreStats(strings.NewReader(missing)); err == nil {
		t.Error("a missing counter was not refused")
	}
	if _, err := parseStoreStats(strings.NewReader(strings.Replace(in, "6.5e+06", "NaNx", 1))); err == nil {
		t.Error("a malformed value was not refused")
	}
}
