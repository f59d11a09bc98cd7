package zones

import "testing"

func TestRelevant(t *testing.T) {
	c := cfgOf(t, `
[tenant.edge.interface.wan]
device = "eth1"
[tenant.edge.interface.lan]
mac = "02:00:00:00:00:09"
[tenant.red.interface.v]
macvlan = { parent = "trunk" }
`)
	for _, tc := range []struct {
		ev     LinkEvent
		tenant string // "" when not relevant
	}{
		{LinkEvent{Name: "eth1"}, "edge"},
		{LinkEvent{Name: "eth1", Gone: true}, ""}, // moved in: gone from the default namespace
		{LinkEvent{Name: "ethX", MAC: mac("02:00:00:00:00:09")}, "edge"},
		{LinkEvent{Name: "trunk"}, "red"},
		{LinkEvent{Namespace: "edge", Name: "wan", Gone: true}, "edge"},
		{LinkEvent{Namespace: "edge", Name: "wan"}, ""},
		{LinkEvent{Namespace: "red", Name: "wan", Gone: true}, ""},
		{LinkEvent{Name: "eth7"}, ""},
	} {
		in, ok := Relevant(c, tc.ev)
		if ok != (tc.tenant != "") || in.Tenant != tc.tenant {
			t.Errorf("Relevant(%+v) = %+v, %v; want tenant %q", tc.ev, in, ok, tc.tenant)
		}
	}
}
