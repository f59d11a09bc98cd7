package zones

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/testkit"
)

func cfgOf(t *testing.T, text string) *config.Config {
	t.Helper()
	return testkit.Config(t, text)
}

func mac(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }

func steps(p *Plan) string {
	var b []string
	for _, s := range p.Steps {
		b = append(b, s.Change().String())
	}
	return strings.Join(b, "\n")
}

func emptyState() *State {
	return &State{DefaultRouteLinks: map[int]bool{}, Tenants: map[string]*Namespace{}, Foreign: map[string]bool{}}
}

func TestPlanNewTenant(t *testing.T) {
	st := emptyState()
	st.Default = []*Link{{Index: 2, Name: "eth0"}, {Index: 3, Name: "eth1", MTU: 1500}}
	p, err := Compute(cfgOf(t, "[tenant.edge.interface.wan]\ndevice = \"eth1\"\naddresses = [\"192.0.2.1/24\"]\nmtu = 1400\n"), st)
	if err != nil {
		t.Fatal(err)
	}
	want := `[edge] create-namespace edge
[edge] set-sysctl net.ipv4.ip_forward=1
[edge] set-sysctl net.ipv6.conf.all.forwarding=1
[edge] move-link eth1 -> wan (mtu 1400)
[edge] add-address 192.0.2.1/24 dev wan
[edge] set-up wan`
	if got := steps(p); got != want {
		t.Fatalf("steps:\n%s\nwant:\n%s", got, want)
	}
	if m := p.Steps[3].Mark; m.Device != "eth1" || m.MTU != 1500 || m.Origin != OriginMoved {
		t.Errorf("move mark = %+v: must remember the original name and MTU", m)
	}
}

func adopted() *State {
	st := emptyState()
	st.Tenants["edge"] = &Namespace{Name: "edge", LoUp: true, Forwarding4: true, Forwarding6: true, Links: []*Link{
		{Index: 3, Name: "wan", MTU: 1400, Up: true, Alias: "fwd:moved dev=eth1 mtu=1500", Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}},
		{Index: 9, Name: "opr0", Alias: "someone else's"},
	}}
	return st
}

func TestPlanAdoptsWithoutChanges(t *testing.T) {
	p, err := Compute(cfgOf(t, "[tenant.edge.interface.wan]\ndevice = \"eth1\"\naddresses = [\"192.0.2.1/24\"]\nmtu = 1400\n"), adopted())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 0 {
		t.Fatalf("adoption planned changes:\n%s", steps(p))
	}
}

func TestPlanMoveBetweenTenants(t *testing.T) {
	p, err := Compute(cfgOf(t, "[tenant.edge]\n[tenant.blue.interface.wan]\ndevice = \"eth1\"\n"), adopted())
	if err != nil {
		t.Fatal(err)
	}
	got := steps(p)
	iRet := strings.Index(got, "[edge] return-link wan -> eth1 (mtu 1500)")
	iMove := strings.Index(got, "[blue] move-link eth1 -> wan")
	if iRet < 0 || iMove < 0 || iRet > iMove {
		t.Fatalf("want hand-back before move:\n%s", got)
	}
	if strings.Contains(got, "opr0") {
		t.Fatalf("planned a change to a link that is not fwd's:\n%s", got)
	}
}

func TestPlanRemoveTenant(t *testing.T) {
	p, err := Compute(&config.Config{}, adopted())
	if err != nil {
		t.Fatal(err)
	}
	want := "[edge] return-link wan -> eth1 (mtu 1500)\n[edge] delete-namespace edge"
	if got := steps(p); got != want {
		t.Fatalf("steps:\n%s\nwant:\n%s", got, want)
	}
}

func TestPlanAddressChanges(t *testing.T) {
	p, err := Compute(cfgOf(t, "[tenant.edge.interface.wan]\ndevice = \"eth1\"\naddresses = [\"192.0.2.1/25\"]\n"), adopted())
	if err != nil {
		t.Fatal(err)
	}
	want := "[edge] del-address 192.0.2.1/24 dev wan\n[edge] add-address 192.0.2.1/25 dev wan"
	if got := steps(p); got != want {
		t.Fatalf("steps:\n%s\nwant:\n%s", got, want)
	}
}

func TestPlanRefusesManagementPath(t *testing.T) {
	st := emptyState()
	st.Default = []*Link{{Index: 2, Name: "eth0", MAC: mac("02:00:00:00:00:01")}, {Index: 3, Name: "eth1"}}
	st.DefaultRouteLinks[3] = true
	p, err := Compute(cfgOf(t, `
[mgmt]
protect = ["eth0"]
[tenant.a.interface.x]
mac = "02:00:00:00:00:01"
[tenant.a.interface.y]
device = "eth1"
`), st)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(steps(p), "move-link") {
		t.Fatalf("moved a protected NIC:\n%s", steps(p))
	}
	w := strings.Join(p.Warnings, "\n")
	if !strings.Contains(w, "protected by mgmt.protect") || !strings.Contains(w, "carries the default namespace's default route") {
		t.Fatalf("warnings:\n%s", w)
	}
}

func TestPlanAbsentNIC(t *testing.T) {
	p, err := Compute(cfgOf(t, "[tenant.a.interface.x]\ndevice = \"eth7\"\n"), emptyState())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Absent) != 1 || p.Absent[0] != "device eth7" {
		t.Fatalf("absent = %v", p.Absent)
	}
	if strings.Contains(steps(p), "add-address") {
		t.Fatalf("configured an absent NIC:\n%s", steps(p))
	}
}

func TestPlanVethOnce(t *testing.T) {
	c := cfgOf(t, `
[tenant.a.interface.x]
peer = { tenant = "b", name = "y" }
[tenant.b.interface.y]
peer = { tenant = "a", name = "x" }
`)
	p, err := Compute(c, emptyState())
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(steps(p), "create-veth"); n != 1 {
		t.Fatalf("create-veth %d times:\n%s", n, steps(p))
	}
	// Removing both tenants deletes the pair once.
	st := emptyState()
	st.Tenants["a"] = &Namespace{Name: "a", Links: []*Link{{Name: "x", Kind: "veth", Alias: "fwd:created kind=veth peer=b/y"}}}
	st.Tenants["b"] = &Namespace{Name: "b", Links: []*Link{{Name: "y", Kind: "veth", Alias: "fwd:created kind=veth peer=a/x"}}}
	p, err = Compute(&config.Config{}, st)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(steps(p), "delete-link"); n != 1 {
		t.Fatalf("delete-link %d times:\n%s", n, steps(p))
	}
}

func TestPlanConflicts(t *testing.T) {
	st := emptyState()
	st.Foreign["edge"] = true
	if _, err := Compute(cfgOf(t, "[tenant.edge]\n"), st); err == nil || !strings.Contains(err.Error(), "not created by fwd") {
		t.Fatalf("foreign namespace: %v", err)
	}
	st = adopted()
	st.Tenants["edge"].Links = append(st.Tenants["edge"].Links, &Link{Name: "lan", Kind: "device"})
	_, err := Compute(cfgOf(t, "[tenant.edge.interface.lan]\ndevice = \"eth2\"\n"), st)
	if err == nil || !strings.Contains(err.Error(), `interface "lan" exists in the namespace but is not fwd's`) {
		t.Fatalf("unmarked link: %v", err)
	}
}

func TestMarkRoundTrip(t *testing.T) {
	for _, m := range []Mark{
		{Origin: OriginMoved, Device: "eth1", MTU: 9000},
		{Origin: OriginMoved, Device: "eth2", MTU: 1500, Up: true},
		{Origin: OriginCreated, Kind: "vlan", Parent: "eth3", VLANID: 100},
		{Origin: OriginCreated, Kind: "macvlan", Parent: "eth3", Mode: "bridge"},
	} {
		got, ok := ParseMark(m.String())
		if !ok || got != m {
			t.Errorf("round trip %+v -> %q -> %+v", m, m.String(), got)
		}
	}
	if _, ok := ParseMark("uplink to ISP"); ok {
		t.Error("an operator's alias parsed as fwd's mark")
	}
}

func TestPlanMACPrefersThePhysicalNIC(t *testing.T) {
	st := emptyState()
	m := mac("02:00:00:00:00:07")
	// A VLAN child listed first shares the NIC's MAC.
	st.Default = []*Link{{Index: 9, Name: "eth3.100", Kind: "vlan", MAC: m}, {Index: 4, Name: "eth3", Kind: "device", MAC: m}, {Index: 5, Name: "bond0", Kind: "bond", MAC: m}}
	for i := 0; i < 20; i++ { // map order must not matter
		p, err := Compute(cfgOf(t, "[tenant.a.interface.x]\nmac = \"02:00:00:00:00:07\"\n"), st)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(steps(p), "move-link eth3 -> x") {
			t.Fatalf("picked the wrong link for the MAC:\n%s", steps(p))
		}
	}
}

// A NIC handed back by one tenant and moved into another in the same plan
// keeps the state it had before fwd first took it (it used to lose up=1).
func TestPlanMoveBetweenTenantsKeepsOriginalState(t *testing.T) {
	st := adopted()
	st.Tenants["edge"].Links[0].Alias = "fwd:moved dev=eth1 mtu=1500 up=1"
	p, err := Compute(cfgOf(t, "[tenant.edge]\n[tenant.blue.interface.wan]\ndevice = \"eth1\"\n"), st)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Steps {
		if s.Op == OpMoveLink {
			if want := (Mark{Origin: OriginMoved, Device: "eth1", MTU: 1500, Up: true}); s.Mark != want {
				t.Fatalf("move mark = %+v, want %+v", s.Mark, want)
			}
			return
		}
	}
	t.Fatalf("no move:\n%s", steps(p))
}

// A NIC fwd was moving (in or back) when it stopped carries its mark in
// the default namespace: its recorded state is what it gets back, or what
// the move in records, never the state it was left in.
func TestPlanNICInTransit(t *testing.T) {
	st := emptyState()
	st.Default = []*Link{{Index: 3, Name: "eth1", MTU: 1400, Up: false, Alias: "fwd:moved dev=eth1 mtu=1500 up=1"}}
	p, err := Compute(&config.Config{}, st)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := steps(p), "[default] restore-link eth1 (mtu 1500, up)"; got != want {
		t.Fatalf("undeclared NIC in transit:\n%s\nwant:\n%s", got, want)
	}
	p, err = Compute(cfgOf(t, "[tenant.edge.interface.wan]\ndevice = \"eth1\"\n"), st)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Steps {
		if s.Op == OpRestoreLink {
			t.Fatalf("restored a NIC that is moved in:\n%s", steps(p))
		}
		if s.Op == OpMoveLink && s.Mark != (Mark{Origin: OriginMoved, Device: "eth1", MTU: 1500, Up: true}) {
			t.Fatalf("move mark = %+v: not the recorded state", s.Mark)
		}
	}
}

// A link of a declared name and kind without fwd's mark (an operator's
// veth) is never adopted: the plan refuses and names it.
func TestPlanNeverAdoptsAnUnmarkedLink(t *testing.T) {
	st := emptyState()
	st.Tenants["a"] = &Namespace{Name: "a", LoUp: true, Links: []*Link{{Name: "x", Kind: "veth"}}}
	st.Tenants["b"] = &Namespace{Name: "b", LoUp: true}
	_, err := Compute(cfgOf(t, `
[tenant.a.interface.x]
peer = { tenant = "b", name = "y" }
[tenant.b.interface.y]
peer = { tenant = "a", name = "x" }
`), st)
	var ce *ConflictError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), `tenant "a": interface "x" exists in the namespace but is not fwd's (a veth without fwd's mark)`) {
		t.Fatalf("unmarked veth of the declared name: %v", err)
	}
}

// What a crash leaves while fwd creates links, a link under its
// temporary name or half a marked pair, is deleted and created again.
func TestPlanHalfCreatedLinks(t *testing.T) {
	c := cfgOf(t, `
[tenant.a.interface.x]
peer = { tenant = "b", name = "y" }
[tenant.b.interface.y]
peer = { tenant = "a", name = "x" }
`)
	st := emptyState()
	st.Tenants["a"] = &Namespace{Name: "a", LoUp: true, Links: []*Link{{Name: "x", Kind: "veth", Alias: "fwd:created kind=veth peer=b/y"}}}
	st.Tenants["b"] = &Namespace{Name: "b", LoUp: true, Links: []*Link{{Name: tempName("b", "y"), Kind: "veth"}}}
	p, err := Compute(c, st)
	if err != nil {
		t.Fatal(err)
	}
	got := steps(p)
	for _, want := range []string{"[a] delete-link x", "[b] delete-link " + tempName("b", "y"), "[a] create-veth x <-> b/y"} {
		if !strings.Contains(got, want) {
			t.Fatalf("missing %q:\n%s", want, got)
		}
	}
	if len(tempName("some-long-tenant", "some-long-name")) > 15 {
		t.Fatal("temporary name longer than IFNAMSIZ-1")
	}
}
