package lab

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
)

// Server is a TCP server on loopback that hands each connection it
// accepts to a handler, in a goroutine of its own: for protocols spoken by
// hand (a greeting, an echo, an SMTP or TLS exchange) and for servers that
// break a protocol on purpose, where net/http's server will not do.
//
// The handler owns its connection while it runs; the server closes the
// connection when the handler returns. Close (or the end of the test)
// cancels the handlers' context and closes the listener and every
// connection still open, which ends a handler blocked on one, and waits
// for the handlers to return. A Server is safe for concurrent use.
type Server struct {
	ln     net.Listener
	addr   netip.AddrPort
	ctx    context.Context
	cancel context.CancelFunc
	handle func(ctx context.Context, c net.Conn)
	wg     sync.WaitGroup

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	accepted []netip.AddrPort
	closed   bool
}

// NewServer starts a Server on 127.0.0.1 with handle serving each
// connection, and closes it when tb and its subtests have finished. The
// context handle is given is canceled when the server closes. It fails tb
// if it cannot listen.
func NewServer(tb testing.TB, handle func(ctx context.Context, c net.Conn)) *Server {
	tb.Helper()
	return NewTLSServer(tb, nil, handle)
}

// NewTLSServer is [NewServer] for TLS: each connection handle is given is
// a *tls.Conn made with cfg, whose handshake runs at its first read or
// write, or when handle calls its Handshake method. A nil cfg means plain
// TCP.
func NewTLSServer(tb testing.TB, cfg *tls.Config, handle func(ctx context.Context, c net.Conn)) *Server {
	tb.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("socketstest: server: %v", err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	return Serve(tb, ln, handle)
}

// Serve starts a Server on ln, a TCP listener (or one wrapping it, such as
// tls.NewListener's), for an address [NewServer] does not choose: another
// loopback address, a given port, an address of a network namespace made
// by [InNetNS]. The Server takes ln over and closes it with itself, when
// tb and its subtests have finished.
func Serve(tb testing.TB, ln net.Listener, handle func(ctx context.Context, c net.Conn)) *Server {
	tb.Helper()
	ta, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		ln.Close()
		tb.Fatalf("socketstest: server: %v is not a TCP address", ln.Addr())
	}
	s := &Server{
		ln:     ln,
		addr:   unmap(ta.AddrPort()),
		handle: handle,
		conns:  make(map[net.Conn]struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Go(s.serve)
	tb.Cleanup(s.Close)
	return s
}

// Addr returns the server's address as "host:port", such as
// "127.0.0.1:34567".
func (s *Server) Addr() string { return s.addr.String() }

// AddrPort returns the server's address.
func (s *Server) AddrPort() netip.AddrPort { return s.addr }

// Accepted returns the remote addresses of the connections the server has
// accepted so far, in the order it accepted them. A connection is in the
// list before its handler starts.
func (s *Server) Accepted() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.accepted)
}

// Close stops the server: it cancels the handlers' context, closes the
// listener and every open connection, and waits for the handlers to
// return. It may be called more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.cancel()
		s.ln.Close()
		for c := range s.conns {
			c.Close()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// serve accepts connections until the listener is closed.
func (s *Server) serve() {
	for {
		c, err := s.ln.Accept()
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
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			s.accepted = append(s.accepted, unmap(ta.AddrPort()))
		}
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			s.handle(s.ctx, c)
		})
	}
}

// unmap returns ap with an IPv4-mapped IPv6 address as the IPv4 address.
func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
