package sockets_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"net/netip"
	"reflect"
	"testing"

	"github.com/outbound-go/outbound/internal/lab"
	"github.com/outbound-go/outbound/internal/obs"
	"github.com/outbound-go/outbound/sockets"
)

// No test in this file sends a packet outside loopback: "public" names
// resolve through a table resolver, and a lab.Connector, which
// refuses any target off loopback, stands in for the final connect step.

// echoConn echoes what it reads: the handler of the lab.Server the tests
// dial (on 127.0.0.1, counting the connections it accepts).
func echoConn(_ context.Context, c net.Conn) { io.Copy(c, c) }

// echo writes msg on c and reads it back.
func echo(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo read %q, %v; want %q", buf, err, msg)
	}
}

// checkedDialer returns a Dialer whose resolver answers www.example.com
// with a public address and private.example with a private one, and
// whose connect step goes to l.
func checkedDialer(l *lab.Server) (*sockets.Dialer, *lab.Connector) {
	conn := &lab.Connector{Target: l.Addr()}
	return &sockets.Dialer{
		Resolver: lab.NewResolver(map[string][]string{
			"www.example.com": {"93.184.216.34"},
			"private.example": {"10.0.0.1"},
		}),
		Connect: conn.Connect,
	}, conn
}

// TestDialContextReturnsConnectionAsMade shows that DialContext connects
// to the exact address that passed the policy and hands out the
// connection the connect step made, unwrapped.
func TestDialContextReturnsConnectionAsMade(t *testing.T) {
	l := lab.NewServer(t, echoConn)
	d, conn := checkedDialer(l)
	c, err := d.DialContext(context.Background(), "tcp", "www.example.com:443")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*net.TCPConn); !ok {
		t.Errorf("DialContext returned a %T, want the *net.TCPConn the connect step made", c)
	}
	if got, want := conn.Attempts(), []netip.AddrPort{netip.MustParseAddrPort("93.184.216.34:443")}; !reflect.DeepEqual(got, want) {
		t.Errorf("connect attempts = %v, want %v", got, want)
	}
	echo(t, c, "hello")
}

// TestDialContextRealConnect dials through the real connect step, with
// the second check in net.Dialer's ControlContext, to a loopback server
// the policy allows.
func TestDialContextRealConnect(t *testing.T) {
	l := lab.NewServer(t, echoConn)
	d := &sockets.Dialer{Policy: sockets.DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32"))}
	c, err := d.DialContext(context.Background(), "tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*net.TCPConn); !ok {
		t.Errorf("DialContext returned a %T, want a *net.TCPConn", c)
	}
	echo(t, c, "hello")
}

// TestDialContextRefusals shows that DialContext refuses before any
// connection is attempted, and that a failed lookup is not a refusal.
// (Package socketapi holds its Dialer to the same refusals, error for
// error.)
func TestDialContextRefusals(t *testing.T) {
	l := lab.NewServer(t, echoConn)
	for _, tc := range []struct {
		name, network, addr string
		local               net.Addr
		denied              bool
	}{
		{name: "private answer", network: "tcp", addr: "private.example:443", denied: true},
		{name: "loopback literal", network: "tcp", addr: l.Addr(), denied: true},
		{name: "port 25", network: "tcp", addr: "www.example.com:25", denied: true},
		{name: "unix network", network: "unix", addr: "/tmp/socket", denied: true},
		{name: "bad port", network: "tcp", addr: "www.example.com:http", denied: true},
		{name: "bind", network: "tcp", addr: "www.example.com:443", local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, denied: true},
		{name: "unknown name", network: "tcp", addr: "nowhere.example:443"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, conn := checkedDialer(l)
			d.LocalAddr = tc.local
			before := len(l.Accepted())
			c, err := d.DialContext(context.Background(), tc.network, tc.addr)
			if err == nil {
				c.Close()
				t.Fatalf("DialContext(%s, %s) connected", tc.network, tc.addr)
			}
			if got := errors.Is(err, sockets.ErrDenied); got != tc.denied {
				t.Errorf("errors.Is(%v, ErrDenied) = %v, want %v", err, got, tc.denied)
			}
			if _, ok := errors.AsType[*sockets.LookupError](err); ok == tc.denied {
				t.Errorf("error %v (%T): a *LookupError is %v, want %v", err, err, ok, !tc.denied)
			}
			if n := len(conn.Attempts()); n != 0 {
				t.Errorf("%d connect attempts, want none", n)
			}
			if n := len(l.Accepted()) - before; n != 0 {
				t.Errorf("the server accepted %d connections, want none", n)
			}
		})
	}
}

// TestDialContextCountsBytes shows that a Dialer whose MeterProvider
// records counts the bytes of its connections on outbound.io, exactly and
// in both directions, whatever the case of the host dialed, and that a
// second Close is harmless.
func TestDialContextCountsBytes(t *testing.T) {
	l := lab.NewServer(t, echoConn)
	d, _ := checkedDialer(l)
	mp, collect := sdkMetrics(t)
	d.MeterProvider = mp
	c, err := d.DialContext(context.Background(), "tcp", "WWW.Example.com.:443")
	if err != nil {
		t.Fatal(err)
	}
	echo(t, c, "hello, meter")
	want := map[string]int64{
		"network.io.direction=transmit,network.transport=tcp": 12,
		"network.io.direction=receive,network.transport=tcp":  12,
	}
	if got := collect()[obs.MetricIO]; !maps.Equal(got, want) {
		t.Errorf("%s while open = %v, want %v", obs.MetricIO, got, want)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c.Close() // a second Close counts nothing more
	if got := collect()[obs.MetricIO]; !maps.Equal(got, want) {
		t.Errorf("%s after Close = %v, want %v", obs.MetricIO, got, want)
	}
}
