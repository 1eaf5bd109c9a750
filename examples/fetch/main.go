// Command fetch is a small curl: it fetches a URL through Outbound's
// transport chosen from the environment, and prints the status, the
// backend used, and for a refusal the exact rule that refused it.
//
//	go run ./examples/fetch https://example.com/
//	GAE_USE_SOCKETS_HTTPLIB= go run ./examples/fetch https://example.com/
//
// With no URL it runs an offline demonstration against a server it starts on
// loopback: a fetch through each backend, a urlfetch limit being hit, and a
// refused private destination, with the reason. No packet leaves the
// machine: the demonstration resolves its names with a fixed table and
// connects every allowed "public" address to the loopback server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketstest"
	"github.com/outbound-go/outbound/transport"
	"github.com/outbound-go/outbound/urlfetch"
)

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

// cli runs the command with args and returns its exit status: 0 on
// success, 1 when the fetch or the demonstration failed, 2 for a usage
// error. Every error is written once, to stdout when fetch reports it in
// its line, to stderr otherwise.
func cli(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fetch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: fetch [-timeout d] [URL]\nWith no URL, runs an offline demonstration.\n")
		fs.PrintDefaults()
	}
	timeout := fs.Duration("timeout", 30*time.Second, "overall time limit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var err error
	switch fs.NArg() {
	case 0:
		err = demo(ctx, stdout)
	case 1:
		var rt http.RoundTripper
		rt, err = transport.FromEnv()
		if err == nil {
			err = fetch(ctx, stdout, rt, fs.Arg(0))
		}
	default:
		fs.Usage()
		return 2
	}
	if err != nil {
		var shown *shownError
		if !errors.As(err, &shown) {
			fmt.Fprintln(stderr, "fetch:", err)
		}
		return 1
	}
	return 0
}

// shownError is an error fetch has already written in its line of output,
// so that cli does not write it a second time.
type shownError struct{ err error }

func (e *shownError) Error() string { return e.err.Error() }
func (e *shownError) Unwrap() error { return e.err }

// fetch GETs url through rt and writes one line saying what happened. An
// error is in that line, and the error returned is a *shownError.
func fetch(ctx context.Context, w io.Writer, rt http.RoundTripper, url string) error {
	backend, _ := transport.BackendOf(rt)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		fmt.Fprintf(w, "%-8s GET %s: %s\n", backend, url, describe(err))
		return &shownError{err}
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		fmt.Fprintf(w, "%-8s GET %s: %s, body cut after %d bytes: %s\n", backend, url, resp.Status, n, describe(err))
		return &shownError{err}
	}
	fmt.Fprintf(w, "%-8s GET %s: %s, %d bytes\n", backend, url, resp.Status, n)
	return nil
}

// describe says why a request failed, naming the rule for a refusal.
func describe(err error) string {
	var (
		denied *sockets.DeniedError
		uerr   *url.Error
	)
	switch {
	case errors.As(err, &denied):
		// Both backends refuse with a *sockets.DeniedError: the policy's
		// rules and urlfetch's own (scheme, method, port). A rule that
		// needs no address refuses before any lookup: there is no
		// address to show, only the host.
		if denied.Addr.IsValid() {
			return fmt.Sprintf("refused by rule %q (address %v)", denied.Rule, denied.Addr)
		}
		if denied.Host != "" {
			return fmt.Sprintf("refused by rule %q (host %s, before any lookup)", denied.Rule, denied.Host)
		}
		return fmt.Sprintf("refused by rule %q", denied.Rule)
	case errors.Is(err, urlfetch.ErrPayloadTooLarge):
		return "refused by urlfetch: request body over 10 MiB, nothing sent"
	case errors.Is(err, urlfetch.ErrResponseTooLarge):
		return "urlfetch: response cut at 32 MiB"
	case errors.As(err, &uerr):
		return uerr.Err.Error() // the method and URL are printed already
	}
	return err.Error()
}

// demo runs the offline demonstration.
func demo(ctx context.Context, w io.Writer) error {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "hello from the demo server (%s %s)\n", r.Method, r.URL.Path)
	}))
	defer srv.Close()

	// Names resolve through a fixed table; allowed addresses are connected
	// to the loopback server above.
	res := socketstest.NewResolver(map[string][]string{
		"www.example.com":   {"93.184.216.34"},  // a public address
		"intranet.example":  {"10.0.0.1"},       // private (RFC 1918)
		"storage.example":   {"142.250.64.100"}, // inside Google's ranges
		"metadata.internal": {"169.254.169.254"},
	})
	connector := &socketstest.Connector{Target: srv.Listener.Addr().String()}
	build := func(b transport.Backend) (http.RoundTripper, error) {
		return transport.New(transport.Config{
			Backend:  b,
			Dialer:   sockets.Dialer{Resolver: res, Connect: connector.Connect},
			URLFetch: transport.URLFetchConfig{AppID: "demo"},
		})
	}

	fmt.Fprintln(w, "Outbound offline demonstration: names resolve through a fixed table,")
	fmt.Fprintln(w, "allowed addresses connect to a server on", srv.Listener.Addr())
	fmt.Fprintln(w)
	for _, b := range []transport.Backend{transport.URLFetch, transport.Sockets} {
		rt, err := build(b)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "== %s backend\n", b)
		for _, u := range []string{
			"http://www.example.com/",
			"http://intranet.example/",
			"http://metadata.internal/computeMetadata/v1/",
			"http://storage.example/",
			"http://www.example.com:25/",
		} {
			fetch(ctx, w, rt, u) // the error is printed; the demonstration goes on
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintln(w, "== a urlfetch limit: an 11 MiB upload")
	rt, err := build(transport.URLFetch)
	if err != nil {
		return err
	}
	body := strings.NewReader(strings.Repeat("x", 11<<20))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://www.example.com/upload", body)
	if err != nil {
		return err
	}
	resp, err := rt.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
		return errors.New("the 11 MiB upload was not refused")
	}
	fmt.Fprintf(w, "urlfetch POST 11 MiB: %s\n", describe(err))
	fmt.Fprintf(w, "\nconnections made: %d, all to allowed public addresses: %v\n", len(connector.Attempts()), connector.Attempts())
	return nil
}
