//go:build kernel

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testkit/twobox"
	"github.com/fwdproject/fwd/internal/testnet"
	"github.com/fwdproject/fwd/mgmt"
)

// The HA end to end: two boxes (internal/testkit/twobox), each running the
// real fwd daemon with an [tenant.edge.ha] config; the daemon-managed
// keepalived of A (priority 150) holds the VIPs, B (100) is backup; when
// A's keepalived is stopped, the VIP moves to B within 3 s and the LAN
// host keeps reaching the WAN host.
//
//	lanhost br0 192.0.2.10 ── a/eth2 192.0.2.2, b/eth2 192.0.2.3   (VIP .1)
//	wanhost br0 203.0.113.10 ─ a/eth1 203.0.113.2, b/eth1 .3       (VIP .1)
//	syncseg br0 ────────────── a/eth3 198.18.9.1, b/eth3 198.18.9.2

const haBoxConfig = `
[tenant.edge.interface.wan]
device = "eth1"
addresses = ["203.0.113.%[1]d/24"]
[tenant.edge.interface.lan]
device = "eth2"
addresses = ["192.0.2.%[1]d/24"]
[tenant.edge.interface.sync]
device = "eth3"
addresses = ["198.18.9.%[2]d/24"]

[tenant.edge.ha]
peer = "198.18.9.%[3]d"
sync_interface = "sync"
priority = %[4]d
preempt_delay = "3s"
[[tenant.edge.ha.vip]]
interface = "wan"
address = "203.0.113.1/24"
[[tenant.edge.ha.vip]]
interface = "lan"
address = "192.0.2.1/24"

[tenant.edge.zone.wan]
interfaces = ["wan"]
[tenant.edge.zone.lan]
interfaces = ["lan"]
[tenant.edge.zone.sync]
interfaces = ["sync"]
[[tenant.edge.policy]]
from = "lan"
to = "wan"
action = "accept"
[[tenant.edge.nat]]
type = "snat"
out = "wan"
to = "203.0.113.1"
`

const (
	boxSocket = "/run/fwd/box.sock"
	boxLog    = "/run/fwd-daemon.log"
)

func init() {
	// fwd-run BINARY CONFIG: `fwd run` in the box, as a box's init system
	// would; returns once it has applied.
	twobox.Register("fwd-run", func(args []string) (string, error) {
		if err := os.WriteFile("/run/fwd-box.toml", []byte(args[1]), 0o644); err != nil {
			return "", err
		}
		logf, err := os.Create(boxLog)
		if err != nil {
			return "", err
		}
		cmd := exec.Command(args[0], "run", "-c", "/run/fwd-box.toml", "--log-format", "text", "--socket", boxSocket,
			"--pid-file", "/run/fwd/box.pid", "--revision-dir", "/run/fwd-revisions", "--metrics-listen", "off")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return "", err
		}
		go func() { _ = cmd.Wait() }() // reaped; it dies with the box
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			b, _ := os.ReadFile(boxLog)
			if strings.Contains(string(b), "msg=applied") {
				return "", nil
			}
			if strings.Contains(string(b), "msg=\"apply failed\"") {
				return string(b), fmt.Errorf("fwd apply failed in box")
			}
			time.Sleep(100 * time.Millisecond)
		}
		b, _ := os.ReadFile(boxLog)
		return string(b), fmt.Errorf("fwd did not apply in 30 s")
	})
	// vip-wait present|absent MS: polls the WAN VIP; returns when seen so.
	twobox.Register("vip-wait", func(args []string) (string, error) {
		want := args[0] == "present"
		var ms int
		_, _ = fmt.Sscan(args[1], &ms)
		deadline := time.Now().Add(time.Duration(ms) * time.Millisecond)
		for {
			out, _ := exec.Command("ip", "-n", "edge", "-4", "-o", "addr", "show", "dev", "wan").CombinedOutput()
			if strings.Contains(string(out), " 203.0.113.1/24") == want {
				return "", nil
			}
			if time.Now().After(deadline) {
				return string(out), fmt.Errorf("VIP not %s after %sms", args[0], args[1])
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func boxHA(t *testing.T, bin string, x *twobox.Box) *mgmt.HAStatus {
	t.Helper()
	out := x.MustCall(t, "sh", bin, "status", "-j", "--socket", boxSocket)
	var st mgmt.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Tenants) != 1 || st.Tenants[0].HA == nil {
		t.Fatalf("box %s status: %v\n%s", x.Name, err, out)
	}
	return st.Tenants[0].HA
}

func waitHAState(t *testing.T, bin string, x *twobox.Box, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		h := boxHA(t, bin, x)
		if h.State == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("box %s: ha state %s, want %s: %+v", x.Name, h.State, want, h)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestHAPairEndToEnd(t *testing.T) {
	testkit.Require(t)
	bin := testkit.Binary(t)
	for _, h := range []string{"lanhost", "wanhost", "syncseg"} {
		testnet.Host(t, h)
	}
	twobox.Bridge(t, "lanhost", "br0", "192.0.2.10/24")
	twobox.Bridge(t, "wanhost", "br0", "203.0.113.10/24")
	twobox.Bridge(t, "syncseg", "br0")
	testnet.MustCmd(t, "", "ip", "-n", "lanhost", "route", "add", "default", "via", "192.0.2.1")
	a, b := twobox.Start(t, "a"), twobox.Start(t, "b")
	for _, x := range []*twobox.Box{a, b} {
		for _, l := range []struct{ dev, host string }{{"eth1", "wanhost"}, {"eth2", "lanhost"}, {"eth3", "syncseg"}} {
			x.Link(t, l.dev, l.host, x.Name+"-"+l.dev, "br0")
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, x := range []*twobox.Box{a, b} {
				out, _ := x.Call("sh", "cat", boxLog, "/run/fwd/edge/ha/keepalived.log")
				t.Logf("box %s daemon and keepalived logs:\n%s", x.Name, out)
			}
		}
		a.Kill() // the daemons, keepalived and conntrackd die with their box
		b.Kill()
		if l := twobox.Leftovers("keepalived", "conntrackd", "fwd"); len(l) > 0 {
			t.Errorf("left running: %v", l)
		}
	})

	a.MustCall(t, "fwd-run", bin, fmt.Sprintf(haBoxConfig, 2, 1, 2, 150))
	a.MustCall(t, "vip-wait", "present", "8000")
	b.MustCall(t, "fwd-run", bin, fmt.Sprintf(haBoxConfig, 3, 2, 1, 100))
	waitHAState(t, bin, a, "master", 5*time.Second)
	waitHAState(t, bin, b, "backup", 5*time.Second)
	if h := boxHA(t, bin, a); !h.SyncLinkUp || h.Keepalived != "running" || h.Conntrackd != "running" || h.Priority != 150 {
		t.Fatalf("box a: %+v", h)
	}
	if !testnet.WaitPing("lanhost", "203.0.113.10", 5*time.Second) {
		t.Fatal("LAN host does not reach the WAN host through the pair")
	}

	// Stop A's daemon-managed keepalived: the VIP moves to B in ≤ 3 s.
	t0 := time.Now()
	a.MustCall(t, "sh", "read pid start < /run/fwd/edge/ha/keepalived.pid; kill -TERM $pid")
	b.MustCall(t, "vip-wait", "present", "3000")
	moved := time.Since(t0)
	t.Logf("VIP moved to B %s after keepalived on A was stopped", moved.Round(time.Millisecond))
	if moved > 3*time.Second {
		t.Fatalf("VIP took %s to move", moved)
	}
	if !testnet.WaitPing("lanhost", "203.0.113.10", 3*time.Second) {
		t.Fatal("no traffic through B after the failover")
	}
	// A's supervisor restarts keepalived; after the preempt delay A is
	// master again (failback).
	a.MustCall(t, "vip-wait", "present", "15000")
	waitHAState(t, bin, b, "backup", 5*time.Second)

	// Graceful handover: fwd ha failover edge on A.
	out := a.MustCall(t, "sh", bin, "ha", "failover", "edge", "--socket", boxSocket)
	if !strings.Contains(out, "backup") || !strings.Contains(out, "held") {
		t.Fatalf("fwd ha failover: %s", out)
	}
	b.MustCall(t, "vip-wait", "present", "3000")
	a.MustCall(t, "sh", bin, "ha", "resume", "edge", "--socket", boxSocket)
	a.MustCall(t, "vip-wait", "present", "15000")
}
