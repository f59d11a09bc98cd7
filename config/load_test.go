package config

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	cfg, err := Parse("fwd.toml", []byte(`
[mgmt]
protect = ["eth0"]

[tenant.edge]
forwarding = false

[tenant.edge.interface.wan]
device = "eth1"
addresses = ["2001:db8:1::2/64", "203.0.113.2/24"]
mtu = 9000

[tenant.edge.interface.to-blue]
peer = { tenant = "blue", name = "uplink" }

[tenant.blue.interface.uplink]
peer = { tenant = "edge", name = "to-blue" }
addresses = ["198.18.0.1/31"]

[tenant.red.interface.wan]
macvlan = { parent = "eth3" }

[tenant.red.interface.v100]
vlan = { parent = "eth3", id = 100 }

[tenant.red.interface.lan]
mac = "02:00:00:00:00:01"
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Tenants) != 3 || cfg.Tenants[0].Name != "blue" || cfg.Tenants[1].Name != "edge" {
		t.Fatalf("tenants not sorted: %+v", cfg.Tenants)
	}
	edge := cfg.Tenant("edge")
	if edge.Forwarding {
		t.Error("forwarding = false ignored")
	}
	if !cfg.Tenant("blue").Forwarding {
		t.Error("forwarding should default to true")
	}
	wan := edge.Interface("wan")
	if wan.Kind != KindPhysical || wan.Device != "eth1" || wan.MTU != 9000 {
		t.Errorf("wan = %+v", wan)
	}
	if want := []netip.Prefix{netip.MustParsePrefix("2001:db8:1::2/64"), netip.MustParsePrefix("203.0.113.2/24")}; len(wan.Addresses) != 2 || wan.Addresses[0] != want[0] {
		t.Errorf("addresses = %v", wan.Addresses)
	}
	red := cfg.Tenant("red")
	if m := red.Interface("wan"); m.Kind != KindMacvlan || m.MacvlanMode != "bridge" || m.Parent != "eth3" {
		t.Errorf("macvlan = %+v", m)
	}
	if v := red.Interface("v100"); v.Kind != KindVLAN || v.VLANID != 100 {
		t.Errorf("vlan = %+v", v)
	}
	if l := red.Interface("lan"); l.MAC.String() != "02:00:00:00:00:01" {
		t.Errorf("mac = %v", l.MAC)
	}
}

// Each row is one mistake; the error must name file, line and key.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"syntax", "[tenant.edge\n", "fwd.toml:1:13: tenant.edge: expected '.' or ']' to end table name, but got the end of the line"},
		{"wrong type", "[tenant.edge.interface.wan]\ndevice = 5\n", "fwd.toml:2: tenant.edge.interface.wan.device: incompatible types"},
		{"unknown key", "[tenant.edge.interface.wan]\ndevice = \"eth1\"\ndevcie = \"eth2\"\n", "fwd.toml:3: tenant.edge.interface.wan.devcie: unknown key"},
		{"unknown key in array of tables", "[[tenant.a.route]]\nto = \"default\"\n[[tenant.a.route]]\nto = \"192.0.2.0/24\"\nvai = \"1\"\n", "fwd.toml:5: tenant.a.route[1].vai: unknown key"},
		{"unknown top table", "[tenants.edge]\n", "fwd.toml:1: tenants.edge: unknown key"},
		{"bad tenant name", "[tenant.Edge.interface.wan]\ndevice = \"eth1\"\n", `fwd.toml:1: tenant.Edge: invalid tenant name "Edge"`},
		{"long tenant name", "[tenant.abcdefghijklmnop]\n", `fwd.toml:1: tenant.abcdefghijklmnop: invalid tenant name`},
		{"long ifname", "[tenant.edge.interface.abcdefghijklmnop]\ndevice = \"eth1\"\n", `fwd.toml:1: tenant.edge.interface.abcdefghijklmnop: interface name "abcdefghijklmnop" is longer than 15 bytes (IFNAMSIZ)`},
		{"slash ifname", "[tenant.edge.interface.\"a/b\"]\ndevice = \"eth1\"\n", `fwd.toml:1: tenant.edge.interface.a/b: interface name "a/b" contains a character`},
		{"lo", "[tenant.edge.interface.lo]\ndevice = \"eth1\"\n", `tenant.edge.interface.lo: interface name "lo" is the namespace's loopback`},
		{"no source", "[tenant.edge.interface.wan]\naddresses = []\n", "fwd.toml:1: tenant.edge.interface.wan: exactly one of device, mac, peer, macvlan or vlan is required (found 0)"},
		{"two sources", "[tenant.edge.interface.wan]\ndevice = \"eth1\"\nmac = \"02:00:00:00:00:01\"\n", "exactly one of device, mac, peer, macvlan or vlan is required (found 2)"},
		{"device twice", "[tenant.a.interface.x]\ndevice = \"eth1\"\n[tenant.b.interface.y]\ndevice = \"eth1\"\n", `fwd.toml:4: tenant.b.interface.y.device: device "eth1" is already claimed by tenant.a.interface.x`},
		{"mac twice", "[tenant.a.interface.x]\nmac = \"02:00:00:00:00:01\"\n[tenant.a.interface.y]\nmac = \"02:00:00:00:00:01\"\n", `fwd.toml:4: tenant.a.interface.y.mac: MAC 02:00:00:00:00:01 is already claimed by tenant.a.interface.x`},
		{"bad mac", "[tenant.a.interface.x]\nmac = \"02:00\"\n", `fwd.toml:2: tenant.a.interface.x.mac: invalid MAC address "02:00"`},
		{"protected", "[mgmt]\nprotect = [\"eth0\"]\n[tenant.a.interface.x]\ndevice = \"eth0\"\n", `fwd.toml:4: tenant.a.interface.x.device: "eth0" is protected by mgmt.protect and is never moved`},
		{"bad address", "[tenant.a.interface.x]\ndevice = \"eth1\"\naddresses = [\"192.0.2.1\"]\n", `fwd.toml:3: tenant.a.interface.x.addresses[0]: invalid address "192.0.2.1": want address/prefix-length`},
		{"network address", "[tenant.a.interface.x]\ndevice = \"eth1\"\naddresses = [\"192.0.2.0/24\"]\n", `tenant.a.interface.x.addresses[0]: 192.0.2.0 is the network address of 192.0.2.0/24`},
		{"broadcast", "[tenant.a.interface.x]\ndevice = \"eth1\"\naddresses = [\"192.0.2.255/24\"]\n", `192.0.2.255 is the broadcast address of 192.0.2.0/24`},
		{"link-local v6", "[tenant.a.interface.x]\ndevice = \"eth1\"\naddresses = [\"fe80::1/64\"]\n", `fe80::1/64 is link-local`},
		{"multicast", "[tenant.a.interface.x]\ndevice = \"eth1\"\naddresses = [\"224.0.0.1/24\"]\n", `224.0.0.1/24 is not a unicast host address`},
		{"duplicate address", "[tenant.a.interface.x]\ndevice = \"eth1\"\naddresses = [\"192.0.2.1/24\"]\n[tenant.a.interface.y]\ndevice = \"eth2\"\naddresses = [\"192.0.2.1/25\"]\n", `fwd.toml:6: tenant.a.interface.y.addresses[0]: address 192.0.2.1 is already assigned at tenant.a.interface.x.addresses[0]`},
		{"overlap", "[tenant.a.interface.x]\ndevice = \"eth1\"\naddresses = [\"192.0.2.1/24\"]\n[tenant.a.interface.y]\ndevice = \"eth2\"\naddresses = [\"192.0.2.129/25\"]\n", `tenant.a.interface.y.addresses[0]: prefix 192.0.2.128/25 overlaps 192.0.2.0/24 at tenant.a.interface.x.addresses[0]`},
		{"mtu range", "[tenant.a.interface.x]\ndevice = \"eth1\"\nmtu = 20\n", `fwd.toml:3: tenant.a.interface.x.mtu: MTU 20 out of range 68-65535`},
		{"mtu v6", "[tenant.a.interface.x]\ndevice = \"eth1\"\nmtu = 1000\naddresses = [\"2001:db8::1/64\"]\n", `MTU 1000 is below the IPv6 minimum of 1280`},
		{"peer tenant missing", "[tenant.a.interface.x]\npeer = { tenant = \"b\", name = \"y\" }\n", `fwd.toml:2: tenant.a.interface.x.peer: peer tenant "b" is not declared`},
		{"peer iface missing", "[tenant.a.interface.x]\npeer = { tenant = \"b\", name = \"y\" }\n[tenant.b]\n", `peer interface "y" is not declared in tenant "b"`},
		{"peer not mutual", "[tenant.a.interface.x]\npeer = { tenant = \"b\", name = \"y\" }\n[tenant.b.interface.y]\ndevice = \"eth1\"\n", `tenant.a.interface.x.peer: peer is not mutual: tenant.b.interface.y must have peer = { tenant = "a", name = "x" }`},
		{"peer same tenant", "[tenant.a.interface.x]\npeer = { tenant = \"a\", name = \"y\" }\n", `a veth peer must be in another tenant`},
		{"vlan id", "[tenant.a.interface.x]\nvlan = { parent = \"eth3\", id = 5000 }\n", `fwd.toml:2: tenant.a.interface.x.vlan.id: VLAN id 5000 out of range 1-4094`},
		{"vlan twice", "[tenant.a.interface.x]\nvlan = { parent = \"eth3\", id = 5 }\n[tenant.b.interface.y]\nvlan = { parent = \"eth3\", id = 5 }\n", `VLAN 5 on eth3 is already used by tenant.a.interface.x`},
		{"macvlan mode", "[tenant.a.interface.x]\nmacvlan = { parent = \"eth3\", mode = \"bogus\" }\n", `unknown macvlan mode "bogus"`},
		{"parent moved", "[tenant.a.interface.x]\nmacvlan = { parent = \"eth3\" }\n[tenant.b.interface.y]\ndevice = \"eth3\"\n", `parent "eth3" stays in the default namespace but is moved by tenant.b.interface.y`},
		{"protect name", "[mgmt]\nprotect = [\"this-name-is-way-too-long\"]\n", `fwd.toml:2: mgmt.protect[0]: "this-name-is-way-too-long" is longer than 15 bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("fwd.toml", []byte(tt.in))
			if err == nil {
				t.Fatalf("accepted invalid config:\n%s", tt.in)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error\n  %s\nwant it to contain\n  %s", err, tt.want)
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	_, err := Parse("f.toml", []byte("[tenant.a.interface.x]\ndevice = \"eth1\"\nmtu = 1\n[tenant.b.interface.y]\ndevice = \"eth1\"\n"))
	es, ok := err.(Errors)
	if !ok || len(es) != 2 {
		t.Fatalf("want 2 errors, got %v", err)
	}
	if es[0].Line != 3 || es[1].Line != 5 {
		t.Errorf("errors not in file order with lines: %v", err)
	}
}

func TestKeyIndex(t *testing.T) {
	idx, _ := scanPositions([]byte("a = 1\n[tenant.\"x.y\".interface.wan]\n  device = \"e\"\n[[tenant.x.route]]\nvia = 1\n[[tenant.x.route]]\nvia = 2\ns = '''\n[fake]\n'''\n"))
	for key, line := range map[string]int{"a": 1, "tenant.x.y.interface.wan": 2, "tenant.x.y.interface.wan.device": 3,
		"tenant.x.route[0].via": 5, "tenant.x.route[1].via": 7, "tenant.x.route[1].other": 6} {
		if got := idx.line(key); got != line {
			t.Errorf("line(%q) = %d, want %d", key, got, line)
		}
	}
	if _, ok := idx.keys["fake"]; ok {
		t.Error("a header inside a multi-line string was indexed")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("[tenant.edge.interface.wan]\ndevice = \"eth1\"\naddresses = [\"192.0.2.1/24\"]\n"))
	f.Add([]byte("[tenant.a.interface.x]\npeer = { tenant = \"b\", name = \"y\" }\n[tenant.b.interface.y]\npeer = { tenant = \"a\", name = \"x\" }\n"))
	f.Add([]byte("[mgmt]\nprotect=[\"eth0\"]\n[[tenant.a.route]]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.toml", data)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		if err != nil {
			if _, ok := err.(Errors); !ok {
				t.Fatalf("error of type %T", err)
			}
			if err.Error() == "" {
				t.Fatal("empty error")
			}
		}
	})
}

// Decode is pure: it names set files without reading them; ReadSetFiles
// is the loader step and places its errors at the set's file key.
func TestDecodeDoesNotReadSetFiles(t *testing.T) {
	dir := t.TempDir()
	cfg, err := Decode(dir+"/fwd.toml", []byte("[tenant.a.interface.x]\ndevice = \"eth1\"\n[tenant.a.set.s]\nfile = \"missing.txt\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Tenants[0].Policy.Set("s")
	if s.File != dir+"/missing.txt" || len(s.V4)+len(s.V6) != 0 {
		t.Fatalf("set: %+v", s)
	}
	err = ReadSetFiles(cfg)
	want := dir + "/fwd.toml:4: tenant.a.set.s.file: open " + dir + "/missing.txt: no such file or directory"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}
