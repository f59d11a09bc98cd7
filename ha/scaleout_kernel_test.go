//go:build kernel

package ha

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testkit/twobox"
	"github.com/fwdproject/fwd/internal/testnet"
)

// The scale-out (active/active) topology: two boxes, each running the real
// fwd daemon with a tenant "edge" that announces 203.0.113.0/24 over BGP
// to an upstream BIRD, which installs both paths as one ECMP route
// (`merge paths`) and hashes flows on the 5-tuple
// (fib_multipath_hash_policy=1).
//
//	wanhost 198.18.1.10 ── upstream 198.18.1.1 (BIRD, AS 64600)
//	                       upstream br0 198.51.100.1 ─┬─ a/wan 198.51.100.2 (AS 64512)
//	                                                  └─ b/wan 198.51.100.3 (AS 64512)
//	a/lan 203.0.113.1 ── lan-a 203.0.113.10 (the service, instance "a")
//	b/lan 203.0.113.1 ── lan-b 203.0.113.10 (the service, instance "b")
//
// The service address is anycast: each box has its own instance behind
// it, on a segment only that box reaches, so a flow's replies can only
// leave through the box its SYN came in by. That is how the test gets
// symmetric paths without syncing state: nothing else could route them.
const (
	soService  = "203.0.113.10:8080"
	soWANHost  = "198.18.1.10"
	soHoldTime = 3 * time.Second
	soFlows    = 200
)

const soBoxConfig = `# box %[1]s of the scale-out pair (ha/scaleout_kernel_test.go)
[tenant.edge.interface.wan]
device = "wan"
addresses = ["198.51.100.%[2]d/24"]

[tenant.edge.interface.lan]
device = "lan"
addresses = ["203.0.113.1/24"]

[[tenant.edge.route]]
to = "198.18.1.0/24"
via = "198.51.100.1"

[tenant.edge.zone.wan]
interfaces = ["wan"]
[tenant.edge.zone.lan]
interfaces = ["lan"]

[[tenant.edge.rule]]
name = "bgp"
from = "wan"
to = "self"
proto = "tcp"
dport = 179
action = "accept"

[[tenant.edge.rule]]
name = "svc"
from = "wan"
to = "lan"
proto = "tcp"
dport = 8080
action = "accept"

[tenant.edge.bgp]
asn = 64512
router_id = "198.51.100.%[2]d"
announce = ["203.0.113.0/24"]

[[tenant.edge.bgp.neighbor]]
address = "198.51.100.1"
asn = 64600
hold_time = %[3]d
keepalive = 1
`

const soBirdConfig = `router id 198.51.100.1;
log "%s" all;
protocol device {}
protocol kernel {
	ipv4 { import none; export all; };
	merge paths on;
}
template bgp box {
	local 198.51.100.1 as 64600;
	hold time %d;
	keepalive time 1;
	connect delay time 1;
	connect retry time 1;
	error wait time 1, 2;
	ipv4 { import all; export none; };
}
protocol bgp a from box { neighbor 198.51.100.2 as 64512; }
protocol bgp b from box { neighbor 198.51.100.3 as 64512; }
`

// soBox is one box of the pair and what the harness needs to drive it.
type soBox struct {
	*twobox.Box
	cfg, log string
}

func TestScaleOut(t *testing.T) {
	bin := testkit.Binary(t)
	dir := t.TempDir()
	for _, h := range []string{"upstream", "wanhost", "lan-a", "lan-b"} {
		testnet.Host(t, h)
	}
	twobox.Bridge(t, "upstream", "br0", "198.51.100.1/24")
	testnet.MustCmd(t, "", "ip", "link", "add", "up0", "netns", "upstream", "type", "veth", "peer", "name", "wan0", "netns", "wanhost")
	testnet.MustCmd(t, "", "ip", "-n", "upstream", "addr", "add", "198.18.1.1/24", "dev", "up0")
	testnet.MustCmd(t, "", "ip", "-n", "wanhost", "addr", "add", soWANHost+"/24", "dev", "wan0")
	testnet.MustCmd(t, "", "ip", "-n", "upstream", "link", "set", "up0", "up")
	testnet.MustCmd(t, "", "ip", "-n", "wanhost", "link", "set", "wan0", "up")
	testnet.MustCmd(t, "", "ip", "-n", "wanhost", "route", "add", "default", "via", "198.18.1.1")
	testnet.MustCmd(t, "upstream", "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.fib_multipath_hash_policy=1")

	var boxes []*soBox
	for i, name := range []string{"a", "b"} {
		b := &soBox{Box: twobox.Start(t, name), cfg: filepath.Join(dir, name+".toml"), log: filepath.Join(dir, name+"-fwd.log")}
		boxes = append(boxes, b)
		b.Link(t, "wan", "upstream", name+"-wan", "br0")
		b.Link(t, "lan", "lan-"+name, name+"-lan", "")
		testnet.MustCmd(t, "", "ip", "-n", "lan-"+name, "addr", "add", "203.0.113.10/24", "dev", name+"-lan")
		testnet.MustCmd(t, "", "ip", "-n", "lan-"+name, "route", "add", "default", "via", "203.0.113.1")
		srv, err := testnet.ServeTCP("lan-"+name, soService, name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		if err := os.WriteFile(b.cfg, []byte(fmt.Sprintf(soBoxConfig, name, 2+i, int(soHoldTime/time.Second))), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	bird := startUpstreamBird(t, dir)
	t.Cleanup(func() {
		for _, b := range boxes {
			if _, err := b.Call("so-fwd-stop"); err != nil {
				t.Errorf("stop fwd in box %s: %v", b.Name, err)
			}
			if t.Failed() {
				out, _ := b.Call("sh", "cat /run/fwd/edge/speaker.log; ip netns exec edge nft list ruleset; ip -n edge route")
				daemonLog, _ := os.ReadFile(b.log)
				t.Logf("box %s: fwd run log:\n%s\nspeaker log, ruleset, routes:\n%s", b.Name, daemonLog, out)
			}
			b.Kill()
		}
		if l := twobox.Leftovers("fwd", "bird"); len(l) > 0 {
			t.Errorf("left running: %v", l)
		}
	})
	for _, b := range boxes {
		b.MustCall(t, "so-fwd-start", bin, b.cfg, filepath.Join(dir, b.Name+"-revisions"), b.log)
	}
	if gw := waitUpstreamPaths(t, 2, 20*time.Second); len(gw) != 2 {
		t.Fatalf("upstream has paths %v for 203.0.113.0/24, want both boxes; kernel: %s\nBIRD:\n%s", gw,
			testnet.MustCmd(t, "", "ip", "-n", "upstream", "route"), bird.c("show", "route", "all"))
	}
	t.Logf("upstream ECMP route: %s", strings.TrimSpace(testnet.MustCmd(t, "", "ip", "-o", "-n", "upstream", "route", "show", "203.0.113.0/24")))

	t.Run("spread", func(t *testing.T) {
		before := soRuleCounters(t, bin, boxes)
		served := soRunFlows(t, soFlows)
		after := soRuleCounters(t, bin, boxes)
		t.Logf("%d flows: box a %d, box b %d, failed %d; rule svc counters (SYNs): a +%d, b +%d",
			soFlows, served["a"], served["b"], served["fail"], after["a"]-before["a"], after["b"]-before["b"])
		if served["fail"] > 0 {
			t.Errorf("%d of %d flows failed with both boxes up", served["fail"], soFlows)
		}
		for _, b := range boxes {
			n := served[b.Name]
			if n < soFlows/4 {
				t.Errorf("box %s served %d of %d flows, want a share of at least a quarter", b.Name, n, soFlows)
			}
			if got := after[b.Name] - before[b.Name]; got < uint64(n) || got > uint64(n)+uint64(n)/10+2 {
				t.Errorf("box %s: rule svc counted %d new-flow packets for %d flows served", b.Name, got, n)
			}
		}
	})

	t.Run("speaker-killed", func(t *testing.T) {
		// kill -9 of A's BGP speaker: its kernel closes the TCP session,
		// so BIRD withdraws A's path at once, without waiting for the
		// hold timer; fwd's supervisor restarts the speaker and the path
		// returns.
		t0 := time.Now()
		a := boxes[0]
		a.MustCall(t, "sh", "kill -9 $(cat /run/fwd/edge/speaker.pid)")
		gw := waitUpstreamPaths(t, 1, 3*soHoldTime)
		withdrawn := time.Since(t0)
		if len(gw) != 1 || gw[0] != "198.51.100.3" {
			t.Fatalf("upstream paths %v after A's speaker was killed, want B's alone", gw)
		}
		served := soRunFlows(t, soFlows/4)
		if gw = waitUpstreamPaths(t, 2, 20*time.Second); len(gw) != 2 {
			t.Fatalf("A's path not back after its speaker was restarted: %v", gw)
		}
		t.Logf("A's speaker killed: path withdrawn after %s (no hold-time wait), back after %s; %d flows meanwhile: %v",
			withdrawn.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond), soFlows/4, served)
		if withdrawn > soHoldTime/2 {
			t.Errorf("a closed session took %s to withdraw, want well under the hold time", withdrawn)
		}
		if served["b"] != soFlows/4 {
			t.Errorf("flows while A's speaker was down: %v, want all by B", served)
		}
	})

	t.Run("session-lost", func(t *testing.T) {
		// A's cable to the upstream is pulled (its port on the upstream's
		// switch goes down): no Cease, no TCP reset; BIRD notices only
		// when the hold timer expires, then withdraws A's path.
		stopProbes := soStartProbes()
		t0 := time.Now()
		testnet.MustCmd(t, "", "ip", "-n", "upstream", "link", "set", "a-wan", "down")
		down := time.Since(t0) // the link is down from here on
		gw := waitUpstreamPaths(t, 1, 3*soHoldTime)
		routeMoved := time.Since(t0)
		time.Sleep(2 * time.Second)
		probes := stopProbes()
		if len(gw) != 1 || gw[0] != "198.51.100.3" {
			t.Fatalf("upstream paths %v after A's link went down, want B's alone", gw)
		}
		lastBad, bad, viaA := time.Duration(-1), 0, 0
		for _, p := range probes {
			at := p.at.Sub(t0)
			if p.box != "b" {
				bad++
				lastBad = max(lastBad, at)
			}
			if p.box == "a" && at > down {
				viaA++ // answered by A after its link was cut: impossible
			}
		}
		t.Logf("A's link down: upstream route to B alone after %s (hold time %s); %d probes, %d lost before, last lost one started at %s",
			routeMoved.Round(time.Millisecond), soHoldTime, len(probes), bad, lastBad.Round(time.Millisecond))
		if routeMoved > soHoldTime+time.Second {
			t.Errorf("the upstream moved the route after %s, want within the hold time %s (+1 s)", routeMoved, soHoldTime)
		}
		if bad == 0 {
			t.Error("no probe was lost while A's path was still installed: the test cannot see a dead box")
		}
		if lastBad > routeMoved+200*time.Millisecond {
			t.Errorf("a new flow started %s after the link went down did not reach B (route moved at %s)", lastBad, routeMoved)
		}
		if viaA > 0 {
			t.Errorf("%d flows reached A after its link went down", viaA)
		}
		served := soRunFlows(t, soFlows/2)
		t.Logf("after convergence, %d flows: box a %d, box b %d, failed %d", soFlows/2, served["a"], served["b"], served["fail"])
		if served["b"] != soFlows/2 {
			t.Errorf("after convergence, new flows served: %v, want all %d by B", served, soFlows/2)
		}
	})

	t.Run("session-back", func(t *testing.T) {
		t0 := time.Now()
		testnet.MustCmd(t, "", "ip", "-n", "upstream", "link", "set", "a-wan", "up")
		if gw := waitUpstreamPaths(t, 2, 20*time.Second); len(gw) != 2 {
			t.Fatalf("A's path not back: %v", gw)
		}
		t.Logf("A's link up: both paths back after %s", time.Since(t0).Round(time.Millisecond))
		served := soRunFlows(t, soFlows/2)
		t.Logf("%d flows: box a %d, box b %d, failed %d", soFlows/2, served["a"], served["b"], served["fail"])
		if served["a"] == 0 || served["b"] == 0 || served["fail"] > 0 {
			t.Errorf("after A's return, flows served: %v, want both boxes and no failure", served)
		}
	})
}

// soRunFlows runs n short TCP flows from the WAN host to the service, 8
// at a time, and counts them by the instance that answered ("fail" for
// none).
func soRunFlows(t *testing.T, n int) map[string]int {
	t.Helper()
	var mu sync.Mutex
	served := map[string]int{}
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			who := soDial(2 * time.Second)
			mu.Lock()
			served[who]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return served
}

// soDial makes one flow and returns the instance that answered, or "fail".
func soDial(timeout time.Duration) string {
	out, err := testnet.DialTCP("wanhost", soService, timeout)
	if f := strings.Fields(out); err == nil && len(f) > 0 {
		return f[0]
	}
	return "fail"
}

type soProbe struct {
	at  time.Time
	box string
}

// soStartProbes starts a new flow every 25 ms (each with 500 ms to
// answer) until the returned function is called; that function returns
// every probe in start order.
func soStartProbes() func() []soProbe {
	var mu sync.Mutex
	var probes []soProbe
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			wg.Add(1)
			go func(at time.Time) {
				defer wg.Done()
				who := soDial(500 * time.Millisecond)
				mu.Lock()
				probes = append(probes, soProbe{at, who})
				mu.Unlock()
			}(time.Now())
		}
	}()
	return func() []soProbe {
		close(stop)
		wg.Wait()
		sort.Slice(probes, func(i, j int) bool { return probes[i].at.Before(probes[j].at) })
		return probes
	}
}

// soRuleCounters reads rule svc's packet counter in each box through
// `fwd show rules -j`.
func soRuleCounters(t *testing.T, bin string, boxes []*soBox) map[string]uint64 {
	t.Helper()
	got := map[string]uint64{}
	for _, b := range boxes {
		out := b.MustCall(t, "sh", bin, "show", "rules", "-j", "-c", b.cfg, "edge")
		var rules map[string][]struct {
			ID      string `json:"id"`
			Packets uint64 `json:"packets"`
		}
		if err := json.Unmarshal([]byte(out), &rules); err != nil {
			t.Fatalf("box %s: fwd show rules -j: %v\n%s", b.Name, err, out)
		}
		found := false
		for _, r := range rules["edge"] {
			if r.ID == "svc" {
				got[b.Name] += r.Packets
				found = true
			}
		}
		if !found {
			t.Fatalf("box %s: no rule svc in fwd show rules -j:\n%s", b.Name, out)
		}
	}
	return got
}

// upstreamPaths returns the gateways of the upstream's kernel route to
// the tenant prefix.
func upstreamPaths(t *testing.T) []string {
	t.Helper()
	var routes []struct {
		Gateway  string `json:"gateway"`
		Nexthops []struct {
			Gateway string `json:"gateway"`
		} `json:"nexthops"`
	}
	testnet.JSON(t, &routes, "", "ip", "-j", "-n", "upstream", "route", "show", "203.0.113.0/24")
	var gw []string
	for _, r := range routes {
		if r.Gateway != "" {
			gw = append(gw, r.Gateway)
		}
		for _, m := range r.Nexthops {
			gw = append(gw, m.Gateway)
		}
	}
	sort.Strings(gw)
	return gw
}

// waitUpstreamPaths polls the upstream's route every 10 ms until it has n
// gateways, and returns them (whatever they are at the timeout).
func waitUpstreamPaths(t *testing.T, n int, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		gw := upstreamPaths(t)
		if len(gw) == n || time.Now().After(deadline) {
			return gw
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type upstreamBird struct {
	t    *testing.T
	sock string
}

// startUpstreamBird runs BIRD in namespace upstream; the test's cleanup
// stops it.
func startUpstreamBird(t *testing.T, dir string) *upstreamBird {
	t.Helper()
	if _, err := exec.LookPath("bird"); err != nil {
		t.Fatal("bird2 is not installed (apt-get install -y bird2)")
	}
	conf, logPath := filepath.Join(dir, "bird.conf"), filepath.Join(dir, "bird.log")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(soBirdConfig, logPath, int(soHoldTime/time.Second))), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &upstreamBird{t: t, sock: filepath.Join(dir, "bird.ctl")}
	cmd := exec.Command("ip", "netns", "exec", "upstream", "bird", "-f", "-c", conf, "-s", b.sock, "-P", filepath.Join(dir, "bird.pid"))
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			l, _ := os.ReadFile(logPath)
			t.Logf("BIRD output:\n%s\nBIRD log:\n%s", out, l)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM) // gone already is as good
		_ = cmd.Wait()                          // terminated: the status says so
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(b.sock); err == nil {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("BIRD did not start:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *upstreamBird) c(args ...string) string {
	out, err := exec.Command("birdc", append([]string{"-s", b.sock}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("birdc %v: %v\n%s", args, err, out)
	}
	return string(out)
}
