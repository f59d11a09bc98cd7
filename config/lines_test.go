package config

import (
	"strings"
	"testing"
)

// The model's Line fields are the lines of the entries' headers: rules,
// NAT, [[policy]] entries, routes and route rules, counted per array.
func TestModelLines(t *testing.T) {
	src := routingBase + `
[tenant.edge.zone.wan]
interfaces = ["wan1", "wan2"]
[tenant.edge.zone.lan]
interfaces = ["lan"]

[[tenant.edge.policy]]   # header with a comment
from = ["lan", "wan"]
to = "self"
action = "accept"

[[ tenant.edge.rule ]]
from = "lan"
to = "wan"
dport = [
  22,
  80,
]
proto = "tcp"
action = "accept"
comment = '''
[[tenant.edge.rule]]'''

[[tenant.edge.policy]]
from = "lan"
to = "wan"
action = "accept"

# [[tenant.edge.rule]] in a comment

[[tenant."edge".rule]]
from = "wan"
to = "lan"
action = "drop"

[[tenant.edge.nat]]
type = "masquerade"
out = "wan"

[[tenant.edge.route]]
to = "198.18.0.0/15"
type = "blackhole"

[[tenant.edge.route_rule]]
priority = 100
from = "192.0.2.128/25"
table = "isp2"
`
	cfg, err := Parse("t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	line := func(header string, nth int) int {
		n := 0
		for i, l := range strings.Split(src, "\n") {
			if strings.HasPrefix(l, header) {
				if n == nth {
					return i + 1
				}
				n++
			}
		}
		t.Fatalf("no header %s #%d", header, nth)
		return 0
	}
	p, rt := cfg.Tenants[0].Policy, cfg.Tenants[0].Routing
	if len(p.Rules) != 2 || p.Rules[0].Line != line("[[ tenant.edge.rule ]]", 0) || p.Rules[1].Line != line(`[[tenant."edge".rule]]`, 0) {
		t.Errorf("rule lines: %d, %d", p.Rules[0].Line, p.Rules[1].Line)
	}
	if len(p.NAT) != 1 || p.NAT[0].Line != line("[[tenant.edge.nat]]", 0) {
		t.Errorf("nat line: %+v", p.NAT)
	}
	want := map[string]int{"lan->self": 0, "wan->self": 0, "lan->wan": 1}
	for _, d := range p.Defaults {
		i := want[d.From+"->"+d.To]
		if d.Line != line("[[tenant.edge.policy]]", i) || d.Key != "tenant.edge.policy["+string(rune('0'+i))+"]" {
			t.Errorf("policy %s -> %s: %s line %d", d.From, d.To, d.Key, d.Line)
		}
	}
	if len(p.Defaults) != 3 {
		t.Errorf("defaults: %+v", p.Defaults)
	}
	if len(rt.Routes) != 1 || rt.Routes[0].Line != line("[[tenant.edge.route]]", 0) {
		t.Errorf("route: %+v", rt.Routes)
	}
	if len(rt.Rules) == 0 || rt.Rules[0].Line != line("[[tenant.edge.route_rule]]", 0) {
		t.Errorf("route rules: %+v", rt.Rules)
	}
}
