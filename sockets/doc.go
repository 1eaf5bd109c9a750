// Package sockets gives a Go program App Engine's Sockets API rules:
// raw, outbound-only TCP and UDP connections, each checked at connect time
// against a destination [Policy].
//
// The heart of the package is [Policy.Check], which decides whether a
// connection over a network to an exact address, reached by dialing a host
// name or literal, is allowed, and [Dialer], which resolves a name once,
// checks every resolved address, and connects only to the exact addresses
// that passed. Refused are: networks other than TCP and UDP, listening and
// binding, port 25 and TCP port 21, every never-public address (loopback,
// private, CGNAT, link-local, multicast, documentation, reserved and the
// other IANA special-purpose blocks, in every IPv6 form that carries one),
// zoned addresses, and Google's published ranges, except Google Public DNS
// on port 53 and Gmail's SMTP, POP3 and IMAP ports by exact host name.
//
// Every refusal is a *[DeniedError] that names the rule, and matches
// [ErrDenied]:
//
//	d := &sockets.Dialer{}
//	conn, err := d.DialContext(ctx, "tcp", "smtp.example.com:587")
//	if errors.Is(err, sockets.ErrDenied) {
//		// never retry: the policy refused it
//	}
//
// Tests and development servers widen the policy explicitly:
//
//	d := &sockets.Dialer{Policy: sockets.DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32"))}
//
// # The rest of the Sockets API
//
// The connections a Dialer returns are *[Conn] values: a net.Conn (and, for
// UDP, a net.PacketConn) that standard clients such as net/smtp and
// crypto/tls take unchanged, and that carries App Engine's socket
// features:
//
//   - socket options by level and name ([Conn.GetsockoptInt] and friends):
//     the eight supported options read back App Engine's fixed
//     placeholders and accept any value silently, SO_ERROR is real, and
//     every other option is refused with an *[OptionError];
//   - idle reclamation: a connection unused for [Dialer.IdleTimeout]
//     (10 minutes by default) is closed, and its next operation fails with
//     [ErrReclaimed]; no goroutine waits per connection;
//   - descriptor hand-off: [Conn.Detach] turns a live connection, TLS
//     included, into an opaque signed descriptor that [Dialer.Attach] picks
//     up elsewhere in the process, for the same application only;
//   - lookups: [Dialer.LookupNetIP] resolves forward; [Dialer.LookupAddr]
//     fails with [ErrNotImplemented], as on App Engine;
//   - UDP: connected through DialContext, or unconnected through
//     [Dialer.ListenPacket], whose every datagram's destination is checked
//     before it is sent;
//   - metering: bytes sent and received per connection ([Conn.Usage]) and
//     per destination host ([Meter]), exportable through expvar.
//
// Package [github.com/outbound-go/outbound/sockets/socketstest] has a table
// resolver and a loopback connect seam for tests.
package sockets
