package zones

import (
	"net"

	"github.com/fwdproject/fwd/config"
)

// LinkEvent is one link change the kernel reported in the default
// namespace or in a tenant's.
type LinkEvent struct {
	Namespace string // "" for the default namespace, else the tenant's
	Gone      bool   // RTM_DELLINK: deleted, or moved out of Namespace
	Name      string
	Index     int
	Kind      string
	MAC       net.HardwareAddr
	Alias     string
}

// Interest is what a link event means for the configuration.
type Interest struct {
	Event     LinkEvent
	Tenant    string // the tenant whose interface it concerns
	Interface string // that interface
	What      string // for operators: "declared NIC in the default namespace", …
}

// Relevant says whether ev concerns an interface of cfg: a declared NIC
// (by name or MAC) or a parent of a declared macvlan/VLAN showing up in
// the default namespace, or a declared interface gone from its tenant's
// namespace. Everything else (fwd's own creations, an operator's links,
// counters changing) is not. It is pure; the caller re-plans to find what
// to do, so an event fwd's own apply caused costs a plan and no change.
func Relevant(cfg *config.Config, ev LinkEvent) (Interest, bool) {
	for _, t := range cfg.Tenants {
		for _, i := range t.Interfaces {
			in := Interest{Event: ev, Tenant: t.Name, Interface: i.Name}
			switch {
			case ev.Namespace == "" && !ev.Gone && i.Kind == config.KindPhysical &&
				(i.MAC != nil && ev.MAC.String() == i.MAC.String() || i.MAC == nil && ev.Name == i.Device):
				in.What = "declared NIC in the default namespace"
				return in, true
			case ev.Namespace == "" && !ev.Gone && (i.Kind == config.KindMacvlan || i.Kind == config.KindVLAN) && ev.Name == i.Parent:
				in.What = "parent of a declared interface in the default namespace"
				return in, true
			case ev.Namespace == t.Name && ev.Gone && ev.Name == i.Name:
				in.What = "declared interface gone from its tenant"
				return in, true
			}
		}
	}
	return Interest{}, false
}
