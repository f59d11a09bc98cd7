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
// (dhcp = true); the tenant's own dnsmasq gives a LAN host its address,
// router and DNS and answers a local name; the LAN host's traffic is
// masqueraded to the leased address through the learned default route,
// which later applies keep.
const servicesConfig = `
[tenant.edge.interface.wan]
device = "eth1"
dhcp = true

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
domain = "lan"
[tenant.edge.dns.names]
"nas.lan" = ["192.0.2.20"]
`

func TestServicesEndToEnd(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "cloud")
	testnet.Host(t, "lanhost")
	testnet.NIC(t, "eth1", "cloud", "cloud0", netip.Addr{}, "198.51.100.1/24")
	testnet.NIC(t, "eth2", "lanhost", "eth0", netip.Addr{})
	t.Cleanup(func() { testkit.Fwd(t, "teardown", "-y", "--force") })

	// The cloud's DHCP server (its own supervisor, its own directory).
	cloud := dnsmasq.NewSupervisor(slog.New(slog.DiscardHandler), servicekit.RunDir(t))
	t.Cleanup(cloud.StopAll)
	cc := &dnsmasq.Config{DHCP: []dnsmasq.DHCPRange{{Interface: "cloud0",
		Start: netip.MustParseAddr("198.51.100.50"), End: netip.MustParseAddr("198.51.100.60"),
		Mask: netip.MustParsePrefix("198.51.100.0/24"), LeaseTime: dnsmasq.MinLeaseTime,
		Router: []netip.Addr{netip.MustParseAddr("198.51.100.1")}}}}
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

	d := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "svc"})
	t.Cleanup(func() { // the daemon's dnsmasq outlives it by design
		for _, l := range dumpLog(t, "/run/fwd/edge/dnsmasq/dnsmasq.log") {
			t.Log(l)
		}
	})
	line, n := d.Log.Wait(t, 0, "msg=\"dhcp lease\"", "tenant=edge", "interface=wan")
	if !strings.Contains(line, "address=198.51.100.5") || !strings.Contains(line, "router=198.51.100.1") {
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
	if len(sv.DHCP) != 1 || sv.DHCP[0].State != "bound" || sv.DHCP[0].Address.Addr().String() != leased ||
		sv.DNSMasq == nil || !sv.DNSMasq.Running || sv.Leases != 1 {
		t.Fatalf("services status: %s", out)
	}
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
