package socketapi

import (
	"context"
	"errors"
	"net/netip"
	"strconv"

	"github.com/outbound-go/outbound/internal/dialhook"
)

// ErrNotImplemented is wrapped by the error of every call that App Engine's
// Sockets API did not implement, such as a reverse lookup
// ([Dialer.LookupAddr]). Such an error also matches errors.ErrUnsupported.
var ErrNotImplemented = errors.New("socketapi: not implemented")

// NotImplementedError is the error of a call App Engine's Sockets API did
// not implement. It matches [ErrNotImplemented] and errors.ErrUnsupported.
type NotImplementedError struct {
	Op  string // such as "reverse lookup"
	Arg string // the argument, as given
}

// Error returns a message such as
//
//	sockets: reverse lookup of "8.8.8.8": not implemented
func (e *NotImplementedError) Error() string {
	if e == nil {
		return "<nil>"
	}
	return "socketapi: " + e.Op + " of " + strconv.Quote(e.Arg) + ": not implemented"
}

// Unwrap returns [ErrNotImplemented].
func (e *NotImplementedError) Unwrap() error { return ErrNotImplemented }

// Is reports whether target is errors.ErrUnsupported.
func (e *NotImplementedError) Is(target error) bool { return target == errors.ErrUnsupported }

// LookupNetIP returns the addresses of host through the Dialer's
// [sockets.Resolver], as App Engine's forward lookups (gethostbyname) did. network
// is "ip", "ip4" or "ip6". An IP literal is returned as is, without a
// lookup. A lookup is not a connection: the addresses are not checked
// against the policy (a dial checks them). [Dialer.Timeout] bounds the
// lookup. A malformed name, an unknown network or a failed lookup is a
// *[sockets.LookupError].
func (d *Dialer) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return dialhook.Lookup(&d.orZero().Dialer, ctx, network, host)
}

// LookupHost is [Dialer.LookupNetIP] for network "ip", with the addresses
// as strings.
func (d *Dialer) LookupHost(ctx context.Context, host string) ([]string, error) {
	addrs, err := d.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out, nil
}

// LookupAddr would return the names of an address (a reverse lookup,
// gethostbyaddr). App Engine's Sockets API did not implement it, and
// neither does this package: it always fails with a *[NotImplementedError]
// that matches [ErrNotImplemented], without any lookup.
func (d *Dialer) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	return nil, &NotImplementedError{Op: "reverse lookup", Arg: addr}
}
