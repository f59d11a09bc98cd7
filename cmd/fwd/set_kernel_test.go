//go:build kernel

package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
	"github.com/fwdproject/fwd/mgmt"
)

const setConfig = `
[mgmt]
protect = ["eth0"]

[tenant.ls]
conntrack_limit = 1000

[tenant.ls.interface.lan]
device = "eth21"
addresses = ["192.0.2.1/24"]
[tenant.ls.interface.wan]
device = "eth22"
addresses = ["203.0.113.1/24"]
[tenant.ls.zone.lan]
interfaces = ["lan"]
[tenant.ls.zone.wan]
interfaces = ["wan"]
[[tenant.ls.policy]]
from = "lan"
to = "wan"
action = "accept"

[tenant.ls.set.ban]
dynamic = true
[tenant.ls.set.fixed]
elements = ["198.51.100.1"]

[[tenant.ls.rule]]
name = "banned"
from = "lan"
to = "wan"
saddr = "@ban"
action = "drop"
[[tenant.ls.rule]]
name = "fixed"
from = "lan"
to = "wan"
saddr = "@fixed"
action = "drop"
`

// reachable dials the WAN host from the LAN host: nil when the
// connection opens, the error otherwise (a timeout when dropped).
func reachable(timeout time.Duration) error {
	var c net.Conn
	err := ns.DoNamed("ls-lan", func() (err error) { c, err = net.DialTimeout("tcp", "203.0.113.2:80", timeout); return })
	if err == nil {
		c.Close()
	}
	return err
}

func scrapeText(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A dynamic set changes through the API without a reload: an element
// added drops its traffic from the moment the call returns, deleted it
// passes again; a reload keeps the element; the static set is read-only
// (409); metrics count the elements.
func TestLiveSetThroughAPI(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "ls-lan")
	testnet.Host(t, "ls-wan")
	testnet.NIC(t, "eth21", "ls-lan", "lan0", netip.MustParseAddr("192.0.2.1"), "192.0.2.10/24")
	testnet.NIC(t, "eth22", "ls-wan", "wan0", netip.MustParseAddr("203.0.113.1"), "203.0.113.2/24")
	t.Cleanup(func() { testkit.Fwd(t, "teardown", "-y") })
	srv, err := testnet.ServeTCP("ls-wan", "203.0.113.2:80", "hello")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cfg := filepath.Join(t.TempDir(), "fwd.toml")
	writeFile(t, cfg, setConfig)
	d := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "ls", Metrics: "127.0.0.1:19643"})
	defer d.Stop(t)
	_, n := d.Log.Wait(t, 0, "msg=applied", "reason=start")
	if err := reachable(2 * time.Second); err != nil {
		t.Fatalf("before any ban: %v", err)
	}

	cl := mgmt.Dial(d.Socket)
	ctx := context.Background()
	res, err := cl.SetChange(ctx, "ls", "ban", "add", mgmt.SetRequest{Elements: []string{"192.0.2.10"}})
	returned := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	// The first SYN leaves at once: dropped means the element was live
	// when the call returned.
	err = reachable(500 * time.Millisecond)
	if since := time.Since(returned); err == nil || !isTimeout(err) {
		t.Fatalf("banned source still connects (%v, %s after the call returned)", err, since)
	}
	t.Logf("add committed in %s", res.Duration)
	if res.Duration > 5*time.Millisecond {
		t.Errorf("add took %s in the kernel, want ≤ 5 ms", res.Duration)
	}
	out, _, code := d.Fwd(t, "set", "list", "ls", "ban", "-j")
	var v mgmt.SetView
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || len(v.Elements) != 1 || v.Elements[0].Element != "192.0.2.10" {
		t.Fatalf("set list: %d\n%s", code, out)
	}
	if m := scrapeText(t, d.Metrics); !strings.Contains(m, `fwd_set_elements{kind="dynamic",set="ban",tenant="ls"} 1`) ||
		!strings.Contains(m, `fwd_set_elements{kind="static",set="fixed",tenant="ls"} 1`) {
		t.Fatalf("metrics lack the set counts:\n%s", grepLines(m, "fwd_set_"))
	} else if !strings.Contains(m, `fwd_conntrack_quota_limit{tenant="ls"} 1000`) || !strings.Contains(m, `fwd_conntrack_quota_drops_total{tenant="ls"} 0`) {
		t.Fatalf("metrics lack the quota:\n%s", grepLines(m, "fwd_conntrack"))
	}

	// del through the CLI: the source passes again.
	if out, errOut, code := d.Fwd(t, "set", "del", "ls", "ban", "192.0.2.10"); code != 0 || !strings.Contains(out, "deleted from set ban") {
		t.Fatalf("set del: %d %s %s", code, out, errOut)
	}
	if err := reachable(2 * time.Second); err != nil {
		t.Fatalf("after del: %v", err)
	}

	// A reload keeps what automation added, with its timeout.
	if _, errOut, code := d.Fwd(t, "set", "add", "ls", "ban", "192.0.2.0/28", "--timeout", "10m"); code != 0 {
		t.Fatalf("set add --timeout: %d %s", code, errOut)
	}
	d.Signal(t, syscall.SIGHUP)
	d.Log.Wait(t, n, "msg=applied", "reason=reload")
	if err := reachable(500 * time.Millisecond); err == nil {
		t.Fatal("the element added before the reload is gone")
	}
	out, _, code = d.Fwd(t, "set", "list", "ls", "ban")
	if code != 0 || !strings.Contains(out, "192.0.2.0/28") || strings.Contains(out, "never") {
		t.Fatalf("set list after the reload: %d\n%s", code, out)
	}
	if out, _, code := d.Fwd(t, "set", "flush", "ls", "ban"); code != 0 || !strings.Contains(out, "all elements flushed") {
		t.Fatalf("set flush: %d %s", code, out)
	}
	if err := reachable(2 * time.Second); err != nil {
		t.Fatalf("after flush: %v", err)
	}

	// Static sets are read-only; unknown sets and tenants are not found.
	_, err = cl.SetChange(ctx, "ls", "fixed", "add", mgmt.SetRequest{Elements: []string{"198.51.100.2"}})
	var ae *mgmt.APIError
	if !errors.As(err, &ae) || ae.Code != http.StatusConflict {
		t.Fatalf("add to a static set: want 409, got %v", err)
	}
	if _, errOut, code := d.Fwd(t, "set", "add", "ls", "fixed", "198.51.100.2"); code != exitFailure || !strings.Contains(errOut, "static") {
		t.Fatalf("fwd set add to a static set: %d %s", code, errOut)
	}
	for _, p := range [][2]string{{"ls", "nope"}, {"nope", "ban"}} {
		if _, err := cl.SetList(ctx, p[0], p[1]); !errors.As(err, &ae) || ae.Code != http.StatusNotFound {
			t.Fatalf("list %v: want 404, got %v", p, err)
		}
	}
	if _, err := cl.SetChange(ctx, "ls", "ban", "add", mgmt.SetRequest{Elements: []string{"not-an-address"}}); !errors.As(err, &ae) || ae.Code != http.StatusBadRequest {
		t.Fatalf("bad element: want 400, got %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
