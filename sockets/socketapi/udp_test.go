package socketapi_test

import (
	"context"
	"errors"
	"math"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketapi"
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

// writePaths are the forms in which a PacketConn is given a destination;
// each must be checked.
var writePaths = map[string]func(*socketapi.PacketConn, []byte, netip.AddrPort) (int, error){
	"WriteTo": func(p *socketapi.PacketConn, b []byte, ap netip.AddrPort) (int, error) {
		return p.WriteTo(b, net.UDPAddrFromAddrPort(ap))
	},
	"WriteTo 16-byte IPv4": func(p *socketapi.PacketConn, b []byte, ap netip.AddrPort) (int, error) {
		return p.WriteTo(b, &net.UDPAddr{IP: net.IP(ap.Addr().AsSlice()).To16(), Port: int(ap.Port())})
	},
}

// readFrom reads a datagram with ReadFrom and returns its source as a
// netip.AddrPort, failing the test if the source is not a *net.UDPAddr.
func readFrom(t *testing.T, p *socketapi.PacketConn, b []byte) (int, netip.AddrPort, error) {
	t.Helper()
	n, from, err := p.ReadFrom(b)
	if from == nil {
		return n, netip.AddrPort{}, err
	}
	ua, ok := from.(*net.UDPAddr)
	if !ok {
		t.Fatalf("ReadFrom returned a %T source, want a *net.UDPAddr", from)
	}
	return n, ua.AddrPort(), err
}

// TestPolicyDNS is the rule the UDP tests rely on: Google Public DNS on port
// 53 passes the default policy, a private resolver does not.
func TestPolicyDNS(t *testing.T) {
	p := sockets.DefaultPolicy()
	if err := p.Check("udp", "", netip.MustParseAddrPort("8.8.8.8:53")); err != nil {
		t.Errorf("8.8.8.8:53: %v", err)
	}
	assertRefusal(t, p.Check("udp", "", netip.MustParseAddrPort("10.0.0.1:53")), sockets.RulePrivate)
}

func assertRefusal(t *testing.T, err error, rule sockets.Rule) *sockets.DeniedError {
	t.Helper()
	var de *sockets.DeniedError
	if !errors.As(err, &de) || !errors.Is(err, sockets.ErrDenied) || de.Rule != rule {
		t.Fatalf("err = %v, want a refusal by %v", err, rule)
	}
	return de
}

// TestPacketConnDNS sends to 8.8.8.8:53 (allowed; routed onto a loopback
// server) and to 10.0.0.1:53 (refused; nothing sent) on every write path.
func TestPacketConnDNS(t *testing.T) {
	srv := startEchoUDP(t)
	r := &router{to: srv.addrPort()}
	meter := &socketapi.Meter{}
	d := &socketapi.Dialer{RoutePacket: r.route, Meter: meter}
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
			de := assertRefusal(t, err, sockets.RulePrivate)
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
			n, from, err := readFrom(t, pc, buf)
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
	if got := meter.Host("10.0.0.1"); got != (socketapi.Usage{}) {
		t.Errorf("meter for 10.0.0.1 = %+v, want nothing", got)
	}
}

// TestPacketConnRefusals covers the other destinations a datagram may not
// reach; no call reaches the route.
func TestPacketConnRefusals(t *testing.T) {
	r := &router{to: netip.MustParseAddrPort("127.0.0.1:9")}
	d := &socketapi.Dialer{RoutePacket: r.route}
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
		{"loopback", netip.MustParseAddrPort("127.0.0.1:53"), sockets.RuleLoopback},
		{"google range off port 53", netip.MustParseAddrPort("8.8.8.8:443"), sockets.RuleGoogle},
		{"port 25", netip.MustParseAddrPort("93.184.216.34:25"), sockets.RuleSMTP},
		{"port 0", netip.MustParseAddrPort("93.184.216.34:0"), sockets.RulePort0},
		{"multicast", netip.MustParseAddrPort("224.0.0.251:5353"), sockets.RuleMulticast},
		{"broadcast", netip.MustParseAddrPort("255.255.255.255:67"), sockets.RuleBroadcast},
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
	if got := r.calls(); len(got) != 0 {
		t.Errorf("refused datagrams reached the route: %v", got)
	}
	if u := pc.Usage(); u != (socketapi.Usage{}) {
		t.Errorf("usage = %+v after refusals only", u)
	}
}

// TestPacketConnLoopbackAllowed sends straight to a loopback server, with
// the policy widened explicitly and no route.
func TestPacketConnLoopbackAllowed(t *testing.T) {
	srv := startEchoUDP(t)
	meter := &socketapi.Meter{}
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Meter: meter}
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
	if u := pc.Usage(); u != (socketapi.Usage{Sent: 5, Received: 8}) {
		t.Errorf("usage = %+v", u)
	}
	if u := meter.Host("127.0.0.1"); u != (socketapi.Usage{Sent: 5, Received: 8}) {
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
	if _, _, err := pc.ReadFrom(buf); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read after Close: %v", err)
	}
	if err := pc.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

// TestListenPacketBinding: only the unspecified address with port 0.
func TestListenPacketBinding(t *testing.T) {
	d := &socketapi.Dialer{}
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
	seam := &lab.Connector{Target: srv.addrPort().String()}
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Connect: seam.Connect}}
	c := dialConn(t, d, "udp", "8.8.8.8:53")
	if _, err := c.Write([]byte("query")); err != nil {
		t.Fatal(err)
	}
	if got := srv.next(t); got != "query" {
		t.Fatalf("server got %q", got)
	}
	_, err := d.DialContext(t.Context(), "udp", "10.0.0.1:53")
	assertRefusal(t, err, sockets.RulePrivate)
	if got := seam.Attempts(); len(got) != 1 || got[0] != netip.MustParseAddrPort("8.8.8.8:53") {
		t.Errorf("connect attempts = %v, want only 8.8.8.8:53", got)
	}
}

func TestZeroPacketConn(t *testing.T) {
	var nilPC *socketapi.PacketConn
	for name, pc := range map[string]*socketapi.PacketConn{"zero": new(socketapi.PacketConn), "nil": nilPC} {
		t.Run(name, func(t *testing.T) {
			if _, err := pc.WriteTo(nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort("8.8.8.8:53"))); err == nil {
				t.Error("WriteTo: no error")
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
			if pc.LocalAddr() != nil || pc.Usage() != (socketapi.Usage{}) {
				t.Error("a zero PacketConn has an address or usage")
			}
		})
	}
}

// oddAddr is a net.Addr of no standard type.
type oddAddr string

func (a oddAddr) Network() string { return "udp" }
func (a oddAddr) String() string  { return string(a) }

// TestWriteMalformedDestination is the regression test for out-of-range
// ports failing open: WriteTo(b, &net.UDPAddr{IP: 8.8.8.8, Port: -65483})
// used to send to 8.8.8.8:53, because the port was cut to its low 16 bits
// before the policy saw it. WriteTo refuses such an address, and its
// neighbours, as malformed before anything is sent, on every network: the
// route is never asked, and the loopback server behind it sees only the
// well-formed datagram sent last.
func TestWriteMalformedDestination(t *testing.T) {
	google := net.IPv4(8, 8, 8, 8).To4() // allowed on port 53 (Google Public DNS)
	google6 := net.ParseIP("2001:4860:4860::8888")
	cases := []struct {
		name string
		addr net.Addr
		rule sockets.Rule
	}{
		{"port -65483 (53 in 16 bits)", &net.UDPAddr{IP: google, Port: -65483}, sockets.RuleMalformed},
		{"port -1", &net.UDPAddr{IP: google, Port: -1}, sockets.RuleMalformed},
		{"port -65536 (0 in 16 bits)", &net.UDPAddr{IP: google, Port: -65536}, sockets.RuleMalformed},
		{"port 65536", &net.UDPAddr{IP: google, Port: 65536}, sockets.RuleMalformed},
		{"port 65589 (53 in 16 bits)", &net.UDPAddr{IP: google, Port: 65536 + 53}, sockets.RuleMalformed},
		{"port 1<<31-1", &net.UDPAddr{IP: google, Port: 1<<31 - 1}, sockets.RuleMalformed},
		{"port -1<<31", &net.UDPAddr{IP: google, Port: -1 << 31}, sockets.RuleMalformed},
		{"port MaxInt", &net.UDPAddr{IP: google, Port: math.MaxInt}, sockets.RuleMalformed},
		{"port MinInt", &net.UDPAddr{IP: google, Port: math.MinInt}, sockets.RuleMalformed},
		{"port 1<<48+53", &net.UDPAddr{IP: google, Port: 1<<48 + 53}, sockets.RuleMalformed},
		{"port 0, in range, refused by the policy", &net.UDPAddr{IP: google, Port: 0}, sockets.RulePort0},
		{"16-byte IPv4, port -65483", &net.UDPAddr{IP: google.To16(), Port: -65483}, sockets.RuleMalformed},
		{"IPv6, port -65483", &net.UDPAddr{IP: google6, Port: -65483}, sockets.RuleMalformed},
		{"IPv6, port 65589", &net.UDPAddr{IP: google6, Port: 65536 + 53}, sockets.RuleMalformed},
		{"nil IP", &net.UDPAddr{Port: 53}, sockets.RuleMalformed},
		{"empty IP", &net.UDPAddr{IP: net.IP{}, Port: 53}, sockets.RuleMalformed},
		{"5-byte IP", &net.UDPAddr{IP: net.IP{8, 8, 8, 8, 0}, Port: 53}, sockets.RuleMalformed},
		{"3-byte IP", &net.UDPAddr{IP: net.IP{8, 8, 8}, Port: 53}, sockets.RuleMalformed},
		// netip drops a zone on an IPv4 address: the zone would vanish and
		// the datagram go out.
		{"IPv4 with a zone", &net.UDPAddr{IP: google, Port: 53, Zone: "lo"}, sockets.RuleZone},
		{"16-byte IPv4 with a zone", &net.UDPAddr{IP: google.To16(), Port: 53, Zone: "lo"}, sockets.RuleZone},
		{"IPv6 with a zone", &net.UDPAddr{IP: google6, Port: 53, Zone: "lo"}, sockets.RuleZone},
		{"IPv6 with a numeric zone", &net.UDPAddr{IP: google6, Port: 53, Zone: "1"}, sockets.RuleZone},
		{"nil *net.UDPAddr", (*net.UDPAddr)(nil), sockets.RuleMalformed},
		{"nil", nil, sockets.RuleMalformed},
	}
	// Addresses of other types: a PacketConn takes only *net.UDPAddr.
	wrongType := []struct {
		name string
		addr net.Addr
	}{
		{"*net.TCPAddr", &net.TCPAddr{IP: google, Port: 53}},
		{"*net.TCPAddr, port -65483", &net.TCPAddr{IP: google, Port: -65483}},
		{"*net.IPAddr", &net.IPAddr{IP: google}},
		{"other type, port -65483", oddAddr("8.8.8.8:-65483")},
		{"other type, port 65589", oddAddr("8.8.8.8:65589")},
		{"other type, garbage", oddAddr("8.8.8.8")},
	}

	srv := startEchoUDP(t)
	r := &router{to: srv.addrPort()}
	d := &socketapi.Dialer{RoutePacket: r.route}
	var pcs []*socketapi.PacketConn
	for _, network := range []string{"udp", "udp4", "udp6"} {
		pc, err := d.ListenPacket(t.Context(), network, "")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		pcs = append(pcs, pc)
	}
	networks := []string{"udp", "udp4", "udp6"}

	for _, tc := range cases {
		for i, pc := range pcs {
			t.Run(tc.name+"/"+networks[i], func(t *testing.T) {
				n, err := pc.WriteTo([]byte("must not be sent"), tc.addr)
				rule := tc.rule
				var de *sockets.DeniedError
				if errors.As(err, &de) && de.Rule == sockets.RuleMalformed && de.Detail == "address family does not match the network" {
					// A well-formed address of the other family, on a
					// udp4 or udp6 socket.
					rule = sockets.RuleMalformed
				}
				de = assertRefusal(t, err, rule)
				if n != 0 || tc.rule == sockets.RuleMalformed && de.Addr.IsValid() {
					t.Errorf("n = %d, refusal %+v", n, de)
				}
			})
		}
	}
	for _, tc := range wrongType {
		for i, pc := range pcs {
			t.Run(tc.name+"/"+networks[i], func(t *testing.T) {
				n, err := pc.WriteTo([]byte("must not be sent"), tc.addr)
				assertRefusal(t, err, sockets.RuleMalformed)
				if n != 0 {
					t.Errorf("n = %d", n)
				}
			})
		}
	}

	if got := r.calls(); len(got) != 0 {
		t.Errorf("malformed destinations reached the route as %v", got)
	}
	// The server sees the next well-formed datagram first: nothing before
	// it was sent.
	if _, err := pcs[0].WriteTo([]byte("well-formed"), &net.UDPAddr{IP: google, Port: 53}); err != nil {
		t.Fatal(err)
	}
	if got := srv.next(t); got != "well-formed" {
		t.Fatalf("server got %q first, want the well-formed datagram", got)
	}
	for _, pc := range pcs {
		if u := pc.Usage(); u.Sent > int64(len("well-formed")) {
			t.Errorf("usage %+v: a refused datagram was counted", u)
		}
	}
}

// TestBindRefusalIsEACCES: App Engine refused a bind to anything but the
// unspecified address with port 0 with PERMISSION_DENIED
// (google/appengine/api/remote_socket/_remote_socket_stub.py, SDK 1.9.91:
// _BindAllowed at line 185, the refusal at lines 203-206 in
// _Dynamic_CreateSocket and 226-229 in _Dynamic_Bind), and its socket
// module raised that as socket.error(EACCES) (_remote_socket.py, _ERROR_MAP
// at line 137). So a refused bind matches syscall.EACCES and
// os.ErrPermission besides ErrDenied. Listening is not such an error: the
// stub's _Dynamic_Listen (line 234) raises NotImplementedError, not
// PERMISSION_DENIED; nor is a refused destination.
func TestBindRefusalIsEACCES(t *testing.T) {
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Connect: noConnect(t)}}
	var binds []error
	for _, addr := range []string{"127.0.0.1:0", ":53", "[::1]:0", "0.0.0.0:5353"} {
		_, err := d.ListenPacket(t.Context(), "udp", addr)
		binds = append(binds, err)
	}
	for _, la := range []net.Addr{
		&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)},
		&net.TCPAddr{Port: 8080},
		&net.UDPAddr{IP: net.IPv6loopback},
	} {
		bd := &socketapi.Dialer{Dialer: sockets.Dialer{LocalAddr: la, Connect: noConnect(t)}}
		_, err := bd.DialContext(t.Context(), "tcp", "93.184.216.34:443")
		binds = append(binds, err)
	}
	for _, err := range binds {
		assertRefusal(t, err, sockets.RuleBind)
		if !errors.Is(err, syscall.EACCES) || !errors.Is(err, os.ErrPermission) {
			t.Errorf("%v: does not match syscall.EACCES and os.ErrPermission", err)
		}
		if errors.Is(err, syscall.EPERM) {
			t.Errorf("%v matches EPERM; App Engine said EACCES", err)
		}
	}

	_, listenErr := socketapi.Listen("tcp", ":8080")
	_, tcpListen := d.ListenPacket(t.Context(), "tcp", ":0")
	_, network := d.ListenPacket(t.Context(), "unixgram", "/tmp/x")
	_, private := d.DialContext(t.Context(), "tcp", "10.0.0.1:443")
	_, port25 := d.DialContext(t.Context(), "tcp", "93.184.216.34:25")
	for _, err := range []error{listenErr, tcpListen, network, private, port25, (*sockets.DeniedError)(nil)} {
		if errors.Is(err, syscall.EACCES) || errors.Is(err, os.ErrPermission) {
			t.Errorf("%v matches EACCES; only a refused bind does", err)
		}
	}
}

// TestPacketConnMeterSources is the regression test for a PacketConn that
// added a Meter entry for the source of every datagram it received, so
// that anyone could grow an application's memory by sending datagrams from
// many addresses. Datagrams from addresses the socket never sent to add no
// host: they are counted under OverflowHost. A reply from an address the
// socket sent to is counted under that address, also when it arrives
// IPv4-mapped on a dual-stack socket.
func TestPacketConnMeterSources(t *testing.T) {
	srv := startEchoUDP(t)
	meter := &socketapi.Meter{}
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: sockets.DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.0/8"))}, Meter: meter}
	pc, err := d.ListenPacket(t.Context(), "udp", "") // dual-stack where the system has IPv6
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: pc.LocalAddr().(*net.UDPAddr).Port}

	// Unsolicited datagrams, each from its own loopback address (Linux
	// answers on all of 127.0.0.0/8; elsewhere they come from 127.0.0.1,
	// to which the socket has not sent either).
	const senders = 200
	payload := []byte("unsolicited")
	for i := range senders {
		src := &net.UDPAddr{IP: net.IPv4(127, 0, byte(1+i/250), byte(2+i%250))}
		c, err := net.ListenUDP("udp4", src)
		if err != nil {
			c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteToUDP(payload, to); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	// And from ::1, where the system has IPv6 loopback.
	want := senders
	if c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err == nil {
		to6 := &net.UDPAddr{IP: net.IPv6loopback, Port: to.Port}
		if _, err := c.WriteToUDP(payload, to6); err == nil {
			want++
		}
		c.Close()
	}
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	sources := map[netip.Addr]bool{}
	for range want {
		n, from, err := readFrom(t, pc, buf)
		if err != nil || string(buf[:n]) != string(payload) {
			t.Fatalf("read %q from %v: %v", buf[:n], from, err)
		}
		sources[from.Addr()] = true
	}
	t.Logf("%d datagrams from %d distinct addresses", want, len(sources))
	snap := meter.Snapshot()
	if len(snap) != 1 || snap[socketapi.OverflowHost] != (socketapi.Usage{Received: int64(want * len(payload))}) {
		t.Fatalf("after %d unsolicited datagrams, Snapshot() = %v; want only %q", want, snap, socketapi.OverflowHost)
	}

	// A reply from a destination is counted under it.
	if _, err := pc.WriteTo([]byte("hello"), net.UDPAddrFromAddrPort(srv.addrPort())); err != nil {
		t.Fatal(err)
	}
	n, from, err := readFrom(t, pc, buf)
	if err != nil || string(buf[:n]) != "re:hello" || from != srv.addrPort() {
		t.Fatalf("reply %q from %v: %v", buf[:n], from, err)
	}
	if u := meter.Host("127.0.0.1"); u != (socketapi.Usage{Sent: 5, Received: 8}) {
		t.Errorf("Host(127.0.0.1) = %+v, want the datagram and its reply", u)
	}
	// Sending to one address solicits no other: a datagram from another
	// port of 127.0.0.1 counts under 127.0.0.1, one from 127.0.0.2 does not
	// add it.
	for _, ip := range []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 2)} {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
		if err != nil {
			continue // 127.0.0.2 is not local on every system
		}
		c.WriteToUDP(payload, to)
		c.Close()
		if _, _, err := pc.ReadFrom(buf); err != nil {
			t.Fatal(err)
		}
	}
	snap = meter.Snapshot()
	if len(snap) != 2 || snap["127.0.0.2"] != (socketapi.Usage{}) {
		t.Errorf("Snapshot() = %v, want only 127.0.0.1 and %q", snap, socketapi.OverflowHost)
	}
	if u := total(meter); u.Received != int64((want+1)*len(payload)+len("re:hello")) && u.Received != int64((want+2)*len(payload)+len("re:hello")) {
		t.Errorf("total = %+v: a received byte was not counted", u)
	}
}

// lastRoute is a RoutePacket seam that keeps only the last destination it
// was asked to route, for a fuzz target that sends many datagrams, and
// sends them all to target.
type lastRoute struct {
	target netip.AddrPort
	last   atomic.Pointer[netip.AddrPort]
}

func (r *lastRoute) route(dst netip.AddrPort) netip.AddrPort {
	r.last.Store(&dst)
	return r.target
}

// FuzzWriteToUDP checks the conversion of a *net.UDPAddr given to WriteTo
// against a simple reference: a datagram reaches the route only when the
// address is well formed (a port from 0 to 65535, an IP of 4 or 16 bytes,
// no zone on an IPv4 address), then exactly to that address and port, and
// only when the policy allows it; anything else is a refusal and is not
// sent. Every datagram that passes goes to a closed port on 127.0.0.1.
func FuzzWriteToUDP(f *testing.F) {
	f.Add([]byte{8, 8, 8, 8}, 53, "")                                // Google Public DNS: allowed
	f.Add([]byte{8, 8, 8, 8}, -65483, "")                            // 53 in 16 bits
	f.Add([]byte{8, 8, 8, 8}, 65536+53, "")                          // 53 in 16 bits
	f.Add([]byte{8, 8, 8, 8}, -1, "")                                // 65535 in 16 bits
	f.Add([]byte{8, 8, 8, 8}, 53, "lo")                              // a zone netip drops on IPv4
	f.Add([]byte(net.IPv4(8, 8, 8, 8)), 53, "")                      // IPv4-mapped, 16 bytes
	f.Add([]byte(net.ParseIP("2001:4860:4860::8888")), 53, "")       // allowed
	f.Add([]byte(net.ParseIP("2001:4860:4860::8888")), 53, "eth0")   // zoned
	f.Add([]byte(net.ParseIP("2001:4860:4860::8888")), 1<<20+53, "") // out of range
	f.Add([]byte{93, 184, 216, 34}, 443, "")                         // public
	f.Add([]byte{10, 0, 0, 1}, 53, "")                               // private
	f.Add([]byte{}, 53, "")
	f.Add([]byte{8, 8, 8, 8, 0}, 53, "")

	closed, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	r := &lastRoute{target: closed.LocalAddr().(*net.UDPAddr).AddrPort()}
	closed.Close()
	d := &socketapi.Dialer{RoutePacket: r.route}
	pc, err := d.ListenPacket(context.Background(), "udp", "")
	if err != nil {
		f.Fatal(err)
	}
	defer pc.Close()
	policy := sockets.DefaultPolicy()

	f.Fuzz(func(t *testing.T, ip []byte, port int, zone string) {
		addr := &net.UDPAddr{IP: ip, Port: port, Zone: zone}
		r.last.Store(nil)
		n, err := pc.WriteTo([]byte("x"), addr)
		routed := r.last.Load()

		// The reference.
		// A zone on a 16-byte IP is kept (and refused by the policy); on a
		// 4-byte one it would be lost, so the address is refused outright.
		wellFormed := 0 <= port && port <= 65535 && (len(ip) == 4 || len(ip) == 16) && (zone == "" || len(ip) == 16)
		var want netip.AddrPort
		if wellFormed {
			a, _ := netip.AddrFromSlice(ip)
			want = netip.AddrPortFrom(a.WithZone(zone), uint16(port))
		}
		allowed := wellFormed && policy.Check("udp", "", want) == nil

		switch {
		case routed != nil && !allowed:
			t.Fatalf("WriteTo(%#v) routed to %v: the address is malformed or refused", addr, *routed)
		case routed != nil && *routed != want:
			t.Fatalf("WriteTo(%#v) routed to %v, want %v", addr, *routed, want)
		case routed == nil && allowed:
			t.Fatalf("WriteTo(%#v) = %d, %v: an allowed address was not sent", addr, n, err)
		case !allowed && (n != 0 || !errors.Is(err, sockets.ErrDenied)):
			t.Fatalf("WriteTo(%#v) = %d, %v; want a refusal", addr, n, err)
		}
		var de *sockets.DeniedError
		if !wellFormed && errors.As(err, &de) && de.Rule != sockets.RuleMalformed && de.Rule != sockets.RuleZone {
			t.Fatalf("WriteTo(%#v): refused for %q, want malformed or zoned", addr, de.Rule)
		}
	})
}
