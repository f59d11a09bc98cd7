//go:build kernel

package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/flows"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
	"github.com/fwdproject/fwd/mgmt"
)

const flowsBase = `
[mgmt]
protect = ["eth0"]

[tenant.kd.interface.lan]
device = "eth11"
addresses = ["192.0.2.1/24"]
[tenant.kd.interface.wan]
device = "eth12"
addresses = ["203.0.113.1/24"]
[tenant.kd.zone.lan]
interfaces = ["lan"]
[tenant.kd.zone.wan]
interfaces = ["wan"]
`

// flowsOpen: lan may reach wan on any port.
const flowsOpen = flowsBase + `
[[tenant.kd.policy]]
from = "lan"
to = "wan"
action = "accept"
`

// flowsTight: only port 7001; 7002 is dropped by the zone pair's default.
const flowsTight = flowsBase + `
[[tenant.kd.rule]]
name = "app-7001"
from = "lan"
to = "wan"
proto = "tcp"
dport = 7001
action = "accept"
`

// echoServer listens on addr in namespace nsName and echoes every line.
func echoServer(t *testing.T, nsName, addr string) {
	t.Helper()
	var l net.Listener
	if err := ns.DoNamed(nsName, func() (err error) { l, err = net.Listen("tcp", addr); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c) // ends when the peer goes
			}()
		}
	}()
}

// echoConn is a client connection whose socket lives in a host namespace.
type echoConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialEcho(t *testing.T, nsName, addr string) *echoConn {
	t.Helper()
	var c net.Conn
	if err := ns.DoNamed(nsName, func() (err error) { c, err = net.DialTimeout("tcp", addr, 2*time.Second); return }); err != nil {
		t.Fatalf("dial %s from %s: %v", addr, nsName, err)
	}
	t.Cleanup(func() { c.Close() })
	return &echoConn{c: c, r: bufio.NewReader(c)}
}

// roundTrip sends a line and waits for its echo.
func (e *echoConn) roundTrip(wait time.Duration) error {
	if err := e.c.SetDeadline(time.Now().Add(wait)); err != nil {
		return err
	}
	if _, err := e.c.Write([]byte("ping\n")); err != nil {
		return err
	}
	_, err := e.r.ReadString('\n')
	return err
}

// Two long-lived TCP flows cross tenant kd. `fwd flows` lists them; a
// reload to a policy that admits only one of them counts and logs the
// other, which keeps running (established); `fwd reload --kill-denied`
// deletes exactly that one: its data no longer flows, the other's does.
func TestFlowsAndKillDenied(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "kd-lan")
	testnet.Host(t, "kd-wan")
	testnet.NIC(t, "eth11", "kd-lan", "lan0", netip.MustParseAddr("192.0.2.1"), "192.0.2.10/24")
	testnet.NIC(t, "eth12", "kd-wan", "wan0", netip.MustParseAddr("203.0.113.1"), "203.0.113.2/24")
	t.Cleanup(func() { testkit.Fwd(t, "teardown", "-y") })
	cfg := filepath.Join(t.TempDir(), "fwd.toml")
	writeFile(t, cfg, flowsOpen)
	d := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "kd"})
	defer d.Stop(t)
	_, n := d.Log.Wait(t, 0, "msg=applied", "reason=start")

	echoServer(t, "kd-wan", "203.0.113.2:7001")
	echoServer(t, "kd-wan", "203.0.113.2:7002")
	keep := dialEcho(t, "kd-lan", "203.0.113.2:7001")
	kill := dialEcho(t, "kd-lan", "203.0.113.2:7002")
	for _, c := range []*echoConn{keep, kill} {
		if err := c.roundTrip(2 * time.Second); err != nil {
			t.Fatalf("before the reload: %v", err)
		}
	}

	// fwd flows reads the tenant's conntrack table.
	out, errOut, code := testkit.Fwd(t, "flows", "kd", "--proto", "tcp", "--dst", "203.0.113.2", "-j")
	var list []flows.Flow
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
		t.Fatalf("flows -j: %d %s\n%s", code, errOut, out)
	}
	ports := map[uint16]flows.Flow{}
	for _, f := range list {
		ports[f.Orig.DPort] = f
	}
	for _, p := range []uint16{7001, 7002} {
		f, ok := ports[p]
		if !ok || f.State != "established" || f.Orig.Src.String() != "192.0.2.10" || f.Reply.Src.String() != "203.0.113.2" {
			t.Fatalf("flow to port %d: %+v\n%s", p, f, out)
		}
	}
	out, _, code = testkit.Fwd(t, "flows", "kd", "--dport", "7002")
	if code != 0 || !strings.Contains(out, "192.0.2.10:") || !strings.Contains(out, "203.0.113.2:7002") || strings.Contains(out, ":7001") ||
		!strings.Contains(out, "established") {
		t.Fatalf("flows --dport 7002: %d\n%s", code, out)
	}

	// The tighter policy would not admit the flow to 7002: counted, logged,
	// left alone without --kill-denied.
	writeFile(t, cfg, flowsTight)
	res := reloadJSON(t, d, "reload", "-j")
	if f := res.Flows; f == nil || len(f.Denied) != 1 || f.Denied[0].DPort != 7002 || f.Killed != 0 ||
		f.Denied[0].In != "lan" || f.Denied[0].Verdict != "drop" || f.Checked < 2 {
		t.Fatalf("reload: flows %+v", res.Flows)
	}
	d.Log.Wait(t, n, "established flow not admitted by the new policy", "dst=203.0.113.2:7002", "killed=false")
	for _, c := range []*echoConn{keep, kill} {
		if err := c.roundTrip(2 * time.Second); err != nil {
			t.Fatalf("after the reload, without --kill-denied, an established flow broke: %v", err)
		}
	}

	// --kill-denied deletes exactly that flow.
	res = reloadJSON(t, d, "reload", "-j", "--kill-denied")
	if f := res.Flows; f == nil || len(f.Denied) != 1 || f.Killed != 1 || !f.Denied[0].Killed || f.Denied[0].DPort != 7002 {
		t.Fatalf("reload --kill-denied: flows %+v", res.Flows)
	}
	if err := kill.roundTrip(1500 * time.Millisecond); err == nil {
		t.Fatal("the killed flow still carries data")
	}
	if err := keep.roundTrip(2 * time.Second); err != nil {
		t.Fatalf("the admitted flow broke: %v", err)
	}
	// The text output of a reload says what it found.
	_, errOut, code = d.Fwd(t, "reload", "--kill-denied")
	if code != 0 || !strings.Contains(errOut, "flows: ") || !strings.Contains(errOut, "established checked") {
		t.Fatalf("reload text output: %d\n%s", code, errOut)
	}
	// A rehearsed reload tries the changed tenant in a scratch namespace.
	writeFile(t, cfg, flowsOpen)
	res = reloadJSON(t, d, "reload", "-j", "--rehearse")
	if r := res.Rehearsal; r == nil || len(r.Tenants) != 1 || r.Tenants[0] != "kd" || r.Error != "" || r.Changes == 0 || r.Duration <= 0 {
		t.Fatalf("reload --rehearse: rehearsal %+v", res.Rehearsal)
	}
	if err := keep.roundTrip(2 * time.Second); err != nil {
		t.Fatalf("after a rehearsed reload: %v", err)
	}
}

func reloadJSON(t *testing.T, d *testkit.Daemon, args ...string) *mgmt.Result {
	t.Helper()
	out, errOut, code := d.Fwd(t, args...)
	var res mgmt.Result
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || !res.OK() {
		t.Fatalf("fwd %v: %d %s\n%s", args, code, errOut, out)
	}
	return &res
}
