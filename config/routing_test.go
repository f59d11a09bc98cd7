package config

import (
	"net/netip"
	"strings"
	"testing"
)

const routingBase = `
[tenant.edge.interface.wan1]
device = "eth1"
addresses = ["203.0.113.2/24", "2001:db8:1::2/64"]

[tenant.edge.interface.wan2]
device = "eth2"
addresses = ["198.51.100.2/24"]

[tenant.edge.interface.lan]
device = "eth3"
addresses = ["192.0.2.1/24"]

[tenant.edge.table.isp2]
id = 100
`

func TestRoutingValid(t *testing.T) {
	cfg, err := Parse("t.toml", []byte(routingBase+`
[[tenant.edge.route]]
to = "default"
nexthops = [{ via = "203.0.113.1", weight = 2 }, { via = "198.51.100.1", dev = "wan2" }]

[[tenant.edge.route]]
to = "default"
via = "198.51.100.1"
table = "isp2"

[[tenant.edge.route]]
to = "198.18.0.0/15"
type = "blackhole"
metric = 50

[[tenant.edge.route]]
to = "2001:db8:ff::/48"
via = "2001:db8:1::1"
src = "2001:db8:1::2"

[[tenant.edge.route]]
to = "198.18.10.0/24"
dev = "lan"

[[tenant.edge.route]]
to = "198.18.20.0/24"
via = "192.0.2.254"
dev = "wan1"
onlink = true

[[tenant.edge.route_rule]]
priority = 100
from = "192.0.2.128/25"
table = "isp2"

[[tenant.edge.route_rule]]
priority = 200
fwmark = 0x10
fwmask = 0xf0
table = "isp2"
`))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Tenant("edge").Routing
	if len(r.Tables) != 1 || r.Tables[0] != (Table{Name: "isp2", ID: 100}) {
		t.Errorf("tables = %+v", r.Tables)
	}
	if len(r.Routes) != 6 {
		t.Fatalf("routes = %+v", r.Routes)
	}
	def := r.Routes[0]
	if def.To.String() != "0.0.0.0/0" || def.TableID != TableMain || len(def.NextHops) != 2 || def.NextHops[0].Weight != 2 || def.NextHops[1].Weight != 1 || def.NextHops[1].Dev != "wan2" {
		t.Errorf("ecmp default = %+v", def)
	}
	if r.Routes[1].TableID != 100 || r.Routes[1].Table != "isp2" {
		t.Errorf("isp2 default = %+v", r.Routes[1])
	}
	if r.Routes[2].Type != RouteBlackhole || r.Routes[2].Metric != 50 {
		t.Errorf("blackhole = %+v", r.Routes[2])
	}
	if r.Routes[3].Metric != DefaultIPv6Metric || r.Routes[3].Src != netip.MustParseAddr("2001:db8:1::2") {
		t.Errorf("v6 = %+v", r.Routes[3])
	}
	if r.Routes[4].Dev != "lan" || len(r.Routes[4].NextHops) != 0 {
		t.Errorf("dev route = %+v", r.Routes[4])
	}
	if !r.Routes[5].NextHops[0].OnLink {
		t.Errorf("onlink = %+v", r.Routes[5])
	}
	if len(r.Rules) != 3 {
		t.Fatalf("rules = %+v", r.Rules)
	}
	if r.Rules[0].Family != 4 || r.Rules[0].From.String() != "192.0.2.128/25" || r.Rules[0].TableID != 100 {
		t.Errorf("rule 0 = %+v", r.Rules[0])
	}
	// A rule without prefixes applies to both families.
	if r.Rules[1].Family != 4 || r.Rules[2].Family != 6 || r.Rules[1].FwMark != 0x10 || r.Rules[1].FwMask != 0xf0 || !r.Rules[1].HasMark {
		t.Errorf("mark rules = %+v %+v", r.Rules[1], r.Rules[2])
	}
}

func TestRoutingErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text, want string
	}{
		{"gateway off subnet", `
[[tenant.edge.route]]
to = "198.18.0.0/15"
via = "192.0.2.200"
dev = "wan1"`, "t.toml:19: tenant.edge.route[0].via: gateway 192.0.2.200 is not on a connected subnet of interface \"wan1\" (set onlink = true if it is reachable anyway)"},
		{"gateway on no subnet", `
[[tenant.edge.route]]
to = "198.18.0.0/15"
via = "198.18.5.5"`, "t.toml:19: tenant.edge.route[0].via: gateway 198.18.5.5 is not on any connected subnet of tenant \"edge\" (set dev and onlink = true if it is reachable anyway)"},
		{"onlink without dev", `
[[tenant.edge.route]]
to = "198.18.0.0/15"
via = "198.18.5.5"
onlink = true`, "t.toml:20: tenant.edge.route[0].onlink: onlink needs dev: the kernel must know which interface the gateway is on"},
		{"undeclared table", `
[[tenant.edge.route]]
to = "default"
via = "203.0.113.1"
table = "isp9"`, "t.toml:20: tenant.edge.route[0].table: table \"isp9\" is not declared: add [tenant.edge.table.isp9] with an id"},
		{"undeclared rule table", `
[[tenant.edge.route_rule]]
priority = 10
table = "isp9"`, "t.toml:19: tenant.edge.route_rule[0].table: table \"isp9\" is not declared: add [tenant.edge.table.isp9] with an id"},
		{"duplicate route", `
[[tenant.edge.route]]
to = "198.18.0.0/15"
via = "203.0.113.1"
[[tenant.edge.route]]
to = "198.18.0.0/15"
via = "198.51.100.1"`, "t.toml:20: tenant.edge.route[1]: duplicate route: 198.18.0.0/15 in table main with metric 0 is already defined at tenant.edge.route[0]"},
		{"family mismatch gateway", `
[[tenant.edge.route]]
to = "198.18.0.0/15"
via = "2001:db8:1::1"`, "t.toml:19: tenant.edge.route[0].via: gateway 2001:db8:1::1 is IPv6 but the route is IPv4"},
		{"family mismatch rule", `
[[tenant.edge.route_rule]]
priority = 10
from = "192.0.2.0/24"
to = "2001:db8::/32"
table = "isp2"`, "t.toml:20: tenant.edge.route_rule[0].to: from is IPv4 but to is IPv6"},
		{"family mismatch src", `
[[tenant.edge.route]]
to = "198.18.0.0/15"
via = "203.0.113.1"
src = "2001:db8:1::2"`, "t.toml:20: tenant.edge.route[0].src: source 2001:db8:1::2 is IPv6 but the route is IPv4"},
		{"src not local", `
[[tenant.edge.route]]
to = "198.18.0.0/15"
via = "203.0.113.1"
src = "203.0.113.9"`, "t.toml:20: tenant.edge.route[0].src: source 203.0.113.9 is not an address of tenant \"edge\""},
		{"priority clash", `
[[tenant.edge.route_rule]]
priority = 10
from = "192.0.2.0/25"
table = "isp2"
[[tenant.edge.route_rule]]
priority = 10
fwmark = 1
table = "main"`, "t.toml:22: tenant.edge.route_rule[1].priority: priority 10 clashes with tenant.edge.route_rule[0] (IPv4)"},
		{"priority range", `
[[tenant.edge.route_rule]]
priority = 32766
table = "isp2"`, "t.toml:18: tenant.edge.route_rule[0].priority: priority 32766 out of range 1-32765 (0, 32766 and 32767 hold the kernel's local, main and default rules)"},
		{"priority missing", `
[[tenant.edge.route_rule]]
table = "isp2"`, "t.toml:17: tenant.edge.route_rule[0].priority: priority is required (1-32765): rules are matched in priority order"},
		{"host bits", `
[[tenant.edge.route]]
to = "198.18.0.1/15"
type = "blackhole"`, "t.toml:18: tenant.edge.route[0].to: prefix \"198.18.0.1/15\" has host bits set: did you mean 198.18.0.0/15?"},
		{"default without family", `
[[tenant.edge.route]]
to = "default"
type = "unreachable"`, "t.toml:18: tenant.edge.route[0].to: \"default\" without a gateway or src has no address family: write 0.0.0.0/0 or ::/0"},
		{"blackhole with via", `
[[tenant.edge.route]]
to = "198.18.0.0/15"
type = "blackhole"
via = "203.0.113.1"`, "t.toml:19: tenant.edge.route[0].type: a blackhole route takes no via, nexthops, dev, onlink or src"},
		{"unknown type", `
[[tenant.edge.route]]
to = "198.18.0.0/15"
type = "local"`, "t.toml:19: tenant.edge.route[0].type: unknown route type \"local\" (unicast, blackhole, unreachable, prohibit)"},
		{"no nexthop", `
[[tenant.edge.route]]
to = "198.18.0.0/15"`, "t.toml:17: tenant.edge.route[0]: a unicast route needs via, nexthops or dev"},
		{"undeclared dev", `
[[tenant.edge.route]]
to = "198.18.0.0/15"
dev = "wan9"`, "t.toml:19: tenant.edge.route[0].dev: interface \"wan9\" is not declared in tenant \"edge\""},
		{"bad weight", `
[[tenant.edge.route]]
to = "default"
nexthops = [{ via = "203.0.113.1", weight = 0 }, { via = "198.51.100.1" }]`, "t.toml:19: tenant.edge.route[0].nexthops[0].weight: weight 0 out of range 1-256"},
		{"gateway twice", `
[[tenant.edge.route]]
to = "default"
nexthops = [{ via = "203.0.113.1" }, { via = "203.0.113.1" }]`, "t.toml:19: tenant.edge.route[0].nexthops[1].via: gateway 203.0.113.1 is listed twice"},
		{"via and nexthops", `
[[tenant.edge.route]]
to = "default"
via = "203.0.113.1"
nexthops = [{ via = "198.51.100.1" }]`, "t.toml:17: tenant.edge.route[0]: via and nexthops are exclusive: list every gateway under nexthops"},
		{"reserved table id", `
[tenant.edge.table.other]
id = 254`, "t.toml:18: tenant.edge.table.other.id: table id 254 is reserved (253 default, 254 main, 255 local)"},
		{"table id reused", `
[tenant.edge.table.other]
id = 100`, "t.toml:18: tenant.edge.table.other.id: table id 100 is already used by table \"isp2\""},
		{"reserved table name", `
[tenant.edge.table.main]
id = 5`, "t.toml:17: tenant.edge.table.main: table name \"main\" is reserved by the kernel"},
		{"fwmask without fwmark", `
[[tenant.edge.route_rule]]
priority = 10
fwmask = 0xff
table = "isp2"`, "t.toml:19: tenant.edge.route_rule[0].fwmask: fwmask needs fwmark"},
		{"undeclared iif", `
[[tenant.edge.route_rule]]
priority = 10
iif = "wan9"
table = "isp2"`, "t.toml:19: tenant.edge.route_rule[0].iif: interface \"wan9\" is not declared in tenant \"edge\""},
		{"unknown key", `
[[tenant.edge.route]]
to = "198.18.0.0/15"
gateway = "203.0.113.1"`, "t.toml:19: tenant.edge.route[0].gateway: unknown key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.toml", []byte(routingBase+tc.text))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
}

func TestDualUplinkExample(t *testing.T) {
	cfg, err := Load("../configs/dual-uplink.toml")
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Tenant("edge").Routing
	if len(r.Routes) != 4 || len(r.Rules) != 2 || len(r.Routes[0].NextHops) != 2 {
		t.Errorf("routing = %+v", r)
	}
}

// FuzzRoutingParse feeds routing-heavy configs to the decoder: validation
// must report, never panic.
func FuzzRoutingParse(f *testing.F) {
	f.Add(routingBase + `
[[tenant.edge.route]]
to = "default"
nexthops = [{ via = "203.0.113.1", weight = 2 }, { via = "198.51.100.1", dev = "wan2", onlink = true }]
metric = 5
table = "isp2"
src = "203.0.113.2"
[[tenant.edge.route]]
to = "2001:db8::/32"
type = "blackhole"
[[tenant.edge.route_rule]]
priority = 10
from = "192.0.2.0/24"
to = "198.18.0.0/15"
iif = "lan"
fwmark = 0x10
fwmask = 0xff
family = "ipv4"
table = "isp2"
`)
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = Parse("f.toml", []byte(s))
	})
}
