//go:build linux

package sockets_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/outbound-go/outbound/sockets"
)

// startRaceBlackHole returns a loopback TCP address that never answers a
// connect: a listener with backlog 0 whose accept queue is full (one
// connection, never accepted), so that Linux drops every further SYN and
// connect waits. port 0 lets the system choose.
func startRaceBlackHole(t *testing.T, ip string, port int) (netip.AddrPort, error) {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return netip.AddrPort{}, err
	}
	t.Cleanup(func() { ln.Close() })
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = syscall.Listen(int(fd), 0) }); err != nil || lerr != nil {
		t.Fatalf("listen with backlog 0: %v, %v", err, lerr)
	}
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	// Fill the queue until a connect is left waiting: with backlog 0,
	// one queued connection is enough.
	for range 8 {
		c, err := net.DialTimeout("tcp", addr.String(), 200*time.Millisecond)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return addr, nil
		}
		if err != nil {
			t.Fatalf("filling the black hole's queue: %v", err)
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatal("the black hole still accepts connections")
	return netip.AddrPort{}, nil
}

// TestDialRealConnectBlackHole runs the Dialer's own connect step (no
// seam, net.Dialer with the second check) against loopback black holes:
// a connect cut off by the deadline is a typed timeout, and a dead first
// address leaves the next one its share of the time. Only 127.0.0.1 and
// 127.0.0.2 are ever dialed.
func TestDialRealConnectBlackHole(t *testing.T) {
	t.Parallel()
	pol := sockets.DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("127.0.0.2/32"))

	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		hole, err := startRaceBlackHole(t, "127.0.0.1", 0)
		if err != nil {
			t.Fatal(err)
		}
		d := &sockets.Dialer{Policy: pol, Timeout: 300 * time.Millisecond}
		_, err = d.DialContext(t.Context(), "tcp", hole.String())
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v (%T); want a net.Error timeout matching DeadlineExceeded", err, err)
		}
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "dial" {
			t.Errorf("error %v does not wrap net's *net.OpError", err)
		}
	})

	// One dead server in a round-robin: 127.0.0.2 never answers, 127.0.0.1
	// works, on the same port. With a 4 s timeout each address gets 2 s,
	// so the dial succeeds; had the first address the whole timeout, it
	// would fail.
	t.Run("dead first address", func(t *testing.T) {
		t.Parallel()
		var hole netip.AddrPort
		var srv *greeter
		for range 10 {
			h, err := startRaceBlackHole(t, "127.0.0.2", 0)
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(h.Port()))))
			if err != nil {
				continue // the port is taken on 127.0.0.1: try another
			}
			ln.Close()
			hole, srv = h, startGreeter(t, ln.Addr().String())
			break
		}
		if srv == nil {
			t.Fatal("found no port free on both 127.0.0.1 and 127.0.0.2")
		}
		d := &sockets.Dialer{
			Policy:   pol,
			Resolver: newResolver(map[string][]string{"rr.example": {"127.0.0.2", "127.0.0.1"}}),
			Timeout:  4 * time.Second,
		}
		conn, err := d.DialContext(t.Context(), "tcp", net.JoinHostPort("rr.example", strconv.Itoa(int(hole.Port()))))
		if err != nil {
			t.Fatal(err)
		}
		if peer := conn.RemoteAddr().(*net.TCPAddr).AddrPort(); peer.Addr().Unmap() != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("connected to %v, want 127.0.0.1", peer)
		}
		readHello(t, conn)
	})
}
