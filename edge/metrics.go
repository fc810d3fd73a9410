package edge

import (
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the edge's Prometheus series: requests and latency by route
// template (never by raw path, so ids do not explode cardinality) and status.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	// The series of each (method, route, status) seen, looked up once:
	// WithLabelValues hashes the labels and takes a lock per call, twice a
	// request (a tenth of a budget debit's handling). Read without a lock
	// from an immutable map; a new combination (bounded: route templates,
	// standard methods, statuses) copies it under mu.
	mu     sync.Mutex
	series atomic.Pointer[map[seriesKey]*series]
}

type seriesKey struct {
	method, route string
	status        int
}

type series struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "assistiv", Name: "http_requests_total",
			Help: "HTTP requests by method, route template and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "assistiv", Name: "http_request_duration_seconds",
			Help:    "HTTP request latency by method, route template and status (handler time; streams end at the handler's return).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method", "route", "status"}),
	}
	reg.MustRegister(m.requests, m.latency)
	m.series.Store(&map[seriesKey]*series{})
	return m
}

func (m *metrics) observe(method []byte, route string, status int, d time.Duration) {
	k := seriesKey{methodLabel(method), route, status}
	sr := (*m.series.Load())[k]
	if sr == nil {
		sr = m.add(k)
	}
	sr.requests.Inc()
	sr.latency.Observe(d.Seconds())
}

// add returns the series of k, creating them.
func (m *metrics) add(k seriesKey) *series {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.series.Load()
	if sr := old[k]; sr != nil {
		return sr
	}
	st := strconv.Itoa(k.status)
	sr := &series{requests: m.requests.WithLabelValues(k.method, k.route, st), latency: m.latency.WithLabelValues(k.method, k.route, st)}
	next := make(map[seriesKey]*series, len(old)+1)
	maps.Copy(next, old)
	next[k] = sr
	m.series.Store(&next)
	return sr
}

// methodLabel keeps the method label bounded: clients may send any token
// as a method, so anything outside HTTP's standard methods counts as OTHER.
// It allocates nothing.
func methodLabel(m []byte) string {
	switch string(m) {
	case "GET":
		return "GET"
	case "HEAD":
		return "HEAD"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "PATCH":
		return "PATCH"
	case "DELETE":
		return "DELETE"
	case "OPTIONS":
		return "OPTIONS"
	case "CONNECT":
		return "CONNECT"
	case "TRACE":
		return "TRACE"
	}
	return "OTHER"
}
