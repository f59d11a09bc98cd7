package lab

import (
	"net/netip"
	"testing"
)

// The IPv4 set is every prefix of 198.18.0.0/15, distinct, in the block.
func TestPrefixSets(t *testing.T) {
	blk := netip.MustParsePrefix("198.18.0.0/15")
	seen := map[netip.Prefix]bool{}
	for i := 0; i < MaxPrefixes(4); i++ {
		p := Prefix(4, i)
		if !blk.Contains(p.Addr()) || p.Bits() < 15 || p != p.Masked() || seen[p] {
			t.Fatalf("prefix %d: %s", i, p)
		}
		seen[p] = true
	}
	if p := Prefix(6, 0x1234); p.String() != "2001:db8:12:3400::/56" || !p.Contains(ProbeAddr(6, 0x1234)) {
		t.Fatalf("IPv6 prefix %s", p)
	}
}
