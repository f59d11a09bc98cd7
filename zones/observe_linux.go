package zones

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/rtnl"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func toLink(h *netlink.Handle, nl netlink.Link, withAddrs bool) (*Link, error) {
	a := nl.Attrs()
	l := &Link{Index: a.Index, Name: a.Name, Kind: nl.Type(), MAC: a.HardwareAddr, MTU: a.MTU,
		Up: a.Flags&(1<<0) != 0, Oper: a.OperState.String(), Alias: a.Alias}
	if s := a.Statistics; s != nil {
		l.RxBytes, l.TxBytes, l.RxPkts, l.TxPkts, l.RxDrop, l.TxDrop = s.RxBytes, s.TxBytes, s.RxPackets, s.TxPackets, s.RxDropped, s.TxDropped
	}
	if !withAddrs {
		return l, nil
	}
	addrs, err := rtnl.Retry(func() ([]netlink.Addr, error) { return h.AddrList(nl, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", a.Name, err)
	}
	for _, ad := range addrs {
		if ad.Scope == unix.RT_SCOPE_LINK || ad.Scope == unix.RT_SCOPE_HOST {
			continue
		}
		ip, ok := netip.AddrFromSlice(ad.IP)
		if !ok {
			continue
		}
		ones, _ := ad.Mask.Size()
		l.Addrs = append(l.Addrs, netip.PrefixFrom(ip.Unmap(), ones))
		if ad.Flags&unix.IFA_F_PERMANENT == 0 { // finite lifetime: learned (DHCP, SLAAC)
			l.Learned = append(l.Learned, netip.PrefixFrom(ip.Unmap(), ones))
		}
	}
	return l, nil
}

func readSysctl(name string) (bool, error) {
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(string(b)) == "1", nil
}

func writeSysctl(name, value string) error {
	return os.WriteFile("/proc/sys/"+strings.ReplaceAll(name, ".", "/"), []byte(value), 0o644)
}

// observeNamespace reads one pinned namespace; owned is false when its lo
// does not carry fwd's mark.
func observeNamespace(name string) (n *Namespace, owned bool, err error) {
	h, err := ns.Open(name)
	if err != nil {
		return nil, false, err
	}
	defer h.Close()
	nh, err := rtnl.LinkHandle(h)
	if err != nil {
		return nil, false, fmt.Errorf("namespace %q: netlink: %w", name, err)
	}
	defer nh.Close()
	links, err := rtnl.Retry(nh.LinkList)
	if err != nil {
		return nil, false, fmt.Errorf("namespace %q: links: %w", name, err)
	}
	n = &Namespace{Name: name}
	for _, l := range links {
		if l.Attrs().Name == "lo" {
			owned = l.Attrs().Alias == NamespaceMark
			n.LoUp = l.Attrs().Flags&(1<<0) != 0
			continue
		}
		ll, err := toLink(nh, l, true)
		if err != nil {
			return nil, false, fmt.Errorf("namespace %q: %w", name, err)
		}
		n.Links = append(n.Links, ll)
	}
	if !owned {
		return n, false, nil
	}
	err = ns.Do(h, func() error {
		var err error
		if n.Forwarding4, err = readSysctl(SysctlForward4); err != nil {
			return err
		}
		n.Forwarding6, err = readSysctl(SysctlForward6)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("namespace %q: sysctl: %w", name, err)
	}
	return n, true, nil
}

// Observe reads the kernel state zones manages. defaultNS is the daemon's
// own (default) namespace.
func Observe(defaultNS netns.NsHandle) (*State, error) {
	st := &State{DefaultRouteLinks: map[int]bool{}, Tenants: map[string]*Namespace{}, Foreign: map[string]bool{}}
	h, err := rtnl.LinkHandle(defaultNS)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	links, err := rtnl.Retry(h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("default namespace links: %w", err)
	}
	for _, l := range links {
		ll, err := toLink(h, l, false)
		if err != nil {
			return nil, err
		}
		st.Default = append(st.Default, ll)
	}
	// The links that carry the default namespace's default route are
	// never moved (they are how the operator reaches the box).
	rc, err := rtnl.Open(defaultNS)
	if err != nil {
		return nil, fmt.Errorf("default namespace routes: %w", err)
	}
	routes, err := rc.Routes(rtnl.Filter{Table: unix.RT_TABLE_MAIN})
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("default namespace routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst.Bits() != 0 {
			continue
		}
		for _, nh := range r.NextHops {
			if nh.Ifindex > 0 {
				st.DefaultRouteLinks[nh.Ifindex] = true
			}
		}
	}
	names, err := ns.List()
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		n, owned, err := observeNamespace(name)
		if errors.Is(err, ns.ErrLeftover) {
			// An empty pin file an interrupted create left: no namespace
			// lives there, so the tenant is planned as new and
			// ns.CreateMarked replaces the file.
			continue
		}
		if err != nil {
			// An unreadable pin (stale, or someone else's) is never ours to change.
			st.Foreign[name] = true
			continue
		}
		if owned {
			st.Tenants[name] = n
		} else {
			st.Foreign[name] = true
		}
	}
	return st, nil
}
