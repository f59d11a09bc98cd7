package config

// The validated routing state of a tenant (tables, static routes, policy
// rules). docs/routing.md documents every key.

import (
	"fmt"
	"net/netip"
)

// Kernel routing table ids with fixed meaning.
const (
	TableMain    uint32 = 254
	TableLocal   uint32 = 255
	TableDefault uint32 = 253
)

// Route types.
const (
	RouteUnicast     = "unicast"
	RouteBlackhole   = "blackhole"
	RouteUnreachable = "unreachable"
	RouteProhibit    = "prohibit"
)

// DefaultIPv6Metric is the metric the kernel gives an IPv6 route that asks
// for none; fwd plans with it so read-back compares equal.
const DefaultIPv6Metric = 1024

// Routing is a tenant's validated routing state.
type Routing struct {
	Tables []Table     // declared tables, sorted by name
	Routes []Route     // in file order
	Rules  []RouteRule // in file order
}

// TableID returns the id of a table name ("main" or declared), or 0.
func (r *Routing) TableID(name string) uint32 {
	if name == "" || name == "main" {
		return TableMain
	}
	for _, t := range r.Tables {
		if t.Name == name {
			return t.ID
		}
	}
	return 0
}

// TableName returns the name of a table id ("main", declared name, or the number).
func (r *Routing) TableName(id uint32) string {
	switch id {
	case TableMain:
		return "main"
	case TableLocal:
		return "local"
	case TableDefault:
		return "default"
	}
	for _, t := range r.Tables {
		if t.ID == id {
			return t.Name
		}
	}
	return fmt.Sprint(id)
}

// Table is a named routing table.
type Table struct {
	Name string
	ID   uint32
}

// Route is one static route.
type Route struct {
	Key      string       // config key path, e.g. tenant.edge.route[0]
	Line     int          // line of its [[route]] header, 1-based; 0 when unknown
	To       netip.Prefix // masked; 0.0.0.0/0 or ::/0 for default
	Type     string       // unicast, blackhole, unreachable, prohibit
	NextHops []NextHop    // unicast via gateway(s); empty for dev-only or non-unicast routes
	Dev      string       // dev-only route (no gateway): the interface
	Metric   uint32       // IPv6 default 1024, IPv4 default 0
	Table    string       // "main" or a declared table name
	TableID  uint32
	Src      netip.Addr // preferred source, may be invalid
}

// NextHop is one gateway of a route; several make an ECMP route.
type NextHop struct {
	Via    netip.Addr
	Dev    string // "" lets the kernel pick the interface
	Weight int    // 1-256
	OnLink bool
}

// RouteRule is one policy routing rule (ip rule) for one address family.
type RouteRule struct {
	Key      string // config key path, e.g. tenant.edge.route_rule[0]
	Line     int    // line of its [[route_rule]] header, 1-based; 0 when unknown
	Family   int    // 4 or 6
	Priority uint32
	From     netip.Prefix // may be invalid (any)
	// FromIf matches the addresses the interface holds when the rule is
	// applied (static and learned: DHCP, SLAAC), each as a host prefix;
	// From is then invalid. A lease change re-applies it.
	FromIf  string
	To      netip.Prefix // may be invalid (any)
	IIF     string
	OIF     string
	FwMark  uint32
	FwMask  uint32 // 0 with FwMark set means exact match (0xffffffff)
	HasMark bool
	Table   string
	TableID uint32
}
