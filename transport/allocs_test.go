package transport_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/transport"
)

// The allocation budgets of the HTTP path (issue 19): how many allocations
// a request through a backend may cost above net/http doing the same work
// in the same process. An allocation count does not depend on the
// machine's load, so a test holds them exactly, where a throughput target
// needs a quiet machine and a benchmark (examples/rigs, BENCHMARKS.md).
const (
	// budgetSocketsKeepAlive: a request on a kept-alive connection is
	// net/http's alone.
	budgetSocketsKeepAlive = 0
	// budgetSocketsNewConn: the sockets backend's dial (the lookup, every
	// address checked, Happy Eyeballs, the connect-time check, metrics
	// off) over net/http's net.Dialer dial.
	budgetSocketsNewConn = 3
	// budgetURLFetchKeepAlive: urlfetch's emulation per request (the
	// rules, the deadline, byte accounting, the body).
	budgetURLFetchKeepAlive = 8
	// budgetURLFetchNewConn: the same, and the dial, on a new connection.
	budgetURLFetchNewConn = 14
)

// allocBody is what the allocation test's server sends.
var allocBody = make([]byte, 1<<10)

// allocServer is a loopback HTTP/1.1 server that serves allocBody, and
// reports when it is done with a request (its connection idle) and with a
// connection (closed), so that a measure waits until the server, which
// allocates in this process too, has done all its work for a request
// before the next begins: what the server does is then the same for every
// client, and none of it falls outside the measure.
type allocServer struct {
	*httptest.Server
	states chan http.ConnState // StateIdle and StateClosed, in order
}

func newAllocServer(t *testing.T) *allocServer {
	s := &allocServer{states: make(chan http.ConnState, 1<<12)}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(allocBody)))
		w.Write(allocBody)
	}))
	srv.Config.ConnState = func(_ net.Conn, cs http.ConnState) {
		if cs == http.StateIdle || cs == http.StateClosed {
			s.states <- cs
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	s.Server = srv
	return s
}

// wait returns once the server has reported state.
func (s *allocServer) wait(state http.ConnState) {
	for cs := range s.states {
		if cs == state {
			return
		}
	}
}

// plainClient is net/http's http.Transport configured as the sockets
// backend's is (transport/sockets.go), dialing target with a net.Dialer of
// http.DefaultTransport's 30-second timeout, whatever the address. With
// safe it is "plain-safe": it has the sockets backend's bound on response
// headers and its HTTP/2 pings; without, "plain", it has neither. With
// hook, its net.Dialer has a ControlContext that allows everything: net
// allocates for a connect-time check whatever the check does (the
// RawConn and the address text it hands the hook), and a client that
// checks there pays that first.
func plainClient(target string, safe, hook bool) *http.Transport {
	d := &net.Dialer{Timeout: 30 * time.Second}
	if hook {
		d.ControlContext = func(context.Context, string, string, syscall.RawConn) error { return nil }
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	t := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, target)
		},
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		Protocols:             &protos,
	}
	if safe {
		t.MaxResponseHeaderBytes = 1 << 20
		t.HTTP2 = &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second}
	}
	return t
}

// allocResolver answers every name with one address, in a new slice, as
// a resolver does, and records nothing.
type allocResolver struct{ addr netip.Addr }

func (r allocResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return []netip.Addr{r.addr}, nil
}

// libClient is a backend of package transport. With a nil seam, its
// policy allows the loopback server and nothing else private, every name
// resolves to 127.0.0.1, and the Dialer makes the connection itself, with
// its connect-time check: every check runs. With a seam, as in the
// benchmarks of examples/rigs, names resolve to a public address, which
// the default policy checks, and the seam connects to the server.
func libClient(t *testing.T, backend transport.Backend, seam func(context.Context, string, netip.AddrPort) (net.Conn, error)) *transport.Transport {
	d := sockets.Dialer{
		Policy:   sockets.DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32")),
		Resolver: allocResolver{netip.MustParseAddr("127.0.0.1")},
	}
	if seam != nil {
		d = sockets.Dialer{Resolver: allocResolver{netip.MustParseAddr("93.184.216.34")}, Connect: seam}
	}
	rt, err := transport.New(transport.Config{Backend: backend, Dialer: d})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// allocsPerRequest returns the allocations of one GET of rawURL through
// rt, its body read to the end and closed, with the server's share; with
// newConn, the idle connection is then closed, so that every request
// dials.
func allocsPerRequest(t *testing.T, srv *allocServer, rt http.RoundTripper, closeIdle func(), rawURL string, newConn bool) float64 {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf [2 << 10]byte
	get := func() {
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			m, err := resp.Body.Read(buf[:])
			n += m
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		resp.Body.Close()
		if n != len(allocBody) {
			t.Fatalf("read %d bytes, want %d", n, len(allocBody))
		}
		if newConn {
			closeIdle()
			srv.wait(http.StateClosed)
		} else {
			srv.wait(http.StateIdle)
		}
	}
	for range 5 {
		get() // warm-up: pools, sync.Once, caches
	}
	return testing.AllocsPerRun(200, get)
}

// TestAllocBudgets holds the allocations per request of the sockets
// backend against plain-safe, and of the urlfetch backend against plain,
// in one process, on a kept-alive connection and on a new connection per
// request, to the budgets above.
//
// A new connection is measured in two set-ups. With the Connect seam of
// the benchmarks (a net.Dialer dial), the backends run every check but
// the connect-time one, which is the seam's to make. With the Dialer's
// own connect, they run every check, the connect-time one in
// net.Dialer's ControlContext; net allocates for any such hook (see
// plainClient), so the clients they are measured against have one too,
// an empty one, as code.dny.dev/ssrf's clients do.
//
// Under the race detector allocation counts differ (it instruments
// channels, maps and the scheduler): the test then only logs them.
func TestAllocBudgets(t *testing.T) {
	srv := newAllocServer(t)
	target := srv.Listener.Addr().String()
	port := strconv.Itoa(int(netip.MustParseAddrPort(target).Port()))
	seam := func(ctx context.Context, network string, _ netip.AddrPort) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, target)
	}
	type client struct {
		name      string
		rt        http.RoundTripper
		closeIdle func()
	}
	plain := func(name string, safe, hook bool) client {
		p := plainClient(target, safe, hook)
		return client{name, p, p.CloseIdleConnections}
	}
	lib := func(name string, b transport.Backend, seam func(context.Context, string, netip.AddrPort) (net.Conn, error)) client {
		rt := libClient(t, b, seam)
		return client{name, rt, rt.CloseIdleConnections}
	}
	for _, tc := range []struct {
		name    string
		host    string
		newConn bool
		clients []client // plain-safe, sockets, plain, urlfetch
	}{
		{"keepalive", "example.com", false, []client{
			plain("plain-safe", true, false), lib("sockets", transport.Sockets, seam),
			plain("plain", false, false), lib("urlfetch", transport.URLFetch, seam)}},
		{"newconn/seam", "example.com", true, []client{
			plain("plain-safe", true, false), lib("sockets", transport.Sockets, seam),
			plain("plain", false, false), lib("urlfetch", transport.URLFetch, seam)}},
		{"newconn/checked/name", "example.com", true, []client{
			plain("plain-safe+hook", true, true), lib("sockets", transport.Sockets, nil),
			plain("plain+hook", false, true), lib("urlfetch", transport.URLFetch, nil)}},
		{"newconn/checked/literal", "127.0.0.1", true, []client{
			plain("plain-safe+hook", true, true), lib("sockets", transport.Sockets, nil),
			plain("plain+hook", false, true), lib("urlfetch", transport.URLFetch, nil)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rawURL := "http://" + net.JoinHostPort(tc.host, port) + "/"
			allocs := make([]float64, len(tc.clients))
			for i, c := range tc.clients {
				allocs[i] = allocsPerRequest(t, srv, c.rt, c.closeIdle, rawURL, tc.newConn)
				c.closeIdle()
			}
			t.Logf("allocations per request: %s %v, %s %v (%+v); %s %v, %s %v (%+v)",
				tc.clients[0].name, allocs[0], tc.clients[1].name, allocs[1], allocs[1]-allocs[0],
				tc.clients[2].name, allocs[2], tc.clients[3].name, allocs[3], allocs[3]-allocs[2])
			if raceEnabled {
				t.Log("race detector on: allocation counts differ, budgets not checked")
				return
			}
			budgetS, budgetU := budgetSocketsKeepAlive, budgetURLFetchKeepAlive
			if tc.newConn {
				budgetS, budgetU = budgetSocketsNewConn, budgetURLFetchNewConn
			}
			if d := allocs[1] - allocs[0]; d > float64(budgetS) {
				t.Errorf("sockets allocates %v over %s per request, budget %d", d, tc.clients[0].name, budgetS)
			}
			if d := allocs[3] - allocs[2]; d > float64(budgetU) {
				t.Errorf("urlfetch allocates %v over %s per request, budget %d", d, tc.clients[2].name, budgetU)
			}
		})
	}
}

// raceEnabled is set when the race detector is on (allocs_race_test.go).
var raceEnabled bool
