//go:build kernel

package policy

import (
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestNATKinds proves snat, netmap (both directions) and hairpin with
// traffic, reusing one lab and changing the policy between cases.
func TestNATKinds(t *testing.T) {
	l := newLab(t)
	serve(t, l.wan, "203.0.113.2:80")
	serve(t, l.lan, "192.0.2.10:80")

	t.Run("snat to an address", func(t *testing.T) {
		route(t, l.wan, "203.0.113.5/32", "203.0.113.1")
		mustApply(t, tenantFrom(t, labBase+`
[[tenant.fw.nat]]
type = "snat"
out = "wan"
saddr = "192.0.2.0/24"
to = "203.0.113.5"
`), l.fw)
		src, err := connect(l.lan, "203.0.113.2:80")
		if err != nil || src != "203.0.113.5" {
			t.Fatalf("wan saw %q (%v), want 203.0.113.5", src, err)
		}
	})
	t.Run("netmap translates the prefix both ways", func(t *testing.T) {
		route(t, l.wan, "203.0.113.64/28", "203.0.113.1")
		mustApply(t, tenantFrom(t, labBase+`
[[tenant.fw.rule]]
name = "to-mapped"
from = "wan"
to = "lan"
proto = "tcp"
daddr = "192.0.2.0/28"
dport = 80
action = "accept"
[[tenant.fw.nat]]
type = "netmap"
out = "wan"
prefix = "192.0.2.0/28"
to = "203.0.113.64/28"
`), l.fw)
		src, err := connect(l.lan, "203.0.113.2:80")
		if err != nil || src != "203.0.113.74" {
			t.Fatalf("wan saw %q (%v), want 203.0.113.74 (192.0.2.10 mapped)", src, err)
		}
		src, err = connect(l.wan, "203.0.113.74:80")
		if err != nil || src != "203.0.113.2" {
			t.Fatalf("inbound to the mapped address: %q %v", src, err)
		}
		if n := counterOf(t, l.fw, "to-mapped"); n == 0 {
			t.Fatal("inbound netmap flow did not pass the to-mapped rule")
		}
	})
	t.Run("hairpin reaches the port-forward by the public address", func(t *testing.T) {
		mustApply(t, tenantFrom(t, labBase+`
[[tenant.fw.nat]]
type = "masquerade"
out = "wan"
[[tenant.fw.nat]]
name = "web"
type = "dnat"
in = "wan"
proto = "tcp"
dport = 8080
to = "192.0.2.10:80"
hairpin = true
`), l.fw)
		src, err := connect(l.lan, "203.0.113.1:8080")
		if err != nil {
			t.Fatal(err)
		}
		if src != "192.0.2.1" {
			t.Fatalf("lan server saw %s, want the router 192.0.2.1 (reflected flows are masqueraded)", src)
		}
		if src, err := connect(l.wan, "203.0.113.1:8080"); err != nil || src != "203.0.113.2" {
			t.Fatalf("port-forward from wan: %q %v", src, err)
		}
	})
}

// TestIPv6 filters IPv6 forwarding with a v6-only rule; neighbour
// discovery works because the hygiene rules admit it.
func TestIPv6(t *testing.T) {
	l := newLab(t)
	addrUp(t, nl(t, l.fw), "lan0", "2001:db8:1::1/64")
	addrUp(t, nl(t, l.fw), "wan0", "2001:db8:2::1/64")
	addrUp(t, nl(t, l.lan), "eth0", "2001:db8:1::10/64")
	addrUp(t, nl(t, l.wan), "eth0", "2001:db8:2::2/64")
	route(t, l.lan, "::/0", "2001:db8:1::1")
	route(t, l.wan, "2001:db8:1::/64", "2001:db8:2::1")
	route(t, l.wan, "192.0.2.0/24", "203.0.113.1")
	sysctl(t, l.fw, "net/ipv6/conf/all/forwarding", "1")
	serve(t, l.lan, "[::]:80")
	mustApply(t, tenantFrom(t, labBase+`
[[tenant.fw.rule]]
name = "web6"
from = "wan"
to = "lan"
proto = "tcp"
dport = 80
daddr = "2001:db8:1::10"
action = "accept"
`), l.fw)
	src, err := connect(l.wan, "[2001:db8:1::10]:80")
	if err != nil || src != "2001:db8:2::2" {
		t.Logf("%s", nft(t, l.fwN, "list", "ruleset"))
		out, _ := exec.Command("ip", "netns", "exec", l.wanN, "ip", "-6", "neigh").CombinedOutput()
		t.Logf("%s", out)
		out, _ = exec.Command("ip", "netns", "exec", l.lanN, "ip", "-6", "addr").CombinedOutput()
		t.Logf("%s", out)
		t.Fatalf("v6 allowed flow: %q %v", src, err)
	}
	if _, err := connect(l.wan, "192.0.2.10:80"); !isTimeout(err) {
		t.Fatalf("v4 flow must not match the v6-only rule: %v", err)
	}
	out := nft(t, l.fwN, "list", "chain", "inet", TableName, "fw_wan_lan")
	if !strings.Contains(out, "ip6 daddr 2001:db8:1::10") {
		t.Fatalf("kernel chain:\n%s", out)
	}
}

// TestOverlappingTenants runs two firewalls whose LANs use the same
// subnet, masqueraded to different WAN addresses, at the same time.
func TestOverlappingTenants(t *testing.T) {
	l := newLab(t) // tenant A: lan 192.0.2.10 via 203.0.113.1
	p := l.prefix + "b"
	fwB, lanB := newNS(t, p+"fw"), newNS(t, p+"lan")
	veth(t, fwB, "lan0", lanB, "eth0")
	veth(t, fwB, "wan0", l.wan, "eth1")
	addrUp(t, nl(t, fwB), "lan0", "192.0.2.1/24")
	addrUp(t, nl(t, fwB), "wan0", "198.51.100.1/24")
	addrUp(t, nl(t, lanB), "eth0", "192.0.2.10/24")
	addrUp(t, nl(t, l.wan), "eth1", "198.51.100.2/24")
	route(t, lanB, "0.0.0.0/0", "192.0.2.1")
	sysctl(t, fwB, "net/ipv4/ip_forward", "1")
	serve(t, l.wan, "0.0.0.0:80")
	serve(t, l.lan, "192.0.2.10:81")
	serve(t, lanB, "192.0.2.10:81")

	masq := `
[[tenant.fw.nat]]
type = "masquerade"
out = "wan"
`
	mustApply(t, tenantFrom(t, labBase+masq), l.fw)
	mustApply(t, tenantFrom(t, strings.ReplaceAll(labBase, "203.0.113.1/24", "198.51.100.1/24")+masq), fwB)

	if src, err := connect(l.lan, "203.0.113.2:80"); err != nil || src != "203.0.113.1" {
		t.Fatalf("tenant A: %q %v", src, err)
	}
	if src, err := connect(lanB, "198.51.100.2:80"); err != nil || src != "198.51.100.1" {
		t.Fatalf("tenant B: %q %v", src, err)
	}
	// Neither LAN can reach the other: B's WAN address has no port-forward
	// and the WAN host does not route between them.
	if _, err := connect(l.lan, "198.51.100.1:81"); err == nil {
		t.Fatal("tenant A reached tenant B")
	}
	if _, err := connect(lanB, "203.0.113.1:81"); err == nil {
		t.Fatal("tenant B reached tenant A")
	}
}

// TestMergedRules proves that unnamed rules compiled into one verdict-map
// lookup keep their individual verdicts.
func TestMergedRules(t *testing.T) {
	l := newLab(t)
	route(t, l.wan, "192.0.2.0/24", "203.0.113.1")
	for _, p := range []string{"80", "81", "82"} {
		serve(t, l.wan, "203.0.113.2:"+p)
	}
	tn := tenantFrom(t, labBase+`
[[tenant.fw.rule]]
from = "lan"
to = "wan"
proto = "tcp"
daddr = "203.0.113.2"
dport = 80
action = "reject"
[[tenant.fw.rule]]
from = "lan"
to = "wan"
proto = "tcp"
daddr = "203.0.113.2"
dport = 81
action = "drop"
[[tenant.fw.rule]]
from = "lan"
to = "wan"
proto = "udp"
daddr = "203.0.113.0/24"
dport = "1-1000"
action = "drop"
`)
	if rs := Compile(tn); !strings.Contains(rs.String(), "_merged/fw_lan_wan/1: 3 rules") {
		t.Fatalf("rules were not merged:\n%s", rs)
	}
	mustApply(t, tn, l.fw)
	if _, err := connect(l.lan, "203.0.113.2:80"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("port 80: want reset, got %v", err)
	}
	if _, err := connect(l.lan, "203.0.113.2:81"); !isTimeout(err) {
		t.Fatalf("port 81: want timeout, got %v", err)
	}
	if _, err := connect(l.lan, "203.0.113.2:82"); err != nil {
		t.Fatalf("port 82 (default accept): %v", err)
	}
	cs, err := ReadCounters(l.fw, NewRuleIndex(Compile(tn)))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.ID == "_merged/fw_lan_wan/1" {
			if len(c.Members) != 3 || c.ConfigRules != 3 || c.Packets < 3 {
				t.Fatalf("merged group counter: %+v", c)
			}
			return
		}
	}
	t.Fatalf("no merged group in %+v", cs)
}
