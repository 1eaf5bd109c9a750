package sockets_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
)

// synth64 is what a DNS64 resolver answers for the IPv4 address v4 under
// the NAT64 prefix pfx: RFC 6052 section 2.2's figure 1, written out one
// length at a time (the u octet, byte 8, stays zero, and so does the
// suffix).
func synth64(pfx netip.Prefix, v4 netip.Addr) netip.Addr {
	b := pfx.Masked().Addr().As16()
	v := v4.As4()
	switch pfx.Bits() {
	case 32:
		copy(b[4:8], v[:])
	case 40:
		copy(b[5:8], v[:3])
		b[9] = v[3]
	case 48:
		copy(b[6:8], v[:2])
		copy(b[9:11], v[2:])
	case 56:
		b[7] = v[0]
		copy(b[9:12], v[1:])
	case 64:
		copy(b[9:13], v[:])
	case 96:
		copy(b[12:16], v[:])
	default:
		panic("synth64: length " + pfx.String())
	}
	return netip.AddrFrom16(b)
}

var (
	wka170 = netip.MustParseAddr("192.0.0.170")
	wka171 = netip.MustParseAddr("192.0.0.171")
)

// TestSynth64 holds the test's writer to RFC 6052 section 2.4's examples
// (192.0.2.33 under a prefix of each length).
func TestSynth64(t *testing.T) {
	t.Parallel()
	v4 := netip.MustParseAddr("192.0.2.33")
	for _, c := range []struct{ pfx, want string }{
		{"2001:db8::/32", "2001:db8:c000:221::"},
		{"2001:db8:100::/40", "2001:db8:1c0:2:21::"},
		{"2001:db8:122::/48", "2001:db8:122:c000:2:2100::"},
		{"2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"},
		{"2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"},
		{"2001:db8:122:344::/96", "2001:db8:122:344::c000:221"},
	} {
		if got := synth64(netip.MustParsePrefix(c.pfx), v4); got != netip.MustParseAddr(c.want) {
			t.Errorf("synth64(%s, %v) = %v, want %s", c.pfx, v4, got, c.want)
		}
	}
}

// dns64 returns a table resolver that answers ipv4only.arpa as a DNS64
// resolver does under the prefixes: the two well-known addresses under
// each.
func dns64(prefixes ...netip.Prefix) *lab.Resolver {
	var answers []string
	for _, p := range prefixes {
		answers = append(answers, synth64(p, wka170).String(), synth64(p, wka171).String())
	}
	return lab.NewResolver(map[string][]string{"ipv4only.arpa": answers})
}

// TestDiscoverNAT64 finds the prefix of every RFC 6052 length from the
// synthesized answers, through the resolver given, and the policy the
// prefix is applied to reads the addresses under it: the IPv4 address
// carried is checked, nothing is opened.
func TestDiscoverNAT64(t *testing.T) {
	t.Parallel()
	var (
		private  = netip.MustParseAddr("10.0.0.1")
		metadata = netip.MustParseAddr("169.254.169.254")
		public   = netip.MustParseAddr("93.184.216.34")
	)
	for _, c := range []struct {
		pfx  string
		form sockets.Rule // the form's block in a refusal of a carried address
		// publicRule is the rule for the public address under the
		// prefix: 0 when the IPv6 address is public itself.
		publicRule sockets.Rule
	}{
		{"2600:1::/32", sockets.RuleNAT64, 0},
		{"2600:1:100::/40", sockets.RuleNAT64, 0},
		{"2600:1:122::/48", sockets.RuleNAT64, 0},
		{"2600:1:122:300::/56", sockets.RuleNAT64, 0},
		{"2600:1:122:344::/64", sockets.RuleNAT64, 0},
		{"2600:1:122:344::/96", sockets.RuleNAT64, 0},
		{"fd00:64::/96", sockets.RuleNAT64, sockets.RuleUniqueLocal},         // a ULA prefix
		{"fd00:64:1::/48", sockets.RuleNAT64, sockets.RuleUniqueLocal},       // a ULA prefix, another length
		{"64:ff9b:1:2::/96", sockets.RuleNAT64Local, sockets.RuleNAT64Local}, // local use (RFC 8215)
		{"64:ff9b::/96", sockets.RuleNAT64, sockets.RuleNAT64},               // the well-known prefix
	} {
		t.Run(c.pfx, func(t *testing.T) {
			t.Parallel()
			pfx := netip.MustParsePrefix(c.pfx)
			r := dns64(pfx)
			got, err := sockets.DiscoverNAT64(t.Context(), r)
			if err != nil || !slices.Equal(got, []netip.Prefix{pfx}) {
				t.Fatalf("DiscoverNAT64 = %v, %v; want [%v]", got, err, pfx)
			}
			if calls := r.Calls(); len(calls) != 1 || calls[0] != (lab.Lookup{Network: "ip6", Host: "ipv4only.arpa"}) {
				t.Errorf("lookups %v, want one of ipv4only.arpa over ip6", calls)
			}
			for name, p := range map[string]*sockets.Policy{
				"DefaultPolicy": sockets.DefaultPolicy().WithDiscoveredNAT64(got...),
				"PublicPolicy":  sockets.PublicPolicy().WithDiscoveredNAT64(got...),
			} {
				if err := p.Err(); err != nil {
					t.Fatalf("%s: Err() = %v", name, err)
				}
				for _, v4 := range []struct {
					a    netip.Addr
					rule sockets.Rule
				}{{private, sockets.RulePrivate}, {metadata, sockets.RuleLinkLocal}} {
					ap := netip.AddrPortFrom(synth64(pfx, v4.a), 80).String()
					checkRefusal(t, p, "tcp", "", ap, refusal{v4.rule, c.form, v4.a.String()})
				}
				// Nothing opened: a public address under the prefix is
				// the IPv6 address it is.
				ap := netip.AddrPortFrom(synth64(pfx, public), 443).String()
				checkRefusal(t, p, "tcp", "", ap, refusal{rule: c.publicRule})
			}
			// Without the discovered prefix, a network-specific one is
			// not read: the address is an ordinary IPv6 one.
			if c.publicRule == 0 {
				ap := netip.AddrPortFrom(synth64(pfx, private), 80).String()
				checkRefusal(t, sockets.DefaultPolicy(), "tcp", "", ap, refusal{})
			}
		})
	}
}

// TestDiscoverNAT64Answers covers what the resolver may answer.
func TestDiscoverNAT64Answers(t *testing.T) {
	t.Parallel()
	p1 := netip.MustParsePrefix("2600:1::/96")
	p2 := netip.MustParsePrefix("2600:2:100::/40")
	addr := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	for _, c := range []struct {
		name    string
		answers []netip.Addr
		want    []netip.Prefix
		wantErr bool
	}{
		{"one address", []netip.Addr{synth64(p1, wka170)}, []netip.Prefix{p1}, false},
		{"the other address alone", []netip.Addr{synth64(p1, wka171)}, []netip.Prefix{p1}, false},
		{"two prefixes, in answer order", []netip.Addr{synth64(p2, wka170), synth64(p1, wka170), synth64(p2, wka171), synth64(p1, wka171)}, []netip.Prefix{p2, p1}, false},
		{"IPv4 answers only: no DNS64", []netip.Addr{wka170, wka171}, nil, false},
		{"IPv4-mapped answers are IPv4 ones", []netip.Addr{addr("::ffff:192.0.0.170")}, nil, false},
		{"an answer without either address", []netip.Addr{addr("2600:1::1")}, nil, true},
		{"junk beside a good answer", []netip.Addr{addr("2600:1::1"), synth64(p1, wka170)}, []netip.Prefix{p1}, false},
		// RFC 6052 section 2.2: the u octet is zero. 192.0.0.170 at the
		// /64 position behind a u octet of 1 is no synthesized address.
		{"u octet set", []netip.Addr{addr("2600:1:0:0:1c0:0:aa00:0")}, nil, true},
		// 192.0.0.170 at both /32 and /96: ambiguous alone ...
		{"ambiguous alone", []netip.Addr{addr("2600:1:c000:aa::c000:aa")}, nil, true},
		// ... decided by a second answer that holds 192.0.0.171 at /96
		// under the same prefix (RFC 7050's second address).
		{"decided by 192.0.0.171", []netip.Addr{addr("2600:1:c000:aa::c000:aa"), addr("2600:1:c000:aa::c000:ab")}, []netip.Prefix{netip.MustParsePrefix("2600:1:c000:aa::/96")}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := &lab.Resolver{Raw: true}
			r.SetFunc("ipv4only.arpa", lab.Fixed(c.answers...))
			got, err := sockets.DiscoverNAT64(t.Context(), r)
			if (err != nil) != c.wantErr || !slices.Equal(got, c.want) {
				t.Fatalf("DiscoverNAT64 = %v, %v; want %v, error %v", got, err, c.want, c.wantErr)
			}
			if err != nil && (errors.Is(err, sockets.ErrDenied) || !strings.HasPrefix(err.Error(), "sockets: ")) {
				t.Errorf("error %q", err)
			}
		})
	}
}

// TestDiscoverNAT64Failures: no such name means no DNS64 (no prefix, no
// error); any other failure is a *LookupError.
func TestDiscoverNAT64Failures(t *testing.T) {
	t.Parallel()
	// The name is not in the table: the resolver says no such host.
	if got, err := sockets.DiscoverNAT64(t.Context(), lab.NewResolver(nil)); got != nil || err != nil {
		t.Errorf("no such host: %v, %v; want nothing", got, err)
	}

	fail := &net.DNSError{Err: "server misbehaving", Name: "ipv4only.arpa", IsTemporary: true}
	r := &lab.Resolver{}
	r.SetFunc("ipv4only.arpa", func(context.Context, string) ([]netip.Addr, error) { return nil, fail })
	got, err := sockets.DiscoverNAT64(t.Context(), r)
	var le *sockets.LookupError
	if got != nil || !errors.As(err, &le) || le.Host != "ipv4only.arpa" || !errors.Is(err, fail) {
		t.Errorf("server failure: %v, %v; want a *LookupError wrapping %v", got, err, fail)
	}

	r = &lab.Resolver{}
	r.SetFunc("ipv4only.arpa", lab.Hang)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	got, err = sockets.DiscoverNAT64(ctx, r)
	if got != nil || !errors.As(err, &le) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout: %v, %v; want a *LookupError matching context.DeadlineExceeded", got, err)
	}
}

// TestWithDiscoveredNAT64Err: a discovered prefix the policy cannot read
// is an error naming the method, and the policy refuses everything while
// it holds it; the prefixes of several calls add up.
func TestWithDiscoveredNAT64Err(t *testing.T) {
	t.Parallel()
	// A resolver that answers under Teredo's prefix: found, but not a
	// prefix WithNAT64 takes.
	teredo := netip.MustParsePrefix("2001:0:1::/48")
	got, err := sockets.DiscoverNAT64(t.Context(), dns64(teredo))
	if err != nil || !slices.Equal(got, []netip.Prefix{teredo}) {
		t.Fatalf("DiscoverNAT64 = %v, %v", got, err)
	}
	p := sockets.DefaultPolicy().WithDiscoveredNAT64(got...)
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "WithDiscoveredNAT64") || !strings.Contains(err.Error(), "2001:0:1::/48") {
		t.Errorf("Err() = %v, want one naming WithDiscoveredNAT64 and the prefix", err)
	}
	checkRefusal(t, p, "tcp", "", "93.184.216.34:443", refusal{rule: sockets.RuleInvalidPolicy})

	a, b := netip.MustParsePrefix("2600:1::/96"), netip.MustParsePrefix("2600:2::/64")
	both := sockets.DefaultPolicy().WithDiscoveredNAT64(a).WithDiscoveredNAT64(b, a)
	for _, pfx := range []netip.Prefix{a, b} {
		ap := netip.AddrPortFrom(synth64(pfx, netip.MustParseAddr("10.0.0.1")), 80).String()
		checkRefusal(t, both, "tcp", "", ap, refusal{sockets.RulePrivate, sockets.RuleNAT64, "10.0.0.1"})
	}
	// Discovered prefixes are not opted in: NAT64Prefixes lists the
	// prefixes WithNAT64 opened only.
	if n := both.NAT64Prefixes(); n != nil {
		t.Errorf("NAT64Prefixes() = %v, want none", n)
	}
}
