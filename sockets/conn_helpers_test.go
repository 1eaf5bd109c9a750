package sockets_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/outbound-go/outbound/sockets"
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
// sink set, discards it. Close stops it and waits for its goroutines.
type echoTCP struct {
	ln   net.Listener
	wg   sync.WaitGroup
	sink bool
	tls  *tls.Config

	mu    sync.Mutex
	conns []net.Conn
	// eof receives once per connection when the client closed it (the
	// server read EOF or an error).
	eof chan struct{}
}

func startEchoTCP(t testing.TB) *echoTCP { return startEchoTCPWith(t, false, nil) }

func startEchoTCPWith(t testing.TB, sink bool, cfg *tls.Config) *echoTCP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoTCP{ln: ln, sink: sink, tls: cfg, eof: make(chan struct{}, 100)}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

func (s *echoTCP) addr() string { return s.ln.Addr().String() }

func (s *echoTCP) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		if s.tls != nil {
			c = tls.Server(c, s.tls)
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if s.sink {
				io.Copy(io.Discard, c)
			} else {
				io.Copy(c, c)
			}
			c.Close()
			select {
			case s.eof <- struct{}{}:
			default:
			}
		}()
	}
}

func (s *echoTCP) Close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

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

// loopbackCert makes a self-signed certificate for 127.0.0.1 and
// "echo.example", and a pool that trusts it.
func loopbackCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "outbound test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"echo.example"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
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

// dialConn dials addr with d and returns the *sockets.Conn.
func dialConn(t testing.TB, d *sockets.Dialer, network, addr string) *sockets.Conn {
	t.Helper()
	nc, err := d.DialContext(t.Context(), network, addr)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	c, ok := nc.(*sockets.Conn)
	if !ok {
		t.Fatalf("DialContext returned %T, want *sockets.Conn", nc)
	}
	t.Cleanup(func() { c.Close() })
	return c
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
