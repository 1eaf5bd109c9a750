package urlfetch_test

// Behaviours that follow App Engine's own sources (SDK 1.9.x):
// google/appengine/api/urlfetch.py, urlfetch_stub.py and urlfetch_errors.py.
// Each test names the function it follows.

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
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
		urlfetch.ErrResponseTooLarge, urlfetch.ErrCanceled, urlfetch.ErrCertificate, urlfetch.ErrRefused, urlfetch.ErrConfig}
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
		{urlfetch.ErrCertificate, tlsconf.ErrCertificate, true},
		{urlfetch.ErrRefused, sockets.ErrDenied, true},
		{urlfetch.ErrDNS, context.DeadlineExceeded, false},
		{urlfetch.ErrDNS, urlfetch.ErrDeadlineExceeded, false},
		{urlfetch.ErrPayloadTooLarge, urlfetch.ErrRefused, false},
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
	if ne, ok := errors.AsType[net.Error](err); !ok || ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a name that does not exist is a timeout: %v", err)
	}
}

// TestMalformedStatus checks that a status of 600 or more and a redirect
// without Location are malformed replies, not responses
// (google/appengine/api/urlfetch_stub.py, _RetrieveURL: "if
// http_response.status >= 600: ... 'Status %s unknown'", and 'Missing
// "Location" header for redirect.' with MALFORMED_REPLY), and that their
// connection is not kept by a body nobody holds.
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
		{"/301", true},
		{"/302", true},
		{"/303", true},
		{"/307", true},
		{"/308", true},
		{"/302?body", true},
		{"/600", true},
		{"/600?body", true},
		{"/999", true},
		// The neighbours are responses.
		{"/599", false},
		{"/300", false}, // Multiple Choices: Location is optional
		{"/304", false}, // Not Modified: no redirect
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
		_, err := urlfetch.NewClient(f.tr).Get("http://" + publicHost + "/302")
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
		// one it is sent.
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
	if ne, ok := errors.AsType[net.Error](err); !ok || !ne.Timeout() {
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
		if ne, ok := errors.AsType[net.Error](err); !ok || ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
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
