package socketapi_test

// The tests in this file came from package sockets when the Sockets-API
// emulation left it. They hold the emulation's Dialer to the core dial it
// wraps: the same connection, wrapped in a *Conn; the same refusals, error
// for error; the checked destination as Peer through an egress proxy. No
// test sends a packet outside loopback: "public" names resolve through a
// table resolver, and a lab.Connector, which refuses any target off
// loopback, or a CONNECT proxy on loopback stands in for the destination.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"reflect"
	"sync"
	"testing"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketapi"
)

// echoConn echoes what it reads: the handler of the lab.Server the tests
// dial (on 127.0.0.1, counting the connections it accepts).
func echoConn(_ context.Context, c net.Conn) { io.Copy(c, c) }

// coreEchoRoundTrip writes msg on c and reads it back.
func coreEchoRoundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo read %q, %v; want %q", buf, err, msg)
	}
}

// coreDialer returns a core Dialer whose resolver answers www.example.com
// with a public address and private.example with a private one, and whose
// connect step goes to l.
func coreDialer(l *lab.Server) (sockets.Dialer, *lab.Connector) {
	conn := &lab.Connector{Target: l.Addr()}
	return sockets.Dialer{
		Resolver: lab.NewResolver(map[string][]string{
			"www.example.com": {"93.184.216.34"},
			"private.example": {"10.0.0.1"},
		}),
		Connect: conn.Connect,
	}, conn
}

// TestDialWrapsTheCoreDial shows that the Dialer makes the connection its
// embedded sockets.Dialer makes, to the exact address that passed the
// policy, and hands it out as a *Conn whose Peer is that address.
func TestDialWrapsTheCoreDial(t *testing.T) {
	l := lab.NewServer(t, echoConn)
	core, conn := coreDialer(l)
	want := netip.MustParseAddrPort("93.184.216.34:443")

	plain, err := core.DialContext(t.Context(), "tcp", "www.example.com:443")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, ok := plain.(*net.TCPConn); !ok {
		t.Errorf("sockets.Dialer.DialContext returned a %T, want the connection as made", plain)
	}

	d := &socketapi.Dialer{Dialer: core}
	wc, err := d.DialContext(t.Context(), "tcp", "www.example.com:443")
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	c, ok := wc.(*socketapi.Conn)
	if !ok {
		t.Fatalf("DialContext returned a %T, want a *socketapi.Conn", wc)
	}
	if got := c.Peer(); got != want {
		t.Errorf("Peer() = %v, want %v", got, want)
	}
	if got := conn.Attempts(); !reflect.DeepEqual(got, []netip.AddrPort{want, want}) {
		t.Errorf("connect attempts = %v, want %v twice", got, want)
	}
	coreEchoRoundTrip(t, c, "hello")
	if u := c.Usage(); u != (socketapi.Usage{Sent: 5, Received: 5}) {
		t.Errorf("Usage() = %+v, want 5 bytes each way", u)
	}
}

// TestRefusesAsTheCoreDial shows that the Dialer refuses exactly what its
// embedded sockets.Dialer refuses, with the same errors, and attempts no
// connection for a refusal. (The one difference, the service names of App
// Engine's table, which the Dialer takes as their ports and the core
// refuses, is TestFidelityServiceNames's; "https" is not one of them.)
func TestRefusesAsTheCoreDial(t *testing.T) {
	l := lab.NewServer(t, echoConn)
	for _, tc := range []struct {
		name, network, addr string
		local               net.Addr
		denied              bool
	}{
		{name: "private answer", network: "tcp", addr: "private.example:443", denied: true},
		{name: "loopback literal", network: "tcp", addr: l.Addr(), denied: true},
		{name: "port 25", network: "tcp", addr: "www.example.com:25", denied: true},
		{name: "unix network", network: "unix", addr: "/tmp/socket", denied: true},
		{name: "bad port", network: "tcp", addr: "www.example.com:https", denied: true},
		{name: "bind", network: "tcp", addr: "www.example.com:443", local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, denied: true},
		{name: "unknown name", network: "tcp", addr: "nowhere.example:443"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, conn := coreDialer(l)
			core.LocalAddr = tc.local
			before := len(l.Accepted())
			c, err := core.DialContext(context.Background(), tc.network, tc.addr)
			if err == nil {
				c.Close()
				t.Fatalf("sockets.Dialer.DialContext(%s, %s) connected", tc.network, tc.addr)
			}
			d := &socketapi.Dialer{Dialer: core}
			wc, werr := d.DialContext(context.Background(), tc.network, tc.addr)
			if wc != nil {
				wc.Close()
			}
			if werr == nil || werr.Error() != err.Error() || reflect.TypeOf(werr) != reflect.TypeOf(err) {
				t.Errorf("sockets.Dialer: %T %v\nsocketapi.Dialer: %T %v", err, err, werr, werr)
			}
			if got := errors.Is(werr, sockets.ErrDenied); got != tc.denied {
				t.Errorf("errors.Is(%v, ErrDenied) = %v, want %v", werr, got, tc.denied)
			}
			if n := len(conn.Attempts()); n != 0 {
				t.Errorf("%d connect attempts, want none", n)
			}
			if n := len(l.Accepted()) - before; n != 0 {
				t.Errorf("the server accepted %d connections, want none", n)
			}
		})
	}
}

// TestListenRefusesEveryNetwork: Listen refuses every network and address
// with a *sockets.DeniedError for sockets.RuleListen that names them.
func TestListenRefusesEveryNetwork(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ network, address string }{
		{"tcp", "127.0.0.1:0"},
		{"tcp", ":8080"},
		{"udp", "0.0.0.0:0"},
		{"unix", "/tmp/x.sock"},
	} {
		ln, err := socketapi.Listen(c.network, c.address)
		if ln != nil {
			ln.Close()
			t.Errorf("Listen(%q, %q) returned a listener", c.network, c.address)
		}
		var de *sockets.DeniedError
		if !errors.As(err, &de) || !errors.Is(err, sockets.ErrDenied) || de.Rule != sockets.RuleListen {
			t.Fatalf("Listen(%q, %q) = %v; want a refusal for %s", c.network, c.address, err, sockets.RuleListen.Code())
		}
		if de.Network != c.network || de.Host != c.address {
			t.Errorf("DeniedError fields %+v", *de)
		}
	}
}

func ExampleListen() {
	_, err := socketapi.Listen("tcp", ":8080")
	fmt.Println(err)
	// Output:
	// sockets: tcp to ":8080" refused: listening not allowed
}

// coreProxy is an HTTP CONNECT proxy on 127.0.0.1 that answers every
// CONNECT with 200 and then stands in for the destination itself: it
// echoes what the tunnel carries. It records the targets it was asked for
// and counts the connections it accepted.
type coreProxy struct {
	ln net.Listener
	wg sync.WaitGroup

	mu       sync.Mutex
	targets  []string
	accepted int
}

func startCoreProxy(t *testing.T) *coreProxy {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &coreProxy{ln: ln}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.accepted++
			p.mu.Unlock()
			p.wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil || req.Method != http.MethodConnect {
					return
				}
				p.mu.Lock()
				p.targets = append(p.targets, req.RequestURI)
				p.mu.Unlock()
				io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
				io.Copy(c, br)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *coreProxy) url() *url.URL { return &url.URL{Scheme: "http", Host: p.ln.Addr().String()} }

func (p *coreProxy) seen() (targets []string, accepted int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.targets...), p.accepted
}

// TestProxyPeer: through an egress proxy a *Conn's Peer is the checked
// destination, its RemoteAddr the proxy; and an unconnected UDP socket,
// whose datagrams would leave around the proxy, is refused without a
// connection to it.
func TestProxyPeer(t *testing.T) {
	proxy := startCoreProxy(t)
	d := &socketapi.Dialer{Dialer: sockets.Dialer{
		Resolver: lab.NewResolver(map[string][]string{"www.proxy.example": {"93.184.216.34"}}),
		Proxy:    proxy.url(),
	}}

	if _, err := d.ListenPacket(t.Context(), "udp", ":0"); !errors.Is(err, sockets.ErrDenied) {
		t.Errorf("ListenPacket through a proxy: %v; want a refusal", err)
	}
	if _, accepted := proxy.seen(); accepted != 0 {
		t.Fatalf("the proxy accepted %d connections for a refused socket; want none", accepted)
	}

	wc, err := d.DialContext(t.Context(), "tcp", "www.proxy.example:443")
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	c := wc.(*socketapi.Conn)
	if got, want := c.Peer(), netip.MustParseAddrPort("93.184.216.34:443"); got != want {
		t.Errorf("Peer() = %v; want the checked destination %v", got, want)
	}
	if got := c.RemoteAddr().String(); got != proxy.ln.Addr().String() {
		t.Errorf("RemoteAddr() = %v; want the proxy, %v", got, proxy.ln.Addr())
	}
	coreEchoRoundTrip(t, c, "through the tunnel")
	if targets, _ := proxy.seen(); len(targets) != 1 || targets[0] != "93.184.216.34:443" {
		t.Errorf("the proxy was asked %q; want one CONNECT to the checked address", targets)
	}
}
