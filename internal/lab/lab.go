// Package lab is the module's own test laboratory: the test doubles of
// package socketstest with the extras the module's tests need (lookups
// that hang, cycle or fail, a record of every call), real servers and
// certificates,
// black-hole addresses, and network namespaces in which a test can use
// public addresses without a packet leaving the machine. It is internal:
// its names are no promise to anyone outside the module. Users test their
// own code with package socketstest.
package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// Resolver answers lookups from a table the test sets, and records them:
// each name answers with fixed addresses ([NewResolver], [Resolver.Set])
// or through a function of its own ([Resolver.SetFunc]: a lookup that
// hangs, answers that change from one lookup to the next). Names compare
// as DNS names do, case and one final dot ignored. A name not in the table
// gets a *net.DNSError with IsNotFound set, and a lookup whose context has
// ended gets the context's error. It is safe for concurrent use. Its zero
// value knows no names.
type Resolver struct {
	// Raw makes a name answer with exactly its table's addresses, whatever
	// network is asked, and with no error when there are none: as a
	// resolver that ignores the family or answers nothing, for tests of
	// the caller's own checks. Zero means network "ip4" and "ip6" keep
	// only addresses of that family, and a name left with none is not
	// found. Set it before the first lookup.
	Raw bool

	mu    sync.Mutex
	names map[string]LookupFunc
	calls []Lookup
}

// Lookup is one lookup a [Resolver] answered.
type Lookup struct {
	// Network is the network asked: "ip", "ip4" or "ip6".
	Network string
	// Host is the name asked, as given.
	Host string
}

// A LookupFunc answers one lookup of one name for network ("ip", "ip4" or
// "ip6"), as [Resolver.LookupNetIP] does.
type LookupFunc func(ctx context.Context, network string) ([]netip.Addr, error)

// NewResolver returns a Resolver answering each name with the given
// addresses, in order. It panics on an address that does not parse (a
// mistake in the test).
func NewResolver(hosts map[string][]string) *Resolver {
	r := &Resolver{}
	for name, addrs := range hosts {
		r.Set(name, addrs...)
	}
	return r
}

// Set makes name answer with addrs, in order, replacing what it answered
// before. It panics on an address that does not parse (a mistake in the
// test).
func (r *Resolver) Set(name string, addrs ...string) {
	parsed := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		parsed[i] = netip.MustParseAddr(a)
	}
	r.SetFunc(name, func(context.Context, string) ([]netip.Addr, error) { return parsed, nil })
}

// SetFunc makes f answer every lookup of name, replacing what it answered
// before. The addresses f returns are filtered by family as the table's
// are, unless Raw is set.
func (r *Resolver) SetFunc(name string, f LookupFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names == nil {
		r.names = make(map[string]LookupFunc)
	}
	r.names[dnsKey(name)] = f
}

// dnsKey is the table's key for name: lower case, without a final dot.
func dnsKey(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// LookupNetIP implements [sockets.Resolver]. It records the lookup, then
// answers it from the table; see [Resolver.Raw] for network "ip4" and
// "ip6".
func (r *Resolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	r.calls = append(r.calls, Lookup{Network: network, Host: host})
	f, ok := r.names[dnsKey(host)]
	r.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	notFound := &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	if !ok {
		return nil, notFound
	}
	addrs, err := f(ctx, network)
	if err != nil {
		return nil, err
	}
	if r.Raw {
		return slices.Clone(addrs), nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		switch {
		case network == "ip4" && !a.Unmap().Is4(), network == "ip6" && !a.Is6():
			continue
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, notFound
	}
	return out, nil
}

// Lookups returns the names looked up so far, in order.
func (r *Resolver) Lookups() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, len(r.calls))
	for i, c := range r.calls {
		names[i] = c.Host
	}
	return names
}

// Calls returns the lookups answered so far, with their network, in
// order.
func (r *Resolver) Calls() []Lookup {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// Fixed returns a [LookupFunc] that answers addrs, for [Resolver.SetFunc].
func Fixed(addrs ...netip.Addr) LookupFunc {
	return func(context.Context, string) ([]netip.Addr, error) { return slices.Clone(addrs), nil }
}

// Hang is a [LookupFunc] that never answers: it waits for its context to
// end and returns the context's error, as a lookup whose server does not
// reply.
func Hang(ctx context.Context, _ string) ([]netip.Addr, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// Cycle returns a [LookupFunc] that answers with each of answers in turn,
// lookup after lookup, and starts over after the last: with a public and a
// private address, the answers of a DNS-rebinding attacker's server. It
// panics when answers is empty (a mistake in the test).
func Cycle(answers ...[]netip.Addr) LookupFunc {
	if len(answers) == 0 {
		panic("socketstest: Cycle needs at least one answer")
	}
	var mu sync.Mutex
	next := 0
	return func(context.Context, string) ([]netip.Addr, error) {
		mu.Lock()
		defer mu.Unlock()
		a := answers[next]
		next = (next + 1) % len(answers)
		return slices.Clone(a), nil
	}
}

// Connector is a [sockets.Dialer] Connect function that records every
// address the dialer connects to and connects to a loopback server instead.
// It refuses to connect anywhere but 127.0.0.0/8 and ::1, so a test that
// uses it cannot send a packet off the machine. It is safe for concurrent
// use.
type Connector struct {
	// Target is the loopback "host:port" every connection goes to, unless
	// Routes names another for the address dialed.
	Target string
	// Routes maps a checked destination to its own loopback target.
	Routes map[netip.AddrPort]string

	mu       sync.Mutex
	attempts []netip.AddrPort
	made     []made
}

// made is a connection Connect made, and where to.
type made struct {
	dest netip.AddrPort
	conn net.Conn
}

// Connect records addr and connects to its loopback stand-in.
func (c *Connector) Connect(ctx context.Context, network string, addr netip.AddrPort) (net.Conn, error) {
	c.mu.Lock()
	c.attempts = append(c.attempts, addr)
	c.mu.Unlock()
	target := c.Target
	if t, ok := c.Routes[addr]; ok {
		target = t
	}
	conn, err := DialLoopback(ctx, network, target)
	if err == nil {
		c.mu.Lock()
		c.made = append(c.made, made{addr, conn})
		c.mu.Unlock()
	}
	return conn, err
}

// Attempts returns the destinations connected to so far, in order.
func (c *Connector) Attempts() []netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.attempts)
}

// Open returns the destinations of the connections Connect made that are
// still open, in order: a connection is open until its Close method has
// been called, by whoever holds it. A test calls it once the code under
// test should have closed every connection it made (a leak is a connection
// never closed, whose descriptor stays open). The Connector keeps each
// connection it made, so that a connection the code drops unclosed stays
// open for Open to see.
func (c *Connector) Open() []netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	var open []netip.AddrPort
	for _, m := range c.made {
		if isOpen(m.conn) {
			open = append(open, m.dest)
		}
	}
	return open
}

// isOpen reports whether Close has not been called on conn, a connection
// of package net: the descriptor of a closed one can no longer be reached.
func isOpen(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	return err == nil && rc.Control(func(uintptr) {}) == nil
}

// DialLoopback connects to target, a loopback "ip:port", over network's
// protocol (UDP for udp, udp4 and udp6; TCP for any other: the stand-in's
// family may differ from the destination's). It refuses a target that is
// not a loopback address, so that no test can send a packet off the
// machine by mistake.
func DialLoopback(ctx context.Context, network, target string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(target)
	if err != nil || !ap.Addr().Unmap().IsLoopback() {
		return nil, fmt.Errorf("socketstest: target %q is not a loopback address and port", target)
	}
	proto := "tcp"
	if len(network) >= 3 && network[:3] == "udp" {
		proto = "udp"
	}
	var d net.Dialer
	return d.DialContext(ctx, proto, ap.String())
}
