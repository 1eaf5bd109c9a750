package rigs_test

// Security round three on the real network path, in a network namespace
// of the test's own (lab.InNetNS): the network's NAT64 prefix discovered
// through a real DNS server (RFC 7050), and the machine's own addresses
// refused by the fetch-for-others client. Every address below is on the
// namespace's loopback interface: no packet leaves it.

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/outbound-go/outbound/examples/internal/dnslab"
	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/transport"
)

// countingServer serves HTTP on l and counts the connections it accepts.
func countingServer(t *testing.T, l net.Listener) *atomic.Int32 {
	t.Helper()
	var n atomic.Int32
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				n.Add(1)
			}
		},
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return &n
}

// getVia fetches url through a client whose every connection is d's, and
// returns the body: a body proves the server accepted the connection (and
// counted it) before the call returned.
func getVia(d *sockets.Dialer, url string) (string, error) {
	tr := &http.Transport{DialContext: d.DialContext}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestNAT64Discovery: on an IPv6-only network whose NAT64 gateway uses
// the network-specific prefix 2600:1::/96, [2600:1::a00:1] reaches
// 10.0.0.1 through the gateway. The default policy cannot know that and
// connects; with the prefix discovered through ipv4only.arpa (RFC 7050)
// and applied, the carried 10.0.0.1 is refused before any connection,
// while [2600:1::5db8:d822] (93.184.216.34, public) still connects.
func TestNAT64Discovery(t *testing.T) {
	private6 := netip.MustParseAddr("2600:1::a00:1")    // carries 10.0.0.1
	public6 := netip.MustParseAddr("2600:1::5db8:d822") // carries 93.184.216.34
	if !lab.InNetNS(t, private6, public6) {
		return
	}
	dns := dnslab.NewDNSServer(t)
	// A DNS64 resolver synthesizes ipv4only.arpa's AAAA records from its
	// A records, 192.0.0.170 and 192.0.0.171 (RFC 7050 section 2).
	dns.Set("ipv4only.arpa", dnslab.AddrRecord("2600:1::c000:aa", 60), dnslab.AddrRecord("2600:1::c000:ab", 60))
	dns.Set("internal.example", dnslab.AddrRecord(private6.String(), 60))
	dns.Set("www.example", dnslab.AddrRecord(public6.String(), 60))
	res := dns.Resolver()

	privateConns := countingServer(t, listen(t, "["+private6.String()+"]:80"))
	publicConns := countingServer(t, listen(t, "["+public6.String()+"]:80"))

	ctx := context.Background()
	prefixes, err := sockets.DiscoverNAT64(ctx, res)
	if err != nil {
		t.Fatal(err)
	}
	if len(prefixes) != 1 || prefixes[0] != netip.MustParsePrefix("2600:1::/96") {
		t.Fatalf("discovered %v, want [2600:1::/96]", prefixes)
	}

	// The gap: without the prefix, the default policy connects.
	plain := &sockets.Dialer{Resolver: res}
	if body, err := getVia(plain, "http://internal.example/"); err != nil || body != "ok" {
		t.Fatalf("without discovery: %q, %v (the premise is that the default policy cannot see the carried address)", body, err)
	}
	if privateConns.Load() != 1 {
		t.Fatalf("premise: %d connections to the private stand-in, want 1", privateConns.Load())
	}

	// With the discovered prefix applied at start-up.
	p := sockets.DefaultPolicy().WithDiscoveredNAT64(prefixes...)
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	d := &sockets.Dialer{Policy: p, Resolver: res}
	for _, target := range []string{"internal.example:80", "[2600:1::a00:1]:80"} {
		_, err := d.DialContext(ctx, "tcp", target)
		var de *sockets.DeniedError
		if !errors.As(err, &de) || de.Rule != sockets.RulePrivate || de.Form != sockets.RuleNAT64 || de.Embedded != netip.MustParseAddr("10.0.0.1") {
			t.Errorf("%s: %v, want a refusal of the carried 10.0.0.1 (private, NAT64 form)", target, err)
		}
	}
	if n := privateConns.Load(); n != 1 {
		t.Errorf("the refusals made %d more connections, want none", n-1)
	}
	if body, err := getVia(d, "http://www.example/"); err != nil || body != "ok" {
		t.Fatalf("public address under the prefix: %q, %v", body, err)
	}
	if publicConns.Load() != 1 {
		t.Errorf("%d connections to the public stand-in, want 1", publicConns.Load())
	}
}

// TestOwnAddresses: a service on a machine with a public address can be
// made to fetch from itself, from an admin listener bound to the
// unspecified address. SafeClient refuses the machine's own addresses
// (RuleSelf) before any connection; the App Engine defaults do not.
func TestOwnAddresses(t *testing.T) {
	own := netip.MustParseAddr("93.184.216.34") // this namespace's "public address"
	if !lab.InNetNS(t, own) {
		return
	}
	conns := countingServer(t, listen(t, "0.0.0.0:8080")) // the admin listener
	url := "http://" + own.String() + ":8080/debug"

	client, err := transport.SafeClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Get(url)
	var de *sockets.DeniedError
	if !errors.As(err, &de) || de.Rule != sockets.RuleSelf {
		t.Fatalf("SafeClient: %v, want a refusal for RuleSelf", err)
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("SafeClient's refusal made %d connections", n)
	}

	// Off in the App Engine defaults, on both backends.
	for _, backend := range []transport.Backend{transport.Sockets, transport.URLFetch} {
		rt, err := transport.New(transport.Config{Backend: backend})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Transport: rt}).Get(url)
		if err != nil {
			t.Fatalf("%v: %v, want the default policy to allow it", backend, err)
		}
		resp.Body.Close()
		rt.CloseIdleConnections()
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (one per backend)", n)
	}
}
