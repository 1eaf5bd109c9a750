package transport_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/transport"
)

// TestSafeClientResponseHeaderTimeout holds SafeClient to its header
// timeout, exactly, on synctest's clock: the connection is an
// in-memory pipe (through the Dialer's Connect seam, after the policy
// check), whose far end reads the request and never answers, so the
// bubble's time advances only by the timeout.
func TestSafeClientResponseHeaderTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		connect := func(_ context.Context, _ string, _ netip.AddrPort) (net.Conn, error) {
			client, server := net.Pipe()
			go func() {
				defer server.Close()
				if readRequest(server) == nil {
					<-ctx.Done() // never answer
				}
			}()
			return client, nil
		}
		client, err := transport.SafeClient(&sockets.Dialer{Resolver: lab.NewResolver(map[string][]string{"www.example.com": {"93.184.216.34"}}), Connect: connect})
		if err != nil {
			t.Fatal(err)
		}
		defer client.CloseIdleConnections()
		start := time.Now()
		resp, err := client.Get("http://www.example.com/")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got %s from a server that never answers", resp.Status)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v, want a timeout", err)
		}
		if got := time.Since(start); got != 10*time.Second {
			t.Errorf("failed after %v, want exactly 10s", got)
		}
	})
}
