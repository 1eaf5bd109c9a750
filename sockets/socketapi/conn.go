package socketapi

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/outbound-go/outbound/internal/dialhook"
)

// ErrReclaimed is wrapped in the error of every operation on a socket that
// was reclaimed for being idle longer than its idle timeout (see
// [Dialer.IdleTimeout]). The socket was closed and its resources freed; open
// a new connection. The error also matches net.ErrClosed, and
// syscall.EPIPE, as a socket whose peer closed it: App Engine answered
// every call on a reclaimed socket with SOCKET_CLOSED, which its socket
// module raised as EPIPE.
var ErrReclaimed error = &sentinel{"socketapi: connection reclaimed after being idle", []error{net.ErrClosed, syscall.EPIPE}}

// ErrHandedOff is wrapped in the error of every operation on a [Conn] whose
// socket was handed off with [Conn.Detach]: the socket belongs to whoever
// attaches the descriptor. errors.Is(err, net.ErrClosed) is true as well.
var ErrHandedOff error = &sentinel{"socketapi: connection handed off as a descriptor", []error{net.ErrClosed}}

// errZeroConn is the error of every operation on a nil or zero Conn or
// PacketConn.
var errZeroConn = errors.New("socketapi: connection not made by a Dialer")

// errAlreadyTLS is returned by StartTLS on a connection that speaks TLS.
var errAlreadyTLS = errors.New("socketapi: connection already uses TLS")

// errReadShut returns the error of a CloseRead after the reading side was
// shut down, a new one each time (its fields are the caller's).
func errReadShut() error { return &Error{Op: "shutdown", Arg: "SHUT_RD", Err: syscall.ENOTCONN} }

// errConnected is the error of [Conn.WriteTo]: App Engine's socket module
// refused a send to an explicit address on a connected socket with
// EISCONN, and Go's connected *net.UDPConn refuses it with
// net.ErrWriteToConnected.
var errConnected error = &sentinel{"socketapi: socket is already connected", []error{syscall.EISCONN, net.ErrWriteToConnected}}

// The state word of a handle packs, from the low bits up: the number of
// operations in progress (32 bits), the status (8 bits), and an epoch that
// every completed operation advances (24 bits, wrapping), so that the
// reclaimer can tell "idle all along" from "used and idle again".
const (
	inflightMask = 1<<32 - 1
	statusShift  = 32
	epochUnit    = 1 << 40
)

// Handle statuses. Live is zero so that "live with nothing in progress" is
// the low 40 bits all zero.
const (
	stLive uint64 = iota
	stClosed
	stReclaimed
	stHandedOff
)

func status(v uint64) uint64 { return v >> statusShift & 0xff }

// statusErr returns the error for a handle that is not live.
func statusErr(st uint64) error {
	switch st {
	case stReclaimed:
		return ErrReclaimed
	case stHandedOff:
		return ErrHandedOff
	}
	return net.ErrClosed
}

// handle is one owner's view of a socket. A socket has one owner at a time;
// a hand-off retires the old handle and makes a new one. The data path
// touches only the handle's state word and the socket's atomics: no lock.
type handle struct {
	s     *socket
	state atomic.Uint64
	// drain, set by Detach before it retires the handle, receives a value
	// each time the number of operations in progress drops to zero after
	// the handle stopped being live.
	drain atomic.Pointer[chan struct{}]
}

// begin marks an operation in progress, or returns the reason the handle
// cannot be used.
func (h *handle) begin() error {
	v := h.state.Add(1)
	if st := status(v); st != stLive {
		h.release(h.state.Add(^uint64(0)))
		return statusErr(st)
	}
	return nil
}

// end marks the operation finished and restarts the idle clock.
func (h *handle) end() {
	h.s.touch()
	h.release(h.state.Add(epochUnit - 1))
}

// release wakes a waiting Detach when the last operation in progress of a
// retired handle ends; v is the state after the decrement.
func (h *handle) release(v uint64) {
	if v&inflightMask == 0 && status(v) != stLive {
		if ch := h.drain.Load(); ch != nil {
			select {
			case *ch <- struct{}{}:
			default:
			}
		}
	}
}

// retire moves a live handle to status st, keeping the operations in
// progress; it reports false, and the current status, if the handle was not
// live.
func (h *handle) retire(st uint64) (bool, uint64) {
	for {
		v := h.state.Load()
		if cur := status(v); cur != stLive {
			return false, cur
		}
		if h.state.CompareAndSwap(v, v&^(0xff<<statusShift)|st<<statusShift) {
			return true, st
		}
	}
}

// liveErr returns nil if the handle is live, or its status error.
func (h *handle) liveErr() error {
	if st := status(h.state.Load()); st != stLive {
		return statusErr(st)
	}
	return nil
}

// socket is what a handle refers to: the connection itself, its meters, its
// idle clock and its place in a Registry.
type socket struct {
	raw     net.Conn       // the connection as made (a *net.UDPConn for a PacketConn)
	network string         // as dialed: "tcp", "udp4", ...
	host    string         // as dialed, for the meter; "" for a PacketConn
	peer    netip.AddrPort // the address that passed the policy; zero for a PacketConn
	tls     atomic.Pointer[tls.Conn]
	// readShut is set by the first CloseRead that shuts the reading side
	// down; a second one is refused, as App Engine refused it.
	readShut atomic.Bool

	usage counter     // this socket's totals in this process
	base  Usage       // its totals from other processes it came through; set before it is shared
	total *hostTotals // its host's totals in meter; nil without a meter or host
	meter *Meter

	born    time.Time
	lastUse atomic.Int64 // time.Since(born) at the last use, in nanoseconds
	limit   time.Duration

	owner  atomic.Pointer[handle] // nil while parked in a Registry
	reg    *Registry
	app    string
	parkID uint64 // the number it is parked under; guarded by reg.mu

	// mu guards the reclaimer's fields; it is never taken on the data path.
	mu        sync.Mutex
	timer     *time.Timer
	done      bool          // closed or reclaimed
	busy      uint64        // the handle state last seen with operations in progress
	busySince time.Duration // when it was first seen, on the socket's clock
}

// newSocket makes a socket owned by h and starts its idle clock.
func newSocket(h *handle, raw net.Conn, network, host string, peer netip.AddrPort, d *Dialer) *socket {
	s := &socket{
		raw:     raw,
		network: network,
		host:    host,
		peer:    peer,
		meter:   d.Meter,
		born:    time.Now(),
		limit:   d.idleTimeout(),
		reg:     d.Registry,
		app:     d.AppID,
	}
	if s.meter != nil && host != "" {
		s.total = s.meter.open(host, &s.usage)
	}
	h.s = s
	s.owner.Store(h)
	s.startIdleClock()
	return s
}

// touch restarts the idle clock.
func (s *socket) touch() {
	s.lastUse.Store(int64(time.Since(s.born)))
}

// wire is the socket's connection, metered: what a TLS client runs over.
type wire struct{ s *socket }

func (w wire) Read(p []byte) (int, error) {
	n, err := w.s.raw.Read(p)
	w.s.received(n)
	return n, err
}

func (w wire) Write(p []byte) (int, error) {
	n, err := w.s.raw.Write(p)
	w.s.sent(n)
	return n, err
}

func (w wire) Close() error                       { return w.s.raw.Close() }
func (w wire) LocalAddr() net.Addr                { return w.s.raw.LocalAddr() }
func (w wire) RemoteAddr() net.Addr               { return w.s.raw.RemoteAddr() }
func (w wire) SetDeadline(t time.Time) error      { return w.s.raw.SetDeadline(t) }
func (w wire) SetReadDeadline(t time.Time) error  { return w.s.raw.SetReadDeadline(t) }
func (w wire) SetWriteDeadline(t time.Time) error { return w.s.raw.SetWriteDeadline(t) }

func (s *socket) sent(n int) {
	if n > 0 {
		s.usage.sent.Add(int64(n))
	}
}

func (s *socket) received(n int) {
	if n > 0 {
		s.usage.received.Add(int64(n))
	}
}

// close closes a socket whose owner closed its handle.
func (s *socket) close() error {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return nil
	}
	s.done = true
	s.timer.Stop()
	s.mu.Unlock()
	var err error
	if t := s.tls.Load(); t != nil {
		err = t.Close()
	} else {
		err = s.raw.Close()
	}
	s.report()
	return err
}

// report moves the socket's totals to its host's closed ones and gives them
// to the meter's OnClose, once, after the socket is done.
func (s *socket) report() {
	if s.total != nil {
		s.total.close(&s.usage)
	}
	if s.meter != nil && s.meter.OnClose != nil {
		s.meter.OnClose(s.host, s.usage.load())
	}
}

// Conn is a connection made by a [Dialer]: TCP, or connected UDP. It is a
// [net.Conn], so net/smtp, crypto/tls, net/http and other standard code use
// it unchanged. (An unconnected UDP socket, a [net.PacketConn], is a
// [PacketConn].) Besides the policy check that made it, it carries the rest
// of App Engine's Sockets API:
//
//   - Socket options ([Conn.GetsockoptInt], [Conn.SetsockoptInt]): the
//     eight options App Engine supports read back fixed placeholders and
//     accept any value silently; SO_ERROR reads the real value; every other
//     option is refused with an *[Error] that matches
//     [ErrOptionNotPermitted], syscall.EACCES and os.ErrPermission.
//   - Idle reclamation: a connection unused for its idle timeout
//     ([Dialer.IdleTimeout], 10 minutes by default) is closed and its
//     resources freed; every later operation fails with an error that
//     matches [ErrReclaimed]. Every Read and Write, and [Conn.KeepAlive],
//     restarts the clock when it ends. A Read left waiting for data that
//     does not come does not keep the connection alive: it is ended with
//     ErrReclaimed between one and two idle timeouts after it began. The
//     clock is a runtime timer per connection and an atomic timestamp, so
//     idle connections cost no goroutine.
//   - Hand-off: [Conn.Detach] turns the connection into an opaque
//     descriptor that [Dialer.Attach] picks up again elsewhere in the
//     process, for the same application only (see [Registry]). A
//     connection upgraded with [Conn.StartTLS] keeps its TLS session across
//     the hand-off. [Conn.DetachTo] moves the socket to another process on
//     the host (see [Registry.Listen]); a TLS connection cannot move there.
//   - Metering: the bytes sent and received are counted ([Conn.Usage]) and
//     totalled per destination host in [Dialer.Meter].
//
// A Conn is safe for concurrent use as a net.Conn is: one reader and one
// writer at a time, with Close, deadlines, options and Usage from any
// goroutine. StartTLS and Detach must not run concurrently with Read or
// Write from the caller's own code; Detach interrupts a Read in progress
// and waits for a Write in progress. The zero Conn is not usable: every
// method returns an error.
type Conn struct {
	h handle
}

var _ net.Conn = (*Conn)(nil)

// newConn wraps raw, which connected to peer after peer passed the policy.
func newConn(raw net.Conn, network, host string, peer netip.AddrPort, d *Dialer) *Conn {
	c := new(Conn)
	newSocket(&c.h, raw, network, meterHost(host), peer, d)
	return c
}

// sock returns the socket, or nil for a nil or zero Conn.
func (c *Conn) sock() *socket {
	if c == nil {
		return nil
	}
	return c.h.s
}

// opErr wraps err in a *net.OpError that names the operation and the
// connection's addresses, as net.Conn errors do.
func (s *socket) opErr(op string, err error) error {
	if s == nil {
		return &net.OpError{Op: op, Err: err}
	}
	return &net.OpError{Op: op, Net: s.network, Source: s.raw.LocalAddr(), Addr: s.raw.RemoteAddr(), Err: err}
}

// begin starts an operation on c.
func (c *Conn) begin(op string) (*socket, error) {
	s := c.sock()
	if s == nil {
		return nil, &net.OpError{Op: op, Err: errZeroConn}
	}
	if err := c.h.begin(); err != nil {
		return nil, s.opErr(op, err)
	}
	return s, nil
}

// failed returns the error of an operation that failed with err: the
// handle's status error if the handle stopped being live meanwhile (a Close,
// a Detach), err itself otherwise, so that io.EOF stays io.EOF.
func (c *Conn) failed(s *socket, op string, err error) error {
	if serr := c.h.liveErr(); serr != nil {
		return s.opErr(op, serr)
	}
	return err
}

// Read reads from the connection, as [net.Conn] Read, and restarts the idle
// clock.
func (c *Conn) Read(p []byte) (int, error) {
	s, err := c.begin("read")
	if err != nil {
		return 0, err
	}
	var n int
	if t := s.tls.Load(); t != nil {
		n, err = t.Read(p)
	} else {
		n, err = s.raw.Read(p)
		s.received(n)
	}
	c.h.end()
	if err != nil {
		err = c.failed(s, "read", err)
	}
	return n, err
}

// Write writes to the connection, as [net.Conn] Write, and restarts the
// idle clock.
func (c *Conn) Write(p []byte) (int, error) {
	s, err := c.begin("write")
	if err != nil {
		return 0, err
	}
	var n int
	if t := s.tls.Load(); t != nil {
		n, err = t.Write(p)
	} else {
		n, err = s.raw.Write(p)
		s.sent(n)
	}
	c.h.end()
	if err != nil {
		err = c.failed(s, "write", err)
	}
	return n, err
}

// Close closes the connection; a TLS connection sends its close_notify
// first. Operations in progress are unblocked and fail. Closing a
// connection that was reclaimed, handed off or already closed returns an
// error that says which.
func (c *Conn) Close() error {
	s := c.sock()
	if s == nil {
		return &net.OpError{Op: "close", Err: errZeroConn}
	}
	if ok, st := c.h.retire(stClosed); !ok {
		return s.opErr("close", statusErr(st))
	}
	return s.close()
}

// CloseWrite shuts down the writing side of a TCP connection (after a TLS
// close_notify, if the connection uses TLS). It fails for UDP.
func (c *Conn) CloseWrite() error {
	s, err := c.begin("close")
	if err != nil {
		return err
	}
	defer c.h.end()
	if t := s.tls.Load(); t != nil {
		return t.CloseWrite()
	}
	if cw, ok := s.raw.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return s.opErr("close", errors.ErrUnsupported)
}

// CloseRead shuts down the reading side of a TCP connection
// (shutdown(SHUT_RD), which App Engine's Sockets API offered besides
// SHUT_WR): a later Read returns io.EOF instead of waiting for data, while
// writing goes on and the peer still receives what is written. As on App
// Engine, where the socket module then read without waiting, what the
// system had already received may still be read first. On a connection
// upgraded with [Conn.StartTLS] the reading side of the socket under TLS is
// shut down. Like any operation it restarts the idle clock.
//
// Once the reading side is shut down, CloseRead fails with an *[Error] for
// Op "shutdown" that matches syscall.ENOTCONN, as App Engine's socket
// module refused a second SHUT_RD before it reached the service; like
// that refusal, it does not restart the idle clock. It fails for UDP with
// errors.ErrUnsupported, and on a connection that is closed, reclaimed or
// handed off with the error that says which.
func (c *Conn) CloseRead() error {
	if s := c.sock(); s != nil && s.readShut.Load() && c.h.liveErr() == nil {
		return errReadShut()
	}
	s, err := c.begin("close")
	if err != nil {
		return err
	}
	defer c.h.end()
	cr, ok := s.raw.(interface{ CloseRead() error })
	if !ok {
		return s.opErr("close", errors.ErrUnsupported)
	}
	if !s.readShut.CompareAndSwap(false, true) {
		return errReadShut() // a concurrent CloseRead won
	}
	if err := cr.CloseRead(); err != nil {
		s.readShut.Store(false) // as App Engine, which marked it only once done
		return err
	}
	return nil
}

// WriteTo always fails: a Conn is connected, and App Engine's socket
// module refused to send to an explicit address on a connected socket,
// whatever the address (the peer's own included), with EISCONN. The error
// is an *[Error] for Op "sendto", with addr in Arg, that matches
// syscall.EISCONN and net.ErrWriteToConnected (what Go's connected
// *net.UDPConn returns for the same call); nothing is sent and the idle
// clock is not restarted. On a closed Conn the error matches
// net.ErrClosed instead, as App Engine checked the socket first. Use
// [Conn.Write], or an unconnected [PacketConn] to choose each datagram's
// destination.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	err := errConnected
	if s := c.sock(); s == nil {
		err = errZeroConn
	} else if status(c.h.state.Load()) == stClosed {
		err = net.ErrClosed
	}
	arg := "<nil>"
	if addr != nil {
		arg = addr.String()
	}
	return 0, &Error{Op: "sendto", Arg: arg, Err: err}
}

// KeepAlive restarts the idle clock without any traffic, as any operation
// does. It fails if the connection is closed, reclaimed or handed off.
func (c *Conn) KeepAlive() error {
	if _, err := c.begin("keepalive"); err != nil {
		return err
	}
	c.h.end()
	return nil
}

// LocalAddr returns the local address, or nil for a zero Conn.
func (c *Conn) LocalAddr() net.Addr {
	if s := c.sock(); s != nil {
		return s.raw.LocalAddr()
	}
	return nil
}

// RemoteAddr returns the remote address of the socket, or nil for a zero
// Conn. (With a [sockets.Dialer.Connect] seam, it is whatever Connect
// connected to; [Conn.Peer] is the address that passed the policy.)
func (c *Conn) RemoteAddr() net.Addr {
	if s := c.sock(); s != nil {
		return s.raw.RemoteAddr()
	}
	return nil
}

// Peer returns the exact address that passed the policy and was connected
// to, or the zero AddrPort for a zero Conn.
func (c *Conn) Peer() netip.AddrPort {
	if s := c.sock(); s != nil {
		return s.peer
	}
	return netip.AddrPort{}
}

// SetDeadline sets the read and write deadlines, as [net.Conn]. Setting a
// deadline does not restart the idle clock.
func (c *Conn) SetDeadline(t time.Time) error {
	return c.setDeadline("set deadline", t, net.Conn.SetDeadline)
}

// SetReadDeadline sets the read deadline, as [net.Conn].
func (c *Conn) SetReadDeadline(t time.Time) error {
	return c.setDeadline("set read deadline", t, net.Conn.SetReadDeadline)
}

// SetWriteDeadline sets the write deadline, as [net.Conn].
func (c *Conn) SetWriteDeadline(t time.Time) error {
	return c.setDeadline("set write deadline", t, net.Conn.SetWriteDeadline)
}

func (c *Conn) setDeadline(op string, t time.Time, set func(net.Conn, time.Time) error) error {
	s := c.sock()
	if s == nil {
		return &net.OpError{Op: op, Err: errZeroConn}
	}
	if err := c.h.liveErr(); err != nil {
		return s.opErr(op, err)
	}
	return set(s.raw, t)
}

// Usage returns the bytes sent and received so far. It can be called at any
// time, also after the connection is closed, reclaimed or handed off.
func (c *Conn) Usage() Usage {
	if s := c.sock(); s != nil {
		return s.usage.load().add(s.base)
	}
	return Usage{}
}

// StartTLS runs a TLS client handshake over the connection, bounded by ctx,
// and from then on Read and Write carry TLS: the connection stays this Conn,
// so it keeps its idle clock and meters (which then count the bytes on the
// wire) and can still be handed off with its TLS session. config is cloned;
// nil means a zero tls.Config. If config has no ServerName and does not skip
// verification, the host that was dialed is used.
//
// Use it where a protocol upgrades a connection it owns (IMAPS, SMTP after
// STARTTLS); a *tls.Conn made with tls.Client over a Conn works too, but
// cannot be handed off. If the handshake fails the connection is left in an
// unknown state: close it.
func (c *Conn) StartTLS(ctx context.Context, config *tls.Config) error {
	s, err := c.begin("starttls")
	if err != nil {
		return err
	}
	defer c.h.end()
	if s.tls.Load() != nil {
		return s.opErr("starttls", errAlreadyTLS)
	}
	if dialhook.Protocol(s.network) != "tcp" {
		return s.opErr("starttls", errors.ErrUnsupported)
	}
	if config == nil {
		config = new(tls.Config)
	} else {
		config = config.Clone()
	}
	if config.ServerName == "" && !config.InsecureSkipVerify {
		config.ServerName = s.host
	}
	t := tls.Client(wire{s}, config)
	if err := t.HandshakeContext(ctx); err != nil {
		return err
	}
	s.tls.Store(t)
	return nil
}

// ConnectionState returns the TLS state of a connection upgraded with
// [Conn.StartTLS], and whether it is one.
func (c *Conn) ConnectionState() (tls.ConnectionState, bool) {
	if s := c.sock(); s != nil {
		if t := s.tls.Load(); t != nil {
			return t.ConnectionState(), true
		}
	}
	return tls.ConnectionState{}, false
}
