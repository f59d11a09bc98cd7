package routing

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Policy routing rules go through vishvananda/netlink: they are few, and
// rtnl is about routes.

func prefixNet(p netip.Prefix) *net.IPNet {
	if !p.IsValid() {
		return nil
	}
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func netPrefix(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}
	}
	if n.IP.To4() != nil {
		a = a.Unmap()
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a, ones)
}

func toNetlinkRule(r Rule) *netlink.Rule {
	nr := netlink.NewRule()
	nr.Family = unix.AF_INET
	if r.Family == 6 {
		nr.Family = unix.AF_INET6
	}
	nr.Priority = int(r.Priority)
	nr.Table = int(r.Table)
	nr.Src = prefixNet(r.From)
	nr.Dst = prefixNet(r.To)
	nr.IifName = r.IIF
	nr.OifName = r.OIF
	if r.HasMark {
		m := r.Mask
		nr.Mark, nr.Mask = r.Mark, &m
	}
	nr.Protocol = Protocol
	return nr
}

func fromNetlinkRule(nr netlink.Rule, af int) Rule {
	r := Rule{Family: 4, Priority: uint32(nr.Priority), Table: uint32(nr.Table), From: netPrefix(nr.Src), To: netPrefix(nr.Dst),
		IIF: nr.IifName, OIF: nr.OifName, Protocol: nr.Protocol}
	if af == unix.AF_INET6 {
		r.Family = 6
	}
	if nr.Mask != nil || nr.Mark != 0 {
		r.HasMark, r.Mark, r.Mask = true, nr.Mark, 0xffffffff
		if nr.Mask != nil {
			r.Mask = *nr.Mask
		}
	}
	// The kernel reports "from all" as 0.0.0.0/0 on some versions.
	if r.From.IsValid() && r.From.Bits() == 0 {
		r.From = netip.Prefix{}
	}
	if r.To.IsValid() && r.To.Bits() == 0 {
		r.To = netip.Prefix{}
	}
	return r
}
