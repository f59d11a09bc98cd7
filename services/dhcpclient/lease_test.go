package dhcpclient

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/net/bpf"
)

func ack(t *testing.T, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	base := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
		dhcpv4.WithYourIP(net.ParseIP("198.51.100.10")),
		dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32))),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP("198.51.100.1"))),
		dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(10 * time.Minute)),
		dhcpv4.WithOption(dhcpv4.OptRouter(net.ParseIP("198.51.100.1"))),
		dhcpv4.WithOption(dhcpv4.OptDNS(net.ParseIP("198.51.100.53"), net.ParseIP("203.0.113.53"))),
	}
	m, err := dhcpv4.New(append(base, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFromACK(t *testing.T) {
	now := time.Unix(1700000000, 0)
	l, err := FromACK("wan", ack(t), now)
	if err != nil {
		t.Fatal(err)
	}
	if l.Address != netip.MustParsePrefix("198.51.100.10/24") || l.Router != netip.MustParseAddr("198.51.100.1") ||
		l.Server != netip.MustParseAddr("198.51.100.1") || len(l.DNS) != 2 {
		t.Fatalf("lease %+v", l)
	}
	if l.T1 != 5*time.Minute || l.T2 != 10*time.Minute*7/8 || !l.Expiry().Equal(now.Add(10*time.Minute)) {
		t.Fatalf("timers %v %v %v", l.T1, l.T2, l.Expiry())
	}
	t1, t2 := l.Timers(0)
	if !t1.Equal(now.Add(5*time.Minute)) || !t2.Equal(now.Add(l.T2)) {
		t.Fatalf("Timers(0) %v %v", t1, t2)
	}
	t1, t2 = l.Timers(3 * time.Second)
	if !t1.Equal(now.Add(3*time.Second)) || !t2.Equal(now.Add(6*time.Second)) {
		t.Fatalf("Timers(3s) %v %v", t1, t2)
	}
	rs := l.KernelRoutes(100, 5)
	if len(rs) != 1 || rs[0].String() != "0.0.0.0/0 via 198.51.100.1 dev wan table 100 metric 5" {
		t.Fatalf("routes %v", rs)
	}
	if _, err := FromACK("wan", ack(t, dhcpv4.WithYourIP(net.IPv4zero)), now); err == nil {
		t.Fatal("lease without address accepted")
	}
	if _, err := FromACK("wan", ack(t, dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(0))), now); err == nil {
		t.Fatal("lease without lease time accepted")
	}
}

// A cloud-style /32 with the router outside it is reached on-link; the
// classless static routes replace the router option (RFC 3442).
func TestKernelRoutesOnLinkAndClassless(t *testing.T) {
	now := time.Now()
	l, err := FromACK("wan", ack(t, dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.CIDRMask(32, 32))),
		dhcpv4.WithOption(dhcpv4.OptRouter(net.ParseIP("198.51.100.1")))), now)
	if err != nil {
		t.Fatal(err)
	}
	if rs := l.KernelRoutes(254, 0); len(rs) != 1 || rs[0].String() != "0.0.0.0/0 via 198.51.100.1 dev wan onlink" {
		t.Fatalf("routes %v", rs)
	}
	_, dst, _ := net.ParseCIDR("203.0.113.0/24")
	l, err = FromACK("wan", ack(t, dhcpv4.WithOption(dhcpv4.OptClasslessStaticRoute(
		&dhcpv4.Route{Dest: dst, Router: net.ParseIP("198.51.100.2")},
		&dhcpv4.Route{Dest: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}, Router: net.ParseIP("198.51.100.3")}))), now)
	if err != nil {
		t.Fatal(err)
	}
	rs := l.KernelRoutes(254, 0)
	if len(rs) != 2 || rs[0].String() != "203.0.113.0/24 via 198.51.100.2 dev wan" || rs[1].String() != "0.0.0.0/0 via 198.51.100.3 dev wan" {
		t.Fatalf("classless routes %v", rs)
	}
}

func TestSameBinding(t *testing.T) {
	now := time.Now()
	a, _ := FromACK("wan", ack(t), now)
	b, _ := FromACK("wan", ack(t), now.Add(time.Minute))
	c, _ := FromACK("wan", ack(t, dhcpv4.WithYourIP(net.ParseIP("198.51.100.11"))), now)
	if !a.SameBinding(b) || a.SameBinding(c) || a.SameBinding(nil) || !(*Lease)(nil).SameBinding(nil) {
		t.Fatal("SameBinding wrong")
	}
}

// The socket filter passes UDP to port 68 only, and no later fragment.
func TestClientPortFilter(t *testing.T) {
	vm, err := bpf.NewVM(udpToClientPort)
	if err != nil {
		t.Fatal(err)
	}
	pkt := func(proto byte, frag uint16, dport uint16) []byte {
		b := make([]byte, 28)
		b[0] = 0x45
		b[9] = proto
		binary.BigEndian.PutUint16(b[6:], frag)
		binary.BigEndian.PutUint16(b[22:], dport)
		return b
	}
	rows := []struct {
		name string
		pkt  []byte
		pass bool
	}{
		{"dhcp reply", pkt(17, 0, 68), true},
		{"dont-fragment flag", pkt(17, 0x4000, 68), true},
		{"dns", pkt(17, 0, 53), false},
		{"tcp 68", pkt(6, 0, 68), false},
		{"later fragment", pkt(17, 0x0010, 68), false},
	}
	for _, r := range rows {
		n, err := vm.Run(r.pkt)
		if err != nil {
			t.Fatal(err)
		}
		if (n > 0) != r.pass {
			t.Errorf("%s: filter returned %d", r.name, n)
		}
	}
}
