package sockets_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketstest"
)

func ExamplePolicy_Check() {
	p := sockets.DefaultPolicy()

	err := p.Check("tcp", "one.one.one.one", netip.MustParseAddrPort("1.1.1.1:443"))
	fmt.Println(err)

	err = p.Check("tcp", "intranet.example", netip.MustParseAddrPort("10.0.0.1:80"))
	fmt.Println(err)
	var denied *sockets.DeniedError
	if errors.As(err, &denied) {
		fmt.Printf("private: %v, code %q, address %v, denied: %v\n", denied.Rule == sockets.RulePrivate, denied.Rule.Code(), denied.Addr, errors.Is(err, sockets.ErrDenied))
	}

	// Google's services are refused, except for Google Public DNS on port
	// 53 and Gmail's mail ports by exact name.
	fmt.Println(p.Check("udp", "dns.google", netip.MustParseAddrPort("8.8.8.8:53")))
	fmt.Println(p.Check("tcp", "dns.google", netip.MustParseAddrPort("8.8.8.8:443")))
	fmt.Println(p.Check("tcp", "smtp.gmail.com", netip.MustParseAddrPort("142.251.9.108:587")))
	fmt.Println(p.Check("tcp", "mail.example", netip.MustParseAddrPort("142.251.9.108:587")))
	// A Google Cloud customer's server is not one of them.
	fmt.Println(p.Check("tcp", "shop.example", netip.MustParseAddrPort("34.64.32.1:443")))
	// Output:
	// <nil>
	// sockets: tcp to 10.0.0.1:80 (host "intranet.example") refused: private (RFC 1918)
	// private: true, code "private", address 10.0.0.1:80, denied: true
	// <nil>
	// sockets: tcp to 8.8.8.8:443 (host "dns.google") refused: google range
	// <nil>
	// sockets: tcp to 142.251.9.108:587 (host "mail.example") refused: google range
	// <nil>
}

func ExamplePolicy_Allow() {
	// A test server on 127.0.0.1, and nothing else of loopback.
	p := sockets.DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32"))

	fmt.Println(p.Check("tcp", "127.0.0.1", netip.MustParseAddrPort("127.0.0.1:8080")))
	fmt.Println(p.Check("tcp", "127.0.0.2", netip.MustParseAddrPort("127.0.0.2:8080")))
	// The port rules still apply.
	fmt.Println(p.Check("tcp", "127.0.0.1", netip.MustParseAddrPort("127.0.0.1:25")))
	// The original policy is unchanged.
	fmt.Println(sockets.DefaultPolicy().Check("tcp", "127.0.0.1", netip.MustParseAddrPort("127.0.0.1:8080")))
	// Output:
	// <nil>
	// sockets: tcp to 127.0.0.2:8080 refused: loopback (RFC 1122, RFC 4291)
	// sockets: tcp to 127.0.0.1:25 refused: smtp port 25
	// sockets: tcp to 127.0.0.1:8080 refused: loopback (RFC 1122, RFC 4291)
}

// A refusal names its rule as a constant to switch on, a stable code for
// logs and metrics (also OpenTelemetry's error.type), readable text, and,
// for an IPv4 address carried in an IPv6 one, how it was carried.
func ExampleDeniedError() {
	p := sockets.DefaultPolicy()
	// A name that resolved to the 6to4 form of 10.0.0.1.
	err := p.Check("tcp", "sneaky.example", netip.MustParseAddrPort("[2002:a00:1::1]:443"))
	var denied *sockets.DeniedError
	if errors.As(err, &denied) {
		switch denied.Rule {
		case sockets.RulePrivate, sockets.RuleLoopback, sockets.RuleLinkLocal:
			fmt.Println("an internal address")
		}
		fmt.Println(denied.Rule.Code(), denied.ErrorType(), denied.Form.Code(), denied.Embedded)
		fmt.Println(denied)            // for logs
		fmt.Println(denied.Redacted()) // for the client who asked for sneaky.example
	}
	// Output:
	// an internal address
	// private private 6to4 10.0.0.1
	// sockets: tcp to [2002:a00:1::1]:443 (host "sneaky.example") refused: private (RFC 1918), 10.0.0.1 carried in 6to4 (RFC 3056)
	// sockets: tcp to "sneaky.example" refused: private (RFC 1918)
}

func ExamplePolicy_Deny() {
	// A development network, except one host in it: the deny list wins
	// over the allow list.
	p := sockets.DefaultPolicy().
		Allow(netip.MustParsePrefix("10.0.0.0/24")).
		Deny(netip.MustParsePrefix("10.0.0.99/32"))
	fmt.Println(p.Check("tcp", "", netip.MustParseAddrPort("10.0.0.1:443")))
	fmt.Println(p.Check("tcp", "", netip.MustParseAddrPort("10.0.0.99:443")))
	// Output:
	// <nil>
	// sockets: tcp to 10.0.0.99:443 refused: denied by the policy's deny list
}

// exampleResolver answers from a map, without the network.
type exampleResolver map[string][]netip.Addr

func (r exampleResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if addrs, ok := r[host]; ok {
		return addrs, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func ExampleDialer() {
	d := &sockets.Dialer{
		// A resolver whose answers mix private and public addresses.
		Resolver: exampleResolver{
			"www.example":      {netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("93.184.215.14")},
			"intranet.example": {netip.MustParseAddr("192.168.1.10")},
		},
		// The final connect step, replaced: it sees the exact address that
		// passed the policy, and returns an in-memory connection.
		Connect: func(_ context.Context, network string, addr netip.AddrPort) (net.Conn, error) {
			fmt.Println("connect", network, addr)
			client, server := net.Pipe()
			server.Close()
			return client, nil
		},
	}

	conn, err := d.DialContext(context.Background(), "tcp", "www.example:443")
	if err == nil {
		conn.Close()
	}
	fmt.Println(err)

	_, err = d.DialContext(context.Background(), "tcp", "intranet.example:443")
	fmt.Println(err)
	fmt.Println(errors.Is(err, sockets.ErrDenied))
	// Output:
	// connect tcp 93.184.215.14:443
	// <nil>
	// sockets: tcp to 192.168.1.10:443 (host "intranet.example") refused: private (RFC 1918)
	// true
}

func ExampleParseGoogleRanges() {
	// A goog.json alone (no cloud.json): the whole of it.
	g, err := sockets.ParseGoogleRanges([]byte(`{
	  "syncToken": "1735787045",
	  "creationTime": "2025-01-02T03:04:05.5",
	  "prefixes": [{"ipv4Prefix": "192.0.0.0/8"}, {"ipv6Prefix": "2001:4860::/32"}]
	}`), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(g.Created.Format("2006-01-02"), g.Prefixes())

	p := sockets.DefaultPolicy().WithGoogleRanges(g)
	fmt.Println(p.Check("tcp", "", netip.MustParseAddrPort("192.0.3.1:443")))
	fmt.Println(p.Check("tcp", "", netip.MustParseAddrPort("142.250.0.1:443")))

	_, err = sockets.ParseGoogleRanges([]byte(`{"prefixes": [{"ipv6Prefix": "10.0.0.0/8"}]}`), nil)
	fmt.Println(err)
	// Output:
	// 2025-01-02 [192.0.0.0/8 2001:4860::/32]
	// sockets: tcp to 192.0.3.1:443 refused: google range
	// <nil>
	// sockets: google ranges: prefix 0: invalid "10.0.0.0/8"
}

func ExampleEmbeddedGoogleRanges() {
	// The whole of goog.json: Google Cloud customers' 34.64.32.1 too.
	g := sockets.EmbeddedGoogleRanges()
	fmt.Println(g.Created.Format("2006-01-02"))
	fmt.Println(g.Contains(netip.MustParseAddr("142.250.0.1")), g.Contains(netip.MustParseAddr("34.64.32.1")), g.Contains(netip.MustParseAddr("1.1.1.1")))
	// Output:
	// 2024-04-25
	// true true false
}

func ExamplePolicy_GoogleRanges() {
	// The embedded goog.json minus the embedded cloud.json: what
	// DefaultPolicy refuses.
	g := sockets.DefaultPolicy().GoogleRanges()
	fmt.Println(g.Created.Format("2006-01-02"), g.CloudCreated.Format("2006-01-02"))
	fmt.Println(g.Contains(netip.MustParseAddr("142.250.0.1")), g.Contains(netip.MustParseAddr("34.64.32.1")), g.Contains(netip.MustParseAddr("1.1.1.1")))
	// Output:
	// 2024-04-25 2024-04-25
	// true false false
}

func ExamplePolicy_WithGoogleRanges() {
	customer := netip.MustParseAddrPort("34.64.32.1:443") // a Google Cloud customer
	service := netip.MustParseAddrPort("142.250.64.100:443")

	// The default: Google's services refused, Google Cloud customers not.
	p := sockets.DefaultPolicy()
	fmt.Println(p.Check("tcp", "", customer))
	fmt.Println(p.Check("tcp", "", service))

	// The broadest reading: the whole of goog.json refused, with the same
	// exceptions.
	broad := sockets.DefaultPolicy().WithGoogleRanges(sockets.EmbeddedGoogleRanges())
	fmt.Println(broad.Check("tcp", "", customer))
	fmt.Println(broad.Check("udp", "", netip.MustParseAddrPort("8.8.8.8:53")))
	// Output:
	// <nil>
	// sockets: tcp to 142.250.64.100:443 refused: google range
	// sockets: tcp to 34.64.32.1:443 refused: google range
	// <nil>
}

// Google publishes its ranges at https://www.gstatic.com/ipranges/goog.json
// and https://www.gstatic.com/ipranges/cloud.json. A long-running program
// fetches both now and then, saves them, and installs the newer pair; here
// two small files stand in for them.
func ExampleParseGoogleRanges_services() {
	dir, err := os.MkdirTemp("", "ipranges")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	googPath, cloudPath := filepath.Join(dir, "goog.json"), filepath.Join(dir, "cloud.json")
	for path, doc := range map[string]string{
		googPath: `{"syncToken": "1767225600000", "creationTime": "2026-01-01T00:00:00.0",
		  "prefixes": [{"ipv4Prefix": "8.8.8.0/24"}, {"ipv4Prefix": "1.1.0.0/16"}]}`,
		cloudPath: `{"syncToken": "1767225600000", "creationTime": "2026-01-01T00:00:00.0",
		  "prefixes": [{"ipv4Prefix": "1.1.128.0/17", "service": "Google Cloud", "scope": "us-central1"}]}`,
	} {
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			fmt.Println(err)
			return
		}
	}

	goog, err := os.ReadFile(googPath)
	if err != nil {
		fmt.Println(err)
		return
	}
	cloud, err := os.ReadFile(cloudPath)
	if err != nil {
		fmt.Println(err)
		return
	}
	// goog.json minus cloud.json: the ranges of Google's services.
	g, err := sockets.ParseGoogleRanges(goog, cloud)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(g.Created.Format("2006-01-02"), g.CloudCreated.Format("2006-01-02"), g.Prefixes())

	p := sockets.DefaultPolicy().WithGoogleRanges(g)
	fmt.Println(p.Check("tcp", "", netip.MustParseAddrPort("1.1.1.1:443")))   // a Google service in this pair
	fmt.Println(p.Check("tcp", "", netip.MustParseAddrPort("1.1.200.1:443"))) // a Google Cloud customer
	fmt.Println(p.Check("udp", "", netip.MustParseAddrPort("8.8.8.8:53")))    // the exceptions stay

	_, err = sockets.ParseGoogleRanges(goog, []byte(`{"prefixes": []}`))
	fmt.Println(err)
	// Output:
	// 2026-01-01 2026-01-01 [1.1.0.0/17 8.8.8.0/24]
	// sockets: tcp to 1.1.1.1:443 refused: google range
	// <nil>
	// <nil>
	// sockets: cloud ranges: no prefixes
}

// An IPv6-only network reaches IPv4 through NAT64: the opt-in allows
// 64:ff9b::/96 addresses whose carried IPv4 address the policy allows, and
// no other.
func ExamplePolicy_WithNAT64() {
	p := sockets.DefaultPolicy().WithNAT64() // the well-known 64:ff9b::/96

	// 93.184.216.34, public.
	fmt.Println(p.Check("tcp", "www.example.com", netip.MustParseAddrPort("[64:ff9b::5db8:d822]:443")))
	// 169.254.169.254, the metadata server.
	fmt.Println(p.Check("tcp", "metadata.example", netip.MustParseAddrPort("[64:ff9b::a9fe:a9fe]:80")))
	// A local-use prefix (RFC 8215) is named explicitly.
	local := sockets.DefaultPolicy().WithNAT64(netip.MustParsePrefix("64:ff9b:1:2::/96"))
	fmt.Println(local.Check("tcp", "www.example.com", netip.MustParseAddrPort("[64:ff9b:1:2::5db8:d822]:443")))
	// An Allow of the prefix opens no refused IPv4 address either.
	allow := sockets.DefaultPolicy().Allow(netip.MustParsePrefix("64:ff9b::/96"))
	fmt.Println(allow.Check("tcp", "db.example", netip.MustParseAddrPort("[64:ff9b::a00:1]:5432")))
	// Output:
	// <nil>
	// sockets: tcp to [64:ff9b::a9fe:a9fe]:80 (host "metadata.example") refused: link-local (RFC 3927, RFC 4291), 169.254.169.254 carried in NAT64 (RFC 6052)
	// <nil>
	// sockets: tcp to [64:ff9b::a00:1]:5432 (host "db.example") refused: private (RFC 1918), 10.0.0.1 carried in NAT64 (RFC 6052)
}

// Host and port lists refuse a name before it is looked up; a listed name
// still gets every address check.
func ExamplePolicy_AllowHosts() {
	p := sockets.DefaultPolicy().
		AllowHosts("api.example.com", "*.cdn.example").
		DenyHosts("private.cdn.example").
		AllowPorts(443)
	d := &sockets.Dialer{
		Policy: p,
		Resolver: exampleResolver{
			"api.example.com": {netip.MustParseAddr("10.0.0.1")},
			"img.cdn.example": {netip.MustParseAddr("93.184.215.14")},
		},
		Connect: func(_ context.Context, network string, addr netip.AddrPort) (net.Conn, error) {
			fmt.Println("connect", network, addr)
			client, server := net.Pipe()
			server.Close()
			return client, nil
		},
	}
	for _, addr := range []string{
		"img.cdn.example:443",     // on the list
		"other.example:443",       // not on the list: no lookup
		"private.cdn.example:443", // on the deny list: no lookup
		"img.cdn.example:80",      // port not on the list: no lookup
		"api.example.com:443",     // on the list, but resolves to a private address
	} {
		conn, err := d.DialContext(context.Background(), "tcp", addr)
		if err == nil {
			conn.Close()
			continue
		}
		var denied *sockets.DeniedError
		if errors.As(err, &denied) {
			fmt.Println(addr, denied.ErrorType())
		} else {
			fmt.Println(addr, err)
		}
	}
	// Names match ASCII case-insensitively, with or without a final dot.
	fmt.Println(p.Check("tcp", "IMG.CDN.example.", netip.MustParseAddrPort("93.184.215.14:443")))
	// Output:
	// connect tcp 93.184.215.14:443
	// other.example:443 host_not_allowed
	// private.cdn.example:443 host_denied
	// img.cdn.example:80 port_not_allowed
	// api.example.com:443 private
	// <nil>
}

// At start-up on an IPv6-only network, find the NAT64 prefix its DNS64
// resolver synthesizes addresses under, and have the policy read the IPv4
// address each address under it reaches. Here a test resolver plays the
// network's: it answers ipv4only.arpa under 2600:1::/96.
func ExampleDiscoverNAT64() {
	r := socketstest.NewResolver(map[string][]string{
		"ipv4only.arpa": {"2600:1::c000:aa", "2600:1::c000:ab"},
	})
	prefixes, err := sockets.DiscoverNAT64(context.Background(), r) // nil: the system's resolver
	if err != nil {
		fmt.Println(err) // the policy still reads the well-known prefix
	}
	fmt.Println(prefixes)

	p := sockets.DefaultPolicy().WithDiscoveredNAT64(prefixes...)
	if err := p.Err(); err != nil {
		fmt.Println(err)
	}
	// 10.0.0.1 through the gateway, and 93.184.216.34.
	fmt.Println(p.Check("tcp", "", netip.MustParseAddrPort("[2600:1::a00:1]:80")))
	fmt.Println(p.Check("tcp", "", netip.MustParseAddrPort("[2600:1::5db8:d822]:443")))
	// Output:
	// [2600:1::/96]
	// sockets: tcp to [2600:1::a00:1]:80 refused: private (RFC 1918), 10.0.0.1 carried in NAT64 (RFC 6052)
	// <nil>
}

// A policy keeps the first entry it cannot use, and refuses everything
// while it holds it: a host list never matches less than it was given in
// silence. transport.New returns the same error.
func ExamplePolicy_Err() {
	p := sockets.DefaultPolicy().DenyHosts("internal.example:8080") // host:port is no host name
	fmt.Println(p.Err())
	err := p.Check("tcp", "www.example.com", netip.MustParseAddrPort("93.184.216.34:443"))
	var de *sockets.DeniedError
	fmt.Println(errors.As(err, &de) && de.Rule == sockets.RuleInvalidPolicy)
	// Output:
	// sockets: DenyHosts: "internal.example:8080": a host and port: list the host alone, and ports with AllowPorts
	// true
}

// DenySelf refuses the machine's own interface addresses, for a service
// that fetches URLs for others: an admin listener bound to 0.0.0.0 is not
// reachable through it. Other public addresses are allowed as before.
func ExamplePolicy_DenySelf() {
	p := sockets.DefaultPolicy().DenySelf()
	fmt.Println(p.Check("tcp", "www.example.com", netip.MustParseAddrPort("93.184.216.34:443")))
	// Output: <nil>
}
