package policy

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/fwdproject/fwd/config"
)

// Rule merging. A chain of 10k individually written rules costs every new
// flow 10k rule evaluations. Consecutive simple rules (unnamed; matching
// only proto, saddr, daddr and dport literals) whose match spaces do not
// overlap can be evaluated in any order, so fwd compiles a run of them
// into one lookup in a concatenated interval verdict map:
//
//	meta l4proto . ip daddr . th dport vmap { tcp . 198.51.100.7 . 22 : drop, ... }
//
// One hash/pipapo lookup replaces the run, whatever its length. A rule
// whose elements overlap the open group starts a new group, so first-match
// order is kept exactly. Named rules are never merged: they keep their own
// kernel rule and counter; merged rules share their group's counter.

// maxRuleElems bounds the cross product one rule may add to a group.
const maxRuleElems = 64

type shape struct {
	fam                        int // 0: no address field; 4 or 6
	proto, saddr, daddr, dport bool
}

func mergeShape(r *config.Rule) (shape, bool) {
	if r.Name != "" || r.Log || r.Limit != nil || len(r.CtState) > 0 || len(r.ICMP) > 0 || len(r.Sport) > 0 ||
		r.Saddr.Set != "" || r.Daddr.Set != "" || len(r.Protos) > 1 {
		return shape{}, false
	}
	sh := shape{proto: len(r.Protos) == 1, saddr: !r.Saddr.Any(), daddr: !r.Daddr.Any(), dport: len(r.Dport) > 0}
	if !sh.proto && !sh.saddr && !sh.daddr {
		return shape{}, false
	}
	n := max(1, len(r.Dport)) * max(1, len(r.Saddr.Ranges)) * max(1, len(r.Daddr.Ranges))
	return sh, n <= maxRuleElems
}

func ruleFams(r *config.Rule, sh shape) []int {
	if !sh.saddr && !sh.daddr {
		return []int{0}
	}
	var out []int
	if r.V4 {
		out = append(out, 4)
	}
	if r.V6 {
		out = append(out, 6)
	}
	return out
}

// field is one component of a concatenated key: an inclusive byte range,
// padded to the 4-byte register size.
type field struct{ lo, hi []byte }

// ConcatElem is one element of a merged group: one range per key field.
type ConcatElem struct {
	Fields  []field
	Text    []string // per field, nft syntax
	Verdict Verdict
}

// ConcatVmap is the statement of a merged group.
type ConcatVmap struct {
	Shape shape
	Elems []ConcatElem
	Exact bool // no element has a range: a hash map, not an interval map
}

func pad(b []byte) []byte {
	if n := len(b) % 4; n != 0 {
		return append(b, make([]byte, 4-n)...)
	}
	return b
}

func (s ConcatVmap) keyText() string {
	var parts []string
	ip := "ip"
	if s.Shape.fam == 6 {
		ip = "ip6"
	}
	if s.Shape.proto {
		parts = append(parts, "meta l4proto")
	}
	if s.Shape.saddr {
		parts = append(parts, ip+" saddr")
	}
	if s.Shape.daddr {
		parts = append(parts, ip+" daddr")
	}
	if s.Shape.dport {
		parts = append(parts, "th dport")
	}
	return strings.Join(parts, " . ")
}

func (s ConcatVmap) text() string {
	items := make([]string, len(s.Elems))
	for i, e := range s.Elems {
		items[i] = strings.Join(e.Text, " . ") + " : " + e.Verdict.text()
	}
	return s.keyText() + " vmap { " + strings.Join(items, ", ") + " }"
}

func overlaps(a, b []field) bool {
	for i := range a {
		if bytes.Compare(a[i].lo, b[i].hi) > 0 || bytes.Compare(b[i].lo, a[i].hi) > 0 {
			return false
		}
	}
	return true
}

type group struct {
	shape   shape
	members []*config.Rule
	elems   []ConcatElem
	// Elements indexed by the leading bytes of their address field, so
	// the overlap check stays near-linear for 10k host/prefix rules: a
	// range within one /24 goes to b3, within one /16 to b2, else wide.
	b3      map[[3]byte][]int
	b3under map[[2]byte][][3]byte // /24 buckets present under each /16
	b2      map[[2]byte][]int
	wide    []int
	addrIdx int // index of the address field, -1 if none
}

func newGroup(sh shape) *group {
	g := &group{shape: sh, b3: map[[3]byte][]int{}, b3under: map[[2]byte][][3]byte{}, b2: map[[2]byte][]int{}, addrIdx: -1}
	idx := 0
	if sh.proto {
		idx++
	}
	if sh.saddr || sh.daddr {
		g.addrIdx = idx
	}
	return g
}

// level returns how narrow e's address field is: 3 (/24), 2 (/16) or 0.
func (g *group) level(e ConcatElem) (int, [3]byte) {
	if g.addrIdx < 0 {
		return 0, [3]byte{}
	}
	f := e.Fields[g.addrIdx]
	k := [3]byte{f.lo[0], f.lo[1], f.lo[2]}
	switch {
	case f.lo[0] != f.hi[0] || f.lo[1] != f.hi[1]:
		return 0, k
	case f.lo[2] != f.hi[2]:
		return 2, k
	}
	return 3, k
}

func (g *group) conflicts(es []ConcatElem) bool {
	for _, e := range es {
		check := func(idx []int) bool {
			for _, i := range idx {
				if overlaps(e.Fields, g.elems[i].Fields) {
					return true
				}
			}
			return false
		}
		if check(g.wide) {
			return true
		}
		lvl, k := g.level(e)
		k2 := [2]byte{k[0], k[1]}
		switch lvl {
		case 3:
			if check(g.b3[k]) || check(g.b2[k2]) {
				return true
			}
		case 2:
			if check(g.b2[k2]) {
				return true
			}
			for _, k3 := range g.b3under[k2] {
				if check(g.b3[k3]) {
					return true
				}
			}
		default:
			for _, idx := range g.b2 {
				if check(idx) {
					return true
				}
			}
			for _, idx := range g.b3 {
				if check(idx) {
					return true
				}
			}
		}
	}
	return false
}

func (g *group) insert(es []ConcatElem) {
	for _, e := range es {
		i := len(g.elems)
		g.elems = append(g.elems, e)
		lvl, k := g.level(e)
		k2 := [2]byte{k[0], k[1]}
		switch lvl {
		case 3:
			if len(g.b3[k]) == 0 {
				g.b3under[k2] = append(g.b3under[k2], k)
			}
			g.b3[k] = append(g.b3[k], i)
		case 2:
			g.b2[k2] = append(g.b2[k2], i)
		default:
			g.wide = append(g.wide, i)
		}
	}
}

// elems returns the cross product of r's key fields for one family.
func elems(r *config.Rule, sh shape) []ConcatElem {
	type choice struct {
		f    field
		text string
	}
	var dims [][]choice
	if sh.proto {
		p := r.Protos[0]
		dims = append(dims, []choice{{field{pad([]byte{p}), pad([]byte{p})}, protoText(p)}})
	}
	addrDim := func(m config.AddrMatch) []choice {
		var cs []choice
		for _, ar := range MergeRanges(m.Of(sh.fam == 6)) {
			cs = append(cs, choice{field{ar.From.AsSlice(), ar.To.AsSlice()}, rangeText(ar)})
		}
		return cs
	}
	if sh.saddr {
		dims = append(dims, addrDim(r.Saddr))
	}
	if sh.daddr {
		dims = append(dims, addrDim(r.Daddr))
	}
	if sh.dport {
		var cs []choice
		for _, pr := range mergePorts(r.Dport) {
			t := strconv.Itoa(int(pr.From))
			if pr.To != pr.From {
				t = fmt.Sprintf("%d-%d", pr.From, pr.To)
			}
			cs = append(cs, choice{field{pad(portBytes(pr.From)), pad(portBytes(pr.To))}, t})
		}
		dims = append(dims, cs)
	}
	v := verdictFor(r.Action, nil)[0].(Verdict)
	out := []ConcatElem{{Verdict: v}}
	for _, d := range dims {
		var next []ConcatElem
		for _, e := range out {
			for _, c := range d {
				next = append(next, ConcatElem{
					Fields:  append(append([]field(nil), e.Fields...), c.f),
					Text:    append(append([]string(nil), e.Text...), c.text),
					Verdict: v,
				})
			}
		}
		out = next
	}
	return out
}

func portBytes(p uint16) []byte { return []byte{byte(p >> 8), byte(p)} }

// grouper keeps open groups per family slot (0, 4, 6): IPv4 and IPv6
// groups never match the same packet, so they may stay open together;
// family-less groups overlap both. Within a slot, groups are levels: a
// rule goes one level above the highest level holding an earlier rule it
// overlaps, so every pair of overlapping rules is evaluated in file order,
// while disjoint rules share lookups. Levels are emitted in order.
type grouper struct {
	chain string
	n     int
	extra []*Chain // verdict chains of merged groups
	slots map[int][]*group
}

func (g *grouper) flush(out []*Rule, fam int) []*Rule {
	levels := g.slots[fam]
	delete(g.slots, fam)
	for _, gr := range levels {
		out = g.emit(out, gr, fam)
	}
	return out
}

func (g *grouper) emit(out []*Rule, gr *group, fam int) []*Rule {
	if len(gr.members) == 1 {
		return append(out, expandRule(gr.members[0], fam)...)
	}
	ids := make([]string, len(gr.members))
	for i, m := range gr.members {
		ids[i] = m.ID
	}
	g.n++
	// Elements without ranges go to a hash map, the others to an interval
	// (pipapo) map; they are disjoint, so the order of the two lookups
	// does not matter, and most packets pay only the cheap hash lookup.
	var exact, ranged []ConcatElem
	for _, e := range gr.elems {
		if e.exact() {
			exact = append(exact, e)
		} else {
			ranged = append(ranged, e)
		}
	}
	id := fmt.Sprintf("%s/%s/%d", idMerged, g.chain, g.n)
	comment := fmt.Sprintf("%d rules: %s", len(ids), strings.Join(ids, ","))
	// A verdict map gives no place for a counter of matches only (one in
	// front of the lookup counts every packet evaluated), so elements jump
	// to one small chain per verdict that counts and decides.
	targets := map[string]string{}
	target := func(v Verdict) Verdict {
		key := v.Kind
		if v.Chain == "do_reject" {
			key = "reject"
		}
		name, ok := targets[key]
		if !ok {
			name = fmt.Sprintf("m_%s_%d_%s", g.chain, g.n, key)
			targets[key] = name
			g.extra = append(g.extra, &Chain{Name: name, Rules: []*Rule{{ID: id, Comment: comment, Members: ids,
				Stmts: []Stmt{Counter{}, v}}}})
		}
		return Verdict{Kind: "goto", Chain: name}
	}
	redirect := func(es []ConcatElem) []ConcatElem {
		out := make([]ConcatElem, len(es))
		for i, e := range es {
			e.Verdict = target(e.Verdict)
			out[i] = e
		}
		return out
	}
	if len(exact) > 0 {
		out = append(out, &Rule{ID: id, Comment: comment, Members: ids, Stmts: []Stmt{ConcatVmap{Shape: gr.shape, Elems: redirect(exact), Exact: true}}})
	}
	if len(ranged) > 0 {
		out = append(out, &Rule{ID: id, Comment: comment, Members: ids, Stmts: []Stmt{ConcatVmap{Shape: gr.shape, Elems: redirect(ranged)}}})
	}
	return out
}

func (e ConcatElem) exact() bool {
	for _, f := range e.Fields {
		if !bytes.Equal(f.lo, f.hi) {
			return false
		}
	}
	return true
}

func (g *grouper) flushAll(out []*Rule) []*Rule {
	for _, f := range []int{0, 4, 6} {
		out = g.flush(out, f)
	}
	return out
}

func (g *grouper) add(out []*Rule, r *config.Rule, sh shape) []*Rule {
	if sh.fam == 0 {
		out = g.flush(out, 4)
		out = g.flush(out, 6)
	} else {
		out = g.flush(out, 0)
	}
	es := elems(r, sh)
	levels := g.slots[sh.fam]
	if len(levels) > 0 && levels[0].shape != sh {
		out = g.flush(out, sh.fam)
		levels = nil
	}
	level := 0
	for i := len(levels) - 1; i >= 0; i-- {
		if levels[i].conflicts(es) {
			level = i + 1
			break
		}
	}
	if level == len(levels) {
		levels = append(levels, newGroup(sh))
	}
	levels[level].members = append(levels[level].members, r)
	levels[level].insert(es)
	g.slots[sh.fam] = levels
	return out
}
