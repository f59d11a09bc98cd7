package explain

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/testkit"
)

func loadFixture(t *testing.T) *config.Config {
	t.Helper()
	path, _ := filepath.Abs("testdata/fw.toml")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func q(in, src, dst string, proto uint8, dport uint16) Query {
	return Query{Tenant: "fw", In: in, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Proto: proto, DPort: dport}
}

func u8(v uint8) *uint8 { return &v }

// Each case names the verdict, the identity of the deciding rule (or ""
// when no rule decides) and, optionally, the address the packet leaves
// with and its output interface.
func TestVerdicts(t *testing.T) {
	cfg := loadFixture(t)
	cases := []struct {
		name    string
		q       Query
		verdict string
		rule    string
		after   string // "src>dst:port"
		out     string
		with    string
	}{
		{"lan to wan masqueraded", q("lan0", "192.0.2.10", "203.0.113.2", 6, 80), Accept, "_default/fw_lan_wan", "203.0.113.1>203.0.113.2:80", "wan0", ""},
		{"lan v6 to wan masqueraded too (family-agnostic rule)", q("lan0", "2001:db8:1::10", "2001:db8:2::2", 6, 80), Accept, "_default/fw_lan_wan", "2001:db8:2::1>2001:db8:2::2:80", "wan0", ""},
		{"wan to lan dropped by default", q("wan0", "203.0.113.2", "192.0.2.10", 6, 80), Drop, "_default/fw_wan_lan", "", "", ""},
		{"port-forward DNAT", q("wan0", "203.0.113.2", "203.0.113.1", 6, 8080), Accept, "web", "203.0.113.2>192.0.2.10:80", "lan0", ""},
		{"port-forward to dmz", q("wan0", "203.0.113.2", "203.0.113.1", 6, 2525), Accept, "mail", "203.0.113.2>198.51.100.11:25", "dmz0", ""},
		{"hairpin", q("lan0", "192.0.2.10", "203.0.113.1", 6, 8080), Accept, "web", "192.0.2.1>192.0.2.10:80", "lan0", ""},
		{"merged member 80", q("wan0", "203.0.113.2", "198.51.100.10", 6, 80), Accept, "_merged/fw_wan_dmz/1", "", "dmz0", ""},
		{"merged member 443", q("wan0", "203.0.113.2", "198.51.100.10", 6, 443), Accept, "_merged/fw_wan_dmz/1", "", "dmz0", ""},
		{"merged member reject 25", q("wan0", "203.0.113.2", "198.51.100.11", 6, 25), Reject, "_merged/fw_wan_dmz/1", "", "", "tcp reset"},
		{"merged udp 53", q("wan0", "203.0.113.2", "198.51.100.10", 17, 53), Accept, "_merged/fw_wan_dmz/1", "", "dmz0", ""},
		{"udp rejected after the group", q("wan0", "203.0.113.2", "198.51.100.10", 17, 54), Reject, "dmz-udp-reject", "", "", "icmp port-unreachable"},
		{"wan to dmz other port", q("wan0", "203.0.113.2", "198.51.100.10", 6, 81), Drop, "_default/fw_wan_dmz", "", "", ""},
		{"blocked set member", q("wan0", "203.0.113.100", "198.51.100.10", 6, 80), Drop, "blocklist", "", "", ""},
		{"blocked single", q("wan0", "203.0.113.66", "203.0.113.1", 6, 22), Drop, "blocklist", "", "", ""},
		{"blocked v6", q("wan0", "2001:db8:2::66", "2001:db8:1::10", 6, 80), Drop, "blocklist", "", "", ""},
		{"ssh from admin", q("wan0", "203.0.113.7", "203.0.113.1", 6, 22), Accept, "ssh-admins", "", "", ""},
		{"ssh from admin v6", q("wan0", "2001:db8:2::7", "2001:db8:2::1", 6, 22), Accept, "ssh-admins", "", "", ""},
		{"ssh from other: wan->self reject", q("wan0", "203.0.113.2", "203.0.113.1", 6, 22), Reject, "_default/in_wan", "", "", "tcp reset"},
		{"udp to self from wan rejected with icmp", q("wan0", "203.0.113.2", "203.0.113.1", 17, 5000), Reject, "_default/in_wan", "", "", "icmp port-unreachable"},
		{"lan to self dropped", q("lan0", "192.0.2.10", "192.0.2.1", 6, 22), Drop, "_default/in_lan", "", "", ""},
		{"ping self", q("lan0", "192.0.2.10", "192.0.2.1", 1, 0), Accept, "ping-self", "", "", ""},
		{"ping6 self", q("wan0", "2001:db8:2::2", "2001:db8:2::1", 58, 0), Accept, "ping6-self", "", "", ""},
		{"ping self on another interface's address", q("wan0", "203.0.113.2", "192.0.2.1", 1, 0), Accept, "ping-self", "", "", ""},
		{"v6 web rule", q("wan0", "2001:db8:2::2", "2001:db8:1::10", 6, 80), Accept, "web6", "", "lan0", ""},
		{"v6 web rule wrong port", q("wan0", "2001:db8:2::2", "2001:db8:1::10", 6, 81), Drop, "_default/fw_wan_lan", "", "", ""},
		{"lan to dmz named", q("lan0", "192.0.2.10", "198.51.100.10", 6, 443), Accept, "lan-web-dmz", "", "dmz0", ""},
		{"lan to dmz rejected default", q("lan0", "192.0.2.10", "198.51.100.10", 6, 22), Reject, "_default/fw_lan_dmz", "", "", "tcp reset"},
		{"lan to dmz udp rejected icmp", q("lan0", "192.0.2.10", "198.51.100.10", 17, 22), Reject, "_default/fw_lan_dmz", "", "", "icmp port-unreachable"},
		{"dmz to lan dropped by rule", q("dmz0", "198.51.100.10", "192.0.2.10", 6, 80), Drop, "dmz-to-lan-drop", "", "", ""},
		{"established wan to lan", Query{Tenant: "fw", In: "wan0", Src: netip.MustParseAddr("203.0.113.2"), Dst: netip.MustParseAddr("192.0.2.10"), Proto: 6, DPort: 80, State: "established"}, Accept, "_ct-state", "", "lan0", ""},
		{"invalid dropped", Query{Tenant: "fw", In: "wan0", Src: netip.MustParseAddr("203.0.113.2"), Dst: netip.MustParseAddr("192.0.2.10"), Proto: 6, DPort: 80, State: "invalid"}, Drop, "_invalid", "", "", ""},
		{"icmp error accepted by hygiene", Query{Tenant: "fw", In: "wan0", Src: netip.MustParseAddr("203.0.113.2"), Dst: netip.MustParseAddr("192.0.2.10"), Proto: 1, ICMPType: u8(3)}, Accept, "_icmp", "", "lan0", ""},
		{"policy routing: upper LAN via table alt", q("lan1", "192.0.2.130", "203.0.113.9", 6, 80), Reject, "_default/fw_lan_dmz", "", "", "tcp reset"},
		{"blackhole route", q("lan0", "192.0.2.10", "198.18.0.5", 6, 80), Drop, "", "", "", ""},
		{"unreachable route", q("lan0", "192.0.2.10", "198.18.1.5", 6, 80), Reject, "", "", "", "icmp host-unreachable"},
		{"self to wan", q(InSelf, "203.0.113.1", "203.0.113.2", 6, 80), Accept, "_default/out_wan", "", "wan0", ""},
		{"forced out interface", Query{Tenant: "fw", In: "lan0", Out: "dmz0", Src: netip.MustParseAddr("192.0.2.10"), Dst: netip.MustParseAddr("203.0.113.2"), Proto: 6, DPort: 80}, Reject, "_default/fw_lan_dmz", "", "", "tcp reset"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, err := Explain(cfg, c.q)
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			_ = tr.WriteText(&text)
			got := ""
			if tr.Rule != nil {
				got = tr.Rule.ID
			}
			if tr.Verdict != c.verdict || got != c.rule || tr.RejectWith != c.with {
				t.Fatalf("got %s by %q (%s), want %s by %q (%s)\n%s", tr.Verdict, got, tr.RejectWith, c.verdict, c.rule, c.with, text.String())
			}
			if c.after != "" {
				a := tr.After.Src.String() + ">" + netip.AddrPortFrom(tr.After.Dst, tr.After.DPort).String()
				if strings.Contains(tr.After.Dst.String(), ":") {
					a = tr.After.Src.String() + ">" + tr.After.Dst.String() + ":" + itoa(tr.After.DPort)
				}
				if a != c.after {
					t.Errorf("leaves as %s, want %s\n%s", a, c.after, text.String())
				}
			}
			if c.out != "" && tr.OutIf != c.out {
				t.Errorf("out %q, want %q\n%s", tr.OutIf, c.out, text.String())
			}
		})
	}
}

func itoa(p uint16) string { return netip.AddrPortFrom(netip.IPv4Unspecified(), p).String()[8:] }

// The deciding rule carries the identity of the merged member that
// matched and its line in the file.
func TestMergedMemberAndPosition(t *testing.T) {
	cfg := loadFixture(t)
	tr, err := Explain(cfg, q("wan0", "203.0.113.2", "198.51.100.11", 6, 25))
	if err != nil {
		t.Fatal(err)
	}
	r := tr.Rule
	if r == nil || r.Member == "" || r.Key != "tenant.fw.rule[6]" || r.Line != 138 || !strings.HasSuffix(r.File, "fw.toml") {
		t.Fatalf("rule ref %+v", r)
	}
	if m := cfg.Tenants[0].Policy.Rules[6]; m.ID != r.Member {
		t.Fatalf("member %q, want %q", r.Member, m.ID)
	}
}

func TestDefaultPosition(t *testing.T) {
	cfg := loadFixture(t)
	tr, err := Explain(cfg, q("lan0", "192.0.2.10", "203.0.113.2", 17, 53))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Rule == nil || tr.Rule.Key != "tenant.fw.policy[0]" || tr.Rule.Line != 39 {
		t.Fatalf("default ref %+v", tr.Rule)
	}
	tr, _ = Explain(cfg, q("wan0", "203.0.113.2", "192.0.2.10", 17, 53))
	if tr.Rule == nil || tr.Rule.Key != "" || !strings.Contains(tr.Rule.Comment, "built-in default") {
		t.Fatalf("built-in default ref %+v", tr.Rule)
	}
}

func TestStepsSayWhyNot(t *testing.T) {
	cfg := loadFixture(t)
	tr, err := Explain(cfg, q("wan0", "203.0.113.2", "198.51.100.10", 6, 81))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"blocklist":            "saddr 203.0.113.2 is not in set @blocked_v4",
		"_ct-state":            "ct state is new",
		"_dispatch":            "",
		"_merged/fw_wan_dmz/1": "tcp . 198.51.100.10 . 81 is not in the map",
	}
	seen := map[string]bool{}
	for _, s := range tr.Steps {
		if w, ok := want[s.Rule]; ok && !seen[s.Rule] && w != "" {
			seen[s.Rule] = true
			if s.Matched || s.Reason != w {
				t.Errorf("step %s: matched=%v reason %q, want %q", s.Rule, s.Matched, s.Reason, w)
			}
		}
	}
	if len(seen) != 3 {
		t.Fatalf("steps %+v", tr.Steps)
	}
}

func TestRoutePosition(t *testing.T) {
	cfg := loadFixture(t)
	tr, err := Explain(cfg, q("lan1", "192.0.2.130", "203.0.113.9", 17, 53))
	if err != nil {
		t.Fatal(err)
	}
	r := tr.Route
	if r == nil || r.Table != "alt" || r.Dev != "dmz0" || r.Via.String() != "198.51.100.10" || r.Ref == nil || r.Ref.Key != "tenant.fw.route[2]" || r.Ref.Line == 0 {
		t.Fatalf("route %+v ref %+v", r, r.Ref)
	}
}

func TestJSON(t *testing.T) {
	cfg := loadFixture(t)
	tr, err := Explain(cfg, q("wan0", "203.0.113.2", "203.0.113.1", 6, 8080))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Verdict string `json:"verdict"`
		NAT     []struct {
			Kind  string `json:"kind"`
			After Tuple  `json:"after"`
		} `json:"nat"`
		Route struct {
			Dev string `json:"dev"`
		} `json:"route"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if v.Verdict != "accept" || len(v.NAT) != 1 || v.NAT[0].Kind != "dnat" || v.NAT[0].After.DPort != 80 || v.Route.Dev != "lan0" {
		t.Fatalf("json %s", b)
	}
}

func TestQueryErrors(t *testing.T) {
	cfg := loadFixture(t)
	for _, c := range []struct {
		q   Query
		err string
	}{
		{Query{Tenant: "nope"}, `no tenant "nope"`},
		{q("eth9", "192.0.2.10", "203.0.113.2", 6, 80), `tenant "fw" has no interface "eth9"`},
		{q("lan0", "192.0.2.10", "2001:db8:2::2", 6, 80), "different families"},
		{q("lan0", "192.0.2.10", "203.0.113.2", 6, 0), "needs a destination port"},
		{q("lan0", "192.0.2.10", "203.0.113.2", 1, 80), "ports need proto"},
		{Query{Tenant: "fw", In: "lan0", Src: netip.MustParseAddr("192.0.2.10"), Dst: netip.MustParseAddr("203.0.113.2"), Proto: 6, DPort: 1, State: "bogus"}, "unknown ct state"},
	} {
		_, err := Explain(cfg, c.q)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%+v: err %v, want %q", c.q, err, c.err)
		}
	}
}

// Without a policy nothing is filtered, and forwarding off drops.
func TestNoPolicyAndForwardingOff(t *testing.T) {
	cfg := testkit.Config(t, `
[tenant.r.interface.a]
device = "x1"
addresses = ["192.0.2.1/24"]
[tenant.r.interface.b]
device = "x2"
addresses = ["203.0.113.1/24"]
`)
	tr, err := Explain(cfg, Query{Tenant: "r", In: "a", Src: netip.MustParseAddr("192.0.2.10"), Dst: netip.MustParseAddr("203.0.113.2"), Proto: 17, DPort: 53})
	if err != nil || tr.Verdict != Accept || tr.OutIf != "b" {
		t.Fatalf("%+v %v", tr, err)
	}
	cfg = testkit.Config(t, `
[tenant.r]
forwarding = false
[tenant.r.interface.a]
device = "x1"
addresses = ["192.0.2.1/24"]
[tenant.r.interface.b]
device = "x2"
addresses = ["203.0.113.1/24"]
`)
	tr, err = Explain(cfg, Query{Tenant: "r", In: "a", Src: netip.MustParseAddr("192.0.2.10"), Dst: netip.MustParseAddr("203.0.113.2"), Proto: 17, DPort: 53})
	if err != nil || tr.Verdict != Drop || !strings.Contains(tr.Reason, "forwarding is off") {
		t.Fatalf("%+v %v", tr, err)
	}
}

func TestNetmapAndSnat(t *testing.T) {
	cfg := testkit.Config(t, `
[tenant.n.interface.lan0]
device = "x1"
addresses = ["192.0.2.1/24"]
[tenant.n.interface.wan0]
device = "x2"
addresses = ["203.0.113.1/24"]
[tenant.n.zone.lan]
interfaces = ["lan0"]
[tenant.n.zone.wan]
interfaces = ["wan0"]
[[tenant.n.policy]]
from = "lan"
to = "wan"
action = "accept"
[[tenant.n.rule]]
name = "to-mapped"
from = "wan"
to = "lan"
proto = "tcp"
daddr = "192.0.2.0/28"
dport = 80
action = "accept"
[[tenant.n.nat]]
type = "snat"
out = "wan"
saddr = "192.0.2.128/25"
to = "203.0.113.5"
[[tenant.n.nat]]
type = "netmap"
out = "wan"
prefix = "192.0.2.0/28"
to = "203.0.113.64/28"
`)
	check := func(qq Query, verdict, after string) {
		t.Helper()
		qq.Tenant = "n"
		tr, err := Explain(cfg, qq)
		if err != nil {
			t.Fatal(err)
		}
		got := tr.After.Src.String() + ">" + tr.After.Dst.String()
		if tr.Verdict != verdict || got != after {
			var b bytes.Buffer
			_ = tr.WriteText(&b)
			t.Fatalf("%s %s, want %s %s\n%s", tr.Verdict, got, verdict, after, b.String())
		}
	}
	check(q("lan0", "192.0.2.200", "203.0.113.2", 6, 80), Accept, "203.0.113.5>203.0.113.2")
	check(q("lan0", "192.0.2.10", "203.0.113.2", 6, 80), Accept, "203.0.113.74>203.0.113.2")
	check(q("wan0", "203.0.113.2", "203.0.113.74", 6, 80), Accept, "203.0.113.2>192.0.2.10")
	check(q("wan0", "203.0.113.2", "203.0.113.74", 6, 81), Drop, "203.0.113.2>192.0.2.10")
}

func TestTextRendering(t *testing.T) {
	cfg := loadFixture(t)
	tr, err := Explain(cfg, q("lan0", "192.0.2.10", "203.0.113.1", 6, 8080))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tr.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"prerouting", "nat_prerouting", "dnat", "route", "hook_forward", "masquerade", "verdict", "ACCEPT", "fw.toml:"} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
}

func TestMapPrefix(t *testing.T) {
	got := mapPrefix(netip.MustParseAddr("192.0.2.10"), netip.MustParsePrefix("203.0.113.64/28"))
	if got.String() != "203.0.113.74" {
		t.Fatal(got)
	}
	got = mapPrefix(netip.MustParseAddr("2001:db8:1::abcd"), netip.MustParsePrefix("2001:db8:9::/64"))
	if got.String() != "2001:db8:9::abcd" {
		t.Fatal(got)
	}
}
