package socketapi

import (
	"net/netip"
	"time"
)

// SetRegistryClock makes r read the time from now when it dates and checks
// the expiry of the descriptors of received sockets. Call it before r is
// used.
func SetRegistryClock(r *Registry, now func() time.Time) { r.clock = now }

// SetRegistryPeerUID makes the Inboxes r serves from now on require their
// peers to run as uid, instead of as this process's effective user.
func SetRegistryPeerUID(r *Registry, uid int) { r.peerUID = func() int { return uid } }

// AgeConn makes c look unused for d longer than it has been.
func AgeConn(c *Conn, d time.Duration) { c.h.s.lastUse.Add(-int64(d)) }

// IdleOf returns how long c has been unused, and its idle limit.
func IdleOf(c *Conn) (idle, limit time.Duration) { return c.h.s.idle(), c.h.s.limit }

// SetHandOffHookReplied makes every DetachTo call f with the descriptor
// the receiver gave it, before it acknowledges it. Nil removes the hook.
func SetHandOffHookReplied(f func(desc string)) { testHookReplied = f }

// TransferFrame returns the request frame that a DetachTo of a connection
// over network to peer, for app, sends beside the socket.
func TransferFrame(network string, peer netip.AddrPort, app string) []byte {
	t := transfer{kind: kindConn, network: network, peer: peer, app: app, limit: defaultIdleTimeout}
	return t.marshal()
}

// RoundTripTransfer parses body, a request without its length, as a
// receiver does and, if it is accepted, marshals it again.
func RoundTripTransfer(body []byte) ([]byte, error) {
	t, err := parseTransfer(body)
	if err != nil {
		return nil, err
	}
	return t.marshal()[4:], nil
}

// SetRegistryFrameTimeout makes r's inboxes wait at most d for each
// message of a peer, instead of a second. Call it before r.Listen.
func SetRegistryFrameTimeout(r *Registry, d time.Duration) { r.frameTimeout = d }
