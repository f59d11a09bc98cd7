//go:build kernel

package main

import (
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
)

func TestDaemonLifecycle(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "wan-host")
	testnet.Host(t, "lan-host")
	testnet.NIC(t, "eth1", "wan-host", "wan0", netip.MustParseAddr("203.0.113.2"), "203.0.113.1/24")
	testnet.NIC(t, "eth2", "lan-host", "lan0", netip.MustParseAddr("192.0.2.1"), "192.0.2.10/24")
	t.Cleanup(func() { testkit.Fwd(t, "teardown", "-y") })
	cfg := filepath.Join(t.TempDir(), "fwd.toml")
	writeFile(t, cfg, testkit.Fixture(t, "edge.toml"))

	// plan before apply shows the moves, changes nothing.
	out, _, code := testkit.Fwd(t, "plan", "-c", cfg, "--exit-code")
	if code != exitChanges || !strings.Contains(out, "move-link eth1 -> wan") {
		t.Fatalf("plan: code %d\n%s", code, out)
	}
	if ns.Exists("edge") {
		t.Fatal("plan created the namespace")
	}

	d := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "e2e"})
	_, n := d.Log.Wait(t, 0, "msg=applied", "reason=start")
	if !testnet.WaitPing("lan-host", "203.0.113.1", 5*time.Second) {
		t.Fatal("no traffic through the tenant after start")
	}
	out, _, code = testkit.Fwd(t, "plan", "-c", cfg, "--exit-code")
	if code != 0 || !strings.Contains(out, "No changes") {
		t.Fatalf("plan after apply: code %d\n%s", code, out)
	}

	// show -j reads the kernel.
	out, _, code = d.Fwd(t, "show", "-j")
	var shown []struct {
		Name       string `json:"name"`
		Interfaces []struct {
			Name      string   `json:"name"`
			Addresses []string `json:"addresses"`
		} `json:"interfaces"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &shown) != nil || len(shown) != 1 || shown[0].Name != "edge" || len(shown[0].Interfaces) != 2 {
		t.Fatalf("show -j: code %d\n%s", code, out)
	}
	// exec runs inside the tenant.
	out, _, code = testkit.Fwd(t, "exec", "edge", "--", "ip", "-br", "addr", "show", "dev", "wan")
	if code != 0 || !strings.Contains(out, "203.0.113.2/24") {
		t.Fatalf("exec: code %d\n%s", code, out)
	}

	// An invalid reload is rejected and changes nothing.
	writeFile(t, cfg, testkit.Fixture(t, "edge.toml")+"\n[tenant.edge.interface.dmz]\ndevice = \"eth1\"\n")
	_, errOut, code := d.Fwd(t, "reload", "-c", cfg, "--pid-file", d.PidFile)
	if code != exitFailure || !strings.Contains(errOut, "is already claimed") {
		t.Fatalf("reload of invalid config: code %d\n%s", code, errOut)
	}
	d.Signal(t, syscall.SIGHUP) // the daemon must reject it too
	_, n = d.Log.Wait(t, n, "reload rejected")
	if !testnet.Ping("lan-host", "203.0.113.1") {
		t.Fatal("traffic broken after a rejected reload")
	}

	// A valid reload removes lan (handed back), adds a NIC that does not
	// exist yet; it is moved in as soon as it appears.
	writeFile(t, cfg, testkit.Fixture(t, "edge-late-nic.toml"))
	if _, errOut, code := d.Fwd(t, "reload", "-c", cfg, "--pid-file", d.PidFile); code != 0 {
		t.Fatalf("reload: %d %s", code, errOut)
	}
	_, n = d.Log.Wait(t, n, "msg=applied", "reason=reload", "waiting_for")
	if _, ok := testnet.Addrs(t, "")["eth2"]; !ok {
		t.Fatal("eth2 not handed back after reload")
	}
	testnet.Host(t, "dmz-host")
	testnet.NIC(t, "eth5", "dmz-host", "dmz0", netip.Addr{}, "198.51.100.10/24")
	d.Log.Wait(t, n, "msg=applied", `reason="link appeared"`)
	if !testnet.WaitPing("dmz-host", "198.51.100.1", 5*time.Second) {
		t.Fatal("late NIC not moved in and addressed")
	}

	// SIGTERM leaves the data plane up.
	d.Stop(t)
	if !ns.Exists("edge") || !testnet.Ping("dmz-host", "198.51.100.1") {
		t.Fatal("data plane torn down by daemon exit")
	}
	// Restart adopts: zero changes.
	d2 := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "e2e", RevisionDir: d.RevisionDir})
	line, _ := d2.Log.Wait(t, 0, "msg=applied", "reason=start")
	if !strings.Contains(line, "changes=0") {
		t.Fatalf("restart made changes: %s", line)
	}
	// teardown refuses while a daemon runs: it would re-create everything.
	if _, errOut, code := d2.Fwd(t, "teardown", "-y"); code != exitFailure || !strings.Contains(errOut, "daemon is running") || !ns.Exists("edge") {
		t.Fatalf("teardown with a running daemon: exit %d\n%s", code, errOut)
	}
	d2.Stop(t)

	// teardown hands everything back.
	out, _, code = testkit.Fwd(t, "teardown", "-y")
	if code != 0 || ns.Exists("edge") {
		t.Fatalf("teardown: code %d\n%s", code, out)
	}
	def := testnet.Addrs(t, "")
	for _, nic := range []string{"eth1", "eth2", "eth5"} {
		if _, ok := def[nic]; !ok {
			t.Errorf("%s not back in the default namespace after teardown", nic)
		}
	}
}

func TestLab(t *testing.T) {
	testkit.Require(t)
	out, errOut, code := testkit.Fwd(t, "lab", "--check")
	if code != 0 || !strings.Contains(out, "all checks passed") || !strings.Contains(out, "lan-host got 192.0.2.10/24 by DHCP") {
		t.Fatalf("lab --check: exit %d\n%s\n%s", code, out, errOut)
	}
}
