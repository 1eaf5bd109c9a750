package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The environment of a test binary re-run in a network namespace.
const (
	// envNetNS holds the identity (/proc/self/ns/net) of the namespace
	// the binary was re-run from: the child checks it is elsewhere.
	envNetNS = "SOCKETSTEST_NETNS_PARENT"
	// envNetNSTest holds the name of the test the child was re-run for.
	envNetNSTest = "SOCKETSTEST_NETNS_TEST"
)

// InNetNS runs the test t in a network namespace of its own, where the
// kernel's real connect path, Go's own resolver and real servers can be
// used with public addresses without a packet leaving the machine: the
// only network there is the loopback interface lo, with addrs on it.
//
// Called in the test binary as "go test" started it, InNetNS re-runs the
// binary for t alone (-test.run anchored on t's full name, -test.v,
// -test.count=1, -test.short if set, a -test.timeout within t's deadline;
// the same binary, so the same -race build) in a new network namespace: as
// root a plain one (the clone flag of unshare -n), otherwise one owned by
// a new user namespace where the test's user is root (unshare -rn). No
// external command is needed. It logs the child's output with t.Log, and
// fails t if the child failed or skips t if the child skipped it (both end
// t's goroutine); when the child passed, it returns false, and the caller
// returns at once.
//
//	func TestDial(t *testing.T) {
//		if !lab.InNetNS(t, netip.MustParseAddr("93.184.216.34")) {
//			return
//		}
//		// Here 93.184.216.34 is an address of this machine, on lo.
//	}
//
// In the re-run binary, InNetNS first checks that it is in a new network
// namespace, not the one it was started from, with no interface up but
// loopback, and fails t otherwise, before anything can send a packet. It
// then brings lo up, adds each of addrs to it as a host address (/32 or
// /128) and returns true. A test then listens on those addresses (see
// [NewBlackHole] for one that never answers); an address added without a
// listener refuses connections at once, and an address not added is
// unreachable.
//
// Where no network namespace can be made (not Linux, or neither a plain
// namespace nor a user namespace is permitted), InNetNS skips t and says
// why; when the environment variable CI is "true", that is a failure
// instead, so that a continuous-integration run cannot pass without these
// tests. InNetNS must be called from the test's own goroutine, before the
// test starts anything.
func InNetNS(t *testing.T, addrs ...netip.Addr) bool {
	t.Helper()
	for _, a := range addrs {
		if !a.IsValid() || a.Zone() != "" {
			t.Fatalf("socketstest: InNetNS: invalid address %v", a)
		}
	}
	if want, ok := os.LookupEnv(envNetNSTest); ok {
		if name := t.Name(); name != want && !strings.HasPrefix(name, want+"/") {
			t.Fatalf("socketstest: InNetNS: %s called in the network namespace made for %s", name, want)
		}
		enterNetNS(t, os.Getenv(envNetNS), addrs)
		return true
	}
	runInNetNS(t)
	return false
}

// unavailable skips t because reason keeps it from running in a network
// namespace, or fails it when CI=true.
func unavailable(t testing.TB, reason string) {
	t.Helper()
	msg := "socketstest: no network namespace for this test: " + reason
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (a failure, not a skip, as CI=true)")
	}
	t.Skip(msg)
}

// runPattern returns the -test.run pattern that selects the test named
// name (as testing.T.Name gives it) and nothing else: each element of the
// name quoted and anchored, since -test.run matches element by element.
func runPattern(name string) string {
	elems := strings.Split(name, "/")
	for i, e := range elems {
		elems[i] = "^" + regexp.QuoteMeta(e) + "$"
	}
	return strings.Join(elems, "/")
}

// childResult is what the verbose output of a test binary says of the
// test named name.
type childResult int

const (
	childNotRun childResult = iota
	childPassed
	childFailed
	childSkipped
)

// resultOf finds the result line of the test named name in the verbose
// output line of a test binary, which indents a subtest's result.
func resultOf(line, name string) (childResult, bool) {
	line = strings.TrimLeft(line, " ")
	for _, r := range []struct {
		prefix string
		res    childResult
	}{{"--- PASS: ", childPassed}, {"--- FAIL: ", childFailed}, {"--- SKIP: ", childSkipped}} {
		if rest, ok := strings.CutPrefix(line, r.prefix); ok && strings.HasPrefix(rest, name+" (") {
			return r.res, true
		}
	}
	return childNotRun, false
}

// BlackHole is a TCP address that answers no connection: a listener with
// an accept queue of length zero that is full, because one connection
// waits in it and is never accepted. The kernel then drops every SYN sent
// to it, and a connect hangs, retrying, until the dialer gives up, as to a
// host that is down or behind a firewall that drops packets. It is made
// with [NewBlackHole], on Linux only.
type BlackHole struct {
	addr   netip.AddrPort
	ln     net.Listener
	filler []net.Conn
}

// NewBlackHole makes addr a black hole until tb and its subtests have
// finished, or Close. addr is an address of this machine, one on lo in a
// namespace made by [InNetNS] or a loopback address, with a port; port 0
// means any free port ([BlackHole.Addr] tells which). It fails tb if the
// listener cannot be made or its queue cannot be seen full.
func NewBlackHole(tb testing.TB, addr netip.AddrPort) *BlackHole {
	tb.Helper()
	b, err := newBlackHole(addr)
	if err != nil {
		tb.Fatalf("socketstest: black hole at %v: %v", addr, err)
	}
	tb.Cleanup(func() { b.Close() })
	return b
}

// Addr returns the black hole's address.
func (b *BlackHole) Addr() netip.AddrPort { return b.addr }

// Close closes the listener and the connection that filled its queue: the
// address then refuses connections. It may be called more than once.
func (b *BlackHole) Close() error {
	err := b.ln.Close()
	for _, c := range b.filler {
		c.Close()
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("socketstest: black hole: %w", err)
	}
	return nil
}
