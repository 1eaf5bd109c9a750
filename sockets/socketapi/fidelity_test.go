package socketapi_test

// Behaviours that follow App Engine's own sources: the Python SDK 1.9.91's
// google/appengine/api/remote_socket/_remote_socket.py (the socket module
// an application imported) and _remote_socket_stub.py (the service as the
// development server ran it). Each test names the lines it follows.

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketapi"
)

// TestFidelityReclaimedIsEPIPE: a socket the service reclaimed fails as a
// socket whose peer closed it. The stub forgets a descriptor idle for 120
// seconds and answers every later call on it with SOCKET_CLOSED
// (_remote_socket_stub.py 151-165, _LookupSocket), which the socket module
// raised as socket.error(EPIPE) (_remote_socket.py 136-140, _ERROR_MAP).
// So every operation on a reclaimed Conn or PacketConn fails with an
// error that matches syscall.EPIPE, and still ErrReclaimed and
// net.ErrClosed.
func TestFidelityReclaimedIsEPIPE(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seam := &pipeSeam{halfClose: true}
		defer seam.closeAll()
		d := &socketapi.Dialer{
			Dialer:      sockets.Dialer{Connect: seam.connect},
			IdleTimeout: time.Minute,
			Registry:    new(socketapi.Registry),
		}
		c, err := dial(d, t.Context(), "tcp", publicDest)
		if err != nil {
			t.Fatal(err)
		}
		pc, err := d.ListenPacket(t.Context(), "udp", "")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()

		dst := net.UDPAddrFromAddrPort(netip.MustParseAddrPort("93.184.216.34:53"))
		ops := map[string]error{}
		_, ops["Conn.Read"] = c.Read(make([]byte, 1))
		_, ops["Conn.Write"] = c.Write([]byte("x"))
		ops["Conn.KeepAlive"] = c.KeepAlive()
		ops["Conn.CloseRead"] = c.CloseRead()
		ops["Conn.CloseWrite"] = c.CloseWrite()
		ops["Conn.SetDeadline"] = c.SetDeadline(time.Now())
		_, ops["Conn.GetsockoptInt"] = c.GetsockoptInt(syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		ops["Conn.SetsockoptInt"] = c.SetsockoptInt(syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1)
		_, ops["Conn.Detach"] = c.Detach()
		ops["Conn.Close"] = c.Close()
		_, ops["PacketConn.WriteTo"] = pc.WriteTo([]byte("x"), dst)
		_, _, ops["PacketConn.ReadFrom"] = pc.ReadFrom(make([]byte, 1))
		ops["PacketConn.KeepAlive"] = pc.KeepAlive()
		_, ops["PacketConn.GetsockoptInt"] = pc.GetsockoptInt(syscall.SOL_SOCKET, syscall.SO_RCVBUF)
		ops["PacketConn.Close"] = pc.Close()
		for op, err := range ops {
			for _, target := range []error{syscall.EPIPE, socketapi.ErrReclaimed, net.ErrClosed} {
				if !errors.Is(err, target) {
					t.Errorf("%s on a reclaimed socket: %v; want an error that matches %v", op, err, target)
				}
			}
			if errors.Is(err, socketapi.ErrHandedOff) {
				t.Errorf("%s on a reclaimed socket: %v reads as handed off", op, err)
			}
		}
	})
	// Only reclamation is a closed peer: a socket the caller closed, or
	// handed off, is not.
	for _, err := range []error{net.ErrClosed, socketapi.ErrHandedOff} {
		if errors.Is(err, syscall.EPIPE) {
			t.Errorf("%v matches syscall.EPIPE", err)
		}
	}
}

// TestFidelityShutdownReadTwice: shutting down the reading side of a
// socket whose reading side is already shut down fails with ENOTCONN
// (_remote_socket.py 1139-1142, socket.shutdown: "self._shutdown_read and
// flag in (SHUT_RD, SHUT_RDWR)" raises ENOTCONN before any call to the
// service), where Linux would accept it again. The first CloseRead still
// works, reads then return io.EOF, and writes still go out; the second
// fails without touching the socket, also after the connection was
// handed off and picked up again within the process.
//
// The same line also refuses SHUT_RD after SHUT_WR ("self._shutdown_write
// and flag in (SHUT_RD, SHUT_RDWR)"), which reads as a slip for SHUT_WR
// and which no system does: CloseRead after CloseWrite is kept working.
func TestFidelityShutdownReadTwice(t *testing.T) {
	// The server holds every connection open, never closing its side, so
	// that the system's own answer to a shutdown does not depend on when
	// the server would have closed.
	srv := lab.NewServer(t, func(ctx context.Context, _ net.Conn) { <-ctx.Done() })
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: new(socketapi.Registry)}
	c := dialConn(t, d, "tcp", srv.Addr())
	if err := c.CloseRead(); err != nil {
		t.Fatalf("first CloseRead: %v", err)
	}
	wantNotConn := func(err error) {
		t.Helper()
		if !errors.Is(err, syscall.ENOTCONN) {
			t.Fatalf("second CloseRead: %v; want an error that matches syscall.ENOTCONN", err)
		}
		var se *socketapi.Error
		if !errors.As(err, &se) || se.Op != "shutdown" || se.Arg != "SHUT_RD" {
			t.Errorf("second CloseRead: %#v; want a *socketapi.Error for shutdown SHUT_RD", err)
		}
		if errors.Is(err, net.ErrClosed) {
			t.Errorf("second CloseRead: %v reads as a closed connection", err)
		}
	}
	wantNotConn(c.CloseRead())
	if _, err := c.Write([]byte("still open")); err != nil {
		t.Fatalf("Write after a refused CloseRead: %v", err)
	}
	if got, want := c.CloseRead().Error(), "socketapi: shutdown SHUT_RD: "+syscall.ENOTCONN.Error(); got != want {
		t.Errorf("message %q, want %q", got, want)
	}

	desc, err := c.Detach()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := d.Attach(desc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c2.Close() })
	wantNotConn(c2.CloseRead())

	// CloseWrite first, then CloseRead: both work (see above).
	c3 := dialConn(t, d, "tcp", srv.Addr())
	if err := c3.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := c3.CloseRead(); err != nil {
		t.Errorf("CloseRead after CloseWrite: %v", err)
	}
	wantNotConn(c3.CloseRead())

	// The refusal never reached App Engine's service, so it did not count
	// as a use of the socket (stub 158-164: only a call to the service
	// sets last_accessed_time): it does not restart the idle clock.
	synctest.Test(t, func(t *testing.T) {
		seam := &pipeSeam{halfClose: true}
		defer seam.closeAll()
		d := &socketapi.Dialer{Dialer: sockets.Dialer{Connect: seam.connect}, IdleTimeout: time.Minute}
		c, err := dial(d, t.Context(), "tcp", publicDest)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CloseRead(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute - time.Nanosecond)
		wantNotConn(c.CloseRead())
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if err := c.KeepAlive(); !errors.Is(err, socketapi.ErrReclaimed) {
			t.Errorf("a minute after the first CloseRead: %v; want ErrReclaimed (the refused one restarted the clock)", err)
		}
		// A reclaimed socket fails as reclaimed, not as shut down.
		if err := c.CloseRead(); !errors.Is(err, socketapi.ErrReclaimed) || errors.Is(err, syscall.ENOTCONN) {
			t.Errorf("CloseRead on a reclaimed socket: %v; want ErrReclaimed", err)
		}
	})
}

// TestFidelityWriteToConnected: sending to an explicit address on a
// connected socket is refused with EISCONN, whatever the address, the
// peer's own included (_remote_socket.py 989-991, socket.sendto: "if
// address: if self._connected: raise error(errno.EISCONN)"), before
// anything is sent, on TCP and UDP alike. Go's own connected
// *net.UDPConn refuses the same call with net.ErrWriteToConnected; the
// error matches both.
func TestFidelityWriteToConnected(t *testing.T) {
	udp := startEchoUDP(t)
	tcp := startEchoTCP(t)
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}}

	// Go's own behaviour, which the emulation also matches.
	gc, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(udp.addrPort()))
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	if _, err := gc.WriteTo([]byte("x"), gc.RemoteAddr()); !errors.Is(err, net.ErrWriteToConnected) {
		t.Fatalf("Go's connected *net.UDPConn: WriteTo = %v; want net.ErrWriteToConnected", err)
	}

	for _, tc := range []struct{ network, addr string }{
		{"udp", udp.addrPort().String()},
		{"tcp", tcp.addr()},
	} {
		t.Run(tc.network, func(t *testing.T) {
			c := dialConn(t, d, tc.network, tc.addr)
			dests := []net.Addr{
				c.RemoteAddr(), // the peer itself
				net.UDPAddrFromAddrPort(netip.MustParseAddrPort("93.184.216.34:53")),
				&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9},
				nil,
			}
			for _, dst := range dests {
				n, err := c.WriteTo([]byte("not sent"), dst)
				if n != 0 || !errors.Is(err, syscall.EISCONN) || !errors.Is(err, net.ErrWriteToConnected) {
					t.Errorf("WriteTo(%v) = %d, %v; want 0 and an error that matches syscall.EISCONN and net.ErrWriteToConnected", dst, n, err)
				}
				var se *socketapi.Error
				if !errors.As(err, &se) || se.Op != "sendto" {
					t.Errorf("WriteTo(%v): %#v; want a *socketapi.Error for sendto", dst, err)
				}
			}
			if u := c.Usage(); u.Sent != 0 {
				t.Errorf("usage after refused writes: %+v", u)
			}
			// The refusal leaves the connection as it was.
			echoRoundTrip2(t, c, tc.network)
			if got, want := errMsg(c.WriteTo(nil, c.RemoteAddr())), "socketapi: sendto "+c.RemoteAddr().String()+": socket is already connected"; got != want {
				t.Errorf("message %q, want %q", got, want)
			}
		})
	}
	if m := udp.next(t); m != "ping" {
		t.Errorf("the UDP server got %q first; want only the datagram written with Write", m)
	}
	select {
	case m := <-udp.got:
		t.Errorf("the UDP server got %q too", m)
	default:
	}

	// After Close, the closed socket's error, as the socket module raised
	// EBADF before it looked at the address (_remote_socket.py 974-975).
	c := dialConn(t, d, "udp", udp.addrPort().String())
	c.Close()
	if _, err := c.WriteTo(nil, c.RemoteAddr()); !errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EISCONN) {
		t.Errorf("WriteTo on a closed Conn: %v; want net.ErrClosed", err)
	}
	if _, err := new(socketapi.Conn).WriteTo(nil, c.RemoteAddr()); err == nil || errors.Is(err, syscall.EISCONN) {
		t.Errorf("WriteTo on a zero Conn: %v; want the zero Conn's error", err)
	}
}

// echoRoundTrip2 writes "ping" on c and reads the server's answer: the
// echo for TCP, "re:ping" for UDP.
func echoRoundTrip2(t *testing.T, c *socketapi.Conn, network string) {
	t.Helper()
	if network == "tcp" {
		echoRoundTrip(t, c, "ping")
		return
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 64)
	n, err := c.Read(b)
	if err != nil || string(b[:n]) != "re:ping" {
		t.Fatalf("read %q, %v; want %q", b[:n], err, "re:ping")
	}
}

func errMsg(_ int, err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// TestFidelityLookupLiteralFamily: an IPv6 literal looked up as IPv4, or an
// IPv4 literal as IPv6, is an error, not the literal. The socket module
// took a literal as itself only in a family it parses in (_remote_socket.py
// 204-216, _Resolve: "if _IsAddr(family, name)"), and otherwise asked the
// service, which answered only the families asked for (stub 372-374,
// _Dynamic_Resolve), none, so _Resolve raised EAI_NONAME. Go's
// net.Resolver refuses the same lookups with a *net.AddrError "no suitable
// address found"; the error here is that one, in a *sockets.LookupError.
// Where the two disagree, Go wins (an IPv4-mapped literal looked up as
// IPv4 is returned, as Go returns it). No literal reaches the resolver.
func TestFidelityLookupLiteralFamily(t *testing.T) {
	res := lab.NewResolver(nil)
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Resolver: res}}
	cases := []struct {
		network, host string
		ok            bool
	}{
		{"ip4", "::1", false},
		{"ip4", "2606:2800:220:1:248:1893:25c8:1946", false},
		{"ip4", "fe80::1%eth0", false},
		{"ip6", "127.0.0.1", false},
		{"ip6", "93.184.216.34", false},
		{"ip6", "::ffff:93.184.216.34", false}, // IPv4-mapped: an IPv4 address
		{"ip4", "::ffff:93.184.216.34", true},  // as Go (the SDK asked the service)
		{"ip4", "93.184.216.34", true},
		{"ip6", "::1", true},
		{"ip", "::1", true},
		{"ip", "127.0.0.1", true},
	}
	for _, tc := range cases {
		t.Run(tc.network+" "+tc.host, func(t *testing.T) {
			// A literal is never looked up, by Go either: no packet leaves.
			_, goErr := net.DefaultResolver.LookupNetIP(t.Context(), tc.network, tc.host)
			if (goErr == nil) != tc.ok {
				t.Fatalf("Go's LookupNetIP(%q, %q): %v; the table says ok=%v", tc.network, tc.host, goErr, tc.ok)
			}
			got, err := d.LookupNetIP(t.Context(), tc.network, tc.host)
			if tc.ok {
				want := netip.MustParseAddr(tc.host)
				if err != nil || len(got) != 1 || got[0] != want {
					t.Errorf("LookupNetIP(%q, %q) = %v, %v; want [%v]", tc.network, tc.host, got, err, want)
				}
				return
			}
			var le *sockets.LookupError
			if got != nil || !errors.As(err, &le) || le.Host != tc.host {
				t.Fatalf("LookupNetIP(%q, %q) = %v, %v; want a *sockets.LookupError", tc.network, tc.host, got, err)
			}
			var ae, goAE *net.AddrError
			if !errors.As(err, &ae) || !errors.As(goErr, &goAE) || *ae != *goAE {
				t.Errorf("LookupNetIP(%q, %q): %#v; want %#v inside, as Go's", tc.network, tc.host, le.Err, goErr)
			}
			if errors.Is(err, sockets.ErrDenied) {
				t.Errorf("LookupNetIP(%q, %q): %v reads as a policy refusal", tc.network, tc.host, err)
			}
		})
	}
	if l := res.Lookups(); len(l) != 0 {
		t.Errorf("resolver saw %q", l)
	}
}

// sdkServices is the SDK's table of service names
// (_remote_socket.py 124-134, _SERVICES), written out again here so that
// a change to the package's copy shows: every name has the same port for
// TCP and UDP.
var sdkServices = map[string]uint16{
	"ftp":      21,
	"ftp-data": 20,
	"http":     80,
	"pop3":     110,
	"pop3s":    995,
	"smtp":     25,
	"telnet":   23,
	"www":      80,
	"www-http": 80,
}

// TestFidelityServiceNames: a port may be given as one of the service
// names the socket module knew, resolved through its own table
// (_remote_socket.py 124-134, _SERVICES; 241-252, _ResolveService: a
// decimal port as itself, else the name for the socket's protocol, else
// EAI_SERVICE), and the port it names is then checked as a decimal port
// would be: "smtp" is port 25 and refused for RuleSMTP, "ftp" over TCP is
// port 21 and refused for RuleFTP, with no connection attempted. Every
// entry is tried over TCP and UDP, with a name and with a literal. A name
// not in the table (including "https" and "HTTP": the table has no https,
// and its lookup is case-sensitive) is refused as a malformed address, as
// the policy core refuses any port that is not decimal.
func TestFidelityServiceNames(t *testing.T) {
	const public = "93.184.216.34"
	var mu sync.Mutex
	var attempts []netip.AddrPort
	connect := func(_ context.Context, _ string, ap netip.AddrPort) (net.Conn, error) {
		mu.Lock()
		attempts = append(attempts, ap)
		mu.Unlock()
		a, b := net.Pipe()
		b.Close()
		return a, nil
	}
	d := &socketapi.Dialer{Dialer: sockets.Dialer{
		Resolver: lab.NewResolver(map[string][]string{"svc.example": {public}}),
		Connect:  connect,
	}}
	for name, port := range sdkServices {
		for _, network := range []string{"tcp", "udp"} {
			for _, host := range []string{"svc.example", public} {
				t.Run(network+" "+host+":"+name, func(t *testing.T) {
					mu.Lock()
					attempts = nil
					mu.Unlock()
					c, err := dial(d, t.Context(), network, net.JoinHostPort(host, name))
					var rule sockets.Rule
					switch {
					case port == 25:
						rule = sockets.RuleSMTP
					case port == 21 && network == "tcp":
						rule = sockets.RuleFTP
					}
					mu.Lock()
					got := attempts
					mu.Unlock()
					if rule != 0 {
						var de *sockets.DeniedError
						if !errors.As(err, &de) || de.Rule != rule {
							t.Fatalf("dial: %v; want a refusal for %v", err, rule)
						}
						if len(got) != 0 {
							t.Errorf("connections attempted: %v", got)
						}
						return
					}
					if err != nil {
						t.Fatalf("dial: %v", err)
					}
					defer c.Close()
					want := netip.AddrPortFrom(netip.MustParseAddr(public), port)
					if c.Peer() != want || len(got) != 1 || got[0] != want {
						t.Errorf("peer %v, attempts %v; want %v", c.Peer(), got, want)
					}
				})
			}
		}
	}

	mu.Lock()
	attempts = nil
	mu.Unlock()
	for _, port := range []string{"https", "HTTP", "imap", "domain", "http ", "-80", "+80", "0x50", ""} {
		for _, network := range []string{"tcp", "udp"} {
			addr := "svc.example:" + port
			_, err := dial(d, t.Context(), network, addr)
			var de *sockets.DeniedError
			if !errors.As(err, &de) || de.Rule != sockets.RuleMalformed || de.Host != addr {
				t.Errorf("dial %s %q: %v; want a refusal for %v naming %q", network, addr, err, sockets.RuleMalformed, addr)
			}
		}
	}
	// The core itself stays decimal only.
	if _, err := d.Dialer.DialContext(t.Context(), "tcp", "svc.example:http"); !errors.Is(err, sockets.ErrDenied) {
		t.Errorf("sockets.Dialer.DialContext with a service name: %v; want a refusal", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(attempts) != 0 {
		t.Errorf("connections attempted for names not in the table: %v", attempts)
	}

	// ListenPacket's address is a local one: a service name there names a
	// port other than 0 and is refused as a bind, as any such port is.
	for name := range sdkServices {
		if _, err := d.ListenPacket(t.Context(), "udp", ":"+name); !isRule(err, sockets.RuleBind) {
			t.Errorf("ListenPacket(%q): %v; want a refusal for %v", ":"+name, err, sockets.RuleBind)
		}
	}
}

func isRule(err error, r sockets.Rule) bool {
	var de *sockets.DeniedError
	return errors.As(err, &de) && de.Rule == r
}
