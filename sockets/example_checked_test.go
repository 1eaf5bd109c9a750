package sockets_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketstest"
)

// An HTTP client dials with DialContext: every connection is checked, and
// handed to net/http as it was made.
func ExampleDialer_DialContext() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	defer srv.Close()

	// www.example.com resolves to a public address, which the policy
	// allows; the test seam then connects to the loopback server instead.
	d := &sockets.Dialer{
		Resolver: socketstest.NewResolver(map[string][]string{
			"www.example.com":  {"93.184.216.34"},
			"intranet.example": {"10.0.0.1"},
		}),
		Connect: (&socketstest.Connector{Target: srv.Listener.Addr().String()}).Connect,
	}
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	defer client.CloseIdleConnections()

	resp, err := client.Get("http://www.example.com/")
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status, string(body))

	_, err = client.Get("http://intranet.example/")
	fmt.Println(errors.Is(err, sockets.ErrDenied))
	// Output:
	// 200 OK hello
	// true
}
