package suite

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"

	"github.com/assistiv/gateway/bench/loadgen"
	"github.com/assistiv/gateway/bench/report"
)

// The tenant, ledger and rate-limit scenarios send requests that differ per
// end-user (key, path), which loadgen's single template cannot express.
// drive is their small closed-loop driver: workers connections, each taking
// the next request index until n are done or the deadline passes.

// driveConfig configures [drive].
type driveConfig struct {
	// Addr is the loopback host:port.
	Addr string
	// Workers is the number of connections (and goroutines).
	Workers int
	// N bounds the number of requests; 0 means until Until.
	N int
	// Until, if set, stops workers from starting requests after it.
	Until time.Time
	// Build fills request i (of worker w); the request was reset.
	Build func(w, i int, req *fasthttp.Request)
	// Done, if set, is called after each request, concurrently from the
	// workers; status is 0 on a transport error.
	Done func(i, status int, latency time.Duration)
	// Timeout bounds one request. Default 30 s.
	Timeout time.Duration
}

// driveResult is what [drive] measured.
type driveResult struct {
	Elapsed time.Duration
	// Status counts responses by status code; 0 counts transport errors.
	Status map[int]int64
	// OK is the latency of 2xx answers, in µs.
	OK *hdrhistogram.Histogram
	// Sent counts requests.
	Sent int64
}

// merge adds o, measured over the same period by other connections, to r.
func (r *driveResult) merge(o *driveResult) {
	r.Elapsed = max(r.Elapsed, o.Elapsed)
	for st, c := range o.Status {
		r.Status[st] += c
	}
	r.OK.Merge(o.OK)
	r.Sent += o.Sent
}

func (r *driveResult) count2xx() int64 {
	var n int64
	for s, c := range r.Status {
		if s/100 == 2 {
			n += c
		}
	}
	return n
}

func (r *driveResult) rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.count2xx()) / r.Elapsed.Seconds()
}

// statusSummary renders the status counts, e.g. "200: 9000, 429: 1000".
func (r *driveResult) statusSummary() string {
	var parts []string
	for s := 0; s < 600; s++ {
		if c := r.Status[s]; c > 0 {
			name := strconv.Itoa(s)
			if s == 0 {
				name = "transport error"
			}
			parts = append(parts, fmt.Sprintf("%s: %d", name, c))
		}
	}
	return strings.Join(parts, ", ")
}

func drive(ctx context.Context, cfg driveConfig) *driveResult {
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	hc := &fasthttp.HostClient{
		Addr: cfg.Addr, MaxConns: cfg.Workers, MaxConnWaitTimeout: cfg.Timeout,
		ReadTimeout: cfg.Timeout, WriteTimeout: cfg.Timeout, MaxIdemponentCallAttempts: 1,
		RetryIfErr:               func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		NoDefaultUserAgentHeader: true, DisablePathNormalizing: true,
		Dial: func(addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if err := loadgen.CheckLoopback(host); err != nil {
				return nil, err
			}
			return net.Dial("tcp", addr)
		},
	}
	defer hc.CloseIdleConnections()
	var next atomic.Int64
	type shard struct {
		status map[int]int64
		ok     *hdrhistogram.Histogram
	}
	shards := make([]shard, cfg.Workers)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		shards[w] = shard{status: map[int]int64{}, ok: loadgen.NewHistogram()}
		wg.Go(func() {
			sh := &shards[w]
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for ctx.Err() == nil {
				if !cfg.Until.IsZero() && time.Now().After(cfg.Until) {
					return
				}
				i := int(next.Add(1) - 1)
				if cfg.N > 0 && i >= cfg.N {
					return
				}
				req.Reset()
				cfg.Build(w, i, req)
				t0 := time.Now()
				err := hc.DoTimeout(req, resp, cfg.Timeout)
				d := time.Since(t0)
				status := 0
				if err == nil {
					status = resp.StatusCode()
				}
				sh.status[status]++
				if status/100 == 2 {
					_ = sh.ok.RecordValue(max(1, d.Microseconds()))
				}
				if cfg.Done != nil {
					cfg.Done(i, status, d)
				}
			}
		})
	}
	wg.Wait()
	res := &driveResult{Elapsed: time.Since(start), Status: map[int]int64{}, OK: loadgen.NewHistogram()}
	for _, sh := range shards {
		for s, c := range sh.status {
			res.Status[s] += c
			res.Sent += c
		}
		res.OK.Merge(sh.ok)
	}
	return res
}

// chatRequest fills req with a non-streaming chat completion for key.
func chatRequest(req *fasthttp.Request, baseURL, key string) {
	req.SetRequestURI(baseURL + ChatPath)
	req.Header.SetMethod("POST")
	req.Header.SetContentType("application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	req.SetBodyString(ChatBody)
}

// seededUser is one line of benchseed's -keys file.
type seededUser struct {
	Platform, EndUser, Key string
}

func readKeys(path string) ([]seededUser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []seededUser
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch len(f) {
		case 3:
			out = append(out, seededUser{f[0], f[1], f[2]})
		case 2:
			out = append(out, seededUser{Platform: f[0], Key: f[1]})
		}
	}
	return out, sc.Err()
}

// rss returns the resident set size of pid in bytes, from /proc.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

var metricLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([0-9.eE+-]+|NaN)$`)

// promMetrics fetches baseURL/metrics and returns the unlabelled series.
func promMetrics(ctx context.Context, baseURL string) (map[string]float64, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(baseURL + "/metrics")
	req.Header.Set("Authorization", "Bearer "+AdminKey) // /metrics is not public
	if err := fasthttp.DoTimeout(req, resp, 10*time.Second); err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(resp.Body()), "\n") {
		m := metricLine.FindStringSubmatch(line)
		if m == nil || m[2] != "" {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err == nil {
			out[m[1]] = v
		}
	}
	return out, ctx.Err()
}

// zipf draws ranks in [0, n) with P(k) ∝ 1/(k+1)^s, by inverting a
// precomputed CDF. Not safe for concurrent use; give each worker its own
// seeded source.
type zipf struct {
	cdf []float64
	x   uint64 // xorshift state
}

func newZipfCDF(n int, s float64) []float64 {
	cdf := make([]float64, n)
	sum := 0.0
	for k := range n {
		sum += 1 / math.Pow(float64(k+1), s)
		cdf[k] = sum
	}
	for k := range cdf {
		cdf[k] /= sum
	}
	return cdf
}

func (z *zipf) next() int {
	z.x ^= z.x << 13
	z.x ^= z.x >> 7
	z.x ^= z.x << 17
	u := float64(z.x>>11) / (1 << 53)
	lo, hi := 0, len(z.cdf)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if z.cdf[mid] < u {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// distRow renders a latency histogram as p50 / p99 / p99.9 / max cells.
func distRow(h *hdrhistogram.Histogram) []string {
	d := report.DistFrom(h)
	if d == nil {
		return []string{"–", "–", "–", "–"}
	}
	return []string{fmtNum(d.P50), fmtNum(d.P99), fmtNum(d.P999), fmtNum(d.Max)}
}

func fmtNum(v float64) string {
	switch {
	case v >= 100 || v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func fmtBytes(b float64) string {
	switch {
	case math.Abs(b) >= 1<<30:
		return fmt.Sprintf("%.2f GiB", b/(1<<30))
	case math.Abs(b) >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case math.Abs(b) >= 1<<10:
		return fmt.Sprintf("%.2f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}
