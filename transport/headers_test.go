package transport_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/transport"
)

// headerRig builds a sockets Transport with cfg whose name www.example.com
// resolves to a public address that is connected to srv on loopback.
func headerRig(t *testing.T, srv *lab.Server, cfg transport.Config) *transport.Transport {
	t.Helper()
	seam := &lab.Connector{Target: srv.Addr()}
	cfg.Backend = transport.Sockets
	cfg.Dialer = sockets.Dialer{Resolver: lab.NewResolver(map[string][]string{"www.example.com": {"93.184.216.34"}}), Connect: seam.Connect}
	rt, err := transport.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.CloseIdleConnections)
	return rt
}

// readRequest reads one request's head from c, so that the client has sent
// its request before the server misbehaves.
func readRequest(c net.Conn) error {
	_, err := http.ReadRequest(bufio.NewReader(c))
	return err
}

// TestResponseHeaderTimeout: a server that reads the request and never
// answers fails the request by the configured header timeout, a timeout
// error that matches context.DeadlineExceeded, while the request's own
// context is still live, and it is not retried. The server never answers,
// so only the timeout can end the request; no timing luck is involved.
// (testing/synctest cannot fake the clock with a real socket: a goroutine
// blocked on one is not durably blocked, so the bubble's time would not
// advance; TestResponseHeaderTimeoutDefault uses an in-memory pipe.)
func TestResponseHeaderTimeout(t *testing.T) {
	srv := lab.NewServer(t, func(ctx context.Context, c net.Conn) {
		if readRequest(c) == nil {
			<-ctx.Done() // never answer
		}
	})
	const timeout = 100 * time.Millisecond
	rt := headerRig(t, srv, transport.Config{Sockets: transport.SocketsConfig{ResponseHeaderTimeout: timeout}, Retries: 2})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a backstop, never reached
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://www.example.com/", nil)
	start := time.Now()
	resp, err := rt.RoundTrip(req)
	elapsed := time.Since(start)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got %s from a server that never answers", resp.Status)
	}
	if ctx.Err() != nil {
		t.Fatalf("the request context ended (%v), not the header timeout", ctx.Err())
	}
	var nerr net.Error
	if !errors.As(err, &nerr) || !nerr.Timeout() || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v (%T): want a timeout that matches context.DeadlineExceeded", err, err)
	}
	if !strings.Contains(err.Error(), "timeout awaiting response headers") {
		t.Errorf("error %q does not say it was the header timeout", err)
	}
	if elapsed < timeout {
		t.Errorf("failed after %v, before the %v timeout", elapsed, timeout)
	}
	if n := len(srv.Accepted()); n != 1 {
		t.Errorf("the server accepted %d connections; want 1: a header timeout is not retried", n)
	}
}

// oversized returns a handler that reads a request and answers with one
// header field of n bytes.
func oversized(n int) func(ctx context.Context, c net.Conn) {
	return func(ctx context.Context, c net.Conn) {
		if readRequest(c) != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Big: %s\r\n\r\nok", strings.Repeat("a", n))
	}
}

// TestMaxResponseHeaderBytes: a response whose headers exceed the limit
// fails with net/http's error naming the limit; one within it is read.
// The default limit (1 MiB) is held too.
func TestMaxResponseHeaderBytes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		limit   int64 // Config.Sockets.MaxResponseHeaderBytes
		field   int   // size of the one header field's value
		wantErr string
	}{
		{"configured/within", 8 << 10, 4 << 10, ""},
		{"configured/over", 8 << 10, 64 << 10, "server response headers exceeded 8192 bytes"},
		{"default/within", 0, 512 << 10, ""},
		{"default/over", 0, 2 << 20, fmt.Sprintf("server response headers exceeded %d bytes", transport.DefaultMaxResponseHeaderBytes)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := lab.NewServer(t, oversized(tc.field))
			rt := headerRig(t, srv, transport.Config{Sockets: transport.SocketsConfig{MaxResponseHeaderBytes: tc.limit}})
			req, _ := http.NewRequest(http.MethodGet, "http://www.example.com/", nil)
			resp, err := rt.RoundTrip(req)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if body, _ := io.ReadAll(resp.Body); string(body) != "ok" || len(resp.Header.Get("X-Big")) != tc.field {
					t.Fatalf("body %q, X-Big of %d bytes; want ok and %d", body, len(resp.Header.Get("X-Big")), tc.field)
				}
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("headers of %d bytes accepted over a limit of %d", tc.field, tc.limit)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestHeaderLimitsConfig: zero means the defaults, a negative timeout means
// none, and a negative size is refused by New. The values are read from
// the backend's *http.Transport, which Install exposes.
func TestHeaderLimitsConfig(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cfg         transport.Config
		wantTimeout time.Duration
		wantBytes   int64
	}{
		{"zero: no timeout, as in net/http", transport.Config{}, 0, transport.DefaultMaxResponseHeaderBytes},
		{"set", transport.Config{Sockets: transport.SocketsConfig{ResponseHeaderTimeout: 5 * time.Second, MaxResponseHeaderBytes: 64 << 10}}, 5 * time.Second, 64 << 10},
		{"negative timeout: none", transport.Config{Sockets: transport.SocketsConfig{ResponseHeaderTimeout: -1}}, 0, transport.DefaultMaxResponseHeaderBytes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Backend = transport.Sockets
			rt, err := transport.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			restore := transport.Install(rt)
			ht := http.DefaultTransport.(*http.Transport)
			restore()
			if ht.ResponseHeaderTimeout != tc.wantTimeout || ht.MaxResponseHeaderBytes != tc.wantBytes {
				t.Errorf("ResponseHeaderTimeout %v, MaxResponseHeaderBytes %d; want %v, %d",
					ht.ResponseHeaderTimeout, ht.MaxResponseHeaderBytes, tc.wantTimeout, tc.wantBytes)
			}
		})
	}
	for _, b := range []transport.Backend{transport.URLFetch, transport.Sockets} {
		if _, err := transport.New(transport.Config{Backend: b, Sockets: transport.SocketsConfig{MaxResponseHeaderBytes: -1}}); err == nil {
			t.Errorf("%v: New accepted a negative MaxResponseHeaderBytes", b)
		}
	}
}

// TestMaxResponseHeaderBytesHTTP2: over HTTP/2 the limit is the header
// list size the client announces (SETTINGS_MAX_HEADER_LIST_SIZE) and
// enforces; a response within it is read, one over it fails the request
// with net/http's HTTP/2 error.
func TestMaxResponseHeaderBytesHTTP2(t *testing.T) {
	cert, roots := lab.NewCert("www.example.com")
	for _, tc := range []struct {
		name  string
		field int    // one field of this many bytes
		many  int    // and this many fields of 1000 bytes
		want  string // in the error; empty: no error
	}{
		{"within", 4 << 10, 0, ""},
		{"one field over", 64 << 10, 0, "COMPRESSION_ERROR"},                              // longer than any string the decoder takes
		{"many fields over", 10, 20, "response header list larger than advertised limit"}, // RFC 9113, section 10.5.1
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Big", strings.Repeat("a", tc.field))
				for i := range tc.many {
					w.Header().Set(fmt.Sprintf("X-Many-%d", i), strings.Repeat("b", 1000))
				}
				io.WriteString(w, "ok")
			}))
			srv.EnableHTTP2 = true
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
			srv.StartTLS()
			defer srv.Close()
			seam := &lab.Connector{Target: srv.Listener.Addr().String()}
			rt, err := transport.New(transport.Config{
				Backend: transport.Sockets,
				Dialer:  sockets.Dialer{Resolver: lab.NewResolver(map[string][]string{"www.example.com": {"93.184.216.34"}}), Connect: seam.Connect},
				TLS:     tlsconf.Config{RootCAs: roots},
				Sockets: transport.SocketsConfig{MaxResponseHeaderBytes: 8 << 10},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer rt.CloseIdleConnections()
			req, _ := http.NewRequest(http.MethodGet, "https://www.example.com/", nil)
			resp, err := rt.RoundTrip(req)
			if tc.want != "" {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("headers over the limit of 8 KiB accepted over HTTP/%d.%d", resp.ProtoMajor, resp.ProtoMinor)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %q, want one containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.ProtoMajor != 2 || len(resp.Header.Get("X-Big")) != tc.field {
				t.Fatalf("HTTP/%d with X-Big of %d bytes; want HTTP/2 and %d", resp.ProtoMajor, len(resp.Header.Get("X-Big")), tc.field)
			}
		})
	}
}
