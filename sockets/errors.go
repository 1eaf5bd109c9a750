package sockets

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ErrDenied is matched by every refusal of the policy and of the [Dialer]:
// errors.Is(err, ErrDenied) reports whether err is a policy refusal. A
// refusal is final: callers must not retry it.
var ErrDenied = errors.New("sockets: denied by policy")

// Rule is the rule that refused a connection: a closed set of small
// integers, one constant per rule, so that callers can switch on it.
//
// [Rule.Code] is a short lower_snake name for logs and metrics (such as
// "private" or "smtp_port"); the codes are stable: a code, once published,
// keeps its meaning and spelling. [Rule.String] is text a person reads in
// a log line, with the RFC or registry behind the rule (such as
// "private (RFC 1918)"); it may be reworded. The integer values are not
// stable across versions: compare with the constants, and record the code.
// The zero Rule is no rule, and no refusal carries it.
//
// Address blocks of the never-public table (IANA's special-purpose
// registries) carry the rules from [RuleUnspecified] to
// [RuleNotGlobalUnicast]; several blocks may
// share one (three blocks are [RulePrivate]). The blocks of the IPv6 forms
// that carry IPv4 addresses also name the form in [DeniedError.Form]
// ([RuleIPv4Mapped], [RuleIPv4Compatible], [RuleNAT64], [RuleNAT64Local],
// [RuleTeredo], and [Rule6to4], which names a form only). [RuleScheme], [RuleMethod]
// and [RulePort] are the fetch service's rules (package urlfetch), and
// RuleScheme is the sockets backend's too (package transport).
type Rule uint8

// The rules. Each one's code is in the comment beside it.
const (
	_ Rule = iota // the zero Rule is no rule

	// Rules that are not about the address.
	RuleNetwork   // "network": a network other than tcp, tcp4, tcp6, udp, udp4, udp6
	RuleListen    // "listen": listening sockets are not allowed
	RuleBind      // "bind": binding to anything but the unspecified address with port 0
	RuleMalformed // "malformed": an address that cannot be parsed or checked
	RuleZone      // "zone": an address with a zone (fe80::1%eth0)
	RulePort0     // "port_0": port 0
	RuleSMTP      // "smtp_port": port 25, plain SMTP
	RuleFTP       // "ftp_port": TCP port 21, FTP
	RuleGoogle    // "google": Google's services' ranges
	RuleDenyList  // "deny_list": the policy's deny list (Policy.Deny)
	RuleSelf      // "self": an address of this machine's own interfaces (Policy.DenySelf)

	// The policy's host and port lists: they refuse a name before it is
	// looked up.
	RuleHostDenied     // "host_denied": a host on the policy's host deny list (Policy.DenyHosts)
	RuleHostNotAllowed // "host_not_allowed": a host not on the policy's host allow list (Policy.AllowHosts)
	RulePortNotAllowed // "port_not_allowed": a port not on the policy's port allow list (Policy.AllowPorts)

	// RuleInvalidPolicy ("invalid_policy") refuses every connection
	// checked against a policy that holds an entry it cannot use (see
	// [Policy.Err]): the policy fails closed instead of dropping it.
	RuleInvalidPolicy

	// RuleProxyNetwork ("proxy_network") refuses a dial over UDP through
	// a [Dialer] that has a [Dialer.Proxy]: HTTP CONNECT tunnels TCP only,
	// and a datagram sent around the proxy would leave by a way the proxy
	// was named to close.
	RuleProxyNetwork

	// The fetch service's rules: they refuse a request before anything is
	// sent.
	RuleScheme // "scheme": a URL scheme other than http and https
	RuleMethod // "method": a method other than GET, POST, HEAD, PUT, DELETE, PATCH
	RulePort   // "port": a port outside 80-90, 440-450, 1024-65535

	// The never-public table (IANA special-purpose registries).
	RuleUnspecified      // "unspecified": 0.0.0.0/8 (this network), ::
	RuleLoopback         // "loopback": 127.0.0.0/8, ::1
	RulePrivate          // "private": 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16
	RuleCGNAT            // "cgnat": 100.64.0.0/10, shared address space
	RuleLinkLocal        // "link_local": 169.254.0.0/16, fe80::/10
	RuleIETFProtocol     // "ietf_protocol": 192.0.0.0/24, 2001::/23
	RuleDocumentation    // "documentation": TEST-NET-1, -2, -3, 2001:db8::/32, 3fff::/20
	Rule6to4Relay        // "6to4_relay": 192.88.99.0/24
	RuleBenchmarking     // "benchmarking": 198.18.0.0/15, 2001:2::/48
	RuleMulticast        // "multicast": 224.0.0.0/4, ff00::/8
	RuleReserved         // "reserved": 240.0.0.0/4 (class E)
	RuleBroadcast        // "broadcast": 255.255.255.255
	RuleIPv4Mapped       // "ipv4_mapped": ::ffff:0:0/96 (checked unmapped; see DeniedError.Form)
	RuleIPv4Compatible   // "ipv4_compatible": ::/96
	RuleNAT64            // "nat64": 64:ff9b::/96
	RuleNAT64Local       // "nat64_local": 64:ff9b:1::/48
	RuleDiscard          // "discard": 100::/64
	RuleDummy            // "dummy": 100:0:0:1::/64
	RuleSRv6             // "srv6": 5f00::/16
	RuleUniqueLocal      // "unique_local": fc00::/7 (ULA)
	RuleSiteLocal        // "site_local": fec0::/10
	RuleTeredo           // "teredo": 2001::/32
	RuleORCHID           // "orchid": 2001:10::/28, 2001:20::/28
	RuleNotGlobalUnicast // "not_global_unicast": IPv6 outside 2000::/3 with no block of its own

	// Rule6to4 ("6to4") names 2002::/16 (RFC 3056) in [DeniedError.Form]
	// only: a 6to4 address is refused for the IPv4 address it carries,
	// never for its block, so no refusal has it as its Rule.
	Rule6to4

	numRules // one past the last rule
)

// ruleNames holds each rule's code and text, indexed by Rule.
var ruleNames = [numRules]struct{ code, text string }{
	RuleNetwork:   {"network", "network not allowed (only tcp and udp)"},
	RuleListen:    {"listen", "listening not allowed"},
	RuleBind:      {"bind", "binding not allowed (only the unspecified address with port 0)"},
	RuleMalformed: {"malformed", "malformed address"},
	RuleZone:      {"zone", "zoned address"},
	RulePort0:     {"port_0", "port 0"},
	RuleSMTP:      {"smtp_port", "smtp port 25"},
	RuleFTP:       {"ftp_port", "ftp port 21"},
	RuleGoogle:    {"google", "google range"},
	RuleDenyList:  {"deny_list", "denied by the policy's deny list"},
	RuleSelf:      {"self", "an address of this machine's own interfaces"},

	RuleHostDenied:     {"host_denied", "host on the policy's host deny list"},
	RuleHostNotAllowed: {"host_not_allowed", "host not on the policy's host allow list"},
	RulePortNotAllowed: {"port_not_allowed", "port not on the policy's port allow list"},
	RuleInvalidPolicy:  {"invalid_policy", "the policy has an entry it cannot use (see Policy.Err)"},

	RuleProxyNetwork: {"proxy_network", "network not allowed through a proxy (only tcp)"},

	RuleScheme: {"scheme", "scheme not allowed (only http and https)"},
	RuleMethod: {"method", "method not allowed (only GET, POST, HEAD, PUT, DELETE, PATCH)"},
	RulePort:   {"port", "port not allowed (only 80-90, 440-450, 1024-65535)"},

	RuleUnspecified:      {"unspecified", "unspecified, this network (RFC 791, RFC 4291)"},
	RuleLoopback:         {"loopback", "loopback (RFC 1122, RFC 4291)"},
	RulePrivate:          {"private", "private (RFC 1918)"},
	RuleCGNAT:            {"cgnat", "shared address space, CGNAT (RFC 6598)"},
	RuleLinkLocal:        {"link_local", "link-local (RFC 3927, RFC 4291)"},
	RuleIETFProtocol:     {"ietf_protocol", "IETF protocol assignments (RFC 6890, RFC 2928)"},
	RuleDocumentation:    {"documentation", "documentation (RFC 5737, RFC 3849, RFC 9637)"},
	Rule6to4Relay:        {"6to4_relay", "6to4 relay anycast, deprecated (RFC 7526)"},
	RuleBenchmarking:     {"benchmarking", "benchmarking (RFC 2544, RFC 5180)"},
	RuleMulticast:        {"multicast", "multicast (RFC 5771, RFC 4291)"},
	RuleReserved:         {"reserved", "reserved (RFC 1112)"},
	RuleBroadcast:        {"broadcast", "limited broadcast (RFC 919)"},
	RuleIPv4Mapped:       {"ipv4_mapped", "IPv4-mapped (RFC 4291)"},
	RuleIPv4Compatible:   {"ipv4_compatible", "IPv4-compatible, deprecated (RFC 4291)"},
	RuleNAT64:            {"nat64", "NAT64 (RFC 6052)"},
	RuleNAT64Local:       {"nat64_local", "NAT64 local-use (RFC 8215)"},
	RuleDiscard:          {"discard", "discard-only (RFC 6666)"},
	RuleDummy:            {"dummy", "dummy prefix (RFC 9780)"},
	RuleSRv6:             {"srv6", "SRv6 SIDs (RFC 9602)"},
	RuleUniqueLocal:      {"unique_local", "unique local (RFC 4193)"},
	RuleSiteLocal:        {"site_local", "site-local, deprecated (RFC 3879)"},
	RuleTeredo:           {"teredo", "Teredo (RFC 4380)"},
	RuleORCHID:           {"orchid", "ORCHID (RFC 4843, RFC 7343)"},
	RuleNotGlobalUnicast: {"not_global_unicast", "not global unicast (outside 2000::/3, RFC 4291)"},
	Rule6to4:             {"6to4", "6to4 (RFC 3056)"},
}

// Code returns the rule's short, stable code, such as "private",
// "smtp_port" or "scheme" (see the constants), or "" for a value that is
// not a rule.
func (r Rule) Code() string {
	if r < numRules {
		return ruleNames[r].code
	}
	return ""
}

// String returns the rule in words, with the RFC or registry behind it,
// such as "private (RFC 1918)"; for a value that is not a rule, "rule(N)".
func (r Rule) String() string {
	if r != 0 && r < numRules {
		return ruleNames[r].text
	}
	return "rule(" + strconv.Itoa(int(r)) + ")"
}

// DeniedError is the error for every refusal, on either backend of package
// transport: a destination, a port, a network, listening or binding
// refused by the [Policy] or the [Dialer], and a scheme, method or port
// refused by the fetch service (package urlfetch wraps it in its *Error).
// It names the network, the host as the caller wrote it, the address and
// port that were checked, and the [Rule] that refused them. It matches
// [ErrDenied] through errors.Is.
//
// When the refused address is an IPv4 address carried inside the IPv6
// address checked, Form names the block of the IPv6 form that carries it
// ([RuleIPv4Mapped], [RuleIPv4Compatible], [RuleNAT64], [RuleNAT64Local]
// for the well-known prefixes and for a network-specific NAT64 prefix the
// policy knows, [Rule6to4], [RuleTeredo]), Embedded is that IPv4 address,
// and Rule is the rule that refused it: [2002:a00:1::]:80 is refused for
// [RulePrivate] with Form [Rule6to4] and Embedded 10.0.0.1. When the IPv6
// form itself is refused whatever it carries (NAT64 of a public address,
// Teredo), Rule names the form's block ([RuleNAT64], [RuleTeredo]) and
// Form is zero.
//
// Fields that do not apply to a refusal are zero: a refused network has no
// address, for example.
type DeniedError struct {
	Network  string         // "tcp", "udp6", ...; as the caller gave it
	Host     string         // the name or literal as dialed; empty when unknown
	Addr     netip.AddrPort // the exact address checked; zero when none was reached
	Rule     Rule           // the rule that refused
	Form     Rule           // the block of the IPv6 form by which Addr carries Embedded; zero when Rule refused Addr itself
	Embedded netip.Addr     // the IPv4 address Addr carries that Rule refused; zero when Form is
	Detail   string         // optional extra words, such as the malformed input
}

// Error returns a message such as
//
//	sockets: tcp to 10.0.0.1:80 (host "intranet.example") refused: private (RFC 1918)
//	sockets: tcp to [2002:a00:1::]:80 refused: private (RFC 1918), 10.0.0.1 carried in 6to4 (RFC 3056)
func (e *DeniedError) Error() string {
	if e == nil {
		return "<nil>"
	}
	var b strings.Builder
	b.WriteString("sockets: ")
	if e.Network != "" {
		b.WriteString(e.Network)
		b.WriteString(" ")
	}
	if e.Addr.IsValid() {
		b.WriteString("to ")
		b.WriteString(e.Addr.String())
		if e.Host != "" && e.Host != e.Addr.Addr().String() {
			b.WriteString(" (host ")
			b.WriteString(strconv.Quote(e.Host))
			b.WriteString(")")
		}
		b.WriteString(" ")
	} else if e.Host != "" {
		b.WriteString("to ")
		b.WriteString(strconv.Quote(e.Host))
		b.WriteString(" ")
	}
	b.WriteString("refused: ")
	b.WriteString(e.Rule.String())
	if e.Form != 0 {
		b.WriteString(", ")
		if e.Embedded.IsValid() {
			b.WriteString(e.Embedded.String())
			b.WriteString(" ")
		}
		b.WriteString("carried in ")
		b.WriteString(e.Form.String())
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Redacted returns a message that is safe to return to whoever asked for
// the connection, such as the client of a service that fetches URLs for
// others: it names the network, the host as the caller wrote it and the
// rule, but no address the host resolved to, no carried address and no
// detail, for example
//
//	sockets: tcp to "intranet.example" refused: private (RFC 1918)
//
// A host the caller wrote as an IP literal is shown as written. Use
// [DeniedError.Error] for logs, which may hold what the caller must not
// learn.
func (e *DeniedError) Redacted() string {
	if e == nil {
		return "<nil>"
	}
	var b strings.Builder
	b.WriteString("sockets: ")
	if e.Network != "" {
		b.WriteString(e.Network)
		b.WriteString(" ")
	}
	if e.Host != "" {
		b.WriteString("to ")
		b.WriteString(strconv.Quote(e.Host))
		b.WriteString(" ")
	}
	b.WriteString("refused: ")
	b.WriteString(e.Rule.String())
	return b.String()
}

// ErrorType returns the code of the rule that refused ([Rule.Code]), such
// as "private" or "scheme", or "_OTHER" if Rule is not a rule. It is the
// value for OpenTelemetry's error.type attribute (semantic conventions,
// https://opentelemetry.io/docs/specs/semconv/registry/attributes/error/):
// go.opentelemetry.io/otel/semconv's ErrorType function uses the
// ErrorType method of an error in the chain when it has one, so a span or
// metric of a refused request carries the rule's code, whichever backend
// refused it.
func (e *DeniedError) ErrorType() string {
	if e == nil || e.Rule.Code() == "" {
		return "_OTHER"
	}
	return e.Rule.Code()
}

// Unwrap returns [ErrDenied].
func (e *DeniedError) Unwrap() error { return ErrDenied }

// Is reports whether a refused bind ([RuleBind]) matches target
// syscall.EACCES or os.ErrPermission: App Engine's Sockets API refused a
// bind with PERMISSION_DENIED, which its socket module raised as EACCES.
// Listening was not refused that way (App Engine did not implement it), so
// [RuleListen] matches neither, nor does any other rule.
func (e *DeniedError) Is(target error) bool {
	return e != nil && e.Rule == RuleBind && (target == syscall.EACCES || target == os.ErrPermission)
}

// LookupError reports that resolving a host name failed. Err is the
// resolver's error (often a *net.DNSError).
type LookupError struct {
	Host string
	Err  error
}

func (e *LookupError) Error() string {
	if e == nil {
		return "<nil>"
	}
	return "sockets: lookup " + strconv.Quote(e.Host) + ": " + errText(e.Err)
}

// Unwrap returns the resolver's error.
func (e *LookupError) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// Is reports whether a timed-out lookup matches context.DeadlineExceeded:
// a resolver that gives up by itself (a *net.DNSError with IsTimeout) is a
// timeout as much as one cut off by the context, and callers test both
// with errors.Is(err, context.DeadlineExceeded). The resolver's error,
// which Unwrap returns, says more (a *net.DNSError's IsNotFound,
// IsTimeout and Timeout).
func (e *LookupError) Is(target error) bool {
	if target != context.DeadlineExceeded || e == nil || e.Err == nil {
		return false
	}
	var t interface{ Timeout() bool }
	return errors.As(e.Err, &t) && t.Timeout()
}

// timeoutError reports a connect attempt that its deadline cut off: the
// dial's ([Dialer.Timeout] or the context's) or the attempt's share of it
// (see [Dialer]). Err is the connect step's error, usually a *net.OpError,
// and always one whose Timeout reports true.
//
// It exists because net's own error for an expired connect deadline is a
// timeout but does not always match context.DeadlineExceeded (that depends
// on whether the socket's deadline or the context's timer fires first). A
// timeoutError always matches it through errors.Is, and its Timeout
// reports true. A connect error that already matches
// context.DeadlineExceeded is returned as it is, not wrapped.
type timeoutError struct {
	Err error
}

// Error returns a message such as
//
//	sockets: dial tcp 192.0.2.1:443: i/o timeout
func (e *timeoutError) Error() string {
	if e == nil {
		return "<nil>"
	}
	return "sockets: " + errText(e.Err)
}

// Unwrap returns the connect step's error.
func (e *timeoutError) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// Is reports whether target is context.DeadlineExceeded.
func (e *timeoutError) Is(target error) bool { return e != nil && target == context.DeadlineExceeded }

// Timeout reports true.
func (e *timeoutError) Timeout() bool { return true }

// errText returns err's message, or "<nil>" for a nil err, so that the
// Error method of an error value built without its Err does not panic.
func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
