package bgp

import (
	"net/netip"
	"testing"
)

func TestPrefixMap(t *testing.T) {
	m := newPrefixMap(0)
	in := map[netip.Prefix]uint32{
		netip.MustParsePrefix("0.0.0.0/0"):            1,
		netip.MustParsePrefix("198.18.0.0/15"):        2,
		netip.MustParsePrefix("198.18.0.0/16"):        3, // same address, other length
		netip.MustParsePrefix("203.0.113.7/32"):       4,
		netip.MustParsePrefix("::/0"):                 5,
		netip.MustParsePrefix("2001:db8::/32"):        6,
		netip.MustParsePrefix("2001:db8::/33"):        7,
		netip.MustParsePrefix("2001:db8:ffff::1/128"): 8,
	}
	for p, v := range in {
		m.set(p, v)
	}
	if m.len() != len(in) {
		t.Fatalf("len %d, want %d", m.len(), len(in))
	}
	got := map[netip.Prefix]uint32{}
	m.each(func(p netip.Prefix, v uint32) { got[p] = v })
	for p, v := range in {
		if g, ok := m.get(p); !ok || g != v {
			t.Errorf("get %s = %d, %v; want %d", p, g, ok, v)
		}
		if got[p] != v {
			t.Errorf("each: %s = %d, want %d", p, got[p], v)
		}
	}
	m.del(netip.MustParsePrefix("198.18.0.0/16"))
	m.del(netip.MustParsePrefix("2001:db8::/33"))
	if _, ok := m.get(netip.MustParsePrefix("198.18.0.0/16")); ok {
		t.Error("deleted v4 entry still there")
	}
	if v, ok := m.get(netip.MustParsePrefix("198.18.0.0/15")); !ok || v != 2 {
		t.Error("delete took the wrong v4 entry")
	}
	if _, ok := m.get(netip.MustParsePrefix("2001:db8::/33")); ok || m.len() != len(in)-2 {
		t.Error("v6 delete")
	}
}

func TestMemoryBudget(t *testing.T) {
	for _, tc := range []struct {
		limits []uint64
		want   int64
	}{
		{nil, 0},
		{[]uint64{1000000, 0}, 0}, // a neighbour without a limit: no budget
		{[]uint64{1000000}, 192<<20 + 1000000*1024},
		{[]uint64{1000000, 1000000}, 192<<20 + 1000000*1024 + 1000000*512},
	} {
		if got := memoryBudget(tc.limits); got != tc.want {
			t.Errorf("memoryBudget(%v) = %d, want %d", tc.limits, got, tc.want)
		}
	}
}
