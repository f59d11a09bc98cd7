package explain

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/routing"
)

// The kernel's fixed policy routing rules around fwd's own.
const (
	prioLocal   = 0
	prioMain    = 32766
	prioDefault = 32767
)

type rentry struct {
	dst    netip.Prefix
	typ    uint8
	metric uint32
	src    netip.Addr
	nhs    []routing.NextHop
	origin string // connected, static
	key    string
}

// router holds a tenant's planned routing state: routing.Plan's routes
// and rules, plus what the kernel adds by itself (connected routes of
// the interface addresses, the local table, the main/default rules).
type router struct {
	t      *config.Tenant
	tables map[uint32][]rentry
	rules  []routing.Rule
	place  func(key string) *RuleRef // a static route's TOML position
}

func newRouter(t *config.Tenant) *router {
	d := routing.Compile(t)
	rt := &router{t: t, tables: map[uint32][]rentry{}}
	for _, ifc := range t.Interfaces {
		for _, a := range ifc.Addresses {
			m := uint32(0)
			if a.Addr().Is6() {
				m = 256
			}
			rt.tables[config.TableMain] = append(rt.tables[config.TableMain], rentry{
				dst: a.Masked(), typ: routing.TypeUnicast, metric: m, src: a.Addr(),
				nhs: []routing.NextHop{{Dev: ifc.Name}}, origin: "connected"})
		}
	}
	for i, r := range d.Routes {
		e := rentry{dst: r.Dst, typ: r.Type, metric: r.Metric, src: r.Src, nhs: r.NextHops, origin: "static"}
		if e.typ == 0 {
			e.typ = routing.TypeUnicast
		}
		if i < len(t.Routing.Routes) {
			e.key = t.Routing.Routes[i].Key
		}
		rt.tables[r.Table] = append(rt.tables[r.Table], e)
	}
	rt.rules = d.Rules
	return rt
}

// local reports whether a is an address of the tenant's namespace.
// holds reports whether interface ifname has address a in the
// configuration. An explanation is computed from the configuration, so
// the addresses a DHCP client learns are not known to it: a
// from_interface rule of such an interface matches no source here.
func (rt *router) holds(ifname string, a netip.Addr) bool {
	if ifc := rt.t.Interface(ifname); ifc != nil {
		for _, p := range ifc.Addresses {
			if p.Addr() == a {
				return true
			}
		}
	}
	return false
}

func (rt *router) local(a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	for _, ifc := range rt.t.Interfaces {
		for _, p := range ifc.Addresses {
			if p.Addr() == a {
				return true
			}
		}
	}
	return false
}

func (rt *router) ruleMatches(r routing.Rule, v6 bool, src, dst netip.Addr, iif string) bool {
	if (r.Family == 6) != v6 {
		return false
	}
	if r.From.IsValid() && !r.From.Contains(src) {
		return false
	}
	if r.FromIf != "" && !rt.holds(r.FromIf, src) {
		return false
	}
	if r.To.IsValid() && !r.To.Contains(dst) {
		return false
	}
	if r.IIF != "" && r.IIF != iif {
		return false
	}
	if r.OIF != "" {
		return false // only sockets bound to an interface set the flow's oif
	}
	if r.HasMark {
		mask := r.Mask
		if mask == 0 {
			mask = 0xffffffff
		}
		if 0&mask != r.Mark { // fwd sets no marks: packets carry mark 0
			return false
		}
	}
	return true
}

// lookup resolves dst as the kernel's fib_lookup does: rules by
// priority, the longest matching prefix in the selected table (lowest
// metric among equals); a table without a match lets the next rule try.
func (rt *router) lookup(src, dst netip.Addr, iif string) *Route {
	type cand struct {
		prio  uint32
		table uint32
		text  string
	}
	v6 := dst.Is6()
	cands := []cand{{prioLocal, config.TableLocal, "0: from all lookup local"}}
	for _, r := range rt.rules {
		if rt.ruleMatches(r, v6, src, dst, iif) {
			cands = append(cands, cand{r.Priority, r.Table, r.String()})
		}
	}
	cands = append(cands, cand{prioMain, config.TableMain, "32766: from all lookup main"}, cand{prioDefault, config.TableDefault, "32767: from all lookup default"})
	slices.SortStableFunc(cands, func(a, b cand) int { return int(int64(a.prio) - int64(b.prio)) })
	for _, c := range cands {
		if c.table == config.TableLocal {
			if rt.local(dst) {
				return &Route{Rule: c.text, Table: "local", TableID: c.table, Dst: netip.PrefixFrom(dst, dst.BitLen()), Type: "local", Dev: "lo", Origin: "local"}
			}
			continue
		}
		best := -1
		for i, e := range rt.tables[c.table] {
			if !e.dst.Contains(dst) {
				continue
			}
			if best < 0 {
				best = i
				continue
			}
			b := rt.tables[c.table][best]
			if e.dst.Bits() > b.dst.Bits() || (e.dst.Bits() == b.dst.Bits() && e.metric < b.metric) {
				best = i
			}
		}
		if best < 0 {
			continue
		}
		e := rt.tables[c.table][best]
		r := &Route{Rule: c.text, Table: rt.t.Routing.TableName(c.table), TableID: c.table, Dst: e.dst, Type: routing.TypeName(e.typ), Src: e.src, Origin: e.origin}
		if e.key != "" && rt.place != nil {
			r.Ref = rt.place(e.key)
		}
		if e.typ == routing.TypeUnicast && len(e.nhs) > 0 {
			nh := e.nhs[0]
			r.Via, r.Dev = nh.Gw, nh.Dev
			if r.Dev == "" {
				r.Dev = rt.connectedDev(nh.Gw)
			}
			for _, alt := range e.nhs[1:] {
				s := "via " + alt.Gw.String()
				if alt.Dev != "" {
					s += " dev " + alt.Dev
				}
				r.Alternatives = append(r.Alternatives, s)
			}
		}
		return r
	}
	return &Route{Rule: "no rule's table has a route", Type: "none", Origin: "none"}
}

// connectedDev is the interface whose subnet holds gw.
func (rt *router) connectedDev(gw netip.Addr) string {
	for _, ifc := range rt.t.Interfaces {
		for _, p := range ifc.Addresses {
			if p.Masked().Contains(gw) {
				return ifc.Name
			}
		}
	}
	return ""
}

// sourceFor picks the address masquerade uses on dev toward next hop nh:
// the route's preferred source, else the interface address of the right
// family whose subnet holds the next hop, else its first one.
func (rt *router) sourceFor(dev string, nh netip.Addr, pref netip.Addr) (netip.Addr, error) {
	ifc := rt.t.Interface(dev)
	if ifc == nil {
		return netip.Addr{}, fmt.Errorf("no interface %q", dev)
	}
	if pref.IsValid() && pref.Is6() == nh.Is6() {
		for _, p := range ifc.Addresses {
			if p.Addr() == pref {
				return pref, nil
			}
		}
	}
	var first netip.Addr
	for _, p := range ifc.Addresses {
		if p.Addr().Is6() != nh.Is6() || p.Addr().IsLinkLocalUnicast() {
			continue
		}
		if p.Masked().Contains(nh) {
			return p.Addr(), nil
		}
		if !first.IsValid() {
			first = p.Addr()
		}
	}
	if !first.IsValid() {
		return first, fmt.Errorf("interface %s has no %s address", dev, family(nh.Is6()))
	}
	return first, nil
}
