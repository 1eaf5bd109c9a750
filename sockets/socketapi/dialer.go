package socketapi

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/outbound-go/outbound/internal/dialhook"
	"github.com/outbound-go/outbound/sockets"
)

// Dialer makes the connections of App Engine's Sockets API: it dials as
// its embedded [sockets.Dialer] does, with the same policy check of every
// resolved address, the same second check before the socket connects, the
// same Happy Eyeballs race and the same errors, and returns each
// connection as a *[Conn], which adds socket options, idle reclamation,
// hand-off as a descriptor and metering. It wraps sockets.Dialer as
// tls.Dialer wraps net.Dialer: the policy, resolver, timeouts, proxy and
// Connect seam are the embedded Dialer's fields.
//
// The zero Dialer is usable: the default policy, the system resolver, the
// 10-minute idle timeout, no totals per host, no hand-off. A nil *Dialer
// behaves as the zero Dialer in the methods this package declares (the
// embedded Dialer's Resolve needs a Dialer). A Dialer is safe for
// concurrent use; do not change its fields while it is in use.
type Dialer struct {
	sockets.Dialer

	// RoutePacket, if set, is called with the destination of each datagram
	// a [PacketConn] sends, after that destination passed the policy, and
	// returns the address to send it to instead. It is the packet
	// counterpart of the Connect seam: it lets a test send to a "public"
	// address without a packet leaving loopback. Nil means every datagram
	// goes to the destination that was checked.
	RoutePacket func(dst netip.AddrPort) netip.AddrPort

	// IdleTimeout is how long a connection or packet socket may stay
	// unused before it is reclaimed: closed, its resources freed, and
	// every later operation failed with [ErrReclaimed]. Every read, write
	// and KeepAlive restarts the clock when it ends (see [Conn] for an
	// operation left waiting). Zero or negative means 10 minutes, App
	// Engine's idle timeout.
	IdleTimeout time.Duration

	// Meter, if set, totals the bytes of every connection and packet
	// socket per destination host. Nil means no totals; each *[Conn]
	// still counts its own ([Conn.Usage]).
	Meter *Meter

	// Registry is where connections are handed off as descriptors
	// ([Conn.Detach]) and picked up ([Dialer.Attach]), also those received
	// from other processes ([Registry.Listen]). Dialers that share a
	// Registry can pick up each other's connections, if their AppIDs
	// match. Nil means connections cannot be handed off within the
	// process, nor picked up; [Conn.DetachTo] needs none.
	Registry *Registry

	// AppID is the identity of the application the Dialer works for. A
	// descriptor names the AppID of the Dialer that made the connection
	// and can be attached only by a Dialer with the same AppID. Zero
	// means the empty identity, which matches only itself.
	AppID string
}

// orZero returns d, or a zero Dialer for a nil d.
func (d *Dialer) orZero() *Dialer {
	if d == nil {
		return new(Dialer)
	}
	return d
}

// policy returns the policy of d's dials; nil is the default policy.
func (d *Dialer) policy() *sockets.Policy { return d.Policy }

// DialContext connects to address ("host:port") over network (tcp, tcp4,
// tcp6, udp, udp4, udp6) if the policy allows it, as
// [sockets.Dialer.DialContext] does, and returns the connection as a
// *[Conn]. A refusal is a *sockets.DeniedError (errors.Is(err,
// sockets.ErrDenied)) and is returned before any connection is attempted;
// a failed lookup is a *sockets.LookupError.
//
// The port is decimal, or one of the service names App Engine's socket
// module knew, from its own table: ftp (21), ftp-data (20), http (80),
// pop3 (110), pop3s (995), smtp (25), telnet (23), www and www-http (80),
// spelt exactly so. The port a name stands for is checked as that port
// would be ("smtp" is refused as port 25 is). Any other name, https
// included, is refused as a malformed address (sockets.RuleMalformed), as
// App Engine refused it.
//
// SO_ERROR needs a file descriptor: on a connection the Connect seam made
// without one it reports errors.ErrUnsupported.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	d = d.orZero()
	c, host, peer, err := dialhook.Dial(&d.Dialer, ctx, network, servicePort(network, address))
	if err != nil {
		return nil, err
	}
	return newConn(c, network, host, peer, d), nil
}

// services is App Engine's table of service names, in its shape: the port
// of each name for each protocol (google/appengine/api/remote_socket/
// _remote_socket.py, SDK 1.9.91, lines 124-134, _SERVICES).
var services = map[string][]struct {
	proto string
	port  uint16
}{
	"ftp":      {{"tcp", 21}, {"udp", 21}},
	"ftp-data": {{"tcp", 20}, {"udp", 20}},
	"http":     {{"tcp", 80}, {"udp", 80}},
	"pop3":     {{"tcp", 110}, {"udp", 110}},
	"pop3s":    {{"tcp", 995}, {"udp", 995}},
	"smtp":     {{"tcp", 25}, {"udp", 25}},
	"telnet":   {{"tcp", 23}, {"udp", 23}},
	"www":      {{"tcp", 80}, {"udp", 80}},
	"www-http": {{"tcp", 80}, {"udp", 80}},
}

// servicePort returns address with a service name in its port replaced by
// the decimal port the name has for network's protocol in [services], as
// the socket module's _ResolveService did (lines 241-252): a decimal port
// as itself, else the name's port for the protocol. Anything else is
// returned unchanged, for the policy core to take or refuse: it accepts
// only decimal ports and refuses any other as malformed, as
// _ResolveService raised EAI_SERVICE.
func servicePort(network, address string) string {
	// Every name begins with a letter; a decimal port, the common case,
	// begins with a digit and costs nothing more.
	if i := strings.LastIndexByte(address, ':') + 1; i == 0 || i < len(address) && '0' <= address[i] && address[i] <= '9' {
		return address
	}
	host, name, err := net.SplitHostPort(address)
	if err != nil {
		return address
	}
	proto := dialhook.Protocol(network)
	for _, sp := range services[name] {
		if sp.proto == proto {
			return net.JoinHostPort(host, strconv.Itoa(int(sp.port)))
		}
	}
	return address
}

// Listen always fails with a *sockets.DeniedError for
// sockets.RuleListen: App Engine's Sockets API makes outbound connections
// only, and so does this package.
func Listen(network, address string) (net.Listener, error) {
	return nil, &sockets.DeniedError{Network: network, Host: address, Rule: sockets.RuleListen}
}
