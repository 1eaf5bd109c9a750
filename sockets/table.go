package sockets

import (
	"encoding/binary"
	"math"
	"net/netip"
	"slices"
	"sync"
)

// block is one entry of the never-public table: an address block and the
// [Rule] a refusal inside it carries. Several blocks share a rule (the
// three private blocks are [RulePrivate]); the rule's String names the
// RFCs behind it.
type block struct {
	Prefix netip.Prefix
	Rule   Rule
}

// tableSource says where the never-public table comes from and when it was
// transcribed. Google's ranges are data of their own, dated by the files
// they come from: see [EmbeddedGoogleRanges].
const tableSource = "IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890), transcribed 2026-11-23"

// neverPublic is the never-public table, from tableSource. The most
// specific block that holds an address names the rule. IPv6 is built by
// construction: everything outside 2000::/3 is refused, for
// [RuleNotGlobalUnicast] (see neverPublicSet), the entries below outside
// 2000::/3 only give such refusals a better name, and the entries inside
// 2000::/3 are the special blocks there.
//
// 2002::/16 (6to4) is not here: it is refused when the IPv4 address it
// carries is refused. IPv4-mapped addresses are unmapped before any check.
var neverPublic = []block{
	// IPv4 (IANA IPv4 Special-Purpose Address Registry, plus multicast and
	// the reserved class E space).
	{netip.MustParsePrefix("0.0.0.0/8"), RuleUnspecified},         // this network (RFC 791)
	{netip.MustParsePrefix("10.0.0.0/8"), RulePrivate},            // RFC 1918
	{netip.MustParsePrefix("100.64.0.0/10"), RuleCGNAT},           // shared address space (RFC 6598)
	{netip.MustParsePrefix("127.0.0.0/8"), RuleLoopback},          // RFC 1122
	{netip.MustParsePrefix("169.254.0.0/16"), RuleLinkLocal},      // RFC 3927
	{netip.MustParsePrefix("172.16.0.0/12"), RulePrivate},         // RFC 1918
	{netip.MustParsePrefix("192.0.0.0/24"), RuleIETFProtocol},     // RFC 6890
	{netip.MustParsePrefix("192.0.2.0/24"), RuleDocumentation},    // TEST-NET-1 (RFC 5737)
	{netip.MustParsePrefix("192.88.99.0/24"), Rule6to4Relay},      // deprecated (RFC 7526)
	{netip.MustParsePrefix("192.168.0.0/16"), RulePrivate},        // RFC 1918
	{netip.MustParsePrefix("198.18.0.0/15"), RuleBenchmarking},    // RFC 2544
	{netip.MustParsePrefix("198.51.100.0/24"), RuleDocumentation}, // TEST-NET-2 (RFC 5737)
	{netip.MustParsePrefix("203.0.113.0/24"), RuleDocumentation},  // TEST-NET-3 (RFC 5737)
	{netip.MustParsePrefix("224.0.0.0/4"), RuleMulticast},         // RFC 5771
	{netip.MustParsePrefix("240.0.0.0/4"), RuleReserved},          // RFC 1112
	{netip.MustParsePrefix("255.255.255.255/32"), RuleBroadcast},  // limited broadcast (RFC 919)

	// IPv6 outside 2000::/3: names for the well-known blocks.
	{netip.MustParsePrefix("::/128"), RuleUnspecified},        // RFC 4291
	{netip.MustParsePrefix("::1/128"), RuleLoopback},          // RFC 4291
	{netip.MustParsePrefix("::/96"), RuleIPv4Compatible},      // deprecated (RFC 4291)
	{netip.MustParsePrefix("::ffff:0:0/96"), RuleIPv4Mapped},  // RFC 4291
	{netip.MustParsePrefix("64:ff9b::/96"), RuleNAT64},        // RFC 6052
	{netip.MustParsePrefix("64:ff9b:1::/48"), RuleNAT64Local}, // RFC 8215
	{netip.MustParsePrefix("100::/64"), RuleDiscard},          // discard-only (RFC 6666)
	{netip.MustParsePrefix("100:0:0:1::/64"), RuleDummy},      // dummy prefix (RFC 9780)
	{netip.MustParsePrefix("5f00::/16"), RuleSRv6},            // SRv6 SIDs (RFC 9602)
	{netip.MustParsePrefix("fc00::/7"), RuleUniqueLocal},      // RFC 4193
	{netip.MustParsePrefix("fe80::/10"), RuleLinkLocal},       // RFC 4291
	{netip.MustParsePrefix("fec0::/10"), RuleSiteLocal},       // deprecated (RFC 3879)
	{netip.MustParsePrefix("ff00::/8"), RuleMulticast},        // RFC 4291

	// IPv6 inside 2000::/3: the special-purpose blocks there.
	{netip.MustParsePrefix("2001::/23"), RuleIETFProtocol},      // RFC 2928
	{netip.MustParsePrefix("2001::/32"), RuleTeredo},            // RFC 4380
	{netip.MustParsePrefix("2001:2::/48"), RuleBenchmarking},    // RFC 5180
	{netip.MustParsePrefix("2001:10::/28"), RuleORCHID},         // deprecated (RFC 4843)
	{netip.MustParsePrefix("2001:20::/28"), RuleORCHID},         // ORCHIDv2 (RFC 7343)
	{netip.MustParsePrefix("2001:db8::/32"), RuleDocumentation}, // RFC 3849
	{netip.MustParsePrefix("3fff::/20"), RuleDocumentation},     // RFC 9637
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

// Besides the blocks of neverPublic, addresses outside 2000::/3 are
// refused, whether or not a block names them ([RuleNotGlobalUnicast] when
// none does), and so are 6to4 addresses (2002::/16) whose IPv4 address is
// refused (for that address's rule, with [Rule6to4] in
// [DeniedError.Form]).

// neverPublicSet is every never-public address with its rule, built once.
var neverPublicSet = sync.OnceValue(func() *ruleSet { return newRuleSet(neverPublic) })

// ruleSet is the never-public table as an address set whose ranges carry
// their rules: sorted, disjoint ranges, each with the rule of the most
// specific block that holds it, searched as an addrSet is. Finding the
// rule of a refused address costs one binary search, like finding that it
// is refused. A ruleSet is immutable.
type ruleSet struct {
	v4     []range4
	rules4 []Rule // the rule of each v4 range
	v6     []range6
	rules6 []Rule // the rule of each v6 range
}

// rule returns the rule of the most specific block that holds a, or 0
// when a is in none (and, for IPv6, inside 2000::/3); a must be unzoned.
func (s *ruleSet) rule(a netip.Addr) Rule {
	if a.Is4() {
		if i := search4(s.v4, uint32of(a)); i >= 0 {
			return s.rules4[i]
		}
		return 0
	}
	if i := search6(s.v6, uint128of(a)); i >= 0 {
		return s.rules6[i]
	}
	return 0
}

// newRuleSet builds the ruleSet of blocks, with every IPv6 address outside
// 2000::/3 that no block holds refused for [RuleNotGlobalUnicast]. It cuts
// each family's space at the first address of every block and the one
// after its last, so that one rule holds for each piece (the rule of its
// first address), and joins neighbouring pieces with the same rule.
func newRuleSet(blocks []block) *ruleSet {
	// ruleOf is the rule of the most specific block holding a.
	ruleOf := func(a netip.Addr) Rule {
		best, rule := -1, Rule(0)
		for _, b := range blocks {
			if b.Prefix.Bits() > best && b.Prefix.Contains(a) {
				best, rule = b.Prefix.Bits(), b.Rule
			}
		}
		if rule == 0 && a.Is6() && !globalUnicast.Contains(a) {
			rule = RuleNotGlobalUnicast
		}
		return rule
	}
	s := &ruleSet{}
	cuts4 := []uint32{0}
	cuts6 := []u128{{}, uint128of(globalUnicast.Addr()), uint128of(netip.MustParseAddr("4000::"))}
	for _, b := range blocks {
		r, is4 := prefixSpan(b.Prefix)
		if is4 {
			cuts4 = append(cuts4, uint32(r.from.lo))
			if x := uint32(r.to.lo); x != math.MaxUint32 {
				cuts4 = append(cuts4, x+1)
			}
			continue
		}
		cuts6 = append(cuts6, r.from)
		if r.to != maxU128 {
			cuts6 = append(cuts6, r.to.next())
		}
	}
	slices.Sort(cuts4)
	cuts4 = slices.Compact(cuts4)
	slices.SortFunc(cuts6, func(x, y u128) int { return x.compare(y) })
	cuts6 = slices.Compact(cuts6)
	for i, from := range cuts4 {
		to := uint32(math.MaxUint32)
		if i+1 < len(cuts4) {
			to = cuts4[i+1] - 1
		}
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], from)
		r := ruleOf(netip.AddrFrom4(b))
		switch n := len(s.v4); {
		case r == 0:
		case n > 0 && s.rules4[n-1] == r && s.v4[n-1].to+1 == from:
			s.v4[n-1].to = to
		default:
			s.v4, s.rules4 = append(s.v4, range4{from, to}), append(s.rules4, r)
		}
	}
	for i, from := range cuts6 {
		to := u128{math.MaxUint64, math.MaxUint64}
		if i+1 < len(cuts6) {
			to = cuts6[i+1].prev()
		}
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], from.hi)
		binary.BigEndian.PutUint64(b[8:], from.lo)
		r := ruleOf(netip.AddrFrom16(b))
		switch n := len(s.v6); {
		case r == 0:
		case n > 0 && s.rules6[n-1] == r && s.v6[n-1].to.next() == from:
			s.v6[n-1].to = to
		default:
			s.v6, s.rules6 = append(s.v6, range6{from, to}), append(s.rules6, r)
		}
	}
	return s
}

// embeddedIPv4 returns the block (its rule) of the form of an IPv6
// address that carries an IPv4 address, and the IPv4 addresses it carries: IPv4-compatible
// (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d, RFC 6052; 64:ff9b:1::/48 read as
// its /96 form, RFC 8215), 6to4 (2002:aabb:ccdd::, RFC 3056) and Teredo
// (server in bits 32-63, client obfuscated in the last 32 bits, RFC 4380).
// IPv4-mapped addresses are unmapped before this is called. n is the
// number of addresses returned; with none, the form is 0.
func embeddedIPv4(a netip.Addr) (form Rule, out [2]netip.Addr, n int) {
	if !a.Is6() {
		return 0, out, 0
	}
	b := a.As16()
	switch {
	case prefix6to4.Contains(a):
		out[0] = netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
		return Rule6to4, out, 1
	case prefixTeredo.Contains(a):
		out[0] = netip.AddrFrom4([4]byte{b[4], b[5], b[6], b[7]})
		out[1] = netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
		return RuleTeredo, out, 2
	case prefixNAT64.Contains(a):
		out[0] = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		return RuleNAT64, out, 1
	case prefixNAT64L.Contains(a):
		out[0] = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		return RuleNAT64Local, out, 1
	case prefixCompat.Contains(a) && a.Compare(netip.IPv6Loopback()) > 0:
		// ::/128 and ::1 are the unspecified and loopback addresses,
		// not IPv4-compatible ones.
		out[0] = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		return RuleIPv4Compatible, out, 1
	}
	return 0, out, 0
}

// ipv4Table is the never-public rules and the embedded Google services'
// ranges of IPv4 in one table, for the common case of [Policy.Check]: an
// IPv4 address checked by a policy whose Google rule is the embedded
// one (DefaultPolicy). Its ranges are sorted, disjoint and cut at every
// /8 boundary, each with the rule that refuses it (a never-public rule
// first, else RuleGoogle); index finds the ranges of an address's first
// octet, so that a check is one short binary search instead of two over
// the whole tables. TestIPv4Table holds it to the two tables it merges.
type ipv4Table struct {
	ranges []range4
	rules  []Rule
	index  [257]uint16 // the ranges of first octet o: ranges[index[o]:index[o+1]]
}

// defaultIPv4Table is built on first use, from the two tables.
var defaultIPv4Table = sync.OnceValue(func() *ipv4Table {
	return newIPv4Table(neverPublicSet(), embeddedServices().set)
})

// newIPv4Table merges the IPv4 ranges of np and google: where both hold an
// address, np's rule wins, as in Check.
func newIPv4Table(np *ruleSet, google *addrSet) *ipv4Table {
	cuts := make([]uint64, 0, 258+2*(len(np.v4)+len(google.v4)))
	for o := range uint64(257) {
		cuts = append(cuts, o<<24)
	}
	for _, x := range np.v4 {
		cuts = append(cuts, uint64(x.from), uint64(x.to)+1)
	}
	for _, x := range google.v4 {
		cuts = append(cuts, uint64(x.from), uint64(x.to)+1)
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	t := new(ipv4Table)
	for i := 0; i+1 < len(cuts); i++ {
		from, to := uint32(cuts[i]), uint32(cuts[i+1]-1)
		r := np.rule(netip.AddrFrom4([4]byte{byte(from >> 24), byte(from >> 16), byte(from >> 8), byte(from)}))
		if r == 0 && search4(google.v4, from) >= 0 {
			r = RuleGoogle
		}
		if r != 0 {
			t.ranges = append(t.ranges, range4{from, to})
			t.rules = append(t.rules, r)
		}
	}
	o := 0
	for i, x := range t.ranges {
		for ; o <= int(x.from>>24); o++ {
			t.index[o] = uint16(i)
		}
	}
	for ; o <= 256; o++ {
		t.index[o] = uint16(len(t.ranges))
	}
	return t
}

// rule returns the rule that refuses x, or 0.
func (t *ipv4Table) rule(x uint32) Rule {
	lo := t.index[x>>24]
	if i := search4(t.ranges[lo:t.index[x>>24+1]], x); i >= 0 {
		return t.rules[int(lo)+i]
	}
	return 0
}
