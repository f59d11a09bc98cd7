package policy

import (
	"net/netip"

	"github.com/fwdproject/fwd/config"
)

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
				if n.Family != 0 && n.Saddr.Any() && n.Daddr.Any() {
					st = append(st, NFProto{V6: v6}) // no address says the family
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
	if n.Family != 0 {
		return []bool{n.Family == 6}
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
