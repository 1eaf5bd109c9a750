package transport_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/tlsconf"
	"github.com/outbound-go/outbound/transport"
)

// tenantRig is a base Transport of one backend whose dials of
// www.example.com (93.184.216.34, public) and storage.example
// (142.250.0.1, in Google's ranges) reach one loopback server through the
// Connect seam, with counters of what the server saw. Transports derived
// from it with ForPolicy share its seam and server, so the seam's attempts
// and the server's connections count every pool's dials.
type tenantRig struct {
	rt       *transport.Transport
	seam     *lab.Connector
	res      *lab.Resolver
	requests atomic.Int32 // requests the server answered
	conns    atomic.Int32 // connections the server accepted

	mu       sync.Mutex
	refusals []*sockets.DeniedError // from OnRefusal
}

// newTenantRig builds the base Transport with p as its policy (nil: the
// backend's default).
func newTenantRig(t *testing.T, backend transport.Backend, p *sockets.Policy) *tenantRig {
	t.Helper()
	r := &tenantRig{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		io.WriteString(w, "hello")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			r.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	r.seam = &lab.Connector{Target: srv.Listener.Addr().String()}
	r.res = lab.NewResolver(map[string][]string{
		"www.example.com": {"93.184.216.34"},
		"storage.example": {"142.250.0.1"},
	})
	rt, err := transport.New(transport.Config{
		Backend: backend,
		Dialer:  sockets.Dialer{Policy: p, Resolver: r.res, Connect: r.seam.Connect},
		OnRefusal: func(_ context.Context, err *sockets.DeniedError) {
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

// derive returns r's Transport for p, closed at the end of the test.
func (r *tenantRig) derive(t *testing.T, p *sockets.Policy) *transport.Transport {
	t.Helper()
	rt, err := r.rt.ForPolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.CloseIdleConnections)
	if rt == r.rt || rt.Backend() != r.rt.Backend() {
		t.Fatalf("ForPolicy returned %p of backend %v; want a new Transport of %v", rt, rt.Backend(), r.rt.Backend())
	}
	return rt
}

// get sends GET url through rt and reads the whole body, so that the
// connection is back in rt's pool when get returns.
func get(t *testing.T, rt http.RoundTripper, url string) error {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return nil
}

const tenantURL = "http://www.example.com/"

// TestForPolicyPoolsDoNotMix is two tenants derived from one Transport, on
// both backends: tenant A's policy allows 93.184.216.34, tenant B's
// denies it. After A's request leaves an idle keep-alive connection, B's
// request to the same host is refused without a connection: the seam sees
// no new attempt and the server no request from B. A's next request reuses
// its own pooled connection. A third tenant C, allowed like A, never takes
// A's idle connection: it dials its own, and each then reuses only its
// own. The refusal reaches the base Transport's OnRefusal: a derived
// Transport keeps its settings.
func TestForPolicyPoolsDoNotMix(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend.String(), func(t *testing.T) {
			t.Parallel()
			r := newTenantRig(t, backend, nil)
			a := r.derive(t, sockets.DefaultPolicy())
			b := r.derive(t, sockets.DefaultPolicy().Deny(netip.MustParsePrefix("93.184.216.34/32")))
			c := r.derive(t, sockets.PublicPolicy())

			if err := get(t, a, tenantURL); err != nil {
				t.Fatalf("tenant A: %v", err)
			}
			want := []netip.AddrPort{netip.MustParseAddrPort("93.184.216.34:80")}
			if got := r.seam.Attempts(); !slices.Equal(got, want) {
				t.Fatalf("attempts after A = %v, want %v", got, want)
			}

			err := get(t, b, tenantURL)
			var de *sockets.DeniedError
			if !errors.As(err, &de) || de.Rule != sockets.RuleDenyList {
				t.Fatalf("tenant B: %v, want a refusal for deny_list", err)
			}
			if got := r.seam.Attempts(); len(got) != 1 {
				t.Errorf("attempts after B = %v, want A's one only", got)
			}
			if n := r.requests.Load(); n != 1 {
				t.Errorf("server saw %d requests after B, want A's 1", n)
			}
			r.mu.Lock()
			if len(r.refusals) != 1 || r.refusals[0].Rule != sockets.RuleDenyList {
				t.Errorf("OnRefusal got %v, want B's refusal", r.refusals)
			}
			r.mu.Unlock()

			// A again: its idle connection is reused, no new dial.
			if err := get(t, a, tenantURL); err != nil {
				t.Fatalf("tenant A again: %v", err)
			}
			if got := r.seam.Attempts(); len(got) != 1 {
				t.Errorf("attempts after A's second request = %v, want 1 (its pooled connection)", got)
			}
			if n := r.conns.Load(); n != 1 {
				t.Errorf("server accepted %d connections, want 1", n)
			}
			// B once more, after A's connection went idle again.
			if err := get(t, b, tenantURL); !errors.As(err, &de) {
				t.Fatalf("tenant B again: %v, want a refusal", err)
			}
			if n := r.requests.Load(); n != 2 {
				t.Errorf("server saw %d requests, want A's 2", n)
			}

			// C is allowed too, but A's idle connection is not C's: C
			// dials, and from then on each tenant reuses its own.
			if err := get(t, c, tenantURL); err != nil {
				t.Fatalf("tenant C: %v", err)
			}
			if got, n := r.seam.Attempts(), r.conns.Load(); len(got) != 2 || n != 2 {
				t.Fatalf("after C: attempts %v, %d connections; want 2 and 2 (C's own)", got, n)
			}
			for i, rt := range []*transport.Transport{a, c, a, c} {
				if err := get(t, rt, tenantURL); err != nil {
					t.Fatalf("round %d: %v", i, err)
				}
			}
			if got, n := r.seam.Attempts(), r.conns.Load(); len(got) != 2 || n != 2 {
				t.Errorf("after A and C alternate: attempts %v, %d connections; want 2 and 2", got, n)
			}
			// The base Transport's pool is a third one: untouched so far,
			// it dials its own connection too.
			if err := get(t, r.rt, tenantURL); err != nil {
				t.Fatalf("base: %v", err)
			}
			if n := r.conns.Load(); n != 3 {
				t.Errorf("after the base's request: %d connections, want 3", n)
			}
		})
	}
}

// TestForPolicyReplacesPolicy: p is the derived Transport's whole policy,
// in place of the base's, and nil means the backend's default, not the
// base's. A derived policy that refuses the host by name refuses it before
// any lookup or dial, although an idle connection to the host sits in the
// base's pool; the base is not changed.
func TestForPolicyReplacesPolicy(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend.String(), func(t *testing.T) {
			t.Parallel()
			// The base denies www.example.com's address.
			r := newTenantRig(t, backend, sockets.PublicPolicy().Deny(netip.MustParsePrefix("93.184.216.0/24")))
			var de *sockets.DeniedError
			if err := get(t, r.rt, tenantURL); !errors.As(err, &de) || de.Rule != sockets.RuleDenyList {
				t.Fatalf("base: %v, want a refusal for deny_list", err)
			}

			// nil: the backend's default, which allows the address; on
			// Google's ranges the defaults differ (urlfetch reaches them,
			// sockets refuses them).
			def := r.derive(t, nil)
			if err := get(t, def, tenantURL); err != nil {
				t.Fatalf("ForPolicy(nil): %v, want the backend's default policy, which allows it", err)
			}
			err := get(t, def, "http://storage.example/")
			switch backend {
			case transport.URLFetch:
				if err != nil {
					t.Errorf("ForPolicy(nil), Google's ranges: %v; want urlfetch's default (PublicPolicy) to reach them", err)
				}
			case transport.Sockets:
				if !errors.As(err, &de) || de.Rule != sockets.RuleGoogle {
					t.Errorf("ForPolicy(nil), Google's ranges: %v; want sockets' default to refuse them (google)", err)
				}
			}

			// A policy whose host list refuses the name: no lookup, no
			// dial, although def's pool holds an idle connection to it.
			lookups, attempts := len(r.res.Lookups()), len(r.seam.Attempts())
			narrow := r.derive(t, sockets.DefaultPolicy().AllowHosts("api.example.net"))
			err = get(t, narrow, tenantURL)
			if !errors.As(err, &de) || de.Rule != sockets.RuleHostNotAllowed {
				t.Fatalf("host list: %v, want a refusal for host_not_allowed", err)
			}
			if l, a := len(r.res.Lookups()), len(r.seam.Attempts()); l != lookups || a != attempts {
				t.Errorf("host list: %d lookups and %d attempts more, want none", l-lookups, a-attempts)
			}

			// The base still refuses: deriving changed nothing in it.
			if err := get(t, r.rt, tenantURL); !errors.As(err, &de) || de.Rule != sockets.RuleDenyList {
				t.Errorf("base after ForPolicy: %v, want its own refusal", err)
			}
		})
	}
}

// TestForPolicySharesTLSSessionCache: a Transport derived with ForPolicy
// resumes, on its first connection, the TLS session its base made: they
// share one session cache. A Transport built apart with the same Config
// has a cache of its own and does not. The server records whether each
// handshake resumed.
func TestForPolicySharesTLSSessionCache(t *testing.T) {
	t.Parallel()
	cert, roots := lab.NewCert("www.example.com")
	for _, backend := range backends {
		t.Run(backend.String(), func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var resumed []bool // per handshake, in order
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "hello")
			}))
			srv.EnableHTTP2 = true
			srv.TLS = &tls.Config{
				Certificates: []tls.Certificate{cert},
				VerifyConnection: func(cs tls.ConnectionState) error {
					mu.Lock()
					resumed = append(resumed, cs.DidResume)
					mu.Unlock()
					return nil
				},
			}
			srv.StartTLS()
			t.Cleanup(srv.Close)
			seam := &lab.Connector{Target: srv.Listener.Addr().String()}
			cfg := transport.Config{
				Backend: backend,
				Dialer: sockets.Dialer{
					Resolver: lab.NewResolver(map[string][]string{"www.example.com": {"93.184.216.34"}}),
					Connect:  seam.Connect,
				},
				TLS: tlsconf.Config{RootCAs: roots},
			}
			base, err := transport.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(base.CloseIdleConnections)
			apart, err := transport.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(apart.CloseIdleConnections)
			derived, err := base.ForPolicy(sockets.PublicPolicy())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(derived.CloseIdleConnections)

			const url = "https://www.example.com/"
			for _, rt := range []*transport.Transport{base, apart, derived} {
				if err := get(t, rt, url); err != nil {
					t.Fatal(err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if want := []bool{false, false, true}; !slices.Equal(resumed, want) {
				t.Errorf("handshakes resumed: %v, want %v (base new, built apart new, derived resumed the base's session)", resumed, want)
			}
			if n := len(seam.Attempts()); n != 3 {
				t.Errorf("%d connections, want 3: one per Transport", n)
			}
		})
	}
}

// TestForPolicyZeroTransport: the zero Transport has nothing to derive
// from; ForPolicy says so with ErrInvalidRequest.
func TestForPolicyZeroTransport(t *testing.T) {
	var zero transport.Transport
	for _, p := range []*sockets.Policy{nil, sockets.DefaultPolicy()} {
		rt, err := zero.ForPolicy(p)
		if rt != nil || !errors.Is(err, transport.ErrInvalidRequest) {
			t.Errorf("ForPolicy(%v) of the zero Transport = %v, %v; want nil and ErrInvalidRequest", p, rt, err)
		}
	}
}

// TestForPolicyCloseIdleConnections: each derived Transport's
// CloseIdleConnections closes its own pool's idle connections and no
// other's, the base's included.
func TestForPolicyCloseIdleConnections(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend.String(), func(t *testing.T) {
			t.Parallel()
			r := newTenantRig(t, backend, nil)
			tenants := []*transport.Transport{r.rt, r.derive(t, nil), r.derive(t, sockets.DefaultPolicy()), r.derive(t, sockets.PublicPolicy())}
			for i, rt := range tenants {
				if err := get(t, rt, tenantURL); err != nil {
					t.Fatalf("tenant %d: %v", i, err)
				}
			}
			if got := len(r.seam.Open()); got != len(tenants) {
				t.Fatalf("open connections = %d, want one per Transport, %d", got, len(tenants))
			}
			for i, rt := range tenants {
				rt.CloseIdleConnections()
				if got := len(r.seam.Open()); got != len(tenants)-i-1 {
					t.Errorf("after closing %d pools: %d open connections, want %d", i+1, got, len(tenants)-i-1)
				}
			}
		})
	}
}
