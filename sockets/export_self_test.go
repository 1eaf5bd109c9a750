package sockets

import "net"

// The source of the machine's addresses, for the tests of DenySelf.

// SelfRefresh is how long a reading of the machine's addresses is used.
const SelfRefresh = selfRefresh

// SetInterfaceAddrs makes f the source of the machine's addresses and
// drops the last reading; the returned function restores the source and
// drops the reading again. A test that calls it must not run in parallel
// with another that checks a policy with DenySelf.
func SetInterfaceAddrs(f func() ([]net.Addr, error)) (restore func()) {
	swap := func(f func() ([]net.Addr, error)) func() ([]net.Addr, error) {
		self.mu.Lock() // readSelf reads interfaceAddrs under it
		defer self.mu.Unlock()
		old := interfaceAddrs
		interfaceAddrs = f
		self.list.Store(nil)
		return old
	}
	old := swap(f)
	return func() { swap(old) }
}
