package explain

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/policy"
)

// evaluator walks the compiled ruleset the way the kernel does: rules in
// order, the first terminal verdict ends the hook, "goto" does not
// return (a goto'd chain that ends without a verdict ends the base
// chain, whose policy then applies), vmap lookups that miss fall through.
type evaluator struct {
	t      *config.Tenant
	rs     *policy.Ruleset
	src    *source
	tr     *Trace
	chains map[string]*policy.Chain
}

func newEvaluator(t *config.Tenant, rs *policy.Ruleset, src *source, tr *Trace) *evaluator {
	e := &evaluator{t: t, rs: rs, src: src, tr: tr, chains: map[string]*policy.Chain{}}
	if rs != nil {
		for _, c := range rs.Chains {
			e.chains[c.Name] = c
		}
	}
	return e
}

func (e *evaluator) ifSet(name string) []string {
	for _, s := range e.rs.IfSets {
		if s.Name == name {
			return s.Names
		}
	}
	return nil
}

func (e *evaluator) vmap(name string) []policy.VmapElem {
	for _, s := range e.rs.IfSets {
		if s.Name == name {
			return s.Elems
		}
	}
	return nil
}

func (e *evaluator) namedSet(name string) []config.AddrRange {
	for _, s := range e.rs.Sets {
		if s.Name == name {
			return s.Elems
		}
	}
	return nil
}

// outcome is what evaluating a rule or a chain ends with.
type outcome struct {
	verdict    string // accept, drop, reject; "" = no terminal verdict
	rejectWith string
	step       int // index of the deciding step in Trace.Steps, plus one (0: none)
	nat        *natResult
}

// natResult is a translation statement reached in a nat chain.
type natResult struct {
	stmt policy.Stmt
}

// hook evaluates base chain name (for hook) and returns the final
// outcome: a rule's verdict, or the chain's policy.
func (e *evaluator) hook(hook, name string, p *packet) outcome {
	ch := e.chains[name]
	if ch == nil {
		return outcome{verdict: Accept}
	}
	if o := e.chain(hook, ch, p, 0); o.verdict != "" {
		return o
	}
	st := Step{Hook: hook, Chain: name, Kind: "policy", Text: "policy " + ch.Policy, Matched: true, Action: ch.Policy}
	e.tr.Steps = append(e.tr.Steps, st)
	return outcome{verdict: ch.Policy, step: len(e.tr.Steps)}
}

// chain evaluates the rules of ch. A "" verdict means it ended without
// one (base chain: its policy applies; goto'd chain: the base chain's).
func (e *evaluator) chain(hook string, ch *policy.Chain, p *packet, depth int) outcome {
	if depth > 16 {
		return outcome{verdict: Drop} // the kernel refuses loops; never reached for compiled rulesets
	}
	for _, r := range ch.Rules {
		o, target := e.rule(hook, ch, r, p)
		if target != "" {
			next := e.chains[target]
			if next == nil {
				e.tr.Notes = append(e.tr.Notes, "goto to a missing chain "+target)
				return outcome{}
			}
			return e.chain(hook, next, p, depth+1)
		}
		if o.verdict != "" || o.nat != nil {
			return o
		}
	}
	return outcome{}
}

func stepKind(ch *policy.Chain, id string) string {
	switch {
	case id == "_dispatch":
		return "dispatch"
	case strings.HasPrefix(id, "_default/"):
		return "default"
	case strings.HasPrefix(id, "_merged/"):
		return "merged"
	case id == "_reject":
		return "reject"
	case strings.HasPrefix(id, "_"):
		return "hygiene"
	case ch.Type == "nat":
		return "nat"
	}
	return "rule"
}

// rule evaluates one kernel rule. It returns the outcome, or the chain a
// goto (direct or from a verdict map) continues in.
func (e *evaluator) rule(hook string, ch *policy.Chain, r *policy.Rule, p *packet) (outcome, string) {
	e.tr.Steps = append(e.tr.Steps, Step{Hook: hook, Chain: ch.Name, Kind: stepKind(ch, r.ID), Rule: r.ID, Text: ruleText(r)})
	idx := len(e.tr.Steps)
	st := &e.tr.Steps[idx-1]
	if st.Kind == "rule" && ch.Type == "filter" && e.src.nat(r.ID) != nil {
		st.Kind = "dnat-admit" // forward accepts what a port-forward translated
	}
	if st.Kind == "rule" || st.Kind == "nat" || st.Kind == "default" || st.Kind == "dnat-admit" {
		st.Ref = e.src.ruleRef(r.ID, r.Comment)
	}
	var notes []string
	for _, s := range r.Stmts {
		switch s := s.(type) {
		case policy.Counter:
		case policy.Log:
			notes = append(notes, "logged")
		case policy.Limit:
			notes = append(notes, fmt.Sprintf("assumed under the rate limit %d/%s", s.Rate.Count, s.Rate.Unit))
		case policy.CtStateVmap:
			if p.state == "established" || p.state == "related" {
				st.Matched, st.Action = true, "accept ("+p.state+")"
				return outcome{verdict: Accept, step: idx}, ""
			}
			if p.state == "invalid" && s.Invalid != "" {
				st.Matched, st.Action = true, "goto "+s.Invalid
				return outcome{}, s.Invalid
			}
			st.Reason = "ct state is " + p.state
			return outcome{}, ""
		case policy.IfnameVmap:
			name := p.iif
			if s.Out {
				name = p.oif
			}
			for _, el := range e.vmap(s.Map) {
				if el.Key == name {
					st.Matched, st.Action = true, "goto "+el.Chain
					return outcome{}, el.Chain
				}
			}
			st.Reason = fmt.Sprintf("%s %q is not in @%s", map[bool]string{false: "iifname", true: "oifname"}[s.Out], name, s.Map)
			return outcome{}, ""
		case policy.ConcatVmap:
			v, text, reason := e.concat(r, s, p)
			st.Text = text
			if v == nil {
				st.Reason = reason
				return outcome{}, ""
			}
			st.Matched, st.Action = true, v.Kind+" "+v.Chain
			if m := e.member(r, p); m != nil {
				st.Ref = e.src.memberRef(r.ID, m)
			} else {
				st.Ref = e.src.ruleRef(r.ID, r.Comment)
			}
			if v.Kind == "goto" {
				return outcome{}, v.Chain
			}
			return outcome{verdict: v.Kind, step: idx}, ""
		case policy.Verdict:
			st.Matched = true
			st.Action = joinNotes(stmtText(s), notes)
			switch s.Kind {
			case "goto", "jump":
				return outcome{}, s.Chain
			case Accept, Drop:
				return outcome{verdict: s.Kind, step: idx}, ""
			}
			return outcome{}, "" // return/continue
		case policy.RejectStmt:
			st.Matched = true
			st.Action = joinNotes(stmtText(s), notes)
			with := "icmp port-unreachable"
			if s.TCP {
				with = "tcp reset"
			} else if p.v6() {
				with = "icmpv6 port-unreachable"
			}
			return outcome{verdict: Reject, rejectWith: with, step: idx}, ""
		case policy.Masquerade, policy.NATStmt:
			st.Matched = true
			st.Action = joinNotes(stmtText(s), notes)
			return outcome{verdict: Accept, step: idx, nat: &natResult{stmt: s}}, ""
		default:
			if ok, why := e.match(s, p); !ok {
				st.Reason = why
				return outcome{}, ""
			}
		}
	}
	// Matched, but no verdict: evaluation continues with the next rule.
	st.Matched = true
	st.Action = joinNotes("continue", notes)
	return outcome{}, ""
}

func joinNotes(s string, notes []string) string {
	if len(notes) == 0 {
		return s
	}
	return s + " (" + strings.Join(notes, ", ") + ")"
}

// concatShape is the key of a merged group, recovered from its members:
// policy merges only rules of one shape into a group.
type concatShape struct {
	proto, saddr, daddr, dport bool
}

func (e *evaluator) shapeOf(r *policy.Rule) (concatShape, bool) {
	if len(r.Members) == 0 {
		return concatShape{}, false
	}
	m := e.src.rule(r.Members[0])
	if m == nil {
		return concatShape{}, false
	}
	return concatShape{proto: len(m.Protos) == 1, saddr: !m.Saddr.Any(), daddr: !m.Daddr.Any(), dport: len(m.Dport) > 0}, true
}

// concat looks the packet up in a merged group's verdict map. It returns
// the element's verdict, the rule's text and, on a miss, why.
func (e *evaluator) concat(r *policy.Rule, s policy.ConcatVmap, p *packet) (*policy.Verdict, string, string) {
	sh, ok := e.shapeOf(r)
	if !ok {
		return nil, stmtText(s), "merged group without known members"
	}
	fam := 0
	var key []string
	ip := "ip"
	if len(s.Elems) > 0 && (sh.saddr || sh.daddr) {
		idx := 0
		if sh.proto {
			idx = 1
		}
		if lo, _, ok := parseAddrText(s.Elems[0].Text[idx]); ok {
			fam = 4
			if lo.Is6() {
				fam, ip = 6, "ip6"
			}
		}
	}
	if sh.proto {
		key = append(key, "meta l4proto")
	}
	if sh.saddr {
		key = append(key, ip+" saddr")
	}
	if sh.daddr {
		key = append(key, ip+" daddr")
	}
	if sh.dport {
		key = append(key, "th dport")
	}
	text := strings.Join(key, " . ") + " vmap " + elemsText(s)
	if fam != 0 && (fam == 6) != p.v6() {
		return nil, text, "family is " + family(p.v6())
	}
	var pk []string
	if sh.proto {
		pk = append(pk, protoName(p.proto))
	}
	if sh.saddr {
		pk = append(pk, p.src.String())
	}
	if sh.daddr {
		pk = append(pk, p.dst.String())
	}
	if sh.dport {
		if !hasPorts(p.proto) {
			return nil, text, protoName(p.proto) + " has no ports"
		}
		pk = append(pk, strconv.Itoa(int(p.dport)))
	}
	for _, el := range s.Elems {
		if e.elemMatches(sh, el, p) {
			v := el.Verdict
			return &v, text, ""
		}
	}
	return nil, text, strings.Join(pk, " . ") + " is not in the map"
}

func elemsText(s policy.ConcatVmap) string {
	const show = 4
	items := make([]string, 0, show)
	for i, el := range s.Elems {
		if i == show {
			items = append(items, fmt.Sprintf("… %d more", len(s.Elems)-show))
			break
		}
		items = append(items, strings.Join(el.Text, " . ")+" : "+stmtText(el.Verdict))
	}
	return "{ " + strings.Join(items, ", ") + " }"
}

func (e *evaluator) elemMatches(sh concatShape, el policy.ConcatElem, p *packet) bool {
	i := 0
	next := func() string {
		if i >= len(el.Text) {
			return ""
		}
		i++
		return el.Text[i-1]
	}
	if sh.proto {
		pr, err := ParseProto(next())
		if err != nil || pr != p.proto {
			return false
		}
	}
	for _, on := range []struct {
		use bool
		a   netip.Addr
	}{{sh.saddr, p.src}, {sh.daddr, p.dst}} {
		if !on.use {
			continue
		}
		lo, hi, ok := parseAddrText(next())
		if !ok || lo.Is6() != on.a.Is6() || on.a.Less(lo) || hi.Less(on.a) {
			return false
		}
	}
	if sh.dport {
		lo, hi, ok := parsePortText(next())
		if !ok || p.dport < lo || p.dport > hi {
			return false
		}
	}
	return true
}

// parseAddrText parses an address, prefix or range as policy renders it.
func parseAddrText(s string) (lo, hi netip.Addr, ok bool) {
	if a, b, found := strings.Cut(s, "-"); found {
		lo, err1 := netip.ParseAddr(a)
		hi, err2 := netip.ParseAddr(b)
		return lo, hi, err1 == nil && err2 == nil
	}
	if strings.Contains(s, "/") {
		pf, err := netip.ParsePrefix(s)
		if err != nil {
			return lo, hi, false
		}
		return pf.Masked().Addr(), config.PrefixLast(pf.Masked()), true
	}
	a, err := netip.ParseAddr(s)
	return a, a, err == nil
}

func parsePortText(s string) (lo, hi uint16, ok bool) {
	a, b, found := strings.Cut(s, "-")
	x, err1 := strconv.ParseUint(a, 10, 16)
	if !found {
		return uint16(x), uint16(x), err1 == nil
	}
	y, err2 := strconv.ParseUint(b, 10, 16)
	return uint16(x), uint16(y), err1 == nil && err2 == nil
}

// member finds the config rule of a merged group that the packet
// matches (members of one group are disjoint: at most one does).
func (e *evaluator) member(r *policy.Rule, p *packet) *config.Rule {
	for _, id := range r.Members {
		m := e.src.rule(id)
		if m != nil && memberMatches(m, p) {
			return m
		}
	}
	return nil
}

// memberMatches evaluates a mergeable config rule (proto, saddr, daddr,
// dport literals) directly.
func memberMatches(m *config.Rule, p *packet) bool {
	if len(m.Protos) > 0 && !containsProto(m.Protos, p.proto) {
		return false
	}
	if !m.Saddr.Any() && !inRanges(p.src, m.Saddr.Ranges) {
		return false
	}
	if !m.Daddr.Any() && !inRanges(p.dst, m.Daddr.Ranges) {
		return false
	}
	if len(m.Dport) > 0 && (!hasPorts(p.proto) || !inPorts(p.dport, m.Dport)) {
		return false
	}
	return true
}

func containsProto(ps []uint8, p uint8) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}
