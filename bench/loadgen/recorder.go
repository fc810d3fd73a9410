package loadgen

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"
)

// Histogram range: 1 µs to 60 s at three significant digits (0.1% value
// resolution, ~140 KB per histogram). Values above the range are clamped to
// it and counted in [Result.Clamped].
const (
	histMinMicros = 1
	histMaxMicros = 60_000_000
	histSigFigs   = 3
	maxShards     = 16
)

// NewHistogram returns an empty histogram with the range every Result uses.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMinMicros, histMaxMicros, histSigFigs)
}

// Result is what one run measured. Histograms hold microseconds.
type Result struct {
	// Started is when the run's first request was due; Elapsed runs from
	// there to the last completion.
	Started time.Time
	Elapsed time.Duration

	// Sent counts requests written (or attempted); OK and Failed split
	// completed requests by the validator's verdict and transport errors.
	Sent, OK, Failed int64
	// Dropped counts open-loop requests that were due but never sent
	// because the run's drain deadline or context ended first. Late counts
	// requests sent more than LateAfter after their intended time.
	Dropped, Late int64
	// Errors counts failures by kind (see [ErrorKind]).
	Errors map[string]int64
	// Clamped counts values above the histogram range (60 s), recorded as
	// the maximum.
	Clamped int64

	// Latency is the successful requests' latency: from the intended send
	// time in open-loop runs, from the actual send in closed-loop runs, to
	// the end of the response body.
	Latency *hdrhistogram.Histogram
	// Service is the successful requests' time from the actual send to the
	// end of the body. Lag is the actual send minus the intended send time
	// of every sent open-loop request (zero for closed-loop runs).
	Service, Lag *hdrhistogram.Histogram

	// TTFT is the time from the (intended, for open-loop) send to the first
	// "data:" event, Gap the time between consecutive "data:" events;
	// Events counts "data:" events other than "[DONE]". Streaming only.
	TTFT, Gap *hdrhistogram.Histogram
	Events    int64
}

// Throughput returns successful requests per second over Elapsed.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// ErrorCount returns the total of Errors.
func (r *Result) ErrorCount() int64 {
	var n int64
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// shard is one lock's worth of recording state; workers are spread over a
// few shards so that they rarely contend and histograms stay few.
type shard struct {
	mu                        sync.Mutex // guards every field below
	latency, service, lag     *hdrhistogram.Histogram
	ttft, gap                 *hdrhistogram.Histogram
	ok, failed, late, clamped int64
	events                    int64
	errors                    map[string]int64
	lastDone                  time.Time
	_                         [64]byte // keep neighbouring shards' locks apart
}

type recorder struct {
	shards []shard
	stream bool
}

func newRecorder(workers int, stream bool) *recorder {
	n := min(max(workers, 1), maxShards)
	r := &recorder{shards: make([]shard, n), stream: stream}
	for i := range r.shards {
		s := &r.shards[i]
		s.latency, s.service, s.lag = NewHistogram(), NewHistogram(), NewHistogram()
		if stream {
			s.ttft, s.gap = NewHistogram(), NewHistogram()
		}
		s.errors = map[string]int64{}
	}
	return r
}

func (r *recorder) shard(worker int) *shard { return &r.shards[worker%len(r.shards)] }

// micros converts d to whole microseconds, at least 1 so that sub-microsecond
// values stay inside the histogram's range.
func micros(d time.Duration) int64 {
	us := d.Microseconds()
	if us < histMinMicros {
		return histMinMicros
	}
	return us
}

// recordLocked records v (µs) into h, clamping to the histogram range.
func (s *shard) recordLocked(h *hdrhistogram.Histogram, v int64) {
	if v > histMaxMicros {
		v = histMaxMicros
		s.clamped++
	}
	_ = h.RecordValue(v) // cannot fail: v is within range
}

// outcome is what one request produced, handed to the shard in one lock.
type outcome struct {
	err          error
	latency, svc time.Duration
	lag          time.Duration
	late         bool
	hasLag       bool
	ttft         time.Duration
	gaps         []time.Duration // borrowed; not retained
	events       int64
	done         time.Time
}

func (s *shard) add(o *outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.hasLag {
		s.recordLocked(s.lag, micros(o.lag))
		if o.late {
			s.late++
		}
	}
	if o.done.After(s.lastDone) {
		s.lastDone = o.done
	}
	s.events += o.events
	if s.ttft != nil {
		if o.ttft > 0 {
			s.recordLocked(s.ttft, micros(o.ttft))
		}
		for _, g := range o.gaps {
			s.recordLocked(s.gap, micros(g))
		}
	}
	if o.err != nil {
		s.failed++
		s.errors[ErrorKind(o.err)]++
		return
	}
	s.ok++
	s.recordLocked(s.latency, micros(o.latency))
	s.recordLocked(s.service, micros(o.svc))
}

// result merges the shards.
func (r *recorder) result(started time.Time, sent, dropped int64) *Result {
	res := &Result{
		Started: started, Sent: sent, Dropped: dropped,
		Errors:  map[string]int64{},
		Latency: NewHistogram(), Service: NewHistogram(), Lag: NewHistogram(),
	}
	if r.stream {
		res.TTFT, res.Gap = NewHistogram(), NewHistogram()
	}
	var last time.Time
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		res.OK += s.ok
		res.Failed += s.failed
		res.Late += s.late
		res.Clamped += s.clamped
		res.Events += s.events
		for k, v := range s.errors {
			res.Errors[k] += v
		}
		res.Latency.Merge(s.latency)
		res.Service.Merge(s.service)
		res.Lag.Merge(s.lag)
		if r.stream {
			res.TTFT.Merge(s.ttft)
			res.Gap.Merge(s.gap)
		}
		if s.lastDone.After(last) {
			last = s.lastDone
		}
		s.mu.Unlock()
	}
	if last.After(started) {
		res.Elapsed = last.Sub(started)
	}
	return res
}

// Errors kinds that are not a status code.
var (
	errStreamIncomplete = errors.New("loadgen: event stream ended without data: [DONE]")
	errInvalid          = errors.New("loadgen: response rejected by validator")
)

// ErrorKind names the class of err for [Result.Errors]: "timeout",
// "conn_refused", "conn_reset", "conn_closed", "no_free_conns",
// "status_<code>", "stream_incomplete", "invalid", "not_loopback" or "other".
func ErrorKind(err error) string {
	var se *StatusError
	var ne net.Error
	switch {
	case errors.As(err, &se):
		return "status_" + strconv.Itoa(se.Code)
	case errors.Is(err, errStreamIncomplete):
		return "stream_incomplete"
	case errors.Is(err, errInvalid):
		return "invalid"
	case errors.Is(err, ErrNotLoopback):
		return "not_loopback"
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "conn_refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "conn_reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, fasthttp.ErrConnectionClosed):
		return "conn_closed"
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return "no_free_conns"
	}
	return "other"
}
