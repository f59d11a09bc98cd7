package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/fwdproject/fwd/config"
)

// TableName is fwd's one table per namespace (family inet). It is not an
// nft keyword, so `nft list ruleset` can print it.
const TableName = "fwd_policy"

// stateSet carries the ruleset hash in its comment; reloads compare it to
// decide whether anything must be sent to the kernel.
const stateSet = "fwd_state"

// Ruleset is the desired content of fwd's table: a pure value compiled
// from the config, rendered to nft text or sent over netlink.
type Ruleset struct {
	Sets   []*NamedSet
	IfSets []*IfSet // interface sets and dispatch maps (small; rebuilt on every apply)
	Chains []*Chain
	Hash   string // sha256 of the rendered ruleset (without the hash)
}

// NamedSet is a kernel interval set of one address family.
type NamedSet struct {
	Name  string
	V6    bool
	Elems []config.AddrRange // sorted, merged
	Hash  string             // of the elements; kept in the set's comment
}

func (s *NamedSet) comment() string { return "sha256:" + s.Hash }

func elemsHash(rs []config.AddrRange) string {
	h := sha256.New()
	for _, r := range rs {
		h.Write(r.From.AsSlice())
		h.Write(r.To.AsSlice())
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// IfSet is a named set of interface names or, with Map, a verdict map
// from interface name to "goto chain" (zone dispatch). Named rather than
// anonymous so that `nft list ruleset` prints the names.
type IfSet struct {
	Name  string
	Map   bool
	Names []string
	Elems []VmapElem
}

// Chain is one chain of the table. Base chains have a Hook.
type Chain struct {
	Name     string
	Type     string // "filter" or "nat" (base chains)
	Hook     string // "", input, forward, output, prerouting, postrouting
	Priority int
	Policy   string // base chains: accept or drop
	Rules    []*Rule
}

// Rule is one kernel rule: statements in order, and its identity, which
// goes into the rule's comment (userdata) so counters can be read back.
type Rule struct {
	ID      string
	Comment string
	Stmts   []Stmt
	Members []string // merged groups: identities of the config rules merged
}

// comment is what is stored in the kernel: "id" or "id: comment".
func (r *Rule) comment() string {
	c := r.ID
	if r.Comment != "" {
		c += ": " + r.Comment
	}
	if len(c) > 127 {
		c = c[:127]
	}
	return c
}

// IDFromComment recovers a rule identity from a kernel rule comment.
func IDFromComment(c string) string {
	if i := strings.Index(c, ": "); i >= 0 {
		return c[:i]
	}
	return c
}

// Identities of the built-in rules. User rule names start with a letter
// or digit, so the leading '_' cannot collide.
const (
	idCtState  = "_ct-state"
	idLoopback = "_loopback"
	idICMP     = "_icmp"
	idICMPv6   = "_icmpv6"
	idND       = "_nd"
	idInvalid  = "_invalid"
	idDispatch = "_dispatch"
	idReject   = "_reject"
	idDefault  = "_default"
)

const unzoned = "unzoned"

// Compile turns a tenant's validated policy into the desired ruleset. It
// returns nil for a tenant without policy: fwd then owns no table there.
func Compile(t *config.Tenant) *Ruleset {
	p := &t.Policy
	if !p.Enabled {
		return nil
	}
	c := &compiler{t: t, p: p, rs: &Ruleset{}}
	c.sets()
	c.filter()
	c.nat()
	c.rs.Hash = hashOf(c.rs)
	return c.rs
}

func hashOf(rs *Ruleset) string {
	h := sha256.New()
	writeRuleset(h, rs, false) // sets contribute their element hash
	return hex.EncodeToString(h.Sum(nil))
}

type compiler struct {
	t  *config.Tenant
	p  *config.Policy
	rs *Ruleset
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
		v4, v6 := MergeRanges(s.V4), MergeRanges(s.V6)
		c.rs.Sets = append(c.rs.Sets,
			&NamedSet{Name: setName(s.Name, false), Elems: v4, Hash: elemsHash(v4)},
			&NamedSet{Name: setName(s.Name, true), V6: true, Elems: v6, Hash: elemsHash(v6)})
	}
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

// hygiene is the head of every base filter chain: established and
// related traffic accepted by one verdict-map lookup, loopback accepted,
// neighbour discovery and MLD accepted before invalid is dropped (conntrack
// does not track them, so they look invalid), then ICMP errors (PMTU).
func hygiene(local bool, dirOut bool) []*Rule {
	rules := []*Rule{{ID: idCtState, Stmts: []Stmt{Counter{}, CtStateVmap{}}}}
	if local {
		rules = append(rules,
			&Rule{ID: idLoopback, Stmts: []Stmt{Ifname{Out: dirOut, Names: []string{"lo"}}, Counter{}, Verdict{Kind: "accept"}}},
			&Rule{ID: idND, Stmts: []Stmt{L4Proto{[]uint8{58}}, ICMPType{V6: true, Types: icmpv6Local}, Counter{}, Verdict{Kind: "accept"}}})
	}
	rules = append(rules, &Rule{ID: idInvalid, Stmts: []Stmt{CtState{States: []string{"invalid"}}, Counter{}, Verdict{Kind: "drop"}}})
	if !dirOut {
		rules = append(rules, &Rule{ID: idICMP, Stmts: []Stmt{L4Proto{[]uint8{1}}, ICMPType{Types: icmpEssential}, Counter{}, Verdict{Kind: "accept"}}})
	}
	return append(rules, &Rule{ID: idICMPv6, Stmts: []Stmt{L4Proto{[]uint8{58}}, ICMPType{V6: true, Types: icmpv6Essential}, Counter{}, Verdict{Kind: "accept"}}})
}

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
	c.chain(&Chain{Name: "do_reject", Rules: []*Rule{
		{ID: idReject, Stmts: []Stmt{L4Proto{[]uint8{6}}, RejectStmt{TCP: true}}},
		{ID: idReject, Stmts: []Stmt{RejectStmt{}}},
	}})

	input.Rules = append(hygiene(true, false), c.dispatch(false, "dispatch_input", func(z string) string { return "in_" + z })...)
	output.Rules = append(hygiene(true, true), c.dispatch(true, "dispatch_output", func(z string) string { return "out_" + z })...)
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
			lr := append(append([]Stmt(nil), m...), Limit{*r.LogLimit}, Log{Prefix: r.LogPfx})
			out = append(out, &Rule{ID: r.ID, Comment: r.Comment, Stmts: lr})
		}
		if r.Limit != nil {
			m = append(m, Limit{*r.Limit})
		}
		m = append(m, Counter{})
		if r.Log && r.LogLimit == nil {
			m = append(m, Log{Prefix: r.LogPfx})
		}
		m = append(m, verdictFor(r.Action, r.Protos)...)
		out = append(out, &Rule{ID: r.ID, Comment: r.Comment, Stmts: m})
	}
	return out
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

func dnatAdmit(n *config.NAT) *Rule {
	v6 := n.ToAddr.Is6()
	st := []Stmt{CtStatusDNAT{}, Addr{Daddr: true, V6: v6, Ranges: []config.AddrRange{{From: n.ToAddr, To: n.ToAddr}}}}
	if len(n.Protos) > 0 {
		st = append(st, L4Proto{n.Protos})
		if n.ToPort != 0 {
			st = append(st, Ports{Dport: true, Ranges: []config.PortRange{{From: n.ToPort, To: n.ToPort}}})
		} else if len(n.Dport) > 0 {
			st = append(st, Ports{Dport: true, Ranges: mergePorts(n.Dport)})
		}
	}
	return &Rule{ID: n.ID, Comment: "port-forward admit", Stmts: append(st, Counter{}, Verdict{Kind: "accept"})}
}

func (c *compiler) nat() {
	if len(c.p.NAT) == 0 {
		return
	}
	pre := &Chain{Name: "nat_prerouting", Type: "nat", Hook: "prerouting", Priority: -100, Policy: "accept"}
	post := &Chain{Name: "nat_postrouting", Type: "nat", Hook: "postrouting", Priority: 100, Policy: "accept"}
	for _, n := range c.p.NAT {
		switch n.Type {
		case config.NATMasquerade, config.NATSnat:
			for _, v6 := range famsOf(n) {
				st := []Stmt{c.ifMatch(true, n.Out)}
				if len(n.Protos) > 0 {
					st = append(st, L4Proto{n.Protos})
				}
				if s := addrStmt(n.Saddr, false, v6); s != nil {
					st = append(st, s)
				}
				if s := addrStmt(n.Daddr, true, v6); s != nil {
					st = append(st, s)
				}
				if len(n.Dport) > 0 {
					st = append(st, Ports{Dport: true, Ranges: mergePorts(n.Dport)})
				}
				st = append(st, Counter{})
				if n.Type == config.NATMasquerade {
					st = append(st, Masquerade{})
				} else {
					st = append(st, NATStmt{Kind: "snat", Addr: n.ToAddr, AddrEnd: n.ToEnd})
				}
				post.Rules = append(post.Rules, &Rule{ID: n.ID, Stmts: st})
			}
		case config.NATDnat:
			v6 := n.ToAddr.Is6()
			match := func(zone string, daddr config.AddrMatch) []Stmt {
				st := []Stmt{c.ifMatch(false, zone)}
				if s := addrStmt(n.Saddr, false, v6); s != nil {
					st = append(st, s)
				}
				if s := addrStmt(daddr, true, v6); s != nil {
					st = append(st, s)
				} else {
					// Restrict to the target's family: dnat ip on an
					// IPv6 packet is an error.
					st = append(st, NFProto{V6: v6})
				}
				if len(n.Protos) > 0 {
					st = append(st, L4Proto{n.Protos})
				}
				if len(n.Dport) > 0 {
					st = append(st, Ports{Dport: true, Ranges: mergePorts(n.Dport)})
				}
				return append(st, Counter{}, NATStmt{Kind: "dnat", Addr: n.ToAddr, Port: n.ToPort})
			}
			pre.Rules = append(pre.Rules, &Rule{ID: n.ID, Stmts: match(n.In, n.Daddr)})
			if n.Hairpin {
				var pub []config.AddrRange
				for _, a := range n.Public {
					pub = append(pub, config.AddrRange{From: a, To: a})
				}
				pre.Rules = append(pre.Rules, &Rule{ID: n.ID, Comment: "hairpin", Stmts: match(n.TargetZone, config.AddrMatch{Ranges: pub})})
				// Reflected flows must come back through the router, so
				// their source is rewritten too.
				var src []config.AddrRange
				for _, in := range c.ifaces(n.TargetZone) {
					for _, pfx := range c.t.Interface(in).Addresses {
						if pfx.Addr().Is6() == v6 {
							src = append(src, config.AddrRange{From: pfx.Masked().Addr(), To: config.PrefixLast(pfx.Masked())})
						}
					}
				}
				st := []Stmt{c.ifMatch(true, n.TargetZone), CtStatusDNAT{}}
				if len(src) > 0 {
					st = append(st, Addr{V6: v6, Ranges: MergeRanges(src)})
				}
				st = append(st, Addr{Daddr: true, V6: v6, Ranges: []config.AddrRange{{From: n.ToAddr, To: n.ToAddr}}})
				post.Rules = append(post.Rules, &Rule{ID: n.ID, Comment: "hairpin", Stmts: append(st, Counter{}, Masquerade{})})
			}
		case config.NATNetmap:
			v6 := n.Prefix.Addr().Is6()
			post.Rules = append(post.Rules, &Rule{ID: n.ID, Stmts: []Stmt{
				c.ifMatch(true, n.Out),
				Addr{V6: v6, Ranges: []config.AddrRange{prefixRange(n.Prefix)}},
				Counter{}, NATStmt{Kind: "snat", Prefix: n.ToPrefix},
			}})
			pre.Rules = append(pre.Rules, &Rule{ID: n.ID, Stmts: []Stmt{
				c.ifMatch(false, n.Out),
				Addr{Daddr: true, V6: v6, Ranges: []config.AddrRange{prefixRange(n.ToPrefix)}},
				Counter{}, NATStmt{Kind: "dnat", Prefix: n.Prefix},
			}})
		}
	}
	c.chain(pre)
	c.chain(post)
}

func prefixRange(p netip.Prefix) config.AddrRange {
	return config.AddrRange{From: p.Addr(), To: config.PrefixLast(p)}
}

// famsOf lists the families (v6?) a masquerade/snat applies to.
func famsOf(n *config.NAT) []bool {
	if n.Type == config.NATSnat {
		return []bool{n.ToAddr.Is6()}
	}
	s4, s6 := n.Saddr.Families()
	d4, d6 := n.Daddr.Families()
	if n.Saddr.Any() && n.Daddr.Any() {
		return []bool{false} // one family-agnostic rule; see Masquerade
	}
	var out []bool
	if s4 && d4 {
		out = append(out, false)
	}
	if s6 && d6 {
		out = append(out, true)
	}
	return out
}

// String renders the ruleset in nft syntax (what `fwd show ruleset` prints
// and `nft -f` accepts).
func (rs *Ruleset) String() string {
	var b strings.Builder
	writeRuleset(&b, rs, true)
	return b.String()
}

type writer interface {
	Write([]byte) (int, error)
}

func writeRuleset(w writer, rs *Ruleset, withHash bool) {
	fmt.Fprintf(w, "table inet %s {\n", TableName)
	if withHash {
		fmt.Fprintf(w, "\tset %s {\n\t\ttype ipv4_addr\n\t\tcomment %q\n\t}\n\n", stateSet, "sha256:"+rs.Hash)
	}
	for _, s := range rs.Sets {
		typ := "ipv4_addr"
		if s.V6 {
			typ = "ipv6_addr"
		}
		fmt.Fprintf(w, "\tset %s {\n\t\ttype %s\n\t\tflags interval\n\t\tcomment %q\n", s.Name, typ, s.comment())
		// The comment already hashes the elements: hashing the ruleset
		// need not render 100k of them again.
		if len(s.Elems) > 0 && withHash {
			fmt.Fprintf(w, "\t\telements = { ")
			for i, e := range s.Elems {
				if i > 0 {
					if i%8 == 0 {
						fmt.Fprintf(w, ",\n\t\t\t     ")
					} else {
						fmt.Fprintf(w, ", ")
					}
				}
				fmt.Fprint(w, rangeText(e))
			}
			fmt.Fprintf(w, " }\n")
		}
		fmt.Fprintf(w, "\t}\n\n")
	}
	for _, s := range rs.IfSets {
		if s.Map {
			items := make([]string, len(s.Elems))
			for i, e := range s.Elems {
				items[i] = fmt.Sprintf("%q : goto %s", e.Key, e.Chain)
			}
			fmt.Fprintf(w, "\tmap %s {\n\t\ttype ifname : verdict\n\t\telements = { %s }\n\t}\n\n", s.Name, strings.Join(items, ", "))
		} else {
			fmt.Fprintf(w, "\tset %s {\n\t\ttype ifname\n\t\telements = { %s }\n\t}\n\n", s.Name, quoteList(s.Names))
		}
	}
	for i, ch := range rs.Chains {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "\tchain %s {\n", ch.Name)
		if ch.Hook != "" {
			fmt.Fprintf(w, "\t\ttype %s hook %s priority %d; policy %s;\n", ch.Type, ch.Hook, ch.Priority, ch.Policy)
		}
		for _, r := range ch.Rules {
			parts := make([]string, 0, len(r.Stmts)+1)
			for _, s := range r.Stmts {
				parts = append(parts, s.text())
			}
			fmt.Fprintf(w, "\t\t%s comment %q\n", strings.Join(parts, " "), r.comment())
		}
		fmt.Fprintf(w, "\t}\n")
	}
	fmt.Fprintf(w, "}\n")
}

// RenderRuleset compiles t's policy and renders it in nft syntax; "" when
// the tenant has no policy.
func RenderRuleset(t *config.Tenant) (string, error) {
	rs := Compile(t)
	if rs == nil {
		return "", nil
	}
	return rs.String(), nil
}

// DescribeNAT returns one human-readable line per NAT entry of t, in file
// order, for `fwd show nat`.
func DescribeNAT(t *config.Tenant) []string {
	var out []string
	for _, n := range t.Policy.NAT {
		var b strings.Builder
		fmt.Fprintf(&b, "%s: %s", n.ID, n.Type)
		match := func() {
			if len(n.Protos) > 0 {
				names := make([]string, len(n.Protos))
				for i, p := range n.Protos {
					names[i] = config.ProtoName(p)
				}
				fmt.Fprintf(&b, " proto %s", strings.Join(names, ","))
			}
			if len(n.Dport) > 0 {
				fmt.Fprintf(&b, " %s", Ports{Dport: true, Ranges: n.Dport}.text())
			}
			if !n.Saddr.Any() {
				fmt.Fprintf(&b, " saddr %s", addrMatchText(n.Saddr))
			}
			if !n.Daddr.Any() {
				fmt.Fprintf(&b, " daddr %s", addrMatchText(n.Daddr))
			}
		}
		switch n.Type {
		case config.NATMasquerade:
			fmt.Fprintf(&b, " out %s", n.Out)
			match()
		case config.NATSnat:
			fmt.Fprintf(&b, " out %s", n.Out)
			match()
			to := n.ToAddr.String()
			if n.ToEnd.IsValid() {
				to += "-" + n.ToEnd.String()
			}
			fmt.Fprintf(&b, " -> %s", to)
		case config.NATDnat:
			fmt.Fprintf(&b, " in %s", n.In)
			match()
			fmt.Fprintf(&b, " -> %s", strings.SplitN(NATStmt{Kind: "dnat", Addr: n.ToAddr, Port: n.ToPort}.text(), " to ", 2)[1])
			if n.Hairpin {
				fmt.Fprintf(&b, " (hairpin for zone %s)", n.TargetZone)
			}
		case config.NATNetmap:
			fmt.Fprintf(&b, " out %s %s <-> %s", n.Out, n.Prefix, n.ToPrefix)
		}
		out = append(out, b.String())
	}
	return out
}

func addrMatchText(m config.AddrMatch) string {
	if m.Set != "" {
		return "@" + m.Set
	}
	items := make([]string, len(m.Ranges))
	for i, r := range m.Ranges {
		items[i] = rangeText(r)
	}
	return strings.Join(items, ",")
}
