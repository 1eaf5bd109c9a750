package sockets

import (
	"net/netip"
	"slices"
	"testing"
)

// The range set behind the deny and allow lists and Google's ranges
// (addrset.go), checked against the simplest reference there is: a bitmap
// of one window of 65536 addresses, where union, difference and membership
// are a loop over bits, and the fewest prefixes that cover a set are
// counted on the window's binary tree (a subtree wholly in the set is one
// prefix, an empty one none, any other the sum of its halves).

// fuzzWindow is a window of 65536 consecutive addresses the fuzz inputs
// draw their prefixes from, with the shortest prefix length (relative to
// the window, 16 = the whole window) that stays inside it.
type fuzzWindow struct {
	name   string
	base   u128 // the window's first address as an integer
	is4    bool
	minRel int // 16, or 17 for a window that is not itself a prefix
}

var fuzzWindows = []fuzzWindow{
	// The top of IPv4: the range that ends at 255.255.255.255, where the
	// address after the last does not exist.
	{"ipv4-top", u128{0, 0xffff0000}, true, 16},
	// Across the carry of the u128 halves: two /113s either side of
	// 2001:db8:0:1::, ffff:ffff:ffff:8000 below and 7fff above.
	{"ipv6-carry", u128{0x20010db800000000, 0xffffffffffff8000}, false, 17},
	// The top of IPv6, ffff:...:ffff.
	{"ipv6-top", u128{0xffffffffffffffff, 0xffffffffffff0000}, false, 16},
}

// prefixIn returns the prefix of the window that a fuzz record names: the
// address at offset off of the window, with rel more bits than the window's
// /16 (relative lengths 16 to 32, or minRel to 32).
func (w fuzzWindow) prefixIn(off uint16, rel int) netip.Prefix {
	rel = max(rel, w.minRel)
	x := w.base
	x.lo += uint64(off) // never carries past the window: see the windows
	if w.name == "ipv6-carry" && off >= 0x8000 {
		x = u128{w.base.hi + 1, uint64(off - 0x8000)}
	}
	a := addrOf(x, w.is4)
	if w.is4 {
		return netip.PrefixFrom(a, rel).Masked()
	}
	return netip.PrefixFrom(a, 96+rel).Masked()
}

// offset returns the offset of a in the window, and whether it is inside.
func (w fuzzWindow) offset(a netip.Addr) (int, bool) {
	if a.Is4() != w.is4 {
		return 0, false
	}
	var x u128
	if w.is4 {
		x = u128{0, uint64(uint32of(a))}
	} else {
		x = uint128of(a)
	}
	if x.less(w.base) {
		return 0, false
	}
	var d uint64
	if x.hi == w.base.hi {
		d = x.lo - w.base.lo
	} else if x.hi == w.base.hi+1 {
		d = x.lo - w.base.lo // wraps to the right distance
	} else {
		return 0, false
	}
	return int(d), d < 1<<16
}

// bitmap is a set of the window's addresses, by offset.
type bitmap [1 << 16]bool

func (w fuzzWindow) mark(m *bitmap, p netip.Prefix) {
	off, ok := w.offset(p.Addr())
	if !ok {
		panic("prefix outside the window: " + p.String())
	}
	n := 1 << (p.Addr().BitLen() - p.Bits())
	for i := off; i < off+n; i++ {
		m[i] = true
	}
}

// minPrefixes counts the fewest prefixes that cover the set bits of
// m[lo:lo+size], an aligned subtree of the window, and reports whether the
// subtree is all in the set, or all out of it.
func minPrefixes(m *bitmap, lo, size int) (n int, all, none bool) {
	if size == 1 {
		if m[lo] {
			return 1, true, false
		}
		return 0, false, true
	}
	ln, la, lnone := minPrefixes(m, lo, size/2)
	rn, ra, rnone := minPrefixes(m, lo+size/2, size/2)
	switch {
	case la && ra:
		return 1, true, false
	case lnone && rnone:
		return 0, false, true
	}
	return ln + rn, false, false
}

// FuzzAddrSet builds sets of prefixes of each window from the input,
// four bytes a prefix: a byte of flags (bit 0: the prefix goes to b, the
// set taken away, instead of a; bit 1: to a's second batch, joined to the
// first by union as Policy.Deny joins a call's prefixes to the list), two
// bytes of offset in the window and a byte of length. It compares a, b
// and a minus b with the bitmaps, address by address, and their prefixes
// with the fewest prefixes that cover them.
func FuzzAddrSet(f *testing.F) {
	for _, seed := range [][]byte{
		{},                                     // nothing: empty sets
		{0, 0, 0, 16},                          // the whole window
		{0, 0, 0, 16, 1, 0, 0, 32},             // the window minus its first address
		{0, 0, 0, 16, 1, 0xff, 0xff, 32},       // the window minus its last address (the top of the family)
		{0, 0x7f, 0xff, 32, 0, 0x80, 0, 32},    // two addresses that touch across the window's middle (the u128 carry)
		{0, 0x12, 0x34, 20, 2, 0x12, 0x40, 24}, // a prefix and one inside it, in two batches
		{0, 0x10, 0, 20, 2, 0x20, 0, 20},       // two prefixes that touch but do not merge into a prefix
		{0, 0, 0, 17, 2, 0x80, 0, 17},          // two halves that merge into the whole window
		{0, 0, 0, 18, 1, 0x10, 0, 22, 1, 0x20, 0, 24, 1, 0x3f, 0xff, 32}, // holes cut into a quarter
		{1, 0, 0, 16, 0, 5, 5, 30},                                       // taking away everything from a small set
		{0, 0x40, 0, 18, 1, 0x30, 0, 19},                                 // b overlaps a's start only
		{0, 0x40, 0, 18, 1, 0x70, 0, 19},                                 // b overlaps a's end only
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 4*64 {
			return
		}
		for _, w := range fuzzWindows {
			var batch [2][]netip.Prefix
			var take []netip.Prefix
			var ma, mb bitmap
			for i := 0; i+4 <= len(in); i += 4 {
				rel := 16 + int(in[i+3])%17
				p := w.prefixIn(uint16(in[i+1])<<8|uint16(in[i+2]), rel)
				if in[i]&1 != 0 {
					take = append(take, p)
					w.mark(&mb, p)
				} else {
					batch[in[i]>>1&1] = append(batch[in[i]>>1&1], p)
					w.mark(&ma, p)
				}
			}
			// The offsets where a set may change: the first and last
			// address of each prefix and their neighbours.
			edges := []int{0, 1<<16 - 1}
			for _, p := range slices.Concat(batch[0], batch[1], take) {
				first, _ := w.offset(p.Addr())
				n := 1 << (p.Addr().BitLen() - p.Bits())
				for _, e := range []int{first - 1, first, first + n - 1, first + n} {
					if 0 <= e && e < 1<<16 {
						edges = append(edges, e)
					}
				}
			}
			a := newAddrSet(batch[0]).union(newAddrSet(batch[1]))
			b := newAddrSet(take)
			d := a.minus(b)
			var md bitmap
			for i := range md {
				md[i] = ma[i] && !mb[i]
			}
			for _, c := range []struct {
				name string
				s    *addrSet
				m    *bitmap
			}{{"a", a, &ma}, {"b", b, &mb}, {"a minus b", d, &md}} {
				w.compare(t, c.name, c.s, c.m, edges)
			}
		}
	})
}

// compare holds s to m: prefixes that cover m exactly and are the fewest
// that do, sorted; the same answer from contains at each offset of edges
// (where m may change, so everywhere: between two edges every address is
// in the set or none is, and the exact cover holds the ranges); and none
// of the window's neighbours.
func (w fuzzWindow) compare(t *testing.T, name string, s *addrSet, m *bitmap, edges []int) {
	t.Helper()
	for _, i := range edges {
		var x u128
		if w.name == "ipv6-carry" && i >= 0x8000 {
			x = u128{w.base.hi + 1, uint64(i - 0x8000)}
		} else {
			x = u128{w.base.hi, w.base.lo + uint64(i)}
		}
		a := addrOf(x, w.is4)
		if s.contains(a) != m[i] {
			t.Fatalf("%s: %s: contains(%v) = %v, want %v", w.name, name, a, !m[i], m[i])
		}
	}
	// The neighbours of the window, where they exist, are in no set.
	if first := addrOf(w.base, w.is4); first.Prev().IsValid() && s.contains(first.Prev()) {
		t.Fatalf("%s: %s: contains %v, before the window", w.name, name, first.Prev())
	}
	ps := s.prefixes()
	var got bitmap
	for i, p := range ps {
		if i > 0 && ps[i-1].Addr().Compare(p.Addr()) >= 0 {
			t.Fatalf("%s: %s: prefixes out of order: %v", w.name, name, ps)
		}
		if p != p.Masked() {
			t.Fatalf("%s: %s: prefix %v not masked", w.name, name, p)
		}
		w.mark(&got, p)
	}
	if got != *m {
		t.Fatalf("%s: %s: prefixes %v do not cover the set exactly", w.name, name, ps)
	}
	want, _, _ := minPrefixes(m, 0, 1<<16)
	if w.minRel != 16 {
		lo, _, _ := minPrefixes(m, 0, 1<<15)
		hi, _, _ := minPrefixes(m, 1<<15, 1<<15)
		want = lo + hi
	}
	if len(ps) != want {
		t.Fatalf("%s: %s: %d prefixes %v, want the fewest, %d", w.name, name, len(ps), ps, want)
	}
	// The ranges are sorted, disjoint and do not touch.
	for i := 1; i < len(s.v4); i++ {
		if s.v4[i-1].to+1 >= s.v4[i].from {
			t.Fatalf("%s: %s: ranges %v and %v overlap or touch", w.name, name, s.v4[i-1], s.v4[i])
		}
	}
	for i := 1; i < len(s.v6); i++ {
		if !s.v6[i-1].to.next().less(s.v6[i].from) {
			t.Fatalf("%s: %s: ranges %v and %v overlap or touch", w.name, name, s.v6[i-1], s.v6[i])
		}
	}
	if !slices.IsSortedFunc(s.v6, func(x, y range6) int { return x.from.compare(y.from) }) {
		t.Fatalf("%s: %s: IPv6 ranges out of order", w.name, name)
	}
}
