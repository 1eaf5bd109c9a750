//go:build unix

package socketapi_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketapi"
)

// supportedOptions are App Engine's eight options and the placeholders a
// read returns (SO_LINGER reads as off).
var supportedOptions = []struct {
	name        string
	level, opt  int
	placeholder int
}{
	{"SO_KEEPALIVE", syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 0},
	{"SO_DEBUG", syscall.SOL_SOCKET, syscall.SO_DEBUG, 128},
	{"TCP_NODELAY", syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 0},
	{"SO_LINGER", syscall.SOL_SOCKET, syscall.SO_LINGER, 0},
	{"SO_OOBINLINE", syscall.SOL_SOCKET, syscall.SO_OOBINLINE, 0},
	{"SO_SNDBUF", syscall.SOL_SOCKET, syscall.SO_SNDBUF, 2097152},
	{"SO_RCVBUF", syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2097152},
	{"SO_REUSEADDR", syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1},
}

// refusedOptions are options App Engine refused; the last rows are numbers
// no platform names, and a supported name at the wrong level.
var refusedOptions = []struct {
	name       string
	level, opt int
}{
	{"SO_BROADCAST", syscall.SOL_SOCKET, syscall.SO_BROADCAST},
	{"SO_RCVTIMEO", syscall.SOL_SOCKET, syscall.SO_RCVTIMEO},
	{"SO_TYPE", syscall.SOL_SOCKET, syscall.SO_TYPE},
	{"IP_TTL", syscall.IPPROTO_IP, syscall.IP_TTL},
	{"IP_TOS", syscall.IPPROTO_IP, syscall.IP_TOS},
	{"IPV6_V6ONLY", syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY},
	{"option 9999 at level 1", 1, 9999},
	{"option 1 at level -1", -1, 1},
	{fmt.Sprintf("option %d at level %d", syscall.SO_KEEPALIVE, syscall.IPPROTO_TCP), syscall.IPPROTO_TCP, syscall.SO_KEEPALIVE}, // SO_KEEPALIVE's number at the TCP level
}

// optionSocket is what both Conn and PacketConn offer.
type optionSocket interface {
	GetsockoptInt(level, name int) (int, error)
	SetsockoptInt(level, name, value int) error
}

func TestSocketOptions(t *testing.T) {
	tcpSrv := startEchoTCP(t)
	udpSrv := startEchoUDP(t)
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}}
	pc, err := d.ListenPacket(t.Context(), "udp", "")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	socks := map[string]optionSocket{
		"tcp":        dialConn(t, d, "tcp", tcpSrv.addr()),
		"udp":        dialConn(t, d, "udp", udpSrv.addrPort().String()),
		"packetconn": pc,
	}
	for kind, s := range socks {
		t.Run(kind, func(t *testing.T) {
			for _, o := range supportedOptions {
				t.Run(o.name, func(t *testing.T) {
					v, err := s.GetsockoptInt(o.level, o.opt)
					if err != nil || v != o.placeholder {
						t.Errorf("GetsockoptInt = %d, %v; want %d", v, err, o.placeholder)
					}
					// Any set is accepted and ignored.
					for _, set := range []int{0, 1, -1, 1 << 30} {
						if err := s.SetsockoptInt(o.level, o.opt, set); err != nil {
							t.Errorf("SetsockoptInt(%d) = %v", set, err)
						}
					}
					if v, err := s.GetsockoptInt(o.level, o.opt); err != nil || v != o.placeholder {
						t.Errorf("after sets, GetsockoptInt = %d, %v; want %d", v, err, o.placeholder)
					}
				})
			}
			for _, o := range refusedOptions {
				t.Run("refused "+o.name, func(t *testing.T) {
					_, gerr := s.GetsockoptInt(o.level, o.opt)
					for name, err := range map[string]error{
						"GetsockoptInt": gerr,
						"SetsockoptInt": s.SetsockoptInt(o.level, o.opt, 1),
					} {
						wantRefused(t, name, err, o.name)
					}
				})
			}
		})
	}
}

// wantRefused checks the error of a refused option. App Engine's stub
// refused a get or set of an option outside its eight with
// PERMISSION_DENIED (google/appengine/api/remote_socket/_remote_socket_stub.py,
// SDK 1.9.91, lines 262-266 in _Dynamic_GetSocketOptions and 278-282 in
// _Dynamic_SetSocketOptions), which _remote_socket.py raised as
// socket.error(EACCES) (its _ERROR_MAP, line 137): the error matches
// syscall.EACCES, besides ErrOptionNotPermitted, os.ErrPermission and EPERM.
func wantRefused(t *testing.T, call string, err error, name string) {
	t.Helper()
	if !errors.Is(err, socketapi.ErrOptionNotPermitted) {
		t.Fatalf("%s: err = %v, want ErrOptionNotPermitted", call, err)
	}
	if !errors.Is(err, syscall.EACCES) {
		t.Errorf("%s: %v does not match syscall.EACCES", call, err)
	}
	if !errors.Is(err, os.ErrPermission) || !errors.Is(err, syscall.EPERM) {
		t.Errorf("%s: %v does not match os.ErrPermission and EPERM", call, err)
	}
	var oe *socketapi.Error
	if !errors.As(err, &oe) {
		t.Fatalf("%s: %T is not an *Error", call, err)
	}
	if wantOp := map[string]string{"GetsockoptInt": "getsockopt", "SetsockoptInt": "setsockopt"}[call]; oe.Op != wantOp || oe.Arg != name {
		t.Errorf("%s: Error = %+v, want Op %q, Arg %q", call, oe, wantOp, name)
	}
	want := "socketapi: " + oe.Op + " " + name + ": socket option not permitted"
	if err.Error() != want {
		t.Errorf("%s: message %q, want %q", call, err, want)
	}
}

// TestSOErrorWithoutDescriptor: a connection from a Connect seam that has no
// file descriptor cannot report SO_ERROR, and says so.
func TestSOErrorWithoutDescriptor(t *testing.T) {
	d := &socketapi.Dialer{
		Dialer: sockets.Dialer{Connect: func(ctx context.Context, _ string, _ netip.AddrPort) (net.Conn, error) {
			a, b := net.Pipe()
			t.Cleanup(func() { b.Close() })
			return a, nil
		}},
	}
	c := dialConn(t, d, "tcp", "93.184.216.34:443")
	_, err := c.GetsockoptInt(syscall.SOL_SOCKET, syscall.SO_ERROR)
	var oe *socketapi.Error
	if !errors.Is(err, errors.ErrUnsupported) || !errors.As(err, &oe) || oe.Op != "getsockopt" || oe.Arg != "SO_ERROR" {
		t.Errorf("SO_ERROR on a pipe = %v, want an *Error with ErrUnsupported", err)
	}
	if v, err := c.GetsockoptInt(syscall.SOL_SOCKET, syscall.SO_SNDBUF); err != nil || v != 2097152 {
		t.Errorf("SO_SNDBUF on a pipe = %d, %v", v, err)
	}
}

func TestOptionsAfterClose(t *testing.T) {
	srv := startEchoTCP(t)
	d := &socketapi.Dialer{Dialer: sockets.Dialer{Policy: loopbackPolicy()}}
	c := dialConn(t, d, "tcp", srv.addr())
	c.Close()
	_, err := c.GetsockoptInt(syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
	var oe *socketapi.Error
	if !errors.Is(err, net.ErrClosed) || !errors.As(err, &oe) || errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EACCES) {
		t.Errorf("option on a closed Conn = %v, want an *Error matching net.ErrClosed only", err)
	}
}

func TestOptionName(t *testing.T) {
	for _, o := range supportedOptions {
		if got := socketapi.OptionName(o.level, o.opt); got != o.name {
			t.Errorf("OptionName(%d, %d) = %q, want %q", o.level, o.opt, got, o.name)
		}
	}
	if got := socketapi.OptionName(syscall.SOL_SOCKET, syscall.SO_ERROR); got != "SO_ERROR" {
		t.Errorf("OptionName(SO_ERROR) = %q", got)
	}
}
