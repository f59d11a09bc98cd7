package dhcpclient

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"time"

	"github.com/fwdproject/fwd/internal/rtnl"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Kernel is where a client applies its leases: the Applier in
// production, a fake in tests.
type Kernel interface {
	// Learned returns the address an earlier client left on the
	// interface (a finite-lifetime IPv4 address; for v6 a
	// finite-lifetime /128, SLAAC's being /64), to ask for it again.
	Learned(ifname string, v6 bool) (netip.Prefix, bool, error)
	// Apply replaces old's kernel state with cur's; cur nil removes old.
	Apply(ifname string, old, cur *Lease) error
}

// Applier installs leases in one namespace: the address through a
// netlink handle bound to the namespace, the routes through internal/rtnl
// under Protocol into Table with Metric.
type Applier struct {
	h      netns.NsHandle
	Table  uint32 // 0: main
	Metric uint32
	// Delegate numbers interfaces from a lease's delegated prefix
	// (DHCPv6 IA_PD): each gets the ::1 address of its /64.
	Delegate []Delegation
	now      func() time.Time
}

// Delegation is one interface numbered from the delegated prefix: the
// Subnet-th /64.
type Delegation struct {
	Interface string
	Subnet    uint64
}

// NewApplier returns an applier for namespace h. The caller keeps h open
// while the applier is used.
func NewApplier(h netns.NsHandle, table, metric uint32) *Applier {
	if table == 0 {
		table = unix.RT_TABLE_MAIN
	}
	return &Applier{h: h, Table: table, Metric: metric, now: time.Now}
}

// Learned implements Kernel.
func (a *Applier) Learned(ifname string, v6 bool) (netip.Prefix, bool, error) {
	nh, err := netlink.NewHandleAt(a.h)
	if err != nil {
		return netip.Prefix{}, false, err
	}
	defer nh.Close()
	link, err := nh.LinkByName(ifname)
	if err != nil {
		return netip.Prefix{}, false, err
	}
	family := netlink.FAMILY_V4
	if v6 {
		family = netlink.FAMILY_V6
	}
	list, err := rtnl.Retry(func() ([]netlink.Addr, error) { return nh.AddrList(link, family) })
	if err != nil {
		return netip.Prefix{}, false, err
	}
	for _, ad := range list {
		if p := prefixOf(ad.IPNet); IsLearned(ad) && (!v6 || p.Bits() == 128) {
			return p, true, nil
		}
	}
	return netip.Prefix{}, false, nil
}

// IsLearned reports whether a kernel address was learned from the network
// (DHCP, SLAAC) rather than configured: it has a finite lifetime. Zones
// uses it to leave such addresses alone.
func IsLearned(a netlink.Addr) bool {
	return a.Flags&unix.IFA_F_PERMANENT == 0 && a.ValidLft > 0 && a.ValidLft != math.MaxUint32
}

// Apply implements Kernel. Order keeps traffic flowing: the new address
// first, then the routes replaced in place, then what the old lease had
// and the new one has not.
func (a *Applier) Apply(ifname string, old, cur *Lease) error {
	nh, err := netlink.NewHandleAt(a.h)
	if err != nil {
		return err
	}
	defer nh.Close()
	link, err := nh.LinkByName(ifname)
	if err != nil {
		// The WAN is gone (and its address with it), but the LAN
		// addresses numbered from a delegation it held are not.
		var errs []error
		if cur == nil {
			for _, d := range a.Delegate {
				errs = append(errs, a.delegate(nh, d, old, nil))
			}
		}
		return errors.Join(append(errs, err)...)
	}
	c, err := rtnl.Open(a.h)
	if err != nil {
		return err
	}
	defer c.Close()
	idx := link.Attrs().Index
	var errs []error
	var want []rtnl.Route
	// A new IPv4 address in the old one's subnet would be its secondary,
	// and deleting the primary deletes its secondaries: the old address
	// goes first there. Otherwise (IPv6 /128s, another subnet) the new
	// one is added first, so traffic keeps a source.
	delFirst := old != nil && cur != nil && old.Address != cur.Address && !old.V6() &&
		old.Address.Masked() == cur.Address.Masked()
	if delFirst {
		errs = append(errs, a.delOld(nh, link, ifname, old, cur))
	}
	if cur != nil {
		left := cur.Remaining(a.now())
		if left <= 0 {
			return errors.New("lease expired before it was applied")
		}
		secs := int(min(left/time.Second, math.MaxInt32))
		pref := int(min(cur.PreferredLeft(a.now())/time.Second, math.MaxInt32))
		ad := &netlink.Addr{IPNet: ipnet(cur.Address), ValidLft: secs, PreferedLft: pref}
		if err := nh.AddrReplace(link, ad); err != nil {
			return fmt.Errorf("address %s on %s: %w", cur.Address, ifname, err)
		}
		want = withIndex(cur.KernelRoutes(a.Table, a.Metric), idx)
		if err := write(c, rtnl.Replace, want); err != nil {
			errs = append(errs, err)
		}
	}
	if old != nil {
		keep := map[rtnl.Key]bool{}
		for _, r := range want {
			keep[r.Key()] = true
		}
		var gone []rtnl.Route
		for _, r := range withIndex(old.KernelRoutes(a.Table, a.Metric), idx) {
			if !keep[r.Key()] {
				gone = append(gone, r)
			}
		}
		if err := write(c, rtnl.Delete, gone); err != nil {
			errs = append(errs, err)
		}
		if !delFirst {
			errs = append(errs, a.delOld(nh, link, ifname, old, cur))
		}
	}
	for _, d := range a.Delegate {
		errs = append(errs, a.delegate(nh, d, old, cur))
	}
	return errors.Join(errs...)
}

// DelegatedAddr is the address fwd gives interface d from prefix p: ::1
// of its /64. ok is false when p holds no such /64: the server decides
// the length, and may delegate less than dhcp6_pd asked for.
func DelegatedAddr(p netip.Prefix, subnet uint64) (netip.Prefix, bool) {
	if p.Bits() > 64 || subnet >= uint64(1)<<(64-p.Bits()) {
		return netip.Prefix{}, false
	}
	n := SubnetOf(p, subnet)
	return netip.PrefixFrom(n.Addr().Next(), 64), true
}

// Undelegate removes the addresses l's delegation gave the interfaces
// of ds (their delegation went from the configuration).
func (a *Applier) Undelegate(l *Lease, ds []Delegation) error {
	if l == nil || !l.Delegated.IsValid() || len(ds) == 0 {
		return nil
	}
	nh, err := netlink.NewHandleAt(a.h)
	if err != nil {
		return err
	}
	defer nh.Close()
	var errs []error
	for _, d := range ds {
		errs = append(errs, a.delegate(nh, d, l, nil))
	}
	return errors.Join(errs...)
}

// delegate puts cur's address for d on d's interface (with the
// delegation's lifetimes) and removes old's when it changed.
func (a *Applier) delegate(nh *netlink.Handle, d Delegation, old, cur *Lease) error {
	var want, had netip.Prefix
	var short error
	if cur != nil && cur.Delegated.IsValid() {
		var ok bool
		if want, ok = DelegatedAddr(cur.Delegated, d.Subnet); !ok {
			short = fmt.Errorf("delegated prefix %s has no /64 number %d for %s: %s left unnumbered", cur.Delegated, d.Subnet, d.Interface, d.Interface)
		}
	}
	if old != nil && old.Delegated.IsValid() {
		had, _ = DelegatedAddr(old.Delegated, d.Subnet)
	}
	if !want.IsValid() && !had.IsValid() {
		return short
	}
	link, err := nh.LinkByName(d.Interface)
	if err != nil {
		return fmt.Errorf("delegated prefix on %s: %w", d.Interface, err)
	}
	if want.IsValid() {
		now := a.now()
		valid := max(cur.Obtained.Add(cur.DelegatedValid).Sub(now), 0)
		pref := max(cur.Obtained.Add(cur.DelegatedPreferred).Sub(now), 0)
		ad := &netlink.Addr{IPNet: ipnet(want), ValidLft: int(min(valid/time.Second, math.MaxInt32)),
			PreferedLft: int(min(pref/time.Second, math.MaxInt32))}
		if ad.ValidLft <= 0 {
			want = netip.Prefix{}
		} else if err := nh.AddrReplace(link, ad); err != nil {
			return fmt.Errorf("address %s on %s: %w", want, d.Interface, err)
		}
	}
	if had.IsValid() && had != want && a.stillLearned(nh, link, had) {
		if err := nh.AddrDel(link, &netlink.Addr{IPNet: ipnet(had)}); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("delete address %s on %s: %w", had, d.Interface, err)
		}
	}
	return short
}

// delOld removes old's address when cur does not hold it too, and only
// while it is still learned: an address the configuration now lists
// (zones made it permanent) is not the lease's any more.
func (a *Applier) delOld(nh *netlink.Handle, link netlink.Link, ifname string, old, cur *Lease) error {
	if cur != nil && cur.Address == old.Address || !a.stillLearned(nh, link, old.Address) {
		return nil
	}
	err := nh.AddrDel(link, &netlink.Addr{IPNet: ipnet(old.Address)})
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete address %s on %s: %w", old.Address, ifname, err)
	}
	return nil
}

// stillLearned reports whether p is on link with a finite lifetime (true
// too when the dump fails: the delete is then tried, as before).
func (a *Applier) stillLearned(nh *netlink.Handle, link netlink.Link, p netip.Prefix) bool {
	family := netlink.FAMILY_V4
	if p.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	list, err := rtnl.Retry(func() ([]netlink.Addr, error) { return nh.AddrList(link, family) })
	if err != nil {
		return true
	}
	for _, ad := range list {
		if prefixOf(ad.IPNet) == p {
			return IsLearned(ad)
		}
	}
	return false
}

func withIndex(rs []rtnl.Route, idx int) []rtnl.Route {
	for i := range rs {
		for j := range rs[i].NextHops {
			rs[i].NextHops[j].Ifindex = idx
		}
	}
	return rs
}

// write sends routes of one kind; deleting a route already gone is fine.
func write(c *rtnl.Conn, k rtnl.Kind, rs []rtnl.Route) error {
	if len(rs) == 0 {
		return nil
	}
	res, err := c.WriteRoutes(Protocol, rtnl.AckEach, len(rs), func(i int) (rtnl.Kind, *rtnl.Route) { return k, &rs[i] })
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range res.Failed {
		if k == rtnl.Delete && errors.Is(f.Err, rtnl.ErrNotFound) {
			continue
		}
		errs = append(errs, fmt.Errorf("%s route %s: %w", k, rs[f.Index].String(), f.Err))
	}
	return errors.Join(errs...)
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func prefixOf(n *net.IPNet) netip.Prefix {
	a, _ := netip.AddrFromSlice(n.IP)
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones)
}
