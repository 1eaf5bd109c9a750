// Command defaulttransport installs Outbound's transport, chosen from the
// environment, as http.DefaultTransport at start-up, so that http.Get,
// http.DefaultClient and every third-party client built on them reach the
// network through it, and puts the previous transport back on exit.
//
//	go run ./examples/defaulttransport https://example.com/
//	GAE_USE_SOCKETS_HTTPLIB= go run ./examples/defaulttransport https://example.com/
//
// The first run uses the urlfetch backend, the second (the variable is
// present, although empty) the sockets backend. A destination the policy
// refuses, such as http://127.0.0.1/, fails with the rule that refused it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/transport"
)

func main() {
	log.SetFlags(0)
	timeout := flag.Duration("timeout", 30*time.Second, "time limit for the request")
	flag.Parse()
	url := "https://example.com/"
	if flag.NArg() > 0 {
		url = flag.Arg(0)
	}

	rt, err := transport.FromEnv()
	if err != nil {
		log.Fatal("defaulttransport: ", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	err = run(ctx, rt, url, os.Stdout)
	cancel()
	stop()
	if err != nil {
		os.Exit(report(err, os.Stderr))
	}
}

// report writes err to w, unless run has written it to its output already,
// and returns the exit status for it.
func report(err error, w io.Writer) int {
	var shown *shownError
	if !errors.As(err, &shown) {
		fmt.Fprintln(w, "defaulttransport:", err)
	}
	return 1
}

// shownError is an error run has already written to its output (a refusal,
// with the rule that refused), so that main does not write it twice.
type shownError struct{ err error }

func (e *shownError) Error() string { return e.err.Error() }
func (e *shownError) Unwrap() error { return e.err }

// run installs rt as http.DefaultTransport, fetches url with
// http.DefaultClient as any library would, and restores the previous
// transport before it returns.
func run(ctx context.Context, rt http.RoundTripper, url string, out io.Writer) error {
	restore := transport.Install(rt)
	defer func() {
		restore()
		if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}()
	if backend, ok := transport.BackendOf(http.DefaultTransport); ok {
		fmt.Fprintf(out, "http.DefaultTransport is Outbound's %s backend\n", backend)
	}

	// From here on, code that knows nothing of Outbound uses it.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var denied *sockets.DeniedError
		if errors.As(err, &denied) {
			fmt.Fprintf(out, "GET %s: refused by rule %q\n", url, denied.Rule)
			return &shownError{err}
		}
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "GET %s: %s, %d bytes\n", url, resp.Status, n)
	return nil
}
