package transport_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"reflect"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/internal/obs"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketapi"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/transport"
)

// wrappers returns the wrappers between c and the *net.TCPConn the dial
// made, by type, outermost first, TLS aside: a *tls.Conn is looked
// through (NetConn), and so is any struct that embeds the connection it
// wraps as a net.Conn field. It fails the test when c is not, in the end,
// a *net.TCPConn.
func wrappers(t *testing.T, c net.Conn) []string {
	t.Helper()
	var out []string
	for {
		switch v := c.(type) {
		case *net.TCPConn:
			return out
		case *tls.Conn:
			c = v.NetConn()
			continue
		case *socketapi.Conn:
			t.Fatalf("a *socketapi.Conn on the HTTP path (wrappers %v)", out)
		}
		out = append(out, reflect.TypeOf(c).String())
		rv := reflect.ValueOf(c)
		if rv.Kind() == reflect.Pointer {
			rv = rv.Elem()
		}
		var inner net.Conn
		if rv.Kind() == reflect.Struct {
			if f := rv.FieldByName("Conn"); f.IsValid() && f.CanInterface() {
				inner, _ = f.Interface().(net.Conn)
			}
		}
		if inner == nil {
			t.Fatalf("cannot see through %T (wrappers %v)", c, out)
		}
		c = inner
	}
}

// TestHTTPPathWrappers holds the HTTP path to what it uses: the sockets
// backend hands net/http the connection its dialer made, unwrapped, or in
// one byte counter (outbound.io) when the Dialer's MeterProvider records;
// the urlfetch backend wraps it once, in the counter behind Stats (and,
// with a recording MeterProvider, in outbound.io's counter too). Neither
// carries the Sockets API's *socketapi.Conn.
func TestHTTPPathWrappers(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	plain := httptest.NewServer(srv.Config.Handler)
	t.Cleanup(plain.Close)

	for _, tc := range []struct {
		name    string
		backend transport.Backend
		meter   bool // a MeterProvider that records
		want    int  // wrappers
	}{
		{"sockets", transport.Sockets, false, 0},
		{"sockets with a MeterProvider", transport.Sockets, true, 1},
		{"urlfetch", transport.URLFetch, false, 1},
		{"urlfetch with a MeterProvider", transport.URLFetch, true, 2},
	} {
		for _, s := range []*httptest.Server{plain, srv} {
			scheme := "http"
			if s == srv {
				scheme = "https"
			}
			t.Run(tc.name+"/"+scheme, func(t *testing.T) {
				d := sockets.Dialer{
					Resolver: lab.NewResolver(map[string][]string{"example.com": {"93.184.216.34"}}),
					Connect:  (&lab.Connector{Target: s.Listener.Addr().String()}).Connect,
				}
				var reader *sdkmetric.ManualReader
				if tc.meter {
					reader = sdkmetric.NewManualReader()
					mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
					t.Cleanup(func() { mp.Shutdown(context.Background()) })
					d.MeterProvider = mp
				}
				rt, err := transport.New(transport.Config{
					Backend: tc.backend,
					Dialer:  d,
					TLS:     tlsconf.Config{RootCAs: roots},
				})
				if err != nil {
					t.Fatal(err)
				}
				defer rt.CloseIdleConnections()
				var got net.Conn
				req, _ := http.NewRequest(http.MethodGet, scheme+"://example.com/", nil)
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
					GotConn: func(info httptrace.GotConnInfo) { got = info.Conn },
				}))
				resp, err := rt.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if got == nil {
					t.Fatal("no connection reported")
				}
				if w := wrappers(t, got); len(w) != tc.want {
					t.Errorf("%T: wrappers %v, want %d", got, w, tc.want)
				}
				if tc.meter {
					moved := sums(t, collect(t, reader), obs.MetricIO)
					tx, rx := moved["network.io.direction=transmit,network.transport=tcp"], moved["network.io.direction=receive,network.transport=tcp"]
					if tx == 0 || rx == 0 {
						t.Errorf("%s = %v, want bytes both ways", obs.MetricIO, moved)
					}
				}
			})
		}
	}
}
