//go:build kernel

package zones_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
	"github.com/fwdproject/fwd/zones"
	"github.com/vishvananda/netlink"
)

func mustConfig(t *testing.T, text string) *config.Config {
	t.Helper()
	return testkit.Config(t, text)
}

func newManager(t *testing.T) *zones.Manager {
	t.Helper()
	m, err := zones.NewManager(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// apply is the engine's zones stage: Plan, then Apply.
func apply(m *zones.Manager, cfg *config.Config) (*zones.Result, error) {
	p, err := m.Plan(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	return m.Apply(context.Background(), p)
}

func reconcile(t *testing.T, m *zones.Manager, cfg *config.Config) *zones.Result {
	t.Helper()
	res, err := apply(m, cfg)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return res
}

func teardown(t *testing.T, m *zones.Manager) {
	t.Cleanup(func() {
		if _, err := apply(m, &config.Config{}); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
}

func assertNoChanges(t *testing.T, m *zones.Manager, cfg *config.Config) {
	t.Helper()
	p, err := m.Plan(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cs := p.Changes(); len(cs) != 0 {
		t.Fatalf("plan after apply is not empty: %v", cs)
	}
	res := reconcile(t, m, cfg)
	if len(res.Changes) != 0 {
		t.Fatalf("second apply changed things: %v", res.Changes)
	}
}

const edgeConfig = `
[mgmt]
protect = ["eth0"]

[tenant.edge.interface.wan]
device = "eth1"
addresses = ["203.0.113.2/24"]
mtu = 1400

[tenant.edge.interface.lan]
device = "eth2"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]
`

func setupEdgeHosts(t *testing.T) {
	testnet.Host(t, "h-wan")
	testnet.Host(t, "h-lan")
	testnet.NIC(t, "eth1", "h-wan", "wan0", netip.MustParseAddr("203.0.113.2"), "203.0.113.1/24")
	testnet.NIC(t, "eth2", "h-lan", "lan0", netip.MustParseAddr("192.0.2.1"), "192.0.2.10/24", "2001:db8:1::10/64")
}

func TestMoveAddressForwardAndAdopt(t *testing.T) {
	testkit.Require(t)
	setupEdgeHosts(t)
	m := newManager(t)
	teardown(t, m)
	cfg := mustConfig(t, edgeConfig)
	// eth2 is up before fwd takes it, eth1 is down: hand-back restores both.
	testnet.MustCmd(t, "", "ip", "link", "set", "eth2", "up")

	res := reconcile(t, m, cfg)
	if len(res.Changes) == 0 {
		t.Fatal("first apply made no changes")
	}
	if !ns.Exists("edge") {
		t.Fatal("namespace edge not pinned under /run/netns")
	}
	addrs := testnet.Addrs(t, "edge")
	if got := addrs["wan"].GlobalAddrs(); !slices.Equal(got, []string{"203.0.113.2/24"}) {
		t.Errorf("wan addresses = %v", got)
	}
	if addrs["wan"].MTU != 1400 {
		t.Errorf("wan mtu = %d, want 1400", addrs["wan"].MTU)
	}
	if !strings.HasPrefix(addrs["wan"].IfAlias, "fwd:moved dev=eth1") {
		t.Errorf("wan alias = %q", addrs["wan"].IfAlias)
	}
	got := addrs["lan"].GlobalAddrs()
	slices.Sort(got)
	if !slices.Equal(got, []string{"192.0.2.1/24", "2001:db8:1::1/64"}) {
		t.Errorf("lan addresses = %v", got)
	}
	if _, ok := testnet.Addrs(t, "")["eth1"]; ok {
		t.Error("eth1 still in the default namespace")
	}
	if out := testnet.MustCmd(t, "edge", "sysctl", "-n", "net.ipv4.ip_forward"); strings.TrimSpace(out) != "1" {
		t.Errorf("ip_forward in edge = %q", out)
	}
	// Real traffic: LAN host to the gateway, and through it to the WAN host.
	if !testnet.WaitPing("h-lan", "192.0.2.1", 5*time.Second) {
		t.Error("LAN host cannot ping the gateway")
	}
	if !testnet.WaitPing("h-lan", "203.0.113.1", 5*time.Second) {
		t.Error("LAN host cannot reach the WAN host through the tenant")
	}
	if !testnet.WaitPing("h-lan", "2001:db8:1::1", 5*time.Second) {
		t.Error("LAN host cannot ping the gateway over IPv6")
	}
	// Restart adoption: a new manager makes zero changes.
	assertNoChanges(t, newManager(t), cfg)

	// Reload: drop lan, change wan's address, add a foreign link that fwd must not touch.
	testnet.MustCmd(t, "edge", "ip", "link", "add", "name", "opr0", "type", "veth", "peer", "name", "opr1")
	cfg2 := mustConfig(t, `
[tenant.edge.interface.wan]
device = "eth1"
addresses = ["203.0.113.3/24"]
mtu = 1400
`)
	reconcile(t, m, cfg2)
	def := testnet.Addrs(t, "")
	if e2, ok := def["eth2"]; !ok {
		t.Fatal("eth2 not handed back to the default namespace")
	} else if e2.MTU != 1500 || e2.IfAlias != "" {
		t.Errorf("eth2 handed back with mtu %d alias %q, want 1500 and none", e2.MTU, e2.IfAlias)
	} else if !slices.Contains(e2.Flags, "UP") {
		t.Errorf("eth2 was up before fwd took it but came back down: %v", e2.Flags)
	}
	addrs = testnet.Addrs(t, "edge")
	if got := addrs["wan"].GlobalAddrs(); !slices.Equal(got, []string{"203.0.113.3/24"}) {
		t.Errorf("wan addresses after reload = %v", got)
	}
	if _, ok := addrs["opr0"]; !ok {
		t.Error("an operator's link in the tenant was removed")
	}
	assertNoChanges(t, m, cfg2)

	// Removing the tenant hands everything back and unpins the namespace.
	reconcile(t, m, &config.Config{})
	if ns.Exists("edge") {
		t.Error("namespace edge still pinned after its tenant was removed")
	}
	def = testnet.Addrs(t, "")
	if e1, ok := def["eth1"]; !ok || e1.MTU != 1500 {
		t.Errorf("eth1 not handed back with its MTU: %+v", e1)
	} else if slices.Contains(e1.Flags, "UP") {
		t.Errorf("eth1 was down before fwd took it but came back up: %v", e1.Flags)
	}
}

func TestVethBetweenTenantsAndMacvlan(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "h-trunk")
	testnet.NIC(t, "eth3", "h-trunk", "trunk0", netip.Addr{}, "203.0.113.100/24")
	m := newManager(t)
	teardown(t, m)
	cfg := mustConfig(t, `
[tenant.blue.interface.uplink]
peer = { tenant = "edge", name = "to-blue" }
addresses = ["198.18.0.1/31"]

[tenant.edge.interface.to-blue]
peer = { tenant = "blue", name = "uplink" }
addresses = ["198.18.0.0/31"]

[tenant.red.interface.wan]
macvlan = { parent = "eth3" }
addresses = ["203.0.113.10/24"]

[tenant.green.interface.wan]
macvlan = { parent = "eth3", mode = "bridge" }
addresses = ["203.0.113.11/24"]
`)
	reconcile(t, m, cfg)
	if !testnet.WaitPing("blue", "198.18.0.0", 5*time.Second) {
		t.Error("blue cannot reach edge over the veth pair")
	}
	// eth3 must be up for macvlan children to pass traffic.
	testnet.MustCmd(t, "", "ip", "link", "set", "eth3", "up")
	if !testnet.WaitPing("red", "203.0.113.100", 5*time.Second) {
		t.Error("red cannot reach the trunk host through its macvlan")
	}
	if !testnet.WaitPing("green", "203.0.113.100", 5*time.Second) {
		t.Error("green cannot reach the trunk host through its macvlan")
	}
	if _, ok := testnet.Addrs(t, "")["eth3"]; !ok {
		t.Error("macvlan parent left the default namespace")
	}
	assertNoChanges(t, newManager(t), cfg)

	// Removing tenant blue deletes the pair (both ends) and the namespace.
	cfg2 := mustConfig(t, `
[tenant.red.interface.wan]
macvlan = { parent = "eth3" }
addresses = ["203.0.113.10/24"]
`)
	reconcile(t, m, cfg2)
	for _, n := range []string{"blue", "edge", "green"} {
		if ns.Exists(n) {
			t.Errorf("namespace %s still exists", n)
		}
	}
	assertNoChanges(t, m, cfg2)
}

func TestVLANSubinterface(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "h-vlan")
	testnet.NIC(t, "eth4", "h-vlan", "trunk0", netip.Addr{})
	probe := &netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: "probe.9", ParentIndex: mustIndex(t, "eth4")}, VlanId: 9}
	if err := netlink.LinkAdd(probe); err != nil {
		t.Skipf("kernel cannot create 802.1Q VLAN links here (%v): VLAN path untested on this machine", err)
	}
	if err := netlink.LinkDel(probe); err != nil {
		t.Fatal(err)
	}
	m := newManager(t)
	teardown(t, m)
	cfg := mustConfig(t, `
[tenant.vl.interface.v100]
vlan = { parent = "eth4", id = 100 }
addresses = ["198.51.100.1/24"]
`)
	reconcile(t, m, cfg)
	a := testnet.Addrs(t, "vl")
	if got := a["v100"].GlobalAddrs(); !slices.Equal(got, []string{"198.51.100.1/24"}) {
		t.Errorf("v100 addresses = %v", got)
	}
	assertNoChanges(t, m, cfg)
}

func mustIndex(t *testing.T, name string) int {
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().Index
}

func TestAbsentNICAndMAC(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "h-late")
	m := newManager(t)
	teardown(t, m)
	cfg := mustConfig(t, `
[tenant.late.interface.wan]
mac = "02:00:00:00:00:51"
addresses = ["198.51.100.2/24"]
`)
	res := reconcile(t, m, cfg)
	if len(res.Absent) != 1 || len(res.Warnings) != 1 {
		t.Fatalf("absent NIC not reported: %+v", res)
	}
	if err := testnet.AddNIC("ethlate", "02:00:00:00:00:51", "h-late", "p0", netip.Addr{}, "198.51.100.1/24"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testnet.DelLinkEverywhere("ethlate") })
	res = reconcile(t, m, cfg)
	if len(res.Absent) != 0 {
		t.Fatalf("NIC still absent: %+v", res)
	}
	if !testnet.WaitPing("h-late", "198.51.100.2", 5*time.Second) {
		t.Error("host cannot reach the tenant through the NIC chosen by MAC")
	}
	reconcile(t, m, &config.Config{})
	if _, ok := testnet.Addrs(t, "")["ethlate"]; !ok {
		t.Error("NIC chosen by MAC not handed back under its original name")
	}
}

func TestForeignNamespaceIsNotAdopted(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "squat")
	m := newManager(t)
	_, err := apply(m, mustConfig(t, "[tenant.squat]\n"))
	var ce *zones.ConflictError
	if err == nil || !strings.Contains(err.Error(), "not created by fwd") {
		t.Fatalf("want conflict error, got %v (%T %v)", err, ce, ce)
	}
	// And removing all tenants leaves a foreign namespace alone.
	reconcile(t, m, &config.Config{})
	if !ns.Exists("squat") {
		t.Error("foreign namespace deleted")
	}
}
