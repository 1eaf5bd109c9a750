package sockets

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/outbound-go/outbound/internal/dialhook"
	"github.com/outbound-go/outbound/internal/obs"
	"go.opentelemetry.io/otel/metric"
)

// This file holds the one path by which the package makes a connection
// (dial), the one exported dial (DialContext), and what package socketapi
// borrows of them (through internal/dialhook).

func init() {
	dialhook.Dial = func(d any, ctx context.Context, network, address string) (net.Conn, string, netip.AddrPort, error) {
		dd := d.(*Dialer)
		c, host, peer, err := dd.dial(ctx, network, address)
		if err != nil {
			dd.metrics(ctx).RecordRefusal(ctx, err)
		}
		return c, host, peer, err
	}
	dialhook.Lookup = func(d any, ctx context.Context, network, host string) ([]netip.Addr, error) {
		return d.(*Dialer).lookupNetIP(ctx, network, host)
	}
	obs.Refusal = func(err error) (string, string, bool) {
		de, ok := errors.AsType[*DeniedError](err)
		if !ok {
			return "", "", false
		}
		return de.ErrorType(), de.Network, true
	}
	obs.IsProxy = func(err error) bool {
		_, ok := errors.AsType[*ProxyError](err)
		return ok
	}
}

// DialContext connects to address ("host:port", port in decimal) over
// network (tcp, tcp4, tcp6, udp, udp4, udp6) if the policy allows it, and
// returns the connection as made: a *net.TCPConn or *net.UDPConn, or what
// the Connect seam or the proxy tunnel returned, wrapped only while the
// MeterProvider records bytes. A refusal is a *[DeniedError]
// (errors.Is(err, [ErrDenied])) and is returned before any connection is
// attempted; a failed lookup is a *[LookupError]. It is the dial of an
// HTTP client, whose connection pool has its own idle timeout:
//
//	t := &http.Transport{DialContext: d.DialContext}
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, _, _, err := d.dial(ctx, network, address)
	m := d.metrics(ctx)
	if err != nil {
		m.RecordRefusal(ctx, err)
		return nil, err
	}
	return m.CountIO(ctx, c, network), nil
}

// metrics returns the instruments of d's MeterProvider, or nil (which
// records nothing) when the provider refused them.
func (d *Dialer) metrics(ctx context.Context) *obs.Metrics {
	var mp metric.MeterProvider
	if d != nil {
		mp = d.MeterProvider
	}
	m, _ := obs.For(mp)
	return m
}

// lookupNetIP resolves host over network ("ip", "ip4" or "ip6"): an IP
// literal as is, a name with the checks and the resolver of a dial,
// bounded by d.Timeout. The addresses are not checked against the policy.
// Every failure is a *LookupError.
func (d *Dialer) lookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	d = d.orZero()
	switch network {
	case "ip", "ip4", "ip6":
	default:
		return nil, &LookupError{Host: host, Err: net.UnknownNetworkError(network)}
	}
	if a, ok := parseLiteral(host); ok {
		return []netip.Addr{a}, nil
	}
	if err := validHostName(host); err != nil {
		return nil, &LookupError{Host: host, Err: err}
	}
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	return d.resolveName(ctx, network, host)
}

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
	if dialhook.Protocol(network) == "" {
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
