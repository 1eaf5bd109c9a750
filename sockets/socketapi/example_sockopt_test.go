//go:build unix || windows

package socketapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketapi"
)

// Socket options behave as on App Engine: the supported ones read back fixed
// placeholders and accept any value; the others are refused.
func ExampleConn_GetsockoptInt() {
	addr, stop := exampleEcho()
	defer stop()
	// The policy is widened explicitly to reach the loopback server.
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: sockets.DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32"))}}
	conn, err := dial(d, context.Background(), "tcp", addr)
	if err != nil {
		panic(err)
	}
	defer conn.Close()

	rcvbuf, err := conn.GetsockoptInt(syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	fmt.Println("SO_RCVBUF:", rcvbuf, err)
	fmt.Println("set TCP_NODELAY:", conn.SetsockoptInt(syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1))
	nodelay, _ := conn.GetsockoptInt(syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
	fmt.Println("TCP_NODELAY:", nodelay)
	linger, _ := conn.GetsockoptInt(syscall.SOL_SOCKET, syscall.SO_LINGER)
	fmt.Println("SO_LINGER:", linger)

	_, err = conn.GetsockoptInt(syscall.SOL_SOCKET, syscall.SO_BROADCAST)
	fmt.Println(err)
	fmt.Println("permission error:", errors.Is(err, os.ErrPermission))
	// Output:
	// SO_RCVBUF: 2097152 <nil>
	// set TCP_NODELAY: <nil>
	// TCP_NODELAY: 0
	// SO_LINGER: 0
	// socketapi: getsockopt SO_BROADCAST: socket option not permitted
	// permission error: true
}
