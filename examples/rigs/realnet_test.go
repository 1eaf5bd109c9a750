package rigs_test

// Tests on the real network path: the kernel's connect, Go's own resolver
// and real DNS packets, with no connect seam. The test binary re-runs
// TestRealNet in a network namespace of its own (lab.InNetNS),
// where the "public" addresses below are on the loopback interface and no
// other address has a route: nothing can leave the namespace. Every case
// is fetched with plain net/http, the sockets backend and the urlfetch
// backend, on the same network and through the same resolver, and
// Outbound must not be slower than plain net/http.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/outbound-go/outbound/examples/internal/dnslab"
	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/transport"
	"github.com/outbound-go/outbound/urlfetch"
)

// The addresses of the namespace, all on its lo, all on port rnPort. The
// public ones pass both backends' policies (TestRealNet checks it): none
// is in a never-public block or in Google's ranges.
var (
	rnWeb4     = netip.MustParseAddr("93.184.216.34")     // HTTP server "web4"
	rnWeb6     = netip.MustParseAddr("2606:4700::1111")   // HTTP server "web6"
	rnWeb6to4  = netip.MustParseAddr("2002:5db8:d822::1") // HTTP server "web6to4": 6to4, which sorts after IPv4 (RFC 6724, precedence 30 < 35)
	rnDead4    = netip.MustParseAddr("151.101.1.1")       // black hole: SYNs dropped
	rnDead6    = netip.MustParseAddr("2a04:4e42::1")      // black hole
	rnRefused4 = netip.MustParseAddr("151.101.1.2")       // no listener: connection refused
	rnRefused6 = netip.MustParseAddr("2a04:4e42::2")      // no listener
	rnPrivate1 = netip.MustParseAddr("10.1.0.1")          // HTTP server "private1" (RFC 1918), counting connections
	rnPrivate2 = netip.MustParseAddr("10.1.0.2")          // HTTP server "private2", counting connections
)

const (
	rnPort = 80
	// rnMargin is how much slower than plain net/http Outbound may be,
	// and how far past its timeout a failure may come: generous, so that
	// no result depends on the machine's load. The dead-address cases
	// end at their timeout when the first address gets all the time, and
	// take 0.3 s (Happy Eyeballs) or half the dialer's timeout (the
	// partial deadline of net.Dialer) when dialed as net.Dialer does.
	rnMargin = 1500 * time.Millisecond
	// rnURLFetchDeadline is the urlfetch backend's deadline: longer than
	// every case's context, so that the context bounds every fetch.
	rnURLFetchDeadline = 30 * time.Second
)

// rnOutcome is what a case must end in.
type rnOutcome int

const (
	rnOK       rnOutcome = iota // a 200 from the server named by rnCase.server
	rnTimeout                   // a timeout: net.Error.Timeout() and context.DeadlineExceeded
	rnNotFound                  // a lookup error, the name not found
	rnDNSError                  // a lookup error, neither not found nor a timeout
	rnRefused                   // refused by the policy before any connection; plain net/http reaches rnCase.private
)

type rnCase struct {
	name    string
	zone    []dnslab.Record // the host's records, unless dns is set
	dns     func(s *dnslab.DNSServer, host string)
	first   netip.Addr    // when valid, the address the resolver must give first: the case's premise
	attempt time.Duration // when set, the resolver's timeout per attempt (resolv.conf's "options timeout:")
	timeout time.Duration // the fetch's context
	want    rnOutcome
	server  string // rnOK: who answers
	private string // rnRefused: the private server plain net/http reaches
}

func rnRR(a netip.Addr) dnslab.Record { return dnslab.Record{Addr: a, TTL: 60} }

var rnCases = []rnCase{
	{name: "working IPv4", zone: []dnslab.Record{rnRR(rnWeb4)}, timeout: 10 * time.Second, want: rnOK, server: "web4"},
	{name: "working IPv6 and IPv4", zone: []dnslab.Record{rnRR(rnWeb4), rnRR(rnWeb6)}, first: rnWeb6, timeout: 10 * time.Second, want: rnOK, server: "web6"},
	// RFC 8305: the second family starts 300 ms after the first.
	{name: "dead IPv6 first", zone: []dnslab.Record{rnRR(rnDead6), rnRR(rnWeb4)}, first: rnDead6, timeout: 10 * time.Second, want: rnOK, server: "web4"},
	{name: "dead IPv4 first, IPv6 next", zone: []dnslab.Record{rnRR(rnDead4), rnRR(rnWeb6to4)}, first: rnDead4, timeout: 10 * time.Second, want: rnOK, server: "web6to4"},
	// One family, addresses in turn: each gets its share of the time
	// left (net.Dialer's partial deadline). The dial's time is the
	// dialer's timeout, 30 s for plain net/http (http.DefaultTransport's)
	// and the sockets backend, the deadline for urlfetch (30 s here): the
	// dead address gets 15 s.
	{name: "dead IPv4 first in a round robin", zone: []dnslab.Record{rnRR(rnDead4), rnRR(rnWeb4)}, first: rnDead4, timeout: 20 * time.Second, want: rnOK, server: "web4"},
	{name: "every address dead", zone: []dnslab.Record{rnRR(rnDead6), rnRR(rnDead4)}, timeout: 3 * time.Second, want: rnTimeout},
	{name: "refused IPv4 first", zone: []dnslab.Record{rnRR(rnRefused4), rnRR(rnWeb4)}, first: rnRefused4, timeout: 10 * time.Second, want: rnOK, server: "web4"},
	{name: "refused IPv6 first", zone: []dnslab.Record{rnRR(rnRefused6), rnRR(rnWeb4)}, first: rnRefused6, timeout: 10 * time.Second, want: rnOK, server: "web4"},
	{
		name: "CNAME chain to a private address",
		dns: func(s *dnslab.DNSServer, host string) {
			s.Set(host, dnslab.CNAMERecord("hop1."+host, 60))
			s.Set("hop1."+host, dnslab.CNAMERecord("hop2."+host, 60))
			s.Set("hop2."+host, rnRR(rnPrivate1))
		},
		timeout: 10 * time.Second, want: rnRefused, private: "private1",
	},
	{name: "NXDOMAIN", dns: func(s *dnslab.DNSServer, host string) { s.Fail(host, dnsmessage.RCodeNameError) }, timeout: 10 * time.Second, want: rnNotFound},
	{name: "SERVFAIL", dns: func(s *dnslab.DNSServer, host string) { s.Fail(host, dnsmessage.RCodeServerFailure) }, timeout: 10 * time.Second, want: rnDNSError},
	{name: "DNS server never answers", dns: func(s *dnslab.DNSServer, host string) { s.Drop(host) }, timeout: 3 * time.Second, want: rnTimeout},
	// The resolver gives up by itself, long before the context ends.
	{name: "DNS never answers, resolver gives up", dns: func(s *dnslab.DNSServer, host string) { s.Drop(host) }, attempt: 250 * time.Millisecond, timeout: 10 * time.Second, want: rnTimeout},
}

// rnHost is the name a case fetches.
func rnHost(caseName string) string {
	return strings.NewReplacer(" ", "-", ",", "").Replace(strings.ToLower(caseName)) + ".realnet.example"
}

// rnServer is an HTTP server that answers its name and counts the
// connections it accepts.
type rnServer struct {
	*httptest.Server
	accepted atomic.Int64
}

type rnListener struct {
	net.Listener
	n *atomic.Int64
}

func (l rnListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func rnStartServer(t *testing.T, name string, a netip.Addr) *rnServer {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(a, rnPort).String())
	if err != nil {
		t.Fatal(err)
	}
	s := &rnServer{}
	s.Server = &httptest.Server{
		Listener: rnListener{ln, &s.accepted},
		Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name)
		})},
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// rnClient is one way to fetch: plain net/http or a backend.
type rnClient struct {
	name string
	rt   http.RoundTripper
	// closeIdle closes idle connections and cancels dials no request
	// waits for any more.
	closeIdle func()
}

// rnClients returns the backends, then plain net/http, all resolving
// through res: the backends first, so that a refusal is seen before plain
// net/http connects to a private server. Plain net/http is
// http.DefaultTransport's configuration, without a proxy.
func rnClients(t *testing.T, res *net.Resolver) []rnClient {
	t.Helper()
	plain := http.DefaultTransport.(*http.Transport).Clone()
	plain.Proxy = nil
	plain.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Resolver: res}).DialContext
	sock, err := transport.New(transport.Config{Backend: transport.Sockets, Dialer: sockets.Dialer{Resolver: res}})
	if err != nil {
		t.Fatal(err)
	}
	uf, err := transport.New(transport.Config{
		Backend:  transport.URLFetch,
		Dialer:   sockets.Dialer{Resolver: res},
		URLFetch: transport.URLFetchConfig{Deadline: rnURLFetchDeadline},
	})
	if err != nil {
		t.Fatal(err)
	}
	cs := []rnClient{
		{"sockets", sock, rnCloseIdle(sock)},
		{"urlfetch", uf, rnCloseIdle(uf)},
		{"plain", plain, plain.CloseIdleConnections},
	}
	t.Cleanup(func() {
		for _, c := range cs {
			c.closeIdle()
		}
	})
	return cs
}

func rnCloseIdle(rt http.RoundTripper) func() {
	return rt.(interface{ CloseIdleConnections() }).CloseIdleConnections
}

// rnFetch is the result of one GET.
type rnFetch struct {
	elapsed time.Duration
	body    string
	err     error
}

func (f rnFetch) String() string {
	var what string
	var de *net.DNSError
	switch {
	case f.err == nil:
		what = "ok " + f.body
	case errors.Is(f.err, sockets.ErrDenied):
		what = "refused"
	case rnIsTimeout(f.err):
		what = "timeout"
	case errors.As(f.err, &de) && de.IsNotFound:
		what = "not found"
	case errors.As(f.err, &de) && de.IsTimeout:
		what = "dns timeout, untyped" // Timeout() but not context.DeadlineExceeded
	case errors.As(f.err, &de):
		what = "dns: " + de.Err
	default:
		what = "error"
	}
	return fmt.Sprintf("%6.2fs %s", f.elapsed.Seconds(), what)
}

func rnGet(c rnClient, host string, timeout time.Duration) rnFetch {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+host+"/", nil)
	if err != nil {
		return rnFetch{err: err}
	}
	start := time.Now()
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return rnFetch{elapsed: time.Since(start), err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	f := rnFetch{elapsed: time.Since(start), body: string(body), err: err}
	if err == nil && resp.StatusCode != http.StatusOK {
		f.err = fmt.Errorf("status %s", resp.Status)
	}
	return f
}

// rnIsTimeout reports whether err is a timeout both ways callers test for
// one.
func rnIsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && errors.Is(err, context.DeadlineExceeded)
}

// rnTable collects the times of every case for the log.
type rnTable struct {
	mu   sync.Mutex
	rows map[string]map[string]rnFetch
}

func (tb *rnTable) add(caseName, client string, f rnFetch) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.rows[caseName] == nil {
		tb.rows[caseName] = make(map[string]rnFetch)
	}
	tb.rows[caseName][client] = f
}

func (tb *rnTable) format(names []string) string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-36s | %-30s | %-30s | %-30s\n", "a name resolving to", "plain net/http", "sockets", "urlfetch")
	for _, n := range names {
		row := tb.rows[n]
		fmt.Fprintf(&b, "%-36s | %-30.30s | %-30.30s | %-30.30s\n", n, row["plain"], row["sockets"], row["urlfetch"])
	}
	return b.String()
}

func TestRealNet(t *testing.T) {
	if !lab.InNetNS(t, rnWeb4, rnWeb6, rnWeb6to4, rnDead4, rnDead6, rnRefused4, rnRefused6, rnPrivate1, rnPrivate2) {
		return
	}
	// The premises: the public addresses pass both policies, the private
	// ones do not.
	for _, pol := range []*sockets.Policy{sockets.DefaultPolicy(), sockets.PublicPolicy()} {
		for _, a := range []netip.Addr{rnWeb4, rnWeb6, rnWeb6to4, rnDead4, rnDead6, rnRefused4, rnRefused6} {
			if err := pol.Check("tcp", "realnet.example", netip.AddrPortFrom(a, rnPort)); err != nil {
				t.Fatalf("%v must be allowed: %v", a, err)
			}
		}
		for _, a := range []netip.Addr{rnPrivate1, rnPrivate2} {
			if err := pol.Check("tcp", "realnet.example", netip.AddrPortFrom(a, rnPort)); !errors.Is(err, sockets.ErrDenied) {
				t.Fatalf("%v must be refused: %v", a, err)
			}
		}
	}

	dns := dnslab.NewDNSServer(t)
	res := dns.Resolver()
	for _, s := range []struct {
		name string
		a    netip.Addr
	}{{"web4", rnWeb4}, {"web6", rnWeb6}, {"web6to4", rnWeb6to4}} {
		rnStartServer(t, s.name, s.a)
	}
	private := map[string]*rnServer{
		"private1": rnStartServer(t, "private1", rnPrivate1),
		"private2": rnStartServer(t, "private2", rnPrivate2),
	}
	lab.NewBlackHole(t, netip.AddrPortFrom(rnDead4, rnPort))
	lab.NewBlackHole(t, netip.AddrPortFrom(rnDead6, rnPort))

	table := &rnTable{rows: make(map[string]map[string]rnFetch)}
	var names []string
	t.Run("cases", func(t *testing.T) {
		for _, tc := range rnCases {
			names = append(names, tc.name)
			host := rnHost(tc.name)
			if tc.dns != nil {
				tc.dns(dns, host)
			} else {
				dns.Set(host, tc.zone...)
			}
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				if tc.first.IsValid() {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					addrs, err := res.LookupNetIP(ctx, "ip", host)
					if err != nil || len(addrs) == 0 || addrs[0] != tc.first {
						t.Fatalf("premise: the resolver gives %v, %v; want %v first", addrs, err, tc.first)
					}
				}
				r := res
				if tc.attempt > 0 {
					r = dns.ResolverTimeout(tc.attempt)
				}
				rnRunCase(t, tc, host, rnClients(t, r), private[tc.private], table)
			})
		}
		names = append(names, "TTL-0 rebinding (second fetch)")
		t.Run("TTL-0 rebinding", func(t *testing.T) {
			t.Parallel()
			rnRebinding(t, dns, rnClients(t, res), private["private2"], table)
		})
	})
	t.Log(table.format(names))
}

// rnRunCase fetches host with every client and checks the outcome. The
// clients fetch at once, but where a private server must see no
// connection from the backends: there they fetch first, and plain
// net/http last.
func rnRunCase(t *testing.T, tc rnCase, host string, clients []rnClient, priv *rnServer, table *rnTable) {
	var mu sync.Mutex
	got := make(map[string]rnFetch)
	fetch := func(c rnClient) {
		f := rnGet(c, host, tc.timeout)
		mu.Lock()
		defer mu.Unlock()
		got[c.name] = f
		table.add(tc.name, c.name, f)
		t.Logf("%-8s %v (err: %v)", c.name, f, f.err)
	}
	if priv == nil {
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Go(func() { fetch(c) })
		}
		wg.Wait()
	} else {
		for _, c := range clients {
			if c.name == "plain" {
				if n := priv.accepted.Load(); n != 0 {
					t.Errorf("%s accepted %d connections before plain net/http dialed: the backends connected to it", tc.private, n)
				}
			}
			fetch(c)
		}
	}
	plain := got["plain"]
	for _, name := range []string{"sockets", "urlfetch"} {
		f := got[name]
		switch tc.want {
		case rnOK:
			if f.err != nil || f.body != tc.server {
				t.Errorf("%s: %v, %q; want a 200 from %s", name, f.err, f.body, tc.server)
			}
		case rnTimeout:
			if !rnIsTimeout(f.err) {
				t.Errorf("%s: %#v; want a timeout (net.Error.Timeout and context.DeadlineExceeded)", name, f.err)
			}
		case rnNotFound, rnDNSError:
			var de *net.DNSError
			if !errors.As(f.err, &de) || de.IsNotFound != (tc.want == rnNotFound) || de.IsTimeout {
				t.Errorf("%s: %#v; want a *net.DNSError with IsNotFound %v", name, f.err, tc.want == rnNotFound)
			}
			if name == "sockets" && !errors.As(f.err, new(*sockets.LookupError)) {
				t.Errorf("sockets: %#v; want a *sockets.LookupError", f.err)
			}
			if name == "urlfetch" && !errors.Is(f.err, urlfetch.ErrDNS) {
				t.Errorf("urlfetch: %#v; want urlfetch.ErrDNS", f.err)
			}
		case rnRefused:
			var de *sockets.DeniedError
			if !errors.As(f.err, &de) || de.Addr.Addr() != rnPrivate1 {
				t.Errorf("%s: %v; want a refusal of %v", name, f.err, rnPrivate1)
			}
		}
		if f.elapsed > tc.timeout+rnMargin {
			t.Errorf("%s: %v; want an end within the %v timeout", name, f.elapsed, tc.timeout)
		}
		if f.elapsed > plain.elapsed+rnMargin {
			t.Errorf("%s: %v, plain net/http %v: slower than plain", name, f.elapsed, plain.elapsed)
		}
	}
	// Plain net/http shows the case is what it claims.
	switch tc.want {
	case rnOK:
		if plain.err != nil || plain.body != tc.server {
			t.Errorf("plain: %v, %q; want a 200 from %s", plain.err, plain.body, tc.server)
		}
	case rnRefused:
		if plain.err != nil || plain.body != tc.private || priv.accepted.Load() == 0 {
			t.Errorf("plain: %v, %q; want it to reach %s", plain.err, plain.body, tc.private)
		}
	default:
		if plain.err == nil {
			t.Errorf("plain: %q; want a failure", plain.body)
		}
	}
}

// rnRebinding fetches a name whose answer has TTL 0 and changes from a
// public address to a private one between two fetches: the second fetch
// is refused by both backends, which never connect to the private server,
// while plain net/http reaches it.
func rnRebinding(t *testing.T, dns *dnslab.DNSServer, clients []rnClient, priv *rnServer, table *rnTable) {
	const name = "TTL-0 rebinding (second fetch)"
	host := "rebind.realnet.example"
	dns.Set(host, dnslab.Record{Addr: rnWeb4, TTL: 0})
	for _, c := range clients {
		if f := rnGet(c, host, 10*time.Second); f.err != nil || f.body != "web4" {
			t.Fatalf("%s, first fetch: %v, %q; want a 200 from web4", c.name, f.err, f.body)
		}
	}
	dns.Set(host, dnslab.Record{Addr: rnPrivate2, TTL: 0})
	asked := 0
	for _, q := range dns.Queries() {
		if q.Name == host+"." && q.Type == dnsmessage.TypeA {
			asked++
		}
	}
	var plainElapsed time.Duration
	got := make(map[string]rnFetch)
	for _, c := range clients {
		c.closeIdle() // a kept-alive connection would reach the first address
		f := rnGet(c, host, 10*time.Second)
		got[c.name] = f
		table.add(name, c.name, f)
		t.Logf("%-8s %v (err: %v)", c.name, f, f.err)
		switch c.name {
		case "plain":
			plainElapsed = f.elapsed
			if f.err != nil || f.body != "private2" {
				t.Errorf("plain: %v, %q; want it to reach private2", f.err, f.body)
			}
		default:
			var de *sockets.DeniedError
			if !errors.As(f.err, &de) || de.Addr.Addr() != rnPrivate2 {
				t.Errorf("%s: %v; want a refusal of %v", c.name, f.err, rnPrivate2)
			}
			if n := priv.accepted.Load(); n != 0 {
				t.Errorf("%s: private2 accepted %d connections", c.name, n)
			}
		}
	}
	for _, name := range []string{"sockets", "urlfetch"} {
		if e := got[name].elapsed; e > plainElapsed+rnMargin {
			t.Errorf("%s: %v, plain net/http %v: slower than plain", name, e, plainElapsed)
		}
	}
	// Every client asked again: nothing was cached past TTL 0.
	again := -asked
	for _, q := range dns.Queries() {
		if q.Name == host+"." && q.Type == dnsmessage.TypeA {
			again++
		}
	}
	if again < len(clients) {
		t.Errorf("%d A queries after the change, want one per client at least (%d)", again, len(clients))
	}
}
