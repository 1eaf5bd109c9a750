package socketapi_test

import (
	"context"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketapi"
)

// BenchmarkMeterCost measures what a metered *socketapi.Conn costs against a
// plain *net.TCPConn on loopback TCP, in the same run. Loopback throughput on
// a small machine swings by tens of percent from run to run, and two
// connections never see the same conditions, so both sides use one socket:
// the metered Conn wraps the very *net.TCPConn that is also used directly
// (through the Connect seam). Each iteration moves one chunk directly and
// one through the Conn, in alternating order, each timed. It reports both
// throughputs and the metered side's cost in percent (negative: faster).
//
// The "control" runs measure the same way with the plain connection on both
// sides: their cost-% is the noise floor of the method on this machine.
func BenchmarkMeterCost(b *testing.B) {
	for _, dir := range []string{"write", "read"} {
		for _, size := range []int{4 << 10, 32 << 10} {
			for _, control := range []bool{false, true} {
				name := dir + "/" + strconv.Itoa(size>>10) + "KiB/metered"
				if control {
					name = dir + "/" + strconv.Itoa(size>>10) + "KiB/control"
				}
				b.Run(name, func(b *testing.B) {
					benchMeterCost(b, dir, size, control)
				})
			}
		}
	}
}

// loopbackPeer starts a server that discards what it reads ("write"), or
// writes chunks of size until the connection ends ("read").
func loopbackPeer(b *testing.B, dir string, size int) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if dir == "write" {
			io.CopyBuffer(io.Discard, c, make([]byte, 64<<10))
			return
		}
		buf := make([]byte, size)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	b.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

func benchMeterCost(b *testing.B, dir string, size int, control bool) {
	plain, err := net.Dial("tcp", loopbackPeer(b, dir, size))
	if err != nil {
		b.Fatal(err)
	}
	d := &socketapi.Dialer{
		Dialer: sockets.Dialer{Connect: func(context.Context, string, netip.AddrPort) (net.Conn, error) { return plain, nil }},
		Meter:  &socketapi.Meter{},
	}
	metered, err := dial(d, context.Background(), "tcp", publicDest)
	if err != nil {
		b.Fatal(err)
	}
	// Closed before the server's cleanup waits for it.
	b.Cleanup(func() { metered.Close() })
	buf := make([]byte, size)
	move := func(c net.Conn) time.Duration {
		start := time.Now()
		var err error
		if dir == "write" {
			_, err = c.Write(buf)
		} else {
			_, err = io.ReadFull(c, buf)
		}
		if err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var other net.Conn = metered
	if control {
		other = plain
	}
	var tPlain, tMetered time.Duration
	b.SetBytes(int64(2 * size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			tPlain += move(plain)
			tMetered += move(other)
		} else {
			tMetered += move(other)
			tPlain += move(plain)
		}
	}
	b.StopTimer()
	mb := float64(size) * float64(b.N) / 1e6
	b.ReportMetric(mb/tPlain.Seconds(), "plain-MB/s")
	b.ReportMetric(mb/tMetered.Seconds(), "metered-MB/s")
	b.ReportMetric(100*(tMetered.Seconds()-tPlain.Seconds())/tPlain.Seconds(), "cost-%")
	if u := metered.Usage(); !control && u.Sent+u.Received != int64(size*b.N) {
		b.Fatalf("usage %+v, want %d bytes", u, size*b.N)
	}
}

// nullConn is a net.Conn whose Read and Write do nothing, so that
// BenchmarkConnOverhead sees only what a Conn adds to each call.
type nullConn struct{ net.Conn }

func (nullConn) Read(p []byte) (int, error)  { return len(p), nil }
func (nullConn) Write(p []byte) (int, error) { return len(p), nil }
func (nullConn) Close() error                { return nil }

// BenchmarkConnOverhead measures the time a Conn adds to a Write (the
// handle check, the idle clock and, with a Meter, the counters) over a
// connection that does nothing, next to calling that connection directly.
func BenchmarkConnOverhead(b *testing.B) {
	connect := func(context.Context, string, netip.AddrPort) (net.Conn, error) { return nullConn{}, nil }
	for _, kind := range []string{"direct", "Conn", "Conn+Meter"} {
		b.Run(kind, func(b *testing.B) {
			var c net.Conn = nullConn{}
			if kind != "direct" {
				d := &socketapi.Dialer{Dialer: sockets.Dialer{Connect: connect}}
				if kind == "Conn+Meter" {
					d.Meter = &socketapi.Meter{}
				}
				var err error
				if c, err = d.DialContext(context.Background(), "tcp", publicDest); err != nil {
					b.Fatal(err)
				}
				defer c.Close()
			}
			buf := make([]byte, 1)
			b.ReportAllocs()
			for b.Loop() {
				c.Write(buf)
			}
		})
	}
}

// BenchmarkIdleConns holds 10,000 idle connections and reports what the
// package adds to each (its Conn, idle timer and meter entry), beyond the
// connection itself (an in-memory pipe here: 10,000 sockets would need
// 20,000 file descriptors). B/op and allocs/op are those of 10,000 dials.
// That idle connections add no goroutine is TestIdleTenThousand's to show,
// counting its own synctest bubble rather than the process.
func BenchmarkIdleConns(b *testing.B) {
	const n = 10000
	var perConn float64
	b.ReportAllocs()
	for range b.N {
		b.StopTimer()
		pipes := make([]net.Conn, 0, 2*n)
		for range n {
			x, y := net.Pipe()
			pipes = append(pipes, x, y)
		}
		next := 0
		d := &socketapi.Dialer{
			Dialer: sockets.Dialer{Connect: func(context.Context, string, netip.AddrPort) (net.Conn, error) {
				c := pipes[next]
				next += 2
				return c, nil
			}},
			Meter: &socketapi.Meter{},
		}
		conns := make([]*socketapi.Conn, 0, n)
		before := heapInUse()
		b.StartTimer()
		for range n {
			c, err := dial(d, context.Background(), "tcp", publicDest)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
		}
		b.StopTimer()
		perConn += float64(heapInUse()-before) / n
		for _, c := range conns {
			c.Close()
		}
		for _, p := range pipes {
			p.Close()
		}
		runtime.KeepAlive(conns)
		// Let the scheduler drop the stopped timers, so that their memory
		// is not freed during the next iteration's measurement.
		for range 4 {
			runtime.Gosched()
		}
	}
	b.ReportMetric(perConn/float64(b.N), "B/idle-conn")
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
