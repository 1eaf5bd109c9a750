// Command webhook sends a webhook the way a service that fetches URLs for
// others should: the URL comes from a user, so the client is
// transport.SafeClient, whose every connection is checked by the sockets
// policy and every step bounded in time; a failure is sorted by
// transport.Classify (refused, timeout, DNS, ...), the full error is
// logged, and the caller is told only what it may know: a refusal names
// the rule, never the internal address the name resolved to.
//
//	go run ./examples/webhook                          # offline demonstration
//	go run ./examples/webhook https://example.com/hook # a real delivery
//
// With no URL it runs an offline demonstration: names resolve through a
// fixed table (socketstest.Resolver), and each allowed "public" address is
// connected to a receiver on loopback (socketstest.Connector), so no
// packet leaves the machine. It delivers to a public receiver, is refused
// a private and a metadata address, times out on a receiver that never
// answers, and fails to resolve an unknown name.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketstest"
	"github.com/outbound-go/outbound/transport"
)

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

// cli runs the command and returns its exit status: 0 on success, 1 when
// the delivery or the demonstration failed, 2 for a usage error.
func cli(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: webhook [URL]\nWith no URL, runs an offline demonstration.\n")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx := context.Background()
	switch fs.NArg() {
	case 0:
		if err := demo(ctx, stdout); err != nil {
			fmt.Fprintln(stderr, "webhook:", err)
			return 1
		}
		return 0
	case 1:
		client, err := newClient(nil)
		if err != nil {
			fmt.Fprintln(stderr, "webhook:", err)
			return 1
		}
		status, msg := send(ctx, client, log, fs.Arg(0), []byte(`{"event":"ping"}`))
		fmt.Fprintf(stdout, "POST %s: %s\n", fs.Arg(0), msg)
		if status == 0 {
			return 1
		}
		return 0
	}
	fs.Usage()
	return 2
}

// newClient returns the client for URLs that users give:
// transport.SafeClient, the sockets backend with the default policy and
// the machine's own addresses refused (Policy.DenySelf), so
// that every connection, each redirect hop's included, is checked against
// the policy at connect time, with a bound on each step (5 seconds for the
// lookup and the connect, 10 for the response's headers, which must fit in
// 64 KiB, 30 for the whole delivery). d is the place for a test's
// Resolver and Connect seam; a deployment passes nil. Redirects are not
// followed: a webhook's receiver answers, it does not send the sender
// elsewhere.
func newClient(d *sockets.Dialer) (*http.Client, error) {
	client, err := transport.SafeClient(d)
	if err != nil {
		return nil, err
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}
	return client, nil
}

// callerMessage is what the service tells the user who registered the URL.
// A refusal names the rule with DeniedError.Redacted: the host as the user
// wrote it and the rule, never the address it resolved to, so the service
// cannot be used to map the internal network through its DNS. Other
// failures say only what kind they were; the details go to the log.
func callerMessage(err error) string {
	switch transport.Classify(err) {
	case transport.Refused:
		if denied, ok := errors.AsType[*sockets.DeniedError](err); ok {
			return "destination not allowed: " + denied.Redacted()
		}
		return "destination not allowed"
	case transport.Certificate:
		return "the receiver's TLS certificate is not valid"
	case transport.Timeout:
		return "the receiver did not answer in time"
	case transport.DNS:
		return "the receiver's host name did not resolve"
	}
	return "the delivery failed"
}

// send POSTs payload to url and returns the receiver's status, or 0 and
// the message for the caller. The full error, with the resolved address
// of a refusal, goes to log only, with its class and, for a refusal, the
// rule's code (DeniedError.ErrorType).
func send(ctx context.Context, client *http.Client, log *slog.Logger, url string, payload []byte) (status int, msg string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return 0, "invalid URL"
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		attrs := []any{"url", url, "class", transport.Classify(err), "err", err}
		var denied *sockets.DeniedError
		if errors.As(err, &denied) {
			attrs = append(attrs, "rule", denied.ErrorType())
		}
		log.Warn("webhook not delivered", attrs...)
		return 0, callerMessage(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, "delivered, " + resp.Status
}

// demo runs the offline demonstration. For each delivery, w gets the log
// line of a failure, with the full error, then the line the caller sees.
func demo(ctx context.Context, w io.Writer) error {
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{} // the same output on every run
			}
			return a
		},
	}))
	var (
		mu  sync.Mutex
		got []string // payloads the receiver got
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	// A receiver that takes the request and never answers.
	stuck := make(chan struct{})
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stuck:
		case <-r.Context().Done():
		}
	}))
	defer silent.Close()
	defer close(stuck)

	res := socketstest.NewResolver(map[string][]string{
		"hooks.example.com":    {"93.184.216.34"},   // public
		"slow.example.com":     {"93.184.216.35"},   // public, never answers
		"intranet.example.com": {"10.0.0.5"},        // private (RFC 1918)
		"metadata.example.com": {"169.254.169.254"}, // link-local: the cloud metadata server
	})
	seam := &socketstest.Connector{
		Target: receiver.Listener.Addr().String(),
		Routes: map[netip.AddrPort]string{netip.MustParseAddrPort("93.184.216.35:80"): silent.Listener.Addr().String()},
	}
	client, err := newClient(&sockets.Dialer{Resolver: res, Connect: seam.Connect})
	if err != nil {
		return err
	}
	client.Timeout = time.Second // the demonstration's, to end quickly
	defer client.CloseIdleConnections()

	payload := []byte(`{"event":"invoice.paid","id":42}`)
	for _, url := range []string{
		"http://hooks.example.com/incoming",
		"http://intranet.example.com/admin",
		"http://metadata.example.com/computeMetadata/v1/",
		"http://10.0.0.5/",
		"http://slow.example.com/incoming",
		"http://unknown.example.com/incoming",
	} {
		_, msg := send(ctx, client, log, url, payload)
		fmt.Fprintf(w, "caller sees: POST %s: %s\n\n", url, msg)
	}
	mu.Lock()
	fmt.Fprintf(w, "receiver got %d webhook(s): %s\n", len(got), got)
	mu.Unlock()
	fmt.Fprintf(w, "connections made: %v\n", seam.Attempts())
	return nil
}
