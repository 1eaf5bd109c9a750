package socketapi_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketapi"
)

func TestLookupNetIP(t *testing.T) {
	res := lab.NewResolver(map[string][]string{
		"mail.example.com": {"93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"},
		"intranet.example": {"10.0.0.1"},
	})
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Resolver: res}}
	ctx := t.Context()

	got, err := d.LookupNetIP(ctx, "ip", "mail.example.com")
	want := []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("2606:2800:220:1:248:1893:25c8:1946")}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("LookupNetIP(ip) = %v, %v", got, err)
	}
	got, err = d.LookupNetIP(ctx, "ip4", "mail.example.com")
	if err != nil || !slices.Equal(got, want[:1]) {
		t.Errorf("LookupNetIP(ip4) = %v, %v", got, err)
	}
	// A lookup is not a connection: a private answer is returned as is.
	got, err = d.LookupNetIP(ctx, "ip", "intranet.example")
	if err != nil || len(got) != 1 || got[0] != netip.MustParseAddr("10.0.0.1") {
		t.Errorf("LookupNetIP(intranet) = %v, %v", got, err)
	}
	// A literal is not looked up.
	got, err = d.LookupNetIP(ctx, "ip", "192.0.2.7")
	if err != nil || len(got) != 1 || got[0] != netip.MustParseAddr("192.0.2.7") {
		t.Errorf("LookupNetIP(literal) = %v, %v", got, err)
	}
	if l := res.Lookups(); !slices.Equal(l, []string{"mail.example.com", "mail.example.com", "intranet.example"}) {
		t.Errorf("resolver saw %q", l)
	}
}

func TestLookupErrors(t *testing.T) {
	res := lab.NewResolver(nil)
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Resolver: res}}
	cases := []struct {
		name, network, host string
		wantErr             func(error) bool
	}{
		{"unknown name", "ip", "nowhere.example", func(err error) bool {
			var dns *net.DNSError
			return errors.As(err, &dns) && dns.IsNotFound
		}},
		{"bad network", "tcp", "mail.example.com", func(err error) bool {
			var u net.UnknownNetworkError
			return errors.As(err, &u)
		}},
		{"malformed name", "ip", "bad name!", func(error) bool { return true }},
		{"ambiguous numeric name", "ip", "0x7f.1", func(error) bool { return true }},
		{"empty", "ip", "", func(error) bool { return true }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := d.LookupNetIP(t.Context(), tc.network, tc.host)
			var le *sockets.LookupError
			if !errors.As(err, &le) || le.Host != tc.host || !tc.wantErr(err) || got != nil {
				t.Errorf("LookupNetIP(%q, %q) = %v, %v; want a *LookupError", tc.network, tc.host, got, err)
			}
		})
	}
	if l := res.Lookups(); !slices.Equal(l, []string{"nowhere.example"}) {
		t.Errorf("resolver saw %q; malformed input must not reach it", l)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := d.LookupNetIP(ctx, "ip", "mail.example.com"); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled lookup: %v", err)
	}
}

// TestLookupAddrNotImplemented: reverse lookups fail as on App Engine, for
// any input, and never reach the resolver.
func TestLookupAddrNotImplemented(t *testing.T) {
	res := lab.NewResolver(nil)
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Resolver: res}}
	for _, addr := range []string{"8.8.8.8", "2001:4860:4860::8888", "127.0.0.1", "garbage", ""} {
		names, err := d.LookupAddr(t.Context(), addr)
		if names != nil || !errors.Is(err, socketapi.ErrNotImplemented) || !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("LookupAddr(%q) = %v, %v; want ErrNotImplemented", addr, names, err)
		}
		var ne *socketapi.Error
		if !errors.As(err, &ne) || ne.Op != "reverse lookup" || ne.Arg != addr {
			t.Errorf("LookupAddr(%q): %#v", addr, err)
		}
		if errors.Is(err, sockets.ErrDenied) {
			t.Errorf("LookupAddr(%q) reads as a policy refusal", addr)
		}
	}
	if l := res.Lookups(); len(l) != 0 {
		t.Errorf("resolver saw %q", l)
	}
	_, err := d.LookupAddr(t.Context(), "8.8.8.8")
	if got, want := err.Error(), `socketapi: reverse lookup of "8.8.8.8": not implemented`; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}
