// Package socketapi emulates App Engine's Sockets API on top of the
// policy core in package [github.com/outbound-go/outbound/sockets]: the
// raw, outbound-only TCP and UDP sockets that App Engine's legacy runtimes
// offered, with their socket options, idle reclamation, hand-off between
// requests and tasks, and byte metering.
//
// Its [Dialer] wraps a [sockets.Dialer] as tls.Dialer wraps net.Dialer.
// Every connection is resolved, checked against the sockets.Policy and
// connected by the embedded Dialer, exactly as that Dialer's DialContext
// does, with the same refusals (a *[sockets.DeniedError] that matches
// [sockets.ErrDenied]); this package adds what a program written for App
// Engine's socket module expects of the connection it gets, a *[Conn]:
//
//	d := &socketapi.Dialer{
//		Dialer: sockets.Dialer{Policy: sockets.DefaultPolicy()},
//		Meter:  meter, // bytes per destination host; nil for none
//	}
//	nc, err := d.DialContext(ctx, "tcp", "smtp.example.com:587")
//	if err != nil {
//		return err // errors.Is(err, sockets.ErrDenied) for a refusal
//	}
//	conn := nc.(*socketapi.Conn)
//	c, err := smtp.NewClient(conn, "smtp.example.com")
//
// An HTTP client does not need this package: its pool manages its own
// connections, and [sockets.Dialer.DialContext] gives it the checked
// connection as made, without the emulation's per-call bookkeeping.
//
// # What a Conn carries
//
// A *[Conn] is a net.Conn that standard clients such as net/smtp and
// crypto/tls take unchanged, and that carries App Engine's socket
// features:
//
//   - socket options by level and name ([Conn.GetsockoptInt],
//     [Conn.SetsockoptInt]): the eight supported options (SO_KEEPALIVE,
//     SO_DEBUG, TCP_NODELAY, SO_LINGER, SO_OOBINLINE, SO_SNDBUF,
//     SO_RCVBUF, SO_REUSEADDR) read back App Engine's fixed placeholders
//     and accept any value silently, SO_ERROR is real, and every other
//     option is refused with an *[Error] that matches
//     [ErrOptionNotPermitted] and syscall.EACCES, as App Engine's
//     PERMISSION_DENIED did (so does a refused bind, a *sockets.DeniedError
//     for [sockets.RuleBind]);
//   - half-close: [Conn.CloseRead] and [Conn.CloseWrite], shutdown's
//     SHUT_RD and SHUT_WR; a second CloseRead fails with ENOTCONN, as App
//     Engine's socket module refused a second SHUT_RD;
//   - a connected socket: [Conn.WriteTo] to any address, the peer's own
//     included, fails with EISCONN as App Engine's sendto did (the error
//     matches net.ErrWriteToConnected too, Go's own for a connected
//     *net.UDPConn), and sends nothing;
//   - TLS in place: [Conn.StartTLS] upgrades the connection, which stays
//     the same Conn, with its idle clock, meters and hand-off;
//   - idle reclamation: a connection unused for [Dialer.IdleTimeout]
//     (10 minutes by default) is closed, and its next operation fails with
//     an error that matches [ErrReclaimed], and syscall.EPIPE as on App
//     Engine, where a reclaimed socket failed as one whose peer closed it
//     (SOCKET_CLOSED, raised as EPIPE); [Conn.KeepAlive] restarts the
//     clock without traffic. No goroutine waits per connection: each has
//     a runtime timer and an atomic timestamp;
//   - descriptor hand-off: [Conn.Detach] turns a live connection, TLS
//     included, into an opaque signed descriptor that [Dialer.Attach]
//     picks up elsewhere in the process, for the same application only
//     ([Dialer.AppID]), once; [Conn.DetachTo] and [PacketConn.DetachTo]
//     move a TCP or UDP socket, TLS excepted, to another process on the
//     host (see below);
//   - metering: the bytes sent and received per connection
//     ([Conn.Usage]) and per destination host ([Meter], bounded to 1024
//     hosts by default and one "(other)" bucket, never grown by datagrams
//     no one asked for), which an application can publish through expvar;
//     the package itself does not import expvar.
//
// Beside connections, a Dialer offers the rest of the API:
//
//   - UDP: connected through DialContext, or unconnected through
//     [Dialer.ListenPacket], a [PacketConn] whose every datagram's
//     destination is checked before it is sent; a destination that is not
//     a well-formed UDP address (a port outside 0-65535, an IP of the
//     wrong length) is refused as malformed, never cut down to another
//     address. [Dialer.RoutePacket] is the packet counterpart of the
//     Connect seam, for tests;
//   - lookups: [Dialer.LookupNetIP] resolves forward, and refuses an IPv6
//     literal looked up as IPv4 or an IPv4 one as IPv6, as App Engine and
//     Go's net.Resolver do; [Dialer.LookupAddr] fails with
//     [ErrNotImplemented], as on App Engine;
//   - ports by name: [Dialer.DialContext] takes the service names of App
//     Engine's own table (ftp, ftp-data, http, pop3, pop3s, smtp, telnet,
//     www, www-http) as the ports they stand for, which the policy then
//     checks as any port ("smtp" is refused as port 25 is); any other
//     name is refused as malformed, as App Engine refused it, and
//     [sockets.Dialer.DialContext] itself takes decimal ports only;
//   - listening: [Listen] always refuses, as App Engine did.
//
// Every failure this package adds is an *[Error] whose Op names the call
// (a socket option, a hand-off, a call not implemented, a shutdown or
// sendto App Engine refused with an errno) and whose Err is one of the
// package's sentinels or that errno, for errors.Is; a connection that is
// no longer the caller's fails with a *net.OpError that wraps
// [ErrReclaimed], [ErrHandedOff] or net.ErrClosed.
//
// # Hand-off between processes and between hosts
//
// App Engine let a request handler open a socket and a task on another
// instance use it. Between processes of one host this package does it
// through the kernel: the worker serves its [Registry] on a Unix socket
// ([Registry.Listen]); the web process moves the socket there
// ([Conn.DetachTo]) and gets a descriptor, which travels in any payload,
// while the web process may exit; the worker attaches it
// ([Dialer.Attach], [Dialer.AttachPacket]), and may first read how much
// idle time it has left ([Registry.IdleLeft]). The connection is the same
// (the peer sees nothing happen); its application, idle time and byte
// counts travel with it, and the worker's policy checks it again (for an
// unconnected UDP socket, every later destination). A TLS connection
// cannot move ([ErrTLSNotMovable]): its session keys live in the memory
// of the process that made it. [Registry.Close] drains a worker's
// Registry: it stops serving and closes every socket still parked.
//
// What the worker verifies, and what it takes on the web process's word:
//
//   - verified by the kernel: the sender runs as the same user
//     (SO_PEERCRED; [ErrForeignPeer] otherwise, [ErrNoAccess] when the
//     system refuses the connect to the socket file), the descriptor is a
//     TCP or UDP socket of the kind announced ([ErrBadTransfer]), and a
//     connection's peer, read from the socket itself (getpeername), is
//     the address the sender says passed its policy ([ErrPeerMismatch]).
//     So [Conn.Peer] is [Conn.RemoteAddr], and the worker's policy checks
//     the address the socket really reaches. A connection made through
//     the egress proxy cannot be verified (its socket's peer is the
//     proxy), so it does not move: DetachTo refuses it with
//     ErrPeerMismatch.
//   - the sender's word: the host name the connection was dialed by (the
//     key under which the worker's [Meter] counts it, and the name the
//     worker's host rules see: to refuse a destination, deny its
//     addresses), the application, the idle time and limit, and the byte
//     counts so far.
//   - bounded: each message of a sender must arrive within a second, so
//     connections that say nothing cannot hold the sixteen transfers a
//     path runs at once; a Registry holds at most [Registry.MaxReceived]
//     received sockets.
//
// Between hosts a TCP connection cannot move at all: it is bound to the
// address of the host that opened it, and its state lives in that host's
// kernel. App Engine kept such sockets in a service of its own; one built
// on this package would look like this.
//
//   - Who holds the socket: a holder process on each host where
//     connections are opened. A handler detaches into its local holder
//     ([Conn.DetachTo]); the socket stays in that holder, on that host,
//     for the rest of its life, and is closed or reclaimed there.
//   - Descriptor routing: the holder wraps its descriptor with its own
//     address ("holder-7.internal:8443" and the descriptor), so that the
//     task can travel to any host. A worker elsewhere presents it to that
//     holder over an authenticated stream (mutual TLS, the worker's
//     identity checked against the application in the descriptor);
//     attaching there, once, turns the stream into the socket's bytes, so
//     the worker holds a relayed net.Conn, not the socket. A UDP socket's
//     datagrams are relayed with their destinations, which the holder
//     checks against its policy; the holder meters the traffic and runs
//     the idle clock, which each relayed operation restarts.
//   - Failure modes: the holder's crash or restart loses every socket it
//     holds (their descriptors go stale; the peers see the connections
//     reset), so a holder drains before it stops; a worker that dies, or
//     loses its stream, leaves the socket parked in the holder until the
//     idle timeout, and bytes in flight in the relay are lost unless the
//     stream acknowledges them, so a protocol can resume only where it can
//     tell what was delivered; a partition between worker and holder
//     stalls the conversation until a deadline; a full holder refuses new
//     sockets, as a full [Registry] does ([ErrRegistryFull]). TLS can
//     cross hosts only if the holder itself is the TLS client and relays
//     plaintext to the worker over the authenticated stream.
//
// Package [github.com/outbound-go/outbound/sockets/socketstest] has a
// table resolver and a loopback connect seam for tests: set them as the
// embedded Dialer's Resolver and Connect, and a "public" destination is
// checked by the production policy and then reached on loopback.
package socketapi
