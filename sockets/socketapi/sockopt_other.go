//go:build !unix && !windows

package socketapi

import (
	"errors"
	"net"
)

// Linux's numbers, for platforms whose syscall package has no sockets.
const (
	solSocket   = 1
	ipprotoTCP  = 6
	soKeepAlive = 9
	soDebug     = 1
	tcpNodelay  = 1
	soLinger    = 13
	soOOBInline = 10
	soSndbuf    = 7
	soRcvbuf    = 8
	soReuseaddr = 2
	soError     = 4
)

var otherOptionNames = map[optKey]string{}

// soErrorOf cannot read SO_ERROR on this platform.
func soErrorOf(net.Conn) (int, error) { return 0, errors.ErrUnsupported }
