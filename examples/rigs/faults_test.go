package rigs_test

// The fault-injection suite: every fault is a loopback server (or a
// resolver) that misbehaves on purpose, and every fault runs against both
// backends. For each, the request must end, with a response or an error of
// a known type, and a fault that stalls must end at its deadline; no
// connection may go to an address the backend's policy refuses; and once
// the test has closed what it opened, no goroutine it started may be left
// running and no connection it made may be left open.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/transport"
	"github.com/outbound-go/outbound/urlfetch"
)

// faultDeadline is the deadline of a request to a fault that stalls
// (fault.stall): the request context's, and the urlfetch backend's own.
// Only the deadline ends such a request, which must end within it plus
// lateness. Every other request is given faultMaxDeadline, which is not
// what the suite is about: it only keeps a broken request from hanging
// the suite, and is long enough that a busy machine never reaches it.
const (
	faultDeadline    = time.Second
	faultMaxDeadline = time.Minute
)

// outcome is how one request ended.
type outcome struct {
	status  int   // 0 when RoundTrip failed
	proto   int   // the response's ProtoMajor
	err     error // RoundTrip's (or the client's) error
	body    []byte
	bodyErr error // the error that ended the body, nil for a clean end
	hops    int64 // requests the server saw (for the redirect faults)
}

func (o outcome) String() string {
	if o.err != nil {
		return fmt.Sprintf("error %v", o.err)
	}
	return fmt.Sprintf("HTTP/%d %d, %d body bytes, body error %v", o.proto, o.status, len(o.body), o.bodyErr)
}

// An expectation holds for an outcome or says why not.
type expectation func(o outcome) error

// fault is one misbehaviour. start sets up its server (and resolver names)
// and returns the URL to fetch and the loopback server to connect to.
// afterHeaders, if set, is called once RoundTrip has returned a response,
// for a fault that strikes mid-body. want names what each backend may do.
type fault struct {
	name  string
	start func(t *testing.T, f *faultEnv) (url, target string)
	// client makes the http.Client; nil means one with the backend's
	// transport and net/http's redirect rule.
	client func(ob *outbound) *http.Client
	want   map[transport.Backend]expectation
	// stall says that the fault never ends the request by itself: only
	// the deadline does.
	stall bool
}

// faultEnv is what a fault's start function may change.
type faultEnv struct {
	names        map[string]lab.LookupFunc
	afterHeaders func()
	hops         atomic.Int64
}

// The expectations.

// respThenBody wants a response with the status, then a body that ends
// with an error that body accepts.
func respThenBody(status int, body func(error) error) expectation {
	return func(o outcome) error {
		if o.err != nil {
			return fmt.Errorf("RoundTrip failed (%v), want a response", o.err)
		}
		if o.status != status {
			return fmt.Errorf("status %d, want %d", o.status, status)
		}
		return body(o.bodyErr)
	}
}

// rtError wants RoundTrip to fail with an error that check accepts.
func rtError(check func(error) error) expectation {
	return func(o outcome) error {
		if o.err == nil {
			return fmt.Errorf("got a response (%v), want an error", o)
		}
		return check(o.err)
	}
}

// is accepts an error that matches every target, with errors.Is.
func is(targets ...error) func(error) error {
	return func(err error) error {
		for _, t := range targets {
			if !errors.Is(err, t) {
				return fmt.Errorf("error %v does not match %v", err, t)
			}
		}
		return nil
	}
}

// isAny accepts an error that matches one of the targets.
func isAny(targets ...error) func(error) error {
	return func(err error) error {
		for _, t := range targets {
			if errors.Is(err, t) {
				return nil
			}
		}
		return fmt.Errorf("error %v matches none of %v", err, targets)
	}
}

// as accepts an error with a T in its chain.
func as[T error]() func(error) error {
	return func(err error) error {
		if _, ok := errors.AsType[T](err); !ok {
			var zero T
			return fmt.Errorf("error %v holds no %T", err, zero)
		}
		return nil
	}
}

// all accepts an error every check accepts.
func all(checks ...func(error) error) func(error) error {
	return func(err error) error {
		for _, c := range checks {
			if e := c(err); e != nil {
				return e
			}
		}
		return nil
	}
}

// untypedHTTPError accepts an error that net/http reports without an
// exported type or sentinel (a malformed chunk size, a GOAWAY that ends a
// stream), as long as it is not mistaken for a refusal or a timeout. The
// sockets backend passes net/http's errors through as they are; only the
// urlfetch backend classifies every error.
func untypedHTTPError(err error) error {
	switch {
	case err == nil:
		return errors.New("no error, want net/http's")
	case errors.Is(err, sockets.ErrDenied):
		return fmt.Errorf("error %v is a refusal", err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("error %v is a timeout", err)
	}
	return nil
}

// urlfetchALPN is what the urlfetch backend, which offers only
// "http/1.1", gets from a server that speaks only HTTP/2: the TLS
// handshake fails (no_application_protocol) and the exchange is a closed
// connection.
var urlfetchALPN = rtError(all(is(urlfetch.ErrConnectionClosed), as[*urlfetch.Error]()))

// urlfetchTimeout is urlfetch's deadline error: it matches its own
// sentinel and context.DeadlineExceeded, and is a net.Error that times out.
func urlfetchTimeout(err error) error {
	if e := is(urlfetch.ErrDeadlineExceeded, context.DeadlineExceeded)(err); e != nil {
		return e
	}
	if ne, ok := errors.AsType[net.Error](err); !ok || !ne.Timeout() {
		return fmt.Errorf("error %v is not a net.Error that times out", err)
	}
	return nil
}

// readRequest reads one request from br and drains its body.
func readRequest(br *bufio.Reader) error {
	req, err := http.ReadRequest(br)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, req.Body)
	return err
}

// h1Fault is a fault served by a raw HTTP/1 server: serve runs once per
// connection, after the first request has been read.
func h1Fault(t *testing.T, tlsCfg *tls.Config, serve func(c net.Conn, done <-chan struct{})) string {
	srv := startRaw(t, tlsCfg, func(c net.Conn, done <-chan struct{}) {
		if readRequest(bufio.NewReader(c)) != nil {
			return
		}
		serve(c, done)
	})
	return srv.addr()
}

// faults is the table. Names resolve through the test resolver, to
// publicIP unless a fault says otherwise.
var faults = []fault{
	{
		// The server sends the headers and 1,000 of the 65,536 bytes it
		// announced, and once the client has the response, resets the
		// connection (SO_LINGER 0, then close: an RST).
		name: "reset mid-body",
		start: func(t *testing.T, f *faultEnv) (string, string) {
			reset := make(chan struct{})
			f.afterHeaders = func() { close(reset) }
			return "http://reset.example.com/", h1Fault(t, nil, func(c net.Conn, done <-chan struct{}) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n"+strings.Repeat("r", 1000))
				select {
				case <-reset:
				case <-done:
				}
				c.(*net.TCPConn).SetLinger(0)
			})
		},
		want: map[transport.Backend]expectation{
			transport.URLFetch: respThenBody(200, all(is(urlfetch.ErrConnectionClosed), is(syscall.ECONNRESET))),
			transport.Sockets:  respThenBody(200, is(syscall.ECONNRESET)),
		},
	},
	{
		// The status line and one header arrive, the blank line that ends
		// the headers never does.
		name:  "headers never finish",
		stall: true,
		start: func(t *testing.T, f *faultEnv) (string, string) {
			return "http://slow-headers.example.com/", h1Fault(t, nil, func(c net.Conn, done <-chan struct{}) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Slow: 1\r\n")
				<-done
			})
		},
		want: map[transport.Backend]expectation{
			transport.URLFetch: rtError(urlfetchTimeout),
			transport.Sockets:  rtError(is(context.DeadlineExceeded)),
		},
	},
	{
		// A chunked body that goes on for ever, one small chunk every 10
		// milliseconds.
		name:  "body never ends",
		stall: true,
		start: func(t *testing.T, f *faultEnv) (string, string) {
			return "http://endless.example.com/", h1Fault(t, nil, func(c net.Conn, done <-chan struct{}) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
				tick := time.NewTicker(10 * time.Millisecond)
				defer tick.Stop()
				for {
					if _, err := io.WriteString(c, "5\r\nmore.\r\n"); err != nil {
						return
					}
					select {
					case <-tick.C:
					case <-done:
						return
					}
				}
			})
		},
		want: map[transport.Backend]expectation{
			transport.URLFetch: respThenBody(200, urlfetchTimeout),
			transport.Sockets:  respThenBody(200, is(context.DeadlineExceeded)),
		},
	},
	{
		// Content-Length promises 1,000 bytes; 10 come, then the server
		// closes the connection.
		name: "content-length lies",
		start: func(t *testing.T, f *faultEnv) (string, string) {
			return "http://short.example.com/", h1Fault(t, nil, func(c net.Conn, done <-chan struct{}) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
			})
		},
		want: map[transport.Backend]expectation{
			transport.URLFetch: respThenBody(200, all(is(urlfetch.ErrConnectionClosed), is(io.ErrUnexpectedEOF))),
			transport.Sockets:  respThenBody(200, is(io.ErrUnexpectedEOF)),
		},
	},
	{
		// One good chunk, then a chunk size that is not hexadecimal.
		name: "broken chunked encoding",
		start: func(t *testing.T, f *faultEnv) (string, string) {
			return "http://chunked.example.com/", h1Fault(t, nil, func(c net.Conn, done <-chan struct{}) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nbroken\r\n")
				<-done
			})
		},
		want: map[transport.Backend]expectation{
			transport.URLFetch: respThenBody(200, is(urlfetch.ErrMalformedReply)),
			transport.Sockets:  respThenBody(200, untypedHTTPError),
		},
	},
	{
		// A TCP server on the https port that reads the ClientHello and
		// never answers.
		name:  "TLS handshake stalls",
		stall: true,
		start: func(t *testing.T, f *faultEnv) (string, string) {
			srv := startRaw(t, nil, func(c net.Conn, done <-chan struct{}) {
				io.Copy(io.Discard, c) // until the client or the server closes
			})
			return "https://stall.example.com/", srv.addr()
		},
		want: map[transport.Backend]expectation{
			transport.URLFetch: rtError(urlfetchTimeout),
			transport.Sockets:  rtError(is(context.DeadlineExceeded)),
		},
	},
	{
		// The certificate is valid for example.com and *.example.com; the
		// name fetched is wrong.example.net.
		name: "certificate for the wrong name",
		start: func(t *testing.T, f *faultEnv) (string, string) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			srv.TLS = pki().serverTLS("h2", "http/1.1")
			srv.Config.ErrorLog = quietLog
			srv.StartTLS()
			t.Cleanup(srv.Close)
			f.names["wrong.example.net"] = lab.Fixed(publicIP)
			return "https://wrong.example.net/", srv.Listener.Addr().String()
		},
		want: map[transport.Backend]expectation{
			transport.URLFetch: rtError(all(is(tlsconf.ErrCertificate), as[*tlsconf.CertificateError](), as[x509.HostnameError]())),
			transport.Sockets:  rtError(all(is(tlsconf.ErrCertificate), as[*tlsconf.CertificateError](), as[x509.HostnameError]())),
		},
	},
	{
		// Every reply redirects to the same URL. urlfetch's client follows
		// its 5 redirects (6 requests) and stops; net/http's default
		// client, used with the sockets backend, stops after 10 requests.
		name: "redirect loop",
		start: func(t *testing.T, f *faultEnv) (string, string) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				f.hops.Add(1)
				http.Redirect(w, r, "http://loop.example.com/loop", http.StatusFound)
			}))
			t.Cleanup(srv.Close)
			return "http://loop.example.com/loop", srv.Listener.Addr().String()
		},
		client: fetchClient,
		want: map[transport.Backend]expectation{
			transport.URLFetch: hops(urlfetch.MaxRedirects+1, rtError(all(is(urlfetch.ErrTooManyRedirects), as[*urlfetch.Error]()))),
			transport.Sockets:  hops(10, rtError(as[*url.Error]())),
		},
	},
	{
		// A public server redirects to a name that resolves to a private
		// address: the hop is checked again and refused, unconnected.
		name: "redirect to a private address",
		start: func(t *testing.T, f *faultEnv) (string, string) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				f.hops.Add(1)
				http.Redirect(w, r, "http://intranet.example.com/admin", http.StatusFound)
			}))
			t.Cleanup(srv.Close)
			f.names["intranet.example.com"] = lab.Fixed(privateIP)
			return "http://public.example.com/", srv.Listener.Addr().String()
		},
		client: fetchClient,
		want: map[transport.Backend]expectation{
			transport.URLFetch: hops(1, rtError(all(is(sockets.ErrDenied), deniedPrivate))),
			transport.Sockets:  hops(1, rtError(all(is(sockets.ErrDenied), deniedPrivate))),
		},
	},
	{
		// The resolver never answers; only the deadline ends the lookup.
		name:  "resolver hangs",
		stall: true,
		start: func(t *testing.T, f *faultEnv) (string, string) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				t.Error("a request reached the server although its name never resolved")
			}))
			t.Cleanup(srv.Close)
			f.names["hang.example.com"] = lab.Hang
			return "http://hang.example.com/", srv.Listener.Addr().String()
		},
		want: map[transport.Backend]expectation{
			transport.URLFetch: rtError(urlfetchTimeout),
			transport.Sockets:  rtError(is(context.DeadlineExceeded)),
		},
	},
	h2Fault("HTTP/2 GOAWAY mid-stream", h2GoAwayMidStream, respThenBody(200, untypedHTTPError)),
	h2Fault("HTTP/2 RST_STREAM", h2ResetStream, respThenBody(200, all(as[http2.StreamError](), streamCode(http2.ErrCodeInternal)))),
	h2Fault("HTTP/2 oversized headers", h2OversizedHeaders, rtError(all(as[http2.StreamError](), streamCode(http2.ErrCodeProtocol)))),
	h2Fault("HTTP/2 SETTINGS flood", h2SettingsFlood, func(o outcome) error {
		// Every SETTINGS frame is acknowledged, then the response comes.
		if o.err != nil || o.status != 200 || string(o.body) != "ok" || o.bodyErr != nil {
			return fmt.Errorf("got %v, want 200 with body \"ok\"", o)
		}
		return nil
	}),
}

// h2Fault is a fault of an HTTP/2-only TLS server (ALPN "h2") driven with
// the Framer; sockets negotiates HTTP/2 and meets the misbehaviour, want
// says how it ends. urlfetch offers only HTTP/1.1 and is refused at the
// handshake.
func h2Fault(name string, mode h2Mode, want expectation) fault {
	return fault{
		name: name,
		start: func(t *testing.T, f *faultEnv) (string, string) {
			srv := startRaw(t, pki().serverTLS("h2"), func(c net.Conn, done <-chan struct{}) {
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				serveH2(c, mode)
			})
			return "https://h2.example.com/", srv.addr()
		},
		want: map[transport.Backend]expectation{
			transport.URLFetch: urlfetchALPN,
			transport.Sockets: func(o outcome) error {
				if o.err == nil && o.proto != 2 {
					return fmt.Errorf("got HTTP/%d, want HTTP/2", o.proto)
				}
				return want(o)
			},
		},
	}
}

// streamCode accepts an http2.StreamError with the code.
func streamCode(code http2.ErrCode) func(error) error {
	return func(err error) error {
		if se, ok := errors.AsType[http2.StreamError](err); !ok || se.Code != code {
			return fmt.Errorf("error %v is not a stream error with code %v", err, code)
		}
		return nil
	}
}

// deniedPrivate accepts a *sockets.DeniedError for the private address
// of intranet.example.com.
func deniedPrivate(err error) error {
	de, ok := errors.AsType[*sockets.DeniedError](err)
	if !ok || de.Rule != sockets.RulePrivate || de.Host != "intranet.example.com" {
		return fmt.Errorf("error %v is not a private-address refusal of intranet.example.com", err)
	}
	return nil
}

// hops wants the server to have seen n requests, and then want.
func hops(n int64, want expectation) expectation {
	return func(o outcome) error {
		if o.hops != n {
			return fmt.Errorf("the server saw %d requests, want %d", o.hops, n)
		}
		return want(o)
	}
}

// fetchClient is the client of each backend: urlfetch's, with URL Fetch's
// redirect rule, for urlfetch; net/http's default rule for sockets.
func fetchClient(ob *outbound) *http.Client {
	if ob.backend == transport.URLFetch {
		return urlfetch.NewClient(ob.rt)
	}
	return &http.Client{Transport: ob.rt}
}

// quietLog discards the error log of servers whose clients fail on
// purpose.
var quietLog = log.New(io.Discard, "", 0)

func TestFaults(t *testing.T) {
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			for _, b := range allBackends {
				t.Run(b.String(), func(t *testing.T) { runFault(t, f, b) })
			}
		})
	}
}

func runFault(t *testing.T, f fault, b transport.Backend) {
	leaks := checkLeaks(t)

	deadline := faultMaxDeadline
	if f.stall {
		deadline = faultDeadline
	}
	env := &faultEnv{names: map[string]lab.LookupFunc{}}
	u, target := f.start(t, env)
	host := mustHost(t, u)
	if _, ok := env.names[host]; !ok {
		env.names[host] = lab.Fixed(publicIP)
	}
	ob := newOutbound(t, outboundOpts{
		backend:  b,
		resolver: newFaultResolver(env.names),
		target:   target,
		roots:    pki().roots,
		deadline: deadline,
		leaks:    leaks,
	})
	client := &http.Client{Transport: ob.rt}
	if f.client != nil {
		client = f.client(ob)
	}

	o, elapsed := fetch(client, u, deadline, env.afterHeaders)
	o.hops = env.hops.Load()
	t.Logf("%s: %v (%v)", b, o, elapsed.Round(time.Millisecond))
	if err := f.want[b](o); err != nil {
		t.Errorf("%s: %v", b, err)
	}
	if f.stall && elapsed > deadline+lateness {
		t.Errorf("%s: the request took %v, more than its deadline plus %v", b, elapsed, lateness)
	}
	ob.checkAttempts(t)
}

// fetch GETs u with a context that ends after deadline, calls
// afterHeaders (if not nil) once the response has come, reads the body to
// its end, and returns how that went and how long it took.
func fetch(c *http.Client, u string, deadline time.Duration, afterHeaders func()) (outcome, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return outcome{err: err}, 0
	}
	resp, err := c.Do(req)
	if err != nil {
		return outcome{err: err}, time.Since(start)
	}
	defer resp.Body.Close()
	if afterHeaders != nil {
		afterHeaders()
	}
	body, err := io.ReadAll(resp.Body)
	return outcome{status: resp.StatusCode, proto: resp.ProtoMajor, body: body, bodyErr: err}, time.Since(start)
}

func mustHost(t *testing.T, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return pu.Hostname()
}

// TestDNSRebinding asks a name whose answers alternate between a public
// and a private address, once per connection, many times: every private
// answer is refused and never connected, every public one is fetched.
func TestDNSRebinding(t *testing.T) {
	for _, b := range allBackends {
		t.Run(b.String(), func(t *testing.T) {
			leaks := checkLeaks(t)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "public")
			}))
			t.Cleanup(srv.Close)
			res := newFaultResolver(map[string]lab.LookupFunc{"rebind.example.com": rebinding()})
			ob := newOutbound(t, outboundOpts{backend: b, resolver: res, target: srv.Listener.Addr().String(), deadline: faultMaxDeadline, leaks: leaks})
			const n = 40
			var ok, denied int
			for range n {
				req, _ := http.NewRequest(http.MethodGet, "http://rebind.example.com/", nil)
				req.Close = true // a new connection, and so a new lookup, every time
				resp, err := ob.rt.RoundTrip(req)
				switch {
				case err == nil:
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || string(body) != "public" {
						t.Fatalf("body %q, %v", body, err)
					}
					ok++
				case errors.Is(err, sockets.ErrDenied):
					de, _ := errors.AsType[*sockets.DeniedError](err)
					if de == nil || de.Addr.Addr() != privateIP || de.Rule != sockets.RulePrivate {
						t.Fatalf("refusal %v, want one of %v as private", err, privateIP)
					}
					denied++
				default:
					t.Fatalf("unexpected error: %v", err)
				}
			}
			if lookups := len(res.Lookups()); ok+denied != n || ok != n/2 || denied != n/2 || lookups != n {
				t.Errorf("%d fetched, %d refused, %d lookups; want %d, %d, %d", ok, denied, lookups, n/2, n/2, n)
			}
			attempts := ob.conn.Attempts()
			if len(attempts) != ok {
				t.Errorf("%d connections for %d fetches", len(attempts), ok)
			}
			for _, ap := range attempts {
				if ap != netip.AddrPortFrom(publicIP, 80) {
					t.Errorf("connected to %v", ap)
				}
			}
			ob.checkAttempts(t)
		})
	}
}
