//go:build kernel

package main

import (
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwdproject/fwd/daemon"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
)

// The end-to-end part of the fault suite (`make test-faults`).

func edgeHosts(t *testing.T) {
	t.Helper()
	testnet.Host(t, "wan-host")
	testnet.Host(t, "lan-host")
	testnet.NIC(t, "eth1", "wan-host", "wan0", netip.MustParseAddr("203.0.113.2"), "203.0.113.1/24")
	testnet.NIC(t, "eth2", "lan-host", "lan0", netip.MustParseAddr("192.0.2.1"), "192.0.2.10/24")
	t.Cleanup(func() { testkit.Fwd(t, "teardown", "-y") })
}

// tenantState is what the kernel holds for the tenant, as JSON.
func tenantState(t *testing.T, tenant string) string {
	t.Helper()
	var b strings.Builder
	for _, argv := range [][]string{
		{"nft", "-j", "list", "ruleset"},
		{"ip", "-j", "route", "show", "table", "all"},
		{"ip", "-j", "link"},
		{"ip", "-j", "addr"},
	} {
		out, err := exec.Command("ip", append([]string{"netns", "exec", tenant}, argv...)...).Output()
		if err != nil {
			t.Fatalf("%v: %v", argv, err)
		}
		b.WriteString(normalize(t, out))
		b.WriteByte('\n')
	}
	return b.String()
}

// kernelIPv6 says whether v is something the kernel adds by itself as
// IPv6 autoconfiguration goes on (link-local addresses and their
// routes): not fwd's, and not stable right after a link comes up.
func kernelIPv6(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	dst, _ := m["dst"].(string)
	return dst == "fe80::/64" || dst == "ff00::/8" || (m["family"] == "inet6" && m["scope"] == "link")
}

// normalize drops the counters and timers that change on their own.
func normalize(t *testing.T, out []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var strip func(any) any
	strip = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k := range x {
				switch k {
				case "packets", "bytes", "stats64", "valid_life_time", "preferred_life_time", "counter":
					delete(x, k)
				default:
					x[k] = strip(x[k])
				}
			}
		case []any:
			kept := x[:0]
			for i := range x {
				if !kernelIPv6(x[i]) {
					kept = append(kept, strip(x[i]))
				}
			}
			return kept
		}
		return v
	}
	b, _ := json.Marshal(strip(v))
	return string(b)
}

// Reloading a running daemon with a wrong-shape file or an empty one,
// by the API and by SIGHUP, changes nothing: same ruleset, routes and
// links in the tenant, and traffic still flows. The empty file passes
// with --allow-empty only, and plan/reload say first what it removes.
func TestFaultBadReloadChangesNothing(t *testing.T) {
	testkit.Require(t)
	edgeHosts(t)
	cfg := filepath.Join(t.TempDir(), "fwd.toml")
	good := testkit.Fixture(t, "edge-guarded.toml")
	writeFile(t, cfg, good)
	d := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "faults"})
	_, n := d.Log.Wait(t, 0, "msg=applied", "reason=start")
	if !testnet.WaitPing("lan-host", "203.0.113.1", 5*time.Second) {
		t.Fatal("no traffic after start")
	}
	before := tenantState(t, "edge")

	for _, bad := range []struct{ name, text, want string }{
		{"wrong shape", "tenant = \"edge\"\n", "want a table"},
		{"wrong shape inside", strings.Replace(good, `[tenant.edge.zone.wan]
interfaces = ["wan"]`, "[tenant.edge]\nzone = \"wan\"", 1), "zone"},
		{"empty", "", "--allow-empty"},
		{"comments only", "# emptied by mistake\n", "--allow-empty"},
		{"mgmt only", "[mgmt]\nprotect = [\"eth0\"]\n", "--allow-empty"},
	} {
		writeFile(t, cfg, bad.text)
		out, errOut, code := d.Fwd(t, "reload", "-c", cfg)
		if code != exitFailure || !strings.Contains(errOut, bad.want) {
			t.Fatalf("%s: reload: exit %d\n%s\n%s", bad.name, code, out, errOut)
		}
		d.Signal(t, syscall.SIGHUP)
		_, n = d.Log.Wait(t, n, "reload rejected")
		if after := tenantState(t, "edge"); after != before {
			t.Fatalf("%s: the kernel changed:\nbefore %s\nafter  %s", bad.name, before, after)
		}
		if !testnet.Ping("lan-host", "203.0.113.1") {
			t.Fatalf("%s: traffic broken", bad.name)
		}
	}

	// plan of the empty file names the removals first, in -j too.
	out, _, code := testkit.Fwd(t, "plan", "-c", cfg)
	if lines := strings.Split(out, "\n"); code != 0 || len(lines) < 4 || !strings.Contains(out, "REMOVES tenant edge") || !strings.Contains(out, "HANDS BACK eth1") || !strings.HasPrefix(lines[0], "!!!") {
		t.Fatalf("plan of an empty file: exit %d\n%s", code, out)
	}
	out, _, _ = testkit.Fwd(t, "plan", "-c", cfg, "-j")
	var plan struct {
		Removals struct{ Tenants, NICs []string } `json:"removals"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil || strings.Join(plan.Removals.Tenants, ",") != "edge" || strings.Join(plan.Removals.NICs, ",") != "eth1,eth2" {
		t.Fatalf("plan -j removals: %v\n%s", err, out)
	}
	// Asked for: it runs, and the reload says what it removed first.
	out, errOut, code := d.Fwd(t, "reload", "-c", cfg, "--allow-empty")
	if code != 0 || !strings.Contains(out, "REMOVES tenant edge") || !strings.Contains(out, "HANDS BACK eth2") || ns.Exists("edge") {
		t.Fatalf("reload --allow-empty: exit %d\n%s\n%s", code, out, errOut)
	}
	d.Stop(t)
}

// SIGTERM during a long reload: the daemon waits for the apply, the
// client gets its reply, the revision is stored, then it exits cleanly.
func TestFaultSigtermDuringReload(t *testing.T) {
	testkit.Require(t)
	edgeHosts(t)
	dir := t.TempDir()
	cfg, fp := filepath.Join(dir, "fwd.toml"), filepath.Join(dir, "failpoint")
	writeFile(t, cfg, testkit.Fixture(t, "edge.toml"))
	d := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "sigterm", Env: []string{daemon.FailpointEnv + "=" + fp}})
	_, n := d.Log.Wait(t, 0, "msg=applied", "reason=start")
	writeFile(t, cfg, testkit.Fixture(t, "edge-guarded.toml"))
	writeFile(t, fp, "delay 3s")
	type reply struct {
		out, errOut string
		code        int
	}
	got := make(chan reply, 1)
	go func() {
		out, errOut, code := d.Fwd(t, "reload", "-c", cfg)
		got <- reply{out, errOut, code}
	}()
	time.Sleep(time.Second) // the apply sleeps in the failpoint
	d.Signal(t, syscall.SIGTERM)
	d.Log.Wait(t, n, "waiting for the apply in progress")
	r := <-got
	if r.code != 0 || !strings.Contains(r.out, "applied revision 2") {
		t.Fatalf("reload interrupted by SIGTERM: exit %d\n%s\n%s", r.code, r.out, r.errOut)
	}
	if err := d.Cmd.Wait(); err != nil {
		t.Fatalf("daemon exit: %v", err)
	}
	d2 := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "sigterm", RevisionDir: d.RevisionDir})
	if line, _ := d2.Log.Wait(t, 0, "msg=applied", "reason=start"); !strings.Contains(line, "changes=0") {
		t.Fatalf("the reload was not complete: restart changed things: %s", line)
	}
	if out, _, _ := d2.Fwd(t, "history"); !strings.Contains(out, "2*") {
		t.Fatalf("revision 2 not stored:\n%s", out)
	}
	d2.Stop(t)
}

// A stale pid file naming a live unrelated process: `fwd reload` with no
// daemon fails without signalling it, `fwd run` starts anyway.
func TestFaultStalePidFile(t *testing.T) {
	testkit.Require(t)
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleep.Process.Kill(); _ = sleep.Wait() })
	exited := make(chan struct{})
	go func() { _ = sleep.Wait(); close(exited) }()
	dir := t.TempDir()
	pid, cfg := filepath.Join(dir, "fwd.pid"), filepath.Join(dir, "fwd.toml")
	writeFile(t, cfg, "[mgmt]\n")
	writeFile(t, pid, strconv.Itoa(sleep.Process.Pid)+"\n")
	_, errOut, code := testkit.Fwd(t, "reload", "-c", cfg, "--pid-file", pid, "--socket", filepath.Join(dir, "none.sock"))
	if code == 0 || !strings.Contains(errOut, "no running daemon") {
		t.Fatalf("reload without a daemon: exit %d\n%s", code, errOut)
	}
	select {
	case <-exited:
		t.Fatal("fwd reload signalled an unrelated process")
	case <-time.After(200 * time.Millisecond):
	}
	// fwd run with that pid file starts, and rewrites it.
	const name = "stalepid"
	writeFile(t, "/run/fwd/"+name+".pid", strconv.Itoa(sleep.Process.Pid)+"\n")
	d := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: name})
	if b, _ := os.ReadFile(d.PidFile); !strings.HasPrefix(string(b), strconv.Itoa(d.Cmd.Process.Pid)+" ") {
		t.Fatalf("pid file not rewritten: %q", b)
	}
	// With the daemon's API unreachable, reload signals the daemon.
	_, errOut, code = testkit.Fwd(t, "reload", "-c", cfg, "--pid-file", d.PidFile, "--socket", filepath.Join(dir, "none.sock"))
	if code != 0 {
		t.Fatalf("reload by signal: exit %d\n%s", code, errOut)
	}
	d.Log.Wait(t, 0, "msg=applied", "reason=reload")
	d.Stop(t)
	if _, err := os.Stat(d.PidFile); !os.IsNotExist(err) {
		t.Fatalf("pid file left: %v", err)
	}
}

// teardown removes what an interrupted namespace creation left: the
// temporary pin and a plain file under a tenant's name.
func TestFaultTeardownSweepsLeftovers(t *testing.T) {
	testkit.Require(t)
	cfg := filepath.Join(t.TempDir(), "fwd.toml")
	writeFile(t, cfg, "[tenant.leftover.interface.wan]\ndevice = \"eth7\"\n")
	if err := os.MkdirAll(ns.RunDir, 0o755); err != nil {
		t.Fatal(err)
	}
	leftovers := []string{ns.Path("leftover"), ns.Path(".fwd-creating.leftover")}
	for _, p := range leftovers {
		writeFile(t, p, "")
	}
	out, errOut, code := testkit.Fwd(t, "teardown", "-y", "-c", cfg)
	if code != 0 || !strings.Contains(out, "remove-leftover-pin") {
		t.Fatalf("teardown: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, p := range leftovers {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left by teardown: %v", p, err)
		}
	}
}
