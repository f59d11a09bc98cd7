package config

import (
	"math"
	"net/netip"
)

// validateRouteRules validates the [[tenant.T.route_rule]] entries. A
// rule without prefixes and without family applies to both families and
// becomes two model rules.
func validateRouteRules(r reporter, raw []rawRouteRule, c *routingRefs) {
	type prioKey struct {
		fam  int
		prio uint32
	}
	prios := map[prioKey]string{}
	for i := range raw {
		rr := r.at(i)
		rule, families, ok := validateRouteRule(rr, &raw[i], c)
		if !ok {
			continue
		}
		clash := false
		for _, f := range families {
			if prev, taken := prios[prioKey{f, rule.Priority}]; taken {
				rr.in("priority").errorf("priority %d clashes with %s (%s)", rule.Priority, prev, familyName(f))
				clash = true
				break
			}
		}
		if clash {
			continue
		}
		for _, f := range families {
			prios[prioKey{f, rule.Priority}] = rr.key
			rf := rule
			rf.Family = f
			c.t.Routing.Rules = append(c.t.Routing.Rules, rf)
		}
	}
}

// validateRouteRule validates one rule and returns the families it
// applies to; ok is false when it has a problem.
func validateRouteRule(r reporter, ru *rawRouteRule, c *routingRefs) (rule RouteRule, families []int, ok bool) {
	start := r.problems()
	rule = RouteRule{Key: r.key, Line: r.line(), Table: ru.Table, IIF: ru.IIF, OIF: ru.OIF}
	switch pr := r.in("priority"); {
	case ru.Priority == nil:
		pr.errorf("priority is required (1-32765): rules are matched in priority order")
	case *ru.Priority < 1 || *ru.Priority > 32765:
		pr.errorf("priority %d out of range 1-32765 (0, 32766 and 32767 hold the kernel's local, main and default rules)", *ru.Priority)
	default:
		rule.Priority = uint32(*ru.Priority)
	}
	if ru.Table == "" {
		r.in("table").errorf("table is required")
	} else {
		c.table(r.in("table"), ru.Table)
	}
	rule.TableID = c.t.Routing.TableID(ru.Table)
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
			r.in(sel.name).errorf("%s", why)
			continue
		}
		*sel.p = p
		fams[family(p.Addr())] = true
	}
	if ru.FromIf != "" {
		switch {
		case ru.From != "":
			r.in("from_interface").errorf("from and from_interface exclude each other")
		case c.iface(r.in("from_interface"), ru.FromIf, false):
			rule.FromIf = ru.FromIf
		}
	}
	if len(fams) == 2 {
		r.in("to").errorf("from is %s but to is %s", familyName(family(rule.From.Addr())), familyName(family(rule.To.Addr())))
	}
	fr := r.in("family")
	switch ru.Family {
	case "":
		switch {
		case fams[4]:
			families = []int{4}
		case fams[6]:
			families = []int{6}
		default:
			families = []int{4, 6}
		}
	case "ipv4", "ipv6":
		f := 4
		if ru.Family == "ipv6" {
			f = 6
		}
		if len(fams) > 0 && !fams[f] {
			fr.errorf("family is %s but the rule's prefixes are not", ru.Family)
		}
		families = []int{f}
	case "both":
		if len(fams) > 0 {
			fr.errorf("family \"both\" cannot be used with from or to prefixes")
		}
		families = []int{4, 6}
	default:
		fr.errorf("unknown family %q (ipv4, ipv6, both)", ru.Family)
	}
	if ru.IIF != "" {
		c.iface(r.in("iif"), ru.IIF, true)
	}
	if ru.OIF != "" {
		c.iface(r.in("oif"), ru.OIF, true)
	}
	if ru.FwMark != nil {
		if *ru.FwMark < 0 || *ru.FwMark > math.MaxUint32 {
			r.in("fwmark").errorf("fwmark %d out of range 0-0xffffffff", *ru.FwMark)
		}
		rule.FwMark, rule.HasMark = uint32(*ru.FwMark), true
		rule.FwMask = math.MaxUint32
	}
	if ru.FwMask != nil {
		switch {
		case ru.FwMark == nil:
			r.in("fwmask").errorf("fwmask needs fwmark")
		case *ru.FwMask < 1 || *ru.FwMask > math.MaxUint32:
			r.in("fwmask").errorf("fwmask %d out of range 1-0xffffffff", *ru.FwMask)
		default:
			rule.FwMask = uint32(*ru.FwMask)
			if rule.FwMark&^rule.FwMask != 0 {
				r.in("fwmark").errorf("fwmark %#x has bits outside fwmask %#x", rule.FwMark, rule.FwMask)
			}
		}
	}
	return rule, families, r.problems() == start
}
