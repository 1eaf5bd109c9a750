package transport_test

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/internal/obs"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/transport"
)

// metricsRig is a transport of one backend whose metrics a manual reader
// of the OpenTelemetry SDK collects. www.example.com resolves to a public
// address that the connect seam maps onto srv; internal.example resolves
// to a private one, which the policy refuses.
type metricsRig struct {
	rt       *transport.Transport
	reader   *sdkmetric.ManualReader
	conn     *lab.Connector
	mu       sync.Mutex
	refusals []*sockets.DeniedError
}

func newMetricsRig(t *testing.T, b transport.Backend, srv *httptest.Server) *metricsRig {
	t.Helper()
	r := &metricsRig{reader: sdkmetric.NewManualReader()}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	r.conn = &lab.Connector{Target: srv.Listener.Addr().String()}
	roots := x509.NewCertPool()
	if srv.Certificate() != nil {
		roots.AddCert(srv.Certificate())
	}
	rt, err := transport.New(transport.Config{
		Backend: b,
		Dialer: sockets.Dialer{
			Resolver: lab.NewResolver(map[string][]string{
				"www.example.com":  {"93.184.216.34"},
				"internal.example": {"10.0.0.1"},
			}),
			Connect:       r.conn.Connect,
			MeterProvider: mp,
		},
		TLS: tlsconf.Config{RootCAs: roots},
		OnRefusal: func(ctx context.Context, err *sockets.DeniedError) {
			if ctx == nil {
				t.Error("OnRefusal got a nil context")
			}
			r.mu.Lock()
			r.refusals = append(r.refusals, err)
			r.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.CloseIdleConnections)
	r.rt = rt
	return r
}

// get fetches url and reads the body to its end.
func (r *metricsRig) get(t *testing.T, url string) (string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := r.rt.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// collect reads every metric recorded so far, by name.
func (r *metricsRig) collect(t *testing.T) map[string]metricdata.Aggregation {
	t.Helper()
	return collect(t, r.reader)
}

// collect reads every metric reader has recorded so far, by name, and
// checks that each is in the module's instrumentation scope.
func collect(t *testing.T, reader *sdkmetric.ManualReader) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]metricdata.Aggregation)
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != obs.ScopeName {
			t.Errorf("scope %q, want %q", sm.Scope.Name, obs.ScopeName)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// attrs renders an attribute set as "k=v,k=v", sorted by key.
func attrs(s attribute.Set) string {
	var b strings.Builder
	for i, kv := range s.ToSlice() {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(string(kv.Key) + "=" + kv.Value.String())
	}
	return b.String()
}

// sums returns a counter's value by attribute set.
func sums(t *testing.T, data map[string]metricdata.Aggregation, name string) map[string]int64 {
	t.Helper()
	out := make(map[string]int64)
	if data[name] == nil {
		return out
	}
	s, ok := data[name].(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is a %T, want an int64 sum", name, data[name])
	}
	if !s.IsMonotonic {
		t.Errorf("%s is not monotonic", name)
	}
	for _, dp := range s.DataPoints {
		out[attrs(dp.Attributes)] += dp.Value
	}
	return out
}

// counts returns a histogram's count of measurements by attribute set.
func counts(t *testing.T, data map[string]metricdata.Aggregation, name string) map[string]uint64 {
	t.Helper()
	out := make(map[string]uint64)
	if data[name] == nil {
		return out
	}
	h, ok := data[name].(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s is a %T, want a float64 histogram", name, data[name])
	}
	for _, dp := range h.DataPoints {
		out[attrs(dp.Attributes)] += dp.Count
		if dp.Sum < 0 {
			t.Errorf("%s: negative duration sum %v", name, dp.Sum)
		}
	}
	return out
}

// TestMetricsRefusal: a private address is refused without a connection,
// counted once on outbound.refusals with its rule, and handed to
// OnRefusal once.
func TestMetricsRefusal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	for _, b := range backends {
		t.Run(b.String(), func(t *testing.T) {
			r := newMetricsRig(t, b, srv)
			_, err := r.get(t, "http://internal.example/")
			if !errors.Is(err, sockets.ErrDenied) {
				t.Fatalf("err = %v, want a refusal", err)
			}
			if a := r.conn.Attempts(); len(a) != 0 {
				t.Fatalf("connect attempts %v, want none", a)
			}
			data := r.collect(t)
			got := sums(t, data, obs.MetricRefusals)
			want := map[string]int64{"network.transport=tcp,outbound.rule=private": 1}
			if len(got) != len(want) || got["network.transport=tcp,outbound.rule=private"] != 1 {
				t.Errorf("%s = %v, want %v", obs.MetricRefusals, got, want)
			}
			if c := counts(t, data, obs.MetricConnectDuration); len(c) != 0 {
				t.Errorf("%s = %v, want no connect", obs.MetricConnectDuration, c)
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if len(r.refusals) != 1 || r.refusals[0].Rule != sockets.RulePrivate || r.refusals[0].Host != "internal.example" {
				t.Errorf("OnRefusal got %v, want one private refusal of internal.example", r.refusals)
			}
		})
	}
}

// TestMetricsSchemeRefusal: a refusal made before any dial is counted
// once too.
func TestMetricsSchemeRefusal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	for _, b := range backends {
		t.Run(b.String(), func(t *testing.T) {
			r := newMetricsRig(t, b, srv)
			if _, err := r.get(t, "ftp://www.example.com/file"); !errors.Is(err, sockets.ErrDenied) {
				t.Fatalf("err = %v, want a refusal", err)
			}
			got := sums(t, r.collect(t), obs.MetricRefusals)
			if len(got) != 1 || got["network.transport=tcp,outbound.rule=scheme"] != 1 {
				t.Errorf("%s = %v, want one scheme refusal", obs.MetricRefusals, got)
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if len(r.refusals) != 1 || r.refusals[0].Rule != sockets.RuleScheme {
				t.Errorf("OnRefusal got %v, want one scheme refusal", r.refusals)
			}
		})
	}
}

// TestMetricsFetch: an https fetch records one lookup, one connect over
// IPv4, one TLS handshake, and the bytes in both directions, on both
// backends.
func TestMetricsFetch(t *testing.T) {
	const body = "hello, metrics"
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	}))
	defer srv.Close()
	for _, b := range backends {
		t.Run(b.String(), func(t *testing.T) {
			r := newMetricsRig(t, b, srv)
			got, err := r.get(t, "https://www.example.com/")
			if err != nil {
				t.Fatal(err)
			}
			if got != body {
				t.Fatalf("body %q, want %q", got, body)
			}
			r.rt.CloseIdleConnections()
			data := r.collect(t)
			for _, c := range []struct {
				name, attrs string
			}{
				{obs.MetricDNSLookupDuration, ""},
				{obs.MetricConnectDuration, "network.transport=tcp,network.type=ipv4"},
				{obs.MetricTLSDuration, ""},
			} {
				n := counts(t, data, c.name)
				if len(n) != 1 || n[c.attrs] != 1 {
					t.Errorf("%s = %v, want one measurement with {%s}", c.name, n, c.attrs)
				}
			}
			moved := sums(t, data, obs.MetricIO)
			tx, rx := moved["network.io.direction=transmit,network.transport=tcp"], moved["network.io.direction=receive,network.transport=tcp"]
			// The request line alone is longer than 16 bytes; the reply
			// carries the body, and TLS records wrap both.
			if len(moved) != 2 || tx < 16 || rx < int64(len(body)) {
				t.Errorf("%s = %v, want bytes in both directions", obs.MetricIO, moved)
			}
			if c := sums(t, data, obs.MetricRefusals); len(c) != 0 {
				t.Errorf("%s = %v, want none", obs.MetricRefusals, c)
			}
		})
	}
}

// TestMetricsLookupFailure: a name that does not resolve records its
// lookup with error.type host_not_found, and no connect.
func TestMetricsLookupFailure(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	for _, b := range backends {
		t.Run(b.String(), func(t *testing.T) {
			r := newMetricsRig(t, b, srv)
			if _, err := r.get(t, "http://nowhere.example/"); err == nil {
				t.Fatal("fetch of an unknown name succeeded")
			}
			data := r.collect(t)
			n := counts(t, data, obs.MetricDNSLookupDuration)
			if len(n) != 1 || n["error.type=host_not_found"] < 1 {
				t.Errorf("%s = %v, want lookups with error.type=host_not_found", obs.MetricDNSLookupDuration, n)
			}
			if c := counts(t, data, obs.MetricConnectDuration); len(c) != 0 {
				t.Errorf("%s = %v, want no connect", obs.MetricConnectDuration, c)
			}
		})
	}
}

// TestMetricsTLSFailure: a certificate the client does not trust records
// the handshake with error.type certificate.
func TestMetricsTLSFailure(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	untrusted := httptest.NewServer(nil) // no certificate: the rig trusts none
	untrusted.Close()
	for _, b := range backends {
		t.Run(b.String(), func(t *testing.T) {
			r := newMetricsRig(t, b, untrusted)
			r.conn.Target = srv.Listener.Addr().String()
			if _, err := r.get(t, "https://www.example.com/"); err == nil {
				t.Fatal("fetch from an untrusted server succeeded")
			}
			n := counts(t, r.collect(t), obs.MetricTLSDuration)
			if n["error.type=certificate"] < 1 {
				t.Errorf("%s = %v, want a handshake with error.type=certificate", obs.MetricTLSDuration, n)
			}
		})
	}
}
