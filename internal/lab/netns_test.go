package lab_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/outbound-go/outbound/internal/lab"
)

var (
	nsV4 = netip.MustParseAddr("93.184.216.34")
	nsV6 = netip.MustParseAddr("2606:4700::1111")
)

// In the namespace, the addresses given are this machine's, on lo, and
// every other address has no route: nothing can leave.
func TestInNetNS(t *testing.T) {
	if !lab.InNetNS(t, nsV4, nsV6) {
		return
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp != 0 && ifc.Name != "lo" {
			t.Errorf("interface %s is up", ifc.Name)
		}
	}
	// The real connect path reaches a server on each address.
	for _, a := range []netip.Addr{nsV4, nsV6} {
		ln, err := net.Listen("tcp", netip.AddrPortFrom(a, 80).String())
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if got := s.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(); got != a {
			t.Errorf("connection to %v came from %v, want the address itself", a, got)
		}
		s.Close()
		c.Close()
		ln.Close()
	}
	// An address not added has no route. A UDP connect finds the route
	// and sends nothing, so this is safe wherever it runs.
	for _, dst := range []string{"192.0.2.1:9", "[2001:db8::1]:9"} {
		c, err := net.Dial("udp", dst)
		if err == nil {
			c.Close()
		}
		if !errors.Is(err, syscall.ENETUNREACH) {
			t.Errorf("UDP connect to %s: %v, want ENETUNREACH", dst, err)
		}
	}
}

// A subtest runs alone in its namespace: a sibling whose name it prefixes
// is not re-run with it.
func TestInNetNSSubtest(t *testing.T) {
	t.Run("a.b", func(t *testing.T) {
		if !lab.InNetNS(t, nsV4) {
			return
		}
		if _, err := net.Listen("tcp", netip.AddrPortFrom(nsV4, 0).String()); err != nil {
			t.Fatal(err) // the address is not on lo
		}
	})
	t.Run("a.b2", func(t *testing.T) {
		if os.Getenv("SOCKETSTEST_NETNS_TEST") != "" {
			t.Error("ran in the namespace made for another test")
		}
	})
	t.Run("aXb", func(t *testing.T) { // "a.b" unquoted would match it
		if os.Getenv("SOCKETSTEST_NETNS_TEST") != "" {
			t.Error("ran in the namespace made for another test")
		}
	})
}

// A black hole drops SYNs: a connect hangs until its deadline; closed, it
// refuses. An address on lo without a listener refuses at once.
func TestBlackHole(t *testing.T) {
	refused := netip.MustParseAddr("151.101.1.2")
	if !lab.InNetNS(t, nsV4, nsV6, refused) {
		return
	}
	for _, a := range []netip.Addr{nsV4, nsV6} {
		b := lab.NewBlackHole(t, netip.AddrPortFrom(a, 80))
		if b.Addr() != netip.AddrPortFrom(a, 80) {
			t.Errorf("Addr() = %v", b.Addr())
		}
		assertHangs(t, b.Addr())
		assertHangs(t, b.Addr()) // and again: nothing ever leaves the queue
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		assertRefused(t, b.Addr())
	}
	assertRefused(t, netip.AddrPortFrom(refused, 80))
}

// A black hole on a loopback address works outside a namespace as well.
func TestBlackHoleLoopback(t *testing.T) {
	b := lab.NewBlackHole(t, netip.MustParseAddrPort("127.0.0.1:0"))
	if b.Addr().Port() == 0 || b.Addr().Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("Addr() = %v", b.Addr())
	}
	assertHangs(t, b.Addr())
}

// assertHangs checks that a connect to addr is still waiting after a
// second: neither connected nor refused.
func assertHangs(t *testing.T, addr netip.AddrPort) {
	t.Helper()
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr.String(), time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("connected to the black hole %v", addr)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || time.Since(start) < time.Second {
		t.Fatalf("connect to the black hole %v: %v after %v; want a timeout after 1s", addr, err, time.Since(start))
	}
}

func assertRefused(t *testing.T, addr netip.AddrPort) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err == nil {
		c.Close()
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("connect to %v: %v; want connection refused", addr, err)
	}
}
