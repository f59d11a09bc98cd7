package bgp

import (
	"strings"
	"testing"

	"github.com/fwdproject/fwd/internal/testkit"
	api "github.com/osrg/gobgp/v3/api"
)

func TestPoliciesOf(t *testing.T) {
	cfg := testkit.Config(t, `
[tenant.e.interface.w]
device = "eth1"
addresses = ["203.0.113.2/24", "2001:db8:1::2/64"]
[tenant.e.bgp]
asn = 64512
[[tenant.e.bgp.neighbor]]
address = "203.0.113.1"
asn = 64513
import = { allow = ["0.0.0.0/0 le 24", "2001:db8::/32 le 48"], deny = ["198.18.0.0/15 le 32"] }
[[tenant.e.bgp.neighbor]]
address = "203.0.113.3"
asn = 64514
next_hop_self = true
`)
	req := policiesOf(cfg.Tenant("e").BGP)
	names := func(p *api.Policy) string {
		var out []string
		for _, s := range p.Statements {
			out = append(out, s.Name+"="+s.Actions.RouteAction.String())
		}
		return strings.Join(out, " ")
	}
	if got, want := names(req.Policies[0]), "imp-n0-deny-4=REJECT imp-n0-allow-4=ACCEPT imp-n0-allow-6=ACCEPT imp-n0-rest=REJECT"; got != want {
		t.Errorf("import:\n%s\nwant\n%s", got, want)
	}
	if got, want := names(req.Policies[1]), "exp-n0-local=ACCEPT exp-n0-rest=REJECT exp-n1-local=ACCEPT exp-n1-rest=REJECT"; got != want {
		t.Errorf("export:\n%s\nwant\n%s", got, want)
	}
	if nh := req.Policies[1].Statements[2].Actions.Nexthop; nh == nil || !nh.Self {
		t.Error("next_hop_self not applied to exports")
	}
	if req.Policies[1].Statements[0].Conditions.RouteType != api.Conditions_ROUTE_TYPE_LOCAL {
		t.Error("default export is not local-only")
	}
	p := peerOf(cfg.Tenant("e").BGP.Neighbors[0])
	if p.Conf.PeerAsn != 64513 || p.Timers.Config.HoldTime != 90 || len(p.AfiSafis) != 1 {
		t.Errorf("peer: %v", p)
	}
	if g := globalOf(cfg.Tenant("e").BGP); g.RouterId != "203.0.113.2" || g.ListenPort != 179 {
		t.Errorf("global: %v", g)
	}
}
