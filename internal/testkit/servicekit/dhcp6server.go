package servicekit

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/server6"
	"github.com/insomniacslk/dhcp/iana"
)

// PDServer is a minimal DHCPv6 server for the tests of prefix delegation
// (dnsmasq cannot delegate prefixes): it hands each client one address
// (IA_NA) and one prefix (IA_PD) and answers SOLICIT, REQUEST, RENEW,
// REBIND and RELEASE. Prefix can be changed while it runs (the next
// renewal gets the new one, the old one with lifetime 0).
type PDServer struct {
	srv  *server6.Server
	duid dhcpv6.DUID

	mu      sync.Mutex
	addr    netip.Addr
	prefix  netip.Prefix
	old     netip.Prefix // withdrawn: sent with lifetime 0 once
	lease   time.Duration
	t1      time.Duration
	Replies int // REPLYs sent, for the tests
}

// ServePD starts a PDServer on ifname of namespace host (socket created
// there, joined to ff02::1:2), with the lifetimes lease and the renewal
// time t1 (T2 is twice it). It is stopped at the end of the test.
func ServePD(t testing.TB, host, ifname string, addr netip.Addr, prefix netip.Prefix, lease, t1 time.Duration) *PDServer {
	t.Helper()
	s := &PDServer{addr: addr, prefix: prefix, lease: lease, t1: t1,
		duid: &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{0x02, 0, 0, 0, 0x6d, 0x01}}}
	h, err := ns.Open(host)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	err = ns.Do(h, func() error {
		var err error
		s.srv, err = server6.NewServer(ifname, nil, s.handle)
		return err
	})
	if err != nil {
		t.Fatalf("dhcpv6 server in %s: %v", host, err)
	}
	go func() { _ = s.srv.Serve() }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

// SetPrefix makes the server delegate p from now on.
func (s *PDServer) SetPrefix(p netip.Prefix) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.old, s.prefix = s.prefix, p
}

func (s *PDServer) handle(conn net.PacketConn, peer net.Addr, m dhcpv6.DHCPv6) {
	msg, err := m.GetInnerMessage()
	if err != nil {
		return
	}
	var reply *dhcpv6.Message
	switch msg.MessageType {
	case dhcpv6.MessageTypeSolicit:
		reply, err = dhcpv6.NewAdvertiseFromSolicit(msg)
	case dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRebind, dhcpv6.MessageTypeRelease:
		reply, err = dhcpv6.NewReplyFromMessage(msg)
	default:
		return
	}
	if err != nil {
		return
	}
	reply.AddOption(dhcpv6.OptServerID(s.duid))
	s.mu.Lock()
	defer s.mu.Unlock()
	if msg.MessageType != dhcpv6.MessageTypeRelease {
		life := func(on bool) time.Duration {
			if on {
				return s.lease
			}
			return 0
		}
		if ia := msg.Options.OneIANA(); ia != nil {
			o := &dhcpv6.OptIANA{IaId: ia.IaId, T1: s.t1, T2: 2 * s.t1}
			o.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: s.addr.AsSlice(), PreferredLifetime: s.lease, ValidLifetime: s.lease})
			reply.AddOption(o)
		}
		if pd := msg.Options.OneIAPD(); pd != nil {
			o := &dhcpv6.OptIAPD{IaId: pd.IaId, T1: s.t1, T2: 2 * s.t1}
			for _, p := range []netip.Prefix{s.prefix, s.old} {
				if p.IsValid() {
					o.Options.Add(&dhcpv6.OptIAPrefix{PreferredLifetime: life(p == s.prefix), ValidLifetime: life(p == s.prefix),
						Prefix: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 128)}})
				}
			}
			reply.AddOption(o)
		}
	}
	if msg.MessageType != dhcpv6.MessageTypeSolicit {
		s.Replies++
	}
	_, _ = conn.WriteTo(reply.ToBytes(), peer)
}
