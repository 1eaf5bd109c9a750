// Package socketstest is the test kit for code that uses this module: it
// lets a test dial a "public" name through the production policy and
// reach a server on loopback, without a packet leaving the machine. A
// [Resolver] answers lookups from a table; a [Connector] stands in for
// the final connect step ([sockets.Dialer].Connect) and sends every
// connection the policy allowed to a loopback server; [NewCert] makes a
// certificate for a TLS server on loopback and the pool its client
// trusts. The policy is the real one: a name that resolves to a refused
// address is refused exactly as in production, and the Connector then
// records no attempt.
//
//	srv := httptest.NewServer(handler)
//	conn := &socketstest.Connector{Target: srv.Listener.Addr().String()}
//	d := sockets.Dialer{
//		Resolver: socketstest.NewResolver(map[string][]string{"www.example.com": {"93.184.216.34"}}),
//		Connect:  conn.Connect,
//	}
package socketstest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/outbound-go/outbound/internal/lab"
)

// Resolver answers lookups from a table the test sets, and records them.
// Names compare as DNS names do, case and one final dot ignored. A name
// not in the table, or with no address of the family asked for ("ip4",
// "ip6"), gets a *net.DNSError with IsNotFound set, and a lookup whose
// context has ended gets the context's error. It implements
// sockets.Resolver and is safe for concurrent use. Its zero value knows no
// names.
type Resolver struct {
	r lab.Resolver
}

// NewResolver returns a Resolver answering each name with the given
// addresses, in order. It panics on an address that does not parse (a
// mistake in the test).
func NewResolver(hosts map[string][]string) *Resolver {
	r := new(Resolver)
	for name, addrs := range hosts {
		r.Set(name, addrs...)
	}
	return r
}

// Set makes name answer with addrs, in order, replacing what it answered
// before. It panics on an address that does not parse.
func (r *Resolver) Set(name string, addrs ...string) { r.r.Set(name, addrs...) }

// LookupNetIP records the lookup, then answers it from the table.
func (r *Resolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return r.r.LookupNetIP(ctx, network, host)
}

// Lookups returns the names looked up so far, in order.
func (r *Resolver) Lookups() []string { return r.r.Lookups() }

// Connector is a connect step for sockets.Dialer.Connect that reaches a
// loopback server instead of the address the policy allowed, and records
// every address it was asked to connect to. It refuses a Target or route
// that is not a loopback address, so that a test cannot send a packet off
// the machine by mistake. It is safe for concurrent use.
type Connector struct {
	// Target is the loopback "ip:port" every connection goes to, unless
	// Routes names another for its address.
	Target string

	// Routes sends the connections to some allowed addresses to other
	// loopback servers: address -> "ip:port".
	Routes map[netip.AddrPort]string

	mu       sync.Mutex
	attempts []netip.AddrPort
}

// Connect connects to the Target (or the route for addr) over the network's
// protocol, and records addr.
func (c *Connector) Connect(ctx context.Context, network string, addr netip.AddrPort) (net.Conn, error) {
	c.mu.Lock()
	c.attempts = append(c.attempts, addr)
	c.mu.Unlock()
	target := c.Target
	if t, ok := c.Routes[addr]; ok {
		target = t
	}
	return lab.DialLoopback(ctx, network, target)
}

// Attempts returns the addresses Connect was asked to connect to, in
// order: none, after a refusal.
func (c *Connector) Attempts() []netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.attempts)
}

// NewCert returns a server certificate for hosts (names or IP addresses),
// signed by a new authority made for the test, and a pool holding only
// that authority: what a TLS server on loopback and its client need.
//
//	cert, roots := socketstest.NewCert("www.example.com")
//	srv := httptest.NewUnstartedServer(handler)
//	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
//	srv.StartTLS()
//	client := &tls.Config{RootCAs: roots}
func NewCert(hosts ...string) (tls.Certificate, *x509.CertPool) { return lab.NewCert(hosts...) }
