package lab_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/outbound-go/outbound/internal/lab"
)

func TestResolverNames(t *testing.T) {
	r := lab.NewResolver(map[string][]string{"www.example.com": {"93.184.216.34"}})
	ctx := context.Background()
	for _, host := range []string{"www.example.com", "WWW.Example.COM", "www.example.com."} {
		if got, err := r.LookupNetIP(ctx, "ip", host); err != nil || len(got) != 1 {
			t.Errorf("%q: %v, %v; want the address (names compare as DNS names do)", host, got, err)
		}
	}
	r.Set("www.example.com", "2606:2800:220:1::1")
	if got, err := r.LookupNetIP(ctx, "ip", "www.example.com"); err != nil || !slices.Equal(got, []netip.Addr{netip.MustParseAddr("2606:2800:220:1::1")}) {
		t.Errorf("after Set: %v, %v", got, err)
	}
	var want []lab.Lookup
	for _, host := range []string{"www.example.com", "WWW.Example.COM", "www.example.com.", "www.example.com"} {
		want = append(want, lab.Lookup{Network: "ip", Host: host})
	}
	if got := r.Calls(); !slices.Equal(got, want) {
		t.Errorf("Calls() = %v, want %v", got, want)
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.LookupNetIP(canceled, "ip", "www.example.com"); !errors.Is(err, context.Canceled) {
		t.Errorf("with an ended context: %v, want context.Canceled", err)
	}
}

// Raw answers the table as it is: every family, and an empty answer
// without an error.
func TestResolverRaw(t *testing.T) {
	ctx := context.Background()
	hosts := map[string][]string{"v4.example": {"93.184.216.34"}, "empty.example": {}}
	for _, raw := range []bool{false, true} {
		r := lab.NewResolver(hosts)
		r.Raw = raw
		got, err := r.LookupNetIP(ctx, "ip6", "v4.example")
		if raw && (err != nil || len(got) != 1) {
			t.Errorf("raw, ip6 of an IPv4 name: %v, %v; want the IPv4 address", got, err)
		}
		var dnsErr *net.DNSError
		if !raw && (!errors.As(err, &dnsErr) || !dnsErr.IsNotFound) {
			t.Errorf("ip6 of an IPv4 name: %v, %v; want not found", got, err)
		}
		got, err = r.LookupNetIP(ctx, "ip", "empty.example")
		if raw && (err != nil || len(got) != 0) {
			t.Errorf("raw, a name with no address: %v, %v; want no address and no error", got, err)
		}
		if !raw && !errors.As(err, &dnsErr) {
			t.Errorf("a name with no address: %v, %v; want not found", got, err)
		}
	}
}

func TestResolverFuncs(t *testing.T) {
	public, private := netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("10.0.0.1")
	var r lab.Resolver // the zero value works
	r.SetFunc("fixed.example", lab.Fixed(public))
	r.SetFunc("rebind.example", lab.Cycle([]netip.Addr{public}, []netip.Addr{private}))
	r.SetFunc("hang.example", lab.Hang)
	ctx := context.Background()

	if got, err := r.LookupNetIP(ctx, "ip", "fixed.example"); err != nil || !slices.Equal(got, []netip.Addr{public}) {
		t.Errorf("fixed: %v, %v", got, err)
	}
	var answers []netip.Addr
	for range 4 {
		got, err := r.LookupNetIP(ctx, "ip", "rebind.example")
		if err != nil || len(got) != 1 {
			t.Fatalf("cycle: %v, %v", got, err)
		}
		answers = append(answers, got[0])
	}
	if want := []netip.Addr{public, private, public, private}; !slices.Equal(answers, want) {
		t.Errorf("cycle answers %v, want %v", answers, want)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := r.LookupNetIP(short, "ip", "hang.example"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hang: %v, want the context's deadline", err)
	}
	if n := len(r.Lookups()); n != 6 {
		t.Errorf("%d lookups recorded, want 6", n)
	}
}
