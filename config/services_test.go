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
		{Interface: "lan", V6: true, Table: "main", TableID: 254},
		{Interface: "wan", Hostname: "gw1", Table: "wan", TableID: 100, Metric: 10},
		{Interface: "wan", V6: true, Hostname: "gw1", Table: "main", TableID: 254},
	}
	if !slices.EqualFunc(s.DHCPClients, want, DHCPClient.Equal) {
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

// Prefix delegation: the WAN asks for a /56, two LANs are numbered from
// it (their subnets recorded on the WAN's DHCPv6 client), and an RA on
// such a LAN needs no prefix list.
func TestServicesDelegation(t *testing.T) {
	c, err := Parse("edge.toml", []byte(`
[tenant.edge.interface.wan]
device = "eth1"
dhcp6 = true
dhcp6_pd = 56
[tenant.edge.interface.lan]
device = "eth2"
prefix_from = "wan"
prefix_subnet = 1
[tenant.edge.interface.guest]
device = "eth3"
prefix_from = "wan"
[tenant.edge.ra.lan]
`))
	if err != nil {
		t.Fatal(err)
	}
	s := &c.Tenants[0].Services
	w := s.DHCPClient("wan")
	want := []Delegation{{Interface: "guest", Subnet: 0}, {Interface: "lan", Subnet: 1}}
	if w == nil || !w.V6 || w.PD != 56 || !slices.Equal(w.Delegate, want) {
		t.Fatalf("wan client %+v, want PD 56 delegating %v", w, want)
	}
	if len(s.RA) != 1 || !s.RA[0].Delegated || len(s.RA[0].Prefixes) != 0 {
		t.Errorf("ra %+v, want a delegated RA", s.RA)
	}
	if s.DelegatedFrom("lan") != w || s.DelegatedFrom("wan") != nil {
		t.Error("DelegatedFrom")
	}
}
