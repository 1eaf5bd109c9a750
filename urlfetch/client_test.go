package urlfetch_test

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/urlfetch"
)

// redirectServer answers /r/CODE/N with a redirect of status CODE to
// /r/CODE/N-1, and /r/CODE/0 with the method and body it got, in the body
// and, for HEAD, whose reply has none, in the X-Method and X-Body headers.
// /to?u=URL redirects to URL with a 302.
func redirectServer(t *testing.T) *server {
	return newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/to" {
			http.Redirect(w, r, r.URL.Query().Get("u"), http.StatusFound)
			return
		}
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/r/"), "/")
		code, _ := strconv.Atoi(parts[0])
		n, _ := strconv.Atoi(parts[1])
		if n > 0 {
			w.Header().Set("Location", "/r/"+parts[0]+"/"+strconv.Itoa(n-1))
			w.WriteHeader(code)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-Body", string(b))
		io.WriteString(w, r.Method+" "+string(b))
	}), false)
}

func TestClientRedirectLimit(t *testing.T) {
	f := newFixture(t, redirectServer(t))
	var hops atomic.Int32
	f.tr.OnStats = func(*http.Request, urlfetch.Stats) { hops.Add(1) }
	client := urlfetch.NewClient(f.tr)

	resp, err := client.Get("http://" + publicHost + ":8000/r/302/5")
	if err != nil {
		t.Fatalf("5 redirects: %v", err)
	}
	b, _ := urlfetch.ReadAll(resp)
	if string(b) != "GET " || hops.Load() != 6 {
		t.Fatalf("got %q after %d exchanges, want the end after 6", b, hops.Load())
	}

	_, err = client.Get("http://" + publicHost + ":8000/r/302/6")
	mustKind(t, err, urlfetch.ErrTooManyRedirects)
	if _, ok := errors.AsType[*url.Error](err); !ok {
		t.Errorf("error %v is not wrapped by the client in a *url.Error", err)
	}
	if !final(err) {
		t.Error("too many redirects is not final")
	}
}

// TestClientRedirectStatuses checks which redirects are followed and with
// which method and body. App Engine kept GET and HEAD on 301, 302 and 303
// and turned every other method into GET without its payload; a 307 kept
// both (google/appengine/api/urlfetch_stub.py, _RetrieveURL:
// REDIRECT_STATUSES, PRESERVE_ON_REDIRECT = frozenset(['GET', 'HEAD']),
// "method = 'GET'; payload = None"). The payload of DELETE was never sent
// (urlfetch.py, make_fetch_call).
func TestClientRedirectStatuses(t *testing.T) {
	f := newFixture(t, redirectServer(t))
	client := urlfetch.NewClient(f.tr)
	tests := []struct {
		code               int
		method, body       string
		followed           bool
		wantMethod, wantBd string // at the end of the chain
	}{
		{301, "POST", "data", true, "GET", ""},
		{302, "POST", "data", true, "GET", ""},
		{303, "POST", "data", true, "GET", ""},
		{302, "PUT", "data", true, "GET", ""},
		{303, "PATCH", "data", true, "GET", ""},
		{302, "DELETE", "", true, "GET", ""},
		{301, "GET", "", true, "GET", ""},
		{302, "GET", "", true, "GET", ""},
		{303, "GET", "", true, "GET", ""},
		{301, "HEAD", "", true, "HEAD", ""},
		{302, "HEAD", "", true, "HEAD", ""},
		{303, "HEAD", "", true, "HEAD", ""},
		{307, "HEAD", "", true, "HEAD", ""},
		{307, "GET", "", true, "GET", ""},
		{307, "POST", "data", true, "POST", "data"},
		{307, "PUT", "data", true, "PUT", "data"},
		{307, "PATCH", "data", true, "PATCH", "data"},
		{307, "DELETE", "", true, "DELETE", ""},
		{308, "POST", "data", false, "", ""},
		{308, "GET", "", false, "", ""},
		{308, "HEAD", "", false, "", ""},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.code)+" "+tt.method, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, "http://"+publicHost+":8000/r/"+strconv.Itoa(tt.code)+"/2", strings.NewReader(tt.body))
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := urlfetch.ReadAll(resp); err != nil {
				t.Fatal(err)
			}
			if !tt.followed {
				if resp.StatusCode != tt.code || resp.Header.Get("Location") != "/r/308/1" {
					t.Fatalf("got %d to %q, want the %d itself", resp.StatusCode, resp.Header.Get("Location"), tt.code)
				}
				return
			}
			m, b := resp.Header.Get("X-Method"), resp.Header.Get("X-Body")
			if resp.StatusCode != http.StatusOK || m != tt.wantMethod || b != tt.wantBd {
				t.Fatalf("got %d, the server saw %s %q; want 200, %s %q", resp.StatusCode, m, b, tt.wantMethod, tt.wantBd)
			}
			if resp.Request.Method != tt.wantMethod {
				t.Errorf("the last request was a %s, want %s", resp.Request.Method, tt.wantMethod)
			}
		})
	}
}

// TestClientRedirectChecked checks that every hop is a RoundTrip checked
// again: a redirect to a refused destination, port or scheme is refused
// with no connection attempted.
func TestClientRedirectChecked(t *testing.T) {
	tests := []struct {
		to   string
		kind error
	}{
		{"http://10.0.0.1/", sockets.ErrDenied},
		{"http://" + privateHost + "/", sockets.ErrDenied},
		{"http://127.0.0.1:8080/", sockets.ErrDenied}, // loopback: never public
		{"http://" + publicHost + ":1000/", urlfetch.ErrInvalidURL},
		{"ftp://" + publicHost + "/", urlfetch.ErrInvalidURL},
	}
	for _, tt := range tests {
		t.Run(tt.to, func(t *testing.T) {
			// The default policy here: only the public test name reaches
			// the server, through the Connector.
			f := newFixture(t, redirectServer(t), func(tr *urlfetch.Transport) { tr.Dialer.Policy = nil })
			client := urlfetch.NewClient(f.tr)
			_, err := client.Get("http://" + publicHost + ":8000/to?u=" + url.QueryEscape(tt.to))
			mustKind(t, err, tt.kind)
			if !errors.Is(err, sockets.ErrDenied) {
				t.Errorf("error %v does not match sockets.ErrDenied", err)
			}
			if a := f.conn.Attempts(); len(a) != 1 || a[0].Addr().String() != publicAddr {
				t.Errorf("connection attempts %v, want only the first hop's", a)
			}
		})
	}
}

func TestNewClientNil(t *testing.T) {
	c := urlfetch.NewClient(nil)
	if _, ok := c.Transport.(*urlfetch.Transport); !ok || c.CheckRedirect == nil {
		t.Fatalf("NewClient(nil) = %+v", c)
	}
}
