package routing

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/fwdproject/fwd/config"
)

// Rule is one policy routing rule (ip rule) fwd owns.
type Rule struct {
	Family   int // 4 or 6
	Priority uint32
	From     netip.Prefix // invalid: any
	// FromIf, in a desired rule only, stands for one rule per address
	// of that interface (From = the address as a host prefix), resolved
	// by Plan from what Observe read: the rule follows DHCP and SLAAC.
	FromIf   string
	To       netip.Prefix // invalid: any
	IIF      string
	OIF      string
	HasMark  bool
	Mark     uint32
	Mask     uint32
	Table    uint32
	Protocol uint8 // set by reads
}

func (r Rule) ident() Rule { r.Protocol = 0; return r }

// String renders the rule in `ip rule` syntax.
func (r Rule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d: ", r.Priority)
	if r.Family == 6 {
		b.WriteString("[ipv6] ")
	}
	switch {
	case r.From.IsValid():
		b.WriteString("from " + r.From.String())
	case r.FromIf != "":
		b.WriteString("from <addresses of " + r.FromIf + ">")
	default:
		b.WriteString("from all")
	}
	if r.To.IsValid() {
		b.WriteString(" to " + r.To.String())
	}
	if r.IIF != "" {
		b.WriteString(" iif " + r.IIF)
	}
	if r.OIF != "" {
		b.WriteString(" oif " + r.OIF)
	}
	if r.HasMark {
		fmt.Fprintf(&b, " fwmark %#x", r.Mark)
		if r.Mask != 0xffffffff {
			fmt.Fprintf(&b, "/%#x", r.Mask)
		}
	}
	fmt.Fprintf(&b, " lookup %d", r.Table)
	return b.String()
}

// RuleOp is one rule change. Rules have no replace: a changed rule is
// added before the old one is deleted, so traffic is always matched.
type RuleOp struct {
	Add  bool
	Rule Rule
}

// DiffRules computes the rule changes that make owned equal desired.
func DiffRules(desired, owned []Rule) []RuleOp {
	have := map[Rule]bool{}
	for _, r := range owned {
		have[r.ident()] = true
	}
	want := map[Rule]bool{}
	var ops []RuleOp
	for _, r := range desired {
		want[r.ident()] = true
		if !have[r.ident()] {
			ops = append(ops, RuleOp{Add: true, Rule: r})
		}
	}
	for _, r := range owned {
		if !want[r.ident()] {
			ops = append(ops, RuleOp{Rule: r})
		}
	}
	return ops
}

// Desired is a tenant's wanted routing state: pure data from config.
type Desired struct {
	Routes []Route // NextHops carry interface names; Plan resolves them to indexes
	Rules  []Rule
	tenant *config.Tenant // names tenant, tables in changes; nil: numbers
}

var configTypes = map[string]uint8{
	config.RouteUnicast:     TypeUnicast,
	config.RouteBlackhole:   TypeBlackhole,
	config.RouteUnreachable: TypeUnreachable,
	config.RouteProhibit:    TypeProhibit,
}

// Compile turns a tenant's routing config into the routes and rules fwd
// must own in its namespace. It touches no kernel state.
func Compile(t *config.Tenant) Desired {
	d := Desired{tenant: t}
	for _, cr := range t.Routing.Routes {
		r := Route{Table: cr.TableID, Dst: cr.To, Type: configTypes[cr.Type], Metric: cr.Metric, Src: cr.Src}
		for _, nh := range cr.NextHops {
			r.NextHops = append(r.NextHops, NextHop{Gw: nh.Via, Dev: nh.Dev, Weight: nh.Weight, OnLink: nh.OnLink})
		}
		if cr.Dev != "" {
			r.NextHops = []NextHop{{Dev: cr.Dev}}
		}
		d.Routes = append(d.Routes, r)
	}
	for _, cr := range t.Routing.Rules {
		d.Rules = append(d.Rules, Rule{
			Family: cr.Family, Priority: cr.Priority, From: cr.From, FromIf: cr.FromIf, To: cr.To,
			IIF: cr.IIF, OIF: cr.OIF, HasMark: cr.HasMark, Mark: cr.FwMark, Mask: cr.FwMask,
			Table: cr.TableID,
		})
	}
	slices.SortStableFunc(d.Rules, func(a, b Rule) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.Family, b.Family))
	})
	return d
}

// IfaceAddrs are the interfaces the desired rules take their source
// addresses from (FromIf): what Observe must read.
func (d Desired) IfaceAddrs() []string {
	var out []string
	for _, r := range d.Rules {
		if r.FromIf != "" && !slices.Contains(out, r.FromIf) {
			out = append(out, r.FromIf)
		}
	}
	return out
}

// expandRules resolves FromIf rules into one rule per address of the
// interface in the rule's family; a rule whose interface holds none (no
// lease yet) is noted and left out until an apply finds one.
func (s *Steps) expandRules(rules []Rule, observed State) []Rule {
	out := make([]Rule, 0, len(rules))
	for _, r := range rules {
		if r.FromIf == "" {
			out = append(out, r)
			continue
		}
		n := 0
		for _, a := range observed.Addrs[r.FromIf] {
			if a.Is6() != (r.Family == 6) {
				continue
			}
			e := r
			e.FromIf, e.From = "", netip.PrefixFrom(a, a.BitLen())
			out = append(out, e)
			n++
		}
		if n == 0 {
			s.Notes = append(s.Notes, s.change("skip-rule", ruleText(r, s.names.tenant),
				fmt.Sprintf("interface %q has no IPv%d address yet; the rule follows once it has one", r.FromIf, r.Family)))
		}
	}
	return out
}
