//go:build kernel

package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testkit/servicekit"
	"github.com/fwdproject/fwd/internal/testnet"
)

// One tenant of the overlap test: %[1]s the tenant, %[2]s its LAN NIC,
// %[3]s the address its DNS answers for nas.lan. Both tenants have the
// same LAN subnet, router address and DHCP range.
const overlapTenant = `
[tenant.%[1]s.interface.lan]
device = "%[2]s"
addresses = ["192.0.2.1/24"]

[tenant.%[1]s.zone.lan]
interfaces = ["lan"]

[tenant.%[1]s.dhcp.lan]
range = ["192.0.2.100", "192.0.2.150"]
lease_time = "10m"

[tenant.%[1]s.dns]
interfaces = ["lan"]
domain = "lan"
[tenant.%[1]s.dns.names]
"nas.lan" = ["%[3]s"]
`

// Two tenants with the same LAN range each run their own dnsmasq in their
// own namespace: each LAN host gets its lease from its own tenant (its
// MAC is in that tenant's lease file only, the DHCP admission rule of
// that tenant counted its requests) and resolves the shared local name
// to its own tenant's answer.
func TestServicesOverlappingTenants(t *testing.T) {
	testkit.Require(t)
	tenants := []struct{ name, nic, host, nas string }{
		{"red", "eth2", "redhost", "192.0.2.21"},
		{"blue", "eth3", "bluehost", "192.0.2.22"},
	}
	var conf strings.Builder
	for _, tn := range tenants {
		testnet.Host(t, tn.host)
		testnet.NIC(t, tn.nic, tn.host, "eth0", netip.Addr{})
		fmt.Fprintf(&conf, overlapTenant, tn.name, tn.nic, tn.nas)
	}
	t.Cleanup(func() { testkit.Fwd(t, "teardown", "-y", "--force") })
	cfg := filepath.Join(t.TempDir(), "fwd.toml")
	writeFile(t, cfg, conf.String())

	d := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "svc-overlap"})
	t.Cleanup(func() {
		for _, tn := range tenants {
			for _, l := range dumpLog(t, "/run/fwd/"+tn.name+"/dnsmasq/dnsmasq.log") {
				t.Logf("%s dnsmasq: %s", tn.name, l)
			}
		}
	})

	mac := map[string]string{} // tenant → its LAN host's MAC
	for _, tn := range tenants {
		// Both tenants really overlap: the same address on both LANs.
		if got := testnet.Addrs(t, tn.name)["lan"].GlobalAddrs(); !slices.Equal(got, []string{"192.0.2.1/24"}) {
			t.Fatalf("%s: lan has %v", tn.name, got)
		}
		l := servicekit.Lease(t, tn.host, nil)
		lo, hi := netip.MustParseAddr("192.0.2.100"), netip.MustParseAddr("192.0.2.150")
		if a := l.Address.Addr(); l.Address.Bits() != 24 || a.Less(lo) || hi.Less(a) ||
			l.Router != netip.MustParseAddr("192.0.2.1") || !slices.Equal(l.DNS, []netip.Addr{netip.MustParseAddr("192.0.2.1")}) {
			t.Fatalf("%s: lease %+v", tn.host, l)
		}
		hostIf := testnet.Addrs(t, tn.host)["eth0"]
		if !slices.Contains(hostIf.GlobalAddrs(), l.Address.String()) {
			t.Fatalf("%s: eth0 has %v, not the lease %s", tn.host, hostIf.GlobalAddrs(), l.Address)
		}
		mac[tn.name] = hostIf.Address
		got, err := servicekit.Resolve(t, tn.host, l.DNS[0], "nas.lan")
		if err != nil || !slices.Equal(got, []string{tn.nas}) {
			t.Fatalf("%s: nas.lan resolves to %v (%v), want its own tenant's %s", tn.host, got, err, tn.nas)
		}
	}

	// Each tenant's own firewall admitted its own host's DHCP and DNS.
	for _, tn := range tenants {
		c := ruleCounters(t, tn.name)
		for _, rule := range []string{"_svc/dhcp: dhcp.lan: requests", "_svc/dns: dns.interfaces: lan"} {
			if c[rule] == 0 {
				t.Errorf("%s: rule %q never matched (rules: %v)", tn.name, rule, c)
			}
		}
	}

	// Two dnsmasq processes, each in its own tenant's namespace, each
	// holding only its own host's lease.
	st := serviceStatus(t, d)
	pids := map[string]int{}
	nsIno := map[string]uint64{}
	for _, tn := range tenants {
		sv := tenantServices(t, st, tn.name)
		if sv.DNSMasq == nil || !sv.DNSMasq.Running || sv.DNSMasq.PID == 0 || sv.Leases != 1 {
			t.Fatalf("%s: services status %+v (dnsmasq %+v)", tn.name, sv, sv.DNSMasq)
		}
		pid := sv.DNSMasq.PID
		pids[tn.name] = pid
		procNS, err := os.Stat(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			t.Fatal(err)
		}
		tenantNS, err := os.Stat("/run/netns/" + tn.name)
		if err != nil {
			t.Fatal(err)
		}
		ino := procNS.Sys().(*syscall.Stat_t).Ino
		if ino != tenantNS.Sys().(*syscall.Stat_t).Ino {
			t.Errorf("%s: dnsmasq (pid %d) is not in the tenant's namespace", tn.name, pid)
		}
		nsIno[tn.name] = ino
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.Contains(string(cmdline), "/run/fwd/"+tn.name+"/dnsmasq/dnsmasq.conf") {
			t.Errorf("%s: dnsmasq (pid %d) runs %q (%v)", tn.name, pid, cmdline, err)
		}
		leases, err := os.ReadFile("/run/fwd/" + tn.name + "/dnsmasq/dnsmasq.leases")
		if err != nil {
			t.Fatal(err)
		}
		for _, other := range tenants {
			has := strings.Contains(string(leases), mac[other.name])
			if want := other.name == tn.name; has != want {
				t.Errorf("%s: lease file holds %s's host %v, want %v:\n%s", tn.name, other.name, has, want, leases)
			}
		}
	}
	if pids["red"] == pids["blue"] || nsIno["red"] == nsIno["blue"] {
		t.Fatalf("one dnsmasq or one namespace for both tenants: pids %v, namespaces %v", pids, nsIno)
	}

	d.Stop(t)
	if out, _, code := testkit.Fwd(t, "teardown", "-y"); code != 0 || strings.Count(out, "stop-dnsmasq") != 2 {
		t.Fatalf("teardown: %d\n%s", code, out)
	}
	for tenant, pid := range pids {
		if !processGone(pid) {
			t.Errorf("%s: dnsmasq (pid %d) left running after teardown", tenant, pid)
		}
	}
}
