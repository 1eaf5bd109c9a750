package sockets_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// No test in this file sends a packet outside loopback. "Public" addresses
// come from newResolver and reach a loopback server only through a
// connectSeam standing in for Dialer's final connect step; refusals are
// proven by a seam that records (and fails the test on) every attempt.
// Dialers without a seam are only ever pointed at 127.0.0.0/8 literals.

// newResolver returns a table resolver that answers a name with exactly
// its addresses whatever network is asked, even none, so that the
// Dialer's own family check and its handling of an empty answer are
// exercised. It records every question.
func newResolver(hosts map[string][]string) *lab.Resolver {
	r := lab.NewResolver(hosts)
	r.Raw = true
	return r
}

// blockingResolver answers only when its context is done, with the
// context's error.
type blockingResolver struct{}

func (blockingResolver) LookupNetIP(ctx context.Context, _, _ string) ([]netip.Addr, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// errUnreachable is what a seam returns for an address told to fail.
var errUnreachable = errors.New("unreachable (test seam)")

// connectSeam is a Dialer.Connect that records every attempt and connects
// to a loopback server instead of the address it is given. A nil seam's
// target makes every attempt fail the test.
type connectSeam struct {
	t      *testing.T
	target string // loopback "ip:port"; "" means no connection may be attempted
	fail   map[netip.AddrPort]bool

	mu    sync.Mutex
	calls []netip.AddrPort
}

func newSeam(t *testing.T, target string) *connectSeam {
	t.Helper()
	if target != "" && !netip.MustParseAddrPort(target).Addr().IsLoopback() {
		t.Fatalf("seam target %s is not loopback", target)
	}
	return &connectSeam{t: t, target: target}
}

// noConnect returns a seam that fails the test if it is ever called.
func noConnect(t *testing.T) *connectSeam { return newSeam(t, "") }

func (s *connectSeam) connect(ctx context.Context, network string, ap netip.AddrPort) (net.Conn, error) {
	s.mu.Lock()
	s.calls = append(s.calls, ap)
	s.mu.Unlock()
	if s.target == "" {
		s.t.Errorf("Connect(%s, %v) called; no connection may be attempted", network, ap)
		return nil, errUnreachable
	}
	if s.fail[ap] {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errUnreachable}
	}
	var d net.Dialer
	proto := "tcp"
	if strings.HasPrefix(network, "udp") {
		proto = "udp"
	}
	return d.DialContext(ctx, proto, s.target)
}

func (s *connectSeam) attempts() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// greeter is a loopback TCP server that writes "hello\n" to every
// connection and closes it.
type greeter struct{ *lab.Server }

// startGreeter starts a greeter listening on addr, a loopback "ip:port"
// (port 0 for any).
func startGreeter(t *testing.T, addr string) *greeter {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return &greeter{lab.Serve(t, ln, func(_ context.Context, c net.Conn) {
		io.WriteString(c, "hello\n")
	})}
}

func (g *greeter) addr() string { return g.Addr() }

// assertNothingAccepted proves that no connection reached g before now: it
// makes one connection of its own, which must be the first g accepted (a
// listener accepts in arrival order, and a dial that connected has
// arrived; the greeting proves it was accepted).
func (g *greeter) assertNothingAccepted(t *testing.T) {
	t.Helper()
	c, err := net.Dial("tcp", g.addr())
	if err != nil {
		t.Fatal(err)
	}
	readHello(t, c)
	if acc := g.Accepted(); len(acc) == 0 || acc[0].String() != c.LocalAddr().String() {
		t.Errorf("the server accepted %v, want the sentinel %s first", acc, c.LocalAddr())
	}
}

// readHello reads the greeter's line from c and closes c.
func readHello(t *testing.T, c net.Conn) {
	t.Helper()
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "hello\n" {
		t.Fatalf("read %q, %v; want the greeting", line, err)
	}
}

// assertDenied checks that err is a *DeniedError for rule want and returns
// it.
func assertDenied(t *testing.T, err error, want sockets.Rule) *sockets.DeniedError {
	t.Helper()
	var de *sockets.DeniedError
	if !errors.As(err, &de) || !errors.Is(err, sockets.ErrDenied) {
		t.Fatalf("error %v (%T); want a *DeniedError wrapping ErrDenied", err, err)
	}
	if de.Rule != want {
		t.Fatalf("rule %q, want %q (%v)", de.Rule, want, err)
	}
	return de
}

var publicHosts = map[string][]string{
	"one.example":      {"1.1.1.1"},
	"mixed.example":    {"10.0.0.1", "2606:4700:4700::1111", "192.168.1.1", "127.0.0.1", "1.1.1.1", "142.250.0.1"},
	"allbad.example":   {"10.0.0.1", "127.0.0.1", "142.250.0.1", "fe80::1"},
	"localhost":        {"127.0.0.1", "::1"},
	"smtp.gmail.com":   {gmail, gmail6},
	"imap.gmail.com":   {gmail},
	"evil.example":     {gmail, gmail6},
	"smtp.intranet":    {"10.0.0.25"},
	"www.example":      {"93.184.215.14"},
	"intranet.example": {"10.1.2.3"},
	"empty.example":    {},
}

func TestDialRefusedLiteralNoConnect(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		network, address string
		want             sockets.Rule
		via              carried
	}{
		{"tcp", "10.0.0.1:80", sockets.RulePrivate, direct},
		{"tcp", "127.0.0.1:8080", sockets.RuleLoopback, direct},
		{"tcp", "[::1]:443", sockets.RuleLoopback, direct},
		{"tcp", "[::ffff:10.0.0.1]:80", sockets.RulePrivate, inMapped("10.0.0.1")},
		{"tcp", "[64:ff9b::a00:1]:80", sockets.RulePrivate, inNAT64("10.0.0.1")},
		{"tcp", "[2002:a00:1::]:80", sockets.RulePrivate, in6to4("10.0.0.1")},
		{"tcp", "[2001:0:a00:1::]:80", sockets.RulePrivate, inTeredo("10.0.0.1")},
		{"tcp", "[fe80::1%eth0]:80", sockets.RuleZone, direct},
		{"tcp", "[2606:4700::1%eth0]:443", sockets.RuleZone, direct},
		{"tcp", "169.254.169.254:80", sockets.RuleLinkLocal, direct},
		{"udp", "0.0.0.0:53", sockets.RuleUnspecified, direct},
		{"udp", "255.255.255.255:67", sockets.RuleBroadcast, direct},
		{"udp", "[ff02::1]:5353", sockets.RuleMulticast, direct},
		{"tcp", "8.8.8.8:443", sockets.RuleGoogle, direct},
		{"tcp", gmail + ":587", sockets.RuleGoogle, direct},
		{"tcp", "1.1.1.1:25", sockets.RuleSMTP, direct},
		{"tcp", "1.1.1.1:21", sockets.RuleFTP, direct},
		{"tcp", "1.1.1.1:0", sockets.RulePort0, direct},
	} {
		t.Run(c.network+" "+c.address, func(t *testing.T) {
			t.Parallel()
			r := newResolver(nil)
			seam := noConnect(t)
			d := &sockets.Dialer{Resolver: r, Connect: seam.connect}
			conn, err := d.DialContext(t.Context(), c.network, c.address)
			if conn != nil {
				conn.Close()
			}
			de := assertDenied(t, err, c.want)
			if de.Network != c.network || de.Addr != netip.MustParseAddrPort(c.address) {
				t.Errorf("DeniedError fields %+v", *de)
			}
			if got := carriedOf(de); got != c.via {
				t.Errorf("refused address carried %+v, want %+v", got, c.via)
			}
			if n := len(r.Calls()); n != 0 {
				t.Errorf("%d lookups for an IP literal", n)
			}
		})
	}
}

func TestDialMixedAnswersConnectOnlyToAllowed(t *testing.T) {
	t.Parallel()
	srv := startGreeter(t, "127.0.0.1:0")
	for _, c := range []struct {
		network     string
		wantLookup  string
		wantAttempt []string // in order; the last one connects
		failFirst   bool
	}{
		// The resolver's order is kept, refused answers are skipped.
		{"tcp", "ip", []string{"[2606:4700:4700::1111]:443"}, false},
		// When the first allowed address fails, the next one is tried.
		{"tcp", "ip", []string{"[2606:4700:4700::1111]:443", "1.1.1.1:443"}, true},
		// A family-specific network asks for that family and connects to
		// it only.
		{"tcp4", "ip4", []string{"1.1.1.1:443"}, false},
		{"tcp6", "ip6", []string{"[2606:4700:4700::1111]:443"}, false},
	} {
		t.Run(c.network, func(t *testing.T) {
			t.Parallel()
			r := newResolver(publicHosts)
			seam := newSeam(t, srv.addr())
			if c.failFirst {
				seam.fail = map[netip.AddrPort]bool{netip.MustParseAddrPort(c.wantAttempt[0]): true}
			}
			d := &sockets.Dialer{Resolver: r, Connect: seam.connect}
			conn, err := d.DialContext(t.Context(), c.network, "mixed.example:443")
			if err != nil {
				t.Fatal(err)
			}
			readHello(t, conn)
			var want []netip.AddrPort
			for _, a := range c.wantAttempt {
				want = append(want, netip.MustParseAddrPort(a))
			}
			if got := seam.attempts(); !slices.Equal(got, want) {
				t.Errorf("connect attempts %v, want %v", got, want)
			}
			if got := r.Calls(); !slices.Equal(got, []lab.Lookup{{Network: c.wantLookup, Host: "mixed.example"}}) {
				t.Errorf("lookups %v", got)
			}
		})
	}
}

func TestResolveKeepsOnlyAllowed(t *testing.T) {
	t.Parallel()
	r := newResolver(publicHosts)
	d := &sockets.Dialer{Resolver: r, Connect: noConnect(t).connect}
	got, err := d.Resolve(t.Context(), "tcp", "mixed.example", 443)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{netip.MustParseAddrPort("[2606:4700:4700::1111]:443"), netip.MustParseAddrPort("1.1.1.1:443")}
	if !slices.Equal(got, want) {
		t.Errorf("Resolve = %v, want %v", got, want)
	}
	// An IP literal is parsed, not looked up.
	got, err = d.Resolve(t.Context(), "udp", "1.1.1.1", 53)
	if err != nil || !slices.Equal(got, []netip.AddrPort{netip.MustParseAddrPort("1.1.1.1:53")}) {
		t.Errorf("Resolve(1.1.1.1) = %v, %v", got, err)
	}
	_, err = d.Resolve(t.Context(), "unix", "one.example", 80)
	assertDenied(t, err, sockets.RuleNetwork)
	_, err = d.Resolve(t.Context(), "tcp", "", 80)
	assertDenied(t, err, sockets.RuleMalformed)
	if n := len(r.Calls()); n != 1 {
		t.Errorf("%d lookups, want 1", n)
	}
}

func TestDialAllAnswersRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		network, address string
		want             sockets.Rule
		wantAddr         string
	}{
		// The first refusal is reported.
		{"tcp", "allbad.example:443", sockets.RulePrivate, "10.0.0.1:443"},
		{"tcp", "localhost:8080", sockets.RuleLoopback, "127.0.0.1:8080"},
		{"tcp6", "localhost:8080", sockets.RuleMalformed, "127.0.0.1:8080"}, // an IPv4 answer to an IPv6 network
		{"tcp", "intranet.example:80", sockets.RulePrivate, "10.1.2.3:80"},
		// A name exception never opens a never-public address.
		{"tcp", "smtp.intranet:587", sockets.RulePrivate, "10.0.0.25:587"},
		// Another name resolving to Gmail's addresses gets no exception.
		{"tcp", "evil.example:587", sockets.RuleGoogle, gmail + ":587"},
		// The exception is for its ports only. A port rule refuses before
		// any lookup, so it names no address.
		{"tcp", "smtp.gmail.com:25", sockets.RuleSMTP, ""},
		{"tcp", "smtp.gmail.com:993", sockets.RuleGoogle, gmail + ":993"},
		{"udp", "smtp.gmail.com:587", sockets.RuleGoogle, gmail + ":587"},
		{"tcp", "imap.gmail.com:995", sockets.RuleGoogle, gmail + ":995"},
	} {
		t.Run(c.network+" "+c.address, func(t *testing.T) {
			t.Parallel()
			r := newResolver(publicHosts)
			d := &sockets.Dialer{Resolver: r, Connect: noConnect(t).connect}
			_, err := d.DialContext(t.Context(), c.network, c.address)
			de := assertDenied(t, err, c.want)
			host, _, _ := net.SplitHostPort(c.address)
			var wantAddr netip.AddrPort
			wantLookups := 0
			if c.wantAddr != "" {
				wantAddr, wantLookups = netip.MustParseAddrPort(c.wantAddr), 1
			}
			if de.Host != host || de.Addr != wantAddr || de.Network != c.network {
				t.Errorf("DeniedError fields %+v", *de)
			}
			if n := len(r.Calls()); n != wantLookups {
				t.Errorf("%d lookups, want %d", n, wantLookups)
			}
		})
	}
}

func TestDialGmailExceptionReachesSeam(t *testing.T) {
	t.Parallel()
	srv := startGreeter(t, "127.0.0.1:0")
	for _, c := range []struct{ network, address, want string }{
		{"tcp", "smtp.gmail.com:587", gmail + ":587"},
		{"tcp", "SMTP.GMAIL.COM.:465", gmail + ":465"},
		{"tcp6", "smtp.gmail.com:587", "[" + gmail6 + "]:587"},
		{"tcp", "imap.gmail.com:993", gmail + ":993"},
		{"tcp", "8.8.8.8:53", "8.8.8.8:53"},
		{"tcp4", "[::ffff:1.1.1.1]:443", "[::ffff:1.1.1.1]:443"},
	} {
		t.Run(c.network+" "+c.address, func(t *testing.T) {
			t.Parallel()
			seam := newSeam(t, srv.addr())
			d := &sockets.Dialer{Resolver: newResolver(publicHosts), Connect: seam.connect}
			conn, err := d.DialContext(t.Context(), c.network, c.address)
			if err != nil {
				t.Fatal(err)
			}
			readHello(t, conn)
			if got := seam.attempts(); !slices.Equal(got, []netip.AddrPort{netip.MustParseAddrPort(c.want)}) {
				t.Errorf("attempts %v, want [%s]", got, c.want)
			}
		})
	}
}

// TestDialUDPThroughSeam sends a datagram to Google Public DNS, allowed by
// its exception, and receives it on a loopback socket.
func TestDialUDPThroughSeam(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	seam := newSeam(t, pc.LocalAddr().String())
	d := &sockets.Dialer{Resolver: newResolver(nil), Connect: seam.connect}
	conn, err := d.DialContext(t.Context(), "udp", "8.8.8.8:53")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("query")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, _, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "query" {
		t.Fatalf("ReadFrom = %q, %v", buf[:n], err)
	}
	if got := seam.attempts(); !slices.Equal(got, []netip.AddrPort{netip.MustParseAddrPort("8.8.8.8:53")}) {
		t.Errorf("attempts %v", got)
	}
	// Port 443 at the same address is not an exception.
	_, err = (&sockets.Dialer{Resolver: newResolver(nil), Connect: noConnect(t).connect}).DialContext(t.Context(), "udp", "8.8.8.8:443")
	assertDenied(t, err, sockets.RuleGoogle)
}

// TestDialHTTPThroughSeam runs an HTTP client over the Dialer: a public
// name reaches an httptest server only through the seam, a private one is
// refused before any connection.
func TestDialHTTPThroughSeam(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from "+r.Host)
	}))
	defer srv.Close()
	seam := newSeam(t, srv.Listener.Addr().String())
	d := &sockets.Dialer{Resolver: newResolver(publicHosts), Connect: seam.connect}
	tr := &http.Transport{DialContext: d.DialContext}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	resp, err := client.Get("http://www.example/")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "hello from www.example" {
		t.Fatalf("body %q, %v", body, err)
	}
	if got := seam.attempts(); !slices.Equal(got, []netip.AddrPort{netip.MustParseAddrPort("93.184.215.14:80")}) {
		t.Errorf("attempts %v", got)
	}

	for _, u := range []string{"http://intranet.example/", "http://" + srv.Listener.Addr().String() + "/", "http://[::1]:80/"} {
		_, err = client.Get(u)
		var de *sockets.DeniedError
		if !errors.As(err, &de) || !errors.Is(err, sockets.ErrDenied) {
			t.Errorf("GET %s: %v; want a *DeniedError", u, err)
		}
	}
	if n := len(seam.attempts()); n != 1 {
		t.Errorf("%d connect attempts, want 1", n)
	}
}

func TestDialLookupError(t *testing.T) {
	t.Parallel()
	r := newResolver(publicHosts)
	d := &sockets.Dialer{Resolver: r, Connect: noConnect(t).connect}

	_, err := d.DialContext(t.Context(), "tcp", "missing.example:443")
	var le *sockets.LookupError
	if !errors.As(err, &le) || le.Host != "missing.example" {
		t.Fatalf("error %v (%T); want a *LookupError for missing.example", err, err)
	}
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("the resolver's *net.DNSError is not wrapped: %v", err)
	}
	if errors.Is(err, sockets.ErrDenied) || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) || dnsErr.IsTemporary {
		t.Errorf("a not-found lookup is a refusal, a timeout or temporary: %v", err)
	}
	if want := `sockets: lookup "missing.example": lookup missing.example: no such host`; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}

	// No answer at all is a lookup error too.
	_, err = d.DialContext(t.Context(), "tcp", "empty.example:443")
	if !errors.As(err, &le) || le.Host != "empty.example" {
		t.Errorf("no answers: %v; want a *LookupError", err)
	}

	// What the resolver says of its failure stays reachable.
	var temp error = &sockets.LookupError{Host: "x", Err: &net.DNSError{Err: "server misbehaving", IsTemporary: true}}
	if !errors.As(temp, &dnsErr) || !dnsErr.IsTemporary || isTimeout(temp) || errors.Is(temp, context.DeadlineExceeded) {
		t.Error("a temporary DNS failure is not reachable as one, or is a timeout")
	}
	var timedOut error = &sockets.LookupError{Host: "x", Err: &net.DNSError{Err: "i/o timeout", IsTimeout: true}}
	if !isTimeout(timedOut) || !errors.Is(timedOut, context.DeadlineExceeded) {
		t.Error("a timed-out DNS lookup is not a timeout matching DeadlineExceeded")
	}
}

// isTimeout reports whether err's chain holds an error whose Timeout
// reports true, as net.Error's callers ask.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

func TestDialMalformed(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ network, address string }{
		{"tcp", ""},
		{"tcp", "host"},
		{"tcp", "host:"},
		{"tcp", ":80"},
		{"tcp", "host:http"},
		{"tcp", "host:99999"},
		{"tcp", "host:-1"},
		{"tcp", "host:+80"},
		{"tcp", "host: 80"},
		{"tcp", "[::1"},
		{"tcp", "::1:80"},
		{"tcp", "[1.1.1.1]:80x"},
		{"tcp", "a b:80"},
		{"tcp", "a..b:80"},
		{"tcp", ".example:80"},
		{"tcp", "exa\x00mple:80"},
		{"tcp", "ex\u00e4mple.com:80"},
		{"tcp", strings.Repeat("a", 64) + ".example:80"},
		{"tcp", strings.Repeat("a.", 127) + "ab:80"},
		// inet_aton notations that a C resolver reads as 127.0.0.1.
		{"tcp", "127.1:80"},
		{"tcp", "0x7f.0.0.1:80"},
		{"tcp", "2130706433:80"},
		{"tcp", "0177.0.0.1:80"},
		{"tcp", "0x7f000001:80"},
		{"tcp", "127.0.1:80"},
		// The address family does not match the network.
		{"tcp4", "[2606:4700::1111]:443"},
		{"tcp6", "1.1.1.1:443"},
		{"udp6", "[::ffff:1.1.1.1]:53"},
	} {
		t.Run(c.network+" "+c.address, func(t *testing.T) {
			t.Parallel()
			r := newResolver(publicHosts)
			d := &sockets.Dialer{Resolver: r, Connect: noConnect(t).connect}
			_, err := d.DialContext(t.Context(), c.network, c.address)
			de := assertDenied(t, err, sockets.RuleMalformed)
			if de.Detail == "" {
				t.Errorf("no detail in %v", err)
			}
			if n := len(r.Calls()); n != 0 {
				t.Errorf("%d lookups for malformed input", n)
			}
		})
	}
}

func TestDialNetworks(t *testing.T) {
	t.Parallel()
	for _, network := range []string{"unix", "unixgram", "unixpacket", "ip", "ip4:icmp", "ip6:ipv6-icmp", "tcp7", "TCP", ""} {
		t.Run(network, func(t *testing.T) {
			t.Parallel()
			r := newResolver(publicHosts)
			d := &sockets.Dialer{Resolver: r, Connect: noConnect(t).connect}
			_, err := d.DialContext(t.Context(), network, "one.example:443")
			de := assertDenied(t, err, sockets.RuleNetwork)
			if de.Network != network {
				t.Errorf("Network %q", de.Network)
			}
			if n := len(r.Calls()); n != 0 {
				t.Errorf("%d lookups", n)
			}
		})
	}
}

func TestDialLocalAddr(t *testing.T) {
	t.Parallel()
	srv := startGreeter(t, "127.0.0.1:0")
	for _, c := range []struct {
		name  string
		local net.Addr
		ok    bool
	}{
		{"nil", nil, true},
		{"nil TCPAddr", (*net.TCPAddr)(nil), true},
		{"0.0.0.0:0", &net.TCPAddr{IP: net.IPv4zero}, true},
		{"[::]:0", &net.TCPAddr{IP: net.IPv6unspecified}, true},
		{"no IP, port 0", &net.TCPAddr{}, true},
		{"udp 0.0.0.0:0", &net.UDPAddr{IP: net.IPv4zero}, true},
		{"127.0.0.1:0", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, false},
		{"0.0.0.0:8080", &net.TCPAddr{IP: net.IPv4zero, Port: 8080}, false},
		{":8080", &net.TCPAddr{Port: 8080}, false},
		{"udp :53", &net.UDPAddr{Port: 53}, false},
		{"[fe80::1%eth0]:0", &net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "eth0"}, false},
		{"unix", &net.UnixAddr{Name: "/tmp/x.sock", Net: "unix"}, false},
		{"ip", &net.IPAddr{IP: net.IPv4zero}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newResolver(publicHosts)
			var seam *connectSeam
			if c.ok {
				seam = newSeam(t, srv.addr())
			} else {
				seam = noConnect(t)
			}
			d := &sockets.Dialer{Resolver: r, Connect: seam.connect, LocalAddr: c.local}
			conn, err := d.DialContext(t.Context(), "tcp", "one.example:443")
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
				readHello(t, conn)
				return
			}
			assertDenied(t, err, sockets.RuleBind)
			if n := len(r.Calls()); n != 0 {
				t.Errorf("%d lookups", n)
			}
		})
	}
}

// TestDialTimeout runs in a synctest bubble: the resolver (or the connect
// step) waits for its context, and the bubble's clock advances exactly by
// the Dialer's Timeout.
func TestDialTimeout(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		d := &sockets.Dialer{Resolver: blockingResolver{}, Connect: noConnect(t).connect, Timeout: 3 * time.Second}
		start := time.Now()
		_, err := d.DialContext(t.Context(), "tcp", "slow.example:443")
		if elapsed := time.Since(start); elapsed != 3*time.Second {
			t.Errorf("gave up after %v, want 3s", elapsed)
		}
		var le *sockets.LookupError
		if !errors.As(err, &le) || !errors.Is(err, context.DeadlineExceeded) || !isTimeout(err) {
			t.Fatalf("error %v; want a *LookupError that is a timeout", err)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || errors.Is(err, sockets.ErrDenied) {
			t.Errorf("error %v is not a net.Error timeout", err)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		// The timeout covers the connect step too.
		d := &sockets.Dialer{
			Resolver: newResolver(publicHosts),
			Timeout:  2 * time.Second,
			Connect: func(ctx context.Context, _ string, _ netip.AddrPort) (net.Conn, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			},
		}
		start := time.Now()
		_, err := d.DialContext(t.Context(), "tcp", "one.example:443")
		if elapsed := time.Since(start); elapsed != 2*time.Second || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("after %v: %v; want DeadlineExceeded after 2s", elapsed, err)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		// A shorter context deadline wins over Timeout.
		d := &sockets.Dialer{Resolver: blockingResolver{}, Connect: noConnect(t).connect, Timeout: time.Hour}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		_, err := d.DialContext(ctx, "tcp", "slow.example:443")
		if elapsed := time.Since(start); elapsed != time.Second || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("after %v: %v; want DeadlineExceeded after 1s", elapsed, err)
		}
	})
	// A canceled context stops the dial.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := (&sockets.Dialer{Resolver: blockingResolver{}, Connect: noConnect(t).connect}).DialContext(ctx, "tcp", "slow.example:443")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}

// TestDialRealNetDialer uses the Dialer's own connect step (no seam), on
// loopback only.
func TestDialRealNetDialer(t *testing.T) {
	t.Parallel()
	srv := startGreeter(t, "127.0.0.1:0")
	dev := sockets.DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32"))
	// The refused answer is a loopback address too, so that even a broken
	// policy could not send a packet off the machine.
	r := newResolver(map[string][]string{"dev.example": {"127.0.0.2", "127.0.0.1"}})
	d := &sockets.Dialer{Policy: dev, Resolver: r, KeepAlive: -1}

	for _, network := range []string{"tcp", "tcp4"} {
		conn, err := d.DialContext(t.Context(), network, srv.addr())
		if err != nil {
			t.Fatal(err)
		}
		readHello(t, conn)
	}
	// By name: only the allowed answer is dialed.
	_, port, _ := net.SplitHostPort(srv.addr())
	conn, err := d.DialContext(t.Context(), "tcp", net.JoinHostPort("dev.example", port))
	if err != nil {
		t.Fatal(err)
	}
	readHello(t, conn)

	// UDP through the real connect step.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	uc, err := d.DialContext(t.Context(), "udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if _, err := uc.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if n, _, err := pc.ReadFrom(buf); err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("ReadFrom = %q, %v", buf[:n], err)
	}

	// 127.0.0.2 is outside the allowed /32: refused, and nothing reaches a
	// server listening there.
	other := startGreeter(t, "127.0.0.2:0")
	_, err = d.DialContext(t.Context(), "tcp", other.addr())
	assertDenied(t, err, sockets.RuleLoopback)
	other.assertNothingAccepted(t)
}

// TestZeroDialerRefusesLoopback checks the zero Dialer: the default policy
// refuses loopback, and no connection reaches the server.
func TestZeroDialerRefusesLoopback(t *testing.T) {
	t.Parallel()
	srv := startGreeter(t, "127.0.0.1:0")
	var d sockets.Dialer
	_, err := d.DialContext(t.Context(), "tcp", srv.addr())
	assertDenied(t, err, sockets.RuleLoopback)
	_, port, _ := net.SplitHostPort(srv.addr())
	_, err = d.DialContext(t.Context(), "tcp", net.JoinHostPort("::1", port))
	assertDenied(t, err, sockets.RuleLoopback)
	_, err = d.DialContext(t.Context(), "tcp", net.JoinHostPort("::ffff:127.0.0.1", port))
	assertDenied(t, err, sockets.RuleLoopback)
	srv.assertNothingAccepted(t)
}

// TestDialConcurrent shares one Dialer, resolver and seam between
// goroutines (run with -race).
func TestDialConcurrent(t *testing.T) {
	t.Parallel()
	srv := startGreeter(t, "127.0.0.1:0")
	seam := newSeam(t, srv.addr())
	d := &sockets.Dialer{Resolver: newResolver(publicHosts), Connect: seam.connect}
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for range n {
		wg.Go(func() {
			conn, err := d.DialContext(t.Context(), "tcp4", "mixed.example:443")
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
				errs <- err
			}
		})
		wg.Go(func() {
			_, err := d.DialContext(t.Context(), "tcp", "allbad.example:443")
			if !errors.Is(err, sockets.ErrDenied) {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := seam.attempts(); len(got) != n || slices.ContainsFunc(got, func(ap netip.AddrPort) bool { return ap != netip.MustParseAddrPort("1.1.1.1:443") }) {
		t.Errorf("attempts %v; want %d to 1.1.1.1:443", got, n)
	}
}
