//go:build kernel

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
	"github.com/fwdproject/fwd/mgmt"
	"github.com/fwdproject/fwd/services/dhcpclient"
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
	cloudDir := t.TempDir()
	for p := cloudDir; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
		_ = os.Chmod(p, 0o755) // dnsmasq's user passes through
	}
	cloud := dnsmasq.NewSupervisor(slog.New(slog.DiscardHandler), cloudDir)
	t.Cleanup(cloud.StopAll)
	cc := &dnsmasq.Config{DHCP: []dnsmasq.DHCPRange{{Interface: "cloud0",
		Start: netip.MustParseAddr("198.51.100.50"), End: netip.MustParseAddr("198.51.100.60"),
		Mask: netip.MustParsePrefix("198.51.100.0/24"), LeaseTime: dnsmasq.MinLeaseTime,
		Router: []netip.Addr{netip.MustParseAddr("198.51.100.1")}}}}
	cloud.Prepare("cloud", cc)
	files, err := dnsmasq.Render(cc)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := cloud.Observe("cloud")
	if err != nil {
		t.Fatal(err)
	}
	if err := cloud.Apply("cloud", dnsmasq.Plan(files, obs)); err != nil {
		t.Fatal(err)
	}
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
	l := lanLease(t, "lanhost")
	if !netip.MustParsePrefix("192.0.2.0/24").Contains(l.Address.Addr()) || l.Router != netip.MustParseAddr("192.0.2.1") ||
		!slices.Equal(l.DNS, []netip.Addr{netip.MustParseAddr("192.0.2.1")}) {
		t.Fatalf("LAN lease %+v", l)
	}
	if got, err := resolveIn(t, "lanhost", l.DNS[0], "nas.lan"); err != nil || !slices.Equal(got, []string{"192.0.2.20"}) {
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

// lanLease runs a DHCP client in a LAN host namespace and returns its lease.
func lanLease(t *testing.T, host string) *dhcpclient.Lease {
	t.Helper()
	h, err := ns.Open(host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ev := make(chan dhcpclient.Event, 4)
	c, err := dhcpclient.Start(dhcpclient.Config{Namespace: host, Interface: "eth0", Kernel: dhcpclient.NewApplier(h, 0, 0),
		OnEvent: func(e dhcpclient.Event) { ev <- e }, Timeout: 500 * time.Millisecond, MaxBackoff: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(true) })
	select {
	case e := <-ev:
		if e.Kind != dhcpclient.Bound || e.Err != nil {
			t.Fatalf("%s: first event %s %v", host, e.Kind, e.Err)
		}
		return e.Lease
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no lease from the tenant's dnsmasq", host)
	}
	return nil
}

// resolveIn resolves name at server from inside a namespace.
func resolveIn(t *testing.T, nsName string, server netip.Addr, name string) ([]string, error) {
	t.Helper()
	h, err := ns.Open(nsName)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var c net.Conn
		err := ns.Do(h, func() error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, network, netip.AddrPortFrom(server, 53).String())
			return err
		})
		return c, err
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.LookupHost(ctx, name)
}

func dumpLog(t *testing.T, path string) []string {
	if !t.Failed() {
		return nil
	}
	b, _ := os.ReadFile(path)
	return strings.Split(string(b), "\n")
}
