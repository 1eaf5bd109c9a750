package sockets_test

import (
	"encoding/json"
	"expvar"
	"strings"
	"sync"
	"testing"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketstest"
)

func TestMeter(t *testing.T) {
	srv := startEchoTCP(t)
	seam := &socketstest.Connector{Target: srv.addr()}
	type closed struct {
		host string
		u    sockets.Usage
	}
	var mu sync.Mutex
	var closes []closed
	meter := &sockets.Meter{OnClose: func(host string, u sockets.Usage) {
		mu.Lock()
		closes = append(closes, closed{host, u})
		mu.Unlock()
	}}
	d := &sockets.Dialer{
		Resolver: socketstest.NewResolver(map[string][]string{
			"echo.example":  {"93.184.216.34"},
			"ECHO.example.": {"93.184.216.34"},
			"other.example": {"93.184.216.35"},
		}),
		Connect: seam.Connect,
		Meter:   meter,
	}
	a := dialConn(t, d, "tcp", "echo.example:443")
	b := dialConn(t, d, "tcp", "ECHO.example.:443") // the same host, written otherwise
	o := dialConn(t, d, "tcp", "other.example:443")
	lit := dialConn(t, d, "tcp", "93.184.216.36:443")
	echoRoundTrip(t, a, "12345")
	echoRoundTrip(t, b, "123")
	echoRoundTrip(t, o, "1")
	echoRoundTrip(t, lit, "1234567")

	if u := a.Usage(); u != (sockets.Usage{Sent: 5, Received: 5}) {
		t.Errorf("a.Usage() = %+v", u)
	}
	want := map[string]sockets.Usage{
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
	if tot := meter.Total(); tot != (sockets.Usage{Sent: 16, Received: 16}) {
		t.Errorf("Total() = %+v", tot)
	}

	// Exported as JSON through expvar.
	var v expvar.Var = meter
	var decoded map[string]sockets.Usage
	if err := json.Unmarshal([]byte(v.String()), &decoded); err != nil {
		t.Fatalf("String() = %s: %v", v.String(), err)
	}
	if len(decoded) != len(want) || decoded["echo.example"] != want["echo.example"] {
		t.Errorf("String() decodes to %v", decoded)
	}
	if !strings.HasPrefix(v.String(), `{"93.184.216.36": {"sent":7,"received":7}, "echo.example"`) {
		t.Errorf("String() = %s, want hosts in order", v.String())
	}

	// OnClose reports each connection once, with its own totals.
	a.Close()
	a.Close()
	mu.Lock()
	got := append([]closed(nil), closes...)
	mu.Unlock()
	if len(got) != 1 || got[0] != (closed{"echo.example", sockets.Usage{Sent: 5, Received: 5}}) {
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
	meter := &sockets.Meter{}
	d := &sockets.Dialer{Policy: loopbackPolicy(), Meter: meter}
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
				_ = meter.String()
				_ = meter.Total()
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
	var m sockets.Meter
	if m.String() != "{}" || len(m.Snapshot()) != 0 || m.Total() != (sockets.Usage{}) || m.Host("x") != (sockets.Usage{}) {
		t.Errorf("zero Meter is not empty: %s", m.String())
	}
}
