package transport_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/transport"
)

// tenantRig is one Transport of a backend whose dials of www.example.com
// (93.184.216.34, public) reach a loopback server through the Connect seam,
// with counters of what the server saw.
type tenantRig struct {
	rt       *transport.Transport
	seam     *lab.Connector
	requests atomic.Int32 // requests the server answered
	conns    atomic.Int32 // connections the server accepted
}

func newTenantRig(t *testing.T, backend transport.Backend) *tenantRig {
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
	rt, err := transport.New(transport.Config{
		Backend:  backend,
		Resolver: lab.NewResolver(map[string][]string{"www.example.com": {"93.184.216.34"}}),
		Dialer:   &sockets.Dialer{Connect: r.seam.Connect},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.CloseIdleConnections)
	r.rt = rt
	return r
}

// get sends GET http://www.example.com/ with p on its context (none when
// p is nil) and reads the whole body, so that the connection is back in
// its pool when get returns.
func (r *tenantRig) get(t *testing.T, p *sockets.Policy) error {
	t.Helper()
	ctx := t.Context()
	if p != nil {
		ctx = sockets.WithPolicy(ctx, p)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://www.example.com/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := r.rt.RoundTrip(req)
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

// TestTenantsDoNotShareConnections is two tenants on one Transport, on
// both backends: tenant A's policy allows 93.184.216.34, tenant B's denies
// it. After A's request leaves an idle keep-alive connection, B's request
// to the same host is refused without a connection: the seam sees no new
// attempt and the server no request from B. A's next request reuses its
// own pooled connection.
func TestTenantsDoNotShareConnections(t *testing.T) {
	t.Parallel()
	a := sockets.DefaultPolicy()
	b := sockets.DefaultPolicy().Deny(netip.MustParsePrefix("93.184.216.34/32"))
	for _, backend := range backends {
		t.Run(backend.String(), func(t *testing.T) {
			t.Parallel()
			r := newTenantRig(t, backend)
			if err := r.get(t, a); err != nil {
				t.Fatalf("tenant A: %v", err)
			}
			want := []netip.AddrPort{netip.MustParseAddrPort("93.184.216.34:80")}
			if got := r.seam.Attempts(); len(got) != 1 || got[0] != want[0] {
				t.Fatalf("attempts after A = %v, want %v", got, want)
			}

			err := r.get(t, b)
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

			// A again: its idle connection is reused, no new dial.
			if err := r.get(t, a); err != nil {
				t.Fatalf("tenant A again: %v", err)
			}
			if got := r.seam.Attempts(); len(got) != 1 {
				t.Errorf("attempts after A's second request = %v, want 1 (its pooled connection)", got)
			}
			if n := r.conns.Load(); n != 1 {
				t.Errorf("server accepted %d connections, want 1", n)
			}
			// B once more, after A's connection went idle again.
			if err := r.get(t, b); !errors.As(err, &de) {
				t.Fatalf("tenant B again: %v, want a refusal", err)
			}
			if n := r.requests.Load(); n != 2 {
				t.Errorf("server saw %d requests, want A's 2", n)
			}
		})
	}
}

// TestTenantNarrowsTransport holds a request's policy to narrowing only:
// the Transport's own policy still applies, and a request without a policy
// uses the Transport's pool, which a tenant's request never takes from.
func TestTenantNarrowsTransport(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend.String(), func(t *testing.T) {
			t.Parallel()
			r := newTenantRig(t, backend)
			// No policy on the context: the Transport's own (the default).
			if err := r.get(t, nil); err != nil {
				t.Fatalf("no tenant: %v", err)
			}
			// A tenant whose host list refuses the name: no lookup, no dial,
			// although an idle connection to the host sits in the
			// Transport's own pool.
			err := r.get(t, sockets.DefaultPolicy().AllowHosts("api.example.net"))
			var de *sockets.DeniedError
			if !errors.As(err, &de) || de.Rule != sockets.RuleHostNotAllowed {
				t.Fatalf("tenant: %v, want a refusal for host_not_allowed", err)
			}
			// A tenant that allows more than the Transport cannot widen
			// it: the Transport's policy below refuses the address.
			narrow := newTenantRigPolicy(t, backend, sockets.DefaultPolicy().Deny(netip.MustParsePrefix("93.184.216.0/24")))
			err = narrow.get(t, sockets.PublicPolicy().Allow(netip.MustParsePrefix("93.184.216.0/24")))
			if !errors.As(err, &de) || de.Rule != sockets.RuleDenyList {
				t.Fatalf("wider tenant: %v, want a refusal for deny_list", err)
			}
			if got := narrow.seam.Attempts(); len(got) != 0 {
				t.Errorf("attempts = %v, want none", got)
			}
			if got := r.seam.Attempts(); len(got) != 1 {
				t.Errorf("attempts = %v, want the untenanted request's 1", got)
			}
		})
	}
}

// newTenantRigPolicy is newTenantRig with a Transport policy.
func newTenantRigPolicy(t *testing.T, backend transport.Backend, p *sockets.Policy) *tenantRig {
	t.Helper()
	r := &tenantRig{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.requests.Add(1) }))
	t.Cleanup(srv.Close)
	r.seam = &lab.Connector{Target: srv.Listener.Addr().String()}
	rt, err := transport.New(transport.Config{
		Backend:  backend,
		Policy:   p,
		Resolver: lab.NewResolver(map[string][]string{"www.example.com": {"93.184.216.34"}}),
		Dialer:   &sockets.Dialer{Connect: r.seam.Connect},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.CloseIdleConnections)
	r.rt = rt
	return r
}

// TestTenantPoolsBounded makes requests under more distinct policies than
// the Transport keeps pools for: the least recently used pool is dropped
// and its idle connection closed, and every request still succeeds.
func TestTenantPoolsBounded(t *testing.T) {
	t.Parallel()
	const tenants = 65 // one more than the Transport keeps
	r := newTenantRig(t, transport.Sockets)
	for i := range tenants {
		if err := r.get(t, sockets.DefaultPolicy()); err != nil {
			t.Fatalf("tenant %d: %v", i, err)
		}
	}
	if got := len(r.seam.Attempts()); got != tenants {
		t.Fatalf("attempts = %d, want one per tenant, %d", got, tenants)
	}
	if got := len(r.seam.Open()); got != tenants-1 {
		t.Errorf("open connections = %d, want %d: the dropped pool's closed", got, tenants-1)
	}
	r.rt.CloseIdleConnections()
	if got := r.seam.Open(); len(got) != 0 {
		t.Errorf("open connections after CloseIdleConnections = %v, want none", got)
	}
}
