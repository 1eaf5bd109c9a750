package socketapi_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketapi"
)

// The tests of connections, options, idle reclamation, hand-off, lookups,
// UDP and metering run against servers on 127.0.0.1. A Dialer reaches them
// either through a policy widened with Allow(127.0.0.1/32), or, for a
// "public" destination, through the Connect or RoutePacket seam mapping
// the checked public address onto the loopback server. No test sends a
// packet anywhere else.

// loopbackPolicy allows 127.0.0.1 and nothing else beyond the defaults.
func loopbackPolicy() *sockets.Policy {
	return sockets.DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32"))
}

// echoTCP is a TCP server on loopback that echoes what it reads, or, with
// sink set, discards it. It closes with the test.
type echoTCP struct {
	*lab.Server
	// eof receives once per connection when the client closed it (the
	// server read EOF or an error).
	eof chan struct{}
}

func startEchoTCP(t testing.TB) *echoTCP { return startEchoTCPWith(t, false, nil) }

func startEchoTCPWith(t testing.TB, sink bool, cfg *tls.Config) *echoTCP {
	t.Helper()
	s := &echoTCP{eof: make(chan struct{}, 100)}
	s.Server = lab.NewTLSServer(t, cfg, func(_ context.Context, c net.Conn) {
		if sink {
			io.Copy(io.Discard, c)
		} else {
			io.Copy(c, c)
		}
		c.Close()
		select {
		case s.eof <- struct{}{}:
		default:
		}
	})
	return s
}

func (s *echoTCP) addr() string { return s.Addr() }

// echoUDP is a UDP server on loopback that records every datagram and
// answers each with "re:" and its payload.
type echoUDP struct {
	pc   *net.UDPConn
	done chan struct{}
	got  chan string
}

func startEchoUDP(t testing.TB) *echoUDP {
	t.Helper()
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	s := &echoUDP{pc: pc, done: make(chan struct{}), got: make(chan string, 100)}
	go func() {
		defer close(s.done)
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			s.got <- string(buf[:n])
			pc.WriteToUDPAddrPort(append([]byte("re:"), buf[:n]...), from)
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-s.done
	})
	return s
}

func (s *echoUDP) addrPort() netip.AddrPort {
	return s.pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// next returns the next datagram the server received, failing the test
// after a generous bound (a datagram on loopback arrives at once).
func (s *echoUDP) next(t *testing.T) string {
	t.Helper()
	select {
	case m := <-s.got:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no datagram arrived at the loopback server")
		return ""
	}
}

// loopbackCert returns a certificate for 127.0.0.1 and "echo.example",
// issued by an authority made for the test, and a pool that trusts it.
func loopbackCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	return lab.NewCert("echo.example", "127.0.0.1")
}

// echoRoundTrip writes msg and reads the echo back.
func echoRoundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(buf) != msg {
		t.Fatalf("echo = %q, want %q", buf, msg)
	}
}

// dialConn dials addr with d and returns the *socketapi.Conn.
func dialConn(t testing.TB, d *socketapi.Dialer, network, addr string) *socketapi.Conn {
	t.Helper()
	nc, err := d.DialContext(t.Context(), network, addr)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	c, ok := nc.(*socketapi.Conn)
	if !ok {
		t.Fatalf("DialContext returned %T, want *socketapi.Conn", nc)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dial dials addr with d and returns the *socketapi.Conn, for a test that
// handles the error itself.
func dial(d *socketapi.Dialer, ctx context.Context, network, addr string) (*socketapi.Conn, error) {
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return nc.(*socketapi.Conn), nil
}

// noConnect returns a Connect seam that fails the test if it is called:
// for the tests of refusals, which must attempt no connection.
func noConnect(t *testing.T) func(context.Context, string, netip.AddrPort) (net.Conn, error) {
	return func(_ context.Context, network string, ap netip.AddrPort) (net.Conn, error) {
		t.Errorf("Connect(%s, %v) called; no connection may be attempted", network, ap)
		return nil, errors.New("no connection may be attempted (test seam)")
	}
}

// total is the sum of a Meter's totals over every host.
func total(m *socketapi.Meter) socketapi.Usage {
	var u socketapi.Usage
	for _, h := range m.Snapshot() {
		u.Sent += h.Sent
		u.Received += h.Received
	}
	return u
}

// wantStateErr checks that err is a *net.OpError for op that matches
// target and net.ErrClosed.
func wantStateErr(t *testing.T, err error, op string, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", op, err, target)
	}
	if !errors.Is(err, net.ErrClosed) {
		t.Errorf("%s: errors.Is(%v, net.ErrClosed) = false", op, err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != op {
		t.Errorf("%s: err = %#v, want a *net.OpError for %q", op, err, op)
	}
}
