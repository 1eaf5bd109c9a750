package sockets

import (
	"context"
	"net"
	"sync/atomic"
)

// This file is where the two halves of the package meet (see "Two halves"
// in the package documentation). Each exported dial method takes the
// connection the policy half made ([Dialer.dial], checked.go) and hands it
// out: wrapped in a *[Conn], the Sockets API emulation, by DialContext and
// DialConn; as made, or in a byte counter for [Dialer.Meter], by
// DialChecked. The policy half never refers to anything here.

// Dial is DialContext with context.Background().
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to address ("host:port", port in decimal) over
// network (tcp, tcp4, tcp6, udp, udp4, udp6) if the policy allows it. A
// refusal is a *[DeniedError] (errors.Is(err, [ErrDenied])) and is returned
// before any connection is attempted; a failed lookup is a *[LookupError].
//
// The connection is a *[Conn], which carries the rest of App Engine's
// Sockets API: socket options, idle reclamation, hand-off and metering;
// [Dialer.DialConn] returns it typed. A client that needs none of that,
// such as an http.Transport, uses [Dialer.DialChecked], which makes the
// same checks and the same connection and leaves it unwrapped.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := d.DialConn(ctx, network, address)
	if err != nil {
		return nil, err // no typed nil in the interface
	}
	return c, nil
}

// DialConn is [Dialer.DialContext] returning the *[Conn] typed.
func (d *Dialer) DialConn(ctx context.Context, network, address string) (*Conn, error) {
	c, host, peer, err := d.dial(ctx, network, address)
	if err != nil {
		d.metrics().RecordRefusal(ctx, err) // observe.go
		return nil, err
	}
	return newConn(c, network, host, peer, d.orZero()), nil
}

// DialChecked connects as [Dialer.DialContext] does, with the same policy
// check of every resolved address, the same single lookup, the same
// second check just before the socket connects, the same Happy Eyeballs
// race and the same errors, and returns the connection as made (a
// *net.TCPConn or *net.UDPConn, or what the Connect seam returned), with
// nothing of the Sockets API emulation: no socket options, no idle
// reclamation, no hand-off, no per-connection Usage. It is the dial of an
// HTTP client, whose connection pool has its own idle timeout:
//
//	t := &http.Transport{DialContext: d.DialChecked}
//
// When [Dialer.Meter] is set, the connection is wrapped in a byte counter
// that adds to the Meter's totals for the host as dialed (and reports to
// its OnClose when closed); that wrapper's Close reports once, and every
// other method is the connection's own. When [Dialer.Metrics] records
// bytes, a counter of the same kind adds them to outbound.io. Without a
// Meter, and without Metrics that record, nothing wraps it.
func (d *Dialer) DialChecked(ctx context.Context, network, address string) (net.Conn, error) {
	c, host, _, err := d.dial(ctx, network, address)
	if err != nil {
		d.metrics().RecordRefusal(ctx, err) // observe.go
		return nil, err
	}
	if m := d.metrics(); m != nil {
		c = m.countIO(ctx, c, network)
	}
	if d != nil && d.Meter != nil {
		return newCountedConn(c, d.Meter, meterHost(host)), nil
	}
	return c, nil
}

// countedConn is a connection from [Dialer.DialChecked] whose bytes a
// [Meter] totals: one atomic add per Read or Write, on the connection's own
// counter; the Meter sums the live counters when it is read.
type countedConn struct {
	net.Conn
	usage  counter
	total  *hostTotals // nil for an empty host
	meter  *Meter
	host   string
	closed atomic.Bool
}

func newCountedConn(c net.Conn, m *Meter, host string) *countedConn {
	cc := &countedConn{Conn: c, meter: m, host: host}
	if host != "" {
		cc.total = m.open(host, &cc.usage)
	}
	return cc
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.usage.received.Add(int64(n))
	}
	return n, err
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.usage.sent.Add(int64(n))
	}
	return n, err
}

// Close closes the connection and, the first time, moves its totals to
// the Meter's closed ones and calls the Meter's OnClose.
func (c *countedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		if c.total != nil {
			c.total.close(&c.usage)
		}
		if c.meter.OnClose != nil {
			c.meter.OnClose(c.host, c.usage.load())
		}
	}
	return err
}
