package transport_test

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/transport"
)

// TestInstallSocketsClone installs the sockets backend and clones
// http.DefaultTransport as much third-party code does: the clone keeps the
// checked dialer, so it is refused a private address, a metadata address
// and a loopback server without a connection being attempted, and reaches
// an allowed public address (mapped to loopback) through the same dialer.
// Restore puts net/http's transport back.
func TestInstallSocketsClone(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	res := lab.NewResolver(map[string][]string{
		"www.example.com":   {"93.184.216.34"}, // public
		"intranet.example":  {"10.0.0.1"},      // private (RFC 1918)
		"metadata.internal": {"169.254.169.254"},
	})
	seam := &lab.Connector{Target: srv.Listener.Addr().String()}
	rt, err := transport.New(transport.Config{
		Backend: transport.Sockets,
		Dialer:  sockets.Dialer{Resolver: res, Connect: seam.Connect},
	})
	if err != nil {
		t.Fatal(err)
	}

	orig := http.DefaultTransport
	restore := transport.Install(rt)
	restored := false
	defer func() {
		if !restored {
			restore()
		}
	}()

	ht, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		t.Fatalf("after Install, http.DefaultTransport is a %T, want *http.Transport", http.DefaultTransport)
	}
	if b, ok := transport.BackendOf(http.DefaultTransport); !ok || b != transport.Sockets {
		t.Errorf("BackendOf(http.DefaultTransport) = %v, %v; want sockets, true", b, ok)
	}
	clone := http.DefaultTransport.(*http.Transport).Clone()
	if clone.Proxy != nil {
		t.Error("the clone has a Proxy, which would carry connections past the check")
	}
	if clone.DialContext == nil || clone.DialTLSContext != nil {
		t.Error("the clone does not dial through DialContext alone")
	}
	if c := clone.TLSClientConfig; c == nil || c.MinVersion < tls.VersionTLS12 || c.InsecureSkipVerify {
		t.Errorf("the clone's TLS configuration is not tlsconf's secure default: %+v", c)
	}
	if clone.ResponseHeaderTimeout != 0 || clone.MaxResponseHeaderBytes != transport.DefaultMaxResponseHeaderBytes {
		t.Errorf("the clone's header limits are %v, %d; want the defaults", clone.ResponseHeaderTimeout, clone.MaxResponseHeaderBytes)
	}

	client := &http.Client{Transport: clone}
	for _, tc := range []struct {
		url  string
		rule sockets.Rule
	}{
		{"http://intranet.example/", sockets.RulePrivate},
		{"http://metadata.internal/computeMetadata/v1/", sockets.RuleLinkLocal},
		{"http://10.0.0.1/", sockets.RulePrivate},
		{srv.URL + "/", sockets.RuleLoopback}, // the real listener, by its address
	} {
		resp, err := client.Get(tc.url)
		if err == nil {
			resp.Body.Close()
			t.Errorf("GET %s through the clone: %s, want a refusal", tc.url, resp.Status)
			continue
		}
		var denied *sockets.DeniedError
		if !errors.As(err, &denied) || denied.Rule != tc.rule {
			t.Errorf("GET %s through the clone: %v, want a refusal by %v", tc.url, err, tc.rule)
		}
	}
	if a := seam.Attempts(); len(a) != 0 || hits.Load() != 0 {
		t.Fatalf("refusals attempted connections %v and reached the server %d times; want none", a, hits.Load())
	}

	// The clone reaches an allowed destination through the same dialer.
	resp, err := client.Get("http://www.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if a := seam.Attempts(); len(a) != 1 || a[0].String() != "93.184.216.34:80" {
		t.Errorf("connections %v, want one to 93.184.216.34:80", a)
	}
	clone.CloseIdleConnections()

	restore()
	restored = true
	if http.DefaultTransport != orig {
		t.Fatal("restore did not put back the previous transport")
	}
	if _, ok := transport.BackendOf(ht); ok {
		t.Error("BackendOf still recognises the sockets *http.Transport after restore")
	}
}

// TestInstallURLFetch: urlfetch's *Transport is installed as it is (its
// limits live in its RoundTrip), so http.DefaultTransport is no
// *http.Transport and the two-value type assertion says so.
func TestInstallURLFetch(t *testing.T) {
	rt, err := transport.New(transport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	restore := transport.Install(rt)
	defer restore()
	if http.DefaultTransport != rt {
		t.Fatalf("http.DefaultTransport is %T, want the urlfetch *Transport", http.DefaultTransport)
	}
	if _, ok := http.DefaultTransport.(*http.Transport); ok {
		t.Error("urlfetch's *Transport passed for an *http.Transport")
	}
	if b, ok := transport.BackendOf(http.DefaultTransport); !ok || b != transport.URLFetch {
		t.Errorf("BackendOf = %v, %v; want urlfetch, true", b, ok)
	}
}

// TestInstallNested: Install over Install restores in order, and BackendOf
// follows what each restore puts back.
func TestInstallNested(t *testing.T) {
	orig := http.DefaultTransport
	socks, err := transport.New(transport.Config{Backend: transport.Sockets})
	if err != nil {
		t.Fatal(err)
	}
	fetch, err := transport.New(transport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	restore1 := transport.Install(socks)
	inner := http.DefaultTransport
	restore2 := transport.Install(fetch)
	if http.DefaultTransport != fetch {
		t.Fatal("second Install did not set urlfetch")
	}
	restore2()
	if http.DefaultTransport != inner {
		t.Fatal("restore did not put back the sockets transport")
	}
	if b, ok := transport.BackendOf(http.DefaultTransport); !ok || b != transport.Sockets {
		t.Errorf("after the inner restore, BackendOf = %v, %v; want sockets, true", b, ok)
	}
	restore1()
	if http.DefaultTransport != orig {
		t.Fatal("restore did not put back net/http's transport")
	}
	if _, ok := transport.BackendOf(http.DefaultTransport); ok {
		t.Error("BackendOf recognises net/http's transport")
	}
}
