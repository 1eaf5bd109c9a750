//go:build linux

package socketapi_test

import (
	"net"
	"net/netip"
	"syscall"
	"testing"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketapi"
)

// TestSOError reads the real pending error: a datagram to a closed loopback
// port makes the kernel queue ECONNREFUSED on the connected UDP socket, and
// reading SO_ERROR returns it once and clears it.
func TestSOError(t *testing.T) {
	// A loopback port with nothing listening: bind one, note it, close it.
	probe, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	closed := probe.LocalAddr().String()
	probe.Close()

	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}}
	c := dialConn(t, d, "udp", closed)
	if v, err := c.GetsockoptInt(syscall.SOL_SOCKET, syscall.SO_ERROR); err != nil || v != 0 {
		t.Fatalf("SO_ERROR on a fresh socket = %d, %v; want 0", v, err)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	// The ICMP port-unreachable is processed on loopback before the
	// write's system call returns.
	v, err := c.GetsockoptInt(syscall.SOL_SOCKET, syscall.SO_ERROR)
	if err != nil || syscall.Errno(v) != syscall.ECONNREFUSED {
		t.Fatalf("SO_ERROR = %d (%v), %v; want ECONNREFUSED", v, syscall.Errno(v), err)
	}
	if v, err := c.GetsockoptInt(syscall.SOL_SOCKET, syscall.SO_ERROR); err != nil || v != 0 {
		t.Errorf("SO_ERROR read again = %d, %v; want 0 (reading clears it)", v, err)
	}
	// SO_ERROR is read-only.
	wantRefused(t, "SetsockoptInt", c.SetsockoptInt(syscall.SOL_SOCKET, syscall.SO_ERROR, 0), "SO_ERROR")
}
