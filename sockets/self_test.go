package sockets_test

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/outbound-go/outbound/sockets"
)

// The tests of DenySelf swap the package's source of the machine's
// addresses, so none of them runs in parallel.

// fakeAddrs is a source of the machine's addresses that answers addrs (or
// err) and counts its readings.
type fakeAddrs struct {
	addrs atomic.Pointer[[]net.Addr]
	err   atomic.Pointer[error]
	reads atomic.Int64
}

func (f *fakeAddrs) set(addrs ...string) {
	var out []net.Addr
	for _, s := range addrs {
		pfx := netip.MustParsePrefix(s)
		ip := net.IP(pfx.Addr().AsSlice())
		if pfx.Addr().Is4() && len(out)%2 == 1 {
			out = append(out, &net.IPAddr{IP: ip}) // both kinds net.InterfaceAddrs may return
			continue
		}
		out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(pfx.Bits(), pfx.Addr().BitLen())})
	}
	f.addrs.Store(&out)
	f.err.Store(nil)
}

func (f *fakeAddrs) fail(err error) { f.err.Store(&err) }

func (f *fakeAddrs) read() ([]net.Addr, error) {
	f.reads.Add(1)
	if e := f.err.Load(); e != nil {
		return nil, *e
	}
	if a := f.addrs.Load(); a != nil {
		return *a, nil
	}
	return nil, nil
}

// machine is the fake machine's interfaces: a public IPv4 and IPv6 address,
// a private one, loopback, a link-local one, and an IPv4-mapped one as a
// source may report it.
var machine = []string{"93.184.216.34/24", "2606:2800:220:1::1/64", "10.0.0.5/8", "127.0.0.1/8", "::1/128", "fe80::1/64", "::ffff:198.51.100.7/128"}

func TestDenySelf(t *testing.T) {
	var src fakeAddrs
	src.set(machine...)
	defer sockets.SetInterfaceAddrs(src.read)()

	def := sockets.DefaultPolicy()
	p := def.DenySelf()
	self := refusal{rule: sockets.RuleSelf}
	for _, c := range []struct {
		name   string
		p      *sockets.Policy
		addr   string
		want   refusal
		reason string
	}{
		{"off by default", def, "93.184.216.34:443", refusal{}, "DefaultPolicy has no DenySelf"},
		{"off in PublicPolicy", sockets.PublicPolicy(), "93.184.216.34:443", refusal{}, ""},
		{"public IPv4", p, "93.184.216.34:443", self, ""},
		{"its neighbour", p, "93.184.216.35:443", refusal{}, "the address, not its network"},
		{"public IPv6", p, "[2606:2800:220:1::1]:443", self, ""},
		{"private", p, "10.0.0.5:8080", self, "named for the machine, before the never-public table"},
		{"other private", p, "10.0.0.6:8080", refusal{rule: sockets.RulePrivate}, ""},
		{"link-local", p, "[fe80::1]:80", self, ""},
		{"mapped by the source", p, "198.51.100.7:80", self, "a source's IPv4-mapped address is its IPv4 one"},
		{"loopback left to never-public", p, "127.0.0.1:80", refusal{rule: sockets.RuleLoopback}, ""},
		{"loopback6 left to never-public", p, "[::1]:80", refusal{rule: sockets.RuleLoopback}, ""},
		{"allowed loopback stays open", p.Allow(netip.MustParsePrefix("127.0.0.0/8")), "127.0.0.1:80", refusal{}, "a test server on loopback"},
		{"no Allow opens it", p.Allow(netip.MustParsePrefix("10.0.0.0/8")), "10.0.0.5:80", self, ""},
		{"nor an Allow made before", def.Allow(netip.MustParsePrefix("93.184.216.0/24")).DenySelf(), "93.184.216.34:443", self, ""},
		{"the deny list first", p.Deny(netip.MustParsePrefix("93.184.216.34/32")), "93.184.216.34:443", refusal{rule: sockets.RuleDenyList}, ""},
		{"kept by copies", p.Allow(netip.MustParsePrefix("192.0.2.0/24")).WithNAT64().AllowPorts(443), "93.184.216.34:443", self, ""},
		{"IPv4-mapped form", p, "[::ffff:93.184.216.34]:443", refusal{sockets.RuleSelf, sockets.RuleIPv4Mapped, "93.184.216.34"}, ""},
		{"6to4 form", p, "[2002:5db8:d822::1]:443", refusal{sockets.RuleSelf, sockets.Rule6to4, "93.184.216.34"}, ""},
		{"NAT64 form", p.WithNAT64(), "[64:ff9b::5db8:d822]:443", refusal{sockets.RuleSelf, sockets.RuleNAT64, "93.184.216.34"}, "opting in to NAT64 opens no form of the machine"},
		{"discovered NAT64 form", p.WithDiscoveredNAT64(netip.MustParsePrefix("2600:1::/96")), "[2600:1::5db8:d822]:443", refusal{sockets.RuleSelf, sockets.RuleNAT64, "93.184.216.34"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkRefusal(t, c.p, "tcp", "", c.addr, c.want)
		})
	}
	var de *sockets.DeniedError
	if err := p.Check("tcp", "me.example", netip.MustParseAddrPort("93.184.216.34:443")); !errors.As(err, &de) || de.ErrorType() != "self" || de.Detail != "" {
		t.Errorf("Check = %v (ErrorType %q), want the code self, no detail", err, de.ErrorType())
	}
	if n := src.reads.Load(); n != 1 {
		t.Errorf("%d readings of the addresses, want 1: one reading serves every policy until it is old", n)
	}
}

// TestDenySelfRefresh: the list is read again by the first check that
// needs it once the last reading is SelfRefresh old, and not before.
func TestDenySelfRefresh(t *testing.T) {
	var src fakeAddrs
	src.set("93.184.216.34/24")
	defer sockets.SetInterfaceAddrs(src.read)()
	synctest.Test(t, func(t *testing.T) {
		p := sockets.DefaultPolicy().DenySelf()
		old, added := "93.184.216.34:443", "198.51.100.200:443"
		checkRefusal(t, p, "tcp", "", old, refusal{rule: sockets.RuleSelf})
		checkRefusal(t, sockets.DefaultPolicy(), "tcp", "", old, refusal{})
		// The machine's addresses change: a check sees the change once
		// the reading is old, and not before.
		src.set("2606:2800:220:1::1/64", "198.51.100.200/24")
		checkRefusal(t, p, "tcp", "", old, refusal{rule: sockets.RuleSelf})
		checkRefusal(t, p, "tcp", "", added, refusal{rule: sockets.RuleDocumentation})
		if n := src.reads.Load(); n != 1 {
			t.Fatalf("%d readings before the refresh, want 1", n)
		}
		// A policy that does not deny its own addresses never reads them.
		checkRefusal(t, sockets.PublicPolicy(), "tcp", "", old, refusal{})
		// Just before the reading is old, it still serves.
		time.Sleep(sockets.SelfRefresh - time.Millisecond)
		synctest.Wait()
		checkRefusal(t, p, "tcp", "", old, refusal{rule: sockets.RuleSelf})
		if n := src.reads.Load(); n != 1 {
			t.Fatalf("%d readings before the refresh, want 1", n)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait() // the timer that marks the reading old has run
		checkRefusal(t, p, "tcp", "", old, refusal{})
		checkRefusal(t, p, "tcp", "", added, refusal{rule: sockets.RuleSelf})
		if n := src.reads.Load(); n != 2 {
			t.Fatalf("%d readings after the refresh, want 2", n)
		}
	})
}

// TestDenySelfFailsClosed: while the addresses cannot be read, a policy
// with DenySelf refuses everything, saying why; it recovers with the next
// reading that succeeds.
func TestDenySelfFailsClosed(t *testing.T) {
	var src fakeAddrs
	src.fail(errors.New("netlink: permission denied"))
	defer sockets.SetInterfaceAddrs(src.read)()
	synctest.Test(t, func(t *testing.T) {
		p := sockets.DefaultPolicy().DenySelf()
		err := p.Check("tcp", "", netip.MustParseAddrPort("1.1.1.1:443"))
		var de *sockets.DeniedError
		if !errors.As(err, &de) || de.Rule != sockets.RuleSelf || !strings.Contains(de.Detail, "netlink: permission denied") {
			t.Fatalf("Check = %v, want a refusal for self naming the failure", err)
		}
		checkRefusal(t, p, "tcp", "", "[2606:4700:4700::1111]:443", refusal{rule: sockets.RuleSelf})
		checkRefusal(t, sockets.DefaultPolicy(), "tcp", "", "1.1.1.1:443", refusal{})
		src.set("93.184.216.34/24")
		time.Sleep(sockets.SelfRefresh)
		synctest.Wait() // the timer that marks the reading old has run
		checkRefusal(t, p, "tcp", "", "1.1.1.1:443", refusal{})
		checkRefusal(t, p, "tcp", "", "93.184.216.34:443", refusal{rule: sockets.RuleSelf})
	})
}

// TestDenySelfDoesNotAllocate: an allowed Check with DenySelf costs no
// allocation once the addresses are read (time stands still in the
// bubble, so no reading falls inside the count).
func TestDenySelfDoesNotAllocate(t *testing.T) {
	var src fakeAddrs
	src.set(machine...)
	defer sockets.SetInterfaceAddrs(src.read)()
	synctest.Test(t, func(t *testing.T) {
		p := sockets.DefaultPolicy().DenySelf()
		for _, bc := range benchCases {
			if !bc.allowed {
				continue
			}
			ap := netip.MustParseAddrPort(bc.addr)
			if err := p.Check(bc.network, bc.host, ap); err != nil {
				t.Fatalf("%s: %v", bc.name, err)
			}
			if n := testing.AllocsPerRun(100, func() { _ = p.Check(bc.network, bc.host, ap) }); n != 0 {
				t.Errorf("%s: %v allocations per allowed Check, want 0", bc.name, n)
			}
		}
	})
}

// TestDenySelfThisMachine reads this machine's own addresses, as
// net.InterfaceAddrs reports them (no packet is sent), and holds DenySelf
// to refusing each one that is not loopback.
func TestDenySelfThisMachine(t *testing.T) {
	defer sockets.SetInterfaceAddrs(net.InterfaceAddrs)() // a fresh reading
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skipf("this machine's addresses cannot be read: %v", err)
	}
	p := sockets.DefaultPolicy().DenySelf()
	n := 0
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		x, ok := netip.AddrFromSlice(ipnet.IP)
		if x = x.Unmap(); !ok || x.IsLoopback() {
			continue
		}
		n++
		ap := netip.AddrPortFrom(x, 8080)
		checkRefusal(t, p, "tcp", "", ap.String(), refusal{rule: sockets.RuleSelf})
		checkRefusal(t, p, "udp", "", ap.String(), refusal{rule: sockets.RuleSelf})
	}
	if n == 0 {
		t.Skip("this machine has no address but loopback")
	}
	t.Logf("%d addresses of this machine refused", n)
}
