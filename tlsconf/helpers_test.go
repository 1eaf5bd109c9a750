package tlsconf_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/tlsconf"
	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// writeFile writes data to a new file in t's temporary directory and
// returns its path.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// serverResult is the outcome of one server-side handshake.
type serverResult struct {
	state tls.ConnectionState
	err   error
}

// startServer runs a TLS server on 127.0.0.1 until the test ends. For each
// connection it completes the handshake with cfg, writes "ok" and closes.
// Each handshake's outcome is sent on the returned channel, or dropped if
// nobody reads it.
func startServer(t *testing.T, cfg *tls.Config) (addr string, results <-chan serverResult) {
	t.Helper()
	out := make(chan serverResult, 16)
	srv := lab.NewTLSServer(t, cfg, func(_ context.Context, c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := c.(*tls.Conn)
		err := tc.Handshake()
		if err == nil {
			_, err = io.WriteString(tc, "ok")
		}
		if err == nil {
			err = tc.CloseWrite()
		}
		select {
		case out <- serverResult{state: tc.ConnectionState(), err: err}:
		default:
		}
	})
	return srv.Addr(), out
}

// startStallServer runs a server on 127.0.0.1 that accepts connections and
// never answers; it reports each accepted connection on the returned
// channel and holds it until the client closes it or the test ends.
func startStallServer(t *testing.T) (addr string, accepted <-chan struct{}) {
	t.Helper()
	out := make(chan struct{}, 16)
	srv := lab.NewServer(t, func(_ context.Context, c net.Conn) {
		select {
		case out <- struct{}{}:
		default:
		}
		io.Copy(io.Discard, c) // until the client or the server's Close closes it
	})
	return srv.Addr(), out
}

// dial connects to addr on loopback and runs tlsconf.Handshake. It returns
// the raw connection too, to check that a failed handshake closed it.
func dial(t *testing.T, ctx context.Context, base *tls.Config, addr, serverName string) (*tls.Conn, net.Conn, error) {
	t.Helper()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tlsconf.Handshake(ctx, raw, base, serverName)
	if tc != nil {
		t.Cleanup(func() { tc.Close() })
	}
	return tc, raw, err
}

// exchange handshakes and then reads the server's "ok", so that TLS 1.3
// session tickets and post-handshake alerts reach the client. Any error
// goes through tlsconf.AsCertificateError.
func exchange(t *testing.T, base *tls.Config, addr, serverName string) (tls.ConnectionState, error) {
	t.Helper()
	tc, _, err := dial(t, t.Context(), base, addr, serverName)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	got, err := io.ReadAll(tc)
	if err != nil {
		return tc.ConnectionState(), tlsconf.AsCertificateError(serverName, err)
	}
	if string(got) != "ok" {
		t.Fatalf("read %q from the server, want %q", got, "ok")
	}
	return tc.ConnectionState(), nil
}

// assertClosed fails unless conn has been closed on our side.
func assertClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	if _, err := conn.Write([]byte{0}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("after a failed handshake, Write on the connection = %v, want net.ErrClosed", err)
	}
}

func mustClient(t testing.TB, cfg tlsconf.Config, alpn ...string) *tls.Config {
	t.Helper()
	c, err := tlsconf.Client(cfg, alpn...)
	if err != nil {
		t.Fatalf("Client: %v", err)
	}
	return c
}

func poolOf(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}
