package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketstest"
	"github.com/outbound-go/outbound/transport"
)

const publicIP = "93.184.216.34" // a public address; the Connector sends it to loopback

// guardTransport stands in for http.DefaultTransport while a test runs: a
// request that reaches it did not go through Outbound, and it fails that
// request without sending anything.
type guardTransport struct{ calls atomic.Int32 }

func (g *guardTransport) RoundTrip(*http.Request) (*http.Response, error) {
	g.calls.Add(1)
	return nil, errors.New("the request reached the previous http.DefaultTransport")
}

// guardDefault sets a guardTransport as http.DefaultTransport for the rest
// of the test.
func guardDefault(t *testing.T) *guardTransport {
	t.Helper()
	orig := http.DefaultTransport
	g := new(guardTransport)
	http.DefaultTransport = g
	t.Cleanup(func() { http.DefaultTransport = orig })
	return g
}

// countingServer is a loopback HTTP server that counts its requests.
func countingServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, "hello")
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// checkRestored fails the test unless http.DefaultTransport is prev again
// and prev was never used.
func checkRestored(t *testing.T, prev *guardTransport) {
	t.Helper()
	if http.DefaultTransport != http.RoundTripper(prev) {
		t.Errorf("http.DefaultTransport is %T after run, want the previous one back", http.DefaultTransport)
	}
	if n := prev.calls.Load(); n != 0 {
		t.Errorf("%d requests went through the previous transport, want none", n)
	}
}

// Through either backend, a request made with http.DefaultClient goes
// through the installed transport: the name resolves through its resolver
// and the policy-checked public address is connected to the loopback server.
func TestRunThroughInstalledTransport(t *testing.T) {
	for _, b := range []transport.Backend{transport.URLFetch, transport.Sockets} {
		t.Run(b.String(), func(t *testing.T) {
			prev := guardDefault(t)
			srv, hits := countingServer(t)
			connector := &socketstest.Connector{Target: srv.Listener.Addr().String()}
			rt, err := transport.New(transport.Config{
				Backend: b,
				Dialer: sockets.Dialer{
					Resolver: socketstest.NewResolver(map[string][]string{"www.example.com": {publicIP}}),
					Connect:  connector.Connect,
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			if err := run(testContext(t), rt, "http://www.example.com/", &out); err != nil {
				t.Fatalf("run: %v", err)
			}
			want := fmt.Sprintf("http.DefaultTransport is Outbound's %s backend\nGET http://www.example.com/: 200 OK, 5 bytes\n", b)
			if out.String() != want {
				t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
			}
			if n := hits.Load(); n != 1 {
				t.Errorf("server got %d requests, want 1", n)
			}
			if a := connector.Attempts(); len(a) != 1 || a[0].String() != publicIP+":80" {
				t.Errorf("connections to %v, want one to %s:80", a, publicIP)
			}
			checkRestored(t, prev)
		})
	}
}

// With the transport from the environment, for each state of the switch, a
// loopback destination is refused by Outbound's policy and never reached:
// plain net/http would have connected.
func TestRunFromEnvRefusesLoopback(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value *string // nil: the variable is absent
		want  transport.Backend
	}{
		{"absent", nil, transport.URLFetch},
		{"empty", new(""), transport.Sockets},
		{"value", new("anyvalue"), transport.Sockets},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(transport.EnvSockets, "")
			if tc.value == nil {
				if err := os.Unsetenv(transport.EnvSockets); err != nil {
					t.Fatal(err)
				}
			} else {
				t.Setenv(transport.EnvSockets, *tc.value)
			}
			prev := guardDefault(t)
			srv, hits := countingServer(t)
			rt, err := transport.FromEnv()
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			err = run(testContext(t), rt, srv.URL+"/", &out)
			var denied *sockets.DeniedError
			if !errors.As(err, &denied) || !errors.Is(err, sockets.ErrDenied) {
				t.Fatalf("run to %s: %v, want a *sockets.DeniedError", srv.URL, err)
			}
			if !strings.HasPrefix(out.String(), fmt.Sprintf("http.DefaultTransport is Outbound's %s backend\n", tc.want)) {
				t.Errorf("output:\n%s\nwant the %s backend", out.String(), tc.want)
			}
			if strings.Count(out.String(), "refused by rule") != 1 {
				t.Errorf("output does not name the rule once:\n%s", out.String())
			}
			// The refusal is on the output already: main writes it no
			// second time.
			var stderr strings.Builder
			if code := report(err, &stderr); code != 1 || stderr.Len() != 0 {
				t.Errorf("report = %d, wrote %q; want 1 and nothing", code, stderr.String())
			}
			if n := hits.Load(); n != 0 {
				t.Errorf("server got %d requests, want none", n)
			}
			checkRestored(t, prev)
		})
	}
}

// TestReportOtherErrors: an error run did not write is written once.
func TestReportOtherErrors(t *testing.T) {
	var stderr strings.Builder
	if code := report(errors.New("boom"), &stderr); code != 1 || stderr.String() != "defaulttransport: boom\n" {
		t.Errorf("report = %d, wrote %q", code, stderr.String())
	}
}
