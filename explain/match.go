package explain

import (
	"fmt"
	"net/netip"
	"slices"
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
			items = append(items, policy.RangeText(r))
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
// stmtText is a statement as nft lists it: the policy package's own
// rendering, so explain and `nft list` never disagree.
func stmtText(s policy.Stmt) string { return policy.Text(s) }

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
