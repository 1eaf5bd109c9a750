package sockets_test

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/outbound-go/outbound/sockets"
)

// zeroReceivers are a nil pointer and a zero value of every exported type
// with methods.
var zeroReceivers = []any{
	(*sockets.Policy)(nil), &sockets.Policy{},
	(*sockets.GoogleRanges)(nil), &sockets.GoogleRanges{},
	(*sockets.Dialer)(nil), &sockets.Dialer{},
	(*sockets.DeniedError)(nil), &sockets.DeniedError{},
	(*sockets.LookupError)(nil), &sockets.LookupError{},
	(*sockets.ProxyError)(nil), &sockets.ProxyError{},
	(*sockets.TimeoutError)(nil), &sockets.TimeoutError{},
	sockets.Rule(0), sockets.ProxyFailure(0),
}

// TestNilAndZeroReceivers calls every exported method of a nil and a zero
// value of each exported type, with zero arguments (a background context for
// a context), and fails on a panic.
func TestNilAndZeroReceivers(t *testing.T) {
	ctxType := reflect.TypeFor[context.Context]()
	for _, recv := range zeroReceivers {
		v := reflect.ValueOf(recv)
		for i := range v.NumMethod() {
			m := v.Type().Method(i)
			name := fmt.Sprintf("%#v.%s", recv, m.Name)
			if v.Kind() == reflect.Pointer && v.IsNil() {
				name = fmt.Sprintf("(%T)(nil).%s", recv, m.Name)
			}
			ft := v.Method(i).Type()
			args := make([]reflect.Value, ft.NumIn())
			for j := range args {
				if in := ft.In(j); in == ctxType {
					args[j] = reflect.ValueOf(context.Background())
				} else {
					args[j] = reflect.Zero(in)
				}
			}
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%s panicked: %v", name, r)
					}
				}()
				if ft.IsVariadic() {
					v.Method(i).CallSlice(args)
				} else {
					v.Method(i).Call(args)
				}
			}()
		}
	}
}

// TestNilDialer: a nil *Dialer is the zero Dialer, with DefaultPolicy(). Every
// destination here is loopback, which that policy refuses before any
// connection or lookup.
func TestNilDialer(t *testing.T) {
	var d *sockets.Dialer
	ctx := t.Context()
	loop := netip.MustParseAddrPort("127.0.0.1:9")

	_, err := d.DialContext(ctx, "tcp", loop.String())
	assertRule(t, err, "tcp", "127.0.0.1", loop, sockets.RuleLoopback, direct)
	_, err = d.DialContext(ctx, "udp", loop.String())
	assertRule(t, err, "udp", "127.0.0.1", loop, sockets.RuleLoopback, direct)
	_, err = d.Resolve(ctx, "tcp", "127.0.0.1", 9)
	assertRule(t, err, "tcp", "127.0.0.1", loop, sockets.RuleLoopback, direct)
}

// TestNilReaders: a nil *GoogleRanges contains nothing, and neither do the
// ranges of a policy without the Google rule.
func TestNilReaders(t *testing.T) {
	var g *sockets.GoogleRanges
	if g.Prefixes() != nil || g.Contains(netip.MustParseAddr("8.8.8.8")) {
		t.Error("nil GoogleRanges is not empty")
	}
	if ps := sockets.PublicPolicy().GoogleRanges().Prefixes(); ps != nil {
		t.Errorf("PublicPolicy().GoogleRanges().Prefixes() = %v", ps)
	}
}

// TestZeroErrors: an error value built without its Err, or a nil one,
// still has a message.
func TestZeroErrors(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&sockets.LookupError{Host: "x.example"}, `sockets: lookup "x.example": <nil>`},
		{&sockets.TimeoutError{}, "sockets: <nil>"},
		{&sockets.ProxyError{Kind: sockets.ProxyBroken}, "sockets: proxy: proxy broke the tunnel"},
		{(*sockets.DeniedError)(nil), "<nil>"},
		{(*sockets.LookupError)(nil), "<nil>"},
		{(*sockets.TimeoutError)(nil), "<nil>"},
		{(*sockets.ProxyError)(nil), "<nil>"},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("%#v.Error() = %q, want %q", c.err, got, c.want)
		}
	}
}

// TestZeroPolicyIsDefault: the zero Policy, a nil *Policy and
// DefaultPolicy() make the same decision, with the same rule, for every row
// of the boundary table and the benchmark cases, and so do the policies
// derived from each of them.
func TestZeroPolicyIsDefault(t *testing.T) {
	t.Parallel()
	type derived struct {
		name string
		make func(*sockets.Policy) *sockets.Policy
	}
	for _, d := range []derived{
		{"itself", func(p *sockets.Policy) *sockets.Policy { return p }},
		{"Allow", func(p *sockets.Policy) *sockets.Policy { return p.Allow(pfx("127.0.0.1/32"), pfx("8.8.8.0/24")) }},
		{"Deny", func(p *sockets.Policy) *sockets.Policy { return p.Deny(pfx("1.1.1.0/24"), pfx("34.64.32.0/19")) }},
		{"WithGoogleRanges(whole)", func(p *sockets.Policy) *sockets.Policy {
			return p.WithGoogleRanges(sockets.EmbeddedGoogleRanges())
		}},
	} {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			zero, nilPolicy, def := d.make(&sockets.Policy{}), d.make(nil), d.make(sockets.DefaultPolicy())
			n := 0
			check := func(network, host string, ap netip.AddrPort) {
				n++
				want := ruleOf(def.Check(network, host, ap))
				if got := ruleOf(zero.Check(network, host, ap)); got != want {
					t.Errorf("zero Policy: Check(%q, %q, %v) rule %q, DefaultPolicy %q", network, host, ap, got, want)
				}
				if got := ruleOf(nilPolicy.Check(network, host, ap)); got != want {
					t.Errorf("nil Policy: Check(%q, %q, %v) rule %q, DefaultPolicy %q", network, host, ap, got, want)
				}
			}
			for _, tc := range checkCases {
				var ap netip.AddrPort
				if tc.addr != "" {
					ap = netip.MustParseAddrPort(tc.addr)
				}
				if tc.zone != "" {
					ap = netip.AddrPortFrom(ap.Addr().WithZone(tc.zone), ap.Port())
				}
				host := tc.host
				if host == emptyHost {
					host = ""
				}
				check(tc.network, host, ap)
				// The same address on the ports and networks the rules
				// single out.
				if ap.IsValid() {
					for _, network := range []string{"tcp", "udp6"} {
						for _, port := range []uint16{21, 25, 53, 443, 587, 993} {
							check(network, host, netip.AddrPortFrom(ap.Addr(), port))
						}
					}
				}
			}
			for _, bc := range benchCases {
				check(bc.network, bc.host, netip.MustParseAddrPort(bc.addr))
			}
			if n < 1000 {
				t.Errorf("only %d checks", n)
			}
			if !slices.Equal(zero.Exceptions(), def.Exceptions()) || !slices.Equal(nilPolicy.Exceptions(), def.Exceptions()) {
				t.Errorf("exceptions: zero %v, nil %v, DefaultPolicy %v", zero.Exceptions(), nilPolicy.Exceptions(), def.Exceptions())
			}
			for name, p := range map[string]*sockets.Policy{"zero": zero, "nil": nilPolicy} {
				if g := p.GoogleRanges(); g == nil || !slices.Equal(g.Prefixes(), def.GoogleRanges().Prefixes()) || g.CloudSyncToken != def.GoogleRanges().CloudSyncToken {
					t.Errorf("%s Policy: GoogleRanges differ from DefaultPolicy's", name)
				}
			}
		})
	}
}
