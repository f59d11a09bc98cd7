package config

import (
	"fmt"
	"net/netip"
)

// natType says what one NAT type takes. Every key a type does not take
// is refused rather than ignored.
type natType struct {
	zone    string // the zone key it needs: "in" (where traffic arrives) or "out"
	to      bool   // takes to (its target validates it)
	prefix  bool   // takes prefix (the inside prefix)
	hairpin bool   // takes hairpin
	match   bool   // takes saddr, daddr, proto and dport
	family  bool   // takes family (the others' target fixes it)
	// target validates `to` (and prefix) into n; start is the problem
	// count before the entry, so checks that only make sense on an
	// otherwise sound entry can tell.
	target func(r reporter, rn *rawNAT, n *NAT, refs *policyRefs, start int)
}

var natTypes = map[string]natType{
	NATMasquerade: {zone: "out", match: true, family: true},
	NATSnat:       {zone: "out", to: true, match: true, target: snatTarget},
	NATDnat:       {zone: "in", to: true, hairpin: true, match: true, target: dnatTarget},
	NATNetmap:     {zone: "out", to: true, prefix: true, target: netmapTarget},
}

// validateNAT validates one [[tenant.T.nat]]; it returns nil when the
// entry has a problem.
func validateNAT(r reporter, index int, rn *rawNAT, refs *policyRefs) *NAT {
	start := r.problems()
	n := &NAT{Index: index, Line: r.line(), Type: rn.Type, ID: rn.Name}
	if n.ID == "" {
		n.ID = fmt.Sprintf("nat%d", index)
	}
	n.Saddr = refs.addrs(r.in("saddr"), rn.Saddr)
	n.Daddr = refs.addrs(r.in("daddr"), rn.Daddr)
	n.Protos, _ = protoList(r.in("proto"), rn.Proto)
	if rn.Dport != nil && !hasPorts(n.Protos) {
		r.in("dport").errorf("ports need proto tcp, udp, sctp or udplite")
	}
	n.Dport, _ = portList(r.in("dport"), rn.Dport)

	spec, known := natTypes[rn.Type]
	switch {
	case rn.Type == "":
		r.in("type").errorf("is required (masquerade, snat, dnat or netmap)")
		return nil
	case !known:
		r.in("type").errorf("unknown NAT type %q: want masquerade, snat, dnat or netmap", rn.Type)
		return nil
	}
	unused := func(key string, set, takes bool) {
		if set && !takes {
			r.in(key).errorf("is not used by type %q", rn.Type)
		}
	}
	unused("in", rn.In != "", spec.zone == "in")
	unused("out", rn.Out != "", spec.zone == "out")
	unused("to", rn.To != "", spec.to)
	unused("prefix", rn.Prefix != "", spec.prefix)
	unused("hairpin", rn.Hairpin, spec.hairpin)
	unused("family", rn.Family != "", spec.family)
	if rn.Family != "" && spec.family {
		natFamily(r.in("family"), rn.Family, n)
	}
	for _, m := range []struct {
		key string
		set bool
	}{{"saddr", rn.Saddr != nil}, {"daddr", rn.Daddr != nil}, {"dport", rn.Dport != nil}, {"proto", rn.Proto != nil}} {
		unused(m.key, m.set, spec.match)
	}

	zone := rn.Out
	if spec.zone == "in" {
		zone = rn.In
		n.In = zone
	} else {
		n.Out = zone
	}
	if zone == "" {
		r.in(spec.zone).errorf("is required for type %q", rn.Type)
	} else {
		refs.zone(r.in(spec.zone), zone, false)
	}
	n.Hairpin = rn.Hairpin && spec.hairpin
	if spec.target != nil {
		spec.target(r, rn, n, refs, start)
	}
	if r.problems() != start {
		return nil
	}
	return n
}

// natFamily reads family = "ipv4" | "ipv6"; saddr and daddr must not
// name only the other family.
func natFamily(r reporter, s string, n *NAT) {
	switch s {
	case "ipv4":
		n.Family = 4
	case "ipv6":
		n.Family = 6
	default:
		r.errorf("unknown family %q (ipv4, ipv6; leave it out for both)", s)
		return
	}
	for _, m := range []AddrMatch{n.Saddr, n.Daddr} {
		if m.Any() {
			continue
		}
		if f4, f6 := m.Families(); n.Family == 4 && !f4 || n.Family == 6 && !f6 {
			r.errorf("family is %s but saddr/daddr name only the other family", s)
			return
		}
	}
}

func snatTarget(r reporter, rn *rawNAT, n *NAT, _ *policyRefs, start int) {
	tr := r.in("to")
	if rn.To == "" {
		tr.errorf("is required for type %q (an address or range)", rn.Type)
		return
	}
	ar, err := ParseAddrRange(rn.To)
	if err != nil {
		tr.errorf("%v", err)
		return
	}
	n.ToAddr = ar.From
	if ar.To != ar.From {
		n.ToEnd = ar.To
	}
	if s4, s6 := n.Saddr.Families(); r.problems() == start && (n.ToAddr.Is4() && !s4) || (n.ToAddr.Is6() && !s6) {
		r.errorf("address family conflict: saddr and to are different families")
	}
}

func dnatTarget(r reporter, rn *rawNAT, n *NAT, refs *policyRefs, start int) {
	tr := r.in("to")
	if rn.To == "" {
		tr.errorf("is required for type %q (address or address:port)", rn.Type)
		return
	}
	a, port, err := parseAddrPort(rn.To)
	if err != nil {
		tr.errorf("%v", err)
		return
	}
	n.ToAddr, n.ToPort = a, port
	if port != 0 && len(n.Protos) == 0 {
		tr.errorf("a target port needs proto tcp, udp, sctp or udplite")
	}
	n.TargetZone = zoneOf(refs.t, refs.p, a)
	if n.TargetZone == "" {
		tr.errorf("DNAT target %s is outside every zone (no zone interface has a prefix containing it)", a)
	}
	if m4, m6 := n.Daddr.Families(); (a.Is4() && !m4) || (a.Is6() && !m6) {
		r.errorf("address family conflict: daddr and to are different families")
	}
	if !n.Hairpin {
		return
	}
	// Hairpin reflects the public addresses: the single addresses of
	// daddr, else the in zone's own addresses.
	if n.Daddr.Set == "" && len(n.Daddr.Ranges) > 0 {
		for _, ar := range n.Daddr.Of(a.Is6()) {
			if ar.From == ar.To {
				n.Public = append(n.Public, ar.From)
			}
		}
	} else if z := refs.p.Zone(rn.In); z != nil {
		for _, in := range z.Interfaces {
			for _, pfx := range refs.t.Interface(in).Addresses {
				if pfx.Addr().Is6() == a.Is6() {
					n.Public = append(n.Public, pfx.Addr())
				}
			}
		}
	}
	if len(n.Public) == 0 && r.problems() == start {
		r.in("hairpin").errorf("hairpin needs daddr (single addresses) or a static address on zone %q", rn.In)
	}
}

func netmapTarget(r reporter, rn *rawNAT, n *NAT, _ *policyRefs, _ int) {
	from, err1 := netip.ParsePrefix(rn.Prefix)
	to, err2 := netip.ParsePrefix(rn.To)
	switch {
	case rn.Prefix == "":
		r.in("prefix").errorf("is required for type %q (the inside prefix)", rn.Type)
	case err1 != nil || from != from.Masked():
		r.in("prefix").errorf("invalid prefix %q", rn.Prefix)
	case rn.To == "":
		r.in("to").errorf("is required for type %q (the outside prefix)", rn.Type)
	case err2 != nil || to != to.Masked():
		r.in("to").errorf("invalid prefix %q", rn.To)
	case from.Addr().Is4() != to.Addr().Is4() || from.Bits() != to.Bits():
		r.in("to").errorf("prefix %s must have the same family and length as %s", to, from)
	}
	n.Prefix, n.ToPrefix = from, to
}

// zoneOf returns the zone whose interfaces have a prefix containing a.
func zoneOf(t *Tenant, p *Policy, a netip.Addr) string {
	for _, z := range p.Zones {
		for _, in := range z.Interfaces {
			for _, pfx := range t.Interface(in).Addresses {
				if pfx.Masked().Contains(a) {
					return z.Name
				}
			}
		}
	}
	return ""
}
