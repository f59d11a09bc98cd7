package zones

import (
	"net/netip"
	"testing"

	"github.com/fwdproject/fwd/config"
)

// Learned addresses (finite lifetime: DHCP, SLAAC) and HA VIPs are on the
// interface but not in its addresses: the plan must neither delete nor
// add them, and must still delete fwd's own unlisted address.
func TestPlanLeavesLearnedAndVIPs(t *testing.T) {
	st := adopted()
	wan := st.Tenants["edge"].Links[0]
	lease := netip.MustParsePrefix("198.51.100.7/24")
	slaac := netip.MustParsePrefix("2001:db8:ffff::1234/64")
	vip := netip.MustParsePrefix("192.0.2.5/24")
	wan.Addrs = append(wan.Addrs, lease, slaac, vip)
	wan.Learned = []netip.Prefix{lease, slaac}
	cfg := cfgOf(t, `
[tenant.edge.interface.wan]
device = "eth1"
addresses = ["192.0.2.1/25"]
[tenant.edge.interface.sync]
device = "eth3"
addresses = ["198.18.9.1/24"]
[tenant.edge.ha]
peer = "198.18.9.2"
sync_interface = "sync"
priority = 150
[[tenant.edge.ha.vip]]
interface = "wan"
address = "192.0.2.5/24"
`)
	wanSteps := linkSteps(t, cfg, st, "wan")
	want := []string{"[edge] del-address 192.0.2.1/24 dev wan", "[edge] add-address 192.0.2.1/25 dev wan"}
	if len(wanSteps) != len(want) || wanSteps[0] != want[0] || wanSteps[1] != want[1] {
		t.Fatalf("wan steps %q, want %q", wanSteps, want)
	}
}

// An interface switched from DHCP to a static address the lease had:
// the address is added again (made permanent), not left learned.
func TestPlanMakesLearnedConfiguredAddressPermanent(t *testing.T) {
	st := adopted()
	wan := st.Tenants["edge"].Links[0]
	lease := netip.MustParsePrefix("192.0.2.1/24")
	wan.Learned = []netip.Prefix{lease}
	cfg := cfgOf(t, `
[tenant.edge.interface.wan]
device = "eth1"
addresses = ["192.0.2.1/24"]
`)
	wanSteps := linkSteps(t, cfg, st, "wan")
	if len(wanSteps) != 1 || wanSteps[0] != "[edge] add-address 192.0.2.1/24 dev wan" {
		t.Fatalf("wan steps %q, want the address made permanent", wanSteps)
	}
}

// linkSteps computes the plan and returns its steps on one link, as
// change lines.
func linkSteps(t *testing.T, cfg *config.Config, st *State, link string) []string {
	t.Helper()
	p, err := Compute(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range p.Steps {
		if s.Link == link {
			out = append(out, s.Change().String())
		}
	}
	return out
}
