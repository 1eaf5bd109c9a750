package sockets

import (
	"encoding/binary"
	"net/netip"
	"sync"

	"go4.org/netipx"
)

// Block is one entry of the never-public table: an address block and the
// rule name a refusal inside it carries.
type Block struct {
	Prefix netip.Prefix
	Rule   Rule
}

// TableSource says where the never-public table comes from and when it was
// transcribed. Google's ranges are data of their own, dated by the files
// they come from: see [EmbeddedGoogleServices].
const TableSource = "IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890), transcribed 2026-11-23"

// ruleOutside2000 names IPv6 space outside global unicast that has no more
// specific entry.
const ruleOutside2000 Rule = "not global unicast (outside 2000::/3, RFC 4291)"

// neverPublic is the never-public table, from [TableSource]. The most
// specific block that holds an address names the rule. IPv6 is built by
// construction: everything outside 2000::/3 is refused (see neverPublicSet),
// the entries below outside 2000::/3 only give such refusals a better name,
// and the entries inside 2000::/3 are the special blocks there.
//
// 2002::/16 (6to4) is not here: it is refused when the IPv4 address it
// carries is refused. IPv4-mapped addresses are unmapped before any check.
var neverPublic = []Block{
	// IPv4 (IANA IPv4 Special-Purpose Address Registry, plus multicast and
	// the reserved class E space).
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified (this network, RFC 791)"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space, CGNAT (RFC 6598)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback (RFC 1122)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (RFC 3927)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private (RFC 1918)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments (RFC 6890)"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation, TEST-NET-1 (RFC 5737)"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast, deprecated (RFC 7526)"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private (RFC 1918)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking (RFC 2544)"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation, TEST-NET-2 (RFC 5737)"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation, TEST-NET-3 (RFC 5737)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast (RFC 5771)"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (RFC 1112)"},
	{netip.MustParsePrefix("255.255.255.255/32"), "limited broadcast (RFC 919)"},

	// IPv6 outside 2000::/3: names for the well-known blocks.
	{netip.MustParsePrefix("::/128"), "unspecified (RFC 4291)"},
	{netip.MustParsePrefix("::1/128"), "loopback (RFC 4291)"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible, deprecated (RFC 4291)"},
	{netip.MustParsePrefix("::ffff:0:0/96"), "IPv4-mapped (RFC 4291)"},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64 (RFC 6052)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "NAT64 local-use (RFC 8215)"},
	{netip.MustParsePrefix("100::/64"), "discard-only (RFC 6666)"},
	{netip.MustParsePrefix("100:0:0:1::/64"), "dummy prefix (RFC 9780)"},
	{netip.MustParsePrefix("5f00::/16"), "SRv6 SIDs (RFC 9602)"},
	{netip.MustParsePrefix("fc00::/7"), "unique local (RFC 4193)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local (RFC 4291)"},
	{netip.MustParsePrefix("fec0::/10"), "site-local, deprecated (RFC 3879)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast (RFC 4291)"},

	// IPv6 inside 2000::/3: the special-purpose blocks there.
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignments (RFC 2928)"},
	{netip.MustParsePrefix("2001::/32"), "Teredo (RFC 4380)"},
	{netip.MustParsePrefix("2001:2::/48"), "benchmarking (RFC 5180)"},
	{netip.MustParsePrefix("2001:10::/28"), "ORCHID, deprecated (RFC 4843)"},
	{netip.MustParsePrefix("2001:20::/28"), "ORCHIDv2 (RFC 7343)"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation (RFC 3849)"},
	{netip.MustParsePrefix("3fff::/20"), "documentation (RFC 9637)"},
}

// Prefixes that carry an IPv4 address in their low bits or inside.
var (
	prefix6to4    = netip.MustParsePrefix("2002::/16")
	prefixTeredo  = netip.MustParsePrefix("2001::/32")
	prefixCompat  = netip.MustParsePrefix("::/96")
	prefixNAT64   = netip.MustParsePrefix("64:ff9b::/96")
	prefixNAT64L  = netip.MustParsePrefix("64:ff9b:1::/48")
	globalUnicast = netip.MustParsePrefix("2000::/3")
)

// NeverPublic returns a copy of the never-public table, from [TableSource].
// Addresses outside 2000::/3 are refused as well, whether or not a block
// names them, and so are 6to4 addresses (2002::/16) whose IPv4 address is
// refused.
func NeverPublic() []Block {
	return append([]Block(nil), neverPublic...)
}

// neverPublicSet is the set of every never-public address, built once.
var neverPublicSet = sync.OnceValue(func() *addrSet {
	var b netipx.IPSetBuilder
	b.AddPrefix(netip.MustParsePrefix("::/0"))
	b.RemovePrefix(globalUnicast)
	for _, e := range neverPublic {
		b.AddPrefix(e.Prefix)
	}
	s, err := b.IPSet()
	if err != nil {
		panic("sockets: building the never-public set: " + err.Error())
	}
	return newAddrSet(s)
})

// addrSet is a set of addresses for lookups on the hot path of
// [Policy.Check]: the set's ranges, sorted and disjoint, one slice per
// family, searched by a plain binary search over integers. It does not
// allocate, and costs a few nanoseconds per step where
// netipx.IPSet.Contains (a sort.Search closure comparing netip.Addr values)
// costs several times that, enough to put Check over its budget of 100 ns.
// The netipx set it was built from is kept for building bigger sets. A nil
// *addrSet is empty. An addrSet is immutable.
type addrSet struct {
	ipset *netipx.IPSet
	v4    []range4
	v6    []range6
}

type range4 struct{ from, to uint32 }

// u128 is an IPv6 address as an integer.
type u128 struct{ hi, lo uint64 }

func (x u128) less(y u128) bool { return x.hi < y.hi || x.hi == y.hi && x.lo < y.lo }

type range6 struct{ from, to u128 }

func uint32of(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func uint128of(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// newAddrSet returns the addrSet of s.
func newAddrSet(s *netipx.IPSet) *addrSet {
	out := &addrSet{ipset: s}
	for _, r := range s.Ranges() {
		if r.From().Is4() {
			out.v4 = append(out.v4, range4{uint32of(r.From()), uint32of(r.To())})
		} else {
			out.v6 = append(out.v6, range6{uint128of(r.From()), uint128of(r.To())})
		}
	}
	return out
}

// contains reports whether a is in s. A zoned address is in no set.
func (s *addrSet) contains(a netip.Addr) bool {
	if s == nil || a.Zone() != "" {
		return false
	}
	if a.Is4() {
		x, r := uint32of(a), s.v4
		// Find the first range that ends at or after x.
		lo, hi := 0, len(r)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if r[m].to < x {
				lo = m + 1
			} else {
				hi = m
			}
		}
		return lo < len(r) && r[lo].from <= x
	}
	if a.Is6() {
		x, r := uint128of(a), s.v6
		lo, hi := 0, len(r)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if r[m].to.less(x) {
				lo = m + 1
			} else {
				hi = m
			}
		}
		return lo < len(r) && !x.less(r[lo].from)
	}
	return false
}

// blockRule names the most specific never-public block holding a. It is on
// the refusal path only, so a linear scan is fine.
func blockRule(a netip.Addr) Rule {
	best := -1
	var rule Rule = ruleOutside2000
	for _, e := range neverPublic {
		if e.Prefix.Bits() > best && e.Prefix.Contains(a) {
			best, rule = e.Prefix.Bits(), e.Rule
		}
	}
	return rule
}

// embeddedIPv4 returns the IPv4 addresses an IPv6 address carries in one of
// the forms that embed one: IPv4-compatible (::a.b.c.d), NAT64
// (64:ff9b::a.b.c.d, RFC 6052; 64:ff9b:1::/48 read as its /96 form), 6to4
// (2002:aabb:ccdd::, RFC 3056) and Teredo (server in bits 32-63, client
// obfuscated in the last 32 bits, RFC 4380). IPv4-mapped addresses are
// unmapped before this is called. n is the number of addresses returned.
func embeddedIPv4(a netip.Addr) (out [2]netip.Addr, n int) {
	if !a.Is6() {
		return out, 0
	}
	b := a.As16()
	switch {
	case prefix6to4.Contains(a):
		out[0] = netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
		return out, 1
	case prefixTeredo.Contains(a):
		out[0] = netip.AddrFrom4([4]byte{b[4], b[5], b[6], b[7]})
		out[1] = netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
		return out, 2
	case prefixNAT64.Contains(a), prefixNAT64L.Contains(a):
		out[0] = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		return out, 1
	case prefixCompat.Contains(a) && a.Compare(netip.IPv6Loopback()) > 0:
		// ::/128 and ::1 are the unspecified and loopback addresses,
		// not IPv4-compatible ones.
		out[0] = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		return out, 1
	}
	return out, 0
}
