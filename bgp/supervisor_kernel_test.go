//go:build kernel

package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
	"golang.org/x/sys/unix"
)

func newTestSupervisor(t *testing.T) *Supervisor {
	t.Helper()
	dir := t.TempDir()
	s := NewSupervisor(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), dir)
	s.SpeakerArgv = []string{os.Args[0]}
	s.SpeakerEnv = []string{envSpeaker + "=1"}
	s.WatchParent = true
	s.AnnounceInterval = time.Second
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(dir, "*", "speaker.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", l, b)
			}
		}
	})
	return s
}

// link connects tenant and peer namespaces with a veth pair.
func link(t *testing.T, a, aif, aaddr, b, bif, baddr string) {
	t.Helper()
	testnet.MustCmd(t, "", "ip", "link", "add", aif, "netns", a, "type", "veth", "peer", "name", bif, "netns", b)
	testnet.MustCmd(t, "", "ip", "-n", a, "addr", "add", aaddr, "dev", aif)
	testnet.MustCmd(t, "", "ip", "-n", b, "addr", "add", baddr, "dev", bif)
	testnet.MustCmd(t, "", "ip", "-n", a, "link", "set", aif, "up")
	testnet.MustCmd(t, "", "ip", "-n", b, "link", "set", bif, "up")
}

type bird struct {
	t    *testing.T
	ns   string
	dir  string
	sock string
	cmd  *exec.Cmd
}

// startBird runs BIRD 2 in namespace nsName with the given protocols.
func startBird(t *testing.T, nsName, routerID, body string) *bird {
	t.Helper()
	if _, err := exec.LookPath("bird"); err != nil {
		t.Fatal("bird2 is not installed (apt-get install -y bird2)")
	}
	dir := t.TempDir()
	b := &bird{t: t, ns: nsName, dir: dir, sock: filepath.Join(dir, "bird.ctl")}
	conf := fmt.Sprintf("router id %s;\nlog %q all;\nprotocol device {}\n%s\n", routerID, filepath.Join(dir, "bird.log"), body)
	if err := os.WriteFile(filepath.Join(dir, "bird.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	b.start()
	t.Cleanup(b.kill)
	return b
}

func (b *bird) start() {
	b.t.Helper()
	b.cmd = exec.Command("ip", "netns", "exec", b.ns, "bird", "-f", "-c", filepath.Join(b.dir, "bird.conf"), "-s", b.sock, "-P", filepath.Join(b.dir, "bird.pid"))
	b.cmd.Stdout, b.cmd.Stderr = os.Stderr, os.Stderr
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	waitFor(b.t, 10*time.Second, "birdc socket", func() bool { _, err := os.Stat(b.sock); return err == nil })
}

func (b *bird) kill() {
	if b.cmd != nil && b.cmd.Process != nil {
		if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			b.t.Errorf("kill bird: %v", err)
		}
		_ = b.cmd.Wait() // killed: the status says so
		b.cmd = nil
	}
}

func (b *bird) c(args ...string) string {
	b.t.Helper()
	out, err := exec.Command("birdc", append([]string{"-s", b.sock}, args...)...).CombinedOutput()
	if err != nil {
		b.t.Fatalf("birdc %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kernelRoute returns `ip route show` of a prefix in a tenant's table.
func kernelRoute(t *testing.T, tenant, table, prefix string) string {
	t.Helper()
	out, _ := testnet.Cmd("", "ip", "-n", tenant, "route", "show", "table", table, "exact", prefix)
	return strings.TrimSpace(out)
}

func neighbor(t *testing.T, s *Supervisor, tenant, addr string) Neighbor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ns, err := s.Neighbors(ctx, tenant)
	if err != nil {
		t.Logf("neighbors: %v", err)
		return Neighbor{}
	}
	for _, n := range ns {
		if n.Address == addr {
			return n
		}
	}
	return Neighbor{}
}

// reconcile plans and applies cfg, and returns the changes made as
// "action object".
func reconcile(t *testing.T, s *Supervisor, cfg *config.Config) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := s.Plan(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	planned := changeNames(p.Changes())
	if err := p.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	done := changeNames(p.Changes())
	if strings.Join(planned, ",") != strings.Join(done, ",") {
		t.Errorf("applied changes differ from the plan:\n%v\nplanned:\n%v", done, planned)
	}
	return done
}

// dryRun plans cfg without applying it.
func dryRun(t *testing.T, s *Supervisor, cfg *config.Config) []change.Change {
	t.Helper()
	p, err := s.Plan(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p.Changes()
}

func changeNames(cs []change.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Action+" "+c.Object)
	}
	return out
}

const birdPeer = `
protocol static sa { ipv4; route 198.18.1.0/24 blackhole; route 198.18.66.0/24 blackhole; }
protocol static sb { ipv4; route 198.18.2.0/24 blackhole; }
protocol bgp fwd {
	local 192.0.2.2 as 64513;
	neighbor 192.0.2.1 as 64512;
	hold time 6;
	connect delay time 1;
	connect retry time 2;
	error wait time 1, 2;
	ipv4 { import all; export all; };
}
`

const blueConfig = `
[tenant.blue.interface.b0]
device = "b0"
addresses = ["192.0.2.1/24", "192.51.100.1/24"]

[tenant.blue.bgp]
asn = 64512
announce = ["203.0.113.0/24"]

[[tenant.blue.bgp.neighbor]]
address = "192.0.2.2"
asn = 64513
hold_time = 6
keepalive = 2
import = { deny = ["198.18.66.0/24"] }
`

const blueSecond = `
[[tenant.blue.bgp.neighbor]]
address = "192.0.2.3"
asn = 64514
hold_time = 6
keepalive = 2
`

func TestBIRDInterop(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "blue")
	testnet.Host(t, "peer1")
	testnet.Host(t, "peer2")
	link(t, "blue", "b0", "192.0.2.1/24", "peer1", "p0", "192.0.2.2/24")
	testnet.MustCmd(t, "", "ip", "-n", "peer1", "addr", "add", "198.18.1.1/32", "dev", "lo")
	b1 := startBird(t, "peer1", "192.0.2.2", birdPeer)

	s := newTestSupervisor(t)
	cfg := testkit.Config(t, strings.Replace(blueConfig, `, "192.51.100.1/24"`, "", 1))
	got := reconcile(t, s, cfg)
	if want := "start-speaker speaker,set-filters import/export policies,add-neighbor neighbor 192.0.2.2,announce 203.0.113.0/24"; strings.Join(got, ",") != want {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, ","), want)
	}

	// Process model: the speaker lives in the tenant's namespace, its API
	// socket is 0600, and no BGP port is open in the default namespace.
	st := s.Speakers()
	if len(st) != 1 || !st[0].Running {
		t.Fatalf("speakers: %+v", st)
	}
	var pinSt, procSt unix.Stat_t
	if err := unix.Stat(ns.Path("blue"), &pinSt); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", st[0].PID), &procSt); err != nil {
		t.Fatal(err)
	}
	if pinSt.Ino != procSt.Ino {
		t.Errorf("speaker netns inode %d, tenant's %d", procSt.Ino, pinSt.Ino)
	}
	if fi, err := os.Stat(st[0].Socket); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket %s: %v %v", st[0].Socket, fi.Mode(), err)
	}
	if out := testnet.MustCmd(t, "", "ss", "-Htln"); strings.Contains(out, ":179") {
		t.Errorf("BGP port open in the default namespace:\n%s", out)
	}
	if out := testnet.MustCmd(t, "blue", "ss", "-Htln"); !strings.Contains(out, ":179") {
		t.Errorf("BGP port not open in the tenant:\n%s", out)
	}

	// Session up; BIRD's routes in the tenant's kernel table; filter works.
	waitFor(t, 30*time.Second, "session established", func() bool { return neighbor(t, s, "blue", "192.0.2.2").State == "established" })
	waitFor(t, 10*time.Second, "198.18.1.0/24 in kernel", func() bool { return strings.Contains(kernelRoute(t, "blue", "main", "198.18.1.0/24"), "via 192.0.2.2") })
	if r := kernelRoute(t, "blue", "main", "198.18.1.0/24"); !strings.Contains(r, "proto 244") && !strings.Contains(r, "proto "+ProtocolName) {
		t.Errorf("route %q lacks proto %d", r, Protocol)
	}
	waitFor(t, 10*time.Second, "198.18.2.0/24 in kernel", func() bool { return kernelRoute(t, "blue", "main", "198.18.2.0/24") != "" })
	if r := kernelRoute(t, "blue", "main", "198.18.66.0/24"); r != "" {
		t.Errorf("denied prefix installed: %s", r)
	}
	if !testnet.WaitPing("blue", "198.18.1.1", 5*time.Second) {
		t.Error("no traffic over the BGP route")
	}
	// The status view follows without asking the speaker.
	waitFor(t, 10*time.Second, "status view of the session", func() bool {
		st := s.Status()
		return len(st) == 1 && st[0].State == "running" && len(st[0].Neighbors) == 1 &&
			st[0].Neighbors[0].State == "established" && st[0].RIBPrefixes == 3
	})
	// So does the FIB's count: the two accepted prefixes, not the one
	// this tenant originates, as the kernel holds them.
	waitFor(t, 15*time.Second, "status view of the FIB", func() bool {
		st := s.Status()
		return len(st) == 1 && st[0].FIB != nil && st[0].FIB.Routes == 2 && st[0].FIB.PID == st[0].PID
	})
	if out := testnet.MustCmd(t, "blue", "ip", "route", "show", "proto", "244"); strings.Count(strings.TrimSpace(out), "\n") != 1 {
		t.Errorf("kernel BGP routes (the FIB reports 2):\n%s", out)
	}
	// fwd's announcement reaches BIRD.
	waitFor(t, 10*time.Second, "BIRD learns 203.0.113.0/24", func() bool {
		return strings.Contains(b1.c("show", "route", "203.0.113.0/24"), "203.0.113.0/24")
	})
	n := neighbor(t, s, "blue", "192.0.2.2")
	if n.Accepted != 2 || n.Received != 3 || n.Advertised != 1 {
		t.Errorf("counters: %+v", n)
	}
	ctx := context.Background()
	if rs, err := s.Routes(ctx, "blue", "198.18.1.0/24", 0); err != nil || len(rs) != 1 || rs[0].NextHop != "192.0.2.2" || len(rs[0].ASPath) != 1 || rs[0].ASPath[0] != 64513 {
		t.Errorf("routes: %+v %v", rs, err)
	}

	// Withdrawal in BIRD removes the kernel route.
	b1.c("disable", "sb")
	waitFor(t, 10*time.Second, "198.18.2.0/24 withdrawn", func() bool { return kernelRoute(t, "blue", "main", "198.18.2.0/24") == "" })

	// Reload adding a neighbour keeps the first session.
	link(t, "blue", "b1", "192.51.100.1/24", "peer2", "p0", "192.51.100.3/24")
	since := neighbor(t, s, "blue", "192.0.2.2").Since
	time.Sleep(1100 * time.Millisecond)
	cfg2 := testkit.Config(t, blueConfig+strings.ReplaceAll(blueSecond, "192.0.2.3", "192.51.100.3"))
	got = reconcile(t, s, cfg2)
	if want := "set-filters import/export policies,add-neighbor neighbor 192.51.100.3"; strings.Join(got, ",") != want {
		t.Errorf("reload changes:\n%s\nwant:\n%s", strings.Join(got, ","), want)
	}
	if n := neighbor(t, s, "blue", "192.0.2.2"); n.State != "established" || !n.Since.Equal(since) {
		t.Errorf("first session disturbed by reload: %+v (was up since %v)", n, since)
	}
	if got := reconcile(t, s, cfg2); len(got) != 0 {
		t.Errorf("second reconcile not empty: %v", got)
	}

	// Daemon restart: speakers survive, the new supervisor adopts them and
	// changes nothing; routes stay.
	s.Close()
	if kernelRoute(t, "blue", "main", "198.18.1.0/24") == "" {
		t.Fatal("route lost when the supervisor closed")
	}
	// `fwd plan` in a fresh process: reads the running speakers, adopts
	// nothing, and sees no change.
	s3 := NewSupervisor(nil, s.runDir)
	if cs := dryRun(t, s3, cfg2); len(cs) != 0 || len(s3.Speakers()) != 0 || len(s3.Status()) != 0 {
		t.Errorf("fresh dry run: %v, speakers %+v", cs, s3.Speakers())
	}
	if cs := dryRun(t, s3, testkit.Config(t, "[tenant.blue.interface.b0]\ndevice = \"b0\"\n")); len(cs) != 1 || cs[0].Action != "stop-speaker" {
		t.Errorf("fresh dry run without [bgp]: %v", cs)
	}
	s2 := newTestSupervisor(t)
	s2.runDir = s.runDir
	if got := reconcile(t, s2, cfg2); len(got) != 0 {
		t.Errorf("reconcile after daemon restart: %v", got)
	}
	if n := neighbor(t, s2, "blue", "192.0.2.2"); n.State != "established" || !n.Since.Equal(since) {
		t.Errorf("session disturbed by daemon restart: %+v", n)
	}

	// Speaker crash: routes stay while it comes back, then it re-learns.
	pid := s2.Speakers()[0].PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if kernelRoute(t, "blue", "main", "198.18.1.0/24") == "" {
		t.Error("route removed when the speaker died")
	}
	waitFor(t, 30*time.Second, "speaker restarted", func() bool {
		st := s2.Speakers()
		return len(st) == 1 && st[0].Running && st[0].PID != pid && st[0].Restarts == 1
	})
	waitFor(t, 30*time.Second, "session back", func() bool { return neighbor(t, s2, "blue", "192.0.2.2").State == "established" })
	if !testnet.WaitPing("blue", "198.18.1.1", 5*time.Second) {
		t.Error("no traffic after speaker restart")
	}

	// Removing the neighbour closes the session and withdraws its routes.
	got = reconcile(t, s2, testkit.Config(t, blueConfig))
	if want := "set-filters import/export policies,delete-neighbor neighbor 192.51.100.3"; strings.Join(got, ",") != want {
		t.Errorf("remove changes: %v", got)
	}

	// Killing BIRD removes its routes (socket closed, or at hold time).
	b1.kill()
	waitFor(t, 10*time.Second, "routes gone after BIRD died", func() bool { return kernelRoute(t, "blue", "main", "198.18.1.0/24") == "" })

	// Removing [bgp] stops the speaker.
	got = reconcile(t, s2, testkit.Config(t, "[tenant.blue.interface.b0]\ndevice = \"b0\"\naddresses = [\"192.0.2.1/24\"]\n"))
	if want := "stop-speaker speaker"; strings.Join(got, ",") != want {
		t.Errorf("stop changes: %v", got)
	}
	if len(s2.Speakers()) != 0 {
		t.Errorf("speakers left: %+v", s2.Speakers())
	}
}

func birdFor(local string, asn int) string {
	return fmt.Sprintf(`
protocol static sa { ipv4; route 198.18.5.0/24 blackhole; }
protocol bgp fwd {
	local %s as %d;
	neighbor 192.0.2.1 as 64512;
	hold time 6;
	connect delay time 1;
	connect retry time 2;
	ipv4 { import all; export all; };
}
`, local, asn)
}

func tenantConfig(name, peer string, asn int, extra string) string {
	return fmt.Sprintf(`
[tenant.%[1]s.interface.%[1]s0]
device = "%[1]s0"
addresses = ["192.0.2.1/24"]
[tenant.%[1]s.bgp]
asn = 64512
%[4]s
[[tenant.%[1]s.bgp.neighbor]]
address = "%[2]s"
asn = %[3]d
hold_time = 6
keepalive = 2
`, name, peer, asn, extra)
}

// Two tenants, same addresses, same prefix from two BIRDs with different
// next hops: each tenant's table holds its own. Also: dry run, and
// announce_if_route following the kernel table.
func TestTwoTenantsSamePrefix(t *testing.T) {
	testkit.Require(t)
	for _, h := range []string{"red", "green", "pred", "pgreen"} {
		testnet.Host(t, h)
	}
	link(t, "red", "red0", "192.0.2.1/24", "pred", "p0", "192.0.2.2/24")
	link(t, "green", "green0", "192.0.2.1/24", "pgreen", "p0", "192.0.2.3/24")
	bred := startBird(t, "pred", "192.0.2.2", birdFor("192.0.2.2", 64513))
	startBird(t, "pgreen", "192.0.2.3", birdFor("192.0.2.3", 64514))

	cfg := testkit.Config(t, tenantConfig("red", "192.0.2.2", 64513, `announce_if_route = ["198.51.100.0/24"]`)+
		tenantConfig("green", "192.0.2.3", 64514, ""))
	s := newTestSupervisor(t)
	if cs := dryRun(t, s, cfg); len(cs) != 6 || len(s.Speakers()) != 0 {
		t.Errorf("dry run: %v, speakers %+v", cs, s.Speakers())
	}
	reconcile(t, s, cfg)
	waitFor(t, 30*time.Second, "red route", func() bool {
		return strings.Contains(kernelRoute(t, "red", "main", "198.18.5.0/24"), "via 192.0.2.2")
	})
	waitFor(t, 30*time.Second, "green route", func() bool {
		return strings.Contains(kernelRoute(t, "green", "main", "198.18.5.0/24"), "via 192.0.2.3")
	})
	if n := neighbor(t, s, "red", "192.0.2.3"); n.Address != "" {
		t.Errorf("red's speaker sees green's neighbour: %+v", n)
	}

	// announce_if_route follows a non-BGP route in the table.
	has := func() bool {
		out, _ := exec.Command("birdc", "-s", bred.sock, "show", "route", "198.51.100.0/24").CombinedOutput()
		return strings.Contains(string(out), "198.51.100.0/24")
	}
	time.Sleep(1500 * time.Millisecond)
	if has() {
		t.Error("announce_if_route announced without a route")
	}
	testnet.MustCmd(t, "", "ip", "-n", "red", "route", "add", "blackhole", "198.51.100.0/24")
	waitFor(t, 10*time.Second, "conditional announcement", has)
	testnet.MustCmd(t, "", "ip", "-n", "red", "route", "del", "blackhole", "198.51.100.0/24")
	waitFor(t, 10*time.Second, "conditional withdrawal", func() bool { return !has() })
}

// The real fwd binary as the speaker (hidden bgp-speaker subcommand) and
// `fwd bgp show|routes` reading its socket.
func TestFwdBinary(t *testing.T) {
	testkit.Require(t)
	if testing.Short() {
		t.Skip("builds cmd/fwd")
	}
	fwd := filepath.Join(t.TempDir(), "fwd")
	if out, err := exec.Command("go", "build", "-o", fwd, "../cmd/fwd").CombinedOutput(); err != nil {
		t.Fatalf("build fwd: %v\n%s", err, out)
	}
	testnet.Host(t, "cyan")
	testnet.Host(t, "pcyan")
	link(t, "cyan", "cyan0", "192.0.2.1/24", "pcyan", "p0", "192.0.2.2/24")
	startBird(t, "pcyan", "192.0.2.2", birdFor("192.0.2.2", 64513))
	s := newTestSupervisor(t)
	s.log = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s.SpeakerArgv = []string{fwd, SpeakerCommand}
	s.SpeakerEnv = nil
	reconcile(t, s, testkit.Config(t, tenantConfig("cyan", "192.0.2.2", 64513, `announce = ["203.0.113.0/24"]`)))
	waitFor(t, 30*time.Second, "route via the fwd binary's speaker", func() bool {
		return strings.Contains(kernelRoute(t, "cyan", "main", "198.18.5.0/24"), "via 192.0.2.2")
	})
	// The speaker logs in the supervisor's format and level.
	b, err := os.ReadFile(filepath.Join(s.runDir, "cyan", "speaker.log"))
	if err != nil || !strings.Contains(string(b), `"msg":"speaker started"`) || !strings.HasPrefix(string(b), `{"time":`) {
		t.Errorf("speaker.log is not JSON at level info (%v):\n%s", err, b)
	}
	out := testnet.MustCmd(t, "", fwd, "bgp", "show", "-run-dir", s.runDir, "-j")
	if !strings.Contains(out, `"state": "established"`) || !strings.Contains(out, `"prefixes_accepted": 1`) {
		t.Errorf("fwd bgp show -j:\n%s", out)
	}
	out = testnet.MustCmd(t, "", fwd, "bgp", "show", "-run-dir", s.runDir)
	if !strings.Contains(out, "cyan    192.0.2.2") {
		t.Errorf("fwd bgp show:\n%s", out)
	}
	// The FIB's own count, as status and metrics read it.
	waitFor(t, 5*time.Second, "fwd bgp show: the FIB's count", func() bool {
		out = testnet.MustCmd(t, "", fwd, "bgp", "show", "-run-dir", s.runDir)
		return strings.Contains(out, "tenant cyan: 1 routes in the kernel (0 stale), 0 refused")
	})
	out = testnet.MustCmd(t, "", fwd, "bgp", "routes", "-run-dir", s.runDir, "cyan", "198.18.5.7")
	if !strings.Contains(out, "198.18.5.0/24") || !strings.Contains(out, "64513") {
		t.Errorf("fwd bgp routes:\n%s", out)
	}
	// The stock gobgp CLI works on the socket, when installed
	// (go install github.com/osrg/gobgp/v3/cmd/gobgp@v3.37.0).
	gobgp, err := exec.LookPath("gobgp")
	if err != nil {
		gobgp = filepath.Join(os.Getenv("HOME"), "go", "bin", "gobgp")
	}
	if _, err := os.Stat(gobgp); err == nil {
		out = testnet.MustCmd(t, "", gobgp, "--target", "unix://"+SocketPath(s.runDir, "cyan"), "neighbor")
		if !strings.Contains(out, "192.0.2.2") || !strings.Contains(out, "Establ") {
			t.Errorf("gobgp neighbor:\n%s", out)
		}
	} else {
		t.Log("gobgp CLI not installed: skipping the stock CLI check")
	}
}
