// Package egress guards outbound HTTP against server-side request forgery.
// It owns the rules for which URLs the gateway may call (provider base URLs,
// webhook endpoint URLs, OAuth and MCP discovery endpoints) and enforces them
// twice:
//
//   - at registration, [Policy.CheckURL] rejects bad schemes, userinfo,
//     odd numeric hosts, localhost names, and names whose current DNS answer
//     is a forbidden address;
//   - at connect time, [Policy.DialContext] (and [FastHTTPDial],
//     [Transport]) resolves the name itself, checks every address, and dials
//     the checked address, never the name again. This is the real defence:
//     a name can resolve to a public address at registration and to
//     127.0.0.1 a second later (DNS rebinding).
//
// Forbidden addresses are every IPv4 and IPv6 range that is not globally
// reachable (see forbidden.go), including IPv4 addresses embedded in IPv6
// (mapped, translated, NAT64, 6to4, Teredo). [Policy.AllowPrivate] turns the
// address checks off for tests and local demos (ASSISTIV_ALLOW_PRIVATE_EGRESS);
// syntax checks stay on.
//
// Redirects are the caller's job: a client must not follow them (use
// [NoRedirect] as http.Client.CheckRedirect; fasthttp's Do does not follow
// them). A followed redirect would still be dialled through the guard, but
// the spec's rule for webhooks is that 3xx is a failure.
//
// Concurrency: a [Policy] is a value; its methods are safe for concurrent use
// as long as its Resolver and Dialer are.
//
// The package is a leaf: it imports nothing of ours.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

var (
	// ErrForbiddenAddress means the host is, or resolves to, an address that
	// is not globally reachable (loopback, private, link-local, ...), or is a
	// localhost name.
	ErrForbiddenAddress = errors.New("egress: forbidden address")
	// ErrForbiddenScheme means the scheme is not https, or not http(s) when
	// plain http is allowed.
	ErrForbiddenScheme = errors.New("egress: forbidden scheme")
	// ErrInvalidURL means the URL does not parse, has userinfo, lacks a host,
	// has a bad port, or has a host in a form we refuse (brackets around a
	// name, non-canonical numeric IPv4, characters outside a DNS name).
	ErrInvalidURL = errors.New("egress: invalid URL")
	// ErrUnresolvable means the host name has no address.
	ErrUnresolvable = errors.New("egress: host does not resolve")
)

// Resolver looks up a host's addresses. *net.Resolver implements it;
// tests pass a fake (there is no DNS in tests).
type Resolver interface {
	// LookupNetIP returns the addresses of host for network "ip", "ip4" or
	// "ip6". It may block until ctx is done.
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Policy says which destinations outbound connections may reach. The zero
// value is the strict policy with the system resolver and default dialer.
type Policy struct {
	// AllowPrivate permits loopback, private and other non-global addresses
	// and plain http. Default false; only for tests and local demos.
	AllowPrivate bool
	// Resolver resolves host names. Default net.DefaultResolver.
	Resolver Resolver
	// Dialer dials the checked addresses. Default: 10 s connect timeout,
	// 30 s keep-alive. Its Control or ControlContext hook, if any, still
	// runs, after our address check. Addresses are tried in the resolver's
	// order, one at a time (no Happy Eyeballs racing).
	Dialer *net.Dialer
}

func (p Policy) resolver() Resolver {
	if p.Resolver != nil {
		return p.Resolver
	}
	return net.DefaultResolver
}

// CheckURL is [Policy.CheckURLContext] with a background context.
func (p Policy) CheckURL(raw string, requireHTTPS bool) error {
	return p.CheckURLContext(context.Background(), raw, requireHTTPS)
}

// CheckURLContext validates a URL at registration. raw must be an absolute
// http or https URL (https only when requireHTTPS, unless AllowPrivate), with
// no userinfo, a host, and a port in 1–65535 if any. Unless AllowPrivate, an
// IP-literal host must be a global address and a host name must not be a
// localhost name and must resolve (through the Resolver, which may block
// until ctx is done) only to global addresses. Errors wrap the sentinels
// above and name the host.
//
// Passing CheckURL says nothing about later connections: DNS may change.
// Connect through [Policy.DialContext].
func (p Policy) CheckURLContext(ctx context.Context, raw string, requireHTTPS bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the URL, which may carry a secret; keep only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if requireHTTPS && !p.AllowPrivate {
			return fmt.Errorf("%w: http, want https", ErrForbiddenScheme)
		}
	case "":
		return fmt.Errorf("%w: not an absolute URL", ErrInvalidURL)
	default:
		return fmt.Errorf("%w: %q", ErrForbiddenScheme, u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return fmt.Errorf("%w: no host", ErrInvalidURL)
	}
	if u.User != nil {
		return fmt.Errorf("%w: userinfo in URL", ErrInvalidURL)
	}
	if port := u.Port(); port != "" || strings.HasSuffix(u.Host, ":") {
		if err := checkPort(port); err != nil {
			return fmt.Errorf("host %q: %w", u.Hostname(), err)
		}
	}
	bracketed := strings.HasPrefix(u.Host, "[")
	h, err := parseHost(u.Hostname(), bracketed)
	if err != nil {
		return err
	}
	if p.AllowPrivate {
		return nil
	}
	_, err = p.checkedAddrs(ctx, h, "ip")
	return err
}

// DialContext connects to addr ("host:port") on network "tcp", "tcp4" or
// "tcp6". It parses the host as CheckURL does, resolves a name once through
// the Resolver, refuses the connection if any resolved address is forbidden
// (unless AllowPrivate), and then dials the checked addresses in order, never
// the name, until one connects. The dialer's Control hook re-checks the
// socket address as a second layer. It blocks until connected or ctx is done.
// Errors wrap [ErrForbiddenAddress], [ErrInvalidURL] or [ErrUnresolvable], or
// are the dialer's.
func (p Policy) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	ipNet := ""
	switch network {
	case "tcp":
		ipNet = "ip"
	case "tcp4":
		ipNet = "ip4"
	case "tcp6":
		ipNet = "ip6"
	default:
		return nil, fmt.Errorf("egress: network %q not supported", network)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	if err := checkPort(port); err != nil {
		return nil, fmt.Errorf("host %q: %w", host, err)
	}
	h, err := parseHost(host, strings.HasPrefix(addr, "["))
	if err != nil {
		return nil, err
	}
	addrs, err := p.checkedAddrs(ctx, h, ipNet)
	if err != nil {
		return nil, err
	}
	d := p.dialer()
	var lastErr error
	for _, a := range addrs {
		// Dial the literal address: no second lookup, nothing to rebind.
		c, err := d.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return c, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// dialer returns a copy of the configured dialer whose ControlContext refuses a
// forbidden socket address before connect(2).
func (p Policy) dialer() *net.Dialer {
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if p.Dialer != nil {
		d = *p.Dialer
	}
	if p.AllowPrivate {
		return &d
	}
	inner, innerCtx := d.Control, d.ControlContext
	d.Control = nil
	d.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: socket address %q", ErrForbiddenAddress, address)
		}
		if reason := forbidden(ap.Addr()); reason != "" {
			return fmt.Errorf("%s is %s: %w", ap.Addr(), reason, ErrForbiddenAddress)
		}
		switch {
		case innerCtx != nil: // net.Dialer ignores Control when ControlContext is set
			return innerCtx(ctx, network, address, c)
		case inner != nil:
			return inner(network, address, c)
		}
		return nil
	}
	return &d
}

// FastHTTPDial returns a fasthttp dial function (for fasthttp.Client.Dial
// or HostClient.Dial) that connects through p.DialContext with the dialer's
// timeout. It replaces fasthttp's own resolving dialer, so no DNS answer is
// cached across connections.
func FastHTTPDial(p Policy) fasthttp.DialFunc {
	return func(addr string) (net.Conn, error) {
		return p.DialContext(context.Background(), "tcp", addr)
	}
}

// FastHTTPDialWithTimeout is [FastHTTPDial] for fasthttp's
// DialTimeout field: each dial (resolution included) is bounded by the
// request's timeout. fasthttp passes 0 when the request has none; then only
// the dialer's own timeout applies.
func FastHTTPDialWithTimeout(p Policy) fasthttp.DialFuncWithTimeout {
	return func(addr string, timeout time.Duration) (net.Conn, error) {
		if timeout <= 0 {
			return p.DialContext(context.Background(), "tcp", addr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return p.DialContext(ctx, "tcp", addr)
	}
}

// Transport returns a fresh net/http transport that dials through
// p.DialContext, with http.DefaultTransport's timeouts and no proxy (a proxy
// from the environment would move the dial to the proxy's address and out of
// our sight). Pair it with CheckRedirect: [NoRedirect].
func Transport(p Policy) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = p.DialContext
	t.DialTLSContext = nil
	return t
}

// NoRedirect is an http.Client CheckRedirect function that returns the 3xx
// response to the caller instead of following it.
func NoRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// host is a parsed URL host: either an IP literal or a DNS name.
type host struct {
	name string     // lower-case DNS name without trailing dot, if not an IP
	ip   netip.Addr // valid if the host is an IP literal
}

func (h host) String() string {
	if h.ip.IsValid() {
		return h.ip.String()
	}
	return h.name
}

// parseHost classifies a URL or dial host. IPv6 literals must be bracketed
// (bracketed says whether they were) and brackets must hold IPv6; a zone
// is only allowed when AllowPrivate (it names a local link). A host whose
// last label is numeric is an IPv4 literal to browsers and inet_aton, so it
// must be the canonical dotted quad; the odd forms (2130706433, 0x7f.1,
// 0177.0.0.1, 127.1) are refused, as forbidden if they denote a forbidden
// address and as invalid otherwise.
func parseHost(s string, bracketed bool) (host, error) {
	if s == "" {
		return host{}, fmt.Errorf("%w: no host", ErrInvalidURL)
	}
	if bracketed {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() {
			return host{}, fmt.Errorf("%w: [%s] is not an IPv6 address", ErrInvalidURL, s)
		}
		return host{ip: a}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Is6() {
			return host{}, fmt.Errorf("%w: IPv6 address %s must be in brackets", ErrInvalidURL, s)
		}
		return host{ip: a}, nil
	}
	name := strings.ToLower(strings.TrimSuffix(s, "."))
	if !validName(name) {
		return host{}, fmt.Errorf("%w: host %q is not a DNS name (use punycode for IDNs)", ErrInvalidURL, s)
	}
	last := name[strings.LastIndexByte(name, '.')+1:]
	if numericLabel(last) {
		if a, ok := parseInetAton(name); ok {
			if reason := forbidden(a); reason != "" {
				return host{}, fmt.Errorf("host %q means %s, which is %s: %w", s, a, reason, ErrForbiddenAddress)
			}
			return host{}, fmt.Errorf("%w: host %q is a non-canonical form of %s", ErrInvalidURL, s, a)
		}
		return host{}, fmt.Errorf("%w: host %q ends in a number but is not an IPv4 address", ErrInvalidURL, s)
	}
	return host{name: name}, nil
}

// checkedAddrs returns the addresses to dial for h, or an error if any of
// them is forbidden (unless AllowPrivate).
func (p Policy) checkedAddrs(ctx context.Context, h host, ipNet string) ([]netip.Addr, error) {
	if h.ip.IsValid() {
		if h.ip.Zone() != "" && !p.AllowPrivate {
			return nil, fmt.Errorf("host %s has a zone (link scope): %w", h.ip, ErrForbiddenAddress)
		}
		if !p.AllowPrivate {
			if reason := forbidden(h.ip); reason != "" {
				return nil, fmt.Errorf("host %s is %s: %w", h.ip, reason, ErrForbiddenAddress)
			}
		}
		return []netip.Addr{h.ip}, nil
	}
	if !p.AllowPrivate && isLocalhostName(h.name) {
		return nil, fmt.Errorf("host %q is a localhost name: %w", h.name, ErrForbiddenAddress)
	}
	addrs, err := p.resolver().LookupNetIP(ctx, ipNet, h.name)
	if err != nil {
		return nil, fmt.Errorf("host %q: %w: %v", h.name, ErrUnresolvable, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("host %q: %w", h.name, ErrUnresolvable)
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		a = a.Unmap()
		if !p.AllowPrivate {
			if a.Zone() != "" {
				return nil, fmt.Errorf("host %q resolves to %s with a zone: %w", h.name, a, ErrForbiddenAddress)
			}
			// One bad answer refuses the host: an attacker mixing public and
			// private answers should not get a connection by luck of order.
			if reason := forbidden(a); reason != "" {
				return nil, fmt.Errorf("host %q resolves to %s, which is %s: %w", h.name, a, reason, ErrForbiddenAddress)
			}
		}
		out = append(out, a)
	}
	return out, nil
}

func checkPort(port string) error {
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || port[0] == '0' {
		return fmt.Errorf("%w: bad port %q", ErrInvalidURL, port)
	}
	return nil
}

func isLocalhostName(name string) bool {
	return name == "localhost" || strings.HasSuffix(name, ".localhost") ||
		name == "localhost.localdomain" || name == "ip6-localhost" || name == "ip6-loopback"
}

// validName reports whether name (lower case, no trailing dot) is made of
// DNS labels of letters, digits, '-' and '_' (underscore appears in real
// service names), each 1–63 bytes, 253 bytes in all.
func validName(name string) bool {
	if len(name) == 0 || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// numericLabel reports whether label is a number to inet_aton or the WHATWG
// URL parser: decimal digits, or 0x followed by hex digits (or nothing).
func numericLabel(label string) bool {
	if label == "" {
		return false
	}
	if len(label) >= 2 && label[0] == '0' && label[1] == 'x' {
		for i := 2; i < len(label); i++ {
			if !isHex(label[i]) {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(label); i++ {
		if label[i] < '0' || label[i] > '9' {
			return false
		}
	}
	return true
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

// parseInetAton parses s as inet_aton(3) does: one to four parts separated
// by dots, each decimal, octal (leading 0) or hex (0x); the last part fills
// the remaining bytes ("127.1" = 127.0.0.1, "2130706433" = 127.0.0.1).
// s must be lower case.
func parseInetAton(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		base := 10
		switch {
		case strings.HasPrefix(p, "0x"):
			base, p = 16, p[2:]
			if p == "" { // "0x" alone is 0 to inet_aton
				p = "0"
			}
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		if p == "" || len(p) > 32 {
			return netip.Addr{}, false
		}
		v, err := strconv.ParseUint(p, base, 64)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	var ip uint64
	for i, v := range vals[:len(vals)-1] {
		if v > 0xff {
			return netip.Addr{}, false
		}
		ip |= v << (8 * (3 - i))
	}
	lastBits := 8 * (4 - (len(vals) - 1))
	last := vals[len(vals)-1]
	if lastBits < 64 && last >= 1<<lastBits {
		return netip.Addr{}, false
	}
	ip |= last
	return netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}), true
}
