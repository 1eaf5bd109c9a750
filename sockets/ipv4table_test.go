package sockets

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestIPv4Table holds the merged IPv4 table of Check's common case to the
// two tables it merges: at every edge of every range of either (the first
// and last address, and their neighbours), at the ends of the address
// space, and at random addresses, its rule is the never-public table's, or
// RuleGoogle for an address in the Google services' ranges, or none.
func TestIPv4Table(t *testing.T) {
	np, google := neverPublicSet(), embeddedServices().set
	table := defaultIPv4Table()
	want := func(x uint32) Rule {
		if r := np.rule(netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})); r != 0 {
			return r
		}
		if search4(google.v4, x) >= 0 {
			return RuleGoogle
		}
		return 0
	}
	var xs []uint32
	for _, ranges := range [][]range4{np.v4, google.v4, table.ranges} {
		for _, r := range ranges {
			xs = append(xs, r.from-1, r.from, r.from+1, r.to-1, r.to, r.to+1)
		}
	}
	xs = append(xs, 0, 1, 1<<24-1, 1<<24, 0xffffffff, 0xfffffffe)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		xs = append(xs, rng.Uint32())
	}
	for _, x := range xs {
		if got, w := table.rule(x), want(x); got != w {
			t.Fatalf("%d.%d.%d.%d: table says %v, the tables say %v", x>>24, byte(x>>16), byte(x>>8), byte(x), got, w)
		}
	}
}

// TestCheckFastPathAgrees: Check's path for an IPv4 address under the
// embedded Google rule gives the same answer as the general path, which a
// policy with a copy of the same ranges takes, for random and edge
// addresses, every port the exceptions name, and their host names.
func TestCheckFastPathAgrees(t *testing.T) {
	fast := DefaultPolicy()
	general := DefaultPolicy().WithGoogleRanges(DefaultPolicy().GoogleRanges())
	if general.googleRanges() == embeddedServices() {
		t.Fatal("the general policy shares the embedded ranges: it would take the fast path too")
	}
	var addrs []netip.Addr
	for _, r := range defaultIPv4Table().ranges {
		for _, x := range []uint32{r.from - 1, r.from, r.to, r.to + 1} {
			addrs = append(addrs, netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)}))
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		x := rng.Uint32()
		addrs = append(addrs, netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)}))
	}
	addrs = append(addrs, netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("8.8.4.4"), netip.MustParseAddr("142.250.64.100"))
	rule := func(err error) Rule {
		var de *DeniedError
		if errors.As(err, &de) {
			return de.Rule
		}
		if err != nil {
			return 255
		}
		return 0
	}
	for _, a := range addrs {
		for _, network := range []string{"tcp", "udp"} {
			for _, port := range []uint16{53, 443, 465, 587, 993, 995} {
				for _, host := range []string{"", "smtp.gmail.com", "imap.gmail.com", "pop.gmail.com"} {
					ap := netip.AddrPortFrom(a, port)
					if f, g := rule(fast.Check(network, host, ap)), rule(general.Check(network, host, ap)); f != g {
						t.Fatalf("Check(%s, %q, %v): fast path %v, general path %v", network, host, ap, f, g)
					}
				}
			}
		}
	}
}
