// Package dnslab is an in-process DNS server for the examples module's
// tests: real DNS packets over UDP and TCP on loopback, answered from a
// zone the test sets, for Go's own resolver (net.Resolver with PreferGo)
// to query. It lives here, not in the library's internal lab, so that the
// library's go.mod does not carry golang.org/x/net for it.
package dnslab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Record is one record of a [DNSServer] zone: an address (an A record for
// an IPv4 Addr, an AAAA record for an IPv6 one) or, when CNAME is set, an
// alias.
type Record struct {
	// Addr is the address of an A or AAAA record. It is ignored when
	// CNAME is set.
	Addr netip.Addr

	// CNAME, if not empty, makes the record an alias for this name. A
	// name with a CNAME record has no other record (RFC 1034, section
	// 3.6.2).
	CNAME string

	// TTL is the time to live sent with the record, in seconds. Zero
	// means 0 s: the answer must not be cached.
	TTL uint32
}

// AddrRecord returns an A record for an IPv4 address or an AAAA record for
// an IPv6 one, with the given TTL in seconds. It panics on an address that
// does not parse (a mistake in the test), as [NewResolver] does.
func AddrRecord(addr string, ttl uint32) Record {
	return Record{Addr: netip.MustParseAddr(addr), TTL: ttl}
}

// CNAMERecord returns an alias for target, with the given TTL in seconds.
func CNAMERecord(target string, ttl uint32) Record {
	return Record{CNAME: target, TTL: ttl}
}

// DNSQuery is a query a [DNSServer] received.
type DNSQuery struct {
	// Name is the name asked for, in lower case, with its final dot.
	Name string
	// Type is the type asked for: dnsmessage.TypeA, TypeAAAA, ...
	Type dnsmessage.Type
	// Network is "udp" or "tcp".
	Network string
}

// maxCNAMEChain is the longest chain of aliases the server follows; a
// longer one (or a loop) is answered with SERVFAIL, as recursive servers
// do.
const maxCNAMEChain = 8

// DNSServer is an authoritative DNS server on 127.0.0.1, over UDP and TCP
// on the same port, built with golang.org/x/net/dns/dnsmessage. It answers
// from a zone the test sets and changes at run time: addresses and alias
// chains ([DNSServer.Set]), an error code such as NXDOMAIN or SERVFAIL
// ([DNSServer.Fail]), or no answer at all ([DNSServer.Drop]). A name not
// in the zone is answered with NXDOMAIN, a query of another type than A,
// AAAA or CNAME with an empty answer. It records every query
// ([DNSServer.Queries]).
//
// An alias is followed inside the zone, and the answer carries the whole
// chain, as a recursive server's does (Go's resolver does not follow an
// alias by itself). A reply over UDP larger than the client's EDNS(0)
// buffer (512 bytes without one) is sent truncated, and the client asks
// again over TCP.
//
// [DNSServer.Resolver] returns the *net.Resolver that reaches it: tests
// point a net.Dialer, an http.Transport or a sockets.Dialer at it, and
// never at the machine's resolver or its configuration.
//
// Set, Fail and Drop panic on a name that is not a DNS name (a mistake in
// the test). A DNSServer is safe for concurrent use. Close stops it and
// waits for its goroutines.
type DNSServer struct {
	addr netip.AddrPort
	udp  net.PacketConn
	tcp  net.Listener
	wg   sync.WaitGroup

	mu      sync.Mutex
	zone    map[string]zoneEntry
	queries []DNSQuery
	conns   map[net.Conn]struct{}
	closed  bool
}

// zoneEntry is what the server knows of a name.
type zoneEntry struct {
	records []Record
	rcode   dnsmessage.RCode // not RCodeSuccess: answer with this code
	drop    bool             // never answer
}

// NewDNSServer starts a DNSServer with an empty zone on 127.0.0.1, and
// closes it when tb and its subtests have finished. It fails tb if it
// cannot listen.
func NewDNSServer(tb testing.TB) *DNSServer {
	tb.Helper()
	s := &DNSServer{zone: make(map[string]zoneEntry), conns: make(map[net.Conn]struct{})}
	var err error
	// UDP first, then TCP on the same port; another process may hold the
	// TCP port, so try a few.
	for range 10 {
		s.udp, err = net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			break
		}
		s.tcp, err = net.Listen("tcp4", s.udp.LocalAddr().String())
		if err == nil {
			break
		}
		s.udp.Close()
		s.udp = nil
	}
	if err != nil {
		tb.Fatalf("socketstest: DNS server: %v", err)
	}
	s.addr = s.udp.LocalAddr().(*net.UDPAddr).AddrPort()
	s.wg.Add(2)
	go s.serveUDP()
	go s.serveTCP()
	tb.Cleanup(func() { s.Close() })
	return s
}

// Addr returns the address the server listens on, for UDP and TCP.
func (s *DNSServer) Addr() netip.AddrPort { return s.addr }

// Resolver returns a resolver that sends every query to s, over UDP and,
// for a truncated reply, TCP: Go's own resolver (PreferGo), whichever
// server the system configuration names. It still reads the system's
// resolver options (search domains, attempts, timeout) and hosts file, as
// any Go resolver does.
func (s *DNSServer) Resolver() *net.Resolver { return s.ResolverTimeout(0) }

// ResolverTimeout is [DNSServer.Resolver] with every attempt of a query
// bounded by d, as "options timeout:" in resolv.conf bounds it: a query
// the server drops then fails on its own after the resolver's attempts
// (attempts times servers times d), before a longer context ends, with a
// *net.DNSError whose IsTimeout is set (Go's resolver does not make it
// match context.DeadlineExceeded, as it does for a lookup its context
// ended). Zero means the system's setting (5 s by default).
func (s *DNSServer) ResolverTimeout(d time.Duration) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var nd net.Dialer
			switch network {
			case "udp", "udp4":
				c, err := nd.DialContext(ctx, "udp4", s.addr.String())
				if err != nil || d <= 0 {
					return c, err
				}
				// Still a net.PacketConn: Go's resolver frames its
				// queries by that.
				return &udpAttempt{c.(*net.UDPConn), d}, nil
			case "tcp", "tcp4":
				c, err := nd.DialContext(ctx, "tcp4", s.addr.String())
				if err != nil || d <= 0 {
					return c, err
				}
				return &tcpAttempt{c.(*net.TCPConn), d}, nil
			}
			return nil, fmt.Errorf("socketstest: DNS server: no %s", network)
		},
	}
}

// udpAttempt and tcpAttempt bound the deadline Go's resolver sets on the
// connection of one attempt to limit after the call.
type udpAttempt struct {
	*net.UDPConn
	limit time.Duration
}

func (c *udpAttempt) SetDeadline(t time.Time) error {
	return c.UDPConn.SetDeadline(earlier(t, c.limit))
}

type tcpAttempt struct {
	*net.TCPConn
	limit time.Duration
}

func (c *tcpAttempt) SetDeadline(t time.Time) error {
	return c.TCPConn.SetDeadline(earlier(t, c.limit))
}

// earlier returns t or limit from now, whichever comes first; a zero t
// means no deadline.
func earlier(t time.Time, limit time.Duration) time.Time {
	if m := time.Now().Add(limit); t.IsZero() || m.Before(t) {
		return m
	}
	return t
}

// canonical returns name in lower case with its final dot.
func canonical(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

// mustName panics if name cannot be a DNS name (a mistake in the test), so
// that the server never meets one.
func mustName(name string) {
	if _, err := dnsmessage.NewName(canonical(name)); err != nil || name == "" || strings.HasPrefix(name, ".") || strings.Contains(name, "..") {
		panic(fmt.Sprintf("socketstest: %q is not a DNS name", name))
	}
}

// Set makes name answer with records, replacing what it answered before;
// a query already answered is not affected. No record means the name
// exists with no address (an empty answer, not NXDOMAIN). It panics on a
// name that is not a DNS name, a CNAME record that shares its name with
// another record, or a record with neither an address nor an alias
// (mistakes in the test).
func (s *DNSServer) Set(name string, records ...Record) {
	for _, r := range records {
		switch {
		case r.CNAME != "" && len(records) > 1:
			panic("socketstest: a CNAME record cannot share its name with other records (RFC 1034, section 3.6.2)")
		case r.CNAME == "" && !r.Addr.IsValid():
			panic("socketstest: a Record needs an Addr or a CNAME")
		case r.CNAME != "":
			mustName(r.CNAME)
		}
	}
	s.put(name, zoneEntry{records: slices.Clone(records)})
}

// Fail makes name answer with rcode and no records: for example
// dnsmessage.RCodeNameError (NXDOMAIN) or dnsmessage.RCodeServerFailure
// (SERVFAIL). dnsmessage.RCodeSuccess is the same as Set with no records.
func (s *DNSServer) Fail(name string, rcode dnsmessage.RCode) {
	s.put(name, zoneEntry{rcode: rcode})
}

// Drop makes the server ignore every query for name, as a server that
// never answers: the client waits until it gives up.
func (s *DNSServer) Drop(name string) {
	s.put(name, zoneEntry{drop: true})
}

func (s *DNSServer) put(name string, e zoneEntry) {
	mustName(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.zone[canonical(name)] = e
}

// Queries returns the queries received so far, in order.
func (s *DNSServer) Queries() []DNSQuery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.queries)
}

// Close stops the server: it closes its sockets and its TCP connections and
// waits for its goroutines to end. It may be called more than once.
func (s *DNSServer) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := errors.Join(s.udp.Close(), s.tcp.Close())
	s.wg.Wait()
	return err
}

// serveUDP answers queries over UDP until the socket is closed.
func (s *DNSServer) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := s.udp.ReadFrom(buf)
		if err != nil {
			return // closed
		}
		if reply := s.reply(buf[:n], "udp"); reply != nil {
			s.udp.WriteTo(reply, from)
		}
	}
}

// serveTCP accepts TCP connections until the listener is closed.
func (s *DNSServer) serveTCP() {
	defer s.wg.Done()
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			return // closed
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// serveConn answers the length-prefixed queries of one TCP connection
// (RFC 1035, section 4.2.2) until the client closes it or the server is
// closed.
func (s *DNSServer) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	var size [2]byte
	for {
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		reply := s.reply(msg, "tcp")
		if reply == nil {
			continue // dropped: the client waits
		}
		out := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reply)), uint16(len(reply)))
		if _, err := c.Write(append(out, reply...)); err != nil {
			return
		}
	}
}

// reply returns the packed reply to the query msg received over network,
// or nil for no reply.
func (s *DNSServer) reply(msg []byte, network string) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || h.Response {
		return nil // not a query: ignore it, as servers do
	}
	resp := dnsmessage.Message{Header: dnsmessage.Header{
		ID:                 h.ID,
		Response:           true,
		OpCode:             h.OpCode,
		Authoritative:      true,
		RecursionDesired:   h.RecursionDesired,
		RecursionAvailable: true,
	}}
	qs, err := p.AllQuestions()
	if err != nil || len(qs) != 1 {
		resp.RCode = dnsmessage.RCodeFormatError
		return pack(resp)
	}
	q := qs[0]
	resp.Questions = qs
	if h.OpCode != 0 {
		resp.RCode = dnsmessage.RCodeNotImplemented
		return pack(resp)
	}
	limit := 512 // RFC 1035, section 4.2.1, unless EDNS(0) says more
	if err := p.SkipAllAnswers(); err == nil {
		if err := p.SkipAllAuthorities(); err == nil {
			for {
				rh, err := p.AdditionalHeader()
				if err != nil {
					break
				}
				if rh.Type == dnsmessage.TypeOPT && int(rh.Class) > limit {
					limit = int(rh.Class) // RFC 6891, section 6.1.2
				}
				if p.SkipAdditional() != nil {
					break
				}
			}
		}
	}

	name := canonical(q.Name.String())
	s.mu.Lock()
	s.queries = append(s.queries, DNSQuery{Name: name, Type: q.Type, Network: network})
	answers, rcode, drop := s.answer(name, q.Type)
	s.mu.Unlock()
	if drop {
		return nil
	}
	resp.RCode = rcode
	resp.Answers = answers
	out := pack(resp)
	if network == "udp" && len(out) > limit {
		// RFC 1035, section 4.2.1: truncate, and let the client ask
		// again over TCP.
		resp.Truncated = true
		resp.Answers = nil
		out = pack(resp)
	}
	return out
}

// answer looks name up in the zone for a query of type qtype, following
// aliases. s.mu is held.
func (s *DNSServer) answer(name string, qtype dnsmessage.Type) (rrs []dnsmessage.Resource, rcode dnsmessage.RCode, drop bool) {
	for hops := 0; ; hops++ {
		e, ok := s.zone[name]
		switch {
		case !ok:
			// RFC 6604: NXDOMAIN names the last name of the chain.
			return rrs, dnsmessage.RCodeNameError, false
		case e.drop:
			return nil, 0, true
		case e.rcode != dnsmessage.RCodeSuccess:
			return nil, e.rcode, false
		}
		rrName := dnsmessage.MustNewName(name)
		if len(e.records) == 1 && e.records[0].CNAME != "" && qtype != dnsmessage.TypeCNAME {
			if hops == maxCNAMEChain {
				return nil, dnsmessage.RCodeServerFailure, false
			}
			target := canonical(e.records[0].CNAME)
			rrs = append(rrs, dnsmessage.Resource{
				Header: dnsmessage.ResourceHeader{Name: rrName, Class: dnsmessage.ClassINET, TTL: e.records[0].TTL},
				Body:   &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName(target)},
			})
			name = target
			continue
		}
		for _, r := range e.records {
			hdr := dnsmessage.ResourceHeader{Name: rrName, Class: dnsmessage.ClassINET, TTL: r.TTL}
			switch {
			case r.CNAME != "":
				if qtype == dnsmessage.TypeCNAME {
					rrs = append(rrs, dnsmessage.Resource{Header: hdr, Body: &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName(canonical(r.CNAME))}})
				}
			case qtype == dnsmessage.TypeA && r.Addr.Is4():
				rrs = append(rrs, dnsmessage.Resource{Header: hdr, Body: &dnsmessage.AResource{A: r.Addr.As4()}})
			case qtype == dnsmessage.TypeAAAA && r.Addr.Is6():
				rrs = append(rrs, dnsmessage.Resource{Header: hdr, Body: &dnsmessage.AAAAResource{AAAA: r.Addr.As16()}})
			}
		}
		return rrs, dnsmessage.RCodeSuccess, false
	}
}

// pack packs m, or returns nil if it cannot be packed (a name too long for
// DNS, for instance): the client then gets no reply.
func pack(m dnsmessage.Message) []byte {
	out, err := m.Pack()
	if err != nil {
		return nil
	}
	return out
}
