package sockets

import (
	"net/netip"
	"strings"
	"sync"

	"github.com/outbound-go/outbound/internal/dialhook"
)

// Exception allows one destination although the Google rule refuses its
// address. It is a tuple: an exact address or an exact host name (as
// dialed), a port, and a transport protocol. An exception only lifts the
// Google rule: it never makes a never-public address, port 25 or TCP port 21
// reachable.
type Exception struct {
	Addr     netip.Addr // the exact address; zero when Host is used
	Host     string     // the exact host name as dialed (ASCII case and one trailing dot ignored); empty when Addr is used
	Port     uint16
	Protocol string // "tcp" or "udp"
}

func (e *Exception) matches(proto, host string, ap netip.AddrPort) bool {
	if e.Port != ap.Port() || e.Protocol != proto {
		return false
	}
	if e.Host != "" {
		return sameHost(e.Host, host)
	}
	return e.Addr == ap.Addr()
}

// sameHost compares DNS names ASCII case-insensitively, ignoring one
// trailing dot on either side (the fully qualified form of the same name).
// Only ASCII letters fold: strings.EqualFold would also match
// "\u017fmtp.gmail.com" (LATIN SMALL LETTER LONG S) to "smtp.gmail.com",
// and DNS names compare ASCII case-insensitively only (RFC 4343).
func sameHost(a, b string) bool {
	a, b = strings.TrimSuffix(a, "."), strings.TrimSuffix(b, ".")
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// defaultExceptions are App Engine's: Google Public DNS on port 53 (TCP and
// UDP), and Gmail's submission, POP3 and IMAP ports by exact name.
var defaultExceptions = func() []Exception {
	var ex []Exception
	for _, a := range []string{"8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844"} {
		for _, p := range []string{"tcp", "udp"} {
			ex = append(ex, Exception{Addr: netip.MustParseAddr(a), Port: 53, Protocol: p})
		}
	}
	return append(ex,
		Exception{Host: "smtp.gmail.com", Port: 465, Protocol: "tcp"},
		Exception{Host: "smtp.gmail.com", Port: 587, Protocol: "tcp"},
		Exception{Host: "pop.gmail.com", Port: 995, Protocol: "tcp"},
		Exception{Host: "imap.gmail.com", Port: 993, Protocol: "tcp"},
	)
}()

// Policy decides which destinations a connection may reach. A Policy is
// immutable: [Policy.Allow], [Policy.Deny] and the other With methods return
// changed copies. It is safe for concurrent use.
//
// The zero Policy is [DefaultPolicy], App Engine's strict rules, and so is a
// nil *Policy, in a [Dialer] and as the receiver of every method:
// (&Policy{}).Check and (*Policy)(nil).Check apply App Engine's rules, and
// (*Policy)(nil).Allow(...) returns a changed copy of DefaultPolicy(). Only
// [PublicPolicy] and [Policy.WithGoogleRanges] (given nil) turn the Google
// rule off.
//
// A method given an entry it cannot use (a host list entry that can match
// nothing, a prefix [Policy.WithNAT64] does not take) records it rather
// than drop it: [Policy.Err] reports the first one, and Check refuses
// everything, for [RuleInvalidPolicy], while the policy holds one.
//
// Otherwise Check applies the rules in this order, and the first that
// matches decides:
//
//  1. the network is tcp, tcp4, tcp6, udp, udp4 or udp6;
//  2. the address is valid, has no zone, and its port is not 0;
//  3. port 25 (any protocol) and TCP port 21 are refused, and so is a
//     port not on the port allow list ([Policy.AllowPorts]), if one is set;
//  4. (IPv4-mapped addresses are unmapped: a refusal of one has
//     [RuleIPv4Mapped] in [DeniedError.Form] and the IPv4 address in
//     [DeniedError.Embedded])
//  5. the host rules ([Policy.DenyHosts], [Policy.AllowHosts]) refuse;
//  6. the deny list ([Policy.Deny]) refuses, and so do the machine's own
//     addresses, loopback aside, with [Policy.DenySelf] ([RuleSelf]);
//  7. an IPv6 form that carries IPv4 addresses (IPv4-compatible, NAT64,
//     6to4, Teredo, and an address under a network-specific NAT64 prefix
//     the policy knows, read as that prefix says: see [Policy.WithNAT64]
//     and [Policy.WithDiscoveredNAT64])
//     is refused when a carried IPv4 address is refused by step 6, 10 or
//     11 (without the exceptions, which name exact addresses), and the
//     refusal names the rule that refused the IPv4 address, with the
//     form's block in [DeniedError.Form]. The allow list does not apply to carried
//     addresses: no Allow, of an IPv6 prefix or of an IPv4 one, opens such
//     a form of a refused IPv4 address (an IPv4-mapped address is the IPv4
//     address itself, step 4);
//  8. a NAT64 address under a prefix opted in with [Policy.WithNAT64]
//     (its carried IPv4 address passed step 7) is allowed;
//  9. the allow list ([Policy.Allow]) allows;
//  10. the never-public table (IANA's special-purpose blocks, whose
//     rules run from [RuleUnspecified] to [RuleNotGlobalUnicast]) refuses;
//  11. Google's services' ranges (the embedded ones, unless
//     [Policy.WithGoogleRanges] or [Policy.WithGoogleRangesFunc] set
//     others) are refused unless an [Exception] matches.
type Policy struct {
	// google is the Google rule's ranges; nil means the embedded
	// services' ranges, so that the zero Policy is the strict default.
	google *GoogleRanges
	// googleFunc, when set (WithGoogleRangesFunc), gives the ranges at
	// each check instead of google; a nil result means the embedded
	// services' ranges. google is then nil.
	googleFunc func() *GoogleRanges
	// googleOff turns the Google rule off (PublicPolicy,
	// WithGoogleRanges(nil)); google and googleFunc are then nil.
	googleOff bool
	allow     *addrSet // nil: empty
	deny      *addrSet // nil: empty
	denySelf  bool     // refuse the machine's own addresses (DenySelf, self.go)
	// The features of policy_rules.go.
	nat64      []netip.Prefix // NAT64 prefixes opted in (WithNAT64); nil: none
	nat64Found []netip.Prefix // NAT64 prefixes discovered (WithDiscoveredNAT64): read, not opened; nil: none
	allowHosts *hostSet       // the host allow list; nil: every host
	denyHosts  *hostSet       // the host deny list; nil: empty
	ports      *portSet       // the port allow list; nil: every port
	// err is the first entry a method could not use (Policy.Err); while
	// it is set, check refuses everything.
	err error
}

// Err reports the first entry that p cannot use, given to its methods or
// to those of the policies p was made from: a host list entry that can
// match nothing ([Policy.AllowHosts]) or a prefix [Policy.WithNAT64] does
// not take. The error names the method, the entry and why; nil means p
// has no such entry. An entry is never dropped: while p holds one,
// [Policy.Check] refuses every connection for [RuleInvalidPolicy], and so
// does a [Dialer] with p, before any lookup. Check Err where the policy is
// built, as constructors that take a policy (transport.New) do. A nil
// *Policy has no error.
func (p *Policy) Err() error {
	if p == nil {
		return nil
	}
	return p.err
}

// DefaultPolicy returns App Engine's Sockets API rules: public destinations
// only, port 25 and TCP port 21 refused, and Google's services refused
// except for the App Engine exceptions (Google Public DNS on port 53,
// Gmail's mail ports by exact name). Google's services are the embedded
// goog.json minus the embedded cloud.json, which [Policy.GoogleRanges]
// returns: Google Cloud customers' addresses are reachable. For the broadest reading,
// which refuses the whole of goog.json, Google Cloud included:
//
//	p := sockets.DefaultPolicy().WithGoogleRanges(sockets.EmbeddedGoogleRanges())
//
// DefaultPolicy() is the same as the zero Policy and a nil *Policy.
func DefaultPolicy() *Policy {
	return &Policy{google: embeddedServices()}
}

// defaultPolicy is shared by every Dialer without a Policy and by every nil
// *Policy; a Policy is immutable. It is made on first use, so that
// importing the package does not parse the Google ranges.
var defaultPolicy = sync.OnceValue(DefaultPolicy)

// orDefault returns p, or the default policy for a nil p.
func (p *Policy) orDefault() *Policy {
	if p == nil {
		return defaultPolicy()
	}
	return p
}

// PublicPolicy returns the destination rule of App Engine's URL Fetch
// service: the same as [DefaultPolicy] except that the Google rule is off,
// so Google's ranges are reachable.
func PublicPolicy() *Policy {
	return &Policy{googleOff: true}
}

// googleRanges returns the ranges the Google rule refuses, or nil when the
// rule is off.
func (p *Policy) googleRanges() *GoogleRanges {
	switch {
	case p.googleOff:
		return nil
	case p.google != nil:
		return p.google
	case p.googleFunc != nil:
		if g := p.googleFunc(); g != nil {
			return g
		}
	}
	return embeddedServices()
}

// Allow returns a copy of p that also allows the given prefixes on any port
// (for tests and development servers). p is not changed. The network, zone
// and port rules still apply, and so do the deny list and the host and
// port lists. An allowed IPv4 address is allowed as itself and in its
// IPv4-mapped form (the same address), never in another IPv6 form
// (IPv4-compatible, NAT64, 6to4, Teredo), and no allowed IPv6 prefix opens
// such a form of a refused IPv4 address: see [Policy.WithNAT64] for
// IPv6-only networks. An invalid prefix (the zero netip.Prefix) is an
// entry the policy cannot use: [Policy.Err] reports it.
func (p *Policy) Allow(prefixes ...netip.Prefix) *Policy {
	p = p.orDefault()
	c := *p
	c.allow = addPrefixes(p.allow, prefixes)
	c.checkPrefixes("Allow", prefixes)
	return &c
}

// Deny returns a copy of p that also refuses the given prefixes, before any
// other address rule (the deny list wins over [Policy.Allow]). p is not
// changed. An invalid prefix (the zero netip.Prefix) is an entry the
// policy cannot use: [Policy.Err] reports it, and the policy refuses
// everything, so that a deny list never denies less than it was given.
func (p *Policy) Deny(prefixes ...netip.Prefix) *Policy {
	p = p.orDefault()
	c := *p
	c.deny = addPrefixes(p.deny, prefixes)
	c.checkPrefixes("Deny", prefixes)
	return &c
}

// checkPrefixes records the first invalid prefix given to method.
func (p *Policy) checkPrefixes(method string, prefixes []netip.Prefix) {
	for _, pfx := range prefixes {
		if !pfx.IsValid() {
			p.badEntry(method, "invalid prefix", "not a prefix (the zero netip.Prefix)")
			return
		}
	}
}

// WithGoogleRanges returns a copy of p whose Google rule refuses the ranges
// g instead of its current ones, with App Engine's exceptions: for example
// a newer pair of files read with [ParseGoogleRanges], or the whole of
// goog.json ([EmbeddedGoogleRanges], or a newer one read with
// ParseGoogleRanges and no cloud.json) for the broadest reading of the
// rule. A nil g turns
// the Google rule off, as in [PublicPolicy]; an empty g keeps it on and
// refuses nothing. p is not changed, and neither is the policy by later
// changes to *g.
func (p *Policy) WithGoogleRanges(g *GoogleRanges) *Policy {
	c := *p.orDefault()
	c.google, c.googleFunc, c.googleOff = nil, nil, g == nil
	if g != nil {
		own := *g
		c.google = &own
	}
	return &c
}

// WithGoogleRangesFunc returns a copy of p whose Google rule refuses the
// ranges f returns, asked again at every check, with App Engine's
// exceptions: the way to follow ranges that change while the program
// runs, such as files fetched again from time to time and published by
// an atomic.Pointer's Load. f is called on every [Policy.Check] (twice for
// an IPv6 address that carries an IPv4 one) and from any goroutine, so it
// must be cheap, must not block, and must be safe for concurrent use;
// the *GoogleRanges it returns must not be changed afterwards. A nil
// result, and a nil f, mean the embedded ranges of [DefaultPolicy]: the
// rule is never off through f (use [Policy.WithGoogleRanges] with nil
// for that). WithGoogleRangesFunc and WithGoogleRanges replace each
// other: the last call decides. p is not changed.
func (p *Policy) WithGoogleRangesFunc(f func() *GoogleRanges) *Policy {
	c := *p.orDefault()
	c.google, c.googleFunc, c.googleOff = nil, f, false
	return &c
}

// GoogleRanges returns a copy of the ranges p refuses (sharing their
// immutable set), or nil when the Google rule is off. For DefaultPolicy(),
// it is the embedded ranges of Google's services (see
// [EmbeddedGoogleRanges]); under [Policy.WithGoogleRangesFunc], the ranges
// its function returns now.
func (p *Policy) GoogleRanges() *GoogleRanges {
	g := p.orDefault().googleRanges()
	if g == nil {
		return nil
	}
	c := *g
	return &c
}

// Exceptions returns a copy of the exceptions to the Google rule: App
// Engine's, while the rule is on, and none when it is off.
func (p *Policy) Exceptions() []Exception {
	if p.orDefault().googleOff {
		return nil
	}
	return append([]Exception(nil), defaultExceptions...)
}

func addPrefixes(s *addrSet, prefixes []netip.Prefix) *addrSet {
	own := make([]netip.Prefix, 0, len(prefixes))
	for _, pfx := range prefixes {
		if !pfx.IsValid() {
			continue
		}
		// An IPv4-mapped prefix means its IPv4 addresses: addresses are
		// unmapped before they are checked.
		if a := pfx.Addr(); a.Is4In6() && pfx.Bits() >= 96 {
			pfx = netip.PrefixFrom(a.Unmap(), pfx.Bits()-96)
		}
		own = append(own, pfx)
	}
	return s.union(newAddrSet(own))
}

// Check reports whether a connection over network (tcp, tcp4, tcp6, udp,
// udp4, udp6) to addr, reached by dialing host (the name as the caller wrote
// it: a DNS name or an IP literal), is allowed. nil means allowed; every
// refusal is a *[DeniedError] and wraps [ErrDenied]. Check does not allocate
// when it allows (but for the rare check that reads the machine's
// addresses for [Policy.DenySelf]), and allocates only its error when it
// refuses.
func (p *Policy) Check(network, host string, addr netip.AddrPort) error {
	if v := p.orDefault().check(network, host, addr); v.rule != 0 {
		return p.refusal(network, host, addr, v)
	}
	return nil
}

// refusal returns Check's error for the verdict v.
func (p *Policy) refusal(network, host string, addr netip.AddrPort, v verdict) error {
	e := &DeniedError{Network: network, Host: host, Addr: addr, Rule: v.rule, Form: v.form, Embedded: v.embedded}
	switch v.rule {
	case RuleInvalidPolicy:
		e.Detail = strings.TrimPrefix(p.err.Error(), "sockets: ")
	case RuleSelf:
		if l := self.list.Load(); l != nil && l.err != nil {
			e.Detail = "this machine's addresses could not be read: " + l.err.Error()
		}
	}
	return e
}

// verdict is what check found: the refusing rule (0 when allowed) and, when
// the rule refused an IPv4 address carried in the IPv6 one checked, the
// form that carries it and that address (see [DeniedError]).
type verdict struct {
	rule     Rule
	form     Rule // the block of the carrying form, or 0
	embedded netip.Addr
}

// portRule returns the rule that refuses port over proto ("tcp" or "udp")
// whatever the address, or 0. It needs no address, so it can run before a
// name is resolved.
func portRule(proto string, port uint16) Rule {
	switch {
	case port == 0:
		return RulePort0
	case port == 25:
		return RuleSMTP
	case port == 21 && proto == "tcp":
		return RuleFTP
	}
	return 0
}

// check returns the refusing rule, or a zero verdict when allowed.
func (p *Policy) check(network, host string, addr netip.AddrPort) verdict {
	if p.err != nil {
		return verdict{rule: RuleInvalidPolicy} // fail closed
	}
	proto := dialhook.Protocol(network)
	if proto == "" {
		return verdict{rule: RuleNetwork}
	}
	a := addr.Addr()
	switch {
	case !a.IsValid():
		return verdict{rule: RuleMalformed}
	case a.Zone() != "":
		return verdict{rule: RuleZone}
	}
	if rule := portRule(proto, addr.Port()); rule != 0 {
		return verdict{rule: rule}
	}
	if p.ports != nil || p.allowHosts != nil || p.denyHosts != nil {
		if rule := p.listRule(host, a.Unmap(), addr.Port()); rule != 0 {
			return verdict{rule: rule} // policy_rules.go
		}
	}
	if a.Is4In6() {
		// The rules apply to the IPv4 address; the refusal says how it
		// was carried.
		a = a.Unmap()
		if v := p.addrCheck(proto, host, netip.AddrPortFrom(a, addr.Port())); v.rule != 0 {
			return verdict{rule: v.rule, form: RuleIPv4Mapped, embedded: a}
		}
		return verdict{}
	}
	return p.addrCheck(proto, host, addr)
}

// addrCheck applies the address rules (steps 6 to 11 of [Policy]) to an
// address that is unmapped and unzoned.
func (p *Policy) addrCheck(proto, host string, addr netip.AddrPort) verdict {
	a := addr.Addr()
	if p.deny.contains(a) {
		return verdict{rule: RuleDenyList}
	}
	if p.denySelf && selfAddrs().has(a) {
		return verdict{rule: RuleSelf}
	}
	// An IPv6 form is never more reachable than the IPv4 addresses it
	// carries, whatever the allow list says about the form.
	held := false // under a NAT64 prefix the policy knows
	if a.Is6() && (p.nat64 != nil || p.nat64Found != nil) {
		// The prefix says where the IPv4 address is (policy_rules.go).
		v, h, open := p.nat64Check(a)
		if v.rule != 0 {
			return v
		}
		if open {
			return verdict{} // step 8
		}
		held = h
	}
	if !held && a.Is6() {
		form, emb, n := embeddedIPv4(a)
		for _, v4 := range emb[:n] {
			if r := p.carriedRule(v4); r != 0 {
				return verdict{rule: r, form: form, embedded: v4}
			}
		}
	}
	if p.allow.contains(a) {
		return verdict{}
	}
	if a.Is4() && p.googleRanges() == embeddedServices() {
		switch r := defaultIPv4Table().rule(uint32of(a)); r {
		case 0:
			return verdict{}
		case RuleGoogle:
			for i := range defaultExceptions {
				if defaultExceptions[i].matches(proto, host, addr) {
					return verdict{}
				}
			}
			return verdict{rule: RuleGoogle}
		default:
			return verdict{rule: r}
		}
	}
	if rule := neverPublicSet().rule(a); rule != 0 {
		return verdict{rule: rule} // 0 for 6to4 carrying a public address
	}
	if g := p.googleRanges(); g != nil && g.set.contains(a) {
		for i := range defaultExceptions {
			if defaultExceptions[i].matches(proto, host, addr) {
				return verdict{}
			}
		}
		return verdict{rule: RuleGoogle}
	}
	return verdict{}
}

// carriedRule checks an IPv4 address carried inside an IPv6 one: the
// deny list, the machine's own addresses (DenySelf), the never-public
// table and Google's ranges. The allow list
// does not apply (an Allow of an IPv4 prefix opens those addresses, not
// their IPv6 forms), nor do the exceptions, which name exact addresses.
func (p *Policy) carriedRule(v4 netip.Addr) Rule {
	if p.deny.contains(v4) {
		return RuleDenyList
	}
	if p.denySelf && selfAddrs().has(v4) {
		return RuleSelf
	}
	if r := neverPublicSet().rule(v4); r != 0 {
		return r
	}
	if p.googleRanges().Contains(v4) {
		return RuleGoogle
	}
	return 0
}
