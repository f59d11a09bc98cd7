package config

// Routing validation: tables and static routes here, route rules in
// validate_route_rules.go. The keys live directly under [tenant.NAME]:
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
	"strings"
)

var (
	reTableName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,30}$`)
	routeTypes  = map[string]bool{RouteUnicast: true, RouteBlackhole: true, RouteUnreachable: true, RouteProhibit: true}
)

// routingRefs resolves what routes and route rules refer to: tables,
// interfaces and the tenant's connected subnets.
type routingRefs struct {
	tr        reporter // the tenant's reporter, for the table hint
	t         *Tenant
	raw       *rawRouting
	connected []connected
	local     map[netip.Addr]bool
}

type connected struct {
	iface string
	p     netip.Prefix
}

// validateRouting validates a tenant's routing keys; r is the tenant's
// reporter.
func validateRouting(r reporter, raw *rawRouting, t *Tenant) {
	validateTables(r.in("table"), raw.Table, &t.Routing)
	refs := &routingRefs{tr: r, t: t, raw: raw, local: map[netip.Addr]bool{}}
	for _, i := range t.Interfaces {
		for _, a := range i.Addresses {
			refs.connected = append(refs.connected, connected{i.Name, a.Masked()})
			refs.local[a.Addr()] = true
		}
	}
	type routeKey struct {
		table  uint32
		to     netip.Prefix
		metric uint32
	}
	seen := map[routeKey]string{}
	rr := r.in("route")
	for i := range raw.Route {
		route, ok := validateRoute(rr.at(i), &raw.Route[i], refs)
		if !ok {
			continue
		}
		k := routeKey{route.TableID, route.To, route.Metric}
		if prev, dup := seen[k]; dup {
			rr.at(i).errorf("duplicate route: %s in table %s with metric %d is already defined at %s", route.To, route.Table, route.Metric, prev)
			continue
		}
		seen[k] = route.Key
		t.Routing.Routes = append(t.Routing.Routes, route)
	}
	validateRouteRules(r.in("route_rule"), raw.RouteRule, refs)
}

// validateTables validates the [tenant.T.table.NAME] tables.
func validateTables(r reporter, raw map[string]rawTable, rt *Routing) {
	ids := map[uint32]string{}
	for _, n := range sortedKeys(raw) {
		tr := r.in(n)
		tb := raw[n]
		switch {
		case n == "main" || n == "local" || n == "default":
			tr.errorf("table name %q is reserved by the kernel", n)
			continue
		case !reTableName.MatchString(n):
			tr.errorf("invalid table name %q: use 1-31 characters a-z, 0-9, '-' or '_', starting with a letter", n)
			continue
		case tb.ID == nil:
			tr.in("id").errorf("table id is required")
			continue
		}
		id := *tb.ID
		switch {
		case id < 1 || id > math.MaxUint32:
			tr.in("id").errorf("table id %d out of range 1-4294967295", id)
		case uint32(id) == TableMain || uint32(id) == TableLocal || uint32(id) == TableDefault:
			tr.in("id").errorf("table id %d is reserved (253 default, 254 main, 255 local)", id)
		case ids[uint32(id)] != "":
			tr.in("id").errorf("table id %d is already used by table %q", id, ids[uint32(id)])
		default:
			ids[uint32(id)] = n
			rt.Tables = append(rt.Tables, Table{Name: n, ID: uint32(id)})
		}
	}
}

// table checks a table reference; "" and "main" are the main table.
func (c *routingRefs) table(r reporter, name string) bool {
	if name == "" || name == "main" || c.t.Routing.TableID(name) != 0 {
		return true
	}
	if _, ok := c.raw.Table[name]; !ok { // else reported at its declaration
		r.errorf("table %q is not declared: add [%s.table.%s] with an id", name, c.tr.key, name)
	}
	return false
}

// iface checks an interface reference; allowLo admits the loopback.
func (c *routingRefs) iface(r reporter, name string, allowLo bool) bool {
	if name == "lo" && allowLo {
		return true
	}
	if c.t.Interface(name) == nil {
		r.errorf("interface %q is not declared in tenant %q", name, c.t.Name)
		return false
	}
	return true
}

func (c *routingRefs) onSubnet(gw netip.Addr, dev string) bool {
	for _, s := range c.connected {
		if (dev == "" || dev == s.iface) && s.p.Contains(gw) {
			return true
		}
	}
	return false
}

// gateway validates one gateway (r is the route's or nexthop's reporter)
// of a route of family fam (0: unknown).
func (c *routingRefs) gateway(r reporter, via, dev string, onlink bool, fam int) (netip.Addr, bool) {
	gw, ok := parseHost(via)
	if !ok {
		r.in("via").errorf("invalid gateway address %q", via)
		return netip.Addr{}, false
	}
	if fam != 0 && family(gw) != fam {
		r.in("via").errorf("gateway %s is %s but the route is %s", gw, familyName(family(gw)), familyName(fam))
		return netip.Addr{}, false
	}
	if dev != "" && !c.iface(r.in("dev"), dev, false) {
		return netip.Addr{}, false
	}
	switch {
	case onlink:
		if dev == "" {
			r.in("onlink").errorf("onlink needs dev: the kernel must know which interface the gateway is on")
			return netip.Addr{}, false
		}
	case gw.Is6() && gw.IsLinkLocalUnicast():
		if dev == "" {
			r.in("dev").errorf("link-local gateway %s needs dev", gw)
			return netip.Addr{}, false
		}
	case !c.onSubnet(gw, dev):
		if dev != "" {
			r.in("via").errorf("gateway %s is not on a connected subnet of interface %q (set onlink = true if it is reachable anyway)", gw, dev)
		} else {
			r.in("via").errorf("gateway %s is not on any connected subnet of tenant %q (set dev and onlink = true if it is reachable anyway)", gw, c.t.Name)
		}
		return netip.Addr{}, false
	}
	return gw, true
}

// validateRoute validates one [[tenant.T.route]]; ok is false when it has
// a problem.
func validateRoute(r reporter, ro *rawRoute, c *routingRefs) (route Route, ok bool) {
	start := r.problems()
	route = Route{Key: r.key, Line: r.line(), Type: ro.Type, Table: ro.Table, Dev: ro.Dev}
	if route.Type == "" {
		route.Type = RouteUnicast
	}
	if !routeTypes[route.Type] {
		r.in("type").errorf("unknown route type %q (unicast, blackhole, unreachable, prohibit)", ro.Type)
	}
	if route.Table == "" {
		route.Table = "main"
	}
	c.table(r.in("table"), ro.Table)
	route.TableID = c.t.Routing.TableID(route.Table)

	// The destination's family, from the prefix or, for "default", from
	// the gateways or source.
	fam := 0
	switch ro.To {
	case "":
		r.in("to").errorf("to is required (a prefix or \"default\")")
		return route, false
	case "default":
		for _, s := range append([]string{ro.Via, ro.Src}, nhVias(ro.Nexthops)...) {
			if a, err := netip.ParseAddr(s); err == nil {
				fam = family(a)
				break
			}
		}
		switch fam {
		case 0:
			r.in("to").errorf("\"default\" without a gateway or src has no address family: write 0.0.0.0/0 or ::/0")
			return route, false
		case 4:
			route.To = netip.MustParsePrefix("0.0.0.0/0")
		default:
			route.To = netip.MustParsePrefix("::/0")
		}
	default:
		p, why := parseRoutePrefix(ro.To)
		if why != "" {
			r.in("to").errorf("%s", why)
			return route, false
		}
		route.To, fam = p, family(p.Addr())
	}

	if ro.Metric != nil {
		if *ro.Metric < 0 || *ro.Metric > math.MaxUint32 {
			r.in("metric").errorf("metric %d out of range 0-4294967295", *ro.Metric)
		} else {
			route.Metric = uint32(*ro.Metric)
		}
	}
	if fam == 6 && route.Metric == 0 {
		route.Metric = DefaultIPv6Metric
	}
	if ro.Src != "" {
		sr := r.in("src")
		a, ok := parseHost(ro.Src)
		switch {
		case !ok:
			sr.errorf("invalid source address %q", ro.Src)
		case family(a) != fam:
			sr.errorf("source %s is %s but the route is %s", a, familyName(family(a)), familyName(fam))
		case !c.local[a]:
			sr.errorf("source %s is not an address of tenant %q", a, c.t.Name)
		default:
			route.Src = a
		}
	}
	if route.Type != RouteUnicast {
		if ro.Via != "" || len(ro.Nexthops) > 0 || ro.Dev != "" || ro.OnLink || ro.Src != "" {
			r.in("type").errorf("a %s route takes no via, nexthops, dev, onlink or src", route.Type)
		}
	} else {
		c.nexthops(r, ro, &route, fam)
	}
	return route, r.problems() == start
}

// nexthops validates how a unicast route leaves: via, nexthops or dev.
func (c *routingRefs) nexthops(r reporter, ro *rawRoute, route *Route, fam int) {
	switch {
	case ro.Via != "" && len(ro.Nexthops) > 0:
		r.errorf("via and nexthops are exclusive: list every gateway under nexthops")
	case ro.Via != "":
		gw, _ := c.gateway(r, ro.Via, ro.Dev, ro.OnLink, fam)
		route.NextHops = []NextHop{{Via: gw, Dev: ro.Dev, Weight: 1, OnLink: ro.OnLink}}
		route.Dev = ""
	case len(ro.Nexthops) > 0:
		if ro.Dev != "" || ro.OnLink {
			r.errorf("dev and onlink go inside each nexthop")
		}
		gws := map[netip.Addr]bool{}
		nr := r.in("nexthops")
		for j, nh := range ro.Nexthops {
			hr := nr.at(j)
			if nh.Via == "" {
				hr.in("via").errorf("via is required")
				continue
			}
			gw, ok := c.gateway(hr, nh.Via, nh.Dev, nh.OnLink, fam)
			if !ok {
				continue
			}
			if gws[gw] {
				hr.in("via").errorf("gateway %s is listed twice", gw)
			}
			gws[gw] = true
			w := int64(1)
			if nh.Weight != nil {
				w = *nh.Weight
			}
			if w < 1 || w > 256 {
				hr.in("weight").errorf("weight %d out of range 1-256", w)
			}
			route.NextHops = append(route.NextHops, NextHop{Via: gw, Dev: nh.Dev, Weight: int(w), OnLink: nh.OnLink})
		}
	case ro.Dev != "":
		if ro.OnLink {
			r.in("onlink").errorf("onlink needs a gateway (via)")
		}
		c.iface(r.in("dev"), ro.Dev, false)
	default:
		r.errorf("a unicast route needs via, nexthops or dev")
	}
}

func nhVias(nhs []rawNexthop) []string {
	var out []string
	for _, n := range nhs {
		out = append(out, n.Via)
	}
	return out
}

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
