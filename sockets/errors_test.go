package sockets_test

import (
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/outbound-go/outbound/sockets"
)

// ruleCodes is every rule with its code. The codes are documented as
// stable: a change to this table breaks the logs and metrics of every
// caller, and must not happen to a published code.
var ruleCodes = []struct {
	rule sockets.Rule
	code string
}{
	{sockets.RuleNetwork, "network"},
	{sockets.RuleListen, "listen"},
	{sockets.RuleBind, "bind"},
	{sockets.RuleMalformed, "malformed"},
	{sockets.RuleZone, "zone"},
	{sockets.RulePort0, "port_0"},
	{sockets.RuleSMTP, "smtp_port"},
	{sockets.RuleFTP, "ftp_port"},
	{sockets.RuleGoogle, "google"},
	{sockets.RuleDenyList, "deny_list"},
	{sockets.RuleSelf, "self"},
	{sockets.RuleHostDenied, "host_denied"},
	{sockets.RuleHostNotAllowed, "host_not_allowed"},
	{sockets.RulePortNotAllowed, "port_not_allowed"},
	{sockets.RuleProxyNetwork, "proxy_network"},
	{sockets.RuleScheme, "scheme"},
	{sockets.RuleMethod, "method"},
	{sockets.RulePort, "port"},
	{sockets.RuleUnspecified, "unspecified"},
	{sockets.RuleLoopback, "loopback"},
	{sockets.RulePrivate, "private"},
	{sockets.RuleCGNAT, "cgnat"},
	{sockets.RuleLinkLocal, "link_local"},
	{sockets.RuleIETFProtocol, "ietf_protocol"},
	{sockets.RuleDocumentation, "documentation"},
	{sockets.Rule6to4Relay, "6to4_relay"},
	{sockets.RuleBenchmarking, "benchmarking"},
	{sockets.RuleMulticast, "multicast"},
	{sockets.RuleReserved, "reserved"},
	{sockets.RuleBroadcast, "broadcast"},
	{sockets.RuleIPv4Mapped, "ipv4_mapped"},
	{sockets.RuleIPv4Compatible, "ipv4_compatible"},
	{sockets.RuleNAT64, "nat64"},
	{sockets.RuleNAT64Local, "nat64_local"},
	{sockets.RuleDiscard, "discard"},
	{sockets.RuleDummy, "dummy"},
	{sockets.RuleSRv6, "srv6"},
	{sockets.RuleUniqueLocal, "unique_local"},
	{sockets.RuleSiteLocal, "site_local"},
	{sockets.RuleTeredo, "teredo"},
	{sockets.RuleORCHID, "orchid"},
	{sockets.RuleNotGlobalUnicast, "not_global_unicast"},
	{sockets.Rule6to4, "6to4"},
	{sockets.RuleInvalidPolicy, "invalid_policy"},
}

var lowerSnake = regexp.MustCompile(`^[a-z0-9]+(_[a-z0-9]+)*$`)

// TestRuleCodes holds every rule to its code, and the set to being closed:
// every value with a code is in the table above, no two share a code, and
// each has readable text of its own.
func TestRuleCodes(t *testing.T) {
	t.Parallel()
	codes, texts := map[string]sockets.Rule{}, map[string]sockets.Rule{}
	for _, c := range ruleCodes {
		if got := c.rule.Code(); got != c.code {
			t.Errorf("%v: Code() = %q, want %q", c.rule, got, c.code)
		}
		if !lowerSnake.MatchString(c.code) {
			t.Errorf("code %q is not lower_snake", c.code)
		}
		if r, dup := codes[c.code]; dup {
			t.Errorf("rules %d and %d share the code %q", r, c.rule, c.code)
		}
		codes[c.code] = c.rule
		text := c.rule.String()
		if text == "" || strings.HasPrefix(text, "rule(") {
			t.Errorf("%s: String() = %q", c.code, text)
		}
		if r, dup := texts[text]; dup {
			t.Errorf("rules %d and %d share the text %q", r, c.rule, text)
		}
		texts[text] = c.rule
	}
	// The set is closed: the values with a code are exactly the table's.
	n := 0
	for r := range 256 {
		if sockets.Rule(r).Code() != "" {
			n++
			if codes[sockets.Rule(r).Code()] != sockets.Rule(r) {
				t.Errorf("Rule(%d) has code %q, not in the table", r, sockets.Rule(r).Code())
			}
		}
	}
	if n != len(ruleCodes) {
		t.Errorf("%d values have a code, the table has %d rules", n, len(ruleCodes))
	}
	// The zero Rule and values past the last are not rules.
	for _, r := range []sockets.Rule{0, 255} {
		if r.Code() != "" || !strings.HasPrefix(r.String(), "rule(") {
			t.Errorf("Rule(%d): Code() = %q, String() = %q; want no code", r, r.Code(), r.String())
		}
	}
	// The block rules say which RFC is behind them.
	for _, b := range sockets.NeverPublic() {
		if !strings.Contains(b.Rule.String(), "RFC ") {
			t.Errorf("%v: rule text %q names no RFC", b.Prefix, b.Rule)
		}
	}
}

// TestFormRules holds the rules that name, in DeniedError.Form, the
// IPv6 forms that carry an IPv4 address: their codes and texts, which
// the message's "carried in" shows, and Rule6to4, which names a form and
// refuses nothing itself.
func TestFormRules(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		form       sockets.Rule
		code, text string
		addr       string // an address of the form that carries a refused IPv4 address
	}{
		{sockets.RuleIPv4Mapped, "ipv4_mapped", "IPv4-mapped (RFC 4291)", "[::ffff:10.0.0.1]:80"},
		{sockets.RuleIPv4Compatible, "ipv4_compatible", "IPv4-compatible, deprecated (RFC 4291)", "[::10.0.0.1]:80"},
		{sockets.RuleNAT64, "nat64", "NAT64 (RFC 6052)", "[64:ff9b::a00:1]:80"},
		{sockets.RuleNAT64Local, "nat64_local", "NAT64 local-use (RFC 8215)", "[64:ff9b:1::a00:1]:80"},
		{sockets.Rule6to4, "6to4", "6to4 (RFC 3056)", "[2002:a00:1::]:80"},
		{sockets.RuleTeredo, "teredo", "Teredo (RFC 4380)", "[2001:0:a00:1::]:80"},
	} {
		if c.form.Code() != c.code || c.form.String() != c.text {
			t.Errorf("%s: %q %q, want %q %q", c.code, c.form.Code(), c.form.String(), c.code, c.text)
		}
		var de *sockets.DeniedError
		err := sockets.DefaultPolicy().Check("tcp", "", netip.MustParseAddrPort(c.addr))
		if !errors.As(err, &de) || de.Rule != sockets.RulePrivate || de.Form != c.form || de.Embedded != netip.MustParseAddr("10.0.0.1") {
			t.Errorf("Check(%s) = %v, want private with form %s", c.addr, err, c.code)
			continue
		}
		if want := "refused: private (RFC 1918), 10.0.0.1 carried in " + c.text; !strings.HasSuffix(err.Error(), want) {
			t.Errorf("Check(%s) = %q, want it to end in %q", c.addr, err, want)
		}
	}
	// No address is refused for 6to4 itself: a 6to4 address of a public
	// IPv4 address is allowed, and one of a refused address is refused
	// for that address's rule.
	if err := sockets.DefaultPolicy().Check("tcp", "", netip.MustParseAddrPort("[2002:101:101::1]:443")); err != nil {
		t.Errorf("6to4 of 1.1.1.1: %v", err)
	}
	var zero sockets.DeniedError
	if zero.Form != 0 {
		t.Error("the zero DeniedError's Form is not zero")
	}
	if err := sockets.DefaultPolicy().Check("tcp", "", netip.MustParseAddrPort("10.0.0.1:80")); err != nil {
		var de *sockets.DeniedError
		if !errors.As(err, &de) || de.Form != 0 || de.Embedded.IsValid() || strings.Contains(err.Error(), "carried") {
			t.Errorf("a refusal of the address checked: %v, Form %v", err, de.Form)
		}
	}
}

// TestDeniedErrorType checks the value OpenTelemetry's error.type reads:
// the rule's code, and the semantic conventions' fallback "_OTHER" when
// there is no rule.
func TestDeniedErrorType(t *testing.T) {
	t.Parallel()
	p := sockets.DefaultPolicy()
	for _, c := range []struct {
		err  error
		want string
	}{
		{p.Check("tcp", "", netip.MustParseAddrPort("10.0.0.1:443")), "private"},
		{p.Check("tcp", "", netip.MustParseAddrPort("1.1.1.1:25")), "smtp_port"},
		{p.Check("tcp", "", netip.MustParseAddrPort("[2002:7f00:1::]:443")), "loopback"},
		{p.Check("tcp", "", netip.MustParseAddrPort("142.250.0.1:443")), "google"},
		{p.Check("unix", "", netip.AddrPort{}), "network"},
		{&sockets.DeniedError{Rule: sockets.RuleScheme}, "scheme"},
		{&sockets.DeniedError{}, "_OTHER"},
		{&sockets.DeniedError{Rule: 250}, "_OTHER"},
		{(*sockets.DeniedError)(nil), "_OTHER"},
	} {
		// Found through the chain, as semconv.ErrorType finds it.
		var typed interface{ ErrorType() string }
		if !errors.As(c.err, &typed) {
			t.Fatalf("%v has no ErrorType method", c.err)
		}
		if got := typed.ErrorType(); got != c.want {
			t.Errorf("%v: ErrorType() = %q, want %q", c.err, got, c.want)
		}
	}
}

// TestDeniedErrorRedacted checks the message for whoever asked for the
// connection: the rule and what the caller wrote, never an address the
// caller did not give or a detail.
func TestDeniedErrorRedacted(t *testing.T) {
	t.Parallel()
	p := sockets.DefaultPolicy()
	for _, c := range []struct {
		name     string
		err      *sockets.DeniedError
		want     string
		withheld []string // must not appear; all of them appear in Error()
	}{
		{"a name resolved to a private address",
			check(t, p, "tcp", "intranet.example", "10.1.2.3:80"),
			`sockets: tcp to "intranet.example" refused: private (RFC 1918)`,
			[]string{"10.1.2.3"}},
		{"a name resolved to the 6to4 form of a loopback address",
			check(t, p, "tcp6", "sneaky.example", "[2002:7f00:1::5]:443"),
			`sockets: tcp6 to "sneaky.example" refused: loopback (RFC 1122, RFC 4291)`,
			[]string{"2002:7f00:1::5", "127.0.0.1", "6to4"}},
		{"a name resolved to Google",
			check(t, p, "tcp", "evil.example", gmail+":587"),
			`sockets: tcp to "evil.example" refused: google range`,
			[]string{gmail}},
		{"a literal, as the caller wrote it",
			check(t, p, "tcp", "10.0.0.1", "10.0.0.1:80"),
			`sockets: tcp to "10.0.0.1" refused: private (RFC 1918)`,
			nil},
		{"no host",
			check(t, p, "udp", "", "10.0.0.1:53"),
			`sockets: udp refused: private (RFC 1918)`,
			[]string{"10.0.0.1"}},
		{"a detail that names the checked address",
			&sockets.DeniedError{Network: "tcp", Host: "x.example", Addr: netip.MustParseAddrPort("1.1.1.1:80"), Rule: sockets.RuleMalformed, Detail: "connect address differs from the checked address 1.1.1.1:80"},
			`sockets: tcp to "x.example" refused: malformed address`,
			[]string{"1.1.1.1", "differs"}},
		{"a fetch-service rule",
			&sockets.DeniedError{Network: "tcp", Host: "example.com", Rule: sockets.RuleScheme, Detail: `"ftp"`},
			`sockets: tcp to "example.com" refused: scheme not allowed (only http and https)`,
			[]string{"ftp"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := c.err.Redacted()
			if got != c.want {
				t.Errorf("Redacted() = %s\nwant         %s", got, c.want)
			}
			for _, w := range c.withheld {
				if !strings.Contains(c.err.Error(), w) {
					t.Fatalf("Error() %q lacks %q: the row proves nothing", c.err.Error(), w)
				}
				if strings.Contains(got, w) {
					t.Errorf("Redacted() %q shows %q", got, w)
				}
			}
		})
	}
	if got := (*sockets.DeniedError)(nil).Redacted(); got != "<nil>" {
		t.Errorf("nil Redacted() = %q", got)
	}
}

// check returns the refusal of Check, failing the test if it allows.
func check(t *testing.T, p *sockets.Policy, network, host, addr string) *sockets.DeniedError {
	t.Helper()
	var de *sockets.DeniedError
	if err := p.Check(network, host, netip.MustParseAddrPort(addr)); !errors.As(err, &de) {
		t.Fatalf("Check(%q, %q, %s) = %v, want a refusal", network, host, addr, err)
	}
	return de
}

// TestCheckRefusalAllocatesOnce holds a refusal to one allocation, its
// error: finding the rule, the form and the carried address costs none.
func TestCheckRefusalAllocatesOnce(t *testing.T) {
	p := sockets.DefaultPolicy()
	for _, c := range []struct{ network, host, addr string }{
		{"tcp", "intranet.example", "10.0.0.1:443"},
		{"tcp", "www.google.com", "142.250.0.1:443"},
		{"tcp", "x.example", "[2001:0:a00:1::]:443"},     // Teredo carrying private
		{"tcp", "x.example", "[2002:a9fe:a9fe::]:443"},   // 6to4 carrying link-local
		{"tcp", "x.example", "[::ffff:127.0.0.1]:443"},   // IPv4-mapped loopback
		{"tcp", "x.example", "[fe80::1]:443"},            // link-local
		{"tcp", "x.example", "[4000::1]:443"},            // not global unicast
		{"tcp", "x.example", "[2001:db8::1]:443"},        // documentation
		{"tcp", "x.example", "1.1.1.1:25"},               // port
		{"udp", "x.example", "[64:ff9b::808:808]:443"},   // NAT64 carrying Google
		{"tcp", "x.example", "[64:ff9b:1::101:101]:443"}, // NAT64 local-use, public
	} {
		ap := netip.MustParseAddrPort(c.addr)
		if p.Check(c.network, c.host, ap) == nil {
			t.Fatalf("%s allowed", c.addr)
		}
		if n := testing.AllocsPerRun(100, func() { _ = p.Check(c.network, c.host, ap) }); n != 1 {
			t.Errorf("%s: %v allocations per refusal, want 1", c.addr, n)
		}
	}
}
