package sockets_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketstest"
)

// An HTTP client dials with DialChecked: every connection is checked as
// DialContext checks it, and handed to net/http as it was made, without
// the Sockets API's *Conn, which an HTTP connection pool does not use.
func ExampleDialer_DialChecked() {
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
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialChecked}}
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

// With merges a policy and a resolver named beside a Dialer template, as
// both HTTP backends do: what is named wins, the template gives the rest.
func ExampleDialer_With() {
	tmpl := &sockets.Dialer{Timeout: 10 * time.Second}
	test := sockets.DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32"))

	d := tmpl.With(test, nil)
	fmt.Println(d.Policy == test, d.Timeout, tmpl.Policy == nil)
	// Output:
	// true 10s true
}
