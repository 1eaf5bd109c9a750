package rigs_test

// The load test: 10,000 requests at 200 concurrency through each backend,
// a mix of good exchanges and the faults of faults_test.go. Every request
// must be accounted for, each kind ending as that kind may, and a request
// that stalls must end at its deadline; no connection may go to an address
// the policy refuses; afterwards every goroutine the test started must
// have ended and every connection the transports made must be closed, and
// the heap must have stayed bounded. Everything runs on loopback, bounded
// in count and time.

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/transport"
	"github.com/outbound-go/outbound/urlfetch"
)

const (
	loadRequests    = 10000
	loadConcurrency = 200

	// loadDeadline bounds every request of the load test that does not
	// stall. It is not what the test is about: it only keeps a broken
	// request from hanging the run, and is long enough that a busy
	// machine, where 200 requests share a CPU or two, never reaches it.
	// A fault that stalls is given loadStallDeadline instead: its
	// deadline is what ends it, and what the test checks.
	loadDeadline      = 60 * time.Second
	loadStallDeadline = 300 * time.Millisecond

	// loadHeapLimit bounds the heap in use during the run: 200 exchanges
	// in flight, each with a few tens of KiB of buffers (bufio, TLS
	// records, HTTP/2 frames), and the pools of idle connections, come to
	// a few MiB; this leaves room for garbage not yet collected, and fails
	// if the heap grows with the number of requests.
	loadHeapLimit = 128 << 20
)

// loadKind is one kind of request in the mix.
type loadKind struct {
	name   string
	url    string
	weight int  // requests of this kind per round of the mix
	stall  bool // ends only at its deadline
	accept func(b transport.Backend, o outcome) error
}

// loadEnv is the servers and names of a load run.
type loadEnv struct {
	names  map[string]lab.LookupFunc
	routes map[netip.AddrPort]string
	kinds  []loadKind
}

// route sends connections to publicIP:port to target.
func (e *loadEnv) route(port uint16, target string) {
	e.routes[netip.AddrPortFrom(publicIP, port)] = target
}

// newLoadEnv starts the servers of the mix. Each listens on loopback; the
// connect seam reaches it through publicIP and a port of its own.
func newLoadEnv(t *testing.T) *loadEnv {
	e := &loadEnv{
		names: map[string]lab.LookupFunc{
			"load.example.com":     lab.Fixed(publicIP),
			"wrong.example.net":    lab.Fixed(publicIP),
			"intranet.example.com": lab.Fixed(privateIP),
			"rebind.example.com":   rebinding(),
			"hang.example.com":     lab.Hang,
		},
		routes: map[netip.AddrPort]string{},
	}
	page := strings.Repeat("x", 1<<10)
	good := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, page)
	}))
	good.Config.ErrorLog = quietLog
	good.Start()
	t.Cleanup(good.Close)
	e.route(8080, good.Listener.Addr().String())

	goodTLS := httptest.NewUnstartedServer(good.Config.Handler)
	goodTLS.TLS = pki().serverTLS()
	goodTLS.EnableHTTP2 = true
	goodTLS.Config.ErrorLog = quietLog
	goodTLS.StartTLS()
	t.Cleanup(goodTLS.Close)
	e.route(8443, goodTLS.Listener.Addr().String())

	e.route(9001, h1Fault(t, nil, func(c net.Conn, done <-chan struct{}) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n"+strings.Repeat("r", 1000))
		c.(*net.TCPConn).SetLinger(0) // the close sends an RST
	}))
	e.route(9002, h1Fault(t, nil, func(c net.Conn, done <-chan struct{}) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
	}))
	e.route(9003, h1Fault(t, nil, func(c net.Conn, done <-chan struct{}) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
		<-done
	}))
	e.route(9004, h1Fault(t, nil, func(c net.Conn, done <-chan struct{}) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Slow: 1\r\n")
		io.Copy(io.Discard, c)
	}))
	e.route(9005, h1Fault(t, nil, func(c net.Conn, done <-chan struct{}) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nmore.\r\n")
		io.Copy(io.Discard, c) // and nothing more, until the client goes
	}))
	stall := startRaw(t, nil, func(c net.Conn, done <-chan struct{}) { io.Copy(io.Discard, c) })
	e.route(9006, stall.addr())
	h2 := startRaw(t, pki().serverTLS("h2"), func(c net.Conn, done <-chan struct{}) {
		if c.(*tls.Conn).Handshake() == nil {
			serveH2(c, h2ResetStream)
		}
	})
	e.route(9007, h2.addr())

	closed := func(b transport.Backend, err error) error {
		if b == transport.URLFetch {
			return is(urlfetch.ErrConnectionClosed)(err)
		}
		return isAny(syscall.ECONNRESET, io.ErrUnexpectedEOF, io.EOF)(err)
	}
	timeout := func(b transport.Backend, err error) error {
		if b == transport.URLFetch {
			return urlfetchTimeout(err)
		}
		return is(context.DeadlineExceeded)(err)
	}
	okBody := func(o outcome) error {
		if o.err != nil || o.status != 200 || o.bodyErr != nil || len(o.body) != len(page) {
			return fmt.Errorf("got %v, want 200 and the page", o)
		}
		return nil
	}
	e.kinds = []loadKind{
		{name: "good", url: "http://load.example.com:8080/", weight: 50, accept: func(b transport.Backend, o outcome) error { return okBody(o) }},
		{name: "good https", url: "https://load.example.com:8443/", weight: 10, accept: func(b transport.Backend, o outcome) error {
			if want := map[transport.Backend]int{transport.URLFetch: 1, transport.Sockets: 2}[b]; o.err == nil && o.proto != want {
				return fmt.Errorf("HTTP/%d, want HTTP/%d", o.proto, want)
			}
			return okBody(o)
		}},
		{name: "reset mid-body", url: "http://load.example.com:9001/", weight: 2, accept: func(b transport.Backend, o outcome) error {
			// The reset may overtake the headers: then RoundTrip fails.
			if o.err != nil {
				return closed(b, o.err)
			}
			return closed(b, o.bodyErr)
		}},
		{name: "content-length lies", url: "http://load.example.com:9002/", weight: 2, accept: func(b transport.Backend, o outcome) error {
			return respThenBody(200, func(err error) error { return closed(b, err) })(o)
		}},
		{name: "broken chunked encoding", url: "http://load.example.com:9003/", weight: 2, accept: func(b transport.Backend, o outcome) error {
			if b == transport.URLFetch {
				return respThenBody(200, is(urlfetch.ErrMalformedReply))(o)
			}
			return respThenBody(200, untypedHTTPError)(o)
		}},
		{name: "headers never finish", url: "http://load.example.com:9004/", weight: 1, stall: true, accept: func(b transport.Backend, o outcome) error {
			return rtError(func(err error) error { return timeout(b, err) })(o)
		}},
		{name: "body never ends", url: "http://load.example.com:9005/", weight: 1, stall: true, accept: func(b transport.Backend, o outcome) error {
			// Under load the deadline may strike before the headers
			// come: then RoundTrip fails with it.
			if o.err != nil {
				return timeout(b, o.err)
			}
			return respThenBody(200, func(err error) error { return timeout(b, err) })(o)
		}},
		{name: "TLS handshake stalls", url: "https://load.example.com:9006/", weight: 1, stall: true, accept: func(b transport.Backend, o outcome) error {
			return rtError(func(err error) error { return timeout(b, err) })(o)
		}},
		{name: "resolver hangs", url: "http://hang.example.com:8080/", weight: 1, stall: true, accept: func(b transport.Backend, o outcome) error {
			return rtError(func(err error) error { return timeout(b, err) })(o)
		}},
		{name: "certificate for the wrong name", url: "https://wrong.example.net:8443/", weight: 2, accept: func(b transport.Backend, o outcome) error {
			return rtError(all(is(tlsconf.ErrCertificate), as[*tlsconf.CertificateError]()))(o)
		}},
		{name: "private destination", url: "http://intranet.example.com:8080/", weight: 2, accept: func(b transport.Backend, o outcome) error {
			return rtError(all(is(sockets.ErrDenied), deniedPrivate))(o)
		}},
		{name: "DNS rebinding", url: "http://rebind.example.com:8080/", weight: 2, accept: func(b transport.Backend, o outcome) error {
			if o.err != nil {
				return is(sockets.ErrDenied)(o.err)
			}
			return okBody(o)
		}},
		{name: "HTTP/2 RST_STREAM", url: "https://load.example.com:9007/", weight: 2, accept: func(b transport.Backend, o outcome) error {
			if b == transport.URLFetch {
				return urlfetchALPN(o)
			}
			return respThenBody(200, streamCode(http2.ErrCodeInternal))(o)
		}},
	}
	return e
}

// mix returns the kind of the i-th request: the kinds in proportion to
// their weights, spread evenly over the run.
func (e *loadEnv) mix() []int {
	var round []int
	for k, kind := range e.kinds {
		for range kind.weight {
			round = append(round, k)
		}
	}
	// Interleave: request i takes round[(i*stride) % len], with a stride
	// prime to the length, so each kind recurs evenly.
	stride := 7
	for gcd(stride, len(round)) != 1 {
		stride++
	}
	out := make([]int, loadRequests)
	for i := range out {
		out[i] = round[(i*stride)%len(round)]
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// heapSampler records the high-water mark of the heap in use (the bytes of
// heap objects, live or not yet swept).
type heapSampler struct {
	stop     chan struct{}
	done     chan struct{}
	heapMax  atomic.Uint64
	interval time.Duration
}

const heapMetric = "/memory/classes/heap/objects:bytes"

func heapInUse() uint64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{}), interval: 2 * time.Millisecond}
	go func() {
		defer close(h.done)
		tick := time.NewTicker(h.interval)
		defer tick.Stop()
		for {
			if v := heapInUse(); v > h.heapMax.Load() {
				h.heapMax.Store(v)
			}
			select {
			case <-tick.C:
			case <-h.stop:
				return
			}
		}
	}()
	return h
}

func (h *heapSampler) Stop() {
	close(h.stop)
	<-h.done
}

func TestLoad(t *testing.T) {
	for _, b := range allBackends {
		t.Run(b.String(), func(t *testing.T) { runLoad(t, b) })
	}
}

func runLoad(t *testing.T, b transport.Backend) {
	leaks := checkLeaks(t)

	env := newLoadEnv(t)
	ob := newOutbound(t, outboundOpts{
		backend:  b,
		resolver: newFaultResolver(env.names),
		routes:   env.routes,
		target:   "127.0.0.1:1", // never used: every port the mix dials has a route
		roots:    pki().roots,
		deadline: loadDeadline,
		leaks:    leaks,
	})
	client := &http.Client{Transport: ob.rt}
	mix := env.mix()

	type tally struct {
		n        atomic.Int64
		failures atomic.Int64
		first    atomic.Pointer[string]
	}
	tallies := make([]tally, len(env.kinds))
	var late atomic.Int64
	var latest atomic.Int64 // the largest lateness within the bound, in nanoseconds

	sampler := startHeapSampler()
	start := time.Now()
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range loadConcurrency {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= loadRequests {
					return
				}
				k := mix[i]
				kind := env.kinds[k]
				deadline := loadDeadline
				if kind.stall {
					deadline = loadStallDeadline
				}
				o, elapsed := fetch(client, kind.url, deadline, nil)
				tallies[k].n.Add(1)
				if over := elapsed - deadline; kind.stall && over > lateness {
					late.Add(1)
				} else if kind.stall {
					storeMax(&latest, int64(over))
				}
				if err := kind.accept(b, o); err != nil {
					if tallies[k].failures.Add(1) == 1 {
						msg := err.Error()
						tallies[k].first.Store(&msg)
					}
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	sampler.Stop()

	var total int64
	for k, kind := range env.kinds {
		n, f := tallies[k].n.Load(), tallies[k].failures.Load()
		total += n
		if f > 0 {
			t.Errorf("%s: %d of %d %q requests ended wrongly; the first: %s", b, f, n, kind.name, *tallies[k].first.Load())
		}
	}
	if total != loadRequests {
		t.Errorf("%s: %d requests accounted for, want %d", b, total, loadRequests)
	}
	if n := late.Load(); n > 0 {
		t.Errorf("%s: %d stalled requests ended more than %v after their deadline", b, n, lateness)
	}
	ob.checkAttempts(t)
	heapMax := sampler.heapMax.Load()
	t.Logf("%s: %d requests at concurrency %d in %v; stalled requests ended up to %v after their deadline; heap in use high-water %.1f MiB; %d connections made",
		b, total, loadConcurrency, took.Round(time.Millisecond), time.Duration(latest.Load()).Round(time.Millisecond), mib(heapMax), len(ob.conn.Attempts()))
	if heapMax > loadHeapLimit {
		t.Errorf("%s: heap in use reached %.1f MiB, over the bound of %.0f MiB", b, mib(heapMax), mib(loadHeapLimit))
	}
}

// storeMax stores v in a if it is larger than a's value.
func storeMax(a *atomic.Int64, v int64) {
	for old := a.Load(); v > old && !a.CompareAndSwap(old, v); old = a.Load() {
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }
