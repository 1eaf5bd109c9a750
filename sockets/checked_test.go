package sockets_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"reflect"
	"sync"
	"testing"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/internal/lab"
)

// No test in this file sends a packet outside loopback: "public" names
// resolve through a table resolver, and a lab.Connector, which
// refuses any target off loopback, stands in for the final connect step.

// echoListener accepts connections on 127.0.0.1 and echoes what it reads;
// it counts the connections it accepted.
type echoListener struct {
	net.Listener
	mu       sync.Mutex
	accepted int
	wg       sync.WaitGroup
}

func newEchoListener(t *testing.T) *echoListener {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &echoListener{Listener: ln}
	l.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.mu.Lock()
			l.accepted++
			l.mu.Unlock()
			l.wg.Go(func() {
				defer c.Close()
				io.Copy(c, c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		l.wg.Wait()
	})
	return l
}

func (l *echoListener) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.accepted
}

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
func checkedDialer(l *echoListener) (*sockets.Dialer, *lab.Connector) {
	conn := &lab.Connector{Target: l.Addr().String()}
	return &sockets.Dialer{
		Resolver: lab.NewResolver(map[string][]string{
			"www.example.com": {"93.184.216.34"},
			"private.example": {"10.0.0.1"},
		}),
		Connect: conn.Connect,
	}, conn
}

// TestDialCheckedReturnsConnectionAsMade shows that DialChecked connects
// to the exact address that passed the policy and hands out the
// connection the connect step made, not a *Conn.
func TestDialCheckedReturnsConnectionAsMade(t *testing.T) {
	l := newEchoListener(t)
	d, conn := checkedDialer(l)
	c, err := d.DialChecked(context.Background(), "tcp", "www.example.com:443")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*net.TCPConn); !ok {
		t.Errorf("DialChecked returned a %T, want the *net.TCPConn the connect step made", c)
	}
	if got, want := conn.Attempts(), []netip.AddrPort{netip.MustParseAddrPort("93.184.216.34:443")}; !reflect.DeepEqual(got, want) {
		t.Errorf("connect attempts = %v, want %v", got, want)
	}
	echo(t, c, "hello")

	// DialContext makes the same connection and wraps it.
	wc, err := d.DialContext(context.Background(), "tcp", "www.example.com:443")
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	if _, ok := wc.(*sockets.Conn); !ok {
		t.Errorf("DialContext returned a %T, want a *sockets.Conn", wc)
	}
}

// TestDialCheckedRealConnect dials through the real connect step, with
// the second check in net.Dialer's ControlContext, to a loopback server
// the policy allows.
func TestDialCheckedRealConnect(t *testing.T) {
	l := newEchoListener(t)
	d := &sockets.Dialer{Policy: sockets.DefaultPolicy().Allow(netip.MustParsePrefix("127.0.0.1/32"))}
	c, err := d.DialChecked(context.Background(), "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*net.TCPConn); !ok {
		t.Errorf("DialChecked returned a %T, want a *net.TCPConn", c)
	}
	echo(t, c, "hello")
}

// TestDialCheckedRefusesAsDialContext shows that DialChecked refuses
// exactly what DialContext refuses, with the same errors, and attempts no
// connection for a refusal.
func TestDialCheckedRefusesAsDialContext(t *testing.T) {
	l := newEchoListener(t)
	for _, tc := range []struct {
		name, network, addr string
		local               net.Addr
		denied              bool
	}{
		{name: "private answer", network: "tcp", addr: "private.example:443", denied: true},
		{name: "loopback literal", network: "tcp", addr: l.Addr().String(), denied: true},
		{name: "port 25", network: "tcp", addr: "www.example.com:25", denied: true},
		{name: "unix network", network: "unix", addr: "/tmp/socket", denied: true},
		{name: "bad port", network: "tcp", addr: "www.example.com:http", denied: true},
		{name: "bind", network: "tcp", addr: "www.example.com:443", local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, denied: true},
		{name: "unknown name", network: "tcp", addr: "nowhere.example:443"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, conn := checkedDialer(l)
			d.LocalAddr = tc.local
			before := l.count()
			c, err := d.DialChecked(context.Background(), tc.network, tc.addr)
			if err == nil {
				c.Close()
				t.Fatalf("DialChecked(%s, %s) connected", tc.network, tc.addr)
			}
			_, werr := d.DialContext(context.Background(), tc.network, tc.addr)
			if werr == nil || werr.Error() != err.Error() || reflect.TypeOf(werr) != reflect.TypeOf(err) {
				t.Errorf("DialChecked: %T %v\nDialContext: %T %v", err, err, werr, werr)
			}
			if got := errors.Is(err, sockets.ErrDenied); got != tc.denied {
				t.Errorf("errors.Is(%v, ErrDenied) = %v, want %v", err, got, tc.denied)
			}
			if n := len(conn.Attempts()); n != 0 {
				t.Errorf("%d connect attempts, want none", n)
			}
			if n := l.count() - before; n != 0 {
				t.Errorf("the server accepted %d connections, want none", n)
			}
		})
	}
}

// TestDialCheckedMeter shows that a Dialer with a Meter counts the bytes
// of DialChecked's connections for the host as dialed, and reports each
// connection to OnClose once, and that without a Meter nothing is
// counted.
func TestDialCheckedMeter(t *testing.T) {
	l := newEchoListener(t)
	d, _ := checkedDialer(l)
	var (
		mu     sync.Mutex
		closes []sockets.Usage
		hosts  []string
	)
	d.Meter = &sockets.Meter{OnClose: func(host string, u sockets.Usage) {
		mu.Lock()
		defer mu.Unlock()
		closes = append(closes, u)
		hosts = append(hosts, host)
	}}
	c, err := d.DialChecked(context.Background(), "tcp", "WWW.Example.com.:443")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*sockets.Conn); ok {
		t.Error("DialChecked returned a *sockets.Conn")
	}
	echo(t, c, "hello, meter")
	want := sockets.Usage{Sent: 12, Received: 12}
	if got := d.Meter.Host("www.example.com"); got != want {
		t.Errorf("Meter.Host while open = %+v, want %+v", got, want)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c.Close() // a second Close reports nothing more
	if got := d.Meter.Host("www.example.com"); got != want {
		t.Errorf("Meter.Host after Close = %+v, want %+v", got, want)
	}
	mu.Lock()
	if len(closes) != 1 || closes[0] != want || hosts[0] != "www.example.com" {
		t.Errorf("OnClose calls: hosts %q, usage %+v; want one, www.example.com, %+v", hosts, closes, want)
	}
	mu.Unlock()

	d.Meter = nil
	c, err = d.DialChecked(context.Background(), "tcp", "www.example.com:443")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*net.TCPConn); !ok {
		t.Errorf("without a Meter, DialChecked returned a %T, want a *net.TCPConn", c)
	}
}

// TestWith is the merge of a Policy and a Resolver named beside a Dialer
// template: what is named wins, the template gives the rest, and the
// template is never changed.
func TestWith(t *testing.T) {
	tmplPolicy, cfgPolicy := sockets.DefaultPolicy(), sockets.PublicPolicy()
	tmplResolver, cfgResolver := lab.NewResolver(nil), lab.NewResolver(nil)
	tmpl := &sockets.Dialer{Policy: tmplPolicy, Resolver: tmplResolver, Timeout: 7, AppID: "app"}
	saved := *tmpl

	for _, tc := range []struct {
		name       string
		d          *sockets.Dialer
		p          *sockets.Policy
		r          sockets.Resolver
		wantPolicy *sockets.Policy
		wantRes    sockets.Resolver
	}{
		{"nothing named", tmpl, nil, nil, tmplPolicy, tmplResolver},
		{"policy named", tmpl, cfgPolicy, nil, cfgPolicy, tmplResolver},
		{"resolver named", tmpl, nil, cfgResolver, tmplPolicy, cfgResolver},
		{"both named", tmpl, cfgPolicy, cfgResolver, cfgPolicy, cfgResolver},
		{"nil template", nil, cfgPolicy, nil, cfgPolicy, nil},
		{"nil template, nothing named", nil, nil, nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.d.With(tc.p, tc.r)
			if got == nil || got == tc.d {
				t.Fatalf("With returned %p, want a new Dialer", got)
			}
			if got.Policy != tc.wantPolicy || got.Resolver != tc.wantRes {
				t.Errorf("Policy %p, Resolver %v; want %p, %v", got.Policy, got.Resolver, tc.wantPolicy, tc.wantRes)
			}
			if tc.d != nil && (got.Timeout != tc.d.Timeout || got.AppID != tc.d.AppID) {
				t.Errorf("the template's other fields were not copied: %+v", got)
			}
		})
	}
	if !reflect.DeepEqual(*tmpl, saved) {
		t.Errorf("With changed the template: %+v, was %+v", *tmpl, saved)
	}
}
