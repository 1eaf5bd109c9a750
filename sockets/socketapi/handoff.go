package socketapi

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// The errors of a hand-off. Each is wrapped in an *[Error] for Op
// "detach", "attach", "listen", "receive" or "idle left".
var (
	// ErrBadDescriptor: the descriptor is not one this Registry made: garbage,
	// forged, altered, truncated, or made by another Registry.
	ErrBadDescriptor = errors.New("socketapi: invalid socket descriptor")

	// ErrWrongApp: the descriptor is genuine but belongs to another
	// application than the attaching Dialer's AppID.
	ErrWrongApp = errors.New("socketapi: socket descriptor belongs to another application")

	// ErrStaleDescriptor: the descriptor was genuine, but its socket is no
	// longer parked under it: it was picked up already (a replay), closed,
	// reclaimed for idleness, expired ([ErrExpiredDescriptor] matches it
	// too), or detached again under a newer descriptor.
	ErrStaleDescriptor = errors.New("socketapi: stale socket descriptor")

	// ErrExpiredDescriptor: the descriptor of a socket received from
	// another process ([Conn.DetachTo]) was presented after its socket's
	// idle time ran out. It matches [ErrStaleDescriptor] too.
	ErrExpiredDescriptor error = &sentinel{"socketapi: expired socket descriptor", []error{ErrStaleDescriptor}}

	// ErrNoRegistry: the Dialer has no Registry, so its connections cannot
	// be handed off, or its Registry was closed ([Registry.Close]; the
	// error's text says so), or, for [Conn.DetachTo], no [Registry] serves
	// the path ([Registry.Listen]): no such file, or a socket file no
	// process listens on.
	ErrNoRegistry = errors.New("socketapi: no registry for socket hand-off")

	// ErrWeakKey: the Registry's Key is set but shorter than 32 bytes, so
	// its descriptors could be forged; nothing is handed off or picked up
	// through it.
	ErrWeakKey = errors.New("socketapi: registry key shorter than 32 bytes")

	// ErrWrongKind: the descriptor is genuine but names a packet socket
	// given to [Dialer.Attach], or a connection given to
	// [Dialer.AttachPacket]. The socket stays parked.
	ErrWrongKind = errors.New("socketapi: socket descriptor names another kind of socket")

	// ErrTLSNotMovable: [Conn.DetachTo] was asked to move a connection
	// upgraded with [Conn.StartTLS] to another process. A TLS session's
	// keys and sequence numbers live in the memory of the process that
	// made it, so the socket alone cannot carry it on; hand it off within
	// the process with [Conn.Detach] instead. The connection stays usable.
	ErrTLSNotMovable = errors.New("socketapi: a TLS connection cannot move to another process")

	// ErrForeignPeer: the process at the other end of a hand-off between
	// processes runs as another user: its effective user ID, from the
	// kernel's SO_PEERCRED, differs. Nothing was handed over.
	ErrForeignPeer = errors.New("socketapi: hand-off peer runs as another user")

	// ErrNoAccess: [Conn.DetachTo] may not connect to the registry's socket
	// file (the system refused with EACCES or EPERM: the file or a
	// directory above it is another user's, or its mode keeps this user
	// out). It is joined with the system's error. Nothing was handed over.
	ErrNoAccess = errors.New("socketapi: no access to the registry's socket file")

	// ErrRegistryFull: the receiving Registry already holds as many
	// sockets from other processes as it may ([Registry.MaxReceived]).
	// The sender's connection stays usable.
	ErrRegistryFull = errors.New("socketapi: receiving registry is full")

	// ErrSenderGone: the sending process closed its end, went away, or
	// was silent for longer than a second when its turn came, before the
	// move completed; the receiver closed the socket it got, if any.
	// Reported by the receiving side ([Registry.OnReceiveError]).
	ErrSenderGone = errors.New("socketapi: sender went away before the hand-off completed")

	// ErrReceiverGone: the receiving process closed its end, or went
	// away, before the move completed. The sender's connection stays
	// usable.
	ErrReceiverGone = errors.New("socketapi: receiver went away before the hand-off completed")

	// ErrPeerMismatch: in a hand-off between processes, the peer of the
	// socket, as the kernel reports it (getpeername), is not the address
	// that passed the sending process's policy. The receiver refuses such a
	// socket before anything is registered, whatever the sender claims; the
	// sender refuses to move one before it connects ([Conn.DetachTo]): a
	// connection made through the egress proxy, whose socket's peer is the
	// proxy, or one a Connect seam sent elsewhere. The sender keeps its
	// connection.
	ErrPeerMismatch = errors.New("socketapi: socket's peer is not the address that passed the policy")

	// ErrBadTransfer: a hand-off between processes broke the protocol: a
	// message that does not parse, no socket or more than one, a socket
	// that is not a TCP or UDP socket of the kind announced (a listening
	// one, say), or a reply that makes no sense. Nothing was handed over.
	ErrBadTransfer = errors.New("socketapi: malformed socket transfer")
)

// errRegistryClosed is the reason of a hand-off through a Registry that was
// closed: it matches ErrNoRegistry.
var errRegistryClosed error = &sentinel{"socketapi: registry closed", []error{ErrNoRegistry}}

// Registry holds the sockets handed off as descriptors until they are picked
// up, as App Engine let a socket opened in one request be used in a later
// task. Share one Registry between the [Dialer] that makes connections and
// the Dialers that attach them ([Dialer.Registry]); a descriptor works only
// with the Registry that made it, and only for the application that made it
// ([Dialer.AppID]).
//
// A descriptor is the socket's number, a random nonce and the application
// identity, authenticated with HMAC-SHA256 under the Registry's key, in
// URL-safe base64: it can travel in a task payload or a queue message, but
// it names a socket parked in this Registry, in this process. A parked
// socket keeps its idle clock: one not picked up within its idle timeout is
// reclaimed, and its descriptor goes stale.
//
// Sockets move between processes of the same user on one host through the
// kernel: the receiving process serves its Registry on a Unix socket
// ([Registry.Listen]), and the sending one detaches a connection into it
// ([Conn.DetachTo], [PacketConn.DetachTo]); see Listen for how, for what
// crosses the move and what does not, and for what the receiver verifies
// and what it takes on the sender's word.
//
// [Registry.Close] drains a Registry: it stops serving and closes every
// socket still parked.
//
// The zero Registry is ready to use; a nil *Registry holds nothing. A
// Registry is safe for concurrent use and must not be copied after first
// use.
type Registry struct {
	// Key authenticates descriptors. Nil means a random 32-byte key made
	// on first use, so that descriptors cannot be forged by anyone outside
	// the process. A key that is set must be at least 32 bytes of secret,
	// random data (as for HMAC-SHA256, RFC 2104 section 3): with a shorter
	// one, empty included, every [Conn.Detach] and [Dialer.Attach] through
	// the Registry fails with [ErrWeakKey], rather than hand out
	// descriptors anyone could forge. Set it before first use: the
	// Registry copies it then, and later changes to the slice have no
	// effect.
	Key []byte

	// MaxReceived caps the sockets received from other processes
	// ([Registry.Listen]) that wait in the Registry to be attached, those
	// still being received included: each holds a file descriptor. A
	// transfer beyond it is refused with [ErrRegistryFull], and the
	// sender keeps its connection. Zero or negative means 256. Sockets
	// detached within the process ([Conn.Detach]) do not count. Set it
	// before [Registry.Listen].
	MaxReceived int

	// OnReceiveError, if set, is called with the error of each transfer
	// from another process that failed on the receiving side: a
	// *[Error] with Op "receive", wrapping [ErrSenderGone],
	// [ErrRegistryFull], [ErrForeignPeer], [ErrPeerMismatch],
	// [ErrBadTransfer], [ErrExpiredDescriptor], net.ErrClosed (for a
	// transfer that [Registry.Close] ended) or the system's error. The
	// sender, if still there, gets its own error. It is called on the
	// Registry's goroutines, possibly concurrently, and must not block.
	// Set it before [Registry.Listen].
	OnReceiveError func(error)

	// clock, if set, replaces time.Now for the expiry of the descriptors
	// of received sockets: a test seam.
	clock func() time.Time
	// peerUID, if set, replaces the effective user ID that the peers of
	// the Registry's inboxes must run as: a test seam.
	peerUID func() int
	// frameTimeout, if set, replaces handOffFrameTimeout: a test seam.
	frameTimeout time.Duration

	keyOnce sync.Once
	key     []byte // the copy of Key, or the random key; nil when Key is weak

	closeOnce sync.Once
	closeErr  error

	// mu guards the parked sockets, the next socket number, the count of
	// received sockets, the inboxes, and closed.
	mu       sync.Mutex
	parked   map[uint64]parked
	nextID   uint64
	received int // entries of parked with remote set
	inboxes  []*inbox
	closed   bool
}

// defaultMaxReceived is how many sockets received from other processes a
// Registry holds at once when its MaxReceived is zero.
const defaultMaxReceived = 256

func (r *Registry) maxReceived() int {
	if r.MaxReceived > 0 {
		return r.MaxReceived
	}
	return defaultMaxReceived
}

func (r *Registry) now() time.Time {
	if r.clock != nil {
		return r.clock()
	}
	return time.Now()
}

type parked struct {
	s     *socket
	nonce [nonceLen]byte
	// remote marks a socket received from another process: it counts
	// against MaxReceived, its descriptor expires, and attaching it checks
	// the policy again and keeps its idle clock.
	remote bool
	// pending marks a received socket whose sender has not yet confirmed
	// the descriptor: it cannot be attached.
	pending bool
	kind    byte
	expiry  int64 // unix nanoseconds; for remote sockets
}

// The kinds of socket a descriptor names.
const (
	kindConn   byte = 1 // a *Conn: TCP or connected UDP
	kindPacket byte = 2 // a *PacketConn: unconnected UDP
)

// Descriptor versions: 1 for a socket detached within the process,
//
//	version(1) id(8) nonce(16) uvarint(len(app)) app mac(32)
//
// and 2 for a socket received from another process,
//
//	version(2) id(8) nonce(16) kind(1) expiry(8) uvarint(len(app)) app mac(32)
const (
	descVersion       = 1
	descVersionRemote = 2
	nonceLen          = 16
	maxAppID          = 1024
	maxDescLen        = 2048
)

// errLongAppID is the reason Detach refuses a Dialer whose AppID is too
// long to fit a descriptor.
var errLongAppID = errors.New("socketapi: application identity longer than 1024 bytes")

// minKeyLen is the shortest Key a Registry accepts: the output size of
// SHA-256, the least RFC 2104 section 3 recommends for an HMAC key.
const minKeyLen = sha256.Size

// macKey returns the key that authenticates descriptors, fixed on first
// use, or nil when Key is too short to be used.
func (r *Registry) macKey() []byte {
	r.keyOnce.Do(func() {
		switch {
		case r.Key == nil:
			r.key = make([]byte, minKeyLen)
			rand.Read(r.key)
		case len(r.Key) >= minKeyLen:
			r.key = bytes.Clone(r.Key)
		}
	})
	return r.key
}

// Len returns the number of sockets parked, waiting to be picked up; zero
// for a nil Registry.
func (r *Registry) Len() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.parked)
}

// IdleLeft returns how long the socket that descriptor names may stay
// parked, unused, before it is reclaimed and the descriptor goes stale:
// its idle limit less the time it has been idle, which for a socket
// received from another process includes its idle time there
// ([Registry.Listen]). Attaching the socket does not restart its clock if
// it came from another process ([Dialer.Attach]); every use after that
// does. The descriptor is not used up.
//
// IdleLeft fails as Attach does, with an *[Error] for Op "idle left"
// wrapping [ErrBadDescriptor], [ErrStaleDescriptor] (or
// [ErrExpiredDescriptor]), [ErrNoRegistry] for a nil or closed Registry,
// or [ErrWeakKey]; it does not check the application, which an Attach
// does.
func (r *Registry) IdleLeft(descriptor string) (time.Duration, error) {
	fail := func(app string, err error) (time.Duration, error) {
		return 0, &Error{Op: "idle left", App: app, Err: err}
	}
	if r == nil {
		return fail("", ErrNoRegistry)
	}
	if r.macKey() == nil {
		return fail("", ErrWeakKey)
	}
	info, ok := r.decode(descriptor)
	if !ok {
		return fail("", ErrBadDescriptor)
	}
	now := r.now()
	r.mu.Lock()
	closed := r.closed
	p, ok := r.parked[info.id]
	r.mu.Unlock()
	if closed {
		return fail(info.app, errRegistryClosed)
	}
	var left time.Duration
	if ok && p.nonce == info.nonce && !p.pending {
		left = p.s.limit - p.s.idle()
		if p.remote {
			left = min(left, time.Duration(info.expiry-now.UnixNano()))
		}
	}
	if left <= 0 {
		if info.version == descVersionRemote && now.UnixNano() >= info.expiry {
			return fail(info.app, ErrExpiredDescriptor)
		}
		return fail(info.app, ErrStaleDescriptor)
	}
	return left, nil
}

// park puts s, whose handle was retired, in the registry and returns its
// descriptor; false, and s untouched, if the registry is closed.
func (r *Registry) park(s *socket) (string, bool) {
	p := parked{s: s, kind: kindConn}
	rand.Read(p.nonce[:])
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return "", false
	}
	if r.parked == nil {
		r.parked = make(map[uint64]parked)
	}
	r.nextID++
	id := r.nextID
	s.parkID = id
	s.owner.Store(nil)
	s.touch()
	r.parked[id] = p
	r.mu.Unlock()
	return r.encode(descInfo{version: descVersion, id: id, nonce: p.nonce, kind: kindConn, app: s.app}), true
}

// reclaimParked removes s if it is parked and has been idle for its limit.
// A nil Registry holds nothing.
func (r *Registry) reclaimParked(s *socket) bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.parked[s.parkID]; !ok || p.s != s || s.idle() < s.limit {
		return false
	}
	r.unpark(s.parkID)
	return true
}

// unpark removes the entry id. r.mu is held.
func (r *Registry) unpark(id uint64) {
	if p, ok := r.parked[id]; ok {
		if p.remote {
			r.received--
		}
		delete(r.parked, id)
	}
}

// descInfo is what a descriptor says.
type descInfo struct {
	version byte
	id      uint64
	nonce   [nonceLen]byte
	kind    byte  // kindConn for version 1
	expiry  int64 // unix nanoseconds; version 2 only
	app     string
}

// encode lays out the descriptor of version d.version and appends the MAC
// of all of it. The key must have been checked with macKey.
func (r *Registry) encode(d descInfo) string {
	b := make([]byte, 0, 1+8+nonceLen+1+8+binary.MaxVarintLen16+len(d.app)+sha256.Size)
	b = append(b, d.version)
	b = binary.BigEndian.AppendUint64(b, d.id)
	b = append(b, d.nonce[:]...)
	if d.version == descVersionRemote {
		b = append(b, d.kind)
		b = binary.BigEndian.AppendUint64(b, uint64(d.expiry))
	}
	b = binary.AppendUvarint(b, uint64(len(d.app)))
	b = append(b, d.app...)
	m := hmac.New(sha256.New, r.macKey())
	m.Write(b)
	b = m.Sum(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decode checks the descriptor's MAC and returns its contents.
func (r *Registry) decode(desc string) (d descInfo, ok bool) {
	key := r.macKey()
	if key == nil || len(desc) > maxDescLen {
		return d, false
	}
	b, err := base64.RawURLEncoding.DecodeString(desc)
	if err != nil || len(b) < 1+8+nonceLen+1+sha256.Size {
		return d, false
	}
	body, mac := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	m := hmac.New(sha256.New, key)
	m.Write(body)
	if !hmac.Equal(mac, m.Sum(nil)) {
		return d, false
	}
	d.version = body[0]
	d.id = binary.BigEndian.Uint64(body[1:])
	copy(d.nonce[:], body[1+8:])
	rest := body[1+8+nonceLen:]
	switch d.version {
	case descVersion:
		d.kind = kindConn
	case descVersionRemote:
		if len(rest) < 1+8+1 {
			return d, false
		}
		d.kind = rest[0]
		d.expiry = int64(binary.BigEndian.Uint64(rest[1:]))
		rest = rest[1+8:]
		if d.kind != kindConn && d.kind != kindPacket {
			return d, false
		}
	default:
		return d, false
	}
	n, k := binary.Uvarint(rest)
	if k <= 0 || n != uint64(len(rest)-k) {
		return d, false
	}
	d.app = string(rest[k:])
	return d, true
}

// take removes the socket desc names from the registry, for Dialer d
// (which has a Registry, r) attaching it as a socket of kind.
func (r *Registry) take(d *Dialer, desc string, kind byte) (*socket, error) {
	app := d.AppID
	if r.macKey() == nil {
		return nil, &Error{Op: "attach", Err: ErrWeakKey}
	}
	info, ok := r.decode(desc)
	if !ok {
		return nil, &Error{Op: "attach", Err: ErrBadDescriptor}
	}
	if info.app != app {
		return nil, &Error{Op: "attach", App: info.app, AttachApp: app, Err: ErrWrongApp}
	}
	now := r.now()
	expired := info.version == descVersionRemote && now.UnixNano() >= info.expiry
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, &Error{Op: "attach", App: info.app, Err: errRegistryClosed}
	}
	p, ok := r.parked[info.id]
	if !ok || p.nonce != info.nonce || p.pending {
		r.mu.Unlock()
		if expired {
			return nil, &Error{Op: "attach", App: info.app, Err: ErrExpiredDescriptor}
		}
		return nil, &Error{Op: "attach", App: info.app, Err: ErrStaleDescriptor}
	}
	if expired {
		// Its time is up: the socket goes, as the reclaimer would take it.
		r.unpark(info.id)
		r.mu.Unlock()
		p.s.close()
		return nil, &Error{Op: "attach", App: info.app, Err: ErrExpiredDescriptor}
	}
	if p.s.app != app {
		// The second wall: a descriptor that passed its MAC still names a
		// socket of another application. It stays parked for its owner.
		r.mu.Unlock()
		return nil, &Error{Op: "attach", App: p.s.app, AttachApp: app, Err: ErrWrongApp}
	}
	if p.kind != kind {
		r.mu.Unlock()
		return nil, &Error{Op: "attach", App: app, Err: ErrWrongKind}
	}
	if p.remote && kind == kindConn {
		// The socket was checked by another process's policy when it was
		// dialed: this process's policy has its say too. It stays parked.
		if err := d.policy().Check(p.s.network, p.s.host, p.s.peer); err != nil {
			r.mu.Unlock()
			return nil, &Error{Op: "attach", App: app, Err: err}
		}
	}
	r.unpark(info.id)
	r.mu.Unlock()
	s := p.s
	if p.remote {
		// The socket joins this process's meter; its idle clock runs on
		// from where it was: the move was no use of the socket.
		s.meter = d.Meter
		if s.meter != nil && s.host != "" {
			s.total = s.meter.open(s.host, &s.usage)
		}
	} else {
		s.touch()
	}
	return s, nil
}

// attach picks up the connection desc names, for Dialer d, which has a
// Registry, r.
func (r *Registry) attach(d *Dialer, desc string) (*Conn, error) {
	s, err := r.take(d, desc, kindConn)
	if err != nil {
		return nil, err
	}
	c := new(Conn)
	c.h.s = s
	s.owner.Store(&c.h)
	// The new owner starts without deadlines: the old owner's, and the one
	// Detach may have used to interrupt a read, are gone.
	s.raw.SetDeadline(time.Time{})
	return c, nil
}

// Detach hands the connection off: it returns an opaque descriptor that
// [Dialer.Attach] turns back into a working *Conn, in this process, for a
// Dialer with the same [Registry] and [Dialer.AppID] as the one that made
// the connection. From the moment Detach is called, c is retired: every
// operation on it fails with an error that matches [ErrHandedOff], so two
// owners never use one socket. A Read in progress on c is interrupted and a
// Write in progress is waited for. A connection upgraded with
// [Conn.StartTLS] keeps its TLS session. To hand the connection to another
// process, use [Conn.DetachTo].
//
// The socket stays open, parked, until it is attached or reclaimed: its idle
// clock keeps running, and a descriptor not picked up within the idle
// timeout goes stale ([Registry.IdleLeft]), or until the Registry is
// closed. Detach fails with an *[Error] that wraps [ErrNoRegistry] if the
// Dialer had no Registry or its Registry was closed, [ErrWeakKey] if the
// Registry's Key is too short (c stays usable in these cases), or the
// reason c is no longer usable ([ErrReclaimed], [ErrHandedOff],
// net.ErrClosed).
func (c *Conn) Detach() (string, error) {
	s := c.sock()
	if s == nil {
		return "", &Error{Op: "detach", Err: errZeroConn}
	}
	if s.reg == nil {
		return "", &Error{Op: "detach", App: s.app, Err: ErrNoRegistry}
	}
	if len(s.app) > maxAppID {
		return "", &Error{Op: "detach", Err: errLongAppID}
	}
	if s.reg.macKey() == nil {
		return "", &Error{Op: "detach", App: s.app, Err: ErrWeakKey}
	}
	if s.reg.isClosed() {
		return "", &Error{Op: "detach", App: s.app, Err: errRegistryClosed}
	}
	interrupted, err := retireForHandOff(&c.h, s)
	if err != nil {
		return "", &Error{Op: "detach", App: s.app, Err: err}
	}
	desc, ok := s.reg.park(s)
	if !ok {
		// Closed meanwhile: the connection stays the caller's.
		c.h.unretire()
		if interrupted {
			s.raw.SetReadDeadline(time.Time{})
		}
		return "", &Error{Op: "detach", App: s.app, Err: errRegistryClosed}
	}
	return desc, nil
}

// retireForHandOff retires h, the live handle of s, for a hand-off, and
// waits until no operation is in progress on it: a Read in progress is
// interrupted with a read deadline in the past, and interrupted reports
// so; a Write in progress is waited for (interrupting it would break a TLS
// stream). It fails with the handle's status error if h is not live.
func retireForHandOff(h *handle, s *socket) (interrupted bool, err error) {
	ch := make(chan struct{}, 1)
	h.drain.Store(&ch)
	if ok, st := h.retire(stHandedOff); !ok {
		return false, statusErr(st)
	}
	if h.state.Load()&inflightMask != 0 {
		s.raw.SetReadDeadline(time.Unix(1, 0))
		interrupted = true
		for h.state.Load()&inflightMask != 0 {
			<-ch
		}
	}
	return interrupted, nil
}

// Attach picks up a connection handed off with [Conn.Detach], or received
// from another process ([Conn.DetachTo]). The descriptor must come from d's
// [Registry] and name d's [Dialer.AppID]. The returned *Conn is the
// socket's only working handle; it has no deadlines. A descriptor can be
// attached once.
//
// A connection detached in this process restarts its idle clock. One
// received from another process does not: the move is no use of the
// socket, and the idle time it had travels with it ([Registry.IdleLeft]);
// its descriptor expires when that time runs out. Its peer, which the
// receiving Registry read from the socket itself and found to be the
// address that passed the sending process's policy, is checked once more
// against d's [sockets.Policy], with the host name the sender says the
// connection was dialed by; from then on it is metered in d's [Meter],
// under that host name (its [Conn.Usage] counts from its first byte, in
// whichever process). See [Registry.Listen] for what is verified and what
// is the sender's word.
//
// Attach fails with an *[Error] that wraps [ErrBadDescriptor] for
// anything but a genuine descriptor of this Registry, [ErrWrongApp] for a
// descriptor of another application, [ErrStaleDescriptor] when the socket
// was picked up already, closed or reclaimed ([ErrExpiredDescriptor] when
// a received socket's time ran out), [ErrWrongKind] for the descriptor of
// a packet socket (see [Dialer.AttachPacket]), a *[sockets.DeniedError] when d's
// policy refuses a received connection's peer, [ErrNoRegistry] when d has
// no Registry or its Registry was closed, and [ErrWeakKey] when the
// Registry's Key is too short. A refusal for another application, another
// kind or the policy leaves the socket parked.
func (d *Dialer) Attach(descriptor string) (*Conn, error) {
	if d == nil || d.Registry == nil {
		return nil, &Error{Op: "attach", Err: ErrNoRegistry}
	}
	return d.Registry.attach(d, descriptor)
}

// AttachPacket picks up an unconnected UDP socket received from another
// process ([PacketConn.DetachTo]), as [Dialer.Attach] does a connection.
// The returned *PacketConn sends with d's [sockets.Policy], which checks
// every datagram's destination in this process, d's [Dialer.RoutePacket],
// and d's [Meter]; its idle clock runs on from where it was. The meter's
// record of the addresses the socket sent to stays behind: a reply from
// one of them is counted under the Meter's "(other)" key until the socket
// sends to it from this process. It fails as Attach does, with
// [ErrWrongKind] for the descriptor of a connection.
func (d *Dialer) AttachPacket(descriptor string) (*PacketConn, error) {
	if d == nil || d.Registry == nil {
		return nil, &Error{Op: "attach", Err: ErrNoRegistry}
	}
	s, err := d.Registry.take(d, descriptor, kindPacket)
	if err != nil {
		return nil, err
	}
	udp, ok := s.raw.(*net.UDPConn)
	if !ok {
		// take returns packet sockets as they were received: UDP only.
		s.close()
		return nil, &Error{Op: "attach", App: d.AppID, Err: fmt.Errorf("%w: %T", ErrBadTransfer, s.raw)}
	}
	p := &PacketConn{
		udp:     udp,
		network: s.network,
		policy:  d.policy(),
		route:   d.RoutePacket,
		meter:   d.Meter,
	}
	p.h.s = s
	s.owner.Store(&p.h)
	return p, nil
}
