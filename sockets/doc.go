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
// # Refusals and their codes
//
// Every refusal, on either backend of package transport, is a
// *[DeniedError] (package urlfetch wraps it in its *Error). Its [Rule] is
// one of a closed set of constants to switch on; [Rule.Code] is a short
// lower_snake code that keeps its spelling and meaning from release to
// release, for logs and metrics, and [DeniedError.ErrorType] returns it as
// OpenTelemetry's error.type; [Rule.String] is the rule in words, with the
// RFC behind it. When the refused address is an IPv4 address carried in
// the IPv6 one checked, [DeniedError.Form] says how (6to4, NAT64, ...) and
// [DeniedError.Embedded] is that IPv4 address. [DeniedError.Redacted] is
// the message to give whoever asked for the connection: the rule and the
// host as written, never an address it resolved to.
//
//	code                rule                  refuses
//	network             RuleNetwork           a network other than tcp, tcp4, tcp6, udp, udp4, udp6
//	listen              RuleListen            any listening socket
//	bind                RuleBind              a bind to anything but the unspecified address with port 0
//	malformed           RuleMalformed         an address that cannot be parsed or checked
//	zone                RuleZone              an address with a zone (fe80::1%eth0)
//	port_0              RulePort0             port 0
//	smtp_port           RuleSMTP              port 25, plain SMTP
//	ftp_port            RuleFTP               TCP port 21, FTP
//	google              RuleGoogle            Google's services' ranges
//	deny_list           RuleDenyList          the policy's deny list (Policy.Deny)
//	host_denied         RuleHostDenied        a host on the policy's host deny list (Policy.DenyHosts)
//	host_not_allowed    RuleHostNotAllowed    a host not on the policy's host allow list (Policy.AllowHosts)
//	port_not_allowed    RulePortNotAllowed    a port not on the policy's port allow list (Policy.AllowPorts)
//	proxy_network       RuleProxyNetwork      UDP through a Dialer with a Proxy
//	scheme              RuleScheme            a URL scheme other than http and https (both backends)
//	method              RuleMethod            a method URL Fetch does not send (urlfetch)
//	port                RulePort              a port outside 80-90, 440-450, 1024-65535 (urlfetch)
//	unspecified         RuleUnspecified       0.0.0.0/8 (this network), ::
//	loopback            RuleLoopback          127.0.0.0/8, ::1
//	private             RulePrivate           10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16
//	cgnat               RuleCGNAT             100.64.0.0/10, shared address space
//	link_local          RuleLinkLocal         169.254.0.0/16, fe80::/10
//	ietf_protocol       RuleIETFProtocol      192.0.0.0/24, 2001::/23
//	documentation       RuleDocumentation     192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32, 3fff::/20
//	6to4_relay          Rule6to4Relay         192.88.99.0/24
//	benchmarking        RuleBenchmarking      198.18.0.0/15, 2001:2::/48
//	multicast           RuleMulticast         224.0.0.0/4, ff00::/8
//	reserved            RuleReserved          240.0.0.0/4 (class E)
//	broadcast           RuleBroadcast         255.255.255.255
//	ipv4_mapped         RuleIPv4Mapped        ::ffff:0:0/96 (checked unmapped: see FormIPv4Mapped)
//	ipv4_compatible     RuleIPv4Compatible    ::/96
//	nat64               RuleNAT64             64:ff9b::/96
//	nat64_local         RuleNAT64Local        64:ff9b:1::/48
//	discard             RuleDiscard           100::/64
//	dummy               RuleDummy             100:0:0:1::/64
//	srv6                RuleSRv6              5f00::/16
//	unique_local        RuleUniqueLocal       fc00::/7
//	site_local          RuleSiteLocal         fec0::/10
//	teredo              RuleTeredo            2001::/32
//	orchid              RuleORCHID            2001:10::/28, 2001:20::/28
//	not_global_unicast  RuleNotGlobalUnicast  IPv6 outside 2000::/3 that no block above names
//
// The forms ([Form]) have codes too: none, ipv4_mapped, ipv4_compatible,
// nat64, nat64_local, 6to4 and teredo.
//
// # Two halves
//
// The package holds two concerns, kept apart file by file:
//
//   - The policy and its checked dialer: [Policy] and its tables
//     (policy.go, table.go, google.go), the errors (errors.go), and the
//     [Dialer]'s resolve, check and connect (dialer.go, dialrace.go,
//     checked.go, and the connect step through an egress proxy, proxy*.go).
//     It is small and security-critical: every backend's connections go
//     through it, and whether a destination is reached is decided here and
//     nowhere else.
//   - App Engine's Sockets API emulation: [Conn] with its socket options,
//     idle reclamation, hand-off, metering and UDP, the lookups (conn.go,
//     options.go, idle.go, handoff*.go, meter.go, udp.go, lookup.go,
//     sockopt_*.go), and the exported dial methods that hand out the
//     policy half's connections (wrap.go).
//
// The emulation builds on the policy half and never the other way round:
// no file of the policy half refers to anything the emulation declares,
// nor reads the Dialer's fields that configure it (IdleTimeout, Meter,
// Registry, AppID, RoutePacket), and a test (boundary_test.go) type-checks
// the package to hold it so. The policy half ends in one unexported dial,
// which returns a connection that passed every check; [Dialer.DialContext]
// wraps it in a *[Conn], and [Dialer.DialChecked] returns it as made, in a
// byte counter only when [Dialer.Meter] is set. An HTTP client, whose pool
// manages its own connections, dials with DialChecked and so pays for the
// policy check and nothing else:
//
//	t := &http.Transport{DialContext: d.DialChecked}
//
// # The rest of the Sockets API
//
// The connections [Dialer.DialContext] returns are *[Conn] values: a
// net.Conn (and, for UDP, a net.PacketConn) that standard clients such as
// net/smtp and crypto/tls take unchanged, and that carries App Engine's
// socket features:
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
//     up elsewhere in the process, for the same application only, once;
//     [Conn.DetachTo] and [PacketConn.DetachTo] move a TCP or UDP socket,
//     TLS excepted, to another process on the host (see below);
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
// # Hand-off between processes and between hosts
//
// App Engine let a request handler open a socket and a task on another
// instance use it. Between processes of one host this package does it
// through the kernel: the worker serves its [Registry] on a Unix socket
// ([Registry.Listen], an [Inbox]); the web process moves the socket there
// ([Conn.DetachTo]) and gets a descriptor, which travels in any payload,
// while the web process may exit; the worker attaches it
// ([Dialer.Attach], [Dialer.AttachPacket]). The connection is the same
// (the peer sees nothing happen); its application, idle time and byte
// counts travel with it, and the worker's policy checks it again (for an
// unconnected UDP socket, every later destination). A TLS connection
// cannot move ([ErrTLSNotMovable]): its session keys live in the memory
// of the process that made it.
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
// Package [github.com/outbound-go/outbound/sockets/socketstest] has a table
// resolver and a loopback connect seam for tests.
package sockets
