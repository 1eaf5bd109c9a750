package transport_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/transport"
	"github.com/outbound-go/outbound/urlfetch"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// publicName resolves, through the test resolver, to a public address that
// the Connector maps onto the loopback server. httptest's certificate is
// valid for example.com.
const publicName = "example.com"

// rig is a sockets-backend transport whose every connection is checked by
// the default policy and then sent to srv on loopback.
type rig struct {
	rt   *transport.Transport
	conn *lab.Connector
	res  *lab.Resolver
}

func newRig(t *testing.T, srv *httptest.Server, cfg transport.Config) *rig {
	t.Helper()
	cfg.Backend = transport.Sockets
	return newBackendRig(t, srv, cfg)
}

// newBackendRig is newRig for the backend cfg names.
func newBackendRig(t *testing.T, srv *httptest.Server, cfg transport.Config) *rig {
	t.Helper()
	r := &rig{
		conn: &lab.Connector{Target: srv.Listener.Addr().String()},
		res: lab.NewResolver(map[string][]string{
			publicName:           {"93.184.216.34"},
			"intranet.example":   {"10.0.0.1"},
			"google.example":     {"142.250.0.1"},
			"mixed.example":      {"10.1.2.3", "93.184.216.34"},
			"metadata.example":   {"169.254.169.254"},
			"loopback6.example":  {"::1"},
			"mapped.example":     {"::ffff:127.0.0.1"},
			"compatible.example": {"::7f00:1"},
			"other.example":      {"93.184.216.34"},
		}),
	}
	cfg.Dialer.Resolver = r.res
	if cfg.Dialer.Connect == nil {
		cfg.Dialer.Connect = r.conn.Connect
	}
	if srv.Certificate() != nil {
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		cfg.TLS.RootCAs = pool
	}
	rt, err := transport.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.CloseIdleConnections)
	r.rt = rt
	return r
}

func newH2Server(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestSocketsNegotiatesHTTP2(t *testing.T) {
	srv := newH2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	r := newRig(t, srv, transport.Config{})
	c := &http.Client{Transport: r.rt}
	for range 3 {
		resp, err := c.Get("https://" + publicName + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || string(body) != "HTTP/2.0" {
			t.Fatalf("got %s (server saw %q), want HTTP/2.0", resp.Proto, body)
		}
		if resp.TLS == nil || resp.TLS.NegotiatedProtocol != "h2" {
			t.Fatalf("ALPN = %+v, want h2", resp.TLS)
		}
	}
	// Keep-alive: three requests, one connection, to the checked public
	// address only.
	if got := r.conn.Attempts(); len(got) != 1 || got[0].String() != "93.184.216.34:443" {
		t.Fatalf("connect attempts = %v, want one to 93.184.216.34:443", got)
	}
}

func TestSocketsRefusesOverHTTP2(t *testing.T) {
	srv := newH2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	r := newRig(t, srv, transport.Config{})
	c := &http.Client{Transport: r.rt}
	// An h2 connection is up ...
	resp, err := c.Get("https://" + publicName + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("proto %s, want HTTP/2", resp.Proto)
	}
	// ... and refused destinations are still refused: no connection is
	// reused or made for them.
	for _, tc := range []struct {
		host string
		rule sockets.Rule
		form sockets.Rule // the block of the form that carries the refused IPv4 address; 0: none
	}{
		{"intranet.example", sockets.RulePrivate, 0},
		{"google.example", sockets.RuleGoogle, 0},
		{"metadata.example", sockets.RuleLinkLocal, 0},
		{"loopback6.example", sockets.RuleLoopback, 0},
		{"mapped.example", sockets.RuleLoopback, sockets.RuleIPv4Mapped},
		{"compatible.example", sockets.RuleLoopback, sockets.RuleIPv4Compatible},
		{"10.0.0.1", sockets.RulePrivate, 0},
		{"[fe80::1%25eth0]", sockets.RuleZone, 0},
	} {
		t.Run(tc.host, func(t *testing.T) {
			_, err := c.Get("https://" + tc.host + "/")
			var de *sockets.DeniedError
			if !errors.As(err, &de) || !errors.Is(err, sockets.ErrDenied) {
				t.Fatalf("err = %v, want a *sockets.DeniedError", err)
			}
			if de.Rule != tc.rule || de.Form != tc.form {
				t.Fatalf("rule %v carried in %v, want %v carried in %v", de.Rule, de.Form, tc.rule, tc.form)
			}
		})
	}
	if got := r.conn.Attempts(); len(got) != 1 {
		t.Fatalf("connect attempts = %v, want only the first", got)
	}
}

func TestSocketsMixedAnswersConnectOnlyToAllowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	r := newRig(t, srv, transport.Config{})
	resp, err := (&http.Client{Transport: r.rt}).Get("http://mixed.example/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := r.conn.Attempts(); len(got) != 1 || got[0].String() != "93.184.216.34:80" {
		t.Fatalf("connect attempts = %v, want only 93.184.216.34:80", got)
	}
}

func TestSocketsRedirectHopsAreChecked(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://intranet.example/admin", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	r := newRig(t, srv, transport.Config{})
	_, err := (&http.Client{Transport: r.rt}).Get("http://" + publicName + "/")
	if !errors.Is(err, sockets.ErrDenied) {
		t.Fatalf("err = %v, want the redirect hop refused", err)
	}
	if got := r.conn.Attempts(); len(got) != 1 {
		t.Fatalf("connect attempts = %v, want only the first hop", got)
	}
}

func TestSocketsIgnoresProxyEnvironment(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:9")
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:9")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Host)
	}))
	t.Cleanup(srv.Close)
	r := newRig(t, srv, transport.Config{})
	resp, err := (&http.Client{Transport: r.rt}).Get("http://" + publicName + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != publicName {
		t.Fatalf("server saw Host %q", body)
	}
	if got := r.conn.Attempts(); len(got) != 1 || got[0].Port() != 80 {
		t.Fatalf("connect attempts = %v, want the destination itself, not a proxy", got)
	}
}

func TestSocketsCertificateError(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	r := newRig(t, srv, transport.Config{})
	// The certificate is for example.com, not for this name.
	_, err := r.rt.RoundTrip(httptest.NewRequest("GET", "https://other.example/", nil))
	var ce *tlsconf.CertificateError
	if !errors.As(err, &ce) || ce.Host != "other.example" {
		t.Fatalf("err = %v, want a certificate error for other.example", err)
	}
}

func TestSocketsStreamsAndHonoursContext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	r := newRig(t, srv, transport.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+publicName+"/", nil)
	resp, err := r.rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	// Headers arrived before the body: the backend streams.
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(resp.Body)
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel: %v, want context.Canceled", err)
	}
	resp.Body.Close()
}

func TestBackendOf(t *testing.T) {
	for _, b := range []transport.Backend{transport.URLFetch, transport.Sockets} {
		rt, err := transport.New(transport.Config{Backend: b})
		if err != nil {
			t.Fatal(err)
		}
		got, ok := transport.BackendOf(rt)
		if !ok || got != b || rt.Backend() != b {
			t.Fatalf("BackendOf = %v, %v, Backend = %v; want %v", got, ok, rt.Backend(), b)
		}
	}
	if _, ok := transport.BackendOf(http.DefaultTransport); ok {
		t.Fatal("BackendOf(net/http's transport) reported a backend")
	}
	if _, err := transport.New(transport.Config{Backend: 7}); err == nil {
		t.Fatal("New accepted an unknown backend")
	}
	if s := transport.Backend(7).String(); s != "Backend(7)" {
		t.Fatalf("String = %q", s)
	}
}

func TestInstallRestores(t *testing.T) {
	orig := http.DefaultTransport
	rt, err := transport.New(transport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	restore := transport.Install(rt)
	if http.DefaultTransport != rt {
		t.Fatal("Install did not set http.DefaultTransport")
	}
	restore()
	if http.DefaultTransport != orig {
		t.Fatal("restore did not put back the previous transport")
	}
}

func TestNewDoesNotTouchDefaultTransport(t *testing.T) {
	orig := http.DefaultTransport
	for _, b := range []transport.Backend{transport.URLFetch, transport.Sockets} {
		if _, err := transport.New(transport.Config{Backend: b, Retries: 2}); err != nil {
			t.Fatal(err)
		}
	}
	if http.DefaultTransport != orig {
		t.Fatal("New changed http.DefaultTransport")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]transport.Config{
		"negative retries":  {Retries: -1},
		"negative wait min": {Retries: 1, RetryWaitMin: -time.Second},
		"negative wait max": {Retries: 1, RetryWaitMax: -time.Second},
		"tls min version":   {Backend: transport.Sockets, TLS: tlsconf.Config{MinVersion: 0x0301}},
		"missing CA file":   {Backend: transport.Sockets, TLS: tlsconf.Config{CAFile: "/nonexistent/ca.pem"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := transport.New(cfg); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
}

type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error {
	c.closed.Store(true)
	return nil
}

// Bad requests get a typed error, never a panic, with the body closed, on
// both backends and through the retry layer.
func TestBadRequestsAreTyped(t *testing.T) {
	for _, b := range []transport.Backend{transport.URLFetch, transport.Sockets} {
		for _, retries := range []int{0, 2} {
			rt, err := transport.New(transport.Config{Backend: b, Retries: retries})
			if err != nil {
				t.Fatal(err)
			}
			// One sentinel on both backends: transport's own.
			if _, err := rt.RoundTrip(nil); !errors.Is(err, transport.ErrInvalidRequest) {
				t.Fatalf("%v retries=%d: nil request: %v", b, retries, err)
			}
			body := &closeRecorder{Reader: strings.NewReader("x")}
			req := &http.Request{Method: "POST", Body: body, Header: http.Header{}}
			if _, err := rt.RoundTrip(req); !errors.Is(err, transport.ErrInvalidRequest) || !body.closed.Load() {
				t.Fatalf("%v retries=%d: nil URL: %v, body closed %v", b, retries, err, body.closed.Load())
			}
		}
	}
	var zero transport.Transport
	body := &closeRecorder{Reader: strings.NewReader("x")}
	req, _ := http.NewRequest("PUT", "http://example.com/", body)
	if _, err := zero.RoundTrip(req); !errors.Is(err, transport.ErrInvalidRequest) || !body.closed.Load() {
		t.Fatalf("zero Transport: %v, body closed %v", err, body.closed.Load())
	}
}

// The sockets backend refuses ftp:// and every other non-HTTP scheme with a
// typed refusal, before any lookup or connection.
func TestSocketsRefusesSchemes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	r := newRig(t, srv, transport.Config{})
	for url, rule := range map[string]sockets.Rule{
		"ftp://" + publicName + "/file":    sockets.RuleScheme,
		"FTP://" + publicName + ":2121/f":  sockets.RuleScheme,
		"file:///etc/passwd":               sockets.RuleScheme,
		"gopher://" + publicName + ":70/1": sockets.RuleScheme,
	} {
		body := &closeRecorder{Reader: strings.NewReader("x")}
		req, _ := http.NewRequest("PUT", url, body)
		_, err := r.rt.RoundTrip(req)
		var de *sockets.DeniedError
		if !errors.As(err, &de) || de.Rule != rule || !errors.Is(err, sockets.ErrDenied) {
			t.Fatalf("%s: err = %v, want rule %v", url, err, rule)
		}
		if !body.closed.Load() {
			t.Fatalf("%s: body not closed", url)
		}
	}
	if n := len(r.conn.Attempts()) + len(r.res.Lookups()); n != 0 {
		t.Fatalf("%d lookups or connection attempts for refused schemes", n)
	}
}

// New validates the urlfetch configuration as it does the sockets one.
func TestNewValidatesURLFetch(t *testing.T) {
	for name, cfg := range map[string]transport.Config{
		"negative deadline": {URLFetch: transport.URLFetchConfig{Deadline: -time.Second}},
		"app id with CRLF":  {URLFetch: transport.URLFetchConfig{AppID: "app\r\nX-Evil: 1"}},
		"missing CA file":   {TLS: tlsconf.Config{CAFile: "/nonexistent/ca.pem"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := transport.New(cfg); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
}

// backends is every backend, for test bodies run against each, as net/http's
// clientserver_test.go runs one body over HTTP/1 and HTTP/2.
var backends = []transport.Backend{transport.URLFetch, transport.Sockets}

// publicURL reaches the loopback server of a rig through the policy.
const publicURL = "http://" + publicName + "/"

// reply is a failed reply a retryServer sends.
type reply struct {
	status int
	// retryAfter, if not nil, gives the Retry-After header's value when
	// the reply is sent.
	retryAfter func() string
}

// retryAfter returns a reply's retryAfter that always says v.
func retryAfter(v string) func() string { return func() string { return v } }

// retryServer closes the connection of its first hangups requests without
// a reply, answers the next len(fail) with those replies and a body "try
// again", then answers 200 "ok". It records every request it sees.
type retryServer struct {
	hangups int
	fail    []reply

	mu      sync.Mutex
	at      []time.Time
	bodies  []string
	headers []http.Header
}

func (s *retryServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	n := len(s.at)
	s.at = append(s.at, time.Now())
	s.bodies = append(s.bodies, string(body))
	s.headers = append(s.headers, r.Header.Clone())
	s.mu.Unlock()
	if n < s.hangups {
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
		return
	}
	if n -= s.hangups; n < len(s.fail) {
		f := s.fail[n]
		if f.retryAfter != nil {
			w.Header().Set("Retry-After", f.retryAfter())
		}
		w.WriteHeader(f.status)
		io.WriteString(w, "try again")
		return
	}
	io.WriteString(w, "ok")
}

func (s *retryServer) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.at)
}

func (s *retryServer) seenBodies() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.bodies)
}

// gaps returns the time between each request and the next.
func (s *retryServer) gaps() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d []time.Duration
	for i := 1; i < len(s.at); i++ {
		d = append(d, s.at[i].Sub(s.at[i-1]))
	}
	return d
}

// fastRetries allows n retries with waits too short to slow a test.
func fastRetries(n int) transport.Config {
	return transport.Config{Retries: n, RetryWaitMin: time.Millisecond, RetryWaitMax: 2 * time.Millisecond}
}

// retryRig is a rig of backend b in front of a loopback server running h.
func retryRig(t *testing.T, b transport.Backend, h http.Handler, cfg transport.Config) *rig {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg.Backend = b
	return newBackendRig(t, srv, cfg)
}

// mustRead reads and closes resp's body.
func mustRead(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// bodies makes a request body and its GetBody, and remembers every body it
// made, so that a test can check each was closed.
type bodies struct {
	text string
	mu   sync.Mutex
	made []*closeRecorder
}

func (b *bodies) next() *closeRecorder {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := &closeRecorder{Reader: strings.NewReader(b.text)}
	b.made = append(b.made, c)
	return c
}

// request returns a request whose body and GetBody come from b.
func (b *bodies) request(t *testing.T, ctx context.Context, method string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, publicURL, b.next())
	if err != nil {
		t.Fatal(err)
	}
	req.GetBody = func() (io.ReadCloser, error) { return b.next(), nil }
	return req
}

// rewinds returns how many times GetBody was called, and whether every
// body made was closed.
func (b *bodies) rewinds() (int, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.made {
		if !c.closed.Load() {
			return len(b.made) - 1, false
		}
	}
	return len(b.made) - 1, true
}

func TestRetries(t *testing.T) {
	for _, b := range backends {
		t.Run(b.String(), func(t *testing.T) { testRetries(t, b) })
	}
}

func testRetries(t *testing.T, b transport.Backend) {
	t.Run("503 then 200, body rewound", func(t *testing.T) {
		h := &retryServer{fail: []reply{{status: 503}}}
		r := retryRig(t, b, h, fastRetries(3))
		body := &bodies{text: "payload"}
		resp, err := r.rt.RoundTrip(body.request(t, context.Background(), http.MethodPut))
		if err != nil {
			t.Fatal(err)
		}
		if got := mustRead(t, resp); resp.StatusCode != 200 || got != "ok" {
			t.Fatalf("status %d, body %q; want 200 ok", resp.StatusCode, got)
		}
		if got := h.seenBodies(); !slices.Equal(got, []string{"payload", "payload"}) {
			t.Fatalf("server saw bodies %q, want the same body twice", got)
		}
		if n, closed := body.rewinds(); n != 1 || !closed {
			t.Fatalf("GetBody called %d times (want 1), every body closed: %v", n, closed)
		}
	})
	t.Run("last reply returned as it is", func(t *testing.T) {
		h := &retryServer{fail: slices.Repeat([]reply{{status: 503}}, 10)}
		r := retryRig(t, b, h, fastRetries(2))
		resp, err := r.rt.RoundTrip(httptest.NewRequest(http.MethodGet, publicURL, nil))
		if err != nil {
			t.Fatalf("a 503 became an error: %v", err)
		}
		if got := mustRead(t, resp); resp.StatusCode != 503 || got != "try again" || h.calls() != 3 {
			t.Fatalf("status %d, body %q after %d calls; want 503, the body, 3 calls", resp.StatusCode, got, h.calls())
		}
	})
	for _, status := range []int{429, 502, 503, 504} {
		t.Run(fmt.Sprintf("%d retried", status), func(t *testing.T) {
			h := &retryServer{fail: []reply{{status: status}}}
			r := retryRig(t, b, h, fastRetries(1))
			resp, err := r.rt.RoundTrip(httptest.NewRequest(http.MethodGet, publicURL, nil))
			if err != nil {
				t.Fatal(err)
			}
			if mustRead(t, resp); resp.StatusCode != 200 || h.calls() != 2 {
				t.Fatalf("status %d after %d calls, want 200 after 2", resp.StatusCode, h.calls())
			}
		})
	}
	for _, status := range []int{400, 404, 500, 501} {
		t.Run(fmt.Sprintf("%d final", status), func(t *testing.T) {
			h := &retryServer{fail: slices.Repeat([]reply{{status: status}}, 10)}
			r := retryRig(t, b, h, fastRetries(3))
			resp, err := r.rt.RoundTrip(httptest.NewRequest(http.MethodGet, publicURL, nil))
			if err != nil {
				t.Fatal(err)
			}
			if mustRead(t, resp); resp.StatusCode != status || h.calls() != 1 {
				t.Fatalf("status %d after %d calls, want %d after 1", resp.StatusCode, h.calls(), status)
			}
		})
	}
	t.Run("429 with Retry-After", func(t *testing.T) {
		h := &retryServer{fail: []reply{{status: 429, retryAfter: retryAfter("1")}}}
		r := retryRig(t, b, h, transport.Config{Retries: 1, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Second})
		resp, err := r.rt.RoundTrip(httptest.NewRequest(http.MethodGet, publicURL, nil))
		if err != nil {
			t.Fatal(err)
		}
		mustRead(t, resp)
		// Only a lower bound, which no slow machine can break: the
		// backoff alone would wait 1-2 ms. TestRetryWaits checks the
		// waits exactly, on a fake clock.
		if gaps := h.gaps(); resp.StatusCode != 200 || len(gaps) != 1 || gaps[0] < time.Second {
			t.Fatalf("status %d, gaps between tries %v; want 200 after one wait of at least 1s", resp.StatusCode, gaps)
		}
	})
	t.Run("POST without Idempotency-Key sent once", func(t *testing.T) {
		h := &retryServer{fail: slices.Repeat([]reply{{status: 503}}, 10)}
		r := retryRig(t, b, h, fastRetries(3))
		body := &bodies{text: "order"}
		resp, err := r.rt.RoundTrip(body.request(t, context.Background(), http.MethodPost))
		if err != nil {
			t.Fatal(err)
		}
		if mustRead(t, resp); resp.StatusCode != 503 || h.calls() != 1 {
			t.Fatalf("status %d after %d calls, want 503 after 1", resp.StatusCode, h.calls())
		}
		if n, closed := body.rewinds(); n != 0 || !closed {
			t.Fatalf("GetBody called %d times (want 0), body closed: %v", n, closed)
		}
	})
	for _, key := range []string{"Idempotency-Key", "X-Idempotency-Key"} {
		t.Run("POST with "+key+" retried", func(t *testing.T) {
			h := &retryServer{fail: []reply{{status: 503}, {status: 502}}}
			r := retryRig(t, b, h, fastRetries(3))
			body := &bodies{text: "order"}
			req := body.request(t, context.Background(), http.MethodPost)
			req.Header.Set(key, "order-42")
			resp, err := r.rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			if mustRead(t, resp); resp.StatusCode != 200 {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			if got := h.seenBodies(); !slices.Equal(got, []string{"order", "order", "order"}) {
				t.Fatalf("server saw bodies %q", got)
			}
			if n, closed := body.rewinds(); n != 2 || !closed {
				t.Fatalf("GetBody called %d times (want 2), every body closed: %v", n, closed)
			}
		})
	}
	t.Run("body without GetBody sent once", func(t *testing.T) {
		h := &retryServer{fail: slices.Repeat([]reply{{status: 503}}, 10)}
		r := retryRig(t, b, h, fastRetries(3))
		body := &closeRecorder{Reader: strings.NewReader("payload")}
		req, _ := http.NewRequest(http.MethodPut, publicURL, body)
		resp, err := r.rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if mustRead(t, resp); h.calls() != 1 || !body.closed.Load() {
			t.Fatalf("%d calls, body closed %v; want 1 call and the body closed", h.calls(), body.closed.Load())
		}
	})
	t.Run("refusal never retried", func(t *testing.T) {
		h := &retryServer{}
		r := retryRig(t, b, h, fastRetries(5))
		_, err := r.rt.RoundTrip(httptest.NewRequest(http.MethodGet, "http://intranet.example/", nil))
		var de *sockets.DeniedError
		if !errors.As(err, &de) || !errors.Is(err, sockets.ErrDenied) {
			t.Fatalf("err = %v, want the *sockets.DeniedError unchanged", err)
		}
		// A refused destination is never connected to, on any try; the
		// one lookup shows there was only one try.
		if n := len(r.res.Lookups()); n != 1 {
			t.Fatalf("%d lookups, want 1: the refusal was retried", n)
		}
		if n := len(r.conn.Attempts()) + h.calls(); n != 0 {
			t.Fatalf("%d connections or requests for a refused destination", n)
		}
	})
	t.Run("certificate error never retried", func(t *testing.T) {
		h := &retryServer{}
		srv := httptest.NewTLSServer(h)
		t.Cleanup(srv.Close)
		cfg := fastRetries(5)
		cfg.Backend = b
		r := newBackendRig(t, srv, cfg)
		// The certificate is for example.com, not for this name.
		_, err := r.rt.RoundTrip(httptest.NewRequest(http.MethodGet, "https://other.example/", nil))
		if !errors.Is(err, tlsconf.ErrCertificate) {
			t.Fatalf("err = %v, want a certificate error", err)
		}
		if n := len(r.conn.Attempts()); n != 1 {
			t.Fatalf("%d connections, want 1: the certificate error was retried", n)
		}
	})
	t.Run("closed connection retried", func(t *testing.T) {
		h := &retryServer{hangups: 1}
		r := retryRig(t, b, h, fastRetries(2))
		resp, err := r.rt.RoundTrip(httptest.NewRequest(http.MethodGet, publicURL, nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := mustRead(t, resp); got != "ok" || h.calls() != 2 {
			t.Fatalf("body %q after %d calls, want ok after 2", got, h.calls())
		}
	})
	t.Run("connection refused retried", func(t *testing.T) {
		// The first connection goes to a loopback port nothing listens
		// on: the kernel refuses it. The next goes to the server.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := l.Addr().String()
		l.Close()
		h := &retryServer{}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		refuse := &lab.Connector{Target: closed}
		var tries atomic.Int32
		cfg := fastRetries(2)
		cfg.Backend = b
		r := &rig{}
		cfg.Dialer.Connect = func(ctx context.Context, network string, addr netip.AddrPort) (net.Conn, error) {
			if tries.Add(1) == 1 {
				return refuse.Connect(ctx, network, addr)
			}
			return r.conn.Connect(ctx, network, addr)
		}
		*r = *newBackendRig(t, srv, cfg)
		resp, err := r.rt.RoundTrip(httptest.NewRequest(http.MethodGet, publicURL, nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := mustRead(t, resp); got != "ok" || tries.Load() != 2 || h.calls() != 1 {
			t.Fatalf("body %q after %d connections and %d calls, want ok after 2 and 1", got, tries.Load(), h.calls())
		}
	})
	t.Run("deadline shorter than the wait", func(t *testing.T) {
		// The wait (an hour) would outlast the deadline (a minute): the
		// 503 is returned at once, with its body, instead of a deadline
		// error a minute later.
		h := &retryServer{fail: slices.Repeat([]reply{{status: 503}}, 10)}
		r := retryRig(t, b, h, transport.Config{Retries: 3, RetryWaitMin: time.Hour})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, publicURL, nil)
		resp, err := r.rt.RoundTrip(req)
		if err != nil {
			t.Fatalf("err = %v, want the 503", err)
		}
		if got := mustRead(t, resp); resp.StatusCode != 503 || got != "try again" || h.calls() != 1 {
			t.Fatalf("status %d, body %q after %d calls; want the 503 after 1", resp.StatusCode, got, h.calls())
		}
	})
	t.Run("cancel during the wait", func(t *testing.T) {
		h := &retryServer{fail: slices.Repeat([]reply{{status: 503}}, 10)}
		r := retryRig(t, b, h, transport.Config{Retries: 3, RetryWaitMin: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		body := &bodies{text: "payload"}
		req := body.request(t, ctx, http.MethodPut)
		// The body is rewound just before the wait of an hour: cancel
		// there. TestRetryWaitEndsWithContext cancels mid-wait, on a fake
		// clock.
		getBody := req.GetBody
		req.GetBody = func() (io.ReadCloser, error) {
			cancel()
			return getBody()
		}
		_, err := r.rt.RoundTrip(req)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if n, closed := body.rewinds(); h.calls() != 1 || n != 1 || !closed {
			t.Fatalf("%d calls, %d rewinds, every body closed %v; want 1 call, 1 rewind, bodies closed", h.calls(), n, closed)
		}
	})
	t.Run("URL user information never becomes Authorization", func(t *testing.T) {
		// The request net/http's Client would turn into
		// "Authorization: Basic dXNlcjpzZWNyZXQ=". A RoundTripper sends
		// the headers it is given, with retries or without.
		const withUser = "http://user:secret@" + publicName + "/"
		once := &retryServer{}
		r0 := retryRig(t, b, once, transport.Config{})
		twice := &retryServer{fail: []reply{{status: 503}}}
		r1 := retryRig(t, b, twice, fastRetries(1))
		for _, r := range []*rig{r0, r1} {
			req, _ := http.NewRequest(http.MethodGet, withUser, nil)
			req.Header.Set("X-Trace", "t1")
			resp, err := r.rt.RoundTrip(req)
			if b == transport.URLFetch {
				// App Engine refused "the login and password portion":
				// nothing is sent, and a refusal is not retried.
				if !errors.Is(err, urlfetch.ErrInvalidURL) || len(once.headers)+len(twice.headers) != 0 {
					t.Fatalf("err = %v, the servers saw %d requests; want an invalid URL, none sent", err, len(once.headers)+len(twice.headers))
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			mustRead(t, resp)
		}
		if b == transport.URLFetch {
			return
		}
		want := once.headers[0]
		if want.Get("Authorization") != "" || want.Get("X-Trace") != "t1" {
			t.Fatalf("without retries the server saw %v", want)
		}
		if len(twice.headers) != 2 {
			t.Fatalf("%d calls with Retries: 1, want 2", len(twice.headers))
		}
		for i, got := range twice.headers {
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("try %d with Retries: 1 sent headers\n%v\nwant, as with Retries: 0,\n%v", i+1, got, want)
			}
		}
	})
}

// urlfetch's deadline over one exchange is the time the caller gave the
// request: a request that hits it is not tried again. On a fake clock, so
// that a slow machine cannot make the first try miss the server.
func TestRetriesSkipURLFetchDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		stall := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			<-r.Context().Done()
		})
		rt := syncRig(t, transport.Config{Backend: transport.URLFetch, URLFetch: transport.URLFetchConfig{Deadline: 5 * time.Second}, Retries: 2, RetryWaitMin: time.Second}, stall)
		start := time.Now()
		_, err := rt.RoundTrip(httptest.NewRequest(http.MethodGet, publicURL, nil))
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, urlfetch.ErrDeadlineExceeded) {
			t.Fatalf("err = %v, want urlfetch's deadline", err)
		}
		if n, d := calls.Load(), time.Since(start); n != 1 || d != 5*time.Second {
			t.Fatalf("%d calls in %v, want 1 in 5s: the deadline was retried", n, d)
		}
	})
}

// A body over urlfetch's request limit is refused before anything is sent,
// and not tried again: GetBody is never called.
func TestRetriesSkipURLFetchLimit(t *testing.T) {
	h := &retryServer{}
	r := retryRig(t, transport.URLFetch, h, fastRetries(3))
	body := &bodies{text: strings.Repeat("x", urlfetch.MaxRequestBody+1)}
	_, err := r.rt.RoundTrip(body.request(t, context.Background(), http.MethodPut))
	if !errors.Is(err, urlfetch.ErrPayloadTooLarge) {
		t.Fatalf("err = %v, want ErrPayloadTooLarge", err)
	}
	if n, closed := body.rewinds(); n != 0 || !closed || h.calls() != 0 {
		t.Fatalf("GetBody called %d times, body closed %v, %d calls; want 0, true, 0", n, closed, h.calls())
	}
}

func TestRetryLogging(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := &retryServer{fail: []reply{{status: 503}}}
	cfg := fastRetries(1)
	cfg.Logger = logger
	r := retryRig(t, transport.Sockets, h, cfg)
	resp, err := r.rt.RoundTrip(httptest.NewRequest(http.MethodGet, "http://user:secret@"+publicName+"/", nil))
	if err != nil {
		t.Fatal(err)
	}
	mustRead(t, resp)
	out := buf.String()
	if !strings.Contains(out, "retrying request") || !strings.Contains(out, "status=503") {
		t.Fatalf("no retry line in the configured logger: %q", out)
	}
	if strings.Contains(out, "secret") || strings.Contains(out, "user@") {
		t.Fatalf("the log line holds the URL's user information: %q", out)
	}
}

func TestRetryable(t *testing.T) {
	req := func(method string, body io.Reader, header ...string) *http.Request {
		r, err := http.NewRequest(method, publicURL, body)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		return r
	}
	get := req(http.MethodGet, nil)
	status := func(code int) *http.Response { return &http.Response{StatusCode: code, Header: http.Header{}} }
	noGetBody := req(http.MethodPut, strings.NewReader("x"))
	noGetBody.GetBody = nil
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	fetchErr := func(kind error) error { return &urlfetch.Error{Kind: kind, Method: "GET", URL: publicURL} }

	for _, tt := range []struct {
		name string
		req  *http.Request
		resp *http.Response
		err  error
		want bool
	}{
		// The reply.
		{"429", get, status(429), nil, true},
		{"502", get, status(502), nil, true},
		{"503", get, status(503), nil, true},
		{"504", get, status(504), nil, true},
		{"200", get, status(200), nil, false},
		{"404", get, status(404), nil, false},
		{"500: the server failed on this request", get, status(500), nil, false},
		{"501", get, status(501), nil, false},
		{"no reply, no error", get, nil, nil, false},

		// The request: idempotent methods (RFC 9110, section 9.2.2) or a key.
		{"empty method means GET", req("", nil), status(503), nil, true},
		{"HEAD", req(http.MethodHead, nil), status(503), nil, true},
		{"OPTIONS", req(http.MethodOptions, nil), status(503), nil, true},
		{"TRACE", req(http.MethodTrace, nil), status(503), nil, true},
		{"PUT with GetBody", req(http.MethodPut, strings.NewReader("x")), status(503), nil, true},
		{"DELETE", req(http.MethodDelete, nil), status(503), nil, true},
		{"POST", req(http.MethodPost, strings.NewReader("x")), status(503), nil, false},
		{"PATCH", req(http.MethodPatch, strings.NewReader("x")), status(503), nil, false},
		{"POST with Idempotency-Key", req(http.MethodPost, strings.NewReader("x"), "Idempotency-Key", "k"), status(503), nil, true},
		{"POST with X-Idempotency-Key", req(http.MethodPost, strings.NewReader("x"), "X-Idempotency-Key", "k"), status(503), nil, true},
		{"PUT whose body cannot be rewound", noGetBody, status(503), nil, false},
		{"PUT with http.NoBody", req(http.MethodPut, http.NoBody), status(503), nil, true},
		{"context cancelled", get.WithContext(cancelled), status(503), nil, false},
		{"nil request", nil, status(503), nil, false},

		// Errors that may be transient.
		{"connection refused", get, nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{"connection reset", get, nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, true},
		{"connection closed early", get, nil, io.ErrUnexpectedEOF, true},
		{"DNS failure", get, nil, &sockets.LookupError{Host: publicName, Err: &net.DNSError{Err: "server misbehaving", IsTemporary: true}}, true},
		{"urlfetch connection closed", get, nil, fetchErr(urlfetch.ErrConnectionClosed), true},
		{"urlfetch DNS", get, nil, fetchErr(urlfetch.ErrDNS), true},
		{"urlfetch malformed reply", get, nil, fetchErr(urlfetch.ErrMalformedReply), true},
		{"POST, connection refused", req(http.MethodPost, strings.NewReader("x")), nil, syscall.ECONNREFUSED, false},
		{"an error of no known kind", get, nil, errors.New("other"), true},
		{"urlfetch DNS in a *url.Error", get, nil, &url.Error{Op: "Get", URL: publicURL, Err: fetchErr(urlfetch.ErrDNS)}, true},

		// Errors that are never retried.
		{"refusal", get, nil, fmt.Errorf("dial: %w", sockets.ErrDenied), false},
		{"refusal by rule", get, nil, &sockets.DeniedError{Rule: sockets.RuleSMTP}, false},
		{"urlfetch refusal", get, nil, fetchErr(sockets.ErrDenied), false},
		{"urlfetch invalid URL", get, nil, fetchErr(urlfetch.ErrInvalidURL), false},
		{"urlfetch invalid method", get, nil, fetchErr(urlfetch.ErrInvalidMethod), false},
		{"urlfetch request too large in a *url.Error", get, nil, &url.Error{Op: "Get", URL: publicURL, Err: fetchErr(urlfetch.ErrPayloadTooLarge)}, false},
		{"urlfetch request too large", get, nil, fetchErr(urlfetch.ErrPayloadTooLarge), false},
		{"urlfetch response too large", get, nil, fetchErr(urlfetch.ErrResponseTooLarge), false},
		{"urlfetch redirects", get, nil, fetchErr(urlfetch.ErrTooManyRedirects), false},
		{"urlfetch invalid request", get, nil, fetchErr(urlfetch.ErrInvalidRequest), false},
		{"urlfetch configuration", get, nil, fetchErr(urlfetch.ErrConfig), false},
		{"certificate", get, nil, &tlsconf.CertificateError{Host: publicName}, false},
		{"urlfetch certificate", get, nil, fetchErr(tlsconf.ErrCertificate), false},
		{"cancelled", get, nil, context.Canceled, false},
		{"urlfetch cancelled", get, nil, fetchErr(urlfetch.ErrCanceled), false},
		{"deadline", get, nil, context.DeadlineExceeded, false},
		{"urlfetch deadline over the exchange", get, nil, fetchErr(urlfetch.ErrDeadlineExceeded), false},
		{"dial timeout", get, nil, &net.OpError{Op: "dial", Net: "tcp", Err: context.DeadlineExceeded}, false},
		{"invalid request", get, nil, fmt.Errorf("%w: nil URL", transport.ErrInvalidRequest), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := transport.Retryable(tt.req, tt.resp, tt.err); got != tt.want {
				t.Fatalf("Retryable = %v, want %v", got, tt.want)
			}
		})
	}
}

// pipeNet is an in-memory network for tests on a fake clock
// (testing/synctest): a goroutine blocked on a loopback socket would keep
// the clock from moving, one blocked on a net.Pipe does not. Its Connect is
// a sockets.Dialer's final connect step, so a request still goes through
// the resolver and the policy, and the server at the other end is a real
// net/http server.
type pipeNet struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeNet() *pipeNet {
	return &pipeNet{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Connect hands one end of a new pipe to Accept and returns the other.
func (p *pipeNet) Connect(ctx context.Context, _ string, _ netip.AddrPort) (net.Conn, error) {
	c, s := net.Pipe()
	select {
	case p.conns <- s:
		return c, nil
	case <-p.done:
		err := net.ErrClosed
		c.Close()
		s.Close()
		return nil, err
	case <-ctx.Done():
		c.Close()
		s.Close()
		return nil, ctx.Err()
	}
}

func (p *pipeNet) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

func (p *pipeNet) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}

func (p *pipeNet) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// syncRig starts h on a pipeNet and returns a Transport of cfg's backend
// that reaches it. Call it inside the bubble.
func syncRig(t *testing.T, cfg transport.Config, h http.Handler) *transport.Transport {
	t.Helper()
	pn := newPipeNet()
	srv := &http.Server{Handler: h}
	go srv.Serve(pn)
	cfg.Dialer.Resolver = lab.NewResolver(map[string][]string{publicName: {"93.184.216.34"}})
	cfg.Dialer.Connect = pn.Connect
	rt, err := transport.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rt.CloseIdleConnections()
		srv.Close()
	})
	return rt
}

// TestRetryWaits checks each wait between tries on a fake clock: the
// backoff's bounds, Retry-After in its three date forms and in seconds,
// capped and floored, and the request context's bound on the waiting.
func TestRetryWaits(t *testing.T) {
	// On the fake clock, the first request is served at this instant:
	// Retry-After dates are written from it.
	in := func(d time.Duration, layout string) func() string {
		return func() string { return time.Now().Add(d).UTC().Format(layout) }
	}
	const (
		rfc850  = "Monday, 02-Jan-06 15:04:05 GMT"
		asctime = "Mon Jan _2 15:04:05 2006"
	)
	for _, tt := range []struct {
		name     string
		fail     []reply
		min, max time.Duration
		// each gap must lie in [lo, hi]
		lo, hi []time.Duration
	}{
		{
			name: "backoff doubles its ceiling, within min and max",
			fail: []reply{{status: 503}, {status: 503}, {status: 503}},
			min:  time.Second, max: 4 * time.Second,
			lo: []time.Duration{time.Second, time.Second, time.Second},
			hi: []time.Duration{2 * time.Second, 4 * time.Second, 4 * time.Second},
		},
		{
			name: "min equal to max",
			fail: []reply{{status: 502}, {status: 504}},
			min:  3 * time.Second, max: 3 * time.Second,
			lo: []time.Duration{3 * time.Second, 3 * time.Second},
			hi: []time.Duration{3 * time.Second, 3 * time.Second},
		},
		{
			name: "max below min means min",
			fail: []reply{{status: 503}},
			min:  3 * time.Second, max: time.Second,
			lo: []time.Duration{3 * time.Second},
			hi: []time.Duration{3 * time.Second},
		},
		{
			name: "Retry-After seconds on 429",
			fail: []reply{{status: 429, retryAfter: retryAfter("3")}},
			min:  time.Second, max: 10 * time.Second,
			lo: []time.Duration{3 * time.Second}, hi: []time.Duration{3 * time.Second},
		},
		{
			name: "Retry-After seconds on 502",
			fail: []reply{{status: 502, retryAfter: retryAfter("7")}},
			min:  time.Second, max: 10 * time.Second,
			lo: []time.Duration{7 * time.Second}, hi: []time.Duration{7 * time.Second},
		},
		{
			// RFC 9110, section 5.6.7: IMF-fixdate, the preferred form.
			name: "Retry-After IMF-fixdate",
			fail: []reply{{status: 503, retryAfter: in(5*time.Second, http.TimeFormat)}},
			min:  time.Second, max: 10 * time.Second,
			lo: []time.Duration{5 * time.Second}, hi: []time.Duration{5 * time.Second},
		},
		{
			// RFC 9110, section 5.6.7: the obsolete RFC 850 form, which a
			// recipient must still read.
			name: "Retry-After RFC 850 date",
			fail: []reply{{status: 503, retryAfter: in(5*time.Second, rfc850)}},
			min:  time.Second, max: 10 * time.Second,
			lo: []time.Duration{5 * time.Second}, hi: []time.Duration{5 * time.Second},
		},
		{
			// RFC 9110, section 5.6.7: the obsolete asctime form.
			name: "Retry-After asctime date",
			fail: []reply{{status: 503, retryAfter: in(5*time.Second, asctime)}},
			min:  time.Second, max: 10 * time.Second,
			lo: []time.Duration{5 * time.Second}, hi: []time.Duration{5 * time.Second},
		},
		{
			name: "Retry-After capped at max",
			fail: []reply{{status: 429, retryAfter: retryAfter("3600")}, {status: 503, retryAfter: in(time.Hour, http.TimeFormat)}},
			min:  time.Second, max: 10 * time.Second,
			lo: []time.Duration{10 * time.Second, 10 * time.Second},
			hi: []time.Duration{10 * time.Second, 10 * time.Second},
		},
		{
			name: "Retry-After huge",
			fail: []reply{{status: 429, retryAfter: retryAfter("99999999999999999999")}},
			min:  time.Second, max: 10 * time.Second,
			lo: []time.Duration{time.Second}, hi: []time.Duration{2 * time.Second}, // not a number that fits: ignored
		},
		{
			name: "Retry-After below min raised to min",
			fail: []reply{{status: 429, retryAfter: retryAfter("0")}, {status: 503, retryAfter: in(-time.Hour, http.TimeFormat)}},
			min:  2 * time.Second, max: 10 * time.Second,
			lo: []time.Duration{2 * time.Second, 2 * time.Second},
			hi: []time.Duration{2 * time.Second, 2 * time.Second},
		},
		{
			name: "Retry-After neither seconds nor a date: backoff",
			fail: []reply{{status: 503, retryAfter: retryAfter("soon")}, {status: 503, retryAfter: retryAfter("-5")}},
			min:  time.Second, max: 10 * time.Second,
			lo: []time.Duration{time.Second, time.Second},
			hi: []time.Duration{2 * time.Second, 4 * time.Second},
		},
	} {
		for _, b := range backends {
			t.Run(tt.name+"/"+b.String(), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					h := &retryServer{fail: tt.fail}
					rt := syncRig(t, transport.Config{Backend: b, Retries: len(tt.fail), RetryWaitMin: tt.min, RetryWaitMax: tt.max}, h)
					resp, err := rt.RoundTrip(httptest.NewRequest(http.MethodGet, publicURL, nil))
					if err != nil {
						t.Fatal(err)
					}
					if mustRead(t, resp); resp.StatusCode != 200 {
						t.Fatalf("status %d, want 200 after every retry", resp.StatusCode)
					}
					gaps := h.gaps()
					if len(gaps) != len(tt.lo) {
						t.Fatalf("gaps %v, want %d", gaps, len(tt.lo))
					}
					for i, g := range gaps {
						if g < tt.lo[i] || g > tt.hi[i] {
							t.Errorf("wait %d = %v, want within [%v, %v]", i+1, g, tt.lo[i], tt.hi[i])
						}
					}
				})
			})
		}
	}
}

// TestRetryJitter checks that waits are spread, so that clients that
// failed together do not retry together.
func TestRetryJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const clients = 16
		var waits []time.Duration
		for range clients {
			h := &retryServer{fail: []reply{{status: 503}}}
			rt := syncRig(t, transport.Config{Backend: transport.Sockets, Retries: 1, RetryWaitMin: time.Second, RetryWaitMax: time.Minute}, h)
			resp, err := rt.RoundTrip(httptest.NewRequest(http.MethodGet, publicURL, nil))
			if err != nil {
				t.Fatal(err)
			}
			mustRead(t, resp)
			waits = append(waits, h.gaps()...)
		}
		slices.Sort(waits)
		// Each wait is drawn from a range of a billion nanoseconds: 16
		// equal draws would be a broken random source, not bad luck.
		if len(waits) != clients || waits[0] < time.Second || waits[clients-1] > 2*time.Second || waits[0] == waits[clients-1] {
			t.Fatalf("waits %v, want %d waits within [1s, 2s], not all equal", waits, clients)
		}
	})
}

// TestRetryWaitEndsWithContext checks that the request context bounds the
// waiting, on a fake clock.
func TestRetryWaitEndsWithContext(t *testing.T) {
	slow := []reply{{status: 503, retryAfter: retryAfter("10")}, {status: 503, retryAfter: retryAfter("10")}}
	cfg := transport.Config{Retries: 2, RetryWaitMin: time.Second, RetryWaitMax: time.Minute}
	for _, b := range backends {
		cfg.Backend = b
		t.Run("deadline before the wait ends/"+b.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := &retryServer{fail: slow}
				rt := syncRig(t, cfg, h)
				ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
				defer cancel()
				start := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, publicURL, nil)
				resp, err := rt.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				// One wait of 10 s fits in the 15 s; the second would not,
				// so the second 503 is returned at once.
				if got := mustRead(t, resp); resp.StatusCode != 503 || got != "try again" {
					t.Fatalf("status %d, body %q; want the second 503", resp.StatusCode, got)
				}
				if d := time.Since(start); h.calls() != 2 || d != 10*time.Second {
					t.Fatalf("%d calls in %v, want 2 in 10s", h.calls(), d)
				}
			})
		})
		t.Run("cancel during the wait/"+b.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := &retryServer{fail: slow}
				rt := syncRig(t, cfg, h)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				time.AfterFunc(4*time.Second, cancel)
				start := time.Now()
				body := &bodies{text: "payload"}
				_, err := rt.RoundTrip(body.request(t, ctx, http.MethodPut))
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("err = %v, want context.Canceled", err)
				}
				if d := time.Since(start); h.calls() != 1 || d != 4*time.Second {
					t.Fatalf("%d calls in %v, want 1 in 4s", h.calls(), d)
				}
				if n, closed := body.rewinds(); n != 1 || !closed {
					t.Fatalf("GetBody called %d times, every body closed %v; want 1, true", n, closed)
				}
			})
		})
	}
}
