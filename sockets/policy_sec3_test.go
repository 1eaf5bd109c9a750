package sockets

// Security round three: names made of digits and dots, unusable host-list
// entries, and network-specific NAT64 prefixes (RULES.md section 3). These
// are pure Check tests: nothing here opens a socket or sends a packet.

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// secRefusal is what a row expects of Check: zero rule for allowed.
type secRefusal struct {
	rule     Rule
	form     Rule
	embedded string // the carried IPv4 address refused, or ""
}

// secCheck runs p.Check and compares its verdict with want.
func secCheck(t *testing.T, p *Policy, network, host, addr string, want secRefusal) {
	t.Helper()
	err := p.Check(network, host, netip.MustParseAddrPort(addr))
	if want.rule == 0 {
		if err != nil {
			t.Fatalf("Check(%s, %q, %s) = %v, want allowed", network, host, addr, err)
		}
		return
	}
	var de *DeniedError
	if !errors.As(err, &de) {
		t.Fatalf("Check(%s, %q, %s) = %v, want a *DeniedError for %s", network, host, addr, err, want.rule.Code())
	}
	var emb netip.Addr
	if want.embedded != "" {
		emb = netip.MustParseAddr(want.embedded)
	}
	if de.Rule != want.rule || de.Form != want.form || de.Embedded != emb {
		t.Fatalf("Check(%s, %q, %s) refused for %s, form %s, embedded %v; want %s, form %s, embedded %v",
			network, host, addr, de.Rule.Code(), de.Form.Code(), de.Embedded, want.rule.Code(), want.form.Code(), emb)
	}
}

// TestHostListNumericNames holds the host lists to the resolver's reading
// of a host made of digits and dots: it is an IP literal only when
// netip.ParseAddr parses it (as Go's resolver decides), and otherwise a
// name, matched against the listed names. "10.0.0.1.5" has five labels: no
// parser reads it as an address, and a resolver looks it up as a name, so
// a deny list that names it must refuse it, and an allow list that lists
// only the address it resolves to must not let it through.
func TestHostListNumericNames(t *testing.T) {
	t.Parallel()
	def := DefaultPolicy()
	deny := def.DenyHosts("10.0.0.1.5")
	allowName := def.AllowHosts("10.0.0.1.5")
	allowAddr := def.AllowHosts("93.184.215.15")
	denyAddr := def.DenyHosts("93.184.215.15")
	const pub = "93.184.215.15:443"
	for _, c := range []struct {
		name string
		p    *Policy
		host string
		addr string
		want secRefusal
	}{
		{"deny/five labels", deny, "10.0.0.1.5", pub, secRefusal{rule: RuleHostDenied}},
		{"deny/five labels, trailing dot", deny, "10.0.0.1.5.", pub, secRefusal{rule: RuleHostDenied}},
		{"deny/other numeric name", deny, "10.0.0.1.6", pub, secRefusal{}},
		{"allow name/listed", allowName, "10.0.0.1.5", pub, secRefusal{}},
		{"allow name/listed, trailing dot", allowName, "10.0.0.1.5.", pub, secRefusal{}},
		{"allow name/literal not listed", allowName, "93.184.215.15", pub, secRefusal{rule: RuleHostNotAllowed}},
		// A name is not matched by the address it resolved to.
		{"allow address/numeric name", allowAddr, "10.0.0.1.5", pub, secRefusal{rule: RuleHostNotAllowed}},
		{"allow address/literal", allowAddr, "93.184.215.15", pub, secRefusal{}},
		{"deny address/numeric name", denyAddr, "10.0.0.1.5", pub, secRefusal{}},
		{"deny address/literal", denyAddr, "93.184.215.15", pub, secRefusal{rule: RuleHostDenied}},
		// What netip does not parse is no literal: a leading zero, a
		// trailing dot, three or six labels, an octet over 255.
		{"allow address/leading zero", allowAddr, "093.184.215.15", pub, secRefusal{rule: RuleHostNotAllowed}},
		{"allow address/trailing dot", allowAddr, "93.184.215.15.", pub, secRefusal{rule: RuleHostNotAllowed}},
		{"allow address/three labels", allowAddr, "93.184.215", pub, secRefusal{rule: RuleHostNotAllowed}},
		{"allow address/six labels", allowAddr, "93.184.215.15.1.2", pub, secRefusal{rule: RuleHostNotAllowed}},
		{"allow address/octet over 255", allowAddr, "93.184.215.256", pub, secRefusal{rule: RuleHostNotAllowed}},
		// What it parses is a literal, matched by address.
		{"allow address/mapped literal", allowAddr, "::ffff:93.184.215.15", "[::ffff:93.184.215.15]:443", secRefusal{}},
		{"deny address/mapped literal", denyAddr, "::ffff:93.184.215.15", "[::ffff:93.184.215.15]:443", secRefusal{rule: RuleHostDenied}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			secCheck(t, c.p, "tcp", c.host, c.addr, c.want)
		})
	}
}

// secResolver answers every name with one public address and counts its
// lookups. It is a Resolver of this file's own: no packet is sent.
type secResolver struct{ lookups atomic.Int32 }

func (r *secResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	r.lookups.Add(1)
	return []netip.Addr{netip.MustParseAddr("93.184.215.15")}, nil
}

// TestHostListNumericNameBeforeLookup proves that the Dialer refuses a
// denied numeric name before it is looked up, as it does any denied name.
// Resolve makes no connection.
func TestHostListNumericNameBeforeLookup(t *testing.T) {
	t.Parallel()
	for _, host := range []string{"10.0.0.1.5", "10.0.0.1.5."} {
		res := &secResolver{}
		d := &Dialer{Policy: DefaultPolicy().DenyHosts("10.0.0.1.5"), Resolver: res}
		_, err := d.Resolve(t.Context(), "tcp", host, 443)
		var de *DeniedError
		if !errors.As(err, &de) || de.Rule != RuleHostDenied {
			t.Errorf("Resolve(%q) = %v, want a refusal for host_denied", host, err)
		}
		if n := res.lookups.Load(); n != 0 {
			t.Errorf("Resolve(%q): %d lookups, want none", host, n)
		}
	}
}

// TestHostLiteralMatchesParseAddr holds hostLiteral to netip.ParseAddr:
// they agree on every string of digits, dots and a few other bytes up to
// six bytes long, and on random longer ones, and hostLiteral allocates
// nothing for a host without a colon. (Not parallel: AllocsPerRun.)
func TestHostLiteralMatchesParseAddr(t *testing.T) {
	check := func(s string) {
		t.Helper()
		want, err := netip.ParseAddr(s)
		got, ok := hostLiteral(s)
		if ok != (err == nil) || got != want {
			t.Fatalf("hostLiteral(%q) = %v, %v; netip.ParseAddr = %v, %v", s, got, ok, want, err)
		}
	}
	const alphabet = "0125.:x"
	var b []byte
	var walk func(depth int)
	walk = func(depth int) {
		check(string(b))
		if depth == 6 {
			return
		}
		for i := 0; i < len(alphabet); i++ {
			b = append(b, alphabet[i])
			walk(depth + 1)
			b = b[:len(b)-1]
		}
	}
	walk(0)
	// Longer strings of digits and dots, from a fixed seed.
	const digits = "0123456789...."
	x := uint64(0x9e3779b97f4a7c15)
	for range 200000 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		n := 7 + int(x%12)
		s := make([]byte, n)
		for i := range s {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			s[i] = digits[x%uint64(len(digits))]
		}
		check(string(s))
	}
	for _, s := range []string{"255.255.255.255", "256.0.0.1", "1.2.3.04", "0.0.0.0", "00.0.0.0", "1.2.3.4%eth0", "::ffff:1.2.3.4", "fe80::1%eth0", "10.0.0.1.5", "10.0.0.1."} {
		check(s)
	}
	for _, s := range []string{"93.184.215.15", "10.0.0.1.5", "www.example.com", "1.2.3", "010.0.0.1"} {
		if n := testing.AllocsPerRun(100, func() { _, _ = hostLiteral(s) }); n != 0 {
			t.Errorf("hostLiteral(%q): %v allocations, want 0", s, n)
		}
	}
}

// FuzzHostLiteral is the differential check of hostLiteral against
// netip.ParseAddr, from a seed corpus of literals and near-literals.
func FuzzHostLiteral(f *testing.F) {
	for _, s := range []string{
		"1.2.3.4", "10.0.0.1.5", "10.0.0.1.", "010.0.0.1", "1.2.3", "256.1.1.1",
		"::1", "::ffff:10.0.0.1", "fe80::1%eth0", "1.2.3.4:80", "", ".", "1..2.3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := netip.ParseAddr(s)
		got, ok := hostLiteral(s)
		if ok != (err == nil) || got != want {
			t.Fatalf("hostLiteral(%q) = %v, %v; netip.ParseAddr = %v, %v", s, got, ok, want, err)
		}
	})
}

// TestHostListBadEntries holds AllowHosts and DenyHosts to RULES.md
// section 3: an entry that can match nothing is an error, reported by Err,
// and a policy that holds one refuses everything.
func TestHostListBadEntries(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, entry string }{
		{"unicode name", "bücher.example"},
		{"unicode look-alike", "\u017fmtp.gmail.com"}, // LATIN SMALL LETTER LONG S
		{"host and port", "example.com:443"},
		{"IPv4 and port", "93.184.215.15:443"},
		{"IPv6 and port", "[2001:db8::1]:443"},
		{"URL", "https://example.com/"},
		{"URL without path", "https://example.com"},
		{"CIDR", "10.0.0.0/8"},
		{"IPv6 CIDR", "2001:db8::/32"},
		{"empty", ""},
		{"zoned literal", "fe80::1%eth0"},
		{"bracketed literal", "[2001:db8::1]"},
		{"leading dot", ".example.com"},
		{"wildcard without dot", "*example.com"},
		{"inner wildcard", "a.*.example.com"},
		{"double wildcard", "*.*.example.com"},
		{"wildcard alone", "*"},
		{"wildcard and dot", "*."},
		{"two trailing dots", "example.com.."},
		{"space", "exa mple.com"},
		{"empty label", "a..example.com"},
		{"overlong label", strings.Repeat("a", 64) + ".example"},
		{"inet_aton short form", "10.1"},
		{"inet_aton hexadecimal", "0x0a.0.0.1"},
		{"inet_aton leading zero", "010.0.0.1"},
		{"literal with trailing dot", "10.0.0.1."},
		{"numeric suffix pattern", "*.0.0.1"},
	} {
		for _, method := range []string{"AllowHosts", "DenyHosts"} {
			t.Run(method+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				base := DefaultPolicy()
				var p *Policy
				if method == "AllowHosts" {
					p = base.AllowHosts("ok.example", c.entry, "other.example")
				} else {
					p = base.DenyHosts("ok.example", c.entry, "other.example")
				}
				err := p.Err()
				if err == nil {
					t.Fatalf("%s(%q): Err() = nil, want an error", method, c.entry)
				}
				if msg := err.Error(); !strings.HasPrefix(msg, "sockets: "+method+": ") || !strings.Contains(msg, strconv.Quote(c.entry)) {
					t.Errorf("Err() = %q, want it to name %s and the entry %q", msg, method, c.entry)
				}
				if base.Err() != nil {
					t.Errorf("the receiver changed: Err() = %v", base.Err())
				}
				// Fail closed: every connection, whatever its host.
				for _, h := range []string{"ok.example", "elsewhere.example", "93.184.215.15", ""} {
					secCheck(t, p, "tcp", h, "93.184.215.15:443", secRefusal{rule: RuleInvalidPolicy})
				}
				cerr := p.Check("udp", "", netip.MustParseAddrPort("93.184.215.15:53"))
				var de *DeniedError
				if !errors.As(cerr, &de) || !errors.Is(cerr, ErrDenied) || "sockets: "+de.Detail != err.Error() || de.ErrorType() != "invalid_policy" {
					t.Errorf("Check = %#v, want a DeniedError for invalid_policy with Err's text as Detail", cerr)
				}
			})
		}
	}
}

// TestHostListGoodEntries: what the lists take, and Err stays nil.
func TestHostListGoodEntries(t *testing.T) {
	t.Parallel()
	good := []string{
		"api.example.com", "API.Example.COM.", "*.example.com", "*.Example.com.",
		"10.0.0.1.5", "10.0.0.1.5.", "_dmarc.example.com", "xn--bcher-kva.example",
		"localhost", "93.184.215.15", "2001:db8::1", "::ffff:93.184.215.15",
	}
	for _, p := range []*Policy{DefaultPolicy().AllowHosts(good...), DefaultPolicy().DenyHosts(good...), (*Policy)(nil).AllowHosts(good...)} {
		if err := p.Err(); err != nil {
			t.Errorf("Err() = %v, want nil", err)
		}
	}
	if err := (*Policy)(nil).Err(); err != nil {
		t.Errorf("(*Policy)(nil).Err() = %v", err)
	}
	if err := (&Policy{}).Err(); err != nil {
		t.Errorf("(&Policy{}).Err() = %v", err)
	}
	if err := PublicPolicy().Err(); err != nil {
		t.Errorf("PublicPolicy().Err() = %v", err)
	}
}

// TestPolicyErrKeptByCopies: the first unusable entry stays with every
// policy made from the one that holds it, and a later one does not
// replace it.
func TestPolicyErrKeptByCopies(t *testing.T) {
	t.Parallel()
	bad := DefaultPolicy().DenyHosts("https://first.example")
	first := bad.Err()
	for name, p := range map[string]*Policy{
		"AllowHosts":       bad.AllowHosts("x.example"),
		"second bad entry": bad.AllowHosts("second.example:80"),
		"bad prefix later": bad.WithNAT64(netip.MustParsePrefix("2001:db8::/33")),
		"AllowPorts":       bad.AllowPorts(443),
		"Allow":            bad.Allow(netip.MustParsePrefix("10.0.0.0/8")),
		"Deny":             bad.Deny(netip.MustParsePrefix("10.0.0.0/8")),
		"WithGoogleRanges": bad.WithGoogleRanges(nil),
		"WithNAT64":        bad.WithNAT64(),
		"discovered NAT64": bad.WithDiscoveredNAT64(netip.MustParsePrefix("2600:1::/96")),
	} {
		if p.Err() != first {
			t.Errorf("%s: Err() = %v, want %v", name, p.Err(), first)
		}
		secCheck(t, p, "tcp", "x.example", "93.184.215.15:443", secRefusal{rule: RuleInvalidPolicy})
	}
}

// TestPolicyErrBeforeLookup proves that a Dialer with a policy that holds
// an unusable entry refuses before any lookup.
func TestPolicyErrBeforeLookup(t *testing.T) {
	t.Parallel()
	bad := DefaultPolicy().AllowHosts("www.example.com", "api.example.com:443")
	for name, c := range map[string]struct {
		dialer *Policy
	}{
		"dialer": {bad},
	} {
		for _, host := range []string{"www.example.com", "93.184.215.15"} {
			res := &secResolver{}
			d := &Dialer{Policy: c.dialer, Resolver: res}
			ctx := t.Context()
			_, err := d.Resolve(ctx, "tcp", host, 443)
			var de *DeniedError
			if !errors.As(err, &de) || de.Rule != RuleInvalidPolicy {
				t.Errorf("%s: Resolve(%q) = %v, want a refusal for invalid_policy", name, host, err)
			}
			if n := res.lookups.Load(); n != 0 {
				t.Errorf("%s: Resolve(%q): %d lookups, want none", name, host, n)
			}
		}
	}
}

// TestRuleInvalidPolicy: the new rule's code and text.
func TestRuleInvalidPolicy(t *testing.T) {
	t.Parallel()
	if got := RuleInvalidPolicy.Code(); got != "invalid_policy" {
		t.Errorf("Code() = %q", got)
	}
	if got := RuleInvalidPolicy.String(); !strings.Contains(got, "Policy.Err") {
		t.Errorf("String() = %q", got)
	}
}

// rfc6052Embed is an independent writer of RFC 6052 section 2.2's table:
// it places the 32 bits of v4 bit by bit after the first bits of pfx,
// leaving bits 64 to 71 (the u octet) zero.
func rfc6052Embed(pfx netip.Prefix, v4 netip.Addr) netip.Addr {
	b := pfx.Masked().Addr().As16()
	v := v4.As4()
	pos := pfx.Bits()
	for i := 0; i < 32; i++ {
		if pos == 64 {
			pos = 72
		}
		if v[i/8]&(0x80>>(i%8)) != 0 {
			b[pos/8] |= 0x80 >> (pos % 8)
		}
		pos++
	}
	return netip.AddrFrom16(b)
}

// TestNAT64RFC6052Examples is RFC 6052 section 2.4's table: 192.0.2.33
// under a network-specific prefix of every length. The carried address is
// read as the table places it, and refused for what it is
// (documentation, RFC 5737), with WithNAT64 and with a discovered prefix.
func TestNAT64RFC6052Examples(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ prefix, addr string }{
		{"2001:db8::/32", "2001:db8:c000:221::"},
		{"2001:db8:100::/40", "2001:db8:1c0:2:21::"},
		{"2001:db8:122::/48", "2001:db8:122:c000:2:2100::"},
		{"2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"},
		{"2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100::"},
		{"2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"},
	} {
		t.Run(c.prefix, func(t *testing.T) {
			t.Parallel()
			pfx, a := netip.MustParsePrefix(c.prefix), netip.MustParseAddr(c.addr)
			want := netip.MustParseAddr("192.0.2.33")
			if got := nat64IPv4(a, pfx.Bits()); got != want {
				t.Errorf("nat64IPv4(%v, %d) = %v, want %v", a, pfx.Bits(), got, want)
			}
			if got := rfc6052Embed(pfx, want); got != a {
				t.Errorf("the test's writer: %v, want %v", got, a)
			}
			opted := DefaultPolicy().WithNAT64(pfx)
			if err := opted.Err(); err != nil {
				t.Fatalf("WithNAT64(%v): %v", pfx, err)
			}
			if got := opted.NAT64Prefixes(); len(got) != 1 || got[0] != pfx {
				t.Errorf("NAT64Prefixes() = %v, want [%v]", got, pfx)
			}
			found := DefaultPolicy().WithDiscoveredNAT64(pfx)
			ap := netip.AddrPortFrom(a, 443).String()
			doc := secRefusal{RuleDocumentation, RuleNAT64, "192.0.2.33"}
			secCheck(t, opted, "tcp", "", ap, doc)
			secCheck(t, found, "tcp", "", ap, doc)
			secCheck(t, PublicPolicy().WithNAT64(pfx), "tcp", "", ap, doc)
		})
	}
}

// TestNAT64NetworkSpecific holds network-specific prefixes (RFC 6052
// section 2.3) to the rule of RULES.md section 3: on a network whose
// gateway translates 2600:1::/96, [2600:1::a00:1] reaches 10.0.0.1, and a
// policy that knows the prefix, named or discovered, refuses it as
// 10.0.0.1; a public carried address is allowed.
func TestNAT64NetworkSpecific(t *testing.T) {
	t.Parallel()
	private := netip.MustParseAddr("10.0.0.1")
	public := netip.MustParseAddr("93.184.216.34")
	metadata := netip.MustParseAddr("169.254.169.254")
	google := netip.MustParseAddr("8.8.8.8") // Google's, and no exception for a carried address
	for _, bits := range []int{32, 40, 48, 56, 64, 96} {
		pfx := netip.PrefixFrom(netip.MustParseAddr("2600:1::"), bits)
		ula := netip.PrefixFrom(netip.MustParseAddr("fd00:64::"), bits)
		local := netip.PrefixFrom(netip.MustParseAddr("64:ff9b:1:2::"), max(bits, 64))
		at := func(p netip.Prefix, v4 netip.Addr, port uint16) string {
			return netip.AddrPortFrom(rfc6052Embed(p, v4), port).String()
		}
		def, pub := DefaultPolicy(), PublicPolicy()
		for _, c := range []struct {
			name string
			p    *Policy
			addr string
			want secRefusal
		}{
			{"named/private", def.WithNAT64(pfx), at(pfx, private, 80), secRefusal{RulePrivate, RuleNAT64, "10.0.0.1"}},
			{"named/metadata", def.WithNAT64(pfx), at(pfx, metadata, 80), secRefusal{RuleLinkLocal, RuleNAT64, "169.254.169.254"}},
			{"named/public", def.WithNAT64(pfx), at(pfx, public, 443), secRefusal{}},
			{"named/google", def.WithNAT64(pfx), at(pfx, google, 53), secRefusal{RuleGoogle, RuleNAT64, "8.8.8.8"}},
			{"public policy, named/private", pub.WithNAT64(pfx), at(pfx, private, 80), secRefusal{RulePrivate, RuleNAT64, "10.0.0.1"}},
			{"public policy, named/google", pub.WithNAT64(pfx), at(pfx, google, 53), secRefusal{}},
			{"named and well-known/private", def.WithNAT64(nat64WellKnown, pfx), at(pfx, private, 80), secRefusal{RulePrivate, RuleNAT64, "10.0.0.1"}},
			// No Allow opens the carried address; the deny list reaches it.
			{"named, allow 10/8/private", def.Allow(netip.MustParsePrefix("10.0.0.0/8")).WithNAT64(pfx), at(pfx, private, 80), secRefusal{RulePrivate, RuleNAT64, "10.0.0.1"}},
			{"named, allow prefix/private", def.Allow(pfx).WithNAT64(pfx), at(pfx, private, 80), secRefusal{RulePrivate, RuleNAT64, "10.0.0.1"}},
			{"named, deny/public", def.WithNAT64(pfx).Deny(netip.MustParsePrefix("93.184.216.0/24")), at(pfx, public, 443), secRefusal{RuleDenyList, RuleNAT64, "93.184.216.34"}},
			// Discovered: checked by the carried address without the opt-in.
			{"discovered/private", def.WithDiscoveredNAT64(pfx), at(pfx, private, 80), secRefusal{RulePrivate, RuleNAT64, "10.0.0.1"}},
			{"discovered, public policy/private", pub.WithDiscoveredNAT64(pfx), at(pfx, private, 80), secRefusal{RulePrivate, RuleNAT64, "10.0.0.1"}},
			{"discovered/public", def.WithDiscoveredNAT64(pfx), at(pfx, public, 443), secRefusal{}},
			// A unique local prefix opens only when named.
			{"ULA named/public", def.WithNAT64(ula), at(ula, public, 443), secRefusal{}},
			{"ULA named/private", def.WithNAT64(ula), at(ula, private, 80), secRefusal{RulePrivate, RuleNAT64, "10.0.0.1"}},
			{"ULA discovered/public", def.WithDiscoveredNAT64(ula), at(ula, public, 443), secRefusal{rule: RuleUniqueLocal}},
			{"ULA discovered/private", def.WithDiscoveredNAT64(ula), at(ula, private, 80), secRefusal{RulePrivate, RuleNAT64, "10.0.0.1"}},
			// A local-use prefix longer than /48 is read at its length.
			{"local named/public", def.WithNAT64(local), at(local, public, 443), secRefusal{}},
			{"local named/private", def.WithNAT64(local), at(local, private, 80), secRefusal{RulePrivate, RuleNAT64Local, "10.0.0.1"}},
			{"local discovered/public", def.WithDiscoveredNAT64(local), at(local, public, 443), secRefusal{rule: RuleNAT64Local}},
			{"local discovered/private", def.WithDiscoveredNAT64(local), at(local, private, 80), secRefusal{RulePrivate, RuleNAT64Local, "10.0.0.1"}},
			// Discovered and named: named opens.
			{"both/public", def.WithDiscoveredNAT64(ula).WithNAT64(ula), at(ula, public, 443), secRefusal{}},
			// Addresses outside the prefix are untouched.
			{"named/IPv4 itself", def.WithNAT64(pfx), "10.0.0.1:80", secRefusal{rule: RulePrivate}},
			{"named/other IPv6", def.WithNAT64(pfx), "[2606:4700:4700::1111]:443", secRefusal{}},
		} {
			t.Run(pfx.String()+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				if err := c.p.Err(); err != nil {
					t.Fatal(err)
				}
				secCheck(t, c.p, "tcp", "", c.addr, c.want)
			})
		}
	}
}

// TestNAT64UOctetSkipped: bits 64 to 71 are not part of the carried
// address, whatever they hold (RFC 6052 section 2.2).
func TestNAT64UOctetSkipped(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy().WithNAT64(netip.MustParsePrefix("2600:1::/64"))
	// u octet 0xff, then 10.0.0.1 in bits 72-103.
	secCheck(t, p, "tcp", "", "[2600:1::ff0a:0:100:0]:80", secRefusal{RulePrivate, RuleNAT64, "10.0.0.1"})
	// /56: 10 in bits 56-63, u octet 0xff, 0.0.1 in bits 72-95.
	if got := nat64IPv4(netip.MustParseAddr("2600:1:0:a:ff00:1::"), 56); got != netip.MustParseAddr("10.0.0.1") {
		t.Errorf("nat64IPv4 /56 = %v, want 10.0.0.1", got)
	}
}

// TestNAT64NestedPrefixes: an address under two prefixes the policy knows
// is checked by what it carries under each, and refused if either refuses.
func TestNAT64NestedPrefixes(t *testing.T) {
	t.Parallel()
	outer, inner := netip.MustParsePrefix("2600:1::/32"), netip.MustParsePrefix("2600:1::/64")
	a := rfc6052Embed(inner, netip.MustParseAddr("93.184.216.34")) // under /32: 0.0.0.0
	for name, p := range map[string]*Policy{
		"named":      DefaultPolicy().WithNAT64(outer, inner),
		"discovered": DefaultPolicy().WithNAT64(inner).WithDiscoveredNAT64(outer),
	} {
		secCheck(t, p, "tcp", name, netip.AddrPortFrom(a, 443).String(), secRefusal{RuleUnspecified, RuleNAT64, "0.0.0.0"})
	}
}

// TestNAT64PrefixErrors holds WithNAT64 and the discovery to the prefixes
// they take: RFC 6052's lengths, in global unicast or unique local space,
// the well-known /96 and local-use prefixes inside 64:ff9b:1::/48; any
// other is an error (Err) that makes the policy refuse everything.
func TestNAT64PrefixErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		prefix string // "" for the zero Prefix
		ok     bool
	}{
		{"64:ff9b::/96", true},
		{"64:ff9b:1::/48", true},
		{"64:ff9b:1:2::/64", true},
		{"64:ff9b:1:2::/96", true},
		{"2600:1::/32", true},
		{"2600:1::/40", true},
		{"2600:1::/48", true},
		{"2600:1::/56", true},
		{"2600:1::/64", true},
		{"2600:1::/96", true},
		{"2600:1::1/96", true}, // masked
		{"fd00:64::/96", true},
		{"2001:db8::/32", true},
		{"", false},
		{"2600:1::/33", false},
		{"2600:1::/80", false},
		{"2600:1::/128", false},
		{"::/0", false},
		{"10.0.0.0/8", false},
		{"::ffff:0:0/96", false},
		{"::/96", false},
		{"64:ff9b::/64", false},
		{"64:ff9b::/32", false},
		{"64:ff9b::/48", false},
		{"64:ff9b:1::/40", false},
		{"2002::/32", false},
		{"2002:a00:1::/48", false},
		{"2001::/32", false},
		{"2001:0:a00::/48", false},
		{"fe80::/64", false},
		{"ff00::/32", false},
		{"100::/64", false},
	} {
		t.Run(c.prefix, func(t *testing.T) {
			t.Parallel()
			var pfx netip.Prefix
			if c.prefix != "" {
				pfx = netip.MustParsePrefix(c.prefix)
			}
			for _, p := range []*Policy{DefaultPolicy().WithNAT64(pfx), DefaultPolicy().WithDiscoveredNAT64(pfx)} {
				err := p.Err()
				if c.ok {
					if err != nil {
						t.Fatalf("Err() = %v, want nil", err)
					}
					secCheck(t, p, "tcp", "x.example", "93.184.215.15:443", secRefusal{})
					continue
				}
				if err == nil {
					t.Fatalf("Err() = nil, want an error")
				}
				if !strings.Contains(err.Error(), pfx.String()) {
					t.Errorf("Err() = %q, want it to name %v", err, pfx)
				}
				secCheck(t, p, "tcp", "x.example", "93.184.215.15:443", secRefusal{rule: RuleInvalidPolicy})
				if got := p.NAT64Prefixes(); got != nil {
					t.Errorf("NAT64Prefixes() = %v, want nil", got)
				}
			}
		})
	}
	// The discovered prefixes open nothing, so they are not NAT64Prefixes.
	if got := DefaultPolicy().WithDiscoveredNAT64(netip.MustParsePrefix("2600:1::/96")).NAT64Prefixes(); got != nil {
		t.Errorf("NAT64Prefixes() after discovery = %v, want nil", got)
	}
}

// TestNAT64NetworkSpecificDoesNotAllocate extends Check's allocation
// promise to network-specific prefixes.
func TestNAT64NetworkSpecificDoesNotAllocate(t *testing.T) {
	pfx := netip.MustParsePrefix("2600:1::/64")
	ap := netip.AddrPortFrom(rfc6052Embed(pfx, netip.MustParseAddr("93.184.216.34")), 443)
	for name, p := range map[string]*Policy{
		"named":      DefaultPolicy().WithNAT64(pfx),
		"discovered": DefaultPolicy().WithDiscoveredNAT64(pfx),
	} {
		if err := p.Check("tcp", "www.example.com", ap); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n := testing.AllocsPerRun(100, func() { _ = p.Check("tcp", "www.example.com", ap) }); n != 0 {
			t.Errorf("%s: %v allocations, want 0", name, n)
		}
	}
}

// TestAllowDenyInvalidPrefix: an invalid prefix given to Allow or Deny is
// reported by Err, as an unusable host-list entry is, and the policy
// refuses everything: a deny list never denies less than it was given.
func TestAllowDenyInvalidPrefix(t *testing.T) {
	t.Parallel()
	for name, p := range map[string]*Policy{
		"Allow": DefaultPolicy().Allow(netip.MustParsePrefix("192.0.2.0/24"), netip.Prefix{}),
		"Deny":  DefaultPolicy().Deny(netip.Prefix{}, netip.MustParsePrefix("93.184.216.0/24")),
	} {
		if err := p.Err(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: Err() = %v, want an error naming %s", name, err, name)
		}
		var de *DeniedError
		if err := p.Check("tcp", "", netip.MustParseAddrPort("1.1.1.1:443")); !errors.As(err, &de) || de.Rule != RuleInvalidPolicy {
			t.Errorf("%s: Check = %v, want a refusal for invalid_policy", name, err)
		}
	}
	if err := DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32")).Deny(netip.MustParsePrefix("10.0.0.0/8")).Err(); err != nil {
		t.Errorf("valid prefixes: Err() = %v", err)
	}
}
