// Package socketstest provides test doubles for the parts of a
// [sockets.Dialer] that touch the outside world: a [Resolver] that answers
// from a table, and a [Connector] that stands in for the final connect step
// and sends every connection to a loopback server. With both, a test can
// dial a "public" name, have the policy check the public address it
// resolves to, and reach a local server, without a packet leaving loopback.
//
//	srv := httptest.NewServer(handler)
//	conn := &socketstest.Connector{Target: srv.Listener.Addr().String()}
//	d := &sockets.Dialer{
//		Resolver: socketstest.NewResolver(map[string][]string{"www.example.com": {"93.184.216.34"}}),
//		Connect:  conn.Connect,
//	}
//
// Tests on the real network path, with the kernel's connect and Go's own
// resolver and no seam, run in a network namespace of their own:
// [InNetNS] re-runs the test there, with the public addresses it names on
// the loopback interface, [NewDNSServer] answers its names with real DNS
// packets through a *net.Resolver, and [NewBlackHole] makes an address
// that drops every SYN.
package socketstest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
)

// Resolver answers lookups from a fixed table and records them. A name not
// in the table gets a *net.DNSError with IsNotFound set. It is safe for
// concurrent use. Its zero value knows no names.
type Resolver struct {
	mu      sync.Mutex
	hosts   map[string][]netip.Addr
	lookups []string
}

// NewResolver returns a Resolver answering each name with the given
// addresses, in order. It panics on an address that does not parse (a
// mistake in the test).
func NewResolver(hosts map[string][]string) *Resolver {
	r := &Resolver{hosts: make(map[string][]netip.Addr, len(hosts))}
	for name, addrs := range hosts {
		for _, a := range addrs {
			r.hosts[name] = append(r.hosts[name], netip.MustParseAddr(a))
		}
	}
	return r
}

// LookupNetIP implements [sockets.Resolver]. network "ip4" and "ip6" keep
// only addresses of that family.
func (r *Resolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	r.lookups = append(r.lookups, host)
	addrs, ok := r.hosts[host]
	r.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range addrs {
		switch {
		case network == "ip4" && !a.Unmap().Is4(), network == "ip6" && !a.Is6():
			continue
		}
		out = append(out, a)
	}
	if !ok || len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

// Lookups returns the names looked up so far, in order.
func (r *Resolver) Lookups() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lookups)
}

// Connector is a [sockets.Dialer] Connect function that records every
// address the dialer connects to and connects to a loopback server instead.
// It refuses to connect anywhere but 127.0.0.0/8 and ::1, so a test that
// uses it cannot send a packet off the machine. It is safe for concurrent
// use.
type Connector struct {
	// Target is the loopback "host:port" every connection goes to, unless
	// Routes names another for the address dialed.
	Target string
	// Routes maps a checked destination to its own loopback target.
	Routes map[netip.AddrPort]string

	mu       sync.Mutex
	attempts []netip.AddrPort
}

// Connect records addr and connects to its loopback stand-in.
func (c *Connector) Connect(ctx context.Context, network string, addr netip.AddrPort) (net.Conn, error) {
	c.mu.Lock()
	c.attempts = append(c.attempts, addr)
	c.mu.Unlock()
	target := c.Target
	if t, ok := c.Routes[addr]; ok {
		target = t
	}
	ap, err := netip.ParseAddrPort(target)
	if err != nil || !ap.Addr().Unmap().IsLoopback() {
		return nil, fmt.Errorf("socketstest: target %q is not a loopback address and port", target)
	}
	// The stand-in's family may differ from the destination's: dial by
	// protocol alone.
	proto := "tcp"
	if len(network) >= 3 && network[:3] == "udp" {
		proto = "udp"
	}
	var d net.Dialer
	return d.DialContext(ctx, proto, ap.String())
}

// Attempts returns the destinations connected to so far, in order.
func (c *Connector) Attempts() []netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.attempts)
}
