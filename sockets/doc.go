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
package sockets
