package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/fwdproject/fwd/config"
)

// and `nft -f` accepts).
func (rs *Ruleset) String() string {
	var b strings.Builder
	writeRuleset(&b, rs)
	return b.String()
}

func writeRuleset(b *strings.Builder, rs *Ruleset) {
	w := b
	fmt.Fprintf(w, "table inet %s {\n", TableName)
	fmt.Fprintf(w, "\tset %s {\n\t\ttype ipv4_addr\n\t\tcomment %q\n", stateSet, "sha256:"+rs.Hash)
	if es := stateElems(rs); len(es) > 0 {
		items := make([]string, len(es))
		for i, e := range es {
			items[i] = fmt.Sprintf("%s comment %q", e.key, e.comment)
		}
		fmt.Fprintf(w, "\t\telements = { %s }\n", strings.Join(items, ",\n\t\t\t     "))
	}
	fmt.Fprintf(w, "\t}\n\n")
	for _, s := range rs.Sets {
		typ := "ipv4_addr"
		if s.V6 {
			typ = "ipv6_addr"
		}
		fmt.Fprintf(w, "\tset %s {\n\t\ttype %s\n", s.Name, typ)
		switch k := s.kind(); {
		case k.Timeout:
			fmt.Fprintf(w, "\t\tflags interval,timeout\n")
			if k.DefaultTimeout > 0 {
				fmt.Fprintf(w, "\t\ttimeout %s\n", nftDuration(k.DefaultTimeout))
			}
		case k.Interval:
			fmt.Fprintf(w, "\t\tflags interval\n")
		}
		if len(s.Elems) > 0 {
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
			if n.Family != 0 {
				fmt.Fprintf(&b, " ipv%d only", n.Family)
			}
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

// nftDuration renders d in nft's time syntax (1h30m, 10m, 45s, 500ms).
func nftDuration(d time.Duration) string {
	var b strings.Builder
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if n := d / u.d; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.d
		}
	}
	if b.Len() == 0 {
		return "0s"
	}
	return b.String()
}
