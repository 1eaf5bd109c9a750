package sockets_test

// Hostile input for the parser of Google's range files (goog.json), which
// a long-running program fetches from outside and gives ParseGoogleRanges.

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/outbound-go/outbound/sockets"
)

// FuzzParseGoogleRanges gives ParseGoogleRanges arbitrary goog.json
// documents, without a cloud.json, so that the ranges are the document's
// own. It
// must never panic; when it accepts one, the ranges must be exactly the
// prefixes a plain reading of the document finds (encoding/json and
// netip.ParsePrefix, each masked), and contain each of their own
// addresses and no address outside them.
func FuzzParseGoogleRanges(f *testing.F) {
	for _, seed := range []string{
		`{"syncToken":"1","creationTime":"2026-01-02T03:04:05.000000","prefixes":[{"ipv4Prefix":"8.8.4.0/24"},{"ipv6Prefix":"2001:4860::/32"}]}`,
		`{"prefixes":[{"ipv4Prefix":"8.8.4.1/24"}]}`,         // not masked
		`{"prefixes":[{"ipv6Prefix":"8.8.4.0/24"}]}`,         // an IPv4 prefix as IPv6
		`{"prefixes":[{"ipv4Prefix":"::ffff:8.8.4.0/120"}]}`, // IPv4-mapped
		`{"prefixes":[{"ipv4Prefix":"8.8.4.0/33"}]}`,         // a length out of range
		`{"prefixes":[{"ipv4Prefix":"0.0.0.0/0"}]}`,          // everything
		`{"prefixes":[]}`, // none
		`{"creationTime":"yesterday","prefixes":[{"ipv4Prefix":"8.8.4.0/24"}]}`,
		`{"prefixes":[{"ipv4Prefix":"8.8.4.0/24","ipv6Prefix":"2001:4860::/32"}]}`, // both in one entry
		`{"prefixes":[{}]}`,
		`[]`,
		`null`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		g, err := sockets.ParseGoogleRanges(doc, nil)
		if err != nil {
			return
		}
		var ref struct {
			Prefixes []struct {
				IPv4 string `json:"ipv4Prefix"`
				IPv6 string `json:"ipv6Prefix"`
			} `json:"prefixes"`
		}
		if err := json.Unmarshal(doc, &ref); err != nil {
			t.Fatalf("ParseGoogleRanges accepted %q, which encoding/json refuses: %v", doc, err)
		}
		var want []netip.Prefix
		for _, p := range ref.Prefixes {
			s, v6 := p.IPv4, false
			if s == "" {
				s, v6 = p.IPv6, true
			}
			pfx, err := netip.ParsePrefix(s)
			if err != nil || pfx.Addr().Is6() != v6 || pfx.Addr().Is4In6() {
				t.Fatalf("ParseGoogleRanges accepted %q, whose prefix %q is invalid", doc, s)
			}
			want = append(want, pfx.Masked())
		}
		got := g.Prefixes()
		if len(got) == 0 || len(got) != len(want) {
			t.Fatalf("prefixes %v, want %v", got, want)
		}
		for i, p := range got {
			if p != want[i] {
				t.Fatalf("prefix %d is %v, want %v", i, p, want[i])
			}
			if !g.Contains(p.Addr()) {
				t.Fatalf("ranges do not contain %v, the first address of %v", p.Addr(), p)
			}
		}
		// An address outside every prefix is not contained.
		for _, a := range []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("2606:2800:220:1::1")} {
			inside := false
			for _, p := range want {
				inside = inside || p.Contains(a)
			}
			if g.Contains(a) != inside {
				t.Fatalf("Contains(%v) = %v, want %v", a, !inside, inside)
			}
		}
	})
}
