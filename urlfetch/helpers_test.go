package urlfetch_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/urlfetch"
)

// The names the test resolver knows. None is ever looked up by the system
// resolver; every connection goes to a loopback server through the
// Connector seam.
const (
	publicHost   = "www.example.test"      // a public address
	privateHost  = "intranet.example.test" // a private address (RFC 1918)
	googleHost   = "google.example.test"   // an address in Google's ranges
	publicAddr   = "93.184.216.34"
	privateAddr  = "10.0.0.1"
	googleAddr   = "8.8.4.100" // inside 8.8.4.0/24, not an exception
	unknownHost  = "nowhere.example.test"
	loopbackCIDR = "127.0.0.1/32"
)

// loopbackPolicy is URL Fetch's destination policy widened to reach the
// test servers on 127.0.0.1.
var loopbackPolicy = sockets.PublicPolicy().Allow(netip.MustParsePrefix(loopbackCIDR))

// server is a loopback HTTP server that counts its connections and the
// bytes they carry.
type server struct {
	*httptest.Server
	lis    *countingListener
	closed chan struct{} // receives a value each time a connection closes
}

// newServer starts a loopback server with handler h. tls selects
// httptest's TLS server with its self-signed certificate.
func newServer(t testing.TB, h http.Handler, tls bool) *server {
	t.Helper()
	s := &server{Server: httptest.NewUnstartedServer(h), closed: make(chan struct{}, 1024)}
	s.lis = &countingListener{Listener: s.Server.Listener}
	s.Server.Listener = s.lis
	s.Config.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateClosed || st == http.StateHijacked {
			s.closed <- struct{}{}
		}
	}
	// Failed handshakes are the point of some tests: keep them out of the log.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tls {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

// addr is the server's loopback "host:port".
func (s *server) addr() string { return s.lis.Addr().String() }

// countingListener counts accepted connections and their bytes.
type countingListener struct {
	net.Listener
	accepts       atomic.Int64
	read, written atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.accepts.Add(1)
	return &countingConn{Conn: c, l: l}, nil
}

type countingConn struct {
	net.Conn
	l *countingListener
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.l.read.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.l.written.Add(int64(n))
	return n, err
}

// fixture is a Transport whose every connection goes through a recording
// Connector to one loopback server; the test resolver maps the public test
// names to public, private and Google addresses.
type fixture struct {
	srv  *server
	conn *lab.Connector
	res  *lab.Resolver
	tr   *urlfetch.Transport
}

// newFixture builds a fixture around srv; opts adjust the Transport before
// first use. The Transport's deadline is the longest URL Fetch allows
// (MaxDeadline): no test of the fixture is about the deadline but those
// that set their own, and a test that moves tens of MiB, under the race
// detector on a busy machine, must never reach it.
func newFixture(t testing.TB, srv *server, opts ...func(*urlfetch.Transport)) *fixture {
	t.Helper()
	f := &fixture{
		srv:  srv,
		conn: &lab.Connector{Target: srv.addr()},
		res: lab.NewResolver(map[string][]string{
			publicHost:  {publicAddr},
			privateHost: {privateAddr},
			googleHost:  {googleAddr},
		}),
	}
	f.tr = &urlfetch.Transport{
		Dialer:   sockets.Dialer{Policy: loopbackPolicy, Resolver: f.res, Connect: f.conn.Connect},
		AppID:    "test-app",
		Deadline: urlfetch.MaxDeadline,
	}
	for _, o := range opts {
		o(f.tr)
	}
	t.Cleanup(f.tr.CloseIdleConnections)
	return f
}

// url is the server's URL with path, by its loopback address.
func (f *fixture) url(path string) string { return f.srv.URL + path }

// attempts is the number of connections the Transport tried to make.
func (f *fixture) attempts() int { return len(f.conn.Attempts()) }

// get makes a GET of rawURL through the fixture's Transport.
func (f *fixture) get(t testing.TB, rawURL string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f.tr.RoundTrip(req)
}

// okHandler answers "ok".
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, "ok")
})

// mustKind fails the test unless err is an *urlfetch.Error of kind k.
func mustKind(t testing.TB, err, k error) *urlfetch.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", k)
	}
	e, ok := errors.AsType[*urlfetch.Error](err)
	if !ok {
		t.Fatalf("error %v (%T) is not an *urlfetch.Error", err, err)
	}
	if !errors.Is(err, k) {
		t.Fatalf("error %q: kind %v, want %v", err, e.Kind, k)
	}
	if !strings.HasPrefix(e.Error(), "urlfetch: ") {
		t.Errorf("error %q lacks the package prefix", e)
	}
	return e
}

// finalKinds are the failures that sending the same request again cannot
// cure: the kinds that package transport's retry rule (transport.Retryable,
// whose own test holds the decision for each kind) never retries. A
// failure that matches none of them may be transient. urlfetch's tests
// check with final that a real exchange's error carries the kind that puts
// it on the right side.
var finalKinds = []error{
	sockets.ErrDenied, tlsconf.ErrCertificate,
	urlfetch.ErrInvalidURL, urlfetch.ErrInvalidMethod, urlfetch.ErrInvalidRequest,
	urlfetch.ErrPayloadTooLarge, urlfetch.ErrResponseTooLarge, urlfetch.ErrTooManyRedirects,
	urlfetch.ErrConfig, context.Canceled, context.DeadlineExceeded,
}

// final reports whether err matches one of finalKinds.
func final(err error) bool {
	for _, k := range finalKinds {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

// closeRecorder is a request body that records Close and counts the bytes
// read from it. Its content is a repeating pattern of size bytes.
type closeRecorder struct {
	pattern
	closed atomic.Bool
	read   atomic.Int64
}

func newBody(size int64) *closeRecorder { return &closeRecorder{pattern: pattern{n: size}} }

func (b *closeRecorder) Read(p []byte) (int, error) {
	n, err := b.pattern.Read(p)
	b.read.Add(int64(n))
	return n, err
}

func (b *closeRecorder) Close() error {
	b.closed.Store(true)
	return nil
}

// pattern is a reader of n bytes of a repeating pattern, made on the fly so
// that large bodies need no memory.
type pattern struct {
	n   int64 // bytes left
	off int64
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n {
		b = b[:p.n]
	}
	for i := range b {
		b[i] = byte((p.off + int64(i)) % 251)
	}
	p.n -= int64(len(b))
	p.off += int64(len(b))
	return len(b), nil
}

// bodyHandler answers with size bytes of the pattern; with length, the
// Content-Length is announced, else the reply is chunked.
func bodyHandler(size int64, length bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if length {
			w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		}
		w.WriteHeader(http.StatusOK)
		if !length {
			w.(http.Flusher).Flush() // chunked, even for a small body
		}
		io.CopyBuffer(w, &pattern{n: size}, make([]byte, 64<<10))
	}
}

// drain reads r to its end, checks that it carries the pattern, and returns
// how many bytes it read and the error that ended it (nil for io.EOF).
func drain(t testing.TB, r io.Reader) (int64, error) {
	t.Helper()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		m, err := r.Read(buf)
		for i := 0; i < m; i++ {
			if buf[i] != byte((n+int64(i))%251) {
				t.Fatalf("byte %d is %d, want %d", n+int64(i), buf[i], (n+int64(i))%251)
			}
		}
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// timeoutError is an error that says whether it is a timeout, as
// net.Error does without its deprecated Temporary.
type timeoutError interface {
	error
	Timeout() bool
}
