package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/internal/nldump"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// logger is looked up on each use so that the daemon's slog.SetDefault,
// made after package initialisation, applies.
func logger() *slog.Logger { return slog.Default().With("subsystem", "routing") }

// Reconcile makes the tenant's fwd-owned routes and policy rules in
// namespace ns match t's routing. With dryRun it only computes the changes.
//
// It reads each family's routes once (all tables), diffs them against the
// plan, and sends only the differences in one batch: changed routes are
// replaced in place (NLM_F_REPLACE), new ones added before stale ones are
// deleted, so a prefix is never without a route. Only routes and rules
// carrying Protocol are changed or deleted; a desired route whose key is
// held by someone else's route is reported ("conflict-route") and not
// installed. A route the kernel refuses because its gateway is unreachable
// (or its interface is missing) is reported ("skip-route"), not fatal.
func Reconcile(ctx context.Context, t *config.Tenant, ns netns.NsHandle, dryRun bool) ([]change.Change, error) {
	desired := Plan(t)
	if !ns.IsOpen() {
		// A tenant whose namespace does not exist yet (fwd plan before its
		// first apply): everything is to be added, and the caller's own
		// namespace must not be read in its place.
		if !dryRun {
			return nil, fmt.Errorf("tenant %q: no namespace handle", t.Name)
		}
		return planEmpty(t, desired), nil
	}
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("tenant %q: netlink handle: %w", t.Name, err)
	}
	defer nh.Close()
	links, err := nldump.Retry(func() ([]netlink.Link, error) { return nh.LinkList() })
	if err != nil {
		return nil, fmt.Errorf("tenant %q: list links: %w", t.Name, err)
	}
	byName, byIndex := map[string]int{}, map[int]string{}
	for _, l := range links {
		byName[l.Attrs().Name] = l.Attrs().Index
		byIndex[l.Attrs().Index] = l.Attrs().Name
	}
	in, err := NewInstaller(ns, Protocol)
	if err != nil {
		return nil, fmt.Errorf("tenant %q: %w", t.Name, err)
	}
	defer in.Close()

	var changes []change.Change
	add := func(action, object, detail string) {
		changes = append(changes, change.Change{Tenant: t.Name, Subsystem: "routing", Action: action, Object: object, Detail: detail})
	}
	name := func(r *Route) string { return routeText(r, t, byIndex) }

	// Resolve interface names; a route whose interface is missing is
	// skipped (zones reports the interface itself).
	routes := desired.Routes[:0:0]
	for _, r := range desired.Routes {
		ok := true
		for i := range r.NextHops {
			if d := r.NextHops[i].Dev; d != "" {
				idx, found := byName[d]
				if !found {
					add("skip-route", name(&r), fmt.Sprintf("interface %q does not exist", d))
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

	// fwd's own routes in every table (filtered by protocol in the
	// kernel), and everybody's routes in the tables fwd wants routes in,
	// to find keys held by someone else. A table full of BGP routes under
	// another protocol is not read unless static routes go there too.
	owned, err := in.Routes(0)
	if err != nil {
		return nil, fmt.Errorf("tenant %q: %w", t.Name, err)
	}
	foreign := map[Key]Route{}
	tables := map[uint32]bool{}
	for _, r := range routes {
		tables[r.Table] = true
	}
	for tb := range tables {
		all, err := in.allRoutes(tb)
		if err != nil {
			return nil, fmt.Errorf("tenant %q: %w", t.Name, err)
		}
		for _, r := range all {
			if r.Protocol != Protocol {
				foreign[r.Key()] = r
			}
		}
	}
	ops, conflicts := Diff(routes, owned, foreign)
	for _, c := range conflicts {
		f := foreign[c.Key()]
		add("conflict-route", name(&c), fmt.Sprintf("the key is held by %q (protocol %s), which fwd does not own", name(&f), protoName(f.Protocol)))
		logger().Warn("route conflicts with a route fwd does not own", "tenant", t.Name, "route", name(&c), "holder", name(&f))
	}

	ruleChanges, ruleOps, err := diffRules(nh, t, desired.Rules)
	if err != nil {
		return nil, err
	}

	if dryRun {
		for _, op := range ops {
			add(op.Kind.String(), name(&op.Route), replaceDetail(op, t, byIndex))
		}
		return append(changes, ruleChanges...), nil
	}

	failed, err := in.Apply(ctx, ops)
	if err != nil {
		return changes, fmt.Errorf("tenant %q: apply routes: %w", t.Name, err)
	}
	refused := map[Key]OpError{}
	var errs []error
	for _, f := range failed {
		refused[f.Op.Route.Key()] = f
	}
	for _, op := range ops {
		if f, bad := refused[op.Route.Key()]; bad && f.Op.Kind == op.Kind {
			if op.Kind == OpAdd && errors.Is(f.Err, unix.EEXIST) {
				// Someone added a route with this key since the dump.
				add("conflict-route", name(&op.Route), "the key is held by a route fwd does not own")
				continue
			}
			if f.BadSource() {
				// An IPv6 source still in duplicate address detection.
				add("skip-route", name(&op.Route), fmt.Sprintf("source address not usable yet: %v", f.Err))
				logger().Warn("route not installed: source address not usable", "tenant", t.Name, "route", name(&op.Route), "err", f.Err)
				continue
			}
			if f.Unreachable() {
				add("skip-route", name(&op.Route), fmt.Sprintf("gateway unreachable: %v", f.Err))
				logger().Warn("route not installed: gateway unreachable", "tenant", t.Name, "route", name(&op.Route), "err", f.Err)
			} else {
				errs = append(errs, fmt.Errorf("%s %s: %w", op.Kind, name(&op.Route), f.Err))
			}
			continue
		}
		add(op.Kind.String(), name(&op.Route), replaceDetail(op, t, byIndex))
	}
	// Rules: additions first, then deletions (ruleOps is in that order).
	for i, op := range ruleOps {
		nr := toNetlinkRule(op.Rule)
		if op.Add {
			err = nh.RuleAdd(nr)
		} else {
			err = nh.RuleDel(nr)
			if errors.Is(err, unix.ENOENT) {
				err = nil
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", ruleChanges[i].Action, op.Rule, err))
			continue
		}
		changes = append(changes, ruleChanges[i])
	}
	if len(errs) > 0 {
		return changes, fmt.Errorf("tenant %q: %w", t.Name, errors.Join(errs...))
	}
	return changes, nil
}

func planEmpty(t *config.Tenant, d Desired) []change.Change {
	var cs []change.Change
	for i := range d.Routes {
		cs = append(cs, change.Change{Tenant: t.Name, Subsystem: "routing", Action: OpAdd.String(), Object: routeText(&d.Routes[i], t, nil)})
	}
	for _, r := range d.Rules {
		cs = append(cs, change.Change{Tenant: t.Name, Subsystem: "routing", Action: "add-rule", Object: ruleText(r, t)})
	}
	return cs
}

func replaceDetail(op Op, t *config.Tenant, byIndex map[int]string) string {
	if op.Kind == OpReplace && op.Old != nil {
		return "was " + routeText(op.Old, t, byIndex)
	}
	return ""
}

// diffRules reads fwd's rules of both families and diffs them.
func diffRules(nh *netlink.Handle, t *config.Tenant, desired []Rule) ([]change.Change, []RuleOp, error) {
	var owned []Rule
	for _, af := range []int{unix.AF_INET, unix.AF_INET6} {
		list, err := nldump.Retry(func() ([]netlink.Rule, error) { return nh.RuleList(af) })
		if err != nil {
			return nil, nil, fmt.Errorf("tenant %q: list rules: %w", t.Name, err)
		}
		for _, r := range list {
			if r.Protocol == Protocol {
				owned = append(owned, fromNetlinkRule(r, af))
			}
		}
	}
	ops := DiffRules(desired, owned)
	var cs []change.Change
	for _, op := range ops {
		action := "delete-rule"
		if op.Add {
			action = "add-rule"
		}
		cs = append(cs, change.Change{Tenant: t.Name, Subsystem: "routing", Action: action, Object: ruleText(op.Rule, t)})
	}
	return cs, ops, nil
}

func ruleText(r Rule, t *config.Tenant) string {
	s := r.String()
	if t != nil {
		s = s[:len(s)-len(fmt.Sprint(r.Table))] + t.Routing.TableName(r.Table)
	}
	return s
}

func prefixNet(p netip.Prefix) *net.IPNet {
	if !p.IsValid() {
		return nil
	}
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func netPrefix(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}
	}
	if n.IP.To4() != nil {
		a = a.Unmap()
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a, ones)
}

func toNetlinkRule(r Rule) *netlink.Rule {
	nr := netlink.NewRule()
	nr.Family = unix.AF_INET
	if r.Family == 6 {
		nr.Family = unix.AF_INET6
	}
	nr.Priority = int(r.Priority)
	nr.Table = int(r.Table)
	nr.Src = prefixNet(r.From)
	nr.Dst = prefixNet(r.To)
	nr.IifName = r.IIF
	nr.OifName = r.OIF
	if r.HasMark {
		m := r.Mask
		nr.Mark, nr.Mask = r.Mark, &m
	}
	nr.Protocol = Protocol
	return nr
}

func fromNetlinkRule(nr netlink.Rule, af int) Rule {
	r := Rule{Family: 4, Priority: uint32(nr.Priority), Table: uint32(nr.Table), From: netPrefix(nr.Src), To: netPrefix(nr.Dst),
		IIF: nr.IifName, OIF: nr.OifName, Protocol: nr.Protocol}
	if af == unix.AF_INET6 {
		r.Family = 6
	}
	if nr.Mask != nil || nr.Mark != 0 {
		r.HasMark, r.Mark, r.Mask = true, nr.Mark, 0xffffffff
		if nr.Mask != nil {
			r.Mask = *nr.Mask
		}
	}
	// The kernel reports "from all" as 0.0.0.0/0 on some versions.
	if r.From.IsValid() && r.From.Bits() == 0 {
		r.From = netip.Prefix{}
	}
	if r.To.IsValid() && r.To.Bits() == 0 {
		r.To = netip.Prefix{}
	}
	return r
}

// routeText renders a route with interface and table names.
func routeText(r *Route, t *config.Tenant, byIndex map[int]string) string {
	c := *r
	c.NextHops = append([]NextHop(nil), r.NextHops...)
	for i := range c.NextHops {
		if c.NextHops[i].Dev == "" {
			c.NextHops[i].Dev = byIndex[c.NextHops[i].Ifindex]
		}
	}
	s := c.String()
	if t != nil && c.Table != 254 {
		s = replaceTable(s, c.Table, t.Routing.TableName(c.Table))
	}
	return s
}

func replaceTable(s string, id uint32, name string) string {
	old := fmt.Sprintf(" table %d", id)
	if i := strings.Index(s+" ", old+" "); i >= 0 {
		return s[:i] + " table " + name + s[i+len(old):]
	}
	return s
}

var protoNames = map[uint8]string{0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static", 8: "gated", 9: "ra", 10: "mrt", 11: "zebra", 12: "bird", 16: "dhcp", 42: "babel", 186: "bgp", 187: "isis", 188: "ospf", 189: "rip", 192: "eigrp", Protocol: ProtocolName}

func protoName(p uint8) string {
	if n, ok := protoNames[p]; ok {
		return n
	}
	return fmt.Sprint(p)
}
