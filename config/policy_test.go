package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const policyBase = `
[tenant.edge.interface.wan0]
device = "eth0"
addresses = ["203.0.113.1/24"]
[tenant.edge.interface.lan0]
device = "eth1"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]
[tenant.edge.interface.spare]
device = "eth2"
[tenant.edge.zone.wan]
interfaces = ["wan0"]
[tenant.edge.zone.lan]
interfaces = ["lan0"]
[tenant.edge.zone.empty]
interfaces = []
[tenant.edge.set.block]
elements = ["198.51.100.0/24", "2001:db8:dead::/48"]
`

func TestPolicyValid(t *testing.T) {
	cfg, err := Parse("fwd.toml", []byte(policyBase+`
[[tenant.edge.policy]]
from = "lan"
to = ["wan", "self"]
action = "accept"
[[tenant.edge.rule]]
name = "ssh"
from = "wan"
to = "self"
proto = "tcp"
dport = [22, "2200-2299"]
saddr = ["203.0.113.0/24", "203.0.113.7-203.0.113.9"]
action = "reject"
log = "ssh "
log_limit = "3/minute"
[[tenant.edge.rule]]
from = "any"
to = "any"
saddr = "@block"
daddr = "2001:db8:1::/64"
action = "drop"
[[tenant.edge.rule]]
from = "lan"
to = "self"
proto = "icmpv6"
icmp_type = ["echo-request", 135]
limit = "10/second"
limit_burst = 4
action = "accept"
[[tenant.edge.nat]]
type = "masquerade"
out = "wan"
[[tenant.edge.nat]]
type = "dnat"
in = "wan"
proto = "tcp"
dport = 8080
to = "192.0.2.10:80"
hairpin = true
[[tenant.edge.nat]]
type = "snat"
out = "wan"
saddr = "192.0.2.0/24"
to = "203.0.113.5-203.0.113.9"
[[tenant.edge.nat]]
type = "netmap"
out = "wan"
prefix = "192.0.2.0/26"
to = "203.0.113.64/26"
`))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Tenant("edge").Policy
	if !p.Enabled || len(p.Rules) != 3 || len(p.NAT) != 4 || len(p.Zones) != 3 {
		t.Fatalf("unexpected policy: %+v", p)
	}
	r := p.Rules[0]
	if r.ID != "ssh" || !r.V4 {
		t.Fatalf("rule 0: %+v", r)
	}
	if r.V6 {
		t.Errorf("rule with IPv4 saddr must be IPv4 only")
	}
	if p.Rules[1].V4 || !p.Rules[1].V6 {
		t.Errorf("rule with @set saddr and IPv6 daddr must be IPv6 only: %+v", p.Rules[1])
	}
	if p.Rules[1].ID == "" || !strings.HasPrefix(p.Rules[1].ID, "r") {
		t.Errorf("unnamed rule gets a content id, got %q", p.Rules[1].ID)
	}
	if got := p.Rules[2].ICMP; len(got) != 2 || got[0] != 128 || got[1] != 135 {
		t.Errorf("icmpv6 types: %v", got)
	}
	if d := p.NAT[1]; d.TargetZone != "lan" || d.ToPort != 80 || len(d.Public) != 1 || d.Public[0] != netip.MustParseAddr("203.0.113.1") {
		t.Errorf("dnat: %+v", d)
	}
	if p.DefaultFor("lan", "wan") != Accept || p.DefaultFor("wan", "lan") != Drop || p.DefaultFor(ZoneSelf, "wan") != Accept {
		t.Error("default policies")
	}
}

func TestPolicyDisabledWithoutKeys(t *testing.T) {
	cfg, err := Parse("fwd.toml", []byte(`
[tenant.plain.interface.eth0]
device = "eth0"
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Tenants[0].Policy.Enabled {
		t.Fatal("a tenant without policy keys must not get a firewall")
	}
}

func TestPolicyErrors(t *testing.T) {
	for _, tc := range []struct {
		name, toml, key, msg string
	}{
		{"unknown zone in rule", `
[[tenant.edge.rule]]
from = "dmz"
to = "self"
action = "accept"`, "tenant.edge.rule[0].from", `unknown zone "dmz"`},
		{"unknown zone in list", `
[[tenant.edge.rule]]
from = "wan"
to = ["lan", "dmz"]
action = "accept"`, "tenant.edge.rule[0].to[1]", `unknown zone "dmz"`},
		{"empty zone referenced", `
[[tenant.edge.rule]]
from = "empty"
to = "self"
action = "accept"`, "tenant.edge.rule[0].from", `zone "empty" has no interfaces`},
		{"interface in two zones", `
[tenant.edge.zone.dmz]
interfaces = ["lan0"]`, "tenant.edge.zone.lan.interfaces[0]", `interface "lan0" is already in zone "dmz"`},
		{"undeclared interface", `
[tenant.edge.zone.dmz]
interfaces = ["eth9"]`, "tenant.edge.zone.dmz.interfaces[0]", `interface "eth9" is not declared in tenant "edge"`},
		{"reserved zone", `
[tenant.edge.zone.any]
interfaces = ["spare"]`, "tenant.edge.zone.any", `zone name "any" is reserved`},
		{"bad port", `
[[tenant.edge.rule]]
from = "wan"
to = "self"
proto = "tcp"
dport = [22, 99999]
action = "accept"`, "tenant.edge.rule[0].dport[1]", `invalid port "99999": want 1-65535 or a range like 8000-8080`},
		{"reversed range", `
[[tenant.edge.rule]]
from = "wan"
to = "self"
proto = "udp"
sport = "90-80"
action = "accept"`, "tenant.edge.rule[0].sport", `invalid port range "90-80": start is after end`},
		{"ports without proto", `
[[tenant.edge.rule]]
from = "wan"
to = "self"
dport = 22
action = "accept"`, "tenant.edge.rule[0].dport", `ports need proto tcp, udp, sctp or udplite`},
		{"bad cidr", `
[[tenant.edge.rule]]
from = "wan"
to = "self"
saddr = "192.0.2.1/24"
action = "accept"`, "tenant.edge.rule[0].saddr", `invalid CIDR "192.0.2.1/24": host bits are set (did you mean 192.0.2.0/24?)`},
		{"garbage address", `
[[tenant.edge.rule]]
from = "wan"
to = "self"
daddr = ["192.0.2.1", "nope"]
action = "accept"`, "tenant.edge.rule[0].daddr[1]", `invalid address "nope"`},
		{"missing set", `
[[tenant.edge.rule]]
from = "wan"
to = "self"
saddr = "@nosuch"
action = "drop"`, "tenant.edge.rule[0].saddr", `set "nosuch" is not declared`},
		{"family conflict", `
[[tenant.edge.rule]]
from = "wan"
to = "lan"
saddr = "203.0.113.0/24"
daddr = "2001:db8:1::/64"
action = "accept"`, "tenant.edge.rule[0]", `address family conflict: saddr is IPv4 only, daddr is IPv6 only`},
		{"icmp type without proto", `
[[tenant.edge.rule]]
from = "wan"
to = "self"
icmp_type = "echo-request"
action = "accept"`, "tenant.edge.rule[0].icmp_type", `icmp_type needs proto icmp or icmpv6`},
		{"unknown icmp type", `
[[tenant.edge.rule]]
from = "wan"
to = "self"
proto = "icmp"
icmp_type = "echo-please"
action = "accept"`, "tenant.edge.rule[0].icmp_type", `unknown icmp type "echo-please"`},
		{"bad action", `
[[tenant.edge.rule]]
from = "wan"
to = "self"
action = "allow"`, "tenant.edge.rule[0].action", `invalid action "allow": want accept, drop or reject`},
		{"missing action", `
[[tenant.edge.rule]]
from = "wan"
to = "self"`, "tenant.edge.rule[0].action", `is required (accept, drop or reject)`},
		{"bad ct state", `
[[tenant.edge.rule]]
from = "wan"
to = "self"
ct_state = ["new", "fresh"]
action = "accept"`, "tenant.edge.rule[0].ct_state", `unknown ct state "fresh": want new, established, related, invalid or untracked`},
		{"bad rate", `
[[tenant.edge.rule]]
from = "wan"
to = "self"
limit = "fast"
action = "accept"`, "tenant.edge.rule[0].limit", `invalid rate "fast": want N/second, N/minute, N/hour or N/day`},
		{"duplicate name", `
[[tenant.edge.rule]]
name = "a"
from = "wan"
to = "self"
action = "accept"
[[tenant.edge.rule]]
name = "a"
from = "lan"
to = "self"
action = "accept"`, "tenant.edge.rule[1].name", `rule name "a" is already used by tenant.edge.rule[0]`},
		{"self to self", `
[[tenant.edge.rule]]
from = "self"
to = "self"
action = "accept"`, "tenant.edge.rule[0]", `from and to are both "self" (loopback traffic is always accepted)`},
		{"duplicate default", `
[[tenant.edge.policy]]
from = "lan"
to = "wan"
action = "accept"
[[tenant.edge.policy]]
from = "lan"
to = ["wan"]
action = "drop"`, "tenant.edge.policy[1]", `policy for lan -> wan is already set at tenant.edge.policy[0]`},
		{"dnat outside zones", `
[[tenant.edge.nat]]
type = "dnat"
in = "wan"
proto = "tcp"
dport = 80
to = "198.18.0.5"`, "tenant.edge.nat[0].to", `DNAT target 198.18.0.5 is outside every zone (no zone interface has a prefix containing it)`},
		{"dnat bad target", `
[[tenant.edge.nat]]
type = "dnat"
in = "wan"
to = "192.0.2.10:http"`, "tenant.edge.nat[0].to", `invalid target "192.0.2.10:http": want address or address:port ([v6]:port)`},
		{"masquerade without out", `
[[tenant.edge.nat]]
type = "masquerade"`, "tenant.edge.nat[0].out", `is required for type "masquerade"`},
		{"nat unknown type", `
[[tenant.edge.nat]]
type = "fullcone"
out = "wan"`, "tenant.edge.nat[0].type", `unknown NAT type "fullcone": want masquerade, snat, dnat or netmap`},
		{"netmap length mismatch", `
[[tenant.edge.nat]]
type = "netmap"
out = "wan"
prefix = "192.0.2.0/24"
to = "203.0.113.0/25"`, "tenant.edge.nat[0].to", `prefix 203.0.113.0/25 must have the same family and length as 192.0.2.0/24`},
		{"set needs content", `
[tenant.edge.set.nothing]`, "tenant.edge.set.nothing", `needs elements, file or dynamic = true`},
		{"unknown rule key", `
[[tenant.edge.rule]]
from = "wan"
to = "self"
dports = 22
action = "accept"`, "tenant.edge.rule[0].dports", `unknown key`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("fwd.toml", []byte(policyBase+tc.toml))
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("want Errors, got %v", err)
			}
			for _, e := range es {
				if e.Key == tc.key && e.Msg == tc.msg {
					// The decoder reports unknown keys in arrays of tables
					// without the index, so no line can be found for them.
					if e.Line == 0 && tc.msg != "unknown key" {
						t.Errorf("error has no line: %v", e)
					}
					return
				}
			}
			t.Fatalf("want %s: %s\ngot:\n%v", tc.key, tc.msg, err)
		})
	}
}

func TestSetFile(t *testing.T) {
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "good.txt"), []byte("# comment\n198.51.100.0/24\n\n2001:db8::1 # host\n198.51.100.7-198.51.100.9\n"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "bad.txt"), []byte("198.51.100.0/24\nfoo\n"), 0o644)
	base := `
[tenant.edge.interface.lan0]
device = "eth1"
`
	cfg, err := Parse(filepath.Join(dir, "fwd.toml"), []byte(base+`
[tenant.edge.set.good]
file = "good.txt"
`))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Tenants[0].Policy.Set("good")
	// 198.51.100.7-198.51.100.9 lies inside 198.51.100.0/24: merged.
	if len(s.V4) != 1 || len(s.V6) != 1 || s.File != filepath.Join(dir, "good.txt") {
		t.Fatalf("set: %+v", s)
	}
	_, err = Parse(filepath.Join(dir, "fwd.toml"), []byte(base+`
[tenant.edge.set.bad]
file = "bad.txt"
[tenant.edge.set.missing]
file = "missing.txt"
`))
	want1 := filepath.Join(dir, "bad.txt") + `:2: invalid address "foo"`
	if err == nil || !strings.Contains(err.Error(), "tenant.edge.set.bad.file: "+want1) {
		t.Fatalf("want %q in %v", want1, err)
	}
	if !strings.Contains(err.Error(), "tenant.edge.set.missing.file: open "+filepath.Join(dir, "missing.txt")+": no such file or directory") {
		t.Fatalf("missing file not reported: %v", err)
	}
	// A device or FIFO would hang or exhaust the reader: refused.
	_, err = Parse(filepath.Join(dir, "fwd.toml"), []byte(base+`
[tenant.edge.set.dev]
file = "/dev/zero"
`))
	if err == nil || !strings.Contains(err.Error(), "tenant.edge.set.dev.file: /dev/zero is not a regular file") {
		t.Fatalf("device as set file: %v", err)
	}
}

// FuzzPolicyParse feeds policy-heavy configs to the decoder: validation
// must report, never panic, and accepted rules must match some family.
func FuzzPolicyParse(f *testing.F) {
	f.Add(policyBase + `
[[tenant.edge.policy]]
from = ["lan", "any"]
to = "self"
action = "accept"
[[tenant.edge.rule]]
from = "wan"
to = ["self", "lan"]
saddr = ["203.0.113.0/24", "2001:db8::1-2001:db8::9"]
daddr = "@block"
proto = ["tcp", 17]
dport = [22, "1000-2000"]
sport = 1024
ct_state = ["new"]
action = "reject"
log = "x"
log_limit = "1/second"
limit = "5/minute"
limit_burst = 3
[[tenant.edge.rule]]
from = "lan"
to = "self"
proto = "icmp"
icmp_type = ["echo-request", 3]
action = "accept"
[[tenant.edge.nat]]
type = "dnat"
in = "wan"
proto = "udp"
dport = "5000-5010"
to = "[2001:db8:1::10]:53"
hairpin = true
[[tenant.edge.nat]]
type = "netmap"
out = "wan"
prefix = "192.0.2.0/28"
to = "203.0.113.16/28"
`)
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := Parse("f.toml", []byte(s))
		if err != nil {
			return
		}
		for _, tn := range cfg.Tenants {
			for _, r := range tn.Policy.Rules {
				if !r.V4 && !r.V6 {
					t.Fatalf("accepted rule %s matches no family", r.ID)
				}
			}
		}
	})
}
