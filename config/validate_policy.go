package config

import (
	"regexp"
	"sort"
	"strings"
)

// Policy validation: zones and default policies here, sets, rules and NAT
// in their own files. docs/policy.md documents every key.

var (
	reZoneName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,15}$`)
	// Reserved because fwd names its own chains and maps after them.
	reservedZones = map[string]bool{ZoneSelf: true, ZoneAny: true, "unzoned": true}
)

// policyRefs resolves the names a rule or NAT entry refers to (zones,
// sets) against what the tenant declared.
type policyRefs struct {
	t        *Tenant
	p        *Policy
	declared map[string]bool // zone names, including ones that failed validation
}

// validatePolicy validates a tenant's policy keys; r is the tenant's
// reporter because the keys live directly under [tenant.NAME].
func validatePolicy(r reporter, rp *rawPolicy, t *Tenant) {
	p := &t.Policy
	p.Enabled = len(rp.Zone) > 0 || len(rp.Policy) > 0 || len(rp.Rule) > 0 || len(rp.Set) > 0 || len(rp.NAT) > 0
	if !p.Enabled {
		return
	}
	refs := &policyRefs{t: t, p: p, declared: map[string]bool{}}
	validateZones(r.in("zone"), rp.Zone, refs)
	validateSets(r.in("set"), rp.Set, p)
	validateDefaults(r.in("policy"), rp.Policy, refs)
	ids := map[string]string{}
	rr := r.in("rule")
	for i := range rp.Rule {
		if ru := validateRule(rr.at(i), i, &rp.Rule[i], refs, ids); ru != nil {
			p.Rules = append(p.Rules, ru)
		}
	}
	nr := r.in("nat")
	for i := range rp.NAT {
		if n := validateNAT(nr.at(i), i, &rp.NAT[i], refs); n != nil {
			p.NAT = append(p.NAT, n)
		}
	}
}

// validateZones validates the [tenant.T.zone.NAME] tables.
func validateZones(r reporter, raw map[string]rawZone, refs *policyRefs) {
	ifZone := map[string]string{}
	for _, zn := range sortedKeys(raw) {
		refs.declared[zn] = true
		zr := r.in(zn)
		switch {
		case reservedZones[zn]:
			zr.errorf("zone name %q is reserved", zn)
			continue
		case !reZoneName.MatchString(zn):
			zr.errorf("invalid zone name %q: use 1-16 characters a-z, 0-9 or '_', starting with a letter", zn)
			continue
		}
		z := &Zone{Name: zn}
		ir := zr.in("interfaces")
		for i, in := range raw[zn].Interfaces {
			switch prev, taken := ifZone[in]; {
			case refs.t.Interface(in) == nil:
				ir.at(i).errorf("interface %q is not declared in tenant %q", in, refs.t.Name)
			case taken:
				ir.at(i).errorf("interface %q is already in zone %q", in, prev)
			default:
				ifZone[in] = zn
				z.Interfaces = append(z.Interfaces, in)
			}
		}
		sort.Strings(z.Interfaces)
		refs.p.Zones = append(refs.p.Zones, z)
	}
}

// validateDefaults validates the [[tenant.T.policy]] default verdicts.
func validateDefaults(r reporter, raw []rawZonePolicy, refs *policyRefs) {
	seenPair := map[[2]string]string{}
	for i, rd := range raw {
		pr := r.at(i)
		from := refs.zoneList(pr.in("from"), rd.From)
		to := refs.zoneList(pr.in("to"), rd.To)
		act, ok := parseAction(rd.Action)
		if !ok {
			pr.in("action").errorf("invalid action %q: want accept, drop or reject", rd.Action)
		}
		for _, f := range from {
			for _, tz := range to {
				pair := [2]string{f, tz}
				if prev, dup := seenPair[pair]; dup {
					pr.errorf("policy for %s -> %s is already set at %s", f, tz, prev)
					continue
				}
				seenPair[pair] = pr.key
				if ok {
					refs.p.Defaults = append(refs.p.Defaults, ZonePolicy{From: f, To: tz, Action: act, Key: pr.key, Line: pr.line()})
				}
			}
		}
	}
}

// zone checks a zone reference. Empty zones are refused: a rule on one
// would silently match nothing.
func (c *policyRefs) zone(r reporter, zn string, allowSpecial bool) bool {
	if allowSpecial && (zn == ZoneAny || zn == ZoneSelf) {
		return true
	}
	if !c.declared[zn] {
		r.errorf("unknown zone %q", zn)
		return false
	}
	if z := c.p.Zone(zn); z != nil && len(z.Interfaces) == 0 {
		r.errorf("zone %q has no interfaces", zn)
		return false
	}
	return true
}

// zoneList checks a from/to value: a zone, self, any, or a list of them.
// It returns the valid zones without duplicates, nil if none.
func (c *policyRefs) zoneList(r reporter, v any) []string {
	if v == nil {
		r.errorf("is required (a zone, %q, %q, or a list of them)", ZoneSelf, ZoneAny)
		return nil
	}
	list, ok := stringList(r, v)
	if !ok {
		return nil
	}
	if len(list) == 0 {
		r.errorf("is empty")
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for i, zn := range list {
		if c.zone(elem(r, v, i), zn, true) && !seen[zn] {
			seen[zn] = true
			out = append(out, zn)
		}
	}
	return out
}

// elem scopes r to element i when v is an array, and leaves it at the
// key when v is a single value standing for a one-element list.
func elem(r reporter, v any, i int) reporter {
	if _, isList := v.([]any); isList {
		return r.at(i)
	}
	return r
}

// addrs checks a saddr/daddr value: addresses, CIDRs, ranges, or one
// "@set" reference.
func (c *policyRefs) addrs(r reporter, v any) AddrMatch {
	var m AddrMatch
	if v == nil {
		return m
	}
	list, ok := stringList(r, v)
	if !ok {
		return m
	}
	for i, a := range list {
		er := elem(r, v, i)
		if name, isSet := strings.CutPrefix(a, "@"); isSet {
			switch {
			case len(list) != 1:
				er.errorf("a set reference must be the only element (put the addresses in the set)")
			case c.p.Set(name) == nil:
				er.errorf("set %q is not declared", name)
			default:
				m.Set = name
			}
			continue
		}
		ar, err := ParseAddrRange(a)
		if err != nil {
			er.errorf("%v", err)
			continue
		}
		m.Ranges = append(m.Ranges, ar)
	}
	return m
}
