package sockets

import (
	"context"
	"net"
	"net/netip"
	"time"
)

// This file ends the policy half of the package (see "Two halves" in the
// package documentation): dial is the one path by which the package makes
// a connection. Every exported dial method (wrap.go) takes what dial
// returns and hands it out, wrapped or not; none of them connects by
// itself.

// dial connects to address ("host:port", port in decimal) over network if
// the policy allows it, and returns the connection as made, the host as
// dialed and the address the connection reached, which passed the policy.
//
// In order: the network must be TCP or UDP, the local address unspecified,
// address well formed; [Dialer.Timeout] starts; the host is resolved once
// and every address checked ([Dialer.Resolve]); the allowed addresses are
// dialed as net.Dialer dials ([Dialer.dialAddrs]), each connect checked
// again, in ControlContext, just before the socket connects. A refusal is
// a *[DeniedError], returned before any connection is attempted; a failed
// lookup is a *[LookupError]. It allocates nothing beyond what the lookup
// and the connect need, and starts no goroutine when the first address
// answers.
func (d *Dialer) dial(ctx context.Context, network, address string) (net.Conn, string, netip.AddrPort, error) {
	d = d.orZero()
	if protocol(network) == "" {
		return nil, "", netip.AddrPort{}, &DeniedError{Network: network, Host: address, Rule: RuleNetwork}
	}
	if err := checkLocalAddr(network, d.LocalAddr); err != nil {
		return nil, "", netip.AddrPort{}, err
	}
	if err := d.checkProxyDial(network, address); err != nil { // proxy.go
		return nil, "", netip.AddrPort{}, err
	}
	host, port, err := splitHostPort(address)
	if err != nil {
		return nil, "", netip.AddrPort{}, &DeniedError{Network: network, Host: address, Rule: RuleMalformed, Detail: err.Error()}
	}
	if d.Timeout > 0 {
		// As net.Dialer does: a context that ends sooner needs no other.
		if deadline, ok := ctx.Deadline(); !ok || time.Until(deadline) > d.Timeout {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d.Timeout)
			defer cancel()
		}
	}
	// Most names have a few addresses: keep them on the stack.
	var buf [4]netip.AddrPort
	allowed, err := d.resolve(ctx, buf[:0], network, host, port)
	if err != nil {
		return nil, "", netip.AddrPort{}, err
	}
	c, ap, err := d.dialAddrs(ctx, network, host, allowed)
	if err != nil {
		return nil, "", netip.AddrPort{}, err
	}
	return c, host, ap, nil
}
