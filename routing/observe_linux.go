package routing

import (
	"fmt"
	"net/netip"

	"github.com/fwdproject/fwd/internal/rtnl"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Observe reads what Plan needs from namespace h: interface indexes,
// fwd's routes in every table (filtered by protocol in the kernel), the
// other owners' routes in the tables desired uses (a table full of BGP
// routes is not read unless static routes go there too), and fwd's rules.
// An unopened h (the namespace does not exist yet) reads nothing and
// returns a Fresh state.
func Observe(h netns.NsHandle, desired Desired) (State, error) {
	if !h.IsOpen() {
		return State{Fresh: true}, nil
	}
	s := State{Links: map[string]int{}, Foreign: map[Key]Route{}}
	nh, err := rtnl.LinkHandle(h)
	if err != nil {
		return s, fmt.Errorf("netlink handle: %w", err)
	}
	defer nh.Close()
	links, err := rtnl.Retry(nh.LinkList)
	if err != nil {
		return s, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		s.Links[l.Attrs().Name] = l.Attrs().Index
	}
	c, err := rtnl.Open(h)
	if err != nil {
		return s, err
	}
	defer c.Close()
	if s.Owned, err = c.Routes(rtnl.Filter{Protocol: Protocol}); err != nil {
		return s, err
	}
	tables := map[uint32]bool{}
	for _, r := range desired.Routes {
		tables[r.Table] = true
	}
	for tb := range tables {
		all, err := c.Routes(rtnl.Filter{Table: tb})
		if err != nil {
			return s, err
		}
		for _, r := range all {
			if r.Protocol != Protocol {
				s.Foreign[r.Key()] = r
			}
		}
	}
	for _, name := range desired.IfaceAddrs() {
		link, err := nh.LinkByName(name)
		if err != nil {
			continue // not there yet: its rules are skipped
		}
		list, err := rtnl.Retry(func() ([]netlink.Addr, error) { return nh.AddrList(link, netlink.FAMILY_ALL) })
		if err != nil {
			return s, fmt.Errorf("list addresses of %s: %w", name, err)
		}
		if s.Addrs == nil {
			s.Addrs = map[string][]netip.Addr{}
		}
		for _, a := range list {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap().IsGlobalUnicast() {
				s.Addrs[name] = append(s.Addrs[name], ip.Unmap())
			}
		}
	}
	for _, af := range []int{unix.AF_INET, unix.AF_INET6} {
		list, err := rtnl.Retry(func() ([]netlink.Rule, error) { return nh.RuleList(af) })
		if err != nil {
			return s, fmt.Errorf("list rules: %w", err)
		}
		for _, r := range list {
			if r.Protocol == Protocol {
				s.Rules = append(s.Rules, fromNetlinkRule(r, af))
			}
		}
	}
	return s, nil
}
