package flows

import (
	"net/netip"
	"testing"
)

func TestFilterMatch(t *testing.T) {
	fl := Flow{Proto: "tcp", key: key{proto: 6},
		Orig: Tuple{Src: netip.MustParseAddr("192.0.2.10"), Dst: netip.MustParseAddr("203.0.113.5"), SPort: 40000, DPort: 443}}
	for _, c := range []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{Proto: "tcp"}, true},
		{Filter{Proto: "6"}, true},
		{Filter{Proto: "udp"}, false},
		{Filter{Proto: "bogus"}, false},
		{Filter{Src: netip.MustParsePrefix("192.0.2.0/24")}, true},
		{Filter{Src: netip.MustParsePrefix("198.51.100.0/24")}, false},
		{Filter{Dst: netip.MustParsePrefix("203.0.113.5/32"), DPort: 443}, true},
		{Filter{DPort: 80}, false},
		{Filter{SPort: 40000}, true},
	} {
		if got := c.f.Match(fl); got != c.want {
			t.Errorf("%+v: got %v", c.f, got)
		}
	}
}

func TestProtoNames(t *testing.T) {
	for _, n := range []string{"icmp", "tcp", "udp", "icmpv6", "sctp"} {
		p, ok := ProtoNumber(n)
		if !ok || protoName(p) != n {
			t.Errorf("%s: %d %v %s", n, p, ok, protoName(p))
		}
	}
	if tcpState(3) != "established" || tcpState(7) != "time_wait" || tcpState(99) != "99" {
		t.Error("tcp states")
	}
}
