package transport_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketstest"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/transport"
)

// BenchmarkSocketsVsPlain compares the sockets backend with a plain
// net/http.Transport in the same run, on loopback, over TLS: keep-alive and
// new-connection GETs of 1 KiB, with HTTP/1.1 and with HTTP/2. The target:
// at least 0.97 times plain's throughput with keep-alive.
//
// The two clients run in lock-step: each iteration makes one request with
// each, in alternating order, and times each. The benchmark reports the
// sockets backend's throughput as a multiple of plain's (sockets-vs-plain:
// 1 means as fast) and each client's time per request; ns/op is the sum
// of both. A machine that gets busier during the run slows both alike.
// With keep-alive, both clients' idle connections are closed every 256
// rounds, so that each is measured over many connections (one loopback
// connection can be much faster than the next for its whole life). A new
// connection is one made after CloseIdleConnections, with its TLS
// handshake, resumed from the session cache on both sides.
//
// The sockets backend goes through its real policy path: a test resolver
// answers example.com with a public address, the policy checks it, the
// connect seam dials the loopback server. Plain net/http dials the same
// server with a net.Dialer and is configured as the backend's
// http.Transport is: 16 idle connections per host, HTTP/1.1 and HTTP/2, a
// TLS session cache. The full suite, with the urlfetch backend, larger
// bodies and allocation counts, is in the module's root (BENCHMARKS.md).
func BenchmarkSocketsVsPlain(b *testing.B) {
	body := make([]byte, 1<<10)
	for _, proto := range []string{"h1", "h2"} {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write(body)
		}))
		srv.EnableHTTP2 = proto == "h2"
		srv.StartTLS()
		b.Cleanup(srv.Close)
		target := srv.Listener.Addr().String()
		roots := x509.NewCertPool()
		roots.AddCert(srv.Certificate())
		for _, conn := range []string{"keepalive", "new"} {
			b.Run("proto="+proto+"/conn="+conn, func(b *testing.B) {
				var protos http.Protocols
				protos.SetHTTP1(true)
				protos.SetHTTP2(true)
				plain := &http.Transport{
					DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
						var d net.Dialer
						return d.DialContext(ctx, network, target)
					},
					TLSClientConfig:     &tls.Config{RootCAs: roots, ClientSessionCache: tls.NewLRUClientSessionCache(0)},
					TLSHandshakeTimeout: 10 * time.Second,
					MaxIdleConns:        100,
					MaxIdleConnsPerHost: 16,
					IdleConnTimeout:     90 * time.Second,
					Protocols:           &protos,
				}
				socks, err := transport.New(transport.Config{
					Backend:  transport.Sockets,
					Resolver: socketstest.NewResolver(map[string][]string{"example.com": {"93.184.216.34"}}),
					Dialer:   &sockets.Dialer{Connect: (&socketstest.Connector{Target: target}).Connect},
					TLS:      tlsconf.Config{RootCAs: roots},
				})
				if err != nil {
					b.Fatal(err)
				}
				clients := []struct {
					rt        http.RoundTripper
					closeIdle func()
				}{{plain, plain.CloseIdleConnections}, {socks, socks.CloseIdleConnections}}
				defer plain.CloseIdleConnections()
				defer socks.CloseIdleConnections()

				req, _ := http.NewRequest(http.MethodGet, "https://example.com/", nil)
				fetch := func(rt http.RoundTripper) {
					resp, err := rt.RoundTrip(req)
					if err != nil {
						b.Fatal(err)
					}
					n, err := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err != nil || n != int64(len(body)) {
						b.Fatalf("read %d bytes, %v", n, err)
					}
					if want := map[string]int{"h1": 1, "h2": 2}[proto]; resp.ProtoMajor != want {
						b.Fatalf("HTTP/%d, want HTTP/%d", resp.ProtoMajor, want)
					}
				}
				for _, c := range clients {
					fetch(c.rt) // warm-up: a connection in the pool, a session in the cache
				}
				var total [2]time.Duration
				i := 0
				for b.Loop() {
					for k := range clients {
						j := (i + k) % len(clients)
						start := time.Now()
						fetch(clients[j].rt)
						if conn == "new" {
							clients[j].closeIdle()
						}
						total[j] += time.Since(start)
					}
					i++
					if conn == "keepalive" && i%256 == 0 {
						for _, c := range clients {
							c.closeIdle()
						}
					}
				}
				b.ReportMetric(float64(total[0])/float64(total[1]), "sockets-vs-plain")
				b.ReportMetric(float64(total[0])/float64(b.N), "plain-ns/req")
				b.ReportMetric(float64(total[1])/float64(b.N), "sockets-ns/req")
			})
		}
	}
}

// BenchmarkRetriesOnSuccess measures what turning retries on costs a
// request that succeeds the first time: nothing but a check of the method
// and body, no copy of the request. Both transports run in lock-step, as in
// BenchmarkSocketsVsPlain, over keep-alive HTTP/1.1 on loopback; the
// benchmark reports the retrying transport's throughput as a multiple of
// the other's (retries-vs-none) and each one's allocations per request.
func BenchmarkRetriesOnSuccess(b *testing.B) {
	body := make([]byte, 1<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(body)
	}))
	b.Cleanup(srv.Close)
	build := func(retries int) *transport.Transport {
		rt, err := transport.New(transport.Config{
			Backend:  transport.Sockets,
			Resolver: socketstest.NewResolver(map[string][]string{"example.com": {"93.184.216.34"}}),
			Dialer:   &sockets.Dialer{Connect: (&socketstest.Connector{Target: srv.Listener.Addr().String()}).Connect},
			Retries:  retries,
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(rt.CloseIdleConnections)
		return rt
	}
	clients := []*transport.Transport{build(0), build(3)}
	req, _ := http.NewRequest(http.MethodGet, "http://example.com/", nil)
	fetch := func(rt http.RoundTripper) {
		resp, err := rt.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != int64(len(body)) {
			b.Fatalf("read %d bytes, %v", n, err)
		}
	}
	for _, c := range clients {
		fetch(c)
	}
	var total [2]time.Duration
	i := 0
	for b.Loop() {
		for k := range clients {
			j := (i + k) % len(clients)
			start := time.Now()
			fetch(clients[j])
			total[j] += time.Since(start)
		}
		i++
	}
	b.ReportMetric(float64(total[0])/float64(total[1]), "retries-vs-none")
	// Allocations of a whole exchange, the loopback server's included,
	// counted apart from the timed loop.
	b.ReportMetric(testing.AllocsPerRun(100, func() { fetch(clients[0]) }), "none-allocs/req")
	b.ReportMetric(testing.AllocsPerRun(100, func() { fetch(clients[1]) }), "retries-allocs/req")
}
