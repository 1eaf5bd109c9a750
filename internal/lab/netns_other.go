//go:build !linux

package lab

import (
	"errors"
	"net/netip"
	"runtime"
	"testing"
)

// runInNetNS skips t, or fails it under CI: network namespaces are a
// Linux feature.
func runInNetNS(t *testing.T) {
	t.Helper()
	unavailable(t, "network namespaces are a Linux feature, and this is "+runtime.GOOS)
}

// enterNetNS is never reached: no child is started outside Linux.
func enterNetNS(t *testing.T, _ string, _ []netip.Addr) {
	t.Helper()
	t.Fatal("socketstest: InNetNS: network namespaces are a Linux feature, and this is " + runtime.GOOS)
}

// newBlackHole fails: a full accept queue drops SYNs on Linux only.
func newBlackHole(netip.AddrPort) (*BlackHole, error) {
	return nil, errors.New("black holes are made on Linux only, and this is " + runtime.GOOS)
}
