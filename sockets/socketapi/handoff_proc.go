package socketapi

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/outbound-go/outbound/internal/dialhook"
)

// Hand-off between processes. The socket itself moves: the sending process
// passes its file descriptor to the receiving one over a Unix socket
// (SCM_RIGHTS, unix(7)), the kernel gives the receiver a descriptor of the
// same open socket, and the sender closes its own. What travels beside it
// is what the socket's owner needs to go on as if nothing happened: the
// network and host as dialed, the address that passed the policy, the
// application, the idle time so far and the idle limit, and the bytes
// counted so far. The exchange, over one Unix stream connection, is
//
//	sender                                receiver
//	request + the socket (SCM_RIGHTS) ->
//	                                   <- descriptor (reserved), or a refusal
//	ack                               ->
//	                                      the socket can be attached now
//	                                   <- done
//	closes its own copy of the socket
//
// Until the receiver has the ack, the descriptor is reserved but cannot be
// attached, and the sender has not given the descriptor to anyone; if
// either side goes away before then, the receiver closes what it got and
// the sender keeps its connection. Each message is a frame: a 4-byte
// big-endian length, then that many bytes.
//
// The receiver trusts the request no further than it can check it: the
// peer's user comes from the kernel (SO_PEERCRED), the socket's kind and
// state from getsockopt, and a connection's peer from getpeername, which
// must be the address the request says passed the sender's policy
// (issue 21, item 1). The rest (host name, application, idle time, byte
// counts) is the sender's word.

// handOffFrameTimeout is how long the receiving side waits for each message
// of a peer: its request, from the moment the inbox takes the connection,
// and its ack, from the moment the reply is sent. An honest sender sends
// each at once (DetachTo has the socket ready before it connects), so a
// peer that is slower is dropped, and connections that say nothing cannot
// hold the maxTransfers slots for long (issue 21, item 6).
const handOffFrameTimeout = time.Second

// frameWait returns how long r's inboxes wait for each message of a peer.
func (r *Registry) frameWait() time.Duration {
	if r.frameTimeout > 0 {
		return r.frameTimeout
	}
	return handOffFrameTimeout
}

// maxTransfers is how many exchanges an inbox runs at once; more wait in
// the kernel's accept queue.
const maxTransfers = 16

const (
	transferVersion = 1
	maxFrame        = 4096
	maxHostLen      = 1024
)

// Reply codes, the first byte of the receiver's frames.
const (
	replyOK      byte = 0 // followed by the descriptor
	replyFull    byte = 1
	replyForeign byte = 2
	replyBad     byte = 3
	replyGone    byte = 4 // the socket was reclaimed before the ack
	replyDone    byte = 5 // the descriptor can be attached
	ackByte      byte = 0x06
	replyPeer    byte = 7 // the socket's peer is not the one claimed
)

// transfer is what travels beside a socket.
type transfer struct {
	kind    byte
	network string
	host    string
	peer    netip.AddrPort // zero for a PacketConn
	app     string
	idle    time.Duration // how long the socket had been unused
	limit   time.Duration // its idle limit
	usage   Usage         // the bytes counted so far, in every process
}

func (t *transfer) marshal() []byte {
	b := make([]byte, 4, 64+len(t.network)+len(t.host)+len(t.app))
	b = append(b, transferVersion, t.kind)
	b = appendString(b, t.network)
	b = appendString(b, t.host)
	peer, _ := t.peer.MarshalBinary()
	b = appendString(b, string(peer))
	b = appendString(b, t.app)
	b = binary.BigEndian.AppendUint64(b, uint64(t.idle))
	b = binary.BigEndian.AppendUint64(b, uint64(t.limit))
	b = binary.BigEndian.AppendUint64(b, uint64(t.usage.Sent))
	b = binary.BigEndian.AppendUint64(b, uint64(t.usage.Received))
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// parseTransfer reads a request body, and checks that it describes a
// socket this package could have made.
func parseTransfer(b []byte) (*transfer, error) {
	bad := func(what string) (*transfer, error) {
		return nil, fmt.Errorf("%w: %s", ErrBadTransfer, what)
	}
	if len(b) < 2 || b[0] != transferVersion {
		return bad("unknown version")
	}
	t := &transfer{kind: b[1]}
	b = b[2:]
	var fields [4]string
	for i, limit := range []int{16, maxHostLen, 32, maxAppID} {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(limit) || n > uint64(len(b)-k) {
			return bad("truncated or oversized field")
		}
		fields[i] = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	if len(b) != 4*8 {
		return bad("wrong length")
	}
	t.network, t.host, t.app = fields[0], fields[1], fields[3]
	if err := t.peer.UnmarshalBinary([]byte(fields[2])); err != nil {
		return bad("peer address")
	}
	t.idle = time.Duration(binary.BigEndian.Uint64(b))
	t.limit = time.Duration(binary.BigEndian.Uint64(b[8:]))
	t.usage.Sent = int64(binary.BigEndian.Uint64(b[16:]))
	t.usage.Received = int64(binary.BigEndian.Uint64(b[24:]))
	switch {
	case dialhook.Protocol(t.network) == "":
		return bad("network " + t.network)
	case t.kind == kindPacket && (dialhook.Protocol(t.network) != "udp" || t.peer.IsValid() || t.host != ""):
		return bad("packet socket")
	case t.kind == kindConn && (!t.peer.IsValid() || !dialhook.FamilyMatches(t.network, t.peer.Addr())):
		return bad("connection without a valid peer")
	case t.kind != kindConn && t.kind != kindPacket:
		return bad("kind")
	case t.idle < 0 || t.limit <= 0 || t.usage.Sent < 0 || t.usage.Received < 0:
		return bad("negative time or count")
	}
	return t, nil
}

// fitsTransfer checks that c, the socket received, is what t announced.
func fitsTransfer(c net.Conn, t *transfer) error {
	switch c := c.(type) {
	case *net.TCPConn:
		if t.kind == kindConn && dialhook.Protocol(t.network) == "tcp" && c.RemoteAddr() != nil {
			return nil
		}
	case *net.UDPConn:
		if dialhook.Protocol(t.network) != "udp" {
			break
		}
		if t.kind == kindConn && c.RemoteAddr() != nil {
			return nil
		}
		// An unconnected socket bound only as ListenPacket binds: the
		// unspecified address.
		la, ok := c.LocalAddr().(*net.UDPAddr)
		if t.kind == kindPacket && c.RemoteAddr() == nil && ok && la.IP.IsUnspecified() {
			return nil
		}
	}
	return fmt.Errorf("%w: a %T (remote %v) does not fit a %s socket", ErrBadTransfer, c, c.RemoteAddr(), t.network)
}

// checkPeer compares c's peer, as the kernel reports it (getpeername: Go
// reads it when it makes c from a descriptor, and when a connect
// completes), with claim, the address that passed the sending process's
// policy. An IPv4-mapped IPv6 address is the IPv4 address it maps.
func checkPeer(c net.Conn, claim netip.AddrPort) error {
	var got netip.AddrPort
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		got = a.AddrPort()
	case *net.UDPAddr:
		got = a.AddrPort()
	}
	if got.IsValid() && got.Port() == claim.Port() && got.Addr().Unmap() == claim.Addr().Unmap() {
		return nil
	}
	return fmt.Errorf("%w: the socket is connected to %v, not to %v", ErrPeerMismatch, c.RemoteAddr(), claim)
}

// writeFrame writes one frame of code and body.
func writeFrame(uc *net.UnixConn, code byte, body []byte) error {
	b := make([]byte, 4, 5+len(body))
	binary.BigEndian.PutUint32(b, uint32(1+len(body)))
	b = append(b, code)
	b = append(b, body...)
	_, err := uc.Write(b)
	return err
}

// readFrame reads one frame of at most maxFrame bytes. It returns every file
// descriptor that came with it (the caller closes them); io.EOF if uc was
// closed before the frame began, io.ErrUnexpectedEOF if in the middle.
func readFrame(uc *net.UnixConn) ([]byte, []int, error) {
	var fds []int
	var hdr [4]byte
	if err := readFull(uc, hdr[:], &fds); err != nil {
		return nil, fds, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > maxFrame {
		return nil, fds, fmt.Errorf("%w: frame of %d bytes", ErrBadTransfer, n)
	}
	b := make([]byte, n)
	if err := readFull(uc, b, &fds); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fds, err
	}
	return b, fds, nil
}

// readFull fills b, collecting the descriptors that come with the bytes.
func readFull(uc *net.UnixConn, b []byte, fds *[]int) error {
	oob := make([]byte, oobSize)
	for n := 0; n < len(b); {
		m, got, err := readWithFDs(uc, b[n:], oob)
		*fds = append(*fds, got...)
		n += m
		if err != nil {
			if err == io.EOF && n > 0 {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if m == 0 {
			return io.ErrUnexpectedEOF
		}
	}
	return nil
}

// inbox is one Unix socket through which processes on this host hand
// sockets off into a Registry ([Registry.Listen]). Its goroutines end
// when it is closed, by [Registry.Close].
type inbox struct {
	reg  *Registry
	ln   *net.UnixListener
	path string
	file os.FileInfo // the socket file as made, so that close removes only it
	uid  int         // the user ID a peer must run as

	wg   sync.WaitGroup
	done chan struct{}
	once sync.Once
	err  error // of close

	// mu guards conns.
	mu    sync.Mutex
	conns map[*net.UnixConn]struct{} // nil once closed
}

// Listen serves r on a new Unix socket at path, through which processes of
// the same user on this host hand sockets off into r ([Conn.DetachTo],
// [PacketConn.DetachTo]): it receives each socket sent there, parks it in
// r, and gives the sender a descriptor for it, which [Dialer.Attach] or
// [Dialer.AttachPacket] in this process turns into a working connection,
// for the same application only, once, before the socket's idle time runs
// out ([Registry.IdleLeft]). The sender may exit as soon as DetachTo
// returns. Listen returns once the socket serves; r serves there until
// [Registry.Close], and may serve on several paths at once.
//
// The socket file is made with mode 0600 in path's directory, which the
// caller names and should keep private to the application (mode 0700).
// Listen fails if path exists: remove a file left by a process that died.
// (It listens on the host only, for its own user; what App Engine refused,
// and [Listen] refuses, is listening on the network.)
//
// What moves is the socket itself: the kernel passes it (SCM_RIGHTS,
// unix(7)), so the connection is the same, with the same peer, whatever
// the peer sent meanwhile waiting in it. What moves with it: the
// application, the address that passed the sender's policy, the host name
// it was dialed by, the idle time so far and the idle limit (the move does
// not restart the idle clock), and the bytes counted so far. What does
// not: bytes the sending process had read from the socket but not yet used
// (in a bufio.Reader, say), its deadlines, and TLS: a TLS session's state
// lives in the sending process's memory, so a connection upgraded with
// [Conn.StartTLS] is refused with [ErrTLSNotMovable] (hand it off within
// the process with [Conn.Detach], which keeps the session).
//
// What the receiver checks, and what it takes on the sender's word:
//
//   - the user: both processes must run as the same user. The socket file
//     is made with mode 0600, and each side reads the other's user ID from
//     the kernel (SO_PEERCRED) before any socket moves, refusing another
//     user's with [ErrForeignPeer];
//   - the socket: it must be a TCP or UDP socket of the kind announced,
//     not listening, connected or not as announced ([ErrBadTransfer]);
//   - the peer: the receiver reads a connection's peer from the socket
//     itself (getpeername) and refuses it with [ErrPeerMismatch] unless it
//     is the address the request says passed the sender's policy. So
//     [Conn.Peer] and [Conn.RemoteAddr] agree, and the attaching Dialer's
//     policy checks the address the socket is really connected to. A
//     connection made through the egress proxy ([sockets.Dialer.Proxy])
//     cannot be verified (its socket's peer is the proxy, which says
//     nothing of where the tunnel leads), so DetachTo refuses to move it,
//     with ErrPeerMismatch;
//   - the sender's word: the host name the connection was dialed by (the
//     key of the attaching Dialer's [Meter], and the name the attaching
//     Dialer's host rules see; a receiver that must refuse a destination
//     denies its addresses, which are verified), the application, the idle
//     time and limit, and the byte counts. A process of the same user could
//     also make its own sockets and hand them in: the receiver's policy,
//     applied at Attach to the verified peer (and, for an unconnected UDP
//     socket, to every datagram's destination), is what bounds where they
//     lead.
//
// A peer must send each of its messages within a second of the receiver's
// turn ([ErrSenderGone] otherwise), so that connections that say nothing
// cannot hold the sixteen transfers a Registry runs at once on each path.
// Hand-off between processes is implemented on Linux; elsewhere Listen and
// DetachTo fail with errors.ErrUnsupported.
//
// Listen fails with an *[Error] that wraps [ErrNoRegistry] for a nil or
// closed Registry, [ErrWeakKey] when r's Key is too short,
// errors.ErrUnsupported off Linux, or the system's error.
func (r *Registry) Listen(path string) error {
	fail := func(err error) error { return &Error{Op: "listen", Path: path, Err: err} }
	if r == nil {
		return fail(ErrNoRegistry)
	}
	if r.macKey() == nil {
		return fail(ErrWeakKey)
	}
	if r.isClosed() {
		return fail(errRegistryClosed)
	}
	ln, fi, err := listenRegistry(path)
	if err != nil {
		return fail(err)
	}
	uid := os.Geteuid()
	if r.peerUID != nil {
		uid = r.peerUID()
	}
	in := &inbox{
		reg:   r,
		ln:    ln,
		path:  path,
		file:  fi,
		uid:   uid,
		done:  make(chan struct{}),
		conns: make(map[*net.UnixConn]struct{}),
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		in.close()
		return fail(errRegistryClosed)
	}
	r.inboxes = append(r.inboxes, in)
	in.wg.Add(1) // before Close can wait for it
	r.mu.Unlock()
	go in.serve()
	return nil
}

// isClosed reports whether Close was called.
func (r *Registry) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// Close drains the Registry: it stops serving every path it serves
// ([Registry.Listen]), removing their socket files and ending the
// transfers in progress (their senders keep their connections), closes
// every socket parked in it, detached within the process or received from
// another, and waits for all of its goroutines. Sockets already attached
// are not the Registry's and stay open. From then on [Conn.Detach],
// [Dialer.Attach], [Dialer.AttachPacket], [Registry.IdleLeft] and Listen
// through the Registry fail with an *[Error] that wraps [ErrNoRegistry]
// (a connection that could not be detached stays usable). Close is
// idempotent and returns the errors of closing the Registry's Unix
// sockets, if any; Close of a nil Registry does nothing.
func (r *Registry) Close() error {
	if r == nil {
		return nil
	}
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		inboxes := r.inboxes
		r.inboxes = nil
		r.mu.Unlock()
		// First the inboxes, so that nothing is received once the parked
		// sockets are gathered: a transfer they end withdraws its socket.
		var errs []error
		for _, in := range inboxes {
			if err := in.close(); err != nil {
				errs = append(errs, &Error{Op: "listen", Path: in.path, Err: err})
			}
		}
		r.mu.Lock()
		parked := r.parked
		r.parked, r.received = nil, 0
		r.mu.Unlock()
		for _, p := range parked {
			p.s.close()
		}
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}

// close stops the inbox: it closes its Unix socket and removes the socket
// file, ends the transfers in progress, and waits for its goroutines.
func (in *inbox) close() error {
	in.once.Do(func() {
		close(in.done)
		in.err = in.ln.Close()
		in.mu.Lock()
		for uc := range in.conns {
			uc.Close()
		}
		in.conns = nil
		in.mu.Unlock()
		if fi, err := os.Lstat(in.path); err == nil && os.SameFile(fi, in.file) {
			os.Remove(in.path)
		}
		in.wg.Wait()
	})
	return in.err
}

// serve accepts connections, at most maxTransfers at a time. The caller
// has added serve to in.wg.
func (in *inbox) serve() {
	defer in.wg.Done()
	sem := make(chan struct{}, maxTransfers)
	var delay time.Duration
	for {
		select {
		case sem <- struct{}{}:
		case <-in.done:
			return
		}
		uc, err := in.ln.AcceptUnix()
		if err != nil {
			<-sem
			select {
			case <-in.done:
				return
			default:
			}
			// Out of descriptors, say: report, and back off as net/http's
			// Server does.
			in.report("", err)
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-in.done:
				t.Stop()
				return
			}
			continue
		}
		delay = 0
		in.mu.Lock()
		if in.conns == nil {
			in.mu.Unlock()
			uc.Close()
			return
		}
		in.conns[uc] = struct{}{}
		in.mu.Unlock()
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			err := in.receive(uc)
			uc.Close()
			in.mu.Lock()
			delete(in.conns, uc)
			in.mu.Unlock()
			<-sem
			if err != nil {
				if in.closing() {
					// Ended by Close: the sender keeps its connection.
					err.err = joinErr(errInboxClosed, err.err)
				}
				in.report(err.app, err.err)
			}
		}()
	}
}

// errInboxClosed is the reason of the transfers that Close ended.
var errInboxClosed = fmt.Errorf("socketapi: registry closed: %w", net.ErrClosed)

// closing reports whether the inbox is being closed.
func (in *inbox) closing() bool {
	select {
	case <-in.done:
		return true
	default:
		return false
	}
}

// report gives a failure to the Registry's OnReceiveError.
func (in *inbox) report(app string, err error) {
	if f := in.reg.OnReceiveError; f != nil {
		f(&Error{Op: "receive", App: app, Path: in.path, Err: err})
	}
}

// receiveError is a failed transfer and the application it was for.
type receiveError struct {
	app string
	err error
}

// receive runs the receiving side of one exchange (see the top of this
// file). Every descriptor received is closed or parked, whatever happens.
func (in *inbox) receive(uc *net.UnixConn) *receiveError {
	fail := func(app string, err error) *receiveError { return &receiveError{app, err} }
	wait := in.reg.frameWait()
	uc.SetDeadline(time.Now().Add(wait))
	uid, err := peerUID(uc)
	if err != nil {
		return fail("", err)
	}
	if uid != in.uid {
		// Refused before anything is read: a descriptor it may have sent
		// is dropped by the kernel with the connection.
		writeFrame(uc, replyForeign, nil)
		return fail("", fmt.Errorf("%w: user %d, want %d", ErrForeignPeer, uid, in.uid))
	}
	body, fds, err := readFrame(uc)
	if err != nil {
		closeFDs(fds)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, os.ErrDeadlineExceeded) {
			return fail("", joinErr(ErrSenderGone, err))
		}
		if errors.Is(err, ErrBadTransfer) {
			writeFrame(uc, replyBad, nil)
		}
		return fail("", err)
	}
	if len(fds) != 1 {
		closeFDs(fds)
		writeFrame(uc, replyBad, nil)
		return fail("", fmt.Errorf("%w: %d descriptors, want 1", ErrBadTransfer, len(fds)))
	}
	t, err := parseTransfer(body)
	if err != nil {
		closeFDs(fds)
		writeFrame(uc, replyBad, nil)
		return fail("", err)
	}
	c, err := adoptFD(fds[0]) // closes fds[0]
	if err == nil {
		if err = fitsTransfer(c, t); err != nil {
			c.Close()
		}
	}
	if err != nil {
		writeFrame(uc, replyBad, nil)
		return fail(t.app, err)
	}
	if t.kind == kindConn {
		// The peer is what the receiver's policy checks, what Peer
		// reports and what the meter counts under: the sender's claim
		// must be the socket's own.
		if err := checkPeer(c, t.peer); err != nil {
			c.Close()
			writeFrame(uc, replyPeer, nil)
			return fail(t.app, err)
		}
	}
	if t.idle >= t.limit {
		// Due for reclamation where it comes from: it is not taken in.
		c.Close()
		writeFrame(uc, replyGone, nil)
		return fail(t.app, ErrExpiredDescriptor)
	}
	s := &socket{
		raw:     c,
		network: t.network,
		host:    t.host,
		peer:    t.peer,
		base:    t.usage,
		born:    time.Now(),
		limit:   t.limit,
		reg:     in.reg,
		app:     t.app,
	}
	s.lastUse.Store(-int64(t.idle)) // idle() == t.idle now
	desc, err := in.reg.reserve(s, t)
	if err != nil {
		c.Close()
		if err == ErrRegistryFull {
			writeFrame(uc, replyFull, nil)
		}
		return fail(t.app, err)
	}
	// From here on the socket is in the registry, with its idle clock
	// running; withdraw takes it out and closes it. The sender has its
	// time for the ack from now.
	uc.SetDeadline(time.Now().Add(wait))
	if err := writeFrame(uc, replyOK, []byte(desc)); err != nil {
		in.reg.withdraw(s)
		return fail(t.app, joinErr(ErrSenderGone, err))
	}
	ack, fds, err := readFrame(uc)
	closeFDs(fds)
	if err != nil || len(ack) != 1 || ack[0] != ackByte {
		in.reg.withdraw(s)
		if err == nil {
			err = fmt.Errorf("%w: no ack", ErrBadTransfer)
		} else if !errors.Is(err, ErrBadTransfer) {
			err = joinErr(ErrSenderGone, err)
		}
		return fail(t.app, err)
	}
	if !in.reg.commit(s) {
		// Reclaimed meanwhile: its idle time ran out in transit.
		writeFrame(uc, replyGone, nil)
		return fail(t.app, ErrExpiredDescriptor)
	}
	if err := writeFrame(uc, replyDone, nil); err != nil {
		// The sender cannot learn that the move completed, so it keeps
		// its connection and nobody has the descriptor.
		in.reg.withdraw(s)
		return fail(t.app, joinErr(ErrSenderGone, err))
	}
	return nil
}

// reserve parks s, received from another process, as pending, and returns
// its descriptor; ErrRegistryFull if the registry holds its cap of
// received sockets, errRegistryClosed if it is closed. The descriptor
// expires when s's idle time runs out.
func (r *Registry) reserve(s *socket, t *transfer) (string, error) {
	p := parked{s: s, remote: true, pending: true, kind: t.kind}
	p.expiry = r.now().Add(t.limit - t.idle).UnixNano()
	rand.Read(p.nonce[:])
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return "", errRegistryClosed
	}
	if r.received >= r.maxReceived() {
		r.mu.Unlock()
		return "", ErrRegistryFull
	}
	if r.parked == nil {
		r.parked = make(map[uint64]parked)
	}
	r.nextID++
	id := r.nextID
	s.parkID = id
	r.parked[id] = p
	r.received++
	r.mu.Unlock()
	// The idle clock runs on from the time the socket had been idle.
	s.mu.Lock()
	s.timer = time.AfterFunc(s.untilIdle(0), s.onTimer)
	s.mu.Unlock()
	return r.encode(descInfo{version: descVersionRemote, id: id, nonce: p.nonce, kind: t.kind, expiry: p.expiry, app: t.app}), nil
}

// commit makes the pending socket s attachable; false if it is no longer
// parked.
func (r *Registry) commit(s *socket) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.parked[s.parkID]
	if !ok || p.s != s {
		return false
	}
	p.pending = false
	r.parked[s.parkID] = p
	return true
}

// withdraw takes s, received but never handed out, out of the registry
// and closes the receiver's copy of it.
func (r *Registry) withdraw(s *socket) {
	r.mu.Lock()
	if p, ok := r.parked[s.parkID]; ok && p.s == s {
		r.unpark(s.parkID)
	}
	r.mu.Unlock()
	s.close()
}

// DetachTo hands the connection off to another process on this host: the
// one serving a [Registry] on the Unix socket at path ([Registry.Listen]).
// It returns the descriptor under which that Registry holds the socket,
// for the receiving process's [Dialer.Attach] with the same AppID as the
// Dialer that made c; the descriptor is a plain string, for any payload (a
// task queue message, a file, a pipe). When DetachTo returns, the socket
// has left this process: c is retired (every operation fails with an error
// that matches [ErrHandedOff]), its totals are given to the Meter's
// OnClose as for a closed socket (the Meter of each process counts the
// bytes carried there), and this process may exit. See [Registry.Listen]
// for what moves with the socket, which does not include TLS (a
// connection upgraded with [Conn.StartTLS] is refused with
// [ErrTLSNotMovable]), and for what the receiver verifies. c's Dialer
// needs no Registry of its own.
//
// Only a connection whose socket is connected to the address that passed
// the policy ([Conn.Peer]) can move: the receiver reads the socket's peer
// from the kernel and refuses any other. A connection made through the
// egress proxy ([sockets.Dialer.Proxy]), whose socket's peer is the proxy,
// or one a [sockets.Dialer.Connect] seam connected elsewhere, is refused
// here with [ErrPeerMismatch] before the receiver is reached.
//
// ctx bounds the whole exchange. DetachTo interrupts a Read in progress on
// c and waits for a Write in progress, as [Conn.Detach] does, before it
// connects to the receiver. It fails with an *[Error] wrapping
// [ErrNoRegistry] when nothing serves path, [ErrNoAccess] when the
// system does not let this process connect to the socket file,
// [ErrForeignPeer] when the receiver runs as another user,
// [ErrPeerMismatch], [ErrRegistryFull] when the receiving Registry is
// full, [ErrReceiverGone] when the receiver went away during the exchange,
// [ErrBadTransfer], [ErrTLSNotMovable], ctx's error,
// errors.ErrUnsupported off Linux or for a connection with no file
// descriptor (one made through a Connect seam that returns something else
// than a TCP or UDP socket, or through an https:// proxy), or the reason c
// is no longer usable ([ErrReclaimed], [ErrHandedOff], net.ErrClosed). In
// every case but the last, c stays usable, with its deadlines as they were
// unless a Read was interrupted (then the read deadline is cleared), and
// the receiver holds no copy of the socket that anyone can attach.
func (c *Conn) DetachTo(ctx context.Context, path string) (string, error) {
	s := c.sock()
	if s == nil {
		return "", &Error{Op: "detach", Path: path, Err: errZeroConn}
	}
	if s.tls.Load() != nil {
		return "", &Error{Op: "detach", App: s.app, Path: path, Err: ErrTLSNotMovable}
	}
	return detachTo(ctx, &c.h, s, kindConn, path)
}

// DetachTo hands the packet socket off to another process on this host, as
// [Conn.DetachTo] does a connection; the receiving process picks it up with
// [Dialer.AttachPacket], and from then on its datagrams are checked against
// that Dialer's policy. It fails as Conn.DetachTo does.
func (p *PacketConn) DetachTo(ctx context.Context, path string) (string, error) {
	s := p.sock()
	if s == nil {
		return "", &Error{Op: "detach", Path: path, Err: errZeroConn}
	}
	return detachTo(ctx, &p.h, s, kindPacket, path)
}

// errNoFD is the reason a connection without a file descriptor cannot move.
var errNoFD = fmt.Errorf("socketapi: connection has no file descriptor to move: %w", errors.ErrUnsupported)

// detachTo runs the sending side of the exchange for s, whose handle is h.
func detachTo(ctx context.Context, h *handle, s *socket, kind byte, path string) (string, error) {
	fail := func(err error) (string, error) {
		return "", &Error{Op: "detach", App: s.app, Path: path, Err: err}
	}
	if len(s.app) > maxAppID {
		return fail(errLongAppID)
	}
	if err := h.liveErr(); err != nil {
		return fail(err)
	}
	sc, ok := s.raw.(syscall.Conn)
	if !ok {
		return fail(errNoFD)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return fail(errNoFD)
	}
	if kind == kindConn {
		// A receiver refuses a socket whose peer is not the address that
		// passed the policy: one through the egress proxy, whose peer is
		// the proxy, or one a Connect seam sent elsewhere. Refused here,
		// before the receiver hears of it.
		if err := checkPeer(s.raw, s.peer); err != nil {
			return fail(err)
		}
	}
	// The socket is made ready (a Write in progress ended) before the
	// receiver is reached: it gives each message of the exchange a second.
	interrupted, err := retireForHandOff(h, s)
	if err != nil {
		return fail(err)
	}
	// restore gives the connection back to its owner after a failure:
	// the receiver holds no copy anyone can attach.
	restore := func(err error) (string, error) {
		h.unretire()
		if interrupted {
			s.raw.SetReadDeadline(time.Time{})
		}
		return fail(err)
	}
	uc, err := dialRegistry(ctx, path)
	if err != nil {
		return restore(err)
	}
	defer uc.Close()
	stop := context.AfterFunc(ctx, func() { uc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	// ioErr is the error of a failed exchange: ctx's if it ended it.
	ioErr := func(sentinel, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		return joinErr(sentinel, err)
	}
	if uid, err := peerUID(uc); err != nil {
		return restore(err)
	} else if uid != os.Geteuid() {
		return restore(fmt.Errorf("%w: user %d, want %d", ErrForeignPeer, uid, os.Geteuid()))
	}
	t := transfer{
		kind:    kind,
		network: s.network,
		host:    s.host,
		peer:    s.peer,
		app:     s.app,
		idle:    s.idle(),
		limit:   s.limit,
		usage:   s.usage.load().add(s.base),
	}
	serr := sendWithFD(uc, t.marshal(), rc)
	// A receiver that refuses at once (another user's) replies and
	// closes without reading: its reply may be waiting although the send
	// failed.
	reply, fds, err := readFrame(uc)
	closeFDs(fds)
	if err != nil {
		if serr != nil {
			err = serr
		}
		return restore(ioErr(ErrReceiverGone, err))
	}
	if serr != nil && reply[0] == replyOK {
		return restore(ioErr(ErrReceiverGone, serr))
	}
	switch reply[0] {
	case replyOK:
	case replyFull:
		return restore(ErrRegistryFull)
	case replyForeign:
		return restore(ErrForeignPeer)
	case replyGone:
		return restore(ErrExpiredDescriptor)
	case replyPeer:
		return restore(ErrPeerMismatch)
	default:
		return restore(fmt.Errorf("%w: reply %d", ErrBadTransfer, reply[0]))
	}
	desc := string(reply[1:])
	if len(desc) == 0 || len(desc) > maxDescLen {
		return restore(fmt.Errorf("%w: descriptor of %d bytes", ErrBadTransfer, len(desc)))
	}
	if testHookReplied != nil {
		testHookReplied(desc)
	}
	if err := writeFrame(uc, ackByte, nil); err != nil {
		return restore(ioErr(ErrReceiverGone, err))
	}
	done, fds, err := readFrame(uc)
	closeFDs(fds)
	if err != nil {
		return restore(ioErr(ErrReceiverGone, err))
	}
	switch {
	case done[0] == replyGone:
		return restore(ErrExpiredDescriptor)
	case done[0] != replyDone || len(done) != 1:
		return restore(fmt.Errorf("%w: reply %d", ErrBadTransfer, done[0]))
	}
	// The receiver holds the socket and the descriptor is live: close
	// this process's copy (the connection stays open in the receiver's),
	// and give the totals to the meter, as for a closed socket.
	s.close()
	return desc, nil
}

// testHookReplied, if set, is called by the sender with the descriptor it
// was given, before it sends its ack: a test seam to make a sender go away
// half-way.
var testHookReplied func(desc string)

// unretire makes a handle retired for a hand-off live again.
func (h *handle) unretire() {
	for {
		v := h.state.Load()
		if status(v) != stHandedOff {
			return
		}
		if h.state.CompareAndSwap(v, v&^(0xff<<statusShift)) {
			return
		}
	}
}

// joinErr wraps sentinel and the error behind it.
func joinErr(sentinel, err error) error {
	if err == nil || errors.Is(err, sentinel) {
		return sentinel
	}
	return fmt.Errorf("%w: %w", sentinel, err)
}
