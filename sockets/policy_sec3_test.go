package sockets

// Security round three: names made of digits and dots, unusable host-list
// entries, and network-specific NAT64 prefixes (RULES.md section 3). These
// are pure Check tests: nothing here opens a socket or sends a packet.

import (
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
)

// secRefusal is what a row expects of Check: zero rule for allowed.
type secRefusal struct {
	rule     Rule
	form     Form
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
