package egress

import (
	"encoding/binary"
	"net/netip"
)

// Ranges that are not globally reachable, after the IANA IPv4 and IPv6
// Special-Purpose Address Registries. Order does not matter; the reason is
// what errors print.
var forbidden4 = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified or this-network (0.0.0.0/8)"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private (10.0.0.0/8)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT (100.64.0.0/10)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback (127.0.0.0/8)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local, cloud metadata (169.254.0.0/16)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private (172.16.0.0/12)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments (192.0.0.0/24)"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation (192.0.2.0/24)"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast (192.88.99.0/24)"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private (192.168.0.0/16)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking (198.18.0.0/15)"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation (198.51.100.0/24)"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation (203.0.113.0/24)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast (224.0.0.0/4)"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved or broadcast (240.0.0.0/4)"},
}

var forbidden6 = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("::/128"), "unspecified (::)"},
	{netip.MustParsePrefix("::1/128"), "loopback (::1)"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible, deprecated (::/96)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64 (64:ff9b:1::/48)"},
	{netip.MustParsePrefix("100::/64"), "discard-only (100::/64)"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation (2001:db8::/32)"},
	// Teredo (2001::/32) is inside and checked first; the rest of the block
	// holds benchmarking, ORCHID, AMT and other non-destination ranges.
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignments (2001::/23)"},
	{netip.MustParsePrefix("3fff::/20"), "documentation (3fff::/20)"},
	{netip.MustParsePrefix("5f00::/16"), "SRv6 SIDs (5f00::/16)"},
	{netip.MustParsePrefix("fc00::/7"), "unique-local (fc00::/7)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local (fe80::/10)"},
	{netip.MustParsePrefix("fec0::/10"), "site-local, deprecated (fec0::/10)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast (ff00::/8)"},
}

// IPv6 prefixes that carry an IPv4 address, checked as that address
// (IPv4-mapped ::ffff:0:0/96 is netip's Is4In6).
var (
	translated4 = netip.MustParsePrefix("::ffff:0:0:0/96") // RFC 2765 IPv4-translated
	nat64       = netip.MustParsePrefix("64:ff9b::/96")    // RFC 6052 well-known NAT64
	sixToFour   = netip.MustParsePrefix("2002::/16")       // RFC 3056 6to4
	teredo      = netip.MustParsePrefix("2001::/32")       // RFC 4380 Teredo
	global6     = netip.MustParsePrefix("2000::/3")        // global unicast
)

// forbidden returns why a may not be dialled, or "" if it may. The zone is
// ignored; callers refuse zones separately.
func forbidden(a netip.Addr) string {
	a = a.WithZone("")
	if a.Is4In6() {
		if r := forbidden(a.Unmap()); r != "" {
			return "IPv4-mapped " + r
		}
		return ""
	}
	if a.Is4() {
		for _, f := range forbidden4 {
			if f.prefix.Contains(a) {
				return f.reason
			}
		}
		if a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			return "broadcast"
		}
		return ""
	}
	if !a.Is6() {
		return "not an IP address"
	}
	b := a.As16()
	switch {
	case translated4.Contains(a):
		return embedded("IPv4-translated", netip.AddrFrom4([4]byte(b[12:16])))
	case nat64.Contains(a):
		return embedded("NAT64", netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(a):
		return embedded("6to4", netip.AddrFrom4([4]byte(b[2:6])))
	case teredo.Contains(a):
		// Server address in bits 32–63; client address, inverted, in 96–127.
		if r := embedded("Teredo server", netip.AddrFrom4([4]byte(b[4:8]))); r != "" {
			return r
		}
		var client [4]byte
		binary.BigEndian.PutUint32(client[:], ^binary.BigEndian.Uint32(b[12:16]))
		return embedded("Teredo client", netip.AddrFrom4(client))
	}
	for _, f := range forbidden6 {
		if f.prefix.Contains(a) {
			return f.reason
		}
	}
	if !global6.Contains(a) {
		return "outside global unicast (2000::/3)"
	}
	return ""
}

func embedded(kind string, v4 netip.Addr) string {
	if r := forbidden(v4); r != "" {
		return kind + " embedding of " + v4.String() + ", " + r
	}
	return ""
}
