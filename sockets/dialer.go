package sockets

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/outbound-go/outbound/internal/dialhook"
	"github.com/outbound-go/outbound/internal/obs"
	"go.opentelemetry.io/otel/metric"
)

// Resolver looks up the addresses of a host name. *net.Resolver satisfies
// it. network is "ip", "ip4" or "ip6".
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Dialer makes outbound connections that the [Policy] allows, and no others.
//
// A host name is resolved once; every resolved address is checked; the
// Dialer then connects only to addresses that passed, to the exact IP that
// was checked, never handing the name to a resolver again. The same check
// runs once more in [net.Dialer.ControlContext], just before the socket
// connects, as a second wall. A name with both allowed and refused answers
// connects only to the allowed ones.
//
// Among the allowed addresses the Dialer connects as [net.Dialer] does.
// Over "tcp", the addresses of the resolver's first answer's family are
// tried first, and the other family's join the race after
// [Dialer.FallbackDelay], or at once when the first family's have all
// failed ("Happy Eyeballs", RFC 8305 section 5). Within a family, and over
// every other network, the addresses are tried in turn, in the resolver's
// order: an attempt that fails (a refused or unreachable address) moves on
// to the next at once, and when the dial has a deadline each attempt gets
// an equal share of the time left (at least 2 seconds, while that much is
// left), so that an address that never answers cannot use all of it. The
// first connection wins; any other is closed, and the dial returns only
// once all its attempts have ended. When every attempt fails, the error
// is the first one of the first family, as net.Dialer's is; an attempt cut
// off by the deadline fails with an error that matches
// context.DeadlineExceeded and whose Timeout reports true, with net's own
// error (a [net.Error]) inside it.
//
// [Dialer.DialContext] returns the connection as made: it is the dial of
// an HTTP client (http.Transport.DialContext). App Engine's Sockets API
// (socket options, idle reclamation, hand-off, UDP packet sockets,
// metering) is package
// [github.com/outbound-go/outbound/sockets/socketapi], whose Dialer wraps
// this one.
//
// The zero Dialer is usable: the default policy, the system resolver, no
// timeout but the context's. A nil *Dialer behaves as the zero Dialer. A
// Dialer is safe for concurrent use; do not change its fields while it is
// in use.
type Dialer struct {
	// Policy decides which destinations are allowed. Nil means
	// DefaultPolicy().
	Policy *Policy

	// Resolver resolves host names. Nil means net.DefaultResolver.
	Resolver Resolver

	// Timeout bounds a whole dial, the lookup and every connect attempt.
	// Zero means no limit but the context's.
	Timeout time.Duration

	// FallbackDelay is how long a "tcp" dial whose allowed addresses
	// include both IPv4 and IPv6 waits for a connection over the family of
	// the resolver's first answer before it starts on the other family
	// too, as in net.Dialer (RFC 8305 section 5). The other family starts
	// at once when every address of the first has failed. Zero means 300
	// milliseconds; a negative value turns the race off, and all the
	// addresses are tried in turn, in the resolver's order.
	FallbackDelay time.Duration

	// KeepAlive is the TCP keep-alive period, as in net.Dialer: zero means
	// the system default, a negative value turns keep-alive off.
	KeepAlive time.Duration

	// LocalAddr is the local address to bind. Only an unspecified address
	// (0.0.0.0 or ::, or no IP) with port 0 is allowed, which is what nil
	// means: the system chooses. Anything else is refused with
	// [RuleBind].
	LocalAddr net.Addr

	// Connect, if set, replaces the final connect step: it is called with
	// the exact address that passed the policy and must connect to it (or,
	// in tests, to a loopback server standing in for it). It is the test
	// seam that lets a test reach a "public" address without a packet
	// leaving loopback. It may be called concurrently, for the two
	// address families a dial races (see FallbackDelay), and must return
	// once ctx is done: the dial waits for it. Nil means a net.Dialer
	// with the second check in its ControlContext. The connection it
	// returns is handed out like any other.
	Connect func(ctx context.Context, network string, addr netip.AddrPort) (net.Conn, error)

	// Proxy, if set, is the egress proxy every TCP connection goes
	// through: an http:// or https:// URL (see [CheckProxy]), with Basic
	// credentials in its user information if the proxy wants them. The
	// destination is resolved and every address checked exactly as
	// without a proxy; then, for each allowed address the dial tries
	// (Happy Eyeballs and the deadlines as without a proxy), the Dialer
	// connects to the proxy and asks it to tunnel, with HTTP CONNECT, to
	// that exact address as an IP literal, never to the name. The name
	// stays the caller's, for TLS and the Host header. The proxy itself
	// is reachable because it is named here: its address is not checked
	// against the policy, and nothing else is widened. A refusal is made
	// before a byte is sent to the proxy; the proxy's own failures are
	// *[ProxyError]s. UDP is refused ([RuleProxyNetwork]), and Connect
	// is not called. A connection's RemoteAddr is the proxy's. Nil means
	// direct connections; the environment (HTTP_PROXY and its family) is
	// never read.
	Proxy *url.URL

	// ProxyTLS configures TLS with an https:// Proxy, on a clone whose
	// ServerName is the proxy's host. Nil means TLS 1.2 or later and the
	// system's roots.
	ProxyTLS *tls.Config

	// MeterProvider receives the Dialer's OpenTelemetry metrics: its
	// refusals by rule, the duration of its name lookups and connect
	// attempts, and the bytes its connections move (the instruments are
	// listed in package transport's documentation). Nil means no metrics,
	// at no cost; pass otel.GetMeterProvider() for the global provider.
	// While a provider records nothing (no SDK set), no connection is
	// wrapped and a dial pays a few atomic loads for it.
	MeterProvider metric.MeterProvider
}

func (d *Dialer) policy() *Policy { return d.Policy.orDefault() }

// orZero returns d, or a zero Dialer for a nil d.
func (d *Dialer) orZero() *Dialer {
	if d == nil {
		return new(Dialer)
	}
	return d
}

func (d *Dialer) resolver() Resolver {
	if d.Resolver != nil {
		return d.Resolver
	}
	return net.DefaultResolver
}

// errNoConn reports a Connect seam that returned neither a connection nor
// an error.
var errNoConn = errors.New("sockets: Connect returned no connection and no error")

// Resolve returns the addresses a dial of host and port over network would
// connect to: host resolved once (or parsed, if it is an IP literal), each
// address checked against the policy, only the allowed ones kept, in order.
// When none is allowed it returns the first refusal, a *[DeniedError]. It
// makes no connection. The rules that need no
// address (the port rules, and the policies' port and host lists) refuse
// a name before it is looked up.
func (d *Dialer) Resolve(ctx context.Context, network, host string, port uint16) ([]netip.AddrPort, error) {
	return d.resolve(ctx, nil, network, host, port)
}

// resolve is Resolve appending the allowed addresses to dst, so that a
// dial can keep them in a buffer of its own.
func (d *Dialer) resolve(ctx context.Context, dst []netip.AddrPort, network, host string, port uint16) ([]netip.AddrPort, error) {
	d = d.orZero()
	pol := d.policy()
	proto := dialhook.Protocol(network)
	if proto == "" {
		return nil, &DeniedError{Network: network, Host: host, Rule: RuleNetwork}
	}
	// The port and host rules need no address: refuse a name before any
	// lookup, so a refused dial sends no DNS query either. (A literal is
	// refused by Check below, with its address in the error.)
	lit, isLit := parseLiteral(host)
	if !isLit {
		if r := pol.nameRule(proto, host, port); r != 0 {
			return nil, &DeniedError{Network: network, Host: host, Rule: r}
		}
	}
	var addrs []netip.Addr
	var err error
	if isLit {
		addrs = []netip.Addr{lit}
	} else {
		addrs, err = d.lookup(ctx, network, host)
	}
	if err != nil {
		return nil, err
	}
	allowed := dst
	var denied error
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a, port)
		if !dialhook.FamilyMatches(network, a) {
			if denied == nil {
				denied = &DeniedError{Network: network, Host: host, Addr: ap, Rule: RuleMalformed, Detail: "address family does not match the network"}
			}
			continue
		}
		if err := pol.Check(network, host, ap); err != nil {
			if denied == nil {
				denied = err
			}
			continue
		}
		allowed = append(allowed, ap)
	}
	if len(allowed) == len(dst) {
		if denied == nil {
			denied = &LookupError{Host: host, Err: obs.ErrNoAddresses}
		}
		return nil, denied
	}
	return allowed, nil
}

// parseLiteral parses host as an IP literal. It tries only what could be
// one (a colon for IPv6, only digits and dots for IPv4), so that a host name,
// the common case, costs no parse error.
func parseLiteral(host string) (netip.Addr, bool) {
	if !strings.Contains(host, ":") && strings.Trim(host, "0123456789.") != "" {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	return a, err == nil
}

// lookup resolves host, which is not an IP literal, as a name.
func (d *Dialer) lookup(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if err := validHostName(host); err != nil {
		return nil, &DeniedError{Network: network, Host: host, Rule: RuleMalformed, Detail: err.Error()}
	}
	ipnet := "ip"
	switch network[len(network)-1] {
	case '4':
		ipnet = "ip4"
	case '6':
		ipnet = "ip6"
	}
	return d.resolveName(ctx, ipnet, host)
}

// resolveName asks the resolver for host's addresses over ipnet ("ip",
// "ip4" or "ip6"). A failure or an empty answer is a *LookupError.
func (d *Dialer) resolveName(ctx context.Context, ipnet, host string) ([]netip.Addr, error) {
	m := d.metrics(ctx)
	start := m.LookupStart(ctx)
	addrs, err := d.resolver().LookupNetIP(ctx, ipnet, host)
	if err == nil && len(addrs) == 0 {
		err = obs.ErrNoAddresses
	}
	m.RecordLookup(ctx, start, err)
	if err != nil {
		return nil, &LookupError{Host: host, Err: err}
	}
	return addrs, nil
}

// connect makes the final connection to ap, which passed the policy.
//
// A direct connect is a net.Dialer dial of ap's exact IP literal, checked
// once more in its ControlContext, just before the socket connects (see
// connectWall). The dial names the address family ("tcp4" rather than
// "tcp"), which ap fixes anyway, so that net need not build that name for
// the check; an error names the network as dialed.
func (d *Dialer) connect(ctx context.Context, network, host string, ap netip.AddrPort) (net.Conn, error) {
	if d.Proxy != nil {
		return d.connectProxy(ctx, network, ap) // proxy.go
	}
	if d.Connect != nil {
		return d.Connect(ctx, network, ap)
	}
	w := &connectWall{Context: ctx, pol: d.policy(), host: host, want: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}
	nd := net.Dialer{KeepAlive: d.KeepAlive, ControlContext: controlConnect}
	c, err := nd.DialContext(w, familyNetwork(network, w.want.Addr()), w.address())
	if oe, ok := err.(*net.OpError); ok {
		oe.Net = network // net's own error, new for this dial
	}
	return c, err
}

// familyNetwork returns network ("tcp" or "udp", or either with its family
// already) with the family of a.
func familyNetwork(network string, a netip.Addr) string {
	switch network {
	case "tcp", "tcp4", "tcp6":
		if a.Is4() {
			return "tcp4"
		}
		return "tcp6"
	case "udp", "udp4", "udp6":
		if a.Is4() {
			return "udp4"
		}
		return "udp6"
	}
	return network
}

// connectWall is the second wall of one direct connect: the address the
// socket is about to connect to must be the one that was checked, and
// must still pass. net.Dialer calls its check, controlConnect, in
// ControlContext with the attempt's context, which is the connectWall
// itself: a context that answers connectWallKey with the wall and leaves
// everything else to the attempt's context. One allocation per attempt
// thus carries the check, where a closure would cost one, and also holds
// the text of the address the dial hands to net.
type connectWall struct {
	context.Context
	pol  *Policy
	host string
	want netip.AddrPort // unmapped

	// addr holds want as "ip:port", the address net dials. A string
	// made from it (address) points into the wall, which the string
	// then keeps alive; addr is written once, before that string is
	// made, and never again.
	addr [len("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")]byte
}

// connectWallKey is the context key of a connectWall.
type connectWallKey struct{}

func (w *connectWall) Value(key any) any {
	if key == (connectWallKey{}) {
		return w
	}
	return w.Context.Value(key)
}

// address returns want as "ip:port" (netip.AddrPort.String) in w's own
// memory, so that the text costs no allocation of its own.
func (w *connectWall) address() string {
	b := w.want.AppendTo(w.addr[:0])
	if len(b) > len(w.addr) {
		return string(b) // never: an unmapped, zoneless address fits
	}
	return unsafe.String(&w.addr[0], len(b))
}

// controlConnect is the ControlContext of every direct connect: the
// second wall's check, a plain function so that no connect allocates a
// closure for it. A connect without a connectWall in its context is not
// the dial's own and is refused.
func controlConnect(ctx context.Context, cnet, caddr string, _ syscall.RawConn) error {
	w, ok := ctx.Value(connectWallKey{}).(*connectWall)
	if !ok {
		return &DeniedError{Network: cnet, Rule: RuleMalformed, Detail: "connect without a checked address: " + caddr}
	}
	got, err := netip.ParseAddrPort(caddr)
	if err != nil {
		return &DeniedError{Network: cnet, Host: w.host, Rule: RuleMalformed, Detail: caddr}
	}
	got = netip.AddrPortFrom(got.Addr().Unmap(), got.Port())
	if got != w.want {
		return &DeniedError{Network: cnet, Host: w.host, Addr: got, Rule: RuleMalformed, Detail: "connect address differs from the checked address " + w.want.String()}
	}
	return w.pol.Check(cnet, w.host, got)
}

// checkLocalAddr allows only no local address, or an unspecified one with
// port 0.
func checkLocalAddr(network string, la net.Addr) error {
	if la == nil {
		return nil
	}
	var ip net.IP
	var port int
	var zone string
	switch a := la.(type) {
	case *net.TCPAddr:
		if a == nil {
			return nil
		}
		ip, port, zone = a.IP, a.Port, a.Zone
	case *net.UDPAddr:
		if a == nil {
			return nil
		}
		ip, port, zone = a.IP, a.Port, a.Zone
	default:
		return &DeniedError{Network: network, Host: la.String(), Rule: RuleBind}
	}
	if (ip == nil || ip.IsUnspecified()) && port == 0 && zone == "" {
		return nil
	}
	return &DeniedError{Network: network, Host: la.String(), Rule: RuleBind}
}

// splitHostPort splits "host:port" and parses a decimal port.
func splitHostPort(address string) (string, uint16, error) {
	host, ps, err := net.SplitHostPort(address)
	if err != nil {
		return "", 0, err
	}
	if host == "" {
		return "", 0, errors.New("missing host")
	}
	if ps == "" || ps[0] < '0' || ps[0] > '9' {
		return "", 0, fmt.Errorf("port %q is not a decimal number", ps)
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("port %q is not a number from 0 to 65535", ps)
	}
	return host, uint16(port), nil
}

// validHostName accepts DNS names: labels of letters, digits, '-' and '_',
// 1 to 63 bytes, at most 253 bytes in all, one optional trailing dot. It
// refuses what a C resolver's inet_aton would read as an IPv4 address in
// another notation ("127.1", "0x7f.0.0.1", "2130706433", "0177.0.0.1"), so
// no name is resolved into an address that was never written as one.
func validHostName(host string) error {
	name := strings.TrimSuffix(host, ".")
	if name == "" || len(name) > 253 {
		return errors.New("invalid host name length")
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("invalid host name: empty or overlong label")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("invalid host name: character %q", c)
			}
		}
	}
	if looksNumeric(name) {
		return errors.New("ambiguous IPv4 literal in a non-standard notation")
	}
	return nil
}

// looksNumeric reports whether name has the inet_aton form: one to four
// dot-separated numbers, each decimal, octal (leading 0) or hexadecimal
// (leading 0x).
func looksNumeric(name string) bool {
	if strings.Count(name, ".") > 3 {
		return false
	}
	for p := range strings.SplitSeq(name, ".") {
		digits := p
		if len(p) > 1 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') {
			digits = p[2:]
			if digits == "" {
				continue // "0x" alone reads as 0
			}
			for i := 0; i < len(digits); i++ {
				c := digits[i] | 0x20
				if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
					return false
				}
			}
			continue
		}
		for i := 0; i < len(digits); i++ {
			if digits[i] < '0' || digits[i] > '9' {
				return false
			}
		}
	}
	return true
}
