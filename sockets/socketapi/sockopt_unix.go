//go:build unix

package socketapi

import (
	"errors"
	"net"
	"syscall"
)

const (
	solSocket   = syscall.SOL_SOCKET
	ipprotoTCP  = syscall.IPPROTO_TCP
	soKeepAlive = syscall.SO_KEEPALIVE
	soDebug     = syscall.SO_DEBUG
	tcpNodelay  = syscall.TCP_NODELAY
	soLinger    = syscall.SO_LINGER
	soOOBInline = syscall.SO_OOBINLINE
	soSndbuf    = syscall.SO_SNDBUF
	soRcvbuf    = syscall.SO_RCVBUF
	soReuseaddr = syscall.SO_REUSEADDR
	soError     = syscall.SO_ERROR
)

var otherOptionNames = map[optKey]string{
	{syscall.SOL_SOCKET, syscall.SO_TYPE}:               "SO_TYPE",
	{syscall.SOL_SOCKET, syscall.SO_BROADCAST}:          "SO_BROADCAST",
	{syscall.SOL_SOCKET, syscall.SO_DONTROUTE}:          "SO_DONTROUTE",
	{syscall.SOL_SOCKET, syscall.SO_RCVLOWAT}:           "SO_RCVLOWAT",
	{syscall.SOL_SOCKET, syscall.SO_SNDLOWAT}:           "SO_SNDLOWAT",
	{syscall.SOL_SOCKET, syscall.SO_RCVTIMEO}:           "SO_RCVTIMEO",
	{syscall.SOL_SOCKET, syscall.SO_SNDTIMEO}:           "SO_SNDTIMEO",
	{syscall.IPPROTO_IP, syscall.IP_TTL}:                "IP_TTL",
	{syscall.IPPROTO_IP, syscall.IP_TOS}:                "IP_TOS",
	{syscall.IPPROTO_IP, syscall.IP_MULTICAST_TTL}:      "IP_MULTICAST_TTL",
	{syscall.IPPROTO_IP, syscall.IP_MULTICAST_LOOP}:     "IP_MULTICAST_LOOP",
	{syscall.IPPROTO_IP, syscall.IP_MULTICAST_IF}:       "IP_MULTICAST_IF",
	{syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY}:         "IPV6_V6ONLY",
	{syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS}:   "IPV6_UNICAST_HOPS",
	{syscall.IPPROTO_IPV6, syscall.IPV6_MULTICAST_HOPS}: "IPV6_MULTICAST_HOPS",
}

// soErrorOf reads SO_ERROR from the connection's file descriptor.
func soErrorOf(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, errors.ErrUnsupported
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ERROR)
	}); err != nil {
		return 0, err
	}
	return v, gerr
}
