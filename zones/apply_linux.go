package zones

import (
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/rtnl"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// executor runs plan steps. It keeps a namespace handle and a netlink
// handle (route family only: one socket) for at most maxOpenNamespaces
// tenants, closing the oldest between steps: an apply touches every
// tenant in each phase, and the daemon runs with 1024 descriptors.
// Moves out of the default namespace share one rtnl connection; a move
// out of a tenant's uses a short-lived socket (rtnl.MoveLinkAt).
type executor struct {
	defaultNS netns.NsHandle
	def       *netlink.Handle
	nsh       map[string]netns.NsHandle
	nlh       map[string]*netlink.Handle
	opened    []string   // tenants in nsh/nlh, oldest first
	rt        *rtnl.Conn // the default namespace's, opened on first use
}

const maxOpenNamespaces = 64

func newExecutor(defaultNS netns.NsHandle) (*executor, error) {
	h, err := rtnl.LinkHandle(defaultNS)
	if err != nil {
		return nil, err
	}
	return &executor{defaultNS: defaultNS, def: h, nsh: map[string]netns.NsHandle{}, nlh: map[string]*netlink.Handle{}}, nil
}

func (e *executor) close() {
	e.def.Close()
	if e.rt != nil {
		e.rt.Close()
	}
	for _, h := range e.nlh {
		h.Close()
	}
	for _, h := range e.nsh {
		h.Close()
	}
}

// moveLink moves a link from namespace from (a tenant's, or "" for the
// default one) in one RTM_SETLINK (rtnl.Conn.MoveLink): renamed, marked
// with alias and given its MTU as it arrives, so it clashes with no name
// and is never in the target unmarked.
func (e *executor) moveLink(from string, m rtnl.LinkMove) error {
	if from != "" {
		h, _, err := e.ns(from)
		if err != nil {
			return err
		}
		return rtnl.MoveLinkAt(h, m)
	}
	if e.rt == nil {
		c, err := rtnl.Open(e.defaultNS)
		if err != nil {
			return err
		}
		e.rt = c
	}
	return e.rt.MoveLink(m)
}

// trim closes the handles of the oldest tenants so that the next step
// (which opens at most two) stays within maxOpenNamespaces. Called
// between steps only, when no handle is in use.
func (e *executor) trim() {
	for len(e.opened) > maxOpenNamespaces-2 {
		e.forget(e.opened[0])
	}
}

// failpoint, when set (tests only), is called between the steps of a
// multi-message operation; an error it returns stops the apply there,
// with no clean-up, as a kill -9 would.
var failpoint func(point string) error

func hit(point string) error {
	if failpoint == nil {
		return nil
	}
	return failpoint(point)
}

func (e *executor) ns(tenant string) (netns.NsHandle, *netlink.Handle, error) {
	if h, ok := e.nlh[tenant]; ok {
		return e.nsh[tenant], h, nil
	}
	nsh, err := ns.Open(tenant)
	if err != nil {
		return netns.None(), nil, err
	}
	h, err := rtnl.LinkHandle(nsh)
	if err != nil {
		nsh.Close()
		return netns.None(), nil, err
	}
	e.nsh[tenant], e.nlh[tenant] = nsh, h
	e.opened = append(e.opened, tenant)
	return nsh, h, nil
}

func (e *executor) forget(tenant string) {
	if h, ok := e.nlh[tenant]; ok {
		h.Close()
		nsh := e.nsh[tenant]
		nsh.Close()
		delete(e.nlh, tenant)
		delete(e.nsh, tenant)
		e.opened = slices.DeleteFunc(e.opened, func(n string) bool { return n == tenant })
	}
}

func ipnet(s Step) *net.IPNet {
	return &net.IPNet{IP: s.Addr.Addr().AsSlice(), Mask: net.CIDRMask(s.Addr.Bits(), s.Addr.Addr().BitLen())}
}

func (e *executor) run(s Step) error {
	e.trim()
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
		return e.moveIn(s)
	case OpReturnLink:
		_, nh, err := e.ns(s.Tenant)
		if err != nil {
			return err
		}
		l, err := nh.LinkByName(s.Link)
		if err != nil {
			return fmt.Errorf("find %s: %w", s.Link, err)
		}
		// A NIC goes back as it came: its addresses are flushed by the
		// move (which also closes it), its name and MTU restored in the
		// same message. It keeps its mark until its admin state is
		// restored too: a crash in between leaves a NIC in transit,
		// which the next apply restores from the mark.
		if err := e.moveLink(s.Tenant, rtnl.LinkMove{Index: l.Attrs().Index, Target: e.defaultNS, Name: s.Device, Alias: s.Mark.String(), MTU: s.MTU}); err != nil {
			return err
		}
		if err := hit("return-moved"); err != nil {
			return err
		}
		return e.restore(s.Device, s.Mark)
	case OpRestoreLink:
		return e.restore(s.Link, s.Mark)
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
		// Both ends start under temporary names and get their declared
		// name and mark in one message each: a crash leaves links fwd
		// recognises (by name, or half a marked pair) and deletes.
		tmp, peerTmp := tempName(s.Tenant, s.Link), tempName(s.PeerTenant, s.PeerName)
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: tmp}, PeerName: peerTmp, PeerNamespace: netlink.NsFd(int(peerNS))}
		if err := nh.LinkAdd(v); err != nil {
			return fmt.Errorf("create veth: %w", err)
		}
		if err := e.name(s.Tenant, nh, tmp, s.Link, s.Mark); err != nil {
			return err
		}
		if err := hit("veth-half-named"); err != nil {
			return err
		}
		return e.name(s.PeerTenant, peerH, peerTmp, s.PeerName, s.PeerMark)
	case OpCreateMacvlan, OpCreateVLAN:
		parent, err := e.def.LinkByName(s.Device)
		if err != nil {
			return fmt.Errorf("find parent %s: %w", s.Device, err)
		}
		target, nh, err := e.ns(s.Tenant)
		if err != nil {
			return err
		}
		tmp := tempName(s.Tenant, s.Link)
		attrs := netlink.LinkAttrs{Name: tmp, ParentIndex: parent.Attrs().Index, Namespace: netlink.NsFd(int(target))}
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
		return e.name(s.Tenant, nh, tmp, s.Link, s.Mark)
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
		// Replace: an address already there with a finite lifetime
		// (learned) becomes permanent; one that is not there is added.
		return nh.AddrReplace(l, &netlink.Addr{IPNet: ipnet(s)})
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

// name gives a link fwd created under its temporary name in a tenant its
// declared name and its mark, in one message.
func (e *executor) name(tenant string, nh *netlink.Handle, tmp, name string, m Mark) error {
	l, err := nh.LinkByName(tmp)
	if err != nil {
		return fmt.Errorf("find %s: %w", tmp, err)
	}
	h, _, err := e.ns(tenant)
	if err != nil {
		return err
	}
	return rtnl.RenameLinkAt(h, l.Attrs().Index, name, m.String())
}

// moveIn moves a NIC of the default namespace into a tenant. Its
// original state (name, MTU, admin state) is written into the kernel, as
// the NIC's mark, before anything about it changes; then one message
// moves, renames and re-marks it (the kernel closes a NIC it moves, so
// there is no separate set-down whose crash window would lose "it was
// up"). From the first step on, a crash leaves a NIC fwd recognises: in
// transit in the default namespace, or marked in the tenant.
func (e *executor) moveIn(s Step) error {
	l, err := e.def.LinkByName(s.Device)
	if err != nil {
		return fmt.Errorf("find %s: %w", s.Device, err)
	}
	mark := s.Mark.String()
	if l.Attrs().Alias != mark {
		if err := e.def.LinkSetAlias(l, mark); err != nil {
			return fmt.Errorf("mark %s: %w", s.Device, err)
		}
	}
	if err := hit("move-marked"); err != nil {
		return err
	}
	idx := l.Attrs().Index
	target, th, err := e.ns(s.Tenant)
	if err == nil {
		err = e.moveLink("", rtnl.LinkMove{Index: idx, Target: target, Name: s.Link, Alias: mark, MTU: s.MTU})
	}
	if err == nil {
		return nil
	}
	// The kernel moves the NIC before it renames it and sets its MTU:
	// a refused MTU leaves it in the tenant, closed. Either way it goes
	// back to the state its mark recorded.
	if th != nil {
		if back := e.findMarked(th, mark, idx, s.Device, s.Link); back != nil {
			if uerr := e.moveLink(s.Tenant, rtnl.LinkMove{Index: back.Attrs().Index, Target: e.defaultNS, Name: s.Mark.Device, Alias: mark, MTU: s.Mark.MTU}); uerr != nil {
				return fmt.Errorf("%w (and handing %s back failed: %v)", err, s.Device, uerr)
			}
		}
	}
	if rerr := e.restore(s.Mark.Device, s.Mark); rerr != nil {
		return fmt.Errorf("%w (and restoring %s failed: %v)", err, s.Device, rerr)
	}
	return err
}

// findMarked finds, in a tenant namespace, the link carrying mark by
// index or by one of the names it may have; nil if it is not there.
func (e *executor) findMarked(h *netlink.Handle, mark string, idx int, names ...string) netlink.Link {
	cands := []func() (netlink.Link, error){func() (netlink.Link, error) { return h.LinkByIndex(idx) }}
	for _, n := range names {
		cands = append(cands, func() (netlink.Link, error) { return h.LinkByName(n) })
	}
	for _, c := range cands {
		if l, err := c(); err == nil && l.Attrs().Alias == mark {
			return l
		}
	}
	return nil
}

// restore gives a NIC in transit in the default namespace the state its
// mark recorded (MTU, admin state), and clears the mark last: until then
// a crash leaves it recognisable.
func (e *executor) restore(name string, m Mark) error {
	l, err := e.def.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	if m.MTU > 0 && l.Attrs().MTU != m.MTU {
		if err := e.def.LinkSetMTU(l, m.MTU); err != nil {
			return fmt.Errorf("restore mtu of %s: %w", name, err)
		}
	}
	if m.Up && l.Attrs().Flags&net.FlagUp == 0 {
		if err := e.def.LinkSetUp(l); err != nil {
			return fmt.Errorf("bring %s back up: %w", name, err)
		}
	}
	if err := e.def.LinkSetAlias(l, ""); err != nil {
		return fmt.Errorf("unmark %s: %w", name, err)
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
	nh, err := rtnl.LinkHandle(h)
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
