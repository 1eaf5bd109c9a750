package urlfetch_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketstest"
	"github.com/outbound-go/outbound/urlfetch"
)

// A Transport fetches like App Engine's URL Fetch. This one is widened to
// reach a loopback test server; the default policy refuses loopback.
func ExampleTransport() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello, %s", r.Header.Get("User-Agent"))
	}))
	defer srv.Close()

	tr := &urlfetch.Transport{
		Dialer: sockets.Dialer{Policy: sockets.PublicPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32"))},
		AppID:  "my-app",
		OnStats: func(req *http.Request, s urlfetch.Stats) {
			fmt.Println("sent and received:", s.BytesSent > 0, s.BytesReceived > 0)
		},
	}
	defer tr.CloseIdleConnections()
	client := urlfetch.NewClient(tr)

	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("User-Agent", "example/1.0")
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, err := urlfetch.ReadAll(resp)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Status)
	fmt.Println(string(body))
	// Output:
	// sent and received: true true
	// 200 OK
	// hello, example/1.0 AppEngine-Google; (+http://code.google.com/appengine; appid: my-app)
}

// Refusals are typed errors that name the rule; they are never worth a
// retry.
func ExampleTransport_refusals() {
	// App Engine's rules, with a connect step that refuses everything, so
	// that nothing could leave the machine if a rule ever let one through.
	tr := urlfetch.Transport{
		Dialer: sockets.Dialer{Resolver: new(socketstest.Resolver), Connect: new(socketstest.Connector).Connect},
	}
	for _, raw := range []string{
		"ftp://example.com/file",
		"http://example.com:1000/",
		"http://10.0.0.1/",
	} {
		req, _ := http.NewRequest(http.MethodGet, raw, nil)
		_, err := tr.RoundTrip(req)
		var denied *sockets.DeniedError
		if errors.As(err, &denied) {
			fmt.Printf("%s: refused (%s): %s\n", raw, denied.ErrorType(), denied.Rule)
		}
		fmt.Println("  ErrDenied:", errors.Is(err, sockets.ErrDenied))
	}
	// Output:
	// ftp://example.com/file: refused (scheme): scheme not allowed (only http and https)
	//   ErrDenied: true
	// http://example.com:1000/: refused (port): port not allowed (only 80-90, 440-450, 1024-65535)
	//   ErrDenied: true
	// http://10.0.0.1/: refused (private): private (RFC 1918)
	//   ErrDenied: true
}

// A body longer than 32 MiB ends with ErrResponseTooLarge after exactly
// the limit, never silently.
func ExampleReadAll() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(urlfetch.MaxResponseBody+1))
		io.CopyN(w, zeros{}, urlfetch.MaxResponseBody+1)
	}))
	defer srv.Close()
	tr := &urlfetch.Transport{Dialer: sockets.Dialer{Policy: sockets.PublicPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32"))}}
	defer tr.CloseIdleConnections()

	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, err := urlfetch.ReadAll(resp)
	fmt.Println(len(body), errors.Is(err, urlfetch.ErrResponseTooLarge))
	// Output:
	// 33554432 true
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// Code ported from Python's "except urlfetch.DownloadError:" and "except
// urlfetch.InvalidURLError:" keeps its shape: the sentinels have the
// relations of App Engine's error classes.
func ExampleErrDownload() {
	tr := urlfetch.Transport{
		// A resolver that knows no name.
		Dialer: sockets.Dialer{Resolver: new(socketstest.Resolver), Connect: new(socketstest.Connector).Connect},
	}
	get, _ := http.NewRequest(http.MethodGet, "http://www.example.com/", nil)
	_, err := tr.RoundTrip(get)
	fmt.Println("DNS failure: download error:", errors.Is(err, urlfetch.ErrDownload), "invalid url:", errors.Is(err, urlfetch.ErrInvalidURL))

	post, _ := http.NewRequest(http.MethodPost, "http://www.example.com/", io.LimitReader(zeros{}, urlfetch.MaxRequestBody+1))
	_, err = tr.RoundTrip(post)
	fmt.Println("payload too large: download error:", errors.Is(err, urlfetch.ErrDownload), "invalid url:", errors.Is(err, urlfetch.ErrInvalidURL))
	// Output:
	// DNS failure: download error: true invalid url: false
	// payload too large: download error: false invalid url: true
}
