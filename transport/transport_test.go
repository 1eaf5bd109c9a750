package transport_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketstest"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/transport"
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
	rt   http.RoundTripper
	conn *socketstest.Connector
	res  *socketstest.Resolver
}

func newRig(t *testing.T, srv *httptest.Server, cfg transport.Config) *rig {
	t.Helper()
	r := &rig{
		conn: &socketstest.Connector{Target: srv.Listener.Addr().String()},
		res: socketstest.NewResolver(map[string][]string{
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
	cfg.Backend = transport.Sockets
	cfg.Resolver = r.res
	cfg.Dialer = &sockets.Dialer{Connect: r.conn.Connect}
	if srv.Certificate() != nil {
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		cfg.TLS.RootCAs = pool
	}
	rt, err := transport.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.(*transport.Transport).CloseIdleConnections)
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
	}{
		{"intranet.example", "private (RFC 1918)"},
		{"google.example", sockets.RuleGoogle},
		{"metadata.example", "link-local (RFC 3927)"},
		{"loopback6.example", "loopback (RFC 4291)"},
		{"mapped.example", "loopback (RFC 1122)"},
		{"compatible.example", "IPv4-compatible, deprecated (RFC 4291) carrying loopback (RFC 1122)"},
		{"10.0.0.1", "private (RFC 1918)"},
		{"[fe80::1%25eth0]", sockets.RuleZone},
	} {
		t.Run(tc.host, func(t *testing.T) {
			_, err := c.Get("https://" + tc.host + "/")
			var de *sockets.DeniedError
			if !errors.As(err, &de) || !errors.Is(err, sockets.ErrDenied) {
				t.Fatalf("err = %v, want a *sockets.DeniedError", err)
			}
			if de.Rule != tc.rule {
				t.Fatalf("rule = %q, want %q", de.Rule, tc.rule)
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
		if !ok || got != b {
			t.Fatalf("BackendOf = %v, %v; want %v", got, ok, b)
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
		"negative retries": {Retries: -1},
		"tls min version":  {Backend: transport.Sockets, TLS: tlsconf.Config{MinVersion: 0x0301}},
		"missing CA file":  {Backend: transport.Sockets, TLS: tlsconf.Config{CAFile: "/nonexistent/ca.pem"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := transport.New(cfg); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
}

// counter is a handler that fails the first n requests with status, and
// records what it saw.
type counter struct {
	n      int32
	status int
	header http.Header
	calls  atomic.Int32
	bodies chan string
	first  chan struct{} // closed on the first request, if not nil
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	if c.bodies != nil {
		c.bodies <- string(b)
	}
	n := c.calls.Add(1)
	if n == 1 && c.first != nil {
		close(c.first)
	}
	if n <= c.n {
		for k, v := range c.header {
			w.Header()[k] = v
		}
		w.WriteHeader(c.status)
		io.WriteString(w, "try again")
		return
	}
	io.WriteString(w, "ok")
}

func retryRig(t *testing.T, h http.Handler, retries int) *rig {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return newRig(t, srv, transport.Config{Retries: retries, RetryWaitMin: time.Millisecond, RetryWaitMax: 2 * time.Millisecond})
}

func TestRetries(t *testing.T) {
	t.Run("GET retried until success", func(t *testing.T) {
		h := &counter{n: 2, status: 503}
		r := retryRig(t, h, 3)
		resp, err := r.rt.RoundTrip(httptest.NewRequest("GET", "http://"+publicName+"/", nil))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok" || h.calls.Load() != 3 {
			t.Fatalf("status %d body %q after %d calls", resp.StatusCode, body, h.calls.Load())
		}
	})
	t.Run("final 5xx passed through as a response", func(t *testing.T) {
		h := &counter{n: 100, status: 500}
		r := retryRig(t, h, 2)
		resp, err := r.rt.RoundTrip(httptest.NewRequest("GET", "http://"+publicName+"/", nil))
		if err != nil {
			t.Fatalf("a 5xx became an error: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 500 || string(body) != "try again" || h.calls.Load() != 3 {
			t.Fatalf("status %d body %q after %d calls", resp.StatusCode, body, h.calls.Load())
		}
	})
	t.Run("501 not retried", func(t *testing.T) {
		h := &counter{n: 100, status: 501}
		r := retryRig(t, h, 2)
		resp, err := r.rt.RoundTrip(httptest.NewRequest("GET", "http://"+publicName+"/", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if h.calls.Load() != 1 {
			t.Fatalf("%d calls, want 1", h.calls.Load())
		}
	})
	t.Run("POST not retried", func(t *testing.T) {
		h := &counter{n: 100, status: 503}
		r := retryRig(t, h, 3)
		resp, err := r.rt.RoundTrip(httptest.NewRequest("POST", "http://"+publicName+"/", strings.NewReader("x")))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 || h.calls.Load() != 1 {
			t.Fatalf("status %d after %d calls, want 503 after 1", resp.StatusCode, h.calls.Load())
		}
	})
	t.Run("POST with Idempotency-Key retried, body rewound", func(t *testing.T) {
		h := &counter{n: 2, status: 503, bodies: make(chan string, 3)}
		r := retryRig(t, h, 3)
		body := &closeRecorder{Reader: strings.NewReader("payload")}
		req, _ := http.NewRequest("POST", "http://"+publicName+"/", body)
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("payload")), nil }
		req.Header.Set("Idempotency-Key", "k1")
		resp, err := r.rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if h.calls.Load() != 3 {
			t.Fatalf("%d calls, want 3", h.calls.Load())
		}
		for range 3 {
			if got := <-h.bodies; got != "payload" {
				t.Fatalf("server saw body %q", got)
			}
		}
		if !body.closed.Load() {
			t.Fatal("the caller's body was not closed")
		}
	})
	t.Run("body without GetBody sent once", func(t *testing.T) {
		h := &counter{n: 100, status: 503}
		r := retryRig(t, h, 3)
		body := &closeRecorder{Reader: strings.NewReader("payload")}
		req, _ := http.NewRequest("PUT", "http://"+publicName+"/", body)
		resp, err := r.rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if h.calls.Load() != 1 || !body.closed.Load() {
			t.Fatalf("%d calls, closed=%v; want 1 call and the body closed", h.calls.Load(), body.closed.Load())
		}
	})
	t.Run("refusal never retried", func(t *testing.T) {
		h := &counter{}
		r := retryRig(t, h, 5)
		_, err := r.rt.RoundTrip(httptest.NewRequest("GET", "http://intranet.example/", nil))
		if !errors.Is(err, sockets.ErrDenied) {
			t.Fatalf("err = %v, want the refusal unchanged", err)
		}
		if n := len(r.res.Lookups()); n != 1 {
			t.Fatalf("%d lookups, want 1: the refusal was retried", n)
		}
		var de *sockets.DeniedError
		if !errors.As(err, &de) {
			t.Fatalf("err %T is not a *sockets.DeniedError", err)
		}
	})
	t.Run("Retry-After honoured", func(t *testing.T) {
		h := &counter{n: 1, status: 429, header: http.Header{"Retry-After": {"1"}}}
		r := retryRig(t, h, 2)
		start := time.Now()
		resp, err := r.rt.RoundTrip(httptest.NewRequest("GET", "http://"+publicName+"/", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// Only a lower bound: the backoff alone would wait 1-2 ms.
		if d := time.Since(start); d < time.Second || h.calls.Load() != 2 {
			t.Fatalf("retried after %v with %d calls, want at least 1s (Retry-After)", d, h.calls.Load())
		}
	})
	t.Run("cancelled context ends the waiting", func(t *testing.T) {
		h := &counter{n: 100, status: 503, header: http.Header{"Retry-After": {"3600"}}}
		r := retryRig(t, h, 2)
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+publicName+"/", nil)
		h.first = make(chan struct{})
		go func() {
			<-h.first
			cancel()
		}()
		_, err := r.rt.RoundTrip(req)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

func TestRetryLogging(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := &counter{n: 1, status: 503}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	r := newRig(t, srv, transport.Config{Retries: 1, RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond, Logger: logger})
	resp, err := r.rt.RoundTrip(httptest.NewRequest("GET", "http://"+publicName+"/", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.Contains(buf.String(), "retrying request") {
		t.Fatalf("no retry line in the configured logger: %q", buf.String())
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
		"ftp://" + publicName + "/file":    transport.RuleScheme,
		"FTP://" + publicName + ":2121/f":  transport.RuleScheme,
		"file:///etc/passwd":               transport.RuleScheme,
		"gopher://" + publicName + ":70/1": transport.RuleScheme,
	} {
		body := &closeRecorder{Reader: strings.NewReader("x")}
		req, _ := http.NewRequest("PUT", url, body)
		_, err := r.rt.RoundTrip(req)
		var de *sockets.DeniedError
		if !errors.As(err, &de) || de.Rule != rule || !errors.Is(err, sockets.ErrDenied) {
			t.Fatalf("%s: err = %v, want rule %q", url, err, rule)
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
		"negative deadline": {Deadline: -time.Second},
		"app id with CRLF":  {AppID: "app\r\nX-Evil: 1"},
		"missing CA file":   {TLS: tlsconf.Config{CAFile: "/nonexistent/ca.pem"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := transport.New(cfg); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
}

// urlfetch's deadline is one of its limits: a request that hits it is not
// tried again.
func TestRetriesSkipURLFetchDeadline(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	r := newRig(t, srv, transport.Config{Retries: 2, RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
	rt, err := transport.New(transport.Config{
		Backend:      transport.URLFetch,
		Resolver:     r.res,
		Dialer:       &sockets.Dialer{Connect: r.conn.Connect},
		Deadline:     200 * time.Millisecond,
		Retries:      2,
		RetryWaitMin: time.Millisecond,
		RetryWaitMax: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.(*transport.Transport).CloseIdleConnections()
	_, err = rt.RoundTrip(httptest.NewRequest("GET", "http://"+publicName+":8080/", nil))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d calls, want 1: the deadline was retried", n)
	}
}
