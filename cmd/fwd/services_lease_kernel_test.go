//go:build kernel

package main

import (
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
	"github.com/fwdproject/fwd/internal/testkit/servicekit"
	"github.com/fwdproject/fwd/internal/testnet"
	"github.com/fwdproject/fwd/services/dnsmasq"
)

// cloudServer is the cloud's DHCP server handing out start-end of
// 198.51.100.0/24 with the router 198.51.100.1.
func cloudServer(start, end string) *dnsmasq.Config {
	return &dnsmasq.Config{DHCP: []dnsmasq.DHCPRange{{Interface: "cloud0",
		Start: netip.MustParseAddr(start), End: netip.MustParseAddr(end),
		Mask: netip.MustParsePrefix("198.51.100.0/24"), LeaseTime: dnsmasq.MinLeaseTime,
		Router: []netip.Addr{netip.MustParseAddr("198.51.100.1")}}}}
}

// The cloud's timers: renew 3 s and rebind 6 s after binding, so the
// daemon's client (which follows the server's timers) talks to the
// server within seconds, with a lease of dnsmasq's minimum two minutes.
var cloudTimers = []string{"option:T1,3", "option:T2,6"}

// The cloud's DHCP server moves to another range while the daemon runs:
// at its next renewal the daemon's client is refused, binds a new
// address, and without a reload the WAN address, the learned default
// route, the masquerade and the status follow it.
func TestServicesLeaseChange(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "cloud")
	testnet.Host(t, "lanhost")
	testnet.NIC(t, "eth1", "cloud", "cloud0", netip.Addr{}, "198.51.100.1/24")
	testnet.NIC(t, "eth2", "lanhost", "eth0", netip.Addr{})
	t.Cleanup(func() { testkit.Fwd(t, "teardown", "-y", "--force") })

	cloudDir := servicekit.RunDir(t)
	cloud := dnsmasq.NewSupervisor(slog.New(slog.DiscardHandler), cloudDir)
	t.Cleanup(cloud.StopAll)
	t.Cleanup(func() {
		for _, l := range dumpLog(t, filepath.Join(cloudDir, "cloud/dnsmasq/dnsmasq.log")) {
			t.Log("cloud dnsmasq: " + l)
		}
	})
	if s := servicekit.Serve(t, cloud, "cloud", cloudServer("198.51.100.10", "198.51.100.20"), cloudTimers...); s.Action != dnsmasq.Start {
		t.Fatalf("cloud server: %v", s.Action)
	}
	srv, err := testnet.ServeTCP("cloud", "198.51.100.1:8080", "hello")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	cfg := filepath.Join(t.TempDir(), "fwd.toml")
	// IPv4 only: the cloud here serves no DHCPv6. A source rule for the
	// WAN's address (from_interface) must follow the lease too.
	writeFile(t, cfg, strings.Replace(servicesConfig, "dhcp6 = true\n", "", 1)+`
[tenant.edge.table.wan]
id = 100
[[tenant.edge.route_rule]]
priority = 100
from_interface = "wan"
family = "ipv4"
table = "wan"
`)
	d := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "svc-lease"})
	t.Cleanup(func() {
		for _, l := range dumpLog(t, "/run/fwd/edge/dnsmasq/dnsmasq.log") {
			t.Log("edge dnsmasq: " + l)
		}
	})
	line, n := d.Log.Wait(t, 0, `msg="dhcp lease"`, "tenant=edge", "interface=wan")
	a := logAttr(line, "address")
	if !inRange(a, "198.51.100.10", "198.51.100.20") {
		t.Fatalf("first lease outside the first range: %s", line)
	}
	_, n = d.Log.Wait(t, n, "msg=applied", `reason="dhcp lease changed"`)
	aAddr := strings.TrimSuffix(a, "/24")

	lan := servicekit.Lease(t, "lanhost", nil)
	masqueraded(t, aAddr, lan.Address.Addr())
	sourceRule(t, aAddr)
	before := serviceStatus(t, d)
	if sv := tenantServices(t, before, "edge"); len(sv.DHCP) != 1 || sv.DHCP[0].Address.String() != a {
		t.Fatalf("status before the change: %+v", sv.DHCP)
	}
	if before.PID != d.Cmd.Process.Pid {
		t.Fatalf("status pid %d, daemon pid %d", before.PID, d.Cmd.Process.Pid)
	}

	// The server moves: a restart with a new range (its lease file
	// survives, so the renewal of A is refused, not silently granted).
	changed := time.Now()
	if s := servicekit.Serve(t, cloud, "cloud", cloudServer("198.51.100.50", "198.51.100.60"), cloudTimers...); s.Action != dnsmasq.Restart {
		t.Fatalf("cloud range change planned %v, want restart", s.Action)
	}
	line, n = d.Log.Wait(t, n, `msg="dhcp lease"`, "tenant=edge", "interface=wan", "address=198.51.100.")
	b := logAttr(line, "address")
	if !inRange(b, "198.51.100.50", "198.51.100.60") {
		t.Fatalf("lease after the change outside the new range: %s", line)
	}
	d.Log.Wait(t, n, "msg=applied", `reason="dhcp lease changed"`)
	t.Logf("new lease %s %.1f s after the server changed", b, time.Since(changed).Seconds())
	bAddr := strings.TrimSuffix(b, "/24")

	if got := testnet.Addrs(t, "edge")["wan"].GlobalAddrs(); !slices.Equal(got, []string{b}) {
		t.Fatalf("wan has %v, want only the new lease %s (old %s)", got, b, a)
	}
	var def []struct {
		Gateway  string `json:"gateway"`
		Dev      string `json:"dev"`
		Protocol string `json:"protocol"`
		PrefSrc  string `json:"prefsrc"`
	}
	testnet.JSON(t, &def, "", "ip", "-j", "-n", "edge", "route", "show", "default", "proto", "243")
	if len(def) != 1 || def[0].Gateway != "198.51.100.1" || def[0].Dev != "wan" {
		t.Fatalf("default route proto 243 after the change: %+v", def)
	}
	masqueraded(t, bAddr, lan.Address.Addr())
	sourceRule(t, bAddr)

	after := serviceStatus(t, d)
	sv := tenantServices(t, after, "edge")
	if len(sv.DHCP) != 1 || sv.DHCP[0].State != "bound" || sv.DHCP[0].Address.String() != b ||
		sv.DHCP[0].Router != netip.MustParseAddr("198.51.100.1") {
		t.Fatalf("status after the change: %+v", sv.DHCP)
	}
	// No reload: the same process, the same revision, the same last reload.
	if after.PID != before.PID || after.PID != d.Cmd.Process.Pid || after.Revision != before.Revision ||
		(after.LastReload == nil) != (before.LastReload == nil) ||
		(after.LastReload != nil && !after.LastReload.Time.Equal(before.LastReload.Time)) {
		t.Fatalf("the daemon reloaded or restarted: before pid %d revision %d reload %+v, after pid %d revision %d reload %+v",
			before.PID, before.Revision, before.LastReload, after.PID, after.Revision, after.LastReload)
	}
	for _, l := range d.Log.Lines() {
		if r := logAttr(l, "reason"); strings.Contains(l, "msg=applied") && (r == "reload" || strings.HasPrefix(r, "rollback")) {
			t.Errorf("the daemon reloaded: %s", l)
		}
	}

	// The WAN goes from the configuration: its lease is given back
	// while the NIC is still in the tenant (the engine's apply hands it
	// back to the default namespace afterwards), so the cloud's server
	// forgets it.
	leases := filepath.Join(cloudDir, "cloud/dnsmasq/dnsmasq.leases")
	if b, _ := os.ReadFile(leases); !strings.Contains(string(b), " "+bAddr+" ") {
		t.Fatalf("the cloud's lease file lacks %s before the release:\n%s", bAddr, b)
	}
	writeFile(t, cfg, `
[tenant.edge.interface.lan]
device = "eth2"
addresses = ["192.0.2.1/24"]
`)
	d.Signal(t, syscall.SIGHUP)
	_, n = d.Log.Wait(t, n, `msg="dhcp client stopped"`, "tenant=edge", "interface=wan")
	d.Log.Wait(t, n, "msg=applied", "reason=reload")
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(leases)
		if !strings.Contains(string(b), " "+bAddr+" ") {
			break
		}
		if time.Now().After(deadline) {
			for _, l := range d.Log.Lines()[n-5:] {
				t.Log(l)
			}
			t.Fatalf("the cloud still holds the lease of %s after the WAN went from the configuration (no release left):\n%s", bAddr, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.Stop(t)
}

// inRange reports whether prefix ("addr/24") is an address of start-end
// in 198.51.100.0/24.
func inRange(prefix, start, end string) bool {
	p, err := netip.ParsePrefix(prefix)
	a := p.Addr()
	return err == nil && p.Bits() == 24 && !a.Less(netip.MustParseAddr(start)) && !netip.MustParseAddr(end).Less(a)
}

// masqueraded proves that the LAN host reaches the cloud through the
// tenant with its traffic masqueraded to wanAddr: the cloud's server sees
// that source, pings pass, and the tenant's conntrack table holds the
// flow from lanAddr translated to wanAddr.
func masqueraded(t *testing.T, wanAddr string, lanAddr netip.Addr) {
	t.Helper()
	reply, err := testnet.DialTCP("lanhost", "198.51.100.1:8080", 5*time.Second)
	if err != nil || !strings.HasPrefix(reply, "hello "+wanAddr+":") {
		t.Fatalf("LAN → cloud through the tenant: %q (%v), want the source %s", reply, err, wanAddr)
	}
	if !testnet.WaitPing("lanhost", "198.51.100.1", 5*time.Second) {
		t.Fatal("LAN host cannot ping the cloud")
	}
	ct := testnet.MustCmd(t, "edge", "conntrack", "-L", "-p", "tcp", "--orig-src", lanAddr.String(),
		"--orig-dst", "198.51.100.1", "--reply-dst", wanAddr)
	if !strings.Contains(ct, "dport=8080") {
		t.Fatalf("conntrack has no flow %s → 198.51.100.1:8080 masqueraded to %s:\n%s", lanAddr, wanAddr, ct)
	}
}

// sourceRule checks that fwd's only rule at priority 100 is "from addr
// lookup 100" (the from_interface rule resolved to the lease's address;
// ip -j leaves srclen out for a host prefix).
func sourceRule(t *testing.T, addr string) {
	t.Helper()
	var rules []struct {
		Priority int    `json:"priority"`
		Src      string `json:"src"`
		SrcLen   int    `json:"srclen"`
		Table    string `json:"table"`
		Protocol string `json:"protocol"`
	}
	testnet.JSON(t, &rules, "", "ip", "-j", "-4", "-n", "edge", "rule", "show", "priority", "100")
	if len(rules) != 1 || rules[0].Src != addr || (rules[0].SrcLen != 0 && rules[0].SrcLen != 32) || rules[0].Table != "100" {
		t.Fatalf("rules at priority 100: %+v, want one from %s/32 lookup 100", rules, addr)
	}
}
