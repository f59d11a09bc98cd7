package config

// Routing (tables, static routes, policy rules) of a tenant. The keys live
// directly under [tenant.NAME] because rawTenant embeds rawRouting:
//
//	[tenant.edge.table.isp2]   id = 100
//	[[tenant.edge.route]]      to, via | nexthops | dev, metric, table, type, src, onlink
//	[[tenant.edge.route_rule]] priority, from, to, iif, oif, fwmark, fwmask, family, table
//
// docs/routing.md documents every key.

import (
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"sort"
	"strings"
)

type rawRouting struct {
	Table     map[string]rawTable `toml:"table"`
	Route     []rawRoute          `toml:"route"`
	RouteRule []rawRouteRule      `toml:"route_rule"`
}

type rawTable struct {
	ID *int64 `toml:"id"`
}

type rawRoute struct {
	To       string       `toml:"to"`
	Via      string       `toml:"via"`
	Dev      string       `toml:"dev"`
	OnLink   bool         `toml:"onlink"`
	Nexthops []rawNexthop `toml:"nexthops"`
	Metric   *int64       `toml:"metric"`
	Table    string       `toml:"table"`
	Type     string       `toml:"type"`
	Src      string       `toml:"src"`
}

type rawNexthop struct {
	Via    string `toml:"via"`
	Dev    string `toml:"dev"`
	Weight *int64 `toml:"weight"`
	OnLink bool   `toml:"onlink"`
}

type rawRouteRule struct {
	Priority *int64 `toml:"priority"`
	From     string `toml:"from"`
	To       string `toml:"to"`
	IIF      string `toml:"iif"`
	OIF      string `toml:"oif"`
	FwMark   *int64 `toml:"fwmark"`
	FwMask   *int64 `toml:"fwmask"`
	Family   string `toml:"family"`
	Table    string `toml:"table"`
}

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
	Family   int    // 4 or 6
	Priority uint32
	From     netip.Prefix // may be invalid (any)
	To       netip.Prefix // may be invalid (any)
	IIF      string
	OIF      string
	FwMark   uint32
	FwMask   uint32 // 0 with FwMark set means exact match (0xffffffff)
	HasMark  bool
	Table    string
	TableID  uint32
}

var reTableName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,30}$`)

var routeTypes = map[string]bool{RouteUnicast: true, RouteBlackhole: true, RouteUnreachable: true, RouteProhibit: true}

func family(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

func familyName(f int) string {
	if f == 4 {
		return "IPv4"
	}
	return "IPv6"
}

// parseRoutePrefix parses a destination or selector prefix. "default" is
// handled by the caller because its family comes from elsewhere.
func parseRoutePrefix(s string) (netip.Prefix, string) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Sprintf("invalid prefix %q: want address/prefix-length, e.g. 198.51.100.0/24", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), ""
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Addr().Zone() != "" || p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Sprintf("invalid prefix %q: want address/prefix-length, e.g. 198.51.100.0/24", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Sprintf("prefix %q has host bits set: did you mean %s?", s, p.Masked())
	}
	return p, ""
}

func parseHost(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Is4In6() || a.IsUnspecified() || a.IsMulticast() {
		return netip.Addr{}, false
	}
	return a, true
}

func validateRouting(r *reporter, tkey string, raw *rawTenant, t *Tenant) {
	rr := &raw.rawRouting
	rt := &t.Routing

	// Tables.
	names := make([]string, 0, len(rr.Table))
	for n := range rr.Table {
		names = append(names, n)
	}
	sort.Strings(names)
	ids := map[uint32]string{}
	for _, n := range names {
		key := tkey + ".table." + n
		tb := rr.Table[n]
		switch {
		case n == "main" || n == "local" || n == "default":
			r.add(key, "table name %q is reserved by the kernel", n)
			continue
		case !reTableName.MatchString(n):
			r.add(key, "invalid table name %q: use 1-31 characters a-z, 0-9, '-' or '_', starting with a letter", n)
			continue
		case tb.ID == nil:
			r.add(key+".id", "table id is required")
			continue
		}
		id := *tb.ID
		if id < 1 || id > math.MaxUint32 {
			r.add(key+".id", "table id %d out of range 1-4294967295", id)
			continue
		}
		switch uint32(id) {
		case TableMain, TableLocal, TableDefault:
			r.add(key+".id", "table id %d is reserved (253 default, 254 main, 255 local)", id)
			continue
		}
		if prev, ok := ids[uint32(id)]; ok {
			r.add(key+".id", "table id %d is already used by table %q", id, prev)
			continue
		}
		ids[uint32(id)] = n
		rt.Tables = append(rt.Tables, Table{Name: n, ID: uint32(id)})
	}
	declared := func(name string) bool { return name == "" || name == "main" || rt.TableID(name) != 0 }
	undeclaredTable := func(key, name string) {
		if _, ok := rr.Table[name]; ok {
			return // already reported at its declaration
		}
		r.add(key, "table %q is not declared: add [%s.table.%s] with an id", name, tkey, name)
	}

	// Connected subnets, per interface.
	type conn struct {
		iface string
		p     netip.Prefix
	}
	var connected []conn
	local := map[netip.Addr]bool{}
	for _, i := range t.Interfaces {
		for _, a := range i.Addresses {
			connected = append(connected, conn{i.Name, a.Masked()})
			local[a.Addr()] = true
		}
	}
	onSubnet := func(gw netip.Addr, dev string) bool {
		for _, c := range connected {
			if (dev == "" || dev == c.iface) && c.p.Contains(gw) {
				return true
			}
		}
		return false
	}
	ifaceOK := func(key, name string, allowLo bool) bool {
		if name == "lo" && allowLo {
			return true
		}
		if t.Interface(name) == nil {
			r.add(key, "interface %q is not declared in tenant %q", name, t.Name)
			return false
		}
		return true
	}
	// checkGateway validates one gateway and returns it.
	checkGateway := func(key, via, dev string, onlink bool, fam int) (netip.Addr, bool) {
		gw, ok := parseHost(via)
		if !ok {
			r.add(key+".via", "invalid gateway address %q", via)
			return netip.Addr{}, false
		}
		if fam != 0 && family(gw) != fam {
			r.add(key+".via", "gateway %s is %s but the route is %s", gw, familyName(family(gw)), familyName(fam))
			return netip.Addr{}, false
		}
		if dev != "" && !ifaceOK(key+".dev", dev, false) {
			return netip.Addr{}, false
		}
		switch {
		case onlink:
			if dev == "" {
				r.add(key+".onlink", "onlink needs dev: the kernel must know which interface the gateway is on")
				return netip.Addr{}, false
			}
		case gw.Is6() && gw.IsLinkLocalUnicast():
			if dev == "" {
				r.add(key+".dev", "link-local gateway %s needs dev", gw)
				return netip.Addr{}, false
			}
		case !onSubnet(gw, dev):
			if dev != "" {
				r.add(key+".via", "gateway %s is not on a connected subnet of interface %q (set onlink = true if it is reachable anyway)", gw, dev)
			} else {
				r.add(key+".via", "gateway %s is not on any connected subnet of tenant %q (set dev and onlink = true if it is reachable anyway)", gw, t.Name)
			}
			return netip.Addr{}, false
		}
		return gw, true
	}

	type rkey struct {
		table  uint32
		to     netip.Prefix
		metric uint32
	}
	seen := map[rkey]string{}
	for i, ro := range rr.Route {
		key := fmt.Sprintf("%s.route[%d]", tkey, i)
		route := Route{Key: key, Type: ro.Type, Table: ro.Table, Dev: ro.Dev}
		bad := false
		if route.Type == "" {
			route.Type = RouteUnicast
		}
		if !routeTypes[route.Type] {
			r.add(key+".type", "unknown route type %q (unicast, blackhole, unreachable, prohibit)", ro.Type)
			bad = true
		}
		if route.Table == "" {
			route.Table = "main"
		}
		if !declared(ro.Table) {
			undeclaredTable(key+".table", ro.Table)
			bad = true
		}
		route.TableID = rt.TableID(route.Table)

		// The destination's family, from the prefix or, for "default",
		// from the gateways or source.
		fam := 0
		switch ro.To {
		case "":
			r.add(key+".to", "to is required (a prefix or \"default\")")
			continue
		case "default":
			for _, s := range append([]string{ro.Via, ro.Src}, nhVias(ro.Nexthops)...) {
				if a, err := netip.ParseAddr(s); err == nil {
					fam = family(a)
					break
				}
			}
			if fam == 0 {
				r.add(key+".to", "\"default\" without a gateway or src has no address family: write 0.0.0.0/0 or ::/0")
				continue
			}
			if fam == 4 {
				route.To = netip.MustParsePrefix("0.0.0.0/0")
			} else {
				route.To = netip.MustParsePrefix("::/0")
			}
		default:
			p, why := parseRoutePrefix(ro.To)
			if why != "" {
				r.add(key+".to", "%s", why)
				continue
			}
			route.To, fam = p, family(p.Addr())
		}

		if ro.Metric != nil {
			if *ro.Metric < 0 || *ro.Metric > math.MaxUint32 {
				r.add(key+".metric", "metric %d out of range 0-4294967295", *ro.Metric)
				bad = true
			} else {
				route.Metric = uint32(*ro.Metric)
			}
		}
		if fam == 6 && route.Metric == 0 {
			route.Metric = DefaultIPv6Metric
		}
		if ro.Src != "" {
			a, ok := parseHost(ro.Src)
			switch {
			case !ok:
				r.add(key+".src", "invalid source address %q", ro.Src)
				bad = true
			case family(a) != fam:
				r.add(key+".src", "source %s is %s but the route is %s", a, familyName(family(a)), familyName(fam))
				bad = true
			case !local[a]:
				r.add(key+".src", "source %s is not an address of tenant %q", a, t.Name)
				bad = true
			default:
				route.Src = a
			}
		}

		if route.Type != RouteUnicast {
			if ro.Via != "" || len(ro.Nexthops) > 0 || ro.Dev != "" || ro.OnLink || ro.Src != "" {
				r.add(key+".type", "a %s route takes no via, nexthops, dev, onlink or src", route.Type)
				bad = true
			}
		} else {
			switch {
			case ro.Via != "" && len(ro.Nexthops) > 0:
				r.add(key, "via and nexthops are exclusive: list every gateway under nexthops")
				bad = true
			case ro.Via != "":
				gw, ok := checkGateway(key, ro.Via, ro.Dev, ro.OnLink, fam)
				if !ok {
					bad = true
				}
				route.NextHops = []NextHop{{Via: gw, Dev: ro.Dev, Weight: 1, OnLink: ro.OnLink}}
				route.Dev = ""
			case len(ro.Nexthops) > 0:
				if ro.Dev != "" || ro.OnLink {
					r.add(key, "dev and onlink go inside each nexthop")
					bad = true
				}
				gws := map[netip.Addr]bool{}
				for j, nh := range ro.Nexthops {
					nkey := fmt.Sprintf("%s.nexthops[%d]", key, j)
					if nh.Via == "" {
						r.add(nkey+".via", "via is required")
						bad = true
						continue
					}
					gw, ok := checkGateway(nkey, nh.Via, nh.Dev, nh.OnLink, fam)
					if !ok {
						bad = true
						continue
					}
					if gws[gw] {
						r.add(nkey+".via", "gateway %s is listed twice", gw)
						bad = true
					}
					gws[gw] = true
					w := int64(1)
					if nh.Weight != nil {
						w = *nh.Weight
					}
					if w < 1 || w > 256 {
						r.add(nkey+".weight", "weight %d out of range 1-256", w)
						bad = true
					}
					route.NextHops = append(route.NextHops, NextHop{Via: gw, Dev: nh.Dev, Weight: int(w), OnLink: nh.OnLink})
				}
			case ro.Dev != "":
				if ro.OnLink {
					r.add(key+".onlink", "onlink needs a gateway (via)")
					bad = true
				}
				if !ifaceOK(key+".dev", ro.Dev, false) {
					bad = true
				}
			default:
				r.add(key, "a unicast route needs via, nexthops or dev")
				bad = true
			}
		}
		if bad {
			continue
		}
		k := rkey{route.TableID, route.To, route.Metric}
		if prev, ok := seen[k]; ok {
			r.add(key, "duplicate route: %s in table %s with metric %d is already defined at %s", route.To, route.Table, route.Metric, prev)
			continue
		}
		seen[k] = key
		rt.Routes = append(rt.Routes, route)
	}

	// Policy rules.
	type pkey struct {
		fam  int
		prio uint32
	}
	prios := map[pkey]string{}
	for i, ru := range rr.RouteRule {
		key := fmt.Sprintf("%s.route_rule[%d]", tkey, i)
		rule := RouteRule{Key: key, Table: ru.Table, IIF: ru.IIF, OIF: ru.OIF}
		bad := false
		switch {
		case ru.Priority == nil:
			r.add(key+".priority", "priority is required (1-32765): rules are matched in priority order")
			bad = true
		case *ru.Priority < 1 || *ru.Priority > 32765:
			r.add(key+".priority", "priority %d out of range 1-32765 (0, 32766 and 32767 hold the kernel's local, main and default rules)", *ru.Priority)
			bad = true
		default:
			rule.Priority = uint32(*ru.Priority)
		}
		if ru.Table == "" {
			r.add(key+".table", "table is required")
			bad = true
		} else if !declared(ru.Table) {
			undeclaredTable(key+".table", ru.Table)
			bad = true
		}
		rule.TableID = rt.TableID(ru.Table)
		fams := map[int]bool{}
		for _, sel := range []struct {
			name string
			s    string
			p    *netip.Prefix
		}{{"from", ru.From, &rule.From}, {"to", ru.To, &rule.To}} {
			if sel.s == "" {
				continue
			}
			p, why := parseRoutePrefix(sel.s)
			if why != "" {
				r.add(key+"."+sel.name, "%s", why)
				bad = true
				continue
			}
			*sel.p = p
			fams[family(p.Addr())] = true
		}
		if len(fams) == 2 {
			r.add(key+".to", "from is %s but to is %s", familyName(family(rule.From.Addr())), familyName(family(rule.To.Addr())))
			bad = true
		}
		var families []int
		switch ru.Family {
		case "":
			if fams[4] {
				families = []int{4}
			} else if fams[6] {
				families = []int{6}
			} else {
				families = []int{4, 6}
			}
		case "ipv4", "ipv6":
			f := 4
			if ru.Family == "ipv6" {
				f = 6
			}
			if len(fams) > 0 && !fams[f] {
				r.add(key+".family", "family is %s but the rule's prefixes are not", ru.Family)
				bad = true
			}
			families = []int{f}
		case "both":
			if len(fams) > 0 {
				r.add(key+".family", "family \"both\" cannot be used with from or to prefixes")
				bad = true
			}
			families = []int{4, 6}
		default:
			r.add(key+".family", "unknown family %q (ipv4, ipv6, both)", ru.Family)
			bad = true
		}
		if ru.IIF != "" && !ifaceOK(key+".iif", ru.IIF, true) {
			bad = true
		}
		if ru.OIF != "" && !ifaceOK(key+".oif", ru.OIF, true) {
			bad = true
		}
		if ru.FwMark != nil {
			if *ru.FwMark < 0 || *ru.FwMark > math.MaxUint32 {
				r.add(key+".fwmark", "fwmark %d out of range 0-0xffffffff", *ru.FwMark)
				bad = true
			}
			rule.FwMark, rule.HasMark = uint32(*ru.FwMark), true
			rule.FwMask = math.MaxUint32
		}
		if ru.FwMask != nil {
			switch {
			case ru.FwMark == nil:
				r.add(key+".fwmask", "fwmask needs fwmark")
				bad = true
			case *ru.FwMask < 1 || *ru.FwMask > math.MaxUint32:
				r.add(key+".fwmask", "fwmask %d out of range 1-0xffffffff", *ru.FwMask)
				bad = true
			default:
				rule.FwMask = uint32(*ru.FwMask)
				if rule.FwMark&^rule.FwMask != 0 {
					r.add(key+".fwmark", "fwmark %#x has bits outside fwmask %#x", rule.FwMark, rule.FwMask)
					bad = true
				}
			}
		}
		if bad {
			continue
		}
		clash := false
		for _, f := range families {
			if prev, ok := prios[pkey{f, rule.Priority}]; ok {
				r.add(key+".priority", "priority %d clashes with %s (%s)", rule.Priority, prev, familyName(f))
				clash = true
				break
			}
		}
		if clash {
			continue
		}
		for _, f := range families {
			prios[pkey{f, rule.Priority}] = key
			rf := rule
			rf.Family = f
			rt.Rules = append(rt.Rules, rf)
		}
	}
}

func nhVias(nhs []rawNexthop) []string {
	var out []string
	for _, n := range nhs {
		out = append(out, n.Via)
	}
	return out
}
