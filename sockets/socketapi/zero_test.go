package socketapi_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"syscall"
	"testing"

	"github.com/outbound-go/outbound/sockets"
	"github.com/outbound-go/outbound/sockets/socketapi"
)

// zeroReceivers are a nil pointer and a zero value of every exported type
// with methods.
var zeroReceivers = []any{
	(*socketapi.Dialer)(nil), &socketapi.Dialer{},
	(*socketapi.Conn)(nil), &socketapi.Conn{},
	(*socketapi.PacketConn)(nil), &socketapi.PacketConn{},
	(*socketapi.Meter)(nil), &socketapi.Meter{},
	(*socketapi.Registry)(nil), &socketapi.Registry{},
	(*socketapi.Error)(nil), &socketapi.Error{},
}

// TestNilAndZeroReceivers calls every exported method of a nil and a zero
// value of each exported type, with zero arguments (a background context
// for a context), and fails on a panic. Left out are the methods that
// would make a real socket or listen on a path, ListenPacket (tested with
// a nil Dialer below) and Registry.Listen (TestInboxListen), and, for a
// nil *Dialer, Resolve, which the embedded sockets.Dialer promotes and
// which needs a Dialer to reach it.
func TestNilAndZeroReceivers(t *testing.T) {
	ctxType := reflect.TypeFor[context.Context]()
	skip := map[string]bool{"ListenPacket": true, "Listen": true}
	for _, recv := range zeroReceivers {
		v := reflect.ValueOf(recv)
		for i := range v.NumMethod() {
			m := v.Type().Method(i)
			if skip[m.Name] || m.Name == "Resolve" && v.IsNil() {
				continue
			}
			name := fmt.Sprintf("%#v.%s", recv, m.Name)
			if v.Kind() == reflect.Pointer && v.IsNil() {
				name = fmt.Sprintf("(%T)(nil).%s", recv, m.Name)
			}
			ft := v.Method(i).Type()
			args := make([]reflect.Value, ft.NumIn())
			for j := range args {
				if in := ft.In(j); in == ctxType {
					args[j] = reflect.ValueOf(context.Background())
				} else {
					args[j] = reflect.Zero(in)
				}
			}
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%s panicked: %v", name, r)
					}
				}()
				if ft.IsVariadic() {
					v.Method(i).CallSlice(args)
				} else {
					v.Method(i).Call(args)
				}
			}()
		}
	}
}

// TestNilDialer: a nil *Dialer is the zero Dialer, with the default
// policy. Every destination here is loopback, which that policy refuses
// before any connection or lookup.
func TestNilDialer(t *testing.T) {
	var d *socketapi.Dialer
	ctx := t.Context()
	loop := netip.MustParseAddrPort("127.0.0.1:9")

	for _, network := range []string{"tcp", "udp"} {
		c, err := d.DialContext(ctx, network, loop.String())
		de := assertRefusal(t, err, sockets.RuleLoopback)
		if c != nil || de.Addr != loop {
			t.Errorf("DialContext(%s) = %#v, refusal %+v", network, c, de)
		}
	}
	addrs, err := d.LookupNetIP(ctx, "ip", "127.0.0.1")
	if err != nil || !slices.Equal(addrs, []netip.Addr{loop.Addr()}) {
		t.Errorf("LookupNetIP of a literal = %v, %v", addrs, err)
	}
	if _, err := d.LookupAddr(ctx, "127.0.0.1"); !errors.Is(err, socketapi.ErrNotImplemented) {
		t.Errorf("LookupAddr = %v, want ErrNotImplemented", err)
	}
	_, err = d.Attach("anything")
	wantHandOffErr(t, err, "attach", socketapi.ErrNoRegistry)
	_, err = d.AttachPacket("anything")
	wantHandOffErr(t, err, "attach", socketapi.ErrNoRegistry)

	pc, err := d.ListenPacket(ctx, "udp4", "")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	_, err = pc.WriteTo([]byte("x"), net.UDPAddrFromAddrPort(loop))
	assertRefusal(t, err, sockets.RuleLoopback)
	if u := pc.Usage(); u != (socketapi.Usage{}) {
		t.Errorf("a refused datagram was sent: %+v", u)
	}
}

// TestNilReaders: a nil *Meter reads as an empty Meter, and a nil
// *Registry holds nothing.
func TestNilReaders(t *testing.T) {
	var m *socketapi.Meter
	if m.Host("x") != (socketapi.Usage{}) {
		t.Errorf("nil Meter Host = %+v", m.Host("x"))
	}
	if snap := m.Snapshot(); snap == nil || len(snap) != 0 {
		t.Errorf("nil Meter Snapshot() = %#v, want an empty map", snap)
	}
	var r *socketapi.Registry
	if r.Len() != 0 {
		t.Errorf("nil Registry Len() = %d", r.Len())
	}
}

// TestErrorMessages: an *Error names its operation, its argument and its
// path as each kind of call reads best, also when built without its Err;
// a nil one still has a message.
func TestErrorMessages(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&socketapi.Error{Op: "attach"}, "socketapi: attach: <nil>"},
		{&socketapi.Error{Op: "getsockopt", Arg: "SO_DEBUG"}, "socketapi: getsockopt SO_DEBUG: <nil>"},
		{&socketapi.Error{Op: "setsockopt", Arg: "option 99 at level 1", Err: socketapi.ErrOptionNotPermitted}, "socketapi: setsockopt option 99 at level 1: socket option not permitted"},
		{&socketapi.Error{Op: "reverse lookup", Err: socketapi.ErrNotImplemented}, `socketapi: reverse lookup of "": not implemented`},
		{&socketapi.Error{Op: "detach", Path: "/run/r.sock", Err: socketapi.ErrRegistryFull}, `socketapi: detach to "/run/r.sock": receiving registry is full`},
		{&socketapi.Error{Op: "receive", App: "a", Path: "/run/r.sock", Err: socketapi.ErrSenderGone}, `socketapi: receive on "/run/r.sock": sender went away before the hand-off completed`},
		{&socketapi.Error{Op: "attach", App: "a", AttachApp: "b", Err: socketapi.ErrWrongApp}, `socketapi: attach: socket descriptor belongs to another application (descriptor for "a", attaching as "b")`},
		{(*socketapi.Error)(nil), "<nil>"},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("%#v.Error() = %q, want %q", c.err, got, c.want)
		}
	}
}

// TestSentinelsMatch: what each sentinel matches besides itself, wherever
// it is wrapped, and what it does not.
func TestSentinelsMatch(t *testing.T) {
	for _, c := range []struct {
		name     string
		sentinel error
		also     []error
		not      []error
	}{
		{"ErrOptionNotPermitted", socketapi.ErrOptionNotPermitted, []error{syscall.EACCES, os.ErrPermission, syscall.EPERM}, []error{net.ErrClosed, errors.ErrUnsupported}},
		{"ErrNotImplemented", socketapi.ErrNotImplemented, []error{errors.ErrUnsupported}, []error{os.ErrPermission, sockets.ErrDenied}},
		{"ErrReclaimed", socketapi.ErrReclaimed, []error{net.ErrClosed}, []error{socketapi.ErrHandedOff, os.ErrPermission}},
		{"ErrHandedOff", socketapi.ErrHandedOff, []error{net.ErrClosed}, []error{socketapi.ErrReclaimed}},
		{"ErrExpiredDescriptor", socketapi.ErrExpiredDescriptor, []error{socketapi.ErrStaleDescriptor}, []error{socketapi.ErrBadDescriptor}},
		{"ErrStaleDescriptor", socketapi.ErrStaleDescriptor, nil, []error{socketapi.ErrExpiredDescriptor}},
	} {
		wrapped := &socketapi.Error{Op: "op", Err: fmt.Errorf("context: %w", c.sentinel)}
		for _, err := range []error{c.sentinel, wrapped} {
			if !errors.Is(err, c.sentinel) {
				t.Errorf("%s: %v does not match itself", c.name, err)
			}
			for _, target := range c.also {
				if !errors.Is(err, target) {
					t.Errorf("%s: %v does not match %v", c.name, err, target)
				}
			}
			for _, target := range c.not {
				if errors.Is(err, target) {
					t.Errorf("%s: %v matches %v", c.name, err, target)
				}
			}
		}
	}
	// A target of a type that cannot be compared is not a panic.
	if errors.Is(fmt.Errorf("wrapped: %w", socketapi.ErrReclaimed), uncomparable{}) {
		t.Error("ErrReclaimed matches an unrelated error")
	}
}

// uncomparable is an error of a type that == cannot compare.
type uncomparable []string

func (uncomparable) Error() string { return "uncomparable" }
