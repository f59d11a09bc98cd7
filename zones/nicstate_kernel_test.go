//go:build kernel

package zones_test

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
	"github.com/fwdproject/fwd/zones"
)

var errCrash = errors.New("simulated kill -9")

// crashAt makes the next apply stop dead at point.
func crashAt(t *testing.T, point string) {
	t.Helper()
	remove := zones.SetFailpoint(func(p string) error {
		if p == point {
			return errCrash
		}
		return nil
	})
	t.Cleanup(remove)
}

func noFailpoint() { zones.SetFailpoint(nil)() }

// assertBack checks a NIC is in the default namespace under its name,
// unmarked, with its MTU and up (as it was before fwd took it).
func assertBack(t *testing.T, name string, mtu int) {
	t.Helper()
	l, ok := testnet.Addrs(t, "")[name]
	if !ok {
		t.Fatalf("%s not in the default namespace", name)
	}
	if l.IfAlias != "" || l.MTU != mtu || !slices.Contains(l.Flags, "UP") {
		t.Fatalf("%s back with alias %q mtu %d flags %v, want no alias, mtu %d, UP", name, l.IfAlias, l.MTU, l.Flags, mtu)
	}
}

func upNIC(t *testing.T, host, nic string) {
	testnet.Host(t, host)
	testnet.NIC(t, nic, host, "p0", netip.Addr{})
	testnet.MustCmd(t, "", "ip", "link", "set", nic, "up")
}

// A NIC moved from one tenant to another in one reload keeps "it was up"
// (its up=1 mark used to be lost: teardown then handed it back down).
func TestFaultMoveBetweenTenantsKeepsUp(t *testing.T) {
	testkit.Require(t)
	upNIC(t, "h-mv", "eth11")
	m := newManager(t)
	teardown(t, m)
	reconcile(t, m, mustConfig(t, "[tenant.one.interface.wan]\ndevice = \"eth11\"\n"))
	reconcile(t, m, mustConfig(t, "[tenant.one]\n[tenant.two.interface.wan]\ndevice = \"eth11\"\n"))
	if a := testnet.Addrs(t, "two")["wan"].IfAlias; !strings.Contains(a, "up=1") {
		t.Fatalf("mark after the move between tenants = %q, want up=1", a)
	}
	reconcile(t, m, &config.Config{})
	assertBack(t, "eth11", 1500)
}

// A kill between recording the NIC's state and moving it: the next apply
// (a restarted daemon) moves it in with the recorded state, and a
// teardown hands it back up.
func TestFaultKillInsideMove(t *testing.T) {
	testkit.Require(t)
	upNIC(t, "h-crash", "eth12")
	m := newManager(t)
	teardown(t, m)
	cfg := mustConfig(t, "[tenant.crash.interface.wan]\ndevice = \"eth12\"\n")
	crashAt(t, "move-marked")
	if _, err := apply(m, cfg); !errors.Is(err, errCrash) {
		t.Fatalf("apply: %v, want the simulated crash", err)
	}
	noFailpoint()
	// What the crash left, seen by a daemon that then drops the tenant.
	p, err := newManager(t).Plan(t.Context(), &config.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(planText(p), "restore-link eth12") {
		t.Fatalf("the NIC in transit is not restored:\n%s", planText(p))
	}
	m2 := newManager(t)
	reconcile(t, m2, cfg)
	if a := testnet.Addrs(t, "crash")["wan"].IfAlias; !strings.Contains(a, "up=1") {
		t.Fatalf("mark after the restarted move = %q, want up=1", a)
	}
	assertNoChanges(t, m2, cfg)
	reconcile(t, m2, &config.Config{})
	assertBack(t, "eth12", 1500)

	// The same kill when the NIC is handed back (after the move, before
	// it is brought up): the next apply restores it.
	reconcile(t, m2, cfg)
	crashAt(t, "return-moved")
	if _, err := apply(m2, &config.Config{}); !errors.Is(err, errCrash) {
		t.Fatalf("teardown: %v, want the simulated crash", err)
	}
	noFailpoint()
	reconcile(t, newManager(t), &config.Config{})
	assertBack(t, "eth12", 1500)
}

// A move the kernel refuses after it moved the NIC (an MTU its parent
// cannot carry: the kernel moves first, sets the MTU after) hands it back
// as it was: name, MTU, up, no mark.
func TestFaultFailedMoveRestoresNIC(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "h-fail")
	testnet.NIC(t, "eth13", "h-fail", "p0", netip.Addr{})
	testnet.MustCmd(t, "", "ip", "link", "add", "link", "eth13", "name", "nic13", "type", "macvlan")
	testnet.MustCmd(t, "", "ip", "link", "set", "nic13", "up")
	m := newManager(t)
	teardown(t, m)
	_, err := apply(m, mustConfig(t, "[tenant.fail.interface.wan]\ndevice = \"nic13\"\nmtu = 9000\n"))
	if err == nil {
		t.Fatal("a move with an MTU above the parent's succeeded")
	}
	assertBack(t, "nic13", 1500)
	if _, ok := testnet.Addrs(t, "fail")["nic13"]; ok {
		t.Fatal("NIC left in the tenant")
	}
}

// An operator's veth named like a declared interface, of the declared
// kind, is never adopted, re-addressed or deleted: the apply refuses
// and names it.
func TestFaultUnmarkedLinkIsNotAdopted(t *testing.T) {
	testkit.Require(t)
	m := newManager(t)
	teardown(t, m)
	cfg := mustConfig(t, `
[tenant.ua.interface.x]
peer = { tenant = "ub", name = "y" }
addresses = ["198.18.5.0/31"]
[tenant.ub.interface.y]
peer = { tenant = "ua", name = "x" }
`)
	reconcile(t, m, mustConfig(t, "[tenant.ua]\n[tenant.ub]\n"))
	testnet.MustCmd(t, "ua", "ip", "link", "add", "x", "type", "veth", "peer", "name", "opr")
	_, err := apply(m, cfg)
	var ce *zones.ConflictError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), `interface "x" exists in the namespace but is not fwd's`) {
		t.Fatalf("apply over an operator's veth: %v", err)
	}
	x := testnet.Addrs(t, "ua")["x"]
	if x.IfAlias != "" || len(x.GlobalAddrs()) != 0 {
		t.Fatalf("operator's veth touched: alias %q addresses %v", x.IfAlias, x.GlobalAddrs())
	}
	reconcile(t, m, &config.Config{}) // and removal leaves it alone (it dies with the namespace only)
}

// A kill between naming the two ends of a new veth pair: the next apply
// deletes the half-made pair and makes a working one.
func TestFaultKillInsideVethCreation(t *testing.T) {
	testkit.Require(t)
	m := newManager(t)
	teardown(t, m)
	cfg := mustConfig(t, `
[tenant.va.interface.x]
peer = { tenant = "vb", name = "y" }
addresses = ["198.18.6.0/31"]
[tenant.vb.interface.y]
peer = { tenant = "va", name = "x" }
addresses = ["198.18.6.1/31"]
`)
	crashAt(t, "veth-half-named")
	if _, err := apply(m, cfg); !errors.Is(err, errCrash) {
		t.Fatalf("apply: %v, want the simulated crash", err)
	}
	noFailpoint()
	reconcile(t, newManager(t), cfg)
	if !testnet.WaitPing("va", "198.18.6.1", 5*time.Second) {
		t.Fatal("pair not working after the recovered crash")
	}
	assertNoChanges(t, m, cfg)
}

func planText(p *zones.Plan) string {
	var b []string
	for _, c := range p.Changes() {
		b = append(b, c.String())
	}
	return strings.Join(b, "\n")
}
