package socketapi

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"github.com/outbound-go/outbound/internal/dialhook"
	"github.com/outbound-go/outbound/sockets"
)

// ErrNotImplemented is wrapped by the error of every call that App Engine's
// Sockets API did not implement, such as a reverse lookup
// ([Dialer.LookupAddr]). It also matches errors.ErrUnsupported.
var ErrNotImplemented error = &sentinel{"socketapi: not implemented", []error{errors.ErrUnsupported}}

// LookupNetIP returns the addresses of host through the Dialer's
// [sockets.Resolver], as App Engine's forward lookups (gethostbyname) did.
// network is "ip", "ip4" or "ip6". An IP literal is returned as is,
// without a lookup, if it is of the family network asks for: an IPv6
// literal looked up over "ip4", or an IPv4 one (IPv4-mapped included) over
// "ip6", fails as it did on App Engine, with the error Go's net.Resolver
// gives, a *net.AddrError "no suitable address found". A lookup is not a
// connection: the addresses are not checked against the policy (a dial
// checks them). [sockets.Dialer.Timeout] bounds the lookup. A malformed
// name, an unknown network, a literal of the wrong family or a failed
// lookup is a *[sockets.LookupError].
func (d *Dialer) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if network == "ip4" || network == "ip6" {
		// As the core does, a host that parses as an address is a literal.
		if a, err := netip.ParseAddr(host); err == nil && !dialhook.FamilyMatches(network, a) {
			return nil, &sockets.LookupError{Host: host, Err: &net.AddrError{Err: "no suitable address found", Addr: host}}
		}
	}
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
