package config

// Address ranges as 128-bit integers: sorting and merging netip.Addr
// values costs a comparison of 24-byte structs with zones; two uint64
// words compare in a few instructions, so a 100k-line set file sorts
// and merges in a few milliseconds.

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
)

// u128 is an address as a big-endian integer: IPv4 in the low 32 bits.
type u128 struct{ hi, lo uint64 }

func (a u128) cmp(b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

// next returns a+1 and whether it did not wrap.
func (a u128) next() (u128, bool) {
	a.lo++
	if a.lo == 0 {
		a.hi++
		return a, a.hi != 0
	}
	return a, true
}

func toU128(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func fromU128(a u128, v6 bool) netip.Addr {
	if !v6 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(a.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], a.hi)
	binary.BigEndian.PutUint64(b[8:], a.lo)
	return netip.AddrFrom16(b)
}

// hostMask returns the host bits of a prefix of length bits in an
// address of width bits (32 or 128). Go defines shifts by 64 or more as
// 0, which covers the /0 and full-length ends.
func hostMask(bits, width int) u128 {
	n := uint(width - bits) // host bits, 0..128
	if n >= 64 {
		return u128{^uint64(0) >> (128 - n), ^uint64(0)}
	}
	return u128{0, ^uint64(0) >> (64 - n)}
}

// PrefixLast returns the last address of p.
func PrefixLast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr()
	width := 128
	if a.Is4() {
		width = 32
	}
	m := hostMask(p.Bits(), width)
	v := toU128(a)
	return fromU128(u128{v.hi | m.hi, v.lo | m.lo}, width == 128)
}

// span is an inclusive range of one family.
type span struct{ from, to u128 }

// spans collects the ranges of one family, noting whether they arrive
// sorted (generated lists usually do) so that sorting can be skipped.
type spans struct {
	list     []span
	unsorted bool
}

// add appends a range; room is how many ranges may still come (at most
// the lines left), so that the list is allocated once, never regrown.
func (s *spans) add(from, to u128, room int) {
	if s.list == nil {
		s.list = make([]span, 0, room)
	}
	if n := len(s.list); n > 0 && from.cmp(s.list[n-1].from) < 0 {
		s.unsorted = true
	}
	s.list = append(s.list, span{from, to})
}

// merged sorts the ranges and joins overlapping and adjacent ones, in
// one pass after the sort, into a new slice.
func (s *spans) merged(v6 bool) []AddrRange {
	if len(s.list) == 0 {
		return nil
	}
	if s.unsorted {
		slices.SortFunc(s.list, func(a, b span) int { return a.from.cmp(b.from) })
	}
	n := 1 // count first, so the result is one exact allocation
	end := s.list[0].to
	for _, r := range s.list[1:] {
		if !joins(end, r.from) {
			n++
			end = r.to
		} else if r.to.cmp(end) > 0 {
			end = r.to
		}
	}
	out := make([]AddrRange, 0, n)
	cur := s.list[0]
	for _, r := range s.list[1:] {
		if joins(cur.to, r.from) {
			if r.to.cmp(cur.to) > 0 {
				cur.to = r.to
			}
			continue
		}
		out = append(out, AddrRange{fromU128(cur.from, v6), fromU128(cur.to, v6)})
		cur = r
	}
	return append(out, AddrRange{fromU128(cur.from, v6), fromU128(cur.to, v6)})
}

// joins reports whether a range starting at from overlaps or touches
// one ending at end (from is not before the other's start).
func joins(end, from u128) bool {
	if from.cmp(end) <= 0 {
		return true
	}
	n, ok := end.next()
	return ok && n == from
}

// mergeFamilies splits ranges by family, each sorted and merged.
func mergeFamilies(rs []AddrRange) (v4, v6 []AddrRange) {
	var s4, s6 spans
	for _, r := range rs {
		if r.From.Is4() {
			s4.add(toU128(r.From), toU128(r.To), len(rs))
		} else {
			s6.add(toU128(r.From), toU128(r.To), len(rs))
		}
	}
	return s4.merged(false), s6.merged(true)
}
