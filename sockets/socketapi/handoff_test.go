package socketapi_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketapi"
)

// wantHandOffErr checks that err is a *socketapi.Error for op wrapping target.
func wantHandOffErr(t *testing.T, err error, op string, target error) *socketapi.Error {
	t.Helper()
	var he *socketapi.Error
	if !errors.As(err, &he) || he.Op != op || !errors.Is(err, target) {
		t.Fatalf("err = %v (%T), want a *socketapi.Error for %s wrapping %v", err, err, op, target)
	}
	return he
}

func TestHandOff(t *testing.T) {
	srv := startEchoTCP(t)
	reg := &socketapi.Registry{}
	maker := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: reg, AppID: "app-a"}
	c := dialConn(t, maker, "tcp", srv.addr())
	echoRoundTrip(t, c, "before")
	desc, err := c.Detach()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Trim(desc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		t.Errorf("descriptor %q is not URL-safe", desc)
	}
	if reg.Len() != 1 {
		t.Errorf("Len() = %d after Detach, want 1", reg.Len())
	}

	// The old handle is retired at once.
	_, err = c.Write([]byte("x"))
	wantStateErr(t, err, "write", socketapi.ErrHandedOff)
	_, err = c.Read(make([]byte, 1))
	wantStateErr(t, err, "read", socketapi.ErrHandedOff)
	wantStateErr(t, c.KeepAlive(), "keepalive", socketapi.ErrHandedOff)
	wantStateErr(t, c.Close(), "close", socketapi.ErrHandedOff)
	_, err = c.Detach()
	wantHandOffErr(t, err, "detach", socketapi.ErrHandedOff)

	// Picked up elsewhere: another goroutine, another Dialer of the same
	// application sharing the Registry.
	taker := &socketapi.Dialer{Registry: reg, AppID: "app-a"}
	got := make(chan *socketapi.Conn)
	go func() {
		c2, err := taker.Attach(desc)
		if err != nil {
			t.Error(err)
		}
		got <- c2
	}()
	c2 := <-got
	if c2 == nil {
		t.FailNow()
	}
	defer c2.Close()
	echoRoundTrip(t, c2, "after")
	if u := c2.Usage(); u != (socketapi.Usage{Sent: 11, Received: 11}) {
		t.Errorf("usage across the hand-off = %+v, want 11 bytes each way", u)
	}
	if reg.Len() != 0 {
		t.Errorf("Len() = %d after Attach, want 0", reg.Len())
	}
	_, err = c.Write([]byte("x"))
	wantStateErr(t, err, "write", socketapi.ErrHandedOff)

	// A descriptor is taken up once.
	_, err = taker.Attach(desc)
	wantHandOffErr(t, err, "attach", socketapi.ErrStaleDescriptor)
}

func TestHandOffWrongApp(t *testing.T) {
	srv := startEchoTCP(t)
	reg := &socketapi.Registry{}
	maker := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: reg, AppID: "app-a"}
	c := dialConn(t, maker, "tcp", srv.addr())
	desc, err := c.Detach()
	if err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{"app-b", "", "APP-A", "app-a "} {
		other := &socketapi.Dialer{Registry: reg, AppID: app}
		_, err := other.Attach(desc)
		he := wantHandOffErr(t, err, "attach", socketapi.ErrWrongApp)
		if he.App != "app-a" || he.AttachApp != app {
			t.Errorf("Error = %+v", he)
		}
		if errors.Is(err, socketapi.ErrBadDescriptor) || errors.Is(err, socketapi.ErrStaleDescriptor) {
			t.Errorf("wrong-app error %v matches another sentinel", err)
		}
	}
	// The refusals did not consume the descriptor.
	c2, err := maker.Attach(desc)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	echoRoundTrip(t, c2, "still mine")
}

func TestHandOffBadDescriptors(t *testing.T) {
	srv := startEchoTCP(t)
	reg := &socketapi.Registry{}
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: reg, AppID: "app-a"}
	c := dialConn(t, d, "tcp", srv.addr())
	desc, err := c.Detach()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(desc)
	if err != nil {
		t.Fatalf("descriptor is not URL-safe base64: %v", err)
	}
	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	// Another Registry's descriptor, for the same application.
	otherReg := &socketapi.Registry{}
	od := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: otherReg, AppID: "app-a"}
	oc := dialConn(t, od, "tcp", srv.addr())
	otherDesc, err := oc.Detach()
	if err != nil {
		t.Fatal(err)
	}

	cases := map[string]string{
		"empty":                 "",
		"garbage":               "not a descriptor!",
		"not base64":            desc[:len(desc)-1] + "*",
		"truncated":             desc[:len(desc)-4],
		"extended":              desc + "AAAA",
		"random":                base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, len(raw))),
		"altered version":       flip(0),
		"altered socket number": flip(8),
		"altered nonce":         flip(12),
		"altered application":   flip(len(raw) - 33),
		"altered mac":           flip(len(raw) - 1),
		"huge":                  strings.Repeat("A", 1<<20),
		"another registry's":    otherDesc,
		"double encoded":        base64.RawURLEncoding.EncodeToString([]byte(desc)),
		"padded":                desc + "==",
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := d.Attach(bad)
			wantHandOffErr(t, err, "attach", socketapi.ErrBadDescriptor)
			if errors.Is(err, socketapi.ErrWrongApp) || errors.Is(err, socketapi.ErrStaleDescriptor) {
				t.Errorf("%v matches another sentinel", err)
			}
		})
	}
	// None of that disturbed the parked socket.
	c2, err := d.Attach(desc)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	echoRoundTrip(t, c2, "intact")
	oc2, err := od.Attach(otherDesc)
	if err != nil {
		t.Fatal(err)
	}
	oc2.Close()
}

// TestHandOffSharedKey: with the same Key, a Registry accepts another's
// descriptors as genuine, but does not hold their sockets.
func TestHandOffSharedKey(t *testing.T) {
	srv := startEchoTCP(t)
	key := bytes.Repeat([]byte("k"), 32)
	r1, r2 := &socketapi.Registry{Key: key}, &socketapi.Registry{Key: key}
	c := dialConn(t, &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: r1}, "tcp", srv.addr())
	desc, err := c.Detach()
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&socketapi.Dialer{Registry: r2}).Attach(desc)
	wantHandOffErr(t, err, "attach", socketapi.ErrStaleDescriptor)
	c2, err := (&socketapi.Dialer{Registry: r1}).Attach(desc)
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
}

// TestHandOffWeakKey: a Key that is set but shorter than 32 bytes, empty
// included, hands nothing off and picks nothing up, so that no descriptor
// can be forged under a guessable key. The connection stays usable.
func TestHandOffWeakKey(t *testing.T) {
	srv := startEchoTCP(t)
	for _, key := range [][]byte{{}, []byte("k"), bytes.Repeat([]byte("k"), 31)} {
		reg := &socketapi.Registry{Key: key}
		d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: reg, AppID: "app-a"}
		c := dialConn(t, d, "tcp", srv.addr())
		_, err := c.Detach()
		he := wantHandOffErr(t, err, "detach", socketapi.ErrWeakKey)
		if he.App != "app-a" {
			t.Errorf("Error = %+v, want App %q", he, "app-a")
		}
		if reg.Len() != 0 {
			t.Errorf("%d-byte key: Len() = %d after a refused Detach", len(key), reg.Len())
		}
		echoRoundTrip(t, c, "still usable")
		// Not even a well-formed descriptor signed under the weak key is
		// looked at.
		blank := make([]byte, 1+8+16+1+sha256.Size)
		blank[0] = 1 // the descriptor version
		_, err = d.Attach(resign(t, base64.RawURLEncoding.EncodeToString(blank), key, "app-a"))
		wantHandOffErr(t, err, "attach", socketapi.ErrWeakKey)
		_, err = d.Attach("anything")
		wantHandOffErr(t, err, "attach", socketapi.ErrWeakKey)
		c.Close()
	}
}

// resign rewrites desc (version, socket number, nonce, uvarint length and
// application, then HMAC-SHA256 of all of it) to name app, and signs it
// under key, as someone who knows the key could.
func resign(t *testing.T, desc string, key []byte, app string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(desc)
	if err != nil {
		t.Fatal(err)
	}
	b := append([]byte(nil), raw[:1+8+16]...)
	b = binary.AppendUvarint(b, uint64(len(app)))
	b = append(b, app...)
	m := hmac.New(sha256.New, key)
	m.Write(b)
	return base64.RawURLEncoding.EncodeToString(m.Sum(b))
}

// TestHandOffKeyCopied: the Registry copies its Key on first use; a later
// change to the caller's slice, or to the field, changes nothing.
func TestHandOffKeyCopied(t *testing.T) {
	srv := startEchoTCP(t)
	key := bytes.Repeat([]byte("k"), 32)
	reg := &socketapi.Registry{Key: key}
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: reg, AppID: "app-a"}
	c := dialConn(t, d, "tcp", srv.addr())
	desc, err := c.Detach()
	if err != nil {
		t.Fatal(err)
	}
	clear(key)
	reg.Key = nil
	// Signed under the key as it is now: not genuine.
	_, err = d.Attach(resign(t, desc, key, "app-a"))
	wantHandOffErr(t, err, "attach", socketapi.ErrBadDescriptor)
	c2, err := d.Attach(desc)
	if err != nil {
		t.Fatalf("attach after the caller changed its key slice: %v", err)
	}
	defer c2.Close()
	echoRoundTrip(t, c2, "same key")
}

// TestHandOffForgedApp: a descriptor re-signed to name another application,
// by someone who holds the key, still does not hand the socket over: Attach
// checks the application the socket itself was made for.
func TestHandOffForgedApp(t *testing.T) {
	srv := startEchoTCP(t)
	key := bytes.Repeat([]byte("k"), 32)
	reg := &socketapi.Registry{Key: key}
	a := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: reg, AppID: "app-a"}
	b := &socketapi.Dialer{Registry: reg, AppID: "app-b"}
	c := dialConn(t, a, "tcp", srv.addr())
	desc, err := c.Detach()
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Attach(resign(t, desc, key, "app-b"))
	he := wantHandOffErr(t, err, "attach", socketapi.ErrWrongApp)
	if he.App != "app-a" || he.AttachApp != "app-b" {
		t.Errorf("Error = %+v, want App app-a, AttachApp app-b", he)
	}
	if reg.Len() != 1 {
		t.Errorf("Len() = %d after the refusal, want the socket still parked", reg.Len())
	}
	c2, err := a.Attach(desc)
	if err != nil {
		t.Fatalf("the owner's attach after a forged one: %v", err)
	}
	defer c2.Close()
	echoRoundTrip(t, c2, "still mine")
}

func TestHandOffStale(t *testing.T) {
	srv := startEchoTCP(t)
	reg := &socketapi.Registry{}
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: reg}
	c := dialConn(t, d, "tcp", srv.addr())

	first, err := c.Detach()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := d.Attach(first)
	if err != nil {
		t.Fatal(err)
	}
	// Detached again: the first descriptor stays stale, the second works.
	second, err := c2.Detach()
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Fatal("two hand-offs gave the same descriptor")
	}
	_, err = d.Attach(first)
	wantHandOffErr(t, err, "attach", socketapi.ErrStaleDescriptor)
	c3, err := d.Attach(second)
	if err != nil {
		t.Fatal(err)
	}
	echoRoundTrip(t, c3, "third owner")
	// Closed: every descriptor of the socket is stale.
	if err := c3.Close(); err != nil {
		t.Fatal(err)
	}
	for _, desc := range []string{first, second} {
		_, err = d.Attach(desc)
		wantHandOffErr(t, err, "attach", socketapi.ErrStaleDescriptor)
	}
}

// TestHandOffReclaimedWhileParked: a parked socket keeps its idle clock; one
// not picked up in time is reclaimed and its descriptor goes stale.
func TestHandOffReclaimedWhileParked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seam := &pipeSeam{}
		defer seam.closeAll()
		reg := &socketapi.Registry{}
		d := &socketapi.Dialer{Dialer: sockets.Dialer{Connect: seam.connect}, Registry: reg, IdleTimeout: time.Minute}
		c1, err := dial(d, t.Context(), "tcp", publicDest)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := dial(d, t.Context(), "tcp", publicDest)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Second) // Detach restarts the clock
		d1, err := c1.Detach()
		if err != nil {
			t.Fatal(err)
		}
		d2, err := c2.Detach()
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute - time.Nanosecond)
		synctest.Wait()
		a1, err := d.Attach(d1)
		if err != nil {
			t.Fatalf("attach just before the limit: %v", err)
		}
		defer a1.Close()
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if reg.Len() != 0 {
			t.Errorf("Len() = %d, want the unclaimed socket gone", reg.Len())
		}
		assertPeerClosed(t, seam.peer(1))
		_, err = d.Attach(d2)
		wantHandOffErr(t, err, "attach", socketapi.ErrStaleDescriptor)
		// Attaching restarted the clock of the first.
		if err := a1.KeepAlive(); err != nil {
			t.Errorf("attached socket: %v", err)
		}
	})
}

func TestHandOffNoRegistry(t *testing.T) {
	srv := startEchoTCP(t)
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}}
	c := dialConn(t, d, "tcp", srv.addr())
	_, err := c.Detach()
	wantHandOffErr(t, err, "detach", socketapi.ErrNoRegistry)
	echoRoundTrip(t, c, "still usable")
	_, err = d.Attach("anything")
	wantHandOffErr(t, err, "attach", socketapi.ErrNoRegistry)
}

func TestHandOffLongAppID(t *testing.T) {
	srv := startEchoTCP(t)
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: &socketapi.Registry{}, AppID: strings.Repeat("a", 1025)}
	c := dialConn(t, d, "tcp", srv.addr())
	_, err := c.Detach()
	var he *socketapi.Error
	if !errors.As(err, &he) {
		t.Fatalf("Detach with a 1025-byte AppID: %v, want a *socketapi.Error", err)
	}
	echoRoundTrip(t, c, "still usable")

	d.AppID = strings.Repeat("a", 1024)
	c2 := dialConn(t, d, "tcp", srv.addr())
	desc, err := c2.Detach()
	if err != nil {
		t.Fatal(err)
	}
	c3, err := d.Attach(desc)
	if err != nil {
		t.Fatalf("attach with a 1024-byte AppID: %v", err)
	}
	c3.Close()
}

// TestDetachInterruptsRead: a Read in progress on the old handle ends with
// ErrHandedOff, and no byte meant for the new owner is lost.
func TestDetachInterruptsRead(t *testing.T) {
	srv := startEchoTCP(t)
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: &socketapi.Registry{}}
	c := dialConn(t, d, "tcp", srv.addr())
	testDetachInterruptsRead(t, d, c)
}

func testDetachInterruptsRead(t *testing.T, d *socketapi.Dialer, c *socketapi.Conn) *socketapi.Conn {
	t.Helper()
	reading := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		close(reading)
		_, err := c.Read(make([]byte, 1))
		readErr <- err
	}()
	<-reading
	for socketapi.ConnInFlight(c) == 0 {
		runtime.Gosched() // until the Read has begun
	}
	desc, err := c.Detach()
	if err != nil {
		t.Fatal(err)
	}
	wantStateErr(t, <-readErr, "read", socketapi.ErrHandedOff)
	c2, err := d.Attach(desc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c2.Close() })
	echoRoundTrip(t, c2, "nothing lost")
	return c2
}

// TestHandOffTLS hands off a connection upgraded with StartTLS: the new
// owner continues the same TLS session, with a Read interrupted mid-way.
func TestHandOffTLS(t *testing.T) {
	cert, pool := loopbackCert(t)
	srv := startEchoTCPWith(t, false, &tls.Config{Certificates: []tls.Certificate{cert}})
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: &socketapi.Registry{}, AppID: "mail"}
	c := dialConn(t, d, "tcp", srv.addr())
	if err := c.StartTLS(t.Context(), &tls.Config{RootCAs: pool}); err != nil {
		t.Fatal(err)
	}
	echoRoundTrip(t, c, "over tls")
	cs, _ := c.ConnectionState()
	ekm, err := cs.ExportKeyingMaterial("outbound test", nil, 32)
	if err != nil {
		t.Fatal(err)
	}

	c2 := testDetachInterruptsRead(t, d, c)
	cs2, ok := c2.ConnectionState()
	if !ok {
		t.Fatal("the attached connection lost TLS")
	}
	ekm2, err := cs2.ExportKeyingMaterial("outbound test", nil, 32)
	if err != nil || !bytes.Equal(ekm, ekm2) {
		t.Fatalf("the attached connection has another TLS session (%v)", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, socketapi.ErrHandedOff) {
		t.Errorf("old handle Write: %v", err)
	}

	// And once more, without a read in progress.
	desc, err := c2.Detach()
	if err != nil {
		t.Fatal(err)
	}
	c3, err := d.Attach(desc)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	echoRoundTrip(t, c3, "third owner, same session")
}

// TestAttachRace: many goroutines attach one descriptor; exactly one wins.
func TestAttachRace(t *testing.T) {
	srv := startEchoTCP(t)
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: &socketapi.Registry{}}
	c := dialConn(t, d, "tcp", srv.addr())
	desc, err := c.Detach()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []*socketapi.Conn
	stale := 0
	for range 8 {
		wg.Go(func() {
			c, err := d.Attach(desc)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, c)
			case errors.Is(err, socketapi.ErrStaleDescriptor):
				stale++
			default:
				t.Errorf("Attach: %v", err)
			}
		})
	}
	wg.Wait()
	if len(won) != 1 || stale != 7 {
		t.Fatalf("%d attached, %d stale; want 1 and 7", len(won), stale)
	}
	defer won[0].Close()
	echoRoundTrip(t, won[0], "winner")
}

// TestHandOffUDP hands off a connected UDP socket.
func TestHandOffUDP(t *testing.T) {
	srv := startEchoUDP(t)
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: &socketapi.Registry{}}
	c := dialConn(t, d, "udp", srv.addrPort().String())
	desc, err := c.Detach()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := d.Attach(desc)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.Write([]byte("dgram")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 32)
	n, err := c2.Read(buf)
	if err != nil || string(buf[:n]) != "re:dgram" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
}

// pipeRoundTrip writes msg on c and reads it at peer, the far end of c's
// pipe: c is still usable.
func pipeRoundTrip(t *testing.T, c *socketapi.Conn, peer net.Conn, msg string) {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		b := make([]byte, len(msg))
		n, _ := io.ReadFull(peer, b)
		got <- string(b[:n])
	}()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	if s := <-got; s != msg {
		t.Fatalf("far end read %q, want %q", s, msg)
	}
}

// wantClosedRegistry checks that err is the refusal of a closed Registry:
// a *socketapi.Error for op that matches ErrNoRegistry and says why.
func wantClosedRegistry(t *testing.T, err error, op string) {
	t.Helper()
	wantHandOffErr(t, err, op, socketapi.ErrNoRegistry)
	if !strings.Contains(err.Error(), "registry closed") {
		t.Errorf("error %q does not say the registry was closed", err)
	}
}

// TestRegistryClose: Close drains a Registry (issue 21, item 6): every
// socket parked in it is closed, and from then on nothing is detached into
// it, attached from it or looked up in it. A connection that could not be
// detached stays usable, and one attached before stays open.
func TestRegistryClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seam := &pipeSeam{}
		defer seam.closeAll()
		reg := &socketapi.Registry{}
		d := &socketapi.Dialer{Dialer: sockets.Dialer{Connect: seam.connect}, Registry: reg, AppID: "app-a"}
		var cs []*socketapi.Conn
		for range 4 {
			c, err := dial(d, t.Context(), "tcp", publicDest)
			if err != nil {
				t.Fatal(err)
			}
			cs = append(cs, c)
		}
		var descs []string
		for _, c := range cs[:3] {
			desc, err := c.Detach()
			if err != nil {
				t.Fatal(err)
			}
			descs = append(descs, desc)
		}
		attached, err := d.Attach(descs[2])
		if err != nil {
			t.Fatal(err)
		}
		defer attached.Close()
		start := time.Now()
		if err := reg.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if n := reg.Len(); n != 0 {
			t.Errorf("Len() = %d after Close, want 0", n)
		}
		assertPeerClosed(t, seam.peer(0))
		assertPeerClosed(t, seam.peer(1))
		if waited := time.Since(start); waited != 0 {
			t.Fatalf("parked sockets closed %v after Close (by their idle clock), want at once", waited)
		}
		for _, desc := range descs {
			_, err := d.Attach(desc)
			wantClosedRegistry(t, err, "attach")
			_, err = d.AttachPacket(desc)
			wantClosedRegistry(t, err, "attach")
			_, err = reg.IdleLeft(desc)
			wantClosedRegistry(t, err, "idle left")
		}
		_, err = cs[3].Detach()
		wantClosedRegistry(t, err, "detach")
		pipeRoundTrip(t, cs[3], seam.peer(3), "still mine")
		pipeRoundTrip(t, attached, seam.peer(2), "attached before")
		if err := reg.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		var nilReg *socketapi.Registry
		if err := nilReg.Close(); err != nil {
			t.Errorf("Close of a nil Registry: %v", err)
		}
	})
}

// TestRegistryCloseRace: Detach racing Close either parks the socket
// before Close, which then closes it, or fails and leaves the connection
// usable; never both, never neither.
func TestRegistryCloseRace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seam := &pipeSeam{}
		defer seam.closeAll()
		reg := &socketapi.Registry{}
		d := &socketapi.Dialer{Dialer: sockets.Dialer{Connect: seam.connect}, Registry: reg}
		const n = 32
		cs := make([]*socketapi.Conn, n)
		for i := range cs {
			c, err := dial(d, t.Context(), "tcp", publicDest)
			if err != nil {
				t.Fatal(err)
			}
			cs[i] = c
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i, c := range cs {
			wg.Go(func() { _, errs[i] = c.Detach() })
		}
		wg.Go(func() { reg.Close() })
		wg.Wait()
		start := time.Now()
		for i, c := range cs {
			if errs[i] == nil {
				assertPeerClosed(t, seam.peer(i))
				if waited := time.Since(start); waited != 0 {
					t.Fatalf("socket %d closed %v after Close (by its idle clock), want at once", i, waited)
				}
				continue
			}
			wantClosedRegistry(t, errs[i], "detach")
			pipeRoundTrip(t, c, seam.peer(i), "still mine")
			c.Close()
		}
	})
}

// TestRegistryIdleLeft: IdleLeft reads how long a parked socket may stay
// unused before it is reclaimed, without using up its descriptor (issue
// 21, item 6).
func TestRegistryIdleLeft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seam := &pipeSeam{}
		defer seam.closeAll()
		reg := &socketapi.Registry{}
		d := &socketapi.Dialer{Dialer: sockets.Dialer{Connect: seam.connect}, Registry: reg, IdleTimeout: time.Minute}
		c1, err := dial(d, t.Context(), "tcp", publicDest)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := dial(d, t.Context(), "tcp", publicDest)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Second) // Detach restarts the clock
		desc1, err := c1.Detach()
		if err != nil {
			t.Fatal(err)
		}
		desc2, err := c2.Detach()
		if err != nil {
			t.Fatal(err)
		}
		if left, err := reg.IdleLeft(desc1); err != nil || left != time.Minute {
			t.Errorf("IdleLeft just after Detach = %v, %v; want %v", left, err, time.Minute)
		}
		time.Sleep(20 * time.Second)
		if left, err := reg.IdleLeft(desc1); err != nil || left != 40*time.Second {
			t.Errorf("IdleLeft 20s later = %v, %v; want 40s", left, err)
		}
		a1, err := d.Attach(desc1)
		if err != nil {
			t.Fatalf("Attach after IdleLeft: %v", err)
		}
		defer a1.Close()
		_, err = reg.IdleLeft(desc1)
		wantHandOffErr(t, err, "idle left", socketapi.ErrStaleDescriptor)

		time.Sleep(40 * time.Second)
		synctest.Wait()
		// desc2's minute is up: reclaimed.
		_, err = reg.IdleLeft(desc2)
		wantHandOffErr(t, err, "idle left", socketapi.ErrStaleDescriptor)

		_, err = reg.IdleLeft("garbage")
		wantHandOffErr(t, err, "idle left", socketapi.ErrBadDescriptor)
		_, err = (&socketapi.Registry{}).IdleLeft(desc1)
		wantHandOffErr(t, err, "idle left", socketapi.ErrBadDescriptor)
		_, err = (&socketapi.Registry{Key: []byte("short")}).IdleLeft(desc1)
		wantHandOffErr(t, err, "idle left", socketapi.ErrWeakKey)
		var nilReg *socketapi.Registry
		_, err = nilReg.IdleLeft(desc1)
		wantHandOffErr(t, err, "idle left", socketapi.ErrNoRegistry)
	})
}
