package sockets_test

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outbound-go/outbound/sockets"
)

// carried is how a row expects the refused IPv4 address to be carried in
// the IPv6 address checked: the form and that address (see
// sockets.DeniedError). The zero carried, direct, expects the rule to have
// refused the address checked itself.
type carried struct {
	form sockets.Rule
	addr string
}

var direct carried

func inMapped(a string) carried     { return carried{sockets.RuleIPv4Mapped, a} }
func inCompat(a string) carried     { return carried{sockets.RuleIPv4Compatible, a} }
func inNAT64(a string) carried      { return carried{sockets.RuleNAT64, a} }
func inNAT64Local(a string) carried { return carried{sockets.RuleNAT64Local, a} }
func in6to4(a string) carried       { return carried{sockets.Rule6to4, a} }
func inTeredo(a string) carried     { return carried{sockets.RuleTeredo, a} }

// carriedOf returns how de says the refused address was carried.
func carriedOf(de *sockets.DeniedError) carried {
	if !de.Embedded.IsValid() {
		return carried{form: de.Form}
	}
	return carried{de.Form, de.Embedded.String()}
}

const allowed sockets.Rule = 0 // the row is allowed: no rule refuses it

// customGoogle is a goog.json with ranges of its own: 1.1.1.0/24 and
// 2606:4700::/32 become "Google", 142.250.0.0/15 does not.
const customGoogle = `{
  "syncToken": "1735787045",
  "creationTime": "2025-01-02T03:04:05.5",
  "prefixes": [
    {"ipv4Prefix": "1.1.1.0/24"},
    {"ipv6Prefix": "2606:4700::/32"},
    {"ipv4Prefix": "8.8.8.0/24"}
  ]
}`

func mustParseGoogle(t testing.TB, doc string) *sockets.GoogleRanges {
	t.Helper()
	g, err := sockets.ParseGoogleRanges([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// embeddedServices is the ranges of Google's services from the embedded
// goog.json and cloud.json: the ranges DefaultPolicy refuses.
func embeddedServices() *sockets.GoogleRanges { return sockets.DefaultPolicy().GoogleRanges() }

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// checkCase is one row of TestCheckTable.
type checkCase struct {
	name    string
	pol     string // key in the policies map; "" is DefaultPolicy()
	network string
	host    string // "" is the address literal; emptyHost is ""
	addr    string // netip.ParseAddrPort form; "" is the zero AddrPort
	zone    string // added with Addr.WithZone
	want    sockets.Rule
	via     carried // how the refused address is carried; direct for most rows
}

// emptyHost in a row's host field stands for the empty host name.
const emptyHost = "(empty)"

// row is a tcp row on the default policy with the host written as the
// address literal, and at most one via.
func row(name, addr string, want sockets.Rule, via ...carried) checkCase {
	c := checkCase{name: name, network: "tcp", addr: addr, want: want}
	if len(via) > 0 {
		c.via = via[0]
	}
	return c
}

// checkPolicies are the policies the table rows name.
func checkPolicies(t testing.TB) map[string]*sockets.Policy {
	custom := mustParseGoogle(t, customGoogle)
	return map[string]*sockets.Policy{
		"":              sockets.DefaultPolicy(),
		"public":        sockets.PublicPolicy(),
		"allow127":      sockets.DefaultPolicy().Allow(pfx("127.0.0.1/32")),
		"allowMapped":   sockets.DefaultPolicy().Allow(pfx("::ffff:127.0.0.0/104")),
		"allowGoogle":   sockets.DefaultPolicy().Allow(pfx("8.8.8.0/24")),
		"allowUnmasked": sockets.DefaultPolicy().Allow(pfx("10.1.2.3/8")),
		"allowULA":      sockets.DefaultPolicy().Allow(pfx("fd00::/8")),
		"deny":          sockets.DefaultPolicy().Deny(pfx("1.1.1.0/24"), pfx("2606:4700::/32")),
		"denyDNS":       sockets.DefaultPolicy().Deny(pfx("8.8.8.8/32")),
		"allowThenDeny": sockets.DefaultPolicy().Allow(pfx("127.0.0.0/8")).Deny(pfx("127.0.0.2/32")),
		"denyThenAllow": sockets.DefaultPolicy().Deny(pfx("127.0.0.2/32")).Allow(pfx("127.0.0.0/8")),
		"deny6to4":      sockets.DefaultPolicy().Allow(pfx("2002::/16")).Deny(pfx("10.0.0.0/8")),
		"custom":        sockets.DefaultPolicy().WithGoogleRanges(custom),
		"publicCustom":  sockets.PublicPolicy().WithGoogleRanges(custom),
		"noGoogle":      sockets.DefaultPolicy().WithGoogleRanges(nil),
		"zeroGoogle":    sockets.DefaultPolicy().WithGoogleRanges(&sockets.GoogleRanges{}),
		"whole":         sockets.DefaultPolicy().WithGoogleRanges(sockets.EmbeddedGoogleRanges()),
		"publicWhole":   sockets.PublicPolicy().WithGoogleRanges(sockets.EmbeddedGoogleRanges()),
		"services":      sockets.PublicPolicy().WithGoogleRanges(embeddedServices()),
		"zero":          {},
	}
}

// gmail is an address inside Google's 142.250.0.0/15, where smtp.gmail.com
// resolves; gmail6 is one inside 2a00:1450::/32.
const (
	gmail  = "142.251.9.108"
	gmail6 = "2a00:1450:400c:c0a::6c"
)

var checkCases = []checkCase{
	// IPv4 boundaries: the first and last address of every never-public
	// block, and the addresses just outside it (IANA IPv4 Special-Purpose
	// Address Registry, RFC 6890).
	row("0.0.0.0 this network RFC 791", "0.0.0.0:80", sockets.RuleUnspecified),
	row("0.255.255.255 last of 0/8", "0.255.255.255:80", sockets.RuleUnspecified),
	row("1.0.0.0 just above 0/8", "1.0.0.0:80", allowed),
	row("9.255.255.255 just below 10/8", "9.255.255.255:80", allowed),
	row("10.0.0.0 first of 10/8 RFC 1918", "10.0.0.0:80", sockets.RulePrivate),
	row("10.255.255.255 last of 10/8", "10.255.255.255:80", sockets.RulePrivate),
	row("11.0.0.0 just above 10/8", "11.0.0.0:80", allowed),
	row("100.63.255.255 just below CGNAT", "100.63.255.255:80", allowed),
	row("100.64.0.0 first of CGNAT RFC 6598", "100.64.0.0:80", sockets.RuleCGNAT),
	row("100.127.255.255 last of CGNAT", "100.127.255.255:80", sockets.RuleCGNAT),
	row("100.128.0.0 just above CGNAT", "100.128.0.0:80", allowed),
	row("126.255.255.255 just below loopback", "126.255.255.255:80", allowed),
	row("127.0.0.0 first of loopback RFC 1122", "127.0.0.0:80", sockets.RuleLoopback),
	row("127.0.0.1 loopback", "127.0.0.1:80", sockets.RuleLoopback),
	row("127.255.255.255 last of loopback", "127.255.255.255:80", sockets.RuleLoopback),
	row("128.0.0.0 just above loopback", "128.0.0.0:80", allowed),
	row("169.253.255.255 just below link-local", "169.253.255.255:80", allowed),
	row("169.254.0.0 first of link-local RFC 3927", "169.254.0.0:80", sockets.RuleLinkLocal),
	row("169.254.169.254 cloud metadata is link-local", "169.254.169.254:80", sockets.RuleLinkLocal),
	row("169.254.255.255 last of link-local", "169.254.255.255:80", sockets.RuleLinkLocal),
	row("169.255.0.0 just above link-local", "169.255.0.0:80", allowed),
	row("172.15.255.255 just below 172.16/12", "172.15.255.255:80", allowed),
	row("172.16.0.0 first of 172.16/12 RFC 1918", "172.16.0.0:80", sockets.RulePrivate),
	row("172.31.255.255 last of 172.16/12", "172.31.255.255:80", sockets.RulePrivate),
	row("172.32.0.0 just above 172.16/12", "172.32.0.0:80", allowed),
	row("191.255.255.255 just below 192.0.0/24", "191.255.255.255:80", allowed),
	row("192.0.0.0 first of IETF assignments RFC 6890", "192.0.0.0:80", sockets.RuleIETFProtocol),
	row("192.0.0.255 last of IETF assignments", "192.0.0.255:80", sockets.RuleIETFProtocol),
	row("192.0.1.0 between 192.0.0/24 and 192.0.2/24", "192.0.1.0:80", allowed),
	row("192.0.2.0 first of TEST-NET-1 RFC 5737", "192.0.2.0:80", sockets.RuleDocumentation),
	row("192.0.2.255 last of TEST-NET-1", "192.0.2.255:80", sockets.RuleDocumentation),
	row("192.0.3.0 just above TEST-NET-1", "192.0.3.0:80", allowed),
	row("192.88.98.255 just below 6to4 relay", "192.88.98.255:80", allowed),
	row("192.88.99.0 first of 6to4 relay RFC 7526", "192.88.99.0:80", sockets.Rule6to4Relay),
	row("192.88.99.255 last of 6to4 relay", "192.88.99.255:80", sockets.Rule6to4Relay),
	row("192.88.100.0 just above 6to4 relay", "192.88.100.0:80", allowed),
	row("192.167.255.255 just below 192.168/16", "192.167.255.255:80", allowed),
	row("192.168.0.0 first of 192.168/16 RFC 1918", "192.168.0.0:80", sockets.RulePrivate),
	row("192.168.255.255 last of 192.168/16", "192.168.255.255:80", sockets.RulePrivate),
	row("192.169.0.0 just above 192.168/16", "192.169.0.0:80", allowed),
	row("198.17.255.255 just below benchmarking", "198.17.255.255:80", allowed),
	row("198.18.0.0 first of benchmarking RFC 2544", "198.18.0.0:80", sockets.RuleBenchmarking),
	row("198.19.255.255 last of benchmarking", "198.19.255.255:80", sockets.RuleBenchmarking),
	row("198.20.0.0 just above benchmarking", "198.20.0.0:80", allowed),
	row("198.51.99.255 just below TEST-NET-2", "198.51.99.255:80", allowed),
	row("198.51.100.0 first of TEST-NET-2 RFC 5737", "198.51.100.0:80", sockets.RuleDocumentation),
	row("198.51.100.255 last of TEST-NET-2", "198.51.100.255:80", sockets.RuleDocumentation),
	row("198.51.101.0 just above TEST-NET-2", "198.51.101.0:80", allowed),
	row("203.0.112.255 just below TEST-NET-3", "203.0.112.255:80", allowed),
	row("203.0.113.0 first of TEST-NET-3 RFC 5737", "203.0.113.0:80", sockets.RuleDocumentation),
	row("203.0.113.255 last of TEST-NET-3", "203.0.113.255:80", sockets.RuleDocumentation),
	row("203.0.114.0 just above TEST-NET-3", "203.0.114.0:80", allowed),
	row("223.255.255.255 just below multicast", "223.255.255.255:80", allowed),
	row("224.0.0.0 first of multicast RFC 5771", "224.0.0.0:80", sockets.RuleMulticast),
	row("239.255.255.255 last of multicast", "239.255.255.255:80", sockets.RuleMulticast),
	row("240.0.0.0 first of reserved RFC 1112", "240.0.0.0:80", sockets.RuleReserved),
	row("255.255.255.254 last of reserved below broadcast", "255.255.255.254:80", sockets.RuleReserved),
	row("255.255.255.255 limited broadcast RFC 919", "255.255.255.255:80", sockets.RuleBroadcast),

	// IPv6: only 2000::/3 can be public (RFC 4291 section 2.4); every
	// other address is refused, under its block's name when it has one.
	row(":: unspecified RFC 4291", "[::]:80", sockets.RuleUnspecified),
	row("::1 loopback RFC 4291", "[::1]:80", sockets.RuleLoopback),
	row("::1:0:0:0 outside ::/96", "[::1:0:0:0]:80", sockets.RuleNotGlobalUnicast),
	row("::fffe:ffff:ffff just below IPv4-mapped", "[::fffe:ffff:ffff]:80", sockets.RuleNotGlobalUnicast),
	row("ff:ffff:...:ffff below discard", "[ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:80", sockets.RuleNotGlobalUnicast),
	row("100:: first of discard RFC 6666", "[100::]:80", sockets.RuleDiscard),
	row("100::ffff:ffff:ffff:ffff last of discard", "[100::ffff:ffff:ffff:ffff]:80", sockets.RuleDiscard),
	row("100:0:0:1:: first of dummy RFC 9780", "[100:0:0:1::]:80", sockets.RuleDummy),
	row("100:0:0:1:ffff:ffff:ffff:ffff last of dummy", "[100:0:0:1:ffff:ffff:ffff:ffff]:80", sockets.RuleDummy),
	row("100:0:0:2:: just above dummy", "[100:0:0:2::]:80", sockets.RuleNotGlobalUnicast),
	row("1fff:ffff:...:ffff just below 2000::/3", "[1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:80", sockets.RuleNotGlobalUnicast),
	row("2000:: first of 2000::/3", "[2000::]:80", allowed),
	row("2001:: first of Teredo RFC 4380", "[2001::]:80", sockets.RuleUnspecified, inTeredo("0.0.0.0")),
	row("2001:1:: IETF assignments RFC 2928", "[2001:1::]:80", sockets.RuleIETFProtocol),
	row("2001:2:: first of benchmarking RFC 5180", "[2001:2::]:80", sockets.RuleBenchmarking),
	row("2001:2:0:ffff:ffff:ffff:ffff:ffff last of benchmarking", "[2001:2:0:ffff:ffff:ffff:ffff:ffff]:80", sockets.RuleBenchmarking),
	row("2001:2:1:: just above benchmarking", "[2001:2:1::]:80", sockets.RuleIETFProtocol),
	row("2001:10:: first of ORCHID RFC 4843", "[2001:10::]:80", sockets.RuleORCHID),
	row("2001:1f:ffff:ffff:ffff:ffff:ffff:ffff last of ORCHID", "[2001:1f:ffff:ffff:ffff:ffff:ffff:ffff]:80", sockets.RuleORCHID),
	row("2001:20:: first of ORCHIDv2 RFC 7343", "[2001:20::]:80", sockets.RuleORCHID),
	row("2001:2f:ffff:ffff:ffff:ffff:ffff:ffff last of ORCHIDv2", "[2001:2f:ffff:ffff:ffff:ffff:ffff:ffff]:80", sockets.RuleORCHID),
	row("2001:30:: DRIP inside 2001::/23", "[2001:30::]:80", sockets.RuleIETFProtocol),
	row("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff last of 2001::/23", "[2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff]:80", sockets.RuleIETFProtocol),
	row("2001:200:: just above 2001::/23", "[2001:200::]:80", allowed),
	row("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff just below documentation", "[2001:db7:ffff:ffff:ffff:ffff:ffff:ffff]:80", allowed),
	row("2001:db8:: first of documentation RFC 3849", "[2001:db8::]:80", sockets.RuleDocumentation),
	row("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff last of documentation", "[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:80", sockets.RuleDocumentation),
	row("2001:db9:: just above documentation", "[2001:db9::]:80", allowed),
	row("2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff just below 6to4", "[2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:80", allowed),
	row("2003:: just above 6to4", "[2003::]:80", allowed),
	row("2606:4700:4700::1111 public", "[2606:4700:4700::1111]:443", allowed),
	row("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff just below 3fff::/20", "[3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:80", allowed),
	row("3fff:: first of documentation RFC 9637", "[3fff::]:80", sockets.RuleDocumentation),
	row("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff last of documentation RFC 9637", "[3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff]:80", sockets.RuleDocumentation),
	row("3fff:1000:: just above 3fff::/20", "[3fff:1000::]:80", allowed),
	row("3fff:ffff:...:ffff last of 2000::/3", "[3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:80", allowed),
	row("4000:: just above 2000::/3", "[4000::]:80", sockets.RuleNotGlobalUnicast),
	row("5eff:ffff:...:ffff just below SRv6", "[5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:80", sockets.RuleNotGlobalUnicast),
	row("5f00:: first of SRv6 RFC 9602", "[5f00::]:80", sockets.RuleSRv6),
	row("5f00:ffff:...:ffff last of SRv6", "[5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:80", sockets.RuleSRv6),
	row("fbff:ffff:...:ffff just below ULA", "[fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:80", sockets.RuleNotGlobalUnicast),
	row("fc00:: first of ULA RFC 4193", "[fc00::]:80", sockets.RuleUniqueLocal),
	row("fdff:ffff:...:ffff last of ULA", "[fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:80", sockets.RuleUniqueLocal),
	row("fe00:: unassigned", "[fe00::]:80", sockets.RuleNotGlobalUnicast),
	row("fe80:: first of link-local RFC 4291", "[fe80::]:80", sockets.RuleLinkLocal),
	row("febf:ffff:...:ffff last of link-local", "[febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:80", sockets.RuleLinkLocal),
	row("fec0:: first of site-local RFC 3879", "[fec0::]:80", sockets.RuleSiteLocal),
	row("feff:ffff:...:ffff last of site-local", "[feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:80", sockets.RuleSiteLocal),
	row("ff00:: first of multicast RFC 4291", "[ff00::]:80", sockets.RuleMulticast),
	row("ff02::1 all nodes", "[ff02::1]:80", sockets.RuleMulticast),
	row("ffff:...:ffff last address", "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:80", sockets.RuleMulticast),

	// IPv4-mapped ::ffff:0:0/96 (RFC 4291 section 2.5.5.2): unmapped
	// first, so the IPv4 rule names the refusal.
	row("::ffff:10.0.0.1 mapped private", "[::ffff:10.0.0.1]:80", sockets.RulePrivate, inMapped("10.0.0.1")),
	row("::ffff:a00:1 mapped private, hex spelling", "[::ffff:a00:1]:80", sockets.RulePrivate, inMapped("10.0.0.1")),
	row("::ffff:7f00:1 mapped loopback, hex spelling", "[::ffff:7f00:1]:80", sockets.RuleLoopback, inMapped("127.0.0.1")),
	row("::ffff:0.0.0.0 mapped this network", "[::ffff:0.0.0.0]:80", sockets.RuleUnspecified, inMapped("0.0.0.0")),
	row("::ffff:255.255.255.255 mapped broadcast", "[::ffff:255.255.255.255]:80", sockets.RuleBroadcast, inMapped("255.255.255.255")),
	row("::ffff:169.254.169.254 mapped metadata", "[::ffff:169.254.169.254]:80", sockets.RuleLinkLocal, inMapped("169.254.169.254")),
	row("::ffff:1.1.1.1 mapped public", "[::ffff:1.1.1.1]:443", allowed),
	row("::ffff:142.250.0.1 mapped Google", "[::ffff:142.250.0.1]:443", sockets.RuleGoogle, inMapped("142.250.0.1")),

	// IPv4-compatible ::/96 (RFC 4291 section 2.5.5.1, deprecated):
	// refused whatever it carries.
	row("::10.0.0.1 compatible private", "[::10.0.0.1]:80", sockets.RulePrivate, inCompat("10.0.0.1")),
	row("::127.0.0.1 compatible loopback", "[::127.0.0.1]:80", sockets.RuleLoopback, inCompat("127.0.0.1")),
	row("::2 compatible this network", "[::2]:80", sockets.RuleUnspecified, inCompat("0.0.0.2")),
	row("::255.255.255.255 last compatible", "[::255.255.255.255]:80", sockets.RuleBroadcast, inCompat("255.255.255.255")),
	row("::1.1.1.1 compatible public", "[::1.1.1.1]:80", sockets.RuleIPv4Compatible),
	row("::8.8.8.8 compatible Google on 53", "[::8.8.8.8]:53", sockets.RuleGoogle, inCompat("8.8.8.8")),

	// NAT64 64:ff9b::/96 (RFC 6052) and 64:ff9b:1::/48 (RFC 8215): outside
	// 2000::/3, so refused whatever they carry.
	row("64:ff9b::a00:1 NAT64 private", "[64:ff9b::a00:1]:80", sockets.RulePrivate, inNAT64("10.0.0.1")),
	row("64:ff9b::10.0.0.1 NAT64 private, dotted", "[64:ff9b::10.0.0.1]:80", sockets.RulePrivate, inNAT64("10.0.0.1")),
	row("64:ff9b::7f00:1 NAT64 loopback", "[64:ff9b::7f00:1]:80", sockets.RuleLoopback, inNAT64("127.0.0.1")),
	row("64:ff9b::808:808 NAT64 Google DNS", "[64:ff9b::808:808]:53", sockets.RuleGoogle, inNAT64("8.8.8.8")),
	row("64:ff9b::101:101 NAT64 public", "[64:ff9b::101:101]:80", sockets.RuleNAT64),
	row("64:ff9b::1:0:0 just above NAT64 /96", "[64:ff9b::1:0:0]:80", sockets.RuleNotGlobalUnicast),
	row("64:ff9b:1::a00:1 NAT64 local-use private", "[64:ff9b:1::a00:1]:80", sockets.RulePrivate, inNAT64Local("10.0.0.1")),
	row("64:ff9b:1:ffff:ffff:ffff:ffff:ffff last of NAT64 local-use", "[64:ff9b:1:ffff:ffff:ffff:ffff:ffff]:80", sockets.RuleBroadcast, inNAT64Local("255.255.255.255")),
	row("64:ff9b:1::101:101 NAT64 local-use public", "[64:ff9b:1::101:101]:80", sockets.RuleNAT64Local),
	row("64:ff9b:2:: just above NAT64 local-use", "[64:ff9b:2::]:80", sockets.RuleNotGlobalUnicast),

	// 6to4 2002::/16 (RFC 3056): the IPv4 address is bits 16-47; the
	// address is refused exactly when that IPv4 address is.
	row("2002:a00:1:: 6to4 private", "[2002:a00:1::]:80", sockets.RulePrivate, in6to4("10.0.0.1")),
	row("2002:7f00:1:: 6to4 loopback", "[2002:7f00:1::]:80", sockets.RuleLoopback, in6to4("127.0.0.1")),
	row("2002:c0a8:101::1 6to4 192.168.1.1", "[2002:c0a8:101::1]:80", sockets.RulePrivate, in6to4("192.168.1.1")),
	row("2002:a9fe:a9fe:: 6to4 metadata", "[2002:a9fe:a9fe::]:80", sockets.RuleLinkLocal, in6to4("169.254.169.254")),
	row("2002:: first of 6to4", "[2002::]:80", sockets.RuleUnspecified, in6to4("0.0.0.0")),
	row("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff last of 6to4", "[2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:80", sockets.RuleBroadcast, in6to4("255.255.255.255")),
	row("2002:101:101:: 6to4 public", "[2002:101:101::]:443", allowed),
	row("2002:808:808:: 6to4 Google DNS on 53", "[2002:808:808::]:53", sockets.RuleGoogle, in6to4("8.8.8.8")),
	{name: "2002:8efb:96c:: 6to4 of a Gmail address", network: "tcp", host: "smtp.gmail.com", addr: "[2002:8efb:96c::]:587", want: sockets.RuleGoogle, via: in6to4("142.251.9.108")},

	// Teredo 2001::/32 (RFC 4380): server IPv4 in bits 32-63, client IPv4
	// inverted in bits 96-127. Refused always; the name says why.
	row("2001:0:a00:1:: Teredo private server", "[2001:0:a00:1::]:80", sockets.RulePrivate, inTeredo("10.0.0.1")),
	row("2001:0:101:101::3f57:fefe Teredo private client", "[2001:0:101:101::3f57:fefe]:80", sockets.RulePrivate, inTeredo("192.168.1.1")),
	row("2001:0:101:101::80ff:fffe Teredo loopback client", "[2001:0:101:101::80ff:fffe]:80", sockets.RuleLoopback, inTeredo("127.0.0.1")),
	row("2001:0:808:808::fefe:fefe Teredo Google server", "[2001:0:808:808::fefe:fefe]:53", sockets.RuleGoogle, inTeredo("8.8.8.8")),
	row("2001:0:101:101::fefe:fefe Teredo all public", "[2001:0:101:101::fefe:fefe]:80", sockets.RuleTeredo),
	row("2001:0:ffff:ffff:ffff:ffff:ffff:ffff last of Teredo", "[2001:0:ffff:ffff:ffff:ffff:ffff:ffff]:80", sockets.RuleBroadcast, inTeredo("255.255.255.255")),

	// Zones (RFC 4007): refused, whatever the address.
	row("fe80::1%eth0 zoned link-local", "[fe80::1%eth0]:80", sockets.RuleZone),
	{name: "2606:4700::1 with a zone", network: "tcp", addr: "[2606:4700::1]:443", zone: "eth0", want: sockets.RuleZone},
	{name: "::ffff:1.1.1.1 with a zone", network: "tcp", addr: "[::ffff:1.1.1.1]:443", zone: "1", want: sockets.RuleZone},
	{name: "2001:4860:4860::8888 with a zone on 53", network: "udp", addr: "[2001:4860:4860::8888]:53", zone: "eth0", want: sockets.RuleZone},
	{name: "zone is checked before port 25", network: "tcp", addr: "[2606:4700::1]:25", zone: "eth0", want: sockets.RuleZone},
	{name: "2606:4700::1 without a zone", network: "tcp", addr: "[2606:4700::1]:443", want: allowed},

	// Ports and networks, on a public address.
	row("tcp 25 SMTP", "1.1.1.1:25", sockets.RuleSMTP),
	{name: "udp 25 SMTP", network: "udp", addr: "1.1.1.1:25", want: sockets.RuleSMTP},
	{name: "tcp6 25 SMTP", network: "tcp6", addr: "[2606:4700::1]:25", want: sockets.RuleSMTP},
	row("tcp 25 on a private address names SMTP first", "10.0.0.1:25", sockets.RuleSMTP),
	row("tcp 24", "1.1.1.1:24", allowed),
	row("tcp 26", "1.1.1.1:26", allowed),
	row("tcp 587 submission", "1.1.1.1:587", allowed),
	row("tcp 21 FTP", "1.1.1.1:21", sockets.RuleFTP),
	{name: "tcp4 21 FTP", network: "tcp4", addr: "1.1.1.1:21", want: sockets.RuleFTP},
	{name: "tcp6 21 FTP", network: "tcp6", addr: "[2606:4700::1]:21", want: sockets.RuleFTP},
	{name: "udp 21 is not FTP", network: "udp", addr: "1.1.1.1:21", want: allowed},
	{name: "udp6 21 is not FTP", network: "udp6", addr: "[2606:4700::1]:21", want: allowed},
	row("tcp 20", "1.1.1.1:20", allowed),
	row("tcp 22", "1.1.1.1:22", allowed),
	row("tcp 0", "1.1.1.1:0", sockets.RulePort0),
	{name: "udp 0", network: "udp", addr: "1.1.1.1:0", want: sockets.RulePort0},
	row("tcp 1", "1.1.1.1:1", allowed),
	row("tcp 65535", "1.1.1.1:65535", allowed),
	{name: "tcp4", network: "tcp4", addr: "1.1.1.1:443", want: allowed},
	{name: "tcp6", network: "tcp6", addr: "[2606:4700::1]:443", want: allowed},
	{name: "udp4", network: "udp4", addr: "1.1.1.1:443", want: allowed},
	{name: "udp6", network: "udp6", addr: "[2606:4700::1]:443", want: allowed},
	{name: "network unix", network: "unix", addr: "1.1.1.1:443", want: sockets.RuleNetwork},
	{name: "network unixgram", network: "unixgram", addr: "1.1.1.1:443", want: sockets.RuleNetwork},
	{name: "network ip", network: "ip", addr: "1.1.1.1:443", want: sockets.RuleNetwork},
	{name: "network ip4:icmp", network: "ip4:icmp", addr: "1.1.1.1:443", want: sockets.RuleNetwork},
	{name: "network tcp7", network: "tcp7", addr: "1.1.1.1:443", want: sockets.RuleNetwork},
	{name: "network TCP", network: "TCP", addr: "1.1.1.1:443", want: sockets.RuleNetwork},
	{name: "network empty", network: "", addr: "1.1.1.1:443", want: sockets.RuleNetwork},
	{name: "network is checked before the address", network: "unix", addr: "", want: sockets.RuleNetwork},
	{name: "zero address", network: "tcp", addr: "", want: sockets.RuleMalformed},

	// Google's services: the embedded goog.json minus the embedded
	// cloud.json (TestGoogleRuleData checks where each address lies).
	row("142.249.255.255 just below 142.250.0.0/15", "142.249.255.255:443", allowed),
	row("142.250.0.0 first of 142.250.0.0/15", "142.250.0.0:443", sockets.RuleGoogle),
	row("142.251.255.255 last of 142.250.0.0/15", "142.251.255.255:443", sockets.RuleGoogle),
	row("142.252.0.0 just above 142.250.0.0/15", "142.252.0.0:443", allowed),
	row("74.125.0.1 Google", "74.125.0.1:443", sockets.RuleGoogle),
	row("2001:4860:: first of 2001:4860::/32", "[2001:4860::]:443", sockets.RuleGoogle),
	row("2607:f8b0:4004::1 Google IPv6", "[2607:f8b0:4004::1]:443", sockets.RuleGoogle),
	row("2c0f:fb50:ffff:ffff:ffff:ffff:ffff:ffff last of the file", "[2c0f:fb50:ffff:ffff:ffff:ffff:ffff:ffff]:443", sockets.RuleGoogle),
	row("2c0f:fb51:: just above", "[2c0f:fb51::]:443", allowed),
	row("142.250.64.100 Google service", "142.250.64.100:443", sockets.RuleGoogle),
	row("2607:f8b0::1 Google service IPv6", "[2607:f8b0::1]:443", sockets.RuleGoogle),
	row("130.211.0.1 Google service, no cloud.json prefix", "130.211.0.1:443", sockets.RuleGoogle),
	row("34.3.3.1 Google service in 34.3.3.0/24", "34.3.3.1:443", sockets.RuleGoogle),
	row("34.3.2.1 outside goog.json", "34.3.2.1:443", allowed),

	// Google Cloud customers: goog.json prefixes that cloud.json also
	// lists are public hosts like any other.
	row("34.64.32.1 Google Cloud asia-northeast3", "34.64.32.1:443", allowed),
	row("35.185.128.10 Google Cloud asia-east1", "35.185.128.10:443", allowed),
	row("104.196.0.1 Google Cloud us-east1", "104.196.0.1:443", allowed),
	row("23.236.48.1 Google Cloud, a whole goog.json prefix", "23.236.48.1:443", allowed),
	row("8.34.208.1 Google Cloud, part of a goog.json prefix", "8.34.208.1:443", allowed),
	row("2600:1900:4000::1 Google Cloud us-central1 IPv6", "[2600:1900:4000::1]:443", allowed),
	row("2600:1901::1 Google Cloud global IPv6", "[2600:1901::1]:443", allowed),
	{name: "34.64.32.1 Google Cloud by name", network: "tcp", host: "shop.example", addr: "34.64.32.1:443", want: allowed},
	{name: "35.185.128.10 Google Cloud udp", network: "udp", addr: "35.185.128.10:443", want: allowed},
	row("::ffff:34.64.32.1 mapped Google Cloud", "[::ffff:34.64.32.1]:443", allowed),
	row("2002:2240:2001:: 6to4 of Google Cloud", "[2002:2240:2001::]:443", allowed),
	row("64:ff9b::2240:2001 NAT64 of Google Cloud", "[64:ff9b::2240:2001]:443", sockets.RuleNAT64),

	// The edges where goog.json and cloud.json part: exact, address by
	// address.
	row("34.64.0.0 first of 34.64.0.0/10, no cloud.json prefix", "34.64.0.0:443", sockets.RuleGoogle),
	row("34.64.31.255 just below cloud.json 34.64.32.0/19", "34.64.31.255:443", sockets.RuleGoogle),
	row("34.64.32.0 first of cloud.json 34.64.32.0/19", "34.64.32.0:443", allowed),
	row("34.127.255.255 last of 34.64.0.0/10, no cloud.json prefix", "34.127.255.255:443", sockets.RuleGoogle),
	row("35.187.127.255 last of cloud.json 35.187.0.0/17", "35.187.127.255:443", allowed),
	row("35.187.128.0 between cloud.json prefixes", "35.187.128.0:443", sockets.RuleGoogle),
	row("35.187.143.255 between cloud.json prefixes, last", "35.187.143.255:443", sockets.RuleGoogle),
	row("35.187.144.0 first of cloud.json 35.187.144.0/20", "35.187.144.0:443", allowed),
	row("2600:1900::1 in 2600:1900::/28, no cloud.json prefix", "[2600:1900::1]:443", sockets.RuleGoogle),
	row("2600:1900:3fff:ffff:ffff:ffff:ffff:ffff just below cloud.json 2600:1900:4000::/44", "[2600:1900:3fff:ffff:ffff:ffff:ffff:ffff]:443", sockets.RuleGoogle),
	row("2600:1900:4000:: first of cloud.json 2600:1900:4000::/44", "[2600:1900:4000::]:443", allowed),
	row("2600:1900:400f:ffff:ffff:ffff:ffff:ffff last of cloud.json 2600:1900:4000::/44", "[2600:1900:400f:ffff:ffff:ffff:ffff:ffff]:443", allowed),
	row("2600:1901:1:: just above cloud.json 2600:1901::/48", "[2600:1901:1::]:443", sockets.RuleGoogle),
	row("2600:190f:ffff:ffff:ffff:ffff:ffff:ffff last of 2600:1900::/28", "[2600:190f:ffff:ffff:ffff:ffff:ffff:ffff]:443", sockets.RuleGoogle),
	row("2600:1910:: just above 2600:1900::/28", "[2600:1910::]:443", allowed),

	// Exceptions: Google Public DNS by address on port 53, TCP and UDP.
	{name: "8.8.8.8 udp 53", network: "udp", addr: "8.8.8.8:53", want: allowed},
	{name: "8.8.8.8 tcp 53", network: "tcp", addr: "8.8.8.8:53", want: allowed},
	{name: "8.8.8.8 udp4 53", network: "udp4", addr: "8.8.8.8:53", want: allowed},
	{name: "8.8.4.4 udp 53", network: "udp", addr: "8.8.4.4:53", want: allowed},
	{name: "8.8.4.4 tcp 53", network: "tcp", addr: "8.8.4.4:53", want: allowed},
	{name: "2001:4860:4860::8888 udp 53", network: "udp", addr: "[2001:4860:4860::8888]:53", want: allowed},
	{name: "2001:4860:4860::8844 tcp6 53", network: "tcp6", addr: "[2001:4860:4860::8844]:53", want: allowed},
	{name: "8.8.8.8 on 53 by any name", network: "udp", host: "dns.example", addr: "8.8.8.8:53", want: allowed},
	{name: "::ffff:8.8.8.8 udp 53 mapped", network: "udp", addr: "[::ffff:8.8.8.8]:53", want: allowed},
	row("8.8.8.8 tcp 443 refused", "8.8.8.8:443", sockets.RuleGoogle),
	{name: "8.8.8.8 udp 443 refused", network: "udp", addr: "8.8.8.8:443", want: sockets.RuleGoogle},
	row("8.8.8.8 tcp 853 refused", "8.8.8.8:853", sockets.RuleGoogle),
	{name: "8.8.8.9 udp 53 refused", network: "udp", addr: "8.8.8.9:53", want: sockets.RuleGoogle},
	{name: "8.8.4.5 udp 53 refused", network: "udp", addr: "8.8.4.5:53", want: sockets.RuleGoogle},
	row("2001:4860:4860::8888 tcp 443 refused", "[2001:4860:4860::8888]:443", sockets.RuleGoogle),
	{name: "2001:4860:4860::8889 udp 53 refused", network: "udp", addr: "[2001:4860:4860::8889]:53", want: sockets.RuleGoogle},

	// Exceptions: Gmail by the exact name dialed, TCP only.
	{name: "smtp.gmail.com 465", network: "tcp", host: "smtp.gmail.com", addr: gmail + ":465", want: allowed},
	{name: "smtp.gmail.com 587", network: "tcp", host: "smtp.gmail.com", addr: gmail + ":587", want: allowed},
	{name: "smtp.gmail.com 587 IPv6", network: "tcp6", host: "smtp.gmail.com", addr: "[" + gmail6 + "]:587", want: allowed},
	{name: "smtp.gmail.com 587 mapped", network: "tcp", host: "smtp.gmail.com", addr: "[::ffff:" + gmail + "]:587", want: allowed},
	{name: "smtp.gmail.com 587 at a public non-Google address", network: "tcp", host: "smtp.gmail.com", addr: "1.1.1.1:587", want: allowed},
	{name: "imap.gmail.com 993", network: "tcp", host: "imap.gmail.com", addr: gmail + ":993", want: allowed},
	{name: "pop.gmail.com 995", network: "tcp", host: "pop.gmail.com", addr: gmail + ":995", want: allowed},
	{name: "SMTP.Gmail.com 587 case", network: "tcp", host: "SMTP.Gmail.com", addr: gmail + ":587", want: allowed},
	{name: "smtp.gmail.com. 465 trailing dot", network: "tcp", host: "smtp.gmail.com.", addr: gmail + ":465", want: allowed},
	{name: "IMAP.GMAIL.COM. 993", network: "tcp", host: "IMAP.GMAIL.COM.", addr: gmail + ":993", want: allowed},
	{name: "smtp.gmail.com 25 refused as SMTP", network: "tcp", host: "smtp.gmail.com", addr: gmail + ":25", want: sockets.RuleSMTP},
	{name: "smtp.gmail.com 993 refused", network: "tcp", host: "smtp.gmail.com", addr: gmail + ":993", want: sockets.RuleGoogle},
	{name: "smtp.gmail.com 443 refused", network: "tcp", host: "smtp.gmail.com", addr: gmail + ":443", want: sockets.RuleGoogle},
	{name: "smtp.gmail.com udp 587 refused", network: "udp", host: "smtp.gmail.com", addr: gmail + ":587", want: sockets.RuleGoogle},
	{name: "imap.gmail.com 995 refused", network: "tcp", host: "imap.gmail.com", addr: gmail + ":995", want: sockets.RuleGoogle},
	{name: "pop.gmail.com 993 refused", network: "tcp", host: "pop.gmail.com", addr: gmail + ":993", want: sockets.RuleGoogle},
	{name: "imap.gmail.com 587 refused", network: "tcp", host: "imap.gmail.com", addr: gmail + ":587", want: sockets.RuleGoogle},
	{name: "evil.example at a Gmail address 587 refused", network: "tcp", host: "evil.example", addr: gmail + ":587", want: sockets.RuleGoogle},
	{name: "smtp.gmail.com.evil.example 587 refused", network: "tcp", host: "smtp.gmail.com.evil.example", addr: gmail + ":587", want: sockets.RuleGoogle},
	{name: "evilsmtp.gmail.com 587 refused", network: "tcp", host: "evilsmtp.gmail.com", addr: gmail + ":587", want: sockets.RuleGoogle},
	{name: "smtp.googlemail.com 587 refused", network: "tcp", host: "smtp.googlemail.com", addr: gmail + ":587", want: sockets.RuleGoogle},
	{name: "smtp.gmail.com.. 587 refused", network: "tcp", host: "smtp.gmail.com..", addr: gmail + ":587", want: sockets.RuleGoogle},
	{name: "long s mtp.gmail.com 587 refused", network: "tcp", host: "\u017fmtp.gmail.com", addr: gmail + ":587", want: sockets.RuleGoogle},
	{name: "smtp.gmail.com with a space refused", network: "tcp", host: "smtp.gmail.com ", addr: gmail + ":587", want: sockets.RuleGoogle},
	{name: "no host name 587 refused", network: "tcp", host: emptyHost, addr: gmail + ":587", want: sockets.RuleGoogle},
	{name: "Gmail literal 587 refused", network: "tcp", host: gmail, addr: gmail + ":587", want: sockets.RuleGoogle},
	{name: "smtp.gmail.com at 10.0.0.1 refused as private", network: "tcp", host: "smtp.gmail.com", addr: "10.0.0.1:587", want: sockets.RulePrivate},
	{name: "smtp.gmail.com at 127.0.0.1 refused as loopback", network: "tcp", host: "smtp.gmail.com", addr: "127.0.0.1:465", want: sockets.RuleLoopback},
	{name: "smtp.gmail.com at ::ffff:10.0.0.1 refused as private", network: "tcp", host: "smtp.gmail.com", addr: "[::ffff:10.0.0.1]:587", want: sockets.RulePrivate, via: inMapped("10.0.0.1")},
	{name: "imap.gmail.com at fd00::1 refused as ULA", network: "tcp", host: "imap.gmail.com", addr: "[fd00::1]:993", want: sockets.RuleUniqueLocal},

	// PublicPolicy: URL Fetch's rule, Google reachable.
	{name: "public: 142.250.0.1", pol: "public", network: "tcp", addr: "142.250.0.1:443", want: allowed},
	{name: "public: 8.8.8.8 443", pol: "public", network: "tcp", addr: "8.8.8.8:443", want: allowed},
	{name: "public: Google IPv6", pol: "public", network: "tcp", addr: "[2a00:1450:4001::1]:443", want: allowed},
	{name: "public: 6to4 of Google", pol: "public", network: "tcp", addr: "[2002:808:808::]:443", want: allowed},
	{name: "public: evil.example at Gmail", pol: "public", network: "tcp", host: "evil.example", addr: gmail + ":587", want: allowed},
	{name: "public: 10.0.0.1", pol: "public", network: "tcp", addr: "10.0.0.1:443", want: sockets.RulePrivate},
	{name: "public: ::ffff:127.0.0.1", pol: "public", network: "tcp", addr: "[::ffff:127.0.0.1]:443", want: sockets.RuleLoopback, via: inMapped("127.0.0.1")},
	{name: "public: 6to4 of private", pol: "public", network: "tcp", addr: "[2002:a00:1::]:443", want: sockets.RulePrivate, via: in6to4("10.0.0.1")},
	{name: "public: NAT64 of Google", pol: "public", network: "tcp", addr: "[64:ff9b::808:808]:443", want: sockets.RuleNAT64},
	{name: "public: Teredo of Google", pol: "public", network: "tcp", addr: "[2001:0:808:808::fefe:fefe]:443", want: sockets.RuleTeredo},
	{name: "public: port 25", pol: "public", network: "tcp", addr: "142.250.0.1:25", want: sockets.RuleSMTP},
	{name: "public: zone", pol: "public", network: "tcp", addr: "[fe80::1%eth0]:443", want: sockets.RuleZone},

	// Allow widens explicitly, and only what it names.
	{name: "allow127: 127.0.0.1", pol: "allow127", network: "tcp", addr: "127.0.0.1:8080", want: allowed},
	{name: "allow127: ::ffff:127.0.0.1", pol: "allow127", network: "tcp", addr: "[::ffff:127.0.0.1]:8080", want: allowed},
	{name: "allow127: udp 127.0.0.1", pol: "allow127", network: "udp", addr: "127.0.0.1:53", want: allowed},
	{name: "allow127: udp 127.0.0.1 port 21", pol: "allow127", network: "udp", addr: "127.0.0.1:21", want: allowed},
	{name: "allow127: 127.0.0.2", pol: "allow127", network: "tcp", addr: "127.0.0.2:8080", want: sockets.RuleLoopback},
	{name: "allow127: 127.0.0.0", pol: "allow127", network: "tcp", addr: "127.0.0.0:8080", want: sockets.RuleLoopback},
	{name: "allow127: ::1", pol: "allow127", network: "tcp", addr: "[::1]:8080", want: sockets.RuleLoopback},
	{name: "allow127: ::127.0.0.1 compatible", pol: "allow127", network: "tcp", addr: "[::127.0.0.1]:8080", want: sockets.RuleLoopback, via: inCompat("127.0.0.1")},
	{name: "allow127: 2002:7f00:1:: 6to4", pol: "allow127", network: "tcp", addr: "[2002:7f00:1::]:8080", want: sockets.RuleLoopback, via: in6to4("127.0.0.1")},
	{name: "allow127: port 25", pol: "allow127", network: "tcp", addr: "127.0.0.1:25", want: sockets.RuleSMTP},
	{name: "allow127: tcp port 21", pol: "allow127", network: "tcp", addr: "127.0.0.1:21", want: sockets.RuleFTP},
	{name: "allow127: port 0", pol: "allow127", network: "tcp", addr: "127.0.0.1:0", want: sockets.RulePort0},
	{name: "allow127: unix", pol: "allow127", network: "unix", addr: "127.0.0.1:8080", want: sockets.RuleNetwork},
	{name: "allowMapped: 127.1.2.3", pol: "allowMapped", network: "tcp", addr: "127.1.2.3:8080", want: allowed},
	{name: "allowMapped: 128.0.0.1", pol: "allowMapped", network: "tcp", addr: "128.0.0.1:8080", want: allowed},
	{name: "allowMapped: 10.0.0.1", pol: "allowMapped", network: "tcp", addr: "10.0.0.1:8080", want: sockets.RulePrivate},
	{name: "allowGoogle: 8.8.8.8 443", pol: "allowGoogle", network: "tcp", addr: "8.8.8.8:443", want: allowed},
	{name: "allowGoogle: 8.8.4.4 443", pol: "allowGoogle", network: "tcp", addr: "8.8.4.4:443", want: sockets.RuleGoogle},
	{name: "allowUnmasked: 10.200.0.1", pol: "allowUnmasked", network: "tcp", addr: "10.200.0.1:80", want: allowed},
	// An invalid prefix given to Allow or Deny: TestAllowDenyInvalidPrefix.
	{name: "allowULA: fd12::1", pol: "allowULA", network: "tcp", addr: "[fd12::1]:80", want: allowed},
	{name: "allowULA: fc00::1", pol: "allowULA", network: "tcp", addr: "[fc00::1]:80", want: sockets.RuleUniqueLocal},

	// Deny narrows, before every other address rule, and wins over Allow.
	{name: "deny: 1.1.1.1", pol: "deny", network: "tcp", addr: "1.1.1.1:443", want: sockets.RuleDenyList},
	{name: "deny: ::ffff:1.1.1.1", pol: "deny", network: "tcp", addr: "[::ffff:1.1.1.1]:443", want: sockets.RuleDenyList, via: inMapped("1.1.1.1")},
	{name: "deny: 1.1.2.1", pol: "deny", network: "tcp", addr: "1.1.2.1:443", want: allowed},
	{name: "deny: 2606:4700::1111", pol: "deny", network: "tcp", addr: "[2606:4700::1111]:443", want: sockets.RuleDenyList},
	{name: "deny: 6to4 of 1.1.1.1", pol: "deny", network: "tcp", addr: "[2002:101:101::]:443", want: sockets.RuleDenyList, via: in6to4("1.1.1.1")},
	{name: "deny: port 25 still names SMTP", pol: "deny", network: "tcp", addr: "1.1.1.1:25", want: sockets.RuleSMTP},
	{name: "denyDNS: 8.8.8.8 53", pol: "denyDNS", network: "udp", addr: "8.8.8.8:53", want: sockets.RuleDenyList},
	{name: "denyDNS: 8.8.4.4 53", pol: "denyDNS", network: "udp", addr: "8.8.4.4:53", want: allowed},
	{name: "allowThenDeny: 127.0.0.1", pol: "allowThenDeny", network: "tcp", addr: "127.0.0.1:80", want: allowed},
	{name: "allowThenDeny: 127.0.0.2", pol: "allowThenDeny", network: "tcp", addr: "127.0.0.2:80", want: sockets.RuleDenyList},
	{name: "denyThenAllow: 127.0.0.2", pol: "denyThenAllow", network: "tcp", addr: "127.0.0.2:80", want: sockets.RuleDenyList},
	{name: "deny6to4: 6to4 of a denied address", pol: "deny6to4", network: "tcp", addr: "[2002:a00:1::]:80", want: sockets.RuleDenyList, via: in6to4("10.0.0.1")},
	{name: "deny6to4: 6to4 of a public address", pol: "deny6to4", network: "tcp", addr: "[2002:101:101::]:80", want: allowed},

	// WithGoogleRanges: another file replaces the embedded one.
	{name: "custom: 1.1.1.1 is Google now", pol: "custom", network: "tcp", addr: "1.1.1.1:443", want: sockets.RuleGoogle},
	{name: "custom: 2606:4700::1111 is Google now", pol: "custom", network: "tcp", addr: "[2606:4700::1111]:443", want: sockets.RuleGoogle},
	{name: "custom: 6to4 of 1.1.1.1", pol: "custom", network: "tcp", addr: "[2002:101:101::]:443", want: sockets.RuleGoogle, via: in6to4("1.1.1.1")},
	{name: "custom: 142.250.0.1 is not", pol: "custom", network: "tcp", addr: "142.250.0.1:443", want: allowed},
	{name: "custom: 8.8.8.8 443", pol: "custom", network: "tcp", addr: "8.8.8.8:443", want: sockets.RuleGoogle},
	{name: "custom: 8.8.8.8 53 exception kept", pol: "custom", network: "udp", addr: "8.8.8.8:53", want: allowed},
	{name: "custom: 10.0.0.1", pol: "custom", network: "tcp", addr: "10.0.0.1:443", want: sockets.RulePrivate},
	{name: "publicCustom: 1.1.1.1", pol: "publicCustom", network: "tcp", addr: "1.1.1.1:443", want: sockets.RuleGoogle},
	{name: "publicCustom: 8.8.8.8 53 exception", pol: "publicCustom", network: "udp", addr: "8.8.8.8:53", want: allowed},
	{name: "noGoogle: 142.250.0.1", pol: "noGoogle", network: "tcp", addr: "142.250.0.1:443", want: allowed},
	{name: "noGoogle: 10.0.0.1", pol: "noGoogle", network: "tcp", addr: "10.0.0.1:443", want: sockets.RulePrivate},
	{name: "zeroGoogle: 142.250.0.1", pol: "zeroGoogle", network: "tcp", addr: "142.250.0.1:443", want: allowed},
	{name: "zeroGoogle: 2002:808:808::", pol: "zeroGoogle", network: "tcp", addr: "[2002:808:808::]:443", want: allowed},

	// The broadest reading: the whole of goog.json refused, Google Cloud
	// customers too, with the same exceptions.
	{name: "whole: 34.64.32.1 Google Cloud", pol: "whole", network: "tcp", addr: "34.64.32.1:443", want: sockets.RuleGoogle},
	{name: "whole: 35.185.128.10 Google Cloud", pol: "whole", network: "tcp", addr: "35.185.128.10:443", want: sockets.RuleGoogle},
	{name: "whole: 2600:1900:4000::1 Google Cloud", pol: "whole", network: "tcp", addr: "[2600:1900:4000::1]:443", want: sockets.RuleGoogle},
	{name: "whole: 6to4 of Google Cloud", pol: "whole", network: "tcp", addr: "[2002:2240:2001::]:443", want: sockets.RuleGoogle, via: in6to4("34.64.32.1")},
	{name: "whole: NAT64 of Google Cloud", pol: "whole", network: "tcp", addr: "[64:ff9b::2240:2001]:443", want: sockets.RuleGoogle, via: inNAT64("34.64.32.1")},
	{name: "whole: 142.250.64.100", pol: "whole", network: "tcp", addr: "142.250.64.100:443", want: sockets.RuleGoogle},
	{name: "whole: 8.8.8.8 tcp 53", pol: "whole", network: "tcp", addr: "8.8.8.8:53", want: allowed},
	{name: "whole: 8.8.8.8 udp 53", pol: "whole", network: "udp", addr: "8.8.8.8:53", want: allowed},
	{name: "whole: 8.8.8.8 443", pol: "whole", network: "tcp", addr: "8.8.8.8:443", want: sockets.RuleGoogle},
	{name: "whole: smtp.gmail.com 587", pol: "whole", network: "tcp", host: "smtp.gmail.com", addr: gmail + ":587", want: allowed},
	{name: "whole: 34.3.2.1 outside goog.json", pol: "whole", network: "tcp", addr: "34.3.2.1:443", want: allowed},
	{name: "whole: 10.0.0.1", pol: "whole", network: "tcp", addr: "10.0.0.1:443", want: sockets.RulePrivate},
	{name: "publicWhole: 34.64.32.1", pol: "publicWhole", network: "tcp", addr: "34.64.32.1:443", want: sockets.RuleGoogle},
	{name: "services: 34.64.32.1", pol: "services", network: "tcp", addr: "34.64.32.1:443", want: allowed},
	{name: "services: 34.64.31.255", pol: "services", network: "tcp", addr: "34.64.31.255:443", want: sockets.RuleGoogle},
	{name: "services: 8.8.8.8 53 exception", pol: "services", network: "udp", addr: "8.8.8.8:53", want: allowed},

	// PublicPolicy: Google Cloud customers, like every Google range.
	{name: "public: 34.64.32.1 Google Cloud", pol: "public", network: "tcp", addr: "34.64.32.1:443", want: allowed},
	{name: "public: 34.64.31.255 Google service", pol: "public", network: "tcp", addr: "34.64.31.255:443", want: allowed},

	// The zero Policy is DefaultPolicy (TestZeroPolicyIsDefault runs the
	// whole table on it).
	{name: "zero: 142.250.64.100", pol: "zero", network: "tcp", addr: "142.250.64.100:443", want: sockets.RuleGoogle},
	{name: "zero: 34.64.32.1", pol: "zero", network: "tcp", addr: "34.64.32.1:443", want: allowed},
	{name: "zero: 8.8.8.8 udp 53", pol: "zero", network: "udp", addr: "8.8.8.8:53", want: allowed},
	{name: "zero: 127.0.0.1", pol: "zero", network: "tcp", addr: "127.0.0.1:80", want: sockets.RuleLoopback},
}

// TestCheckTable checks every row of the boundary table: the rule, the
// error's fields and message, agreement with the fuzz reference for the
// default and public policies, and that an IPv4 address and its
// IPv4-mapped form get the same answer.
func TestCheckTable(t *testing.T) {
	t.Parallel()
	policies := checkPolicies(t)
	seen := map[string]bool{}
	for _, tc := range checkCases {
		if seen[tc.name] {
			t.Fatalf("duplicate row name %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, ok := policies[tc.pol]
			if !ok {
				t.Fatalf("no policy %q", tc.pol)
			}
			var ap netip.AddrPort
			if tc.addr != "" {
				ap = netip.MustParseAddrPort(tc.addr)
			}
			if tc.zone != "" {
				ap = netip.AddrPortFrom(ap.Addr().WithZone(tc.zone), ap.Port())
			}
			host := tc.host
			switch {
			case host == emptyHost:
				host = ""
			case host == "" && ap.IsValid():
				host = ap.Addr().String()
			}
			err := p.Check(tc.network, host, ap)
			assertRule(t, err, tc.network, host, ap, tc.want, tc.via)

			if tc.pol == "" {
				// A nil *Policy is DefaultPolicy().
				var nilPolicy *sockets.Policy
				assertRule(t, nilPolicy.Check(tc.network, host, ap), tc.network, host, ap, tc.want, tc.via)
			}
			if google, ok := refRules[tc.pol]; ok {
				if want := refAllowedWith(google, tc.network, host, ap); want != (err == nil) {
					t.Errorf("the fuzz reference says allowed = %v", want)
				}
			}
			if a := ap.Addr(); a.Is4() {
				// The IPv4-mapped form gets the same rule; an address
				// rule says that it refused the IPv4 address carried.
				mapped := netip.AddrPortFrom(netip.AddrFrom16(a.As16()), ap.Port())
				via := direct
				if addressRule(tc.want) {
					via = inMapped(a.String())
				}
				assertRule(t, p.Check(tc.network, host, mapped), tc.network, host, mapped, tc.want, via)
			}
		})
	}
}

// refRules are the fuzz reference's readings of the Google rule for the
// policies of the table that it covers.
var refRules = map[string]refGoogleRule{
	"":         refServices,
	"zero":     refServices,
	"services": refServices,
	"public":   refGoogleOff,
	"whole":    refWholeGoog,
}

// addressRule reports whether r is a rule about the address (the deny
// list, the never-public table, the Google rule), rather than the network,
// the port, or the address's form.
func addressRule(r sockets.Rule) bool {
	switch r {
	case sockets.RuleNetwork, sockets.RuleMalformed, sockets.RuleZone, sockets.RulePort0, sockets.RuleSMTP, sockets.RuleFTP:
		return false
	}
	return r != allowed
}

// assertRule checks that err is nil when want is allowed, and otherwise a
// *DeniedError for rule want, carried as via says, with the fields Check
// was given.
func assertRule(t *testing.T, err error, network, host string, ap netip.AddrPort, want sockets.Rule, via carried) {
	t.Helper()
	if want == allowed {
		if err != nil {
			t.Fatalf("Check(%q, %q, %v) = %v; want allowed", network, host, ap, err)
		}
		return
	}
	if err == nil {
		t.Fatalf("Check(%q, %q, %v) allowed; want refused by %v", network, host, ap, want)
	}
	if !errors.Is(err, sockets.ErrDenied) {
		t.Errorf("errors.Is(%v, ErrDenied) = false", err)
	}
	var de *sockets.DeniedError
	if !errors.As(err, &de) {
		t.Fatalf("error %T is not a *DeniedError", err)
	}
	if de.Rule != want {
		t.Errorf("rule %v, want %v", de.Rule, want)
	}
	var wantEmbedded netip.Addr
	if via.addr != "" {
		wantEmbedded = netip.MustParseAddr(via.addr)
	}
	if de.Form != via.form || de.Embedded != wantEmbedded {
		t.Errorf("form %v carrying %v, want %v carrying %v", de.Form, de.Embedded, via.form, wantEmbedded)
	}
	if de.Network != network || de.Host != host || de.Addr != ap {
		t.Errorf("fields network=%q host=%q addr=%v; want %q %q %v", de.Network, de.Host, de.Addr, network, host, ap)
	}
	wantEnd := "refused: " + want.String()
	if via != direct {
		wantEnd += ", " + via.addr + " carried in " + via.form.String()
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "sockets: ") || !strings.HasSuffix(msg, wantEnd) {
		t.Errorf("Error() = %q, want it to end %q", msg, wantEnd)
	}
	if got, want := de.ErrorType(), want.Code(); got != want || got == "" {
		t.Errorf("ErrorType() = %q, want %q", got, want)
	}
	if isTimeout(err) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("refusal is a timeout")
	}
}

// TestNeverPublicEveryBlock checks that the first and the last address of
// every block in the exported table are refused by both policies, under a
// block rule (never a port or network rule).
func TestNeverPublicEveryBlock(t *testing.T) {
	t.Parallel()
	if sockets.TableSource == "" {
		t.Error("TableSource is empty")
	}
	blocks := sockets.NeverPublic()
	if len(blocks) == 0 {
		t.Fatal("empty table")
	}
	for _, b := range blocks {
		if !b.Prefix.IsValid() || b.Prefix != b.Prefix.Masked() || !addressRule(b.Rule) || b.Rule == sockets.RuleDenyList || b.Rule == sockets.RuleGoogle {
			t.Errorf("bad block %v %v", b.Prefix, b.Rule)
		}
		last := lastAddr(b.Prefix)
		for _, a := range []netip.Addr{b.Prefix.Addr(), last} {
			for _, p := range []*sockets.Policy{sockets.DefaultPolicy(), sockets.PublicPolicy()} {
				err := p.Check("tcp", "", netip.AddrPortFrom(a, 443))
				var de *sockets.DeniedError
				if !errors.As(err, &de) {
					t.Errorf("%v (in %v) allowed", a, b.Prefix)
					continue
				}
				if !addressRule(de.Rule) || de.Rule == sockets.RuleDenyList {
					t.Errorf("%v refused by %v, want a block rule", a, de.Rule)
				}
			}
		}
	}
	// The result is a copy.
	blocks[0].Rule = sockets.RuleGoogle
	if sockets.NeverPublic()[0].Rule == sockets.RuleGoogle {
		t.Error("NeverPublic returned the table itself")
	}
}

// lastAddr returns the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func TestPolicyCopies(t *testing.T) {
	t.Parallel()
	base := sockets.DefaultPolicy()
	loop := netip.MustParseAddrPort("127.0.0.1:80")
	one := netip.MustParseAddrPort("1.1.1.1:80")
	two := netip.MustParseAddrPort("2.2.2.2:80")

	wide := base.Allow(pfx("127.0.0.1/32"))
	narrow := base.Deny(pfx("1.1.1.0/24"))
	_ = base.WithGoogleRanges(nil)
	if base.Check("tcp", "", loop) == nil {
		t.Error("Allow changed the original policy")
	}
	if err := base.Check("tcp", "", one); err != nil {
		t.Errorf("Deny changed the original policy: %v", err)
	}
	if g := base.GoogleRanges(); g == nil || !slices.Equal(g.Prefixes(), embeddedServices().Prefixes()) {
		t.Error("WithGoogleRanges changed the original policy")
	}
	if wide.Check("tcp", "", loop) != nil || narrow.Check("tcp", "", one) == nil {
		t.Error("the copies do not carry their change")
	}

	// Changes accumulate along a chain, and a copy made from a copy does
	// not change it.
	both := narrow.Deny(pfx("2.2.2.0/24"))
	if both.Check("tcp", "", one) == nil || both.Check("tcp", "", two) == nil {
		t.Error("chained Deny lost a prefix")
	}
	if narrow.Check("tcp", "", two) != nil {
		t.Error("Deny on a copy changed that copy")
	}

	if sockets.PublicPolicy().GoogleRanges() != nil || base.WithGoogleRanges(nil).GoogleRanges() != nil {
		t.Error("GoogleRanges of a policy without the Google rule is not nil")
	}

	// WithGoogleRanges keeps its own copy: changing *g afterwards changes
	// no policy.
	custom := mustParseGoogle(t, customGoogle)
	withCustom := base.WithGoogleRanges(custom)
	*custom = sockets.GoogleRanges{}
	if withCustom.Check("tcp", "", one) == nil || withCustom.GoogleRanges().SyncToken != "1735787045" {
		t.Error("a change to the GoogleRanges given to WithGoogleRanges reached the policy")
	}
	// Turning the rule off and on again: the last call decides.
	again := base.WithGoogleRanges(nil).WithGoogleRanges(embeddedServices())
	google := netip.MustParseAddrPort("142.250.64.100:443")
	assertRule(t, again.Check("tcp", "", google), "tcp", "", google, sockets.RuleGoogle, direct)
	if len(again.Exceptions()) == 0 {
		t.Error("the exceptions did not come back with the Google rule")
	}

	ex := base.Exceptions()
	want := []sockets.Exception{
		{Addr: netip.MustParseAddr("8.8.8.8"), Port: 53, Protocol: "tcp"},
		{Addr: netip.MustParseAddr("8.8.8.8"), Port: 53, Protocol: "udp"},
		{Addr: netip.MustParseAddr("8.8.4.4"), Port: 53, Protocol: "tcp"},
		{Addr: netip.MustParseAddr("8.8.4.4"), Port: 53, Protocol: "udp"},
		{Addr: netip.MustParseAddr("2001:4860:4860::8888"), Port: 53, Protocol: "tcp"},
		{Addr: netip.MustParseAddr("2001:4860:4860::8888"), Port: 53, Protocol: "udp"},
		{Addr: netip.MustParseAddr("2001:4860:4860::8844"), Port: 53, Protocol: "tcp"},
		{Addr: netip.MustParseAddr("2001:4860:4860::8844"), Port: 53, Protocol: "udp"},
		{Host: "smtp.gmail.com", Port: 465, Protocol: "tcp"},
		{Host: "smtp.gmail.com", Port: 587, Protocol: "tcp"},
		{Host: "pop.gmail.com", Port: 995, Protocol: "tcp"},
		{Host: "imap.gmail.com", Port: 993, Protocol: "tcp"},
	}
	if !slices.Equal(ex, want) {
		t.Errorf("Exceptions() = %v\nwant %v", ex, want)
	}
	ex[0].Port = 443
	if base.Exceptions()[0].Port != 53 {
		t.Error("Exceptions returned the policy's own slice")
	}
	if n := len(sockets.PublicPolicy().Exceptions()); n != 0 {
		t.Errorf("PublicPolicy has %d exceptions", n)
	}
	if n := len(sockets.PublicPolicy().WithGoogleRanges(sockets.EmbeddedGoogleRanges()).Exceptions()); n != len(want) {
		t.Errorf("PublicPolicy with Google ranges has %d exceptions, want the %d defaults", n, len(want))
	}
}

func TestEmbeddedGoogleRanges(t *testing.T) {
	t.Parallel()
	g := sockets.EmbeddedGoogleRanges()
	if want := time.Date(2024, 4, 25, 7, 5, 3, 689940000, time.UTC); !g.Created.Equal(want) || g.Created.Location() != time.UTC {
		t.Errorf("Created = %v, want %v", g.Created, want)
	}
	if g.SyncToken != "1714053903689" {
		t.Errorf("SyncToken = %q", g.SyncToken)
	}
	ps := g.Prefixes()
	if len(ps) != len(refGoogle()) || !slices.Equal(ps, refGoogle()) {
		t.Errorf("Prefixes() has %d prefixes, the file %d", len(ps), len(refGoogle()))
	}
	ps[0] = pfx("10.0.0.0/8")
	if g.Prefixes()[0] != pfx("8.8.4.0/24") {
		t.Error("Prefixes returned the ranges' own slice")
	}
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"8.8.8.8", true},
		{"::ffff:8.8.8.8", true},
		{"142.250.0.0", true},
		{"142.252.0.0", false},
		{"2001:4860:4860::8888", true},
		{"2001:4860:4860::8888%eth0", false},
		{"1.1.1.1", false},
		{"10.0.0.1", false},
	} {
		if got := g.Contains(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("Contains(%s) = %v, want %v", c.addr, got, c.want)
		}
	}
	var zero sockets.GoogleRanges
	var nilRanges *sockets.GoogleRanges
	if zero.Contains(netip.MustParseAddr("8.8.8.8")) || nilRanges.Contains(netip.MustParseAddr("8.8.8.8")) {
		t.Error("an empty GoogleRanges contains 8.8.8.8")
	}
}

// TestEmbeddedGoogleRangesCopies: each caller of EmbeddedGoogleRanges and
// of Policy.GoogleRanges gets its own copy, so changing one changes neither
// the next caller's nor the rule of DefaultPolicy.
func TestEmbeddedGoogleRangesCopies(t *testing.T) {
	t.Parallel()
	want := sockets.EmbeddedGoogleRanges()
	for name, get := range map[string]func() *sockets.GoogleRanges{
		"EmbeddedGoogleRanges":         sockets.EmbeddedGoogleRanges,
		"DefaultPolicy().GoogleRanges": func() *sockets.GoogleRanges { return sockets.DefaultPolicy().GoogleRanges() },
		"nil Policy GoogleRanges":      (*sockets.Policy)(nil).GoogleRanges,
		"zero Policy GoogleRanges":     (&sockets.Policy{}).GoogleRanges,
	} {
		g := get()
		*g = sockets.GoogleRanges{SyncToken: "changed", CloudSyncToken: "changed"}
		again := get()
		if again == g || !again.Created.Equal(want.Created) || again.SyncToken != want.SyncToken {
			t.Errorf("%s: a change to one copy reached the next: %v %q", name, again.Created, again.SyncToken)
		}
		if again.CloudSyncToken == "changed" {
			t.Errorf("%s: a change to one copy's CloudSyncToken reached the next", name)
		}
		if !again.Contains(netip.MustParseAddr("142.250.0.1")) {
			t.Errorf("%s: a change to one copy emptied the next", name)
		}
	}
	err := sockets.DefaultPolicy().Check("tcp", "", netip.MustParseAddrPort("142.250.0.1:443"))
	assertRule(t, err, "tcp", "", netip.MustParseAddrPort("142.250.0.1:443"), sockets.RuleGoogle, direct)
}

// TestNilPolicy: every method of a nil *Policy acts on DefaultPolicy() (its
// Check is covered row by row in TestCheckTable).
func TestNilPolicy(t *testing.T) {
	t.Parallel()
	var p *sockets.Policy
	loop := netip.MustParseAddrPort("127.0.0.1:80")
	one := netip.MustParseAddrPort("1.1.1.1:80")
	google := netip.MustParseAddrPort("142.250.0.1:443")
	private := netip.MustParseAddrPort("10.0.0.1:80")

	wide := p.Allow(pfx("127.0.0.1/32"))
	assertRule(t, wide.Check("tcp", "", loop), "tcp", "", loop, allowed, direct)
	assertRule(t, wide.Check("tcp", "", google), "tcp", "", google, sockets.RuleGoogle, direct)
	assertRule(t, wide.Check("tcp", "", private), "tcp", "", private, sockets.RulePrivate, direct)

	narrow := p.Deny(pfx("1.1.1.0/24"))
	assertRule(t, narrow.Check("tcp", "", one), "tcp", "", one, sockets.RuleDenyList, direct)
	assertRule(t, narrow.Check("tcp", "", google), "tcp", "", google, sockets.RuleGoogle, direct)

	noGoogle := p.WithGoogleRanges(nil)
	assertRule(t, noGoogle.Check("tcp", "", google), "tcp", "", google, allowed, direct)
	assertRule(t, noGoogle.Check("tcp", "", private), "tcp", "", private, sockets.RulePrivate, direct)

	if g := p.GoogleRanges(); g == nil || !slices.Equal(g.Prefixes(), embeddedServices().Prefixes()) {
		t.Error("a nil Policy's GoogleRanges are not the embedded services' ones")
	}
	if !slices.Equal(p.Exceptions(), sockets.DefaultPolicy().Exceptions()) {
		t.Errorf("a nil Policy's exceptions = %v, want DefaultPolicy's", p.Exceptions())
	}
	// The nil Policy itself is unchanged: it is still DefaultPolicy().
	assertRule(t, p.Check("tcp", "", loop), "tcp", "", loop, sockets.RuleLoopback, direct)
	assertRule(t, p.Check("tcp", "", one), "tcp", "", one, allowed, direct)
}

func TestParseGoogleRanges(t *testing.T) {
	t.Parallel()
	g := mustParseGoogle(t, customGoogle)
	if want := time.Date(2025, 1, 2, 3, 4, 5, 500000000, time.UTC); !g.Created.Equal(want) {
		t.Errorf("Created = %v, want %v", g.Created, want)
	}
	if g.SyncToken != "1735787045" {
		t.Errorf("SyncToken = %q", g.SyncToken)
	}
	if !slices.Equal(g.Prefixes(), []netip.Prefix{pfx("1.1.1.0/24"), pfx("2606:4700::/32"), pfx("8.8.8.0/24")}) {
		t.Errorf("Prefixes() = %v", g.Prefixes())
	}

	// A file without creationTime has a zero Created; host bits are
	// masked off.
	g = mustParseGoogle(t, `{"prefixes":[{"ipv4Prefix":"1.2.3.4/24"},{"ipv6Prefix":"2600:1:2:3::/32"}]}`)
	if !g.Created.IsZero() || !slices.Equal(g.Prefixes(), []netip.Prefix{pfx("1.2.3.0/24"), pfx("2600:1::/32")}) {
		t.Errorf("Created %v, Prefixes %v", g.Created, g.Prefixes())
	}

	for _, c := range []struct{ name, doc string }{
		{"empty", ""},
		{"not JSON", "ipv4Prefix: 1.2.3.0/24"},
		{"truncated", `{"prefixes":[{"ipv4Prefix":"1.2.3.0/24"}`},
		{"array", `[{"ipv4Prefix":"1.2.3.0/24"}]`},
		{"trailing garbage", `{"prefixes":[{"ipv4Prefix":"1.2.3.0/24"}]} x`},
		{"no prefixes", `{"syncToken":"1"}`},
		{"empty prefixes", `{"prefixes":[]}`},
		{"null prefixes", `{"prefixes":null}`},
		{"empty entry", `{"prefixes":[{}]}`},
		{"bad prefix", `{"prefixes":[{"ipv4Prefix":"1.2.3.0/33"}]}`},
		{"prefix without length", `{"prefixes":[{"ipv4Prefix":"1.2.3.4"}]}`},
		{"garbage prefix", `{"prefixes":[{"ipv4Prefix":"google"}]}`},
		{"IPv4 in ipv6Prefix", `{"prefixes":[{"ipv6Prefix":"1.2.3.0/24"}]}`},
		{"IPv6 in ipv4Prefix", `{"prefixes":[{"ipv4Prefix":"2001:db8::/32"}]}`},
		{"IPv4-mapped in ipv6Prefix", `{"prefixes":[{"ipv6Prefix":"::ffff:1.2.3.0/120"}]}`},
		{"zoned prefix", `{"prefixes":[{"ipv6Prefix":"fe80::%eth0/64"}]}`},
		{"one bad among good", `{"prefixes":[{"ipv4Prefix":"1.2.3.0/24"},{"ipv4Prefix":"x"}]}`},
		{"prefix not a string", `{"prefixes":[{"ipv4Prefix":1}]}`},
		{"bad creationTime", `{"creationTime":"yesterday","prefixes":[{"ipv4Prefix":"1.2.3.0/24"}]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, err := sockets.ParseGoogleRanges([]byte(c.doc), nil)
			if err == nil || g != nil {
				t.Fatalf("ParseGoogleRanges(%q, nil) = %v, %v; want an error", c.doc, g, err)
			}
			if !strings.HasPrefix(err.Error(), "sockets: google ranges: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			// The same document as the cloud.json is refused as that.
			g, err = sockets.ParseGoogleRanges([]byte(customGoogle), []byte(c.doc))
			if err == nil || g != nil {
				t.Fatalf("ParseGoogleRanges(goog, %q) = %v, %v; want an error", c.doc, g, err)
			}
			if !strings.HasPrefix(err.Error(), "sockets: cloud ranges: ") {
				t.Errorf("error %q does not name the cloud ranges", err)
			}
		})
	}
}

// TestParseGoogleRangesTooLarge feeds valid documents larger than the
// 16 MiB limit: only the limit can refuse them, as goog.json and as
// cloud.json.
func TestParseGoogleRangesTooLarge(t *testing.T) {
	t.Parallel()
	const tail = `","prefixes":[{"ipv4Prefix":"1.2.3.0/24"}]}`
	doc := slices.Concat([]byte(`{"syncToken":"`), bytes.Repeat([]byte("a"), 16<<20), []byte(tail))
	if g, err := sockets.ParseGoogleRanges(doc, nil); err == nil || !strings.HasPrefix(err.Error(), "sockets: google ranges: ") {
		t.Fatalf("ParseGoogleRanges accepted a document over 16 MiB (%v, %v)", g, err)
	}
	if g, err := sockets.ParseGoogleRanges([]byte(customGoogle), doc); err == nil || !strings.HasPrefix(err.Error(), "sockets: cloud ranges: ") {
		t.Fatalf("ParseGoogleRanges accepted a cloud.json over 16 MiB (%v, %v)", g, err)
	}
	// At the limit exactly, the document is read.
	doc = slices.Concat([]byte(`{"syncToken":"`), bytes.Repeat([]byte("a"), 16<<20-len(`{"syncToken":"`)-len(tail)), []byte(tail))
	if len(doc) != 16<<20 {
		t.Fatalf("document of %d bytes", len(doc))
	}
	if _, err := sockets.ParseGoogleRanges(doc, nil); err != nil {
		t.Errorf("ParseGoogleRanges of a document of exactly 16 MiB: %v", err)
	}
}

// TestGoogleRangesReplaced installs the whole of a newer goog.json: its
// ranges are refused, and the embedded ones no longer are.
func TestGoogleRangesReplaced(t *testing.T) {
	t.Parallel()
	g, err := sockets.ParseGoogleRanges([]byte(customGoogle), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !g.CloudCreated.IsZero() || g.CloudSyncToken != "" {
		t.Errorf("ranges parsed without a cloud.json have cloud fields: %v %q", g.CloudCreated, g.CloudSyncToken)
	}
	p := sockets.DefaultPolicy().WithGoogleRanges(g)
	assertRule(t, p.Check("tcp", "x", netip.MustParseAddrPort("1.1.1.1:443")), "tcp", "x", netip.MustParseAddrPort("1.1.1.1:443"), sockets.RuleGoogle, direct)
	if err := p.Check("tcp", "x", netip.MustParseAddrPort("142.250.0.1:443")); err != nil {
		t.Errorf("an old range is still refused: %v", err)
	}
}

func TestDeniedErrorMessage(t *testing.T) {
	t.Parallel()
	p := sockets.DefaultPolicy()
	for _, c := range []struct {
		err  error
		want string
	}{
		{p.Check("tcp", "intranet.example", netip.MustParseAddrPort("10.0.0.1:80")),
			`sockets: tcp to 10.0.0.1:80 (host "intranet.example") refused: private (RFC 1918)`},
		{p.Check("tcp", "10.0.0.1", netip.MustParseAddrPort("10.0.0.1:80")),
			`sockets: tcp to 10.0.0.1:80 refused: private (RFC 1918)`},
		{p.Check("udp6", "", netip.MustParseAddrPort("[2002:a00:1::]:53")),
			`sockets: udp6 to [2002:a00:1::]:53 refused: private (RFC 1918), 10.0.0.1 carried in 6to4 (RFC 3056)`},
		{p.Check("tcp", "", netip.MustParseAddrPort("[::ffff:127.0.0.1]:80")),
			`sockets: tcp to [::ffff:127.0.0.1]:80 refused: loopback (RFC 1122, RFC 4291), 127.0.0.1 carried in IPv4-mapped (RFC 4291)`},
		{p.Check("tcp", "", netip.MustParseAddrPort("[2001:0:101:101::3f57:fefe]:80")),
			`sockets: tcp to [2001:0:101:101::3f57:fefe]:80 refused: private (RFC 1918), 192.168.1.1 carried in Teredo (RFC 4380)`},
		{p.Check("tcp", "", netip.MustParseAddrPort("[64:ff9b::101:101]:80")),
			`sockets: tcp to [64:ff9b::101:101]:80 refused: NAT64 (RFC 6052)`},
		{p.Check("tcp", "evil.example", netip.MustParseAddrPort(gmail+":587")),
			`sockets: tcp to 142.251.9.108:587 (host "evil.example") refused: google range`},
		{p.Check("unix", "/run/x.sock", netip.AddrPort{}),
			`sockets: unix to "/run/x.sock" refused: network not allowed (only tcp and udp)`},
		{&sockets.DeniedError{Rule: sockets.RuleMalformed, Detail: `missing port in address`},
			`sockets: refused: malformed address: missing port in address`},
		{&sockets.DeniedError{Network: "tcp", Host: "a b:80", Rule: sockets.RuleMalformed, Detail: `invalid host name: character ' '`},
			`sockets: tcp to "a b:80" refused: malformed address: invalid host name: character ' '`},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("Error() = %s\nwant      %s", got, c.want)
		}
	}
	de := &sockets.DeniedError{Rule: sockets.RuleListen}
	var timeout interface{ Timeout() bool }
	if errors.As(de, &timeout) || errors.Is(de, context.DeadlineExceeded) || !errors.Is(de, sockets.ErrDenied) || errors.Unwrap(de) != sockets.ErrDenied {
		t.Error("DeniedError is not a non-timeout refusal wrapping ErrDenied")
	}
}

// TestGoogleRuleData checks, against the embedded files read by the fuzz
// reference, where the examples of the Google rule lie, and what the
// default rule (Google's services: goog.json minus cloud.json), the
// broadest reading (the whole of goog.json) and PublicPolicy decide for
// them.
func TestGoogleRuleData(t *testing.T) {
	t.Parallel()
	policies := map[string]*sockets.Policy{
		"default": sockets.DefaultPolicy(),
		"zero":    {},
		"whole":   sockets.DefaultPolicy().WithGoogleRanges(sockets.EmbeddedGoogleRanges()),
		"public":  sockets.PublicPolicy(),
	}
	for _, c := range []struct {
		network, addr string
		goog, cloud   string // the file prefixes that hold addr; "" for none
		def, whole    sockets.Rule
	}{
		// Google Cloud customers (cloud.json scope asia-northeast3,
		// asia-east1, us-central1): reachable, unless the whole of goog.json
		// is refused.
		{"tcp", "34.64.32.1:443", "34.64.0.0/10", "34.64.32.0/19", allowed, sockets.RuleGoogle},
		{"tcp", "35.185.128.10:443", "35.184.0.0/13", "35.185.128.0/19", allowed, sockets.RuleGoogle},
		{"tcp", "[2600:1900:4000::1]:443", "2600:1900::/28", "2600:1900:4000::/44", allowed, sockets.RuleGoogle},
		// Google's services: in goog.json, in no cloud.json prefix.
		{"tcp", "142.250.64.100:443", "142.250.0.0/15", "", sockets.RuleGoogle, sockets.RuleGoogle},
		{"tcp", "[2607:f8b0::1]:443", "2607:f8b0::/32", "", sockets.RuleGoogle, sockets.RuleGoogle},
		{"tcp", "[2600:1900::1]:443", "2600:1900::/28", "", sockets.RuleGoogle, sockets.RuleGoogle},
		{"tcp", "34.64.31.255:443", "34.64.0.0/10", "", sockets.RuleGoogle, sockets.RuleGoogle},
		// Google Public DNS: a Google service, reachable on port 53 only.
		{"tcp", "8.8.8.8:53", "8.8.8.0/24", "", allowed, allowed},
		{"udp", "8.8.8.8:53", "8.8.8.0/24", "", allowed, allowed},
		{"tcp", "8.8.8.8:443", "8.8.8.0/24", "", sockets.RuleGoogle, sockets.RuleGoogle},
		// Outside goog.json.
		{"tcp", "1.1.1.1:443", "", "", allowed, allowed},
	} {
		t.Run(c.network+" "+c.addr, func(t *testing.T) {
			ap := netip.MustParseAddrPort(c.addr)
			a := ap.Addr()
			if got := containing(refGoogle(), a); got != c.goog {
				t.Errorf("goog.json prefixes holding %v: %q, want %q", a, got, c.goog)
			}
			if got := containing(refCloud(), a); got != c.cloud {
				t.Errorf("cloud.json prefixes holding %v: %q, want %q", a, got, c.cloud)
			}
			for name, p := range policies {
				want := c.def
				switch name {
				case "whole":
					want = c.whole
				case "public":
					want = allowed
				}
				if got := ruleOf(p.Check(c.network, "", ap)); got != want {
					t.Errorf("%s: rule %q, want %q", name, got, want)
				}
			}
		})
	}
}

// containing lists the prefixes of list that hold a, by linear scan.
func containing(list []netip.Prefix, a netip.Addr) string {
	var out []string
	for _, p := range list {
		if p.Contains(a) {
			out = append(out, p.String())
		}
	}
	return strings.Join(out, " ")
}

// TestEmbeddedGoogleServices checks the embedded goog.json minus cloud.json
// (the ranges DefaultPolicy refuses, which its GoogleRanges returns)
// against the fuzz reference at every edge of every prefix of both files:
// its first and last address and the addresses just outside.
func TestEmbeddedGoogleServices(t *testing.T) {
	t.Parallel()
	g := embeddedServices()
	whole := sockets.EmbeddedGoogleRanges()
	// Both files come from Google's sync of 2024-04-25.
	created := time.Date(2024, 4, 25, 7, 5, 3, 689940000, time.UTC)
	if !g.Created.Equal(created) || !g.CloudCreated.Equal(created) || g.CloudCreated.Location() != time.UTC {
		t.Errorf("Created %v, CloudCreated %v; want %v", g.Created, g.CloudCreated, created)
	}
	if g.SyncToken != "1714053903689" || g.CloudSyncToken != "1714053903689" {
		t.Errorf("SyncToken %q, CloudSyncToken %q", g.SyncToken, g.CloudSyncToken)
	}
	if !whole.CloudCreated.IsZero() || whole.CloudSyncToken != "" {
		t.Errorf("the whole goog.json has cloud fields: %v %q", whole.CloudCreated, whole.CloudSyncToken)
	}
	if n := len(refCloud()); n != 661 {
		t.Errorf("cloud.json has %d prefixes, want 661", n)
	}
	// Every cloud.json prefix lies inside goog.json, so the difference
	// takes nothing away that goog.json does not hold.
	for _, c := range refCloud() {
		if !inAny(refGoogle(), c.Addr()) || !inAny(refGoogle(), lastAddr(c)) {
			t.Errorf("cloud.json prefix %v is not inside goog.json", c)
		}
	}

	ps := g.Prefixes()
	if len(ps) == 0 {
		t.Fatal("no prefixes")
	}
	for i, p := range ps {
		if p != p.Masked() || i > 0 && !ps[i-1].Addr().Less(p.Addr()) {
			t.Errorf("prefix %d %v: not masked or not in address order", i, p)
		}
	}
	var edges []netip.Addr
	for _, p := range append(refGoogle(), refCloud()...) {
		first, last := p.Addr(), lastAddr(p)
		edges = append(edges, first, last, first.Prev(), last.Next())
	}
	for _, a := range edges {
		if !a.IsValid() {
			continue
		}
		want := refServices(a)
		if got := g.Contains(a); got != want {
			t.Errorf("Contains(%v) = %v, the reference says %v", a, got, want)
		}
		if got := inAny(ps, a); got != want {
			t.Errorf("Prefixes() hold %v: %v, the reference says %v", a, got, want)
		}
		if got := whole.Contains(a); got != inAny(refGoogle(), a) {
			t.Errorf("the whole goog.json: Contains(%v) = %v", a, got)
		}
	}
}

// customCloud is a cloud.json for customGoogle: it takes away part of
// 1.1.1.0/24 (an exact subtraction inside a prefix), part of 2606:4700::/32,
// and a range outside customGoogle, which changes nothing.
const customCloud = `{
  "syncToken": "1735787999",
  "creationTime": "2025-01-02T03:20:00.25",
  "prefixes": [
    {"ipv4Prefix": "1.1.1.128/25", "service": "Google Cloud", "scope": "us-central1"},
    {"ipv4Prefix": "1.1.1.7/32", "service": "Google Cloud", "scope": "us-east1"},
    {"ipv6Prefix": "2606:4700:4700::/48", "service": "Google Cloud", "scope": "global"},
    {"ipv4Prefix": "9.9.9.0/24", "service": "Google Cloud", "scope": "europe-west1"}
  ]
}`

// TestGoogleServices parses a goog.json with the cloud.json of the same
// sync: the ranges of Google's services, their difference.
func TestGoogleServices(t *testing.T) {
	t.Parallel()
	goog := mustParseGoogle(t, customGoogle)
	g, err := sockets.ParseGoogleRanges([]byte(customGoogle), []byte(customCloud))
	if err != nil {
		t.Fatal(err)
	}
	if !g.Created.Equal(goog.Created) || g.SyncToken != "1735787045" {
		t.Errorf("Created %v, SyncToken %q: not goog's", g.Created, g.SyncToken)
	}
	if want := time.Date(2025, 1, 2, 3, 20, 0, 250000000, time.UTC); !g.CloudCreated.Equal(want) || g.CloudSyncToken != "1735787999" {
		t.Errorf("CloudCreated %v, CloudSyncToken %q", g.CloudCreated, g.CloudSyncToken)
	}
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"1.1.1.0", true},
		{"1.1.1.6", true},
		{"1.1.1.7", false}, // cloud 1.1.1.7/32
		{"1.1.1.8", true},
		{"1.1.1.127", true},
		{"1.1.1.128", false}, // cloud 1.1.1.128/25
		{"1.1.1.255", false},
		{"::ffff:1.1.1.7", false},
		{"::ffff:1.1.1.6", true},
		{"8.8.8.8", true},
		{"9.9.9.9", false}, // in cloud.json only
		{"2606:4700::1", true},
		{"2606:4700:4700::1111", false}, // cloud 2606:4700:4700::/48
		{"2606:4700:4701::", true},
		{"2606:4701::", false},
	} {
		if got := g.Contains(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("Contains(%s) = %v, want %v", c.addr, got, c.want)
		}
	}
	// The prefixes of the difference: the fewest, in address order.
	want := []netip.Prefix{
		pfx("1.1.1.0/30"), pfx("1.1.1.4/31"), pfx("1.1.1.6/32"),
		pfx("1.1.1.8/29"), pfx("1.1.1.16/28"), pfx("1.1.1.32/27"), pfx("1.1.1.64/26"),
		pfx("8.8.8.0/24"),
		pfx("2606:4700::/34"), pfx("2606:4700:4000::/38"), pfx("2606:4700:4400::/39"),
		pfx("2606:4700:4600::/40"), pfx("2606:4700:4701::/48"), pfx("2606:4700:4702::/47"),
		pfx("2606:4700:4704::/46"), pfx("2606:4700:4708::/45"), pfx("2606:4700:4710::/44"),
		pfx("2606:4700:4720::/43"), pfx("2606:4700:4740::/42"), pfx("2606:4700:4780::/41"),
		pfx("2606:4700:4800::/37"), pfx("2606:4700:5000::/36"), pfx("2606:4700:6000::/35"),
		pfx("2606:4700:8000::/33"),
	}
	if got := g.Prefixes(); !slices.Equal(got, want) {
		t.Errorf("Prefixes() = %v\nwant %v", got, want)
	}
	// The whole of goog.json, parsed alone, keeps its prefixes in file
	// order.
	if !slices.Equal(goog.Prefixes(), []netip.Prefix{pfx("1.1.1.0/24"), pfx("2606:4700::/32"), pfx("8.8.8.0/24")}) {
		t.Errorf("goog's prefixes: %v", goog.Prefixes())
	}

	// A policy with the pair refuses the difference, with the exceptions.
	p := sockets.DefaultPolicy().WithGoogleRanges(g)
	for _, c := range []struct {
		network, addr string
		want          sockets.Rule
		via           carried
	}{
		{"tcp", "1.1.1.6:443", sockets.RuleGoogle, direct},
		{"tcp", "1.1.1.7:443", allowed, direct},
		{"tcp", "1.1.1.200:443", allowed, direct},
		{"udp", "8.8.8.8:53", allowed, direct},
		{"tcp", "8.8.8.8:443", sockets.RuleGoogle, direct},
		{"tcp", "142.250.64.100:443", allowed, direct}, // not in this pair
		{"tcp", "[2002:101:106::]:443", sockets.RuleGoogle, in6to4("1.1.1.6")},
		{"tcp", "[2002:101:107::]:443", allowed, direct},
	} {
		ap := netip.MustParseAddrPort(c.addr)
		assertRule(t, p.Check(c.network, "", ap), c.network, "", ap, c.want, c.via)
	}

	// A cloud.json that takes everything away leaves an empty, non-nil
	// set: given to WithGoogleRanges, it keeps the rule on.
	n, err := sockets.ParseGoogleRanges([]byte(customCloud), []byte(customCloud))
	if err != nil {
		t.Fatal(err)
	}
	if n == nil || n.Prefixes() != nil || n.Contains(netip.MustParseAddr("9.9.9.9")) {
		t.Errorf("all taken: %v, want an empty, non-nil set", n)
	} else if len(sockets.DefaultPolicy().WithGoogleRanges(n).Exceptions()) == 0 {
		t.Error("all taken: the Google rule is off")
	}
}

// TestParseGoogleServices: a pair of documents through ParseGoogleRanges.
func TestParseGoogleServices(t *testing.T) {
	t.Parallel()
	g, err := sockets.ParseGoogleRanges([]byte(customGoogle), []byte(customCloud))
	if err != nil {
		t.Fatal(err)
	}
	if g.SyncToken != "1735787045" || g.CloudSyncToken != "1735787999" || !g.Contains(netip.MustParseAddr("1.1.1.6")) || g.Contains(netip.MustParseAddr("1.1.1.7")) {
		t.Errorf("ParseGoogleRanges: tokens %q %q, prefixes %v", g.SyncToken, g.CloudSyncToken, g.Prefixes())
	}
	// The embedded files through the public parser give the embedded sets:
	// the services' (DefaultPolicy's) and the whole of goog.json.
	goog, cloud := mustReadFile(t, "goog.json"), mustReadFile(t, "cloud.json")
	g, err = sockets.ParseGoogleRanges(goog, cloud)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.Prefixes(), embeddedServices().Prefixes()) || g.CloudSyncToken != embeddedServices().CloudSyncToken {
		t.Error("ParseGoogleRanges of the embedded files differs from DefaultPolicy().GoogleRanges()")
	}
	g, err = sockets.ParseGoogleRanges(goog, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.Prefixes(), sockets.EmbeddedGoogleRanges().Prefixes()) || !g.Created.Equal(sockets.EmbeddedGoogleRanges().Created) {
		t.Error("ParseGoogleRanges of the embedded goog.json differs from EmbeddedGoogleRanges")
	}

	for _, c := range []struct {
		name, goog, cloud, prefix string
	}{
		{"bad goog", `{"prefixes":[]}`, customCloud, "sockets: google ranges: "},
		{"bad cloud", customGoogle, `{"prefixes":[{"ipv4Prefix":"x","service":"Google Cloud"}]}`, "sockets: cloud ranges: "},
		{"empty cloud", customGoogle, ``, "sockets: cloud ranges: "},
		{"cloud without prefixes", customGoogle, `{"syncToken":"1"}`, "sockets: cloud ranges: "},
		{"both bad", `[]`, `[]`, "sockets: google ranges: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, err := sockets.ParseGoogleRanges([]byte(c.goog), []byte(c.cloud))
			if err == nil || g != nil {
				t.Fatalf("ParseGoogleRanges = %v, %v; want an error", g, err)
			}
			if !strings.HasPrefix(err.Error(), c.prefix) {
				t.Errorf("error %q, want the prefix %q", err, c.prefix)
			}
		})
	}
}

func mustReadFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLoadGoogleServices replaces the embedded pair at run time with a
// newer one read from files, as a long-running program does.
func TestLoadGoogleServices(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	googPath, cloudPath := filepath.Join(dir, "goog.json"), filepath.Join(dir, "cloud.json")
	for path, doc := range map[string]string{googPath: customGoogle, cloudPath: customCloud} {
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	g, err := sockets.ParseGoogleRanges(mustReadFile(t, googPath), mustReadFile(t, cloudPath))
	if err != nil {
		t.Fatal(err)
	}
	p := sockets.DefaultPolicy().WithGoogleRanges(g)
	for _, c := range []struct {
		addr string
		want sockets.Rule
	}{
		{"1.1.1.6:443", sockets.RuleGoogle},
		{"1.1.1.200:443", allowed},
		{"142.250.64.100:443", allowed}, // the embedded pair's service, not this pair's
	} {
		ap := netip.MustParseAddrPort(c.addr)
		assertRule(t, p.Check("tcp", "x", ap), "tcp", "x", ap, c.want, direct)
	}
}
