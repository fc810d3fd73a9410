package mockllm

import (
	"bufio"
	"bytes"
	"net/http"
	"net/textproto"
	"strconv"
	"sync"
	"sync/atomic"
)

// Route names one provider endpoint of the mock.
type Route string

// The provider routes. RouteOpenAI also serves xAI, whose wire format is the
// same.
const (
	RouteOpenAI    Route = "openai"    // POST /v1/chat/completions
	RouteAnthropic Route = "anthropic" // POST /v1/messages
	RouteGemini    Route = "gemini"    // POST /v1beta/models/{model}:generateContent and :streamGenerateContent
)

// Routes lists every [Route], in stats order.
var Routes = []Route{RouteOpenAI, RouteAnthropic, RouteGemini}

func (r Route) index() int {
	switch r {
	case RouteOpenAI:
		return 0
	case RouteAnthropic:
		return 1
	case RouteGemini:
		return 2
	}
	return -1
}

// Outcome is how a request ended. Every request counted on a route ends with
// exactly one outcome.
type Outcome string

// The outcomes.
const (
	OutcomeOK           Outcome = "ok"           // full reply sent
	OutcomeUnauthorized Outcome = "unauthorized" // missing or wrong key
	OutcomeBadRequest   Outcome = "bad_request"  // unparsable body, missing field, bad X-Mock-* control
	OutcomeError        Outcome = "error"        // injected HTTP error status (X-Mock-Error, fail-first, ErrorRate)
	OutcomeHang         Outcome = "hang"         // hung without answering, or stalled mid-stream
	OutcomeDisconnect   Outcome = "disconnect"   // connection closed on purpose
	OutcomeMalformed    Outcome = "malformed"    // malformed body or stream sent on purpose
	OutcomeStreamError  Outcome = "stream_error" // in-stream error event sent on purpose
	OutcomeClientGone   Outcome = "client_gone"  // the client left mid-stream
	OutcomeShutdown     Outcome = "shutdown"     // cut short by Close or Shutdown
)

// Outcomes lists every [Outcome], in stats order.
var Outcomes = []Outcome{
	OutcomeOK, OutcomeUnauthorized, OutcomeBadRequest, OutcomeError, OutcomeHang,
	OutcomeDisconnect, OutcomeMalformed, OutcomeStreamError, OutcomeClientGone, OutcomeShutdown,
}

func (o Outcome) index() int {
	for i, x := range Outcomes {
		if x == o {
			return i
		}
	}
	return -1
}

const (
	nRoutes   = 3
	nOutcomes = 10
)

// counters are the lock-free request counts.
type counters struct {
	requests [nRoutes]atomic.Int64
	streams  [nRoutes]atomic.Int64
	outcomes [nRoutes][nOutcomes]atomic.Int64
	status   [nRoutes][200]atomic.Int64 // injected error answers by status-400
	notFound atomic.Int64
}

func (c *counters) reset() {
	for r := range nRoutes {
		c.requests[r].Store(0)
		c.streams[r].Store(0)
		for o := range nOutcomes {
			c.outcomes[r][o].Store(0)
		}
		for s := range c.status[r] {
			c.status[r][s].Store(0)
		}
	}
	c.notFound.Store(0)
}

// Stats is a snapshot of the request counters, as [Server.Stats] and
// GET /mock/stats return it. Counters updated concurrently with the snapshot
// may be seen in part.
type Stats struct {
	// Total is the number of requests on all provider routes.
	Total int64 `json:"total"`
	// Routes holds one entry per [Route], keyed by its name.
	Routes map[Route]RouteStats `json:"routes"`
	// NotFound counts requests to paths the mock does not serve.
	NotFound int64 `json:"not_found"`
}

// RouteStats counts one route's requests.
type RouteStats struct {
	// Requests counts requests received, whatever their outcome; a request
	// still running has no outcome yet.
	Requests int64 `json:"requests"`
	// Streams counts those that asked for a streamed reply.
	Streams int64 `json:"streams"`
	// Outcomes has one entry per [Outcome], zeros included.
	Outcomes map[Outcome]int64 `json:"outcomes"`
	// ErrorStatus counts injected error answers by HTTP status ("429").
	ErrorStatus map[string]int64 `json:"error_status"`
}

func (c *counters) snapshot() Stats {
	st := Stats{Routes: make(map[Route]RouteStats, nRoutes), NotFound: c.notFound.Load()}
	for i, r := range Routes {
		rs := RouteStats{
			Requests:    c.requests[i].Load(),
			Streams:     c.streams[i].Load(),
			Outcomes:    make(map[Outcome]int64, nOutcomes),
			ErrorStatus: map[string]int64{},
		}
		for j, o := range Outcomes {
			rs.Outcomes[o] = c.outcomes[i][j].Load()
		}
		for s := range c.status[i] {
			if n := c.status[i][s].Load(); n != 0 {
				rs.ErrorStatus[strconv.Itoa(s+400)] = n
			}
		}
		st.Total += rs.Requests
		st.Routes[r] = rs
	}
	return st
}

// RecordedRequest is a copy of a request the mock received.
type RecordedRequest struct {
	Route  Route
	Method string
	// URI is the request URI as sent: path and query.
	URI    string
	Header http.Header
	Body   []byte
}

// recorder keeps the last n requests of one route. Slots reuse their
// buffers, so recording costs copies but, once warm, no allocations.
type recorder struct {
	mu    sync.Mutex // guards slots, next, count
	slots []recSlot
	next  int
	count int
}

type recSlot struct {
	method, uri, header, body []byte
}

func newRecorder(n int) *recorder {
	if n <= 0 {
		return nil
	}
	return &recorder{slots: make([]recSlot, n)}
}

// record copies the request. Safe for concurrent use; r may be nil.
func (r *recorder) record(method, uri, header, body []byte) {
	if r == nil {
		return
	}
	r.mu.Lock()
	s := &r.slots[r.next]
	s.method = append(s.method[:0], method...)
	s.uri = append(s.uri[:0], uri...)
	s.header = append(s.header[:0], header...)
	s.body = append(s.body[:0], body...)
	r.next = (r.next + 1) % len(r.slots)
	if r.count < len(r.slots) {
		r.count++
	}
	r.mu.Unlock()
}

// last returns up to the recorded requests, oldest first.
func (r *recorder) last(route Route) []RecordedRequest {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]RecordedRequest, 0, r.count)
	start := (r.next - r.count + len(r.slots)) % len(r.slots)
	for i := range r.count {
		s := &r.slots[(start+i)%len(r.slots)]
		out = append(out, RecordedRequest{
			Route:  route,
			Method: string(s.method),
			URI:    string(s.uri),
			Header: parseRawHeader(s.header),
			Body:   bytes.Clone(s.body),
		})
	}
	return out
}

func (r *recorder) reset() {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.next, r.count = 0, 0
	r.mu.Unlock()
}

// parseRawHeader parses the raw request head (request line, then header
// lines) that fasthttp keeps.
func parseRawHeader(raw []byte) http.Header {
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw)))
	if _, err := tp.ReadLine(); err != nil { // request line
		return http.Header{}
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return http.Header{}
	}
	return http.Header(h)
}
