// Package sockets is the policy core of outbound: a destination [Policy]
// with App Engine's rules for outbound connections, and a checked [Dialer]
// that makes only the connections the policy allows. Both backends of
// package transport connect through it, and whether a destination is
// reached is decided here and nowhere else.
//
// [Policy.Check] decides whether a connection over a network to an exact
// address, reached by dialing a host name or literal, is allowed. The
// [Dialer] resolves a name once, checks every resolved address, and
// connects only to the exact addresses that passed, checking each again
// just before its socket connects. Refused are: networks other than TCP
// and UDP, listening and binding, port 25 and TCP port 21, every
// never-public address (loopback, private, CGNAT, link-local, multicast,
// documentation, reserved and the other IANA special-purpose blocks, in
// every IPv6 form that carries one), zoned addresses, and Google's
// services, except Google Public DNS on port 53 and Gmail's SMTP, POP3
// and IMAP ports by exact host name.
//
// [Dialer.DialContext] is the dial of an HTTP client, and returns the
// connection as made:
//
//	d := &sockets.Dialer{Timeout: 10 * time.Second}
//	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
//	_, err := client.Get("http://169.254.169.254/computeMetadata/v1/")
//	if errors.Is(err, sockets.ErrDenied) {
//		// never retry: the policy refused it
//	}
//
// Package transport builds such a client with the rest of what a safe
// fetch needs (TLS, limits, retries, URL Fetch's rules); this package is
// for code that dials on its own. Tests and development servers widen the
// policy explicitly:
//
//	d := &sockets.Dialer{Policy: sockets.DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32"))}
//
// A [Dialer.Proxy] sends every TCP connection through an egress proxy with
// HTTP CONNECT, to the exact address that passed the policy, never to the
// name; its failures are *[ProxyError]s. A [Dialer.MeterProvider] receives
// OpenTelemetry metrics: refusals by rule, lookup and connect durations,
// bytes moved (the instruments are listed in package transport's
// documentation).
//
// App Engine's Sockets API itself (socket options, idle reclamation,
// hand-off of a live socket, UDP packet sockets, metering per host) is
// package [github.com/outbound-go/outbound/sockets/socketapi], whose
// Dialer wraps this one as tls.Dialer wraps net.Dialer. Package
// [github.com/outbound-go/outbound/sockets/socketstest] has a table
// resolver and a loopback connect seam for testing code that dials
// through a Dialer.
//
// # The Google rule
//
// Google's services are the addresses in Google's goog.json and not in its
// cloud.json: goog.json lists every range Google uses, cloud.json the ones
// it lends to Google Cloud customers, whose servers are public hosts like
// any other. Google documents this difference as the way to find the ranges
// of its services. The package embeds both files from Google's sync of
// 2024-04-25; the zero [Policy], a nil one and [DefaultPolicy] refuse that
// difference ([Policy.GoogleRanges] returns it, with the files' dates).
// Google changes its ranges: a long-running program keeps them current
// with package [github.com/outbound-go/outbound/sockets/googlefeed], which
// fetches https://www.gstatic.com/ipranges/goog.json and cloud.json on an
// interval and serves the newest good pair to
// [Policy.WithGoogleRangesFunc]; a program that fetches the files itself
// parses them with [ParseGoogleRanges] and installs them with
// [Policy.WithGoogleRanges]. The broadest reading refuses the whole of
// goog.json, Google Cloud included:
//
//	p := sockets.DefaultPolicy().WithGoogleRanges(sockets.EmbeddedGoogleRanges())
//
// [PublicPolicy], URL Fetch's rule, leaves the Google rule off.
//
// # Refusals and their codes
//
// Every refusal, on either backend of package transport, is a
// *[DeniedError] (package urlfetch wraps it in its *Error) that matches
// [ErrDenied]. Its [Rule] is one of a closed set of constants to switch
// on; [Rule.Code] is a short lower_snake code that keeps its spelling and
// meaning from release to release, for logs and metrics, and
// [DeniedError.ErrorType] returns it as OpenTelemetry's error.type;
// [Rule.String] is the rule in words, with the RFC behind it. When the
// refused address is an IPv4 address carried in the IPv6 one checked,
// [DeniedError.Form] names the block of the form that carries it
// ([Rule6to4], [RuleNAT64], ...) and
// [DeniedError.Embedded] is that IPv4 address. [DeniedError.Redacted] is
// the message to give whoever asked for the connection: the rule and the
// host as written, never an address it resolved to. A failed lookup is a
// *[LookupError], never a refusal.
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
//	self                RuleSelf              an address of this machine's own interfaces, loopback aside (Policy.DenySelf)
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
//	ipv4_mapped         RuleIPv4Mapped        ::ffff:0:0/96 (checked unmapped: named in DeniedError.Form)
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
//	invalid_policy      RuleInvalidPolicy     everything, while the policy holds an entry it cannot use (Policy.Err)
//	6to4                Rule6to4              nothing: names 2002::/16 in DeniedError.Form only
//
// [DeniedError.Form] holds one of ipv4_mapped, ipv4_compatible, nat64,
// nat64_local, 6to4 and teredo, or zero.
package sockets
