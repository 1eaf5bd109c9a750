package sockets_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/outbound-go/outbound/sockets"
)

// The reference classifier below is a second, deliberately plain reading of
// the documented Sockets API rules, written without looking at how Policy.Check is built:
// a linear scan over prefix lists written out again here, its own decoding
// of the IPv6 forms that carry an IPv4 address, its own reading of
// goog.json and cloud.json (Google's services are the addresses in a
// goog.json prefix and in no cloud.json prefix, tested address by address
// rather than by subtracting sets). FuzzCheck holds Check to it;
// TestCheckTable holds it to the boundary table, so a mistake in either
// shows up as a disagreement.

// refNeverPublic4 are the IPv4 blocks that are never public: the IANA IPv4
// Special-Purpose Address Registry entries that are not globally reachable,
// plus multicast and class E.
var refNeverPublic4 = refPrefixes(
	"0.0.0.0/8",          // this network (RFC 791)
	"10.0.0.0/8",         // private (RFC 1918)
	"100.64.0.0/10",      // shared address space (RFC 6598)
	"127.0.0.0/8",        // loopback (RFC 1122)
	"169.254.0.0/16",     // link-local (RFC 3927)
	"172.16.0.0/12",      // private (RFC 1918)
	"192.0.0.0/24",       // IETF protocol assignments (RFC 6890)
	"192.0.2.0/24",       // TEST-NET-1 (RFC 5737)
	"192.88.99.0/24",     // 6to4 relay anycast (RFC 7526)
	"192.168.0.0/16",     // private (RFC 1918)
	"198.18.0.0/15",      // benchmarking (RFC 2544)
	"198.51.100.0/24",    // TEST-NET-2 (RFC 5737)
	"203.0.113.0/24",     // TEST-NET-3 (RFC 5737)
	"224.0.0.0/4",        // multicast (RFC 5771)
	"240.0.0.0/4",        // reserved (RFC 1112), with 255.255.255.255
	"255.255.255.255/32", // limited broadcast (RFC 919)
)

// refSpecial6 are the refused blocks inside 2000::/3, the only IPv6 space
// that can be public (RFC 4291 section 2.4). 2001::/23 holds Teredo,
// benchmarking, ORCHID and the other IETF assignments.
var refSpecial6 = refPrefixes(
	"2001::/23",     // IETF protocol assignments (RFC 2928)
	"2001:db8::/32", // documentation (RFC 3849)
	"3fff::/20",     // documentation (RFC 9637)
)

func refPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// refGoogle is goog.json and refCloud cloud.json, read with encoding/json
// alone.
var (
	refGoogle = sync.OnceValue(func() []netip.Prefix { return refReadPrefixes("goog.json") })
	refCloud  = sync.OnceValue(func() []netip.Prefix { return refReadPrefixes("cloud.json") })
)

// refReadPrefixes reads the prefixes of a goog.json or cloud.json file,
// in file order. cloud.json's entries also carry service and scope.
func refReadPrefixes(name string) []netip.Prefix {
	data, err := os.ReadFile(name)
	if err != nil {
		panic(err)
	}
	var doc struct {
		Prefixes []map[string]string `json:"prefixes"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		panic(err)
	}
	var out []netip.Prefix
	for _, p := range doc.Prefixes {
		for _, k := range []string{"ipv4Prefix", "ipv6Prefix"} {
			if s, ok := p[k]; ok {
				out = append(out, netip.MustParsePrefix(s))
			}
		}
	}
	return out
}

// refGoogleRule is a reading of the Google rule: whether it refuses a
// (unmapped) address.
type refGoogleRule func(a netip.Addr) bool

// The readings of the Google rule: off (PublicPolicy), Google's services
// (DefaultPolicy: goog.json minus cloud.json), and the whole of goog.json
// (DefaultPolicy().WithGoogleRanges(EmbeddedGoogleRanges())).
var (
	refGoogleOff refGoogleRule = func(netip.Addr) bool { return false }
	refServices  refGoogleRule = func(a netip.Addr) bool { return inAny(refGoogle(), a) && !inAny(refCloud(), a) }
	refWholeGoog refGoogleRule = func(a netip.Addr) bool { return inAny(refGoogle(), a) }
)

func inAny(list []netip.Prefix, a netip.Addr) bool {
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// refV4Public reports whether the IPv4 address in b is public and not
// refused by the Google rule google.
func refV4Public(b [4]byte, google refGoogleRule) bool {
	a := netip.AddrFrom4(b)
	return !inAny(refNeverPublic4, a) && !google(a)
}

func refLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

// refException reports whether App Engine's exceptions let a Google address
// through.
func refException(proto, host string, a netip.Addr, port uint16) bool {
	if port == 53 {
		switch a.String() {
		case "8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844":
			return true
		}
	}
	if proto != "tcp" {
		return false
	}
	name := strings.TrimSuffix(refLower(host), ".")
	return name == "smtp.gmail.com" && (port == 465 || port == 587) ||
		name == "pop.gmail.com" && port == 995 ||
		name == "imap.gmail.com" && port == 993
}

// refAllowed is the reference for DefaultPolicy (google true) and
// PublicPolicy (google false).
func refAllowed(google bool, network, host string, ap netip.AddrPort) bool {
	if google {
		return refAllowedWith(refServices, network, host, ap)
	}
	return refAllowedWith(refGoogleOff, network, host, ap)
}

// refAllowedWith is the reference for the default rules with the Google rule
// google.
func refAllowedWith(google refGoogleRule, network, host string, ap netip.AddrPort) bool {
	var proto string
	switch network {
	case "tcp", "tcp4", "tcp6":
		proto = "tcp"
	case "udp", "udp4", "udp6":
		proto = "udp"
	default:
		return false
	}
	a, port := ap.Addr(), ap.Port()
	if !a.IsValid() || a.Zone() != "" || port == 0 || port == 25 || port == 21 && proto == "tcp" {
		return false
	}
	b := a.As16()
	if a.Is4() || a.Is4In6() { // IPv4, or IPv4-mapped ::ffff:a.b.c.d
		v4 := [4]byte{b[12], b[13], b[14], b[15]}
		if !refV4Public(v4, refGoogleOff) {
			return false
		}
		a = netip.AddrFrom4(v4)
	} else {
		if b[0]>>5 != 1 || inAny(refSpecial6, a) { // outside 2000::/3, or special
			return false
		}
		if b[0] == 0x20 && b[1] == 0x02 && !refV4Public([4]byte{b[2], b[3], b[4], b[5]}, google) { // 6to4
			return false
		}
	}
	return !google(a) || refException(proto, host, a, port)
}

// fuzzAddr reads the fuzzer's address: 4 or 16 raw bytes, else text (which
// may carry a zone, or be invalid).
func fuzzAddr(b []byte) netip.Addr {
	switch len(b) {
	case 4:
		return netip.AddrFrom4([4]byte(b))
	case 16:
		return netip.AddrFrom16([16]byte(b))
	}
	a, _ := netip.ParseAddr(string(b))
	return a
}

func v4(s string) []byte  { a := netip.MustParseAddr(s).As4(); return a[:] }
func v16(s string) []byte { a := netip.MustParseAddr(s).As16(); return a[:] }

var (
	fuzzDefault = sockets.DefaultPolicy()
	fuzzPublic  = sockets.PublicPolicy()
	fuzzWhole   = sockets.DefaultPolicy().WithGoogleRanges(sockets.EmbeddedGoogleRanges())
	fuzzZero    = &sockets.Policy{}
)

func FuzzCheck(f *testing.F) {
	for _, s := range []struct {
		network, host string
		addr          []byte
		port          uint16
	}{
		{"tcp", "one.example", v4("1.1.1.1"), 443},                           // public
		{"tcp", "", v4("10.255.255.255"), 80},                                // last of 10/8 (RFC 1918)
		{"udp", "", v4("100.64.0.0"), 53},                                    // first of CGNAT (RFC 6598)
		{"tcp4", "", v4("198.19.255.255"), 80},                               // last of 198.18/15 (RFC 2544)
		{"tcp", "", v4("223.255.255.255"), 80},                               // just below multicast (RFC 5771)
		{"tcp", "", v4("255.255.255.255"), 80},                               // limited broadcast (RFC 919)
		{"udp", "dns.google", v4("8.8.8.8"), 53},                             // Google Public DNS exception
		{"tcp", "dns.google", v4("8.8.8.8"), 443},                            // Google range, no exception
		{"tcp", "smtp.gmail.com", v4("142.251.9.108"), 587},                  // Gmail submission exception
		{"tcp", "SMTP.Gmail.com.", v4("142.251.9.108"), 465},                 // same name, other spelling
		{"tcp", "evil.example", v4("142.251.9.108"), 587},                    // other name, Gmail address
		{"tcp", "imap.gmail.com", v4("74.125.0.1"), 993},                     // IMAP exception
		{"udp", "smtp.gmail.com", v4("142.251.9.108"), 587},                  // exceptions are TCP only
		{"tcp", "", v4("1.1.1.1"), 25},                                       // SMTP
		{"tcp", "", v4("1.1.1.1"), 21},                                       // FTP
		{"udp", "", v4("1.1.1.1"), 21},                                       // UDP 21 is not FTP
		{"tcp", "", v4("1.1.1.1"), 0},                                        // port 0
		{"unix", "", v4("1.1.1.1"), 80},                                      // network
		{"tcp6", "", v16("2606:4700:4700::1111"), 443},                       // public IPv6
		{"tcp", "", v16("::ffff:10.0.0.1"), 80},                              // IPv4-mapped private
		{"udp", "", v16("::ffff:8.8.8.8"), 53},                               // IPv4-mapped exception
		{"tcp", "", v16("::127.0.0.1"), 80},                                  // IPv4-compatible (RFC 4291)
		{"tcp", "", v16("64:ff9b::a00:1"), 80},                               // NAT64 (RFC 6052)
		{"tcp", "", v16("64:ff9b:1::a00:1"), 80},                             // NAT64 local-use (RFC 8215)
		{"tcp", "", v16("2002:a00:1::"), 80},                                 // 6to4 of 10.0.0.1 (RFC 3056)
		{"tcp", "", v16("2002:101:101::1"), 80},                              // 6to4 of 1.1.1.1
		{"udp", "", v16("2002:808:808::"), 53},                               // 6to4 of 8.8.8.8
		{"tcp", "", v16("2001:0:101:101::3f57:fefe"), 80},                    // Teredo (RFC 4380)
		{"tcp", "", v16("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 80},      // just below 2000::/3
		{"tcp", "", v16("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff"), 80},       // last of 3fff::/20 (RFC 9637)
		{"tcp", "", v16("2001:4860:4860::8888"), 53},                         // IPv6 DNS exception
		{"tcp", "", []byte("fe80::1%eth0"), 80},                              // zone
		{"tcp", "", []byte("2606:4700::1%eth0"), 80},                         // zone on a public address
		{"tcp", "", []byte("not an address"), 80},                            // invalid
		{"udp6", "smtp.gmail.com", v16("2a00:1450:400c:c0a::6c"), 587},       // UDP to a Gmail address
		{"tcp", "smtp.gmail.com", v4("10.0.0.1"), 587},                       // exception never opens private
		{"tcp", "\u017fmtp.gmail.com", v4("142.251.9.108"), 587},             // Unicode folding is not DNS folding
		{"tcp", "pop.gmail.com", v16("::ffff:142.251.9.108"), 995},           // mapped POP3 exception
		{"tcp", "smtp.gmail.com.evil.example", v4("142.251.9.108"), 587},     // suffix trick
		{"tcp", "x", v16("2001:0:808:808:0:0:f7f7:f7f7"), 53},                // Teredo carrying Google DNS
		{"tcp", "x", v16("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 0xffff}, // last address, last port
		{"tcp", "shop.example", v4("34.64.32.1"), 443},                       // Google Cloud customer (cloud.json 34.64.32.0/19)
		{"tcp", "", v4("34.64.31.255"), 443},                                 // Google service just below that cloud prefix
		{"tcp", "", v4("35.185.128.10"), 443},                                // Google Cloud customer (35.185.128.0/19)
		{"tcp", "", v4("35.187.143.255"), 443},                               // Google service between cloud prefixes
		{"tcp6", "", v16("2600:1900:4000::1"), 443},                          // Google Cloud customer (2600:1900:4000::/44)
		{"tcp6", "", v16("2600:1900::1"), 443},                               // Google service: in 2600:1900::/28, no cloud prefix
		{"tcp", "", v16("2002:2240:2001::"), 443},                            // 6to4 of a Google Cloud customer
		{"tcp", "", v16("64:ff9b::2240:2001"), 443},                          // NAT64 of a Google Cloud customer
	} {
		f.Add(s.network, s.host, s.addr, s.port)
	}
	f.Fuzz(func(t *testing.T, network, host string, addr []byte, port uint16) {
		a := fuzzAddr(addr)
		ap := netip.AddrPortFrom(a, port)
		for _, c := range []struct {
			name   string
			p      *sockets.Policy
			google refGoogleRule
		}{
			{"default", fuzzDefault, refServices},
			{"zero", fuzzZero, refServices},
			{"public", fuzzPublic, refGoogleOff},
			{"whole goog.json", fuzzWhole, refWholeGoog},
		} {
			err := c.p.Check(network, host, ap)
			if want := refAllowedWith(c.google, network, host, ap); (err == nil) != want {
				t.Fatalf("%s: Check(%q, %q, %v) = %v; reference allowed = %v", c.name, network, host, ap, err, want)
			}
			if err != nil {
				var de *sockets.DeniedError
				if !errors.Is(err, sockets.ErrDenied) || !errors.As(err, &de) {
					t.Fatalf("Check(%q, %q, %v) = %#v: not a *DeniedError wrapping ErrDenied", network, host, ap, err)
				}
				if de.Network != network || de.Host != host || de.Addr != ap || de.Rule.Code() == "" {
					t.Fatalf("Check(%q, %q, %v): DeniedError fields %+v", network, host, ap, *de)
				}
				if !strings.HasPrefix(de.Error(), "sockets: ") {
					t.Fatalf("Error() = %q", de.Error())
				}
			}
			// The IPv4-mapped form of an address and the address itself
			// are the same destination.
			var other netip.Addr
			switch {
			case a.Is4():
				other = netip.AddrFrom16(a.As16())
			case a.Is4In6() && a.Zone() == "":
				other = a.Unmap()
			}
			if other.IsValid() {
				err2 := c.p.Check(network, host, netip.AddrPortFrom(other, port))
				if ruleOf(err) != ruleOf(err2) {
					t.Fatalf("Check(%v) = %v but Check(%v) = %v", ap, err, other, err2)
				}
			}
		}
	})
}

// fuzzPrefixes reads the fuzzer's prefix list: records of a length byte b
// followed by 4 or 16 address bytes: IPv4 /(b mod 33) below 64, IPv6
// /((b-64) mod 129) from 64 on (64+128 is /128). IPv4-mapped IPv6 prefixes, which no
// ranges file may hold, are skipped.
func fuzzPrefixes(b []byte) []netip.Prefix {
	var out []netip.Prefix
	for len(b) > 0 {
		n, bits := 4, int(b[0]%33)
		if b[0] >= 64 {
			n, bits = 16, int(b[0]-64)%129
		}
		if len(b) < 1+n {
			break
		}
		a, _ := netip.AddrFromSlice(b[1 : 1+n])
		b = b[1+n:]
		if p := netip.PrefixFrom(a, bits).Masked(); !p.Addr().Is4In6() {
			out = append(out, p)
		}
	}
	return out
}

// fuzzDoc writes prefixes as a goog.json document (with cloud.json's
// extra fields when cloud is set), or returns nil for none.
func fuzzDoc(t *testing.T, prefixes []netip.Prefix, cloud bool) []byte {
	if len(prefixes) == 0 {
		return nil
	}
	type entry struct {
		IPv4    string `json:"ipv4Prefix,omitempty"`
		IPv6    string `json:"ipv6Prefix,omitempty"`
		Service string `json:"service,omitempty"`
		Scope   string `json:"scope,omitempty"`
	}
	var doc struct {
		SyncToken    string  `json:"syncToken"`
		CreationTime string  `json:"creationTime"`
		Prefixes     []entry `json:"prefixes"`
	}
	doc.SyncToken, doc.CreationTime = "1", "2026-01-02T03:04:05.5"
	for _, p := range prefixes {
		e := entry{IPv4: p.String()}
		if p.Addr().Is6() {
			e = entry{IPv6: p.String()}
		}
		if cloud {
			e.Service, e.Scope = "Google Cloud", "us-central1"
		}
		doc.Prefixes = append(doc.Prefixes, e)
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// FuzzGoogleServices holds ParseGoogleRanges of a goog.json and a
// cloud.json to its definition: an address is in goog minus cloud exactly
// when a linear scan finds it in a goog prefix and in no cloud prefix; with
// no cloud.json, in a goog prefix. It checks Contains and Prefixes at the
// edges of every prefix of both lists and at the fuzzer's own addresses.
func FuzzGoogleServices(f *testing.F) {
	v4p := func(s string) []byte {
		p := netip.MustParsePrefix(s)
		return append([]byte{byte(p.Bits())}, v4(p.Addr().String())...)
	}
	v6p := func(s string) []byte {
		p := netip.MustParsePrefix(s)
		return append([]byte{64 + byte(p.Bits())}, v16(p.Addr().String())...)
	}
	for _, s := range []struct{ goog, cloud, probe []byte }{
		{v4p("34.64.0.0/10"), v4p("34.64.32.0/19"), v4("34.64.31.255")},                                                      // a cloud prefix inside a goog one
		{v4p("23.236.48.0/20"), v4p("23.236.48.0/20"), v4("23.236.48.1")},                                                    // the same prefix in both
		{v4p("1.1.1.0/24"), v4p("1.1.0.0/16"), v4("1.1.2.1")},                                                                // a cloud prefix wider than goog's
		{v4p("1.1.1.0/24"), v4p("9.9.9.0/24"), v4("9.9.9.9")},                                                                // disjoint
		{v6p("2600:1900::/28"), slices.Concat(v6p("2600:1900:4000::/44"), v6p("2600:1901::/48")), v16("2600:1901:1::")},      // IPv6
		{slices.Concat(v4p("0.0.0.0/0"), v6p("::/0")), slices.Concat(v4p("1.2.3.4/32"), v6p("::/1")), v16("::ffff:1.2.3.4")}, // everything, mapped probe
		{slices.Concat(v4p("8.8.8.0/24"), v4p("8.8.8.0/25")), v4p("8.8.8.128/26"), v4("8.8.8.200")},                          // overlapping goog prefixes
		{nil, v4p("1.1.1.0/24"), v4("1.1.1.1")},                                                                              // no goog
		{v4p("1.1.1.0/24"), nil, v4("1.1.1.1")},                                                                              // no cloud
		{v6p("2001:4860::1/128"), v6p("2001:4860::/127"), v16("2001:4860::2")},                                               // IPv6 /128 and /127
		{v6p("2001:4860::/32"), v6p("::ffff:0.0.0.0/96"), v16("2001:4860:4860::8888")},                                       // mapped prefix skipped
	} {
		f.Add(s.goog, s.cloud, s.probe)
	}
	f.Fuzz(func(t *testing.T, googB, cloudB, probe []byte) {
		googP, cloudP := fuzzPrefixes(googB), fuzzPrefixes(cloudB)
		if len(googP)+len(cloudP) > 64 {
			return // the edges of 64 prefixes are enough; keep each run quick
		}
		goog, cloud := fuzzDoc(t, googP, false), fuzzDoc(t, cloudP, true)
		g, err := sockets.ParseGoogleRanges(goog, cloud)
		if len(googP) == 0 {
			// A goog.json without prefixes is refused.
			if err == nil || !strings.HasPrefix(err.Error(), "sockets: google ranges: ") {
				t.Fatalf("ParseGoogleRanges of no goog prefixes = %v, %v; want an error", g, err)
			}
			return
		}
		if err != nil || g == nil {
			t.Fatalf("ParseGoogleRanges(%s, %s): %v", goog, cloud, err)
		}
		ps := g.Prefixes()
		for i, p := range ps {
			// With a cloud list, the prefixes are the difference's: in
			// address order and disjoint. Without, goog's as written.
			if p != p.Masked() || len(cloudP) > 0 && i > 0 && (!ps[i-1].Addr().Less(p.Addr()) || ps[i-1].Overlaps(p)) {
				t.Fatalf("Prefixes() = %v: not masked, ordered and disjoint at %d", ps, i)
			}
		}
		var addrs []netip.Addr
		for _, p := range append(googP, cloudP...) {
			first, last := p.Addr(), lastAddr(p)
			addrs = append(addrs, first, last, first.Prev(), last.Next())
		}
		for len(probe) >= 4 {
			n := 4
			if len(probe) >= 16 {
				n = 16
			}
			a, _ := netip.AddrFromSlice(probe[:n])
			addrs = append(addrs, a)
			probe = probe[n:]
		}
		for _, a := range addrs {
			if !a.IsValid() {
				continue
			}
			u := a.Unmap()
			want := inAny(googP, u) && !inAny(cloudP, u)
			if got := g.Contains(a); got != want {
				t.Fatalf("goog %v minus cloud %v: Contains(%v) = %v, want %v", googP, cloudP, a, got, want)
			}
			if got := inAny(ps, u); got != want {
				t.Fatalf("goog %v minus cloud %v: Prefixes() %v hold %v: %v, want %v", googP, cloudP, ps, a, got, want)
			}
		}
	})
}

// ruleOf returns the rule of a refusal, or the zero Rule for nil.
func ruleOf(err error) sockets.Rule {
	var de *sockets.DeniedError
	if errors.As(err, &de) {
		return de.Rule
	}
	return 0
}

// errNoNetwork is what the fuzzed Dialer's Connect seam returns: it never
// connects anywhere.
var errNoNetwork = errors.New("no network in this test")

// failingResolver counts lookups and fails each one.
type failingResolver struct {
	mu    sync.Mutex
	calls int
}

func (r *failingResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	r.calls++
	r.mu.Unlock()
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func FuzzDialAddress(f *testing.F) {
	for _, s := range []struct{ network, address string }{
		{"tcp", "1.1.1.1:443"},                     // allowed literal: reaches the seam
		{"udp6", "[2606:4700:4700::1111]:53"},      // allowed IPv6 literal
		{"tcp", "10.0.0.1:80"},                     // private (RFC 1918)
		{"tcp", "[fe80::1%eth0]:80"},               // zone
		{"tcp", "[::ffff:127.0.0.1]:80"},           // IPv4-mapped loopback
		{"tcp4", "[2606:4700::1111]:443"},          // family mismatch
		{"tcp", "example.com:443"},                 // name: the resolver fails
		{"tcp", "127.1:80"},                        // inet_aton shorthand
		{"tcp", "0x7f.0.0.1:80"},                   // inet_aton hexadecimal
		{"tcp", "2130706433:80"},                   // inet_aton single number
		{"tcp", "0177.0.0.1:80"},                   // inet_aton octal
		{"tcp", "host:http"},                       // service name
		{"tcp", "host:99999"},                      // port out of range
		{"tcp", "[::1"},                            // unterminated bracket
		{"tcp", ":80"},                             // no host
		{"tcp", ""},                                // nothing
		{"unix", "/tmp/socket"},                    // network
		{"ip4:icmp", "1.1.1.1"},                    // raw IP
		{"tcp", "smtp.gmail.com:587"},              // exception by name
		{"udp", "8.8.8.8:53"},                      // exception by address
		{"tcp", "a b:80"},                          // space in a name
		{"tcp", "[1.1.1.1]:80"},                    // bracketed IPv4
		{"tcp", "1.1.1.1:+80"},                     // signed port
		{"tcp", "\xff\xfe:80"},                     // not UTF-8
		{"tcp", strings.Repeat("a.", 130) + ":80"}, // name too long
	} {
		f.Add(s.network, s.address)
	}
	f.Fuzz(func(t *testing.T, network, address string) {
		r := &failingResolver{}
		var connected []netip.AddrPort
		d := &sockets.Dialer{
			Resolver: r,
			Connect: func(_ context.Context, _ string, ap netip.AddrPort) (net.Conn, error) {
				connected = append(connected, ap)
				return nil, errNoNetwork
			},
		}
		c, err := d.DialContext(context.Background(), network, address)
		if c != nil || err == nil {
			t.Fatalf("DialContext(%q, %q) = %v, %v; want an error", network, address, c, err)
		}
		var de *sockets.DeniedError
		var le *sockets.LookupError
		switch {
		case errors.As(err, &de):
			if !errors.Is(err, sockets.ErrDenied) || len(connected) != 0 {
				t.Fatalf("DialContext(%q, %q) = %v after connecting to %v", network, address, err, connected)
			}
			if (de.Rule == sockets.RuleMalformed || de.Rule == sockets.RuleNetwork) && r.calls != 0 {
				t.Fatalf("DialContext(%q, %q) = %v after %d lookups", network, address, err, r.calls)
			}
		case errors.As(err, &le):
			if len(connected) != 0 || r.calls != 1 {
				t.Fatalf("DialContext(%q, %q) = %v after %d lookups and connecting to %v", network, address, err, r.calls, connected)
			}
		case errors.Is(err, errNoNetwork):
			// Only an allowed IP literal reaches the seam, once, as written.
			host, ps, _ := net.SplitHostPort(address)
			lit, aerr := netip.ParseAddr(host)
			port, perr := strconv.ParseUint(ps, 10, 16)
			if aerr != nil || perr != nil || r.calls != 0 || len(connected) != 1 || connected[0] != netip.AddrPortFrom(lit, uint16(port)) {
				t.Fatalf("DialContext(%q, %q) connected to %v after %d lookups", network, address, connected, r.calls)
			}
			if err := fuzzDefault.Check(network, host, connected[0]); err != nil {
				t.Fatalf("DialContext(%q, %q) connected to %v, which Check refuses: %v", network, address, connected[0], err)
			}
			if !refAllowed(true, network, host, connected[0]) {
				t.Fatalf("DialContext(%q, %q) connected to %v, which the reference refuses", network, address, connected[0])
			}
		default:
			t.Fatalf("DialContext(%q, %q) = %T %v; want a *DeniedError, *LookupError or the seam's error", network, address, err, err)
		}
	})
}
