package routing

import (
	"errors"
	"fmt"
	"sort"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/rtnl"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

var errNoNamespace = errors.New("no namespace handle")

// RouteView is one route as `fwd show routes` prints it.
type RouteView struct {
	Table     uint32        `json:"table"`
	TableName string        `json:"table_name"`
	Dst       string        `json:"dst"`
	Type      string        `json:"type"`
	Protocol  string        `json:"protocol"`
	Owned     bool          `json:"fwd"` // installed by fwd (protocol Protocol)
	Metric    uint32        `json:"metric"`
	Src       string        `json:"src,omitempty"`
	NHID      uint32        `json:"nhid,omitempty"`
	NextHops  []NextHopView `json:"nexthops,omitempty"`
	Text      string        `json:"-"` // `ip route` style line
}

// NextHopView is one path of a RouteView.
type NextHopView struct {
	Gateway string `json:"gateway,omitempty"`
	Dev     string `json:"dev,omitempty"`
	Weight  int    `json:"weight"`
	OnLink  bool   `json:"onlink,omitempty"`
}

// RuleView is one policy routing rule as `fwd show rules` prints it.
type RuleView struct {
	Family    string `json:"family"` // ipv4, ipv6
	Priority  uint32 `json:"priority"`
	From      string `json:"from"`
	To        string `json:"to,omitempty"`
	IIF       string `json:"iif,omitempty"`
	OIF       string `json:"oif,omitempty"`
	FwMark    string `json:"fwmark,omitempty"`
	Table     uint32 `json:"table"`
	TableName string `json:"table_name"`
	Protocol  string `json:"protocol"`
	Owned     bool   `json:"fwd"`
	Text      string `json:"-"`
}

// TableID resolves a --table argument: "main", "local", "default", a
// table declared by t (may be nil), "all" (0), or a number.
func TableID(t *config.Tenant, name string) (uint32, error) {
	switch name {
	case "", "all":
		return 0, nil
	case "main":
		return config.TableMain, nil
	case "local":
		return config.TableLocal, nil
	case "default":
		return config.TableDefault, nil
	}
	if t != nil {
		if id := t.Routing.TableID(name); id != 0 {
			return id, nil
		}
	}
	var id uint32
	if _, err := fmt.Sscanf(name, "%d", &id); err == nil && fmt.Sprint(id) == name {
		return id, nil
	}
	return 0, fmt.Errorf("unknown table %q", name)
}

// TableName is the name of table id in t's config (main, local, a
// declared name), or its number for a table the config does not name.
func TableName(t *config.Tenant, id uint32) string {
	if t != nil {
		return t.Routing.TableName(id)
	}
	var r config.Routing
	return r.TableName(id)
}

// ReadRoutes returns every unicast-ish route (any protocol) of namespace
// ns in table (0: all tables, without the kernel's local table), sorted by
// table, family and destination. t (may be nil) names tables.
func ReadRoutes(ns netns.NsHandle, t *config.Tenant, table uint32) ([]RouteView, error) {
	if !ns.IsOpen() {
		return nil, errNoNamespace
	}
	c, err := rtnl.Open(ns)
	if err != nil {
		return nil, err
	}
	all, err := c.Routes(rtnl.Filter{Table: table})
	c.Close()
	if err != nil {
		return nil, fmt.Errorf("read routes: %w", err)
	}
	routes := all[:0]
	for _, r := range all {
		if table == 0 && r.Table == config.TableLocal {
			continue
		}
		routes = append(routes, r)
	}
	byIndex := map[int]string{}
	if nh, err := rtnl.LinkHandle(ns); err == nil {
		if links, err := rtnl.Retry(func() ([]netlink.Link, error) { return nh.LinkList() }); err == nil {
			for _, l := range links {
				byIndex[l.Attrs().Index] = l.Attrs().Name
			}
		}
		nh.Close()
	}
	sort.SliceStable(routes, func(i, j int) bool {
		a, b := &routes[i], &routes[j]
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		if a.Family() != b.Family() {
			return a.Family() < b.Family()
		}
		if c := a.Dst.Addr().Compare(b.Dst.Addr()); c != 0 {
			return c < 0
		}
		if a.Dst.Bits() != b.Dst.Bits() {
			return a.Dst.Bits() < b.Dst.Bits()
		}
		return a.Metric < b.Metric
	})
	views := make([]RouteView, 0, len(routes))
	for i := range routes {
		r := &routes[i]
		v := RouteView{
			Table: r.Table, TableName: TableName(t, r.Table), Dst: r.Dst.String(), Type: TypeName(r.RouteType()),
			Protocol: protoName(r.Protocol), Owned: r.Protocol == Protocol, Metric: r.Metric, NHID: r.NHID,
		}
		if r.Dst.Bits() == 0 {
			v.Dst = "default"
		}
		if r.Src.IsValid() {
			v.Src = r.Src.String()
		}
		for _, nh := range r.NextHops {
			nv := NextHopView{Dev: byIndex[nh.Ifindex], Weight: weight(nh.Weight), OnLink: nh.OnLink}
			if nh.Gw.IsValid() {
				nv.Gateway = nh.Gw.String()
			}
			v.NextHops = append(v.NextHops, nv)
		}
		v.Text = routeText(r, t, byIndex) + " proto " + v.Protocol
		views = append(views, v)
	}
	return views, nil
}

// ReadRules returns the policy routing rules of namespace ns, both
// families, in priority order. t (may be nil) names tables.
func ReadRules(ns netns.NsHandle, t *config.Tenant) ([]RuleView, error) {
	if !ns.IsOpen() {
		return nil, errNoNamespace
	}
	nh, err := rtnl.LinkHandle(ns)
	if err != nil {
		return nil, err
	}
	defer nh.Close()
	var views []RuleView
	for _, af := range []int{unix.AF_INET, unix.AF_INET6} {
		list, err := rtnl.Retry(func() ([]netlink.Rule, error) { return nh.RuleList(af) })
		if err != nil {
			return nil, fmt.Errorf("read rules: %w", err)
		}
		for _, nr := range list {
			r := fromNetlinkRule(nr, af)
			v := RuleView{Family: "ipv4", Priority: r.Priority, From: "all", IIF: r.IIF, OIF: r.OIF, Table: r.Table,
				TableName: TableName(t, r.Table), Protocol: protoName(r.Protocol), Owned: r.Protocol == Protocol}
			if r.Family == 6 {
				v.Family = "ipv6"
			}
			if r.From.IsValid() {
				v.From = r.From.String()
			}
			if r.To.IsValid() {
				v.To = r.To.String()
			}
			if r.HasMark {
				v.FwMark = fmt.Sprintf("%#x/%#x", r.Mark, r.Mask)
			}
			v.Text = ruleText(r, t) + " proto " + v.Protocol
			views = append(views, v)
		}
	}
	sort.SliceStable(views, func(i, j int) bool {
		if views[i].Priority != views[j].Priority {
			return views[i].Priority < views[j].Priority
		}
		return views[i].Family < views[j].Family
	})
	return views, nil
}
