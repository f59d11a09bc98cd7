//go:build kernel

package main

import (
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testkit/servicekit"
	"github.com/fwdproject/fwd/internal/testnet"
)

// The prefix delegation tenant: the WAN asks for a /56, the LAN is
// numbered from its second /64 and advertises it; the IPv6 default route
// is static, via the provider's link-local address (the provider here
// sends no RAs).
const pdConfig = `
[tenant.pd.interface.wan]
device = "eth1"
dhcp6 = true
dhcp6_pd = 56

[tenant.pd.interface.lan]
device = "eth2"
prefix_from = "wan"
prefix_subnet = 1

[tenant.pd.zone.wan]
interfaces = ["wan"]
[tenant.pd.zone.lan]
interfaces = ["lan"]

[[tenant.pd.policy]]
from = "lan"
to = "wan"
action = "accept"

[[tenant.pd.route]]
to = "::/0"
via = "fe80::1"
dev = "wan"

[tenant.pd.ra.lan]
interval = "4s"
lifetime = "10m"
`

// The provider delegates a /56 to the daemon's DHCPv6 client: the LAN
// gets ::1 of its /64, the LAN host autoconfigures from the tenant's RA
// and reaches the provider's network, routed (no NAT), with its own
// address. The provider renumbers: at the next renewal, without a
// reload, the LAN address, the RA and the host follow.
func TestServicesDelegatedPrefix(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "isp")
	testnet.Host(t, "pdhost")
	testnet.NIC(t, "eth1", "isp", "isp0", netip.Addr{})
	testnet.NIC(t, "eth2", "pdhost", "eth0", netip.Addr{})
	t.Cleanup(func() { testkit.Fwd(t, "teardown", "-y", "--force") })
	for _, a := range []string{"fe80::1/64", "2001:db8:100::1/64"} {
		testnet.MustCmd(t, "", "ip", "-n", "isp", "addr", "add", a, "dev", "isp0", "nodad")
	}
	testnet.MustCmd(t, "", "ip", "-n", "isp", "addr", "add", "2001:db8:200::1/128", "dev", "lo")
	for _, kv := range []string{"forwarding=0", "accept_ra=1", "autoconf=1"} {
		testnet.MustCmd(t, "pdhost", "sysctl", "-qw", "net.ipv6.conf.eth0."+kv)
	}
	// The provider routes each delegated prefix to the box's address.
	wanAddr := "2001:db8:100::10"
	srv := servicekit.ServePD(t, "isp", "isp0", netip.MustParseAddr(wanAddr),
		netip.MustParsePrefix("2001:db8:f00::/56"), 2*time.Minute, 3*time.Second)
	testnet.MustCmd(t, "", "ip", "-n", "isp", "-6", "route", "add", "2001:db8:f00::/56", "via", wanAddr, "dev", "isp0")
	testnet.MustCmd(t, "", "ip", "-n", "isp", "-6", "route", "add", "2001:db8:f01::/56", "via", wanAddr, "dev", "isp0")

	cfg := filepath.Join(t.TempDir(), "fwd.toml")
	writeFile(t, cfg, pdConfig)
	if out, errOut, code := testkit.Fwd(t, "check", "-c", cfg); code != 0 {
		t.Fatalf("check: %d %s %s", code, out, errOut)
	}
	d := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "svc-pd"})
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range d.Log.Lines() {
				t.Log(l)
			}
		}
	})
	_, n := d.Log.Wait(t, 0, `msg="dhcp lease"`, "tenant=pd", "interface=wan", "family=ipv6")

	follow := func(prefix, lanAddr, hostNet string) {
		t.Helper()
		var host string
		deadline := time.Now().Add(20 * time.Second)
		for host == "" {
			if time.Now().After(deadline) {
				t.Fatalf("no address in %s on the LAN host: %v (tenant lan %v)", hostNet, testnet.Addrs(t, "pdhost")["eth0"],
					testnet.Addrs(t, "pd")["lan"])
			}
			time.Sleep(300 * time.Millisecond)
			for _, a := range testnet.Addrs(t, "pdhost")["eth0"].GlobalAddrs() {
				if p := netip.MustParsePrefix(a); netip.MustParsePrefix(hostNet).Contains(p.Addr()) {
					host = p.Addr().String()
				}
			}
		}
		if g := testnet.Addrs(t, "pd")["lan"].GlobalAddrs(); len(g) != 1 || g[0] != lanAddr {
			t.Fatalf("tenant lan has %v, want %s", g, lanAddr)
		}
		out, _, code := testkit.Fwd(t, "show", "leases", "-j", "--socket", d.Socket, "pd")
		var got []TenantLeases
		if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got) != 1 || len(got[0].WAN) != 1 ||
			got[0].WAN[0].Delegated.String() != prefix || got[0].WAN[0].Address.String() != wanAddr+"/128" {
			t.Fatalf("show leases: %d\n%s", code, out)
		}
		if r := testnet.MustCmd(t, "", "ip", "-n", "pd", "-6", "route", "show", "proto", "243", "type", "unreachable"); !strings.Contains(r, prefix) {
			t.Fatalf("no unreachable route for %s: %q", prefix, r)
		}
		// Routed, not translated: the provider answers the host's own
		// address (once it is past DAD).
		for {
			out, err := testnet.Cmd("pdhost", "ping", "-6", "-c", "1", "-W", "1", "-I", host, "2001:db8:200::1")
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("LAN host %s cannot reach the provider: %v\n%s", host, err, out)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	follow("2001:db8:f00::/56", "2001:db8:f00:1::1/64", "2001:db8:f00:1::/64")
	st := serviceStatus(t, d)

	srv.SetPrefix(netip.MustParsePrefix("2001:db8:f01::/56"))
	d.Log.Wait(t, n, `msg="dhcp lease"`, "tenant=pd", "interface=wan", "family=ipv6", "delegated=2001:db8:f01::/56")
	follow("2001:db8:f01::/56", "2001:db8:f01:1::1/64", "2001:db8:f01:1::/64")
	if after := serviceStatus(t, d); after.Revision != st.Revision || after.PID != st.PID {
		t.Fatalf("the daemon reloaded or restarted: revision %d→%d pid %d→%d", st.Revision, after.Revision, st.PID, after.PID)
	}
	d.Stop(t)
}
