package lab_test

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/outbound-go/outbound/internal/lab"
)

// Open lists the connections Connect made until each is closed, and never
// a failed attempt.
func TestConnectorOpen(t *testing.T) {
	srv := lab.NewServer(t, func(ctx context.Context, _ net.Conn) { <-ctx.Done() })
	one := netip.MustParseAddrPort("93.184.216.34:443")
	two := netip.MustParseAddrPort("[2606:2800:220:1::1]:443")
	refused := netip.MustParseAddrPort("93.184.216.35:443")
	c := &lab.Connector{Target: srv.Addr(), Routes: map[netip.AddrPort]string{refused: "10.0.0.1:443"}}
	ctx := context.Background()
	first, err := c.Connect(ctx, "tcp", one)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Connect(ctx, "tcp6", two)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Connect(ctx, "tcp", refused); err == nil {
		t.Fatal("connected to a target off loopback")
	}
	if got := c.Open(); !slices.Equal(got, []netip.AddrPort{one, two}) {
		t.Errorf("open %v, want [%v %v]", got, one, two)
	}
	first.Close()
	if got := c.Open(); !slices.Equal(got, []netip.AddrPort{two}) {
		t.Errorf("after closing the first: open %v, want [%v]", got, two)
	}
	second.Close()
	if got := c.Open(); len(got) != 0 {
		t.Errorf("after closing both: open %v, want none", got)
	}
	if got := c.Attempts(); !slices.Equal(got, []netip.AddrPort{one, two, refused}) {
		t.Errorf("attempts %v", got)
	}
}
