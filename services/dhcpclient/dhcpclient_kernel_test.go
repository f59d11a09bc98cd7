//go:build kernel

package dhcpclient_test

import (
	"github.com/fwdproject/fwd/internal/testkit/servicekit"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
	"github.com/fwdproject/fwd/services/dhcpclient"
	"github.com/fwdproject/fwd/services/dnsmasq"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func verbose() *slog.Logger {
	if os.Getenv("SVC_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return quiet()
}

// link makes a veth pair between two namespaces, both ends up.

func cloudConfig(start, end string) *dnsmasq.Config {
	return &dnsmasq.Config{DHCP: []dnsmasq.DHCPRange{{Interface: "cloud0",
		Start: netip.MustParseAddr(start), End: netip.MustParseAddr(end),
		Mask: netip.MustParsePrefix("198.51.100.0/24"), LeaseTime: dnsmasq.MinLeaseTime,
		Router: []netip.Addr{netip.MustParseAddr("198.51.100.1")}}}}
}

func waitEvent(t *testing.T, ev chan dhcpclient.Event, what string, ok func(dhcpclient.Event) bool) dhcpclient.Event {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case e := <-ev:
			if e.Err != nil {
				t.Fatalf("%s: lease event %s not applied: %v", what, e.Kind, e.Err)
			}
			if ok(e) {
				return e
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// waitMoved waits for a lease on another address than old, inside
// within, and checks tw's wan holds it instead of old.
func waitMoved(t *testing.T, events chan dhcpclient.Event, old, within netip.Prefix) dhcpclient.Event {
	t.Helper()
	moved := waitEvent(t, events, "new address", func(e dhcpclient.Event) bool {
		return e.Kind == dhcpclient.Bound && e.Lease.Address != old
	})
	if !within.Contains(moved.Lease.Address.Addr()) {
		t.Fatalf("new lease %v outside %v", moved.Lease.Address, within)
	}
	if hasAddr(t, "tw", "wan", old.String()) || !hasAddr(t, "tw", "wan", moved.Lease.Address.String()) {
		t.Fatalf("after the move wan has %v", testnet.Addrs(t, "tw")["wan"].GlobalAddrs())
	}
	return moved
}

// startClient starts a client on tw's wan with the tests' short
// timeouts, its events into events.
func startClient(t *testing.T, cfg dhcpclient.Config, events chan dhcpclient.Event) *dhcpclient.Client {
	t.Helper()
	cfg.Namespace, cfg.Interface = "tw", "wan"
	cfg.OnEvent = func(e dhcpclient.Event) { events <- e }
	cfg.Timeout, cfg.MaxBackoff = 500*time.Millisecond, 2*time.Second
	c, err := dhcpclient.Start(cfg, verbose())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func routes243(t *testing.T, nsName string) string {
	return strings.TrimSpace(testnet.MustCmd(t, "", "ip", "-n", nsName, "route", "show", "proto", "243"))
}

func hasAddr(t *testing.T, nsName, ifname, addr string) bool {
	for _, a := range testnet.Addrs(t, nsName)[ifname].GlobalAddrs() {
		if a == addr {
			return true
		}
	}
	return false
}

// A cloud DHCP server (dnsmasq in a host namespace) gives the tenant's
// WAN an address and a default route; the client installs them (route
// under protocol 243), renews on its (shortened) T1, follows the server
// to a new address when the old one is refused, without anything else
// being reapplied, and on release removes both.
func TestWANLeaseFromCloudServer(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "cloud")
	testnet.Host(t, "tw")
	testnet.Veth(t, "tw", "wan", "cloud", "cloud0")
	testnet.MustCmd(t, "", "ip", "-n", "cloud", "addr", "add", "198.51.100.1/24", "dev", "cloud0")
	testnet.MustCmd(t, "", "ip", "-n", "cloud", "addr", "add", "203.0.113.1/32", "dev", "lo")

	dir := servicekit.RunDir(t)
	sup := dnsmasq.NewSupervisor(quiet(), dir)
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(dir + "/cloud/dnsmasq/dnsmasq.log")
			t.Logf("dnsmasq log:\n%s", b)
		}
		sup.StopAll()
		// Ours only (other packages' tests may run a dnsmasq meanwhile):
		// every instance's command line names a file under dir.
		if out, err := exec.Command("pgrep", "-f", "conf-file="+dir).Output(); err == nil {
			t.Errorf("dnsmasq left running: %s", out)
		}
	}()
	if s := servicekit.Serve(t, sup, "cloud", cloudConfig("198.51.100.10", "198.51.100.20")); s.Action != dnsmasq.Start {
		t.Fatalf("first plan %v", s.Action)
	}

	h, err := ns.Open("tw")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ra := dhcpclient.RA{AcceptRA: dhcpclient.AcceptRAAlways}
	if changed, err := dhcpclient.SetRA(h, "wan", ra); err != nil || !changed {
		t.Fatalf("accept_ra: changed %v, %v", changed, err)
	}
	if v, err := dhcpclient.ReadRA(h, "wan"); err != nil || v != ra {
		t.Fatalf("RA settings read %+v, %v; want %+v", v, err, ra)
	}
	if out := testnet.MustCmd(t, "tw", "sysctl", "-n", "net.ipv6.conf.wan.accept_ra", "net.ipv6.conf.wan.autoconf"); strings.Fields(out)[0] != "2" || strings.Fields(out)[1] != "0" {
		t.Fatalf("sysctl reads %q, want 2 and 0", out)
	}
	if changed, _ := dhcpclient.SetRA(h, "wan", ra); changed {
		t.Fatal("second SetRA changed something")
	}

	events := make(chan dhcpclient.Event, 16)
	c := startClient(t, dhcpclient.Config{Hostname: "tw", Kernel: dhcpclient.NewApplier(h, 0, 0), MaxRenew: 2 * time.Second}, events)
	stopped := false
	defer func() {
		if !stopped {
			c.Stop(false)
		}
	}()
	first := waitEvent(t, events, "first lease", func(e dhcpclient.Event) bool { return e.Kind == dhcpclient.Bound })
	addr := first.Lease.Address
	if !netip.MustParsePrefix("198.51.100.0/24").Contains(addr.Addr()) || addr.Bits() != 24 || first.Lease.Router.String() != "198.51.100.1" {
		t.Fatalf("lease %+v", first.Lease)
	}
	if !hasAddr(t, "tw", "wan", addr.String()) {
		t.Fatalf("address %s not on wan: %v", addr, testnet.Addrs(t, "tw")["wan"])
	}
	if got := routes243(t, "tw"); got != "default via 198.51.100.1 dev wan" {
		t.Fatalf("routes proto 243: %q", got)
	}
	if !testnet.WaitPing("tw", "203.0.113.1", 5*time.Second) {
		t.Fatal("no traffic through the leased default route")
	}
	waitEvent(t, events, "renewal at T1", func(e dhcpclient.Event) bool { return e.Kind == dhcpclient.Renewed })

	// The server moves to another range: the next renewal is refused,
	// the client binds a new address and traffic flows again.
	if s := servicekit.Serve(t, sup, "cloud", cloudConfig("198.51.100.50", "198.51.100.60")); s.Action != dnsmasq.Restart {
		t.Fatalf("range change planned %v, want restart", s.Action)
	}
	moved := waitMoved(t, events, addr, netip.MustParsePrefix("198.51.100.48/28"))
	if !testnet.WaitPing("tw", "203.0.113.1", 5*time.Second) {
		t.Fatal("traffic did not recover after the address change")
	}

	// The learned address carries a finite lifetime (zones leaves it).
	if p, ok, err := dhcpclient.NewApplier(h, 0, 0).Learned("wan", false); err != nil || !ok || p != moved.Lease.Address {
		t.Fatalf("Learned: %v %v %v", p, ok, err)
	}

	c.Stop(true)
	stopped = true
	waitEvent(t, events, "release", func(e dhcpclient.Event) bool { return e.Kind == dhcpclient.Released })
	if g := testnet.Addrs(t, "tw")["wan"].GlobalAddrs(); len(g) != 0 {
		t.Fatalf("released address left: %v", g)
	}
	if got := routes243(t, "tw"); got != "" {
		t.Fatalf("released route left: %q", got)
	}
	// The server heard the release (a unicast from the leased address;
	// one from 0.0.0.0 its kernel drops) and forgot the lease.
	gone := moved.Lease.Address.Addr().String()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(dir + "/cloud/dnsmasq/dnsmasq.leases")
		if !strings.Contains(string(b), " "+gone+" ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still holds %s after the release:\n%s", gone, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A client that finds the address an earlier client left (a daemon
// restart) asks for it; when the server hands out another one instead,
// the old address is removed, not left as a learned address for its
// whole lifetime.
func TestAdoptedAddressReplaced(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "cloud")
	testnet.Host(t, "tw")
	testnet.Veth(t, "tw", "wan", "cloud", "cloud0")
	testnet.MustCmd(t, "", "ip", "-n", "cloud", "addr", "add", "198.51.100.1/24", "dev", "cloud0")
	sup := dnsmasq.NewSupervisor(quiet(), servicekit.RunDir(t))
	defer sup.StopAll()
	servicekit.Serve(t, sup, "cloud", cloudConfig("198.51.100.10", "198.51.100.20"))
	h, err := ns.Open("tw")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	events := make(chan dhcpclient.Event, 16)
	start := func() *dhcpclient.Client {
		return startClient(t, dhcpclient.Config{Kernel: dhcpclient.NewApplier(h, 0, 0)}, events)
	}
	c := start()
	first := waitEvent(t, events, "first lease", func(e dhcpclient.Event) bool { return e.Kind == dhcpclient.Bound })
	c.Stop(false) // a daemon exit: the address stays
	old := first.Lease.Address.String()
	if !hasAddr(t, "tw", "wan", old) {
		t.Fatalf("stop without release removed %s", old)
	}

	// The server moves to another range while no client runs.
	servicekit.Serve(t, sup, "cloud", cloudConfig("198.51.100.50", "198.51.100.60"))
	c = start()
	defer c.Stop(false)
	next := waitEvent(t, events, "lease after restart", func(e dhcpclient.Event) bool { return e.Kind == dhcpclient.Bound })
	if next.Lease.Address.String() == old {
		t.Fatalf("server handed out the old address %s again", old)
	}
	if g := testnet.Addrs(t, "tw")["wan"].GlobalAddrs(); len(g) != 1 || g[0] != next.Lease.Address.String() {
		t.Fatalf("wan has %v, want only the new lease %s (the adopted %s removed)", g, next.Lease.Address, old)
	}
}
