package socketapi_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketapi"
)

// pipeSeam is a Connect seam that makes an in-memory net.Pipe for every
// connection and keeps the far ends, so that idle tests run inside a
// testing/synctest bubble, where time is virtual and a socket would not be.
type pipeSeam struct {
	// halfClose makes the connections offer CloseRead, as a TCP
	// connection does, so that a Conn's CloseRead runs in a bubble.
	halfClose bool

	mu    sync.Mutex
	peers []net.Conn
}

func (p *pipeSeam) connect(_ context.Context, _ string, _ netip.AddrPort) (net.Conn, error) {
	a, b := net.Pipe()
	p.mu.Lock()
	p.peers = append(p.peers, b)
	p.mu.Unlock()
	if p.halfClose {
		return halfPipe{a}, nil
	}
	return a, nil
}

// halfPipe is a pipe end with a CloseRead method that does nothing: enough
// for the tests of the idle clock around CloseRead (the shutdown itself is
// tested on real TCP connections).
type halfPipe struct{ net.Conn }

func (halfPipe) CloseRead() error { return nil }

func (p *pipeSeam) peer(i int) net.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peers[i]
}

func (p *pipeSeam) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.peers {
		c.Close()
	}
}

// publicDest is a public address that pipeSeam stands in for.
const publicDest = "93.184.216.34:443"

// assertPeerClosed checks that the socket's far end sees it closed.
func assertPeerClosed(t *testing.T, peer net.Conn) {
	t.Helper()
	if _, err := peer.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("far end read: %v, want io.EOF (the socket was not closed)", err)
	}
}

// TestIdleDefaultTenMinutes checks App Engine's 10 minutes, and that a
// read, a write and KeepAlive each restart the clock, in virtual time.
func TestIdleDefaultTenMinutes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seam := &pipeSeam{}
		defer seam.closeAll()
		d := &socketapi.Dialer{Dialer: sockets.Dialer{Connect: seam.connect}}
		c, err := dial(d, t.Context(), "tcp", publicDest)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		peer := seam.peer(0)
		const almost = socketapi.DefaultIdleTimeout - time.Nanosecond

		time.Sleep(almost)
		synctest.Wait()
		if err := c.KeepAlive(); err != nil {
			t.Fatalf("KeepAlive just before 10 minutes: %v", err)
		}

		time.Sleep(almost)
		synctest.Wait()
		go io.ReadFull(peer, make([]byte, 1))
		if _, err := c.Write([]byte("w")); err != nil {
			t.Fatalf("Write 10 minutes after KeepAlive, less 1ns: %v", err)
		}

		time.Sleep(almost)
		synctest.Wait()
		go peer.Write([]byte("r"))
		if _, err := c.Read(make([]byte, 1)); err != nil {
			t.Fatalf("Read 10 minutes after Write, less 1ns: %v", err)
		}

		time.Sleep(socketapi.DefaultIdleTimeout)
		synctest.Wait()
		assertPeerClosed(t, peer)
		_, err = c.Read(make([]byte, 1))
		wantStateErr(t, err, "read", socketapi.ErrReclaimed)
		_, err = c.Write([]byte("x"))
		wantStateErr(t, err, "write", socketapi.ErrReclaimed)
		wantStateErr(t, c.KeepAlive(), "keepalive", socketapi.ErrReclaimed)
		wantStateErr(t, c.SetDeadline(time.Now()), "set deadline", socketapi.ErrReclaimed)
		wantStateErr(t, c.Close(), "close", socketapi.ErrReclaimed)
		if errors.Is(err, socketapi.ErrHandedOff) {
			t.Error("a reclaimed connection reads as handed off")
		}
	})
}

// TestIdleConfigurable checks a short limit, and that a PacketConn is
// reclaimed too.
func TestIdleConfigurable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seam := &pipeSeam{}
		defer seam.closeAll()
		var closed atomic.Int32
		d := &socketapi.Dialer{
			Dialer:      sockets.Dialer{Connect: seam.connect},
			IdleTimeout: 30 * time.Second,
			Meter:       &socketapi.Meter{OnClose: func(string, socketapi.Usage) { closed.Add(1) }},
		}
		c, err := dial(d, t.Context(), "tcp", publicDest)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(30*time.Second - time.Nanosecond)
		synctest.Wait()
		if closed.Load() != 0 {
			t.Fatal("reclaimed before the limit")
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if closed.Load() != 1 {
			t.Fatal("not reclaimed at the limit")
		}
		wantStateErr(t, c.KeepAlive(), "keepalive", socketapi.ErrReclaimed)
	})
}

// TestIdleBlockedRead: a Read that ends with data restarts the clock when
// it ends; a Read left waiting with no traffic does not keep the socket
// alive, and is ended with ErrReclaimed between one and two limits after it
// began.
func TestIdleBlockedRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seam := &pipeSeam{}
		defer seam.closeAll()
		var reclaimed atomic.Int32
		d := &socketapi.Dialer{
			Dialer:      sockets.Dialer{Connect: seam.connect},
			IdleTimeout: time.Minute,
			Meter:       &socketapi.Meter{OnClose: func(string, socketapi.Usage) { reclaimed.Add(1) }},
		}
		c, err := dial(d, t.Context(), "tcp", publicDest)
		if err != nil {
			t.Fatal(err)
		}
		peer := seam.peer(0)
		read := func() chan error {
			ch := make(chan error, 1)
			go func() {
				_, err := c.Read(make([]byte, 1))
				ch <- err
			}()
			return ch
		}

		done := read()
		time.Sleep(90 * time.Second)
		if _, err := peer.Write([]byte("x")); err != nil {
			t.Fatalf("the socket was closed during a read that had seen no traffic for 90s, less than two limits: %v", err)
		}
		if err := <-done; err != nil {
			t.Fatalf("Read: %v", err)
		}
		time.Sleep(time.Minute - time.Nanosecond)
		synctest.Wait()
		if reclaimed.Load() != 0 {
			t.Fatal("reclaimed less than a minute after the read ended")
		}

		began := time.Now()
		done = read()
		time.Sleep(time.Minute)
		synctest.Wait()
		if reclaimed.Load() != 0 {
			t.Fatal("reclaimed one limit after the last use, while a read had just begun")
		}
		select {
		case err := <-done:
			t.Fatalf("waiting read ended early: %v", err)
		default:
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if reclaimed.Load() != 1 {
			t.Fatalf("not reclaimed %v after the read began", time.Since(began))
		}
		wantStateErr(t, <-done, "read", socketapi.ErrReclaimed)
		assertPeerClosed(t, peer)
	})
}

// TestIdleRealSocket reclaims a real loopback TCP connection with a short
// limit: the server sees it closed, and the client's next operation fails.
func TestIdleRealSocket(t *testing.T) {
	srv := startEchoTCP(t)
	reclaimed := make(chan socketapi.Usage, 1)
	d := &socketapi.Dialer{
		Dialer:      sockets.Dialer{Policy: loopbackPolicy()},
		IdleTimeout: 20 * time.Millisecond,
		Meter:       &socketapi.Meter{OnClose: func(_ string, u socketapi.Usage) { reclaimed <- u }},
	}
	c := dialConn(t, d, "tcp", srv.addr())
	echoRoundTrip(t, c, "before")
	<-srv.eof // the server read EOF: the socket was closed
	if u := <-reclaimed; u != (socketapi.Usage{Sent: 6, Received: 6}) {
		t.Errorf("OnClose usage = %+v", u)
	}
	_, err := c.Write([]byte("after"))
	wantStateErr(t, err, "write", socketapi.ErrReclaimed)
}

// bubbleGoroutines returns the number of goroutines in the calling
// goroutine's testing/synctest bubble: the test's own and every goroutine
// started from them, the code under test's included, and no other goroutine
// of the process, so that neither a parallel test nor a runtime worker
// changes the count. The runtime names each goroutine's bubble in its
// stack dump header ("goroutine 7 [select (durable), synctest bubble 3]:").
func bubbleGoroutines(t *testing.T) int {
	t.Helper()
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var mine string
	count := 0
	for line := range strings.Lines(string(buf)) {
		if !strings.HasPrefix(line, "goroutine ") {
			continue
		}
		m := bubbleHeader.FindStringSubmatch(line)
		if mine == "" { // the first header is the caller's
			if m == nil {
				t.Fatalf("the calling goroutine's header names no synctest bubble: %q", line)
			}
			mine = m[1]
		}
		if m != nil && m[1] == mine {
			count++
		}
	}
	return count
}

var bubbleHeader = regexp.MustCompile(`^goroutine \d+ \[.*, synctest bubble (\d+)[\] ]`)

// TestBubbleGoroutines checks the counter TestIdleTenThousand relies on:
// it sees every goroutine started in the bubble, time.AfterFunc's too,
// and none outside it.
func TestBubbleGoroutines(t *testing.T) {
	outside := make(chan struct{})
	go func() { <-outside }()
	defer close(outside)
	synctest.Test(t, func(t *testing.T) {
		before := bubbleGoroutines(t)
		release := make(chan struct{})
		for range 3 {
			go func() { <-release }()
		}
		time.AfterFunc(time.Second, func() { <-release })
		synctest.Wait()
		if g := bubbleGoroutines(t); g != before+3 {
			t.Errorf("with 3 goroutines started: %d, want %d", g, before+3)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if g := bubbleGoroutines(t); g != before+4 {
			t.Errorf("with a timer's function waiting too: %d, want %d", g, before+4)
		}
		close(release)
		synctest.Wait()
		if g := bubbleGoroutines(t); g != before {
			t.Errorf("after they ended: %d, want %d", g, before)
		}
	})
}

// TestIdleTenThousand holds 10,000 idle connections: they add no goroutine
// while they wait, and all of them are reclaimed at the limit. It counts
// the goroutines of its own synctest bubble, where every goroutine the
// Dialer, the connections and their timers start would run. (Their memory
// is measured by BenchmarkIdleConns.)
func TestIdleTenThousand(t *testing.T) {
	const n = 10000
	synctest.Test(t, func(t *testing.T) {
		seam := &pipeSeam{}
		defer seam.closeAll()
		var reclaimed atomic.Int32
		d := &socketapi.Dialer{
			Dialer: sockets.Dialer{Connect: seam.connect},
			Meter:  &socketapi.Meter{OnClose: func(string, socketapi.Usage) { reclaimed.Add(1) }},
		}
		synctest.Wait()
		before := bubbleGoroutines(t)
		conns := make([]*socketapi.Conn, n)
		for i := range conns {
			c, err := dial(d, t.Context(), "tcp", publicDest)
			if err != nil {
				t.Fatal(err)
			}
			conns[i] = c
		}
		time.Sleep(socketapi.DefaultIdleTimeout / 2)
		synctest.Wait()
		if g := bubbleGoroutines(t); g != before {
			t.Errorf("%d idle connections: %d goroutines, want %d as before", n, g, before)
		}
		if got := reclaimed.Load(); got != 0 {
			t.Fatalf("%d reclaimed early", got)
		}
		time.Sleep(socketapi.DefaultIdleTimeout / 2)
		synctest.Wait()
		if got := reclaimed.Load(); got != n {
			t.Fatalf("%d of %d reclaimed at the limit", got, n)
		}
		if g := bubbleGoroutines(t); g != before {
			t.Errorf("after reclamation: %d goroutines, want %d", g, before)
		}
		for _, i := range []int{0, n / 2, n - 1} {
			wantStateErr(t, conns[i].KeepAlive(), "keepalive", socketapi.ErrReclaimed)
		}
	})
}

// TestCloseRace closes, reclaims and uses connections at once; the race
// detector checks the state machine, and every connection ends closed
// exactly once.
func TestCloseRace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seam := &pipeSeam{}
		defer seam.closeAll()
		var closes atomic.Int32
		d := &socketapi.Dialer{
			Dialer:      sockets.Dialer{Connect: seam.connect},
			IdleTimeout: time.Second,
			Meter:       &socketapi.Meter{OnClose: func(string, socketapi.Usage) { closes.Add(1) }},
		}
		const n = 50
		var wg sync.WaitGroup
		for i := range n {
			c, err := dial(d, t.Context(), "tcp", publicDest)
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(2)
			go func() {
				defer wg.Done()
				// Some are closed while in use, some after they were
				// reclaimed (at about 2.5s), some at the very instant.
				time.Sleep(time.Duration(i) * 100 * time.Millisecond)
				c.Close()
			}()
			go func() {
				defer wg.Done()
				for range 5 {
					c.KeepAlive()
					time.Sleep(300 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := closes.Load(); got != n {
			t.Errorf("%d sockets closed, want %d", got, n)
		}
	})
}
