package bgp

import (
	"encoding/binary"
	"net/netip"
)

// prefixMap maps prefixes to a uint32 with about half the memory of a
// map[netip.Prefix]T: netip.Prefix is 32 bytes (an Addr with its zone
// pointer, plus the length), while an IPv4 prefix fits in a uint64 and
// an IPv6 one in 17 bytes. For a full table that is tens of MiB per
// million routes (see docs/bgp.md, Performance).
type prefixMap struct {
	v4 map[uint64]uint32
	v6 map[v6Key]uint32
}

type v6Key struct {
	hi, lo uint64
	bits   uint8
}

func newPrefixMap(hint int) prefixMap {
	return prefixMap{v4: make(map[uint64]uint32, hint), v6: make(map[v6Key]uint32, hint)}
}

func v4Key(p netip.Prefix) uint64 {
	a := p.Addr().As4()
	return uint64(binary.BigEndian.Uint32(a[:]))<<8 | uint64(p.Bits())
}

func keyV6(p netip.Prefix) v6Key {
	a := p.Addr().As16()
	return v6Key{binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:]), uint8(p.Bits())}
}

func (m prefixMap) get(p netip.Prefix) (uint32, bool) {
	if p.Addr().Is4() {
		v, ok := m.v4[v4Key(p)]
		return v, ok
	}
	v, ok := m.v6[keyV6(p)]
	return v, ok
}

func (m prefixMap) set(p netip.Prefix, v uint32) {
	if p.Addr().Is4() {
		m.v4[v4Key(p)] = v
		return
	}
	m.v6[keyV6(p)] = v
}

func (m prefixMap) del(p netip.Prefix) {
	if p.Addr().Is4() {
		delete(m.v4, v4Key(p))
		return
	}
	delete(m.v6, keyV6(p))
}

func (m prefixMap) len() int { return len(m.v4) + len(m.v6) }

// each calls fn for every entry; fn may delete or update the entry it is
// given (as with a Go map range).
func (m prefixMap) each(fn func(p netip.Prefix, v uint32)) {
	for k, v := range m.v4 {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], uint32(k>>8))
		fn(netip.PrefixFrom(netip.AddrFrom4(a), int(k&0xff)), v)
	}
	for k, v := range m.v6 {
		var a [16]byte
		binary.BigEndian.PutUint64(a[:8], k.hi)
		binary.BigEndian.PutUint64(a[8:], k.lo)
		fn(netip.PrefixFrom(netip.AddrFrom16(a), int(k.bits)), v)
	}
}
