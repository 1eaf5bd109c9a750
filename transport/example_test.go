package transport_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

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

	_, ok := transport.BackendOf(http.DefaultTransport)
	fmt.Println("http.DefaultTransport is Outbound's:", ok && http.DefaultTransport == rt)
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
			Backend:  b,
			Resolver: res,
			Dialer:   &sockets.Dialer{Connect: seam.Connect},
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		resp, err := (&http.Client{Transport: rt}).Get("http://storage.example/")
		var denied *sockets.DeniedError
		switch {
		case errors.As(err, &denied):
			fmt.Printf("%s: refused: %s\n", b, denied.Rule)
		case err != nil:
			fmt.Printf("%s: %v\n", b, err)
		default:
			resp.Body.Close()
			fmt.Printf("%s: %s\n", b, resp.Status)
		}
		rt.(*transport.Transport).CloseIdleConnections()
	}
	// Output:
	// urlfetch: 200 OK
	// sockets: refused: google range
}
