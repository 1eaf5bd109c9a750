package sockets_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"testing"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
)

// refusal is what a row expects of Check: zero rule for allowed.
type refusal struct {
	rule     sockets.Rule
	form     sockets.Rule
	embedded string // the carried IPv4 address refused, or ""
}

// checkRefusal runs p.Check and compares its verdict with want.
func checkRefusal(t *testing.T, p *sockets.Policy, network, host, addr string, want refusal) {
	t.Helper()
	err := p.Check(network, host, netip.MustParseAddrPort(addr))
	if want.rule == 0 {
		if err != nil {
			t.Fatalf("Check(%s, %q, %s) = %v, want allowed", network, host, addr, err)
		}
		return
	}
	var de *sockets.DeniedError
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

// TestNAT64 holds the NAT64 opt-in (RFC 6052, RFC 8215) to its rule: a NAT64
// address is allowed only under a prefix opted in, and only when the IPv4
// address it carries is allowed by the same policy.
func TestNAT64(t *testing.T) {
	t.Parallel()
	def := sockets.DefaultPolicy()
	wk := def.WithNAT64()                                     // 64:ff9b::/96
	local := def.WithNAT64(pfx("64:ff9b:1:2::/96"))           // one local-use /96 (RFC 8215)
	both := def.WithNAT64(nat64WK(), pfx("64:ff9b:1:2::/96")) // well-known and local-use
	allowWK := def.Allow(pfx("64:ff9b::/96"))                 // the widening people try first
	allow10 := def.Allow(pfx("10.0.0.0/8")).WithNAT64()       // the carried address allowed explicitly
	denied := def.WithNAT64().Deny(pfx("93.184.216.0/24"))    // the carried address denied
	const (
		public     = "[64:ff9b::5db8:d822]:443"     // 93.184.216.34
		metadata   = "[64:ff9b::a9fe:a9fe]:80"      // 169.254.169.254 (RFC 3927)
		loopback   = "[64:ff9b::7f00:1]:80"         // 127.0.0.1 (RFC 1122)
		private    = "[64:ff9b::a00:1]:80"          // 10.0.0.1 (RFC 1918)
		doc        = "[64:ff9b::c000:201]:80"       // 192.0.2.1, TEST-NET-1 (RFC 5737)
		localPub   = "[64:ff9b:1:2::5db8:d822]:443" // 93.184.216.34 under the local-use /96
		localPriv  = "[64:ff9b:1:2::a00:1]:443"     // 10.0.0.1 under the local-use /96
		otherLocal = "[64:ff9b:1:3::5db8:d822]:443" // a local-use /96 not opted in
	)
	for _, c := range []struct {
		name string
		p    *sockets.Policy
		addr string
		want refusal
	}{
		// Off by default: the block refuses a public carried address.
		{"default/public", def, public, refusal{rule: sockets.RuleNAT64}},
		{"default/local public", def, localPub, refusal{rule: sockets.RuleNAT64Local}},
		{"default/metadata", def, metadata, refusal{sockets.RuleLinkLocal, sockets.RuleNAT64, "169.254.169.254"}},

		// Well-known prefix: the carried address decides.
		{"well-known/public", wk, public, refusal{}},
		{"well-known/metadata", wk, metadata, refusal{sockets.RuleLinkLocal, sockets.RuleNAT64, "169.254.169.254"}},
		{"well-known/loopback", wk, loopback, refusal{sockets.RuleLoopback, sockets.RuleNAT64, "127.0.0.1"}},
		{"well-known/private", wk, private, refusal{sockets.RulePrivate, sockets.RuleNAT64, "10.0.0.1"}},
		{"well-known/documentation", wk, doc, refusal{sockets.RuleDocumentation, sockets.RuleNAT64, "192.0.2.1"}},
		{"well-known/local-use not opted in", wk, localPub, refusal{rule: sockets.RuleNAT64Local}},

		// Local-use prefix: only the /96 named.
		{"local/public", local, localPub, refusal{}},
		{"local/private", local, localPriv, refusal{sockets.RulePrivate, sockets.RuleNAT64Local, "10.0.0.1"}},
		{"local/other /96", local, otherLocal, refusal{rule: sockets.RuleNAT64Local}},
		{"local/well-known not opted in", local, public, refusal{rule: sockets.RuleNAT64}},
		{"both/well-known public", both, public, refusal{}},
		{"both/local public", both, localPub, refusal{}},
		{"both/local metadata", both, "[64:ff9b:1:2::a9fe:a9fe]:80", refusal{sockets.RuleLinkLocal, sockets.RuleNAT64Local, "169.254.169.254"}},

		// Allow(64:ff9b::/96) opens public carried addresses only.
		{"allow 64:ff9b::/96/public", allowWK, public, refusal{}},
		{"allow 64:ff9b::/96/metadata", allowWK, metadata, refusal{sockets.RuleLinkLocal, sockets.RuleNAT64, "169.254.169.254"}},
		{"allow 64:ff9b::/96/loopback", allowWK, loopback, refusal{sockets.RuleLoopback, sockets.RuleNAT64, "127.0.0.1"}},
		{"allow 64:ff9b::/96/private", allowWK, private, refusal{sockets.RulePrivate, sockets.RuleNAT64, "10.0.0.1"}},

		// The carried address is checked by the policy's deny list too,
		// but never opened by its allow list.
		{"allow 10/8/private", allow10, private, refusal{sockets.RulePrivate, sockets.RuleNAT64, "10.0.0.1"}},
		{"allow 10/8/IPv4 itself", allow10, "10.0.0.1:80", refusal{}},
		{"allow 10/8/loopback", allow10, loopback, refusal{sockets.RuleLoopback, sockets.RuleNAT64, "127.0.0.1"}},
		{"deny/public", denied, public, refusal{sockets.RuleDenyList, sockets.RuleNAT64, "93.184.216.34"}},
		{"deny v6/public", wk.Deny(pfx("64:ff9b::5db8:d800/120")), public, refusal{rule: sockets.RuleDenyList}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			checkRefusal(t, c.p, "tcp", "", c.addr, c.want)
		})
	}
}

func nat64WK() netip.Prefix { return pfx("64:ff9b::/96") }

// TestNAT64Prefixes holds WithNAT64 to the prefixes it accepts: the
// well-known /96, prefixes inside or equal to 64:ff9b:1::/48, and
// network-specific prefixes of the RFC 6052 lengths; anything else is left
// out, and the policy's Err reports it (policy_sec3_test.go).
func TestNAT64Prefixes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		in   []netip.Prefix
		want []netip.Prefix
	}{
		{"none means well-known", nil, []netip.Prefix{nat64WK()}},
		{"well-known", []netip.Prefix{nat64WK()}, []netip.Prefix{nat64WK()}},
		{"local /96, masked", []netip.Prefix{pfx("64:ff9b:1:2::1/96")}, []netip.Prefix{pfx("64:ff9b:1:2::/96")}},
		{"duplicates once", []netip.Prefix{nat64WK(), nat64WK()}, []netip.Prefix{nat64WK()}},
		{"local /48 itself", []netip.Prefix{pfx("64:ff9b:1::/48")}, []netip.Prefix{pfx("64:ff9b:1::/48")}},
		{"well-known as /64", []netip.Prefix{pfx("64:ff9b::/64")}, nil},
		{"network-specific", []netip.Prefix{pfx("2001:db8:64::/96")}, []netip.Prefix{pfx("2001:db8:64::/96")}},
		{"IPv4", []netip.Prefix{pfx("10.0.0.0/8")}, nil},
		{"invalid", []netip.Prefix{{}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := sockets.DefaultPolicy().WithNAT64(c.in...).NAT64Prefixes()
			if len(got) != len(c.want) {
				t.Fatalf("NAT64Prefixes() = %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("NAT64Prefixes() = %v, want %v", got, c.want)
				}
			}
		})
	}
	if got := sockets.DefaultPolicy().NAT64Prefixes(); got != nil {
		t.Errorf("DefaultPolicy().NAT64Prefixes() = %v, want nil", got)
	}
	// Without the opt-in, an address under a network-specific prefix is an
	// ordinary IPv6 address (here in the documentation block); with it,
	// the address is the IPv4 address it carries (here a public one).
	checkRefusal(t, sockets.DefaultPolicy(), "tcp", "", "[2001:db8:64::5db8:d822]:443", refusal{rule: sockets.RuleDocumentation})
	checkRefusal(t, sockets.DefaultPolicy().WithNAT64(pfx("2001:db8:64::/96")), "tcp", "", "[2001:db8:64::5db8:d822]:443", refusal{})
}

// TestEmbeddedFormsNeverOpened holds the rule of RULES.md section 3: no
// Allow of any prefix opens an IPv6 form (IPv4-mapped, IPv4-compatible,
// NAT64, 6to4, Teredo) of a refused IPv4 address. Allow(::/0) and
// Allow(2000::/3) are the widest widenings of IPv6 there are.
func TestEmbeddedFormsNeverOpened(t *testing.T) {
	t.Parallel()
	policies := map[string]*sockets.Policy{
		"allow ::/0":           sockets.DefaultPolicy().Allow(pfx("::/0")),
		"allow 2000::/3":       sockets.DefaultPolicy().Allow(pfx("2000::/3")),
		"allow ::/0 and NAT64": sockets.DefaultPolicy().Allow(pfx("::/0")).WithNAT64(nat64WK(), pfx("64:ff9b:1::/96")),
	}
	for _, c := range []struct {
		name string
		addr string
		want refusal
	}{
		{"mapped 10.0.0.1", "[::ffff:10.0.0.1]:80", refusal{sockets.RulePrivate, sockets.RuleIPv4Mapped, "10.0.0.1"}},
		{"mapped 169.254.169.254", "[::ffff:169.254.169.254]:80", refusal{sockets.RuleLinkLocal, sockets.RuleIPv4Mapped, "169.254.169.254"}},
		{"compatible 127.0.0.1", "[::7f00:1]:80", refusal{sockets.RuleLoopback, sockets.RuleIPv4Compatible, "127.0.0.1"}},
		{"compatible 10.0.0.1", "[::a00:1]:80", refusal{sockets.RulePrivate, sockets.RuleIPv4Compatible, "10.0.0.1"}},
		{"NAT64 169.254.169.254", "[64:ff9b::a9fe:a9fe]:80", refusal{sockets.RuleLinkLocal, sockets.RuleNAT64, "169.254.169.254"}},
		{"NAT64 127.0.0.1", "[64:ff9b::7f00:1]:80", refusal{sockets.RuleLoopback, sockets.RuleNAT64, "127.0.0.1"}},
		{"NAT64 10.0.0.1", "[64:ff9b::a00:1]:80", refusal{sockets.RulePrivate, sockets.RuleNAT64, "10.0.0.1"}},
		{"NAT64 local 10.0.0.1", "[64:ff9b:1::a00:1]:80", refusal{sockets.RulePrivate, sockets.RuleNAT64Local, "10.0.0.1"}},
		{"6to4 10.0.0.1", "[2002:a00:1::]:80", refusal{sockets.RulePrivate, sockets.Rule6to4, "10.0.0.1"}},
		{"6to4 169.254.169.254", "[2002:a9fe:a9fe::1]:80", refusal{sockets.RuleLinkLocal, sockets.Rule6to4, "169.254.169.254"}},
		// Teredo (RFC 4380): the server in bits 32-63, the client's
		// address obfuscated (inverted) in the last 32 bits.
		{"Teredo server 10.0.0.1", "[2001:0:a00:1::5db8:d822]:80", refusal{sockets.RulePrivate, sockets.RuleTeredo, "10.0.0.1"}},
		{"Teredo client 127.0.0.1", "[2001:0:5db8:d822::80ff:fffe]:80", refusal{sockets.RuleLoopback, sockets.RuleTeredo, "127.0.0.1"}},
	} {
		for pname, p := range policies {
			t.Run(pname+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				checkRefusal(t, p, "tcp", "", c.addr, c.want)
			})
		}
	}
}

// TestEmbeddedFormsOfAllowedIPv4 documents what an Allow of an IPv4 prefix
// does to that address's IPv6 forms: the mapped form is the address
// itself and is opened; no other form is, NAT64 opt-in or not.
func TestEmbeddedFormsOfAllowedIPv4(t *testing.T) {
	t.Parallel()
	p := sockets.DefaultPolicy().Allow(pfx("10.0.0.0/8"), pfx("::/0")).WithNAT64()
	for _, c := range []struct {
		name string
		addr string
		want refusal
	}{
		{"IPv4", "10.0.0.1:80", refusal{}},
		{"mapped", "[::ffff:10.0.0.1]:80", refusal{}},
		{"compatible", "[::a00:1]:80", refusal{sockets.RulePrivate, sockets.RuleIPv4Compatible, "10.0.0.1"}},
		{"NAT64", "[64:ff9b::a00:1]:80", refusal{sockets.RulePrivate, sockets.RuleNAT64, "10.0.0.1"}},
		{"6to4", "[2002:a00:1::]:80", refusal{sockets.RulePrivate, sockets.Rule6to4, "10.0.0.1"}},
		{"Teredo", "[2001:0:a00:1::5db8:d822]:80", refusal{sockets.RulePrivate, sockets.RuleTeredo, "10.0.0.1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			checkRefusal(t, p, "tcp", "", c.addr, c.want)
		})
	}
}

// TestHostAndPortRules is the table of the host and port lists.
func TestHostAndPortRules(t *testing.T) {
	t.Parallel()
	def := sockets.DefaultPolicy()
	allow := def.AllowHosts("api.example.com", "*.cdn.example", "93.184.216.34", "2606:2800:220:1::1")
	deny := def.DenyHosts("Evil.Example.", "*.internal.example", "198.51.100.7")
	both := allow.DenyHosts("bad.cdn.example")
	ports := def.AllowPorts(443, 8443)
	const pub = "93.184.216.34:443"
	for _, c := range []struct {
		name    string
		p       *sockets.Policy
		network string
		host    string
		addr    string
		want    refusal
	}{
		// Allow list: exact names, normalised (case, one trailing dot).
		{"allow/exact", allow, "tcp", "api.example.com", pub, refusal{}},
		{"allow/exact upper case", allow, "tcp", "API.Example.COM", pub, refusal{}},
		{"allow/exact trailing dot", allow, "tcp", "api.example.com.", pub, refusal{}},
		{"allow/two trailing dots", allow, "tcp", "api.example.com..", pub, refusal{rule: sockets.RuleHostNotAllowed}},
		{"allow/parent not listed", allow, "tcp", "example.com", pub, refusal{rule: sockets.RuleHostNotAllowed}},
		{"allow/child of exact not listed", allow, "tcp", "x.api.example.com", pub, refusal{rule: sockets.RuleHostNotAllowed}},
		{"allow/look-alike suffix", allow, "tcp", "api.example.com.evil", pub, refusal{rule: sockets.RuleHostNotAllowed}},
		{"allow/unlisted", allow, "tcp", "other.example", pub, refusal{rule: sockets.RuleHostNotAllowed}},
		// *.suffix: any depth below, not the apex, not a look-alike.
		{"allow/suffix one level", allow, "tcp", "img.cdn.example", pub, refusal{}},
		{"allow/suffix two levels", allow, "tcp", "a.b.CDN.example", pub, refusal{}},
		{"allow/suffix apex", allow, "tcp", "cdn.example", pub, refusal{rule: sockets.RuleHostNotAllowed}},
		{"allow/suffix look-alike", allow, "tcp", "evilcdn.example", pub, refusal{rule: sockets.RuleHostNotAllowed}},
		// Unicode that folds to ASCII under Unicode rules does not match:
		// names compare ASCII case-insensitively only (RFC 4343).
		{"allow/long s", allow, "tcp", "\u017fpi.example.com", pub, refusal{rule: sockets.RuleHostNotAllowed}},
		// An allowed name still gets every address check.
		{"allow/name to private", allow, "tcp", "api.example.com", "10.0.0.1:443", refusal{rule: sockets.RulePrivate}},
		{"allow/name to loopback", allow, "tcp", "img.cdn.example", "127.0.0.1:443", refusal{rule: sockets.RuleLoopback}},
		{"allow/name port 25", allow, "tcp", "api.example.com", "93.184.216.34:25", refusal{rule: sockets.RuleSMTP}},
		// IP literals match listed literals, by address.
		{"allow/literal listed", allow, "tcp", "93.184.216.34", pub, refusal{}},
		{"allow/literal listed mapped", allow, "tcp", "::ffff:93.184.216.34", "[::ffff:93.184.216.34]:443", refusal{}},
		{"allow/literal v6 listed", allow, "tcp", "2606:2800:220:1::1", "[2606:2800:220:1::1]:443", refusal{}},
		{"allow/literal unlisted", allow, "tcp", "93.184.216.35", "93.184.216.35:443", refusal{rule: sockets.RuleHostNotAllowed}},
		{"allow/no host (datagram)", allow, "udp", "", "93.184.216.35:443", refusal{rule: sockets.RuleHostNotAllowed}},
		{"allow/no host listed", allow, "udp", "", pub, refusal{}},

		// Deny list.
		{"deny/exact normalised", deny, "tcp", "evil.example", pub, refusal{rule: sockets.RuleHostDenied}},
		{"deny/exact as written", deny, "tcp", "EVIL.example.", pub, refusal{rule: sockets.RuleHostDenied}},
		{"deny/suffix", deny, "tcp", "db.internal.example", pub, refusal{rule: sockets.RuleHostDenied}},
		{"deny/suffix apex", deny, "tcp", "internal.example", pub, refusal{}},
		{"deny/literal", deny, "tcp", "198.51.100.7", "198.51.100.7:443", refusal{rule: sockets.RuleHostDenied}},
		{"deny/other", deny, "tcp", "good.example", pub, refusal{}},
		{"deny/other to private", deny, "tcp", "good.example", "10.0.0.1:443", refusal{rule: sockets.RulePrivate}},
		{"both/deny wins", both, "tcp", "bad.cdn.example", pub, refusal{rule: sockets.RuleHostDenied}},
		{"both/allowed", both, "tcp", "ok.cdn.example", pub, refusal{}},

		// Port allow list.
		{"ports/listed", ports, "tcp", "x.example", pub, refusal{}},
		{"ports/listed udp", ports, "udp", "x.example", "93.184.216.34:8443", refusal{}},
		{"ports/unlisted", ports, "tcp", "x.example", "93.184.216.34:80", refusal{rule: sockets.RulePortNotAllowed}},
		{"ports/listed 25 stays refused", def.AllowPorts(25), "tcp", "x.example", "93.184.216.34:25", refusal{rule: sockets.RuleSMTP}},
		{"ports/none listed", def.AllowPorts(), "tcp", "x.example", pub, refusal{rule: sockets.RulePortNotAllowed}},
		{"ports/range low", def.AllowPortRange(8000, 8080), "tcp", "x.example", "93.184.216.34:8000", refusal{}},
		{"ports/range high", def.AllowPortRange(8000, 8080), "tcp", "x.example", "93.184.216.34:8080", refusal{}},
		{"ports/range outside", def.AllowPortRange(8000, 8080), "tcp", "x.example", "93.184.216.34:8081", refusal{rule: sockets.RulePortNotAllowed}},
		{"ports/range top", def.AllowPortRange(65535, 65535), "tcp", "x.example", "93.184.216.34:65535", refusal{}},
		{"ports/added", ports.AllowPorts(80), "tcp", "x.example", "93.184.216.34:80", refusal{}},

		// No list: every host, every port.
		{"default/any host", def, "tcp", "anything.example", pub, refusal{}},
		{"nil policy/any host", nil, "tcp", "anything.example", pub, refusal{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			checkRefusal(t, c.p, c.network, c.host, c.addr, c.want)
		})
	}
}

// TestListsAreCopies holds the host and port methods to Policy's promise:
// the receiver is never changed.
func TestListsAreCopies(t *testing.T) {
	t.Parallel()
	base := sockets.DefaultPolicy().AllowHosts("a.example")
	_ = base.AllowHosts("b.example")
	_ = base.DenyHosts("a.example")
	_ = base.AllowPorts(443)
	_ = base.WithNAT64()
	ap := netip.MustParseAddrPort("93.184.216.34:80")
	if err := base.Check("tcp", "a.example", ap); err != nil {
		t.Errorf("a.example after the copies: %v", err)
	}
	checkRefusal(t, base, "tcp", "b.example", "93.184.216.34:80", refusal{rule: sockets.RuleHostNotAllowed})
	checkRefusal(t, base, "tcp", "a.example", "[64:ff9b::5db8:d822]:80", refusal{rule: sockets.RuleNAT64})
}

// TestListsBeforeLookup proves that the host and port lists refuse a name
// before it is looked up and before any connection, and that an
// allow-listed name is still resolved and checked.
func TestListsBeforeLookup(t *testing.T) {
	t.Parallel()
	srv := lab.NewServer(t, func(_ context.Context, c net.Conn) { c.Close() })
	p := sockets.DefaultPolicy().
		AllowHosts("*.example.com").
		DenyHosts("admin.example.com").
		AllowPorts(443)
	for _, c := range []struct {
		name    string
		host    string
		port    uint16
		rule    sockets.Rule // 0: connects
		lookups int
	}{
		{"denied host", "admin.example.com", 443, sockets.RuleHostDenied, 0},
		{"host not allowed", "intranet.corp", 443, sockets.RuleHostNotAllowed, 0},
		{"port not allowed", "www.example.com", 80, sockets.RulePortNotAllowed, 0},
		{"smtp port", "www.example.com", 25, sockets.RuleSMTP, 0},
		{"allowed name, private answer", "private.example.com", 443, sockets.RulePrivate, 1},
		{"allowed name, public answer", "www.example.com", 443, 0, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			res := lab.NewResolver(map[string][]string{
				"admin.example.com":   {"93.184.216.34"},
				"intranet.corp":       {"93.184.216.34"},
				"www.example.com":     {"93.184.216.34"},
				"private.example.com": {"10.0.0.1"},
			})
			conn := &lab.Connector{Target: srv.Addr()}
			d := &sockets.Dialer{Policy: p, Resolver: res, Connect: conn.Connect}
			addr := net.JoinHostPort(c.host, itoa(c.port))
			nc, err := d.DialContext(t.Context(), "tcp", addr)
			if nc != nil {
				nc.Close()
			}
			if got := len(res.Lookups()); got != c.lookups {
				t.Errorf("lookups = %v, want %d", res.Lookups(), c.lookups)
			}
			if c.rule == 0 {
				if err != nil {
					t.Fatalf("DialContext(%s) = %v, want a connection", addr, err)
				}
				if got := conn.Attempts(); len(got) != 1 || got[0] != netip.MustParseAddrPort("93.184.216.34:443") {
					t.Errorf("attempts = %v, want [93.184.216.34:443]", got)
				}
				return
			}
			var de *sockets.DeniedError
			if !errors.As(err, &de) || de.Rule != c.rule {
				t.Fatalf("DialContext(%s) = %v, want a refusal for %s", addr, err, c.rule.Code())
			}
			if got := conn.Attempts(); len(got) != 0 {
				t.Errorf("attempts = %v, want none", got)
			}
		})
	}
}

func itoa(port uint16) string { return strconv.Itoa(int(port)) }

// TestPolicyFeaturesCheckDoesNotAllocate extends the allocation promise
// to policies with host and port lists and NAT64: an allowed Check costs
// nothing, whatever case the host is written in.
func TestPolicyFeaturesCheckDoesNotAllocate(t *testing.T) {
	p := sockets.DefaultPolicy().
		AllowHosts("www.example.com", "*.cdn.example", "93.184.216.34").
		DenyHosts("*.internal.example").
		AllowPorts(443).
		WithNAT64()
	for _, c := range []struct{ host, addr string }{
		{"www.example.com", "93.184.216.34:443"},
		{"WWW.Example.COM.", "93.184.216.34:443"},
		{"a.b.cdn.example", "93.184.216.34:443"},
		{"93.184.216.34", "93.184.216.34:443"},
		{"www.example.com", "[64:ff9b::5db8:d822]:443"},
	} {
		ap := netip.MustParseAddrPort(c.addr)
		if err := p.Check("tcp", c.host, ap); err != nil {
			t.Fatalf("Check(%q, %s) = %v, want allowed", c.host, c.addr, err)
		}
		if n := testing.AllocsPerRun(100, func() { _ = p.Check("tcp", c.host, ap) }); n != 0 {
			t.Errorf("Check(%q, %s): %v allocations, want 0", c.host, c.addr, n)
		}
	}
}

// BenchmarkCheckPolicyFeatures measures Check on a policy with host and
// port lists and NAT64, on allowed destinations (0 allocations).
func BenchmarkCheckPolicyFeatures(b *testing.B) {
	p := sockets.DefaultPolicy().
		AllowHosts("www.example.com", "*.cdn.example", "93.184.216.34").
		DenyHosts("*.internal.example").
		AllowPorts(443).
		WithNAT64()
	for _, c := range []struct{ name, host, addr string }{
		{"exact", "www.example.com", "93.184.216.34:443"},
		{"exact upper case", "WWW.Example.COM.", "93.184.216.34:443"},
		{"suffix", "a.b.cdn.example", "93.184.216.34:443"},
		{"literal", "93.184.216.34", "93.184.216.34:443"},
		{"nat64", "www.example.com", "[64:ff9b::5db8:d822]:443"},
	} {
		ap := netip.MustParseAddrPort(c.addr)
		if err := p.Check("tcp", c.host, ap); err != nil {
			b.Fatalf("%s: %v", c.name, err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = p.Check("tcp", c.host, ap)
			}
		})
	}
}
