package dnslab_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/outbound-go/outbound/examples/internal/dnslab"
)

// Every lookup here asks for one family ("ip4" or "ip6"), so that Go's
// resolver does not sort the answer by probing routes to the addresses
// (RFC 6724); no test here sends anything but to the server on 127.0.0.1.

func lookup(t *testing.T, r *net.Resolver, network, host string) ([]netip.Addr, error) {
	t.Helper()
	// A bound for a lookup that went wrong, not a subject of the tests: a
	// busy machine never reaches it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return r.LookupNetIP(ctx, network, host)
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestDNSServerAnswers(t *testing.T) {
	s := dnslab.NewDNSServer(t)
	s.Set("dual.test", dnslab.AddrRecord("93.184.216.34", 60), dnslab.AddrRecord("151.101.1.1", 60), dnslab.AddrRecord("2606:4700::1111", 0))
	s.Set("Alias.Test", dnslab.CNAMERecord("alias2.test.", 30))
	s.Set("alias2.test", dnslab.CNAMERecord("end.test", 30))
	s.Set("end.test", dnslab.AddrRecord("10.1.0.1", 0))
	s.Set("dangling.test", dnslab.CNAMERecord("nowhere.test", 30))
	s.Set("loop1.test", dnslab.CNAMERecord("loop2.test", 30))
	s.Set("loop2.test", dnslab.CNAMERecord("loop1.test", 30))
	s.Set("empty.test")
	s.Fail("nx.test", dnsmessage.RCodeNameError)
	s.Fail("servfail.test", dnsmessage.RCodeServerFailure)
	r := s.Resolver()

	for _, tc := range []struct {
		network, host string
		want          []netip.Addr
	}{
		{"ip4", "dual.test", addrs("93.184.216.34", "151.101.1.1")}, // in the zone's order
		{"ip6", "dual.test", addrs("2606:4700::1111")},
		{"ip4", "DUAL.test.", addrs("93.184.216.34", "151.101.1.1")}, // names are case-blind (RFC 4343)
		{"ip4", "alias.test", addrs("10.1.0.1")},                     // a chain of two aliases
	} {
		got, err := lookup(t, r, tc.network, tc.host)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s %s: %v, %v; want %v", tc.network, tc.host, got, err, tc.want)
		}
	}

	for _, tc := range []struct {
		host              string
		notFound, timeout bool
	}{
		{"unknown.test", true, false},  // not in the zone: NXDOMAIN
		{"nx.test", true, false},       // Fail(NXDOMAIN)
		{"dangling.test", true, false}, // an alias to a name not in the zone
		{"empty.test", true, false},    // the name exists, with no address
		{"servfail.test", false, false},
		{"loop1.test", false, false}, // an alias loop: SERVFAIL
	} {
		_, err := lookup(t, r, "ip4", tc.host)
		var de *net.DNSError
		if !errors.As(err, &de) || de.IsNotFound != tc.notFound || de.IsTimeout != tc.timeout {
			t.Errorf("%s: %#v; want a *net.DNSError, IsNotFound %v, IsTimeout %v", tc.host, err, tc.notFound, tc.timeout)
		}
	}

	// Queries are recorded as asked, in lower case with the final dot.
	qs := s.Queries()
	want := dnslab.DNSQuery{Name: "dual.test.", Type: dnsmessage.TypeAAAA, Network: "udp"}
	if !slices.Contains(qs, want) {
		t.Errorf("queries %v lack %v", qs, want)
	}
	if slices.ContainsFunc(qs, func(q dnslab.DNSQuery) bool { return q.Name == "DUAL.test." }) {
		t.Errorf("queries %v: names not in lower case", qs)
	}
}

// A name's answer changes at run time, as a rebinding attacker's does:
// TTL 0, a public address first, a private one next.
func TestDNSServerRebinding(t *testing.T) {
	s := dnslab.NewDNSServer(t)
	r := s.Resolver()
	s.Set("rebind.test", dnslab.AddrRecord("93.184.216.34", 0))
	if got, err := lookup(t, r, "ip4", "rebind.test"); err != nil || !slices.Equal(got, addrs("93.184.216.34")) {
		t.Fatalf("first lookup: %v, %v", got, err)
	}
	s.Set("rebind.test", dnslab.AddrRecord("10.1.0.2", 0))
	if got, err := lookup(t, r, "ip4", "rebind.test"); err != nil || !slices.Equal(got, addrs("10.1.0.2")) {
		t.Fatalf("second lookup: %v, %v", got, err)
	}
	// The TTL is on the wire as set.
	m := exchange(t, s.Addr(), "rebind.test.", dnsmessage.TypeA)
	if len(m.Answers) != 1 || m.Answers[0].Header.TTL != 0 || m.Answers[0].Header.Name.String() != "rebind.test." {
		t.Errorf("answer %v; want one record with TTL 0", m.Answers)
	}
}

// TTLs go on the wire per record, the chain in order, with the flags of an
// authoritative server that recurses (Go's resolver takes an answer
// without them for a lame referral).
func TestDNSServerWire(t *testing.T) {
	s := dnslab.NewDNSServer(t)
	s.Set("a.test", dnslab.CNAMERecord("b.test", 300))
	s.Set("b.test", dnslab.AddrRecord("93.184.216.34", 0), dnslab.AddrRecord("151.101.1.1", 7))
	m := exchange(t, s.Addr(), "a.test.", dnsmessage.TypeA)
	if !m.Header.Response || !m.Header.Authoritative || !m.Header.RecursionAvailable || m.Header.RCode != dnsmessage.RCodeSuccess {
		t.Errorf("header %+v", m.Header)
	}
	var got []string
	for _, rr := range m.Answers {
		got = append(got, fmt.Sprintf("%s %d %v", rr.Header.Name, rr.Header.TTL, rr.Body.GoString()))
	}
	want := []string{
		`a.test. 300 dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("b.test.")}`,
		`b.test. 0 dnsmessage.AResource{A: [4]byte{93, 184, 216, 34}}`,
		`b.test. 7 dnsmessage.AResource{A: [4]byte{151, 101, 1, 1}}`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("answers:\n%q\nwant\n%q", got, want)
	}
}

// exchange sends one query over UDP to addr and returns the reply.
func exchange(t *testing.T, addr netip.AddrPort, name string, typ dnsmessage.Type) dnsmessage.Message {
	t.Helper()
	q := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: 4242, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}},
	}
	b, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	var m dnsmessage.Message
	if err := m.Unpack(buf[:n]); err != nil {
		t.Fatal(err)
	}
	if m.Header.ID != 4242 {
		t.Fatalf("reply id %d, want 4242", m.Header.ID)
	}
	return m
}

// An answer too large for UDP is truncated, and Go's resolver gets it in
// full over TCP.
func TestDNSServerTCPFallback(t *testing.T) {
	s := dnslab.NewDNSServer(t)
	var recs []dnslab.Record
	var want []netip.Addr
	for i := range 150 { // 150 A records: about 2,400 bytes, over EDNS(0)'s 1,232
		a := netip.AddrFrom4([4]byte{93, 184, 216, byte(i + 1)})
		recs = append(recs, dnslab.Record{Addr: a, TTL: 60})
		want = append(want, a)
	}
	s.Set("big.test", recs...)
	got, err := lookup(t, s.Resolver(), "ip4", "big.test")
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("got %d addresses, %v; want %d", len(got), err, len(want))
	}
	m := exchange(t, s.Addr(), "big.test.", dnsmessage.TypeA) // no EDNS(0): 512 bytes
	if !m.Header.Truncated || len(m.Answers) != 0 {
		t.Errorf("UDP reply: truncated %v, %d answers; want truncated, none", m.Header.Truncated, len(m.Answers))
	}
	if qs := s.Queries(); !slices.Contains(qs, dnslab.DNSQuery{Name: "big.test.", Type: dnsmessage.TypeA, Network: "tcp"}) {
		t.Errorf("queries %v: no query over TCP", qs)
	}
}

// A dropped query is never answered: the lookup ends at the caller's
// deadline, as a timeout.
func TestDNSServerDrop(t *testing.T) {
	s := dnslab.NewDNSServer(t)
	s.Drop("silent.test")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := s.Resolver().LookupNetIP(ctx, "ip4", "silent.test")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsTimeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %#v; want a timeout *net.DNSError matching context.DeadlineExceeded", err)
	}
	if qs := s.Queries(); !slices.ContainsFunc(qs, func(q dnslab.DNSQuery) bool { return q.Name == "silent.test." }) {
		t.Errorf("queries %v: the dropped query was not recorded", qs)
	}
}

// Close ends every goroutine of the server, also one serving a TCP client
// that is waiting for an answer to a dropped query.
func TestDNSServerClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := dnslab.NewDNSServer(t)
	s.Drop("silent.test")
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := dnsmessage.Message{Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName("silent.test."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}
	b, _ := q.Pack()
	if _, err := c.Write(append([]byte{byte(len(b) >> 8), byte(len(b))}, b...)); err != nil {
		t.Fatal(err)
	}
	for len(s.Queries()) == 0 { // the server has read the query
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read after Close: %v, want EOF", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := lookup(t, s.Resolver(), "ip4", "any.test"); err == nil {
		t.Error("lookup after Close succeeded")
	}
}

func TestDNSServerMistakes(t *testing.T) {
	s := dnslab.NewDNSServer(t)
	for name, f := range map[string]func(){
		"CNAME with an address": func() {
			s.Set("x.test", dnslab.CNAMERecord("y.test", 0), dnslab.AddrRecord("93.184.216.34", 0))
		},
		"empty record":   func() { s.Set("x.test", dnslab.Record{}) },
		"bad name":       func() { s.Set("x..test", dnslab.AddrRecord("93.184.216.34", 0)) },
		"bad CNAME":      func() { s.Set("x.test", dnslab.CNAMERecord(".y.test", 0)) },
		"name too long":  func() { s.Drop(string(make([]byte, 300))) },
		"bad address":    func() { dnslab.AddrRecord("93.184.216", 0) },
		"bad Fail name":  func() { s.Fail("", dnsmessage.RCodeNameError) },
		"bad Drop label": func() { s.Drop("a.." + "test") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// With a short timeout per attempt, Go's resolver gives up on a dropped
// query by itself, long before its context ends, and says it timed out.
func TestDNSServerResolverTimeout(t *testing.T) {
	s := dnslab.NewDNSServer(t)
	s.Drop("silent.test")
	var recs []dnslab.Record
	for i := range 150 { // over UDP's limit: the TCP path too
		recs = append(recs, dnslab.Record{Addr: netip.AddrFrom4([4]byte{93, 184, 216, byte(i + 1)})})
	}
	s.Set("big.test", recs...)
	r := s.ResolverTimeout(100 * time.Millisecond)
	if got, err := lookup(t, r, "ip4", "big.test"); err != nil || len(got) != len(recs) {
		t.Fatalf("big.test: %d addresses, %v; want %d", len(got), err, len(recs))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := r.LookupNetIP(ctx, "ip4", "silent.test")
	elapsed := time.Since(start)
	// Go's resolver reports its own timeout as IsTimeout, but, unlike a
	// lookup its context ended, not as context.DeadlineExceeded.
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsTimeout {
		t.Fatalf("err = %#v; want a timeout *net.DNSError", err)
	}
	// Go's resolver makes at most 5 attempts on at most 3 servers: 1.5 s
	// in all here, and it gives up by itself with its context still
	// running. The context's 30 s, twenty times that, leave a busy machine
	// no way to end the context first.
	if ctx.Err() != nil {
		t.Errorf("gave up after %v (context: %v); want the resolver to give up by itself", elapsed, ctx.Err())
	}
}
