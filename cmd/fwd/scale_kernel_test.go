//go:build kernel

package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
)

// ScaleEnv sets the number of tenants of TestScale (default 50; the
// README's full-size run uses 250).
const ScaleEnv = "FWD_SCALE_TENANTS"

// scaleConfig is n tenants, each with a macvlan of the shared trunk, one
// moved NIC, a small policy with masquerade and a default route. With
// lan false, the NICs are gone from the file (handed back).
func scaleConfig(n int, lan bool, extra string) string {
	var b strings.Builder
	for i := range n {
		t := fmt.Sprintf("t%03d", i)
		fmt.Fprintf(&b, "[tenant.%s.interface.up]\nmacvlan = { parent = \"trunk0\" }\naddresses = [\"198.18.%d.%d/15\"]\n", t, (i+10)/250, (i+10)%250+1)
		fmt.Fprintf(&b, "[tenant.%s.zone.wan]\ninterfaces = [\"up\"]\n", t)
		fmt.Fprintf(&b, "[[tenant.%s.route]]\nto = \"default\"\nvia = \"198.18.0.1\"\n", t)
		fmt.Fprintf(&b, "[[tenant.%s.nat]]\ntype = \"masquerade\"\nout = \"wan\"\n", t)
		if lan {
			fmt.Fprintf(&b, "[tenant.%s.interface.lan]\ndevice = \"nic%d\"\naddresses = [\"203.0.113.1/24\"]\n", t, i)
			fmt.Fprintf(&b, "[tenant.%s.zone.lan]\ninterfaces = [\"lan\"]\n", t)
			fmt.Fprintf(&b, "[[tenant.%s.policy]]\nfrom = \"lan\"\nto = \"wan\"\naction = \"accept\"\n", t)
		}
		fmt.Fprintf(&b, "[[tenant.%s.rule]]\nname = \"ping\"\nfrom = \"any\"\nto = \"self\"\nproto = \"icmp\"\naction = \"accept\"\n%s", t, extra)
	}
	return b.String()
}

func rssKiB(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

func fds(pid int) int {
	e, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(e)
}

// TestScale: a configuration of N tenants starts, stays up (traffic
// through the first and the last tenant), reloads, hands back N NICs and
// tears down, with the daemon running throughout (its link watch sees a
// burst of events at each step). It logs the time to the first apply and
// the daemon's RSS and open descriptors.
func TestScale(t *testing.T) {
	testkit.Require(t)
	n := 50
	if v := os.Getenv(ScaleEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 2 || n > 1000 {
			t.Fatalf("%s=%q: want 2-1000", ScaleEnv, v)
		}
	}
	testnet.Host(t, "h-trunk")
	testnet.NIC(t, "trunk0", "h-trunk", "p0", netip.Addr{}, "198.18.0.1/15")
	testnet.MustCmd(t, "", "ip", "link", "set", "trunk0", "up")
	// The first and the last tenant's NICs lead to hosts of their own
	// (traffic); the others' far ends wait in one namespace.
	testnet.Host(t, "h-first")
	testnet.Host(t, "h-last")
	testnet.Host(t, "h-lans")
	testnet.NIC(t, "nic0", "h-first", "p0", netip.MustParseAddr("203.0.113.1"), "203.0.113.10/24")
	testnet.NIC(t, fmt.Sprintf("nic%d", n-1), "h-last", "p0", netip.MustParseAddr("203.0.113.1"), "203.0.113.10/24")
	var batch strings.Builder
	for i := 1; i < n-1; i++ {
		fmt.Fprintf(&batch, "link add nic%d type veth peer name p%d netns h-lans\n", i, i)
	}
	dir := t.TempDir()
	bf := filepath.Join(dir, "nics")
	writeFile(t, bf, batch.String())
	testnet.MustCmd(t, "", "ip", "-batch", bf)
	t.Cleanup(func() { testkit.Fwd(t, "teardown", "-y") })

	cfg := filepath.Join(dir, "fwd.toml")
	writeFile(t, cfg, scaleConfig(n, true, ""))
	testkit.Binary(t) // built before the clock starts
	start := time.Now()
	d := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "scale"})
	line, at := d.Log.Wait(t, 0, "msg=applied", "reason=start")
	firstApply := time.Since(start)
	pid := d.Cmd.Process.Pid
	t.Logf("%d tenants: first apply done %v after start (%s); daemon RSS %d KiB, %d open descriptors",
		n, firstApply.Round(time.Millisecond), attr(line, "duration"), rssKiB(t, pid), fds(pid))
	if strings.Contains(line, "waiting_for") || strings.Contains(line, "error") {
		t.Fatalf("start: %s", line)
	}
	for _, h := range []string{"h-first", "h-last"} {
		if !testnet.WaitPing(h, "198.18.0.1", 5*time.Second) {
			t.Fatalf("%s cannot reach the trunk host through its tenant (masquerade)", h)
		}
	}

	// Stays up: the link events of the start settle without an exit.
	time.Sleep(time.Second)
	if d.Cmd.ProcessState != nil {
		t.Fatal("daemon exited after the first apply")
	}

	// Reload: every tenant's rule changes.
	writeFile(t, cfg, scaleConfig(n, true, "comment = \"reloaded\"\n"))
	if _, errOut, code := d.Fwd(t, "reload", "-c", cfg, "--pid-file", d.PidFile); code != 0 {
		line, _ := d.Log.Wait(t, at, "apply failed")
		t.Fatalf("reload: %d %s\n%s", code, errOut, line)
	}
	line, at = d.Log.Wait(t, at, "msg=applied", "reason=reload")
	t.Logf("%d tenants: reload %s; daemon RSS %d KiB", n, attr(line, "duration"), rssKiB(t, pid))

	// Hand back every NIC.
	writeFile(t, cfg, scaleConfig(n, false, ""))
	if _, errOut, code := d.Fwd(t, "reload", "-c", cfg, "--pid-file", d.PidFile); code != 0 {
		line, _ := d.Log.Wait(t, at, "apply failed")
		t.Fatalf("reload without the NICs: %d %s\n%s", code, errOut, line)
	}
	line, _ = d.Log.Wait(t, at, "msg=applied", "reason=reload")
	t.Logf("%d tenants: hand-back of %d NICs %s", n, n, attr(line, "duration"))
	def := testnet.Addrs(t, "")
	for i := range n {
		if _, ok := def[fmt.Sprintf("nic%d", i)]; !ok {
			t.Fatalf("nic%d not handed back", i)
		}
	}
	time.Sleep(time.Second) // the hand-back's burst of link events
	if d.Cmd.ProcessState != nil {
		t.Fatal("daemon exited after the hand-back")
	}
	d.Stop(t)

	start = time.Now()
	if _, errOut, code := testkit.Fwd(t, "teardown", "-y"); code != 0 {
		t.Fatalf("teardown: %d %s", code, errOut)
	}
	t.Logf("%d tenants: teardown %v", n, time.Since(start).Round(time.Millisecond))
	names, err := ns.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if strings.HasPrefix(name, "t") {
			t.Fatalf("namespace %s left after teardown", name)
		}
	}
}

// attr returns the value of key=value in a text log line.
func attr(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}
