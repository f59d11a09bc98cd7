package routing

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/vishvananda/netns"
)

func TestPlan(t *testing.T) {
	cfg := testkit.Config(t, `
[tenant.edge.interface.wan1]
device = "eth1"
addresses = ["203.0.113.2/24", "2001:db8:1::2/64"]
[tenant.edge.interface.wan2]
device = "eth2"
addresses = ["198.51.100.2/24"]
[tenant.edge.table.isp2]
id = 100
[[tenant.edge.route]]
to = "default"
nexthops = [{ via = "203.0.113.1", weight = 2 }, { via = "198.51.100.1", dev = "wan2" }]
[[tenant.edge.route]]
to = "198.18.0.0/15"
type = "prohibit"
table = "isp2"
[[tenant.edge.route]]
to = "2001:db8:ff::/48"
dev = "wan1"
[[tenant.edge.route_rule]]
priority = 300
iif = "wan2"
table = "isp2"
[[tenant.edge.route_rule]]
priority = 100
from = "203.0.113.0/24"
table = "main"
`)
	d := Compile(cfg.Tenant("edge"))
	var got []string
	for _, r := range d.Routes {
		got = append(got, r.String())
	}
	want := []string{
		"0.0.0.0/0 nexthop via 203.0.113.1 weight 2 nexthop via 198.51.100.1 dev wan2 weight 1",
		"prohibit 198.18.0.0/15 table 100",
		"2001:db8:ff::/48 dev wan1 metric 1024",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("routes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	got = nil
	for _, r := range d.Rules {
		got = append(got, r.String())
	}
	want = []string{
		"100: from 203.0.113.0/24 lookup 254",
		"300: from all iif wan2 lookup 100",
		"300: [ipv6] from all iif wan2 lookup 100",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func gw(s string) []NextHop { return []NextHop{{Gw: netip.MustParseAddr(s), Weight: 1}} }

func TestDiff(t *testing.T) {
	p := netip.MustParsePrefix
	a := Route{Table: 254, Dst: p("198.18.0.0/24"), NextHops: gw("203.0.113.1")}
	b := Route{Table: 254, Dst: p("198.18.1.0/24"), NextHops: gw("203.0.113.1")}
	c := Route{Table: 100, Dst: p("198.18.2.0/24"), Type: TypeBlackhole}
	// The kernel reports the interface it chose and weight 1: still the same.
	aKernel := a
	aKernel.NextHops = []NextHop{{Gw: netip.MustParseAddr("203.0.113.1"), Ifindex: 3, Weight: 1}}
	aKernel.Protocol = Protocol
	bMoved := b
	bMoved.NextHops = gw("198.51.100.1")
	stale := Route{Table: 254, Dst: p("198.18.9.0/24"), NextHops: gw("203.0.113.1")}
	foreignKey := Route{Table: 100, Dst: p("198.18.2.0/24")}

	ops, conflicts := Diff([]Route{a, bMoved, c}, []Route{aKernel, b, stale}, map[Key]Route{foreignKey.Key(): foreignKey})
	var got []string
	for _, op := range ops {
		got = append(got, op.Kind.String()+" "+op.Route.String())
	}
	want := []string{
		"replace-route 198.18.1.0/24 via 198.51.100.1",
		"delete-route 198.18.9.0/24 via 203.0.113.1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("ops:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(conflicts) != 1 || conflicts[0].Dst != c.Dst {
		t.Errorf("conflicts = %v", conflicts)
	}
	// Nothing to do when the kernel already matches.
	if ops, _ := Diff([]Route{a}, []Route{aKernel}, nil); len(ops) != 0 {
		t.Errorf("no-op diff = %v", ops)
	}
	// A metric change is an add before a delete (different keys).
	m := a
	m.Metric = 10
	ops, _ = Diff([]Route{m}, []Route{aKernel}, nil)
	if len(ops) != 2 || ops[0].Kind != OpAdd || ops[1].Kind != OpDelete {
		t.Errorf("metric change = %v", ops)
	}
}

func TestDiffRules(t *testing.T) {
	r1 := Rule{Family: 4, Priority: 100, From: netip.MustParsePrefix("192.0.2.0/25"), Table: 100}
	r2 := Rule{Family: 4, Priority: 100, From: netip.MustParsePrefix("192.0.2.128/25"), Table: 100}
	owned := r1
	owned.Protocol = Protocol
	ops := DiffRules([]Rule{r2}, []Rule{owned})
	if len(ops) != 2 || !ops[0].Add || ops[0].Rule != r2 || ops[1].Add {
		t.Errorf("ops = %+v", ops)
	}
	if ops := DiffRules([]Rule{r1}, []Rule{owned}); len(ops) != 0 {
		t.Errorf("no-op = %+v", ops)
	}
}

const planTenant = `
[tenant.edge.interface.wan1]
device = "eth1"
addresses = ["203.0.113.2/24"]
[tenant.edge.interface.lan]
device = "eth3"
addresses = ["192.0.2.1/24"]
[tenant.edge.table.isp2]
id = 100
[[tenant.edge.route]]
to = "198.18.1.0/24"
via = "203.0.113.1"
[[tenant.edge.route]]
to = "198.18.2.0/24"
dev = "lan"
[[tenant.edge.route]]
to = "198.18.3.0/24"
via = "203.0.113.9"
table = "isp2"
[[tenant.edge.route]]
to = "198.18.4.0/24"
via = "203.0.113.1"
[[tenant.edge.route_rule]]
priority = 100
from = "192.0.2.128/25"
table = "isp2"
`

func changeLines(cs []change.Change) string {
	var out []string
	for _, c := range cs {
		s := c.Tenant + " " + c.Subsystem + "/" + c.Action + " " + c.Object
		if c.Detail != "" {
			s += " (" + c.Detail + ")"
		}
		out = append(out, s)
	}
	return strings.Join(out, "\n")
}

// Plan sorts routes into skips, conflicts, replacements, additions and
// deletions from a hand-built observed state: no kernel, no root.
func TestPlanAgainstObservedState(t *testing.T) {
	p := netip.MustParsePrefix
	d := Compile(testkit.Config(t, planTenant).Tenant("edge"))
	owned1 := Route{Table: 254, Dst: p("198.18.1.0/24"), NextHops: []NextHop{{Gw: netip.MustParseAddr("203.0.113.1"), Ifindex: 2, Weight: 1}}, Protocol: Protocol}
	ownedOld := Route{Table: 100, Dst: p("198.18.3.0/24"), NextHops: gw("203.0.113.8"), Protocol: Protocol}
	stale := Route{Table: 254, Dst: p("198.18.9.0/24"), NextHops: []NextHop{{Gw: netip.MustParseAddr("203.0.113.1"), Ifindex: 2}}, Protocol: Protocol}
	foreign := Route{Table: 254, Dst: p("198.18.4.0/24"), NextHops: []NextHop{{Ifindex: 2}}, Protocol: 4}
	obs := State{
		Links:   map[string]int{"lo": 1, "wan1": 2}, // lan is missing
		Owned:   []Route{owned1, ownedOld, stale},
		Foreign: map[Key]Route{foreign.Key(): foreign},
	}
	steps := Plan(d, obs)
	want := strings.Join([]string{
		`edge routing/skip-route 198.18.2.0/24 dev lan (interface "lan" does not exist)`,
		`edge routing/conflict-route 198.18.4.0/24 via 203.0.113.1 (the key is held by "198.18.4.0/24 dev wan1" (protocol static), which fwd does not own)`,
		`edge routing/replace-route 198.18.3.0/24 via 203.0.113.9 table isp2 (was 198.18.3.0/24 via 203.0.113.8 table isp2)`,
		`edge routing/delete-route 198.18.9.0/24 via 203.0.113.1 dev wan1`,
		`edge routing/add-rule 100: from 192.0.2.128/25 lookup isp2`,
	}, "\n")
	if got := changeLines(steps.Changes()); got != want {
		t.Errorf("changes:\n%s\nwant:\n%s", got, want)
	}
	if len(steps.Routes) != 2 || steps.Routes[0].Kind != OpReplace || steps.Routes[1].Kind != OpDelete {
		t.Errorf("route steps = %+v", steps.Routes)
	}
	// Plan resolved nothing into desired itself (it stays reusable).
	if d.Routes[1].NextHops[0].Ifindex != 0 {
		t.Error("Plan modified desired")
	}
	// Observed as desired: an empty plan.
	obs.Owned = []Route{owned1, {Table: 100, Dst: p("198.18.3.0/24"), NextHops: gw("203.0.113.9"), Protocol: Protocol},
		{Table: 254, Dst: p("198.18.2.0/24"), NextHops: []NextHop{{Ifindex: 3, Weight: 1}}, Protocol: Protocol},
		{Table: 254, Dst: p("198.18.4.0/24"), NextHops: gw("203.0.113.1"), Protocol: Protocol}}
	obs.Foreign = nil
	obs.Links["lan"] = 3
	obs.Rules = []Rule{{Family: 4, Priority: 100, From: p("192.0.2.128/25"), Table: 100, Protocol: Protocol}}
	if steps := Plan(d, obs); !steps.Empty() {
		t.Errorf("up-to-date plan = %s", changeLines(steps.Changes()))
	}
}

// A tenant whose namespace does not exist yet (fwd plan before its first
// apply) is planned against a Fresh state: everything is added, and the
// caller's own namespace is not read in its place.
func TestPlanForNewTenantReadsNoNamespace(t *testing.T) {
	d := Compile(testkit.Config(t, planTenant).Tenant("edge"))
	obs, err := Observe(netns.None(), d)
	if err != nil || !obs.Fresh || obs.Links != nil || obs.Owned != nil {
		t.Fatalf("observe without a namespace = %+v, %v", obs, err)
	}
	sum := change.Summary(Plan(d, obs).Changes())
	if sum["routing/add-route"] != 4 || sum["routing/add-rule"] != 1 || len(sum) != 2 {
		t.Errorf("plan for a new tenant = %v", sum)
	}
	if _, err := Apply(t.Context(), nil, netns.None(), Plan(d, obs)); err == nil {
		t.Error("apply without a namespace handle succeeded")
	}
}

// A from_interface rule becomes one rule per address the interface holds
// in the rule's family; a new lease address replaces the old rule (add
// first, then delete); an interface without an address yet gets a note
// and no rule.
func TestPlanFromInterface(t *testing.T) {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	d := Compile(testkit.Config(t, `
[tenant.edge.interface.wan]
device = "eth1"
dhcp = true
dhcp6 = true
[tenant.edge.table.wan]
id = 100
[[tenant.edge.route_rule]]
priority = 100
from_interface = "wan"
table = "wan"
`).Tenant("edge"))
	if len(d.Rules) != 2 || d.Rules[0].FromIf != "wan" || d.Rules[1].Family != 6 {
		t.Fatalf("compiled rules %+v", d.Rules)
	}
	obs := State{Links: map[string]int{"lo": 1, "wan": 2},
		Addrs: map[string][]netip.Addr{"wan": {a("198.51.100.7"), a("2001:db8:100::7")}},
		Rules: []Rule{{Family: 4, Priority: 100, From: p("198.51.100.5/32"), Table: 100, Protocol: Protocol}}}
	want := strings.Join([]string{
		`edge routing/add-rule 100: from 198.51.100.7/32 lookup wan`,
		`edge routing/add-rule 100: [ipv6] from 2001:db8:100::7/128 lookup wan`,
		`edge routing/delete-rule 100: from 198.51.100.5/32 lookup wan`,
	}, "\n")
	if got := changeLines(Plan(d, obs).Changes()); got != want {
		t.Errorf("changes:\n%s\nwant:\n%s", got, want)
	}
	if d.Rules[0].FromIf != "wan" || d.Rules[0].From.IsValid() {
		t.Error("Plan modified desired")
	}
	// No IPv6 address yet: the v4 rule stays, the v6 one is noted.
	obs.Addrs["wan"] = []netip.Addr{a("198.51.100.7")}
	obs.Rules = []Rule{{Family: 4, Priority: 100, From: p("198.51.100.7/32"), Table: 100, Protocol: Protocol}}
	want = `edge routing/skip-rule 100: [ipv6] from <addresses of wan> lookup wan (interface "wan" has no IPv6 address yet; the rule follows once it has one)`
	if got := changeLines(Plan(d, obs).Changes()); got != want {
		t.Errorf("changes:\n%s\nwant:\n%s", got, want)
	}
}
