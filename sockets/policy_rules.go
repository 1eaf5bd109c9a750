package sockets

import (
	"context"
	"net/netip"
	"strings"
)

// nat64WellKnown is the well-known NAT64 prefix (RFC 6052 section 2.1).
var nat64WellKnown = netip.MustParsePrefix("64:ff9b::/96")

// WithNAT64 returns a copy of p that allows NAT64 addresses, for networks
// that reach IPv4 only through NAT64 (an IPv6-only network whose DNS64
// resolver answers with synthesized addresses). p is not changed.
//
// With no argument the prefix is the well-known 64:ff9b::/96 (RFC 6052).
// A network that uses local-use prefixes names them: /96 prefixes inside
// 64:ff9b:1::/48 (RFC 8215), such as 64:ff9b:1:2::/96. Any other prefix,
// including another length or a network-specific prefix outside these, is
// ignored: such addresses stay refused, as before the call. Use
// [Policy.NAT64Prefixes] to see which prefixes a policy holds.
//
// A NAT64 address under an opted-in prefix is allowed only when the IPv4
// address it carries (its last 32 bits) passes the same policy's address
// rules: its deny list, the never-public table and the Google rule. Two
// widenings do not reach the carried address: the allow list (an Allow of
// 10.0.0.0/8 opens 10.0.0.1, not 64:ff9b::a00:1) and the exceptions to
// the Google rule, which name exact addresses. So with WithNAT64,
// 64:ff9b::5db8:d822 (93.184.216.34) is allowed, while
// 64:ff9b::a9fe:a9fe (169.254.169.254), 64:ff9b::7f00:1 (127.0.0.1) and
// 64:ff9b::a00:1 (10.0.0.1) are refused for the rule that refuses the IPv4
// address, with [FormNAT64] in [DeniedError.Form]. The deny list
// ([Policy.Deny]) still refuses a NAT64 address it holds.
//
// An [Policy.Allow] of a NAT64 prefix opens no more than WithNAT64 does:
// every IPv6 form of an IPv4 address is checked by that address first.
func (p *Policy) WithNAT64(prefixes ...netip.Prefix) *Policy {
	p = p.orDefault()
	if len(prefixes) == 0 {
		prefixes = []netip.Prefix{nat64WellKnown}
	}
	c := *p
	c.nat64 = append([]netip.Prefix(nil), p.nat64...)
	for _, pfx := range prefixes {
		if !isNAT64Prefix(pfx) {
			continue
		}
		pfx = pfx.Masked()
		if !containsPrefix(c.nat64, pfx) {
			c.nat64 = append(c.nat64, pfx)
		}
	}
	return &c
}

// NAT64Prefixes returns a copy of the NAT64 prefixes p allows (see
// [Policy.WithNAT64]), or nil when NAT64 is off, as it is by default.
func (p *Policy) NAT64Prefixes() []netip.Prefix {
	return append([]netip.Prefix(nil), p.orDefault().nat64...)
}

// isNAT64Prefix reports whether pfx is a prefix WithNAT64 accepts: the
// well-known /96, or a /96 inside the local-use 64:ff9b:1::/48, the forms
// whose carried address embeddedIPv4 reads from the last 32 bits.
func isNAT64Prefix(pfx netip.Prefix) bool {
	if !pfx.IsValid() || pfx.Bits() != 96 || pfx.Addr().Zone() != "" {
		return false
	}
	pfx = pfx.Masked()
	return pfx == nat64WellKnown || prefixNAT64L.Contains(pfx.Addr())
}

func containsPrefix(list []netip.Prefix, pfx netip.Prefix) bool {
	for _, q := range list {
		if q == pfx {
			return true
		}
	}
	return false
}

// nat64Contains reports whether a is under a NAT64 prefix p opted in.
func (p *Policy) nat64Contains(a netip.Addr) bool {
	for _, pfx := range p.nat64 {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// AllowHosts returns a copy of p with a host allow list that also holds
// the given names: once a policy has one, a connection whose host is not
// on it is refused for [RuleHostNotAllowed]. p is not changed. The first
// call turns the list on, so AllowHosts() with no names refuses every
// host. An allowed host still gets every other check: its port, and each
// address it resolves to.
//
// Each entry is an exact DNS name ("api.example.com"), a suffix pattern
// ("*.example.com", which matches every name below example.com at any
// depth, but not example.com itself), or an IP literal ("192.0.2.1",
// "2001:db8::1"). Names are compared normalised: ASCII letters folded to
// lower case and one trailing dot removed, on the entry and on the host
// alike. Nothing else is rewritten: an internationalized name matches only
// in the form it is written, so list IDNs in their A-label form
// ("xn--bcher-kva.example"), as the dial names them. An entry that is none
// of these matches nothing.
//
// A host that is an IP literal (and a datagram of a [PacketConn], which
// has no host) is matched against the listed IP literals only, by its
// address: when an allow list is set, a literal is refused unless it is
// listed. A name is matched against names only: the addresses it resolves
// to are the address rules' business ([Policy.Allow], [Policy.Deny]).
//
// The host rules need no address, so a [Dialer] applies them before it
// looks a name up: a refused name sends no DNS query.
func (p *Policy) AllowHosts(hosts ...string) *Policy {
	p = p.orDefault()
	c := *p
	c.allowHosts = p.allowHosts.with(hosts)
	return &c
}

// DenyHosts returns a copy of p with a host deny list that also holds the
// given names: a connection whose host is on it is refused for
// [RuleHostDenied], before the host allow list and before any lookup. p is
// not changed. Entries are written and matched as for [Policy.AllowHosts].
func (p *Policy) DenyHosts(hosts ...string) *Policy {
	p = p.orDefault()
	c := *p
	c.denyHosts = p.denyHosts.with(hosts)
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

// with returns a new set holding s's entries and hosts; s may be nil.
func (s *hostSet) with(hosts []string) *hostSet {
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
			if a.Zone() == "" {
				c.addrs[a.Unmap()] = struct{}{}
			}
			continue
		}
		name := normalHost(h)
		if rest, ok := strings.CutPrefix(name, "*."); ok {
			if validHostName(rest) == nil {
				c.suffix[rest] = struct{}{}
			}
			continue
		}
		if validHostName(name) == nil {
			c.exact[name] = struct{}{}
		}
	}
	return c
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
// checked: host is empty (a datagram of a [PacketConn]) or an IP literal
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
// it is looked up: the port rules, the port allow list and the host rules.
// It returns 0 when they allow.
func (p *Policy) nameRule(proto, host string, port uint16) Rule {
	if r := portRule(proto, port); r != 0 {
		return r
	}
	return p.listRule(host, netip.Addr{}, port)
}

// policyKey is the context key of WithPolicy.
type policyKey struct{}

// WithPolicy returns a copy of ctx that carries p as the policy of the
// request or dial made with it, such as one tenant's rules in a service
// that fetches URLs for many. A nil p carries [DefaultPolicy].
//
// A [Dialer] applies the context's policy as well as its own: an address
// must pass both, so a context's policy narrows what the Dialer allows and
// never widens it. The two policies' host and port rules run before the
// lookup.
//
// A policy is checked when a connection is made, and an HTTP client reuses
// connections: an *http.Transport (or a urlfetch.Transport) pools them by
// scheme, host and port alone, so one that serves requests under several
// policies could hand a connection made under one to a request under
// another. Package transport's Transport keeps a pool per *Policy for this;
// send such requests through it.
//
// A context carries one policy: WithPolicy on a context that already has
// one replaces it. Connections are checked when they are made: a
// [PacketConn] checks its datagrams against its Dialer's policy only.
func WithPolicy(ctx context.Context, p *Policy) context.Context {
	return context.WithValue(ctx, policyKey{}, p.orDefault())
}

// PolicyFrom returns the policy ctx carries (see [WithPolicy]), or nil
// when it carries none.
func PolicyFrom(ctx context.Context) *Policy {
	if ctx == nil {
		return nil
	}
	p, _ := ctx.Value(policyKey{}).(*Policy)
	return p
}

// contextPolicy returns the policy ctx carries when it is not pol itself,
// or nil: the second policy a dial must pass.
func contextPolicy(ctx context.Context, pol *Policy) *Policy {
	if cp := PolicyFrom(ctx); cp != nil && cp != pol {
		return cp
	}
	return nil
}
