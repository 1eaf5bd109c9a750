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
// zoned addresses, and Google's services, except Google Public DNS on port
// 53 and Gmail's SMTP, POP3 and IMAP ports by exact host name.
//
// # The Google rule
//
// Google's services are the addresses in Google's goog.json and not in its
// cloud.json: goog.json lists every range Google uses, cloud.json the ones
// it lends to Google Cloud customers, whose servers are public hosts like
// any other. Google documents this difference as the way to find the ranges
// of its services. The package embeds both files from Google's sync of
// 2024-04-25 ([EmbeddedGoogleServices], whose Created and CloudCreated say
// so); the zero [Policy], a nil one and [DefaultPolicy] refuse that
// difference. Google changes its ranges: a long-running program fetches
// https://www.gstatic.com/ipranges/goog.json and
// https://www.gstatic.com/ipranges/cloud.json, loads the pair with
// [LoadGoogleServices] and installs it with [Policy.WithGoogleRanges]. The
// broadest reading refuses the whole of goog.json, Google Cloud included:
//
//	p := sockets.DefaultPolicy().WithGoogleRanges(sockets.EmbeddedGoogleRanges())
//
// [PublicPolicy], URL Fetch's rule, leaves the Google rule off.
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
//     every other option is refused with an *[OptionError] that matches
//     syscall.EACCES, as App Engine's PERMISSION_DENIED did (so does a
//     refused bind, a *[DeniedError] for [RuleBind]);
//   - half-close: [Conn.CloseRead] and [Conn.CloseWrite], shutdown's
//     SHUT_RD and SHUT_WR;
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
//     before it is sent; a destination that is not a well-formed UDP
//     address (a port outside 0-65535, an IP of the wrong length) is
//     refused as malformed, never cut down to another address;
//   - metering: bytes sent and received per connection ([Conn.Usage]) and
//     per destination host ([Meter], bounded to [DefaultMaxHosts] hosts and
//     an [OverflowHost] bucket, never grown by datagrams no one asked
//     for), which an application can publish through expvar; the package
//     itself does not import expvar.
//
// Package [github.com/outbound-go/outbound/sockets/socketstest] has a table
// resolver and a loopback connect seam for tests.
package sockets
