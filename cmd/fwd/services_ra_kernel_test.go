//go:build kernel

package main

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
)

// The RA test's tenant: an IPv6-only LAN, router advertisements every 4 s
// (the shortest interval the config allows), echo requests to the
// router admitted so the host can prove its address and route.
const raConfig = `
[tenant.six.interface.lan]
device = "eth2"
addresses = ["2001:db8:1::1/64"]

[tenant.six.zone.lan]
interfaces = ["lan"]

[[tenant.six.rule]]
from = "lan"
to = "self"
proto = "icmpv6"
icmp_type = ["echo-request"]
action = "accept"

[tenant.six.ra.lan]
prefixes = ["2001:db8:1::/64"]
interval = "4s"
lifetime = "10m"
`

// ip6Route is the part of `ip -j -6 route` the RA test reads.
type ip6Route struct {
	Dst      string `json:"dst"`
	Gateway  string `json:"gateway"`
	Dev      string `json:"dev"`
	Protocol string `json:"protocol"`
	Expires  int    `json:"expires"`
}

// An IPv6 LAN host (not forwarding, accept_ra and autoconf on) learns
// from the tenant's router advertisements: an address in the advertised
// prefix and a default route via the tenant's link-local address with
// the configured router lifetime, and reaches the router's global
// address through them.
func TestServicesRouterAdvertisement(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "sixhost")
	testnet.NIC(t, "eth2", "sixhost", "eth0", netip.Addr{})
	// A host, not a router: the kernel then takes RAs and autoconfigures.
	for _, kv := range []string{"forwarding=0", "accept_ra=1", "autoconf=1"} {
		testnet.MustCmd(t, "sixhost", "sysctl", "-qw", "net.ipv6.conf.eth0."+kv)
	}
	for _, kv := range []string{"forwarding=0", "accept_ra=1", "autoconf=1"} {
		k, v, _ := strings.Cut(kv, "=")
		if got := strings.TrimSpace(testnet.MustCmd(t, "sixhost", "sysctl", "-n", "net.ipv6.conf.eth0."+k)); got != v {
			t.Fatalf("sixhost eth0 %s = %s, want %s", k, got, v)
		}
	}
	t.Cleanup(func() { testkit.Fwd(t, "teardown", "-y", "--force") })
	cfg := filepath.Join(t.TempDir(), "fwd.toml")
	writeFile(t, cfg, raConfig)

	d := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "svc-ra"})
	t.Cleanup(func() {
		for _, l := range dumpLog(t, "/run/fwd/six/dnsmasq/dnsmasq.log") {
			t.Log(l)
		}
	})
	d.Log.Wait(t, 0, "msg=applied")

	// The router's link-local address: the gateway the RA must give.
	var routerLL string
	for _, a := range testnet.Addrs(t, "six")["lan"].AddrInfo {
		if a.Family == "inet6" && a.Scope == "link" {
			routerLL = a.Local
		}
	}
	if routerLL == "" {
		t.Fatalf("tenant lan has no link-local address: %+v", testnet.Addrs(t, "six")["lan"])
	}

	// SLAAC: an address in the advertised /64 and the default route.
	prefix := netip.MustParsePrefix("2001:db8:1::/64")
	var slaac string
	var def []ip6Route
	deadline := time.Now().Add(30 * time.Second)
	for {
		slaac = ""
		for _, a := range testnet.Addrs(t, "sixhost")["eth0"].GlobalAddrs() {
			if p, err := netip.ParsePrefix(a); err == nil && p.Bits() == 64 && prefix.Contains(p.Addr()) {
				slaac = a
			}
		}
		testnet.JSON(t, &def, "", "ip", "-j", "-6", "-n", "sixhost", "route", "show", "default")
		if slaac != "" && len(def) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no SLAAC address (%v) or default route (%+v) from the RA", testnet.Addrs(t, "sixhost")["eth0"].GlobalAddrs(), def)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if len(def) != 1 || def[0].Gateway != routerLL || def[0].Dev != "eth0" || def[0].Protocol != "ra" {
		t.Fatalf("default route %+v, want via the tenant's %s dev eth0 proto ra", def, routerLL)
	}
	// The configured router lifetime (10m), not dnsmasq's default (30m).
	if e := def[0].Expires; e <= 0 || e > 600 {
		t.Fatalf("default route expires in %d s, want the router lifetime of 600 s", e)
	}
	if addr := netip.MustParsePrefix(slaac).Addr(); addr == netip.MustParseAddr("2001:db8:1::1") {
		t.Fatalf("host autoconfigured the router's own address %s", addr)
	}

	if !testnet.WaitPing("sixhost", "2001:db8:1::1", 10*time.Second) {
		t.Fatalf("sixhost (%s) cannot ping6 the router", slaac)
	}
	d.Stop(t)
}
