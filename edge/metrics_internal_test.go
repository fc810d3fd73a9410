package edge

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// gathered returns reg's samples of a metric family: the counter value (or
// histogram count) by "method route status".
func gathered(t *testing.T, reg *prometheus.Registry, family string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			v := m.GetCounter().GetValue()
			if h := m.GetHistogram(); h != nil {
				v = float64(h.GetSampleCount())
			}
			out[l["method"]+" "+l["route"]+" "+l["status"]] = v
		}
	}
	return out
}

// The cached series count what WithLabelValues would, per (method, route,
// status), from many goroutines at once, and a method outside HTTP's
// standard ones counts as OTHER.
func TestMetricsObserveCountsEachSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	cases := []struct {
		method, route string
		status, n     int
	}{
		{"POST", "/v1/chat/completions", 200, 300},
		{"POST", "/v1/chat/completions", 429, 40},
		{"GET", "/v1/me", 200, 25},
		{"BREW", "/v1/me", 404, 7},
		{"brew", "/v1/me", 404, 3},
	}
	var wg sync.WaitGroup
	for _, c := range cases {
		for g := 0; g < c.n; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m.observe([]byte(c.method), c.route, c.status, time.Millisecond)
			}()
		}
	}
	wg.Wait()
	want := map[string]float64{
		"POST /v1/chat/completions 200": 300,
		"POST /v1/chat/completions 429": 40,
		"GET /v1/me 200":                25,
		"OTHER /v1/me 404":              10,
	}
	for _, family := range []string{"assistiv_http_requests_total", "assistiv_http_request_duration_seconds"} {
		got := gathered(t, reg, family)
		if len(got) != len(want) {
			t.Errorf("%s: %v, want %v", family, got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s{%s} = %v, want %v", family, k, got[k], v)
			}
		}
	}
	if got := len(*m.series.Load()); got != 4 {
		t.Errorf("%d cached series, want 4 (BREW and brew are both OTHER)", got)
	}
}

func BenchmarkMetricsObserve(b *testing.B) {
	m := newMetrics(prometheus.NewRegistry())
	method := []byte("POST")
	b.ReportAllocs()
	for b.Loop() {
		m.observe(method, "/v1/platforms/{platformId}/end-users/{endUserId}/budget/debit", 200, time.Millisecond)
	}
}
