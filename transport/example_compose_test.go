package transport_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	retryablehttp "github.com/hashicorp/go-retryablehttp"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketstest"
	"github.com/outbound-go/outbound/transport"
)

// A service that fetches URLs its users give builds one SafeClient. Here
// the user's names resolve through a test resolver and allowed connections
// go to a loopback server, so nothing leaves the machine; in production
// SafeClient(nil) uses the system resolver.
func ExampleSafeClient() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "delivered") }))
	defer srv.Close()
	seam := &socketstest.Connector{Target: srv.Listener.Addr().String()}
	client, err := transport.SafeClient(&sockets.Dialer{
		Resolver: socketstest.NewResolver(map[string][]string{
			"hooks.example.com": {"93.184.216.34"},   // public
			"evil.example.com":  {"169.254.169.254"}, // the cloud metadata server
		}),
		Connect: seam.Connect,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, u := range []string{"http://hooks.example.com/", "http://evil.example.com/latest/meta-data/"} {
		resp, err := client.Get(u)
		if err != nil {
			fmt.Println(u, "->", transport.Classify(err))
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(u, "->", string(b))
	}
	// Output:
	// http://hooks.example.com/ -> delivered
	// http://evil.example.com/latest/meta-data/ -> refused
}

// Classify sorts any failure of either backend into one small set. (The
// connect seam sends anything the policy would allow to a closed loopback
// port, so that this example never reaches the network.)
func ExampleClassify() {
	seam := &socketstest.Connector{Target: "127.0.0.1:9"}
	client, err := transport.SafeClient(&sockets.Dialer{Connect: seam.Connect})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = client.Get("http://10.0.0.1/") // an IP literal: no lookup, no connection
	switch c := transport.Classify(err); c {
	case transport.Refused:
		fmt.Println("refused: tell the user, never retry")
	default:
		fmt.Println(c)
	}
	// Output: refused: tell the user, never retry
}

// A go-retryablehttp client over a Transport takes CheckRetry, so that a
// refusal is tried once, never five times.
func ExampleCheckRetry() {
	var tries int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tries++
		if tries < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	seam := &socketstest.Connector{Target: srv.Listener.Addr().String()}
	rt, err := transport.New(transport.Config{
		Backend: transport.Sockets,
		Dialer: sockets.Dialer{
			Resolver: socketstest.NewResolver(map[string][]string{"api.example.com": {"93.184.216.34"}}),
			Connect:  seam.Connect,
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	rc := retryablehttp.NewClient()
	rc.HTTPClient = &http.Client{Transport: rt}
	rc.CheckRetry = transport.CheckRetry
	rc.RetryWaitMin, rc.RetryWaitMax = time.Millisecond, time.Millisecond
	rc.Logger = nil

	resp, err := rc.Get("http://api.example.com/")
	if err == nil {
		resp.Body.Close()
		fmt.Println(resp.StatusCode, "after", tries, "tries")
	}
	_, err = rc.Get("http://192.168.0.1/")
	fmt.Println(transport.Classify(err), "with no connection attempted; connections in all:", len(seam.Attempts()))
	// Output:
	// 200 after 3 tries
	// refused with no connection attempted; connections in all: 1
}
