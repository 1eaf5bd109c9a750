package sockets

import (
	"context"
	"net"
	"net/netip"
	"net/url"
)

// ConnectTunnel runs the CONNECT exchange of a dial through proxy to
// target over c, as the final connect step does, for the fuzz target of
// the proxy's reply.
func ConnectTunnel(ctx context.Context, c net.Conn, proxy *url.URL, target netip.AddrPort) (net.Conn, error) {
	p, err := parseProxy(proxy)
	if err != nil {
		return nil, err
	}
	return connectTunnel(ctx, c, p, target)
}
