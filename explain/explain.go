package explain

import (
	"fmt"
	"net/netip"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/policy"
)

// Explain evaluates the packet q against the tenant's compiled policy and
// planned routes and returns its path and verdict. It reads cfg.File (if
// set) only to place rules at their lines; it never touches the kernel.
//
// The walk is the kernel's: nat prerouting (new flows only), the route
// lookup (local delivery → input, else forward with the route's output
// interface), the filter hook, then nat postrouting for forwarded new
// flows. A packet from the namespace itself (q.In == InSelf) takes the
// output hook, then postrouting.
func Explain(cfg *config.Config, q Query) (*Trace, error) {
	x, err := NewExplainer(cfg, q.Tenant)
	if err != nil {
		return nil, err
	}
	return x.Explain(q)
}

// Explainer holds one tenant's compiled policy, routes and rule
// positions, so that many packets (every flow of a conntrack table) are
// explained without compiling the policy or reading the file again.
type Explainer struct {
	t   *config.Tenant
	rs  *policy.Ruleset
	src *source
	rt  *router
}

// NewExplainer compiles tenant's policy and routes from cfg.
func NewExplainer(cfg *config.Config, tenant string) (*Explainer, error) {
	t := cfg.Tenant(tenant)
	if t == nil {
		return nil, fmt.Errorf("no tenant %q in %s", tenant, cfg.File)
	}
	x := &Explainer{t: t, rs: policy.Compile(t), src: newSource(cfg, t), rt: newRouter(t)}
	x.rt.place = x.src.routeRef
	return x, nil
}

// Explain is the package's Explain for the Explainer's tenant; q.Tenant
// may be empty.
func (x *Explainer) Explain(q Query) (*Trace, error) {
	if q.Tenant == "" {
		q.Tenant = x.t.Name
	}
	if q.Tenant != x.t.Name {
		return nil, fmt.Errorf("explainer of tenant %q asked about tenant %q", x.t.Name, q.Tenant)
	}
	t, rs, src, rt := x.t, x.rs, x.src, x.rt
	if err := q.check(t); err != nil {
		return nil, err
	}
	tr := &Trace{Query: q, Steps: []Step{}}
	e := newEvaluator(t, rs, src, tr)
	p := &packet{proto: q.Proto, src: q.Src, dst: q.Dst, sport: q.SPort, dport: q.DPort, state: q.State}
	if q.ICMPType != nil {
		p.icmpType = *q.ICMPType
	}
	tr.Before = p.tuple()
	defer func() { tr.After = p.tuple() }()
	if rs == nil {
		tr.Notes = append(tr.Notes, "tenant has no policy: fwd installs no firewall table, nothing is filtered")
	}
	if t.ConntrackLimit > 0 {
		tr.Notes = append(tr.Notes, fmt.Sprintf("the connection quota (conntrack_limit = %d) is assumed not reached", t.ConntrackLimit))
	}
	if t.BGP != nil {
		tr.Notes = append(tr.Notes, "routes learned over BGP are not known to explain: the lookup uses static and connected routes")
	}
	newFlow := q.State == "new"

	if q.In == InSelf {
		p.iif, p.outputHook = "", true
		return tr, e.output(rt, p, newFlow)
	}
	p.iif = q.In
	if newFlow {
		if o := e.hook("prerouting", "nat_prerouting", p); o.nat != nil {
			if err := e.applyNAT("prerouting", o, rt, p, netip.Addr{}, netip.Addr{}); err != nil {
				return nil, err
			}
		}
	} else if rs != nil && e.chains["nat_prerouting"] != nil {
		tr.Notes = append(tr.Notes, "nat chains see only the first packet of a flow: an "+q.State+" packet keeps the translation of its flow")
	}
	// Routing decision.
	var route *Route
	if q.Out == "" || rt.local(p.dst) {
		route = rt.lookup(p.src, p.dst, p.iif)
		tr.Route = route
	}
	if route != nil && route.Type == "local" {
		tr.Hook = "input"
		return tr, e.filter("input", "hook_input", p)
	}
	switch {
	case q.Out != "":
		p.oif = q.Out
	case route.Type == "unicast":
		p.oif = route.Dev
	case route.Type == "blackhole":
		return tr, tr.decide(Drop, "route "+route.Dst.String()+" is a blackhole", "")
	case route.Type == "unreachable":
		return tr, tr.decide(Reject, "route "+route.Dst.String()+" is unreachable", unreach(p, "host-unreachable"))
	case route.Type == "prohibit":
		return tr, tr.decide(Reject, "route "+route.Dst.String()+" is prohibit", unreach(p, "admin-prohibited"))
	default:
		return tr, tr.decide(Reject, "no route to "+p.dst.String(), unreach(p, "net-unreachable"))
	}
	if p.oif == "" {
		return tr, tr.decide(Drop, "the route's next hop is on no interface of the tenant", "")
	}
	if !t.Forwarding {
		return tr, tr.decide(Drop, "forwarding is off in tenant "+t.Name+" (forwarding = false)", "")
	}
	tr.Hook = "forward"
	if err := e.filter("forward", "hook_forward", p); err != nil || tr.Verdict != Accept {
		return tr, err
	}
	tr.OutIf = p.oif
	if newFlow {
		var nh netip.Addr
		if route != nil {
			nh = route.Via
		}
		if !nh.IsValid() {
			nh = p.dst
		}
		if o := e.hook("postrouting", "nat_postrouting", p); o.nat != nil {
			var pref netip.Addr
			if route != nil {
				pref = route.Src
			}
			if err := e.applyNAT("postrouting", o, rt, p, nh, pref); err != nil {
				_ = tr.decide(Drop, err.Error(), "")
			}
		}
	}
	return tr, nil
}

// output is the path of a packet the namespace sends itself.
func (e *evaluator) output(rt *router, p *packet, newFlow bool) error {
	tr := e.tr
	route := rt.lookup(p.src, p.dst, "lo")
	if tr.Query.Out != "" {
		p.oif = tr.Query.Out
	} else {
		tr.Route = route
		switch route.Type {
		case "local":
			p.oif = "lo"
		case "unicast":
			p.oif = route.Dev
		default:
			return tr.decide(Reject, "no usable route to "+p.dst.String()+" ("+route.Type+")", "local error (the sending socket gets an error)")
		}
	}
	tr.Hook = "output"
	if err := e.filter("output", "hook_output", p); err != nil || tr.Verdict != Accept {
		return err
	}
	tr.OutIf = p.oif
	if newFlow && p.oif != "lo" {
		nh := route.Via
		if !nh.IsValid() {
			nh = p.dst
		}
		if o := e.hook("postrouting", "nat_postrouting", p); o.nat != nil {
			if err := e.applyNAT("postrouting", o, rt, p, nh, route.Src); err != nil {
				_ = tr.decide(Drop, err.Error(), "")
			}
		}
	}
	return nil
}

func unreach(p *packet, code string) string {
	if p.v6() {
		return "icmpv6 " + code
	}
	return "icmp " + code
}

func (tr *Trace) decide(verdict, reason, with string) error {
	tr.Verdict, tr.Reason, tr.RejectWith = verdict, reason, with
	return nil
}

// filter runs a filter hook and records its decision.
func (e *evaluator) filter(hook, chain string, p *packet) error {
	tr := e.tr
	if e.rs == nil {
		return tr.decide(Accept, "no policy: not filtered", "")
	}
	o := e.hook(hook, chain, p)
	tr.Verdict, tr.RejectWith = o.verdict, o.rejectWith
	if o.step == 0 {
		tr.Reason = hook + " chain " + chain + " ended"
		return nil
	}
	i := o.step - 1
	// fwd's reject chain and merged groups' verdict chains decide on
	// behalf of the rule that jumped to them: the previous matched step.
	for i > 0 && (tr.Steps[i].Kind == "reject" || tr.Steps[i].Kind == "merged" && tr.Steps[i].Ref == nil) {
		i--
	}
	st := tr.Steps[i]
	switch {
	case st.Kind == "policy":
		tr.Reason = fmt.Sprintf("no rule decided: policy %s of %s", st.Action, chain)
	case st.Kind == "hygiene":
		tr.Rule = &RuleRef{ID: st.Rule, Comment: "built-in hygiene rule"}
		tr.Reason = "hygiene rule " + st.Rule + " (" + st.Text + ")"
	case st.Kind == "default" && st.Ref != nil:
		tr.Rule = st.Ref
		tr.Reason = "default verdict of " + st.Chain + " (" + st.Ref.Comment + ")"
	case st.Ref != nil:
		tr.Rule = st.Ref
		tr.Reason = fmt.Sprintf("%s %s in %s", st.Kind, describeRef(st.Ref), st.Chain)
	default:
		tr.Reason = fmt.Sprintf("%s rule %s in %s", st.Kind, st.Rule, st.Chain)
	}
	return nil
}

func describeRef(r *RuleRef) string {
	switch {
	case r.Member != "":
		return fmt.Sprintf("%s (merged group %s)", r.Member, r.ID)
	case r.Name != "":
		return r.Name
	case r.Comment != "":
		return r.ID + " (" + r.Comment + ")"
	}
	return r.ID
}

// applyNAT rewrites p by the translation statement the nat chain reached.
// nh and pref (postrouting only) are the next hop and the route's
// preferred source, for masquerade.
func (e *evaluator) applyNAT(hook string, o outcome, rt *router, p *packet, nh, pref netip.Addr) error {
	before := p.tuple()
	st := e.tr.Steps[o.step-1]
	nc := NATChange{Hook: hook, Text: st.Action, Rule: st.Ref}
	switch s := o.nat.stmt.(type) {
	case policy.Masquerade:
		nc.Kind = "masquerade"
		a, err := rt.sourceFor(p.oif, nh, pref)
		if err != nil {
			return fmt.Errorf("masquerade: %w", err)
		}
		p.src = a
	case policy.NATStmt:
		switch {
		case s.Prefix.IsValid():
			nc.Kind = "netmap"
			if s.Kind == "dnat" {
				p.dst = mapPrefix(p.dst, s.Prefix)
			} else {
				p.src = mapPrefix(p.src, s.Prefix)
			}
		case s.Kind == "dnat":
			nc.Kind = "dnat"
			p.dst = s.Addr
			if s.Port != 0 {
				p.dport = s.Port
			}
		default:
			nc.Kind = "snat"
			p.src = s.Addr
			if s.AddrEnd.IsValid() {
				e.tr.Notes = append(e.tr.Notes, fmt.Sprintf("snat picks one address of %s-%s per flow; shown: the first", s.Addr, s.AddrEnd))
			}
		}
		if s.Kind == "dnat" {
			p.dnat = true
		}
	}
	nc.Before, nc.After = before, p.tuple()
	e.tr.NAT = append(e.tr.NAT, nc)
	return nil
}

// mapPrefix keeps a's host bits under prefix to (netmap).
func mapPrefix(a netip.Addr, to netip.Prefix) netip.Addr {
	ab, tb := a.As16(), to.Masked().Addr().As16()
	bits := to.Bits()
	if a.Is4() {
		bits += 96
	}
	for i := 0; i < 16; i++ {
		keep := bits - i*8 // network bits in this byte
		switch {
		case keep >= 8:
			ab[i] = tb[i]
		case keep > 0:
			m := byte(0xff << (8 - keep))
			ab[i] = tb[i]&m | ab[i]&^m
		}
	}
	out := netip.AddrFrom16(ab)
	if a.Is4() {
		return out.Unmap()
	}
	return out
}
