package zones

import (
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/config"
)

// Op is one kind of kernel operation.
type Op string

const (
	OpCreateNamespace Op = "create-namespace"
	OpSetSysctl       Op = "set-sysctl"
	OpReturnLink      Op = "return-link" // hand a moved NIC back to the default namespace
	OpDeleteLink      Op = "delete-link"
	OpMoveLink        Op = "move-link"
	OpCreateVeth      Op = "create-veth"
	OpCreateMacvlan   Op = "create-macvlan"
	OpCreateVLAN      Op = "create-vlan"
	OpRestoreLink     Op = "restore-link" // give a NIC fwd was moving when it stopped its recorded state
	OpSetMTU          Op = "set-mtu"
	OpDelAddr         Op = "del-address"
	OpAddAddr         Op = "add-address"
	OpSetUp           Op = "set-up"
	OpDeleteNamespace Op = "delete-namespace"
)

// Step is one planned kernel operation. Links are referred to by name and
// resolved when the step runs, because earlier steps move and rename them.
type Step struct {
	Op     Op
	Tenant string
	Link   string // name inside the tenant
	Device string // name in the default namespace (move source, return target, parent)
	MTU    int
	Up     bool // return-link, restore-link: bring the NIC back up (it was up before fwd took it)
	Addr   netip.Prefix
	Sysctl string
	Value  string
	Mark   Mark
	// veth
	PeerTenant string
	PeerName   string
	PeerMark   Mark
	// vlan / macvlan
	VLANID int
	Mode   string
}

// Change describes the step for operators.
func (s Step) Change() change.Change {
	c := change.Change{Tenant: s.Tenant, Subsystem: "zones", Action: string(s.Op)}
	switch s.Op {
	case OpCreateNamespace, OpDeleteNamespace:
		c.Object = s.Tenant
	case OpSetSysctl:
		c.Object = s.Sysctl + "=" + s.Value
	case OpReturnLink, OpRestoreLink:
		c.Object = s.Link
		if s.Op == OpReturnLink {
			c.Object += " -> " + s.Device
		}
		if s.MTU > 0 {
			c.Detail = "mtu " + strconv.Itoa(s.MTU)
		}
		if s.Up {
			c.Detail += ", up"
		}
	case OpMoveLink:
		c.Object = s.Device + " -> " + s.Link
		if s.MTU > 0 {
			c.Detail = "mtu " + strconv.Itoa(s.MTU)
		}
	case OpCreateVeth:
		c.Object = s.Link + " <-> " + s.PeerTenant + "/" + s.PeerName
	case OpCreateMacvlan:
		c.Object = s.Link
		c.Detail = "macvlan mode " + s.Mode + " on " + s.Device
	case OpCreateVLAN:
		c.Object = s.Link
		c.Detail = fmt.Sprintf("vlan %d on %s", s.VLANID, s.Device)
	case OpSetMTU:
		c.Object = s.Link
		c.Detail = "mtu " + strconv.Itoa(s.MTU)
	case OpAddAddr, OpDelAddr:
		c.Object = s.Addr.String() + " dev " + s.Link
	default:
		c.Object = s.Link
	}
	return c
}

// Plan is the ordered list of steps that makes the kernel match a config,
// plus what could not be done now (absent NICs, refused moves).
type Plan struct {
	Steps    []Step
	Warnings []string
	// Absent lists declared NICs (or parents) missing from the default
	// namespace; the daemon watches for them to appear.
	Absent []string
}

// Changes lists the plan's steps for operators.
func (p *Plan) Changes() []change.Change {
	cs := make([]change.Change, len(p.Steps))
	for i, s := range p.Steps {
		cs[i] = s.Change()
	}
	return cs
}

// ConflictError is a config that cannot be realised without touching
// something that is not fwd's.
type ConflictError struct{ Msg string }

func (e *ConflictError) Error() string { return e.Msg }

// Sysctls fwd manages in every tenant namespace.
const (
	SysctlForward4 = "net.ipv4.ip_forward"
	SysctlForward6 = "net.ipv6.conf.all.forwarding"
)

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func markFor(i *config.Interface) Mark {
	switch i.Kind {
	case config.KindVeth:
		return Mark{Origin: OriginCreated, Kind: "veth", Peer: i.PeerTenant + "/" + i.PeerName}
	case config.KindMacvlan:
		return Mark{Origin: OriginCreated, Kind: "macvlan", Parent: i.Parent, Mode: i.MacvlanMode}
	case config.KindVLAN:
		return Mark{Origin: OriginCreated, Kind: "vlan", Parent: i.Parent, VLANID: i.VLANID}
	}
	return Mark{}
}

// matches reports whether an existing marked link realises the interface.
func matches(want *config.Interface, l *Link, m Mark) bool {
	if want.Kind == config.KindPhysical {
		if m.Origin != OriginMoved {
			return false
		}
		if want.MAC != nil {
			return l.MAC.String() == want.MAC.String()
		}
		return m.Device == want.Device
	}
	wm := markFor(want)
	return m.Origin == OriginCreated && m.Kind == wm.Kind && m.Peer == wm.Peer &&
		m.Parent == wm.Parent && m.VLANID == wm.VLANID && m.Mode == wm.Mode
}

type linkKey struct{ tenant, name string }

// Compute plans the steps that take the observed state st to cfg. It is
// pure: no kernel access.
func Compute(cfg *config.Config, st *State) (*Plan, error) {
	p := &Plan{}
	var pre, removals, creates, configs, finals []Step

	protected := map[string]bool{}
	for _, d := range cfg.Mgmt.Protect {
		protected[d] = true
	}
	// Default-namespace links that can be moved in or be parents, as they
	// will be after the removal steps ran.
	available := map[string]*Link{}
	for _, l := range st.Default {
		available[l.Name] = l
	}
	present := map[linkKey]*Link{} // desired links that already exist and are kept
	removedVeth := map[string]bool{}

	removeLink := func(tenant string, l *Link, m Mark) {
		if m.Origin == OriginMoved {
			removals = append(removals, Step{Op: OpReturnLink, Tenant: tenant, Link: l.Name, Device: m.Device, MTU: m.MTU, Up: m.Up, Mark: m})
			// Back in the default namespace it still carries its mark
			// (the hand-back keeps it until the NIC is restored), so a
			// move to another tenant in the same plan records the
			// original state, not the state in transit.
			available[m.Device] = &Link{Index: l.Index, Name: m.Device, Kind: l.Kind, MAC: l.MAC, MTU: m.MTU, Up: m.Up, Alias: m.String()}
			return
		}
		if m.Kind == "veth" {
			if removedVeth[tenant+"/"+l.Name] {
				return // deleting the other end already deletes this one
			}
			removedVeth[m.Peer] = true
		}
		removals = append(removals, Step{Op: OpDeleteLink, Tenant: tenant, Link: l.Name})
	}

	// Pass 1: existing tenants, kept or removed links.
	for _, t := range cfg.Tenants {
		obs := st.Tenants[t.Name]
		if obs == nil {
			if st.Foreign[t.Name] {
				return nil, &ConflictError{fmt.Sprintf("tenant %q: namespace %q exists but was not created by fwd (no %q mark on its lo): refusing to adopt it", t.Name, t.Name, NamespaceMark)}
			}
			pre = append(pre, Step{Op: OpCreateNamespace, Tenant: t.Name})
			if t.Forwarding {
				pre = append(pre,
					Step{Op: OpSetSysctl, Tenant: t.Name, Sysctl: SysctlForward4, Value: "1"},
					Step{Op: OpSetSysctl, Tenant: t.Name, Sysctl: SysctlForward6, Value: "1"})
			}
			continue
		}
		if !obs.LoUp {
			pre = append(pre, Step{Op: OpSetUp, Tenant: t.Name, Link: "lo"})
		}
		if obs.Forwarding4 != t.Forwarding {
			pre = append(pre, Step{Op: OpSetSysctl, Tenant: t.Name, Sysctl: SysctlForward4, Value: boolStr(t.Forwarding)})
		}
		if obs.Forwarding6 != t.Forwarding {
			pre = append(pre, Step{Op: OpSetSysctl, Tenant: t.Name, Sysctl: SysctlForward6, Value: boolStr(t.Forwarding)})
		}
		for _, l := range obs.Links {
			want := t.Interface(l.Name)
			m, ok := l.Mark()
			if !ok {
				if isTempName(l.Name) {
					// fwd was creating it when it stopped: start again.
					removals = append(removals, Step{Op: OpDeleteLink, Tenant: t.Name, Link: l.Name})
					continue
				}
				if want == nil {
					continue // not ours: never touched
				}
				// Even of the declared name and kind: fwd never adopts a
				// link it cannot prove it made (it would re-address and
				// later delete an operator's link).
				return nil, &ConflictError{fmt.Sprintf("tenant %q: interface %q exists in the namespace but is not fwd's (a %s without fwd's mark): rename or remove it, or rename the interface in the config", t.Name, l.Name, l.Kind)}
			}
			if m.Origin == OriginCreated && m.Kind == "veth" && !vethPeerPresent(st, m.Peer, t.Name+"/"+l.Name) {
				// Half a pair (the daemon stopped between marking its
				// ends): delete it, the pair is created again.
				removeLink(t.Name, l, m)
				continue
			}
			if want != nil && matches(want, l, m) {
				present[linkKey{t.Name, l.Name}] = l
				continue
			}
			removeLink(t.Name, l, m)
		}
	}
	// Tenants no longer declared: hand back, delete, unpin.
	var gone []string
	for name := range st.Tenants {
		if cfg.Tenant(name) == nil {
			gone = append(gone, name)
		}
	}
	slices.Sort(gone)
	for _, name := range gone {
		obs := st.Tenants[name]
		for _, l := range obs.Links {
			if m, ok := l.Mark(); ok {
				removeLink(name, l, m)
			}
		}
		finals = append(finals, Step{Op: OpDeleteNamespace, Tenant: name})
	}
	// A veth deleted from one side disappears from the other too.
	for k := range present {
		if removedVeth[k.tenant+"/"+k.name] {
			delete(present, k)
		}
	}

	// Pass 2: bring in what is missing, then configure.
	claimed := map[string]bool{}
	for _, t := range cfg.Tenants {
		for _, want := range t.Interfaces {
			key := linkKey{t.Name, want.Name}
			if l := present[key]; l != nil {
				configs = append(configs, configure(t.Name, want, l)...)
				continue
			}
			switch want.Kind {
			case config.KindPhysical:
				var dev *Link
				if want.MAC != nil {
					dev = byMAC(available, want.MAC)
				} else {
					dev = available[want.Device]
				}
				if dev == nil {
					p.Warnings = append(p.Warnings, fmt.Sprintf("tenant %q: interface %q: %s is absent from the default namespace; it will be moved in when it appears", t.Name, want.Name, want.Selector()))
					p.Absent = append(p.Absent, want.Selector())
					continue
				}
				if protected[dev.Name] {
					p.Warnings = append(p.Warnings, fmt.Sprintf("tenant %q: interface %q: %s is %s, protected by mgmt.protect: not moved", t.Name, want.Name, want.Selector(), dev.Name))
					continue
				}
				if st.DefaultRouteLinks[dev.Index] && st.DefaultLink(dev.Name) != nil {
					p.Warnings = append(p.Warnings, fmt.Sprintf("tenant %q: interface %q: %s carries the default namespace's default route (the management path): not moved", t.Name, want.Name, dev.Name))
					continue
				}
				if claimed[dev.Name] {
					continue
				}
				claimed[dev.Name] = true
				creates = append(creates, Step{Op: OpMoveLink, Tenant: t.Name, Link: want.Name, Device: dev.Name, MTU: want.MTU,
					Mark: originalState(dev)})
			case config.KindVeth:
				// The smaller end creates the pair; the other is configured after.
				if vethCreator(t.Name, want) {
					pt := cfg.Tenant(want.PeerTenant)
					creates = append(creates, Step{Op: OpCreateVeth, Tenant: t.Name, Link: want.Name,
						PeerTenant: want.PeerTenant, PeerName: want.PeerName,
						Mark: markFor(want), PeerMark: markFor(pt.Interface(want.PeerName))})
				}
			case config.KindMacvlan, config.KindVLAN:
				if available[want.Parent] == nil || claimed[want.Parent] {
					p.Warnings = append(p.Warnings, fmt.Sprintf("tenant %q: interface %q: parent %s is absent from the default namespace; it will be created when the parent appears", t.Name, want.Name, want.Parent))
					p.Absent = append(p.Absent, "device "+want.Parent)
					continue
				}
				op := OpCreateMacvlan
				if want.Kind == config.KindVLAN {
					op = OpCreateVLAN
				}
				creates = append(creates, Step{Op: op, Tenant: t.Name, Link: want.Name, Device: want.Parent,
					VLANID: want.VLANID, Mode: want.MacvlanMode, Mark: markFor(want)})
			}
			configs = append(configs, configure(t.Name, want, nil)...)
		}
	}
	// NICs fwd was moving in or handing back when it stopped, and that no
	// tenant takes now: back to the state their mark recorded.
	var restores []Step
	for _, l := range st.Default {
		if m, ok := l.Mark(); ok && m.Origin == OriginMoved && !claimed[l.Name] {
			restores = append(restores, Step{Op: OpRestoreLink, Link: l.Name, MTU: m.MTU, Up: m.Up, Mark: m})
		}
	}
	p.Steps = slices.Concat(pre, removals, creates, configs, restores, finals)
	return p, nil
}

// originalState is the mark a NIC of the default namespace gets when it
// is moved in: its state as observed or, for a NIC in transit (marked:
// fwd stopped while moving it, or handed it back in this plan), the state
// its mark recorded before fwd changed anything.
func originalState(dev *Link) Mark {
	if m, ok := dev.Mark(); ok && m.Origin == OriginMoved {
		return m
	}
	return Mark{Origin: OriginMoved, Device: dev.Name, MTU: dev.MTU, Up: dev.Up}
}

// vethPeerPresent reports whether the veth end self's mark points to
// ("tenant/name") exists and points back.
func vethPeerPresent(st *State, peer, self string) bool {
	pt, pn, _ := strings.Cut(peer, "/")
	n := st.Tenants[pt]
	if n == nil {
		return false
	}
	l := n.Link(pn)
	if l == nil {
		return false
	}
	m, ok := l.Mark()
	return ok && m.Kind == "veth" && m.Peer == self
}

// tempPrefix starts the name a link fwd creates has until it is renamed
// and marked in one message: a leftover of that name in a tenant
// namespace is fwd's, half-made, and deleted. Operators must not name
// links so in tenant namespaces.
const tempPrefix = "fwdnew"

// tempName is the name under which fwd creates the link that becomes
// tenant's interface name: the prefix and a hash, within IFNAMSIZ.
func tempName(tenant, name string) string {
	h := fnv.New32a()
	h.Write([]byte(tenant + "/" + name))
	return fmt.Sprintf("%s%08x", tempPrefix, h.Sum32())
}

func isTempName(name string) bool {
	return strings.HasPrefix(name, tempPrefix) && len(name) == len(tempPrefix)+8
}

// byMAC picks the NIC with that MAC. VLAN children and bond members share
// their parent's MAC, so a physical device is preferred, then the lowest
// ifindex, so the choice never depends on map order.
func byMAC(links map[string]*Link, mac net.HardwareAddr) *Link {
	var best *Link
	for _, l := range links {
		if l.MAC.String() != mac.String() {
			continue
		}
		phys, bestPhys := l.Kind == "device", best != nil && best.Kind == "device"
		switch {
		case best == nil, phys && !bestPhys, phys == bestPhys && l.Index < best.Index:
			best = l
		}
	}
	return best
}

// vethCreator says which end of a pair creates it: the smaller tenant/name.
func vethCreator(tenant string, i *config.Interface) bool {
	return tenant+"/"+i.Name < i.PeerTenant+"/"+i.PeerName
}

// configure plans MTU, addresses and link state of a desired interface;
// l is the existing link, or nil for one the plan creates or moves in.
func configure(tenant string, want *config.Interface, l *Link) []Step {
	var steps []Step
	if l == nil {
		if want.MTU > 0 && want.Kind != config.KindPhysical {
			steps = append(steps, Step{Op: OpSetMTU, Tenant: tenant, Link: want.Name, MTU: want.MTU})
		}
		for _, a := range want.Addresses {
			steps = append(steps, Step{Op: OpAddAddr, Tenant: tenant, Link: want.Name, Addr: a})
		}
		return append(steps, Step{Op: OpSetUp, Tenant: tenant, Link: want.Name})
	}
	if want.MTU > 0 && l.MTU != want.MTU {
		steps = append(steps, Step{Op: OpSetMTU, Tenant: tenant, Link: want.Name, MTU: want.MTU})
	}
	for _, a := range l.Addrs {
		// Learned addresses (DHCP, SLAAC) and HA VIPs belong to the
		// DHCP client, the kernel and keepalived: never delete them.
		if !slices.Contains(want.Addresses, a) && !slices.Contains(want.VIPs, a) && !slices.Contains(l.Learned, a) {
			steps = append(steps, Step{Op: OpDelAddr, Tenant: tenant, Link: want.Name, Addr: a})
		}
	}
	for _, a := range want.Addresses {
		// A configured address the kernel holds as learned (the
		// interface went from dhcp to this static address) is added
		// again, which makes it permanent: else it would expire, or go
		// with the DHCP client's release.
		if !slices.Contains(l.Addrs, a) || slices.Contains(l.Learned, a) {
			steps = append(steps, Step{Op: OpAddAddr, Tenant: tenant, Link: want.Name, Addr: a})
		}
	}
	if !l.Up {
		steps = append(steps, Step{Op: OpSetUp, Tenant: tenant, Link: want.Name})
	}
	return steps
}
