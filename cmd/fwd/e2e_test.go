package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
)

func TestMain(m *testing.M) { testkit.Main(m) }

var (
	buildOnce sync.Once
	fwdBin    string
	buildErr  error
)

// binary builds the fwd command once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fwd-e2e")
		if err != nil {
			buildErr = err
			return
		}
		fwdBin = filepath.Join(dir, "fwd")
		out, err := exec.Command("go", "build", "-o", fwdBin, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("%s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build fwd: %v", buildErr)
	}
	return fwdBin
}

// fwd runs the binary and returns stdout, stderr and the exit code.
func fwd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// logWatcher collects a daemon's stderr and waits for lines.
type logWatcher struct {
	mu    sync.Mutex
	lines []string
	cond  chan struct{}
}

func watchLog(r io.Reader) *logWatcher {
	w := &logWatcher{cond: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			w.mu.Lock()
			w.lines = append(w.lines, sc.Text())
			w.mu.Unlock()
			select {
			case w.cond <- struct{}{}:
			default:
			}
		}
	}()
	return w
}

// wait returns the first line after index from containing all substrings.
func (w *logWatcher) wait(t *testing.T, from int, subs ...string) (string, int) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		w.mu.Lock()
		for i := from; i < len(w.lines); i++ {
			ok := true
			for _, s := range subs {
				ok = ok && strings.Contains(w.lines[i], s)
			}
			if ok {
				w.mu.Unlock()
				return w.lines[i], i + 1
			}
		}
		all := strings.Join(w.lines, "\n")
		w.mu.Unlock()
		select {
		case <-w.cond:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("daemon never logged %q; log:\n%s", subs, all)
		}
	}
}

type daemonProc struct {
	cmd *exec.Cmd
	log *logWatcher
}

func startDaemon(t *testing.T, cfg string) *daemonProc {
	t.Helper()
	cmd := exec.Command(binary(t), "run", "-c", cfg, "--pid-file", "/run/fwd/e2e.pid", "--revision-dir", "/run/fwd/e2e-revisions")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{cmd: cmd, log: watchLog(stderr)}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return d
}

func (d *daemonProc) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.cmd.Wait(); err != nil {
		t.Fatalf("daemon exit: %v", err)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

const e2eConfig = `
[mgmt]
protect = ["eth0"]

[tenant.edge.interface.wan]
device = "eth1"
addresses = ["203.0.113.2/24"]

[tenant.edge.interface.lan]
device = "eth2"
addresses = ["192.0.2.1/24"]
`

func TestDaemonLifecycle(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "wan-host")
	testnet.Host(t, "lan-host")
	testnet.NIC(t, "eth1", "wan-host", "wan0", netip.MustParseAddr("203.0.113.2"), "203.0.113.1/24")
	testnet.NIC(t, "eth2", "lan-host", "lan0", netip.MustParseAddr("192.0.2.1"), "192.0.2.10/24")
	t.Cleanup(func() { fwd(t, "teardown", "-y") })
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fwd.toml")
	writeFile(t, cfg, e2eConfig)

	// plan before apply shows the moves, changes nothing.
	out, _, code := fwd(t, "plan", "-c", cfg, "--exit-code")
	if code != exitChanges || !strings.Contains(out, "move-link eth1 -> wan") {
		t.Fatalf("plan: code %d\n%s", code, out)
	}
	if ns.Exists("edge") {
		t.Fatal("plan created the namespace")
	}

	d := startDaemon(t, cfg)
	_, n := d.log.wait(t, 0, "msg=applied", "reason=start")
	if !testnet.WaitPing("lan-host", "203.0.113.1", 5*time.Second) {
		t.Fatal("no traffic through the tenant after start")
	}
	out, _, code = fwd(t, "plan", "-c", cfg, "--exit-code")
	if code != 0 || !strings.Contains(out, "No changes") {
		t.Fatalf("plan after apply: code %d\n%s", code, out)
	}

	// show -j reads the kernel.
	out, _, code = fwd(t, "show", "-j")
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
	out, _, code = fwd(t, "exec", "edge", "--", "ip", "-br", "addr", "show", "dev", "wan")
	if code != 0 || !strings.Contains(out, "203.0.113.2/24") {
		t.Fatalf("exec: code %d\n%s", code, out)
	}

	// An invalid reload is rejected and changes nothing.
	writeFile(t, cfg, e2eConfig+"\n[tenant.edge.interface.dmz]\ndevice = \"eth1\"\n")
	_, errOut, code := fwd(t, "reload", "-c", cfg, "--pid-file", "/run/fwd/e2e.pid")
	if code != exitFailure || !strings.Contains(errOut, "is already claimed") {
		t.Fatalf("reload of invalid config: code %d\n%s", code, errOut)
	}
	d.cmd.Process.Signal(syscall.SIGHUP) // the daemon must reject it too
	_, n = d.log.wait(t, n, "reload rejected")
	if !testnet.Ping("lan-host", "203.0.113.1") {
		t.Fatal("traffic broken after a rejected reload")
	}

	// A valid reload removes lan (handed back), adds a NIC that does not
	// exist yet; it is moved in as soon as it appears.
	writeFile(t, cfg, `
[tenant.edge.interface.wan]
device = "eth1"
addresses = ["203.0.113.2/24"]

[tenant.edge.interface.dmz]
device = "eth5"
addresses = ["198.51.100.1/24"]
`)
	if _, errOut, code := fwd(t, "reload", "-c", cfg, "--pid-file", "/run/fwd/e2e.pid"); code != 0 {
		t.Fatalf("reload: %d %s", code, errOut)
	}
	_, n = d.log.wait(t, n, "msg=applied", "reason=reload", "waiting_for")
	if _, ok := testnet.Addrs(t, "")["eth2"]; !ok {
		t.Fatal("eth2 not handed back after reload")
	}
	testnet.Host(t, "dmz-host")
	testnet.NIC(t, "eth5", "dmz-host", "dmz0", netip.Addr{}, "198.51.100.10/24")
	_, n = d.log.wait(t, n, "msg=applied", `reason="link appeared"`)
	if !testnet.WaitPing("dmz-host", "198.51.100.1", 5*time.Second) {
		t.Fatal("late NIC not moved in and addressed")
	}

	// SIGTERM leaves the data plane up.
	d.stop(t)
	if !ns.Exists("edge") || !testnet.Ping("dmz-host", "198.51.100.1") {
		t.Fatal("data plane torn down by daemon exit")
	}
	// Restart adopts: zero changes.
	d2 := startDaemon(t, cfg)
	line, _ := d2.log.wait(t, 0, "msg=applied", "reason=start")
	if !strings.Contains(line, "changes=0") {
		t.Fatalf("restart made changes: %s", line)
	}
	// teardown refuses while a daemon runs: it would re-create everything.
	if _, errOut, code := fwd(t, "teardown", "-y"); code != exitFailure || !strings.Contains(errOut, "daemon is running") || !ns.Exists("edge") {
		t.Fatalf("teardown with a running daemon: exit %d\n%s", code, errOut)
	}
	d2.stop(t)

	// teardown hands everything back.
	out, _, code = fwd(t, "teardown", "-y")
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

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	writeFile(t, good, e2eConfig)
	if out, _, code := fwd(t, "check", good); code != 0 || !strings.Contains(out, "valid (1 tenants)") {
		t.Fatalf("check good: %d %s", code, out)
	}
	bad := filepath.Join(dir, "bad.toml")
	writeFile(t, bad, "[tenant.edge.interface.wan]\ndevice = \"eth1\"\nmtu = 1\n[tenant.x.interface.y]\ndevice = \"eth1\"\nfoo = 1\n")
	_, errOut, code := fwd(t, "check", "-c", bad)
	if code != exitFailure {
		t.Fatalf("check bad: exit %d", code)
	}
	// Every problem in one pass: the unknown key hides none of the others.
	want := bad + ":3: tenant.edge.interface.wan.mtu: MTU 1 out of range 68-65535 (leave mtu out to keep the device's)\n" +
		bad + ":5: tenant.x.interface.y.device: device \"eth1\" is already claimed by tenant.edge.interface.wan\n" +
		bad + ":6: tenant.x.interface.y.foo: unknown key"
	if strings.TrimSpace(errOut) != want {
		t.Fatalf("check bad output:\n%s\nwant:\n%s", errOut, want)
	}
	if _, _, code := fwd(t, "check", "-c", filepath.Join(dir, "missing.toml")); code != exitFailure {
		t.Fatalf("missing file: exit %d", code)
	}
	if _, _, code := fwd(t, "bogus"); code != exitUsage {
		t.Fatalf("unknown command: exit %d", code)
	}
}

func TestLab(t *testing.T) {
	testkit.Require(t)
	out, errOut, code := fwd(t, "lab", "--check")
	if code != 0 || !strings.Contains(out, "all checks passed") {
		t.Fatalf("lab --check: exit %d\n%s\n%s", code, out, errOut)
	}
}
