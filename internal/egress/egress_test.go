package egress

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// fakeResolver answers from a table; unknown names do not resolve. Tests
// never touch real DNS.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	answers, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, s := range answers {
		a := netip.MustParseAddr(s)
		if network == "ip4" && !a.Unmap().Is4() || network == "ip6" && a.Unmap().Is4() {
			continue
		}
		out = append(out, a)
	}
	return out, nil
}

var names = fakeResolver{
	"api.openai.com":          {"162.159.140.245", "2606:4700:4700::1111"},
	"example.com":             {"93.184.215.14"},
	"hooks.example":           {"2a00:1450:4001:80b::200e"},
	"nat64.example":           {"64:ff9b::808:808"},
	"internal.example":        {"10.0.0.5"},
	"metadata.example":        {"169.254.169.254"},
	"loopback.example":        {"127.0.0.1"},
	"mixed.example":           {"93.184.215.14", "127.0.0.1"},
	"v6private.example":       {"fd00::1"},
	"mapped.example":          {"::ffff:10.0.0.1"},
	"v6loop.example":          {"::1"},
	"teredo-loop.example":     {"2001:0:4136:e378:8000:63bf:80ff:fffe"},
	"empty.example":           {},
	"cgnat.example":           {"100.100.1.1"},
	"sixtofour-10.example":    {"2002:a00:1::1"},
	"nat64-metadata.example":  {"64:ff9b::a9fe:a9fe"},
	"translated-loop.example": {"::ffff:0:7f00:1"},
}

func strict() Policy { return Policy{Resolver: names} }

// TestCheckURLRefusesSSRFMatrix is B-10 at registration.
func TestCheckURLRefusesSSRFMatrix(t *testing.T) {
	tests := []struct {
		name string
		url  string
		want error
	}{
		{"loopback v4", "http://127.0.0.1/", ErrForbiddenAddress},
		{"loopback v4 other", "https://127.8.9.10:8443/x", ErrForbiddenAddress},
		{"localhost", "http://localhost/", ErrForbiddenAddress},
		{"localhost upper trailing dot", "https://LOCALHOST./", ErrForbiddenAddress},
		{"sub.localhost", "https://api.localhost/", ErrForbiddenAddress},
		{"loopback v6", "http://[::1]/", ErrForbiddenAddress},
		{"loopback v6 long", "http://[0:0:0:0:0:0:0:1]:80/", ErrForbiddenAddress},
		{"v4-mapped loopback", "http://[::ffff:127.0.0.1]/", ErrForbiddenAddress},
		{"v4-mapped loopback hex", "http://[::ffff:7f00:1]/", ErrForbiddenAddress},
		{"v4-compatible loopback", "http://[::127.0.0.1]/", ErrForbiddenAddress},
		{"v4-translated loopback", "http://[::ffff:0:7f00:1]/", ErrForbiddenAddress},
		{"nat64 metadata", "http://[64:ff9b::a9fe:a9fe]/", ErrForbiddenAddress},
		{"6to4 loopback", "http://[2002:7f00:1::]/", ErrForbiddenAddress},
		{"teredo client loopback", "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", ErrForbiddenAddress},
		{"decimal", "http://2130706433/", ErrForbiddenAddress},
		{"hex short", "http://0x7f.1/", ErrForbiddenAddress},
		{"hex whole", "http://0x7f000001/", ErrForbiddenAddress},
		{"octal", "http://0177.0.0.1/", ErrForbiddenAddress},
		{"octal whole", "http://017700000001/", ErrForbiddenAddress},
		{"short form", "http://127.1/", ErrForbiddenAddress},
		{"short form 3", "http://127.0.1/", ErrForbiddenAddress},
		{"mixed bases", "http://0x7F.0.0.01/", ErrForbiddenAddress},
		{"zero", "http://0/", ErrForbiddenAddress},
		{"unspecified", "http://0.0.0.0/", ErrForbiddenAddress},
		{"unspecified v6", "http://[::]/", ErrForbiddenAddress},
		{"cloud metadata", "http://169.254.169.254/latest/meta-data/iam/", ErrForbiddenAddress},
		{"private 10", "http://10.0.0.1/", ErrForbiddenAddress},
		{"private 172.16", "http://172.16.0.1/", ErrForbiddenAddress},
		{"private 172.31", "http://172.31.255.255/", ErrForbiddenAddress},
		{"private 192.168", "http://192.168.1.1/", ErrForbiddenAddress},
		{"cgnat", "http://100.64.0.1/", ErrForbiddenAddress},
		{"ietf 192.0.0", "http://192.0.0.8/", ErrForbiddenAddress},
		{"benchmark", "http://198.18.0.1/", ErrForbiddenAddress},
		{"multicast v4", "http://224.0.0.1/", ErrForbiddenAddress},
		{"reserved 240", "http://240.0.0.1/", ErrForbiddenAddress},
		{"broadcast", "http://255.255.255.255/", ErrForbiddenAddress},
		{"documentation", "http://192.0.2.1/", ErrForbiddenAddress},
		{"unique local", "http://[fc00::1]/", ErrForbiddenAddress},
		{"unique local fd", "http://[fd12:3456::1]/", ErrForbiddenAddress},
		{"link-local v6", "http://[fe80::1]/", ErrForbiddenAddress},
		{"link-local v6 zone", "http://[fe80::1%25eth0]/", ErrForbiddenAddress},
		{"public v6 with zone", "http://[2606:4700::1%25eth0]/", ErrForbiddenAddress},
		{"multicast v6", "http://[ff02::1]/", ErrForbiddenAddress},
		{"documentation v6", "http://[2001:db8::1]/", ErrForbiddenAddress},
		{"name to private", "https://internal.example/", ErrForbiddenAddress},
		{"name to metadata", "https://metadata.example/", ErrForbiddenAddress},
		{"name to loopback", "https://loopback.example/", ErrForbiddenAddress},
		{"name to public and loopback", "https://mixed.example/", ErrForbiddenAddress},
		{"name to unique local", "https://v6private.example/", ErrForbiddenAddress},
		{"name to mapped private", "https://mapped.example/", ErrForbiddenAddress},
		{"name to v6 loopback", "https://v6loop.example/", ErrForbiddenAddress},
		{"name to teredo loopback", "https://teredo-loop.example/", ErrForbiddenAddress},
		{"name to cgnat", "https://cgnat.example/", ErrForbiddenAddress},
		{"name to 6to4 private", "https://sixtofour-10.example/", ErrForbiddenAddress},
		{"name to nat64 metadata", "https://nat64-metadata.example/", ErrForbiddenAddress},
		{"name to translated loopback", "https://translated-loop.example/", ErrForbiddenAddress},
		{"bracketed name", "http://[example.com]/", ErrInvalidURL},
		{"bracketed v4", "http://[127.0.0.1]/", ErrInvalidURL},
		{"userinfo to loopback", "http://evil@127.0.0.1/", ErrInvalidURL},
		{"userinfo public looking", "http://example.com@127.0.0.1/", ErrInvalidURL},
		{"userinfo with password", "https://user:pass@example.com/", ErrInvalidURL},
		{"backslash trick", `http://127.0.0.1\@example.com/`, ErrInvalidURL},
		{"no host", "http:///path", ErrInvalidURL},
		{"opaque", "http:example.com", ErrInvalidURL},
		{"relative", "//example.com/", ErrInvalidURL},
		{"empty", "", ErrInvalidURL},
		{"port zero", "https://example.com:0/", ErrInvalidURL},
		{"port too big", "https://example.com:65536/", ErrInvalidURL},
		{"port leading zero", "https://example.com:0443/", ErrInvalidURL},
		{"empty port", "https://example.com:/", ErrInvalidURL},
		{"non-canonical public", "https://134744072/", ErrInvalidURL},
		{"five parts", "https://1.2.3.4.5/", ErrInvalidURL},
		{"numeric tld", "https://example.123/", ErrInvalidURL},
		{"idn unencoded", "https://exämple.com/", ErrInvalidURL},
		{"underscore ok but space not", "https://a b.com/", ErrInvalidURL},
		{"file", "file:///etc/passwd", ErrForbiddenScheme},
		{"gopher", "gopher://127.0.0.1:70/_GET", ErrForbiddenScheme},
		{"ftp", "ftp://example.com/", ErrForbiddenScheme},
		{"dict", "dict://example.com:11211/", ErrForbiddenScheme},
		{"javascript", "javascript:alert(1)", ErrForbiddenScheme},
		{"ws", "ws://example.com/", ErrForbiddenScheme},
		{"unresolvable", "https://nxdomain.example/", ErrUnresolvable},
		{"no answers", "https://empty.example/", ErrUnresolvable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := strict().CheckURL(tt.url, false)
			if !errors.Is(err, tt.want) {
				t.Errorf("CheckURL(%q) = %v, want %v", tt.url, err, tt.want)
			}
		})
	}
}

func TestCheckURLAcceptsPublic(t *testing.T) {
	tests := []struct {
		name         string
		url          string
		requireHTTPS bool
	}{
		{"provider name", "https://api.openai.com/v1", true},
		{"with port query fragment", "https://example.com:8443/hook?x=1#f", true},
		{"upper case trailing dot", "HTTPS://EXAMPLE.COM./", true},
		{"public v4", "https://8.8.8.8/", true},
		{"public v6", "https://[2606:4700:4700::1111]/", true},
		{"name to public v6", "https://hooks.example/", true},
		{"name to public nat64", "https://nat64.example/", true},
		{"plain http allowed", "http://example.com/", false},
		{"max port", "https://example.com:65535/", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := strict().CheckURL(tt.url, tt.requireHTTPS); err != nil {
				t.Errorf("CheckURL(%q, %v) = %v, want nil", tt.url, tt.requireHTTPS, err)
			}
		})
	}
}

func TestCheckURLRequireHTTPS(t *testing.T) {
	if err := strict().CheckURL("http://example.com/", true); !errors.Is(err, ErrForbiddenScheme) {
		t.Errorf("CheckURL(http, requireHTTPS) = %v, want ErrForbiddenScheme", err)
	}
	private := Policy{AllowPrivate: true, Resolver: names}
	if err := private.CheckURL("http://127.0.0.1:8080/", true); err != nil {
		t.Errorf("AllowPrivate CheckURL(http loopback, requireHTTPS) = %v, want nil", err)
	}
}

func TestAllowPrivateKeepsSyntaxChecks(t *testing.T) {
	p := Policy{AllowPrivate: true, Resolver: names}
	tests := []struct {
		name string
		url  string
		want error
	}{
		{"loopback", "http://127.0.0.1:9000/", nil},
		{"localhost", "http://localhost:9000/", nil},
		{"private name", "https://internal.example/", nil},
		{"v6 loopback", "http://[::1]:9000/", nil},
		{"zone", "http://[fe80::1%25lo]:9000/", nil},
		{"unresolvable not looked up", "http://nxdomain.example/", nil},
		{"file", "file:///etc/passwd", ErrForbiddenScheme},
		{"userinfo", "http://evil@127.0.0.1/", ErrInvalidURL},
		{"bracketed name", "http://[example.com]/", ErrInvalidURL},
		{"decimal", "http://2130706433/", ErrForbiddenAddress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.CheckURL(tt.url, true)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Errorf("CheckURL(%q) = %v, want %v", tt.url, err, tt.want)
			}
		})
	}
}

func TestErrorsNameHostNotUserinfo(t *testing.T) {
	err := strict().CheckURL("https://internal.example/x", false)
	if err == nil || !strings.Contains(err.Error(), "internal.example") || !strings.Contains(err.Error(), "10.0.0.5") {
		t.Errorf("CheckURL error %q does not name the host and address", err)
	}
	err = strict().CheckURL("https://user:hunter2@example.com/", false)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("CheckURL error %q quotes the password", err)
	}
}

// rebinder answers a public address on the first lookup and loopback after,
// the DNS-rebinding attack.
type rebinder struct{ n atomic.Int32 }

func (r *rebinder) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	if r.n.Add(1) == 1 {
		return []netip.Addr{netip.MustParseAddr("93.184.215.14")}, nil
	}
	return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
}

func TestDNSRebindingRefusedAtConnect(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("rebound request reached the loopback server: %s", r.URL)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	p := Policy{Resolver: &rebinder{}}
	raw := "http://rebind.example:" + port + "/"
	if err := p.CheckURL(raw, false); err != nil {
		t.Fatalf("CheckURL(%q) at registration = %v, want nil (public answer)", raw, err)
	}
	c, err := p.DialContext(context.Background(), "tcp", "rebind.example:"+port)
	if !errors.Is(err, ErrForbiddenAddress) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("DialContext after rebinding = %v, want ErrForbiddenAddress", err)
	}

	// The same through a net/http client and a fasthttp client.
	client := &http.Client{Transport: Transport(p), CheckRedirect: NoRedirect}
	defer client.CloseIdleConnections()
	if _, err := client.Get(raw); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("http.Client.Get after rebinding = %v, want ErrForbiddenAddress", err)
	}
	fc := &fasthttp.Client{Dial: FastHTTPDial(p)}
	defer fc.CloseIdleConnections()
	if _, _, err := fc.Get(nil, raw); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("fasthttp Get after rebinding = %v, want ErrForbiddenAddress", err)
	}
}

func TestDialContextRefuses(t *testing.T) {
	tests := []struct {
		name    string
		network string
		addr    string
		want    error
	}{
		{"loopback literal", "tcp", "127.0.0.1:80", ErrForbiddenAddress},
		{"v6 loopback literal", "tcp", "[::1]:80", ErrForbiddenAddress},
		{"mapped literal", "tcp", "[::ffff:169.254.169.254]:80", ErrForbiddenAddress},
		{"localhost", "tcp", "localhost:80", ErrForbiddenAddress},
		{"decimal", "tcp", "2130706433:80", ErrForbiddenAddress},
		{"name to private", "tcp", "internal.example:443", ErrForbiddenAddress},
		{"name to public and loopback", "tcp", "mixed.example:443", ErrForbiddenAddress},
		{"bracketed name", "tcp", "[example.com]:443", ErrInvalidURL},
		{"bracketed v4", "tcp", "[127.0.0.1]:443", ErrInvalidURL},
		{"no port", "tcp", "example.com", ErrInvalidURL},
		{"bad port", "tcp", "example.com:http", ErrInvalidURL},
		{"unresolvable", "tcp", "nxdomain.example:443", ErrUnresolvable},
		{"tcp4 of v6-only name", "tcp4", "hooks.example:443", ErrUnresolvable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := strict().DialContext(context.Background(), tt.network, tt.addr)
			if c != nil {
				c.Close()
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("DialContext(%q, %q) = %v, want %v", tt.network, tt.addr, err, tt.want)
			}
		})
	}
	if _, err := strict().DialContext(context.Background(), "udp", "example.com:53"); err == nil {
		t.Errorf("DialContext(udp) = nil error, want refusal")
	}
}

// TestDialerControlIsSecondLayer checks the socket-level hook alone: even a
// dial that skipped our resolution step cannot reach loopback.
func TestDialerControlIsSecondLayer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var innerCalled atomic.Bool
	p := Policy{Resolver: names, Dialer: &net.Dialer{Timeout: time.Second}}
	c, err := p.dialer().DialContext(context.Background(), "tcp", ln.Addr().String())
	if c != nil {
		c.Close()
	}
	if !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("dialer().DialContext(loopback) = %v, want ErrForbiddenAddress", err)
	}
	// A caller's own Control runs after ours: on a refused address it is
	// never reached.
	p.Dialer.Control = func(string, string, syscall.RawConn) error { innerCalled.Store(true); return nil }
	if c, err := p.dialer().DialContext(context.Background(), "tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Errorf("dial with caller Control reached loopback")
	}
	if innerCalled.Load() {
		t.Errorf("caller Control ran before the address check")
	}
}

// TestAllowPrivateReachesLoopback is the demo path: with the private-egress
// flag on, a real 127.0.0.1 server is reachable through every entry point.
func TestAllowPrivateReachesLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok "+r.URL.Path)
	}))
	defer srv.Close()
	p := Policy{AllowPrivate: true, Resolver: fakeResolver{"demo.internal": {"127.0.0.1"}}}
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	t.Run("DialContext", func(t *testing.T) {
		c, err := p.DialContext(context.Background(), "tcp", "demo.internal:"+port)
		if err != nil {
			t.Fatalf("DialContext = %v", err)
		}
		c.Close()
	})
	t.Run("Transport", func(t *testing.T) {
		client := &http.Client{Transport: Transport(p), CheckRedirect: NoRedirect}
		defer client.CloseIdleConnections()
		resp, err := client.Get(srv.URL + "/a")
		if err != nil {
			t.Fatalf("Get = %v", err)
		}
		defer resp.Body.Close()
		if b, _ := io.ReadAll(resp.Body); string(b) != "ok /a" {
			t.Errorf("body = %q", b)
		}
	})
	for _, tt := range []struct {
		name   string
		client *fasthttp.Client
	}{
		{"FastHTTPDial", &fasthttp.Client{Dial: FastHTTPDial(p)}},
		{"FastHTTPDialWithTimeout", &fasthttp.Client{DialTimeout: FastHTTPDialWithTimeout(p)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer tt.client.CloseIdleConnections()
			status, body, err := tt.client.GetTimeout(nil, "http://demo.internal:"+port+"/b", 5*time.Second)
			if err != nil || status != 200 || string(body) != "ok /b" {
				t.Errorf("Get = %d %q %v, want 200 \"ok /b\"", status, body, err)
			}
		})
	}

	// The same server is refused under the strict policy.
	if _, err := strict().DialContext(context.Background(), "tcp", srv.Listener.Addr().String()); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("strict DialContext(loopback server) = %v, want ErrForbiddenAddress", err)
	}
}

func TestNoRedirectReturns3xx(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
	}))
	defer srv.Close()
	client := &http.Client{Transport: Transport(Policy{AllowPrivate: true}), CheckRedirect: NoRedirect}
	defer client.CloseIdleConnections()
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || hits.Load() != 1 {
		t.Errorf("status %d after %d requests, want 302 after 1", resp.StatusCode, hits.Load())
	}
}

func TestForbiddenRanges(t *testing.T) {
	tests := []struct {
		addr      string
		forbidden bool
	}{
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"9.255.255.255", false},
		{"11.0.0.0", false},
		{"100.63.255.255", false},
		{"100.64.0.0", true},
		{"100.127.255.255", true},
		{"100.128.0.0", false},
		{"172.15.255.255", false},
		{"172.32.0.0", false},
		{"169.253.255.255", false},
		{"192.0.1.1", false},
		{"198.17.255.255", false},
		{"198.19.255.255", true},
		{"198.20.0.0", false},
		{"223.255.255.255", false},
		{"239.255.255.255", true},
		{"2606:4700::1", false},
		{"::ffff:8.8.8.8", false},
		{"::ffff:10.1.2.3", true},
		{"64:ff9b::808:808", false},
		{"64:ff9b::a00:1", true},
		{"64:ff9b:1::1", true},
		{"2002:808:808::1", false},
		{"2002:c0a8:101::1", true},
		{"2001:0:4136:e378:8000:63bf:f7f7:f7f7", false}, // Teredo client 8.8.8.8
		{"2001:0:a00:1:8000:63bf:f7f7:f7f7", true},      // Teredo server 10.0.0.1
		{"2001:2::1", true},
		{"2001:4860:4860::8888", false},
		{"3fff::1", true},
		{"4000::1", true},
		{"fe80::1", true},
		{"fec0::1", true},
		{"100::1", true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			r := forbidden(netip.MustParseAddr(tt.addr))
			if (r != "") != tt.forbidden {
				t.Errorf("forbidden(%s) = %q, want forbidden %v", tt.addr, r, tt.forbidden)
			}
		})
	}
}

func TestParseInetAton(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" means not an address
	}{
		{"2130706433", "127.0.0.1"},
		{"0x7f.1", "127.0.0.1"},
		{"0177.0.0.1", "127.0.0.1"},
		{"127.1", "127.0.0.1"},
		{"127.0.1", "127.0.0.1"},
		{"0x7f000001", "127.0.0.1"},
		{"0", "0.0.0.0"},
		{"0x", "0.0.0.0"},
		{"4294967295", "255.255.255.255"},
		{"4294967296", ""},
		{"256.1", ""},
		{"1.2.3.256", ""},
		{"1.2.65536", ""},
		{"1.2.65535", "1.2.255.255"},
		{"08", ""},
		{"0x1g", ""},
		{"1.2.3.4.5", ""},
		{"1..2", ""},
		{"99999999999999999999999", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			a, ok := parseInetAton(tt.in)
			got := ""
			if ok {
				got = a.String()
			}
			if got != tt.want {
				t.Errorf("parseInetAton(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// publicResolver answers every name with one public address.
type publicResolver struct{}

func (publicResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return []netip.Addr{netip.MustParseAddr("93.184.215.14")}, nil
}

// FuzzCheckURL checks CheckURL never panics and never accepts what an
// independent oracle (net/url + netip's classifiers + the WHATWG "ends in a
// number" rule) calls local.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://example.com/", "http://127.0.0.1/", "http://[::ffff:127.0.0.1]/", "http://2130706433/",
		"http://0x7f.1/", "http://[example.com]/", "http://evil@127.0.0.1/", "file:///etc/passwd",
		"http://[fe80::1%25eth0]/", "http://LOCALHOST./", "http://[2002:7f00:1::]/", "http://127.1:80/",
		"https://a.b.c.d.e.f/", "http://[::]:0/", "HTTP://0X7F.1/", "http://1.2.3.4:65535/",
	} {
		f.Add(s)
	}
	p := Policy{Resolver: publicResolver{}}
	f.Fuzz(func(t *testing.T, raw string) {
		err := p.CheckURL(raw, false)
		errPriv := Policy{AllowPrivate: true, Resolver: publicResolver{}}.CheckURL(raw, true)
		if err == nil && errPriv != nil {
			t.Fatalf("CheckURL(%q): strict accepts, AllowPrivate refuses: %v", raw, errPriv)
		}
		if err != nil {
			return
		}
		u, perr := url.Parse(raw)
		if perr != nil {
			t.Fatalf("CheckURL(%q) accepted a URL net/url rejects: %v", raw, perr)
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.User != nil || u.Hostname() == "" {
			t.Fatalf("CheckURL(%q) accepted scheme %q user %v host %q", raw, u.Scheme, u.User, u.Hostname())
		}
		h := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
		if a, err := netip.ParseAddr(h); err == nil {
			a = a.Unmap()
			if a.IsLoopback() || a.IsPrivate() || a.IsUnspecified() || a.IsLinkLocalUnicast() ||
				a.IsMulticast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || a.Zone() != "" {
				t.Fatalf("CheckURL(%q) accepted local address %s", raw, a)
			}
			return
		}
		if h == "localhost" || strings.HasSuffix(h, ".localhost") {
			t.Fatalf("CheckURL(%q) accepted localhost name", raw)
		}
		labels := strings.Split(h, ".")
		last := labels[len(labels)-1]
		if strings.Trim(last, "0123456789") == "" || strings.HasPrefix(last, "0x") && strings.Trim(last[2:], "0123456789abcdef") == "" {
			t.Fatalf("CheckURL(%q) accepted numeric host %q", raw, h)
		}
		if net.ParseIP(h) != nil {
			t.Fatalf("CheckURL(%q): host %q parses as an IP", raw, h)
		}
	})
}
