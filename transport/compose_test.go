package transport_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	retryablehttp "github.com/hashicorp/go-retryablehttp"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/transport"
	"github.com/outbound-go/outbound/urlfetch"
)

// composeRig is a loopback server reached as www.example.com
// (93.184.216.34, public) through the Connect seam, with the names of a
// private and a link-local address beside it, and a count of requests.
type composeRig struct {
	srv  *httptest.Server
	seam *lab.Connector
	res  *lab.Resolver
	hits atomic.Int32
}

func newComposeRig(t *testing.T, h http.HandlerFunc) *composeRig {
	t.Helper()
	r := &composeRig{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		h(w, req)
	}))
	t.Cleanup(r.srv.Close)
	r.seam = &lab.Connector{Target: r.srv.Listener.Addr().String()}
	r.res = lab.NewResolver(map[string][]string{
		"www.example.com":   {"93.184.216.34"},
		"intranet.example":  {"10.0.0.1"},
		"metadata.internal": {"169.254.169.254"},
	})
	return r
}

func (r *composeRig) dialer() sockets.Dialer {
	return sockets.Dialer{Resolver: r.res, Connect: r.seam.Connect}
}

// countingRT counts the requests a client sends through it.
type countingRT struct {
	rt http.RoundTripper
	n  atomic.Int32
}

func (c *countingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(req)
}

// TestCheckRetryWithRetryablehttp: a go-retryablehttp client over a
// Transport of either backend, with CheckRetry, sends a refused request
// once (retryablehttp's own default policy sends it RetryMax+1 times) and
// a request answered 503 again, up to RetryMax.
func TestCheckRetryWithRetryablehttp(t *testing.T) {
	for _, backend := range []transport.Backend{transport.URLFetch, transport.Sockets} {
		t.Run(backend.String(), func(t *testing.T) {
			rig := newComposeRig(t, func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusServiceUnavailable)
			})
			rt, err := transport.New(transport.Config{Backend: backend, Dialer: rig.dialer()})
			if err != nil {
				t.Fatal(err)
			}
			defer rt.CloseIdleConnections()
			newClient := func(check retryablehttp.CheckRetry) (*retryablehttp.Client, *countingRT) {
				counter := &countingRT{rt: rt}
				rc := retryablehttp.NewClient()
				rc.HTTPClient = &http.Client{Transport: counter}
				rc.RetryMax = 3
				rc.RetryWaitMin, rc.RetryWaitMax = time.Millisecond, time.Millisecond
				rc.Logger = nil
				rc.CheckRetry = check
				return rc, counter
			}

			rc, counter := newClient(transport.CheckRetry)
			_, err = rc.Get("http://intranet.example/")
			var denied *sockets.DeniedError
			if !errors.As(err, &denied) || denied.Rule != sockets.RulePrivate {
				t.Fatalf("refused URL: %v, want the refusal itself", err)
			}
			if n := counter.n.Load(); n != 1 {
				t.Errorf("refused URL tried %d times, want 1", n)
			}
			if a := rig.seam.Attempts(); len(a) != 0 {
				t.Errorf("connections attempted: %v", a)
			}

			resp, err := rc.Get("http://www.example.com/")
			if err == nil {
				resp.Body.Close()
			}
			if n, hits := counter.n.Load()-1, rig.hits.Load(); n != 4 || hits != 4 {
				t.Errorf("503 tried %d times (%d reached the server), want 4 (RetryMax 3)", n, hits)
			}

			// The contrast: retryablehttp's default policy retries the refusal.
			rc, counter = newClient(retryablehttp.DefaultRetryPolicy)
			rc.Get("http://intranet.example/")
			if n := counter.n.Load(); n != 4 {
				t.Errorf("with the default policy the refused URL was tried %d times; the contrast needs 4", n)
			}
		})
	}
}

// TestCheckRetry holds CheckRetry's decisions: never on a refusal, a
// limit, a certificate, a canceled context or a bad configuration;
// retryablehttp's default decision otherwise.
func TestCheckRetry(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	resp := func(code int) *http.Response { return &http.Response{StatusCode: code, Header: http.Header{}} }
	denied := &sockets.DeniedError{Network: "tcp", Host: "10.0.0.1", Rule: sockets.RulePrivate}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		resp *http.Response
		err  error
		want bool
	}{
		{"refusal", context.Background(), nil, &url.Error{Op: "Get", URL: "http://10.0.0.1/", Err: denied}, false},
		{"urlfetch limit", context.Background(), nil, &urlfetch.Error{Kind: urlfetch.ErrPayloadTooLarge}, false},
		{"urlfetch config", context.Background(), nil, &urlfetch.Error{Kind: urlfetch.ErrConfig}, false},
		{"certificate", context.Background(), nil, &tlsconf.CertificateError{Host: "example.com", Err: errors.New("x509: unknown authority")}, false},
		{"canceled error", context.Background(), nil, context.Canceled, false},
		{"canceled context", canceled, nil, errors.New("connection reset"), false},
		{"connection reset", context.Background(), nil, errors.New("read: connection reset by peer"), true},
		{"dns", context.Background(), nil, &sockets.LookupError{Host: "example.com", Err: errors.New("server misbehaving")}, true},
		{"503", context.Background(), resp(503), nil, true},
		{"429", context.Background(), resp(429), nil, true},
		{"501", context.Background(), resp(501), nil, false},
		{"200", context.Background(), resp(200), nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := transport.CheckRetry(tc.ctx, tc.resp, tc.err)
			if got != tc.want {
				t.Errorf("CheckRetry = %v, want %v", got, tc.want)
			}
			if !tc.want && tc.ctx.Err() == nil && err != nil {
				t.Errorf("CheckRetry error = %v, want nil (the request's own error is returned)", err)
			}
		})
	}
}

// TestClassify sorts real failures of both backends, as an http.Client
// returns them (wrapped in *url.Error), and a few built ones.
func TestClassify(t *testing.T) {
	rig := newComposeRig(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-r.Context().Done()
			return
		}
		io.WriteString(w, "ok")
	})
	cert, _ := lab.NewCert("tls.example.com") // signed by a CA no client trusts
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	tlsSrv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	closed := closedAddr(t)
	rig.res.Set("tls.example.com", "93.184.216.35")
	rig.res.Set("closed.example.com", "93.184.216.36")
	rig.seam.Routes = map[netip.AddrPort]string{
		netip.MustParseAddrPort("93.184.216.35:443"): tlsSrv.Listener.Addr().String(),
		netip.MustParseAddrPort("93.184.216.36:80"):  closed,
	}
	for _, backend := range []transport.Backend{transport.URLFetch, transport.Sockets} {
		t.Run(backend.String(), func(t *testing.T) {
			rt, err := transport.New(transport.Config{Backend: backend, Dialer: rig.dialer()})
			if err != nil {
				t.Fatal(err)
			}
			defer rt.CloseIdleConnections()
			client := &http.Client{Transport: rt}
			get := func(ctx context.Context, u string) error {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				return err
			}
			short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			for _, tc := range []struct {
				name string
				err  error
				want transport.Class
			}{
				{"private address", get(context.Background(), "http://intranet.example/"), transport.Refused},
				{"metadata server", get(context.Background(), "http://169.254.169.254/"), transport.Refused},
				{"unknown name", get(context.Background(), "http://nowhere.example/"), transport.DNS},
				{"unknown authority", get(context.Background(), "https://tls.example.com/"), transport.Certificate},
				{"deadline", get(short, "http://www.example.com/slow"), transport.Timeout},
				{"connection refused", get(context.Background(), "http://closed.example.com/"), transport.Other},
			} {
				if got := transport.Classify(tc.err); got != tc.want {
					t.Errorf("%s: Classify(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
				}
			}
		})
	}
	for _, tc := range []struct {
		name string
		err  error
		want transport.Class
	}{
		{"nil", nil, transport.Other},
		{"payload too large", &urlfetch.Error{Kind: urlfetch.ErrPayloadTooLarge}, transport.Limit},
		{"response too large", &urlfetch.Error{Kind: urlfetch.ErrResponseTooLarge}, transport.Limit},
		{"too many redirects", &urlfetch.Error{Kind: urlfetch.ErrTooManyRedirects}, transport.Limit},
		{"proxy refused", &sockets.ProxyError{Kind: sockets.ProxyRefused, StatusCode: 403}, transport.Proxy},
		{"dns timeout", &sockets.LookupError{Host: "a.example", Err: context.DeadlineExceeded}, transport.Timeout},
		{"canceled", context.Canceled, transport.Other},
	} {
		if got := transport.Classify(tc.err); got != tc.want {
			t.Errorf("%s: Classify = %v, want %v", tc.name, got, tc.want)
		}
	}
	for c, s := range map[transport.Class]string{transport.Other: "other", transport.Refused: "refused", transport.Timeout: "timeout",
		transport.DNS: "dns", transport.Certificate: "certificate", transport.Limit: "limit", transport.Proxy: "proxy"} {
		if c.String() != s {
			t.Errorf("%d.String() = %q, want %q", int(c), c.String(), s)
		}
	}
}

// TestSafeClient: the one-call client refuses every internal destination
// without a connection, reaches a public one through the seam, and sets
// the bounds it documents.
func TestSafeClient(t *testing.T) {
	rig := newComposeRig(t, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	d := rig.dialer()
	client, err := transport.SafeClient(&d)
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseIdleConnections()
	if client.Timeout != 30*time.Second {
		t.Errorf("client Timeout %v, want 30s", client.Timeout)
	}
	if b, ok := transport.BackendOf(client.Transport); !ok || b != transport.Sockets {
		t.Errorf("backend %v, %v; want sockets", b, ok)
	}
	for _, u := range []string{"http://intranet.example/", "http://metadata.internal/", "http://127.0.0.1/", "http://[::1]/", "http://[::ffff:10.0.0.1]/", "http://8.8.8.8/"} {
		resp, err := client.Get(u)
		if err == nil {
			resp.Body.Close()
			t.Errorf("GET %s: %s, want a refusal", u, resp.Status)
			continue
		}
		if transport.Classify(err) != transport.Refused {
			t.Errorf("GET %s: %v, want a refusal", u, err)
		}
	}
	if a := rig.seam.Attempts(); len(a) != 0 {
		t.Fatalf("refusals attempted connections: %v", a)
	}
	resp, err := client.Get("http://www.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Errorf("body %q", body)
	}
	if d.Timeout != 0 || d.Policy != nil {
		t.Error("SafeClient changed the caller's Dialer")
	}

	// The bounds, as the installed *http.Transport shows them.
	restore := transport.Install(client.Transport)
	ht := http.DefaultTransport.(*http.Transport)
	restore()
	if ht.ResponseHeaderTimeout != 10*time.Second || ht.MaxResponseHeaderBytes != 64<<10 {
		t.Errorf("header bounds %v, %d; want 10s, 64 KiB", ht.ResponseHeaderTimeout, ht.MaxResponseHeaderBytes)
	}

	// nil is the zero Dialer: the system resolver, never asked here.
	if _, err := transport.SafeClient(nil); err != nil {
		t.Fatal(err)
	}
}

// wrapper is a RoundTripper that says what it wraps, as
// roundtrippers.Unwrapper does.
type wrapper struct{ next http.RoundTripper }

func (w wrapper) RoundTrip(r *http.Request) (*http.Response, error) { return w.next.RoundTrip(r) }
func (w wrapper) Unwrap() http.RoundTripper                         { return w.next }

// opaque wraps without saying so, as otelhttp's Transport does.
type opaque struct{ next http.RoundTripper }

func (o opaque) RoundTrip(r *http.Request) (*http.Response, error) { return o.next.RoundTrip(r) }

// selfish unwraps to itself.
type selfish struct{}

func (selfish) RoundTrip(*http.Request) (*http.Response, error) { return nil, errors.New("no") }
func (s selfish) Unwrap() http.RoundTripper                     { return s }

func TestBackendOfUnwrap(t *testing.T) {
	rt, err := transport.New(transport.Config{Backend: transport.Sockets})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		rt   http.RoundTripper
		ok   bool
	}{
		{"itself", rt, true},
		{"one wrapper", wrapper{rt}, true},
		{"three wrappers", wrapper{wrapper{wrapper{rt}}}, true},
		{"opaque wrapper", opaque{rt}, false},
		{"opaque inside a wrapper", wrapper{opaque{rt}}, false},
		{"endless chain", selfish{}, false},
		{"nil", nil, false},
		{"plain http.Transport", &http.Transport{}, false},
	} {
		b, ok := transport.BackendOf(tc.rt)
		if ok != tc.ok || ok && b != transport.Sockets {
			t.Errorf("%s: BackendOf = %v, %v; want sockets, %v", tc.name, b, ok, tc.ok)
		}
	}
}

// TestInstallKeepsRefusalHook: the refusal hook belongs to the dialer, so
// the installed *http.Transport and its clones call it, once per refused
// request, as the Transport itself does.
func TestInstallKeepsRefusalHook(t *testing.T) {
	rig := newComposeRig(t, func(w http.ResponseWriter, _ *http.Request) {})
	var mu sync.Mutex
	var got []string
	rt, err := transport.New(transport.Config{
		Backend: transport.Sockets,
		Dialer:  rig.dialer(),
		OnRefusal: func(_ context.Context, err *sockets.DeniedError) {
			mu.Lock()
			got = append(got, err.Host+" "+err.ErrorType())
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	restore := transport.Install(rt)
	clone := http.DefaultTransport.(*http.Transport).Clone()
	restore()
	for i, c := range []*http.Client{{Transport: rt}, {Transport: clone}} {
		resp, err := c.Get(fmt.Sprintf("http://intranet.example/%d", i))
		if err == nil {
			resp.Body.Close()
			t.Fatal("not refused")
		}
	}
	want := "intranet.example private|intranet.example private"
	if s := strings.Join(got, "|"); s != want {
		t.Errorf("hook calls %q, want %q (once per refused request, clone included)", s, want)
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestNewRefusesUnusablePolicy: a policy with a host-list entry that can
// match nothing is an error of New and ForPolicy, never a policy that
// silently matches nothing.
func TestNewRefusesUnusablePolicy(t *testing.T) {
	bad := sockets.DefaultPolicy().DenyHosts("intranet.example:8080") // host:port is no host name
	for _, backend := range []transport.Backend{transport.URLFetch, transport.Sockets} {
		if _, err := transport.New(transport.Config{Backend: backend, Dialer: sockets.Dialer{Policy: bad}}); err == nil || !strings.Contains(err.Error(), "intranet.example:8080") {
			t.Errorf("%v: New with an unusable deny-list entry: %v, want an error naming it", backend, err)
		}
		rt, err := transport.New(transport.Config{Backend: backend})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rt.ForPolicy(bad); err == nil {
			t.Errorf("%v: ForPolicy with an unusable entry: no error", backend)
		}
	}
	if _, err := transport.SafeClient(&sockets.Dialer{Policy: bad}); err == nil {
		t.Error("SafeClient with an unusable entry: no error")
	}
}
