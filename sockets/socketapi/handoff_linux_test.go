//go:build linux

package socketapi_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketapi"
	"go.uber.org/goleak"
)

// Hand-off between processes, with real processes: the test binary runs
// itself again (os.Args[0], -test.run=^TestHandOffOtherProcess$) with
// senderEnv set to what the other process is to do, and reads back what it
// did from a file. Usually the other process sends and this one receives,
// and the other process has exited before this one attaches anything.
// Every server is on 127.0.0.1.

const senderEnv = "OUTBOUND_HANDOFF_PROCESS"

// procSpec is what the other process does.
type procSpec struct {
	// Mode is "tcp" (dial Count connections to Server, say "before the
	// move" on each, hand each off to Inbox), "udp" (an unconnected and a
	// connected UDP socket to Server, each hand off), "tls" (one
	// connection upgraded to TLS, which must be refused), "vanish" (one
	// connection, and exit as soon as the receiver replies), or "receive"
	// (serve a Registry on Inbox until stdin closes).
	Mode   string
	Server string
	Inbox  string
	App    string
	Count  int
	Age    time.Duration // idle time added to each connection before the move
	CAPEM  []byte        // the authority of the TLS server
	Result string        // where to write the procResult
}

// procResult is what the other process did.
type procResult struct {
	Descs    []string   // one per socket handed off ("" when it failed)
	Errs     [][]string // per socket, the hand-off sentinels its error matched
	Texts    []string   // per socket, its error's text
	NewFDs   []string   // descriptors open at the end that were not at the start
	Received [][]string // "receive": the sentinels of each error OnReceiveError got
}

var handOffSentinels = map[string]error{
	"ErrBadDescriptor":     socketapi.ErrBadDescriptor,
	"ErrWrongApp":          socketapi.ErrWrongApp,
	"ErrStaleDescriptor":   socketapi.ErrStaleDescriptor,
	"ErrExpiredDescriptor": socketapi.ErrExpiredDescriptor,
	"ErrNoRegistry":        socketapi.ErrNoRegistry,
	"ErrWrongKind":         socketapi.ErrWrongKind,
	"ErrTLSNotMovable":     socketapi.ErrTLSNotMovable,
	"ErrForeignPeer":       socketapi.ErrForeignPeer,
	"ErrNoAccess":          socketapi.ErrNoAccess,
	"ErrPeerMismatch":      socketapi.ErrPeerMismatch,
	"ErrRegistryFull":      socketapi.ErrRegistryFull,
	"ErrSenderGone":        socketapi.ErrSenderGone,
	"ErrReceiverGone":      socketapi.ErrReceiverGone,
	"ErrBadTransfer":       socketapi.ErrBadTransfer,
}

// sentinels returns the names of the hand-off sentinels err matches,
// sorted, and "Error" first when it is a *socketapi.Error.
func sentinels(err error) []string {
	var out []string
	for name, s := range handOffSentinels {
		if errors.Is(err, s) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	if _, ok := errors.AsType[*socketapi.Error](err); ok {
		out = append([]string{"Error"}, out...)
	}
	return out
}

// TestHandOffOtherProcess is the other process of the tests below, which
// start it; run on its own it has nothing to do.
func TestHandOffOtherProcess(t *testing.T) {
	raw := os.Getenv(senderEnv)
	if raw == "" {
		t.Skip("the other process of the hand-off tests between processes, which start it")
	}
	var spec procSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	warmUpNetwork(t)
	before := openFDs(t)
	var res procResult
	switch spec.Mode {
	case "tcp", "vanish", "tls":
		res = sendTCP(t, ctx, spec)
	case "udp":
		res = sendUDP(t, ctx, spec)
	case "receive":
		res = receiveUntilStdinCloses(t, spec)
	default:
		t.Fatalf("unknown mode %q", spec.Mode)
	}
	res.NewFDs = newFDs(before, openFDs(t))
	writeResult(t, spec.Result, res)
}

func writeResult(t *testing.T, path string, res procResult) {
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// sendTCP dials spec.Count connections (one for "vanish" and "tls"), says
// "before the move" on each, and hands each off; a connection that could
// not be handed off says "still mine" and is closed.
func sendTCP(t *testing.T, ctx context.Context, spec procSpec) procResult {
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, AppID: spec.App}
	var res procResult
	for range max(spec.Count, 1) {
		c := dialConn(t, d, "tcp", spec.Server)
		if spec.Mode == "tls" {
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(spec.CAPEM)
			if err := c.StartTLS(ctx, &tls.Config{RootCAs: pool}); err != nil {
				t.Fatal(err)
			}
		}
		echoRoundTrip(t, c, "before the move")
		socketapi.AgeConn(c, spec.Age)
		if spec.Mode == "vanish" {
			socketapi.SetHandOffHookReplied(func(desc string) {
				writeResult(t, spec.Result, procResult{Descs: []string{desc}})
				os.Exit(vanishExit)
			})
		}
		desc, err := c.DetachTo(ctx, spec.Inbox)
		res.Descs = append(res.Descs, desc)
		res.Errs = append(res.Errs, sentinels(err))
		res.Texts = append(res.Texts, errString(err))
		if err != nil {
			echoRoundTrip(t, c, "still mine")
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := c.Write([]byte("x")); !errors.Is(err, socketapi.ErrHandedOff) {
			t.Fatalf("write after DetachTo: %v, want ErrHandedOff", err)
		}
	}
	return res
}

// vanishExit is the exit status of a sender that went away half-way.
const vanishExit = 7

// sendUDP says "packet before the move" from an unconnected socket and
// "conn before the move" from a connected one, and hands both off.
func sendUDP(t *testing.T, ctx context.Context, spec procSpec) procResult {
	// This process's policy allows all of 127.0.0.0/8; the receiver's
	// allows less.
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: sockets.DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.0/8"))}, AppID: spec.App}
	srv := netip.MustParseAddrPort(spec.Server)
	p, err := d.ListenPacket(ctx, "udp4", "")
	if err != nil {
		t.Fatal(err)
	}
	udpRoundTrip(t, p, srv, "packet before the move")
	c := dialConn(t, d, "udp", spec.Server)
	udpEcho(t, c, "conn before the move")
	var res procResult
	for _, detach := range []func() (string, error){
		func() (string, error) { return p.DetachTo(ctx, spec.Inbox) },
		func() (string, error) { return c.DetachTo(ctx, spec.Inbox) },
	} {
		desc, err := detach()
		if err != nil {
			t.Fatalf("DetachTo: %v", err)
		}
		res.Descs = append(res.Descs, desc)
	}
	return res
}

// receiveUntilStdinCloses serves a Registry on spec.Inbox, says "ready" on
// stdout, and stops when stdin closes.
func receiveUntilStdinCloses(t *testing.T, spec procSpec) procResult {
	var mu sync.Mutex
	var res procResult
	reg := &socketapi.Registry{OnReceiveError: func(err error) {
		mu.Lock()
		res.Received = append(res.Received, sentinels(err))
		mu.Unlock()
		os.Stdout.WriteString("receive error\n")
	}}
	if err := reg.Listen(spec.Inbox); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("ready\n")
	io.Copy(io.Discard, os.Stdin)
	if n := reg.Len(); n != 0 {
		t.Errorf("%d sockets received, want none", n)
	}
	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return res
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// udpRoundTrip sends msg to dst and reads the reply, "re:" and msg.
func udpRoundTrip(t *testing.T, p *socketapi.PacketConn, dst netip.AddrPort, msg string) {
	t.Helper()
	if _, err := p.WriteTo([]byte(msg), net.UDPAddrFromAddrPort(dst)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	n, src, err := readFrom(t, p, buf)
	if err != nil || src != dst || string(buf[:n]) != "re:"+msg {
		t.Fatalf("reply %q from %v, %v; want %q from %v", buf[:n], src, err, "re:"+msg, dst)
	}
}

// udpEcho sends msg on a connected UDP Conn and reads the reply.
func udpEcho(t *testing.T, c *socketapi.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "re:"+msg {
		t.Fatalf("reply %q, %v; want %q", buf[:n], err, "re:"+msg)
	}
}

// runProcess runs the other process as spec says and returns what it did.
// It fails the test unless the process exits with status want.
func runProcess(t *testing.T, spec procSpec, want int) procResult {
	t.Helper()
	cmd, spec := otherProcess(t, spec)
	out, err := cmd.CombinedOutput()
	status := 0
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		status = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if status != want {
		t.Fatalf("other process: exit status %d, want %d:\n%s", status, want, out)
	}
	return readResult(t, spec.Result)
}

// otherProcess returns the command that runs the other process, with its
// result file set.
func otherProcess(t *testing.T, spec procSpec) (*exec.Cmd, procSpec) {
	t.Helper()
	if spec.Result == "" {
		spec.Result = filepath.Join(t.TempDir(), "result.json")
	}
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHandOffOtherProcess$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), senderEnv+"="+string(b))
	return cmd, spec
}

func readResult(t *testing.T, path string) procResult {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the other process left no result: %v", err)
	}
	var res procResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// warmUpNetwork makes the runtime open what it opens on first use of the
// network (the poller's descriptors), so that they are not counted as the
// test's.
func warmUpNetwork(t *testing.T) {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// openFDs returns this process's open descriptors and what each refers to,
// but for the one reading the list.
func openFDs(t testing.TB) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	fds := make(map[string]string)
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the directory's own descriptor, closed by now
		}
		fds[e.Name()] = target
	}
	return fds
}

// newFDs returns the descriptors in after that were not in before, as
// "number -> target".
func newFDs(before, after map[string]string) []string {
	var out []string
	for fd, target := range after {
		if strings.HasPrefix(target, "/proc/") && strings.HasSuffix(target, "/fd") {
			continue // the listing's own
		}
		if before[fd] != target {
			out = append(out, fd+" -> "+target)
		}
	}
	slices.Sort(out)
	return out
}

// checkHygiene makes the test fail if, once it and its cleanups are done,
// this process has a descriptor or a goroutine it did not have before.
// Call it first, so that its cleanup runs last.
func checkHygiene(t *testing.T) {
	t.Helper()
	warmUpNetwork(t)
	ignore := goleak.IgnoreCurrent()
	before := openFDs(t)
	t.Cleanup(func() {
		goleak.VerifyNone(t, ignore)
		if leaked := newFDs(before, openFDs(t)); len(leaked) > 0 {
			t.Errorf("descriptors leaked in the receiving process: %q", leaked)
		}
	})
}

// recorder is a TCP server on loopback that echoes what it reads, as plain
// bytes or, with TLS set, over TLS, and records the bytes of each
// connection.
type recorder struct {
	ln  net.Listener
	tls *tls.Config
	wg  sync.WaitGroup
	eof chan int // the index of each connection the client closed

	mu    sync.Mutex
	conns []net.Conn
	data  []*strings.Builder
}

func startRecorder(t *testing.T, cfg *tls.Config) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{ln: ln, tls: cfg, eof: make(chan int, 16)}
	r.wg.Add(1)
	go r.serve()
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) addr() string { return r.ln.Addr().String() }

func (r *recorder) serve() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		if r.tls != nil {
			c = tls.Server(c, r.tls)
		}
		r.mu.Lock()
		i := len(r.conns)
		r.conns = append(r.conns, c)
		b := new(strings.Builder)
		r.data = append(r.data, b)
		r.mu.Unlock()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			buf := make([]byte, 1024)
			for {
				n, err := c.Read(buf)
				r.mu.Lock()
				b.Write(buf[:n])
				r.mu.Unlock()
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			c.Close()
			r.eof <- i
		}()
	}
}

// sessions returns the bytes of each connection, in accept order.
func (r *recorder) sessions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, b := range r.data {
		out = append(out, b.String())
	}
	return out
}

// waitEOF waits until the client closed each of the connections is, in
// any order.
func (r *recorder) waitEOF(t *testing.T, is ...int) {
	t.Helper()
	want := make(map[int]bool)
	for _, i := range is {
		want[i] = true
	}
	limit := time.After(giveUp)
	for len(want) > 0 {
		select {
		case j := <-r.eof:
			delete(want, j)
		case <-limit:
			t.Fatalf("connections %v still open after %v", slices.Sorted(maps.Keys(want)), giveUp)
		}
	}
}

// giveUp is how long a test waits for what must happen at once, before it
// fails rather than hang: a bound for failures, never reached by a test
// that passes.
const giveUp = time.Minute

// receiveErr returns the next error from errs, given to OnReceiveError.
func receiveErr(t *testing.T, errs <-chan error) error {
	t.Helper()
	select {
	case err := <-errs:
		return err
	case <-time.After(giveUp):
		t.Fatalf("no receive error after %v", giveUp)
		return nil
	}
}

func (r *recorder) Close() {
	r.ln.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// udpRecorder is a UDP server on loopback that answers each datagram with
// "re:" and its payload, and records its source and payload.
type udpRecorder struct {
	pc   *net.UDPConn
	done chan struct{}

	mu  sync.Mutex
	got map[netip.AddrPort][]string
}

func startUDPRecorder(t *testing.T) *udpRecorder {
	t.Helper()
	pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	r := &udpRecorder{pc: pc, done: make(chan struct{}), got: make(map[netip.AddrPort][]string)}
	go func() {
		defer close(r.done)
		buf := make([]byte, 1500)
		for {
			n, src, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.got[src] = append(r.got[src], string(buf[:n]))
			r.mu.Unlock()
			pc.WriteToUDPAddrPort(append([]byte("re:"), buf[:n]...), src)
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-r.done
	})
	return r
}

func (r *udpRecorder) addrPort() netip.AddrPort {
	return r.pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// sources returns the datagrams received, per source.
func (r *udpRecorder) sources() map[netip.AddrPort][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[netip.AddrPort][]string)
	for k, v := range r.got {
		out[k] = slices.Clone(v)
	}
	return out
}

// inbox is the Unix socket a Registry serves on.
type inbox struct {
	path string
}

// listen serves reg on a Unix socket in a new directory and returns it;
// reg is closed with the test.
func listen(t *testing.T, reg *socketapi.Registry) inbox {
	t.Helper()
	path := filepath.Join(t.TempDir(), "registry.sock")
	if err := reg.Listen(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return inbox{path}
}

// TestHandOffProcessTCP: a connection made in another process, which
// exits, goes on in this one: the server sees one connection, carrying
// what was said before the move and after it.
func TestHandOffProcessTCP(t *testing.T) {
	checkHygiene(t)
	srv := startRecorder(t, nil)
	reg := &socketapi.Registry{}
	in := listen(t, reg)

	res := runProcess(t, procSpec{Mode: "tcp", Server: srv.addr(), Inbox: in.path, App: "app-a"}, 0)
	// The sender has exited; the socket lives on in this process alone.
	if len(res.NewFDs) > 0 {
		t.Errorf("descriptors leaked in the sending process: %q", res.NewFDs)
	}
	if len(res.Descs) != 1 || res.Descs[0] == "" {
		t.Fatalf("sender: %+v", res)
	}
	if reg.Len() != 1 {
		t.Errorf("Len() = %d, want the received socket", reg.Len())
	}
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: reg, AppID: "app-a"}
	c, err := d.Attach(res.Descs[0])
	if err != nil {
		t.Fatal(err)
	}
	echoRoundTrip(t, c, "after the move")
	const both int64 = int64(len("before the move") + len("after the move"))
	if u := c.Usage(); u != (socketapi.Usage{Sent: both, Received: both}) {
		t.Errorf("Usage() = %+v, want %d bytes each way, before and after the move", u, both)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	srv.waitEOF(t, 0)
	if got := srv.sessions(); !slices.Equal(got, []string{"before the moveafter the move"}) {
		t.Errorf("server sessions %q, want one connection carrying both", got)
	}
	if reg.Len() != 0 {
		t.Errorf("Len() = %d at the end", reg.Len())
	}
	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(in.path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Close: %v, want it removed", err)
	}
}

// TestHandOffProcessUDP: an unconnected and a connected UDP socket go on
// in this process from the same port; the unconnected one's destinations
// are checked by this process's policy, which is narrower than the
// sender's.
func TestHandOffProcessUDP(t *testing.T) {
	checkHygiene(t)
	srv := startUDPRecorder(t)
	reg := &socketapi.Registry{}
	in := listen(t, reg)
	res := runProcess(t, procSpec{Mode: "udp", Server: srv.addrPort().String(), Inbox: in.path, App: "app-u"}, 0)
	if len(res.NewFDs) > 0 {
		t.Errorf("descriptors leaked in the sending process: %q", res.NewFDs)
	}
	var (
		mu     sync.Mutex
		routed []netip.AddrPort
	)
	d := &socketapi.Dialer{
		Dialer: sockets.Dialer{
			Policy: loopbackPolicy(), // 127.0.0.1 only
		},
		Registry: reg,
		AppID:    "app-u",
		RoutePacket: func(dst netip.AddrPort) netip.AddrPort {
			mu.Lock()
			routed = append(routed, dst)
			mu.Unlock()
			return dst
		},
	}
	if _, err := d.Attach(res.Descs[0]); !errors.Is(err, socketapi.ErrWrongKind) {
		t.Errorf("Attach of a packet socket: %v, want ErrWrongKind", err)
	}
	p, err := d.AttachPacket(res.Descs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	udpRoundTrip(t, p, srv.addrPort(), "packet after the move")
	// The sender's policy allowed 127.0.0.2; this process's does not.
	other := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), srv.addrPort().Port())
	_, err = p.WriteTo([]byte("refused"), net.UDPAddrFromAddrPort(other))
	if de, ok := errors.AsType[*sockets.DeniedError](err); !ok || de.Addr != other {
		t.Errorf("datagram to %v: %v, want a *DeniedError for it", other, err)
	}
	mu.Lock()
	if !slices.Equal(routed, []netip.AddrPort{srv.addrPort()}) {
		t.Errorf("datagrams routed to %v, want only the server: the refused one was never sent", routed)
	}
	mu.Unlock()

	c, err := d.Attach(res.Descs[1])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	udpEcho(t, c, "conn after the move")

	got := srv.sources()
	if len(got) != 2 {
		t.Fatalf("datagrams by source: %q, want two sources", got)
	}
	for src, msgs := range got {
		if !slices.Equal(msgs, []string{"packet before the move", "packet after the move"}) &&
			!slices.Equal(msgs, []string{"conn before the move", "conn after the move"}) {
			t.Errorf("from %v: %q, want one socket's datagrams from before and after the move", src, msgs)
		}
	}
	if want := (socketapi.Usage{Sent: int64(len("packet before the move") + len("packet after the move")), Received: int64(len("re:packet before the move") + len("re:packet after the move"))}); p.Usage() != want {
		t.Errorf("packet socket Usage() = %+v, want %+v", p.Usage(), want)
	}
}

// TestHandOffProcessDescriptors: the descriptor of a socket from another
// process works for its application only, once.
func TestHandOffProcessDescriptors(t *testing.T) {
	checkHygiene(t)
	srv := startRecorder(t, nil)
	reg := &socketapi.Registry{}
	in := listen(t, reg)
	res := runProcess(t, procSpec{Mode: "tcp", Server: srv.addr(), Inbox: in.path, App: "app-a"}, 0)
	desc := res.Descs[0]

	other := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: reg, AppID: "app-b"}
	_, err := other.Attach(desc)
	he := wantHandOffErr(t, err, "attach", socketapi.ErrWrongApp)
	if he.App != "app-a" || he.AttachApp != "app-b" {
		t.Errorf("Error = %+v", he)
	}
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: reg, AppID: "app-a"}
	_, err = d.AttachPacket(desc)
	wantHandOffErr(t, err, "attach", socketapi.ErrWrongKind)
	// This process's policy is asked about the peer, 127.0.0.1: the
	// default one refuses it, and the socket stays parked.
	_, err = (&socketapi.Dialer{Registry: reg, AppID: "app-a"}).Attach(desc)
	if !errors.Is(err, sockets.ErrDenied) {
		t.Errorf("Attach under the default policy: %v, want a refusal", err)
	}
	if reg.Len() != 1 {
		t.Fatalf("Len() = %d after the refusals, want the socket still parked", reg.Len())
	}
	c, err := d.Attach(desc)
	if err != nil {
		t.Fatal(err)
	}
	echoRoundTrip(t, c, "mine")
	// A replay.
	_, err = d.Attach(desc)
	wantHandOffErr(t, err, "attach", socketapi.ErrStaleDescriptor)
	if errors.Is(err, socketapi.ErrExpiredDescriptor) {
		t.Errorf("replay: %v, matches ErrExpiredDescriptor", err)
	}
	c.Close()
	_, err = d.Attach(desc)
	wantHandOffErr(t, err, "attach", socketapi.ErrStaleDescriptor)
	if got := srv.sessions(); len(got) != 1 {
		t.Errorf("server sessions %q, want one", got)
	}
}

// TestHandOffProcessIdleClock: the idle time a socket had travels with it,
// and its descriptor expires when that time runs out, on the receiving
// Registry's clock.
func TestHandOffProcessIdleClock(t *testing.T) {
	checkHygiene(t)
	srv := startRecorder(t, nil)
	var offset atomic.Int64
	reg := &socketapi.Registry{}
	socketapi.SetRegistryClock(reg, func() time.Time { return time.Now().Add(time.Duration(offset.Load())) })
	in := listen(t, reg)
	const age = 7 * time.Minute
	start := time.Now()
	res := runProcess(t, procSpec{Mode: "tcp", Count: 2, Age: age, Server: srv.addr(), Inbox: in.path, App: "app-a"}, 0)
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: reg, AppID: "app-a"}

	// The receiver can read the time left before it attaches: the idle
	// limit less the age and the time since.
	for _, desc := range res.Descs {
		left, err := reg.IdleLeft(desc)
		if most, least := socketapi.DefaultIdleTimeout-age, socketapi.DefaultIdleTimeout-age-time.Since(start); err != nil || left > most || left < least {
			t.Errorf("IdleLeft = %v, %v; want between %v and %v", left, err, least, most)
		}
	}
	c, err := d.Attach(res.Descs[0])
	if err != nil {
		t.Fatal(err)
	}
	idle, limit := socketapi.IdleOf(c)
	// Unused since before the age was added: at least age, at most age
	// and the time this test has taken.
	if most := age + time.Since(start); idle < age || idle > most || limit != socketapi.DefaultIdleTimeout {
		t.Errorf("attached: idle %v of %v, want between %v and %v of %v", idle, limit, age, most, socketapi.DefaultIdleTimeout)
	}
	echoRoundTrip(t, c, "in time")
	if idle, _ := socketapi.IdleOf(c); idle >= age {
		t.Errorf("idle %v after a round trip, want the clock restarted", idle)
	}
	c.Close()

	// Three minutes on, the other socket's ten minutes are up: had the
	// move restarted its clock, it would have seven left.
	offset.Store(int64(socketapi.DefaultIdleTimeout - age))
	_, err = reg.IdleLeft(res.Descs[1])
	wantHandOffErr(t, err, "idle left", socketapi.ErrExpiredDescriptor)
	_, err = d.Attach(res.Descs[1])
	wantHandOffErr(t, err, "attach", socketapi.ErrExpiredDescriptor)
	wantHandOffErr(t, err, "attach", socketapi.ErrStaleDescriptor)
	srv.waitEOF(t, 1) // the expired socket was closed
	_, err = d.Attach(res.Descs[1])
	wantHandOffErr(t, err, "attach", socketapi.ErrExpiredDescriptor)
	if reg.Len() != 0 {
		t.Errorf("Len() = %d, want none", reg.Len())
	}
}

// TestHandOffProcessTLS: a connection upgraded to TLS is refused, and stays
// the sender's.
func TestHandOffProcessTLS(t *testing.T) {
	checkHygiene(t)
	ca := lab.NewCA("hand-off CA")
	srv := startRecorder(t, &tls.Config{Certificates: []tls.Certificate{ca.Issue("127.0.0.1")}})
	var received atomic.Int32
	reg := &socketapi.Registry{OnReceiveError: func(error) { received.Add(1) }}
	in := listen(t, reg)
	res := runProcess(t, procSpec{Mode: "tls", Server: srv.addr(), Inbox: in.path, App: "mail", CAPEM: ca.PEM()}, 0)
	if want := []string{"Error", "ErrTLSNotMovable"}; len(res.Errs) != 1 || !slices.Equal(res.Errs[0], want) {
		t.Fatalf("DetachTo of a TLS connection failed with %q (%q), want %q", res.Texts, res.Errs, want)
	}
	if len(res.NewFDs) > 0 {
		t.Errorf("descriptors leaked in the sending process: %q", res.NewFDs)
	}
	srv.waitEOF(t, 0)
	if got := srv.sessions(); !slices.Equal(got, []string{"before the movestill mine"}) {
		t.Errorf("server sessions %q, want the sender's one connection, still working", got)
	}
	if reg.Len() != 0 || received.Load() != 0 {
		t.Errorf("the receiver heard of it: Len() = %d, %d receive errors", reg.Len(), received.Load())
	}
}

// TestHandOffProcessSenderGone: a sender that exits after the receiver
// replied, before it confirmed, leaves nothing behind: the receiver closes
// the socket, reports ErrSenderGone, and the descriptor is stale.
func TestHandOffProcessSenderGone(t *testing.T) {
	checkHygiene(t)
	srv := startRecorder(t, nil)
	errs := make(chan error, 1)
	reg := &socketapi.Registry{OnReceiveError: func(err error) { errs <- err }}
	in := listen(t, reg)
	res := runProcess(t, procSpec{Mode: "vanish", Server: srv.addr(), Inbox: in.path, App: "app-a"}, vanishExit)
	he := wantHandOffErr(t, receiveErr(t, errs), "receive", socketapi.ErrSenderGone)
	if he.App != "app-a" || he.Path != in.path {
		t.Errorf("Error = %+v", he)
	}
	srv.waitEOF(t, 0) // both copies of the socket are closed
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: reg, AppID: "app-a"}
	_, err := d.Attach(res.Descs[0])
	wantHandOffErr(t, err, "attach", socketapi.ErrStaleDescriptor)
	if reg.Len() != 0 {
		t.Errorf("Len() = %d, want none", reg.Len())
	}
}

// TestHandOffProcessForeignUser: processes of two users cannot hand
// sockets to each other. The registry's socket file keeps another user
// out, and where it cannot (root connects anyway), both sides check the
// other's user ID.
func TestHandOffProcessForeignUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the other process as another user")
	}
	checkHygiene(t)
	const nobody = 65534
	// The other process runs a copy of the test binary in a directory
	// that user can read, and writes its result there.
	shared := t.TempDir()
	for _, dir := range []string{filepath.Dir(shared), shared} {
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(shared, "sockets.test")
	exe, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	asNobody := func(spec procSpec) *exec.Cmd {
		cmd, _ := otherProcess(t, spec)
		cmd.Path, cmd.Args[0] = bin, bin
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		return cmd
	}
	srv := startRecorder(t, nil)

	t.Run("sender", func(t *testing.T) {
		// The socket file, mode 0600 and root's, refuses the sender.
		reg := &socketapi.Registry{}
		in := listen(t, reg)
		for _, dir := range []string{filepath.Dir(filepath.Dir(in.path)), filepath.Dir(in.path)} {
			os.Chmod(dir, 0o755)
		}
		if fi, err := os.Stat(in.path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("socket file: %v, %v; want mode 0600", fi.Mode(), err)
		}
		spec := procSpec{Mode: "tcp", Server: srv.addr(), Inbox: in.path, App: "app-a", Result: filepath.Join(shared, "sender.json")}
		out, err := asNobody(spec).CombinedOutput()
		if err != nil {
			t.Fatalf("other process: %v\n%s", err, out)
		}
		res := readResult(t, spec.Result)
		// The system refused the connect: ErrNoAccess, not ErrForeignPeer,
		// which says a peer's user was read and found foreign.
		if want := []string{"Error", "ErrNoAccess"}; len(res.Errs) != 1 || !slices.Equal(res.Errs[0], want) {
			t.Errorf("DetachTo as another user: %q (%q), want %q", res.Texts, res.Errs, want)
		}
		if reg.Len() != 0 {
			t.Errorf("Len() = %d, want none", reg.Len())
		}
	})

	t.Run("receiver", func(t *testing.T) {
		// The other user's registry: root can connect to its socket file,
		// but each side refuses the other.
		dir := filepath.Join(shared, "inbox")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		spec := procSpec{Mode: "receive", Inbox: filepath.Join(dir, "registry.sock"), Result: filepath.Join(shared, "receiver.json")}
		cmd := asNobody(spec)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(stdout)
		if !lines.Scan() || lines.Text() != "ready" {
			stdin.Close()
			cmd.Wait()
			t.Fatalf("receiver did not start: %q\n%s", lines.Text(), stderr.String())
		}
		d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, AppID: "app-a"}
		c := dialConn(t, d, "tcp", srv.addr())
		_, err = c.DetachTo(t.Context(), spec.Inbox)
		wantHandOffErr(t, err, "detach", socketapi.ErrForeignPeer)
		echoRoundTrip(t, c, "still mine")
		c.Close()
		if !lines.Scan() || lines.Text() != "receive error" {
			t.Errorf("receiver said %q, want %q", lines.Text(), "receive error")
		}
		stdin.Close()
		io.Copy(io.Discard, stdout)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("receiver: %v\n%s", err, stderr.String())
		}
		res := readResult(t, spec.Result)
		if want := []string{"Error", "ErrForeignPeer"}; len(res.Received) != 1 || !slices.Equal(res.Received[0], want) {
			t.Errorf("receiver's errors %q, want one matching %q", res.Received, want)
		}
		if len(res.NewFDs) > 0 {
			t.Errorf("descriptors leaked in the receiving process: %q", res.NewFDs)
		}
	})
}

// Within one process the path through the kernel is the same; the tests
// below use it for the failures that need no second process.

// TestDetachToNoRegistry: nothing at the path, a file that is not a
// socket, and a socket file nobody listens on.
func TestDetachToNoRegistry(t *testing.T) {
	checkHygiene(t)
	srv := startRecorder(t, nil)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	dead := filepath.Join(dir, "dead.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: dead, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()

	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, AppID: "app-a"}
	c := dialConn(t, d, "tcp", srv.addr())
	for _, path := range []string{filepath.Join(dir, "missing.sock"), file, dead} {
		_, err := c.DetachTo(t.Context(), path)
		he := wantHandOffErr(t, err, "detach", socketapi.ErrNoRegistry)
		if he.Path != path || !strings.Contains(err.Error(), strconv.Quote(path)) {
			t.Errorf("error %q does not name %s", err, path)
		}
		echoRoundTrip(t, c, "still mine")
	}
}

// TestDetachToRegistryFull: a Registry takes in at most MaxReceived
// sockets; the sender of one more keeps its connection.
func TestDetachToRegistryFull(t *testing.T) {
	checkHygiene(t)
	srv := startRecorder(t, nil)
	errs := make(chan error, 4)
	reg := &socketapi.Registry{MaxReceived: 1, OnReceiveError: func(err error) { errs <- err }}
	in := listen(t, reg)
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: reg, AppID: "app-a"}
	c1 := dialConn(t, d, "tcp", srv.addr())
	c2 := dialConn(t, d, "tcp", srv.addr())
	desc1, err := c1.DetachTo(t.Context(), in.path)
	if err != nil {
		t.Fatal(err)
	}
	// A socket detached within the process does not count.
	c3 := dialConn(t, d, "tcp", srv.addr())
	desc3, err := c3.Detach()
	if err != nil {
		t.Fatal(err)
	}
	_, err = c2.DetachTo(t.Context(), in.path)
	wantHandOffErr(t, err, "detach", socketapi.ErrRegistryFull)
	wantHandOffErr(t, receiveErr(t, errs), "receive", socketapi.ErrRegistryFull)
	echoRoundTrip(t, c2, "still mine")

	a1, err := d.Attach(desc1)
	if err != nil {
		t.Fatal(err)
	}
	defer a1.Close()
	echoRoundTrip(t, a1, "moved")
	desc2, err := c2.DetachTo(t.Context(), in.path)
	if err != nil {
		t.Fatalf("DetachTo once there is room: %v", err)
	}
	for _, desc := range []string{desc2, desc3} {
		c, err := d.Attach(desc)
		if err != nil {
			t.Fatal(err)
		}
		echoRoundTrip(t, c, "moved too")
		c.Close()
	}
}

// TestDetachToForeignPeer: a receiver that does not take this process's
// user for its own refuses before it reads anything, and the sender keeps
// its connection. (TestHandOffProcessForeignUser checks real users.)
func TestDetachToForeignPeer(t *testing.T) {
	checkHygiene(t)
	srv := startRecorder(t, nil)
	errs := make(chan error, 1)
	reg := &socketapi.Registry{OnReceiveError: func(err error) { errs <- err }}
	socketapi.SetRegistryPeerUID(reg, os.Geteuid()+1)
	in := listen(t, reg)
	c := dialConn(t, &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}}, "tcp", srv.addr())
	_, err := c.DetachTo(t.Context(), in.path)
	wantHandOffErr(t, err, "detach", socketapi.ErrForeignPeer)
	wantHandOffErr(t, receiveErr(t, errs), "receive", socketapi.ErrForeignPeer)
	echoRoundTrip(t, c, "still mine")
	if reg.Len() != 0 {
		t.Errorf("Len() = %d", reg.Len())
	}
}

// TestDetachToReceiverGone: a receiver that closes the connection without
// replying, and one that never replies while the context ends; the sender
// keeps its connection, and a Read it had in progress ends with
// ErrHandedOff.
func TestDetachToReceiverGone(t *testing.T) {
	checkHygiene(t)
	srv := startRecorder(t, nil)
	path := filepath.Join(t.TempDir(), "fake.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}}
	c := dialConn(t, d, "tcp", srv.addr())

	// fake accepts one connection, reads the request (a plain read: the
	// kernel closes the descriptor that came with it) and calls then.
	fake := func(then func(net.Conn)) chan struct{} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			uc, err := ln.Accept()
			if err != nil {
				t.Error(err)
				return
			}
			defer uc.Close()
			if _, err := uc.Read(make([]byte, 4096)); err != nil {
				t.Error(err)
			}
			then(uc)
		}()
		return done
	}

	done := fake(func(net.Conn) {})
	_, err = c.DetachTo(t.Context(), path)
	<-done
	wantHandOffErr(t, err, "detach", socketapi.ErrReceiverGone)
	echoRoundTrip(t, c, "still mine")

	ctx, cancel := context.WithCancel(t.Context())
	done = fake(func(uc net.Conn) {
		cancel()
		uc.Read(make([]byte, 1)) // until the sender gives up
	})
	reading := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		reading <- err
	}()
	for socketapi.ConnInFlight(c) == 0 {
		time.Sleep(time.Millisecond)
	}
	_, err = c.DetachTo(ctx, path)
	<-done
	wantHandOffErr(t, err, "detach", context.Canceled)
	wantStateErr(t, <-reading, "read", socketapi.ErrHandedOff)
	echoRoundTrip(t, c, "still mine")
	c.Close()
}

// TestInboxBadTransfers sends what DetachTo never would, over the same
// kernel path: the receiver refuses each, closes every descriptor it got,
// and parks nothing.
func TestInboxBadTransfers(t *testing.T) {
	checkHygiene(t)
	errs := make(chan error, 1)
	reg := &socketapi.Registry{OnReceiveError: func(err error) { errs <- err }}
	in := listen(t, reg)
	srv := startRecorder(t, nil)
	peer := netip.MustParseAddrPort(srv.addr())
	frame := socketapi.TransferFrame("tcp", peer, "app-a")

	tcpFile := func(t *testing.T) *os.File {
		c, err := net.Dial("tcp", srv.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		f, err := c.(*net.TCPConn).File()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	listenerFile := func(t *testing.T) *os.File {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	pipeFile := func(t *testing.T) *os.File {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		return r
	}
	udpFile := func(t *testing.T) *os.File {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		f, err := c.File()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	truncated := frame[:len(frame)-1]
	for _, tc := range []struct {
		name  string
		frame []byte
		files []func(*testing.T) *os.File
		reply bool // whether the receiver replies
	}{
		{"no socket", frame, nil, true},
		{"two sockets", frame, []func(*testing.T) *os.File{tcpFile, tcpFile}, true},
		{"a pipe", frame, []func(*testing.T) *os.File{pipeFile}, true},
		{"a listening socket", frame, []func(*testing.T) *os.File{listenerFile}, true},
		{"UDP announced as TCP", frame, []func(*testing.T) *os.File{udpFile}, true},
		{"TCP announced as UDP", socketapi.TransferFrame("udp", peer, "app-a"), []func(*testing.T) *os.File{tcpFile}, true},
		{"garbage", append([]byte{0, 0, 0, 3}, "abc"...), []func(*testing.T) *os.File{tcpFile}, true},
		{"oversized frame", []byte{0, 1, 0, 0}, []func(*testing.T) *os.File{tcpFile}, true},
		{"sender gone mid-frame", truncated, []func(*testing.T) *os.File{tcpFile}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: in.path, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			defer uc.Close()
			var fds []int
			for _, open := range tc.files {
				f := open(t)
				defer f.Close()
				fds = append(fds, int(f.Fd()))
			}
			var oob []byte
			if len(fds) > 0 {
				oob = syscall.UnixRights(fds...)
			}
			if _, _, err := uc.WriteMsgUnix(tc.frame, oob, nil); err != nil {
				t.Fatal(err)
			}
			if !tc.reply {
				uc.CloseWrite()
			}
			reply, _ := io.ReadAll(uc)
			want := []byte{0, 0, 0, 1, 3} // replyBad
			if !tc.reply {
				want = nil
			}
			if !slices.Equal(reply, want) {
				t.Errorf("reply %v, want %v", reply, want)
			}
			sentinel := socketapi.ErrBadTransfer
			if !tc.reply {
				sentinel = socketapi.ErrSenderGone
			}
			wantHandOffErr(t, receiveErr(t, errs), "receive", sentinel)
			if reg.Len() != 0 {
				t.Errorf("Len() = %d", reg.Len())
			}
		})
	}
}

// TestInboxListen: the socket file's mode, a path in use, a weak key, and
// Close.
func TestInboxListen(t *testing.T) {
	checkHygiene(t)
	reg := &socketapi.Registry{}
	in := listen(t, reg)
	fi, err := os.Lstat(in.path)
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket file %v, %v; want a socket of mode 0600", fi.Mode(), err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(in.path)); len(ents) != 1 {
		t.Errorf("directory holds %v, want the socket alone", ents)
	}
	err = (&socketapi.Registry{}).Listen(in.path)
	if !errors.Is(err, os.ErrExist) {
		t.Errorf("Listen on a path in use: %v, want os.ErrExist", err)
	}
	err = (&socketapi.Registry{Key: []byte("short")}).Listen(filepath.Join(t.TempDir(), "weak.sock"))
	wantHandOffErr(t, err, "listen", socketapi.ErrWeakKey)
	var nilReg *socketapi.Registry
	err = nilReg.Listen(filepath.Join(t.TempDir(), "nil.sock"))
	wantHandOffErr(t, err, "listen", socketapi.ErrNoRegistry)
	if err := nilReg.Close(); err != nil {
		t.Errorf("Close of a nil Registry: %v", err)
	}
	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	if err := reg.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := os.Lstat(in.path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Close: %v", err)
	}
	c := dialConn(t, &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}}, "tcp", startRecorder(t, nil).addr())
	_, err = c.DetachTo(t.Context(), in.path)
	wantHandOffErr(t, err, "detach", socketapi.ErrNoRegistry)
	c.Close()
}

// TestDetachToMeter: each process's Meter counts the bytes carried there;
// the connection's Usage counts them all.
func TestDetachToMeter(t *testing.T) {
	checkHygiene(t)
	srv := startRecorder(t, nil)
	type closed struct {
		host string
		u    socketapi.Usage
	}
	gone := make(chan closed, 1)
	senderMeter := &socketapi.Meter{OnClose: func(host string, u socketapi.Usage) { gone <- closed{host, u} }}
	receiverMeter := &socketapi.Meter{}
	reg := &socketapi.Registry{}
	in := listen(t, reg)
	c := dialConn(t, &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Meter: senderMeter}, "tcp", srv.addr())
	echoRoundTrip(t, c, "12345")
	desc, err := c.DetachTo(t.Context(), in.path)
	if err != nil {
		t.Fatal(err)
	}
	host, _, _ := net.SplitHostPort(srv.addr())
	var got closed
	select {
	case got = <-gone:
	case <-time.After(giveUp):
		t.Fatal("the sender's OnClose was not called")
	}
	if got != (closed{host, socketapi.Usage{Sent: 5, Received: 5}}) {
		t.Errorf("sender's OnClose(%+v), want %s and 5 bytes each way", got, host)
	}
	c2, err := (&socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: reg, Meter: receiverMeter}).Attach(desc)
	if err != nil {
		t.Fatal(err)
	}
	echoRoundTrip(t, c2, "123")
	if u := c2.Usage(); u != (socketapi.Usage{Sent: 8, Received: 8}) {
		t.Errorf("Usage() = %+v, want 8 bytes each way", u)
	}
	if u := receiverMeter.Host(host); u != (socketapi.Usage{Sent: 3, Received: 3}) {
		t.Errorf("receiver's Meter: %+v, want the 3 bytes each way carried here", u)
	}
	if u := senderMeter.Host(host); u != (socketapi.Usage{Sent: 5, Received: 5}) {
		t.Errorf("sender's Meter: %+v, want the 5 bytes each way carried there", u)
	}
	// Moved on once more, the connection keeps counting.
	desc, err = c2.DetachTo(t.Context(), in.path)
	if err != nil {
		t.Fatal(err)
	}
	if u := receiverMeter.Host(host); u != (socketapi.Usage{Sent: 3, Received: 3}) {
		t.Errorf("receiver's Meter after the socket left: %+v, want 3 bytes each way", u)
	}
	c3, err := (&socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: reg}).Attach(desc)
	if err != nil {
		t.Fatal(err)
	}
	echoRoundTrip(t, c3, "1")
	if u := c3.Usage(); u != (socketapi.Usage{Sent: 9, Received: 9}) {
		t.Errorf("Usage() after two moves = %+v, want 9 bytes each way", u)
	}
	c3.Close()
}

// forge plays a sender that writes its own request: it connects to the
// registry at path, sends frame with f's descriptor beside it, and, if the
// receiver replies with a descriptor, acknowledges it as DetachTo does and
// waits for the receiver's last word. It returns the descriptor, "" when
// the receiver refused, and the code of the receiver's first reply.
func forge(t *testing.T, path string, frame []byte, f *os.File) (desc string, code byte) {
	t.Helper()
	uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if _, _, err := uc.WriteMsgUnix(frame, syscall.UnixRights(int(f.Fd())), nil); err != nil {
		t.Fatal(err)
	}
	reply := readTestFrame(t, uc)
	if reply[0] != 0 { // not replyOK
		return "", reply[0]
	}
	if _, err := uc.Write([]byte{0, 0, 0, 1, 6}); err != nil { // the ack
		t.Fatal(err)
	}
	if done := readTestFrame(t, uc); !slices.Equal(done, []byte{5}) { // replyDone
		t.Fatalf("receiver's last word %v, want replyDone", done)
	}
	return string(reply[1:]), 0
}

// readTestFrame reads one frame of the hand-off protocol from uc.
func readTestFrame(t *testing.T, uc *net.UnixConn) []byte {
	t.Helper()
	var hdr [4]byte
	if _, err := io.ReadFull(uc, hdr[:]); err != nil {
		t.Fatalf("reading the receiver's reply: %v", err)
	}
	n := int(hdr[0])<<24 | int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
	if n == 0 || n > 4096 {
		t.Fatalf("reply of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(uc, b); err != nil {
		t.Fatalf("reading the receiver's reply: %v", err)
	}
	return b
}

// socketFile returns a descriptor of c's socket (the caller closes it;
// the socket stays open until both c and the file are closed).
func socketFile(t *testing.T, c net.Conn) *os.File {
	t.Helper()
	f, err := c.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestInboxPeerMismatch: a process of the same user connects to one
// address and claims another in its request (issue 21, item 1). The
// receiver reads the socket's own peer from the kernel and refuses the
// claim before anything is registered: no descriptor, so no Attach, and
// no Conn whose Peer says one thing and whose RemoteAddr another. The
// claims are of public addresses a default policy allows, and of other
// loopback ports and addresses; no packet leaves loopback (the sockets
// are connected to servers on 127.0.0.1 before they are sent).
func TestInboxPeerMismatch(t *testing.T) {
	checkHygiene(t)
	srv := startRecorder(t, nil)
	usrv := startUDPRecorder(t)
	errs := make(chan error, 1)
	reg := &socketapi.Registry{OnReceiveError: func(err error) { errs <- err }}
	in := listen(t, reg)
	tcpPeer := netip.MustParseAddrPort(srv.addr())
	udpPeer := usrv.addrPort()
	dialTCP := func(t *testing.T) net.Conn {
		c, err := net.Dial("tcp4", srv.addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dialUDP := func(t *testing.T) net.Conn {
		c, err := net.Dial("udp4", udpPeer.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	for _, tc := range []struct {
		name    string
		network string
		claim   netip.AddrPort
		dial    func(*testing.T) net.Conn
	}{
		{"internal peer claimed public", "tcp", netip.MustParseAddrPort("93.184.216.34:443"), dialTCP},
		{"internal peer claimed public, IPv6", "tcp", netip.MustParseAddrPort("[2606:2800:220:1:248:1893:25c8:1946]:443"), dialTCP},
		{"another port", "tcp", netip.AddrPortFrom(tcpPeer.Addr(), tcpPeer.Port()+1), dialTCP},
		{"another loopback address", "tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), tcpPeer.Port()), dialTCP},
		{"connected UDP claimed public", "udp", netip.MustParseAddrPort("8.8.8.8:53"), dialUDP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.dial(t)
			desc, code := forge(t, in.path, socketapi.TransferFrame(tc.network, tc.claim, "app-a"), socketFile(t, c))
			if desc != "" {
				// The receiver took the sender's word. Attach, under a
				// policy that allows the claim, must not make a Conn of it.
				allow := sockets.DefaultPolicy().Allow(netip.PrefixFrom(tc.claim.Addr(), tc.claim.Addr().BitLen()))
				d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: allow}, Registry: reg, AppID: "app-a"}
				ac, err := d.Attach(desc)
				if err == nil {
					t.Errorf("Attach succeeded: Peer() = %v, RemoteAddr() = %v", ac.Peer(), ac.RemoteAddr())
					ac.Close()
					return
				}
				wantHandOffErr(t, err, "attach", socketapi.ErrPeerMismatch)
				return
			}
			if code != 7 { // replyMismatch
				t.Errorf("reply code %d, want 7 (peer mismatch)", code)
			}
			he := wantHandOffErr(t, receiveErr(t, errs), "receive", socketapi.ErrPeerMismatch)
			if he.App != "app-a" || !strings.Contains(he.Error(), tc.claim.String()) || !strings.Contains(he.Error(), c.LocalAddr().String()) && !strings.Contains(he.Error(), c.RemoteAddr().String()) {
				t.Errorf("error %q (App %q) does not name the claim and the real peer", he, he.App)
			}
			if reg.Len() != 0 {
				t.Errorf("Len() = %d, want nothing registered", reg.Len())
			}
		})
	}

	// The same request with the true peer is taken, and Attach makes a
	// Conn whose Peer is its RemoteAddr.
	for _, tc := range []struct {
		network string
		peer    netip.AddrPort
		dial    func(*testing.T) net.Conn
	}{
		{"tcp", tcpPeer, dialTCP},
		{"udp", udpPeer, dialUDP},
		// An IPv4-mapped claim of the same peer is the same peer.
		{"tcp", netip.AddrPortFrom(netip.AddrFrom16(tcpPeer.Addr().As16()), tcpPeer.Port()), dialTCP},
	} {
		c := tc.dial(t)
		desc, code := forge(t, in.path, socketapi.TransferFrame(tc.network, tc.peer, "app-a"), socketFile(t, c))
		if desc == "" {
			t.Fatalf("true claim %v over %s refused: reply %d, %v", tc.peer, tc.network, code, receiveErr(t, errs))
		}
		c.Close() // the receiver holds its own copy
		d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: reg, AppID: "app-a"}
		ac, err := d.Attach(desc)
		if err != nil {
			t.Fatal(err)
		}
		if got := ac.RemoteAddr().String(); ac.Peer().Addr().Unmap() != tc.peer.Addr().Unmap() || ac.Peer().Port() != tc.peer.Port() || got != netip.AddrPortFrom(tc.peer.Addr().Unmap(), tc.peer.Port()).String() {
			t.Errorf("Peer() = %v, RemoteAddr() = %v, want both %v", ac.Peer(), got, tc.peer)
		}
		if tc.network == "tcp" {
			echoRoundTrip(t, ac, "true claim")
		} else {
			udpEcho(t, ac, "true claim")
		}
		ac.Close()
	}
}

// connectProxy is an HTTP CONNECT proxy on loopback that echoes what
// comes through the tunnel instead of reaching the target: a stand-in for
// an egress proxy that keeps every packet on the machine.
type connectProxy struct {
	ln net.Listener
	wg sync.WaitGroup
}

func startConnectProxy(t *testing.T) *connectProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connectProxy{ln: ln}
	var mu sync.Mutex
	var conns []net.Conn
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			p.wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil || req.Method != http.MethodConnect {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
				// Plain reads and writes: io.Copy between two TCP
				// sockets would splice through pipes the runtime keeps
				// open, which checkHygiene would count as leaked.
				io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{br})
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// TestDetachToPeerMismatch: a connection whose socket is not connected to
// the address that passed the policy cannot move to another process,
// since the receiver could not tell it from a lie: one through the egress
// proxy (its socket's peer is the proxy), and one a Connect seam sent
// elsewhere. DetachTo refuses it before it connects to the registry, and
// the connection stays the sender's.
func TestDetachToPeerMismatch(t *testing.T) {
	checkHygiene(t)
	srv := startRecorder(t, nil)
	proxy := startConnectProxy(t)
	var received atomic.Int32
	reg := &socketapi.Registry{OnReceiveError: func(error) { received.Add(1) }}
	in := listen(t, reg)
	resolver := lab.NewResolver(map[string][]string{"www.example.com": {"93.184.216.34"}})
	for _, tc := range []struct {
		name string
		d    sockets.Dialer
	}{
		{"egress proxy", sockets.Dialer{Resolver: resolver, Proxy: &url.URL{Scheme: "http", Host: proxy.ln.Addr().String()}}},
		{"connect seam", sockets.Dialer{Resolver: resolver, Connect: (&lab.Connector{Target: srv.addr()}).Connect}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialConn(t, &socketapi.Dialer{Dialer: tc.d, AppID: "app-a"}, "tcp", "www.example.com:443")
			echoRoundTrip(t, c, "before")
			_, err := c.DetachTo(t.Context(), in.path)
			he := wantHandOffErr(t, err, "detach", socketapi.ErrPeerMismatch)
			if he.Path != in.path || !strings.Contains(err.Error(), "93.184.216.34:443") || !strings.Contains(err.Error(), c.RemoteAddr().String()) {
				t.Errorf("error %q does not name the path, the checked address and the socket's peer", err)
			}
			echoRoundTrip(t, c, "still mine")
			if n := received.Load(); n != 0 || reg.Len() != 0 {
				t.Errorf("the receiver heard of it: %d receive errors, Len() = %d", n, reg.Len())
			}
		})
	}
}

// TestDetachToNoAccess: a socket file this user may not connect to is
// ErrNoAccess, not ErrForeignPeer: no peer's user was read.
func TestDetachToNoAccess(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root connects to a socket file whatever its mode; TestHandOffProcessForeignUser/sender checks ErrNoAccess as another user")
	}
	checkHygiene(t)
	srv := startRecorder(t, nil)
	var received atomic.Int32
	reg := &socketapi.Registry{OnReceiveError: func(error) { received.Add(1) }}
	in := listen(t, reg)
	if err := os.Chmod(in.path, 0); err != nil {
		t.Fatal(err)
	}
	c := dialConn(t, &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}}, "tcp", srv.addr())
	_, err := c.DetachTo(t.Context(), in.path)
	wantHandOffErr(t, err, "detach", socketapi.ErrNoAccess)
	if errors.Is(err, socketapi.ErrForeignPeer) || !errors.Is(err, os.ErrPermission) {
		t.Errorf("DetachTo: %v; want it to match os.ErrPermission and not ErrForeignPeer", err)
	}
	echoRoundTrip(t, c, "still mine")
	if received.Load() != 0 || reg.Len() != 0 {
		t.Errorf("the receiver heard of it")
	}
}

// TestRegistryCloseInbox: Close stops every path a Registry serves,
// removing the socket files and ending the transfers in progress, closes
// the sockets parked in it, received or detached within the process, and
// from then on the Registry serves nowhere and hands nothing out.
func TestRegistryCloseInbox(t *testing.T) {
	checkHygiene(t)
	srv := startRecorder(t, nil)
	errs := make(chan error, 4)
	reg := &socketapi.Registry{OnReceiveError: func(err error) { errs <- err }}
	// A peer's time for a message is a minute here, so that the silent
	// peer below is still in its transfer when the registry closes. (Set
	// before Listen: the inboxes read it.)
	socketapi.SetRegistryFrameTimeout(reg, giveUp)
	in1 := listen(t, reg)
	in2 := listen(t, reg)
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: reg, AppID: "app-a"}
	c0 := dialConn(t, d, "tcp", srv.addr())
	received, err := c0.DetachTo(t.Context(), in2.path)
	if err != nil {
		t.Fatal(err)
	}
	c1 := dialConn(t, d, "tcp", srv.addr())
	parked, err := c1.Detach()
	if err != nil {
		t.Fatal(err)
	}
	// A transfer in progress: a peer that has connected and says nothing.
	silent, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: in1.path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	srv.waitEOF(t, 0, 1)
	if reg.Len() != 0 {
		t.Errorf("Len() = %d after Close", reg.Len())
	}
	for _, path := range []string{in1.path, in2.path} {
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket file %s after Close: %v, want it removed", path, err)
		}
	}
	silent.SetReadDeadline(time.Now().Add(giveUp))
	if _, err := silent.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) || err == nil {
		t.Errorf("the silent peer's read: %v, want its connection ended", err)
	}
	for _, desc := range []string{received, parked} {
		_, err := d.Attach(desc)
		wantClosedRegistry(t, err, "attach")
	}
	path3 := filepath.Join(t.TempDir(), "again.sock")
	wantClosedRegistry(t, reg.Listen(path3), "listen")
	if _, err := os.Lstat(path3); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Listen after Close made %s: %v", path3, err)
	}
	c2 := dialConn(t, d, "tcp", srv.addr())
	_, err = c2.DetachTo(t.Context(), in1.path)
	wantHandOffErr(t, err, "detach", socketapi.ErrNoRegistry)
	echoRoundTrip(t, c2, "still mine")
}

// TestInboxSlowPeers: peers that connect and say nothing, or send a
// request and never acknowledge the reply, are dropped once their time
// for a message is up, so that they cannot hold the transfers an inbox
// runs at once and keep an honest hand-off waiting (issue 21, item 6).
// Here that time is half a second; before it existed, a silent peer held
// its slot for 30 seconds, longer than this test gives the honest one.
func TestInboxSlowPeers(t *testing.T) {
	checkHygiene(t)
	srv := startRecorder(t, nil)
	errs := make(chan error, 64)
	reg := &socketapi.Registry{OnReceiveError: func(err error) { errs <- err }}
	socketapi.SetRegistryFrameTimeout(reg, 500*time.Millisecond)
	in := listen(t, reg)
	dialInbox := func() *net.UnixConn {
		uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: in.path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { uc.Close() })
		return uc
	}
	// More peers than the 16 transfers an inbox runs at once, connected
	// before the honest sender: the kernel queues the rest, and the honest
	// one behind them.
	const silent, stalled = 18, 4
	var peers []*net.UnixConn
	for range silent {
		peers = append(peers, dialInbox())
	}
	for range stalled {
		c, err := net.Dial("tcp4", srv.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		uc := dialInbox()
		frame := socketapi.TransferFrame("tcp", netip.MustParseAddrPort(srv.addr()), "app-a")
		if _, _, err := uc.WriteMsgUnix(frame, syscall.UnixRights(int(socketFile(t, c).Fd())), nil); err != nil {
			t.Fatal(err)
		}
		peers = append(peers, uc)
	}

	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}, Registry: reg, AppID: "app-a"}
	c := dialConn(t, d, "tcp", srv.addr())
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	desc, err := c.DetachTo(ctx, in.path)
	if err != nil {
		t.Fatalf("honest DetachTo behind %d silent peers: %v", silent+stalled, err)
	}
	for range silent + stalled {
		err := receiveErr(t, errs)
		wantHandOffErr(t, err, "receive", socketapi.ErrSenderGone)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("receive error %v, want it to match os.ErrDeadlineExceeded", err)
		}
	}
	for i, uc := range peers {
		uc.SetReadDeadline(time.Now().Add(giveUp))
		if _, err := io.ReadAll(uc); err != nil {
			t.Errorf("peer %d: %v, want the receiver to close its connection", i, err)
		}
	}
	a, err := d.Attach(desc)
	if err != nil {
		t.Fatal(err)
	}
	echoRoundTrip(t, a, "behind the silent ones")
	a.Close()
	if reg.Len() != 0 {
		t.Errorf("Len() = %d, want the stalled peers' sockets withdrawn", reg.Len())
	}
}
