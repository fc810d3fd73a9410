package loadgen

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/valyala/fasthttp"
)

// ErrNotLoopback is returned when a target is not a loopback address. The
// benchmark only ever sends traffic to servers on this machine.
var ErrNotLoopback = errors.New("loadgen: target is not a loopback address")

// Header is one request header.
type Header struct {
	Key, Value string
}

// Request is the template every request of a run is built from. The template
// is copied into each worker's request once; it is not modified.
type Request struct {
	// Method is the HTTP method; "" means GET.
	Method string
	// URL is an absolute http:// URL whose host is a loopback address.
	URL string
	// Header holds extra request headers, in order.
	Header []Header
	// Body is the request body; nil sends none.
	Body []byte
}

// WithHeader returns a copy of r with the header key set to value, replacing
// an earlier header of the same key (case-insensitive).
func (r Request) WithHeader(key, value string) Request {
	hs := make([]Header, 0, len(r.Header)+1)
	for _, h := range r.Header {
		if !strings.EqualFold(h.Key, key) {
			hs = append(hs, h)
		}
	}
	r.Header = append(hs, Header{key, value})
	return r
}

// target is a parsed, checked Request URL.
type target struct {
	addr string // host:port to dial
}

// parseTarget checks that u is an http URL on a loopback host and returns the
// address to dial.
func parseTarget(u string) (target, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return target{}, fmt.Errorf("loadgen: parse URL %q: %w", u, err)
	}
	if pu.Scheme != "http" {
		return target{}, fmt.Errorf("loadgen: URL %q: only http is supported", u)
	}
	host, port := pu.Hostname(), pu.Port()
	if port == "" {
		port = "80"
	}
	if err := CheckLoopback(host); err != nil {
		return target{}, err
	}
	return target{addr: net.JoinHostPort(host, port)}, nil
}

// CheckLoopback returns nil if host is "localhost" or a loopback IP literal,
// and an error wrapping [ErrNotLoopback] otherwise. Names other than
// "localhost" are refused without a DNS lookup.
func CheckLoopback(host string) error {
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%w: %q", ErrNotLoopback, host)
	}
	return nil
}

// loopbackDial is the HostClient's dialer: it refuses any resolved address
// that is not loopback, a second guard after parseTarget.
func loopbackDial(addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(host, "localhost") {
		addr = net.JoinHostPort("127.0.0.1", addr[len(host)+1:])
	} else if err := CheckLoopback(host); err != nil {
		return nil, err
	}
	return net.Dial("tcp", addr)
}

// fill copies the template into req.
func (r *Request) fill(req *fasthttp.Request) {
	req.Reset()
	req.SetRequestURI(r.URL)
	if r.Method != "" {
		req.Header.SetMethod(r.Method)
	}
	for _, h := range r.Header {
		req.Header.Set(h.Key, h.Value)
	}
	if r.Body != nil {
		req.SetBody(r.Body)
	}
}

// Validator decides whether a completed response counts as a success. body is
// nil in streaming mode (the body is consumed as events). It must not retain
// body and must be safe for concurrent use.
type Validator func(status int, body []byte) error

// StatusError is returned by [ExpectStatus] for an unexpected status code; its
// error kind is "status_<code>".
type StatusError struct {
	Code int
}

func (e *StatusError) Error() string { return fmt.Sprintf("loadgen: unexpected status %d", e.Code) }

// ExpectStatus returns a Validator that accepts only the status code want.
func ExpectStatus(want int) Validator {
	return func(status int, _ []byte) error {
		if status != want {
			return &StatusError{Code: status}
		}
		return nil
	}
}
