package urlfetch_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/urlfetch"
)

func TestSchemesRefused(t *testing.T) {
	f := newFixture(t, newServer(t, okHandler, false))
	host := f.srv.addr()
	tests := []struct {
		name    string
		url     *url.URL
		refusal bool // a *sockets.DeniedError for sockets.RuleScheme; otherwise an invalid URL
	}{
		{"ftp", &url.URL{Scheme: "ftp", Host: host, Path: "/"}, true},
		{"file", &url.URL{Scheme: "file", Path: "/etc/passwd"}, true},
		{"gopher", &url.URL{Scheme: "gopher", Host: host, Path: "/"}, true},
		{"upper case", &url.URL{Scheme: "HTTP", Host: host, Path: "/"}, true},
		{"empty scheme", &url.URL{Host: host, Path: "/"}, false},
		{"relative", &url.URL{Path: "/index.html"}, false},
		{"nil url", nil, false},
		{"no host", &url.URL{Scheme: "http", Path: "/"}, false},
		{"opaque", &url.URL{Scheme: "http", Opaque: "//" + host + "/"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := newBody(10)
			req := &http.Request{Method: http.MethodPost, URL: tt.url, Header: http.Header{}, Body: body, ContentLength: 10}
			_, err := f.tr.RoundTrip(req)
			mustKind(t, err, urlfetch.ErrInvalidURL)
			re, isRefusal := errors.AsType[*sockets.DeniedError](err)
			if isRefusal != tt.refusal {
				t.Fatalf("refusal = %v, want %v (%v)", isRefusal, tt.refusal, err)
			}
			if tt.refusal {
				if re.Rule != sockets.RuleScheme || re.ErrorType() != "scheme" || !errors.Is(err, sockets.ErrDenied) {
					t.Errorf("refusal %v: rule %v, ErrDenied %v", err, re.Rule, errors.Is(err, sockets.ErrDenied))
				}
				if want := strconv.Quote(tt.url.Scheme); re.Detail != want || re.Host != tt.url.Hostname() {
					t.Errorf("refusal %v: detail %s host %q, want %s %q", err, re.Detail, re.Host, want, tt.url.Hostname())
				}
			}
			if !final(err) {
				t.Errorf("final(%v) = false", err)
			}
			if !body.closed.Load() || body.read.Load() != 0 {
				t.Errorf("body closed %v, %d bytes read; want closed, unread", body.closed.Load(), body.read.Load())
			}
			if n := f.attempts(); n != 0 {
				t.Errorf("%d connection attempts, want none", n)
			}
		})
	}
}

func TestMethods(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method)
		mu.Unlock()
	}), false)
	f := newFixture(t, srv)

	for _, m := range []string{"", "GET", "POST", "HEAD", "PUT", "DELETE", "PATCH"} {
		t.Run("allowed "+m, func(t *testing.T) {
			req, _ := http.NewRequest(m, f.url("/"), strings.NewReader("x"))
			resp, err := f.tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := m
			if m == "" {
				want = "GET"
			}
			mu.Lock()
			got := seen[len(seen)-1]
			mu.Unlock()
			if got != want {
				t.Errorf("server saw %q, want %q", got, want)
			}
		})
	}
	before := f.attempts()
	for _, m := range []string{"PROPFIND", "OPTIONS", "TRACE", "CONNECT", "get", "BREW", "G ET"} {
		t.Run("refused "+m, func(t *testing.T) {
			body := newBody(3)
			req := &http.Request{Method: m, URL: mustParse(t, f.url("/")), Header: http.Header{}, Body: body, ContentLength: 3}
			_, err := f.tr.RoundTrip(req)
			mustKind(t, err, urlfetch.ErrInvalidMethod)
			re, ok := errors.AsType[*sockets.DeniedError](err)
			if !ok || re.Rule != sockets.RuleMethod || re.Detail != strconv.Quote(m) || re.ErrorType() != "method" {
				t.Errorf("error %v: want a *sockets.DeniedError for sockets.RuleMethod and %q", err, m)
			}
			if !errors.Is(err, sockets.ErrDenied) || !final(err) {
				t.Errorf("error %v does not match sockets.ErrDenied and a final kind", err)
			}
			if !body.closed.Load() {
				t.Error("request body not closed")
			}
		})
	}
	if n := f.attempts() - before; n != 0 {
		t.Errorf("%d connection attempts for refused methods, want none", n)
	}
}

func mustParse(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestPorts checks the port rule at its boundaries. The allowed ports are
// reached by dialing a public test name: the policy checks the public
// address with the port of the URL, and the Connector seam carries the
// connection to the loopback server, whatever its real port. The refused
// ones must not even be tried.
func TestPorts(t *testing.T) {
	f := newFixture(t, newServer(t, okHandler, false))
	// The ports the sockets policy refuses whatever the address are
	// refused for the policy's rules, as on the sockets backend.
	const allowed sockets.Rule = 0
	tests := []struct {
		port string
		want sockets.Rule
	}{
		{"", allowed},             // none given: 80
		{"00", sockets.RulePort0}, // "0" is the default port: see TestPortZero
		{"1", sockets.RulePort},
		{"21", sockets.RuleFTP},
		{"25", sockets.RuleSMTP},
		{"79", sockets.RulePort},
		{"80", allowed},
		{"90", allowed},
		{"91", sockets.RulePort},
		{"439", sockets.RulePort},
		{"440", allowed},
		{"443", allowed},
		{"450", allowed},
		{"451", sockets.RulePort},
		{"1000", sockets.RulePort},
		{"1023", sockets.RulePort},
		{"1024", allowed},
		{"8000", allowed},
		{"65535", allowed},
	}
	for _, tt := range tests {
		t.Run("port "+tt.port, func(t *testing.T) {
			host := publicHost
			if tt.port != "" {
				host += ":" + tt.port
			}
			before := f.conn.Attempts()
			// http on every port, 443 included: the rule is about ports.
			resp, err := f.get(t, "http://"+host+"/")
			after := f.conn.Attempts()
			if tt.want != allowed {
				mustKind(t, err, urlfetch.ErrInvalidURL)
				re, ok := errors.AsType[*sockets.DeniedError](err)
				if !ok || re.Rule != tt.want || re.Host != publicHost || re.Network != "tcp" {
					t.Fatalf("error %v: want a *sockets.DeniedError for %v", err, tt.want)
				}
				// The port rule's text does not say which port; its
				// Detail does. The sockets rules name their port.
				if wantDetail := strconv.Quote(tt.port); tt.want == sockets.RulePort && re.Detail != wantDetail || tt.want != sockets.RulePort && re.Detail != "" {
					t.Errorf("error %v: detail %s", err, re.Detail)
				}
				if !errors.Is(err, sockets.ErrDenied) || !final(err) {
					t.Errorf("error %v does not match sockets.ErrDenied and a final kind", err)
				}
				if len(after) != len(before) {
					t.Errorf("a connection was attempted: %v", after[len(before):])
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := tt.port
			if want == "" {
				want = "80"
			}
			if len(after) != len(before)+1 || strconv.Itoa(int(after[len(after)-1].Port())) != want || after[len(after)-1].Addr().String() != publicAddr {
				t.Errorf("connection attempts %v, want one to %s:%s", after[len(before):], publicAddr, want)
			}
		})
	}
	for _, p := range []string{"65536", "99999", "-1", "http"} {
		t.Run("malformed port "+p, func(t *testing.T) {
			u := &url.URL{Scheme: "http", Host: publicHost + ":" + p, Path: "/"}
			_, err := f.tr.RoundTrip(&http.Request{Method: "GET", URL: u, Header: http.Header{}})
			mustKind(t, err, urlfetch.ErrInvalidURL)
		})
	}
}

// TestPortRuleWithWidePolicy shows that the port rule belongs to the
// Transport: a policy that allows the loopback server on any port does not
// lift it.
func TestPortRuleWithWidePolicy(t *testing.T) {
	f := newFixture(t, newServer(t, okHandler, false))
	_, err := f.get(t, "http://127.0.0.1:1000/")
	if re, ok := errors.AsType[*sockets.DeniedError](err); !ok || re.Rule != sockets.RulePort {
		t.Fatalf("got %v, want a port refusal", err)
	}
	if f.attempts() != 0 {
		t.Fatal("a connection was attempted")
	}
}

func TestURLLength(t *testing.T) {
	f := newFixture(t, newServer(t, okHandler, false))
	base := f.url("/")
	ofLength := func(n int) string { return base + strings.Repeat("a", n-len(base)) }

	resp, err := f.get(t, ofLength(urlfetch.MaxURLLength))
	if err != nil {
		t.Fatalf("URL of %d characters: %v", urlfetch.MaxURLLength, err)
	}
	resp.Body.Close()
	attempts := f.attempts()

	_, err = f.get(t, ofLength(urlfetch.MaxURLLength+1))
	mustKind(t, err, urlfetch.ErrInvalidURL)
	le, ok := errors.AsType[*urlfetch.LimitError](err)
	if !ok || le.Size != urlfetch.MaxURLLength+1 || le.Limit != urlfetch.MaxURLLength {
		t.Fatalf("error %v: want a *LimitError of %d over %d", err, urlfetch.MaxURLLength+1, urlfetch.MaxURLLength)
	}
	if f.attempts() != attempts {
		t.Error("a connection was attempted for the overlong URL")
	}
}

// TestHeaders checks that the headers an application cannot set never
// reach the server, in any letter case, and that Host and Content-Length
// come from the request.
func TestHeaders(t *testing.T) {
	got := make(chan *http.Request, 1)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got <- r
	}), false)
	f := newFixture(t, srv)

	req, _ := http.NewRequest(http.MethodPost, f.url("/h"), strings.NewReader("hello"))
	req.Host = "evil.example"
	h := req.Header
	h.Set("Host", "evil.example")
	h.Set("Content-Length", "999")
	h.Set("Vary", "*")
	h.Set("Via", "1.1 proxy")
	h["x-forwarded-for"] = []string{"1.2.3.4"} // not canonical
	h["X-APPENGINE-INBOUND-APPID"] = []string{"other-app"}
	h.Set("X-ProxyUser-IP", "5.6.7.8")
	h.Set("X-Kept", "yes")
	h["x-kept-too"] = []string{"also"}
	before := cloneRequestState(req)

	resp, err := f.tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r := <-got
	for _, name := range []string{"Vary", "Via", "X-Forwarded-For", "X-Appengine-Inbound-Appid", "X-Proxyuser-Ip"} {
		if v, ok := r.Header[name]; ok {
			t.Errorf("server got %s: %q", name, v)
		}
	}
	if r.Host != srv.addr() {
		t.Errorf("server got Host %q, want %q", r.Host, srv.addr())
	}
	if r.ContentLength != 5 {
		t.Errorf("server got Content-Length %d, want 5", r.ContentLength)
	}
	if r.Header.Get("X-Kept") != "yes" || r.Header.Get("X-Kept-Too") != "also" {
		t.Errorf("other headers lost: %v", r.Header)
	}
	if after := cloneRequestState(req); !reflect.DeepEqual(before, after) {
		t.Errorf("RoundTrip changed the request:\nbefore %+v\nafter  %+v", before, after)
	}
}

// requestState is what a RoundTripper must not change in a request.
type requestState struct {
	Method, URL, Host string
	Header            http.Header
	ContentLength     int64
}

func cloneRequestState(r *http.Request) requestState {
	return requestState{r.Method, r.URL.String(), r.Host, r.Header.Clone(), r.ContentLength}
}

// TestUserAgent checks App Engine's User-Agent: the application's value
// with the suffix appended, or the suffix alone when the application sets
// none, never net/http's default; the app id as App Engine printed it,
// partition included (google/appengine/api/urlfetch_stub.py, _RetrieveURL:
// adjusted_headers 'User-Agent', "'%s %s' % (header.value(), ...)" for an
// application value, and "appid: %s" % os.getenv('APPLICATION_ID'), which
// held "s~my-app").
func TestUserAgent(t *testing.T) {
	got := make(chan string, 1)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- strings.Join(r.Header.Values("User-Agent"), "|")
	}), false)
	tests := []struct {
		name, appID string
		set         []string // User-Agent values the application sets; nil: none
		want        string
	}{
		{"app value kept", "my-app", []string{"my-client/1.0"}, "my-client/1.0 AppEngine-Google; (+http://code.google.com/appengine; appid: my-app)"},
		{"none set", "s~my-app", nil, "AppEngine-Google; (+http://code.google.com/appengine; appid: s~my-app)"},
		{"empty set", "my-app", []string{""}, "AppEngine-Google; (+http://code.google.com/appengine; appid: my-app)"},
		{"partition kept", "e~my-app", []string{"x/2"}, "x/2 AppEngine-Google; (+http://code.google.com/appengine; appid: e~my-app)"},
		{"domain app id", "s~example.com:my-app", nil, "AppEngine-Google; (+http://code.google.com/appengine; appid: s~example.com:my-app)"},
		{"default app id", "", []string{"x/2"}, "x/2 AppEngine-Google; (+http://code.google.com/appengine; appid: unknown)"},
		{"first of several", "a", []string{"one/1", "two/2"}, "one/1 AppEngine-Google; (+http://code.google.com/appengine; appid: a)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, srv, func(tr *urlfetch.Transport) { tr.AppID = tt.appID })
			req, _ := http.NewRequest(http.MethodGet, f.url("/"), nil)
			if tt.set != nil {
				req.Header["user-agent"] = tt.set // not canonical on purpose
			}
			resp, err := f.tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if ua := <-got; ua != tt.want {
				t.Errorf("User-Agent %q, want %q", ua, tt.want)
			}
		})
	}
}

// TestGzip checks both ways of compression: added and decoded by the
// Transport, or asked for by the application, which then gets the
// compressed bytes.
func TestGzip(t *testing.T) {
	plain := strings.Repeat("compressible text ", 1000)
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write([]byte(plain))
	zw.Close()
	gotAE := make(chan string, 1)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAE <- r.Header.Get("Accept-Encoding")
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(zipped.Bytes())
	}), false)
	f := newFixture(t, srv)

	t.Run("added by the transport", func(t *testing.T) {
		resp, err := f.get(t, f.url("/"))
		if err != nil {
			t.Fatal(err)
		}
		body, err := urlfetch.ReadAll(resp)
		if err != nil {
			t.Fatal(err)
		}
		if ae := <-gotAE; ae != "gzip" {
			t.Errorf("server got Accept-Encoding %q, want gzip", ae)
		}
		if string(body) != plain || !resp.Uncompressed {
			t.Errorf("body not decompressed (%d bytes, Uncompressed %v)", len(body), resp.Uncompressed)
		}
	})
	t.Run("set by the application", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, f.url("/"), nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := f.tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := urlfetch.ReadAll(resp)
		if err != nil {
			t.Fatal(err)
		}
		<-gotAE
		if !bytes.Equal(body, zipped.Bytes()) || resp.Uncompressed || resp.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("body changed (%d bytes, Uncompressed %v), want the %d compressed bytes", len(body), resp.Uncompressed, zipped.Len())
		}
	})
}

// TestDestinationDenied checks that the policy refuses a public name that
// resolves to a private address, before any connection is tried.
func TestDestinationDenied(t *testing.T) {
	f := newFixture(t, newServer(t, okHandler, false))
	for _, u := range []string{"http://" + privateHost + "/", "http://10.0.0.1:8080/", "http://[::ffff:10.0.0.1]/", "http://169.254.169.254/"} {
		t.Run(u, func(t *testing.T) {
			body := newBody(1)
			req, _ := http.NewRequest(http.MethodPut, u, body)
			_, err := f.tr.RoundTrip(req)
			mustKind(t, err, sockets.ErrDenied)
			de, ok := errors.AsType[*sockets.DeniedError](err)
			if !ok || !errors.Is(err, sockets.ErrDenied) {
				t.Fatalf("error %v: want a *sockets.DeniedError", err)
			}
			if de.Rule.Code() == "" || !final(err) {
				t.Errorf("denial %v: rule %v, final %v", err, de.Rule, final(err))
			}
			if !body.closed.Load() {
				t.Error("request body not closed")
			}
		})
	}
	if n := f.attempts(); n != 0 {
		t.Errorf("%d connection attempts, want none: %v", n, f.conn.Attempts())
	}
}

// TestZeroTransportRefusesLoopback uses a zero Transport, with the real
// dialer: the loopback test server is refused before any connection.
func TestZeroTransportRefusesLoopback(t *testing.T) {
	srv := newServer(t, okHandler, false)
	var tr urlfetch.Transport
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	_, err := tr.RoundTrip(req)
	mustKind(t, err, sockets.ErrDenied)
	if n := srv.lis.accepts.Load(); n != 0 {
		t.Fatalf("the server accepted %d connections", n)
	}
}

// TestGoogleRanges checks URL Fetch's destination rule: Google's ranges
// are reachable, which the sockets default policy refuses.
func TestGoogleRanges(t *testing.T) {
	srv := newServer(t, okHandler, false)
	f := newFixture(t, srv, func(tr *urlfetch.Transport) { tr.Dialer.Policy = nil })
	resp, err := f.get(t, "http://"+googleHost+"/")
	if err != nil {
		t.Fatalf("Google address through the default policy: %v", err)
	}
	resp.Body.Close()

	g := newFixture(t, srv, func(tr *urlfetch.Transport) { tr.Dialer.Policy = sockets.DefaultPolicy() })
	_, err = g.get(t, "http://"+googleHost+"/")
	if de, ok := errors.AsType[*sockets.DeniedError](err); !ok || de.Rule != sockets.RuleGoogle {
		t.Fatalf("with sockets.DefaultPolicy: got %v, want a refusal by %q", err, sockets.RuleGoogle)
	}
	if g.attempts() != 0 {
		t.Error("a connection was attempted")
	}
}

func TestDNSFailure(t *testing.T) {
	f := newFixture(t, newServer(t, okHandler, false))
	_, err := f.get(t, "http://"+unknownHost+"/")
	mustKind(t, err, urlfetch.ErrDNS)
	if _, ok := errors.AsType[*sockets.LookupError](err); !ok {
		t.Errorf("error %v: no *sockets.LookupError", err)
	}
	if dns, ok := errors.AsType[*net.DNSError](err); !ok || !dns.IsNotFound {
		t.Errorf("error %v: no *net.DNSError with IsNotFound", err)
	}
	if final(err) {
		t.Error("a DNS failure is reported final")
	}
}

// TestNoProxy checks that the proxy named by the environment is never
// used: it would bypass the destination check.
func TestNoProxy(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("http_proxy", "http://127.0.0.1:1")
	f := newFixture(t, newServer(t, okHandler, false))
	resp, err := f.get(t, "http://"+publicHost+":8080/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if a := f.conn.Attempts(); len(a) != 1 || a[0].String() != publicAddr+":8080" {
		t.Fatalf("connections %v, want one straight to %s:8080", a, publicAddr)
	}
}

// TestDialerNotChanged checks that the Transport dials with a copy of its
// Dialer: the defaults it uses are never written into the field.
func TestDialerNotChanged(t *testing.T) {
	srv := newServer(t, okHandler, false)
	tr := &urlfetch.Transport{}
	defer tr.CloseIdleConnections()
	_, err := tr.RoundTrip(mustGet(t, srv.URL))
	mustKind(t, err, sockets.ErrDenied) // PublicPolicy: loopback refused
	if d := tr.Dialer; d.Policy != nil || d.Resolver != nil || d.Timeout != 0 {
		t.Fatalf("the Transport's Dialer was changed: %+v", d)
	}
}

func mustGet(t testing.TB, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// noNetwork is a Dialer with a resolver that knows no name and a connect
// step that refuses every target: a test that must fail before any lookup
// uses it, so that nothing could leave the machine if it did not.
var noNetwork = sockets.Dialer{Resolver: new(lab.Resolver), Connect: new(lab.Connector).Connect}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		tr   *urlfetch.Transport
	}{
		{"negative deadline", &urlfetch.Transport{Deadline: -1, Dialer: noNetwork}},
		{"app id with a newline", &urlfetch.Transport{AppID: "app\r\nX-Evil: 1", Dialer: noNetwork}},
		{"app id with a space", &urlfetch.Transport{AppID: "my app", Dialer: noNetwork}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := newBody(1)
			req, _ := http.NewRequest(http.MethodPost, "http://"+publicHost+"/", body)
			_, err := tt.tr.RoundTrip(req)
			mustKind(t, err, urlfetch.ErrConfig)
			if !body.closed.Load() {
				t.Error("request body not closed")
			}
			if !final(err) {
				t.Error("a configuration error is not final")
			}
		})
	}
}

func TestInvalidRequests(t *testing.T) {
	f := newFixture(t, newServer(t, okHandler, false))
	if _, err := f.tr.RoundTrip(nil); !errors.Is(err, urlfetch.ErrInvalidRequest) {
		t.Errorf("nil request: %v", err)
	}
	tests := []struct {
		name string
		edit func(*http.Request)
	}{
		{"header value with a newline", func(r *http.Request) { r.Header.Set("X-A", "a\r\nX-Injected: 1") }},
		{"header name with a space", func(r *http.Request) { r.Header["X A"] = []string{"1"} }},
		{"length without a body", func(r *http.Request) { r.Body, r.ContentLength = nil, 5 }},
		{"host with a space", func(r *http.Request) { r.URL.Host = "www.example .test" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := newBody(2)
			req, _ := http.NewRequest(http.MethodPost, f.url("/"), body)
			req.ContentLength = 2
			tt.edit(req)
			_, err := f.tr.RoundTrip(req)
			if !errors.Is(err, urlfetch.ErrInvalidRequest) && !errors.Is(err, urlfetch.ErrInvalidURL) {
				t.Fatalf("got %v, want an invalid request or URL", err)
			}
			if !final(err) {
				t.Errorf("final(%v) = false", err)
			}
			if req.Body != nil && !body.closed.Load() {
				t.Error("request body not closed")
			}
		})
	}
	if n := f.attempts(); n != 0 {
		t.Errorf("%d connection attempts, want none", n)
	}
}

// TestCanceled checks a request whose context the caller cancels.
func TestCanceled(t *testing.T) {
	started := make(chan struct{}, 1)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-r.Context().Done()
	}), false)
	f := newFixture(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-started
		cancel()
	}()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.url("/"), nil)
	_, err := f.tr.RoundTrip(req)
	mustKind(t, err, urlfetch.ErrCanceled)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not match context.Canceled", err)
	}
}

func TestErrorText(t *testing.T) {
	f := newFixture(t, newServer(t, okHandler, false))
	_, err := f.get(t, "http://user:secret@"+publicHost+":1000/path")
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	want := `urlfetch: GET http://` + publicHost + `:1000/path: invalid url: sockets: tcp to "` + publicHost + `" refused: port not allowed (only 80-90, 440-450, 1024-65535): "1000"`
	if msg != want {
		t.Errorf("message\n%s\nwant\n%s", msg, want)
	}
	if strings.Contains(msg, "secret") || strings.Contains(msg, "user") {
		t.Errorf("message %q leaks credentials", msg)
	}
	body := newBody(urlfetch.MaxRequestBody + 1)
	req, _ := http.NewRequest(http.MethodPost, "http://"+publicHost+"/upload", body)
	req.ContentLength = urlfetch.MaxRequestBody + 1
	_, err = f.tr.RoundTrip(req)
	want = "urlfetch: POST http://" + publicHost + "/upload: payload too large: request body of 10485761 bytes is over the limit of 10485760"
	if err == nil || err.Error() != want {
		t.Errorf("message\n%v\nwant\n%s", err, want)
	}
	// A refused destination: the kind sockets.ErrDenied (sockets.ErrDenied) reads
	// "refused", then the policy's refusal.
	_, err = f.get(t, "http://"+privateHost+"/")
	want = `urlfetch: GET http://` + privateHost + `/: refused: sockets: tcp to ` + privateAddr + `:80 (host "` + privateHost + `") refused: private (RFC 1918)`
	if err == nil || err.Error() != want {
		t.Errorf("message\n%v\nwant\n%s", err, want)
	}
}

// TestOneSentinelPerConcern checks that the sentinels urlfetch shares
// with the packages below it are theirs, so that one errors.Is matches
// the same failure on both backends of package transport, and that the
// kinds of a refusal stay apart.
func TestOneSentinelPerConcern(t *testing.T) {
	if sockets.ErrDenied != sockets.ErrDenied {
		t.Error("sockets.ErrDenied is not sockets.ErrDenied")
	}
	if tlsconf.ErrCertificate != tlsconf.ErrCertificate {
		t.Error("tlsconf.ErrCertificate is not tlsconf.ErrCertificate")
	}
	// The sockets backend's errors, as it returns them.
	if de := (&sockets.DeniedError{Rule: sockets.RuleSMTP}); !errors.Is(de, sockets.ErrDenied) {
		t.Error("a *sockets.DeniedError does not match sockets.ErrDenied")
	}
	if ce := (&tlsconf.CertificateError{Host: "x", Reason: "expired"}); !errors.Is(ce, tlsconf.ErrCertificate) {
		t.Error("a *tlsconf.CertificateError does not match tlsconf.ErrCertificate")
	}
	// A refused scheme is an invalid URL and a refusal, not an invalid
	// method; a refused destination is a refusal only.
	scheme := &urlfetch.Error{Kind: urlfetch.ErrInvalidURL, Err: &sockets.DeniedError{Rule: sockets.RuleScheme}}
	dest := &urlfetch.Error{Kind: sockets.ErrDenied, Err: &sockets.DeniedError{Rule: sockets.RulePrivate}}
	for _, c := range []struct {
		err                             error
		invalidURL, invalidMethod, refd bool
	}{
		{scheme, true, false, true},
		{dest, false, false, true},
		{&urlfetch.Error{Kind: urlfetch.ErrInvalidMethod, Err: &sockets.DeniedError{Rule: sockets.RuleMethod}}, false, true, true},
		{&urlfetch.Error{Kind: urlfetch.ErrInvalidURL, Err: errors.New("urlfetch: missing host")}, true, false, false},
	} {
		if errors.Is(c.err, urlfetch.ErrInvalidURL) != c.invalidURL || errors.Is(c.err, urlfetch.ErrInvalidMethod) != c.invalidMethod || errors.Is(c.err, sockets.ErrDenied) != c.refd {
			t.Errorf("%v: invalid url %v, invalid method %v, refused %v; want %v %v %v", c.err,
				errors.Is(c.err, urlfetch.ErrInvalidURL), errors.Is(c.err, urlfetch.ErrInvalidMethod), errors.Is(c.err, sockets.ErrDenied),
				c.invalidURL, c.invalidMethod, c.refd)
		}
	}
}

// TestConcurrent shares one Transport between many goroutines, from its
// first use on; run it with -race. The zero Transport is shared too, for
// requests it refuses without a connection.
func TestConcurrent(t *testing.T) {
	srv := newServer(t, bodyHandler(4096, true), false)
	f := newFixture(t, srv)
	var zero urlfetch.Transport
	defer zero.CloseIdleConnections()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Go(func() {
			for j := range 8 {
				u := f.url("/")
				if (i+j)%2 == 0 {
					u = "http://" + publicHost + ":8000/"
				}
				resp, err := f.tr.RoundTrip(mustGet(t, u))
				if err != nil {
					errs <- err
					return
				}
				n, err := drain(t, resp.Body)
				resp.Body.Close()
				if err != nil || n != 4096 {
					errs <- errors.Join(err, errors.New("short body"))
					return
				}
				req := &http.Request{Method: "PROPFIND", URL: mustParse(t, "http://"+publicHost+"/"), Header: http.Header{}}
				if _, err := zero.RoundTrip(req); !errors.Is(err, urlfetch.ErrInvalidMethod) {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// failingReader fails after its first bytes.
type failingReader struct{ sent bool }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.sent {
		return 0, errors.New("disk on fire")
	}
	r.sent = true
	return copy(p, "abc"), nil
}

// TestRequestBodyMismatch checks a body that does not keep to its
// ContentLength, or fails to read: an invalid request, not a failure of
// the network.
func TestRequestBodyMismatch(t *testing.T) {
	srv, _ := uploadServer(t)
	f := newFixture(t, srv)
	tests := []struct {
		name   string
		body   io.Reader
		length int64
	}{
		{"shorter", strings.NewReader("12345"), 10},
		{"longer", strings.NewReader("1234567890"), 5},
		{"read error, known length", &failingReader{}, 10},
		{"read error, unknown length", &failingReader{}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, f.url("/"), io.NopCloser(tt.body))
			req.ContentLength = tt.length
			_, err := f.tr.RoundTrip(req)
			mustKind(t, err, urlfetch.ErrInvalidRequest)
		})
	}
}
