package routing

import (
	"fmt"
	"net/netip"

	"github.com/fwdproject/fwd/change"
)

// State is a namespace's routing state as Observe reads it: a plain
// value, so Plan can be tested with hand-built ones.
type State struct {
	// Fresh: the namespace does not exist yet (a dry run before the
	// tenant's first apply). Nothing is installed, and the interfaces
	// the config names will exist once zones creates them.
	Fresh bool
	// Links maps interface names to indexes.
	Links map[string]int
	// Owned holds fwd's routes (Protocol), in every table.
	Owned []Route
	// Foreign holds, by key, the routes of other owners in the tables
	// the desired routes use: a key held there is never taken over.
	Foreign map[Key]Route
	// Rules holds fwd's policy routing rules (Protocol), both families.
	Rules []Rule
	// Addrs holds the global unicast addresses of the interfaces the
	// desired rules name in from_interface.
	Addrs map[string][]netip.Addr
}

// Steps is a routing plan: what Apply will write, and what Plan already
// knows it will not install.
type Steps struct {
	// Routes are the route writes, additions and replacements before
	// deletions.
	Routes []Op
	// Rules are the rule writes, additions before deletions.
	Rules []RuleOp
	// Notes report desired routes left out: "skip-route" (interface
	// missing) and "conflict-route" (the key is held by another owner).
	Notes []change.Change

	tenant  string
	names   *Desired
	byIndex map[int]string
	owned   map[uint32]int // fwd's routes per table as observed
}

// Applied is what Apply did.
type Applied struct {
	// Changes is what was done, which may differ from Steps.Changes (see
	// Apply).
	Changes []change.Change
	// Routes counts fwd's routes (Protocol) per table after the apply:
	// those Observe found, plus the additions and minus the deletions the
	// kernel accepted. It is the static-route figure status and metrics
	// report, known without reading the kernel again; nil when the
	// outcome of the route writes is unknown (the batch itself failed).
	Routes map[uint32]int
}

// Empty reports whether the plan changes nothing.
func (s Steps) Empty() bool { return len(s.Routes) == 0 && len(s.Rules) == 0 && len(s.Notes) == 0 }

// Changes lists what applying the plan would do, in order: notes, route
// writes, rule writes.
func (s Steps) Changes() []change.Change {
	cs := append([]change.Change(nil), s.Notes...)
	for i := range s.Routes {
		cs = append(cs, s.routeChange(&s.Routes[i]))
	}
	for _, op := range s.Rules {
		cs = append(cs, s.ruleChange(op))
	}
	return cs
}

func (s Steps) change(action, object, detail string) change.Change {
	return change.Change{Tenant: s.tenant, Subsystem: "routing", Action: action, Object: object, Detail: detail}
}

func (s Steps) routeChange(op *Op) change.Change {
	detail := ""
	if op.Kind == OpReplace && op.Old != nil {
		detail = "was " + s.routeText(op.Old)
	}
	return s.change(op.Kind.String(), s.routeText(&op.Route), detail)
}

func (s Steps) ruleChange(op RuleOp) change.Change {
	action := "delete-rule"
	if op.Add {
		action = "add-rule"
	}
	return s.change(action, ruleText(op.Rule, s.names.tenant), "")
}

func (s Steps) routeText(r *Route) string { return routeText(r, s.names.tenant, s.byIndex) }

// Plan computes the steps that make observed match desired. It is pure:
// interface names are resolved with observed.Links, a desired route whose
// interface is missing is skipped (zones reports the interface itself),
// and one whose key another owner holds is a conflict, never installed.
func Plan(desired Desired, observed State) Steps {
	s := Steps{names: &desired, byIndex: map[int]string{}, owned: map[uint32]int{}}
	for i := range observed.Owned {
		s.owned[observed.Owned[i].Table]++
	}
	if desired.tenant != nil {
		s.tenant = desired.tenant.Name
	}
	for name, idx := range observed.Links {
		s.byIndex[idx] = name
	}
	routes := make([]Route, 0, len(desired.Routes))
	for _, r := range desired.Routes {
		ok := true
		if !observed.Fresh {
			r.NextHops = append([]NextHop(nil), r.NextHops...)
			for i := range r.NextHops {
				d := r.NextHops[i].Dev
				if d == "" {
					continue
				}
				idx, found := observed.Links[d]
				if !found {
					s.Notes = append(s.Notes, s.change("skip-route", s.routeText(&r), fmt.Sprintf("interface %q does not exist", d)))
					ok = false
					break
				}
				r.NextHops[i].Ifindex = idx
			}
		}
		if ok {
			routes = append(routes, r)
		}
	}
	ops, conflicts := Diff(routes, observed.Owned, observed.Foreign)
	for i := range conflicts {
		c := &conflicts[i]
		f := observed.Foreign[c.Key()]
		s.Notes = append(s.Notes, s.change("conflict-route", s.routeText(c),
			fmt.Sprintf("the key is held by %q (protocol %s), which fwd does not own", s.routeText(&f), protoName(f.Protocol))))
	}
	s.Routes = ops
	s.Rules = DiffRules(s.expandRules(desired.Rules, observed), observed.Rules)
	return s
}
