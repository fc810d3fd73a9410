package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/valyala/fasthttp"
)

// Config is what open- and closed-loop runs share.
type Config struct {
	// Request is the template for every request.
	Request Request
	// Duration bounds the run: no request starts after Started+Duration.
	// Required; at most one hour.
	Duration time.Duration
	// MaxRequests, if positive, bounds the number of requests sent.
	MaxRequests int64
	// Timeout bounds one request including reading the whole body or event
	// stream. Default 30 s.
	Timeout time.Duration
	// Validate judges each response; nil accepts only status 200.
	Validate Validator
	// Stream reads the body as server-sent events and records TTFT, gaps
	// and event counts. A stream must end with "data: [DONE]" to count as
	// a success.
	Stream bool
}

func (c *Config) validate() (target, error) {
	if c.Duration <= 0 || c.Duration > time.Hour {
		return target{}, fmt.Errorf("loadgen: Duration %v out of range (0, 1h]", c.Duration)
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Validate == nil {
		c.Validate = ExpectStatus(fasthttp.StatusOK)
	}
	return parseTarget(c.Request.URL)
}

func newClient(t target, conns int, c *Config) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:                      t.addr,
		Dial:                      loopbackDial,
		MaxConns:                  conns,
		MaxConnWaitTimeout:        c.Timeout,
		MaxIdemponentCallAttempts: 1, // a retry would hide an error
		RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		ReadTimeout:               c.Timeout,
		WriteTimeout:              c.Timeout,
		StreamResponseBody:        c.Stream,
		NoDefaultUserAgentHeader:  true,
		DisablePathNormalizing:    true,
		ReadBufferSize:            16 << 10,
	}
}

// worker is one sending goroutine's reusable state.
type worker struct {
	hc    *fasthttp.HostClient
	cfg   *Config
	req   *fasthttp.Request
	resp  *fasthttp.Response
	br    *bufio.Reader
	gaps  []time.Duration
	shard *shard
}

func newWorker(hc *fasthttp.HostClient, cfg *Config, s *shard) *worker {
	w := &worker{hc: hc, cfg: cfg, req: &fasthttp.Request{}, resp: &fasthttp.Response{}, shard: s}
	cfg.Request.fill(w.req)
	if cfg.Stream {
		w.br = bufio.NewReaderSize(nil, 16<<10)
	}
	return w
}

// do sends one request at sent, measuring latency from origin (the intended
// send time in open-loop runs, sent itself in closed-loop runs), and records
// the outcome.
func (w *worker) do(origin time.Time, o *outcome) {
	sent := time.Now()
	err := w.hc.DoTimeout(w.req, w.resp, w.cfg.Timeout)
	if err == nil {
		if w.cfg.Stream {
			err = w.cfg.Validate(w.resp.StatusCode(), nil)
			if err == nil {
				err = w.readEvents(origin, o)
			}
			if cerr := w.resp.CloseBodyStream(); err == nil && cerr != nil {
				err = cerr
			}
		} else {
			err = w.cfg.Validate(w.resp.StatusCode(), w.resp.Body())
			if err != nil && !isStatusError(err) {
				err = fmt.Errorf("%w: %w", errInvalid, err)
			}
		}
	}
	done := time.Now()
	o.err, o.done = err, done
	o.latency, o.svc = done.Sub(origin), done.Sub(sent)
	w.shard.add(o)
}

func isStatusError(err error) bool {
	var se *StatusError
	return errors.As(err, &se)
}

var (
	dataPrefix = []byte("data:")
	doneMarker = []byte("[DONE]")
)

// readEvents consumes the SSE body, recording the first event's delay from
// origin and the gaps between events into o. Lines longer than the reader's
// buffer are read in pieces; only a line's first piece is inspected.
func (w *worker) readEvents(origin time.Time, o *outcome) error {
	body := w.resp.BodyStream()
	if body == nil {
		return errStreamIncomplete
	}
	w.br.Reset(body)
	defer w.br.Reset(nil)
	w.gaps = w.gaps[:0]
	var last time.Time
	midLine, done := false, false
	for {
		line, err := w.br.ReadSlice('\n')
		if len(line) > 0 && !midLine && bytes.HasPrefix(line, dataPrefix) {
			now := time.Now()
			payload := bytes.TrimSpace(line[len(dataPrefix):])
			if bytes.Equal(payload, doneMarker) {
				done = true
			} else {
				o.events++
				if last.IsZero() {
					o.ttft = now.Sub(origin)
				} else {
					w.gaps = append(w.gaps, now.Sub(last))
				}
				last = now
			}
		}
		switch {
		case err == nil:
			midLine = false
		case errors.Is(err, bufio.ErrBufferFull):
			midLine = true
		case errors.Is(err, io.EOF):
			o.gaps = w.gaps
			if !done {
				return errStreamIncomplete
			}
			return nil
		default:
			o.gaps = w.gaps
			return err
		}
	}
}
