package socketapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketapi"
)

func TestMeter(t *testing.T) {
	srv := startEchoTCP(t)
	seam := &lab.Connector{Target: srv.addr()}
	type closed struct {
		host string
		u    socketapi.Usage
	}
	var mu sync.Mutex
	var closes []closed
	meter := &socketapi.Meter{OnClose: func(host string, u socketapi.Usage) {
		mu.Lock()
		closes = append(closes, closed{host, u})
		mu.Unlock()
	}}
	d := &socketapi.Dialer{
		Dialer: sockets.Dialer{
			Resolver: lab.NewResolver(map[string][]string{
				"echo.example":  {"93.184.216.34"},
				"ECHO.example.": {"93.184.216.34"},
				"other.example": {"93.184.216.35"},
			}),
			Connect: seam.Connect,
		},
		Meter: meter,
	}
	a := dialConn(t, d, "tcp", "echo.example:443")
	b := dialConn(t, d, "tcp", "ECHO.example.:443") // the same host, written otherwise
	o := dialConn(t, d, "tcp", "other.example:443")
	lit := dialConn(t, d, "tcp", "93.184.216.36:443")
	echoRoundTrip(t, a, "12345")
	echoRoundTrip(t, b, "123")
	echoRoundTrip(t, o, "1")
	echoRoundTrip(t, lit, "1234567")

	if u := a.Usage(); u != (socketapi.Usage{Sent: 5, Received: 5}) {
		t.Errorf("a.Usage() = %+v", u)
	}
	want := map[string]socketapi.Usage{
		"echo.example":  {Sent: 8, Received: 8},
		"other.example": {Sent: 1, Received: 1},
		"93.184.216.36": {Sent: 7, Received: 7},
	}
	snap := meter.Snapshot()
	if len(snap) != len(want) {
		t.Errorf("Snapshot() = %v, want %v", snap, want)
	}
	for h, u := range want {
		if snap[h] != u || meter.Host(h) != u {
			t.Errorf("host %s: snapshot %+v, Host %+v; want %+v", h, snap[h], meter.Host(h), u)
		}
	}
	if meter.Host("ECHO.EXAMPLE.") != want["echo.example"] {
		t.Error("Host does not fold case and the trailing dot")
	}
	if tot := total(meter); tot != (socketapi.Usage{Sent: 16, Received: 16}) {
		t.Errorf("total = %+v", tot)
	}

	// Exported as JSON, as expvar.Func(func() any { return
	// meter.Snapshot() }) serves it: hosts in order, lower-case fields.
	js, err := json.Marshal(meter.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var decoded map[string]socketapi.Usage
	if err := json.Unmarshal(js, &decoded); err != nil {
		t.Fatalf("Snapshot() as JSON = %s: %v", js, err)
	}
	if len(decoded) != len(want) || decoded["echo.example"] != want["echo.example"] {
		t.Errorf("Snapshot() as JSON decodes to %v", decoded)
	}
	if !strings.HasPrefix(string(js), `{"93.184.216.36":{"sent":7,"received":7},"echo.example"`) {
		t.Errorf("Snapshot() as JSON = %s, want hosts in order", js)
	}

	// OnClose reports each connection once, with its own totals.
	a.Close()
	a.Close()
	mu.Lock()
	got := append([]closed(nil), closes...)
	mu.Unlock()
	if len(got) != 1 || got[0] != (closed{"echo.example", socketapi.Usage{Sent: 5, Received: 5}}) {
		t.Errorf("OnClose calls = %+v", got)
	}
	// Totals stay after the connection is gone.
	if meter.Host("echo.example") != want["echo.example"] {
		t.Error("closing a connection changed the host totals")
	}
}

// TestMeterConcurrent writes from many connections at once; the totals add
// up exactly (and the race detector sees no lock-free mistake).
func TestMeterConcurrent(t *testing.T) {
	srv := startEchoTCPWith(t, true, nil)
	meter := &socketapi.Meter{}
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Meter: meter}
	const conns, writes, size = 8, 200, 1000
	var wg sync.WaitGroup
	for range conns {
		c := dialConn(t, d, "tcp", srv.addr())
		wg.Go(func() {
			buf := make([]byte, size)
			for range writes {
				if _, err := c.Write(buf); err != nil {
					t.Error(err)
					return
				}
			}
			if u := c.Usage(); u.Sent != writes*size {
				t.Errorf("conn usage = %+v", u)
			}
			c.Close()
		})
	}
	// Readers of the totals run alongside the writers.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				_ = meter.Snapshot()
				_ = meter.Host("127.0.0.1")
			}
		}
	})
	wg.Wait()
	close(stop)
	readers.Wait()
	if got := meter.Host("127.0.0.1"); got.Sent != conns*writes*size {
		t.Errorf("host total = %+v, want %d sent", got, conns*writes*size)
	}
}

func TestZeroMeter(t *testing.T) {
	var m socketapi.Meter
	if snap := m.Snapshot(); snap == nil || len(snap) != 0 || m.Host("x") != (socketapi.Usage{}) {
		t.Errorf("zero Meter is not empty: %v", snap)
	}
}

// TestNoGlobalHandler: importing the package registers nothing on
// http.DefaultServeMux (expvar's import would add GET /debug/vars and
// publish the command line).
func TestNoGlobalHandler(t *testing.T) {
	for _, path := range []string{"/debug/vars", "/"} {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if _, pattern := http.DefaultServeMux.Handler(req); pattern != "" {
			t.Errorf("http.DefaultServeMux serves %s with pattern %q", path, pattern)
		}
	}
}

// anyName resolves every name to one public address, for tests that dial
// many distinct names.
type anyName struct{ addr netip.Addr }

func (r anyName) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return []netip.Addr{r.addr}, nil
}

// idleConn is a connection that carries nothing: what a Connect seam hands
// back when a test needs only the Conn around it, and many of them.
// Only Close and the addresses are called; the embedded nil net.Conn
// leaves the other methods unimplemented.
type idleConn struct{ net.Conn }

func (idleConn) Close() error         { return nil }
func (idleConn) LocalAddr() net.Addr  { return &net.TCPAddr{} }
func (idleConn) RemoteAddr() net.Addr { return &net.TCPAddr{} }

// idleConnect is a Connect seam that connects nowhere: nothing is sent.
func idleConnect(context.Context, string, netip.AddrPort) (net.Conn, error) {
	return idleConn{}, nil
}

// TestMeterBoundedHosts dials 100,000 distinct host names, each once: the
// Meter keeps the default cap of hosts and one overflow entry, and loses no
// connection (the count of entries is the memory bound; no heap is
// measured).
func TestMeterBoundedHosts(t *testing.T) {
	const n = 100000
	var closes int
	meter := &socketapi.Meter{OnClose: func(string, socketapi.Usage) { closes++ }}
	d := &socketapi.Dialer{
		Dialer: sockets.Dialer{
			Resolver: anyName{netip.MustParseAddr("93.184.216.34")},
			Connect:  idleConnect,
		},
		Meter: meter,
	}
	for i := range n {
		c, err := dial(d, t.Context(), "tcp", fmt.Sprintf("host-%d.example:443", i))
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	snap := meter.Snapshot()
	if len(snap) != socketapi.DefaultMaxHosts+1 {
		t.Errorf("%d distinct hosts kept %d entries, want %d and the overflow entry", n, len(snap), socketapi.DefaultMaxHosts)
	}
	if _, ok := snap[socketapi.OverflowHost]; !ok {
		t.Errorf("no %q entry", socketapi.OverflowHost)
	}
	for _, h := range []string{"host-0.example", "host-1023.example"} {
		if _, ok := snap[h]; !ok {
			t.Errorf("%s, among the first %d hosts, has no entry of its own", h, socketapi.DefaultMaxHosts)
		}
	}
	if _, ok := snap["host-1024.example"]; ok {
		t.Error("the host past the cap has an entry of its own")
	}
	if closes != n {
		t.Errorf("OnClose called %d times, want %d", closes, n)
	}
	if js, err := json.Marshal(snap); err != nil || strings.Count(string(js), `"sent"`) != socketapi.DefaultMaxHosts+1 {
		t.Errorf("Snapshot() as JSON does not list the bounded entries: %v", err)
	}
}

// TestMeterCap sets a small cap: the hosts past it are totalled together
// under OverflowHost, their bytes all counted, and OnClose still names each
// host as dialed.
func TestMeterCap(t *testing.T) {
	srv := startEchoTCP(t)
	seam := &lab.Connector{Target: srv.addr()}
	var mu sync.Mutex
	closed := map[string]socketapi.Usage{}
	meter := &socketapi.Meter{MaxHosts: 2, OnClose: func(host string, u socketapi.Usage) {
		mu.Lock()
		closed[host] = u
		mu.Unlock()
	}}
	d := &socketapi.Dialer{
		Dialer: sockets.Dialer{
			Resolver: anyName{netip.MustParseAddr("93.184.216.34")},
			Connect:  seam.Connect,
		},
		Meter: meter,
	}
	msgs := map[string]string{"a.example": "1", "b.example": "22", "c.example": "333", "d.example": "4444"}
	for _, h := range []string{"a.example", "b.example", "c.example", "d.example"} {
		c := dialConn(t, d, "tcp", h+":443")
		echoRoundTrip(t, c, msgs[h])
		c.Close()
	}
	want := map[string]socketapi.Usage{
		"a.example":            {Sent: 1, Received: 1},
		"b.example":            {Sent: 2, Received: 2},
		socketapi.OverflowHost: {Sent: 7, Received: 7},
	}
	snap := meter.Snapshot()
	if len(snap) != len(want) {
		t.Errorf("Snapshot() = %v, want %v", snap, want)
	}
	for h, u := range want {
		if snap[h] != u || meter.Host(h) != u {
			t.Errorf("%s: snapshot %+v, Host %+v; want %+v", h, snap[h], meter.Host(h), u)
		}
	}
	if u := meter.Host("c.example"); u != (socketapi.Usage{}) {
		t.Errorf("Host(c.example), past the cap = %+v, want zero", u)
	}
	if tot := total(meter); tot != (socketapi.Usage{Sent: 10, Received: 10}) {
		t.Errorf("total = %+v", tot)
	}
	mu.Lock()
	defer mu.Unlock()
	if closed["d.example"] != (socketapi.Usage{Sent: 4, Received: 4}) || len(closed) != 4 {
		t.Errorf("OnClose saw %v, want each host as dialed", closed)
	}
}
