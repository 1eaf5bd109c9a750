// Package recipes holds the tests behind the README's table of libraries
// that Outbound composes with: each row's claim (composes, bypasses,
// breaks) is proved here against a real loopback server, through the
// production policy, with names resolved to public addresses by a test
// resolver and connected to loopback by the connect seam.
package recipes

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-resty/resty/v2"
	retryablehttp "github.com/hashicorp/go-retryablehttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric/noop"
	"golang.org/x/oauth2"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketstest"
	"github.com/outbound-go/outbound/transport"
)

// rig is a server reached as api.example.com (public, 93.184.216.34)
// that answers 503 to its first fails requests, then 200, and counts them;
// intranet.example resolves to a private address.
type rig struct {
	rt    *transport.Transport
	seam  *socketstest.Connector
	hits  atomic.Int32
	fails int32
	auth  atomic.Value // the last Authorization header seen
}

func newRig(t *testing.T, fails int32) *rig {
	t.Helper()
	r := &rig{fails: fails}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.auth.Store(req.Header.Get("Authorization"))
		if r.hits.Add(1) <= r.fails {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	r.seam = &socketstest.Connector{Target: srv.Listener.Addr().String()}
	rt, err := transport.New(transport.Config{
		Backend: transport.Sockets,
		Dialer: sockets.Dialer{
			Resolver: socketstest.NewResolver(map[string][]string{
				"api.example.com":  {"93.184.216.34"},
				"intranet.example": {"10.0.0.1"},
			}),
			Connect: r.seam.Connect,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.CloseIdleConnections)
	r.rt = rt
	return r
}

// counting counts the requests sent through it.
type counting struct {
	next http.RoundTripper
	n    atomic.Int32
}

func (c *counting) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(req)
}

func refused(t *testing.T, err error) {
	t.Helper()
	var de *sockets.DeniedError
	if !errors.As(err, &de) || transport.Classify(err) != transport.Refused {
		t.Fatalf("error %v, want a refusal", err)
	}
}

// retryablehttp composes with CheckRetry: a refusal is tried once, a 503
// again.
func TestRetryablehttp(t *testing.T) {
	r := newRig(t, 2)
	c := &counting{next: r.rt}
	rc := retryablehttp.NewClient()
	rc.HTTPClient = &http.Client{Transport: c}
	rc.CheckRetry = transport.CheckRetry
	rc.RetryWaitMin, rc.RetryWaitMax = time.Millisecond, time.Millisecond
	rc.Logger = nil

	_, err := rc.Get("http://intranet.example/")
	refused(t, err)
	if n := c.n.Load(); n != 1 {
		t.Errorf("refused URL sent %d times, want 1", n)
	}
	resp, err := rc.Get("http://api.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || r.hits.Load() != 3 {
		t.Errorf("status %d after %d requests, want 200 after 3", resp.StatusCode, r.hits.Load())
	}
}

// resty composes with SetTransport and a retry condition that stops on a
// refusal.
func TestResty(t *testing.T) {
	r := newRig(t, 2)
	c := &counting{next: r.rt}
	client := resty.New().
		SetTransport(c).
		SetRetryCount(3).
		SetRetryWaitTime(time.Millisecond).
		SetRetryMaxWaitTime(time.Millisecond).
		AddRetryCondition(func(resp *resty.Response, err error) bool {
			if err != nil {
				return transport.Classify(err) != transport.Refused
			}
			return resp.StatusCode() == http.StatusServiceUnavailable
		})

	_, err := client.R().Get("http://intranet.example/")
	refused(t, err)
	if n := c.n.Load(); n != 1 {
		t.Errorf("refused URL sent %d times, want 1", n)
	}
	resp, err := client.R().Get("http://api.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != 200 || r.hits.Load() != 3 {
		t.Errorf("status %d after %d requests, want 200 after 3", resp.StatusCode(), r.hits.Load())
	}
}

// otelhttp composes, and hides what it wraps: BackendOf cannot see
// through it, the Transport itself still can be asked.
func TestOtelhttp(t *testing.T) {
	r := newRig(t, 0)
	wrapped := otelhttp.NewTransport(r.rt, otelhttp.WithMeterProvider(noop.NewMeterProvider()))
	client := &http.Client{Transport: wrapped}
	_, err := client.Get("http://intranet.example/")
	refused(t, err)
	resp, err := client.Get("http://api.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, ok := transport.BackendOf(wrapped); ok {
		t.Error("BackendOf sees through otelhttp, which has no Unwrap: the README says it cannot")
	}
	if r.rt.Backend() != transport.Sockets {
		t.Error("the Transport itself does not know its backend")
	}

	// Installing the wrapper breaks the clone idiom; installing rt does not.
	restore := transport.Install(wrapped)
	_, ok := http.DefaultTransport.(*http.Transport)
	restore()
	if ok {
		t.Error("with the wrapper installed, http.DefaultTransport is an *http.Transport")
	}
}

// oauth2 composes: its Transport sends token-bearing requests through
// ours, and every one is checked.
func TestOAuth2(t *testing.T) {
	r := newRig(t, 0)
	client := &http.Client{Transport: &oauth2.Transport{
		Base:   r.rt,
		Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "secret", TokenType: "Bearer"}),
	}}
	_, err := client.Get("http://intranet.example/")
	refused(t, err)
	if a := r.seam.Attempts(); len(a) != 0 {
		t.Fatalf("the refusal attempted %v", a)
	}
	resp, err := client.Get("http://api.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := r.auth.Load(); got != "Bearer secret" {
		t.Errorf("Authorization %q", got)
	}
}

// Cloning http.DefaultTransport after Install composes; a clone made
// before Install bypasses the check. The proof stays on loopback: the
// policy refuses 127.0.0.1 (never public), so the checked clone refuses
// the loopback server by its address, while the clone a library made at
// init reaches it.
func TestCloning(t *testing.T) {
	r := newRig(t, 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "unchecked") }))
	defer srv.Close()
	before := http.DefaultTransport.(*http.Transport).Clone() // a library's init
	restore := transport.Install(r.rt)
	after := http.DefaultTransport.(*http.Transport).Clone()
	restore()
	defer before.CloseIdleConnections()
	defer after.CloseIdleConnections()

	_, err := (&http.Client{Transport: after}).Get(srv.URL)
	refused(t, err)
	_, err = (&http.Client{Transport: after}).Get("http://intranet.example/")
	refused(t, err)

	resp, err := (&http.Client{Transport: before}).Get(srv.URL)
	if err != nil {
		t.Fatalf("the clone made before Install: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "unchecked" {
		t.Errorf("body %q", b)
	}
}
