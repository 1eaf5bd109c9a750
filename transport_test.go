package outbound_test

// End-to-end tests of the backend switch: the environment picks the
// backend, and the two backends keep one RoundTripper contract. Every name
// resolves through a test resolver; every allowed connection is mapped onto
// a loopback server by the dialer's connect seam; no packet leaves loopback.

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/internal/obs"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/transport"
	"github.com/outbound-go/outbound/urlfetch"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// setSockets sets GAE_USE_SOCKETS_HTTPLIB to *v for the test, or unsets it
// when v is nil; the previous state comes back after the test.
func setSockets(t *testing.T, v *string) {
	t.Helper()
	t.Setenv(transport.EnvSockets, "") // records the old state for restoring
	if v == nil {
		os.Unsetenv(transport.EnvSockets)
		return
	}
	os.Setenv(transport.EnvSockets, *v)
}

func ptr(s string) *string { return &s }

var switchCases = []struct {
	name string
	val  *string
	want transport.Backend
}{
	{"unset", nil, transport.URLFetch},
	{"empty", ptr(""), transport.Sockets},
	{"anyvalue", ptr("anyvalue"), transport.Sockets},
	{"false", ptr("false"), transport.Sockets}, // presence, never the value
	{"zero", ptr("0"), transport.Sockets},
}

// TestFromEnvSwitch drives FromEnv itself. Without a test resolver it can
// only be observed through requests that are refused before any
// connection: a urlfetch request rule applies under urlfetch only, and the
// sockets policy refuses a loopback literal.
func TestFromEnvSwitch(t *testing.T) {
	for _, tc := range switchCases {
		t.Run(tc.name, func(t *testing.T) {
			setSockets(t, tc.val)
			rt, err := transport.FromEnv()
			if err != nil {
				t.Fatal(err)
			}
			defer rt.CloseIdleConnections()
			if b, ok := transport.BackendOf(rt); !ok || b != tc.want {
				t.Fatalf("backend %v, want %v", b, tc.want)
			}
			// PROPFIND is outside URL Fetch's methods; the sockets
			// backend has no method rule and is stopped by its
			// destination policy instead (loopback). Neither connects.
			req := httptest.NewRequest("PROPFIND", "http://127.0.0.1:8080/", nil)
			_, err = rt.RoundTrip(req)
			switch tc.want {
			case transport.URLFetch:
				if !errors.Is(err, urlfetch.ErrInvalidMethod) {
					t.Fatalf("urlfetch: err = %v, want ErrInvalidMethod", err)
				}
			case transport.Sockets:
				var de *sockets.DeniedError
				if !errors.As(err, &de) || de.Rule != sockets.RuleLoopback {
					t.Fatalf("sockets: err = %v, want a loopback refusal", err)
				}
			}
			// An 11 MiB upload to a loopback address: urlfetch refuses
			// the size before anything else; sockets refuses the
			// address. (Both destinations here are loopback, so even a
			// broken rule could not send a packet off the machine.)
			req = httptest.NewRequest("POST", "http://127.0.0.1:8080/", strings.NewReader(strings.Repeat("x", 11<<20)))
			_, err = rt.RoundTrip(req)
			if got := errors.Is(err, urlfetch.ErrPayloadTooLarge); got != (tc.want == transport.URLFetch) {
				t.Fatalf("err = %v: urlfetch size limit applied = %v under %v", err, got, tc.want)
			}
			if tc.want == transport.Sockets && !errors.Is(err, sockets.ErrDenied) {
				t.Fatalf("sockets: err = %v, want a refusal", err)
			}
		})
	}
}

// rig builds a transport from the environment with a test resolver and a
// connect seam onto srv.
type rig struct {
	rt   http.RoundTripper
	conn *lab.Connector
}

var hosts = map[string][]string{
	"www.example.com":  {"93.184.216.34"},  // public
	"storage.example":  {"142.250.64.100"}, // inside Google's ranges
	"intranet.example": {"10.0.0.1"},       // private (RFC 1918)
}

func newRig(t *testing.T, srv *httptest.Server, cfg transport.Config) *rig {
	t.Helper()
	r := &rig{conn: &lab.Connector{Target: srv.Listener.Addr().String()}}
	cfg.Dialer.Resolver = lab.NewResolver(hosts)
	cfg.Dialer.Connect = r.conn.Connect
	rt, err := transport.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.CloseIdleConnections)
	r.rt = rt
	return r
}

// TestFromEnvBehaviour reads the configuration from the environment, adds
// the test resolver and connect seam, and observes each backend's rules:
// a Google-range address is refused by sockets but not by urlfetch, and the
// 32 MiB response limit applies under urlfetch only.
func TestFromEnvBehaviour(t *testing.T) {
	big := int64(32<<20 + 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			io.Copy(w, io.LimitReader(zeros{}, big))
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	for _, tc := range switchCases {
		t.Run(tc.name, func(t *testing.T) {
			setSockets(t, tc.val)
			cfg, err := transport.ConfigFromEnv()
			if err != nil {
				t.Fatal(err)
			}
			r := newRig(t, srv, cfg)
			if b, ok := transport.BackendOf(r.rt); !ok || b != tc.want {
				t.Fatalf("backend %v, want %v", b, tc.want)
			}
			c := &http.Client{Transport: r.rt}

			resp, err := c.Get("http://storage.example/")
			if tc.want == transport.Sockets {
				var de *sockets.DeniedError
				if !errors.As(err, &de) || de.Rule != sockets.RuleGoogle {
					t.Fatalf("sockets: err = %v, want a google range refusal", err)
				}
				if n := len(r.conn.Attempts()); n != 0 {
					t.Fatalf("sockets: %d connection attempts for a refused address", n)
				}
			} else {
				if err != nil {
					t.Fatalf("urlfetch: Google's ranges must be reachable: %v", err)
				}
				resp.Body.Close()
			}

			resp, err = c.Get("http://www.example.com/big")
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if tc.want == transport.URLFetch {
				if n != 32<<20 || !errors.Is(err, urlfetch.ErrResponseTooLarge) {
					t.Fatalf("urlfetch: read %d bytes, err %v; want 32 MiB and ErrResponseTooLarge", n, err)
				}
			} else if n != big || err != nil {
				t.Fatalf("sockets: read %d bytes, err %v; want all %d", n, err, big)
			}
		})
	}
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestContract runs one test body against both backends: the
// http.RoundTripper rules, body closing, and context cancellation.
func TestContract(t *testing.T) {
	for _, b := range []transport.Backend{transport.URLFetch, transport.Sockets} {
		t.Run(b.String(), func(t *testing.T) { testContract(t, b) })
	}
}

func testContract(t *testing.T, backend transport.Backend) {
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			http.Error(w, "no such page", http.StatusNotFound)
		case "/fail":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "/slow-headers":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "/slow-body":
			w.WriteHeader(200)
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		default:
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Echo-Len", r.Header.Get("Content-Length"))
			w.Write(b)
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(unblock) // runs before srv.Close
	r := newRig(t, srv, transport.Config{Backend: backend})

	t.Run("non-2xx is a response", func(t *testing.T) {
		for _, path := range []string{"/missing", "/fail"} {
			resp, err := r.rt.RoundTrip(httptest.NewRequest("GET", "http://www.example.com"+path, nil))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Fatalf("%s: status %d", path, resp.StatusCode)
			}
		}
	})

	t.Run("request not mutated", func(t *testing.T) {
		req := httptest.NewRequest("POST", "http://www.example.com/echo?q=1", strings.NewReader("hello"))
		req.RequestURI = ""
		req.Header.Set("User-Agent", "contract-test")
		req.Header.Set("X-Forwarded-For", "1.2.3.4") // urlfetch strips it from what it sends
		hdr := req.Header.Clone()
		u := *req.URL
		host, method, cl := req.Host, req.Method, req.ContentLength
		resp, err := r.rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "hello" {
			t.Fatalf("echo = %q", body)
		}
		if !maps.EqualFunc(hdr, req.Header, func(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }) {
			t.Fatalf("headers changed: %v -> %v", hdr, req.Header)
		}
		if *req.URL != u || req.Host != host || req.Method != method || req.ContentLength != cl {
			t.Fatal("request fields changed")
		}
	})

	t.Run("body closed", func(t *testing.T) {
		for name, url := range map[string]string{
			"success": "http://www.example.com/echo",
			"refusal": "http://intranet.example/",
			"lookup":  "http://unknown.example/",
			"scheme":  "ftp://www.example.com/",
		} {
			body := &closeRecorder{Reader: strings.NewReader("payload")}
			req, _ := http.NewRequest("PUT", url, body)
			resp, err := r.rt.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
			}
			if (err == nil) != (name == "success") {
				t.Fatalf("%s: err = %v", name, err)
			}
			if !body.closed.Load() {
				t.Fatalf("%s: request body not closed", name)
			}
		}
	})

	t.Run("refusal is typed and makes no connection", func(t *testing.T) {
		before := len(r.conn.Attempts())
		_, err := r.rt.RoundTrip(httptest.NewRequest("GET", "http://intranet.example/", nil))
		var de *sockets.DeniedError
		if !errors.As(err, &de) || de.Rule != sockets.RulePrivate || de.Host != "intranet.example" {
			t.Fatalf("err = %v, want a private refusal naming the host", err)
		}
		if after := len(r.conn.Attempts()); after != before {
			t.Fatalf("%d connection attempts for a refused address", after-before)
		}
	})

	// One error model: the same URL is refused for the same rule, as the
	// same *sockets.DeniedError, whichever backend refuses it, so code
	// written against one backend keeps working when the environment
	// flips it.
	t.Run("same refusal on both backends", func(t *testing.T) {
		for _, c := range []struct {
			url  string
			rule sockets.Rule
			code string
		}{
			{"ftp://www.example.com/file", sockets.RuleScheme, "scheme"},
			{"FTP://www.example.com:2121/file", sockets.RuleScheme, "scheme"},
			{"gopher://www.example.com:70/1", sockets.RuleScheme, "scheme"},
			{"http://www.example.com:25/", sockets.RuleSMTP, "smtp_port"},
			{"https://www.example.com:21/", sockets.RuleFTP, "ftp_port"},
			// ":00", not ":0": urlfetch takes ":0" for the scheme's
			// default port, as App Engine did (see package urlfetch).
			{"http://www.example.com:00/", sockets.RulePort0, "port_0"},
			{"http://intranet.example/", sockets.RulePrivate, "private"},
			{"http://intranet.example:8080/", sockets.RulePrivate, "private"},
			{"http://127.0.0.1:8080/", sockets.RuleLoopback, "loopback"},
		} {
			before := len(r.conn.Attempts())
			_, err := r.rt.RoundTrip(httptest.NewRequest("GET", c.url, nil))
			de, ok := errors.AsType[*sockets.DeniedError](err)
			if !ok || de.Rule != c.rule {
				t.Fatalf("%s: err = %v, want a *sockets.DeniedError for %v", c.url, err, c.rule)
			}
			if !errors.Is(err, sockets.ErrDenied) || transport.Retryable(httptest.NewRequest("GET", c.url, nil), nil, err) {
				t.Errorf("%s: %v does not match sockets.ErrDenied, or is retryable", c.url, err)
			}
			// OpenTelemetry's semconv.ErrorType finds the method
			// through the chain, on either backend.
			typed, ok := errors.AsType[interface {
				error
				ErrorType() string
			}](err)
			if !ok || typed.ErrorType() != c.code {
				t.Errorf("%s: error.type %v, want %q", c.url, typed, c.code)
			}
			if strings.Contains(de.Redacted(), "10.0.0.1") {
				t.Errorf("%s: Redacted() %q shows the resolved address", c.url, de.Redacted())
			}
			if after := len(r.conn.Attempts()); after != before {
				t.Fatalf("%s: %d connection attempts for a refusal", c.url, after-before)
			}
		}
	})

	t.Run("cancel before headers", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://www.example.com/slow-headers", nil)
		errc := make(chan error, 1)
		go func() {
			resp, err := r.rt.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})

	t.Run("cancel during body", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://www.example.com/slow-body", nil)
		resp, err := r.rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := make([]byte, len("partial"))
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err := io.ReadAll(resp.Body); !errors.Is(err, context.Canceled) {
			t.Fatalf("read after cancel: %v, want context.Canceled", err)
		}
	})

	t.Run("concurrent use", func(t *testing.T) {
		var wg sync.WaitGroup
		var failed atomic.Int32
		for i := range 32 {
			wg.Go(func() {
				u := "http://www.example.com/echo?i=" + url.QueryEscape(string(rune('a'+i%26)))
				resp, err := r.rt.RoundTrip(httptest.NewRequest("GET", u, nil))
				if err != nil {
					failed.Add(1)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			})
		}
		wg.Wait()
		if n := failed.Load(); n != 0 {
			t.Fatalf("%d of 32 concurrent requests failed", n)
		}
	})
}

type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error {
	c.closed.Store(true)
	return nil
}

// TestMetering shows that each backend reports the bytes it moved: urlfetch
// per request through Config.URLFetch.OnStats, sockets through the
// outbound.io counter of the dialer's MeterProvider.
func TestMetering(t *testing.T) {
	const size = 100 << 10
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, io.LimitReader(zeros{}, size))
	}))
	t.Cleanup(srv.Close)
	get := func(t *testing.T, rt http.RoundTripper) {
		t.Helper()
		resp, err := rt.RoundTrip(httptest.NewRequest("GET", "http://www.example.com/", nil))
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := io.Copy(io.Discard, resp.Body); n != size {
			t.Fatalf("read %d bytes", n)
		}
		resp.Body.Close()
	}
	t.Run("urlfetch", func(t *testing.T) {
		var got atomic.Pointer[urlfetch.Stats]
		r := newRig(t, srv, transport.Config{URLFetch: transport.URLFetchConfig{
			OnStats: func(_ *http.Request, s urlfetch.Stats) { got.Store(&s) },
		}})
		get(t, r.rt)
		s := got.Load()
		if s == nil || s.BytesReceived <= size || s.BytesSent == 0 {
			t.Fatalf("stats = %+v, want more than %d bytes received and some sent", s, size)
		}
	})
	t.Run("sockets", func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		t.Cleanup(func() { mp.Shutdown(context.Background()) })
		r := newRig(t, srv, transport.Config{
			Backend: transport.Sockets,
			Dialer:  sockets.Dialer{MeterProvider: mp},
		})
		get(t, r.rt)
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		moved := make(map[string]int64) // by network.io.direction
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name != obs.MetricIO {
					continue
				}
				sum, ok := m.Data.(metricdata.Sum[int64])
				if !ok {
					t.Fatalf("outbound.io is a %T, want an int64 sum", m.Data)
				}
				for _, dp := range sum.DataPoints {
					dir, _ := dp.Attributes.Value(obs.AttrDirection)
					moved[dir.AsString()] += dp.Value
				}
			}
		}
		if moved["receive"] <= size || moved["transmit"] == 0 {
			t.Fatalf("outbound.io = %v, want more than %d bytes received and some transmitted", moved, size)
		}
	})
}
