package suite

import (
	"context"
	"net"
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
