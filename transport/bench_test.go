package transport_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/transport"
)

// BenchmarkRetriesOnSuccess measures what turning retries on costs a
// request that succeeds the first time: nothing but a check of the method
// and body, no copy of the request. Both transports run in lock-step, as
// the module's comparison with plain net/http does (BenchmarkRatio, in the
// module's root), over keep-alive HTTP/1.1 on loopback: each iteration
// makes one request with each, in alternating order, and times each. The
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
			Backend: transport.Sockets,
			Dialer:  sockets.Dialer{Resolver: lab.NewResolver(map[string][]string{"example.com": {"93.184.216.34"}}), Connect: (&lab.Connector{Target: srv.Listener.Addr().String()}).Connect},
			Retries: retries,
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
