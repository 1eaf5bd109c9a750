package sockets_test

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketstest"
)

// router is a RoutePacket seam that records every destination it is asked
// to route and sends every datagram to a loopback server. A datagram whose
// destination the policy refused must never reach it.
type router struct {
	to netip.AddrPort

	mu     sync.Mutex
	routed []netip.AddrPort
}

func (r *router) route(dst netip.AddrPort) netip.AddrPort {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.routed = append(r.routed, dst)
	return r.to
}

func (r *router) calls() []netip.AddrPort {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]netip.AddrPort(nil), r.routed...)
}

// writePaths are the ways a PacketConn sends a datagram; each must check
// its destination.
var writePaths = map[string]func(*sockets.PacketConn, []byte, netip.AddrPort) (int, error){
	"WriteTo": func(p *sockets.PacketConn, b []byte, ap netip.AddrPort) (int, error) {
		return p.WriteTo(b, net.UDPAddrFromAddrPort(ap))
	},
	"WriteToUDP": func(p *sockets.PacketConn, b []byte, ap netip.AddrPort) (int, error) {
		return p.WriteToUDP(b, net.UDPAddrFromAddrPort(ap))
	},
	"WriteToUDPAddrPort": (*sockets.PacketConn).WriteToUDPAddrPort,
	"WriteTo 16-byte IPv4": func(p *sockets.PacketConn, b []byte, ap netip.AddrPort) (int, error) {
		return p.WriteTo(b, &net.UDPAddr{IP: net.IP(ap.Addr().AsSlice()).To16(), Port: int(ap.Port())})
	},
}

// TestPolicyDNS is the rule the UDP tests rely on: Google Public DNS on port
// 53 passes the default policy, a private resolver does not.
func TestPolicyDNS(t *testing.T) {
	p := sockets.DefaultPolicy()
	if err := p.Check("udp", "", netip.MustParseAddrPort("8.8.8.8:53")); err != nil {
		t.Errorf("8.8.8.8:53: %v", err)
	}
	assertRefusal(t, p.Check("udp", "", netip.MustParseAddrPort("10.0.0.1:53")), "private (RFC 1918)")
}

func assertRefusal(t *testing.T, err error, rule sockets.Rule) *sockets.DeniedError {
	t.Helper()
	var de *sockets.DeniedError
	if !errors.As(err, &de) || !errors.Is(err, sockets.ErrDenied) || de.Rule != rule {
		t.Fatalf("err = %v, want a refusal by %q", err, rule)
	}
	return de
}

// TestPacketConnDNS sends to 8.8.8.8:53 (allowed; routed onto a loopback
// server) and to 10.0.0.1:53 (refused; nothing sent) on every write path.
func TestPacketConnDNS(t *testing.T) {
	srv := startEchoUDP(t)
	r := &router{to: srv.addrPort()}
	meter := &sockets.Meter{}
	d := &sockets.Dialer{RoutePacket: r.route, Meter: meter}
	pc, err := d.ListenPacket(t.Context(), "udp", "")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	google := netip.MustParseAddrPort("8.8.8.8:53")
	private := netip.MustParseAddrPort("10.0.0.1:53")
	buf := make([]byte, 64)
	sent := 0
	for name, write := range writePaths {
		t.Run(name, func(t *testing.T) {
			n, err := write(pc, []byte("refused"), private)
			de := assertRefusal(t, err, "private (RFC 1918)")
			if n != 0 || de.Addr.Addr().Unmap() != private.Addr() || de.Network != "udp" {
				t.Errorf("refusal = %d, %+v", n, de)
			}
			n, err = write(pc, []byte(name), google)
			if err != nil || n != len(name) {
				t.Fatalf("write to 8.8.8.8:53 = %d, %v", n, err)
			}
			sent += n
			// The first datagram the server sees is the allowed one: the
			// refused one was never sent.
			if got := srv.next(t); got != name {
				t.Fatalf("server got %q, want %q", got, name)
			}
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil || string(buf[:n]) != "re:"+name || from != srv.addrPort() {
				t.Fatalf("reply %q from %v, %v", buf[:n], from, err)
			}
		})
	}
	for _, dst := range r.calls() {
		if dst.Addr().Unmap() != google.Addr() || dst.Port() != 53 {
			t.Errorf("RoutePacket was asked to route %v; only 8.8.8.8:53 passed the policy", dst)
		}
	}
	if got := meter.Host("8.8.8.8"); got.Sent != int64(sent) {
		t.Errorf("meter for 8.8.8.8 = %+v, want %d bytes sent", got, sent)
	}
	if got := meter.Host("10.0.0.1"); got != (sockets.Usage{}) {
		t.Errorf("meter for 10.0.0.1 = %+v, want nothing", got)
	}
}

// TestPacketConnRefusals covers the other destinations a datagram may not
// reach; no call reaches the route.
func TestPacketConnRefusals(t *testing.T) {
	r := &router{to: netip.MustParseAddrPort("127.0.0.1:9")}
	d := &sockets.Dialer{RoutePacket: r.route}
	pc4, err := d.ListenPacket(t.Context(), "udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc4.Close()
	pc, err := d.ListenPacket(t.Context(), "udp", "")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	cases := []struct {
		name string
		dst  netip.AddrPort
		rule sockets.Rule
	}{
		{"loopback", netip.MustParseAddrPort("127.0.0.1:53"), "loopback (RFC 1122)"},
		{"google range off port 53", netip.MustParseAddrPort("8.8.8.8:443"), sockets.RuleGoogle},
		{"port 25", netip.MustParseAddrPort("93.184.216.34:25"), sockets.RuleSMTP},
		{"port 0", netip.MustParseAddrPort("93.184.216.34:0"), sockets.RulePort0},
		{"multicast", netip.MustParseAddrPort("224.0.0.251:5353"), "multicast (RFC 5771)"},
		{"broadcast", netip.MustParseAddrPort("255.255.255.255:67"), "limited broadcast (RFC 919)"},
		{"zoned", netip.MustParseAddrPort("[fe80::1%lo]:53"), sockets.RuleZone},
		{"no address", netip.AddrPort{}, sockets.RuleMalformed},
		{"IPv6 on udp4", netip.MustParseAddrPort("[2001:4860:4860::8888]:53"), sockets.RuleMalformed},
	}
	for _, tc := range cases {
		for name, write := range writePaths {
			if tc.dst.Addr().Is6() && name == "WriteTo 16-byte IPv4" {
				continue // that path only carries IPv4 destinations
			}
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				p := pc
				if tc.name == "IPv6 on udp4" {
					p = pc4
				}
				n, err := write(p, []byte("x"), tc.dst)
				assertRefusal(t, err, tc.rule)
				if n != 0 {
					t.Errorf("n = %d", n)
				}
			})
		}
	}
	for _, addr := range []net.Addr{nil, (*net.UDPAddr)(nil), &net.TCPAddr{IP: net.IPv4(8, 8, 8, 8), Port: 53}} {
		_, err := pc4.WriteTo([]byte("x"), addr)
		assertRefusal(t, err, sockets.RuleMalformed)
	}
	if _, err := pc4.WriteToUDP([]byte("x"), nil); err == nil {
		t.Error("WriteToUDP(nil): no error")
	}
	if got := r.calls(); len(got) != 0 {
		t.Errorf("refused datagrams reached the route: %v", got)
	}
	if u := pc.Usage(); u != (sockets.Usage{}) {
		t.Errorf("usage = %+v after refusals only", u)
	}
}

// TestPacketConnLoopbackAllowed sends straight to a loopback server, with
// the policy widened explicitly and no route.
func TestPacketConnLoopbackAllowed(t *testing.T) {
	srv := startEchoUDP(t)
	meter := &sockets.Meter{}
	d := &sockets.Dialer{Policy: loopbackPolicy(), Meter: meter}
	pc, err := d.ListenPacket(t.Context(), "udp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.WriteTo([]byte("hello"), net.UDPAddrFromAddrPort(srv.addrPort())); err != nil {
		t.Fatal(err)
	}
	if got := srv.next(t); got != "hello" {
		t.Fatalf("server got %q", got)
	}
	buf := make([]byte, 64)
	n, from, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "re:hello" {
		t.Fatalf("ReadFrom = %q, %v", buf[:n], err)
	}
	if ua, ok := from.(*net.UDPAddr); !ok || ua.AddrPort() != srv.addrPort() {
		t.Errorf("from = %v", from)
	}
	if u := pc.Usage(); u != (sockets.Usage{Sent: 5, Received: 8}) {
		t.Errorf("usage = %+v", u)
	}
	if u := meter.Host("127.0.0.1"); u != (sockets.Usage{Sent: 5, Received: 8}) {
		t.Errorf("meter for 127.0.0.1 = %+v", u)
	}
	if err := pc.KeepAlive(); err != nil {
		t.Error(err)
	}
	if err := pc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.WriteTo([]byte("x"), net.UDPAddrFromAddrPort(srv.addrPort())); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after Close: %v", err)
	}
	if _, _, err := pc.ReadFromUDP(buf); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read after Close: %v", err)
	}
	if err := pc.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

// TestListenPacketBinding: only the unspecified address with port 0.
func TestListenPacketBinding(t *testing.T) {
	d := &sockets.Dialer{}
	for _, tc := range []struct{ network, addr string }{
		{"udp", ""}, {"udp", ":0"}, {"udp4", "0.0.0.0:0"}, {"udp6", "[::]:0"}, {"udp", "[::]:0"}, {"udp4", ":0"},
	} {
		pc, err := d.ListenPacket(t.Context(), tc.network, tc.addr)
		if err != nil {
			t.Errorf("ListenPacket(%q, %q): %v", tc.network, tc.addr, err)
			continue
		}
		la := pc.LocalAddr().(*net.UDPAddr)
		if !la.IP.IsUnspecified() || la.Port == 0 {
			t.Errorf("ListenPacket(%q, %q) bound %v", tc.network, tc.addr, la)
		}
		pc.Close()
	}
	for _, tc := range []struct {
		network, addr string
		rule          sockets.Rule
	}{
		{"udp", "127.0.0.1:0", sockets.RuleBind},
		{"udp", ":53", sockets.RuleBind},
		{"udp", "0.0.0.0:5353", sockets.RuleBind},
		{"udp", "[::1]:0", sockets.RuleBind},
		{"udp6", "[fe80::1%lo]:0", sockets.RuleBind},
		{"udp", "[::%lo]:0", sockets.RuleBind},
		{"udp", "localhost:0", sockets.RuleBind},
		{"udp", "garbage", sockets.RuleBind},
		{"udp", "0.0.0.0", sockets.RuleBind},
		{"udp", ":00", sockets.RuleBind},
		{"tcp", ":0", sockets.RuleListen},
		{"tcp4", "", sockets.RuleListen},
		{"unixgram", "/tmp/x", sockets.RuleNetwork},
		{"ip4:icmp", "0.0.0.0", sockets.RuleNetwork},
		{"", "", sockets.RuleNetwork},
	} {
		pc, err := d.ListenPacket(t.Context(), tc.network, tc.addr)
		if pc != nil {
			pc.Close()
		}
		de := assertRefusal(t, err, tc.rule)
		if de.Network != tc.network {
			t.Errorf("ListenPacket(%q, %q): refusal names network %q", tc.network, tc.addr, de.Network)
		}
	}
}

// TestConnectedUDPDNS dials 8.8.8.8:53 over UDP through the Connect seam,
// and refuses 10.0.0.1:53 without a connection attempt.
func TestConnectedUDPDNS(t *testing.T) {
	srv := startEchoUDP(t)
	seam := &socketstest.Connector{Target: srv.addrPort().String()}
	d := &sockets.Dialer{Connect: seam.Connect}
	c := dialConn(t, d, "udp", "8.8.8.8:53")
	if _, err := c.Write([]byte("query")); err != nil {
		t.Fatal(err)
	}
	if got := srv.next(t); got != "query" {
		t.Fatalf("server got %q", got)
	}
	_, err := d.DialContext(t.Context(), "udp", "10.0.0.1:53")
	assertRefusal(t, err, "private (RFC 1918)")
	if got := seam.Attempts(); len(got) != 1 || got[0] != netip.MustParseAddrPort("8.8.8.8:53") {
		t.Errorf("connect attempts = %v, want only 8.8.8.8:53", got)
	}
}

func TestZeroPacketConn(t *testing.T) {
	var nilPC *sockets.PacketConn
	for name, pc := range map[string]*sockets.PacketConn{"zero": new(sockets.PacketConn), "nil": nilPC} {
		t.Run(name, func(t *testing.T) {
			if _, err := pc.WriteToUDPAddrPort(nil, netip.MustParseAddrPort("8.8.8.8:53")); err == nil {
				t.Error("WriteToUDPAddrPort: no error")
			}
			if _, _, err := pc.ReadFrom(nil); err == nil {
				t.Error("ReadFrom: no error")
			}
			if err := pc.Close(); err == nil {
				t.Error("Close: no error")
			}
			if err := pc.KeepAlive(); err == nil {
				t.Error("KeepAlive: no error")
			}
			if err := pc.SetDeadline(time.Time{}); err == nil {
				t.Error("SetDeadline: no error")
			}
			if _, err := pc.GetsockoptInt(0, 0); err == nil {
				t.Error("GetsockoptInt: no error")
			}
			if pc.LocalAddr() != nil || pc.Usage() != (sockets.Usage{}) {
				t.Error("a zero PacketConn has an address or usage")
			}
		})
	}
}
