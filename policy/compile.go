package policy

import (
	"sort"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/pktlog"
)

const unzoned = "unzoned"

// Compile turns a tenant's validated policy into the desired ruleset. It
// returns nil for a tenant without policy: fwd then owns no table there.
func Compile(t *config.Tenant) *Ruleset { return CompileFrom(t, nil) }

// CompileFrom is Compile given prev, the ruleset compiled last for the
// same tenant (nil: none). If t's policy (and interface addresses) are
// those prev was compiled from, it returns prev itself: an unchanged
// tenant compiles nothing. Otherwise it compiles, taking from prev every
// address set whose config content is unchanged (its merged ranges and
// hash), so that a one-rule change does not touch a 100k-element set.
// The result is shared with later calls: treat it as read-only.
func CompileFrom(t *config.Tenant, prev *Ruleset) *Ruleset {
	p := &t.Policy
	if !p.Enabled {
		return nil
	}
	fp, setFPs := tenantFingerprint(t)
	if prev != nil && prev.source == fp {
		return prev
	}
	c := &compiler{t: t, p: p, rs: &Ruleset{source: fp}, setFPs: setFPs, prev: map[string]*NamedSet{}}
	if prev != nil {
		for _, s := range prev.Sets {
			c.prev[s.Name] = s
		}
	}
	c.sets()
	c.filter()
	c.nat()
	c.quota() // quota.go
	c.rs.Hash = hashOf(c.rs)
	return c.rs
}

type compiler struct {
	t  *config.Tenant
	p  *config.Policy
	rs *Ruleset

	setFPs map[string]fingerprint // config set name → content fingerprint
	prev   map[string]*NamedSet   // kernel set name → the previous ruleset's set
}

func (c *compiler) chain(ch *Chain) *Chain {
	c.rs.Chains = append(c.rs.Chains, ch)
	return ch
}

func setName(name string, v6 bool) string {
	if v6 {
		return name + "_v6"
	}
	return name + "_v4"
}

func (c *compiler) sets() {
	for _, s := range c.p.Sets {
		dyn, timeout := setOptions(s)
		fp := c.setFPs[s.Name]
		for _, v6 := range []bool{false, true} {
			name := setName(s.Name, v6)
			if old := c.prev[name]; old != nil && old.source == fp {
				c.rs.Sets = append(c.rs.Sets, old) // same content and options
				continue
			}
			// config delivers each family sorted and merged; merge only
			// what was built otherwise (a hand-made config).
			el := s.V4
			if v6 {
				el = s.V6
			}
			if !sortedMerged(el) {
				el = MergeRanges(el)
			}
			ns := &NamedSet{Name: name, V6: v6, Elems: el, Dynamic: dyn, Timeout: timeout, source: fp}
			// Empty sets are interval sets, so that adding a range
			// later does not re-create them.
			ns.Interval = dyn || len(el) == 0 || hasRanges(el)
			if !dyn {
				ns.Hash = elemsHash(el)
			}
			c.rs.Sets = append(c.rs.Sets, ns)
		}
	}
}

// sortedMerged reports whether rs is sorted and holds no overlapping or
// adjacent ranges (what MergeRanges returns), in one pass.
func sortedMerged(rs []config.AddrRange) bool {
	for i := 1; i < len(rs); i++ {
		if !rs[i-1].To.Less(rs[i].From) || rs[i-1].To.Next() == rs[i].From {
			return false
		}
	}
	return true
}

// MergeRanges sorts ranges and merges overlapping or adjacent ones: the
// kernel rejects overlapping intervals.
func MergeRanges(in []config.AddrRange) []config.AddrRange {
	if len(in) == 0 {
		return nil
	}
	rs := append([]config.AddrRange(nil), in...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].From.Less(rs[j].From) })
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if !last.To.Less(r.From) || last.To.Next() == r.From { // overlap or adjacent
			if last.To.Less(r.To) {
				last.To = r.To
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

func mergePorts(in []config.PortRange) []config.PortRange {
	rs := append([]config.PortRange(nil), in...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].From < rs[j].From })
	var out []config.PortRange
	for _, r := range rs {
		if n := len(out); n > 0 && uint32(r.From) <= uint32(out[n-1].To)+1 {
			if r.To > out[n-1].To {
				out[n-1].To = r.To
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// zoneNames returns the declared zones with interfaces, plus unzoned.
func (c *compiler) zoneNames() []string {
	var out []string
	for _, z := range c.p.Zones {
		if len(z.Interfaces) > 0 {
			out = append(out, z.Name)
		}
	}
	return append(out, unzoned)
}

func matches(list []string, zone string) bool {
	for _, z := range list {
		if z == zone || z == config.ZoneAny {
			return true
		}
	}
	return false
}

var (
	icmpEssential   = []uint8{3, 11, 12}                         // destination-unreachable, time-exceeded, parameter-problem
	icmpv6Essential = []uint8{1, 2, 3, 4}                        // destination-unreachable, packet-too-big, time-exceeded, parameter-problem
	icmpv6Local     = []uint8{130, 131, 133, 134, 135, 136, 143} // MLD and neighbour discovery
)

// hygiene is the head of every base filter chain. Its first rule is the
// one every packet of every flow evaluates, so it is one conntrack load
// and one verdict-map lookup, without a counter: established and related
// traffic is accepted there. In the forward chain (the router's hot
// path) the same lookup also sends invalid packets to drop_invalid,
// which counts and drops them, so a new flow pays no separate invalid
// rule. Local chains then accept loopback and neighbour discovery and MLD
// before dropping invalid (conntrack does not track ND and MLD, so they
// look invalid), then ICMP errors (PMTU).
func hygiene(local bool, dirOut bool) []*Rule {
	if !local {
		return []*Rule{
			{ID: idCtState, Stmts: []Stmt{CtStateVmap{Invalid: chainDropInvalid}}},
			{ID: idICMP, Stmts: []Stmt{L4Proto{[]uint8{1}}, ICMPType{Types: icmpEssential}, Counter{}, Verdict{Kind: "accept"}}},
			{ID: idICMPv6, Stmts: []Stmt{L4Proto{[]uint8{58}}, ICMPType{V6: true, Types: icmpv6Essential}, Counter{}, Verdict{Kind: "accept"}}},
		}
	}
	rules := []*Rule{
		{ID: idCtState, Stmts: []Stmt{CtStateVmap{}}},
		{ID: idLoopback, Stmts: []Stmt{Ifname{Out: dirOut, Names: []string{"lo"}}, Counter{}, Verdict{Kind: "accept"}}},
		{ID: idND, Stmts: []Stmt{L4Proto{[]uint8{58}}, ICMPType{V6: true, Types: icmpv6Local}, Counter{}, Verdict{Kind: "accept"}}},
		{ID: idInvalid, Stmts: []Stmt{CtState{States: []string{"invalid"}}, Counter{}, Verdict{Kind: "drop"}}},
	}
	if !dirOut {
		rules = append(rules, &Rule{ID: idICMP, Stmts: []Stmt{L4Proto{[]uint8{1}}, ICMPType{Types: icmpEssential}, Counter{}, Verdict{Kind: "accept"}}})
	}
	return append(rules, &Rule{ID: idICMPv6, Stmts: []Stmt{L4Proto{[]uint8{58}}, ICMPType{V6: true, Types: icmpv6Essential}, Counter{}, Verdict{Kind: "accept"}}})
}

// chainDropInvalid counts and drops invalid forwarded packets.
const chainDropInvalid = "drop_invalid"

func (c *compiler) ifaces(zone string) []string {
	if z := c.p.Zone(zone); z != nil {
		return z.Interfaces
	}
	return nil
}

// ifMatch matches the interfaces of a zone: one name directly, several
// through the zone's named interface set.
func (c *compiler) ifMatch(out bool, zone string) Stmt {
	ifs := c.ifaces(zone)
	if len(ifs) == 1 {
		return Ifname{Out: out, Names: ifs}
	}
	name := "zone_" + zone
	found := false
	for _, s := range c.rs.IfSets {
		found = found || s.Name == name
	}
	if !found {
		c.rs.IfSets = append(c.rs.IfSets, &IfSet{Name: name, Names: ifs})
	}
	return Ifname{Out: out, Set: name}
}

// dispatch builds "iifname vmap @map; goto prefix_unzoned" where the map
// sends each zone's interfaces to target(zone).
func (c *compiler) dispatch(out bool, mapName string, target func(zone string) string) []*Rule {
	var elems []VmapElem
	for _, z := range c.zoneNames() {
		if z == unzoned {
			continue
		}
		for _, in := range c.ifaces(z) {
			elems = append(elems, VmapElem{Key: in, Chain: target(z)})
		}
	}
	sort.Slice(elems, func(i, j int) bool { return elems[i].Key < elems[j].Key })
	var rules []*Rule
	if len(elems) > 0 {
		c.rs.IfSets = append(c.rs.IfSets, &IfSet{Name: mapName, Map: true, Elems: elems})
		rules = append(rules, &Rule{ID: idDispatch, Stmts: []Stmt{IfnameVmap{Out: out, Map: mapName}}})
	}
	return append(rules, &Rule{ID: idDispatch, Stmts: []Stmt{Verdict{Kind: "goto", Chain: target(unzoned)}}})
}

func (c *compiler) filter() {
	input := c.chain(&Chain{Name: "hook_input", Type: "filter", Hook: "input", Policy: "drop"})
	forward := c.chain(&Chain{Name: "hook_forward", Type: "filter", Hook: "forward", Policy: "drop"})
	output := c.chain(&Chain{Name: "hook_output", Type: "filter", Hook: "output", Policy: "accept"})
	c.chain(&Chain{Name: chainDropInvalid, Rules: []*Rule{
		{ID: idInvalid, Stmts: []Stmt{Counter{}, Verdict{Kind: "drop"}}},
	}})
	c.chain(&Chain{Name: "do_reject", Rules: []*Rule{
		{ID: idReject, Stmts: []Stmt{L4Proto{[]uint8{6}}, RejectStmt{TCP: true}}},
		{ID: idReject, Stmts: []Stmt{RejectStmt{}}},
	}})

	input.Rules = append(hygiene(true, false), c.dispatch(false, "dispatch_input", func(z string) string { return "in_" + z })...)
	output.Rules = append(hygiene(true, true), c.dispatch(true, "dispatch_output", func(z string) string { return "out_" + z })...)
	c.serviceRules(input, output) // services.go: HA and services admission
	forward.Rules = hygiene(false, false)
	for _, n := range c.p.NAT {
		if n.Type == config.NATDnat {
			forward.Rules = append(forward.Rules, dnatAdmit(n))
		}
	}
	forward.Rules = append(forward.Rules, c.dispatch(false, "dispatch_forward", func(z string) string { return "from_" + z })...)

	zones := c.zoneNames()
	for _, z := range zones {
		c.chain(&Chain{Name: "in_" + z, Rules: c.zoneRules("in_"+z, z, config.ZoneSelf)})
	}
	for _, z := range zones {
		c.chain(&Chain{Name: "out_" + z, Rules: c.zoneRules("out_"+z, config.ZoneSelf, z)})
	}
	for _, a := range zones {
		c.chain(&Chain{Name: "from_" + a, Rules: c.dispatch(true, "dispatch_from_"+a, func(b string) string { return "fw_" + a + "_" + b })})
		for _, b := range zones {
			c.chain(&Chain{Name: "fw_" + a + "_" + b, Rules: c.zoneRules("fw_"+a+"_"+b, a, b)})
		}
	}
}

// zoneRules returns the rules of one zone pair in file order, ended by the
// pair's default verdict.
func (c *compiler) zoneRules(chain, from, to string) []*Rule {
	var out []*Rule
	g := &grouper{chain: chain, slots: map[int][]*group{}}
	for _, r := range c.p.Rules {
		if !matches(r.From, from) || !matches(r.To, to) {
			continue
		}
		if sh, ok := mergeShape(r); ok {
			for _, fam := range ruleFams(r, sh) {
				sh.fam = fam
				out = g.add(out, r, sh)
			}
			continue
		}
		out = g.flushAll(out)
		out = append(out, expandRule(r, 0)...)
	}
	out = g.flushAll(out)
	c.rs.Chains = append(c.rs.Chains, g.extra...)
	act := c.p.DefaultFor(from, to)
	return append(out, &Rule{ID: idDefault + "/" + chain, Stmts: append([]Stmt{Counter{}}, verdictFor(act, nil)...)})
}

func verdictFor(a config.Action, protos []uint8) []Stmt {
	switch a {
	case config.Accept:
		return []Stmt{Verdict{Kind: "accept"}}
	case config.Reject:
		if len(protos) == 1 && protos[0] == 6 {
			return []Stmt{RejectStmt{TCP: true}}
		}
		return []Stmt{Verdict{Kind: "goto", Chain: "do_reject"}}
	}
	return []Stmt{Verdict{Kind: "drop"}}
}

// expandRule turns one config rule into kernel rules: one per address
// family when addresses are matched, plus a rate-limited log rule first
// when log_limit is set.
func expandRule(r *config.Rule, only int) []*Rule {
	type fam struct {
		split, v6 bool
	}
	var fams []fam
	needSplit := !r.Saddr.Any() || !r.Daddr.Any()
	if !needSplit {
		fams = []fam{{}}
	} else {
		if r.V4 && only != 6 {
			fams = append(fams, fam{split: true})
		}
		if r.V6 && only != 4 {
			fams = append(fams, fam{split: true, v6: true})
		}
	}
	var out []*Rule
	for _, f := range fams {
		var m []Stmt
		if len(r.Protos) > 0 {
			m = append(m, L4Proto{r.Protos})
		}
		if f.split {
			if s := addrStmt(r.Saddr, false, f.v6); s != nil {
				m = append(m, s)
			}
			if s := addrStmt(r.Daddr, true, f.v6); s != nil {
				m = append(m, s)
			}
		}
		if len(r.Sport) > 0 {
			m = append(m, Ports{Ranges: mergePorts(r.Sport)})
		}
		if len(r.Dport) > 0 {
			m = append(m, Ports{Dport: true, Ranges: mergePorts(r.Dport)})
		}
		if len(r.ICMP) > 0 {
			m = append(m, ICMPType{V6: r.Protos[0] == 58, Types: r.ICMP})
		}
		if len(r.CtState) > 0 {
			m = append(m, CtState{States: r.CtState})
		}
		if r.Log && r.LogLimit != nil {
			lr := append(append([]Stmt(nil), m...), Limit{*r.LogLimit}, logStmt(r))
			out = append(out, &Rule{ID: r.ID, Comment: r.Comment, Stmts: lr})
		}
		if r.Limit != nil {
			m = append(m, Limit{*r.Limit})
		}
		m = append(m, Counter{})
		if r.Log && r.LogLimit == nil {
			m = append(m, logStmt(r))
		}
		m = append(m, verdictFor(r.Action, r.Protos)...)
		out = append(out, &Rule{ID: r.ID, Comment: r.Comment, Stmts: m})
	}
	return out
}

// logStmt logs to fwd's NFLOG group with a prefix naming the rule, so
// the daemon's reader can say which rule logged a packet.
func logStmt(r *config.Rule) Log {
	return Log{Group: pktlog.Group, Prefix: pktlog.Prefix(r.ID, r.LogPfx)}
}

func addrStmt(m config.AddrMatch, daddr, v6 bool) Stmt {
	if m.Any() {
		return nil
	}
	if m.Set != "" {
		return Addr{Daddr: daddr, V6: v6, Set: setName(m.Set, v6)}
	}
	return Addr{Daddr: daddr, V6: v6, Ranges: MergeRanges(m.Of(v6))}
}
