package config

import (
	"slices"
	"testing"
)

// The learned-address keys of a WAN: dhcp and dhcp6 each give a client
// (IPv4 first), the hostname goes to both, and both dhcp6 and slaac make
// the interface accept router advertisements.
func TestServicesLearned(t *testing.T) {
	c, err := Parse("edge.toml", []byte(`
[tenant.edge.table.wan]
id = 100
[tenant.edge.interface.wan]
device = "eth1"
dhcp = true
dhcp6 = true
dhcp_hostname = "gw1"
dhcp_table = "wan"
dhcp_metric = 10
[tenant.edge.interface.up2]
device = "eth2"
slaac = true
[tenant.edge.interface.lan]
device = "eth3"
addresses = ["192.0.2.1/24"]
dhcp6 = true
`))
	if err != nil {
		t.Fatal(err)
	}
	s := &c.Tenants[0].Services
	want := []DHCPClient{
		{Interface: "lan", V6: true},
		{Interface: "wan", Hostname: "gw1", Table: "wan", TableID: 100, Metric: 10},
		{Interface: "wan", V6: true, Hostname: "gw1"},
	}
	if !slices.Equal(s.DHCPClients, want) {
		t.Fatalf("clients = %+v, want %+v", s.DHCPClients, want)
	}
	if c := s.DHCPClient("wan"); c == nil || c.V6 {
		t.Errorf("DHCPClient(wan) = %+v, want the IPv4 client", c)
	}
	for iface, want := range map[string]bool{"wan": true, "up2": true, "lan": true, "nope": false} {
		if got := s.AcceptsRA(iface); got != want {
			t.Errorf("AcceptsRA(%s) = %v, want %v", iface, got, want)
		}
	}
}
