package bgp

import (
	"testing"

	"github.com/fwdproject/fwd/internal/testkit"
)

func TestPeerOf(t *testing.T) {
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
	p := peerOf(cfg.Tenant("e").BGP.Neighbors[0])
	if p.Conf.PeerAsn != 64513 || p.Timers.Config.HoldTime != 90 || len(p.AfiSafis) != 1 {
		t.Errorf("peer: %v", p)
	}
	if g := globalOf(cfg.Tenant("e").BGP); g.RouterId != "203.0.113.2" || g.ListenPort != 179 {
		t.Errorf("global: %v", g)
	}
}
