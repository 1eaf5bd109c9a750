package sockets_test

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/outbound-go/outbound/sockets"
)

// TestWithGoogleRangesFunc holds the live source of the Google rule: the
// ranges are read from the function at each check, a nil result (and a nil
// function) means the embedded ranges and never "no rule", the exceptions
// still apply, and WithGoogleRanges and WithGoogleRangesFunc replace each
// other.
func TestWithGoogleRangesFunc(t *testing.T) {
	t.Parallel()
	google := netip.MustParseAddrPort("142.250.64.100:443") // in the embedded services' ranges
	custom := netip.MustParseAddrPort("1.1.1.1:443")        // in customGoogle only
	cloud := netip.MustParseAddrPort("34.64.32.1:443")      // Google Cloud: in the whole goog.json only
	dns := netip.MustParseAddrPort("8.8.8.8:53")            // an exception, in customGoogle's ranges too

	var cur atomic.Pointer[sockets.GoogleRanges]
	var calls atomic.Int64
	f := func() *sockets.GoogleRanges { calls.Add(1); return cur.Load() }
	p := sockets.DefaultPolicy().WithGoogleRangesFunc(f)

	// nil from f: the embedded services' ranges, the rule stays on.
	assertRule(t, p.Check("tcp", "", google), "tcp", "", google, sockets.RuleGoogle, direct)
	assertRule(t, p.Check("tcp", "", custom), "tcp", "", custom, allowed, direct)
	if g := p.GoogleRanges(); g == nil || !slices.Equal(g.Prefixes(), embeddedServices().Prefixes()) {
		t.Error("GoogleRanges with f returning nil is not the embedded services' ranges")
	}
	if len(p.Exceptions()) == 0 {
		t.Error("no exceptions under WithGoogleRangesFunc")
	}

	// A new value is seen by the next check, without a new policy.
	cur.Store(mustParseGoogle(t, customGoogle))
	assertRule(t, p.Check("tcp", "", custom), "tcp", "", custom, sockets.RuleGoogle, direct)
	assertRule(t, p.Check("tcp", "", google), "tcp", "", google, allowed, direct)
	assertRule(t, p.Check("udp", "dns.google", dns), "udp", "dns.google", dns, allowed, direct)
	// A carried IPv4 address is read against the same ranges: 6to4 of 1.1.1.1.
	six := netip.MustParseAddrPort("[2002:101:101::1]:443")
	assertRule(t, p.Check("tcp", "", six), "tcp", "", six, sockets.RuleGoogle, in6to4("1.1.1.1"))
	if g := p.GoogleRanges(); g == nil || g.SyncToken != "1735787045" {
		t.Errorf("GoogleRanges = %v, want the ranges f returns now", g)
	}

	cur.Store(sockets.EmbeddedGoogleRanges())
	assertRule(t, p.Check("tcp", "", cloud), "tcp", "", cloud, sockets.RuleGoogle, direct)
	cur.Store(nil)
	assertRule(t, p.Check("tcp", "", cloud), "tcp", "", cloud, allowed, direct)

	// A zero GoogleRanges keeps the rule on and refuses nothing, as with
	// WithGoogleRanges.
	cur.Store(&sockets.GoogleRanges{})
	assertRule(t, p.Check("tcp", "", google), "tcp", "", google, allowed, direct)
	if len(p.Exceptions()) == 0 {
		t.Error("no exceptions with an empty GoogleRanges")
	}
	cur.Store(nil)

	// A nil f is the embedded ranges too, and so is PublicPolicy's
	// rule turned back on.
	for name, q := range map[string]*sockets.Policy{
		"nil f":         sockets.DefaultPolicy().WithGoogleRangesFunc(nil),
		"PublicPolicy":  sockets.PublicPolicy().WithGoogleRangesFunc(f),
		"after nil":     sockets.DefaultPolicy().WithGoogleRanges(nil).WithGoogleRangesFunc(f),
		"nil receiver":  (*sockets.Policy)(nil).WithGoogleRangesFunc(f),
		"zero receiver": (&sockets.Policy{}).WithGoogleRangesFunc(f),
	} {
		if err := q.Check("tcp", "", google); ruleOf(err) != sockets.RuleGoogle {
			t.Errorf("%s: Check(%v) = %v, want the Google rule", name, google, err)
		}
	}

	// The last call decides: WithGoogleRanges replaces f, and f is no
	// longer called.
	cur.Store(mustParseGoogle(t, customGoogle))
	for name, q := range map[string]*sockets.Policy{
		"off":   p.WithGoogleRanges(nil),
		"fixed": p.WithGoogleRanges(sockets.EmbeddedGoogleRanges()),
	} {
		before := calls.Load()
		err := q.Check("tcp", "", custom)
		if err != nil {
			t.Errorf("%s: Check(%v) = %v, want allowed: f still decides", name, custom, err)
		}
		if calls.Load() != before {
			t.Errorf("%s: f was called after WithGoogleRanges replaced it", name)
		}
	}
	if p.WithGoogleRanges(nil).GoogleRanges() != nil {
		t.Error("WithGoogleRanges(nil) after WithGoogleRangesFunc left the rule on")
	}
	// WithGoogleRangesFunc replaces fixed ranges the same way.
	q := sockets.DefaultPolicy().WithGoogleRanges(sockets.EmbeddedGoogleRanges()).WithGoogleRangesFunc(f)
	assertRule(t, q.Check("tcp", "", cloud), "tcp", "", cloud, allowed, direct)
	assertRule(t, q.Check("tcp", "", custom), "tcp", "", custom, sockets.RuleGoogle, direct)

	// The other With methods keep the function.
	r := p.Allow(netip.MustParsePrefix("127.0.0.0/8")).Deny(netip.MustParsePrefix("9.9.9.0/24"))
	assertRule(t, r.Check("tcp", "", custom), "tcp", "", custom, sockets.RuleGoogle, direct)
}

// TestWithGoogleRangesFuncConcurrent swaps the ranges while checks run
// (for the race detector): each check sees one whole value or the other.
func TestWithGoogleRangesFuncConcurrent(t *testing.T) {
	t.Parallel()
	var cur atomic.Pointer[sockets.GoogleRanges]
	custom := mustParseGoogle(t, customGoogle)
	p := sockets.DefaultPolicy().WithGoogleRangesFunc(cur.Load)
	ap := netip.MustParseAddrPort("1.1.1.1:443")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				if err := p.Check("tcp", "", ap); err != nil && ruleOf(err) != sockets.RuleGoogle {
					t.Errorf("Check = %v", err)
					return
				}
			}
		})
	}
	for i := range 1000 {
		if i%2 == 0 {
			cur.Store(custom)
		} else {
			cur.Store(nil)
		}
	}
	wg.Wait()
}

// TestWithGoogleRangesFuncDoesNotAllocate: an allowed Check under a live
// source costs no allocation, as under fixed ranges.
func TestWithGoogleRangesFuncDoesNotAllocate(t *testing.T) {
	var cur atomic.Pointer[sockets.GoogleRanges]
	cur.Store(sockets.EmbeddedGoogleRanges())
	p := sockets.DefaultPolicy().WithGoogleRangesFunc(cur.Load)
	for _, bc := range benchCases {
		if !bc.allowed {
			continue
		}
		ap := netip.MustParseAddrPort(bc.addr)
		if p.Check(bc.network, bc.host, ap) != nil {
			continue // a cloud address, refused under the whole goog.json
		}
		if n := testing.AllocsPerRun(100, func() { _ = p.Check(bc.network, bc.host, ap) }); n != 0 {
			t.Errorf("%s: %v allocations per allowed Check, want 0", bc.name, n)
		}
	}
}
