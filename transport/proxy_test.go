package transport_test

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync"
	"testing"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/transport"
)

// The wiring of Config.Dialer.Proxy, on loopback: a destination on 127.0.0.1,
// allowed by a widened policy, and a CONNECT proxy built on net/http that
// tunnels to loopback targets only. The tests against real proxies
// (Squid, smokescreen) are in the module's proxy_test.go.

// connectProxy is an HTTP CONNECT proxy built on net/http.
type connectProxy struct {
	*httptest.Server
	user, pass string // required when user is set
	refuse     int    // when set, the status every CONNECT gets

	mu      sync.Mutex
	targets []string
}

func newConnectProxy(t *testing.T, tlsCert *tls.Certificate, configure func(*connectProxy)) *connectProxy {
	t.Helper()
	p := &connectProxy{}
	if configure != nil {
		configure(p)
	}
	p.Server = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	p.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tlsCert != nil {
		p.TLS = &tls.Config{Certificates: []tls.Certificate{*tlsCert}}
		p.StartTLS()
	} else {
		p.Start()
	}
	t.Cleanup(p.Close)
	return p
}

// URL returns the proxy's URL, with user's credentials if not nil.
func (p *connectProxy) URL(user *url.Userinfo) *url.URL {
	u, _ := url.Parse(p.Server.URL)
	u.User = user
	return u
}

func (p *connectProxy) Targets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.targets...)
}

func (p *connectProxy) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	p.mu.Lock()
	p.targets = append(p.targets, r.RequestURI)
	p.mu.Unlock()
	if p.user != "" && r.Header.Get("Proxy-Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte(p.user+":"+p.pass)) {
		w.Header().Set("Proxy-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusProxyAuthRequired)
		return
	}
	if p.refuse != 0 {
		w.WriteHeader(p.refuse)
		return
	}
	target, err := netip.ParseAddrPort(r.RequestURI)
	if err != nil || !target.Addr().IsLoopback() {
		http.Error(w, "loopback IP literals only", http.StatusForbidden)
		return
	}
	up, err := net.Dial("tcp", target.String())
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	defer up.Close()
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(up, brw) // what the client sent, buffered or not
		up.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(c, up)
	c.Close()
	<-done
}

// proxyRig is a destination on 127.0.0.1 named www.example.com, and the
// Config that reaches it: the policy widened to 127.0.0.1, a resolver
// for the name, TLS trusting the destination's (and the proxy's) CA.
type proxyRig struct {
	srv       *httptest.Server
	url       string
	ca        *lab.CA
	cfg       transport.Config
	proxyCert tls.Certificate
}

func newProxyRig(t *testing.T) *proxyRig {
	t.Helper()
	ca := lab.NewCA("proxy wiring CA")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello "+r.Host+" "+r.TLS.ServerName)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Issue("www.example.com")}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return &proxyRig{
		srv:       srv,
		url:       "https://www.example.com:" + port + "/",
		ca:        ca,
		proxyCert: ca.Issue("127.0.0.1"),
		cfg: transport.Config{
			Dialer: sockets.Dialer{
				Policy:   sockets.DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32")),
				Resolver: lab.NewResolver(map[string][]string{"www.example.com": {"127.0.0.1"}}),
			},
			TLS:          tlsconf.Config{RootCAs: ca.Pool()},
			RetryWaitMin: 1, RetryWaitMax: 1,
		},
	}
}

func (r *proxyRig) get(t *testing.T, b transport.Backend, cfg transport.Config) (string, error) {
	t.Helper()
	cfg.Backend = b
	tr, err := transport.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, r.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

func TestConfigProxy(t *testing.T) {
	rig := newProxyRig(t)
	target := rig.srv.Listener.Addr().String()
	want := "hello " + rig.url[len("https://"):len(rig.url)-1] + " www.example.com"
	for _, b := range backends {
		t.Run(b.String(), func(t *testing.T) {
			t.Run("through the proxy, with credentials", func(t *testing.T) {
				p := newConnectProxy(t, nil, func(p *connectProxy) { p.user, p.pass = "alice", "s3cret" })
				cfg := rig.cfg
				cfg.Dialer.Proxy = p.URL(url.UserPassword("alice", "s3cret"))
				if body, err := rig.get(t, b, cfg); err != nil || body != want {
					t.Fatalf("GET: %q, %v; want %q", body, err, want)
				}
				if got := p.Targets(); len(got) != 1 || got[0] != target {
					t.Fatalf("CONNECTs %v; want one to %s, the checked address", got, target)
				}
			})
			t.Run("an unreachable Dialer.Proxy is never bypassed", func(t *testing.T) {
				dead := &url.URL{Scheme: "http", Host: "127.0.0.1:1"}
				cfg := rig.cfg
				cfg.Dialer.Proxy = dead
				_, err := rig.get(t, b, cfg)
				var pe *sockets.ProxyError
				if !errors.As(err, &pe) || pe.Kind != sockets.ProxyUnreachable {
					t.Fatalf("%v; want ProxyUnreachable, not a direct connection", err)
				}
			})
			t.Run("https proxy verified with Config.TLS", func(t *testing.T) {
				p := newConnectProxy(t, &rig.proxyCert, nil)
				cfg := rig.cfg
				cfg.Dialer.Proxy = p.URL(nil)
				if body, err := rig.get(t, b, cfg); err != nil || body != want {
					t.Fatalf("GET: %q, %v", body, err)
				}
				cfg.TLS = tlsconf.Config{RootCAs: lab.NewCA("another").Pool()}
				_, err := rig.get(t, b, cfg)
				var pe *sockets.ProxyError
				if !errors.As(err, &pe) || pe.Kind != sockets.ProxyUnreachable || !errors.Is(err, tlsconf.ErrCertificate) {
					t.Fatalf("%v; want ProxyUnreachable with a certificate error", err)
				}
			})
			t.Run("retries", func(t *testing.T) {
				for _, tc := range []struct {
					status int
					tries  int
				}{
					{http.StatusForbidden, 1},
					{http.StatusProxyAuthRequired, 1},
					{http.StatusBadGateway, 3},
					{http.StatusServiceUnavailable, 3},
				} {
					p := newConnectProxy(t, nil, func(p *connectProxy) { p.refuse = tc.status })
					cfg := rig.cfg
					cfg.Dialer.Proxy, cfg.Retries = p.URL(nil), 2
					_, err := rig.get(t, b, cfg)
					var pe *sockets.ProxyError
					if !errors.As(err, &pe) || pe.StatusCode != tc.status {
						t.Fatalf("%d: %v; want a ProxyError with the status", tc.status, err)
					}
					get := httptest.NewRequest(http.MethodGet, rig.url, nil)
					if errors.Is(err, sockets.ErrDenied) || transport.Retryable(get, nil, err) != (tc.tries > 1) {
						t.Errorf("%d: %v: matches ErrDenied, or Retryable is %v", tc.status, err, transport.Retryable(get, nil, err))
					}
					if n := len(p.Targets()); n != tc.tries {
						t.Errorf("%d: %d CONNECTs with Retries 2; want %d", tc.status, n, tc.tries)
					}
				}
			})
			t.Run("refused before the proxy", func(t *testing.T) {
				p := newConnectProxy(t, nil, nil)
				cfg := rig.cfg
				cfg.Dialer.Policy, cfg.Dialer.Proxy = nil, p.URL(nil) // loopback refused again
				if _, err := rig.get(t, b, cfg); !errors.Is(err, sockets.ErrDenied) {
					t.Fatalf("%v; want a refusal", err)
				}
				if n := len(p.Targets()); n != 0 {
					t.Fatalf("%d CONNECTs; want none", n)
				}
			})
			t.Run("New refuses an unusable proxy", func(t *testing.T) {
				for _, cfg := range []transport.Config{
					{Backend: b, Dialer: sockets.Dialer{Proxy: &url.URL{Scheme: "socks5", Host: "proxy.example:1080", User: url.UserPassword("u", "pw")}}},
					{Backend: b, Dialer: sockets.Dialer{Proxy: &url.URL{Scheme: "http", Host: "proxy.example:0"}}},
					{Backend: b, Dialer: sockets.Dialer{Proxy: &url.URL{Scheme: "http"}}},
				} {
					_, err := transport.New(cfg)
					var pe *sockets.ProxyError
					if !errors.As(err, &pe) || pe.Kind != sockets.ProxyInvalid {
						t.Errorf("New(%v): %v; want ProxyInvalid", cfg.Dialer.Proxy, err)
					}
				}
			})
		})
	}
}
