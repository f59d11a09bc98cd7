package explain

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/policy"
)

// packet is the packet as the ruleset sees it at one point of its walk.
type packet struct {
	iif, oif   string // "" when not (yet) known
	proto      uint8
	src, dst   netip.Addr
	sport      uint16
	dport      uint16
	icmpType   uint8
	state      string
	dnat       bool // ct status dnat: prerouting destination-NATed the flow
	outputHook bool
}

func (p *packet) v6() bool { return p.dst.Is6() }

func (p *packet) tuple() Tuple { return Tuple{Src: p.src, Dst: p.dst, SPort: p.sport, DPort: p.dport} }

func inRanges(a netip.Addr, rs []config.AddrRange) bool {
	for _, r := range rs {
		if r.From.Is6() == a.Is6() && !a.Less(r.From) && !r.To.Less(a) {
			return true
		}
	}
	return false
}

func inPorts(p uint16, rs []config.PortRange) bool {
	for _, r := range rs {
		if p >= r.From && p <= r.To {
			return true
		}
	}
	return false
}

// match evaluates one match statement; on failure it says why.
func (e *evaluator) match(s policy.Stmt, p *packet) (bool, string) {
	switch s := s.(type) {
	case policy.Ifname:
		name, key := p.iif, "iifname"
		if s.Out {
			name, key = p.oif, "oifname"
		}
		names := s.Names
		if s.Set != "" {
			names = e.ifSet(s.Set)
		}
		if slices.Contains(names, name) {
			return true, ""
		}
		return false, fmt.Sprintf("%s is %q", key, name)
	case policy.L4Proto:
		for _, x := range s.Protos {
			if x == p.proto {
				return true, ""
			}
		}
		return false, "protocol is " + protoName(p.proto)
	case policy.NFProto:
		if s.V6 == p.v6() {
			return true, ""
		}
		return false, "family is " + family(p.v6())
	case policy.Addr:
		a, key := p.src, "saddr"
		if s.Daddr {
			a, key = p.dst, "daddr"
		}
		if s.V6 != p.v6() {
			return false, "family is " + family(p.v6())
		}
		rs := s.Ranges
		var items []string
		for _, r := range rs {
			items = append(items, rangeText(r))
		}
		where := " " + strings.Join(items, ", ")
		if s.Set != "" {
			rs, where = e.namedSet(s.Set), " set @"+s.Set
		}
		if inRanges(a, rs) {
			return true, ""
		}
		return false, fmt.Sprintf("%s %s is not in%s", key, a, where)
	case policy.Ports:
		v, key := p.sport, "sport"
		if s.Dport {
			v, key = p.dport, "dport"
		}
		if !hasPorts(p.proto) {
			return false, protoName(p.proto) + " has no ports"
		}
		if inPorts(v, s.Ranges) {
			return true, ""
		}
		return false, fmt.Sprintf("%s is %d", key, v)
	case policy.ICMPType:
		if (p.proto != 1 && p.proto != 58) || s.V6 != (p.proto == 58) {
			return false, "not " + map[bool]string{false: "icmp", true: "icmpv6"}[s.V6]
		}
		for _, t := range s.Types {
			if t == p.icmpType {
				return true, ""
			}
		}
		return false, "icmp type is " + icmpTypeName(s.V6, p.icmpType)
	case policy.CtState:
		if slices.Contains(s.States, p.state) {
			return true, ""
		}
		return false, "ct state is " + p.state
	case policy.CtStatusDNAT:
		if p.dnat {
			return true, ""
		}
		return false, "the flow was not destination-NATed"
	}
	return true, ""
}

func family(v6 bool) string {
	if v6 {
		return "ipv6"
	}
	return "ipv4"
}

// stmtText renders a statement in nft syntax (policy keeps its own
// renderer private; this one only needs to be readable).
func stmtText(s policy.Stmt) string {
	switch s := s.(type) {
	case policy.Ifname:
		key := "iifname"
		if s.Out {
			key = "oifname"
		}
		if s.Set != "" {
			return key + " @" + s.Set
		}
		q := make([]string, len(s.Names))
		for i, n := range s.Names {
			q[i] = strconv.Quote(n)
		}
		return key + " " + braces(q)
	case policy.IfnameVmap:
		if s.Out {
			return "oifname vmap @" + s.Map
		}
		return "iifname vmap @" + s.Map
	case policy.L4Proto:
		items := make([]string, len(s.Protos))
		for i, p := range s.Protos {
			items[i] = protoName(p)
		}
		return "meta l4proto " + braces(items)
	case policy.NFProto:
		return "meta nfproto " + family(s.V6)
	case policy.Addr:
		k := "ip"
		if s.V6 {
			k = "ip6"
		}
		if s.Daddr {
			k += " daddr "
		} else {
			k += " saddr "
		}
		if s.Set != "" {
			return k + "@" + s.Set
		}
		items := make([]string, len(s.Ranges))
		for i, r := range s.Ranges {
			items[i] = rangeText(r)
		}
		return k + braces(items)
	case policy.Ports:
		k := "th sport "
		if s.Dport {
			k = "th dport "
		}
		items := make([]string, len(s.Ranges))
		for i, r := range s.Ranges {
			items[i] = portText(r)
		}
		return k + braces(items)
	case policy.ICMPType:
		items := make([]string, len(s.Types))
		for i, t := range s.Types {
			items[i] = icmpTypeName(s.V6, t)
		}
		if s.V6 {
			return "icmpv6 type " + braces(items)
		}
		return "icmp type " + braces(items)
	case policy.CtState:
		return "ct state " + strings.Join(s.States, ",")
	case policy.CtStatusDNAT:
		return "ct status dnat"
	case policy.CtStateVmap:
		if s.Invalid != "" {
			return "ct state vmap { established : accept, related : accept, invalid : goto " + s.Invalid + " }"
		}
		return "ct state vmap { established : accept, related : accept }"
	case policy.Limit:
		return fmt.Sprintf("limit rate %d/%s", s.Rate.Count, s.Rate.Unit)
	case policy.Log:
		if s.Prefix != "" {
			return "log prefix " + strconv.Quote(s.Prefix)
		}
		return "log"
	case policy.Counter:
		return "counter"
	case policy.Verdict:
		if s.Chain != "" {
			return s.Kind + " " + s.Chain
		}
		return s.Kind
	case policy.RejectStmt:
		if s.TCP {
			return "reject with tcp reset"
		}
		return "reject with icmpx port-unreachable"
	case policy.Masquerade:
		return "masquerade"
	case policy.NATStmt:
		return natText(s)
	case policy.ConcatVmap:
		return concatText(s)
	}
	return fmt.Sprintf("%T", s)
}

func braces(items []string) string {
	if len(items) == 1 {
		return items[0]
	}
	return "{ " + strings.Join(items, ", ") + " }"
}

func portText(r config.PortRange) string {
	if r.From == r.To {
		return strconv.Itoa(int(r.From))
	}
	return fmt.Sprintf("%d-%d", r.From, r.To)
}

func rangeText(r config.AddrRange) string {
	if r.From == r.To {
		return r.From.String()
	}
	for l := 0; l <= r.From.BitLen(); l++ {
		p := netip.PrefixFrom(r.From, l)
		if p.Masked().Addr() == r.From && config.PrefixLast(p) == r.To {
			return p.String()
		}
	}
	return r.From.String() + "-" + r.To.String()
}

func natText(s policy.NATStmt) string {
	fam := "ip"
	a := s.Addr
	if s.Prefix.IsValid() {
		a = s.Prefix.Addr()
	}
	if a.Is6() {
		fam = "ip6"
	}
	if s.Prefix.IsValid() {
		return fmt.Sprintf("%s %s prefix to %s", s.Kind, fam, s.Prefix)
	}
	target := s.Addr.String()
	if s.AddrEnd.IsValid() {
		target += "-" + s.AddrEnd.String()
	}
	if s.Port != 0 {
		if s.Addr.Is6() {
			target = "[" + target + "]"
		}
		target += ":" + strconv.Itoa(int(s.Port))
	}
	return fmt.Sprintf("%s %s to %s", s.Kind, fam, target)
}

func ruleText(r *policy.Rule) string {
	parts := make([]string, 0, len(r.Stmts))
	for _, s := range r.Stmts {
		if _, ok := s.(policy.Counter); ok {
			continue
		}
		parts = append(parts, stmtText(s))
	}
	return strings.Join(parts, " ")
}
