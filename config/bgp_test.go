package config

import (
	"net/netip"
	"strings"
	"testing"
)

const bgpBase = `
[tenant.edge.interface.wan1]
device = "eth1"
addresses = ["203.0.113.2/24", "2001:db8:1::2/64"]

[tenant.edge.interface.lan]
device = "eth3"
addresses = ["192.0.2.1/24"]

[tenant.edge.table.isp2]
id = 100
`

func TestBGPValid(t *testing.T) {
	cfg, err := Parse("t.toml", []byte(bgpBase+`
[tenant.edge.bgp]
asn = 64512
announce = ["198.51.100.0/24", "2001:db8:100::/48"]
announce_if_route = ["198.18.0.0/15"]
table = "isp2"

[[tenant.edge.bgp.neighbor]]
address = "203.0.113.1"
asn = 64513
description = "upstream"
password = "s3cret"
hold_time = 9
import = { allow = ["0.0.0.0/0 le 24"], deny = ["192.0.2.0/24 le 32", "10.0.0.0/8 ge 8"] }
export = { allow = ["198.51.100.0/24"] }
max_prefixes = 1000
max_prefixes_action = "warn"
graceful_restart = true

[[tenant.edge.bgp.neighbor]]
address = "2001:db8:1::1"
asn = 4200000000
passive = true
next_hop_self = true

[[tenant.edge.bgp.neighbor]]
address = "198.18.7.7"
asn = 64512
multihop = 3
families = ["ipv6-unicast", "ipv4-unicast"]
keepalive = 10
`))
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Tenant("edge").BGP
	if b == nil {
		t.Fatal("no BGP")
	}
	if b.ASN != 64512 || b.RouterID != netip.MustParseAddr("192.0.2.1") || b.ListenPort != 179 || b.TableID != 100 || b.Table != "isp2" {
		t.Errorf("global: %+v", b)
	}
	if len(b.Announce) != 2 || len(b.AnnounceIfRoute) != 1 || b.AnnounceIfRoute[0].String() != "198.18.0.0/15" {
		t.Errorf("announce: %v %v", b.Announce, b.AnnounceIfRoute)
	}
	if len(b.Neighbors) != 3 {
		t.Fatalf("neighbors: %d", len(b.Neighbors))
	}
	n := b.Neighbors[0]
	if n.Key != "tenant.edge.bgp.neighbor[0]" || n.ASN != 64513 || n.HoldTime != 9 || n.Keepalive != 3 ||
		n.MaxPrefixes != 1000 || n.MaxPrefixesAction != "warn" || !n.GracefulRestart || n.GracefulRestartTime != 120 ||
		len(n.Families) != 1 || n.Families[0] != FamilyIPv4Unicast {
		t.Errorf("neighbor 0: %+v", n)
	}
	if got := n.Import.Allow.Prefixes[0].String(); got != "0.0.0.0/0 le 24" {
		t.Errorf("import allow: %q", got)
	}
	if d := n.Import.Deny.Prefixes; d[0].GE != 24 || d[0].LE != 32 || d[1].GE != 8 || d[1].LE != 32 {
		t.Errorf("import deny: %+v", d)
	}
	if n6 := b.Neighbors[1]; n6.ASN != 4200000000 || !n6.Passive || !n6.NextHopSelf || n6.Families[0] != FamilyIPv6Unicast || n6.HoldTime != 90 || n6.Keepalive != 30 {
		t.Errorf("neighbor 1: %+v", n6)
	}
	if n2 := b.Neighbors[2]; n2.Multihop != 3 || len(n2.Families) != 2 || n2.Keepalive != 10 {
		t.Errorf("neighbor 2: %+v", n2)
	}
	if b.Neighbor(netip.MustParseAddr("198.18.7.7")) != b.Neighbors[2] {
		t.Error("Neighbor lookup")
	}
	if cfg2, err := Parse("t.toml", []byte(bgpBase)); err != nil || cfg2.Tenant("edge").BGP != nil {
		t.Errorf("no [bgp] must mean no speaker: %v", err)
	}
}

func TestBGPListen(t *testing.T) {
	for text, want := range map[string]int{"": 179, "listen = 1179": 1179, "listen = false": 0, "listen = true": 179} {
		cfg, err := Parse("t.toml", []byte(bgpBase+"[tenant.edge.bgp]\nasn = 64512\n"+text+"\n"))
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if got := cfg.Tenant("edge").BGP.ListenPort; got != want {
			t.Errorf("%q: port %d, want %d", text, got, want)
		}
	}
}

func TestPrefixMatch(t *testing.T) {
	m, err := ParsePrefixMatch("198.18.0.0/15 ge 16 le 24")
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{"198.18.0.0/15": false, "198.18.0.0/16": true, "198.19.5.0/24": true, "198.19.5.0/25": false, "198.20.0.0/16": false, "2001:db8::/32": false} {
		if got := m.Matches(netip.MustParsePrefix(p)); got != want {
			t.Errorf("%s: %v, want %v", p, got, want)
		}
	}
}

func TestBGPErrors(t *testing.T) {
	const head = "[tenant.edge.bgp]\nasn = 64512\n"
	for _, tc := range []struct {
		name, text, want string
	}{
		{"asn zero", "[tenant.edge.bgp]\nasn = 0\n", "t.toml:13: tenant.edge.bgp.asn: AS number 0 out of range 1-4294967294"},
		{"asn too big", "[tenant.edge.bgp]\nasn = 4294967296\n", "t.toml:13: tenant.edge.bgp.asn: AS number 4294967296 out of range 1-4294967294"},
		{"asn trans", "[tenant.edge.bgp]\nasn = 23456\n", "t.toml:13: tenant.edge.bgp.asn: AS 23456 is AS_TRANS (RFC 6793), not a real AS"},
		{"asn reserved", "[tenant.edge.bgp]\nasn = 65535\n", "t.toml:13: tenant.edge.bgp.asn: AS 65535 is reserved (RFC 7300)"},
		{"router id v6", head + "router_id = \"2001:db8::1\"\n", "t.toml:14: tenant.edge.bgp.router_id: invalid router ID \"2001:db8::1\": want an IPv4 address, e.g. 192.0.2.1"},
		{"router id zero", head + "router_id = \"0.0.0.0\"\n", "t.toml:14: tenant.edge.bgp.router_id: router ID 0.0.0.0 is not a usable identifier"},
		{"listen port", head + "listen = 70000\n", "t.toml:14: tenant.edge.bgp.listen: port 70000 out of range 1-65535 (false: do not listen)"},
		{"listen type", head + "listen = \"yes\"\n", "t.toml:14: tenant.edge.bgp.listen: want a port number, true or false"},
		{"table", head + "table = \"isp9\"\n", "t.toml:14: tenant.edge.bgp.table: table \"isp9\" is not declared: add [tenant.edge.table.isp9] with an id"},
		{"announce host bits", head + "announce = [\"198.51.100.1/24\"]\n", "t.toml:14: tenant.edge.bgp.announce[0]: 198.51.100.1/24 has host bits set (did you mean 198.51.100.0/24?)"},
		{"announce twice", head + "announce = [\"198.51.100.0/24\"]\nannounce_if_route = [\"198.51.100.0/24\"]\n", "t.toml:15: tenant.edge.bgp.announce_if_route[0]: 198.51.100.0/24 is already announced at tenant.edge.bgp.announce[0]"},
		{"unknown key", head + "[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.1\"\nasn = 64513\nholdtime = 9\n", "t.toml:17: tenant.edge.bgp.neighbor[0].holdtime: unknown key"},
		{"neighbor missing address", head + "[[tenant.edge.bgp.neighbor]]\nasn = 64513\n", "t.toml:14: tenant.edge.bgp.neighbor[0].address: address is required"},
		{"neighbor bad address", head + "[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.300\"\nasn = 64513\n", "t.toml:15: tenant.edge.bgp.neighbor[0].address: invalid neighbour address \"203.0.113.300\""},
		{"neighbor unreachable", head + "[[tenant.edge.bgp.neighbor]]\naddress = \"198.18.0.1\"\nasn = 64513\n", "t.toml:15: tenant.edge.bgp.neighbor[0].address: neighbour 198.18.0.1 is not on any connected subnet of tenant \"edge\": set multihop (TTL) for a neighbour further away"},
		{"neighbor own address", head + "[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.2\"\nasn = 64513\n", "t.toml:15: tenant.edge.bgp.neighbor[0].address: 203.0.113.2 is one of this tenant's own addresses"},
		{"neighbor link-local", head + "[[tenant.edge.bgp.neighbor]]\naddress = \"fe80::1\"\nasn = 64513\n", "t.toml:15: tenant.edge.bgp.neighbor[0].address: link-local neighbour fe80::1 is not supported: use a global address"},
		{"duplicate neighbor", head + "[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.1\"\nasn = 64513\n[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.1\"\nasn = 64514\n", "t.toml:18: tenant.edge.bgp.neighbor[1].address: duplicate neighbour 203.0.113.1 (also tenant.edge.bgp.neighbor[0])"},
		{"neighbor asn", head + "[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.1\"\nasn = -5\n", "t.toml:16: tenant.edge.bgp.neighbor[0].asn: AS number -5 out of range 1-4294967294"},
		{"hold time", head + "[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.1\"\nasn = 64513\nhold_time = 2\n", "t.toml:17: tenant.edge.bgp.neighbor[0].hold_time: hold time 2 must be 0 or 3-65535 seconds (RFC 4271)"},
		{"keepalive", head + "[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.1\"\nasn = 64513\nhold_time = 9\nkeepalive = 9\n", "t.toml:18: tenant.edge.bgp.neighbor[0].keepalive: keepalive 9 must be shorter than hold_time 9"},
		{"multihop", head + "[[tenant.edge.bgp.neighbor]]\naddress = \"198.18.0.1\"\nasn = 64513\nmultihop = 300\n", "t.toml:17: tenant.edge.bgp.neighbor[0].multihop: multihop TTL 300 out of range 1-255 (0: directly connected)"},
		{"passive without listen", head + "listen = false\n[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.1\"\nasn = 64513\npassive = true\n", "t.toml:18: tenant.edge.bgp.neighbor[0].passive: a passive neighbour needs the speaker to listen (tenant.edge.bgp.listen is false)"},
		{"family", head + "[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.1\"\nasn = 64513\nfamilies = [\"ipv4-multicast\"]\n", "t.toml:17: tenant.edge.bgp.neighbor[0].families[0]: unknown address family \"ipv4-multicast\" (ipv4-unicast, ipv6-unicast)"},
		{"filter bad prefix", head + "[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.1\"\nasn = 64513\nimport = { deny = [\"10.0.0.0/33\"] }\n", "t.toml:17: tenant.edge.bgp.neighbor[0].import.deny[0]: invalid prefix \"10.0.0.0/33\""},
		{"filter host bits", head + "[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.1\"\nasn = 64513\nexport = { allow = [\"10.1.0.0/8\"] }\n", "t.toml:17: tenant.edge.bgp.neighbor[0].export.allow[0]: 10.1.0.0/8 has host bits set (did you mean 10.0.0.0/8?)"},
		{"filter le below ge", head + "[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.1\"\nasn = 64513\nimport = { allow = [\"10.0.0.0/8 ge 24 le 16\"] }\n", "t.toml:17: tenant.edge.bgp.neighbor[0].import.allow[0]: \"10.0.0.0/8 ge 24 le 16\": need 8 <= ge <= le"},
		{"filter syntax", head + "[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.1\"\nasn = 64513\nimport = { allow = [\"10.0.0.0/8 upto 16\"] }\n", "t.toml:17: tenant.edge.bgp.neighbor[0].import.allow[0]: \"10.0.0.0/8 upto 16\": want PREFIX [ge N] [le N]"},
		{"filter le range", head + "[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.1\"\nasn = 64513\nimport = { allow = [\"10.0.0.0/8 le 40\"] }\n", "t.toml:17: tenant.edge.bgp.neighbor[0].import.allow[0]: \"10.0.0.0/8 le 40\": le 40 is not a prefix length 0-32"},
		{"max prefixes action", head + "[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.1\"\nasn = 64513\nmax_prefixes = 5\nmax_prefixes_action = \"drop\"\n", "t.toml:18: tenant.edge.bgp.neighbor[0].max_prefixes_action: unknown action \"drop\" (teardown, warn)"},
		{"max prefixes action alone", head + "[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.1\"\nasn = 64513\nmax_prefixes_action = \"warn\"\n", "t.toml:17: tenant.edge.bgp.neighbor[0].max_prefixes_action: max_prefixes_action needs max_prefixes"},
		{"password", head + "[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.1\"\nasn = 64513\npassword = \"" + strings.Repeat("x", 81) + "\"\n", "t.toml:17: tenant.edge.bgp.neighbor[0].password: TCP MD5 keys are at most 80 bytes (got 81)"},
		{"restart time without gr", head + "[[tenant.edge.bgp.neighbor]]\naddress = \"203.0.113.1\"\nasn = 64513\ngraceful_restart_time = 60\n", "t.toml:17: tenant.edge.bgp.neighbor[0].graceful_restart_time: graceful_restart_time needs graceful_restart = true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.toml", []byte(bgpBase+tc.text))
			if err == nil {
				t.Fatalf("no error, want %s", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
}

func TestBGPRouterIDRequired(t *testing.T) {
	_, err := Parse("t.toml", []byte(`
[tenant.v6.interface.wan]
device = "eth1"
addresses = ["2001:db8:1::2/64"]
[tenant.v6.bgp]
asn = 64512
`))
	if err == nil || !strings.Contains(err.Error(), "t.toml:5: tenant.v6.bgp.router_id: router_id is required when the tenant has no IPv4 address") {
		t.Errorf("got %v", err)
	}
}

func TestBGPExampleConfig(t *testing.T) {
	cfg, err := Load("../configs/bgp-edge.toml")
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Tenant("edge").BGP
	if b == nil || len(b.Neighbors) != 4 || b.Neighbors[3].Multihop != 2 || !b.Neighbors[3].NextHopSelf {
		t.Errorf("bgp: %+v", b)
	}
}
