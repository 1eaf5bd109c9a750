package transport_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketstest"
	"github.com/outbound-go/outbound/transport"
)

// A deployment installs the transport its environment asks for as
// http.DefaultTransport at start-up, and puts the old one back on exit.
func ExampleInstall() {
	rt, err := transport.FromEnv()
	if err != nil {
		fmt.Println(err)
		return
	}
	restore := transport.Install(rt)
	defer restore()

	// For the sockets backend, http.DefaultTransport is the backend's own
	// *http.Transport, which BackendOf recognises too.
	b, ok := transport.BackendOf(http.DefaultTransport)
	fmt.Println("http.DefaultTransport is Outbound's:", ok && b == rt.Backend())
	// Output: http.DefaultTransport is Outbound's: true
}

// The two backends differ on Google's ranges: urlfetch reaches them, the
// sockets policy refuses them. Names resolve through a test resolver and
// allowed connections go to a loopback server, so nothing leaves the
// machine.
func ExampleNew() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	res := socketstest.NewResolver(map[string][]string{"storage.example": {"142.250.64.100"}})
	seam := &socketstest.Connector{Target: srv.Listener.Addr().String()}

	for _, b := range []transport.Backend{transport.URLFetch, transport.Sockets} {
		rt, err := transport.New(transport.Config{
			Backend: b,
			Dialer:  sockets.Dialer{Resolver: res, Connect: seam.Connect},
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		resp, err := (&http.Client{Transport: rt}).Get("http://storage.example/")
		var denied *sockets.DeniedError
		switch {
		case errors.As(err, &denied):
			fmt.Printf("%s: refused (%s): %s\n", b, denied.ErrorType(), denied.Rule)
		case err != nil:
			fmt.Printf("%s: %v\n", b, err)
		default:
			resp.Body.Close()
			fmt.Printf("%s: %s\n", b, resp.Status)
		}
		rt.CloseIdleConnections()
	}
	// Output:
	// urlfetch: 200 OK
	// sockets: refused (google): google range
}

// Retryable is the rule Config.Retries follows, for code that retries on
// its own: an idempotent request (or one with an Idempotency-Key) after a
// transient failure, never after a refusal or a deadline.
func ExampleRetryable() {
	get, _ := http.NewRequest(http.MethodGet, "https://www.example.com/", nil)
	post, _ := http.NewRequest(http.MethodPost, "https://www.example.com/orders", strings.NewReader(`{"item":42}`))
	keyed := post.Clone(context.Background())
	keyed.Header.Set("Idempotency-Key", "order-42")
	unavailable := &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}}

	fmt.Println("GET, 503:", transport.Retryable(get, unavailable, nil))
	fmt.Println("POST, 503:", transport.Retryable(post, unavailable, nil))
	fmt.Println("POST with Idempotency-Key, 503:", transport.Retryable(keyed, unavailable, nil))
	fmt.Println("GET, refused:", transport.Retryable(get, nil, fmt.Errorf("dial: %w", sockets.ErrDenied)))
	fmt.Println("GET, deadline:", transport.Retryable(get, nil, context.DeadlineExceeded))
	// Output:
	// GET, 503: true
	// POST, 503: false
	// POST with Idempotency-Key, 503: true
	// GET, refused: false
	// GET, deadline: false
}

// A service that fetches URLs for its tenants derives one Transport per
// tenant from a base: each tenant's policy is part of the Transport it
// holds, and its connections stay in a pool of its own. A nil policy is
// the backend's default. Names resolve through a test resolver and allowed
// connections go to a loopback server, so nothing leaves the machine.
func ExampleTransport_ForPolicy() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	base, err := transport.New(transport.Config{
		Backend: transport.Sockets,
		Dialer: sockets.Dialer{
			Resolver: socketstest.NewResolver(map[string][]string{
				"api.partner.example": {"93.184.216.34"},
				"www.example.com":     {"93.184.216.35"},
			}),
			Connect: (&socketstest.Connector{Target: srv.Listener.Addr().String()}).Connect,
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer base.CloseIdleConnections()

	for _, tenant := range []struct {
		name   string
		policy *sockets.Policy
	}{
		{"open", nil},
		{"partner-only", sockets.DefaultPolicy().AllowHosts("api.partner.example")},
	} {
		rt, err := base.ForPolicy(tenant.policy)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, url := range []string{"http://api.partner.example/", "http://www.example.com/"} {
			resp, err := (&http.Client{Transport: rt}).Get(url)
			var denied *sockets.DeniedError
			switch {
			case errors.As(err, &denied):
				fmt.Printf("%s: %s: refused (%s)\n", tenant.name, url, denied.ErrorType())
			case err != nil:
				fmt.Printf("%s: %s: %v\n", tenant.name, url, err)
			default:
				resp.Body.Close()
				fmt.Printf("%s: %s: %s\n", tenant.name, url, resp.Status)
			}
		}
		rt.CloseIdleConnections()
	}
	// Output:
	// open: http://api.partner.example/: 200 OK
	// open: http://www.example.com/: 200 OK
	// partner-only: http://api.partner.example/: 200 OK
	// partner-only: http://www.example.com/: refused (host_not_allowed)
}
