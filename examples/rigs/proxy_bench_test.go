package rigs_test

// BenchmarkProxy: throughput through a real proxy, Squid and smokescreen
// (proxy_rig_test.go), of each backend against plain net/http through the
// same proxy, in lock-step: every round makes one request with each
// client, in turn, so that the machine's noise falls on all alike. A
// second plain client, the calibration twin, runs in the same rounds.
// Each ratio ("-vs-plain", plain's time over the client's: 1 is plain's
// speed, above 1 faster) is the median over blocks of rounds, reported as
// a metric and logged with its 95% confidence interval beside the twin's
// band, as BenchmarkRatio does (reportRatios). Everything is on loopback:
// the destination is an HTTPS server on 127.0.0.1, which both proxies may
// reach and nothing else (Squid's ACL; smokescreen's dial), and every
// client asks for it by its literal, so that no proxy resolves a name.
// Outbound's policy is widened to 127.0.0.1 for the benchmark, as a test
// widens it.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/transport"
)

// proxyBenchBody is what the benchmark's server serves: /N answers the
// first N bytes. It is made on first use.
var proxyBenchBody = sync.OnceValue(func() []byte { return make([]byte, 4<<20) })

func BenchmarkProxy(b *testing.B) {
	cert, roots := lab.NewCert("127.0.0.1")
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Path[1:])
		if err != nil || n < 0 || n > len(proxyBenchBody()) {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(proxyBenchBody()[:n])
	})
	servers := map[string]*httptest.Server{}
	for _, kind := range []string{"h1", "h2"} {
		srv := httptest.NewUnstartedServer(handler)
		srv.Config.ErrorLog = discardLog
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.EnableHTTP2 = kind == "h2"
		srv.StartTLS()
		b.Cleanup(srv.Close)
		servers[kind] = srv
	}
	loopback := func(ap netip.AddrPort) bool { return ap.Addr() == netip.MustParseAddr("127.0.0.1") }
	type proxy struct {
		name string
		url  *url.URL
	}
	var proxies []proxy
	if _, _, why := findSquid(); why == "" {
		proxies = append(proxies, proxy{"squid", &url.URL{Scheme: "http", Host: startSquid(b, "127.0.0.1/32").open}})
	} else {
		b.Logf("no Squid: %s", why)
	}
	proxies = append(proxies, proxy{"smokescreen", &url.URL{Scheme: "http", Host: startSmokescreen(b, nil, nil, []string{"127.0.0.1/32"}, loopback)}})
	cases := []struct {
		name    string
		server  string
		size    int
		newConn bool // a new connection, tunnel and TLS session per request
	}{
		{"h2-1MiB", "h2", 1 << 20, false},
		{"h1-1MiB", "h1", 1 << 20, false},
		{"h1-64KiB", "h1", 64 << 10, false},
		{"h1-1KiB-newconn", "h1", 1 << 10, true},
	}
	for _, px := range proxies {
		for _, c := range cases {
			b.Run("proxy="+px.name+"/case="+c.name, func(b *testing.B) {
				target := servers[c.server].URL + "/" + strconv.Itoa(c.size)
				clients := proxyBenchClients(b, px.url, roots)
				for _, cl := range clients {
					proxyBenchGet(b, cl.rt, target, c.size) // warm-up
				}
				b.SetBytes(int64(c.size * len(clients))) // a round fetches the body once per client
				b.ReportAllocs()
				names := make([]string, len(clients))
				for i, cl := range clients {
					names[i] = cl.name
				}
				blockRounds := min(max((16<<20)/c.size, 2), 64)
				var blocks [][]time.Duration
				spent := make([]time.Duration, len(clients))
				load := loadAverage()
				b.ResetTimer()
				i := 0
				for b.Loop() {
					for k := range clients {
						j := (i + k) % len(clients)
						cl := clients[j]
						start := time.Now()
						proxyBenchGet(b, cl.rt, target, c.size)
						if c.newConn {
							cl.closeIdle()
						}
						spent[j] += time.Since(start)
					}
					i++
					if i%blockRounds == 0 {
						blocks = append(blocks, spent)
						spent = make([]time.Duration, len(clients))
					}
				}
				if i%blockRounds != 0 {
					blocks = append(blocks, spent)
				}
				b.StopTimer()
				reportRatios(b, names, proxyRatioPairs, blocks, i, load)
			})
		}
	}
}

// proxyRatioPairs are the ratios BenchmarkProxy reports, the twin's first.
var proxyRatioPairs = []ratioPair{{"plain2", "plain"}, {"sockets", "plain"}, {"urlfetch", "plain"}}

// proxyBenchClient is one client of BenchmarkProxy.
type proxyBenchClient struct {
	name      string
	rt        http.RoundTripper
	closeIdle func()
}

// proxyBenchClients returns plain net/http, its twin (a second, identical
// plain client), then the two backends, all through proxy, trusting roots,
// with the same protocols (HTTP/1.1 and HTTP/2; urlfetch speaks HTTP/1.1
// only) and the same pool sizes.
func proxyBenchClients(b *testing.B, proxy *url.URL, roots *x509.CertPool) []*proxyBenchClient {
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	var clients []*proxyBenchClient
	for _, name := range []string{"plain", "plain2"} {
		plain := &http.Transport{
			Proxy:                 http.ProxyURL(proxy),
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
			TLSClientConfig:       &tls.Config{RootCAs: roots, ClientSessionCache: tls.NewLRUClientSessionCache(0)},
			TLSHandshakeTimeout:   10 * time.Second,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
			Protocols:             &protos,
		}
		b.Cleanup(plain.CloseIdleConnections)
		clients = append(clients, &proxyBenchClient{name: name, rt: plain, closeIdle: plain.CloseIdleConnections})
	}
	for _, backend := range []transport.Backend{transport.Sockets, transport.URLFetch} {
		tr, err := transport.New(transport.Config{
			Backend: backend,
			Dialer: sockets.Dialer{
				Policy: sockets.DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32")),
				Proxy:  proxy,
			},
			TLS:      tlsconf.Config{RootCAs: roots},
			URLFetch: transport.URLFetchConfig{Deadline: 60 * time.Second},
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(tr.CloseIdleConnections)
		clients = append(clients, &proxyBenchClient{name: backend.String(), rt: tr, closeIdle: tr.CloseIdleConnections})
	}
	return clients
}

// proxyBenchGet fetches rawURL and reads its size bytes.
func proxyBenchGet(b *testing.B, rt http.RoundTripper, rawURL string, size int) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, rawURL, nil)
	if err != nil {
		b.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != int64(size) || resp.StatusCode != http.StatusOK {
		b.Fatalf("%s: status %d, %d bytes, %v; want %d bytes", rawURL, resp.StatusCode, n, err, size)
	}
}
