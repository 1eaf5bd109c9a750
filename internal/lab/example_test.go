package lab_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/outbound-go/outbound/internal/lab"
)

// A name whose answers alternate between a public and a private address,
// as a DNS-rebinding attacker's server does, and a name that never
// resolves.
func ExampleResolver_SetFunc() {
	public, private := netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("10.0.0.1")
	var r lab.Resolver
	r.SetFunc("rebind.example", lab.Cycle([]netip.Addr{public}, []netip.Addr{private}))
	r.SetFunc("hang.example", lab.Hang)

	for range 3 {
		fmt.Println(r.LookupNetIP(context.Background(), "ip", "rebind.example"))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fmt.Println(r.LookupNetIP(ctx, "ip", "hang.example"))
	fmt.Println(r.Lookups())
	// Output:
	// [93.184.216.34] <nil>
	// [10.0.0.1] <nil>
	// [93.184.216.34] <nil>
	// [] context canceled
	// [rebind.example rebind.example rebind.example hang.example]
}
