package socketapi

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/outbound-go/outbound/internal/dialhook"
	"github.com/outbound-go/outbound/sockets"
)

// PacketConn is an unconnected UDP socket made by [Dialer.ListenPacket]: it
// sends datagrams to any destination the policy allows, each checked before
// it is sent, and receives replies. It is bound to the unspecified address
// and a port the system chooses, never to a specific one.
//
// [PacketConn.WriteTo] checks the destination of each datagram against
// the Dialer's [sockets.Policy], exactly as a dial checks an address, and
// sends nothing when it is refused: the error is a *[sockets.DeniedError].
// A PacketConn is reclaimed when idle and metered like a [Conn]: its bytes
// are totalled in [Dialer.Meter] by IP address, per destination for the
// datagrams sent, and for the datagrams received per source only when the
// socket sent to that source before; a datagram from any other address is
// counted under the Meter's "(other)" key, so unsolicited senders never
// add a host to the Meter. Socket options behave as on a Conn. It can be
// handed off to another process on the host ([PacketConn.DetachTo],
// [Dialer.AttachPacket]), whose Dialer's policy then checks its
// datagrams. It is a [net.PacketConn]; its ReadFrom returns the source as
// a *net.UDPAddr.
//
// A PacketConn is safe for concurrent use. The zero PacketConn is not
// usable: every method returns an error.
type PacketConn struct {
	h       handle
	udp     *net.UDPConn
	network string
	policy  *sockets.Policy
	route   func(netip.AddrPort) netip.AddrPort
	meter   *Meter

	// The meter's counters of the last destination and source, so that a
	// run of datagrams to one host looks the host up once.
	lastTo, lastFrom atomic.Pointer[hostCounter]

	// mu guards solicited, and every store to lastFrom, so that a source
	// does not stay cached as unsolicited once the socket sent to it.
	mu sync.Mutex
	// solicited maps each address the socket sent a datagram to, and that
	// the meter totals as a host of its own, to its totals: the sources
	// whose datagrams are counted under their own address. It holds no
	// more addresses than the meter holds hosts.
	solicited map[netip.Addr]*hostTotals
}

var _ net.PacketConn = (*PacketConn)(nil)

type hostCounter struct {
	addr netip.Addr
	c    *counter // the host's packets counter
}

// ListenPacket makes an unconnected UDP socket, as net.ListenPacket does,
// for sending datagrams that the policy allows. network is udp, udp4 or
// udp6 (tcp is refused with [sockets.RuleListen], others with
// [sockets.RuleNetwork]). address is the local address and must be empty
// or the unspecified address with port 0 (":0", "0.0.0.0:0", "[::]:0"):
// the system chooses the port; anything else is refused with
// [sockets.RuleBind]. A Dialer with a [sockets.Dialer.Proxy] refuses it
// with [sockets.RuleProxyNetwork]. The bind address is checked once more
// just before the socket is bound. The refusals are
// *[sockets.DeniedError]s and are returned before any socket is made.
func (d *Dialer) ListenPacket(ctx context.Context, network, address string) (*PacketConn, error) {
	d = d.orZero()
	switch dialhook.Protocol(network) {
	case "udp":
	case "tcp":
		return nil, &sockets.DeniedError{Network: network, Host: address, Rule: sockets.RuleListen}
	default:
		return nil, &sockets.DeniedError{Network: network, Host: address, Rule: sockets.RuleNetwork}
	}
	if d.Proxy != nil {
		return nil, &sockets.DeniedError{Network: network, Host: address, Rule: sockets.RuleProxyNetwork}
	}
	if address == "" {
		address = ":0"
	}
	if !unspecifiedPort0(address) {
		return nil, &sockets.DeniedError{Network: network, Host: address, Rule: sockets.RuleBind}
	}
	lc := net.ListenConfig{
		// The second wall: the socket is bound to what was checked.
		Control: func(cnet, caddr string, _ syscall.RawConn) error {
			if !unspecifiedPort0(caddr) {
				return &sockets.DeniedError{Network: cnet, Host: caddr, Rule: sockets.RuleBind}
			}
			return nil
		},
	}
	pc, err := lc.ListenPacket(ctx, network, address)
	if err != nil {
		return nil, err
	}
	udp, ok := pc.(*net.UDPConn)
	if !ok {
		pc.Close()
		return nil, fmt.Errorf("socketapi: listen %s: unexpected socket type %T", network, pc)
	}
	p := &PacketConn{
		udp:     udp,
		network: network,
		policy:  d.policy(),
		route:   d.RoutePacket,
		meter:   d.Meter,
	}
	newSocket(&p.h, p.udp, network, "", netip.AddrPort{}, d)
	return p, nil
}

// unspecifiedPort0 reports whether address is "host:0" with host empty or an
// unspecified IP address without a zone.
func unspecifiedPort0(address string) bool {
	host, port, err := net.SplitHostPort(address)
	if err != nil || port != "0" {
		return false
	}
	if host == "" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Zone() == "" && a.Unmap().IsUnspecified()
}

// sock returns the socket, or nil for a nil or zero PacketConn.
func (p *PacketConn) sock() *socket {
	if p == nil {
		return nil
	}
	return p.h.s
}

// sentCounter returns the meter's counter for the datagrams sent to a, and
// records a as solicited; nil without a meter.
func (p *PacketConn) sentCounter(a netip.Addr) *counter {
	if p.meter == nil {
		return nil
	}
	a = a.Unmap()
	if hc := p.lastTo.Load(); hc != nil && hc.addr == a {
		return hc.c
	}
	h := p.meter.host(a.String())
	if !h.overflow {
		p.mu.Lock()
		if _, ok := p.solicited[a]; !ok {
			if p.solicited == nil {
				p.solicited = make(map[netip.Addr]*hostTotals)
			}
			p.solicited[a] = h
			if hc := p.lastFrom.Load(); hc != nil && hc.addr == a {
				p.lastFrom.Store(nil) // cached as unsolicited
			}
		}
		p.mu.Unlock()
	}
	hc := &hostCounter{addr: a, c: &h.packets}
	p.lastTo.Store(hc)
	return hc.c
}

// receivedCounter returns the meter's counter for the datagrams received
// from a: a's own if the socket sent to a, overflowHost's otherwise; nil
// without a meter. It never adds a host to the meter.
func (p *PacketConn) receivedCounter(a netip.Addr) *counter {
	if p.meter == nil {
		return nil
	}
	a = a.Unmap()
	if hc := p.lastFrom.Load(); hc != nil && hc.addr == a {
		return hc.c
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.solicited[a]
	if h == nil {
		h = p.meter.overflow()
	}
	hc := &hostCounter{addr: a, c: &h.packets}
	p.lastFrom.Store(hc)
	return hc.c
}

// check applies the policy to the destination of one datagram.
func (p *PacketConn) check(dst netip.AddrPort) error {
	if !dst.Addr().IsValid() {
		return &sockets.DeniedError{Network: p.network, Rule: sockets.RuleMalformed, Detail: "no valid destination address"}
	}
	if !dialhook.FamilyMatches(p.network, dst.Addr()) {
		return &sockets.DeniedError{Network: p.network, Addr: dst, Rule: sockets.RuleMalformed, Detail: "address family does not match the network"}
	}
	return p.policy.Check(p.network, "", dst)
}

// send checks dst and, if it is allowed, sends b to it.
func (p *PacketConn) send(b []byte, dst netip.AddrPort) (int, error) {
	s := p.sock()
	if s == nil {
		return 0, &net.OpError{Op: "write", Err: errZeroConn}
	}
	if err := p.check(dst); err != nil {
		return 0, err
	}
	if err := p.h.begin(); err != nil {
		return 0, &net.OpError{Op: "write", Net: p.network, Source: p.udp.LocalAddr(), Addr: net.UDPAddrFromAddrPort(dst), Err: err}
	}
	to := dst
	if p.route != nil {
		to = p.route(dst)
	}
	// The destination is solicited before the datagram leaves, so that its
	// reply is counted under it.
	c := p.sentCounter(dst.Addr())
	n, err := p.udp.WriteToUDPAddrPort(b, to)
	s.sent(n)
	if c != nil && n > 0 {
		c.sent.Add(int64(n))
	}
	p.h.end()
	if err != nil {
		if serr := p.h.liveErr(); serr != nil {
			err = &net.OpError{Op: "write", Net: p.network, Source: p.udp.LocalAddr(), Addr: net.UDPAddrFromAddrPort(dst), Err: serr}
		}
	}
	return n, err
}

// WriteTo sends b as one datagram to addr, which must be a *net.UDPAddr,
// if the policy allows addr; a refusal is a *[sockets.DeniedError] and
// nothing is sent. An addr that is not a well-formed UDP address (a port
// outside 0-65535, an IP that is not 4 or 16 bytes, a zone on an IPv4
// address, a nil or another type) is refused for [sockets.RuleMalformed]
// (or [sockets.RuleZone]) before any other check: it is never cut down to
// a 16-bit port or another address.
func (p *PacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	dst, err := udpAddrPort(p.netName(), addr)
	if err != nil {
		return 0, err
	}
	return p.send(b, dst)
}

// udpAddrPort converts a, the destination given to a write, to the exact
// address and port to check. It refuses, with a *sockets.DeniedError for
// [sockets.RuleMalformed] over network, anything but a non-nil
// *net.UDPAddr, and what the standard AddrPort methods would quietly turn
// into another destination: a port outside 0-65535, of which they keep
// the low 16 bits (so -65483 and 65589 would both become 53), and an IP
// that is not 4 or 16 bytes long (nil included). A zone on an IPv4
// address, which netip drops, is refused for [sockets.RuleZone]; a zone on
// an IPv6 address is kept, for the policy to refuse.
func udpAddrPort(network string, a net.Addr) (netip.AddrPort, error) {
	ua, ok := a.(*net.UDPAddr)
	if !ok || ua == nil {
		s := "<nil>"
		if a != nil {
			s = a.String() // "<nil>" for a nil *net.UDPAddr
		}
		return netip.AddrPort{}, &sockets.DeniedError{Network: network, Host: s, Rule: sockets.RuleMalformed, Detail: "destination is not a *net.UDPAddr"}
	}
	if ua.Port < 0 || ua.Port > 65535 {
		return netip.AddrPort{}, &sockets.DeniedError{Network: network, Host: ua.String(), Rule: sockets.RuleMalformed, Detail: "port " + strconv.Itoa(ua.Port) + " outside 0-65535"}
	}
	na, ok := netip.AddrFromSlice(ua.IP)
	if !ok {
		detail := "no IP address"
		if len(ua.IP) > 0 {
			detail = "IP address of " + strconv.Itoa(len(ua.IP)) + " bytes"
		}
		return netip.AddrPort{}, &sockets.DeniedError{Network: network, Host: ua.String(), Rule: sockets.RuleMalformed, Detail: detail}
	}
	if ua.Zone != "" {
		if na.Is4() {
			return netip.AddrPort{}, &sockets.DeniedError{Network: network, Host: ua.String(), Rule: sockets.RuleZone, Detail: "zone on an IPv4 address"}
		}
		na = na.WithZone(ua.Zone)
	}
	return netip.AddrPortFrom(na, uint16(ua.Port)), nil
}

func (p *PacketConn) netName() string {
	if p == nil {
		return ""
	}
	return p.network
}

// ReadFrom reads one datagram and returns its source, a *net.UDPAddr (nil
// when nothing was read), and restarts the idle clock. An IPv4 source is
// returned as an IPv4 address, also on a dual-stack socket.
func (p *PacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	s := p.sock()
	if s == nil {
		return 0, nil, &net.OpError{Op: "read", Err: errZeroConn}
	}
	if err := p.h.begin(); err != nil {
		return 0, nil, &net.OpError{Op: "read", Net: p.network, Addr: p.udp.LocalAddr(), Err: err}
	}
	n, src, err := p.udp.ReadFromUDPAddrPort(b)
	src = unmapPort(src)
	s.received(n)
	if n > 0 {
		if c := p.receivedCounter(src.Addr()); c != nil {
			c.received.Add(int64(n))
		}
	}
	p.h.end()
	if err != nil {
		if serr := p.h.liveErr(); serr != nil {
			err = &net.OpError{Op: "read", Net: p.network, Addr: p.udp.LocalAddr(), Err: serr}
		}
	}
	if !src.IsValid() {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(src), err
}

// unmapPort unmaps an IPv4-mapped address; the zero AddrPort stays zero.
func unmapPort(ap netip.AddrPort) netip.AddrPort {
	if !ap.Addr().Is4In6() {
		return ap
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// Close closes the socket. Operations in progress are unblocked and fail.
func (p *PacketConn) Close() error {
	s := p.sock()
	if s == nil {
		return &net.OpError{Op: "close", Err: errZeroConn}
	}
	if ok, st := p.h.retire(stClosed); !ok {
		return &net.OpError{Op: "close", Net: p.network, Addr: p.udp.LocalAddr(), Err: statusErr(st)}
	}
	return s.close()
}

// KeepAlive restarts the idle clock without any traffic. It fails if the
// socket is closed or reclaimed.
func (p *PacketConn) KeepAlive() error {
	if p.sock() == nil {
		return &net.OpError{Op: "keepalive", Err: errZeroConn}
	}
	if err := p.h.begin(); err != nil {
		return &net.OpError{Op: "keepalive", Net: p.network, Addr: p.udp.LocalAddr(), Err: err}
	}
	p.h.end()
	return nil
}

// LocalAddr returns the local address, or nil for a zero PacketConn.
func (p *PacketConn) LocalAddr() net.Addr {
	if p.sock() == nil {
		return nil
	}
	return p.udp.LocalAddr()
}

// SetDeadline sets the read and write deadlines, as [net.PacketConn].
// Setting a deadline does not restart the idle clock.
func (p *PacketConn) SetDeadline(t time.Time) error {
	return p.setDeadline("set deadline", t, (*net.UDPConn).SetDeadline)
}

// SetReadDeadline sets the read deadline, as [net.PacketConn].
func (p *PacketConn) SetReadDeadline(t time.Time) error {
	return p.setDeadline("set read deadline", t, (*net.UDPConn).SetReadDeadline)
}

// SetWriteDeadline sets the write deadline, as [net.PacketConn].
func (p *PacketConn) SetWriteDeadline(t time.Time) error {
	return p.setDeadline("set write deadline", t, (*net.UDPConn).SetWriteDeadline)
}

func (p *PacketConn) setDeadline(op string, t time.Time, set func(*net.UDPConn, time.Time) error) error {
	if p.sock() == nil {
		return &net.OpError{Op: op, Err: errZeroConn}
	}
	if err := p.h.liveErr(); err != nil {
		return &net.OpError{Op: op, Net: p.network, Addr: p.udp.LocalAddr(), Err: err}
	}
	return set(p.udp, t)
}

// Usage returns the bytes sent and received so far, over every destination.
func (p *PacketConn) Usage() Usage {
	if s := p.sock(); s != nil {
		return s.usage.load().add(s.base)
	}
	return Usage{}
}

// GetsockoptInt reads a socket option as [Conn.GetsockoptInt] does.
func (p *PacketConn) GetsockoptInt(level, name int) (int, error) {
	return getInt(p.sock(), p.handle(), level, name)
}

// SetsockoptInt sets a socket option as [Conn.SetsockoptInt] does.
func (p *PacketConn) SetsockoptInt(level, name, value int) error {
	return set(p.sock(), p.handle(), level, name)
}

func (p *PacketConn) handle() *handle {
	if p == nil {
		return nil
	}
	return &p.h
}
