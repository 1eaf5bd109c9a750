package rigs_test

// The benchmark suite: plain net/http.Transport, the sockets backend, the
// urlfetch backend and a peer, code.dny.dev/ssrf, side by side, in one run,
// against the same loopback servers. It is the project's one comparison
// with plain net/http; BENCHMARKS.md at the repository's root has the
// command that runs it and the results.
//
//   - BenchmarkRatio runs the four clients in lock-step and reports each
//     one's throughput as a multiple of plain net/http's, and the sockets
//     backend's as a multiple of the peer's: the ratios that hold on a
//     busy machine.
//   - BenchmarkGet runs each client alone, with -benchmem: time,
//     throughput and allocations per request. Its sub-benchmarks are named
//     case=.../backend=..., so that `benchstat -col /backend` puts the
//     clients side by side, plain net/http as the base. The newconn cases
//     give the allocations of a new connection (the server's, in the same
//     process, are the same for every client).
//   - BenchmarkReadAll32MiB downloads 32 MiB into memory and reports the
//     heap it takes, as a multiple of the body.
//   - BenchmarkPolicyCheck is Policy.Check alone.
//
// The backends go through their real policy path: a test resolver
// (benchResolver) answers example.com with a public address, the policy
// checks it, and the dialer's connect seam, a net.Dialer dial, connects to
// the loopback server. Plain net/http dials the loopback server with a
// net.Dialer of its own, so that every client pays the same dial.
// Plain net/http is configured as the sockets backend's http.Transport is
// (idle pool of 100, 16 per host, HTTP/1.1 and HTTP/2 with its ping
// timeouts, the 1 MiB bound on a response's headers, a TLS session cache,
// a dialer with http.DefaultTransport's 30-second dial timeout), so that
// the ratio measures what the library adds.
//
// The peer is plain net/http, configured and dialing exactly as plain
// does, with code.dny.dev/ssrf's check as the net.Dialer's Control hook:
// ssrf.New(ssrf.WithAnyPort(), ssrf.WithAllowedV4Prefixes(127.0.0.1/32))
// .Safe. Its default rules refuse loopback, and ports other than 80 and
// 443; the benchmark servers listen on 127.0.0.1 on ports the system
// picks, so the peer is allowed that one address and any port, as our
// backends are allowed their public address (any port but 25 and TCP 21)
// and are then connected to the server by the seam. Each client thus runs
// its whole check on every new connection and reaches the same server;
// the peer's check is a walk down short prefix lists (its allowed prefix
// first, here), ours a search of the full never-public and Google tables.
// The peer resolves nothing (it dials the server's address, as plain
// does); our backends resolve through the test resolver, which costs a
// call and a one-address slice.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"code.dny.dev/ssrf"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/transport"
	"github.com/outbound-go/outbound/urlfetch"
)

// benchBackends are the clients compared, the base first.
var benchBackends = []string{"plain", "sockets", "urlfetch", "ssrf"}

// benchPayload is the body every benchmark server serves a prefix of,
// made on first use.
var benchPayload = sync.OnceValue(func() []byte {
	p := make([]byte, urlfetch.MaxResponseBody)
	for i := range p {
		p[i] = byte(i)
	}
	return p
})

// benchHandler answers /N with the first N bytes of benchPayload, with
// its Content-Length.
var benchHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Path[1:])
	if err != nil || n < 0 || n > len(benchPayload()) {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(n))
	w.Write(benchPayload()[:n])
})

// benchServer starts a loopback server: "http", "h1" (https, HTTP/1.1
// only) or "h2" (https, HTTP/2 offered).
func benchServer(b *testing.B, kind string) *httptest.Server {
	srv := httptest.NewUnstartedServer(benchHandler)
	srv.Config.ErrorLog = quietLog
	switch kind {
	case "http":
		srv.Start()
	case "h1":
		srv.StartTLS()
	case "h2":
		srv.EnableHTTP2 = true
		srv.StartTLS()
	}
	b.Cleanup(srv.Close)
	return srv
}

// benchName is the public name every client fetches; httptest's
// certificate is valid for it.
const benchName = "example.com"

// benchResolver answers every lookup with benchAddr, a public address, in
// a new slice, as a resolver does. The benchmarks use it, and a connect
// seam of their own, rather than socketstest's Resolver and Connector,
// which record every lookup and keep every connection for a test to
// inspect: over the hundreds of thousands of requests of a benchmark run
// those records grow the heap, and the collector's work on them would be
// measured as a cost of the backends, one that plain net/http does not
// pay.
type benchResolver struct{}

var benchAddr = netip.MustParseAddr("93.184.216.34")

func (benchResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return []netip.Addr{benchAddr}, nil
}

// benchClient returns the RoundTripper of backend for srv, and a function
// that closes its idle connections.
func benchClient(b *testing.B, backend string, srv *httptest.Server) (http.RoundTripper, func()) {
	target := srv.Listener.Addr().String()
	var roots *x509.CertPool
	if srv.Certificate() != nil {
		roots = x509.NewCertPool()
		roots.AddCert(srv.Certificate())
	}
	switch backend {
	case "plain", "ssrf":
		// The 30-second dial timeout of http.DefaultTransport's dialer,
		// which the sockets backend's dialer has too.
		d := &net.Dialer{Timeout: 30 * time.Second}
		if backend == "ssrf" {
			// The peer's check, allowed the server's address and port
			// (see the comment at the top of this file).
			d.Control = ssrf.New(ssrf.WithAnyPort(), ssrf.WithAllowedV4Prefixes(netip.MustParsePrefix("127.0.0.1/32"))).Safe
		}
		var protos http.Protocols
		protos.SetHTTP1(true)
		protos.SetHTTP2(true)
		t := &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, target)
			},
			TLSClientConfig:       &tls.Config{RootCAs: roots, ClientSessionCache: tls.NewLRUClientSessionCache(0)},
			TLSHandshakeTimeout:   10 * time.Second,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
			Protocols:             &protos,
			HTTP2:                 &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second},
			// The sockets backend's bound on a response's headers: 1 MiB,
			// and no time bound but the request's context.
			MaxResponseHeaderBytes: 1 << 20,
		}
		return t, t.CloseIdleConnections
	case "sockets", "urlfetch":
		if !netip.MustParseAddrPort(target).Addr().IsLoopback() {
			b.Fatalf("benchmark server %s is not on loopback", target)
		}
		// The connect seam: whatever address passed the policy, connect
		// to the loopback server, with a net.Dialer as plain does.
		seam := func(ctx context.Context, network string, _ netip.AddrPort) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, target)
		}
		cfg := transport.Config{
			Backend: transport.Sockets,
			Dialer:  sockets.Dialer{Resolver: benchResolver{}, Connect: seam},
			TLS:     tlsconf.Config{RootCAs: roots},
		}
		if backend == "urlfetch" {
			cfg.Backend = transport.URLFetch
		}
		rt, err := transport.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		return rt, rt.CloseIdleConnections
	}
	b.Fatalf("unknown backend %q", backend)
	return nil, nil
}

// benchURL is the URL of size bytes on a server of kind.
func benchURL(kind string, size int) string {
	scheme := "https"
	if kind == "http" {
		scheme = "http"
	}
	return scheme + "://" + benchName + "/" + strconv.Itoa(size)
}

// get makes one request and reads the body to its end.
func get(b *testing.B, rt http.RoundTripper, req *http.Request, size int) *http.Response {
	resp, err := rt.RoundTrip(req)
	if err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != int64(size) {
		b.Fatalf("read %d bytes, %v; want %d", n, err, size)
	}
	return resp
}

// benchCase is one row of the suite.
type benchCase struct {
	name     string
	server   string // "http", "h1", "h2"
	size     int
	newConn  bool // close idle connections after every request
	parallel int  // concurrent clients; 0 means one
	proto    map[string]int
}

// h2Protos is the protocol each client speaks with a server offering
// HTTP/2: urlfetch offers only HTTP/1.1 (see urlfetch.Transport.TLS).
var h2Protos = map[string]int{"plain": 2, "sockets": 2, "urlfetch": 1, "ssrf": 2}

// benchCases are the rows. A new connection over TLS (newconn-https-...)
// resumes its session from the client's session cache, as every client
// has one.
var benchCases = []benchCase{
	{name: "keepalive-1KiB", server: "http", size: 1 << 10},
	{name: "keepalive-1MiB", server: "http", size: 1 << 20},
	{name: "newconn-1KiB", server: "http", size: 1 << 10, newConn: true},
	{name: "https-h1-1KiB", server: "h1", size: 1 << 10, proto: map[string]int{"plain": 1, "sockets": 1, "urlfetch": 1, "ssrf": 1}},
	{name: "https-h2-1KiB", server: "h2", size: 1 << 10, proto: h2Protos},
	{name: "newconn-https-h1-1KiB", server: "h1", size: 1 << 10, newConn: true},
	{name: "newconn-https-h2-1KiB", server: "h2", size: 1 << 10, newConn: true, proto: h2Protos},
	{name: "parallel64-1KiB", server: "http", size: 1 << 10, parallel: 64},
	{name: "download-32MiB", server: "http", size: 32 << 20},
}

// BenchmarkGet runs every case against every backend: throughput
// (SetBytes: the body), allocations per request, time per request.
func BenchmarkGet(b *testing.B) {
	for _, c := range benchCases {
		srv := benchServer(b, c.server)
		for _, backend := range benchBackends {
			b.Run("case="+c.name+"/backend="+backend, func(b *testing.B) {
				rt, closeIdle := benchClient(b, backend, srv)
				defer closeIdle()
				req, _ := http.NewRequest(http.MethodGet, benchURL(c.server, c.size), nil)
				resp := get(b, rt, req, c.size) // warm-up: a connection in the pool
				if want, ok := c.proto[backend]; ok && resp.ProtoMajor != want {
					b.Fatalf("HTTP/%d, want HTTP/%d", resp.ProtoMajor, want)
				}
				b.ReportAllocs()
				b.SetBytes(int64(c.size))
				if c.parallel > 0 {
					b.SetParallelism((c.parallel + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						req := req.Clone(context.Background())
						for pb.Next() {
							get(b, rt, req, c.size)
						}
					})
					return
				}
				b.ResetTimer()
				for b.Loop() {
					get(b, rt, req, c.size)
					if c.newConn {
						closeIdle()
					}
				}
			})
		}
	}
}

// BenchmarkRatio runs every case through the four clients in lock-step:
// each iteration makes one request with each, and times each request. It
// reports each client's throughput as a multiple of plain net/http's over
// the whole run (sockets-vs-plain, urlfetch-vs-plain, ssrf-vs-plain: 1
// means as fast, 0.97 means 3% slower), and the sockets backend's as a
// multiple of the peer's (sockets-vs-ssrf). Since the requests of the
// clients alternate within microseconds, a machine that gets busier or
// quieter during the run slows all of them alike, and the ratio holds
// where the separate timings of BenchmarkGet drift; its ns/op is the sum
// of the four requests and means little. In the parallel case each of the
// 64 clients takes its turn with each backend.
//
// Each iteration takes the clients in an order drawn at random among all
// their permutations, so that each client comes
// first, last, and right after each of the others equally often, whatever
// else the iteration does: what one request leaves behind (a connection
// still closing on the server, garbage to collect) slows the next one, and
// an order that repeats, or that follows the rounds in which idle
// connections are closed, would charge that to the same client every
// time.
//
// Outside the parallel and new-connection cases, the idle connections of
// every client are closed every few rounds (after about 8 MiB of bodies,
// at most every 256 rounds, at least every 2), so that each client is
// measured over many connections: on loopback one TCP connection can run
// up to twice as fast as the next for its whole life, and with one
// connection per client that luck would be measured as a difference
// between the clients.
func BenchmarkRatio(b *testing.B) {
	for _, c := range benchCases {
		srv := benchServer(b, c.server)
		b.Run("case="+c.name, func(b *testing.B) {
			type client struct {
				name      string
				rt        http.RoundTripper
				closeIdle func()
				req       *http.Request
				total     atomic.Int64 // nanoseconds spent in its requests
			}
			clients := make([]*client, len(benchBackends))
			for i, backend := range benchBackends {
				rt, closeIdle := benchClient(b, backend, srv)
				defer closeIdle()
				req, _ := http.NewRequest(http.MethodGet, benchURL(c.server, c.size), nil)
				resp := get(b, rt, req, c.size) // warm-up
				if want, ok := c.proto[backend]; ok && resp.ProtoMajor != want {
					b.Fatalf("%s: HTTP/%d, want HTTP/%d", backend, resp.ProtoMajor, want)
				}
				clients[i] = &client{name: backend, rt: rt, closeIdle: closeIdle, req: req}
			}
			rotate := min(max((8<<20)/c.size, 2), 256)
			orders := permutations(len(clients))
			round := func(i int, rng *rand.Rand, reqs []*http.Request) {
				for _, j := range orders[rng.IntN(len(orders))] {
					cl := clients[j]
					start := time.Now()
					get(b, cl.rt, reqs[j], c.size)
					if c.newConn {
						cl.closeIdle()
					}
					cl.total.Add(int64(time.Since(start)))
				}
				if !c.newConn && c.parallel == 0 && (i+1)%rotate == 0 {
					for _, cl := range clients {
						cl.closeIdle()
					}
				}
			}
			reqs := func() []*http.Request {
				r := make([]*http.Request, len(clients))
				for i, cl := range clients {
					r[i] = cl.req.Clone(context.Background())
				}
				return r
			}
			b.ResetTimer()
			if c.parallel > 0 {
				b.SetParallelism((c.parallel + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
				var seq atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					r := reqs()
					i := int(seq.Add(1))
					rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
					for pb.Next() {
						round(i, rng, r)
						i++
					}
				})
			} else {
				r := reqs()
				rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
				i := 0
				for b.Loop() {
					round(i, rng, r)
					i++
				}
			}
			b.StopTimer()
			base := float64(clients[0].total.Load())
			byName := make(map[string]float64, len(clients))
			for _, cl := range clients {
				byName[cl.name] = float64(cl.total.Load())
			}
			for _, cl := range clients[1:] {
				b.ReportMetric(base/byName[cl.name], cl.name+"-vs-plain")
			}
			b.ReportMetric(byName["ssrf"]/byName["sockets"], "sockets-vs-ssrf")
		})
	}
}

// permutations returns every order of 0, ..., n-1.
func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for at := 0; at <= len(p); at++ {
			q := make([]int, 0, n)
			q = append(q, p[:at]...)
			q = append(q, n-1)
			q = append(q, p[at:]...)
			out = append(out, q)
		}
	}
	return out
}

// BenchmarkReadAll32MiB downloads a body of 32 MiB, the urlfetch limit,
// into memory: with io.ReadAll for plain net/http, sockets and the peer,
// with urlfetch.ReadAll for urlfetch. Besides B/op it reports, as
// multiples of the body, the bytes allocated per download (alloc/body,
// which bounds from above how much the heap can grow during a download)
// and the heap-in-use high-water mark of a download above the heap before
// it, sampled every 100µs (peak/body). The target: urlfetch.ReadAll
// allocates about the body once (alloc/body at most 1.25), where
// io.ReadAll grows its buffer by copying.
func BenchmarkReadAll32MiB(b *testing.B) {
	const size = 32 << 20
	srv := benchServer(b, "http")
	for _, backend := range benchBackends {
		b.Run("case=readall-32MiB/backend="+backend, func(b *testing.B) {
			rt, closeIdle := benchClient(b, backend, srv)
			defer closeIdle()
			req, _ := http.NewRequest(http.MethodGet, benchURL("http", size), nil)
			readAll := func() []byte {
				resp, err := rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				var body []byte
				if backend == "urlfetch" {
					body, err = urlfetch.ReadAll(resp)
				} else {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				if err != nil || len(body) != size {
					b.Fatalf("read %d bytes, %v", len(body), err)
				}
				return body
			}
			readAll() // warm-up
			peak := peakHeap(func() { readAll() })
			b.ReportAllocs()
			b.SetBytes(size)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ResetTimer()
			for b.Loop() {
				readAll()
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/size, "alloc/body")
			b.ReportMetric(float64(peak)/size, "peak/body")
		})
	}
}

// peakHeap runs f three times and returns the largest growth of the heap
// in use (heap objects, live or not yet swept) above its level after a
// collection, sampled every 100µs while f runs.
func peakHeap(f func()) uint64 {
	var peak uint64
	for range 3 {
		runtime.GC()
		base := heapInUse()
		stop := make(chan struct{})
		done := make(chan uint64)
		go func() {
			var hi uint64
			tick := time.NewTicker(100 * time.Microsecond)
			defer tick.Stop()
			for {
				if v := heapInUse(); v > hi {
					hi = v
				}
				select {
				case <-tick.C:
				case <-stop:
					done <- hi
					return
				}
			}
		}()
		f()
		close(stop)
		if hi := <-done; hi > base && hi-base > peak {
			peak = hi - base
		}
	}
	return peak
}

// BenchmarkPolicyCheck is Policy.Check alone, with App Engine's default
// policy: an allowed public address, and a refused private one.
func BenchmarkPolicyCheck(b *testing.B) {
	p := sockets.DefaultPolicy()
	for _, c := range []struct {
		name string
		addr netip.AddrPort
	}{
		{"allowed", netip.MustParseAddrPort("93.184.216.34:443")},
		{"refused", netip.MustParseAddrPort("10.0.0.1:443")},
	} {
		b.Run("case=check-"+c.name+"/backend=sockets", func(b *testing.B) {
			want := c.name == "allowed"
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Check("tcp", "www.example.com", c.addr); (err == nil) != want {
					b.Fatalf("Check(%v) = %v", c.addr, err)
				}
			}
		})
	}
}
