package socketapi_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/smtp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketapi"
)

func TestDialReturnsConn(t *testing.T) {
	srv := startEchoTCP(t)
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}}
	c := dialConn(t, d, "tcp", srv.addr())
	echoRoundTrip(t, c, "hello")
	if got, want := c.Peer(), netip.MustParseAddrPort(srv.addr()); got != want {
		t.Errorf("Peer() = %v, want %v", got, want)
	}
	if c.RemoteAddr().String() != srv.addr() {
		t.Errorf("RemoteAddr() = %v, want %v", c.RemoteAddr(), srv.addr())
	}
	if c.LocalAddr() == nil {
		t.Error("LocalAddr() = nil")
	}

}

// TestDialRefusalIsNotAConn checks that a refusal returns a nil interface,
// not a typed nil *Conn.
func TestDialRefusalIsNotAConn(t *testing.T) {
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Connect: noConnect(t)}}
	nc, err := d.DialContext(t.Context(), "tcp", "10.0.0.1:80")
	if !errors.Is(err, sockets.ErrDenied) {
		t.Fatalf("err = %v, want ErrDenied", err)
	}
	if nc != nil {
		t.Fatalf("conn = %#v, want a nil net.Conn", nc)
	}
}

func TestConnClose(t *testing.T) {
	srv := startEchoTCP(t)
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}}
	c := dialConn(t, d, "tcp", srv.addr())
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	<-srv.eof // the socket itself was closed
	_, err := c.Write([]byte("x"))
	if !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v, want net.ErrClosed", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close: %v, want net.ErrClosed", err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want net.ErrClosed", err)
	}
	if err := c.KeepAlive(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("KeepAlive after Close: %v, want net.ErrClosed", err)
	}
	if errors.Is(err, socketapi.ErrReclaimed) || errors.Is(err, socketapi.ErrHandedOff) {
		t.Errorf("a plain Close reads as reclaimed or handed off: %v", err)
	}
}

// TestCloseUnblocksRead checks that Close ends a Read in progress.
func TestCloseUnblocksRead(t *testing.T) {
	srv := startEchoTCP(t)
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}}
	c := dialConn(t, d, "tcp", srv.addr())
	errc := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		_, err := c.Read(make([]byte, 1))
		errc <- err
	}()
	<-started
	c.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read ended with %v, want net.ErrClosed", err)
	}
}

func TestZeroConn(t *testing.T) {
	var nilConn *socketapi.Conn
	for name, c := range map[string]*socketapi.Conn{"zero": new(socketapi.Conn), "nil": nilConn} {
		t.Run(name, func(t *testing.T) {
			if _, err := c.Read(nil); err == nil {
				t.Error("Read: no error")
			}
			if _, err := c.Write(nil); err == nil {
				t.Error("Write: no error")
			}
			if err := c.Close(); err == nil {
				t.Error("Close: no error")
			}
			if err := c.KeepAlive(); err == nil {
				t.Error("KeepAlive: no error")
			}
			if err := c.SetDeadline(time.Time{}); err == nil {
				t.Error("SetDeadline: no error")
			}
			if _, err := c.Detach(); err == nil {
				t.Error("Detach: no error")
			}
			if err := c.StartTLS(t.Context(), nil); err == nil {
				t.Error("StartTLS: no error")
			}
			if _, err := c.GetsockoptInt(0, 0); err == nil {
				t.Error("GetsockoptInt: no error")
			}
			if c.LocalAddr() != nil || c.RemoteAddr() != nil || c.Peer().IsValid() || c.Usage() != (socketapi.Usage{}) {
				t.Error("addresses or usage of a zero Conn are not zero")
			}
			if _, ok := c.ConnectionState(); ok {
				t.Error("ConnectionState reports TLS")
			}
		})
	}
}

// TestConnWithNetSMTP runs net/smtp over a Conn against an in-process SMTP
// server reached as a public submission port through the Connect seam.
func TestConnWithNetSMTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var transcript []string
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		io.WriteString(c, "220 mail.example ESMTP\r\n")
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			transcript = append(transcript, line)
			switch {
			case strings.HasPrefix(line, "EHLO"):
				io.WriteString(c, "250-mail.example\r\n250 8BITMIME\r\n")
			case line == "QUIT":
				io.WriteString(c, "221 bye\r\n")
				return
			default:
				io.WriteString(c, "250 ok\r\n")
			}
		}
	}()
	defer func() { ln.Close(); wg.Wait() }()

	seam := &lab.Connector{Target: ln.Addr().String()}
	d := &socketapi.Dialer{
		Dialer: sockets.Dialer{
			Resolver: lab.NewResolver(map[string][]string{"mail.example.com": {"93.184.216.34"}}),
			Connect:  seam.Connect,
		},
	}
	conn, err := d.DialContext(t.Context(), "tcp", "mail.example.com:587")
	if err != nil {
		t.Fatal(err)
	}
	client, err := smtp.NewClient(conn, "mail.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Hello("client.example"); err != nil {
		t.Fatal(err)
	}
	if err := client.Quit(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if len(transcript) != 2 || transcript[0] != "EHLO client.example" || transcript[1] != "QUIT" {
		t.Errorf("server saw %q", transcript)
	}
	if got := seam.Attempts(); len(got) != 1 || got[0] != netip.MustParseAddrPort("93.184.216.34:587") {
		t.Errorf("connect attempts = %v", got)
	}
	if u := conn.(*socketapi.Conn).Usage(); u.Sent == 0 || u.Received == 0 {
		t.Errorf("usage = %+v, want both directions counted", u)
	}
}

// TestConnWithCryptoTLSAndHTTP runs crypto/tls and an HTTP exchange over a
// Conn, as net/http's Transport would.
func TestConnWithCryptoTLSAndHTTP(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "over sockets")
	}))
	defer srv.Close()
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}}
	c := dialConn(t, d, "tcp", srv.Listener.Addr().String())
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err := tc.HandshakeContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", srv.URL, nil)
	if err := req.Write(tc); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "over sockets" {
		t.Errorf("body = %q", body)
	}
	tc.Close()
}

// TestConnStartTLS upgrades a Conn in place, with the server name taken
// from the dialed host, and checks that the meter counts the wire bytes.
func TestConnStartTLS(t *testing.T) {
	cert, pool := loopbackCert(t)
	srv := startEchoTCPWith(t, false, &tls.Config{Certificates: []tls.Certificate{cert}})
	seam := &lab.Connector{Target: srv.addr()}
	d := &socketapi.Dialer{
		Dialer: sockets.Dialer{
			Resolver: lab.NewResolver(map[string][]string{"echo.example": {"93.184.216.34"}}),
			Connect:  seam.Connect,
		},
	}
	c := dialConn(t, d, "tcp", "echo.example:993")
	if err := c.StartTLS(t.Context(), &tls.Config{RootCAs: pool}); err != nil {
		t.Fatal(err)
	}
	cs, ok := c.ConnectionState()
	if !ok || !cs.HandshakeComplete || cs.ServerName != "echo.example" {
		t.Fatalf("ConnectionState = %v, %+v", ok, cs)
	}
	echoRoundTrip(t, c, "secret")
	if u := c.Usage(); u.Sent <= int64(len("secret")) || u.Received <= int64(len("secret")) {
		t.Errorf("usage = %+v, want the TLS records and handshake counted", u)
	}
	if err := c.StartTLS(t.Context(), &tls.Config{RootCAs: pool}); err == nil {
		t.Error("second StartTLS: no error")
	}

	// A wrong server name fails the handshake with a certificate error.
	c2 := dialConn(t, d, "tcp", "echo.example:993")
	err := c2.StartTLS(t.Context(), &tls.Config{RootCAs: pool, ServerName: "other.example"})
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		t.Errorf("StartTLS with a wrong name: %v, want a certificate error", err)
	}
}

func TestStartTLSOnUDP(t *testing.T) {
	srv := startEchoUDP(t)
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}}
	c := dialConn(t, d, "udp", srv.addrPort().String())
	if err := c.StartTLS(t.Context(), nil); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("StartTLS on UDP: %v, want errors.ErrUnsupported", err)
	}
}

// TestConnectedUDP exchanges datagrams over a connected UDP Conn made
// through the Connect seam for a public DNS server; CloseWrite is TCP's
// only.
func TestConnectedUDP(t *testing.T) {
	srv := startEchoUDP(t)
	seam := &lab.Connector{Target: srv.addrPort().String()}
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Connect: seam.Connect}}
	nc, err := d.DialContext(t.Context(), "udp", "8.8.8.8:53")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write([]byte("q1")); err != nil {
		t.Fatal(err)
	}
	if got := srv.next(t); got != "q1" {
		t.Fatalf("server got %q", got)
	}
	buf := make([]byte, 64)
	n, err := nc.Read(buf)
	if err != nil || string(buf[:n]) != "re:q1" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if got, want := nc.(*socketapi.Conn).Peer(), netip.MustParseAddrPort("8.8.8.8:53"); got != want {
		t.Errorf("Peer() = %v, want %v", got, want)
	}
	if nc.RemoteAddr().String() != srv.addrPort().String() {
		t.Errorf("RemoteAddr() = %v, want the seam's %v", nc.RemoteAddr(), srv.addrPort())
	}
	if err := nc.(*socketapi.Conn).CloseWrite(); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("CloseWrite on UDP: %v", err)
	}
}

func TestCloseWriteTCP(t *testing.T) {
	srv := startEchoTCP(t)
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}}
	c := dialConn(t, d, "tcp", srv.addr())
	io.WriteString(c, "last words")
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "last words" {
		t.Errorf("after CloseWrite read %q, %v", got, err)
	}
}

// recordTCP is a TCP server on loopback that accepts one connection, sends
// nothing, and records all it reads until EOF.
func recordTCP(t *testing.T) (addr string, got <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			ch <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		b, err := io.ReadAll(c)
		if err != nil {
			ch <- "read: " + err.Error()
			return
		}
		ch <- string(b)
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String(), ch
}

// TestCloseReadTCP: shutdown(SHUT_RD), which App Engine's Sockets API
// offered (google/appengine/api/remote_socket/_remote_socket_stub.py, SDK
// 1.9.91, _HOW_MAP at line 126, _Dynamic_ShutDown), on a real loopback TCP
// connection: a Read then returns io.EOF at once, and the peer still
// receives what is written afterwards.
func TestCloseReadTCP(t *testing.T) {
	addr, got := recordTCP(t)
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}}
	c := dialConn(t, d, "tcp", addr)
	if _, err := io.WriteString(c, "before "); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseRead(); err != nil {
		t.Fatal(err)
	}
	// The server sends nothing: without the shutdown this Read would wait
	// for the deadline.
	c.SetReadDeadline(time.Now().Add(time.Minute))
	for range 2 {
		if n, err := c.Read(make([]byte, 8)); n != 0 || err != io.EOF {
			t.Fatalf("Read after CloseRead = %d, %v; want 0, io.EOF", n, err)
		}
	}
	if _, err := io.WriteString(c, "after"); err != nil {
		t.Fatalf("Write after CloseRead: %v", err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "before after" {
		t.Errorf("server read %q, want %q", s, "before after")
	}
	if u := c.Usage(); u != (socketapi.Usage{Sent: int64(len("before after"))}) {
		t.Errorf("usage = %+v", u)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	wantStateErr(t, c.CloseRead(), "close", net.ErrClosed)
}

// TestCloseReadStartTLS shuts down the reading side of a connection under
// TLS: Read returns io.EOF, and writes still reach the server.
func TestCloseReadStartTLS(t *testing.T) {
	cert, pool := loopbackCert(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- string(b)
	}()
	seam := &lab.Connector{Target: ln.Addr().String()}
	d := &socketapi.Dialer{
		Dialer: sockets.Dialer{
			Resolver: lab.NewResolver(map[string][]string{"echo.example": {"93.184.216.34"}}),
			Connect:  seam.Connect,
		},
	}
	c := dialConn(t, d, "tcp", "echo.example:993")
	if err := c.StartTLS(t.Context(), &tls.Config{RootCAs: pool}); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseRead(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(time.Minute))
	if n, err := c.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("Read after CloseRead = %d, %v; want 0, io.EOF", n, err)
	}
	if _, err := io.WriteString(c, "still written"); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "still written" {
		t.Errorf("server read %q", s)
	}
}

// TestCloseReadStates: CloseRead fails for UDP, a zero Conn, and a
// connection closed, handed off or reclaimed, with the error that says
// which; it restarts the idle clock like any operation.
func TestCloseReadStates(t *testing.T) {
	udp := startEchoUDP(t)
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: new(socketapi.Registry)}
	u := dialConn(t, d, "udp", udp.addrPort().String())
	if err := u.CloseRead(); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("CloseRead on UDP: %v, want errors.ErrUnsupported", err)
	}
	var nilConn *socketapi.Conn
	for _, c := range []*socketapi.Conn{nilConn, new(socketapi.Conn)} {
		if err := c.CloseRead(); err == nil {
			t.Error("CloseRead on a zero Conn: no error")
		}
	}
	srv := startEchoTCP(t)
	h := dialConn(t, d, "tcp", srv.addr())
	if _, err := h.Detach(); err != nil {
		t.Fatal(err)
	}
	wantStateErr(t, h.CloseRead(), "close", socketapi.ErrHandedOff)

	synctest.Test(t, func(t *testing.T) {
		seam := &pipeSeam{halfClose: true}
		defer seam.closeAll()
		d := &socketapi.Dialer{Dialer: sockets.Dialer{Connect: seam.connect}, IdleTimeout: time.Minute}
		c, err := dial(d, t.Context(), "tcp", publicDest)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute - time.Nanosecond)
		if err := c.CloseRead(); err != nil {
			t.Fatalf("CloseRead: %v", err)
		}
		time.Sleep(time.Minute - time.Nanosecond)
		synctest.Wait()
		if err := c.KeepAlive(); err != nil {
			t.Fatalf("a minute after CloseRead, less 1ns: %v (CloseRead did not restart the clock)", err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		wantStateErr(t, c.CloseRead(), "close", socketapi.ErrReclaimed)
	})
}
