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
	if r.From.IsValid() {
		b.WriteString("from " + r.From.String())
	} else {
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
			Family: cr.Family, Priority: cr.Priority, From: cr.From, To: cr.To,
			IIF: cr.IIF, OIF: cr.OIF, HasMark: cr.HasMark, Mark: cr.FwMark, Mask: cr.FwMask,
			Table: cr.TableID,
		})
	}
	slices.SortStableFunc(d.Rules, func(a, b Rule) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.Family, b.Family))
	})
	return d
}
