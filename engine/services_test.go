package engine

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/services/dnsmasq"
)

// forwarders_from hands the DNS servers the WAN's leases learned to
// dnsmasq after the configured forwarders, once each (a configured one
// is not repeated), v4 lease first;
// an interface not named gives none.
func TestDNSMasqForwardersFromLeases(t *testing.T) {
	cfg, err := config.Parse("edge.toml", []byte(`
[tenant.edge.interface.wan]
device = "eth1"
dhcp = true
dhcp6 = true
[tenant.edge.interface.wan2]
device = "eth3"
dhcp = true
[tenant.edge.interface.lan]
device = "eth2"
addresses = ["192.0.2.1/24"]
[tenant.edge.dns]
interfaces = ["lan"]
forwarders = ["203.0.113.53"]
forwarders_from = ["wan"]
`))
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr
	c := DNSMasqConfig(cfg.Tenant("edge"), map[string][]netip.Addr{
		"wan":  {a("198.51.100.53"), a("203.0.113.53"), a("2001:db8:100::53")},
		"wan2": {a("198.18.0.53")},
	})
	want := []dnsmasq.Forwarder{
		{Addr: netip.MustParseAddrPort("203.0.113.53:0")},
		{Addr: netip.MustParseAddrPort("198.51.100.53:0")},
		{Addr: netip.AddrPortFrom(a("2001:db8:100::53"), 0)},
	}
	if !slices.Equal(c.DNS.Forwarders, want) {
		t.Errorf("forwarders %v, want %v", c.DNS.Forwarders, want)
	}
}

// SetLearned keeps each (interface, family) apart: the v6 lease's DNS
// comes after the v4 one's, and clearing one family leaves the other.
func TestSetLearned(t *testing.T) {
	e := &Engine{}
	a := netip.MustParseAddr
	e.SetLearned("t-learned", "wan", true, Learned{DNS: []netip.Addr{a("2001:db8::53")}})
	e.SetLearned("t-learned", "wan", false, Learned{DNS: []netip.Addr{a("198.51.100.53")}})
	if got := learnedDNS("t-learned")["wan"]; !slices.Equal(got, []netip.Addr{a("198.51.100.53"), a("2001:db8::53")}) {
		t.Fatalf("learned DNS %v", got)
	}
	e.SetLearned("t-learned", "wan", false, Learned{})
	if got := learnedDNS("t-learned")["wan"]; !slices.Equal(got, []netip.Addr{a("2001:db8::53")}) {
		t.Fatalf("after clearing v4: %v", got)
	}
}
