package rigs_test

// Egress through a proxy fleet, against real proxies: Squid and
// smokescreen (proxy_rig_test.go), in a network namespace of the test's
// own (lab.InNetNS) where the "public" destinations are on the
// loopback interface, so that the proxies connect to them for real and
// nothing leaves the machine. Both backends and the raw dialer go through
// each proxy, and must show: the proxy is asked for the checked IP
// address, never the name; a refused destination reaches neither the
// proxy nor the destination; TLS names and Host headers are the names
// dialed; credentials work; each proxy failure is typed, is never a
// policy refusal, and a refusal is not retried; OUTBOUND_PROXY is read
// by FromEnv, and the HTTP_PROXY family is not.

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/smtp"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outbound-go/outbound/examples/internal/dnslab"
	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/transport"
	"github.com/outbound-go/outbound/urlfetch"
)

// The addresses of the namespace, all on its lo.
var (
	egWeb4    = netip.MustParseAddr("93.184.216.34")   // HTTPS on 443, HTTP on 80, SMTP on 587
	egWeb6    = netip.MustParseAddr("2606:4700::1111") // HTTPS on 443
	egDead4   = netip.MustParseAddr("151.101.1.1")     // black hole on 443: SYNs dropped
	egDead6   = netip.MustParseAddr("2a04:4e42::1")    // black hole on 443
	egBarred  = netip.MustParseAddr("151.101.1.3")     // public, refused by both proxies' own rules; counting server on 443
	egPrivate = netip.MustParseAddr("10.1.0.1")        // private (RFC 1918): counting server on 443 and 80
)

// egCA signs every certificate of the namespace: the servers' (for
// *.egress.example) and the https:// proxy's.
var egCA = sync.OnceValue(func() *lab.CA { return lab.NewCA("egress test CA") })

// egServers are the namespace's servers: what each saw, and how many
// connections the ones no one may reach accepted.
type egServers struct {
	mu    sync.Mutex
	sni   []string // TLS server names, in order, HTTPS and SMTP
	hosts []string // Host headers, in order

	barred, private []*lab.Server
}

func (s *egServers) seen() (sni, hosts []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.sni...), append([]string(nil), s.hosts...)
}

// untouched fails t if a server no one may reach accepted a connection.
func (s *egServers) untouched(t *testing.T) {
	t.Helper()
	for _, srv := range append(append([]*lab.Server(nil), s.barred...), s.private...) {
		if n := len(srv.Accepted()); n != 0 {
			t.Errorf("%s accepted %d connections; want none", srv.Addr(), n)
		}
	}
}

// startEgServers starts the namespace's servers.
func startEgServers(t *testing.T) *egServers {
	t.Helper()
	s := &egServers{}
	cert := egCA().Issue("*.egress.example")
	serverTLS := &tls.Config{
		Certificates: []tls.Certificate{cert},
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			s.mu.Lock()
			s.sni = append(s.sni, hello.ServerName)
			s.mu.Unlock()
			return nil, nil
		},
	}
	web := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			s.hosts = append(s.hosts, r.Host)
			s.mu.Unlock()
			fmt.Fprintf(w, "%s for %s", name, r.Host)
		})
	}
	serve := func(ap netip.AddrPort, tlsCfg *tls.Config, h http.Handler) {
		ln, err := net.Listen("tcp", ap.String())
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: h, TLSConfig: tlsCfg, ErrorLog: discardLog}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if tlsCfg != nil {
				srv.ServeTLS(ln, "", "")
			} else {
				srv.Serve(ln)
			}
		}()
		t.Cleanup(func() { srv.Close(); <-done })
	}
	serve(netip.AddrPortFrom(egWeb4, 443), serverTLS.Clone(), web("web4")) // a server changes its own
	serve(netip.AddrPortFrom(egWeb4, 80), nil, web("web4"))
	serve(netip.AddrPortFrom(egWeb6, 443), serverTLS.Clone(), web("web6"))
	listen := func(ap netip.AddrPort, handle func(context.Context, net.Conn)) *lab.Server {
		ln, err := net.Listen("tcp", ap.String())
		if err != nil {
			t.Fatal(err)
		}
		return lab.Serve(t, ln, handle)
	}
	listen(netip.AddrPortFrom(egWeb4, 587), func(_ context.Context, c net.Conn) { egSMTP(c, serverTLS) })
	hold := func(ctx context.Context, c net.Conn) { <-ctx.Done() }
	s.barred = append(s.barred, listen(netip.AddrPortFrom(egBarred, 443), hold))
	s.private = append(s.private, listen(netip.AddrPortFrom(egPrivate, 443), hold), listen(netip.AddrPortFrom(egPrivate, 80), hold))
	lab.NewBlackHole(t, netip.AddrPortFrom(egDead4, 443))
	lab.NewBlackHole(t, netip.AddrPortFrom(egDead6, 443))
	return s
}

// egSMTP is the SMTP submission server on 587, as much of it as a client
// needs to greet it, start TLS and quit (RFC 5321, RFC 3207).
func egSMTP(c net.Conn, tlsCfg *tls.Config) {
	var rw *bufio.ReadWriter
	reset := func(c net.Conn) { rw = bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c)) }
	reply := func(s string) { rw.WriteString(s + "\r\n"); rw.Flush() }
	reset(c)
	reply("220 smtp.egress.example ESMTP")
	secure := false
	for {
		line, err := rw.ReadString('\n')
		if err != nil {
			return
		}
		switch verb := strings.ToUpper(strings.Fields(line + " x")[0]); verb {
		case "EHLO":
			if secure {
				reply("250 smtp.egress.example")
			} else {
				reply("250-smtp.egress.example\r\n250 STARTTLS")
			}
		case "STARTTLS":
			reply("220 go ahead")
			tc := tls.Server(c, tlsCfg)
			if tc.Handshake() != nil {
				return
			}
			c, secure = tc, true
			reset(c)
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 not here")
		}
	}
}

// egProxy is one of the real proxies under test, behind a recorder.
type egProxy struct {
	name     string
	rec      *recorder
	auth     *recorder // squid's port that wants credentials; nil for smokescreen
	status   int       // the status with which the proxy refuses egBarred
	plainURL *url.URL  // the proxy itself, for plain net/http
}

// egClient is one way to fetch through a proxy: a backend, or plain
// net/http.
type egClient struct {
	name string
	rt   http.RoundTripper
}

// egBackends returns both backends, resolving through res, trusting egCA,
// going through proxy, retrying retries times.
func egBackends(t *testing.T, res *net.Resolver, proxy *url.URL, retries int) []egClient {
	t.Helper()
	var cs []egClient
	for _, b := range []transport.Backend{transport.Sockets, transport.URLFetch} {
		tr, err := transport.New(transport.Config{
			Backend:  b,
			Dialer:   sockets.Dialer{Resolver: res, Proxy: proxy},
			TLS:      tlsconf.Config{RootCAs: egCA().Pool()},
			URLFetch: transport.URLFetchConfig{Deadline: 30 * time.Second},
			Retries:  retries, RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tr.CloseIdleConnections)
		cs = append(cs, egClient{b.String(), tr})
	}
	return cs
}

// egUnsetenv removes key from the environment until t ends.
func egUnsetenv(t *testing.T, key string) {
	t.Helper()
	t.Setenv(key, "") // restores the value at the end
	os.Unsetenv(key)
}

func egGet(ctx context.Context, rt http.RoundTripper, rawURL string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return string(body), err
}

// permanent reports whether err is final: whether transport's retry rule
// (transport.Retryable) would never try again a GET that ended with it.
func permanent(err error) bool {
	req, _ := http.NewRequest(http.MethodGet, "https://www.egress.example/", nil)
	return !transport.Retryable(req, nil, err)
}

func TestProxy(t *testing.T) {
	if !lab.InNetNS(t, egWeb4, egWeb6, egDead4, egDead6, egBarred, egPrivate) {
		return
	}
	dns := dnslab.NewDNSServer(t)
	res := dns.Resolver()
	for name, addrs := range map[string][]netip.Addr{
		"www.egress.example":      {egWeb4},
		"v6.egress.example":       {egWeb6},
		"smtp.egress.example":     {egWeb4},
		"eyeballs.egress.example": {egDead6, egWeb4},
		"dead.egress.example":     {egDead4},
		"barred.egress.example":   {egBarred},
		"intranet.egress.example": {egPrivate},
		"mixed.egress.example":    {egPrivate, egWeb4},
	} {
		var rrs []dnslab.Record
		for _, a := range addrs {
			rrs = append(rrs, dnslab.Record{Addr: a, TTL: 60})
		}
		dns.Set(name, rrs...)
	}
	servers := startEgServers(t)

	// Squid tunnels to the public addresses of the namespace and refuses
	// the rest, egBarred among them, with 403. Smokescreen's own
	// classifier refuses non-public addresses, and egBarred by an extra
	// rule; its refusal is a 407 without a challenge.
	allowed := []string{egWeb4.String() + "/32", egWeb6.String() + "/128", egDead4.String() + "/32", egDead6.String() + "/128"}
	smoke := startSmokescreen(t, nil, []string{egBarred.String() + "/32"}, nil, nil)
	proxies := []*egProxy{
		{name: "smokescreen", rec: newRecorder(t, smoke), status: 407, plainURL: &url.URL{Scheme: "http", Host: smoke}},
	}
	var sq *squidProxy
	_, _, noSquid := findSquid()
	if noSquid == "" {
		sq = startSquid(t, allowed...)
		proxies = append(proxies, &egProxy{name: "squid", rec: newRecorder(t, sq.open), auth: newRecorder(t, sq.auth), status: 403, plainURL: &url.URL{Scheme: "http", Host: sq.open}})
	} else {
		t.Run("squid", func(t *testing.T) { unavailableProxy(t, noSquid) })
	}

	for _, px := range proxies {
		t.Run(px.name, func(t *testing.T) {
			t.Run("tunnel to the checked address", func(t *testing.T) { egTunnel(t, px, res, servers) })
			t.Run("happy eyeballs and deadlines", func(t *testing.T) { egEyeballs(t, px, res) })
			t.Run("refused before the proxy", func(t *testing.T) { egRefusedFirst(t, px, res, servers) })
			t.Run("refused by the proxy", func(t *testing.T) { egRefusedByProxy(t, px, res, servers) })
			t.Run("raw SMTP on 587", func(t *testing.T) { egRawSMTP(t, px, res, servers) })
			if px.auth != nil {
				t.Run("credentials", func(t *testing.T) { egCredentials(t, px, res) })
			}
		})
	}
	t.Run("unreachable and broken proxies", func(t *testing.T) { egBadProxies(t, res) })
	t.Run("https proxy", func(t *testing.T) { egHTTPSProxy(t, res, servers) })
	// Through Squid only: smokescreen's proxy library (goproxy) follows
	// HTTPS_PROXY from its process's environment, which is this one's,
	// and the test points that at a decoy.
	t.Run("FromEnv", func(t *testing.T) {
		if sq == nil {
			unavailableProxy(t, noSquid)
		}
		egFromEnv(t, proxies[len(proxies)-1])
	})

	if sq == nil {
		return
	}
	// Squid's own log: every tunnel it was asked for was to an IP literal.
	entries := sq.accessLog(t)
	connects := 0
	for _, e := range entries {
		if e.Method == "-" && strings.HasPrefix(e.URL, "error:transaction-end-before-headers") {
			continue // a connection without a request: startSquid's readiness probe
		}
		if e.Method != http.MethodConnect {
			t.Errorf("squid logged %s %s; want CONNECT only", e.Method, e.URL)
			continue
		}
		connects++
		if !isIPLiteralTarget(e.URL) {
			t.Errorf("squid was asked to CONNECT to %q: not an IP literal", e.URL)
		}
	}
	if connects == 0 {
		t.Error("squid logged no CONNECT")
	}
	t.Logf("squid's access log: %d CONNECTs, all to IP literals", connects)
}

// egTunnel: each backend fetches over https and http, IPv4 and IPv6,
// through the proxy: the proxy is asked for the checked IP literal, and
// the server sees the name as TLS server name and Host.
func egTunnel(t *testing.T, px *egProxy, res *net.Resolver, servers *egServers) {
	for _, tc := range []struct {
		url, target, body string
	}{
		{"https://www.egress.example/", "93.184.216.34:443", "web4 for www.egress.example"},
		{"http://www.egress.example/", "93.184.216.34:80", "web4 for www.egress.example"},
		{"https://v6.egress.example/", "[2606:4700::1111]:443", "web6 for v6.egress.example"},
		{"https://mixed.egress.example/", "93.184.216.34:443", "web4 for mixed.egress.example"},
	} {
		for _, c := range egBackends(t, res, px.rec.URL(nil), 0) {
			t.Run(c.name+" "+tc.url, func(t *testing.T) {
				before := len(px.rec.Heads())
				body, err := egGet(t.Context(), c.rt, tc.url)
				if err != nil || body != tc.body {
					t.Fatalf("GET: %q, %v; want %q", body, err, tc.body)
				}
				heads := px.rec.Heads()[before:]
				if len(heads) != 1 || heads[0].Method != http.MethodConnect || heads[0].Target != tc.target || heads[0].Host != tc.target {
					t.Fatalf("the proxy was asked %+v; want one CONNECT %s, with Host %[2]s", heads, tc.target)
				}
				u, _ := url.Parse(tc.url)
				sni, hosts := servers.seen()
				if hosts[len(hosts)-1] != u.Host {
					t.Errorf("Host %q; want %q", hosts[len(hosts)-1], u.Host)
				}
				if u.Scheme == "https" && sni[len(sni)-1] != u.Host {
					t.Errorf("TLS server name %q; want %q", sni[len(sni)-1], u.Host)
				}
			})
		}
	}
}

// egEyeballs: a name whose first address is dead is reached through its
// second; one whose every address is dead ends at its deadline, as a
// timeout, not as a proxy failure.
func egEyeballs(t *testing.T, px *egProxy, res *net.Resolver) {
	if addrs, err := res.LookupNetIP(t.Context(), "ip", "eyeballs.egress.example"); err != nil || len(addrs) == 0 || addrs[0] != egDead6 {
		t.Fatalf("premise: the resolver gives %v, %v; want %v first", addrs, err, egDead6)
	}
	for _, c := range egBackends(t, res, px.rec.URL(nil), 0) {
		t.Run(c.name, func(t *testing.T) {
			before := len(px.rec.Heads())
			start := time.Now()
			body, err := egGet(t.Context(), c.rt, "https://eyeballs.egress.example/")
			if err != nil || body != "web4 for eyeballs.egress.example" {
				t.Fatalf("GET: %q, %v", body, err)
			}
			if e := time.Since(start); e > 10*time.Second {
				t.Errorf("took %v: the dead first address held the dial", e)
			}
			targets := strings.Join(egTargets(px.rec.Heads()[before:]), " ")
			if targets != "[2a04:4e42::1]:443 93.184.216.34:443" {
				t.Errorf("tunnels asked: %s; want the dead IPv6 address, then the IPv4 one", targets)
			}

			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			start = time.Now()
			_, err = egGet(ctx, c.rt, "https://dead.egress.example/")
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, sockets.ErrProxy) {
				t.Errorf("dead: %v; want a timeout (net.Error and context.DeadlineExceeded), not a proxy failure", err)
			}
			if e := time.Since(start); e > 2*time.Second+5*time.Second {
				t.Errorf("dead: took %v with a 2 s deadline", e)
			}
		})
	}
}

func egTargets(heads []recordedHead) []string {
	var ts []string
	for _, h := range heads {
		ts = append(ts, h.Target)
	}
	return ts
}

// egRefusedFirst: destinations the policy refuses are refused before a
// connection to the proxy, by both backends and the raw dialer; the proxy
// would have refused them too, as plain net/http through it shows.
func egRefusedFirst(t *testing.T, px *egProxy, res *net.Resolver, servers *egServers) {
	accepted := len(px.rec.Accepted())
	for _, c := range egBackends(t, res, px.rec.URL(nil), 3) {
		for _, u := range []string{
			"https://intranet.egress.example/",
			"http://intranet.egress.example/",
			"https://10.1.0.1/",
			"http://169.254.169.254/latest/meta-data/",
			"https://[::ffff:10.1.0.1]/",
			"https://" + px.plainURL.Host + "/", // the proxy's own address is no destination
		} {
			_, err := egGet(t.Context(), c.rt, u)
			var de *sockets.DeniedError
			if !errors.As(err, &de) || !errors.Is(err, sockets.ErrDenied) || errors.Is(err, sockets.ErrProxy) {
				t.Errorf("%s %s: %v; want a policy refusal", c.name, u, err)
			}
		}
	}
	d := &sockets.Dialer{Resolver: res, Proxy: px.rec.URL(nil)}
	for _, addr := range []string{"intranet.egress.example:443", "10.1.0.1:80", "www.egress.example:25", "169.254.169.254:80"} {
		if c, err := d.DialContext(t.Context(), "tcp", addr); !errors.Is(err, sockets.ErrDenied) {
			if c != nil {
				c.Close()
			}
			t.Errorf("raw %s: %v; want a policy refusal", addr, err)
		}
	}
	if n := len(px.rec.Accepted()) - accepted; n != 0 {
		t.Fatalf("the proxy got %d connections for refused destinations; want none", n)
	}
	servers.untouched(t)

	// Defence in depth: asked directly, the proxy refuses them as well.
	plain := &http.Transport{Proxy: http.ProxyURL(px.plainURL), TLSClientConfig: &tls.Config{RootCAs: egCA().Pool()}}
	defer plain.CloseIdleConnections()
	if body, err := egGet(t.Context(), plain, "https://10.1.0.1/"); err == nil {
		t.Errorf("plain net/http through %s reached 10.1.0.1: %q", px.name, body)
	}
	servers.untouched(t)
}

// egRefusedByProxy: a destination the policy allows and the proxy
// refuses fails with a ProxyError carrying the proxy's status, which is
// not a policy refusal, and is not retried.
func egRefusedByProxy(t *testing.T, px *egProxy, res *net.Resolver, servers *egServers) {
	check := func(t *testing.T, err error) {
		t.Helper()
		var pe *sockets.ProxyError
		if !errors.As(err, &pe) || pe.Kind != sockets.ProxyRefused || pe.StatusCode != px.status || !permanent(err) {
			t.Fatalf("%v; want a permanent ProxyRefused with status %d", err, px.status)
		}
		if errors.Is(err, sockets.ErrDenied) || !errors.Is(err, sockets.ErrProxy) || !permanent(err) {
			t.Errorf("%v: want ErrProxy, not ErrDenied, and permanent", err)
		}
		if pe.Addr != netip.AddrPortFrom(egBarred, 443) {
			t.Errorf("addr %v", pe.Addr)
		}
	}
	for _, c := range egBackends(t, res, px.rec.URL(nil), 3) {
		t.Run(c.name, func(t *testing.T) {
			before := len(px.rec.Heads())
			_, err := egGet(t.Context(), c.rt, "https://barred.egress.example/")
			check(t, err)
			if n := len(px.rec.Heads()) - before; n != 1 {
				t.Errorf("%d CONNECTs with Retries 3; want 1: a proxy's refusal is not retried", n)
			}
		})
	}
	t.Run("raw", func(t *testing.T) {
		d := &sockets.Dialer{Resolver: res, Proxy: px.rec.URL(nil)}
		_, err := d.DialContext(t.Context(), "tcp", "barred.egress.example:443")
		check(t, err)
	})
	servers.untouched(t)
}

// egRawSMTP: a raw connection from the dialer, an SMTP client on the
// submission port, tunnels as HTTP does, and its STARTTLS checks the name.
func egRawSMTP(t *testing.T, px *egProxy, res *net.Resolver, servers *egServers) {
	d := &sockets.Dialer{Resolver: res, Proxy: px.rec.URL(nil)}
	before := len(px.rec.Heads())
	conn, err := d.DialContext(t.Context(), "tcp", "smtp.egress.example:587")
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClient(conn, "smtp.egress.example")
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartTLS(&tls.Config{ServerName: "smtp.egress.example", RootCAs: egCA().Pool()}); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatalf("QUIT: %v", err)
	}
	if targets := egTargets(px.rec.Heads()[before:]); len(targets) != 1 || targets[0] != "93.184.216.34:587" {
		t.Errorf("tunnels asked: %v; want 93.184.216.34:587", targets)
	}
	if sni, _ := servers.seen(); sni[len(sni)-1] != "smtp.egress.example" {
		t.Errorf("TLS server name %q", sni[len(sni)-1])
	}
}

// egCredentials: squid's "auth" port wants credentials: none, or wrong
// ones, fail with ProxyAuthRequired (not retried); the right ones pass.
func egCredentials(t *testing.T, px *egProxy, res *net.Resolver) {
	for _, tc := range []struct {
		name string
		user *url.Userinfo
		ok   bool
	}{
		{"none", nil, false},
		{"wrong", url.UserPassword(squidUser, "not-it"), false},
		{"right", url.UserPassword(squidUser, squidPass), true},
	} {
		for _, c := range egBackends(t, res, px.auth.URL(tc.user), 3) {
			t.Run(tc.name+" "+c.name, func(t *testing.T) {
				before := len(px.auth.Heads())
				body, err := egGet(t.Context(), c.rt, "https://www.egress.example/")
				heads := px.auth.Heads()[before:]
				if tc.ok {
					if err != nil || body != "web4 for www.egress.example" {
						t.Fatalf("GET: %q, %v", body, err)
					}
					if len(heads) != 1 || !strings.HasPrefix(heads[0].Header.Get("Proxy-Authorization"), "Basic ") {
						t.Errorf("heads %+v; want one CONNECT with Basic credentials", heads)
					}
					return
				}
				var pe *sockets.ProxyError
				if !errors.As(err, &pe) || pe.Kind != sockets.ProxyAuthRequired || pe.StatusCode != 407 || !permanent(err) {
					t.Fatalf("%v; want a permanent ProxyAuthRequired", err)
				}
				if strings.Contains(err.Error(), "not-it") {
					t.Errorf("%q repeats the password", err)
				}
				if len(heads) != 1 {
					t.Errorf("%d CONNECTs with Retries 3; want 1", len(heads))
				}
			})
		}
	}
	d := &sockets.Dialer{Resolver: res, Proxy: px.auth.URL(url.UserPassword(squidUser, squidPass))}
	c, err := d.DialContext(t.Context(), "tcp", "smtp.egress.example:587")
	if err != nil {
		t.Fatalf("raw dial with credentials: %v", err)
	}
	c.Close()
}

// egBadProxies: a proxy that cannot be reached, and one that breaks the
// exchange, fail with their kinds, on both backends and the raw dialer.
func egBadProxies(t *testing.T, res *net.Resolver) {
	closed := &url.URL{Scheme: "http", Host: freePort(t)}
	broken := lab.NewServer(t, func(_ context.Context, c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			io.WriteString(c, "HTTP/1.1 2")
		}
	})
	for _, tc := range []struct {
		name  string
		proxy *url.URL
		kind  sockets.ProxyFailure
	}{
		{"unreachable", closed, sockets.ProxyUnreachable},
		{"broken", &url.URL{Scheme: "http", Host: broken.Addr()}, sockets.ProxyBroken},
	} {
		for _, c := range egBackends(t, res, tc.proxy, 0) {
			t.Run(tc.name+" "+c.name, func(t *testing.T) {
				_, err := egGet(t.Context(), c.rt, "https://www.egress.example/")
				var pe *sockets.ProxyError
				if !errors.As(err, &pe) || pe.Kind != tc.kind || errors.Is(err, sockets.ErrDenied) || permanent(err) {
					t.Fatalf("%v; want a transient %v", err, tc.kind)
				}
				if c.name == "urlfetch" && !errors.Is(err, urlfetch.ErrConnectionClosed) {
					t.Errorf("%v; want urlfetch.ErrConnectionClosed", err)
				}
			})
		}
		t.Run(tc.name+" raw", func(t *testing.T) {
			d := &sockets.Dialer{Resolver: res, Proxy: tc.proxy}
			_, err := d.DialContext(t.Context(), "tcp", "smtp.egress.example:587")
			var pe *sockets.ProxyError
			if !errors.As(err, &pe) || pe.Kind != tc.kind {
				t.Fatalf("%v; want %v", err, tc.kind)
			}
		})
	}
}

// egHTTPSProxy: an https:// proxy (smokescreen behind TLS) is verified
// with the transport's TLS settings; one whose certificate is not trusted
// is unreachable, with a certificate error naming the proxy.
func egHTTPSProxy(t *testing.T, res *net.Resolver, servers *egServers) {
	proxyTLS := &tls.Config{Certificates: []tls.Certificate{egCA().Issue("proxy.egress.test", "127.0.0.1")}}
	addr := startSmokescreen(t, proxyTLS, nil, nil, nil)
	u := &url.URL{Scheme: "https", Host: addr}
	for _, c := range egBackends(t, res, u, 0) {
		t.Run(c.name, func(t *testing.T) {
			body, err := egGet(t.Context(), c.rt, "https://www.egress.example/")
			if err != nil || body != "web4 for www.egress.example" {
				t.Fatalf("GET through https://%s: %q, %v", addr, body, err)
			}
		})
	}
	t.Run("untrusted", func(t *testing.T) {
		other := lab.NewCA("another CA")
		for _, b := range []transport.Backend{transport.Sockets, transport.URLFetch} {
			tr, err := transport.New(transport.Config{Backend: b, Dialer: sockets.Dialer{Resolver: res, Proxy: u}, TLS: tlsconf.Config{RootCAs: other.Pool()}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = egGet(t.Context(), tr, "https://www.egress.example/")
			var pe *sockets.ProxyError
			var ce *tlsconf.CertificateError
			if !errors.As(err, &pe) || pe.Kind != sockets.ProxyUnreachable || !errors.As(err, &ce) || ce.Host != "127.0.0.1" || !permanent(err) {
				t.Errorf("%v: %v; want ProxyUnreachable with a certificate error for 127.0.0.1, permanent", b, err)
			}
			tr.CloseIdleConnections()
		}
	})
	servers.untouched(t)
}

// egFromEnv: FromEnv takes the proxy from OUTBOUND_PROXY, on either
// backend, and never from the HTTP_PROXY family, which points here at a
// decoy that must see no connection.
func egFromEnv(t *testing.T, px *egProxy) {
	decoy := lab.NewServer(t, func(context.Context, net.Conn) {})
	for _, key := range []string{"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"} {
		t.Setenv(key, "http://"+decoy.Addr())
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	for _, backend := range []string{"sockets", "urlfetch"} {
		if backend == "sockets" {
			t.Setenv(transport.EnvSockets, "")
		} else {
			egUnsetenv(t, transport.EnvSockets)
		}
		// A literal: FromEnv's resolver is the system's, and the
		// namespace has no DNS.
		const target = "http://93.184.216.34/"
		t.Run(backend+" OUTBOUND_PROXY", func(t *testing.T) {
			t.Setenv("OUTBOUND_PROXY", px.rec.URL(nil).String())
			tr, err := transport.FromEnv()
			if err != nil {
				t.Fatal(err)
			}
			defer tr.CloseIdleConnections()
			if tr.Backend().String() != backend {
				t.Fatalf("backend %v", tr.Backend())
			}
			before := len(px.rec.Heads())
			if body, err := egGet(t.Context(), tr, target); err != nil || body != "web4 for 93.184.216.34" {
				t.Fatalf("GET: %q, %v", body, err)
			}
			if targets := egTargets(px.rec.Heads()[before:]); len(targets) != 1 || targets[0] != "93.184.216.34:80" {
				t.Errorf("tunnels asked: %v; want 93.184.216.34:80", targets)
			}
		})
		t.Run(backend+" HTTP_PROXY alone", func(t *testing.T) {
			egUnsetenv(t, "OUTBOUND_PROXY")
			tr, err := transport.FromEnv()
			if err != nil {
				t.Fatal(err)
			}
			defer tr.CloseIdleConnections()
			before := len(px.rec.Accepted())
			if body, err := egGet(t.Context(), tr, target); err != nil || body != "web4 for 93.184.216.34" {
				t.Fatalf("GET: %q, %v; want a direct fetch", body, err)
			}
			if n := len(px.rec.Accepted()) - before; n != 0 {
				t.Errorf("the proxy got %d connections; want a direct fetch", n)
			}
		})
	}
	if n := len(decoy.Accepted()); n != 0 {
		t.Errorf("the HTTP_PROXY decoy got %d connections; the HTTP_PROXY family must never be read", n)
	}
}
