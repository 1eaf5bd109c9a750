package sockets

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The errors of a hand-off. Each is wrapped in a *[HandOffError].
var (
	// ErrBadDescriptor: the descriptor is not one this Registry made: garbage,
	// forged, altered, truncated, or made by another Registry.
	ErrBadDescriptor = errors.New("sockets: invalid socket descriptor")

	// ErrWrongApp: the descriptor is genuine but belongs to another
	// application than the attaching Dialer's AppID.
	ErrWrongApp = errors.New("sockets: socket descriptor belongs to another application")

	// ErrStaleDescriptor: the descriptor was genuine, but its socket is no
	// longer parked under it: it was picked up already, closed, reclaimed
	// for idleness, or detached again under a newer descriptor.
	ErrStaleDescriptor = errors.New("sockets: stale socket descriptor")

	// ErrNoRegistry: the Dialer has no Registry, so its connections cannot
	// be handed off.
	ErrNoRegistry = errors.New("sockets: no registry for socket hand-off")

	// ErrWeakKey: the Registry's Key is set but shorter than 32 bytes, so
	// its descriptors could be forged; nothing is handed off or picked up
	// through it.
	ErrWeakKey = errors.New("sockets: registry key shorter than 32 bytes")
)

// HandOffError is the error of [Conn.Detach] and [Dialer.Attach]. Err is one
// of [ErrBadDescriptor], [ErrWrongApp], [ErrStaleDescriptor],
// [ErrNoRegistry], [ErrWeakKey], or, from Detach, the reason the connection
// cannot be handed off ([ErrReclaimed], [ErrHandedOff], net.ErrClosed).
type HandOffError struct {
	Op        string // "detach" or "attach"
	App       string // the application the descriptor or its socket belongs to; empty when unknown
	AttachApp string // the AppID of the Dialer that tried to attach, for ErrWrongApp
	Err       error
}

// Error returns a message such as
//
//	sockets: attach: stale socket descriptor
func (e *HandOffError) Error() string {
	if e == nil {
		return "<nil>"
	}
	msg := "sockets: " + e.Op + ": " + strings.TrimPrefix(errText(e.Err), "sockets: ")
	if errors.Is(e.Err, ErrWrongApp) {
		msg += " (descriptor for " + strconv.Quote(e.App) + ", attaching as " + strconv.Quote(e.AttachApp) + ")"
	}
	return msg
}

// Unwrap returns Err.
func (e *HandOffError) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

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
// it names a socket of this process only. A parked socket keeps its idle
// clock: one not picked up within its idle timeout is reclaimed, and its
// descriptor goes stale.
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

	keyOnce sync.Once
	key     []byte // the copy of Key, or the random key; nil when Key is weak

	// mu guards the parked sockets and the next socket number.
	mu     sync.Mutex
	parked map[uint64]parked
	nextID uint64
}

type parked struct {
	s     *socket
	nonce [nonceLen]byte
}

const (
	descVersion = 1
	nonceLen    = 16
	maxAppID    = 1024
	maxDescLen  = 2048
)

// errLongAppID is the reason Detach refuses a Dialer whose AppID is too
// long to fit a descriptor.
var errLongAppID = errors.New("sockets: application identity longer than 1024 bytes")

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

// park puts s, whose handle was retired, in the registry and returns its
// descriptor.
func (r *Registry) park(s *socket) string {
	p := parked{s: s}
	rand.Read(p.nonce[:])
	r.mu.Lock()
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
	return r.encode(id, p.nonce, s.app)
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
	delete(r.parked, s.parkID)
	return true
}

// encode lays out version, socket number, nonce, application and the MAC of
// all of them. The key must have been checked with macKey.
func (r *Registry) encode(id uint64, nonce [nonceLen]byte, app string) string {
	b := make([]byte, 0, 1+8+nonceLen+binary.MaxVarintLen16+len(app)+sha256.Size)
	b = append(b, descVersion)
	b = binary.BigEndian.AppendUint64(b, id)
	b = append(b, nonce[:]...)
	b = binary.AppendUvarint(b, uint64(len(app)))
	b = append(b, app...)
	m := hmac.New(sha256.New, r.macKey())
	m.Write(b)
	b = m.Sum(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decode checks the descriptor's MAC and returns its contents.
func (r *Registry) decode(desc string) (id uint64, nonce [nonceLen]byte, app string, ok bool) {
	key := r.macKey()
	if key == nil || len(desc) > maxDescLen {
		return 0, nonce, "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(desc)
	if err != nil || len(b) < 1+8+nonceLen+1+sha256.Size {
		return 0, nonce, "", false
	}
	body, mac := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	m := hmac.New(sha256.New, key)
	m.Write(body)
	if !hmac.Equal(mac, m.Sum(nil)) {
		return 0, nonce, "", false
	}
	if body[0] != descVersion {
		return 0, nonce, "", false
	}
	rest := body[1+8+nonceLen:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n != uint64(len(rest)-k) {
		return 0, nonce, "", false
	}
	id = binary.BigEndian.Uint64(body[1:])
	copy(nonce[:], body[1+8:])
	return id, nonce, string(rest[k:]), true
}

// attach picks up the socket desc names, for application app.
func (r *Registry) attach(app, desc string) (*Conn, error) {
	if r.macKey() == nil {
		return nil, &HandOffError{Op: "attach", Err: ErrWeakKey}
	}
	id, nonce, descApp, ok := r.decode(desc)
	if !ok {
		return nil, &HandOffError{Op: "attach", Err: ErrBadDescriptor}
	}
	if descApp != app {
		return nil, &HandOffError{Op: "attach", App: descApp, AttachApp: app, Err: ErrWrongApp}
	}
	r.mu.Lock()
	p, ok := r.parked[id]
	if !ok || p.nonce != nonce {
		r.mu.Unlock()
		return nil, &HandOffError{Op: "attach", App: descApp, Err: ErrStaleDescriptor}
	}
	if p.s.app != app {
		// The second wall: a descriptor that passed its MAC still names a
		// socket of another application. It stays parked for its owner.
		r.mu.Unlock()
		return nil, &HandOffError{Op: "attach", App: p.s.app, AttachApp: app, Err: ErrWrongApp}
	}
	delete(r.parked, id)
	c := new(Conn)
	c.h.s = p.s
	p.s.touch()
	p.s.owner.Store(&c.h)
	r.mu.Unlock()
	// The new owner starts without deadlines: the old owner's, and the one
	// Detach may have used to interrupt a read, are gone.
	p.s.raw.SetDeadline(time.Time{})
	return c, nil
}

// Detach hands the connection off: it returns an opaque descriptor that
// [Dialer.Attach] turns back into a working *Conn, in this process, for a
// Dialer with the same [Registry] and [Dialer.AppID] as the one that made
// the connection. From the moment Detach is called, c is retired: every
// operation on it fails with an error that matches [ErrHandedOff], so two
// owners never use one socket. A Read in progress on c is interrupted and a
// Write in progress is waited for. A connection upgraded with
// [Conn.StartTLS] keeps its TLS session.
//
// The socket stays open, parked, until it is attached or reclaimed: its idle
// clock keeps running, and a descriptor not picked up within the idle
// timeout goes stale. Detach fails with a *[HandOffError] that wraps
// [ErrNoRegistry] if the Dialer had no Registry, [ErrWeakKey] if the
// Registry's Key is too short (c stays usable in both cases), or the reason
// c is no longer usable ([ErrReclaimed], [ErrHandedOff], net.ErrClosed).
func (c *Conn) Detach() (string, error) {
	s := c.sock()
	if s == nil {
		return "", &HandOffError{Op: "detach", Err: errZeroConn}
	}
	if s.reg == nil {
		return "", &HandOffError{Op: "detach", App: s.app, Err: ErrNoRegistry}
	}
	if len(s.app) > maxAppID {
		return "", &HandOffError{Op: "detach", Err: errLongAppID}
	}
	if s.reg.macKey() == nil {
		return "", &HandOffError{Op: "detach", App: s.app, Err: ErrWeakKey}
	}
	ch := make(chan struct{}, 1)
	c.h.drain.Store(&ch)
	if ok, st := c.h.retire(stHandedOff); !ok {
		return "", &HandOffError{Op: "detach", App: s.app, Err: statusErr(st)}
	}
	if c.h.state.Load()&inflightMask != 0 {
		// Interrupt a read that may never end; a write ends on its own,
		// and interrupting it would break a TLS stream.
		s.raw.SetReadDeadline(time.Unix(1, 0))
		for c.h.state.Load()&inflightMask != 0 {
			<-ch
		}
	}
	return s.reg.park(s), nil
}

// Attach picks up a connection handed off with [Conn.Detach]. The
// descriptor must come from d's [Registry] and name d's [Dialer.AppID]. The
// returned *Conn is the socket's only working handle; it has no deadlines,
// and its idle clock restarts. A descriptor can be attached once.
//
// Attach fails with a *[HandOffError] that wraps [ErrBadDescriptor] for
// anything but a genuine descriptor of this Registry, [ErrWrongApp] for a
// descriptor of another application, [ErrStaleDescriptor] when the socket
// was picked up already, closed or reclaimed, [ErrNoRegistry] when d has
// no Registry, and [ErrWeakKey] when the Registry's Key is too short.
func (d *Dialer) Attach(descriptor string) (*Conn, error) {
	if d == nil || d.Registry == nil {
		return nil, &HandOffError{Op: "attach", Err: ErrNoRegistry}
	}
	return d.Registry.attach(d.AppID, descriptor)
}
