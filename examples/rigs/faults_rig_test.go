package rigs_test

// The rig the fault, load and benchmark suites share: a transport of
// either backend whose names resolve through a test resolver to public
// addresses and whose connections the dialer's connect seam sends onto
// loopback servers; a certificate authority made for the run; raw loopback
// servers that misbehave on purpose; and the check that a test gives back
// the goroutines and connections it started. The doubles, servers and
// certificates come from the library's own lab, internal/lab. No packet
// leaves loopback.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/transport"
)

// lateness bounds how long after its deadline a request that only its
// deadline can end (a fault that stalls) may end. What proves that the
// deadline ended it is its error, which the suites check: the deadline's,
// where net/http's own timeouts (the 10 s TLS handshake timeout) would
// end a request its deadline missed with other errors. The bound is there
// for a request that sees its deadline only once something else has ended
// a wait, and is generous: a busy machine keeps the goroutine that ends a
// request waiting for a CPU (the load test under -race, with the load
// average at 12 on 2 CPUs, saw stalled requests end up to 2.7 s late).
const lateness = 10 * time.Second

// allBackends are the two backends every fault runs against.
var allBackends = []transport.Backend{transport.URLFetch, transport.Sockets}

// publicIP is the public address the test resolver gives the names the
// suites use; the connect seam maps it, by port, onto loopback servers.
// privateIP is a private address (RFC 1918) that must never be connected.
var (
	publicIP  = netip.MustParseAddr("93.184.216.34")
	privateIP = netip.MustParseAddr("10.0.0.1")
)

// newFaultResolver returns a resolver whose every name has its own answer
// function: a fixed address (lab.Fixed), a lookup that hangs until
// its context ends (lab.Hang), or answers that change from one
// lookup to the next (rebinding). It records every lookup; a name it does
// not know is not found.
func newFaultResolver(names map[string]lab.LookupFunc) *lab.Resolver {
	r := &lab.Resolver{}
	for name, f := range names {
		r.SetFunc(name, f)
	}
	return r
}

// rebinding alternates its answers between a public and a private address,
// lookup after lookup, as a DNS-rebinding attacker's server does.
func rebinding() lab.LookupFunc {
	return lab.Cycle([]netip.Addr{publicIP}, []netip.Addr{privateIP})
}

// outboundOpts configures newOutbound.
type outboundOpts struct {
	backend  transport.Backend
	resolver sockets.Resolver
	target   string                    // the loopback server connections go to
	routes   map[netip.AddrPort]string // per destination, overriding target
	roots    *x509.CertPool            // trusted roots; nil: none but the system's
	deadline time.Duration             // urlfetch's deadline; zero: its default
	leaks    *leakCheck                // if not nil, checks every connection made is closed
}

// outbound is a transport of one backend built by transport.New, the
// connect seam that records its every connection, and the policy its
// backend enforces.
type outbound struct {
	backend transport.Backend
	rt      *transport.Transport
	conn    *lab.Connector
	policy  *sockets.Policy
}

func newOutbound(tb testing.TB, o outboundOpts) *outbound {
	tb.Helper()
	c := &lab.Connector{Target: o.target, Routes: o.routes}
	if o.leaks != nil {
		o.leaks.watch(c)
	}
	cfg := transport.Config{
		Backend:  o.backend,
		Dialer:   sockets.Dialer{Resolver: o.resolver, Connect: c.Connect},
		URLFetch: transport.URLFetchConfig{Deadline: o.deadline},
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
	ca := lab.NewCA("Outbound fault-suite CA")
	return &testPKI{roots: ca.Pool(), cert: ca.Issue("example.com", "*.example.com")}
})

// serverTLS returns a server configuration with the test certificate,
// offering the ALPN protocols protos.
func (p *testPKI) serverTLS(protos ...string) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.cert}, NextProtos: protos}
}

// rawServer is a loopback TCP server that hands each connection to a
// handler, for servers that break the protocol on purpose.
type rawServer struct{ *lab.Server }

// startRaw starts a rawServer; tlsCfg, if not nil, makes it a TLS server.
// The handler owns its connection; the server closes it when the handler
// returns. done is closed when the server shuts down, which it does with
// the test, closing every connection.
func startRaw(tb testing.TB, tlsCfg *tls.Config, handle func(c net.Conn, done <-chan struct{})) *rawServer {
	tb.Helper()
	return &rawServer{lab.NewTLSServer(tb, tlsCfg, func(ctx context.Context, c net.Conn) {
		handle(c, ctx.Done())
	})}
}

// addr is the server's loopback "host:port".
func (s *rawServer) addr() string { return s.Addr() }

// leakWait bounds how long the goroutines and connections of a test may
// take to end once it has closed everything it opened. Ending takes
// microseconds, but on a busy machine the goroutines that end them may
// wait long for a CPU; a leak never ends, so a generous bound only delays
// the report of one.
const leakWait = 30 * time.Second

// leakCheck is what a test must give back: the goroutines that were not
// running when it began, and the connections its transports made.
type leakCheck struct {
	ignore goleak.Option

	mu    sync.Mutex
	seams []*lab.Connector
}

// checkLeaks makes the test fail if, once everything it opened is closed,
// a goroutine is left that was not there when checkLeaks was called, or a
// connection is left open that a transport made through the connect seam
// of a newOutbound given the returned leakCheck (outboundOpts.leaks). It
// counts only what the test started, never the process's goroutines or
// descriptors. Call it first: test cleanups run last-registered first, so
// the check runs after the transports' idle connections and then the
// servers are closed.
func checkLeaks(t *testing.T) *leakCheck {
	lc := &leakCheck{ignore: goleak.IgnoreCurrent()}
	t.Cleanup(func() {
		deadline := time.Now().Add(leakWait)
		for {
			err := goleak.Find(lc.ignore) // retries for a moment itself
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("goroutines left behind: %v", err)
				break
			}
		}
		for {
			open := lc.open()
			if len(open) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d connections left open, to %v", len(open), open)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	return lc
}

// watch adds the connections made through seam to the check.
func (lc *leakCheck) watch(seam *lab.Connector) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	lc.seams = append(lc.seams, seam)
}

// open returns the destinations of the connections still open.
func (lc *leakCheck) open() []netip.AddrPort {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	var open []netip.AddrPort
	for _, s := range lc.seams {
		open = append(open, s.Open()...)
	}
	return open
}
