package policy

import (
	"strings"
	"testing"

	"github.com/fwdproject/fwd/internal/testkit"
)

// family = "ipv4" on a masquerade without addresses translates IPv4
// only (a dual-stack LAN whose IPv6 prefix is routed); without it the
// one rule translates both families.
func TestMasqueradeFamily(t *testing.T) {
	conf := func(family string) string {
		return `
[tenant.edge.interface.wan]
device = "eth1"
addresses = ["203.0.113.2/24", "2001:db8:100::2/64"]
[tenant.edge.zone.wan]
interfaces = ["wan"]
[[tenant.edge.nat]]
type = "masquerade"
out = "wan"
` + family
	}
	masq := func(text string) []string {
		var out []string
		for _, l := range strings.Split(Compile(testkit.Config(t, text).Tenants[0]).String(), "\n") {
			if strings.Contains(l, "masquerade") {
				out = append(out, strings.TrimSpace(l))
			}
		}
		return out
	}
	for family, want := range map[string]string{
		"":                `oifname "wan" counter masquerade comment "nat0"`,
		`family = "ipv4"`: `oifname "wan" meta nfproto ipv4 counter masquerade comment "nat0"`,
		`family = "ipv6"`: `oifname "wan" meta nfproto ipv6 counter masquerade comment "nat0"`,
	} {
		if got := masq(conf(family)); len(got) != 1 || got[0] != want {
			t.Errorf("%q: masquerade rules %q, want %q", family, got, want)
		}
	}
	// saddr of IPv4 already says the family: no nfproto match added.
	if got := masq(conf(`family = "ipv4"` + "\nsaddr = [\"192.0.2.0/24\"]")); len(got) != 1 || strings.Contains(got[0], "nfproto") {
		t.Errorf("with saddr: %q", got)
	}
}
