package dnsmasq

import (
	"bytes"
	"flag"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func mac(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

// full is a tenant with every service: DHCP on two LANs, static leases,
// DNS with forwarders and local names, RA in three modes.
func full() *Config {
	return &Config{
		Dir: "/run/fwd/blue/dnsmasq", User: "dnsmasq", Group: "nogroup",
		DHCP: []DHCPRange{
			{Interface: "lan", Start: netip.MustParseAddr("192.0.2.100"), End: netip.MustParseAddr("192.0.2.199"),
				Mask: netip.MustParsePrefix("192.0.2.0/24"), LeaseTime: 12 * time.Hour,
				Router: addrs("192.0.2.1"), DNS: addrs("192.0.2.1"), Domain: "lan"},
			{Interface: "guest", Start: netip.MustParseAddr("198.51.100.10"), End: netip.MustParseAddr("198.51.100.20"),
				Mask: netip.MustParsePrefix("198.51.100.0/25"), LeaseTime: 150 * time.Second},
		},
		Host: []StaticLease{
			{MAC: mac("02:00:00:00:00:10"), Addr: netip.MustParseAddr("192.0.2.10"), Name: "printer"},
			{MAC: mac("02:00:00:00:00:11"), Addr: netip.MustParseAddr("192.0.2.11"), LeaseTime: 30 * time.Minute},
		},
		DNS: &DNS{
			Interfaces: []string{"lan"},
			Forwarders: []Forwarder{{Addr: netip.MustParseAddrPort("203.0.113.53:53")},
				{Addr: netip.MustParseAddrPort("[2001:db8::53]:5353"), Domain: "corp.example"}},
			Local:  []LocalName{{Name: "nas.lan", Addrs: addrs("192.0.2.20", "2001:db8:1::20")}},
			Domain: "lan", CacheSize: 1000,
		},
		RA: []RA{
			{Interface: "lan", Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:1::/64")},
				RDNSS: addrs("2001:db8:1::1"), Interval: 30 * time.Second, Lifetime: 30 * time.Minute},
			{Interface: "guest", Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:2::/64")}, Other: true},
			{Interface: "lab", Managed: true, Start6: netip.MustParseAddr("2001:db8:3::1000"), End6: netip.MustParseAddr("2001:db8:3::1fff"),
				PrefixLifetime: 2 * time.Hour},
			{Interface: "iot", Constructor: true},
		},
	}
}

func TestRenderGolden(t *testing.T) {
	cases := map[string]*Config{
		"full": full(),
		"dhcp-only": {Dir: "/run/fwd/red/dnsmasq", DHCP: []DHCPRange{{Interface: "lan",
			Start: netip.MustParseAddr("192.0.2.100"), End: netip.MustParseAddr("192.0.2.110"), Mask: netip.MustParsePrefix("192.0.2.0/24")}}},
		"dns-only": {Dir: "/run/fwd/red/dnsmasq", DNS: &DNS{Interfaces: []string{"lan"}}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			files, err := Render(c)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			names := make([]string, 0, len(files))
			for n := range files {
				names = append(names, n)
			}
			slices.Sort(names)
			for _, n := range names {
				got.WriteString("==> " + n + " <==\n")
				got.Write(files[n])
			}
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("%s differs from the golden file; got:\n%s", name, got.String())
			}
		})
	}
}

func TestCheckRefuses(t *testing.T) {
	ok := func() *Config {
		return &Config{Dir: "/d", DHCP: []DHCPRange{{Interface: "lan", Start: netip.MustParseAddr("192.0.2.10"),
			End: netip.MustParseAddr("192.0.2.20"), Mask: netip.MustParsePrefix("192.0.2.0/24")}}}
	}
	if err := ok().Check(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	rows := []struct {
		name string
		mod  func(c *Config)
		want string
	}{
		{"no dir", func(c *Config) { c.Dir = "" }, "no directory"},
		{"lo", func(c *Config) { c.DHCP[0].Interface = "lo" }, `bad interface name "lo"`},
		{"comma", func(c *Config) { c.DHCP[0].Interface = "a,b" }, `bad interface name "a,b"`},
		{"reversed", func(c *Config) { c.DHCP[0].End = netip.MustParseAddr("192.0.2.1") }, "range end 192.0.2.1 before start"},
		{"outside", func(c *Config) { c.DHCP[0].End = netip.MustParseAddr("192.0.3.1") }, "outside subnet 192.0.2.0/24"},
		{"v6 range", func(c *Config) { c.DHCP[0].Start = netip.MustParseAddr("2001:db8::1") }, "range must be IPv4"},
		{"short lease", func(c *Config) { c.DHCP[0].LeaseTime = time.Minute }, "below dnsmasq's minimum"},
		{"twice", func(c *Config) { c.DHCP = append(c.DHCP, c.DHCP[0]) }, "two ranges on one interface"},
		{"v6 router", func(c *Config) { c.DHCP[0].Router = addrs("2001:db8::1") }, "is not IPv4"},
		{"bad mac", func(c *Config) { c.Host = []StaticLease{{Addr: netip.MustParseAddr("192.0.2.5")}} }, "need a 6-byte MAC"},
		{"ra v4", func(c *Config) {
			c.RA = []RA{{Interface: "lan", Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}}
		}, "is not IPv6"},
		{"ra empty", func(c *Config) { c.RA = []RA{{Interface: "lan"}} }, "no prefix to advertise"},
		{"managed no range", func(c *Config) { c.RA = []RA{{Interface: "lan", Managed: true}} }, "managed needs an IPv6 range"},
		{"local no addr", func(c *Config) { c.DNS = &DNS{Local: []LocalName{{Name: "x"}}} }, `local name "x" needs`},
		{"nothing", func(c *Config) { c.DHCP = nil }, "no interface to serve"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			c := ok()
			r.mod(c)
			err := c.Check()
			if err == nil || !strings.Contains(err.Error(), r.want) {
				t.Fatalf("got %v, want %q", err, r.want)
			}
			if _, err := Render(c); err == nil {
				t.Fatal("Render accepted what Check refuses")
			}
		})
	}
}

func TestPlan(t *testing.T) {
	want, err := Render(full())
	if err != nil {
		t.Fatal(err)
	}
	clone := func(f Files) Files {
		out := Files{}
		for k, v := range f {
			out[k] = slices.Clone(v)
		}
		return out
	}
	moreHosts := clone(want)
	moreHosts[DHCPHostsFile] = append(moreHosts[DHCPHostsFile], "02:00:00:00:00:99,192.0.2.99\n"...)
	newMain := clone(want)
	newMain[MainFile] = append(newMain[MainFile], "# other\n"...)
	rows := []struct {
		name    string
		desired Files
		obs     Observed
		action  Action
		changed []string
	}{
		{"fresh", want, Observed{}, Start, []string{DHCPHostsFile, DHCPOptsFile, MainFile, HostsFile, ServersFile}},
		{"dead with same files", want, Observed{Files: want}, Start, nil},
		{"same", want, Observed{Files: want, Running: true}, None, nil},
		{"static lease added", moreHosts, Observed{Files: want, Running: true}, Reload, []string{DHCPHostsFile}},
		{"main changed", newMain, Observed{Files: want, Running: true}, Restart, []string{MainFile}},
		{"removed", nil, Observed{Files: want, Running: true}, Stop, nil},
		{"removed, files left", nil, Observed{Files: want}, Stop, nil},
		{"never configured", nil, Observed{}, None, nil},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			s := Plan(r.desired, r.obs)
			if s.Action != r.action || !slices.Equal(s.Changed, r.changed) {
				t.Fatalf("got %v %v, want %v %v", s.Action, s.Changed, r.action, r.changed)
			}
			cs := s.Changes("blue")
			if (r.action == None) != (len(cs) == 0) {
				t.Fatalf("changes %v for %v", cs, r.action)
			}
			if len(cs) == 1 && (cs[0].Action != r.action.String()+"-dnsmasq" || cs[0].Tenant != "blue") {
				t.Fatalf("change %+v", cs[0])
			}
		})
	}
}

func TestParseLeases(t *testing.T) {
	in := "1700000000 02:00:00:00:00:10 192.0.2.10 printer 01:02:00:00:00:00:10\n" +
		"0 02:00:00:00:00:11 192.0.2.11 * *\n" +
		"garbage\n" +
		"duid 00:01:00:01\n" +
		"1700000000 1234 2001:db8::5 host6 00:01\n"
	got := ParseLeases([]byte(in))
	if len(got) != 3 {
		t.Fatalf("got %d leases: %+v", len(got), got)
	}
	if v6 := got[2]; v6.Addr.String() != "2001:db8::5" || v6.DUID != "00:01" || v6.MAC != nil || v6.Hostname != "host6" {
		t.Fatalf("DHCPv6 lease %+v", v6)
	}
	if got[0].Hostname != "printer" || got[0].Expiry.Unix() != 1700000000 || got[0].Addr.String() != "192.0.2.10" {
		t.Fatalf("first lease %+v", got[0])
	}
	if got[1].Hostname != "" || !got[1].Expiry.IsZero() {
		t.Fatalf("second lease %+v", got[1])
	}
}
