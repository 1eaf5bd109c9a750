// Package dialhook lends package sockets' checked dial to the Sockets-API
// emulation in package socketapi, which wraps it as tls.Dialer wraps
// net.Dialer but needs more of a dial than its net.Conn: the host as
// dialed and the exact address that passed the policy. Package sockets
// sets the functions when it is initialised; socketapi imports sockets, so
// they are always set before socketapi calls them. Nothing outside the
// module can reach them.
package dialhook

import (
	"context"
	"net"
	"net/netip"
)

// Dial is sockets.Dialer's checked dial; d is a *sockets.Dialer. It
// returns the connection as made, the host as dialed and the address the
// connection reached, which passed the policy. A refusal is counted on the
// dialer's metrics, as a refusal of sockets.Dialer.DialContext is.
var Dial func(d any, ctx context.Context, network, address string) (c net.Conn, host string, peer netip.AddrPort, err error)

// Lookup resolves host (a name, or an IP literal returned as is) over
// network ("ip", "ip4" or "ip6") with d's resolver and timeout, and the
// host name checks of a dial; d is a *sockets.Dialer. The addresses are
// not checked against the policy.
var Lookup func(d any, ctx context.Context, network, host string) ([]netip.Addr, error)

// Protocol is "tcp" for tcp, tcp4 and tcp6, "udp" for udp, udp4 and udp6,
// and "" for every other network.
func Protocol(network string) string {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return "tcp"
	case "udp", "udp4", "udp6":
		return "udp"
	}
	return ""
}

// FamilyMatches reports whether a fits network, one of the networks
// Protocol names: any address for tcp and udp, an IPv4 one (or its
// IPv4-mapped form) for tcp4 and udp4, an IPv6 one that is not
// IPv4-mapped for tcp6 and udp6.
func FamilyMatches(network string, a netip.Addr) bool {
	switch network[len(network)-1] {
	case '4':
		return a.Unmap().Is4()
	case '6':
		return a.Is6() && !a.Is4In6()
	}
	return true
}
