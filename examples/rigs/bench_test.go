package rigs_test

// The benchmark suite: plain net/http.Transport, its calibration twin, the
// same with the sockets backend's safety settings, the sockets backend,
// the urlfetch backend and a peer, code.dny.dev/ssrf, side by side, in one
// run, against the same loopback servers. It is the project's one
// comparison with plain net/http; BENCHMARKS.md at the repository's root
// has the commands that run it and the results.
//
//   - BenchmarkRatio runs the six clients in lock-step and reports each
//     one's throughput as a multiple of plain net/http's, and the sockets
//     backend's as a multiple of plain-safe's and of the peer's: the
//     ratios that hold on a busy machine. It logs, for each case, the
//     median of those ratios over the run's blocks of rounds with a 95%
//     confidence interval, and the twin's band: the same ratio for two
//     identical plain clients, which is what noise alone moves a ratio
//     by. A ratio inside the twin's band is no difference at all.
//   - BenchmarkGet runs each client alone, with -benchmem: time,
//     throughput and allocations per request. Its sub-benchmarks are named
//     case=.../backend=..., so that `benchstat -col /backend` puts the
//     clients side by side, plain net/http as the base. The newconn cases
//     give the allocations of a new connection (the server's, in the same
//     process, are the same for every client). The exact allocation
//     budgets are held by a test, transport/allocs_test.go.
//   - BenchmarkReadAll32MiB downloads 32 MiB into memory and reports the
//     heap it takes, as a multiple of the body.
//   - BenchmarkPolicyCheck is Policy.Check alone.
//
// The clients (benchClient):
//
//   - plain: net/http's http.Transport as the sockets backend configures
//     its own (idle pool of 100, 16 per host, which matters with 64
//     concurrent clients; HTTP/1.1 and HTTP/2; a TLS session cache; a
//     net.Dialer with http.DefaultTransport's 30-second dial timeout),
//     without its safety settings: bare net/http, the base of every ratio.
//   - plain2: plain again, a second instance, the calibration twin.
//   - plainsafe: plain with the sockets backend's safety settings, the
//     1 MiB bound on a response's headers and the HTTP/2 pings
//     ("plain-safe"): what the sockets backend is to be measured
//     against, so that the ratio measures what the library adds.
//   - sockets and urlfetch: the backends, through their real policy path:
//     a test resolver (benchResolver) answers example.com with a public
//     address, the policy checks it, and the dialer's connect seam, a
//     net.Dialer dial, connects to the loopback server, as plain's dialer
//     does (so every client pays the same dial). The seam replaces the
//     connect-time check, which the allocation test measures.
//   - ssrf: plainsafe with code.dny.dev/ssrf's check as its net.Dialer's
//     Control hook: ssrf.New(ssrf.WithAnyPort(),
//     ssrf.WithAllowedV4Prefixes(127.0.0.1/32)).Safe. Its default rules
//     refuse loopback, and ports other than 80 and 443; the benchmark
//     servers listen on 127.0.0.1 on ports the system picks, so the peer
//     is allowed that one address and any port, as our backends are
//     allowed their public address (any port but 25 and TCP 21) and are
//     then connected to the server by the seam. Each client thus runs its
//     whole check on every new connection and reaches the same server;
//     the peer's check is a walk down short prefix lists (its allowed
//     prefix first, here), ours a search of the full never-public and
//     Google tables. The peer resolves nothing (it dials the server's
//     address, as plain does); our backends resolve through the test
//     resolver, which costs a call and a one-address slice.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"code.dny.dev/ssrf"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/transport"
	"github.com/outbound-go/outbound/urlfetch"
)

// benchBackends are the clients compared, the base first (see the top of
// this file).
var benchBackends = []string{"plain", "plain2", "plainsafe", "sockets", "urlfetch", "ssrf"}

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
	case "plain", "plain2", "plainsafe", "ssrf":
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
		}
		if backend == "plainsafe" || backend == "ssrf" {
			// The sockets backend's safety settings
			// (transport/sockets.go): 1 MiB of response headers at
			// most, HTTP/2 pings on a silent connection; no header
			// timeout, which it has only when configured.
			t.MaxResponseHeaderBytes = 1 << 20
			t.HTTP2 = &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second}
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

// get makes one request and reads the body to its end, or fails b.
func get(b *testing.B, rt http.RoundTripper, req *http.Request, size int) *http.Response {
	resp, err := fetchBody(rt, req, size)
	if err != nil {
		b.Fatal(err)
	}
	return resp
}

// fetchBody makes one request and reads the body, which must be size
// bytes, to its end.
func fetchBody(rt http.RoundTripper, req *http.Request, size int) (*http.Response, error) {
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != int64(size) {
		return nil, fmt.Errorf("read %d bytes, %v; want %d", n, err, size)
	}
	return resp, nil
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
var h2Protos = map[string]int{"plain": 2, "plain2": 2, "plainsafe": 2, "sockets": 2, "urlfetch": 1, "ssrf": 2}

// h1Protos: every client speaks HTTP/1.1 with a server offering only that.
var h1Protos = map[string]int{"plain": 1, "plain2": 1, "plainsafe": 1, "sockets": 1, "urlfetch": 1, "ssrf": 1}

// benchCases are the rows. A new connection over TLS (newconn-https-...)
// resumes its session from the client's session cache, as every client
// has one.
var benchCases = []benchCase{
	{name: "keepalive-1KiB", server: "http", size: 1 << 10},
	{name: "keepalive-1MiB", server: "http", size: 1 << 20},
	{name: "newconn-1KiB", server: "http", size: 1 << 10, newConn: true},
	{name: "https-h1-1KiB", server: "h1", size: 1 << 10, proto: h1Protos},
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

// ratioPairs are the ratios BenchmarkRatio reports, each the throughput of
// one client as a multiple of another's (the other's time over its own:
// 1 means as fast, 0.97 means 3% slower). The first is the twin's: two
// identical clients, whose ratio moves by noise alone.
var ratioPairs = []ratioPair{
	{"plain2", "plain"}, // the twin
	{"plainsafe", "plain"},
	{"sockets", "plainsafe"},
	{"sockets", "plain"},
	{"sockets", "ssrf"},
	{"urlfetch", "plain"},
	{"ssrf", "plain"},
}

// BenchmarkRatio runs every case through the six clients in lock-step:
// each round makes one request with each client, and times each request.
// Since the requests of the clients alternate within microseconds, a
// machine that gets busier or quieter during the run slows all of them
// alike, and the ratios hold where the separate timings of BenchmarkGet
// drift. Its ns/op is the time of a round, all six requests, and means
// little.
//
// The rounds are grouped in blocks (64 rounds, fewer for large bodies:
// about 64 MiB per client, at least 2 rounds), and each ratio is taken
// per block. The benchmark reports the median of each ratio over the
// blocks (metrics named of-vs-over, as in ratioPairs, for benchstat to
// compare across runs) and logs, per case, each median with a 95%
// confidence interval (distribution-free: the order statistics around the
// median), the load average before and after, and the twin's band, the
// interval of plain2-vs-plain: a ratio whose interval overlaps it is not
// told apart from noise.
//
// Each round takes the clients in an order drawn at random among all
// their permutations, so that each client comes first, last, and right
// after each of the others equally often, whatever else the round does:
// what one request leaves behind (a connection still closing on the
// server, garbage to collect) slows the next one, and an order that
// repeats, or that follows the rounds in which idle connections are
// closed, would charge that to the same client every time.
//
// Outside the parallel and new-connection cases, the idle connections of
// every client are closed every few rounds (after about 8 MiB of bodies,
// at most every 256 rounds, at least every 2), so that each client is
// measured over many connections: on loopback one TCP connection can run
// up to twice as fast as the next for its whole life, and with one
// connection per client that luck would be measured as a difference
// between the clients.
//
// In the parallel case, each iteration is a block: the 64 concurrent
// clients each make one round, and the iteration ends when all have.
func BenchmarkRatio(b *testing.B) {
	for _, c := range benchCases {
		srv := benchServer(b, c.server)
		b.Run("case="+c.name, func(b *testing.B) {
			type client struct {
				name      string
				rt        http.RoundTripper
				closeIdle func()
				req       *http.Request
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
			blockRounds := min(max((64<<20)/c.size, 2), 64)
			orders := permutations(len(clients))
			reqs := func() []*http.Request {
				r := make([]*http.Request, len(clients))
				for i, cl := range clients {
					r[i] = cl.req.Clone(context.Background())
				}
				return r
			}
			// round makes one request with each client, in a random
			// order, and adds the time of each to spent.
			round := func(rng *rand.Rand, reqs []*http.Request, spent []time.Duration) error {
				for _, j := range orders[rng.IntN(len(orders))] {
					cl := clients[j]
					start := time.Now()
					if _, err := fetchBody(cl.rt, reqs[j], c.size); err != nil {
						return fmt.Errorf("%s: %w", cl.name, err)
					}
					if c.newConn {
						cl.closeIdle()
					}
					spent[j] += time.Since(start)
				}
				return nil
			}
			var blocks [][]time.Duration // per block, the time of each client
			rounds := 0
			load := loadAverage()
			b.ResetTimer()
			if c.parallel > 0 {
				// c.parallel workers, each making one round per
				// iteration.
				type worker struct {
					rng   *rand.Rand
					reqs  []*http.Request
					spent []time.Duration
					err   error // of its last round
				}
				workers := make([]*worker, c.parallel)
				start := make(chan *worker, c.parallel)
				var wg sync.WaitGroup
				for i := range workers {
					workers[i] = &worker{rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), reqs: reqs(), spent: make([]time.Duration, len(clients))}
					go func() {
						for w := range start {
							w.err = round(w.rng, w.reqs, w.spent)
							wg.Done()
						}
					}()
				}
				defer close(start)
				for b.Loop() {
					wg.Add(len(workers))
					for _, w := range workers {
						start <- w
					}
					wg.Wait()
					block := make([]time.Duration, len(clients))
					for _, w := range workers {
						if w.err != nil {
							b.Fatal(w.err)
						}
						for j, d := range w.spent {
							block[j] += d
						}
						clear(w.spent)
					}
					blocks = append(blocks, block)
					rounds += len(workers)
				}
			} else {
				rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
				r := reqs()
				spent := make([]time.Duration, len(clients))
				for b.Loop() {
					if err := round(rng, r, spent); err != nil {
						b.Fatal(err)
					}
					rounds++
					if !c.newConn && rounds%rotate == 0 {
						for _, cl := range clients {
							cl.closeIdle()
						}
					}
					if rounds%blockRounds == 0 {
						blocks = append(blocks, spent)
						spent = make([]time.Duration, len(clients))
					}
				}
				if rounds%blockRounds != 0 {
					blocks = append(blocks, spent) // the last, shorter block
				}
			}
			b.StopTimer()
			reportRatios(b, benchBackends, ratioPairs, blocks, rounds, load)
		})
	}
}

// ratioPair names a ratio: the throughput of client of as a multiple of
// client over's.
type ratioPair struct{ of, over string }

// reportRatios reports each ratio of pairs over blocks, the time each of
// the clients named by names spent in each block of a lock-step run: the
// median over the blocks as a metric (of-vs-over), and, in the log, each
// median with its 95% confidence interval, with the run's rounds and the
// load average before it (load) and now. The first pair is the twin's,
// two identical clients: its interval is the band of noise, and a ratio
// whose interval lies outside it is marked so.
func reportRatios(b *testing.B, names []string, pairs []ratioPair, blocks [][]time.Duration, rounds int, load string) {
	b.Helper()
	index := make(map[string]int, len(names))
	for i, n := range names {
		index[n] = i
	}
	summary := fmt.Sprintf("%d rounds in %d blocks, load average %s before, %s after; throughput ratios, median [95%% CI] over the blocks:",
		rounds, len(blocks), load, loadAverage())
	var twinLo, twinHi float64
	for k, p := range pairs {
		of, over := index[p.of], index[p.over]
		ratios := make([]float64, 0, len(blocks))
		for _, blk := range blocks {
			if blk[of] > 0 {
				ratios = append(ratios, float64(blk[over])/float64(blk[of]))
			}
		}
		med, lo, hi := medianCI(ratios)
		name := p.of + "-vs-" + p.over
		b.ReportMetric(med, name)
		note := ""
		if k == 0 {
			twinLo, twinHi = lo, hi
			note = " (the twin's band)"
		} else if !math.IsNaN(lo) && !math.IsNaN(twinLo) && (hi < twinLo || lo > twinHi) {
			note = " (outside the twin's band)"
		}
		ci := "[too few blocks]"
		if !math.IsNaN(lo) {
			ci = fmt.Sprintf("[%.3f, %.3f]", lo, hi)
		}
		summary += fmt.Sprintf("\n%-20s %.3f %s%s", name, med, ci, note)
	}
	b.Log(summary)
}

// medianCI returns the median of xs and a 95% confidence interval for
// it that assumes nothing of their distribution: the order statistics
// j and k (counted from 1) with j = ⌊(n − 1.96√n)/2⌋ and
// k = ⌈1 + (n + 1.96√n)/2⌉, from the binomial count of the values below
// the median, normally approximated. With fewer than 6 values the
// interval is NaN, NaN; with none the median is NaN too. xs is sorted in
// place.
func medianCI(xs []float64) (med, lo, hi float64) {
	n := len(xs)
	if n == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	slices.Sort(xs)
	med = xs[n/2]
	if n%2 == 0 {
		med = (xs[n/2-1] + xs[n/2]) / 2
	}
	if n < 6 {
		return med, math.NaN(), math.NaN()
	}
	h := 1.96 * math.Sqrt(float64(n))
	j := max(int(math.Floor((float64(n)-h)/2)), 1)
	k := min(int(math.Ceil(1+(float64(n)+h)/2)), n)
	return med, xs[j-1], xs[k-1]
}

// loadAverage returns the one-minute load average (Linux), or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
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
