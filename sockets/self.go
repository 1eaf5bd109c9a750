package sockets

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// DenySelf returns a copy of p that also refuses the addresses of this
// machine's own network interfaces, for [RuleSelf]: a service that fetches
// URLs for others on a machine with a public address must not let them
// reach its own admin and debug listeners bound to 0.0.0.0 or ::. p is
// not changed. It is off in [DefaultPolicy] and [PublicPolicy], as on App
// Engine, whose sandbox had no address of its own to reach.
//
// Every address of every interface counts, up or down, public or not,
// except loopback addresses: the never-public table refuses those already
// ([RuleLoopback]), and an [Policy.Allow] of 127.0.0.1 for a test server
// still opens them. The rule runs with the deny list, before the allow
// list, so no Allow opens the machine's other addresses, and it applies to
// the IPv4 address an IPv6 form carries (6to4, NAT64, ...) as the deny
// list does.
//
// The addresses are read with net.InterfaceAddrs when a check first needs
// them, and again by the first check that needs them more than two
// seconds later: an address added to an interface is refused from then
// on. The list is one for the process, shared by every policy, and no
// goroutine keeps it (a timer marks it old). A check that reads it costs
// the reading (tens of microseconds, and allocations); every other check
// costs one search of the list and allocates nothing when it allows. When the addresses
// cannot be read, every address counts as the machine's until a later
// reading succeeds: a policy with DenySelf refuses every connection for
// RuleSelf, with the reason in [DeniedError.Detail].
func (p *Policy) DenySelf() *Policy {
	c := *p.orDefault()
	c.denySelf = true
	return &c
}

// selfRefresh is how long a reading of the machine's addresses is used:
// the next check that needs them after that reads them again.
const selfRefresh = 2 * time.Second

// interfaceAddrs reads the machine's addresses; a test swaps it
// (export_self_test.go).
var interfaceAddrs = net.InterfaceAddrs

// selfList is one reading of the machine's addresses. It is immutable.
type selfList struct {
	set *addrSet // the addresses, loopback left out
	err error    // the reading failed: every address counts
}

// has reports whether a, unmapped and unzoned, is one of the machine's
// addresses.
func (l *selfList) has(a netip.Addr) bool {
	return l.err != nil || l.set.contains(a)
}

// self holds the latest reading, for every policy. A timer drops it
// selfRefresh after it was read, so that a check pays one atomic load to
// find a reading, and no clock.
var self struct {
	mu   sync.Mutex // held while reading, so that one check reads at a time
	list atomic.Pointer[selfList]
}

// selfAddrs returns the latest reading, reading the addresses if there is
// none (the last one is selfRefresh old, or there was none).
func selfAddrs() *selfList {
	if l := self.list.Load(); l != nil {
		return l
	}
	self.mu.Lock()
	defer self.mu.Unlock()
	if l := self.list.Load(); l != nil {
		return l // another check read them while this one waited
	}
	l := readSelf()
	self.list.Store(l)
	time.AfterFunc(selfRefresh, func() { self.list.CompareAndSwap(l, nil) })
	return l
}

// readSelf reads the machine's addresses from interfaceAddrs.
func readSelf() *selfList {
	addrs, err := interfaceAddrs()
	if err != nil {
		return &selfList{err: err}
	}
	var prefixes []netip.Prefix
	for _, a := range addrs {
		var ip net.IP
		switch v := a.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		default:
			continue
		}
		x, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		if x = x.Unmap(); x.IsLoopback() {
			continue
		}
		prefixes = append(prefixes, netip.PrefixFrom(x, x.BitLen()))
	}
	return &selfList{set: newAddrSet(prefixes)}
}
