package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"
)

// serve runs h on a fresh 127.0.0.1 port until the test ends and returns
// the base URL.
func serve(tb testing.TB, h fasthttp.RequestHandler) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("Listen() error = %v", err)
	}
	s := &fasthttp.Server{Handler: h}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	tb.Cleanup(func() {
		_ = s.Shutdown()
		<-done
	})
	return "http://" + ln.Addr().String()
}

func TestOpenLoopChargesAStallToTheRequestsQueuedBehindIt(t *testing.T) {
	// The 50th request stalls the whole server for 300 ms. Requests due
	// during the stall must carry their wait in Latency (measured from the
	// intended time), while Service (measured from the actual send) sees
	// far fewer slow requests: the difference is coordinated omission.
	const stall = 300 * time.Millisecond
	var n atomic.Int64
	var mu sync.Mutex
	var stallUntil time.Time
	url := serve(t, func(ctx *fasthttp.RequestCtx) {
		if n.Add(1) == 50 {
			mu.Lock()
			stallUntil = time.Now().Add(stall)
			mu.Unlock()
		}
		mu.Lock()
		until := stallUntil
		mu.Unlock()
		time.Sleep(time.Until(until))
	})
	res, err := Open(context.Background(), OpenConfig{
		Config:      Config{Request: Request{URL: url + "/"}, Duration: time.Second},
		Rate:        500,
		MaxInFlight: 4,
	})
	if err != nil {
		t.Fatalf("Open() error = %v", err)
	}
	if res.OK != 500 || res.Failed != 0 || res.Dropped != 0 {
		t.Fatalf("Open() OK=%d Failed=%d Dropped=%d errors=%v, want 500/0/0", res.OK, res.Failed, res.Dropped, res.Errors)
	}
	const slow = 100_000 // µs
	slowLatency := countAtLeast(res.Latency, slow)
	slowService := countAtLeast(res.Service, slow)
	// ~150 requests are due during the stall; about 100 of them wait
	// 100 ms or more. Only the ones in flight when it began are slow to serve.
	if slowLatency < 30 {
		t.Errorf("requests with latency >= 100ms = %d, want >= 30 (stall hidden?)", slowLatency)
	}
	if slowService*2 > slowLatency {
		t.Errorf("slow by service time = %d, slow by latency = %d; want latency to show at least twice as many", slowService, slowLatency)
	}
	t.Logf("slow (>=100ms) by latency %d, by service time %d; late %d", slowLatency, slowService, res.Late)
	if res.Late == 0 || res.Lag.Max() < slow {
		t.Errorf("Late = %d, max lag = %dµs; want late requests with lag >= %dµs", res.Late, res.Lag.Max(), slow)
	}
}

// countAtLeast returns how many values recorded in h are at least v.
func countAtLeast(h *hdrhistogram.Histogram, v int64) int64 {
	var n int64
	for _, b := range h.Distribution() {
		if b.From >= v {
			n += b.Count
		}
	}
	return n
}

func TestClosedLoopSendsExactlyMaxRequests(t *testing.T) {
	var hits atomic.Int64
	url := serve(t, func(ctx *fasthttp.RequestCtx) {
		hits.Add(1)
		ctx.SetBodyString("ok")
	})
	res, err := Closed(context.Background(), ClosedConfig{
		Config: Config{Request: Request{Method: "POST", URL: url + "/x", Body: []byte("{}")},
			Duration: time.Minute, MaxRequests: 300},
		Conns: 8,
	})
	if err != nil {
		t.Fatalf("Closed() error = %v", err)
	}
	if res.Sent != 300 || res.OK != 300 || hits.Load() != 300 || res.Latency.TotalCount() != 300 {
		t.Errorf("Closed(MaxRequests=300): Sent=%d OK=%d server hits=%d recorded=%d, want 300 each",
			res.Sent, res.OK, hits.Load(), res.Latency.TotalCount())
	}
	if res.Throughput() <= 0 {
		t.Errorf("Throughput() = %v, want > 0", res.Throughput())
	}
}

func TestClosedLoopStopsAtDurationAndCountsErrorsByKind(t *testing.T) {
	var n atomic.Int64
	url := serve(t, func(ctx *fasthttp.RequestCtx) {
		if n.Add(1)%2 == 0 {
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		}
	})
	start := time.Now()
	res, err := Closed(context.Background(), ClosedConfig{
		Config: Config{Request: Request{URL: url + "/"}, Duration: 200 * time.Millisecond},
		Conns:  2,
	})
	if err != nil {
		t.Fatalf("Closed() error = %v", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("Closed(Duration=200ms) took %v; it must stop by itself", took)
	}
	if res.OK+res.Failed != res.Sent || res.Failed != res.Errors["status_503"] || res.Failed == 0 || res.OK == 0 {
		t.Errorf("Sent=%d OK=%d Failed=%d Errors=%v; want every other request a status_503", res.Sent, res.OK, res.Failed, res.Errors)
	}
}

func TestValidatorRejectionIsCountedAsInvalid(t *testing.T) {
	url := serve(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("nope") })
	res, err := Closed(context.Background(), ClosedConfig{
		Config: Config{
			Request: Request{URL: url + "/"}, Duration: time.Minute, MaxRequests: 5,
			Validate: func(status int, body []byte) error {
				if string(body) != "yes" {
					return errors.New("body is not yes")
				}
				return nil
			},
		},
		Conns: 1,
	})
	if err != nil {
		t.Fatalf("Closed() error = %v", err)
	}
	if res.Errors["invalid"] != 5 {
		t.Errorf("Errors = %v, want invalid=5", res.Errors)
	}
}

func TestStreamRecordsTTFTGapsAndEvents(t *testing.T) {
	const (
		streams    = 6
		events     = 5
		firstDelay = 50 * time.Millisecond
	)
	url := serve(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/event-stream")
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			time.Sleep(firstDelay)
			for i := range events {
				fmt.Fprintf(w, "event: x\ndata: {\"i\":%d}\n\n", i)
				_ = w.Flush()
				time.Sleep(5 * time.Millisecond)
			}
			fmt.Fprint(w, "data: [DONE]\n\n")
		})
	})
	res, err := Closed(context.Background(), ClosedConfig{
		Config: Config{Request: Request{URL: url + "/"}, Duration: time.Minute, MaxRequests: streams, Stream: true},
		Conns:  3,
	})
	if err != nil {
		t.Fatalf("Closed(Stream) error = %v", err)
	}
	if res.OK != streams || res.Events != streams*events {
		t.Fatalf("OK=%d Events=%d Errors=%v, want %d streams of %d events", res.OK, res.Events, res.Errors, streams, events)
	}
	if got := res.TTFT.TotalCount(); got != streams {
		t.Errorf("TTFT count = %d, want %d", got, streams)
	}
	if got := res.Gap.TotalCount(); got != streams*(events-1) {
		t.Errorf("Gap count = %d, want %d", got, streams*(events-1))
	}
	// The server cannot send earlier than firstDelay: a lower bound only.
	if got := res.TTFT.Min(); got < firstDelay.Microseconds()*9/10 {
		t.Errorf("TTFT min = %dµs, want >= %dµs", got, firstDelay.Microseconds())
	}
	if res.Latency.Min() < res.TTFT.Min() {
		t.Errorf("stream latency min %dµs < TTFT min %dµs", res.Latency.Min(), res.TTFT.Min())
	}
}

func TestStreamWithoutDoneIsIncomplete(t *testing.T) {
	url := serve(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/event-stream")
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) { fmt.Fprint(w, "data: a\n\ndata: b\n\n") })
	})
	res, err := Closed(context.Background(), ClosedConfig{
		Config: Config{Request: Request{URL: url + "/"}, Duration: time.Minute, MaxRequests: 2, Stream: true},
		Conns:  1,
	})
	if err != nil {
		t.Fatalf("Closed(Stream) error = %v", err)
	}
	if res.Errors["stream_incomplete"] != 2 || res.Events != 4 {
		t.Errorf("Errors=%v Events=%d, want stream_incomplete=2 and 4 events", res.Errors, res.Events)
	}
}

func TestNonLoopbackTargetsAreRefused(t *testing.T) {
	for _, u := range []string{
		"http://10.0.0.1/", "http://192.168.1.1:8080/", "http://example.com/", "http://8.8.8.8/",
		"http://[2001:db8::1]/", "https://127.0.0.1/",
	} {
		_, err := Closed(context.Background(), ClosedConfig{
			Config: Config{Request: Request{URL: u}, Duration: time.Second}, Conns: 1})
		if err == nil {
			t.Errorf("Closed(%q) error = nil, want refusal", u)
		}
		_, err = Open(context.Background(), OpenConfig{
			Config: Config{Request: Request{URL: u}, Duration: time.Second}, Rate: 1})
		if err == nil {
			t.Errorf("Open(%q) error = nil, want refusal", u)
		}
	}
	for _, h := range []string{"127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"} {
		if err := CheckLoopback(h); err != nil {
			t.Errorf("CheckLoopback(%q) = %v, want nil", h, err)
		}
	}
	if err := CheckLoopback("10.0.0.1"); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("CheckLoopback(10.0.0.1) = %v, want ErrNotLoopback", err)
	}
}

func TestOpenLoopContextCancelStopsEarlyAndCountsDropped(t *testing.T) {
	url := serve(t, func(ctx *fasthttp.RequestCtx) {})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	res, err := Open(ctx, OpenConfig{
		Config: Config{Request: Request{URL: url + "/"}, Duration: time.Minute},
		Rate:   100,
	})
	if err != nil {
		t.Fatalf("Open() error = %v", err)
	}
	if res.Sent+res.Dropped != 6000 || res.Dropped == 0 {
		t.Errorf("Sent=%d Dropped=%d, want Sent+Dropped=6000 with some dropped", res.Sent, res.Dropped)
	}
}
