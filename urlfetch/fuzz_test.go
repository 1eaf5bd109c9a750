package urlfetch_test

import (
	"context"
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
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/urlfetch"
)

// fuzzSeam is the connect step of FuzzRequest's dialer. It connects every
// address the policy allows to a loopback server (https ports to the TLS
// server, every other port to the plain one), refuses one allowed address
// as a server that is down would, and records any address it is asked for
// that the policy refuses: the Transport must never ask for one.
type fuzzSeam struct {
	plain, tls string          // the loopback servers
	down       netip.Addr      // allowed, but its server is down
	policy     *sockets.Policy // the Transport's policy

	mu      sync.Mutex
	refused []netip.AddrPort
}

func (s *fuzzSeam) connect(ctx context.Context, network string, ap netip.AddrPort) (net.Conn, error) {
	if err := s.policy.Check(network, "", ap); err != nil {
		s.mu.Lock()
		s.refused = append(s.refused, ap)
		s.mu.Unlock()
		return nil, err
	}
	if ap.Addr() == s.down {
		return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
	}
	target := s.plain
	switch ap.Port() {
	case 443, 445, 1443, 8443:
		target = s.tls
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", target)
}

func (s *fuzzSeam) takeRefused() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.refused
	s.refused = nil
	return r
}

// fuzzKinds are the sentinels an *urlfetch.Error's Kind may be.
var fuzzKinds = []error{
	urlfetch.ErrInvalidURL, urlfetch.ErrInvalidMethod, urlfetch.ErrInvalidRequest,
	urlfetch.ErrPayloadTooLarge, urlfetch.ErrResponseTooLarge, urlfetch.ErrDeadlineExceeded,
	urlfetch.ErrCanceled, urlfetch.ErrDNS, urlfetch.ErrConnectionClosed, urlfetch.ErrMalformedReply,
	urlfetch.ErrTooManyRedirects, tlsconf.ErrCertificate, sockets.ErrDenied, urlfetch.ErrConfig,
}

// FuzzRequest drives Transport.RoundTrip with arbitrary URLs, methods and a
// header, through the real policy and a resolver that knows public,
// private, Google and mixed names, to loopback servers. It must never
// panic, never ask to connect to an address the policy refuses, never
// change the caller's request, and fail only with an *urlfetch.Error of a
// known kind; a refusal must name its rule (a *sockets.DeniedError),
// and the rules that need no network are checked
// against a plain reading of the documented rules.
func FuzzRequest(f *testing.F) {
	for _, seed := range []struct{ url, method, name, value string }{
		// Good exchanges, plain and TLS, with and without a port.
		{"http://www.example.com/", "GET", "Accept", "*/*"},
		{"https://www.example.com/path?q=1", "POST", "Content-Type", "text/plain"},
		{"http://www.example.com:8080/", "PUT", "X-A", "b"},
		{"https://www.example.com:8443/", "HEAD", "", ""},
		{"http://google.example.com/", "DELETE", "User-Agent", "fuzz"}, // Google's ranges are reachable through urlfetch
		{"http://mixed.example.com/", "PATCH", "X-B", "c"},             // one private and one public answer: only the public one is connected
		{"http://93.184.216.34/", "", "", ""},                          // a public literal; "" means GET
		{"http://[2606:2800:220:1:248:1893:25c8:1946]/", "GET", "", ""},
		// The scheme, method and port rules.
		{"ftp://www.example.com/", "GET", "", ""},
		{"file:///etc/passwd", "GET", "", ""},
		{"http://www.example.com/", "PROPFIND", "", ""},
		{"http://www.example.com/", "get", "", ""}, // methods are case-sensitive
		{"http://www.example.com:25/", "GET", "", ""},
		{"http://www.example.com:1000/", "GET", "", ""},
		{"http://www.example.com:0/", "GET", "", ""},
		{"http://www.example.com:99999/", "GET", "", ""},
		{"http://www.example.com:http/", "GET", "", ""},
		// Destinations the policy refuses.
		{"http://intranet.example.com/", "GET", "", ""},
		{"http://10.0.0.1/", "GET", "", ""},
		{"http://127.0.0.1:8080/", "GET", "", ""},
		{"http://[::1]/", "GET", "", ""},
		{"http://[::ffff:10.0.0.1]/", "GET", "", ""},
		{"http://[fe80::1%25eth0]/", "GET", "", ""},
		{"http://169.254.169.254/latest/meta-data/", "GET", "", ""},
		{"http://0x7f.1/", "GET", "", ""},     // inet_aton notation: never resolved
		{"http://2130706433/", "GET", "", ""}, // likewise
		// Names that do not resolve, or whose server is down.
		{"http://nowhere.example.com/", "GET", "", ""},
		{"http://down.example.com/", "GET", "", ""},
		// Headers the app cannot set, and headers that cannot be sent.
		{"http://www.example.com/", "GET", "X-Forwarded-For", "1.2.3.4"},
		{"http://www.example.com/", "GET", "Host", "intranet.example.com"},
		{"http://www.example.com/", "GET", "Content-Length", "5"},
		{"http://www.example.com/", "GET", "X-Inject", "a\r\nX-Evil: 1"},
		{"http://www.example.com/", "GET", "Bad Name", "v"},
		{"http://www.example.com/", "GET", "X-Nul", "a\x00b"},
		// Credentials, which must not reach an error message.
		{"http://user:secret@www.example.com/", "GET", "", ""},
		// Odd URLs.
		{"//www.example.com/", "GET", "", ""},
		{"http:///path", "GET", "", ""},
		{"http://www.example.com/%00", "GET", "", ""},
		{"http://www.exa mple.com/", "GET", "", ""},
		{"HTTP://WWW.EXAMPLE.COM./", "GET", "", ""},
	} {
		f.Add(seed.url, seed.method, seed.name, seed.value)
	}

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%s %s", r.Method, r.URL.Path)
	})
	plain := httptest.NewUnstartedServer(handler)
	plain.Config.ErrorLog = log.New(io.Discard, "", 0)
	plain.Start()
	f.Cleanup(plain.Close)
	tlsSrv := httptest.NewUnstartedServer(handler)
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0)
	tlsSrv.StartTLS() // its certificate is valid for example.com and *.example.com
	f.Cleanup(tlsSrv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(tlsSrv.Certificate())

	policy := sockets.PublicPolicy()
	seam := &fuzzSeam{
		plain:  plain.Listener.Addr().String(),
		tls:    tlsSrv.Listener.Addr().String(),
		down:   netip.MustParseAddr("93.184.216.35"),
		policy: policy,
	}
	tr := &urlfetch.Transport{
		Dialer: sockets.Dialer{
			Policy: policy,
			Resolver: lab.NewResolver(map[string][]string{
				"www.example.com":      {"93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"},
				"google.example.com":   {"142.250.64.100"},
				"intranet.example.com": {"10.0.0.1"},
				"mixed.example.com":    {"10.1.2.3", "93.184.216.34"},
				"down.example.com":     {"93.184.216.35"},
			}),
			Connect: seam.connect,
		},
		TLS:      tlsconf.Config{RootCAs: roots},
		Deadline: 2 * time.Second,
	}
	f.Cleanup(tr.CloseIdleConnections)

	f.Fuzz(func(t *testing.T, rawURL, method, name, value string) {
		u, err := url.Parse(rawURL)
		if err != nil {
			return // no request can carry it
		}
		req := (&http.Request{Method: method, URL: u, Header: http.Header{}}).WithContext(context.Background())
		if name != "" {
			req.Header[name] = []string{value}
		}
		urlBefore, headerBefore := u.String(), req.Header.Clone()

		resp, err := tr.RoundTrip(req)

		if r := seam.takeRefused(); len(r) > 0 {
			t.Fatalf("the Transport asked to connect to %v, which its policy refuses", r)
		}
		if req.Method != method || u.String() != urlBefore || !sameHeader(req.Header, headerBefore) {
			t.Fatalf("the request was changed: %q %q %v, was %q %q %v", req.Method, u, req.Header, method, urlBefore, headerBefore)
		}
		if (resp == nil) == (err == nil) {
			t.Fatalf("RoundTrip returned response %v and error %v", resp, err)
		}
		if err == nil {
			_, berr := urlfetch.ReadAll(resp)
			if berr != nil {
				checkFuzzError(t, berr, u)
			}
			return
		}
		checkFuzzError(t, err, u)

		// The rules that need no network, in the order the Transport
		// applies them: the scheme, then the method.
		m := method
		if m == "" {
			m = http.MethodGet
		}
		switch {
		case u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "":
			if !errors.Is(err, urlfetch.ErrInvalidURL) || !errors.Is(err, sockets.ErrDenied) {
				t.Fatalf("scheme %q: got %v, want a scheme refusal", u.Scheme, err)
			}
		case !slices.Contains([]string{"GET", "POST", "HEAD", "PUT", "DELETE", "PATCH"}, m):
			if !errors.Is(err, urlfetch.ErrInvalidURL) && !errors.Is(err, urlfetch.ErrInvalidMethod) {
				t.Fatalf("method %q: got %v, want an invalid URL or a method refusal", method, err)
			}
		case errors.Is(err, urlfetch.ErrInvalidMethod):
			t.Fatalf("method %q is allowed, yet: %v", method, err)
		}
	})
}

// checkFuzzError holds every error of the Transport to its contract.
func checkFuzzError(t *testing.T, err error, u *url.URL) {
	t.Helper()
	e, ok := errors.AsType[*urlfetch.Error](err)
	if !ok {
		t.Fatalf("error %v (%T) is not an *urlfetch.Error", err, err)
	}
	if !slices.Contains(fuzzKinds, e.Kind) {
		t.Fatalf("error %v has kind %v, not one of the sentinels", err, e.Kind)
	}
	if errors.Is(err, sockets.ErrDenied) {
		de, denied := errors.AsType[*sockets.DeniedError](err)
		if !denied || de.Rule.Code() == "" {
			t.Fatalf("refusal %v names no rule", err)
		}
		if !errors.Is(err, sockets.ErrDenied) || !final(err) {
			t.Fatalf("refusal %v does not match sockets.ErrDenied or is not final", err)
		}
	}
	if e.URL != "" {
		// The URL in the error is the request's, without its user
		// information, so that no credential ends up in a log.
		c := *u
		c.User = nil
		if e.URL != c.String() {
			t.Fatalf("error URL %q, want %q", e.URL, c.String())
		}
	}
}

func sameHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
