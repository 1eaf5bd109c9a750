package sockets

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// nat64WellKnown is the well-known NAT64 prefix (RFC 6052 section 2.1).
var nat64WellKnown = netip.MustParsePrefix("64:ff9b::/96")

// uniqueLocal is the unique local address space (RFC 4193), where a
// network may put its NAT64 prefix.
var uniqueLocal = netip.MustParsePrefix("fc00::/7")

// WithNAT64 returns a copy of p that allows NAT64 addresses, for networks
// that reach IPv4 only through NAT64 (an IPv6-only network whose DNS64
// resolver answers with synthesized addresses). p is not changed.
//
// With no argument the prefix is the well-known 64:ff9b::/96 (RFC 6052).
// A network whose gateway uses other prefixes names them: a local-use
// prefix inside 64:ff9b:1::/48 (RFC 8215), such as 64:ff9b:1:2::/96, or a
// network-specific prefix of its own, in global unicast space (2000::/3)
// or unique local space (fc00::/7), such as 2600:1::/96. A prefix may have
// any length RFC 6052 defines: 32, 40, 48, 56, 64 or 96 bits. Use
// [Policy.NAT64Prefixes] to see which prefixes a policy holds.
//
// A prefix it does not take is an error, never dropped: an invalid or
// IPv4 prefix, another length, the well-known prefix with a length other
// than 96, a prefix that holds 64:ff9b:1::/48 or overlaps 6to4
// (2002::/16) or Teredo (2001::/32), or one outside the spaces above.
// [Policy.Err] reports it, and the policy refuses everything while it
// holds it.
//
// A NAT64 address under an opted-in prefix is allowed only when the IPv4
// address it carries passes the same policy's address rules: its deny
// list, the never-public table and the Google rule. The carried address
// is read as RFC 6052 section 2.2 places it for the prefix's length: the
// 32 bits after the prefix, skipping bits 64 to 71 (the "u" octet), so
// 2001:db8:122:344:c0:2:2100:: carries 192.0.2.33 under
// 2001:db8:122:344::/64.
// Two widenings do not reach the carried address: the allow list (an
// Allow of 10.0.0.0/8 opens 10.0.0.1, not 64:ff9b::a00:1) and the
// exceptions to the Google rule, which name exact addresses. So with
// WithNAT64, 64:ff9b::5db8:d822 (93.184.216.34) is allowed, while
// 64:ff9b::a9fe:a9fe (169.254.169.254), 64:ff9b::7f00:1 (127.0.0.1) and
// 64:ff9b::a00:1 (10.0.0.1) are refused for the rule that refuses the IPv4
// address, with [RuleNAT64] in [DeniedError.Form] ([RuleNAT64Local] under
// 64:ff9b:1::/48). The deny list ([Policy.Deny]) still refuses a NAT64
// address it holds.
//
// Without the call, an address under a network-specific prefix is an
// ordinary IPv6 address to the policy, which cannot know that the
// network's gateway translates it: on such a network name the prefix, so
// that [2600:1::a00:1] is refused as the 10.0.0.1 it reaches, or let
// [DiscoverNAT64] find it and [Policy.WithDiscoveredNAT64] apply it,
// which reads the prefix's addresses without opening them.
//
// An [Policy.Allow] of a NAT64 prefix opens no more than WithNAT64 does:
// every IPv6 form of an IPv4 address is checked by that address first.
func (p *Policy) WithNAT64(prefixes ...netip.Prefix) *Policy {
	p = p.orDefault()
	if len(prefixes) == 0 {
		prefixes = []netip.Prefix{nat64WellKnown}
	}
	c := *p
	c.nat64 = c.addNAT64("WithNAT64", p.nat64, prefixes)
	return &c
}

// WithDiscoveredNAT64 returns a copy of p that knows the NAT64 prefixes
// of the network it runs on, as [DiscoverNAT64] finds them: an address
// under one of them is checked by the IPv4 address it carries, read as
// for [Policy.WithNAT64], although the caller did not opt in to NAT64.
// It opens nothing: an address whose carried IPv4 address passes goes on
// through the other rules, so on a network whose prefix is
// 2600:1::/96, [2600:1::a00:1] is refused as the 10.0.0.1 it reaches
// (for [RulePrivate], with [RuleNAT64] in [DeniedError.Form]), and
// [2600:1::5db8:d822] (93.184.216.34) is checked as the IPv6 address it
// is; one under 64:ff9b::/96 stays refused for [RuleNAT64] unless
// WithNAT64 opted in. A prefix WithNAT64 does not take is an error in
// the same way ([Policy.Err]), so a policy given a prefix it cannot read
// refuses everything rather than let it through unread. The prefixes
// add to those of earlier calls. p is not changed.
//
// Apply it once at start-up, on the policy every connection uses:
//
//	prefixes, err := sockets.DiscoverNAT64(ctx, nil)
//	if err != nil {
//		return err // or go on without: see DiscoverNAT64
//	}
//	p := sockets.DefaultPolicy().WithDiscoveredNAT64(prefixes...)
//	if err := p.Err(); err != nil {
//		return err
//	}
func (p *Policy) WithDiscoveredNAT64(prefixes ...netip.Prefix) *Policy {
	p = p.orDefault()
	c := *p
	c.nat64Found = c.addNAT64("WithDiscoveredNAT64", p.nat64Found, prefixes)
	return &c
}

// nat64WKN is the well-known name of RFC 7050 (section 2, and RFC 8880):
// it has only A records, 192.0.0.170 and 192.0.0.171 (nat64WKA), so every
// AAAA record a resolver answers for it was synthesized by a DNS64 server
// from one of those addresses under the network's NAT64 prefix.
const nat64WKN = "ipv4only.arpa"

var nat64WKA = [2]netip.Addr{netip.AddrFrom4([4]byte{192, 0, 0, 170}), netip.AddrFrom4([4]byte{192, 0, 0, 171})}

// nat64Lengths are RFC 6052's prefix lengths.
var nat64Lengths = [...]int{32, 40, 48, 56, 64, 96}

// DiscoverNAT64 finds the NAT64 prefixes of the network it runs on, as
// RFC 7050 section 3 does: it asks r for the IPv6 addresses of
// ipv4only.arpa, a name that has IPv4 addresses only (192.0.0.170 and
// 192.0.0.171), so that every IPv6 answer was synthesized by the
// network's DNS64 resolver, and reads each answer at every prefix length
// of RFC 6052 (32, 40, 48, 56, 64 and 96 bits, skipping the "u" octet,
// bits 64 to 71, which must be zero) to find where one of the two
// addresses sits; the bits before it are the prefix. An answer that
// holds one at more than one length is read at the length where another
// answer holds the other address under the same prefix (RFC 7050's use
// of 192.0.0.171), and is left out if that does not decide. Give the
// result to [Policy.WithDiscoveredNAT64].
//
// r is the resolver to ask, the one the program's connections use (a
// [Dialer]'s Resolver); nil means net.DefaultResolver, the system's.
// Only the network's own resolver synthesizes addresses, so a resolver
// elsewhere (a public DNS server over TLS, a test table without the
// name) finds none.
//
// The prefixes come masked, each once, in the order of the answers. No
// prefix and a nil error mean the network has no DNS64: the resolver
// found no IPv6 address for the name (a *net.DNSError whose IsNotFound
// is true). Any other failure of the lookup is a *[LookupError] (a
// timeout matches context.DeadlineExceeded); IPv6 answers of which none
// holds either address are an error too, since the resolver then
// answers for the name what no DNS64 resolver would. On an error, a
// caller may go on without the prefixes: the policy then reads the
// well-known prefix's addresses as always, and a network-specific
// prefix's addresses as the plain IPv6 addresses they look like.
//
// The answers are trusted as the resolver gives them: DiscoverNAT64 does
// not do the DNSSEC validation of RFC 7050 section 3.1, and a resolver
// that lies about the prefix can make WithDiscoveredNAT64 read the wrong
// bits (never open an address: the prefixes it adds only narrow).
// Networks change their prefix rarely; a long-running program on a
// network that may change it can discover again from time to time and
// build a new policy.
func DiscoverNAT64(ctx context.Context, r Resolver) ([]netip.Prefix, error) {
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip6", nat64WKN)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return nil, nil
		}
		return nil, &LookupError{Host: nat64WKN, Err: err}
	}
	var answers []netip.Addr
	for _, a := range addrs {
		if a.Is6() && !a.Is4In6() && a.Zone() == "" {
			answers = append(answers, a)
		}
	}
	if len(answers) == 0 {
		return nil, nil
	}
	var out []netip.Prefix
	for _, a := range answers {
		pfx, ok := nat64PrefixOf(a, answers)
		if ok && !containsPrefix(out, pfx) {
			out = append(out, pfx)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("sockets: NAT64 discovery: no answer for " + nat64WKN + " holds 192.0.0.170 or 192.0.0.171 at an RFC 6052 length: " + fmt.Sprint(answers))
	}
	return out, nil
}

// nat64PrefixOf returns the NAT64 prefix under which a carries one of the
// well-known addresses, deciding between several lengths by the other
// answers, as DiscoverNAT64 says.
func nat64PrefixOf(a netip.Addr, answers []netip.Addr) (netip.Prefix, bool) {
	if a.As16()[8] != 0 {
		return netip.Prefix{}, false // the u octet (RFC 6052 section 2.2)
	}
	var cands []netip.Prefix
	var which []int // the index in nat64WKA of each candidate's address
	for _, bits := range nat64Lengths {
		v4 := nat64IPv4(a, bits)
		for i, wka := range nat64WKA {
			if v4 == wka {
				cands = append(cands, netip.PrefixFrom(a, bits).Masked())
				which = append(which, i)
			}
		}
	}
	if len(cands) == 1 {
		return cands[0], true
	}
	// Several lengths: keep those where another answer carries the other
	// address under the same prefix.
	var kept []netip.Prefix
	for i, pfx := range cands {
		other := nat64WKA[1-which[i]]
		for _, b := range answers {
			if b != a && pfx.Contains(b) && nat64IPv4(b, pfx.Bits()) == other {
				kept = append(kept, pfx)
				break
			}
		}
	}
	if len(kept) == 1 {
		return kept[0], true
	}
	return netip.Prefix{}, false
}

// addNAT64 returns a new list holding list and the prefixes, masked, each
// once, recording in p the first prefix that is not a NAT64 prefix.
func (p *Policy) addNAT64(method string, list, prefixes []netip.Prefix) []netip.Prefix {
	list = append([]netip.Prefix(nil), list...)
	for _, pfx := range prefixes {
		if why := nat64PrefixProblem(pfx); why != "" {
			p.badEntry(method, "prefix "+pfx.String(), why)
			continue
		}
		pfx = pfx.Masked()
		if !containsPrefix(list, pfx) {
			list = append(list, pfx)
		}
	}
	return list
}

// NAT64Prefixes returns a copy of the NAT64 prefixes p allows (see
// [Policy.WithNAT64]), or nil when NAT64 is off, as it is by default.
func (p *Policy) NAT64Prefixes() []netip.Prefix {
	return append([]netip.Prefix(nil), p.orDefault().nat64...)
}

// nat64PrefixProblem returns why pfx is not a prefix WithNAT64 takes, or
// "" when it is one (see [Policy.WithNAT64]).
func nat64PrefixProblem(pfx netip.Prefix) string {
	if !pfx.IsValid() {
		return "not a valid prefix"
	}
	switch a := pfx.Addr(); {
	case !a.Is6() || a.Zone() != "":
		return "not an IPv6 prefix"
	case a.Is4In6():
		return "an IPv4-mapped prefix"
	}
	switch pfx.Bits() {
	case 32, 40, 48, 56, 64, 96:
	default:
		return "length " + strconv.Itoa(pfx.Bits()) + " is none of RFC 6052's (32, 40, 48, 56, 64, 96)"
	}
	pfx = pfx.Masked()
	switch {
	case pfx == nat64WellKnown:
		return ""
	case pfx.Overlaps(nat64WellKnown):
		return "overlaps the well-known prefix, which is 64:ff9b::/96 and no other length (RFC 6052 section 2.1)"
	case prefixNAT64L.Contains(pfx.Addr()) && pfx.Bits() >= prefixNAT64L.Bits():
		return "" // local use (RFC 8215)
	case pfx.Overlaps(prefixNAT64L):
		return "holds the local-use prefix 64:ff9b:1::/48: name a prefix inside it (RFC 8215)"
	case pfx.Overlaps(prefix6to4):
		return "inside 6to4, 2002::/16, whose addresses carry IPv4 addresses of their own (RFC 3056)"
	case pfx.Overlaps(prefixTeredo):
		return "inside Teredo, 2001::/32, whose addresses carry IPv4 addresses of their own (RFC 4380)"
	case globalUnicast.Contains(pfx.Addr()), uniqueLocal.Contains(pfx.Addr()):
		return "" // network-specific (RFC 6052 section 2.3)
	}
	return "outside global unicast (2000::/3) and unique local (fc00::/7) space"
}

func containsPrefix(list []netip.Prefix, pfx netip.Prefix) bool {
	for _, q := range list {
		if q == pfx {
			return true
		}
	}
	return false
}

// nat64Check checks a, an IPv6 address, against the NAT64 prefixes p
// knows: under each that holds a, the IPv4 address a carries (read as
// that prefix's length says) must pass carriedRule. held reports whether
// a prefix holds a, and open whether one opted in with WithNAT64 does and
// every carried address passed; v is the refusal, if any.
func (p *Policy) nat64Check(a netip.Addr) (v verdict, held, open bool) {
	for _, pfx := range p.nat64 {
		if pfx.Contains(a) {
			if v = p.nat64Carried(a, pfx); v.rule != 0 {
				return v, true, false
			}
			held, open = true, true
		}
	}
	for _, pfx := range p.nat64Found {
		if pfx.Contains(a) {
			if v = p.nat64Carried(a, pfx); v.rule != 0 {
				return v, true, false
			}
			held = true
		}
	}
	return verdict{}, held, open
}

// nat64Carried applies carriedRule to the IPv4 address that a carries
// under pfx, and returns the refusal, if any.
func (p *Policy) nat64Carried(a netip.Addr, pfx netip.Prefix) verdict {
	v4 := nat64IPv4(a, pfx.Bits())
	r := p.carriedRule(v4)
	if r == 0 {
		return verdict{}
	}
	form := RuleNAT64
	if prefixNAT64L.Contains(pfx.Addr()) {
		form = RuleNAT64Local
	}
	return verdict{rule: r, form: form, embedded: v4}
}

// nat64IPv4 returns the IPv4 address that a, an IPv6 address, carries
// under a NAT64 prefix of bits bits, one of RFC 6052's lengths: the 32
// bits after the prefix, skipping bits 64 to 71, the "u" octet (RFC 6052
// section 2.2). For /96 that is the last 32 bits; for /32, bits 32-63;
// for /64, bits 72-103.
func nat64IPv4(a netip.Addr, bits int) netip.Addr {
	b := a.As16()
	var v4 [4]byte
	j := bits / 8
	for i := range v4 {
		if j == 8 {
			j++ // the u octet
		}
		v4[i] = b[j]
		j++
	}
	return netip.AddrFrom4(v4)
}

// badEntry records in p the first entry a method could not use: what the
// method was given, and why it can match nothing.
func (p *Policy) badEntry(method, entry, why string) {
	if p.err == nil {
		p.err = errors.New("sockets: " + method + ": " + entry + ": " + why)
	}
}

// AllowHosts returns a copy of p with a host allow list that also holds
// the given entries: once a policy has one, a connection whose host is
// not on it is refused for [RuleHostNotAllowed]. p is not changed. The
// first call turns the list on, so AllowHosts() with no entries refuses
// every host. An allowed host still gets every other check: its port, and
// each address it resolves to.
//
// Each entry is one of:
//
//   - an IP literal, one that netip.ParseAddr parses ("192.0.2.1",
//     "2001:db8::1"; an IPv4-mapped one stands for its IPv4 address);
//   - an exact DNS name ("api.example.com"): labels of 1 to 63 ASCII
//     letters, digits, '-' and '_', with one optional trailing dot. A
//     name of digits and dots is a name when netip does not parse it
//     ("10.0.0.1.5"), unless a C resolver would read it as an IPv4
//     address in another notation ("10.1", "0x0a.0.0.1"), which the
//     [Dialer] refuses too;
//   - a suffix pattern, "*." and such a name: "*.example.com" matches
//     every name that ends in ".example.com", at any depth
//     ("a.example.com", "a.b.example.com"), but not example.com itself
//     (list it as well to match it) nor "badexample.com". The "*" is the
//     whole leftmost label and stands for one label or more:
//     "*example.com", "a.*.example.com", "**.example.com" and "*" are no
//     patterns.
//
// Names are compared normalised: ASCII letters folded to lower case and
// one trailing dot removed, on the entry and on the host alike. Nothing
// else is rewritten: an internationalized name matches only in the form it
// is written, so list IDNs in their A-label form ("xn--bcher-kva.example"),
// as the dial names them.
//
// An entry that is none of these can match nothing: a Unicode name, a
// host and port ("example.com:443"), a URL, an address range
// ("10.0.0.0/8"), a zoned address, an empty string. It is an error, never
// dropped: [Policy.Err] reports it, and Check refuses everything, for
// [RuleInvalidPolicy], while the policy holds it.
//
// The lists match hosts as written, never what they resolve to. A host
// that is an IP literal (one that netip.ParseAddr parses, as the Dialer
// and Go's resolver decide; a datagram of a
// [github.com/outbound-go/outbound/sockets/socketapi.PacketConn], which has no
// host, too) is matched against the listed IP literals only, by its
// address: when an allow list is set, a literal is refused unless it is
// listed. Any other host is a name ("10.0.0.1.5" included), matched
// against the listed names only, and no CNAME is followed: a name whose
// CNAME is a denied name is not denied, and a denied name is reached
// through any other name for its addresses. To keep a destination out,
// deny its addresses ([Policy.Deny]); the addresses a name resolves to
// are the address rules' business.
//
// The host rules need no address, so a [Dialer] applies them before it
// looks a name up: a refused name sends no DNS query.
func (p *Policy) AllowHosts(hosts ...string) *Policy {
	p = p.orDefault()
	c := *p
	c.allowHosts = p.allowHosts.with(hosts, func(entry, why string) { c.badEntry("AllowHosts", entry, why) })
	return &c
}

// DenyHosts returns a copy of p with a host deny list that also holds the
// given entries: a connection whose host is on it is refused for
// [RuleHostDenied], before the host allow list and before any lookup. p is
// not changed. Entries are written and matched as for [Policy.AllowHosts],
// and an entry that can match nothing is an error there too: the list
// matches names as written, so a CNAME to a denied name is not denied, and
// a destination is kept out by denying its addresses ([Policy.Deny]).
func (p *Policy) DenyHosts(hosts ...string) *Policy {
	p = p.orDefault()
	c := *p
	c.denyHosts = p.denyHosts.with(hosts, func(entry, why string) { c.badEntry("DenyHosts", entry, why) })
	return &c
}

// AllowPorts returns a copy of p with a port allow list that also holds
// the given ports: once a policy has one, a connection to a port not on it
// is refused for [RulePortNotAllowed], before any lookup. p is not changed.
// The first call turns the list on, so AllowPorts() with no ports refuses
// every port. Listing a port never lifts another rule: port 25, TCP port
// 21 and port 0 stay refused.
func (p *Policy) AllowPorts(ports ...uint16) *Policy {
	p = p.orDefault()
	c := *p
	s := new(portSet)
	if p.ports != nil {
		*s = *p.ports
	}
	for _, port := range ports {
		s[port/64] |= 1 << (port % 64)
	}
	c.ports = s
	return &c
}

// AllowPortRange returns a copy of p whose port allow list also holds the
// ports from lo to hi, both included (none when lo > hi), as
// [Policy.AllowPorts] does.
func (p *Policy) AllowPortRange(lo, hi uint16) *Policy {
	ports := make([]uint16, 0, max(0, int(hi)-int(lo)+1))
	for port := int(lo); port <= int(hi); port++ {
		ports = append(ports, uint16(port))
	}
	return p.AllowPorts(ports...)
}

// portSet is a set of ports, one bit each.
type portSet [65536 / 64]uint64

func (s *portSet) has(port uint16) bool { return s[port/64]&(1<<(port%64)) != 0 }

// hostSet is a host list: normalised exact names, suffixes (the part of
// "*.example.com" after "*."), and IP literals.
type hostSet struct {
	exact  map[string]struct{}
	suffix map[string]struct{}
	addrs  map[netip.Addr]struct{}
}

// with returns a new set holding s's entries and hosts; s may be nil. It
// calls bad with each host that can match nothing, quoted, and why, and
// leaves that host out.
func (s *hostSet) with(hosts []string, bad func(entry, why string)) *hostSet {
	c := &hostSet{exact: map[string]struct{}{}, suffix: map[string]struct{}{}, addrs: map[netip.Addr]struct{}{}}
	if s != nil {
		for k := range s.exact {
			c.exact[k] = struct{}{}
		}
		for k := range s.suffix {
			c.suffix[k] = struct{}{}
		}
		for k := range s.addrs {
			c.addrs[k] = struct{}{}
		}
	}
	for _, h := range hosts {
		if a, err := netip.ParseAddr(h); err == nil {
			if a.Zone() != "" {
				bad(strconv.Quote(h), "an address with a zone, which Check always refuses")
				continue
			}
			c.addrs[a.Unmap()] = struct{}{}
			continue
		}
		name := normalHost(h)
		rest, wild := strings.CutPrefix(name, "*.")
		if why := hostEntryProblem(h, rest); why != "" {
			bad(strconv.Quote(h), why)
			continue
		}
		if wild {
			c.suffix[rest] = struct{}{}
		} else {
			c.exact[rest] = struct{}{}
		}
	}
	return c
}

// hostEntryProblem returns why the host list entry h, which is no IP
// literal, can match nothing, or "" when name (h normalised, without a
// leading "*.") is a host name a host can match.
func hostEntryProblem(h, name string) string {
	err := validHostName(name)
	if err == nil && !strings.HasSuffix(name, ".") {
		return ""
	}
	for i := 0; i < len(h); i++ {
		if h[i] >= 0x80 {
			return "not ASCII: write an internationalized name in its A-label form (xn--...), as it is dialed"
		}
	}
	switch {
	case h == "":
		return "empty"
	case strings.Contains(h, "://"):
		return "a URL: list its host alone"
	case strings.Contains(h, "/"):
		return "an address range or a path: list hosts one by one, and refuse address ranges with Deny"
	case strings.HasPrefix(h, "."):
		return `a leading dot: write "*.example.com" for the names below example.com`
	case strings.Contains(h, "*"):
		return `a wildcard other than a leading "*." label`
	case err == nil:
		return "more than one trailing dot"
	}
	if _, _, e := net.SplitHostPort(h); e == nil {
		return "a host and port: list the host alone, and ports with AllowPorts"
	}
	if strings.HasPrefix(h, "[") {
		return "an IPv6 literal in brackets: write it without them"
	}
	if _, ok := parseIPv4(name); ok {
		return "an IPv4 address with a trailing dot: write it without the dot"
	}
	return strings.TrimPrefix(err.Error(), "invalid host name: ")
}

// normalHost folds ASCII letters to lower case and removes one trailing
// dot.
func normalHost(h string) string {
	h = strings.TrimSuffix(h, ".")
	b := []byte(h)
	for i, c := range b {
		b[i] = lowerASCII(c)
	}
	return string(b)
}

// matchName reports whether the normalised name is on the list. The
// lookups convert name inside the index expression, which does not
// allocate.
func (s *hostSet) matchName(name []byte) bool {
	if _, ok := s.exact[string(name)]; ok {
		return true
	}
	for i, c := range name {
		if c == '.' {
			if _, ok := s.suffix[string(name[i+1:])]; ok {
				return true
			}
		}
	}
	return false
}

// isLiteralHost reports whether the host rules match host by the address
// checked: host is empty (a datagram of a socketapi.PacketConn) or an IP literal
// (see hostLiteral). Anything else is a name, matched against the names
// listed, even when it is made of digits and dots ("10.0.0.1.5").
func isLiteralHost(host string) bool {
	if host == "" {
		return true
	}
	_, ok := hostLiteral(host)
	return ok
}

// hostLiteral parses host as an IP literal, and decides literal or name
// exactly as netip.ParseAddr, and so Go's resolver, do: host is a literal
// when ParseAddr parses it, and a name otherwise. A host made of digits
// and dots that ParseAddr refuses ("10.0.0.1.5", "10.0.0.1.", "010.0.0.1",
// "1.2.3") is a name; the resolver looks it up as one, so the host lists
// must match it as one.
//
// A host without a colon can only be an IPv4 literal, and is parsed here
// as ParseAddr parses one (parseIPv4), without the error value ParseAddr
// allocates for a name: Check allocates nothing when it allows. A host with
// a colon goes to ParseAddr itself.
func hostLiteral(host string) (netip.Addr, bool) {
	if strings.IndexByte(host, ':') >= 0 {
		a, err := netip.ParseAddr(host)
		return a, err == nil
	}
	return parseIPv4(host)
}

// parseIPv4 parses s as netip.ParseAddr parses an IPv4 address: four
// decimal fields from 0 to 255, without leading zeros, separated by single
// dots, and nothing else (net/netip's parseIPv4Fields). It reports false
// wherever ParseAddr reports an error; TestHostLiteralMatchesParseAddr holds
// the two together.
func parseIPv4(s string) (netip.Addr, bool) {
	var fields [4]byte
	val, pos, digits := 0, 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			if digits == 1 && val == 0 {
				return netip.Addr{}, false // leading zero
			}
			val = val*10 + int(c-'0')
			digits++
			if val > 255 {
				return netip.Addr{}, false
			}
		case c == '.':
			if digits == 0 || pos == 3 {
				return netip.Addr{}, false // empty field, or a fifth one
			}
			fields[pos] = byte(val)
			pos, val, digits = pos+1, 0, 0
		default:
			return netip.Addr{}, false
		}
	}
	if pos != 3 || digits == 0 {
		return netip.Addr{}, false
	}
	fields[3] = byte(val)
	return netip.AddrFrom4(fields), true
}

// listRule applies the port allow list and the host rules (steps 3 and 5
// of [Policy]) to host, the address a (unmapped) and port; a may be zero
// when a name is checked before its lookup. It returns 0 when they allow.
func (p *Policy) listRule(host string, a netip.Addr, port uint16) Rule {
	if p.ports != nil && !p.ports.has(port) {
		return RulePortNotAllowed
	}
	if p.allowHosts == nil && p.denyHosts == nil {
		return 0
	}
	if isLiteralHost(host) {
		if p.denyHosts != nil {
			if _, ok := p.denyHosts.addrs[a]; ok {
				return RuleHostDenied
			}
		}
		if p.allowHosts != nil {
			if _, ok := p.allowHosts.addrs[a]; !ok {
				return RuleHostNotAllowed
			}
		}
		return 0
	}
	var buf [256]byte
	name := strings.TrimSuffix(host, ".")
	if len(name) > len(buf) {
		// Longer than any DNS name: on no list.
		if p.allowHosts != nil {
			return RuleHostNotAllowed
		}
		return 0
	}
	b := buf[:len(name)]
	for i := 0; i < len(name); i++ {
		b[i] = lowerASCII(name[i])
	}
	if p.denyHosts != nil && p.denyHosts.matchName(b) {
		return RuleHostDenied
	}
	if p.allowHosts != nil && !p.allowHosts.matchName(b) {
		return RuleHostNotAllowed
	}
	return 0
}

// nameRule applies the rules that need no address to a host name before
// it is looked up: a policy's unusable entry ([Policy.Err]), the port
// rules, the port allow list and the host rules. It returns 0 when they
// allow.
func (p *Policy) nameRule(proto, host string, port uint16) Rule {
	if p.err != nil {
		return RuleInvalidPolicy
	}
	if r := portRule(proto, port); r != 0 {
		return r
	}
	return p.listRule(host, netip.Addr{}, port)
}
