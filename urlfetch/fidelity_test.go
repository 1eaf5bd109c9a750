package urlfetch_test

// Behaviours that follow App Engine's own sources (SDK 1.9.x):
// google/appengine/api/urlfetch.py, urlfetch_stub.py and urlfetch_errors.py.
// Each test names the function it follows.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/urlfetch"
)

// seen is what a server saw of one request.
type seen struct {
	method        string
	header        http.Header
	contentLength int64
	body          string
}

// recordingServer starts a plain loopback server that records every
// request it gets on the returned channel and answers "ok".
func recordingServer(t *testing.T) (*server, chan seen) {
	t.Helper()
	got := make(chan seen, 16)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.Header.Clone(), r.ContentLength, string(b)}
		io.WriteString(w, "ok")
	}), false)
	return srv, got
}

// TestPayloadDropped checks that the body of a GET, HEAD or DELETE is
// dropped unread and unannounced, whatever its size, as App Engine set a
// payload only for POST, PUT and PATCH (google/appengine/api/urlfetch.py,
// make_fetch_call: "if payload and method in (POST, PUT, PATCH)";
// urlfetch_stub.py, _Dynamic_Fetch: payload only for POST, PUT, PATCH, and
// _RetrieveURL: Content-Length only "if payload is not None").
func TestPayloadDropped(t *testing.T) {
	srv, got := recordingServer(t)
	f := newFixture(t, srv)
	sizes := []struct {
		name string
		size int64
		len  bool // announce the length in ContentLength
	}{
		{"known length", 7, true},
		{"unknown length", 7, false},
		{"over the request limit", urlfetch.MaxRequestBody + 1, true},
	}
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodDelete, ""} {
		for _, sz := range sizes {
			t.Run(m+" "+sz.name, func(t *testing.T) {
				body := newBody(sz.size)
				req, _ := http.NewRequest(m, f.url("/"), nil)
				req.Body = body
				if sz.len {
					req.ContentLength = sz.size
				}
				resp, err := f.tr.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				s := <-got
				if s.body != "" || s.contentLength != 0 || s.header["Content-Length"] != nil || s.header["Transfer-Encoding"] != nil {
					t.Errorf("server got body %q, length %d, header %v; want none", s.body, s.contentLength, s.header)
				}
				if !body.closed.Load() || body.read.Load() != 0 {
					t.Errorf("body closed %v, %d bytes read; want closed, unread", body.closed.Load(), body.read.Load())
				}
			})
		}
	}
	// The neighbours: POST, PUT and PATCH send their payload.
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch} {
		t.Run(m+" sent", func(t *testing.T) {
			req, _ := http.NewRequest(m, f.url("/"), strings.NewReader("payload"))
			resp, err := f.tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if s := <-got; s.body != "payload" || s.contentLength != 7 {
				t.Errorf("server got %q (length %d), want the payload", s.body, s.contentLength)
			}
		})
	}
}

// TestPostContentType checks that a POST with a payload and no
// Content-Type gets the form type, and nothing else does
// (google/appengine/api/urlfetch_stub.py, _RetrieveURL: "if method ==
// 'POST' and payload: adjusted_headers['Content-Type'] =
// ['application/x-www-form-urlencoded']", replaced by the application's
// own content-type header in any letter case).
func TestPostContentType(t *testing.T) {
	srv, got := recordingServer(t)
	f := newFixture(t, srv)
	const form = "application/x-www-form-urlencoded"
	tests := []struct {
		name   string
		method string
		body   io.Reader
		length int64 // -1: unknown
		header http.Header
		want   []string // Content-Type values the server gets; nil: none
	}{
		{"POST without", "POST", strings.NewReader("a=1"), 3, nil, []string{form}},
		{"POST of unknown length", "POST", io.MultiReader(strings.NewReader("a=1")), -1, nil, []string{form}},
		{"POST with its own", "POST", strings.NewReader("{}"), 2, http.Header{"Content-Type": {"application/json"}}, []string{"application/json"}},
		{"POST with its own, lower case", "POST", strings.NewReader("{}"), 2, http.Header{"content-type": {"text/plain"}}, []string{"text/plain"}},
		{"POST with an empty one", "POST", strings.NewReader("x"), 1, http.Header{"Content-Type": {""}}, []string{""}},
		{"POST without payload", "POST", nil, 0, nil, nil},
		{"POST with an empty payload of unknown length", "POST", io.MultiReader(), -1, nil, nil},
		{"PUT without", "PUT", strings.NewReader("a=1"), 3, nil, nil},
		{"PATCH without", "PATCH", strings.NewReader("a=1"), 3, nil, nil},
		{"GET without", "GET", nil, 0, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, f.url("/"), nil)
			if tt.body != nil {
				req.Body = io.NopCloser(tt.body)
				req.ContentLength = tt.length
			}
			for k, v := range tt.header {
				req.Header[k] = v
			}
			before := req.Header.Clone()
			resp, err := f.tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			s := <-got
			if ct := s.header["Content-Type"]; strings.Join(ct, "|") != strings.Join(tt.want, "|") || (ct == nil) != (tt.want == nil) {
				t.Errorf("server got Content-Type %q, want %q", ct, tt.want)
			}
			if len(req.Header) != len(before) || req.Header.Get("Content-Type") != before.Get("Content-Type") {
				t.Errorf("RoundTrip changed the request's header: %v, was %v", req.Header, before)
			}
		})
	}
}

// TestErrorRelations checks that the sentinels keep the relations of App
// Engine's error classes (google/appengine/api/urlfetch_errors.py:
// PayloadTooLargeError(InvalidURLError); DNSLookupFailedError,
// ConnectionClosedError, MalformedReplyError, TooManyRedirectsError and
// DeadlineExceededError are DownloadErrors; ResponseTooLargeError,
// InvalidMethodError and SSLCertificateError are not), and the relations
// they had before.
func TestErrorRelations(t *testing.T) {
	download := []error{urlfetch.ErrDNS, urlfetch.ErrConnectionClosed, urlfetch.ErrMalformedReply, urlfetch.ErrTooManyRedirects, urlfetch.ErrDeadlineExceeded}
	notDownload := []error{urlfetch.ErrInvalidURL, urlfetch.ErrInvalidMethod, urlfetch.ErrInvalidRequest, urlfetch.ErrPayloadTooLarge,
		urlfetch.ErrResponseTooLarge, urlfetch.ErrCanceled, tlsconf.ErrCertificate, sockets.ErrDenied, urlfetch.ErrConfig}
	tests := []struct {
		err, target error
		want        bool
	}{
		{urlfetch.ErrPayloadTooLarge, urlfetch.ErrInvalidURL, true},
		{urlfetch.ErrInvalidURL, urlfetch.ErrPayloadTooLarge, false},
		{urlfetch.ErrDownload, urlfetch.ErrDNS, false},
		{urlfetch.ErrDownload, urlfetch.ErrDownload, true},
		// The relations that were there before.
		{urlfetch.ErrDeadlineExceeded, context.DeadlineExceeded, true},
		{urlfetch.ErrCanceled, context.Canceled, true},
		{urlfetch.ErrDNS, context.DeadlineExceeded, false},
		{urlfetch.ErrDNS, urlfetch.ErrDeadlineExceeded, false},
		{urlfetch.ErrPayloadTooLarge, sockets.ErrDenied, false},
	}
	for _, k := range download {
		tests = append(tests, struct {
			err, target error
			want        bool
		}{k, urlfetch.ErrDownload, true})
	}
	for _, k := range notDownload {
		tests = append(tests, struct {
			err, target error
			want        bool
		}{k, urlfetch.ErrDownload, false})
	}
	for _, tt := range tests {
		wrapped := &urlfetch.Error{Kind: tt.err, Method: "GET", URL: "http://x/"}
		if got := errors.Is(tt.err, tt.target); got != tt.want {
			t.Errorf("errors.Is(%v, %v) = %v, want %v", tt.err, tt.target, got, tt.want)
		}
		if got := errors.Is(wrapped, tt.target); got != tt.want {
			t.Errorf("errors.Is(%v, %v) = %v, want %v", wrapped, tt.target, got, tt.want)
		}
	}
	if urlfetch.ErrDownload.Error() != "urlfetch: download error" {
		t.Errorf("ErrDownload says %q", urlfetch.ErrDownload)
	}

	// The same relations on errors of real exchanges.
	f := newFixture(t, newServer(t, okHandler, false))
	req, _ := http.NewRequest(http.MethodPost, f.url("/"), newBody(urlfetch.MaxRequestBody+1))
	req.ContentLength = urlfetch.MaxRequestBody + 1
	_, err := f.tr.RoundTrip(req)
	mustKind(t, err, urlfetch.ErrPayloadTooLarge)
	if !errors.Is(err, urlfetch.ErrInvalidURL) || errors.Is(err, urlfetch.ErrDownload) || !final(err) {
		t.Errorf("payload too large %v: want ErrInvalidURL, not ErrDownload, final", err)
	}
	_, err = f.get(t, "http://"+unknownHost+"/")
	mustKind(t, err, urlfetch.ErrDNS)
	if !errors.Is(err, urlfetch.ErrDownload) {
		t.Errorf("dns failure %v: want ErrDownload", err)
	}
	if ne, ok := errors.AsType[timeoutError](err); !ok || ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a name that does not exist is a timeout: %v", err)
	}
}

// TestMalformedStatus checks that a status of 600 or more is a malformed
// reply, not a response (google/appengine/api/urlfetch_stub.py,
// _RetrieveURL: "if http_response.status >= 600: ... 'Status %s
// unknown'"), and that its connection is not kept by a body nobody holds.
// A redirect without Location is a response (TestRedirectWithoutLocation).
func TestMalformedStatus(t *testing.T) {
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		if loc := r.URL.Query().Get("loc"); loc != "" {
			w.Header().Set("Location", loc)
		}
		w.WriteHeader(code)
		if r.URL.Query().Has("body") {
			io.WriteString(w, strings.Repeat("moved ", 2000))
		}
	}), false)
	tests := []struct {
		path      string
		malformed bool
	}{
		{"/600", true},
		{"/600?body", true},
		{"/999", true},
		// The neighbours are responses.
		{"/599", false},
		{"/300", false}, // Multiple Choices: Location is optional
		{"/304", false}, // Not Modified: no redirect
		{"/302", false}, // no Location: see TestRedirectWithoutLocation
		{"/302?loc=/elsewhere", false},
		{"/308?loc=/elsewhere", false},
		{"/200", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			var stats int
			var mu sync.Mutex
			f := newFixture(t, srv, func(tr *urlfetch.Transport) {
				tr.OnStats = func(*http.Request, urlfetch.Stats) { mu.Lock(); stats++; mu.Unlock() }
			})
			accepts := srv.lis.accepts.Load()
			resp, err := f.get(t, "http://"+publicHost+tt.path)
			if !tt.malformed {
				if err != nil {
					t.Fatalf("got %v, want a response", err)
				}
				resp.Body.Close()
				return
			}
			if resp != nil {
				t.Fatalf("got a response with status %d, want none", resp.StatusCode)
			}
			mustKind(t, err, urlfetch.ErrMalformedReply)
			if !errors.Is(err, urlfetch.ErrDownload) {
				t.Errorf("error %v: want ErrDownload", err)
			}
			mu.Lock()
			if stats != 1 {
				t.Errorf("OnStats called %d times, want once", stats)
			}
			mu.Unlock()
			// No connection is held: once the idle ones are closed, the
			// server has seen every connection of this test close.
			f.tr.CloseIdleConnections()
			waitClosed(t, srv, int(srv.lis.accepts.Load()-accepts))
		})
	}
	t.Run("through NewClient", func(t *testing.T) {
		f := newFixture(t, srv)
		_, err := urlfetch.NewClient(f.tr).Get("http://" + publicHost + "/600")
		mustKind(t, err, urlfetch.ErrMalformedReply)
	})
}

// waitClosed waits until the server has seen n connections close.
func waitClosed(t *testing.T, s *server, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for range n {
		select {
		case <-s.closed:
		case <-timeout:
			t.Fatalf("a connection was not closed: it is held by something")
		}
	}
}

// TestDowngradeCredentials checks that, through NewClient and whatever the
// RoundTripper, no Authorization, Cookie or Proxy-Authorization is sent
// after a redirect from https to http, on that hop and every later one,
// while the downgrade itself is followed (App Engine followed it:
// google/appengine/api/urlfetch_stub.py, _RetrieveURL takes any http or
// https Location). Both servers are on loopback: an https one and a plain
// one, reached as public names through the Connect seam.
func TestDowngradeCredentials(t *testing.T) {
	type hit struct {
		scheme, host, path string
		header             http.Header
	}
	var mu sync.Mutex
	var hits []hit
	handler := func(scheme string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hits = append(hits, hit{scheme, r.Host, r.URL.Path, r.Header.Clone()})
			mu.Unlock()
			if to := r.URL.Query().Get("to"); to != "" {
				http.Redirect(w, r, to, http.StatusFound)
				return
			}
			io.WriteString(w, "end")
		})
	}
	tlsSrv := newServer(t, handler("https"), true) // certificate for example.com and *.example.com
	plainSrv := newServer(t, handler("http"), false)
	const addr = "93.184.216.34"
	res := lab.NewResolver(map[string][]string{
		"example.com":        {addr},
		"secure.example.com": {addr},
		"sub.example.com":    {addr},
		"other.example.net":  {addr},
	})
	conn := &lab.Connector{Routes: map[netip.AddrPort]string{
		netip.MustParseAddrPort(addr + ":443"): tlsSrv.addr(),
		netip.MustParseAddrPort(addr + ":80"):  plainSrv.addr(),
	}}
	pool := tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs

	backends := map[string]func(t *testing.T) http.RoundTripper{
		"urlfetch": func(t *testing.T) http.RoundTripper {
			tr := &urlfetch.Transport{
				Dialer: sockets.Dialer{Resolver: res, Connect: conn.Connect},
				TLS:    tlsconf.Config{RootCAs: pool},
			}
			t.Cleanup(tr.CloseIdleConnections)
			return tr
		},
		// A net/http Transport dialing through a sockets.Dialer, as the
		// sockets backend does: NewClient's rule holds for any
		// RoundTripper.
		"sockets": func(t *testing.T) http.RoundTripper {
			d := &sockets.Dialer{Resolver: res, Connect: conn.Connect}
			tr := &http.Transport{DialContext: d.DialContext, TLSClientConfig: tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()}
			t.Cleanup(tr.CloseIdleConnections)
			return tr
		},
	}

	// chain returns the URL of the first hop, which redirects through the
	// others to the last.
	chain := func(urls ...string) string {
		u := urls[len(urls)-1]
		for i := len(urls) - 2; i >= 0; i-- {
			u = urls[i] + "?to=" + url.QueryEscape(u)
		}
		return u
	}
	tests := []struct {
		name  string
		chain []string
		// whether each hop, after the first, carries the credentials
		kept []bool
	}{
		{"same host downgrade", []string{"https://secure.example.com/a", "http://secure.example.com/end"}, []bool{false}},
		{"downgrade and back to https", []string{"https://secure.example.com/a", "http://secure.example.com/b", "https://secure.example.com/end"}, []bool{false, false}},
		{"downgrade after an https hop", []string{"https://secure.example.com/a", "https://secure.example.com/b", "http://secure.example.com/end"}, []bool{true, false}},
		{"cross-host downgrade", []string{"https://secure.example.com/a", "http://other.example.net/end"}, []bool{false}},
		// net/http alone sends them to a subdomain.
		{"downgrade to a subdomain", []string{"https://example.com/a", "http://sub.example.com/end"}, []bool{false}},
		{"upgrade then downgrade", []string{"http://secure.example.com/a", "https://secure.example.com/b", "http://secure.example.com/end"}, []bool{true, false}},
		// The neighbours keep them.
		{"https to https", []string{"https://secure.example.com/a", "https://secure.example.com/end"}, []bool{true}},
		{"http to http", []string{"http://secure.example.com/a", "http://secure.example.com/end"}, []bool{true}},
		{"http to https", []string{"http://secure.example.com/a", "https://secure.example.com/end"}, []bool{true}},
	}
	credentials := map[string]string{"Authorization": "Bearer token", "Cookie": "session=secret", "Proxy-Authorization": "Basic cHJveHk6cHc="}
	for name, backend := range backends {
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				mu.Lock()
				hits = nil
				mu.Unlock()
				req, _ := http.NewRequest(http.MethodGet, chain(tt.chain...), nil)
				// Set in other letter cases than the canonical ones.
				req.Header["authorization"] = []string{credentials["Authorization"]}
				req.Header["COOKIE"] = []string{credentials["Cookie"]}
				req.Header["Proxy-authorization"] = []string{credentials["Proxy-Authorization"]}
				req.Header.Set("X-Other", "kept")
				resp, err := urlfetch.NewClient(backend(t)).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, err := urlfetch.ReadAll(resp)
				if err != nil || string(b) != "end" {
					t.Fatalf("got %q, %v; want the end of the chain", b, err)
				}
				mu.Lock()
				defer mu.Unlock()
				if len(hits) != len(tt.chain) {
					t.Fatalf("%d requests reached the servers, want %d", len(hits), len(tt.chain))
				}
				for i, h := range hits {
					wantScheme := tt.chain[i][:strings.Index(tt.chain[i], ":")]
					if h.scheme != wantScheme {
						t.Errorf("hop %d went to the %s server, want %s", i, h.scheme, wantScheme)
					}
					kept := i == 0 || tt.kept[i-1]
					for k, v := range credentials {
						got := h.header.Get(k)
						switch {
						case kept && got != v:
							t.Errorf("hop %d (%s://%s%s): %s %q, want %q", i, h.scheme, h.host, h.path, k, got, v)
						case !kept && got != "":
							t.Errorf("hop %d (%s://%s%s): %s %q sent after a downgrade", i, h.scheme, h.host, h.path, k, got)
						}
					}
					if h.header.Get("X-Other") != "kept" {
						t.Errorf("hop %d lost X-Other", i)
					}
				}
			})
		}
		// net/http sends the user information of a hop's URL as
		// Authorization: Basic. After a downgrade it is dropped; without
		// one it is sent, but a Transport refuses such a URL outright
		// (TestCredentialsInURLRefused): the hop is never sent.
		for _, tt := range []struct {
			name string
			from string
			want string
		}{
			{"user information after a downgrade", "https://secure.example.com/a", ""},
			{"user information without a downgrade", "http://secure.example.com/a", "Basic dXNlcjpwYXNz"},
		} {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				mu.Lock()
				hits = nil
				mu.Unlock()
				resp, err := urlfetch.NewClient(backend(t)).Get(chain(tt.from, "http://user:pass@secure.example.com/end"))
				if name == "urlfetch" && tt.want != "" {
					mustKind(t, err, urlfetch.ErrInvalidURL)
					mu.Lock()
					defer mu.Unlock()
					if len(hits) != 1 {
						t.Fatalf("%d requests reached the servers, want the first alone", len(hits))
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				mu.Lock()
				defer mu.Unlock()
				if len(hits) != 2 {
					t.Fatalf("%d requests reached the servers, want 2", len(hits))
				}
				if got := hits[1].header.Get("Authorization"); got != tt.want {
					t.Errorf("last hop: Authorization %q, want %q", got, tt.want)
				}
			})
		}
	}
}

// hangingResolver is a resolver that answers nothing: each lookup blocks
// until its context is done, then until the test releases it, and returns
// the context's error.
type hangingResolver struct {
	release chan struct{}
	started chan struct{}
	once    sync.Once
}

func newHangingResolver() *hangingResolver {
	return &hangingResolver{release: make(chan struct{}), started: make(chan struct{}, 16)}
}

func (r *hangingResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.started <- struct{}{}
	<-ctx.Done()
	<-r.release
	return nil, ctx.Err()
}

func (r *hangingResolver) free() { r.once.Do(func() { close(r.release) }) }

// mustLookupTimeout checks that err is a lookup that timed out: ErrDNS, and
// a timeout by every test Go code applies (issue: "a lookup that times out
// is a timeout").
func mustLookupTimeout(t *testing.T, err error) {
	t.Helper()
	mustKind(t, err, urlfetch.ErrDNS)
	if ne, ok := errors.AsType[timeoutError](err); !ok || !ne.Timeout() {
		t.Errorf("error %v: not a net.Error with Timeout() true", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, urlfetch.ErrDeadlineExceeded) {
		t.Errorf("error %v does not match context.DeadlineExceeded and ErrDeadlineExceeded", err)
	}
	if !errors.Is(err, urlfetch.ErrDownload) {
		t.Errorf("error %v: want ErrDownload (App Engine's DNSLookupFailedError is a DownloadError)", err)
	}
	if final(err) != final(&urlfetch.Error{Kind: urlfetch.ErrDeadlineExceeded}) {
		t.Errorf("error %v: final differs from a deadline's", err)
	}
	if _, ok := errors.AsType[*sockets.LookupError](err); !ok {
		t.Errorf("error %v holds no *sockets.LookupError", err)
	}
}

// TestLookupTimeout checks that a lookup that times out is a timeout that
// is still ErrDNS, whichever deadline ends it: the dialer's, the
// resolver's own, or the exchange's.
func TestLookupTimeout(t *testing.T) {
	t.Run("dialer deadline", func(t *testing.T) {
		r := newHangingResolver()
		r.free()
		tr := &urlfetch.Transport{Dialer: sockets.Dialer{Resolver: r, Timeout: 50 * time.Millisecond, Connect: refuseConnect(t)}}
		defer tr.CloseIdleConnections()
		_, err := tr.RoundTrip(mustGet(t, "http://"+publicHost+"/"))
		mustLookupTimeout(t, err)
	})
	t.Run("exchange deadline", func(t *testing.T) {
		r := newHangingResolver()
		defer r.free()
		tr := &urlfetch.Transport{Deadline: 50 * time.Millisecond, Dialer: sockets.Dialer{Resolver: r, Connect: refuseConnect(t)}}
		defer tr.CloseIdleConnections()
		_, err := tr.RoundTrip(mustGet(t, "http://"+publicHost+"/"))
		mustLookupTimeout(t, err)
	})
	t.Run("request context deadline", func(t *testing.T) {
		r := newHangingResolver()
		defer r.free()
		// The Transport's deadline bounds how long the dial, which net/http
		// lets run on after the request, keeps the resolver.
		tr := &urlfetch.Transport{Deadline: 300 * time.Millisecond, Dialer: sockets.Dialer{Resolver: r, Connect: refuseConnect(t)}}
		defer tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+publicHost+"/", nil)
		_, err := tr.RoundTrip(req)
		mustLookupTimeout(t, err)
	})
	t.Run("canceled lookup", func(t *testing.T) {
		// The neighbour: a cancel is a cancel, not a timeout.
		r := newHangingResolver()
		defer r.free()
		tr := &urlfetch.Transport{Deadline: 300 * time.Millisecond, Dialer: sockets.Dialer{Resolver: r, Connect: refuseConnect(t)}}
		defer tr.CloseIdleConnections()
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-r.started; cancel() }()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+publicHost+"/", nil)
		_, err := tr.RoundTrip(req)
		mustKind(t, err, urlfetch.ErrCanceled)
		if ne, ok := errors.AsType[timeoutError](err); !ok || ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("a canceled lookup is a timeout: %v", err)
		}
	})
	t.Run("Go resolver, server never answers", func(t *testing.T) {
		// Go's own resolver, sending real DNS packets to a loopback UDP
		// socket that reads none of them: the lookup times out at the
		// dialer's deadline with a *net.DNSError whose IsTimeout is set.
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "udp", pc.LocalAddr().String()) // never the machine's resolver
			if err != nil {
				return nil, err
			}
			// Go's resolver cancels an abandoned lookup through ctx but
			// reads until the try's own timeout (5 s): close the socket
			// then, so that its goroutine ends with the test.
			context.AfterFunc(ctx, func() { c.Close() })
			return c, nil
		}}
		tr := &urlfetch.Transport{Dialer: sockets.Dialer{Resolver: res, Timeout: 200 * time.Millisecond, Connect: refuseConnect(t)}}
		defer tr.CloseIdleConnections()
		_, err = tr.RoundTrip(mustGet(t, "http://silent.example.test/"))
		mustLookupTimeout(t, err)
		if de, ok := errors.AsType[*net.DNSError](err); !ok || !de.IsTimeout {
			t.Errorf("error %v: want the resolver's *net.DNSError with IsTimeout", err)
		}
		// The packets went to the loopback socket.
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := pc.ReadFrom(make([]byte, 512)); err != nil {
			t.Errorf("no DNS query reached the silent server: %v", err)
		}
	})
}

// refuseConnect is a Connect seam that fails the test if called: a test of
// lookups must never connect.
func refuseConnect(t *testing.T) func(context.Context, string, netip.AddrPort) (net.Conn, error) {
	return func(_ context.Context, _ string, ap netip.AddrPort) (net.Conn, error) {
		t.Errorf("connect to %v attempted", ap)
		return nil, errors.New("no connection in this test")
	}
}

// Round three. The line numbers are those of the Python SDK 1.9.91
// (google/appengine/api/urlfetch_stub.py, urlfetch_errors.py,
// google/appengine/dist27/gae_override/httplib.py) and of the Go runtime's
// google.golang.org/appengine/urlfetch/urlfetch.go (v1.6.7). Where the
// runtimes disagree, the Go runtime wins.

// TestStatusFromCode checks that a response's reason phrase is the one its
// status code has, whatever the server wrote: the service passed on the
// code alone, and each runtime wrote the phrase (httplib.py line 291:
// "self.reason = responses.get(status_code, 'Unknown')"; urlfetch.go line
// 175: res.Status = fmt.Sprintf("%d %s", code, statusCodeToText(code)),
// lines 70-75: http.StatusText, or the code itself). For a code with no
// text the runtimes disagree ("Unknown" against the code): the Go
// runtime's "599 599" is kept.
func TestStatusFromCode(t *testing.T) {
	tests := []struct{ line, want string }{
		{"HTTP/1.1 200 Totally Fine", "200 OK"},
		{"HTTP/1.1 200", "200 OK"}, // no reason phrase at all
		{"HTTP/1.1 200 ", "200 OK"},
		{"HTTP/1.0 404 Gone Fishing", "404 Not Found"},
		{"HTTP/1.1 418 Short and Stout", "418 I'm a teapot"},
		{"HTTP/1.1 503 OK", "503 Service Unavailable"},
		{"HTTP/1.1 300 Pick One", "300 Multiple Choices"},
		// Codes net/http has no text for.
		{"HTTP/1.1 599 Custom", "599 599"},
		{"HTTP/1.1 299 Custom", "299 299"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			addr := rawServer(t, func(c net.Conn) {
				io.WriteString(c, tt.line+"\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
			})
			tr, _ := rawFixture(t, addr)
			resp, err := tr.RoundTrip(mustGet(t, "http://"+publicHost+":8080/"))
			if err != nil {
				t.Fatal(err)
			}
			b, err := urlfetch.ReadAll(resp)
			if err != nil || string(b) != "ok" {
				t.Fatalf("body %q, %v", b, err)
			}
			if resp.Status != tt.want {
				t.Errorf("Status %q, want %q", resp.Status, tt.want)
			}
		})
	}
}

// TestRedirectWithoutLocation checks that a redirect status without a
// Location header is a response, not an error, on every path where App
// Engine returned it. A Transport never follows: it is the service asked
// not to (the Go runtime always asked so, urlfetch.go line 138:
// "FollowRedirects: false, // http.Client's responsibility"), and then the
// service returned any 3xx as it came: urlfetch_stub.py lines 507-515 take
// a missing Location for a malformed reply only "if http_response.status
// in REDIRECT_STATUSES and follow_redirects". A client made by NewClient
// follows: there the stub failed 301, 302, 303 and 307 (lines 62-67)
// without Location with MALFORMED_REPLY, but the Go runtime's
// http.Client returned the response (net/http, client.go: "3xx responses
// without a Location have been observed in the wild", issues 17773 and
// 49281). The Go runtime wins: the client returns it too. A 308, never
// followed (lines 62-67), is returned either way.
func TestRedirectWithoutLocation(t *testing.T) {
	var hits sync.Map // path -> *atomic.Int32
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := hits.LoadOrStore(r.URL.RequestURI(), new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		io.Copy(io.Discard, r.Body)
		code, _ := strconv.Atoi(path.Base(r.URL.Path))
		w.WriteHeader(code)
		if r.URL.Query().Has("body") {
			io.WriteString(w, "moved, but where?")
		}
	}), false)
	var stats atomic.Int32
	f := newFixture(t, srv, func(tr *urlfetch.Transport) {
		tr.OnStats = func(*http.Request, urlfetch.Stats) { stats.Add(1) }
	})
	paths := map[string]func(*http.Request) (*http.Response, error){
		"Transport": f.tr.RoundTrip,
		"NewClient": urlfetch.NewClient(f.tr).Do,
	}
	for via, do := range paths {
		for _, code := range []int{301, 302, 303, 307, 308, 300, 305} {
			for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodHead} {
				for _, query := range []string{"", "?body"} {
					uri := "/" + via + "/" + method + "/" + strconv.Itoa(code) + query
					t.Run(uri, func(t *testing.T) {
						stats.Store(0)
						req, _ := http.NewRequest(method, "http://"+publicHost+uri, strings.NewReader("payload"))
						resp, err := do(req)
						if err != nil {
							t.Fatalf("got %v, want the %d as a response", err, code)
						}
						b, err := urlfetch.ReadAll(resp)
						if err != nil {
							t.Fatal(err)
						}
						want := ""
						if query != "" && method != http.MethodHead {
							want = "moved, but where?"
						}
						if resp.StatusCode != code || string(b) != want || resp.Request.Method != method {
							t.Errorf("got %d %q for a %s, want %d %q", resp.StatusCode, b, resp.Request.Method, code, want)
						}
						n, _ := hits.Load(uri)
						if got := n.(*atomic.Int32).Load(); got != 1 {
							t.Errorf("the server got %d requests, want 1: the redirect was followed", got)
						}
						if got := stats.Load(); got != 1 {
							t.Errorf("OnStats called %d times, want once", got)
						}
					})
				}
			}
		}
	}
}

// TestCredentialsInURLRefused checks that a URL with user information (a
// login, a password, or both) is an invalid URL, refused before anything
// is sent (urlfetch_errors.py lines 66-73, InvalidURLError: "The login and
// password portion is not allowed."): through a Transport, through
// NewClient, whose http.Client would otherwise send it as Authorization:
// Basic, and on a redirect hop. No name is looked up, no connection is
// tried, and the error does not show the password.
func TestCredentialsInURLRefused(t *testing.T) {
	var paths sync.Map
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths.Store(r.URL.Path, r.Header.Get("Authorization"))
		if to := r.URL.Query().Get("to"); to != "" {
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
		io.WriteString(w, "ok")
	}), false)
	urls := []string{
		"http://user:secret@" + publicHost + "/",
		"https://user:secret@" + publicHost + "/",
		"http://user@" + publicHost + "/",
		"http://user:@" + publicHost + "/",
		"http://:secret@" + publicHost + "/",
		"http://@" + publicHost + "/", // an empty one is still there
		"http://user:secret@" + publicHost + ":8080/path?q=1",
		"http://user%40example.com:s%3Acret@" + publicHost + "/",
	}
	check := func(t *testing.T, f *fixture, err error, accepts int64) {
		t.Helper()
		e := mustKind(t, err, urlfetch.ErrInvalidURL)
		if errors.Is(err, urlfetch.ErrDownload) || !final(err) {
			t.Errorf("error %v: want a permanent invalid URL", err)
		}
		if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "s%3Acret") || strings.Contains(e.URL, "@") {
			t.Errorf("error %q shows the user information", err)
		}
		if n, l := f.attempts(), f.res.Lookups(); n != 0 || len(l) != 0 {
			t.Errorf("%d connection attempts, lookups %v; want none", n, l)
		}
		if n := srv.lis.accepts.Load() - accepts; n != 0 {
			t.Errorf("the server accepted %d connections", n)
		}
	}
	for _, u := range urls {
		t.Run("Transport "+u, func(t *testing.T) {
			f, accepts := newFixture(t, srv), srv.lis.accepts.Load()
			body := newBody(5)
			req, _ := http.NewRequest(http.MethodPost, u, body)
			before := req.URL.String()
			_, err := f.tr.RoundTrip(req)
			check(t, f, err, accepts)
			if !body.closed.Load() || req.URL.String() != before {
				t.Errorf("body closed %v, URL %q (was %q)", body.closed.Load(), req.URL, before)
			}
		})
		t.Run("NewClient "+u, func(t *testing.T) {
			f, accepts := newFixture(t, srv), srv.lis.accepts.Load()
			_, err := urlfetch.NewClient(f.tr).Get(u)
			check(t, f, err, accepts)
		})
	}
	t.Run("redirect hop", func(t *testing.T) {
		f := newFixture(t, srv)
		to := "http://user:secret@" + publicHost + "/end"
		_, err := urlfetch.NewClient(f.tr).Get("http://" + publicHost + "/start?to=" + url.QueryEscape(to))
		mustKind(t, err, urlfetch.ErrInvalidURL)
		if a := f.conn.Attempts(); len(a) != 1 {
			t.Errorf("connection attempts %v, want the first hop's alone", a)
		}
		if _, ok := paths.Load("/end"); ok {
			t.Error("the redirect with credentials was followed")
		}
	})
}

// redirectChain returns the URL of the first hop of a chain served by
// chainServer: each hop redirects (302) to the next, the last answers.
func redirectChain(urls ...string) string {
	u := urls[len(urls)-1]
	for i := len(urls) - 2; i >= 0; i-- {
		sep := "?"
		if strings.Contains(urls[i], "?") {
			sep = "&"
		}
		u = urls[i] + sep + "to=" + url.QueryEscape(u)
	}
	return u
}

// chainServer starts a plain loopback server for redirectChain: a request
// with "to" is redirected there with a 302, any other is answered "end".
// It records the header of every request it gets.
func chainServer(t *testing.T) (*server, func() []http.Header) {
	var mu sync.Mutex
	var got []http.Header
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		got = append(got, r.Header.Clone())
		mu.Unlock()
		if to := r.URL.Query().Get("to"); to != "" {
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
		io.WriteString(w, "end")
	}), false)
	return srv, func() []http.Header {
		mu.Lock()
		defer mu.Unlock()
		h := got
		got = nil
		return h
	}
}

// TestNoReferer checks that a client made by NewClient never adds a
// Referer header on a redirect, as http.Client does (the first URL,
// query and all, to whatever host comes next): App Engine sent the
// application's headers alone on every hop (urlfetch_stub.py lines
// 357-389: adjusted_headers holds User-Agent, Host, Accept-Encoding,
// Content-Length and Content-Type, then the application's headers). A
// Referer the application set is kept on a hop to the same origin (scheme,
// host and port) as its request, and dropped on a hop to any other, so
// that it does not travel to a host it was not meant for.
func TestNoReferer(t *testing.T) {
	srv, seen := chainServer(t)
	f := newFixture(t, srv)
	const other = "other.example.test"
	f.res.Set(other, publicAddr)
	a := "http://" + publicHost
	const ref = "https://app.example/page?id=7"
	tests := []struct {
		name  string
		chain []string
		ref   http.Header // the application's, on the first request
		want  []string    // the Referer of each hop after the first; "" for none
	}{
		{"same origin", []string{a + "/a?token=secret", a + "/end"}, nil, []string{""}},
		{"other host", []string{a + "/a?token=secret", "http://" + other + "/end"}, nil, []string{""}},
		{"three hops", []string{a + "/a", "http://" + other + "/b", a + "/end"}, nil, []string{"", ""}},
		{"the application's, same origin", []string{a + "/a", a + "/end"}, http.Header{"Referer": {ref}}, []string{ref}},
		{"the application's, default port written out", []string{a + "/a", a + ":80/end"}, http.Header{"Referer": {ref}}, []string{ref}},
		{"the application's, host in capitals", []string{a + "/a", "http://WWW.EXAMPLE.TEST/end"}, http.Header{"Referer": {ref}}, []string{ref}},
		{"the application's, in lower case", []string{a + "/a", a + "/end"}, http.Header{"referer": {ref}}, []string{ref}},
		{"the application's, other host", []string{a + "/a", "http://" + other + "/end"}, http.Header{"Referer": {ref}}, []string{""}},
		{"the application's, other port", []string{a + "/a", a + ":8080/end"}, http.Header{"Referer": {ref}}, []string{""}},
		{"the application's, away and back", []string{a + "/a", "http://" + other + "/b", a + "/end"}, http.Header{"Referer": {ref}}, []string{"", ref}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen()
			req, _ := http.NewRequest(http.MethodGet, redirectChain(tt.chain...), nil)
			for k, v := range tt.ref {
				req.Header[k] = v
			}
			resp, err := urlfetch.NewClient(f.tr).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if b, err := urlfetch.ReadAll(resp); err != nil || string(b) != "end" {
				t.Fatalf("got %q, %v; want the end of the chain", b, err)
			}
			hops := seen()
			if len(hops) != len(tt.chain) {
				t.Fatalf("%d requests reached the server, want %d", len(hops), len(tt.chain))
			}
			want0 := ""
			if tt.ref != nil {
				want0 = ref
			}
			if got := hops[0].Values("Referer"); want0 == "" && len(got) != 0 || want0 != "" && (len(got) != 1 || got[0] != want0) {
				t.Errorf("first hop: Referer %q, want %q", got, want0)
			}
			for i, h := range hops[1:] {
				got := h.Values("Referer")
				if w := tt.want[i]; w == "" && len(got) != 0 || w != "" && (len(got) != 1 || got[0] != w) {
					t.Errorf("hop %d: Referer %q, want %q", i+1, got, w)
				}
			}
		})
	}
}

// TestRedirectKeepsContentType checks that after a redirect that turns a
// request into a GET without its body (301, 302 and 303), the
// application's Content-Type is still sent, as App Engine sent the
// application's headers on every hop (urlfetch_stub.py lines 386-387:
// "elif header_key.lower() == 'content-type': adjusted_headers[...] =
// [header.value()]"), where http.Client drops it with the body (with
// Content-Encoding, Content-Language and Content-Location, which come
// back too). The form type a POST with no Content-Type gets (lines
// 370-372) is not the application's, and does not follow it to the GET.
func TestRedirectKeepsContentType(t *testing.T) {
	got := make(chan seen, 16)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if code, err := strconv.Atoi(path.Base(r.URL.Path)); err == nil {
			http.Redirect(w, r, "/end", code)
			return
		}
		got <- seen{r.Method, r.Header.Clone(), r.ContentLength, string(b)}
		io.WriteString(w, "end")
	}), false)
	f := newFixture(t, srv)
	client := urlfetch.NewClient(f.tr)
	tests := []struct {
		code         int
		method, body string
		header       http.Header
		wantMethod   string
		want         http.Header // the headers of the last hop that must be there; Content-Type absent if not in it
	}{
		{301, "POST", "{}", http.Header{"Content-Type": {"application/json"}}, "GET", http.Header{"Content-Type": {"application/json"}}},
		{302, "POST", "{}", http.Header{"Content-Type": {"application/json"}}, "GET", http.Header{"Content-Type": {"application/json"}}},
		{303, "POST", "{}", http.Header{"Content-Type": {"application/json"}}, "GET", http.Header{"Content-Type": {"application/json"}}},
		{303, "PUT", "x", http.Header{"Content-Type": {"text/plain"}, "Content-Language": {"it"}, "Content-Encoding": {"identity"}, "Content-Location": {"/x"}}, "GET",
			http.Header{"Content-Type": {"text/plain"}, "Content-Language": {"it"}, "Content-Encoding": {"identity"}, "Content-Location": {"/x"}}},
		{302, "PATCH", "x", http.Header{"content-type": {"text/plain"}}, "GET", http.Header{"Content-Type": {"text/plain"}}},
		{302, "GET", "", http.Header{"Content-Type": {"text/plain"}}, "GET", http.Header{"Content-Type": {"text/plain"}}},
		{301, "HEAD", "", http.Header{"Content-Type": {"text/plain"}}, "HEAD", http.Header{"Content-Type": {"text/plain"}}},
		{307, "POST", "{}", http.Header{"Content-Type": {"application/json"}}, "POST", http.Header{"Content-Type": {"application/json"}}},
		// No Content-Type of the application's: the GET gets none.
		{302, "POST", "a=1", nil, "GET", http.Header{}},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.code)+" "+tt.method+" "+strings.Join(slices.Sorted(maps.Keys(tt.header)), ","), func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, "http://"+publicHost+"/r/"+strconv.Itoa(tt.code), strings.NewReader(tt.body))
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			urlfetch.ReadAll(resp)
			s := <-got
			if s.method != tt.wantMethod {
				t.Fatalf("the last hop was a %s, want %s", s.method, tt.wantMethod)
			}
			for k, v := range tt.want {
				if g := s.header.Values(k); !slices.Equal(g, v) {
					t.Errorf("%s %q, want %q", k, g, v)
				}
			}
			if _, ok := tt.want["Content-Type"]; !ok && s.header["Content-Type"] != nil {
				t.Errorf("Content-Type %q, want none", s.header["Content-Type"])
			}
			if tt.wantMethod == "GET" && (s.body != "" || s.contentLength != 0) {
				t.Errorf("the GET carried %q (length %d)", s.body, s.contentLength)
			}
		})
	}
}

// TestTLSFailuresAreCertificateErrors checks that a TLS handshake that
// fails for a reason of TLS is a certificate error, whatever the reason,
// as App Engine took any SSL error but a timeout for one
// (urlfetch_stub.py lines 481-491: "except _fancy_urllib_SSLError",
// which is ssl.SSLError: DEADLINE_EXCEEDED "if 'timed out' in e.message
// else SSL_CERTIFICATE_ERROR"). A timeout during the handshake stays a
// deadline error, and a connection that the server closes or resets
// during the handshake stays a closed connection (in Python a socket.error,
// FETCH_ERROR). Every server is a real one on loopback.
func TestTLSFailuresAreCertificateErrors(t *testing.T) {
	// tlsServer starts an https server whose TLS configuration edit
	// changes, and returns it with the ClientHellos it got.
	tlsServer := func(t *testing.T, edit func(*tls.Config)) (*server, chan *tls.ClientHelloInfo) {
		hellos := make(chan *tls.ClientHelloInfo, 4)
		s := &server{Server: httptest.NewUnstartedServer(okHandler), closed: make(chan struct{}, 16)}
		s.lis = &countingListener{Listener: s.Server.Listener}
		s.Server.Listener = s.lis
		s.Config.ErrorLog = log.New(io.Discard, "", 0)
		s.TLS = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			hellos <- h
			return nil, nil
		}}
		edit(s.TLS)
		s.StartTLS()
		t.Cleanup(s.Close)
		return s, hellos
	}
	// A name the servers' certificate is valid for: a handshake that
	// succeeded would fetch the page, not fail on the name.
	const tlsHost = "tls.example.com"
	certificateError := func(t *testing.T, err error, host string) {
		t.Helper()
		mustKind(t, err, tlsconf.ErrCertificate)
		if !errors.Is(err, tlsconf.ErrCertificate) || errors.Is(err, urlfetch.ErrDownload) || !final(err) {
			t.Errorf("error %v: want a permanent tlsconf.ErrCertificate, not a download error", err)
		}
		if ce, ok := errors.AsType[*tlsconf.CertificateError](err); !ok || ce.Host != host || ce.Reason == "" {
			t.Errorf("error %v: want a *tlsconf.CertificateError for %s", err, host)
		}
	}

	t.Run("plain HTTP server", func(t *testing.T) {
		srv := newServer(t, okHandler, false)
		f := newFixture(t, srv)
		_, err := f.get(t, "https://"+publicHost+"/")
		certificateError(t, err, publicHost)
		if _, ok := errors.AsType[tls.RecordHeaderError](err); !ok {
			t.Errorf("error %v: want the tls.RecordHeaderError of a reply that is not TLS", err)
		}
		if srv.lis.accepts.Load() != 1 {
			t.Errorf("the server accepted %d connections, want 1", srv.lis.accepts.Load())
		}
	})
	t.Run("server offers TLS 1.0 and 1.1 only", func(t *testing.T) {
		srv, hellos := tlsServer(t, func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 })
		f := newFixture(t, srv, func(tr *urlfetch.Transport) { tr.TLS.RootCAs = rootsOf(srv) })
		f.res.Set(tlsHost, publicAddr)
		_, err := f.get(t, "https://"+tlsHost+"/")
		certificateError(t, err, tlsHost)
		// The handshake reached the server, with no version it speaks.
		h := <-hellos
		if slices.ContainsFunc(h.SupportedVersions, func(v uint16) bool { return v <= tls.VersionTLS11 }) {
			t.Errorf("the client offered %v", h.SupportedVersions)
		}
	})
	t.Run("no common application protocol", func(t *testing.T) {
		// The Transport offers "http/1.1" alone; the server ends the
		// handshake with an alert (no_application_protocol). (A server of
		// "h2" alone lets an "http/1.1" client in without ALPN.)
		srv, hellos := tlsServer(t, func(c *tls.Config) { c.NextProtos = []string{"x-other/1"} })
		f := newFixture(t, srv, func(tr *urlfetch.Transport) { tr.TLS.RootCAs = rootsOf(srv) })
		f.res.Set(tlsHost, publicAddr)
		_, err := f.get(t, "https://"+tlsHost+"/")
		certificateError(t, err, tlsHost)
		if h := <-hellos; !slices.Equal(h.SupportedProtos, []string{"http/1.1"}) {
			t.Errorf("the client offered %q", h.SupportedProtos)
		}
	})
	t.Run("timeout during the handshake", func(t *testing.T) {
		// A server that reads the ClientHello and never answers.
		addr := lab.NewServer(t, func(_ context.Context, c net.Conn) {
			io.Copy(io.Discard, c)
		}).Addr()
		tr, _ := rawFixture(t, addr, func(tr *urlfetch.Transport) { tr.Deadline = 200 * time.Millisecond })
		_, err := tr.RoundTrip(mustGet(t, "https://"+publicHost+"/"))
		mustKind(t, err, urlfetch.ErrDeadlineExceeded)
		if errors.Is(err, tlsconf.ErrCertificate) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v: want a deadline alone", err)
		}
		if ne, ok := errors.AsType[timeoutError](err); !ok || !ne.Timeout() {
			t.Errorf("error %v is not a timeout", err)
		}
	})
	t.Run("server closes during the handshake", func(t *testing.T) {
		addr := lab.NewServer(t, func(_ context.Context, c net.Conn) {
			c.Read(make([]byte, 1)) // part of the ClientHello, then close
		}).Addr()
		tr, _ := rawFixture(t, addr)
		_, err := tr.RoundTrip(mustGet(t, "https://"+publicHost+"/"))
		mustKind(t, err, urlfetch.ErrConnectionClosed)
		if errors.Is(err, tlsconf.ErrCertificate) {
			t.Errorf("error %v: a closed connection is not a certificate error", err)
		}
	})
}

// rootsOf returns a pool that holds the certificate of srv, an httptest
// TLS server (valid for example.com, *.example.com, 127.0.0.1 and ::1).
func rootsOf(srv *server) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return pool
}

// TestPortZero checks that port 0 in a URL means the scheme's default
// port, as App Engine took it: allowed (urlfetch_stub.py line 142,
// _IsAllowedPort: "if (port == 0 or ..."), then dropped from the host
// (lines 346-347: "if port == '0': host = host.replace(':0', "")"), so
// that the connection goes to port 80 or 443 and the Host header has no
// port. The Go runtime passed the URL to the service unchanged, so the
// runtimes agree. Port 0 written otherwise ("00") is refused, as a port 0
// is on the sockets backend (App Engine let it through and then failed to
// connect to port 0).
func TestPortZero(t *testing.T) {
	var mu sync.Mutex
	var hosts []string
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
		if to := r.URL.Query().Get("to"); to != "" {
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
		io.WriteString(w, "ok")
	})
	plain := newServer(t, handler, false)
	tlsSrv := newServer(t, handler, true) // valid for *.example.com
	const tlsHost = "tls.example.com"
	conn := &lab.Connector{Routes: map[netip.AddrPort]string{
		netip.MustParseAddrPort(publicAddr + ":80"):  plain.addr(),
		netip.MustParseAddrPort(publicAddr + ":443"): tlsSrv.addr(),
	}}
	tr := &urlfetch.Transport{
		Dialer: sockets.Dialer{
			Resolver: lab.NewResolver(map[string][]string{publicHost: {publicAddr}, tlsHost: {publicAddr}}),
			Connect:  conn.Connect,
		},
		TLS: tlsconf.Config{RootCAs: rootsOf(tlsSrv)},
	}
	t.Cleanup(tr.CloseIdleConnections)
	tests := []struct {
		name, url string
		do        func(*http.Request) (*http.Response, error)
		wantHosts []string
		wantPorts []uint16
	}{
		{"http", "http://" + publicHost + ":0/path?q=1", tr.RoundTrip, []string{publicHost}, []uint16{80}},
		{"https", "https://" + tlsHost + ":0/", tr.RoundTrip, []string{tlsHost}, []uint16{443}},
		{"HTTP in capitals", "HTTP://" + publicHost + ":0/", tr.RoundTrip, []string{publicHost}, []uint16{80}},
		{"redirect to port 0", "http://" + publicHost + "/a?to=" + url.QueryEscape("https://"+tlsHost+":0/end"), urlfetch.NewClient(tr).Do,
			[]string{publicHost, tlsHost}, []uint16{80, 443}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			hosts = nil
			mu.Unlock()
			tr.CloseIdleConnections() // every hop makes a connection of its own
			before := len(conn.Attempts())
			req, _ := http.NewRequest(http.MethodGet, tt.url, nil)
			u := req.URL.String()
			resp, err := tt.do(req)
			if err != nil {
				t.Fatal(err)
			}
			if b, err := urlfetch.ReadAll(resp); err != nil || string(b) != "ok" {
				t.Fatalf("got %q, %v", b, err)
			}
			if req.URL.String() != u {
				t.Errorf("the request's URL became %q", req.URL)
			}
			var ports []uint16
			for _, a := range conn.Attempts()[before:] {
				ports = append(ports, a.Port())
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(ports, tt.wantPorts) || !slices.Equal(hosts, tt.wantHosts) {
				t.Errorf("connected to ports %v, Host headers %q; want %v, %q", ports, hosts, tt.wantPorts, tt.wantHosts)
			}
		})
	}
	for _, p := range []string{"00", "000"} {
		t.Run("port "+p, func(t *testing.T) {
			before := len(conn.Attempts())
			_, err := tr.RoundTrip(mustGet(t, "http://"+publicHost+":"+p+"/"))
			mustKind(t, err, urlfetch.ErrInvalidURL)
			if de, ok := errors.AsType[*sockets.DeniedError](err); !ok || de.Rule != sockets.RulePort0 {
				t.Errorf("error %v: want a refusal for port 0", err)
			}
			if n := len(conn.Attempts()) - before; n != 0 {
				t.Errorf("%d connection attempts", n)
			}
		})
	}
}
