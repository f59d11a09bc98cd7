//go:build kernel

package routing_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/rtnl"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
	"github.com/fwdproject/fwd/routing"
	"github.com/fwdproject/fwd/zones"
	"github.com/vishvananda/netns"
)

func TestMain(m *testing.M) { testkit.Main(m) }

const interfaces = `
[tenant.edge.interface.wan1]
device = "eth1"
addresses = ["203.0.113.2/24", "2001:db8:1::2/64"]

[tenant.edge.interface.wan2]
device = "eth2"
addresses = ["198.51.100.2/24", "2001:db8:2::2/64"]

[tenant.edge.interface.lan]
device = "eth3"
addresses = ["192.0.2.1/24"]

[tenant.edge.table.isp2]
id = 100
`

// dualUplink: main table leaves by isp1, table isp2 by isp2, and the upper
// half of the LAN is steered into isp2 by a rule.
const dualUplink = interfaces + `
[[tenant.edge.route]]
to = "default"
via = "203.0.113.1"

[[tenant.edge.route]]
to = "default"
via = "198.51.100.1"
table = "isp2"

[[tenant.edge.route]]
to = "198.18.64.0/24"
nexthops = [{ via = "203.0.113.1", weight = 3 }, { via = "198.51.100.1", dev = "wan2" }]

[[tenant.edge.route]]
to = "198.19.255.0/24"
type = "blackhole"

[[tenant.edge.route]]
to = "2001:db8:ff::/48"
via = "2001:db8:1::1"

[[tenant.edge.route]]
to = "2001:db8:fe::/48"
nexthops = [{ via = "2001:db8:1::1", weight = 5 }, { via = "2001:db8:2::1" }]

[[tenant.edge.route]]
to = "198.18.10.0/24"
dev = "lan"

[[tenant.edge.route]]
to = "198.18.20.0/24"
via = "192.0.2.254"
dev = "wan1"
onlink = true

[[tenant.edge.route_rule]]
priority = 100
from = "192.0.2.128/25"
table = "isp2"

[[tenant.edge.route_rule]]
priority = 200
fwmark = 0x10
fwmask = 0xf0
table = "isp2"
`

// topology builds the tenant "edge" with two uplinks to ISP hosts, each
// of which owns 198.18.0.1, and a LAN host with a low and a high address.
func topology(t *testing.T) *zones.Manager {
	t.Helper()
	testnet.Host(t, "isp1")
	testnet.Host(t, "isp2")
	testnet.Host(t, "lanh")
	testnet.NIC(t, "eth1", "isp1", "up0", netip.MustParseAddr("203.0.113.2"), "203.0.113.1/24", "2001:db8:1::1/64")
	testnet.NIC(t, "eth2", "isp2", "up0", netip.MustParseAddr("198.51.100.2"), "198.51.100.1/24", "2001:db8:2::1/64")
	testnet.NIC(t, "eth3", "lanh", "lan0", netip.MustParseAddr("192.0.2.1"), "192.0.2.10/24", "192.0.2.130/24")
	for _, h := range []string{"isp1", "isp2"} {
		testnet.MustCmd(t, h, "ip", "addr", "add", "198.18.0.1/32", "dev", "lo")
	}
	m, err := zones.NewManager(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := applyZones(m, &config.Config{}); err != nil {
			t.Errorf("zones teardown: %v", err)
		}
		m.Close()
	})
	return m
}

// applyZones makes the kernel's namespaces and links match cfg.
func applyZones(m *zones.Manager, cfg *config.Config) error {
	p, err := m.Plan(context.Background(), cfg)
	if err != nil {
		return err
	}
	_, err = m.Apply(context.Background(), p)
	return err
}

// apply runs zones then routing for the tenant, as the daemon does.
func apply(t *testing.T, m *zones.Manager, cfg *config.Config, dryRun bool) []change.Change {
	t.Helper()
	if !dryRun {
		if err := applyZones(m, cfg); err != nil {
			t.Fatalf("zones: %v", err)
		}
	}
	h, err := ns.Open("edge")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var cs []change.Change
	if dryRun {
		cs, err = plan(cfg.Tenant("edge"), h)
	} else {
		cs, err = reconcile(cfg.Tenant("edge"), h)
	}
	if err != nil {
		t.Fatalf("routing: %v", err)
	}
	return cs
}

var testLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// plan is what the engine's dry run does: Observe, then Plan.
func plan(t *config.Tenant, h netns.NsHandle) ([]change.Change, error) {
	d := routing.Compile(t)
	obs, err := routing.Observe(h, d)
	if err != nil {
		return nil, err
	}
	return routing.Plan(d, obs).Changes(), nil
}

// reconcile is what the engine's apply does: Observe, Plan, Apply. It
// also checks Applied.Routes, the count status and metrics report,
// against the kernel.
func reconcile(t *config.Tenant, h netns.NsHandle) ([]change.Change, error) {
	d := routing.Compile(t)
	obs, err := routing.Observe(h, d)
	if err != nil {
		return nil, err
	}
	res, err := routing.Apply(context.Background(), testLog, h, routing.Plan(d, obs))
	if err != nil {
		return res.Changes, err
	}
	c, err := rtnl.Open(h)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	owned, err := c.Routes(rtnl.Filter{Protocol: routing.Protocol})
	if err != nil {
		return nil, err
	}
	inKernel := map[uint32]int{}
	for _, r := range owned {
		inKernel[r.Table]++
	}
	if !maps.Equal(inKernel, res.Routes) {
		return res.Changes, fmt.Errorf("Applied.Routes = %v, the kernel holds %v", res.Routes, inKernel)
	}
	return res.Changes, nil
}

type ipRoute struct {
	Dst      string   `json:"dst"`
	Gateway  string   `json:"gateway"`
	Dev      string   `json:"dev"`
	Table    string   `json:"table"`
	Protocol string   `json:"protocol"`
	Type     string   `json:"type"`
	Metric   int      `json:"metric"`
	Flags    []string `json:"flags"`
	Nexthops []struct {
		Gateway string `json:"gateway"`
		Dev     string `json:"dev"`
		Weight  int    `json:"weight"`
	} `json:"nexthops"`
}

func (r ipRoute) String() string {
	s := fmt.Sprintf("%s table=%s proto=%s", r.Dst, r.Table, r.Protocol)
	if r.Type != "" && r.Type != "unicast" {
		s = r.Type + " " + s
	}
	if r.Gateway != "" {
		s += " via=" + r.Gateway
	}
	for _, nh := range r.Nexthops {
		s += fmt.Sprintf(" nh=%s/%s/%d", nh.Gateway, nh.Dev, nh.Weight)
	}
	for _, f := range r.Flags {
		s += " " + f
	}
	return s
}

func ipRoutes(t *testing.T, family string) map[string]bool {
	var rs []ipRoute
	testnet.JSON(t, &rs, "", "ip", "-j", family, "-n", "edge", "route", "show", "table", "all")
	m := map[string]bool{}
	for _, r := range rs {
		if r.Table == "" {
			r.Table = "main"
		}
		m[r.String()] = true
	}
	return m
}

type ipRule struct {
	Priority int    `json:"priority"`
	Src      string `json:"src"`
	SrcLen   int    `json:"srclen"`
	Table    string `json:"table"`
	Protocol string `json:"protocol"`
	FwMark   string `json:"fwmark"`
	FwMask   string `json:"fwmask"`
}

func icmpEchos(t *testing.T, host string) int {
	out := testnet.MustCmd(t, host, "cat", "/proc/net/snmp")
	lines := strings.Split(out, "\n")
	for i := 0; i+1 < len(lines); i++ {
		if strings.HasPrefix(lines[i], "Icmp: InMsgs") {
			names, vals := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			for j, n := range names {
				if n == "InEchos" {
					v, _ := strconv.Atoi(vals[j])
					return v
				}
			}
		}
	}
	t.Fatal("no InEchos in /proc/net/snmp")
	return 0
}

func TestDualUplinkPolicyECMPAndAdoption(t *testing.T) {
	testkit.Require(t)
	m := topology(t)
	cfg := testkit.Config(t, dualUplink)
	// An operator's route fwd must never touch, present before fwd.
	if err := applyZones(m, cfg); err != nil {
		t.Fatal(err)
	}
	testnet.MustCmd(t, "", "ip", "-n", "edge", "route", "add", "198.19.0.0/24", "via", "203.0.113.1", "proto", "static")

	cs := apply(t, m, cfg, false)
	if n := change.Summary(cs)["routing/add-route"]; n != 8 {
		t.Errorf("add-route changes = %d, want 8: %v", n, cs)
	}
	if n := change.Summary(cs)["routing/add-rule"]; n != 3 {
		t.Errorf("add-rule changes = %d, want 3 (fwmark rule is in both families): %v", n, cs)
	}

	v4 := ipRoutes(t, "-4")
	for _, want := range []string{
		"default table=main proto=243 via=203.0.113.1",
		"default table=100 proto=243 via=198.51.100.1",
		"198.18.64.0/24 table=main proto=243 nh=203.0.113.1/wan1/3 nh=198.51.100.1/wan2/1",
		"blackhole 198.19.255.0/24 table=main proto=243",
		"198.19.0.0/24 table=main proto=static via=203.0.113.1",
	} {
		if !v4[want] {
			t.Errorf("ip -4 route show table all lacks %q; have:\n%v", want, keys(v4))
		}
	}
	for _, want := range []string{
		"198.18.10.0/24 table=main proto=243",
		"198.18.20.0/24 table=main proto=243 via=192.0.2.254 onlink",
	} {
		if !v4[want] {
			t.Errorf("ip -4 route show table all lacks %q; have:\n%v", want, keys(v4))
		}
	}
	v6 := ipRoutes(t, "-6")
	for _, want := range []string{
		"2001:db8:ff::/48 table=main proto=243 via=2001:db8:1::1",
		"2001:db8:fe::/48 table=main proto=243 nh=2001:db8:1::1/wan1/5 nh=2001:db8:2::1/wan2/1",
	} {
		if !v6[want] {
			t.Errorf("ip -6 route show table all lacks %q; have:\n%v", want, keys(v6))
		}
	}
	var rules []ipRule
	testnet.JSON(t, &rules, "", "ip", "-j", "-n", "edge", "rule")
	found := 0
	for _, r := range rules {
		switch {
		case r.Priority == 100 && r.Src == "192.0.2.128" && r.SrcLen == 25 && r.Table == "100" && r.Protocol == "243":
			found++
		case r.Priority == 200 && r.FwMark == "0x10" && r.FwMask == "0xf0" && r.Table == "100" && r.Protocol == "243":
			found++
		}
	}
	if found != 2 {
		t.Errorf("policy rules not found in ip -j rule: %+v", rules)
	}

	// Traffic from the two halves of the LAN leaves by the two uplinks.
	if !testnet.WaitPing("lanh", "192.0.2.1", 5*time.Second) {
		t.Fatal("LAN host cannot reach the tenant")
	}
	for _, tc := range []struct{ src, via, not string }{
		{"192.0.2.10", "isp1", "isp2"},
		{"192.0.2.130", "isp2", "isp1"},
	} {
		b1, b2 := icmpEchos(t, tc.via), icmpEchos(t, tc.not)
		testnet.MustCmd(t, "lanh", "ping", "-c", "3", "-i", "0.05", "-W", "2", "-I", tc.src, "198.18.0.1")
		if got := icmpEchos(t, tc.via) - b1; got < 3 {
			t.Errorf("from %s: %s saw %d echo requests, want 3", tc.src, tc.via, got)
		}
		if got := icmpEchos(t, tc.not) - b2; got != 0 {
			t.Errorf("from %s: %s saw %d echo requests, want 0", tc.src, tc.not, got)
		}
	}

	// Plan and second apply: nothing to do; restart adoption is the same
	// code path (Observe → Plan → Apply keeps no state between calls).
	if cs := apply(t, m, cfg, true); len(cs) != 0 {
		t.Errorf("plan after apply: %v", cs)
	}
	if cs := apply(t, m, cfg, false); len(cs) != 0 {
		t.Errorf("second apply: %v", cs)
	}

	// Reload: change the ECMP weights, move the blackhole to a new metric,
	// drop the IPv6 route and the fwmark rule.
	cfg2 := testkit.Config(t, strings.NewReplacer(
		"weight = 3", "weight = 1",
		"type = \"blackhole\"", "type = \"blackhole\"\nmetric = 10",
		"to = \"2001:db8:ff::/48\"\nvia = \"2001:db8:1::1\"", "to = \"2001:db8:ff::/48\"\ntype = \"unreachable\"",
	).Replace(dualUplink))
	cs = apply(t, m, cfg2, false)
	sum := change.Summary(cs)
	if sum["routing/replace-route"] != 2 || sum["routing/add-route"] != 1 || sum["routing/delete-route"] != 1 {
		t.Errorf("reload changes = %v:\n%v", sum, cs)
	}
	v4 = ipRoutes(t, "-4")
	for _, want := range []string{
		"198.18.64.0/24 table=main proto=243 nh=203.0.113.1/wan1/1 nh=198.51.100.1/wan2/1",
		"198.19.0.0/24 table=main proto=static via=203.0.113.1",
	} {
		if !v4[want] {
			t.Errorf("after reload lacks %q; have:\n%v", want, keys(v4))
		}
	}
	if cs := apply(t, m, cfg2, false); len(cs) != 0 {
		t.Errorf("second apply after reload: %v", cs)
	}

	// Views for the CLI.
	h, _ := ns.Open("edge")
	defer h.Close()
	views, err := routing.ReadRoutes(h, cfg2.Tenant("edge"), 100)
	if err != nil || len(views) != 1 || views[0].TableName != "isp2" || views[0].Dst != "default" || !views[0].Owned || views[0].NextHops[0].Dev != "wan2" {
		t.Errorf("ReadRoutes(isp2) = %+v, %v", views, err)
	}
	rv, err := routing.ReadRules(h, cfg2.Tenant("edge"))
	if err != nil {
		t.Fatal(err)
	}
	owned := 0
	for _, r := range rv {
		if r.Owned {
			owned++
		}
	}
	if owned != 3 {
		t.Errorf("ReadRules owned = %d, want 3: %+v", owned, rv)
	}

	// Removing all routing config removes fwd's routes and rules only.
	cs = apply(t, m, testkit.Config(t, interfaces), false)
	if len(cs) == 0 {
		t.Error("removing the routing config changed nothing")
	}
	v4 = ipRoutes(t, "-4")
	for r := range v4 {
		if strings.Contains(r, "proto=243") {
			t.Errorf("fwd route left behind: %s", r)
		}
	}
	if !v4["198.19.0.0/24 table=main proto=static via=203.0.113.1"] {
		t.Errorf("operator's route removed; have:\n%v", keys(v4))
	}
	rules = nil
	testnet.JSON(t, &rules, "", "ip", "-j", "-n", "edge", "rule")
	for _, r := range rules {
		if r.Protocol == "243" {
			t.Errorf("fwd rule left behind: %+v", r)
		}
	}
}

func keys(m map[string]bool) string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	return strings.Join(s, "\n")
}

func TestForeignRouteConflictAndUnreachableGateway(t *testing.T) {
	testkit.Require(t)
	m := topology(t)
	cfg := testkit.Config(t, interfaces+`
[[tenant.edge.route]]
to = "198.18.99.0/24"
via = "203.0.113.1"

[[tenant.edge.route]]
to = "198.18.98.0/24"
via = "198.51.100.1"
`)
	if err := applyZones(m, cfg); err != nil {
		t.Fatal(err)
	}
	// The operator holds the first key; the second's uplink is down.
	testnet.MustCmd(t, "", "ip", "-n", "edge", "route", "add", "198.18.99.0/24", "dev", "wan1", "proto", "static")
	testnet.MustCmd(t, "", "ip", "-n", "edge", "link", "set", "wan2", "down")
	h, _ := ns.Open("edge")
	defer h.Close()
	cs, err := reconcile(cfg.Tenant("edge"), h)
	if err != nil {
		t.Fatalf("unreachable gateway must not be fatal: %v", err)
	}
	sum := change.Summary(cs)
	if sum["routing/conflict-route"] != 1 || sum["routing/skip-route"] != 1 || len(cs) != 2 {
		t.Errorf("changes = %v", cs)
	}
	out := testnet.MustCmd(t, "", "ip", "-n", "edge", "route", "show", "198.18.99.0/24")
	if strings.TrimSpace(out) != "198.18.99.0/24 dev wan1 proto static scope link" {
		t.Errorf("operator's route was touched: %q", out)
	}
	// Uplink back: the skipped route is installed.
	testnet.MustCmd(t, "", "ip", "-n", "edge", "link", "set", "wan2", "up")
	cs, err = reconcile(cfg.Tenant("edge"), h)
	if err != nil || change.Summary(cs)["routing/add-route"] != 1 {
		t.Errorf("after link up: %v, %v", cs, err)
	}
}

var reLoss = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

func TestGatewayChangeLosesNothing(t *testing.T) {
	testkit.Require(t)
	m := topology(t)
	route := func(gw string) *config.Config {
		return testkit.Config(t, interfaces+fmt.Sprintf(`
[[tenant.edge.route]]
to = "198.18.0.0/24"
via = %q
`, gw))
	}
	apply(t, m, route("203.0.113.1"), false)
	if !testnet.WaitPing("lanh", "198.18.0.1", 5*time.Second) {
		t.Fatal("no path to 198.18.0.1")
	}
	h, _ := ns.Open("edge")
	defer h.Close()
	// A flood of pings (one every 2 ms) while the gateway flips 20 times.
	ping := exec.Command("ip", "netns", "exec", "lanh", "ping", "-i", "0.002", "-c", "1500", "-W", "1", "-q", "198.18.0.1")
	var out strings.Builder
	ping.Stdout, ping.Stderr = &out, &out
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	// Neighbours of both gateways are resolved first so that the test
	// measures routing, not ARP.
	testnet.MustCmd(t, "edge", "ping", "-c", "1", "198.51.100.1")
	testnet.MustCmd(t, "edge", "ping", "-c", "1", "203.0.113.1")
	for i := range 20 {
		gw := []string{"198.51.100.1", "203.0.113.1"}[i%2]
		cs, err := reconcile(route(gw).Tenant("edge"), h)
		if err != nil || len(cs) != 1 || cs[0].Action != "replace-route" {
			t.Fatalf("flip %d: %v %v", i, cs, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = ping.Wait() // exits 1 when packets were lost: the output says how many
	mm := reLoss.FindStringSubmatch(out.String())
	if mm == nil {
		t.Fatalf("ping output: %s", out.String())
	}
	if mm[1] != mm[2] {
		t.Errorf("packets lost during gateway changes: %s", strings.TrimSpace(out.String()))
	}
	t.Logf("%s transmitted, %s received", mm[1], mm[2])
}

func TestInstallerNexthopSyncAndWithdraw(t *testing.T) {
	testkit.Require(t)
	m := topology(t)
	apply(t, m, testkit.Config(t, interfaces), false)
	h, _ := ns.Open("edge")
	defer h.Close()
	in, err := routing.NewInstaller(h, 244)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	wan1 := ifindex(t, h, "wan1")
	ctx := context.Background()
	if err := in.AddNexthop(ctx, routing.Nexthop{ID: 7, Gw: netip.MustParseAddr("203.0.113.1"), Ifindex: wan1}); err != nil {
		t.Fatal(err)
	}
	const n = 20000
	routes := make([]routing.Route, n)
	base := netip.MustParseAddr("198.18.0.0").As4()
	for i := range routes {
		a := base
		a[1] += byte(i >> 16)
		a[2], a[3] = byte(i>>8), byte(i)
		routes[i] = routing.Route{Table: 100, Dst: netip.PrefixFrom(netip.AddrFrom4(a), 32), NHID: 7}
	}
	testnet.MustCmd(t, "", "ip", "-n", "edge", "route", "add", "198.19.200.0/24", "via", "203.0.113.1", "table", "100", "proto", "static")
	if err := in.Add(ctx, routes); err != nil {
		t.Fatal(err)
	}
	got, err := in.Routes(100)
	if err != nil || len(got) != n {
		t.Fatalf("Routes(100) = %d routes, %v; want %d", len(got), err, n)
	}
	// Failures are matched to their routes across chunks: every second
	// op re-adds an existing route (EEXIST), the others add new ones.
	var ops []routing.Op
	for i := range n {
		r := routes[i]
		if i%2 == 1 {
			r.Metric = 7
		}
		ops = append(ops, routing.Op{Kind: routing.OpAdd, Route: r})
	}
	failed, err := in.Apply(ctx, ops)
	if err != nil || len(failed) != n/2 {
		t.Fatalf("Apply: %d failed, %v; want %d", len(failed), err, n/2)
	}
	for _, f := range failed {
		if f.Op.Route.Metric != 0 || !strings.Contains(f.Err.Error(), "file exists") {
			t.Fatalf("unexpected failure %v", f)
		}
	}
	var extra []routing.Route
	for i := 1; i < n; i += 2 {
		extra = append(extra, ops[i].Route)
	}
	if err := in.Delete(ctx, extra); err != nil {
		t.Fatal(err)
	}
	// Sync: drop half, move 100 to a direct gateway: only differences sent.
	desired := append([]routing.Route(nil), routes[:n/2]...)
	for i := range 100 {
		desired[i].NHID = 0
		desired[i].NextHops = []routing.NextHop{{Gw: netip.MustParseAddr("203.0.113.1")}}
	}
	res, err := in.Sync(ctx, 100, desired)
	if err != nil || len(res.Failed) != 0 || res.Added != 0 || res.Replaced != 100 || res.Deleted != n/2 {
		t.Fatalf("Sync = %+v, %v", res, err)
	}
	res, err = in.Sync(ctx, 100, desired)
	if err != nil || res.Added+res.Replaced+res.Deleted != 0 {
		t.Fatalf("second Sync = %+v, %v", res, err)
	}
	// One message withdraws every route through the nexthop.
	if err := in.DeleteNexthop(ctx, 7); err != nil {
		t.Fatal(err)
	}
	got, _ = in.Routes(100)
	if len(got) != 100 {
		t.Errorf("after nexthop delete: %d routes, want the 100 direct ones", len(got))
	}
	if err := in.Delete(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got, _ = in.Routes(100); len(got) != 0 {
		t.Errorf("after delete: %d routes", len(got))
	}
	out := testnet.MustCmd(t, "", "ip", "-n", "edge", "route", "show", "table", "100")
	if strings.TrimSpace(out) != "198.19.200.0/24 via 203.0.113.1 dev wan1 proto static" {
		t.Errorf("table 100 after withdrawal: %q", out)
	}
}

func ifindex(t *testing.T, h netns.NsHandle, name string) int {
	t.Helper()
	var idx int
	err := ns.Do(h, func() error {
		out, err := exec.Command("cat", "/sys/class/net/"+name+"/ifindex").Output()
		if err != nil {
			return err
		}
		idx, err = strconv.Atoi(strings.TrimSpace(string(out)))
		return err
	})
	if err != nil {
		// /sys shows the sandbox's namespace: ask ip instead.
		out := testnet.MustCmd(t, "", "ip", "-n", "edge", "-o", "link", "show", name)
		idx, _ = strconv.Atoi(strings.SplitN(out, ":", 2)[0])
	}
	return idx
}

// The shipped example works as documented.
func TestDualUplinkExampleConfig(t *testing.T) {
	testkit.Require(t)
	m := topology(t)
	cfg, err := config.Load("../configs/dual-uplink.toml")
	if err != nil {
		t.Fatal(err)
	}
	cs := apply(t, m, cfg, false)
	if n := change.Summary(cs)["routing/add-route"]; n != 4 {
		t.Errorf("changes = %v", cs)
	}
	if !testnet.WaitPing("lanh", "192.0.2.1", 5*time.Second) {
		t.Fatal("LAN host cannot reach the tenant")
	}
	b1, b2 := icmpEchos(t, "isp1"), icmpEchos(t, "isp2")
	testnet.MustCmd(t, "lanh", "ping", "-c", "5", "-i", "0.05", "-W", "2", "-I", "192.0.2.130", "198.18.0.1")
	if icmpEchos(t, "isp2")-b2 < 5 || icmpEchos(t, "isp1") != b1 {
		t.Error("the LAN's upper half did not leave by isp2 only")
	}
	// The lower half uses the main table, where benchmark space is
	// unreachable.
	if out, err := testnet.Cmd("lanh", "ping", "-c", "1", "-W", "1", "-I", "192.0.2.10", "198.18.0.1"); err == nil || !strings.Contains(out, "Unreachable") {
		t.Errorf("198.18.0.1 from the lower half: %v %s", err, out)
	}
	if cs := apply(t, m, cfg, false); len(cs) != 0 {
		t.Errorf("second apply: %v", cs)
	}
}
