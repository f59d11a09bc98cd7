//go:build kernel

package main

import (
	"encoding/json"
	"fmt"
	"github.com/fwdproject/fwd/internal/testkit/servicekit"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
	"github.com/fwdproject/fwd/mgmt"
	"github.com/fwdproject/fwd/services/dnsmasq"
)

// The services end to end: the real daemon with a config using them. A
// "cloud" dnsmasq gives the tenant's WAN its address and default route
// (dhcp = true) and a DHCPv6 address, the IPv6 default route coming from
// its RAs (dhcp6 = true); the tenant's own dnsmasq gives a LAN host its address,
// router and DNS and answers a local name; the LAN host's traffic is
// masqueraded to the leased address through the learned default route,
// which later applies keep.
const servicesConfig = `
[tenant.edge.interface.wan]
device = "eth1"
dhcp = true
dhcp6 = true

[tenant.edge.interface.lan]
device = "eth2"
addresses = ["192.0.2.1/24"]

[tenant.edge.zone.wan]
interfaces = ["wan"]
[tenant.edge.zone.lan]
interfaces = ["lan"]

[[tenant.edge.policy]]
from = "lan"
to = "wan"
action = "accept"

[[tenant.edge.nat]]
type = "masquerade"
out = "wan"

[tenant.edge.dhcp.lan]
range = ["192.0.2.100", "192.0.2.150"]
lease_time = "10m"

[tenant.edge.dns]
interfaces = ["lan"]
forwarders_from = ["wan"]
domain = "lan"
[tenant.edge.dns.names]
"nas.lan" = ["192.0.2.20"]
`

func TestServicesEndToEnd(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "cloud")
	testnet.Host(t, "lanhost")
	testnet.NIC(t, "eth1", "cloud", "cloud0", netip.Addr{}, "198.51.100.1/24", "2001:db8:100::1/64")
	testnet.NIC(t, "eth2", "lanhost", "eth0", netip.Addr{})
	t.Cleanup(func() { testkit.Fwd(t, "teardown", "-y", "--force") })

	// The cloud's DHCP server (its own supervisor, its own directory).
	cloud := dnsmasq.NewSupervisor(slog.New(slog.DiscardHandler), servicekit.RunDir(t))
	t.Cleanup(cloud.StopAll)
	cc := &dnsmasq.Config{DHCP: []dnsmasq.DHCPRange{{Interface: "cloud0",
		Start: netip.MustParseAddr("198.51.100.50"), End: netip.MustParseAddr("198.51.100.60"),
		Mask: netip.MustParsePrefix("198.51.100.0/24"), LeaseTime: dnsmasq.MinLeaseTime,
		Router: []netip.Addr{netip.MustParseAddr("198.51.100.1")}}},
		RA: []dnsmasq.RA{{Interface: "cloud0", Managed: true,
			Start6: netip.MustParseAddr("2001:db8:100::100"), End6: netip.MustParseAddr("2001:db8:100::1ff"),
			RDNSS: []netip.Addr{netip.MustParseAddr("2001:db8:100::1")}, Interval: 4 * time.Second}},
		// The cloud's resolver: its DHCP names it (option 6 and the
		// DHCPv6 DNS option); the tenant's dnsmasq forwards to it.
		DNS: &dnsmasq.DNS{Interfaces: []string{"cloud0"},
			Local: []dnsmasq.LocalName{{Name: "www.cloud.example", Addrs: []netip.Addr{netip.MustParseAddr("203.0.113.80")}}}}}
	servicekit.Serve(t, cloud, "cloud", cc)
	srv, err := testnet.ServeTCP("cloud", "198.51.100.1:8080", "hello")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	cfg := filepath.Join(t.TempDir(), "fwd.toml")
	writeFile(t, cfg, servicesConfig)
	// plan lists the dnsmasq to start (and changes nothing).
	if out, _, _ := testkit.Fwd(t, "plan", "-c", cfg); !strings.Contains(out, "start-dnsmasq dnsmasq") {
		t.Errorf("plan lacks start-dnsmasq:\n%s", out)
	}

	d := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "svc", Metrics: mgmtMetrics})
	t.Cleanup(func() { // the daemon's dnsmasq outlives it by design
		for _, l := range dumpLog(t, "/run/fwd/edge/dnsmasq/dnsmasq.log") {
			t.Log(l)
		}
	})
	line, n := d.Log.Wait(t, 0, "msg=\"dhcp lease\"", "tenant=edge", "interface=wan", "family=ipv4")
	if !inRange(logAttr(line, "address"), "198.51.100.50", "198.51.100.60") || logAttr(line, "router") != "198.51.100.1" {
		t.Fatalf("lease: %s", line)
	}
	d.Log.Wait(t, n, "msg=applied", "reason=\"dhcp lease changed\"")
	var leased string
	for _, a := range testnet.Addrs(t, "edge")["wan"].GlobalAddrs() {
		if strings.HasPrefix(a, "198.51.100.") {
			leased = strings.TrimSuffix(a, "/24")
		}
	}
	if leased == "" {
		t.Fatalf("no leased address on wan: %v", testnet.Addrs(t, "edge")["wan"])
	}

	// The LAN host: address, router and DNS from the tenant's dnsmasq.
	l := servicekit.Lease(t, "lanhost", nil)
	if !netip.MustParsePrefix("192.0.2.0/24").Contains(l.Address.Addr()) || l.Router != netip.MustParseAddr("192.0.2.1") ||
		!slices.Equal(l.DNS, []netip.Addr{netip.MustParseAddr("192.0.2.1")}) {
		t.Fatalf("LAN lease %+v", l)
	}
	if got, err := servicekit.Resolve(t, "lanhost", l.DNS[0], "nas.lan"); err != nil || !slices.Equal(got, []string{"192.0.2.20"}) {
		t.Fatalf("nas.lan resolves to %v (%v)", got, err)
	}
	// A name only the cloud's resolver knows: forwarded to the DNS
	// server the WAN's lease named (forwarders_from).
	if got, err := servicekit.Resolve(t, "lanhost", l.DNS[0], "www.cloud.example"); err != nil || !slices.Equal(got, []string{"203.0.113.80"}) {
		t.Fatalf("www.cloud.example through the lease's DNS server resolves to %v (%v)", got, err)
	}

	// Masquerade to the leased address, out through the learned route.
	reply, err := testnet.DialTCP("lanhost", "198.51.100.1:8080", 5*time.Second)
	if err != nil || !strings.HasPrefix(reply, "hello "+leased+":") {
		t.Fatalf("LAN → cloud through the tenant: %q (%v), want the source %s", reply, err, leased)
	}

	// A reload (any apply) keeps the learned address and default route.
	d.Signal(t, syscall.SIGHUP)
	d.Log.Wait(t, n, "msg=applied", "reason=reload")
	if r := testnet.MustCmd(t, "", "ip", "-n", "edge", "route", "show", "default", "proto", "243"); !strings.Contains(r, "via 198.51.100.1 dev wan") {
		t.Fatalf("the lease's default route is gone after a reload: %q", r)
	}
	if _, err := testnet.DialTCP("lanhost", "198.51.100.1:8080", 5*time.Second); err != nil {
		t.Fatalf("traffic after reload: %v", err)
	}

	// Status shows the lease and dnsmasq.
	out, _, code := d.Fwd(t, "status", "-j")
	var st mgmt.Status
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st.Tenants) != 1 || st.Tenants[0].Services == nil {
		t.Fatalf("status: %d\n%s", code, out)
	}
	sv := st.Tenants[0].Services
	if len(sv.DHCP) != 2 || sv.DHCP[0].State != "bound" || sv.DHCP[0].Address.Addr().String() != leased ||
		sv.DNSMasq == nil || !sv.DNSMasq.Running || sv.Leases != 1 || len(sv.LAN) != 1 || sv.LAN[0].Address != l.Address.Addr() {
		t.Fatalf("services status: %s", out)
	}
	checkDHCPv6(t, d, leased, l.Address.Addr())
	d.Stop(t)
	// Stopped: the lease stays (the kernel drops it at expiry) and
	// dnsmasq keeps serving; teardown stops dnsmasq before the namespace.
	if !strings.Contains(testnet.MustCmd(t, "", "ip", "-n", "edge", "addr", "show", "dev", "wan"), leased) {
		t.Fatal("daemon exit removed the leased address")
	}
	if out, _, code := testkit.Fwd(t, "teardown", "-y"); code != 0 || !strings.Contains(out, "stop-dnsmasq") {
		t.Fatalf("teardown: %d\n%s", code, out)
	}
	// Ours by PID (other packages' tests may run a dnsmasq meanwhile).
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", sv.DNSMasq.PID)); err == nil && !strings.Contains(string(b), ") Z ") {
		t.Fatalf("dnsmasq (pid %d) left running after teardown", sv.DNSMasq.PID)
	}
}

func dumpLog(t *testing.T, path string) []string {
	if !t.Failed() {
		return nil
	}
	b, _ := os.ReadFile(path)
	return strings.Split(string(b), "\n")
}

// The helpers below are shared by the services_*_kernel_test.go files.

// serviceStatus runs `fwd status -j` against d.
func serviceStatus(t *testing.T, d *testkit.Daemon) mgmt.Status {
	t.Helper()
	out, _, code := d.Fwd(t, "status", "-j")
	var st mgmt.Status
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	return st
}

// tenantServices is the services part of tenant's status.
func tenantServices(t *testing.T, st mgmt.Status, tenant string) *mgmt.ServicesStatus {
	t.Helper()
	for _, ts := range st.Tenants {
		if ts.Name == tenant {
			if ts.Services == nil {
				t.Fatalf("status of tenant %s has no services: %+v", tenant, ts)
			}
			return ts.Services
		}
	}
	t.Fatalf("status has no tenant %s: %+v", tenant, st.Tenants)
	return nil
}

// logAttr is the value of key in a slog text line ("" when absent).
func logAttr(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// ruleCounters reads `nft -j list ruleset` of namespace nsName and sums
// the packet counters of each rule by its comment ("id: comment").
func ruleCounters(t *testing.T, nsName string) map[string]uint64 {
	t.Helper()
	var rs struct {
		Nftables []struct {
			Rule *struct {
				Comment string           `json:"comment"`
				Expr    []map[string]any `json:"expr"`
			} `json:"rule"`
		} `json:"nftables"`
	}
	testnet.JSON(t, &rs, nsName, "nft", "-j", "list", "ruleset")
	out := map[string]uint64{}
	for _, o := range rs.Nftables {
		if o.Rule == nil || o.Rule.Comment == "" {
			continue
		}
		out[o.Rule.Comment] += 0 // present, even when it never matched
		for _, e := range o.Rule.Expr {
			if c, ok := e["counter"].(map[string]any); ok {
				if p, ok := c["packets"].(float64); ok {
					out[o.Rule.Comment] += uint64(p)
				}
			}
		}
	}
	return out
}

// processGone reports whether pid is no longer running (gone or a zombie).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err != nil || strings.Contains(string(b), ") Z ")
}

// checkDHCPv6 is the IPv6 half of TestServicesEndToEnd: the WAN holds a
// DHCPv6 /128 from the cloud, takes its default route from the cloud's
// RAs (accept_ra 2, autoconf 0: no SLAAC address besides), and `fwd show
// leases` lists both WAN leases and the LAN host's.
func checkDHCPv6(t *testing.T, d *testkit.Daemon, leased4 string, lan netip.Addr) {
	t.Helper()
	cloud6 := netip.MustParsePrefix("2001:db8:100::/64")
	var lease6 mgmt.DHCPLease
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _, code := testkit.Fwd(t, "show", "leases", "-j", "--socket", d.Socket, "edge")
		var got []TenantLeases
		if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got) != 1 || len(got[0].WAN) != 2 {
			t.Fatalf("show leases: %d\n%s", code, out)
		}
		w4, w6 := got[0].WAN[0], got[0].WAN[1]
		if w4.Family != "ipv4" || w4.Address.Addr().String() != leased4 || w6.Family != "ipv6" ||
			len(got[0].LAN) != 1 || got[0].LAN[0].Address != lan {
			t.Fatalf("show leases:\n%s", out)
		}
		if w6.State == "bound" {
			lease6 = w6
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no DHCPv6 lease:\n%s", out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if !cloud6.Contains(lease6.Address.Addr()) || lease6.Address.Bits() != 128 || lease6.ServerID == "" ||
		!slices.Equal(lease6.DNS, []netip.Addr{netip.MustParseAddr("2001:db8:100::1")}) {
		t.Fatalf("DHCPv6 lease %+v", lease6)
	}
	var globals []string
	for _, a := range testnet.Addrs(t, "edge")["wan"].GlobalAddrs() {
		if strings.Contains(a, ":") {
			globals = append(globals, a)
		}
	}
	if !slices.Equal(globals, []string{lease6.Address.String()}) {
		t.Fatalf("wan IPv6 addresses %v, want only %s", globals, lease6.Address)
	}
	if got := testnet.MustCmd(t, "edge", "sysctl", "-n", "net.ipv6.conf.wan.accept_ra", "net.ipv6.conf.wan.autoconf"); strings.Join(strings.Fields(got), " ") != "2 0" {
		t.Errorf("wan accept_ra/autoconf %q, want 2 0", got)
	}
	for !strings.Contains(testnet.MustCmd(t, "", "ip", "-n", "edge", "-6", "route", "show", "default"), "proto ra") {
		if time.Now().After(deadline) {
			t.Fatalf("no IPv6 default route from the RAs: %s", testnet.MustCmd(t, "", "ip", "-n", "edge", "-6", "route"))
		}
		time.Sleep(300 * time.Millisecond)
	}
	out, _, _ := testkit.Fwd(t, "show", "leases", "--socket", d.Socket, "edge")
	t.Logf("fwd show leases:\n%s", out)
	for _, want := range []string{"dhcp ", "dhcp6 ", lease6.Address.String(), "via 198.51.100.1", "LAN LEASE", lan.String()} {
		if !strings.Contains(out, want) {
			t.Errorf("fwd show leases lacks %q:\n%s", want, out)
		}
	}
	// The metrics name both leases' addresses.
	info := map[string]string{}
	for _, m := range scrape(t, d)["fwd_dhcp_lease_info"].GetMetric() {
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		info[labels["family"]] = labels["address"]
	}
	if info["ipv4"] != leased4 || info["ipv6"] != lease6.Address.Addr().String() {
		t.Errorf("fwd_dhcp_lease_info addresses %v, want ipv4 %s ipv6 %s", info, leased4, lease6.Address.Addr())
	}
}
