//go:build kernel

package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fwdproject/fwd/internal/testkit"
)

// The kernel takes a one-family masquerade, and lists it with its
// family match; DescribeNAT says so too.
func TestMasqueradeFamilyKernel(t *testing.T) {
	testkit.Require(t)
	tn := testkit.Config(t, `
[tenant.edge.interface.wan]
device = "eth1"
addresses = ["203.0.113.2/24", "2001:db8:100::2/64"]
[tenant.edge.zone.wan]
interfaces = ["wan"]
[[tenant.edge.nat]]
type = "masquerade"
out = "wan"
family = "ipv4"
`).Tenants[0]
	name := fmt.Sprintf("nf%d", nsSeq.Add(1))
	mustApply(t, tn, newNS(t, name))
	out := nft(t, name, "list", "chain", "inet", TableName, "nat_postrouting")
	if !strings.Contains(out, `oifname "wan" meta nfproto ipv4 counter packets 0 bytes 0 masquerade comment "nat0"`) {
		t.Fatalf("nat_postrouting:\n%s", out)
	}
	if d := DescribeNAT(tn); len(d) != 1 || !strings.Contains(d[0], "out wan ipv4 only") {
		t.Errorf("DescribeNAT %q", d)
	}
}
