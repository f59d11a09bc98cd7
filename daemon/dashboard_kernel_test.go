//go:build kernel

package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
	"github.com/fwdproject/fwd/mgmt"
)

// xss is what an operator (or an attacker who can edit a comment) might
// put in a rule comment: the page must show it as text.
const xss = `<img src=x onerror=alert(1)>`

const dashConfig = `
[tenant.edge.interface.wan]
device = "dwan0"
addresses = ["192.0.2.1/24"]

[tenant.edge.zone.wan]
interfaces = ["wan"]

[[tenant.edge.rule]]
name = "ping-in"
comment = "` + xss + `"
from = "wan"
to = "self"
proto = "icmp"
action = "accept"
log = "PING "

[[tenant.edge.rule]]
name = "bgp-in"
from = "wan"
to = "self"
proto = "tcp"
dport = [179]
action = "accept"

[tenant.edge.bgp]
asn = 64512
announce = ["203.0.113.0/24"]

[[tenant.edge.bgp.neighbor]]
address = "192.0.2.2"
asn = 64513
hold_time = 6
keepalive = 2

[tenant.blue.interface.lan]
device = "dlan0"
addresses = ["198.51.100.1/24"]
`

const dashBird = `
protocol static sa { ipv4; route 198.18.1.0/24 blackhole; }
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

// startBird runs BIRD 2 in nsName until the test ends.
func startBird(t *testing.T, nsName, routerID, body string) {
	t.Helper()
	if _, err := exec.LookPath("bird"); err != nil {
		t.Fatal("bird2 is not installed (make deps)")
	}
	dir := t.TempDir()
	conf := fmt.Sprintf("router id %s;\nprotocol device {}\n%s\n", routerID, body)
	if err := os.WriteFile(filepath.Join(dir, "bird.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", nsName, "bird", "-f", "-c", filepath.Join(dir, "bird.conf"), "-s", filepath.Join(dir, "bird.ctl"), "-P", filepath.Join(dir, "bird.pid"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // killed: the status says so
	})
}

// chromium runs headless Chromium on url and returns what it printed
// (the DOM with --dump-dom). Its whole process group is killed if it
// outlives the timeout, so no renderer is left behind.
func chromium(t *testing.T, url string, extra ...string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed (make deps)")
	}
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=5000"}, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // stragglers of the group, if any
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", url, err, errb.String())
	}
	return out.String()
}

func getDashboard(t *testing.T, base string) *mgmt.Dashboard {
	t.Helper()
	res, err := http.Get(base + "/v1/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var d mgmt.Dashboard
	if err := json.NewDecoder(res.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	return &d
}

func dashWait(t *testing.T, base, what string, cond func(*mgmt.Dashboard) bool) *mgmt.Dashboard {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		d := getDashboard(t, base)
		if cond(d) {
			return d
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(d, "", " ")
			t.Fatalf("timed out waiting for %s; last dashboard:\n%s", what, b)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func dashTenant(d *mgmt.Dashboard, name string) *mgmt.DashTenant {
	for i := range d.Tenants {
		if d.Tenants[i].Name == name {
			return &d.Tenants[i]
		}
	}
	return nil
}

func counter(list []mgmt.DashCounter, id string) *mgmt.DashCounter {
	for i := range list {
		if list[i].ID == id {
			return &list[i]
		}
	}
	return nil
}

// rePingRow is the "ping-in" row of the page's top-rules table: the
// rule, its comment as text, its place in the TOML and its packets.
var rePingRow = regexp.MustCompile(`<td class="rule">ping-in<span class="muted comment"> ([^<]*)</span></td><td>(rule\[\d+\])</td><td class="num">([\d,]+)</td>`)

func pingPackets(t *testing.T, dom string) uint64 {
	t.Helper()
	m := rePingRow.FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no ping-in row in the page:\n%s", dom)
	}
	if m[1] != html.EscapeString(xss) {
		t.Errorf("comment cell holds %q, want the comment as escaped text %q", m[1], html.EscapeString(xss))
	}
	n, err := strconv.ParseUint(strings.ReplaceAll(m[3], ",", ""), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The status page in a real browser: the daemon runs a BGP tenant with a
// BIRD peer and a second tenant; headless Chromium loads the page from
// the metrics listener, and the DOM shows both tenants, the neighbour
// established, the rule comment as text (never markup), and a rule
// counter that grew after traffic. A screenshot is left in the test's
// directory.
func TestStatusPageInChromium(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "dash-wan")
	testnet.Host(t, "dash-lan")
	testnet.NIC(t, "dwan0", "dash-wan", "p0", netip.Addr{}, "192.0.2.2/24")
	testnet.NIC(t, "dlan0", "dash-lan", "p0", netip.Addr{}, "198.51.100.2/24")
	startBird(t, "dash-wan", "192.0.2.2", dashBird)
	t.Cleanup(func() { testkit.Fwd(t, "teardown", "-y") }) // after the daemon stopped: speakers too
	cfg := testkit.WriteFile(t, t.TempDir(), "fwd.toml", dashConfig)
	d := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "dash", Metrics: "127.0.0.1:19641"})
	defer d.Stop(t)
	base := "http://127.0.0.1:19641"

	// The data first, through the API, until the session is up.
	dashWait(t, base, "the BGP neighbour established", func(db *mgmt.Dashboard) bool {
		e := dashTenant(db, "edge")
		return e != nil && len(e.Neighbors) == 1 && e.Neighbors[0].State == "established" && e.Routes["bgp"] == 1
	})

	dom := chromium(t, base+"/", "--dump-dom")
	for _, want := range []string{
		`data-ready="1"`,
		`data-tenant="edge"`, `data-tenant="blue"`,
		`<td class="bgp-state state-established">established</td>`,
		`<td class="state-up">up</td>`,
		`192.0.2.1/24`, `198.51.100.1/24`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(dom, "<img") || strings.Contains(dom, "data-unreachable") {
		t.Errorf("the page made markup of a comment, or found the daemon unreachable:\n%s", dom)
	}
	before := pingPackets(t, dom)

	if !testnet.WaitPing("dash-wan", "192.0.2.1", 5*time.Second) {
		t.Fatal("no ping to the tenant")
	}
	// Separate pings, separate connections: established packets never
	// reach the rules (the ruleset accepts them first).
	for range 5 {
		testnet.MustCmd(t, "dash-wan", "ping", "-c", "1", "192.0.2.1")
	}
	db := dashWait(t, base, "the ping-in counter to grow", func(db *mgmt.Dashboard) bool {
		c := counter(dashTenant(db, "edge").TopRules, "ping-in")
		return c != nil && c.Packets >= before+6
	})
	if e := dashTenant(db, "edge"); len(e.NewConnsHist) == 0 || slices.Max(e.NewConnsHist) <= 0 {
		t.Errorf("no new connections per second after 6 pings: %v", e.NewConnsHist)
	}
	dom = chromium(t, base+"/", "--dump-dom")
	if after := pingPackets(t, dom); after < before+6 {
		t.Errorf("ping-in counter on the page: %d before, %d after 6 pings", before, after)
	}
	db = getDashboard(t, base)
	wan := dashTenant(db, "edge").Interfaces[0]
	if wan.Name != "wan" || wan.Device != "dwan0" || len(wan.RxHist) == 0 {
		t.Errorf("wan interface on the dashboard: %+v", wan)
	}
	if len(db.Reloads) == 0 || db.Reloads[0].Result != mgmt.ResultApplied || db.Store == nil || !db.Store.OK {
		t.Errorf("reloads %+v, store %+v", db.Reloads, db.Store)
	}

	shot := filepath.Join(t.TempDir(), "statuspage.png")
	chromium(t, base+"/", "--screenshot="+shot, "--window-size=1280,900", "--hide-scrollbars")
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10000 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	if dst := os.Getenv("FWD_STATUSPAGE_SCREENSHOT"); dst != "" {
		b, _ := os.ReadFile(shot)
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshot: %s", shot)
	fmt.Println("status page screenshot:", shot)
}
