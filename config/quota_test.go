package config

import "testing"

const quotaBase = `
[tenant.q.interface.lan]
device = "eth1"
addresses = ["192.0.2.1/24"]
`

func TestConntrackLimit(t *testing.T) {
	cfg, err := Parse("fwd.toml", []byte(quotaBase+"[tenant.q]\nconntrack_limit = 100\n[tenant.q.zone.lan]\ninterfaces = [\"lan\"]\n[mgmt]\nrehearse = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if n := cfg.Tenant("q").ConntrackLimit; n != 100 {
		t.Fatalf("conntrack_limit = %d", n)
	}
	if !cfg.Mgmt.Rehearse {
		t.Fatal("mgmt.rehearse not read")
	}
	for _, tc := range []struct{ in, want string }{
		{"conntrack_limit = 0\n[tenant.q.zone.lan]\ninterfaces = [\"lan\"]\n", "fwd.toml:6: tenant.q.conntrack_limit: 0 is out of range 1..16777216"},
		{"conntrack_limit = 16777217\n[tenant.q.zone.lan]\ninterfaces = [\"lan\"]\n", "fwd.toml:6: tenant.q.conntrack_limit: 16777217 is out of range 1..16777216"},
		{"conntrack_limit = 10\n", "fwd.toml:6: tenant.q.conntrack_limit: a connection quota needs a firewall policy (zones or rules): without one fwd installs no nftables table in the tenant"},
	} {
		_, err := Parse("fwd.toml", []byte(quotaBase+"[tenant.q]\n"+tc.in))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q:\n got %v\nwant %s", tc.in, err, tc.want)
		}
	}
}
