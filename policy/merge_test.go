package policy

import (
	"fmt"
	"math/rand"
	"net/netip"
	"strings"
	"testing"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/testkit"
)

// pkt is an abstract packet for evaluating compiled rules in Go.
type pkt struct {
	proto uint8
	src   netip.Addr
	dst   netip.Addr
	dport uint16
}

func inRanges(a netip.Addr, rs []config.AddrRange) bool {
	for _, r := range rs {
		if !a.Less(r.From) && !r.To.Less(a) {
			return true
		}
	}
	return false
}

// evalRule returns the verdict of one compiled rule for p, "" if it does
// not match. It knows the statements the merge test's rules compile to.
func evalRule(t *testing.T, r *Rule, p pkt, chains []*Chain) string {
	for _, s := range r.Stmts {
		switch s := s.(type) {
		case Counter:
		case L4Proto:
			ok := false
			for _, x := range s.Protos {
				ok = ok || x == p.proto
			}
			if !ok {
				return ""
			}
		case Addr:
			a := p.src
			if s.Daddr {
				a = p.dst
			}
			if a.Is6() != s.V6 || !inRanges(a, s.Ranges) {
				return ""
			}
		case Ports:
			ok := false
			for _, r := range s.Ranges {
				ok = ok || (p.dport >= r.From && p.dport <= r.To)
			}
			if !ok {
				return ""
			}
		case Verdict:
			return s.text()
		case RejectStmt:
			return "goto do_reject"
		case ConcatVmap:
			if s.Shape.fam != 0 && (s.Shape.fam == 6) != p.dst.Is6() {
				return ""
			}
			var key [][]byte
			if s.Shape.proto {
				key = append(key, pad([]byte{p.proto}))
			}
			if s.Shape.saddr {
				key = append(key, p.src.AsSlice())
			}
			if s.Shape.daddr {
				key = append(key, p.dst.AsSlice())
			}
			if s.Shape.dport {
				key = append(key, pad(portBytes(p.dport)))
			}
			hit := ""
			for _, e := range s.Elems {
				in := true
				for i, f := range e.Fields {
					in = in && string(key[i]) >= string(f.lo) && string(key[i]) <= string(f.hi)
				}
				if in {
					if hit != "" {
						t.Fatalf("packet %+v matches two elements of one map", p)
					}
					hit = e.Verdict.text()
					for _, ch := range chains {
						if e.Verdict.Chain == ch.Name && strings.HasPrefix(ch.Name, "m_") {
							hit = evalRule(t, ch.Rules[0], p, chains)
						}
					}
				}
			}
			return hit
		default:
			t.Fatalf("evaluator does not know %T", s)
		}
	}
	return ""
}

// reference evaluates the config rules in file order.
func reference(rules []*config.Rule, p pkt) string {
	for _, r := range rules {
		if len(r.Protos) > 0 && r.Protos[0] != p.proto {
			continue
		}
		if !r.Saddr.Any() && !inRanges(p.src, r.Saddr.Ranges) {
			continue
		}
		if !r.Daddr.Any() && !inRanges(p.dst, r.Daddr.Ranges) {
			continue
		}
		if len(r.Dport) > 0 {
			ok := false
			for _, pr := range r.Dport {
				ok = ok || (p.dport >= pr.From && p.dport <= pr.To)
			}
			if !ok {
				continue
			}
		}
		return verdictFor(r.Action, nil)[0].(Verdict).text()
	}
	return "drop" // default of the pair
}

// TestMergePreservesFirstMatch compiles random overlapping rule lists and
// checks, for random packets, that the merged chain gives the verdict of
// the first matching rule.
func TestMergePreservesFirstMatch(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for iter := 0; iter < 30; iter++ {
		var b strings.Builder
		b.WriteString(`
[tenant.m.interface.a]
device = "x1"
[tenant.m.interface.b]
device = "x2"
[tenant.m.zone.lan]
interfaces = ["a"]
[tenant.m.zone.wan]
interfaces = ["b"]
`)
		for i := 0; i < 60; i++ {
			fmt.Fprintf(&b, "[[tenant.m.rule]]\nfrom = \"lan\"\nto = \"wan\"\n")
			if rng.Intn(5) > 0 {
				fmt.Fprintf(&b, "proto = %q\n", []string{"tcp", "udp"}[rng.Intn(2)])
				if rng.Intn(3) > 0 {
					lo := 1 + rng.Intn(20)
					fmt.Fprintf(&b, "dport = [%d, \"%d-%d\"]\n", lo, lo+30, lo+30+rng.Intn(10))
				}
			}
			if rng.Intn(4) > 0 {
				base := rng.Intn(4)
				switch rng.Intn(12) {
				case 10:
					fmt.Fprintf(&b, "daddr = \"198.51.%d.0/23\"\n", 100+2*rng.Intn(2)-2*rng.Intn(2))
				case 11:
					fmt.Fprintf(&b, "daddr = \"%s\"\n", []string{"198.0.0.0/8", "198.51.0.0/16", "198.51.99.0-198.51.101.7"}[rng.Intn(3)])
				case 0, 5, 6, 7:
					fmt.Fprintf(&b, "daddr = \"198.51.100.%d\"\n", base*16+rng.Intn(16))
				case 1, 2, 3, 4:
					fmt.Fprintf(&b, "daddr = \"198.51.100.%d/28\"\n", base*16)
				default:
					fmt.Fprintf(&b, "daddr = [\"198.51.100.%d-198.51.100.%d\", \"2001:db8::%x\"]\n", base*16, base*16+20, rng.Intn(8))
				}
			}
			if rng.Intn(6) == 0 {
				fmt.Fprintf(&b, "saddr = \"192.0.2.%d/30\"\n", 4*rng.Intn(4))
			}
			if rng.Intn(10) == 0 {
				fmt.Fprintf(&b, "name = \"n%d\"\n", i)
			}
			fmt.Fprintf(&b, "action = %q\n", []string{"accept", "drop", "reject"}[rng.Intn(3)])
		}
		tn := testkit.Config(t, b.String()).Tenants[0]
		c := &compiler{t: tn, p: &tn.Policy, rs: &Ruleset{}}
		compiled := c.zoneRules("fw_lan_wan", "lan", "wan")
		merged := 0
		for _, r := range compiled {
			if strings.HasPrefix(r.ID, "_merged") {
				merged++
			}
		}
		if merged == 0 {
			t.Fatalf("iteration %d: nothing merged", iter)
		}
		for n := 0; n < 3000; n++ {
			p := pkt{proto: []uint8{6, 17, 47}[rng.Intn(3)], dport: uint16(1 + rng.Intn(70)),
				src: netip.AddrFrom4([4]byte{192, 0, 2, byte(rng.Intn(20))}),
				dst: netip.AddrFrom4([4]byte{198, 51, byte(99 + rng.Intn(3)), byte(rng.Intn(80))})}
			if rng.Intn(4) == 0 {
				p.src = netip.MustParseAddr("2001:db8:1::1")
				p.dst = netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", rng.Intn(10)))
			}
			want := reference(tn.Policy.Rules, p)
			got := ""
			for _, r := range compiled {
				if got = evalRule(t, r, p, c.rs.Chains); got != "" {
					break
				}
			}
			if got != want {
				t.Fatalf("iteration %d: packet %+v: compiled chain says %q, first matching rule says %q\n%s",
					iter, p, got, want, (&Ruleset{Chains: []*Chain{{Name: "fw_lan_wan", Rules: compiled}}}).String())
			}
		}
	}
}
