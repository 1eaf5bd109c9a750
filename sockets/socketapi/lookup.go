package socketapi

import (
	"context"
	"errors"
	"net/netip"

	"github.com/outbound-go/outbound/internal/dialhook"
)

// ErrNotImplemented is wrapped by the error of every call that App Engine's
// Sockets API did not implement, such as a reverse lookup
// ([Dialer.LookupAddr]). It also matches errors.ErrUnsupported.
var ErrNotImplemented error = &sentinel{"socketapi: not implemented", []error{errors.ErrUnsupported}}

// LookupNetIP returns the addresses of host through the Dialer's
// [sockets.Resolver], as App Engine's forward lookups (gethostbyname) did.
// network is "ip", "ip4" or "ip6". An IP literal is returned as is,
// without a lookup. A lookup is not a connection: the addresses are not
// checked against the policy (a dial checks them). [sockets.Dialer.Timeout]
// bounds the lookup. A malformed name, an unknown network or a failed
// lookup is a *[sockets.LookupError].
func (d *Dialer) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return dialhook.Lookup(&d.orZero().Dialer, ctx, network, host)
}

// LookupAddr would return the names of an address (a reverse lookup,
// gethostbyaddr). App Engine's Sockets API did not implement it, and
// neither does this package: it always fails, without any lookup, with an
// *[Error] for Op "reverse lookup" that matches [ErrNotImplemented] and
// errors.ErrUnsupported.
func (d *Dialer) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	return nil, &Error{Op: "reverse lookup", Arg: addr, Err: ErrNotImplemented}
}
