//go:build kernel

package dnsmasq_test

import (
	"github.com/fwdproject/fwd/internal/testkit/servicekit"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
	"github.com/fwdproject/fwd/services/dnsmasq"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func a(s string) netip.Addr { return netip.MustParseAddr(s) }

// tenantLAN is a tenant whose LAN is 192.0.2.0/24 (the same in every
// tenant) with its own range and its own answer for printer.lan.
func tenantLAN(start, end, printer string, ra bool) *dnsmasq.Config {
	c := &dnsmasq.Config{
		DHCP: []dnsmasq.DHCPRange{{Interface: "lan", Start: a(start), End: a(end),
			Mask: netip.MustParsePrefix("192.0.2.0/24"), LeaseTime: 10 * time.Minute,
			Router: []netip.Addr{a("192.0.2.1")}, DNS: []netip.Addr{a("192.0.2.1")}}},
		DNS: &dnsmasq.DNS{Interfaces: []string{"lan"}, Domain: "lan",
			Local: []dnsmasq.LocalName{{Name: "printer.lan", Addrs: []netip.Addr{a(printer)}}}},
	}
	if ra {
		c.RA = []dnsmasq.RA{{Interface: "lan", Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:1::/64")},
			RDNSS: []netip.Addr{a("2001:db8:1::1")}, Interval: 4 * time.Second}}
	}
	return c
}

// Two tenants with the same LAN range each run their own dnsmasq: hosts
// in each get an address from their tenant's range, its router and DNS,
// and their tenant's answer for a local name; a new local name is a
// reload (same process), and an IPv6 host autoconfigures from the RA.
func TestLANServicesPerTenant(t *testing.T) {
	testkit.Require(t)
	for _, n := range []string{"ta", "tb", "ha", "hb", "h6"} {
		testnet.Host(t, n)
	}
	testnet.Veth(t, "ta", "lan", "ha", "eth0")
	testnet.Veth(t, "tb", "lan", "hb", "eth0")
	testnet.MustCmd(t, "", "ip", "-n", "ta", "addr", "add", "192.0.2.1/24", "dev", "lan")
	testnet.MustCmd(t, "", "ip", "-n", "tb", "addr", "add", "192.0.2.1/24", "dev", "lan")
	// The IPv6 host shares tenant a's LAN through a bridge-free second link.
	testnet.Veth(t, "ta", "lan6", "h6", "eth0")
	testnet.MustCmd(t, "", "ip", "-n", "ta", "addr", "add", "2001:db8:1::1/64", "dev", "lan6", "nodad")

	dir := servicekit.RunDir(t)
	sup := dnsmasq.NewSupervisor(quiet(), dir)
	defer func() {
		if t.Failed() {
			for _, tn := range []string{"ta", "tb"} {
				b, _ := os.ReadFile(sup.Dir(tn) + "/dnsmasq.log")
				t.Logf("%s dnsmasq log:\n%s", tn, b)
			}
		}
		sup.StopAll()
		// Ours only (other packages' tests may run a dnsmasq meanwhile):
		// every instance's command line names a file under dir.
		if out, err := exec.Command("pgrep", "-f", "conf-file="+dir).Output(); err == nil {
			t.Errorf("dnsmasq left running: %s", out)
		}
	}()
	ca := tenantLAN("192.0.2.100", "192.0.2.110", "192.0.2.50", false)
	ca.RA = []dnsmasq.RA{{Interface: "lan6", Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:1::/64")},
		RDNSS: []netip.Addr{a("2001:db8:1::1")}, Interval: 4 * time.Second}}
	servicekit.Serve(t, sup, "ta", ca)
	servicekit.Serve(t, sup, "tb", tenantLAN("192.0.2.150", "192.0.2.160", "192.0.2.60", false))

	for _, c := range []struct {
		host, tenant, lo, hi, printer string
	}{{"ha", "ta", "192.0.2.100", "192.0.2.110", "192.0.2.50"}, {"hb", "tb", "192.0.2.150", "192.0.2.160", "192.0.2.60"}} {
		l := servicekit.Lease(t, c.host, quiet())
		ip := l.Address.Addr()
		if ip.Less(a(c.lo)) || a(c.hi).Less(ip) || l.Address.Bits() != 24 {
			t.Fatalf("%s got %s, outside %s's range %s-%s", c.host, l.Address, c.tenant, c.lo, c.hi)
		}
		if l.Router != a("192.0.2.1") || !slices.Equal(l.DNS, []netip.Addr{a("192.0.2.1")}) {
			t.Fatalf("%s: router %s dns %v", c.host, l.Router, l.DNS)
		}
		got, err := servicekit.Resolve(t, c.host, l.DNS[0], "printer.lan")
		if err != nil || !slices.Equal(got, []string{c.printer}) {
			t.Fatalf("%s resolves printer.lan to %v (%v), want %s (tenant %s)", c.host, got, err, c.printer, c.tenant)
		}
	}

	// A new local name is a reload: same process, new answer.
	pid := sup.Status()[0].PID
	ca.DNS.Local = append(ca.DNS.Local, dnsmasq.LocalName{Name: "nas.lan", Addrs: []netip.Addr{a("192.0.2.51")}})
	if s := servicekit.Serve(t, sup, "ta", ca); s.Action != dnsmasq.Reload || !slices.Equal(s.Changed, []string{dnsmasq.HostsFile}) {
		t.Fatalf("new local name planned %v %v, want reload of hosts", s.Action, s.Changed)
	}
	var got []string
	var err error
	for range 20 {
		if got, err = servicekit.Resolve(t, "ha", a("192.0.2.1"), "nas.lan"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !slices.Equal(got, []string{"192.0.2.51"}) {
		t.Fatalf("after reload nas.lan is %v (%v)", got, err)
	}
	if st := sup.Status()[0]; st.PID != pid || st.Tenant != "ta" {
		t.Fatalf("reload restarted dnsmasq: pid %d, was %d", st.PID, pid)
	}
	// Not on lo: dnsmasq answers nothing on the tenant's loopback.
	if _, err := servicekit.Resolve(t, "ta", a("127.0.0.1"), "printer.lan"); err == nil {
		t.Fatal("dnsmasq answers on the tenant's lo")
	}

	// SLAAC from the tenant's RA.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var slaac []string
		for _, g := range testnet.Addrs(t, "h6")["eth0"].GlobalAddrs() {
			if strings.HasPrefix(g, "2001:db8:1:0:") && strings.HasSuffix(g, "/64") {
				slaac = append(slaac, g)
			}
		}
		if len(slaac) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no SLAAC address on h6: %v", testnet.Addrs(t, "h6")["eth0"])
		}
		time.Sleep(500 * time.Millisecond)
	}
}
