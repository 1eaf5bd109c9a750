package sockets_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
)

// The tests of Dialer.Proxy against a CONNECT proxy of their own on
// loopback (testProxy), which records what it is asked and can misbehave
// on purpose. The "public" destinations never receive a packet: the test
// proxy tunnels each one it knows to a loopback server standing in for
// it, and answers 502 for any other. The tests against real proxies,
// Squid and smokescreen, in a network namespace, are in the module's
// proxy_test.go.

var (
	pxWeb4  = netip.MustParseAddr("93.184.216.34")
	pxWeb6  = netip.MustParseAddr("2606:4700::1111")
	pxDead6 = netip.MustParseAddr("2a04:4e42::1")
)

// proxyRequest is one CONNECT a testProxy received.
type proxyRequest struct {
	Target string // the request target, as sent
	Host   string // the Host header
	Auth   string // the Proxy-Authorization header
}

// testProxy is an HTTP CONNECT proxy on loopback.
type testProxy struct {
	*lab.Server

	// Set before the first connection.
	route map[string]string // request target -> loopback address it stands for
	user  string            // when set, user and pass are required
	pass  string
	// reply, when set, answers a request with raw bytes (then closes)
	// instead of tunnelling; "" goes on to tunnel.
	reply func(target string) string
	// hang, when true for a target, holds the connection without a reply
	// until the client closes it, as a proxy still connecting to a dead
	// address does.
	hang func(target string) bool
	// coalesce makes the proxy wait for the destination's first bytes and
	// send them in one write with its reply.
	coalesce bool

	mu       sync.Mutex
	requests []proxyRequest
	hung     chan string   // a hung connection's target, when the client closed it
	aborted  chan struct{} // a connection the client closed before its request arrived
}

func newTestProxy(t *testing.T, configure func(p *testProxy)) *testProxy {
	t.Helper()
	p := &testProxy{route: map[string]string{}, hung: make(chan string, 16), aborted: make(chan struct{}, 16)}
	if configure != nil {
		configure(p)
	}
	p.Server = lab.NewServer(t, p.serve)
	return p
}

// URL returns the proxy's URL, with credentials when userinfo is set.
func (p *testProxy) URL(userinfo *url.Userinfo) *url.URL {
	return &url.URL{Scheme: "http", Host: p.Addr(), User: userinfo}
}

func (p *testProxy) Requests() []proxyRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]proxyRequest(nil), p.requests...)
}

func (p *testProxy) serve(ctx context.Context, c net.Conn) {
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		select {
		case p.aborted <- struct{}{}:
		default:
		}
		return
	}
	target := req.RequestURI
	p.mu.Lock()
	p.requests = append(p.requests, proxyRequest{Target: target, Host: req.Host, Auth: req.Header.Get("Proxy-Authorization")})
	p.mu.Unlock()
	if req.Method != http.MethodConnect {
		io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
		return
	}
	if p.user != "" {
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(p.user+":"+p.pass))
		if req.Header.Get("Proxy-Authorization") != want {
			io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
			return
		}
	}
	if p.reply != nil {
		if r := p.reply(target); r != "" {
			io.WriteString(c, r)
			return
		}
	}
	if p.hang != nil && p.hang(target) {
		io.Copy(io.Discard, br) // until the client closes
		p.hung <- target
		return
	}
	dst, ok := p.route[target]
	if !ok {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	var d net.Dialer
	up, err := d.DialContext(ctx, "tcp", dst)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
		return
	}
	defer up.Close()
	reply := []byte("HTTP/1.1 200 Connection established\r\n\r\n")
	if p.coalesce {
		buf := make([]byte, 512)
		n, err := up.Read(buf)
		if err != nil {
			return
		}
		reply = append(reply, buf[:n]...)
	}
	if _, err := c.Write(reply); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(up, br)
		up.Close()
	}()
	io.Copy(c, up)
	c.Close()
	<-done
}

// pxServer is an HTTPS server on loopback for the names *.proxy.example,
// recording the TLS server name and Host header of each request.
type pxServer struct {
	*httptest.Server
	tls   *tls.Config // the client's: trusts the server's certificate
	mu    sync.Mutex
	sni   []string
	hosts []string
}

func newPXServer(t *testing.T) *pxServer {
	t.Helper()
	cert, roots := lab.NewCert("*.proxy.example")
	s := &pxServer{tls: &tls.Config{RootCAs: roots}}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hosts = append(s.hosts, r.Host)
		s.mu.Unlock()
		io.WriteString(w, "hello from "+r.Host)
	}))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes cut short by the tests
	s.TLS = &tls.Config{
		Certificates: []tls.Certificate{cert},
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			s.mu.Lock()
			s.sni = append(s.sni, hello.ServerName)
			s.mu.Unlock()
			return nil, nil
		},
	}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *pxServer) seen() (sni, hosts []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.sni...), append([]string(nil), s.hosts...)
}

// client returns an http.Transport dialing with dial, trusting s.
func (s *pxServer) client(t *testing.T, dial func(context.Context, string, string) (net.Conn, error)) *http.Transport {
	t.Helper()
	tr := &http.Transport{DialContext: dial, TLSClientConfig: s.tls.Clone(), ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func pxGet(t *testing.T, rt http.RoundTripper, rawURL string) (string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return string(body), err
}

func TestProxyTunnelsToTheCheckedAddress(t *testing.T) {
	srv := newPXServer(t)
	proxy := newTestProxy(t, func(p *testProxy) {
		p.route["93.184.216.34:443"] = srv.Listener.Addr().String()
		p.route["[2606:4700::1111]:443"] = srv.Listener.Addr().String()
	})
	res := lab.NewResolver(map[string][]string{
		"www.proxy.example": {pxWeb4.String()},
		"v6.proxy.example":  {pxWeb6.String()},
	})
	d := &sockets.Dialer{Resolver: res, Proxy: proxy.URL(nil)}

	for _, tc := range []struct {
		name, host, target string
		dial               func(context.Context, string, string) (net.Conn, error)
	}{
		{"IPv4 DialContext", "www.proxy.example", "93.184.216.34:443", d.DialContext},
		{"IPv6 DialContext", "v6.proxy.example", "[2606:4700::1111]:443", d.DialContext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(proxy.Requests())
			body, err := pxGet(t, srv.client(t, tc.dial), "https://"+tc.host+"/")
			if err != nil || body != "hello from "+tc.host {
				t.Fatalf("GET: %q, %v", body, err)
			}
			reqs := proxy.Requests()[before:]
			if len(reqs) != 1 || reqs[0].Target != tc.target || reqs[0].Host != tc.target || reqs[0].Auth != "" {
				t.Fatalf("the proxy was asked %+v; want one CONNECT %s (an IP literal, never the name), Host the same, no credentials", reqs, tc.target)
			}
			sni, hosts := srv.seen()
			if sni[len(sni)-1] != tc.host || hosts[len(hosts)-1] != tc.host {
				t.Errorf("server saw TLS name %q and Host %q; want the name dialed, %q", sni[len(sni)-1], hosts[len(hosts)-1], tc.host)
			}
		})
	}

	t.Run("TLS through the tunnel", func(t *testing.T) {
		c, err := d.DialContext(t.Context(), "tcp", "www.proxy.example:443")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := c.RemoteAddr().String(); got != proxy.Addr() {
			t.Errorf("RemoteAddr() = %v; want the proxy, %v", got, proxy.Addr())
		}
		tc := tls.Client(c, tlsconf.ForHost(srv.tls, "www.proxy.example"))
		if err := tc.HandshakeContext(t.Context()); err != nil {
			t.Fatalf("TLS through the tunnel: %v", err)
		}
		tc.Close()
	})
}

// TestProxyRefusalsSendNothing: a destination the policy refuses is
// refused before any connection to the proxy, and so is UDP; a name with
// refused and allowed addresses tunnels to the allowed one only.
func TestProxyRefusalsSendNothing(t *testing.T) {
	srv := newPXServer(t)
	proxy := newTestProxy(t, func(p *testProxy) {
		p.route["93.184.216.34:443"] = srv.Listener.Addr().String()
	})
	res := lab.NewResolver(map[string][]string{
		"intranet.proxy.example": {"10.1.0.1"},
		"metadata.proxy.example": {"169.254.169.254"},
		"mixed.proxy.example":    {"127.0.0.1", pxWeb4.String()},
	})
	d := &sockets.Dialer{Resolver: res, Proxy: proxy.URL(url.UserPassword("u", "p"))}
	for _, tc := range []struct{ network, addr string }{
		{"tcp", "intranet.proxy.example:443"},
		{"tcp", "metadata.proxy.example:80"},
		{"tcp", "169.254.169.254:80"},
		{"tcp", "[::ffff:10.1.0.1]:443"},
		{"tcp", "127.0.0.1:443"},
		{"tcp", "www.proxy.example:25"},
		{"tcp", "www.proxy.example:21"},
		{"tcp4", "[2606:4700::1111]:443"},
		{"udp", "93.184.216.34:53"},
		{"unix", "/tmp/socket"},
	} {
		t.Run(tc.network+" "+tc.addr, func(t *testing.T) {
			c, err := d.DialContext(t.Context(), tc.network, tc.addr)
			if err == nil {
				c.Close()
				t.Fatal("connected; want a refusal")
			}
			var de *sockets.DeniedError
			if !errors.As(err, &de) || !errors.Is(err, sockets.ErrDenied) || errors.Is(err, sockets.ErrProxy) {
				t.Fatalf("%v; want a *DeniedError, not a proxy error", err)
			}
			if strings.HasPrefix(tc.network, "udp") && de.Rule != sockets.RuleProxyNetwork {
				t.Errorf("rule %q; want %q", de.Rule, sockets.RuleProxyNetwork)
			}
		})
	}
	if n := len(proxy.Accepted()); n != 0 {
		t.Fatalf("the proxy accepted %d connections for refused destinations; want none", n)
	}
	if got := res.Lookups(); len(got) != 2 {
		// Port 25 and 21 are refused before a lookup, as without a proxy.
		t.Errorf("lookups %v; want the two names with allowed ports only", got)
	}

	// Mixed answers: only the allowed address is asked for.
	body, err := pxGet(t, srv.client(t, d.DialContext), "https://mixed.proxy.example/")
	if err != nil || body != "hello from mixed.proxy.example" {
		t.Fatalf("GET mixed: %q, %v", body, err)
	}
	if reqs := proxy.Requests(); len(reqs) != 1 || reqs[0].Target != "93.184.216.34:443" {
		t.Fatalf("the proxy was asked %+v; want 93.184.216.34:443 only", reqs)
	}
}

func TestProxyCredentials(t *testing.T) {
	srv := newPXServer(t)
	const user, pass = "alice", "p@ss:w/rd é"
	proxy := newTestProxy(t, func(p *testProxy) {
		p.route["93.184.216.34:443"] = srv.Listener.Addr().String()
		p.user, p.pass = user, pass
	})
	res := lab.NewResolver(map[string][]string{"www.proxy.example": {pxWeb4.String()}})
	for _, tc := range []struct {
		name string
		user *url.Userinfo
		ok   bool
	}{
		{"none", nil, false},
		{"wrong password", url.UserPassword(user, "guess"), false},
		{"user only", url.User(user), false},
		{"right", url.UserPassword(user, pass), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &sockets.Dialer{Resolver: res, Proxy: proxy.URL(tc.user)}
			c, err := d.DialContext(t.Context(), "tcp", "www.proxy.example:443")
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
				return
			}
			if err == nil {
				c.Close()
				t.Fatal("connected; want the proxy to ask for credentials")
			}
			var pe *sockets.ProxyError
			if !errors.As(err, &pe) || pe.Kind != sockets.ProxyAuthRequired || pe.StatusCode != 407 {
				t.Fatalf("%#v; want ProxyAuthRequired with status 407", err)
			}
			if strings.Contains(err.Error(), "guess") || strings.Contains(err.Error(), user) || pe.Proxy != "http://"+proxy.Addr() {
				t.Errorf("%q (proxy %q): credentials in the error", err, pe.Proxy)
			}
		})
	}
	// The URL's encoding of the password was undone before it was sent.
	var sent []string
	for _, r := range proxy.Requests() {
		sent = append(sent, r.Auth)
	}
	if want := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass)); sent[len(sent)-1] != want {
		t.Errorf("Proxy-Authorization %q; want %q", sent[len(sent)-1], want)
	}
}

func TestProxyFailures(t *testing.T) {
	res := lab.NewResolver(map[string][]string{
		"www.proxy.example": {pxWeb4.String()},
		"wrong.proxy.test":  {"127.0.0.1"}, // a proxy's name, resolved through the Dialer's resolver
	})
	closedPort := func() string {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}()
	proxyCert, proxyRoots := lab.NewCert("proxy.test", "127.0.0.1")
	tlsProxy := func(t *testing.T, reply string) string {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{proxyCert}})
		s := lab.Serve(t, ln, func(_ context.Context, c net.Conn) {
			if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				io.WriteString(c, reply)
			}
		})
		return s.Addr()
	}
	replying := func(reply string) func(*testProxy) {
		return func(p *testProxy) { p.reply = func(string) string { return reply } }
	}

	for _, tc := range []struct {
		name     string
		proxy    func(t *testing.T) *url.URL
		proxyTLS *tls.Config
		kind     sockets.ProxyFailure
		status   int
		check    func(t *testing.T, err error)
	}{
		{
			name: "refused 403",
			proxy: func(t *testing.T) *url.URL {
				return newTestProxy(t, replying("HTTP/1.1 403 Forbidden\r\n\r\n")).URL(nil)
			},
			kind: sockets.ProxyRefused, status: 403,
		},
		{
			name: "refused 407 without a challenge (smokescreen)",
			proxy: func(t *testing.T) *url.URL {
				return newTestProxy(t, replying("HTTP/1.1 407 Request rejected by proxy\r\nX-Smokescreen-Error: denied\r\n\r\n")).URL(nil)
			},
			kind: sockets.ProxyRefused, status: 407,
		},
		{
			name:  "refused 502, the proxy could not connect",
			proxy: func(t *testing.T) *url.URL { return newTestProxy(t, nil).URL(nil) }, // no route: 502
			kind:  sockets.ProxyRefused, status: 502,
		},
		{
			name:  "refused 503 over HTTP/1.0",
			proxy: func(t *testing.T) *url.URL { return newTestProxy(t, replying("HTTP/1.0 503 Busy\r\n\r\n")).URL(nil) },
			kind:  sockets.ProxyRefused, status: 503,
		},
		{
			name:  "needs credentials",
			proxy: func(t *testing.T) *url.URL { return newTestProxy(t, func(p *testProxy) { p.user = "u" }).URL(nil) },
			kind:  sockets.ProxyAuthRequired, status: 407,
		},
		{
			name:  "unreachable: nothing listens",
			proxy: func(*testing.T) *url.URL { return &url.URL{Scheme: "http", Host: closedPort} },
			kind:  sockets.ProxyUnreachable,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, syscall.ECONNREFUSED) {
					t.Errorf("%v; want connection refused inside", err)
				}
			},
		},
		{
			name:  "unreachable: the name does not resolve",
			proxy: func(*testing.T) *url.URL { return &url.URL{Scheme: "http", Host: "proxy.invalid:3128"} },
			kind:  sockets.ProxyUnreachable,
			check: func(t *testing.T, err error) {
				if !errors.As(err, new(*sockets.LookupError)) {
					t.Errorf("%v; want a *LookupError inside", err)
				}
			},
		},
		{
			name:  "unreachable: https proxy with an unknown certificate",
			proxy: func(t *testing.T) *url.URL { return &url.URL{Scheme: "https", Host: tlsProxy(t, "")} },
			kind:  sockets.ProxyUnreachable,
			check: func(t *testing.T, err error) {
				var ce *tlsconf.CertificateError
				if !errors.As(err, &ce) || ce.Host != "127.0.0.1" {
					t.Errorf("%v; want a *tlsconf.CertificateError for the proxy, 127.0.0.1", err)
				}
			},
		},
		{
			name: "unreachable: https proxy, certificate for another name",
			proxy: func(t *testing.T) *url.URL {
				return &url.URL{Scheme: "https", Host: "wrong.proxy.test:" + portOf(tlsProxy(t, ""))}
			},
			proxyTLS: &tls.Config{RootCAs: proxyRoots},
			kind:     sockets.ProxyUnreachable,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, tlsconf.ErrCertificate) {
					t.Errorf("%v; want a certificate error", err)
				}
			},
		},
		{
			name: "https proxy refuses",
			proxy: func(t *testing.T) *url.URL {
				return &url.URL{Scheme: "https", Host: tlsProxy(t, "HTTP/1.1 403 Forbidden\r\n\r\n")}
			},
			proxyTLS: &tls.Config{RootCAs: proxyRoots},
			kind:     sockets.ProxyRefused, status: 403,
		},
		{
			name:  "broken: closed without a reply",
			proxy: func(t *testing.T) *url.URL { return newTestProxy(t, replying("HTTP/1.1 200 Conn")).URL(nil) },
			kind:  sockets.ProxyBroken,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("%v; want io.ErrUnexpectedEOF inside", err)
				}
			},
		},
		{
			name:  "broken: not HTTP",
			proxy: func(t *testing.T) *url.URL { return newTestProxy(t, replying("SSH-2.0-OpenSSH_9.2\r\n\r\n")).URL(nil) },
			kind:  sockets.ProxyBroken,
		},
		{
			name: "broken: endless header",
			proxy: func(t *testing.T) *url.URL {
				return newTestProxy(t, replying("HTTP/1.1 200 OK\r\nX: "+strings.Repeat("a", 70<<10)+"\r\n\r\n")).URL(nil)
			},
			kind: sockets.ProxyBroken,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.proxy(t)
			d := &sockets.Dialer{Resolver: res, Proxy: u, ProxyTLS: tc.proxyTLS}
			c, err := d.DialContext(t.Context(), "tcp", "www.proxy.example:443")
			if err == nil {
				c.Close()
				t.Fatal("connected; want a proxy failure")
			}
			var pe *sockets.ProxyError
			if !errors.As(err, &pe) {
				t.Fatalf("%#v; want a *ProxyError", err)
			}
			if pe.Kind != tc.kind || pe.StatusCode != tc.status {
				t.Errorf("kind %v, status %d; want %v, %d (%v)", pe.Kind, pe.StatusCode, tc.kind, tc.status, err)
			}
			if !errors.Is(err, sockets.ErrProxy) || errors.Is(err, sockets.ErrDenied) {
				t.Errorf("%v: want ErrProxy and not ErrDenied", err)
			}
			if pe.Proxy != u.Scheme+"://"+u.Host || pe.Addr != netip.AddrPortFrom(pxWeb4, 443) {
				t.Errorf("proxy %q, addr %v; want %s://%s and the checked destination", pe.Proxy, pe.Addr, u.Scheme, u.Host)
			}
			if pe.ErrorType() == "" || pe.ErrorType() == "proxy_error" {
				t.Errorf("ErrorType %q", pe.ErrorType())
			}
			if tc.check != nil {
				tc.check(t, err)
			}
		})
	}
}

// portOf returns the port of "host:port".
func portOf(hostport string) string {
	_, port, _ := net.SplitHostPort(hostport)
	return port
}

func TestProxyInvalidURL(t *testing.T) {
	for _, raw := range []string{
		"socks5://proxy.example:1080",
		"proxy.example:3128", // no scheme: "proxy.example" is read as one
		"http://",
		"http://:3128",
		"http://proxy.example:0",
		"http://proxy.example:65536",
		"http://proxy.example:http",
		"http://proxy.example:3128/path",
		"http://proxy.example:3128/?q=1",
		"http://proxy.example:3128/#frag",
		"http://user:secret@proxy..example:3128",
		"http://user:secret@0x7f.1:3128",
		"http://user:secret@[::1:3128",
		"ftp://user:secret@proxy.example",
		"http:opaque",
	} {
		t.Run(raw, func(t *testing.T) {
			_, err := sockets.ParseProxy(raw)
			var pe *sockets.ProxyError
			if !errors.As(err, &pe) || pe.Kind != sockets.ProxyInvalid {
				t.Fatalf("%v; want ProxyInvalid", err)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("%q repeats the password", err)
			}
			// A Dialer refuses it before any lookup or connection.
			u, perr := url.Parse(raw)
			if perr != nil {
				return
			}
			res := lab.NewResolver(map[string][]string{"www.proxy.example": {pxWeb4.String()}})
			d := &sockets.Dialer{Resolver: res, Proxy: u}
			if c, err := d.DialContext(t.Context(), "tcp", "www.proxy.example:443"); !errors.As(err, &pe) || pe.Kind != sockets.ProxyInvalid {
				if c != nil {
					c.Close()
				}
				t.Fatalf("dial: %v; want ProxyInvalid", err)
			}
			if l := res.Lookups(); len(l) != 0 {
				t.Errorf("lookups %v before the refusal", l)
			}
		})
	}
	for _, raw := range []string{
		"http://proxy.example",
		"https://proxy.example/",
		"http://user:pass@proxy.example:3128",
		"HTTP://PROXY.EXAMPLE:3128",
		"http://127.0.0.1:3128",
		"https://[::1]:8443",
	} {
		if _, err := sockets.ParseProxy(raw); err != nil {
			t.Errorf("ParseProxy(%q): %v", raw, err)
		}
	}
	if err := sockets.CheckProxy(nil); err != nil {
		t.Errorf("CheckProxy(nil) = %v; nil is no proxy", err)
	}
}

// TestProxyHappyEyeballs: the race and the deadlines hold through the
// proxy, one tunnel per checked address: a destination whose first
// address never connects (the proxy holds its CONNECT unanswered) is
// reached through its second after the fallback delay, and the first
// tunnel is closed.
func TestProxyHappyEyeballs(t *testing.T) {
	srv := newPXServer(t)
	proxy := newTestProxy(t, func(p *testProxy) {
		p.route["93.184.216.34:443"] = srv.Listener.Addr().String()
		p.hang = func(target string) bool { return target == "[2a04:4e42::1]:443" }
	})
	res := lab.NewResolver(map[string][]string{
		"eyeballs.proxy.example": {pxDead6.String(), pxWeb4.String()},
		"dead.proxy.example":     {pxDead6.String()},
	})
	d := &sockets.Dialer{Resolver: res, Proxy: proxy.URL(nil), FallbackDelay: 50 * time.Millisecond}
	c, err := d.DialContext(t.Context(), "tcp", "eyeballs.proxy.example:443")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// The IPv6 tunnel is never answered, so the connection returned is
	// the one to the IPv4 address.
	if got := proxy.Requests(); !slices.ContainsFunc(got, func(r proxyRequest) bool { return r.Target == netip.AddrPortFrom(pxWeb4, 443).String() }) {
		t.Errorf("the proxy was asked %+v; want a tunnel to the IPv4 address", got)
	}
	// The losing tunnel was closed (the dial closes it before it returns;
	// the proxy sees it a moment later). On a busy machine the fallback may
	// win before the losing attempt's CONNECT reached the proxy: the proxy
	// then sees that connection closed before any request.
	waitClosed := func(what string) {
		t.Helper()
		select {
		case target := <-proxy.hung:
			if target != "[2a04:4e42::1]:443" {
				t.Errorf("hung tunnel %s", target)
			}
		case <-proxy.aborted:
		case <-time.After(30 * time.Second):
			t.Errorf("%s was never closed", what)
		}
	}
	waitClosed("the losing tunnel")

	// Every address hangs: the dial's deadline ends it, as a timeout, the
	// error a direct dial to a dead address gives.
	d.Timeout = 200 * time.Millisecond
	start := time.Now()
	c, err = d.DialContext(t.Context(), "tcp", "dead.proxy.example:443")
	if err == nil {
		c.Close()
		t.Fatal("connected to a dead address")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, sockets.ErrProxy) {
		t.Errorf("%#v; want a timeout matching context.DeadlineExceeded, not a proxy failure", err)
	}
	if e := time.Since(start); e > 5*time.Second {
		t.Errorf("the dial took %v with a timeout of %v", e, d.Timeout)
	}
	waitClosed("the timed-out tunnel")
}

// TestProxyServerSpeaksFirst: a destination that speaks first (SMTP's
// greeting) may have its first bytes arrive with the proxy's reply; they
// are read first.
func TestProxyServerSpeaksFirst(t *testing.T) {
	smtp := lab.NewServer(t, func(_ context.Context, c net.Conn) {
		io.WriteString(c, "220 smtp.proxy.example ESMTP ready\r\n")
		line, _ := bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, "250 got "+line)
	})
	proxy := newTestProxy(t, func(p *testProxy) {
		p.route["93.184.216.34:587"] = smtp.Addr()
		p.coalesce = true
	})
	res := lab.NewResolver(map[string][]string{"smtp.proxy.example": {pxWeb4.String()}})
	d := &sockets.Dialer{Resolver: res, Proxy: proxy.URL(nil)}
	c, err := d.DialContext(t.Context(), "tcp", "smtp.proxy.example:587")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	greeting, err := br.ReadString('\n')
	if err != nil || greeting != "220 smtp.proxy.example ESMTP ready\r\n" {
		t.Fatalf("greeting %q, %v", greeting, err)
	}
	io.WriteString(c, "EHLO me\r\n")
	if line, err := br.ReadString('\n'); err != nil || line != "250 got EHLO me\r\n" {
		t.Fatalf("reply %q, %v", line, err)
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Errorf("CloseWrite through the tunnel: %v", err)
	}
	if reqs := proxy.Requests(); len(reqs) != 1 || reqs[0].Target != "93.184.216.34:587" {
		t.Errorf("the proxy was asked %+v", reqs)
	}
}
