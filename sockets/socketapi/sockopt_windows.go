//go:build windows

package socketapi

import (
	"errors"
	"net"
	"syscall"
	"unsafe"
)

// Winsock's numbers; the syscall package lacks SO_DEBUG, SO_OOBINLINE and
// SO_ERROR.
const (
	solSocket   = syscall.SOL_SOCKET
	ipprotoTCP  = syscall.IPPROTO_TCP
	soKeepAlive = syscall.SO_KEEPALIVE
	soDebug     = 0x1
	tcpNodelay  = syscall.TCP_NODELAY
	soLinger    = syscall.SO_LINGER
	soOOBInline = 0x100
	soSndbuf    = syscall.SO_SNDBUF
	soRcvbuf    = syscall.SO_RCVBUF
	soReuseaddr = syscall.SO_REUSEADDR
	soError     = 0x1007
)

var otherOptionNames = map[optKey]string{
	{syscall.SOL_SOCKET, syscall.SO_BROADCAST}:  "SO_BROADCAST",
	{syscall.IPPROTO_IP, syscall.IP_TTL}:        "IP_TTL",
	{syscall.IPPROTO_IP, syscall.IP_TOS}:        "IP_TOS",
	{syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY}: "IPV6_V6ONLY",
}

// soErrorOf reads SO_ERROR from the connection's socket handle.
func soErrorOf(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, errors.ErrUnsupported
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var v int32
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		n := int32(unsafe.Sizeof(v))
		gerr = syscall.Getsockopt(syscall.Handle(fd), syscall.SOL_SOCKET, soError, (*byte)(unsafe.Pointer(&v)), &n)
	}); err != nil {
		return 0, err
	}
	return int(v), gerr
}
