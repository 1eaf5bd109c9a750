package lab_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/outbound-go/outbound/internal/lab"
)

// The Connector is what keeps seam-based tests on the machine: it must
// refuse any target off loopback without dialing, and reach loopback ones.
func TestConnectorOnlyLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dest := netip.MustParseAddrPort("93.184.216.34:443")
	port := ln.Addr().(*net.TCPAddr).Port
	for _, target := range []string{"1.1.1.1:80", "10.0.0.1:80", "[::ffff:10.0.0.1]:80", "example.com:80", "", "0.0.0.0:80"} {
		c := &lab.Connector{Target: target}
		if conn, err := c.Connect(context.Background(), "tcp", dest); err == nil {
			conn.Close()
			t.Errorf("target %q: connected, want a refusal", target)
		}
	}
	for _, target := range []string{
		netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)).String(),
		netip.AddrPortFrom(netip.MustParseAddr("::ffff:127.0.0.1"), uint16(port)).String(),
	} {
		c := &lab.Connector{Target: target}
		conn, err := c.Connect(context.Background(), "tcp6", dest) // the stand-in's family may differ
		if err != nil {
			t.Fatalf("target %q: %v", target, err)
		}
		conn.Close()
		if got := c.Attempts(); !slices.Equal(got, []netip.AddrPort{dest}) {
			t.Errorf("attempts = %v, want [%v]", got, dest)
		}
	}
}

func TestResolver(t *testing.T) {
	r := lab.NewResolver(map[string][]string{"dual.example": {"93.184.216.34", "2606:2800:220:1::1"}})
	ctx := context.Background()
	for network, want := range map[string]int{"ip": 2, "ip4": 1, "ip6": 1} {
		if got, err := r.LookupNetIP(ctx, network, "dual.example"); err != nil || len(got) != want {
			t.Errorf("%s: %v, %v; want %d addresses", network, got, err, want)
		}
	}
	_, err := r.LookupNetIP(ctx, "ip", "unknown.example")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("unknown name: %v, want a not-found *net.DNSError", err)
	}
	if got := r.Lookups(); len(got) != 4 {
		t.Errorf("recorded %d lookups, want 4", len(got))
	}
}
