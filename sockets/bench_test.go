package sockets_test

import (
	"net/netip"
	"testing"

	"github.com/outbound-go/outbound/sockets"
)

// benchCases are destinations checked against the full table: the
// never-public blocks and the embedded Google services' ranges.
var benchCases = []struct {
	name, network, host, addr string
	allowed                   bool
}{
	{"public4", "tcp", "one.example", "1.1.1.1:443", true},
	{"public6", "tcp", "v6.example", "[2606:4700:4700::1111]:443", true},
	{"mapped4", "tcp", "one.example", "[::ffff:1.1.1.1]:443", true},
	{"6to4-public", "tcp", "x.example", "[2002:101:101::1]:443", true},
	{"dns-exception", "udp", "dns.google", "8.8.8.8:53", true},
	{"gmail-exception", "tcp", "smtp.gmail.com", "142.251.9.108:587", true},
	{"cloud4", "tcp", "shop.example", "34.64.32.1:443", true},
	{"cloud6", "tcp", "shop.example", "[2600:1900:4000::1]:443", true},
	{"private4", "tcp", "intranet.example", "10.0.0.1:443", false},
	{"google4", "tcp", "www.google.com", "142.250.0.1:443", false},
	{"teredo", "tcp", "x.example", "[2001:0:a00:1::]:443", false},
}

// BenchmarkCheck measures Policy.Check. The allowed cases must stay under
// 100 ns and 0 allocations per call; a refusal allocates its error.
func BenchmarkCheck(b *testing.B) {
	p := sockets.DefaultPolicy()
	for _, bc := range benchCases {
		ap := netip.MustParseAddrPort(bc.addr)
		if (p.Check(bc.network, bc.host, ap) == nil) != bc.allowed {
			b.Fatalf("%s: Check disagrees with the case", bc.name)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = p.Check(bc.network, bc.host, ap)
			}
		})
	}
}

// BenchmarkCheckLinearScan is the baseline: the fuzz reference, a plain
// linear scan over the same prefixes.
func BenchmarkCheckLinearScan(b *testing.B) {
	for _, bc := range benchCases {
		ap := netip.MustParseAddrPort(bc.addr)
		if refAllowed(true, bc.network, bc.host, ap) != bc.allowed {
			b.Fatalf("%s: the reference disagrees with the case", bc.name)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = refAllowed(true, bc.network, bc.host, ap)
			}
		})
	}
}

// TestCheckAllowedDoesNotAllocate holds Check to its documented promise:
// an allowed destination costs no allocation. (Its speed is a benchmark's
// business; an allocation count is exact, so a test can hold it.)
// The zero Policy, which is DefaultPolicy, keeps the promise too.
func TestCheckAllowedDoesNotAllocate(t *testing.T) {
	for name, p := range map[string]*sockets.Policy{"DefaultPolicy": sockets.DefaultPolicy(), "zero Policy": {}} {
		for _, bc := range benchCases {
			if !bc.allowed {
				continue
			}
			ap := netip.MustParseAddrPort(bc.addr)
			if n := testing.AllocsPerRun(100, func() { _ = p.Check(bc.network, bc.host, ap) }); n != 0 {
				t.Errorf("%s: %s: %v allocations per allowed Check, want 0", name, bc.name, n)
			}
		}
	}
}

// BenchmarkCheckDenySelf measures Check with DenySelf, which looks the
// address up in this machine's addresses (read once, then every two
// seconds), against the same policy without it.
func BenchmarkCheckDenySelf(b *testing.B) {
	for name, p := range map[string]*sockets.Policy{"off": sockets.DefaultPolicy(), "on": sockets.DefaultPolicy().DenySelf()} {
		for _, bc := range benchCases[:2] {
			ap := netip.MustParseAddrPort(bc.addr)
			b.Run(name+"/"+bc.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					_ = p.Check(bc.network, bc.host, ap)
				}
			})
		}
	}
}
