package config

import (
	"net"
	"net/netip"
)

// DefaultPath is where fwd looks for its configuration.
const DefaultPath = "/etc/fwd/fwd.toml"

// Config is a validated configuration.
type Config struct {
	File    string
	Mgmt    Mgmt
	Tenants []*Tenant // sorted by name
}

// Tenant is one firewall namespace.
type Tenant struct {
	Name       string
	Forwarding bool
	Interfaces []*Interface // sorted by name
	Policy     Policy
	Routing    Routing
	BGP        *BGP     // nil: no BGP speaker in this tenant
	Services   Services // DHCP client, SLAAC, dnsmasq (model_services.go)
	HA         *HA      // nil: no HA pair (model_ha.go)

	// ConntrackLimit > 0 caps the connections the tenant tracks for
	// traffic it receives or forwards (0: no quota).
	ConntrackLimit int
}

// Interface returns the tenant's interface of that name, or nil.
func (t *Tenant) Interface(name string) *Interface {
	for _, i := range t.Interfaces {
		if i.Name == name {
			return i
		}
	}
	return nil
}

// Tenant returns the tenant of that name, or nil.
func (c *Config) Tenant(name string) *Tenant {
	for _, t := range c.Tenants {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Kind says where an interface comes from.
type Kind string

const (
	KindPhysical Kind = "physical" // an existing NIC moved in (by name or MAC)
	KindVeth     Kind = "veth"     // one end of a veth pair between two tenants
	KindMacvlan  Kind = "macvlan"  // child of a NIC that stays in the default namespace
	KindVLAN     Kind = "vlan"     // 802.1Q child of a NIC that stays in the default namespace
)

// Interface is a link inside a tenant namespace.
type Interface struct {
	Tenant string
	Name   string // name inside the namespace
	Kind   Kind

	Device string           // KindPhysical: NIC name in the default namespace
	MAC    net.HardwareAddr // KindPhysical: NIC MAC (when chosen by MAC)

	PeerTenant string // KindVeth
	PeerName   string // KindVeth

	Parent      string // KindMacvlan, KindVLAN: NIC in the default namespace
	MacvlanMode string // KindMacvlan: bridge (default), private, vepa, passthru
	VLANID      int    // KindVLAN

	Addresses []netip.Prefix // address with prefix length, sorted
	MTU       int            // 0: leave as is
	VIPs      []netip.Prefix // HA addresses keepalived holds here: zones never adds or deletes them
}

// Selector describes how the interface's NIC is found, for messages.
func (i *Interface) Selector() string {
	switch i.Kind {
	case KindPhysical:
		if i.MAC != nil {
			return "mac " + i.MAC.String()
		}
		return "device " + i.Device
	case KindVeth:
		return "veth peer " + i.PeerTenant + "/" + i.PeerName
	case KindMacvlan:
		return "macvlan on " + i.Parent
	case KindVLAN:
		return "vlan on " + i.Parent
	}
	return string(i.Kind)
}
