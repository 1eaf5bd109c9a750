package outbound_test

// The rig the fault, load and benchmark suites share: a transport of
// either backend whose names resolve through a test resolver to public
// addresses and whose connections the dialer's connect seam sends onto
// loopback servers; a certificate authority made for the run; raw loopback
// servers that misbehave on purpose; and the counts of goroutines and file
// descriptors a test must give back. No packet leaves loopback.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketstest"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/transport"
)

// allBackends are the two backends every fault runs against.
var allBackends = []transport.Backend{transport.URLFetch, transport.Sockets}

// publicIP is the public address the test resolver gives the names the
// suites use; the connect seam maps it, by port, onto loopback servers.
// privateIP is a private address (RFC 1918) that must never be connected.
var (
	publicIP  = netip.MustParseAddr("93.184.216.34")
	privateIP = netip.MustParseAddr("10.0.0.1")
)

// lookupFunc answers one lookup of one name.
type lookupFunc func(ctx context.Context) ([]netip.Addr, error)

// faultResolver is a sockets.Resolver whose every name has its own answer
// function: a fixed address, a lookup that hangs until its context ends, or
// answers that change from one lookup to the next. It counts lookups. A
// name it does not know is not found. It is safe for concurrent use.
type faultResolver struct {
	names   map[string]lookupFunc
	lookups atomic.Int64
}

func (r *faultResolver) LookupNetIP(ctx context.Context, _, host string) ([]netip.Addr, error) {
	r.lookups.Add(1)
	if f, ok := r.names[host]; ok {
		return f(ctx)
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// fixed answers with addrs.
func fixed(addrs ...netip.Addr) lookupFunc {
	return func(context.Context) ([]netip.Addr, error) { return addrs, nil }
}

// hangs never answers: it waits for its context to end, as a resolver
// whose server does not reply.
func hangs(ctx context.Context) ([]netip.Addr, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// rebinding alternates its answers between a public and a private address,
// lookup after lookup, as a DNS-rebinding attacker's server does.
func rebinding() lookupFunc {
	var n atomic.Int64
	return func(context.Context) ([]netip.Addr, error) {
		if n.Add(1)%2 == 0 {
			return []netip.Addr{privateIP}, nil
		}
		return []netip.Addr{publicIP}, nil
	}
}

// outboundOpts configures newOutbound.
type outboundOpts struct {
	backend  transport.Backend
	resolver sockets.Resolver
	target   string                    // the loopback server connections go to
	routes   map[netip.AddrPort]string // per destination, overriding target
	roots    *x509.CertPool            // trusted roots; nil: none but the system's
	deadline time.Duration             // urlfetch's deadline; zero: its default
}

// outbound is a transport of one backend built by transport.New, the
// connect seam that records its every connection, and the policy its
// backend enforces.
type outbound struct {
	backend transport.Backend
	rt      *transport.Transport
	conn    *socketstest.Connector
	policy  *sockets.Policy
}

func newOutbound(tb testing.TB, o outboundOpts) *outbound {
	tb.Helper()
	c := &socketstest.Connector{Target: o.target, Routes: o.routes}
	cfg := transport.Config{
		Backend:  o.backend,
		Resolver: o.resolver,
		Dialer:   &sockets.Dialer{Connect: c.Connect},
		Deadline: o.deadline,
		TLS:      tlsconf.Config{RootCAs: o.roots},
	}
	rt, err := transport.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ob := &outbound{backend: o.backend, rt: rt, conn: c, policy: sockets.DefaultPolicy()}
	if o.backend == transport.URLFetch {
		ob.policy = sockets.PublicPolicy() // URL Fetch's destination rule
	}
	tb.Cleanup(ob.rt.CloseIdleConnections)
	return ob
}

// checkAttempts fails the test if the connect seam was ever asked to
// connect to an address the backend's policy refuses, or to privateIP.
func (ob *outbound) checkAttempts(tb testing.TB) {
	tb.Helper()
	for _, ap := range ob.conn.Attempts() {
		if ap.Addr() == privateIP {
			tb.Errorf("%s connected to the private address %v", ob.backend, ap)
		}
		if err := ob.policy.Check("tcp", "", ap); err != nil {
			tb.Errorf("%s connected to %v, which its policy refuses: %v", ob.backend, ap, err)
		}
	}
}

// testPKI is a certificate authority made for the test run, and a server
// certificate it issued for example.com and *.example.com.
type testPKI struct {
	roots *x509.CertPool
	cert  tls.Certificate
}

var pki = sync.OnceValue(func() *testPKI {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Outbound fault-suite CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(err)
	ca, err := x509.ParseCertificate(caDER)
	must(err)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "example.com"},
		DNSNames:     []string{"example.com", "*.example.com"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	must(err)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return &testPKI{roots: roots, cert: tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}
})

// serverTLS returns a server configuration with the test certificate,
// offering the ALPN protocols protos.
func (p *testPKI) serverTLS(protos ...string) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.cert}, NextProtos: protos}
}

// rawServer is a loopback TCP server that hands each connection to a
// handler, for servers that break the protocol on purpose. Close closes the
// listener and every connection, which ends every handler blocked on
// them, and waits for the handlers to return.
type rawServer struct {
	ln   net.Listener
	done chan struct{} // closed by Close
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// startRaw starts a rawServer; tlsCfg, if not nil, makes it a TLS server.
// The handler owns its connection; the server closes it when the handler
// returns. done is closed when the server shuts down.
func startRaw(tb testing.TB, tlsCfg *tls.Config, handle func(c net.Conn, done <-chan struct{})) *rawServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	s := &rawServer{ln: ln, done: make(chan struct{}), conns: make(map[net.Conn]struct{})}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			select {
			case <-s.done:
				s.mu.Unlock()
				c.Close()
				return
			default:
			}
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Go(func() {
				defer func() {
					c.Close()
					s.mu.Lock()
					delete(s.conns, c)
					s.mu.Unlock()
				}()
				handle(c, s.done)
			})
		}
	})
	tb.Cleanup(s.Close)
	return s
}

// addr is the server's loopback "host:port".
func (s *rawServer) addr() string { return s.ln.Addr().String() }

// Close stops the server and waits for its handlers. It may be called
// more than once.
func (s *rawServer) Close() {
	s.mu.Lock()
	select {
	case <-s.done:
		s.mu.Unlock()
		s.wg.Wait()
		return
	default:
	}
	close(s.done)
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// openFDs counts this process's open file descriptors (Linux: the entries
// of /proc/self/fd). It returns -1 where that directory does not exist.
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents) - 1 // the directory being read is one of them
}

// checkFDs fails the test unless the open descriptors come back to at most
// before within a few seconds: sockets closed by the peer or the kernel
// may take a moment to be released after every server has closed.
func checkFDs(tb testing.TB, before int) {
	tb.Helper()
	if before < 0 {
		return // no /proc: nothing to compare
	}
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		n := openFDs()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			tb.Errorf("%d file descriptors open, %d before: %d left behind", n, before, n-before)
			return
		}
		<-tick.C
	}
}
