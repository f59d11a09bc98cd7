package daemon

import (
	"net/netip"
	"testing"

	"github.com/fwdproject/fwd/explain"
	"github.com/fwdproject/fwd/flows"
	"github.com/fwdproject/fwd/internal/testkit"
)

func TestDeniedOf(t *testing.T) {
	cfg := testkit.Config(t, `
[tenant.kd.interface.lan]
device = "eth1"
addresses = ["192.0.2.1/24"]
[tenant.kd.interface.wan]
device = "eth2"
addresses = ["203.0.113.1/24"]
[tenant.kd.zone.lan]
interfaces = ["lan"]
[tenant.kd.zone.wan]
interfaces = ["wan"]
[[tenant.kd.rule]]
name = "app"
from = "lan"
to = "wan"
proto = "tcp"
dport = 7001
action = "accept"
[[tenant.kd.rule]]
name = "no-dns"
from = "lan"
to = "wan"
proto = "udp"
dport = 53
action = "reject"
`)
	x, err := explain.NewExplainer(cfg, "kd")
	if err != nil {
		t.Fatal(err)
	}
	tcp := func(dst string, dport uint16, state string) flows.Flow {
		return flows.Flow{Proto: "tcp", State: state, Orig: flows.Tuple{Src: netip.MustParseAddr("192.0.2.10"), Dst: netip.MustParseAddr(dst), SPort: 40000, DPort: dport}}
	}
	list := []flows.Flow{
		tcp("203.0.113.2", 7001, "established"), // admitted
		tcp("203.0.113.2", 7002, "established"), // denied by the default
		tcp("203.0.113.2", 7003, "syn_sent"),    // not established: not checked
		{Proto: "udp", SeenReply: true, Orig: flows.Tuple{Src: netip.MustParseAddr("192.0.2.10"), Dst: netip.MustParseAddr("203.0.113.2"), SPort: 5000, DPort: 53}},
		{Proto: "udp", SeenReply: false, Orig: flows.Tuple{Src: netip.MustParseAddr("192.0.2.10"), Dst: netip.MustParseAddr("203.0.113.2"), SPort: 5001, DPort: 53}},
		// No route back to 198.18.0.9: its input interface is unknown.
		{Proto: "tcp", State: "established", Orig: flows.Tuple{Src: netip.MustParseAddr("198.18.0.9"), Dst: netip.MustParseAddr("203.0.113.2"), SPort: 1, DPort: 7001}},
	}
	den, checked, unknown := deniedOf(x, list)
	if checked != 4 || unknown != 1 || len(den) != 2 {
		t.Fatalf("checked %d unknown %d denied %+v", checked, unknown, den)
	}
	if d := den[0]; d.Orig.DPort != 7002 || d.in != "lan" || d.trace.Verdict != explain.Drop || d.trace.Rule == nil {
		t.Fatalf("denied[0] %+v %+v", d, d.trace)
	}
	if d := den[1]; d.Proto != "udp" || d.trace.Verdict != explain.Reject || d.trace.Rule.ID != "no-dns" {
		t.Fatalf("denied[1] %+v %+v", d, d.trace.Rule)
	}
}
