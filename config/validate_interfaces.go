package config

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
)

var macvlanModes = map[string]bool{"": true, "bridge": true, "private": true, "vepa": true, "passthru": true}

// ValidIfName reports why name is not a valid Linux interface name, or "".
// It applies the kernel's dev_valid_name (net/core/dev.c): not empty, at
// most 15 bytes (IFNAMSIZ with the NUL), not "." or "..", no '/', ':' or
// whitespace as the kernel's isspace sees it (space, \t, \n, \v, \f,
// \r and 0xA0). fwd is stricter in three ways, so that a name means the
// same to the kernel, to ip(8), to nft(8) and in fwd's messages: no
// other control characters (NUL included), no byte above 0x7E (non-ASCII
// text such as "wàn", whose UTF-8 holds 0xA0, the kernel would refuse or
// tools would mangle), and no '%' (the kernel treats "name%d" as a
// template to number).
func ValidIfName(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > 15:
		return fmt.Sprintf("%q is longer than 15 bytes (IFNAMSIZ)", name)
	case name == "." || name == "..":
		return fmt.Sprintf("%q is not a valid interface name", name)
	}
	for i := 0; i < len(name); i++ {
		if why := ifNameByte(name[i]); why != "" {
			return fmt.Sprintf("%q contains a character not allowed in interface names (%s)", name, why)
		}
	}
	return ""
}

func ifNameByte(c byte) string {
	switch {
	case c == '/' || c == ':' || c == '%':
		return fmt.Sprintf("%q", c)
	case c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r':
		return "whitespace"
	case c < 0x20 || c == 0x7f:
		return fmt.Sprintf("control byte %#02x", c)
	case c > 0x7e:
		return fmt.Sprintf("non-ASCII byte %#02x", c)
	}
	return ""
}

// The loopback is the one device a config file can name that is never a
// NIC: moving the default namespace's lo would take 127.0.0.1, the
// metrics port and the API's TCP listener with it. Whether another name
// is a real NIC can only be known on the machine, when applying.
const (
	loopbackDevice = `"lo" is the default namespace's loopback, not a NIC fwd may move`
	loopbackParent = `"lo" is the loopback: macvlan and VLAN parents must be Ethernet NICs`
)

// nicClaims tracks the default namespace's NICs across tenants: each can
// be moved into one tenant only, never if protected, and never if it must
// stay behind as the parent of a macvlan or VLAN.
type nicClaims struct {
	protected map[string]bool
	dev       map[string]string // device name -> key that moves it
	mac       map[string]string
	vlan      map[string]string // "parent.id" -> key
	parents   []parentUse
}

type parentUse struct{ dev, key string }

func newNICClaims(protect []string) *nicClaims {
	c := &nicClaims{protected: map[string]bool{}, dev: map[string]string{}, mac: map[string]string{}, vlan: map[string]string{}}
	for _, p := range protect {
		c.protected[p] = true
	}
	return c
}

// checkParents reports parents that a tenant also moves away.
func (c *nicClaims) checkParents(r reporter) {
	for _, p := range c.parents {
		if prev, ok := c.dev[p.dev]; ok {
			reporter{rep: r.rep, key: p.key}.errorf("parent %q stays in the default namespace but is moved by %s", p.dev, prev)
		}
	}
}

// maxTenantAddresses bounds the addresses of one tenant: the duplicate
// and overlap checks compare each address with the tenant's others, and
// other checks (gateways, neighbours, DNAT targets) scan them, so the
// bound keeps a pathological file linear. Real gateways hold a handful.
const maxTenantAddresses = 4096

// tenantAddrs tracks a tenant's addresses across its interfaces.
type tenantAddrs struct {
	n       int
	owner   map[netip.Addr]string // address -> key
	subnets []subnet
}

type subnet struct {
	p   netip.Prefix
	key string
}

// validateInterface validates one [tenant.T.interface.NAME] table.
func validateInterface(r reporter, tenant, name string, ri *rawInterface, nics *nicClaims, addrs *tenantAddrs) *Interface {
	iface := &Interface{Tenant: tenant, Name: name}
	if ri.MTU != nil {
		iface.MTU = *ri.MTU
	}
	if why := ValidIfName(name); why != "" {
		r.errorf("interface name %s", why)
	} else if name == "lo" {
		r.errorf("interface name \"lo\" is the namespace's loopback")
	}
	sources := 0
	for _, set := range []bool{ri.Device != "", ri.MAC != "", ri.Peer != nil, ri.Macvlan != nil, ri.VLAN != nil} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		r.errorf("exactly one of device, mac, peer, macvlan or vlan is required (found %d)", sources)
	}
	switch {
	case ri.Device != "":
		iface.Kind, iface.Device = KindPhysical, ri.Device
		validateDevice(r.in("device"), ri.Device, nics)
	case ri.MAC != "":
		iface.Kind = KindPhysical
		iface.MAC = validateMAC(r.in("mac"), ri.MAC, nics)
	case ri.Peer != nil:
		iface.Kind, iface.PeerTenant, iface.PeerName = KindVeth, ri.Peer.Tenant, ri.Peer.Name
		if ri.Peer.Tenant == "" || ri.Peer.Name == "" {
			r.in("peer").errorf("peer needs both tenant and name")
		}
	case ri.Macvlan != nil:
		iface.Kind, iface.Parent, iface.MacvlanMode = KindMacvlan, ri.Macvlan.Parent, ri.Macvlan.Mode
		mr := r.in("macvlan")
		if why := ValidIfName(ri.Macvlan.Parent); why != "" {
			mr.in("parent").errorf("%s", why)
		} else if ri.Macvlan.Parent == "lo" {
			mr.in("parent").errorf("%s", loopbackParent)
		}
		if !macvlanModes[ri.Macvlan.Mode] {
			mr.in("mode").errorf("unknown macvlan mode %q (bridge, private, vepa, passthru)", ri.Macvlan.Mode)
		}
		if iface.MacvlanMode == "" {
			iface.MacvlanMode = "bridge"
		}
		nics.parents = append(nics.parents, parentUse{ri.Macvlan.Parent, mr.in("parent").key})
	case ri.VLAN != nil:
		iface.Kind, iface.Parent, iface.VLANID = KindVLAN, ri.VLAN.Parent, ri.VLAN.ID
		vr := r.in("vlan")
		if why := ValidIfName(ri.VLAN.Parent); why != "" {
			vr.in("parent").errorf("%s", why)
		} else if ri.VLAN.Parent == "lo" {
			vr.in("parent").errorf("%s", loopbackParent)
		}
		if ri.VLAN.ID < 1 || ri.VLAN.ID > 4094 {
			vr.in("id").errorf("VLAN id %d out of range 1-4094", ri.VLAN.ID)
		}
		vk := fmt.Sprintf("%s.%d", ri.VLAN.Parent, ri.VLAN.ID)
		if prev, ok := nics.vlan[vk]; ok {
			vr.errorf("VLAN %d on %s is already used by %s", ri.VLAN.ID, ri.VLAN.Parent, prev)
		} else {
			nics.vlan[vk] = r.key
		}
		nics.parents = append(nics.parents, parentUse{ri.VLAN.Parent, vr.in("parent").key})
	}
	if ri.MTU != nil && (iface.MTU < 68 || iface.MTU > 65535) {
		r.in("mtu").errorf("MTU %d out of range 68-65535 (leave mtu out to keep the device's)", iface.MTU)
	}
	hasV6 := false
	ar := r.in("addresses")
	for i, a := range ri.Addresses {
		if p, ok := addrs.validate(ar.at(i), r.key, a); ok {
			iface.Addresses = append(iface.Addresses, p)
			hasV6 = hasV6 || p.Addr().Is6()
		}
	}
	if hasV6 && iface.MTU >= 68 && iface.MTU < 1280 {
		r.in("mtu").errorf("MTU %d is below the IPv6 minimum of 1280 and the interface has IPv6 addresses", iface.MTU)
	}
	sort.Slice(iface.Addresses, func(i, j int) bool { return iface.Addresses[i].String() < iface.Addresses[j].String() })
	return iface
}

func validateDevice(r reporter, dev string, nics *nicClaims) {
	if why := ValidIfName(dev); why != "" {
		r.errorf("%s", why)
	} else if dev == "lo" {
		r.errorf("%s", loopbackDevice)
	}
	if nics.protected[dev] {
		r.errorf("%q is protected by mgmt.protect and is never moved", dev)
	}
	if prev, ok := nics.dev[dev]; ok {
		r.errorf("device %q is already claimed by %s", dev, prev)
	} else {
		nics.dev[dev] = parentKey(r.key)
	}
}

func validateMAC(r reporter, s string, nics *nicClaims) net.HardwareAddr {
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 {
		r.errorf("invalid MAC address %q", s)
		return nil
	}
	if prev, ok := nics.mac[mac.String()]; ok {
		r.errorf("MAC %s is already claimed by %s", mac, prev)
	} else {
		nics.mac[mac.String()] = parentKey(r.key)
	}
	return mac
}

// parentKey strips the last component of a key path.
func parentKey(key string) string {
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[:i]
	}
	return key
}

// validate checks one interface address (ifKey is its interface's key)
// and records it for the tenant's duplicate and overlap checks.
func (ta *tenantAddrs) validate(r reporter, ifKey, a string) (netip.Prefix, bool) {
	if ta.n++; ta.n > maxTenantAddresses {
		if ta.n == maxTenantAddresses+1 {
			r.errorf("more than %d addresses in one tenant", maxTenantAddresses)
		}
		return netip.Prefix{}, false
	}
	p, err := netip.ParsePrefix(a)
	if err != nil {
		r.errorf("invalid address %q: want address/prefix-length, e.g. 192.0.2.1/24", a)
		return p, false
	}
	addr := p.Addr()
	switch {
	case addr.Zone() != "" || addr.Is4In6():
		r.errorf("invalid address %q", a)
		return p, false
	case addr.IsLinkLocalUnicast() && addr.Is6():
		r.errorf("%s is link-local: the kernel assigns IPv6 link-local addresses", a)
		return p, false
	case addr.IsMulticast() || addr.IsUnspecified() || addr.IsLoopback() || !isUnicast4(addr):
		r.errorf("%s is not a unicast host address", a)
		return p, false
	case addr.Is4() && p.Bits() < 31 && addr == p.Masked().Addr():
		r.errorf("%s is the network address of %s", addr, p.Masked())
		return p, false
	case addr.Is4() && p.Bits() < 31 && addr == PrefixLast(p):
		r.errorf("%s is the broadcast address of %s", addr, p.Masked())
		return p, false
	}
	if prev, ok := ta.owner[addr]; ok {
		r.errorf("address %s is already assigned at %s", addr, prev)
		return p, false
	}
	ta.owner[addr] = r.key
	for _, s := range ta.subnets {
		if s.p.Overlaps(p.Masked()) && !strings.HasPrefix(s.key, ifKey+".") {
			r.errorf("prefix %s overlaps %s at %s", p.Masked(), s.p, s.key)
		}
	}
	ta.subnets = append(ta.subnets, subnet{p.Masked(), r.key})
	return p, true
}

// isUnicast4 refuses the IPv4 addresses no host may hold whatever the
// prefix length: the limited broadcast 255.255.255.255 and "this
// network" 0.0.0.0/8 (RFC 1122: a source only before configuration).
func isUnicast4(a netip.Addr) bool {
	if !a.Is4() {
		return true
	}
	b := a.As4()
	return b[0] != 0 && a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}
