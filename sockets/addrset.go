package sockets

import (
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
	"slices"
)

// addrSet is a set of addresses for lookups on the hot path of
// [Policy.Check]: the set's ranges, sorted, disjoint and not touching, one
// slice per family, searched by a plain binary search over integers. It
// does not allocate, and costs a few nanoseconds per step, where a search
// comparing netip.Addr values costs several times that, enough to put Check
// over its budget of 100 ns. A nil *addrSet is empty. An addrSet is
// immutable: union and minus return new sets.
//
// The sets are small (Google's ranges are a few hundred prefixes, a deny
// list a handful) and built once, so building favours plain code over
// speed: sort, merge, sweep.
type addrSet struct {
	v4 []range4
	v6 []range6
}

type range4 struct{ from, to uint32 }

// u128 is an IPv6 address as an integer.
type u128 struct{ hi, lo uint64 }

// maxU128 is the last IPv6 address, ffff:...:ffff.
var maxU128 = u128{math.MaxUint64, math.MaxUint64}

func (x u128) less(y u128) bool { return x.hi < y.hi || x.hi == y.hi && x.lo < y.lo }

func (x u128) compare(y u128) int {
	switch {
	case x.less(y):
		return -1
	case y.less(x):
		return 1
	}
	return 0
}

// next returns x+1, wrapping at the top.
func (x u128) next() u128 {
	if x.lo == math.MaxUint64 {
		return u128{x.hi + 1, 0}
	}
	return u128{x.hi, x.lo + 1}
}

// prev returns x-1, wrapping at zero.
func (x u128) prev() u128 {
	if x.lo == 0 {
		return u128{x.hi - 1, math.MaxUint64}
	}
	return u128{x.hi, x.lo - 1}
}

// lowMask returns the integer whose n low bits are set, 0 <= n <= 128.
func lowMask(n int) u128 {
	switch {
	case n >= 128:
		return maxU128
	case n > 64:
		return u128{1<<(n-64) - 1, math.MaxUint64}
	case n == 64:
		return u128{0, math.MaxUint64}
	}
	return u128{0, 1<<n - 1}
}

// trailingZeros returns the number of trailing zero bits of x, 128 for 0.
func (x u128) trailingZeros() int {
	if x.lo != 0 {
		return bits.TrailingZeros64(x.lo)
	}
	return 64 + bits.TrailingZeros64(x.hi)
}

type range6 struct{ from, to u128 }

func uint32of(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func uint128of(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// addrOf returns the address x stands for: IPv4 (x in the low 32 bits)
// when is4.
func addrOf(x u128, is4 bool) netip.Addr {
	if is4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(x.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], x.hi)
	binary.BigEndian.PutUint64(b[8:], x.lo)
	return netip.AddrFrom16(b)
}

// prefixSpan returns the first and last addresses of p, a valid prefix, as
// integers (an IPv4 address in the low 32 bits of a u128), and whether p is
// an IPv4 prefix. An IPv4-mapped prefix is an IPv6 prefix here.
func prefixSpan(p netip.Prefix) (r range6, is4 bool) {
	a := p.Masked().Addr()
	if a.Is4() {
		x := u128{0, uint64(uint32of(a))}
		return range6{x, u128{0, x.lo | lowMask(32-p.Bits()).lo}}, true
	}
	x := uint128of(a)
	m := lowMask(128 - p.Bits())
	return range6{x, u128{x.hi | m.hi, x.lo | m.lo}}, false
}

// newAddrSet returns the set of the addresses in the prefixes. Invalid
// prefixes are skipped; an IPv4-mapped prefix is an IPv6 prefix.
func newAddrSet(prefixes []netip.Prefix) *addrSet {
	var v4, v6 []range6
	for _, p := range prefixes {
		if !p.IsValid() {
			continue
		}
		if r, is4 := prefixSpan(p); is4 {
			v4 = append(v4, r)
		} else {
			v6 = append(v6, r)
		}
	}
	return fromSpans(v4, v6)
}

// fromSpans returns the set of the ranges v4 (IPv4 addresses in the low 32
// bits) and v6, in any order, overlapping or not. It reorders them.
func fromSpans(v4, v6 []range6) *addrSet {
	s := &addrSet{v6: normalize(v6)}
	for _, r := range normalize(v4) {
		s.v4 = append(s.v4, range4{uint32(r.from.lo), uint32(r.to.lo)})
	}
	return s
}

// spans4 returns s's IPv4 ranges as u128 ranges, for building.
func (s *addrSet) spans4() []range6 {
	if s == nil {
		return nil
	}
	out := make([]range6, len(s.v4))
	for i, r := range s.v4 {
		out[i] = range6{u128{0, uint64(r.from)}, u128{0, uint64(r.to)}}
	}
	return out
}

func (s *addrSet) spans6() []range6 {
	if s == nil {
		return nil
	}
	return slices.Clone(s.v6)
}

// union returns the addresses in s or in t; either may be nil.
func (s *addrSet) union(t *addrSet) *addrSet {
	return fromSpans(append(s.spans4(), t.spans4()...), append(s.spans6(), t.spans6()...))
}

// minus returns the addresses in s that are not in t; either may be nil.
func (s *addrSet) minus(t *addrSet) *addrSet {
	return fromSpans(subtract(s.spans4(), t.spans4()), subtract(s.spans6(), t.spans6()))
}

// normalize sorts r and merges the ranges that overlap or touch, so that
// the result is sorted, disjoint and not touching: one range for each run
// of addresses. It reuses r's array.
func normalize(r []range6) []range6 {
	slices.SortFunc(r, func(x, y range6) int { return x.from.compare(y.from) })
	out := r[:0]
	for _, x := range r {
		if n := len(out); n > 0 {
			last := &out[n-1]
			// x starts at or before the address after last: they merge.
			// (last.to at the top would wrap: everything after it merges.)
			if !last.to.less(x.from) || last.to.next() == x.from {
				if last.to.less(x.to) {
					last.to = x.to
				}
				continue
			}
		}
		out = append(out, x)
	}
	return out
}

// subtract returns the ranges of a without the addresses of b; both are
// normalized, and so is the result.
func subtract(a, b []range6) []range6 {
	var out []range6
	j := 0
	for _, r := range a {
		from := r.from
		// Skip the ranges of b that end before r; they end before every
		// later range of a too.
		for j < len(b) && b[j].to.less(from) {
			j++
		}
		whole := true // [from, r.to] is still to be kept
		for k := j; k < len(b) && !r.to.less(b[k].from); k++ {
			// b[k] overlaps [from, r.to].
			if from.less(b[k].from) {
				out = append(out, range6{from, b[k].from.prev()})
			}
			if !b[k].to.less(r.to) {
				whole = false // b[k] takes the rest of r
				break
			}
			from = b[k].to.next()
		}
		if whole {
			out = append(out, range6{from, r.to})
		}
	}
	return out
}

// prefixes returns the fewest prefixes that cover s exactly, in address
// order (IPv4 first): each range cut into the largest aligned blocks,
// from its first address on.
func (s *addrSet) prefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, r := range s.spans4() {
		out = appendPrefixes(out, r, true)
	}
	for _, r := range s.spans6() {
		out = appendPrefixes(out, r, false)
	}
	return out
}

// appendPrefixes appends to out the fewest prefixes that cover r exactly,
// in address order; an IPv4 range when is4.
func appendPrefixes(out []netip.Prefix, r range6, is4 bool) []netip.Prefix {
	width := 128
	if is4 {
		width = 32
	}
	from := r.from
	for {
		// The largest block that starts at from (aligned to its size)
		// and ends at or before r.to.
		k := min(from.trailingZeros(), width)
		var last u128
		for ; ; k-- {
			m := lowMask(k)
			last = u128{from.hi | m.hi, from.lo | m.lo}
			if !r.to.less(last) {
				break
			}
		}
		out = append(out, netip.PrefixFrom(addrOf(from, is4), width-k))
		if last == r.to {
			return out
		}
		from = last.next()
	}
}

// contains reports whether a is in s. A zoned address is in no set.
func (s *addrSet) contains(a netip.Addr) bool {
	if s == nil || a.Zone() != "" {
		return false
	}
	if a.Is4() {
		return search4(s.v4, uint32of(a)) >= 0
	}
	if a.Is6() {
		return search6(s.v6, uint128of(a)) >= 0
	}
	return false
}

// search4 returns the index of the range of r (sorted, disjoint) that
// holds x, or -1.
func search4(r []range4, x uint32) int {
	// Find the first range that ends at or after x.
	lo, hi := 0, len(r)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r[m].to < x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(r) && r[lo].from <= x {
		return lo
	}
	return -1
}

// search6 is search4 for IPv6.
func search6(r []range6, x u128) int {
	lo, hi := 0, len(r)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r[m].to.less(x) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(r) && !x.less(r[lo].from) {
		return lo
	}
	return -1
}
