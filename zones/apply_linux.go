package zones

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/rtnl"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// executor runs plan steps, keeping one netlink handle per namespace
// and, for link moves, one rtnl connection per namespace moved from.
type executor struct {
	defaultNS netns.NsHandle
	def       *netlink.Handle
	nsh       map[string]netns.NsHandle
	nlh       map[string]*netlink.Handle
	rt        map[string]*rtnl.Conn // "" is the default namespace
}

func newExecutor(defaultNS netns.NsHandle) (*executor, error) {
	h, err := netlink.NewHandleAt(defaultNS)
	if err != nil {
		return nil, err
	}
	return &executor{defaultNS: defaultNS, def: h, nsh: map[string]netns.NsHandle{}, nlh: map[string]*netlink.Handle{},
		rt: map[string]*rtnl.Conn{}}, nil
}

func (e *executor) close() {
	e.def.Close()
	for _, c := range e.rt {
		c.Close()
	}
	for _, h := range e.nlh {
		h.Close()
	}
	for _, h := range e.nsh {
		h.Close()
	}
}

// moveLink moves a link from namespace from (the tenant's, or "" for the
// default one) in one RTM_SETLINK (rtnl.Conn.MoveLink): renamed, marked
// with alias and given its MTU as it arrives, so it clashes with no name
// and is never in the target unmarked.
func (e *executor) moveLink(from string, fromNS netns.NsHandle, m rtnl.LinkMove) error {
	c, ok := e.rt[from]
	if !ok {
		var err error
		if c, err = rtnl.Open(fromNS); err != nil {
			return err
		}
		e.rt[from] = c
	}
	return c.MoveLink(m)
}

func (e *executor) ns(tenant string) (netns.NsHandle, *netlink.Handle, error) {
	if h, ok := e.nlh[tenant]; ok {
		return e.nsh[tenant], h, nil
	}
	nsh, err := ns.Open(tenant)
	if err != nil {
		return netns.None(), nil, err
	}
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		nsh.Close()
		return netns.None(), nil, err
	}
	e.nsh[tenant], e.nlh[tenant] = nsh, h
	return nsh, h, nil
}

func (e *executor) forget(tenant string) {
	if c, ok := e.rt[tenant]; ok {
		c.Close()
		delete(e.rt, tenant)
	}
	if h, ok := e.nlh[tenant]; ok {
		h.Close()
		nsh := e.nsh[tenant]
		nsh.Close()
		delete(e.nlh, tenant)
		delete(e.nsh, tenant)
	}
}

func ipnet(s Step) *net.IPNet {
	return &net.IPNet{IP: s.Addr.Addr().AsSlice(), Mask: net.CIDRMask(s.Addr.Bits(), s.Addr.Addr().BitLen())}
}

func (e *executor) run(s Step) error {
	switch s.Op {
	case OpCreateNamespace:
		// The namespace appears under its name only once its lo carries
		// fwd's mark: a kill at any moment leaves either nothing fwd
		// cannot recognise or a marked namespace to adopt.
		h, err := ns.CreateMarked(s.Tenant, markNamespace)
		if err != nil {
			return err
		}
		h.Close()
		return nil
	case OpDeleteNamespace:
		e.forget(s.Tenant)
		return ns.Delete(s.Tenant)
	case OpSetSysctl:
		h, _, err := e.ns(s.Tenant)
		if err != nil {
			return err
		}
		return ns.Do(h, func() error { return writeSysctl(s.Sysctl, s.Value) })
	case OpMoveLink:
		l, err := e.def.LinkByName(s.Device)
		if err != nil {
			return fmt.Errorf("find %s: %w", s.Device, err)
		}
		if err := e.def.LinkSetDown(l); err != nil {
			return err
		}
		target, _, err := e.ns(s.Tenant)
		if err != nil {
			return err
		}
		return e.moveLink("", e.defaultNS, rtnl.LinkMove{Index: l.Attrs().Index, Target: target, Name: s.Link, Alias: s.Mark.String(), MTU: s.MTU})
	case OpReturnLink:
		src, nh, err := e.ns(s.Tenant)
		if err != nil {
			return err
		}
		l, err := nh.LinkByName(s.Link)
		if err != nil {
			return fmt.Errorf("find %s: %w", s.Link, err)
		}
		if err := nh.LinkSetDown(l); err != nil {
			return err
		}
		// A NIC goes back as it came: its addresses are flushed by the
		// move, its alias cleared, its name, MTU and admin state restored.
		if err := e.moveLink(s.Tenant, src, rtnl.LinkMove{Index: l.Attrs().Index, Target: e.defaultNS, Name: s.Device, MTU: s.MTU}); err != nil {
			return err
		}
		if !s.Up {
			return nil
		}
		back, err := e.def.LinkByName(s.Device)
		if err != nil {
			return fmt.Errorf("find %s after hand-back: %w", s.Device, err)
		}
		return e.def.LinkSetUp(back)
	case OpDeleteLink:
		_, nh, err := e.ns(s.Tenant)
		if err != nil {
			return err
		}
		l, err := nh.LinkByName(s.Link)
		if err != nil {
			var nf netlink.LinkNotFoundError
			if errors.As(err, &nf) {
				return nil // the other end of a veth took it along
			}
			return err
		}
		return nh.LinkDel(l)
	case OpCreateVeth:
		_, nh, err := e.ns(s.Tenant)
		if err != nil {
			return err
		}
		peerNS, peerH, err := e.ns(s.PeerTenant)
		if err != nil {
			return err
		}
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: s.Link}, PeerName: s.PeerName, PeerNamespace: netlink.NsFd(int(peerNS))}
		if err := nh.LinkAdd(v); err != nil {
			return fmt.Errorf("create veth: %w", err)
		}
		if err := setAlias(nh, s.Link, s.Mark.String()); err != nil {
			return err
		}
		return setAlias(peerH, s.PeerName, s.PeerMark.String())
	case OpCreateMacvlan, OpCreateVLAN:
		parent, err := e.def.LinkByName(s.Device)
		if err != nil {
			return fmt.Errorf("find parent %s: %w", s.Device, err)
		}
		target, nh, err := e.ns(s.Tenant)
		if err != nil {
			return err
		}
		attrs := netlink.LinkAttrs{Name: s.Link, ParentIndex: parent.Attrs().Index, Namespace: netlink.NsFd(int(target))}
		var l netlink.Link
		if s.Op == OpCreateVLAN {
			l = &netlink.Vlan{LinkAttrs: attrs, VlanId: s.VLANID}
		} else {
			l = &netlink.Macvlan{LinkAttrs: attrs, Mode: macvlanMode(s.Mode)}
		}
		// Created directly inside the tenant: the parent's namespace never
		// sees a child with a tenant's name.
		if err := e.def.LinkAdd(l); err != nil {
			if s.Op == OpCreateVLAN && (errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTSUP)) {
				return fmt.Errorf("create vlan %d on %s: the kernel has no 802.1Q support (module 8021q): %w", s.VLANID, s.Device, err)
			}
			return fmt.Errorf("create %s on %s: %w", s.Op, s.Device, err)
		}
		return setAlias(nh, s.Link, s.Mark.String())
	case OpMarkLink:
		_, nh, err := e.ns(s.Tenant)
		if err != nil {
			return err
		}
		return setAlias(nh, s.Link, s.Mark.String())
	}
	// Per-link configuration inside a tenant.
	_, nh, err := e.ns(s.Tenant)
	if err != nil {
		return err
	}
	l, err := nh.LinkByName(s.Link)
	if err != nil {
		return fmt.Errorf("find %s: %w", s.Link, err)
	}
	switch s.Op {
	case OpSetMTU:
		return nh.LinkSetMTU(l, s.MTU)
	case OpAddAddr:
		err := nh.AddrAdd(l, &netlink.Addr{IPNet: ipnet(s)})
		if errors.Is(err, os.ErrExist) || errors.Is(err, unix.EEXIST) {
			return nil
		}
		return err
	case OpDelAddr:
		err := nh.AddrDel(l, &netlink.Addr{IPNet: ipnet(s)})
		if errors.Is(err, unix.EADDRNOTAVAIL) {
			return nil
		}
		return err
	case OpSetUp:
		return nh.LinkSetUp(l)
	}
	return fmt.Errorf("unknown step %q", s.Op)
}

func setAlias(h *netlink.Handle, name, alias string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	if err := h.LinkSetAlias(l, alias); err != nil {
		return fmt.Errorf("mark %s: %w", name, err)
	}
	return nil
}

func macvlanMode(m string) netlink.MacvlanMode {
	switch m {
	case "private":
		return netlink.MACVLAN_MODE_PRIVATE
	case "vepa":
		return netlink.MACVLAN_MODE_VEPA
	case "passthru":
		return netlink.MACVLAN_MODE_PASSTHRU
	}
	return netlink.MACVLAN_MODE_BRIDGE
}

// markNamespace claims a new namespace for fwd: its lo carries
// NamespaceMark and is up.
func markNamespace(h netns.NsHandle) error {
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return err
	}
	defer nh.Close()
	lo, err := nh.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := nh.LinkSetAlias(lo, NamespaceMark); err != nil {
		return fmt.Errorf("mark namespace: %w", err)
	}
	return nh.LinkSetUp(lo)
}
