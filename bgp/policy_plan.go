package bgp

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/fwdproject/fwd/config"
	api "github.com/osrg/gobgp/v3/api"
)

// The neighbours' import and export filters as gobgp policies. Pure: the
// result is a SetPoliciesRequest value, unit-tested without a speaker.
//
// gobgp attaches policies to a neighbour only for route-server clients,
// so every neighbour's filters are statements of two global policies
// (fwd-import, fwd-export) whose conditions start with the neighbour.
// Statements run in order; one that accepts or rejects ends the
// evaluation, one without a route action only changes the route and
// evaluation goes on. Per neighbour and direction, in this order:
//
//  1. deny: one REJECT statement per kind of condition (prefixes of
//     each family, AS paths, standard and large communities);
//  2. allow: REJECT the routes matching no allow condition (inverted
//     sets, one statement per family when prefixes are involved); an
//     export filter without allow conditions rejects every route the
//     tenant did not originate;
//  3. the filter's own changes (local_pref, med, communities);
//  4. each rule: its changes on the routes matching all its conditions;
//  5. export: ACCEPT, with next_hop_self and the filter's prepend.
//
// Import needs no final ACCEPT: the global import default is to accept
// (what the statements changed is kept); the export default rejects.
//
// gobgp prepends the tenant's AS towards eBGP neighbours before the
// export policy runs, so for them fwd rewrites AS-path patterns anchored
// at the start ("^64600_" becomes "^64512_64600_"): patterns always see
// the path as the tenant's RIB holds it.

// Policy names fwd gives gobgp.
const (
	importPolicy = "fwd-import"
	exportPolicy = "fwd-export"
)

// policiesOf renders every neighbour's import and export filters as two
// global policies.
func policiesOf(b *config.BGP) *api.SetPoliciesRequest {
	pb := &policyBuilder{req: &api.SetPoliciesRequest{}, asn: b.ASN}
	imp := &api.Policy{Name: importPolicy}
	exp := &api.Policy{Name: exportPolicy}
	for i, n := range b.Neighbors {
		nset := fmt.Sprintf("n%d", i)
		pb.define(&api.DefinedSet{
			DefinedType: api.DefinedType_NEIGHBOR, Name: nset,
			List: []string{netip.PrefixFrom(n.Address, n.Address.BitLen()).String()},
		})
		nb := &api.MatchSet{Type: api.MatchSet_ANY, Name: nset}
		pb.direction(imp, fmt.Sprintf("imp-n%d", i), nb, n.Import, direction{})
		var nh *api.NexthopAction
		if n.NextHopSelf {
			nh = &api.NexthopAction{Self: true}
		}
		pb.direction(exp, fmt.Sprintf("exp-n%d", i), nb, n.Export, direction{export: true, ebgp: n.ASN != b.ASN, nextHop: nh})
	}
	pb.req.Policies = []*api.Policy{imp, exp}
	pb.req.Assignments = []*api.PolicyAssignment{
		{Name: "global", Direction: api.PolicyDirection_IMPORT, Policies: []*api.Policy{{Name: importPolicy}}, DefaultAction: api.RouteAction_ACCEPT},
		{Name: "global", Direction: api.PolicyDirection_EXPORT, Policies: []*api.Policy{{Name: exportPolicy}}, DefaultAction: api.RouteAction_REJECT},
	}
	return pb.req
}

type policyBuilder struct {
	req *api.SetPoliciesRequest
	asn uint32
}

// direction is what differs between a neighbour's import and export.
type direction struct {
	export  bool
	ebgp    bool // export to an eBGP neighbour: AS-path patterns are rewritten
	nextHop *api.NexthopAction
}

func (pb *policyBuilder) define(ds *api.DefinedSet) {
	pb.req.DefinedSets = append(pb.req.DefinedSets, ds)
}

// matchSets are the defined sets of one RouteMatch ("" when absent).
type matchSets struct {
	v4, v6, asPath, comm, large string
}

func (m matchSets) hasPrefixes() bool { return m.v4 != "" || m.v6 != "" }

// sets defines the sets of m under base.
func (pb *policyBuilder) sets(base string, m config.RouteMatch, d direction) matchSets {
	var s matchSets
	for _, v6 := range []bool{false, true} {
		var ps []*api.Prefix
		for _, pm := range m.Prefixes {
			if pm.Prefix.Addr().Is6() == v6 {
				ps = append(ps, &api.Prefix{IpPrefix: pm.Prefix.String(), MaskLengthMin: uint32(pm.GE), MaskLengthMax: uint32(pm.LE)})
			}
		}
		if len(ps) == 0 {
			continue
		}
		name := base + "-4"
		if v6 {
			name = base + "-6"
		}
		pb.define(&api.DefinedSet{DefinedType: api.DefinedType_PREFIX, Name: name, Prefixes: ps})
		if v6 {
			s.v6 = name
		} else {
			s.v4 = name
		}
	}
	if len(m.ASPaths) > 0 {
		s.asPath = base + "-aspath"
		list := make([]string, len(m.ASPaths))
		for i, p := range m.ASPaths {
			list[i] = p
			if d.export && d.ebgp {
				list[i] = afterOwnAS(p, pb.asn)
			}
		}
		pb.define(&api.DefinedSet{DefinedType: api.DefinedType_AS_PATH, Name: s.asPath, List: list})
	}
	std, large := communityPatterns(m.Communities)
	if len(std) > 0 {
		s.comm = base + "-comm"
		pb.define(&api.DefinedSet{DefinedType: api.DefinedType_COMMUNITY, Name: s.comm, List: std})
	}
	if len(large) > 0 {
		s.large = base + "-lcomm"
		pb.define(&api.DefinedSet{DefinedType: api.DefinedType_LARGE_COMMUNITY, Name: s.large, List: large})
	}
	return s
}

func anyOf(name string) *api.MatchSet {
	return &api.MatchSet{Type: api.MatchSet_ANY, Name: name}
}

func noneOf(name string) *api.MatchSet {
	return &api.MatchSet{Type: api.MatchSet_INVERT, Name: name}
}

func (pb *policyBuilder) direction(pol *api.Policy, base string, nb *api.MatchSet, f config.Filter, d direction) {
	add := func(name string, c *api.Conditions, a *api.Actions) {
		c.NeighborSet = nb
		pol.Statements = append(pol.Statements, &api.Statement{Name: name, Conditions: c, Actions: a})
	}
	reject := func() *api.Actions { return &api.Actions{RouteAction: api.RouteAction_REJECT} }

	// 1. deny: any condition of any kind.
	deny := pb.sets(base+"-deny", f.Deny, d)
	for _, s := range []struct {
		name string
		c    *api.Conditions
	}{
		{deny.v4, &api.Conditions{PrefixSet: anyOf(deny.v4)}},
		{deny.v6, &api.Conditions{PrefixSet: anyOf(deny.v6)}},
		{deny.asPath, &api.Conditions{AsPathSet: anyOf(deny.asPath)}},
		{deny.comm, &api.Conditions{CommunitySet: anyOf(deny.comm)}},
		{deny.large, &api.Conditions{LargeCommunitySet: anyOf(deny.large)}},
	} {
		if s.name != "" {
			add(s.name, s.c, reject())
		}
	}

	// 2. allow: reject what matches none of the allow conditions.
	if !f.Allow.Empty() {
		allow := pb.sets(base+"-allow", f.Allow, d)
		gate := func() *api.Conditions {
			c := &api.Conditions{}
			if allow.asPath != "" {
				c.AsPathSet = noneOf(allow.asPath)
			}
			if allow.comm != "" {
				c.CommunitySet = noneOf(allow.comm)
			}
			if allow.large != "" {
				c.LargeCommunitySet = noneOf(allow.large)
			}
			return c
		}
		if allow.hasPrefixes() {
			// A statement holds one prefix set: one gate per family.
			for _, fam := range []struct {
				suffix, set string
				family      *api.Family
			}{{"4", allow.v4, familyV4}, {"6", allow.v6, familyV6}} {
				c := gate()
				c.AfiSafiIn = []*api.Family{fam.family}
				if fam.set != "" {
					c.PrefixSet = noneOf(fam.set)
				}
				add(base+"-notallowed-"+fam.suffix, c, reject())
			}
		} else {
			add(base+"-notallowed", gate(), reject())
		}
	} else if d.export {
		// Without allow conditions, export only what the tenant
		// originates (in the spirit of RFC 8212).
		add(base+"-notlocal-int", &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_INTERNAL}, reject())
		add(base+"-notlocal-ext", &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_EXTERNAL}, reject())
	}

	// 3. the filter's own changes; its prepend goes with the final
	// accept, so that rules' AS-path conditions do not see it.
	set := f.Set
	prepend := set.Prepend
	set.Prepend = 0
	pb.changes(add, base+"-set", func() *api.Conditions { return &api.Conditions{} }, set)

	// 4. rules, in order.
	for ri, r := range f.Rules {
		name := fmt.Sprintf("%s-r%d", base, ri)
		rs := pb.sets(name, r.Match, d)
		for _, c := range ruleConditions(rs) {
			pb.changes(add, name+c.suffix, c.conds, r.Set)
		}
	}

	// 5. export: accept.
	if d.export {
		a := &api.Actions{RouteAction: api.RouteAction_ACCEPT, Nexthop: d.nextHop}
		if prepend > 0 {
			a.AsPrepend = &api.AsPrependAction{Asn: pb.asn, Repeat: uint32(prepend)}
		}
		add(base+"-accept", &api.Conditions{}, a)
	}
}

// ruleVariant is one statement's conditions of a rule: a rule matches
// when an entry of every kind it has matches, and a statement holds one
// set per kind, so prefixes of both families and communities of both
// sizes take a statement each. The variants exclude one another, so no
// route gets a rule's changes twice.
type ruleVariant struct {
	suffix string
	conds  func() *api.Conditions
}

func ruleConditions(rs matchSets) []ruleVariant {
	type part struct {
		suffix string
		apply  func(*api.Conditions)
	}
	fams := []part{{"", func(*api.Conditions) {}}}
	if rs.hasPrefixes() {
		fams = nil
		if rs.v4 != "" {
			fams = append(fams, part{"-4", func(c *api.Conditions) { c.PrefixSet = anyOf(rs.v4) }})
		}
		if rs.v6 != "" {
			fams = append(fams, part{"-6", func(c *api.Conditions) { c.PrefixSet = anyOf(rs.v6) }})
		}
	}
	comms := []part{{"", func(*api.Conditions) {}}}
	switch {
	case rs.comm != "" && rs.large != "":
		comms = []part{
			{"-comm", func(c *api.Conditions) { c.CommunitySet = anyOf(rs.comm) }},
			{"-lcomm", func(c *api.Conditions) { c.CommunitySet = noneOf(rs.comm); c.LargeCommunitySet = anyOf(rs.large) }},
		}
	case rs.comm != "":
		comms[0].apply = func(c *api.Conditions) { c.CommunitySet = anyOf(rs.comm) }
	case rs.large != "":
		comms[0].apply = func(c *api.Conditions) { c.LargeCommunitySet = anyOf(rs.large) }
	}
	var out []ruleVariant
	for _, f := range fams {
		for _, cm := range comms {
			f, cm := f, cm
			out = append(out, ruleVariant{suffix: f.suffix + cm.suffix, conds: func() *api.Conditions {
				c := &api.Conditions{}
				if rs.asPath != "" {
					c.AsPathSet = anyOf(rs.asPath)
				}
				f.apply(c)
				cm.apply(c)
				return c
			}})
		}
	}
	return out
}

// changes adds the statements that apply s to the routes matching
// conds (without a route action: evaluation goes on). One statement
// carries one standard and one large community action, so a change that
// both adds and removes communities of one size takes a second
// statement for the removal (and the prepend, so it happens once even if
// the second statement's conditions are re-evaluated on the changed
// route: only communities were added, which config validation makes
// sure the conditions do not depend on).
func (pb *policyBuilder) changes(add func(string, *api.Conditions, *api.Actions), name string, conds func() *api.Conditions, s config.RouteSet) {
	if s.Empty() {
		return
	}
	addStd, addLarge := communityPatternsExact(s.AddCommunities)
	rmStd, rmLarge := communityPatterns(s.RemoveCommunities)
	first := &api.Actions{}
	var second *api.Actions
	if s.HasLocalPref {
		first.LocalPref = &api.LocalPrefAction{Value: s.LocalPref}
	}
	if s.HasMED {
		first.Med = &api.MedAction{Type: api.MedAction_REPLACE, Value: int64(s.MED)}
	}
	if len(addStd) > 0 {
		first.Community = &api.CommunityAction{Type: api.CommunityAction_ADD, Communities: addStd}
	}
	if len(addLarge) > 0 {
		first.LargeCommunity = &api.CommunityAction{Type: api.CommunityAction_ADD, Communities: addLarge}
	}
	later := first
	if (len(addStd) > 0 && len(rmStd) > 0) || (len(addLarge) > 0 && len(rmLarge) > 0) {
		second = &api.Actions{}
		later = second
	}
	if len(rmStd) > 0 {
		later.Community = &api.CommunityAction{Type: api.CommunityAction_REMOVE, Communities: rmStd}
	}
	if len(rmLarge) > 0 {
		later.LargeCommunity = &api.CommunityAction{Type: api.CommunityAction_REMOVE, Communities: rmLarge}
	}
	if s.Prepend > 0 {
		later.AsPrepend = &api.AsPrependAction{Asn: pb.asn, Repeat: uint32(s.Prepend)}
	}
	add(name, conds(), first)
	if second != nil {
		add(name+"-remove", conds(), second)
	}
}

// communityPatterns renders communities as the anchored regular
// expressions gobgp matches and removes with; "*" matches any value.
func communityPatterns(cs []config.Community) (std, large []string) {
	for _, c := range cs {
		p := "^" + c.Format("[0-9]+") + "$"
		if c.Large {
			large = append(large, p)
		} else {
			std = append(std, p)
		}
	}
	return std, large
}

// communityPatternsExact renders exact communities as gobgp adds them.
func communityPatternsExact(cs []config.Community) (std, large []string) {
	for _, c := range cs {
		if c.Large {
			large = append(large, c.String())
		} else {
			std = append(std, c.String())
		}
	}
	return std, large
}

// afterOwnAS rewrites an AS-path pattern for an eBGP export, where the
// path already starts with the tenant's AS: every "^" anchor (outside a
// bracket expression) is followed by it.
func afterOwnAS(p string, asn uint32) string {
	var b strings.Builder
	inBracket := false
	for i := 0; i < len(p); i++ {
		ch := p[i]
		b.WriteByte(ch)
		switch {
		case ch == '[':
			inBracket = true
		case ch == ']':
			inBracket = false
		case ch == '^' && !inBracket:
			b.WriteString(strconv.FormatUint(uint64(asn), 10) + "_")
		}
	}
	return b.String()
}
