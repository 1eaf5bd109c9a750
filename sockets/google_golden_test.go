package sockets_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outbound-go/outbound/sockets"
)

// update rewrites the golden files from the code: go test -run Golden -update.
// The files were first written by the range-set implementation of
// go4.org/netipx (IPSetBuilder, IPSet.Prefixes), before the package
// replaced it with its own; the tests hold the package to that output.
var update = flag.Bool("update", false, "rewrite testdata/*.golden from the code")

// checkGolden compares got with the golden file name in testdata, or
// rewrites the file under -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("%s: line %d is %q, want %q (%d lines, want %d)", path, i+1, gl[i], wl[i], len(gl), len(wl))
			}
		}
		t.Fatalf("%s: %d lines, want %d", path, len(gl), len(wl))
	}
}

func prefixLines(ps []netip.Prefix) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// TestGooglePrefixesGolden holds the prefixes of the embedded services'
// ranges (goog.json minus cloud.json: the fewest prefixes that cover the
// difference, in address order) to testdata/google_prefixes.golden.
func TestGooglePrefixesGolden(t *testing.T) {
	ps := embeddedServices().Prefixes()
	if len(ps) == 0 {
		t.Fatal("no prefixes")
	}
	checkGolden(t, "google_prefixes.golden", prefixLines(ps))
}

// TestGoogleDifferenceGolden holds ParseGoogleRanges(goog, cloud).Prefixes
// of pseudo-random documents (a fixed seed, so the same documents every
// run) to testdata/google_difference.golden: prefixes drawn from small
// spaces of each family, so that they overlap, nest and touch, on both
// sides of the difference.
func TestGoogleDifferenceGolden(t *testing.T) {
	rng := rand.New(rand.NewPCG(7050, 6052))
	draw := func(n int) (string, []netip.Prefix) {
		var ps []netip.Prefix
		var entries []string
		for range n {
			var p netip.Prefix
			if rng.IntN(2) == 0 {
				// Inside 10.0.0.0/12, from /12 to /32.
				a := netip.AddrFrom4([4]byte{10, byte(rng.IntN(16)), byte(rng.IntN(256)), byte(rng.IntN(256))})
				p = netip.PrefixFrom(a, 12+rng.IntN(21)).Masked()
				entries = append(entries, fmt.Sprintf(`{"ipv4Prefix":%q}`, p))
			} else {
				// Inside 2001:db8::/40, from /40 to /128, with few
				// bits set so that long prefixes land near each other.
				b := [16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(rng.IntN(4)), byte(rng.IntN(4))}
				b[15] = byte(rng.IntN(256))
				if rng.IntN(2) == 0 {
					b[14] = 0xff
				}
				p = netip.PrefixFrom(netip.AddrFrom16(b), 40+rng.IntN(89)).Masked()
				entries = append(entries, fmt.Sprintf(`{"ipv6Prefix":%q}`, p))
			}
			ps = append(ps, p)
		}
		return `{"syncToken":"1","prefixes":[` + strings.Join(entries, ",") + `]}`, ps
	}
	var b strings.Builder
	for i := range 100 {
		goog, gp := draw(1 + rng.IntN(12))
		cloud, cp := draw(rng.IntN(12))
		if len(cp) == 0 {
			cloud = `{"prefixes":[{"ipv4Prefix":"192.0.2.0/24"}]}`
			cp = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
		}
		g, err := sockets.ParseGoogleRanges([]byte(goog), []byte(cloud))
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		fmt.Fprintf(&b, "# case %d\n# goog %v\n# cloud %v\n%s", i, gp, cp, prefixLines(g.Prefixes()))
	}
	checkGolden(t, "google_difference.golden", b.String())
}
