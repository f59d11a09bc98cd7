package policy

import (
	"strings"
	"testing"

	"github.com/fwdproject/fwd/internal/testkit"
)

func TestQuotaCompile(t *testing.T) {
	const base = `
[tenant.q.interface.lan]
device = "eth1"
addresses = ["192.0.2.1/24"]
[tenant.q.zone.lan]
interfaces = ["lan"]
`
	without := Compile(testkit.Config(t, base).Tenants[0])
	for _, ch := range without.Chains {
		if ch.Name == QuotaChain {
			t.Fatal("quota chain without conntrack_limit")
		}
	}
	rs := Compile(testkit.Config(t, base+"[tenant.q]\nconntrack_limit = 500\n").Tenants[0])
	want := "\tchain conn_quota {\n\t\ttype filter hook prerouting priority -150; policy accept;\n" +
		"\t\tiifname \"lo\" accept comment \"_quota-lo\"\n" +
		"\t\tct state new ct count over 500 counter drop comment \"_quota: conntrack_limit 500\"\n\t}\n"
	if s := rs.String(); !strings.Contains(s, want) {
		t.Fatalf("want\n%s\nin\n%s", want, s)
	}
	if rs.Hash == without.Hash {
		t.Fatal("the quota does not change the ruleset hash")
	}
	if n, ok := QuotaDrops([]RuleCounter{{ID: "x", Packets: 1}, {ID: idQuota, Packets: 7}}); !ok || n != 7 {
		t.Fatalf("QuotaDrops: %d %v", n, ok)
	}
	if _, ok := QuotaDrops([]RuleCounter{{ID: "x"}}); ok {
		t.Fatal("QuotaDrops without a quota rule")
	}
}
