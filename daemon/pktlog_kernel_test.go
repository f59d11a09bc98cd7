//go:build kernel

package daemon

import (
	"bufio"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
)

const logConfig = `
[tenant.logged.interface.wan]
device = "lwan0"
addresses = ["192.0.2.1/24"]

[tenant.logged.zone.wan]
interfaces = ["wan"]

[[tenant.logged.rule]]
name = "web-in"
from = "wan"
to = "self"
proto = "tcp"
dport = [8080]
action = "reject"
log = "WEB "
log_limit = "100/second"
`

// A rule with log = true produces one structured line per packet in the
// daemon's log (tenant, rule, prefix, interfaces, addresses, ports), and
// `fwd log` / `fwd log -f` show it.
func TestLoggedRuleProducesALine(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "log-wan")
	testnet.NIC(t, "lwan0", "log-wan", "p0", netip.Addr{}, "192.0.2.2/24")
	t.Cleanup(func() { testkit.Fwd(t, "teardown", "-y") })
	cfg := testkit.WriteFile(t, t.TempDir(), "fwd.toml", logConfig)
	d := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "pktlog"})
	defer d.Stop(t)
	_, at := d.Log.Wait(t, 0, "packet log reader started", "tenant=logged")

	// Follow from before the packet: the stream must deliver it.
	follow := exec.Command(testkit.Binary(t), "log", "-f", "--socket", d.Socket, "logged")
	stdout, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = follow.Process.Kill()
		_ = follow.Wait() // killed: the status says so
	})
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	time.Sleep(300 * time.Millisecond) // the follower is connected

	if _, err := testnet.DialTCP("log-wan", "192.0.2.1:8080", 2*time.Second); err == nil {
		t.Fatal("port 8080 answered; the rule rejects it")
	}
	line, _ := d.Log.Wait(t, at, `msg="packet logged"`, "tenant=logged", "rule=web-in", `prefix="WEB "`, "in=wan",
		"proto=tcp", "src=192.0.2.2", "dst=192.0.2.1", "dport=8080")
	t.Logf("daemon: %s", line)

	select {
	case l := <-lines:
		if !strings.Contains(l, "logged rule=web-in") || !strings.Contains(l, `prefix="WEB "`) || !strings.Contains(l, "IN=wan") ||
			!strings.Contains(l, "tcp 192.0.2.2:") || !strings.Contains(l, "> 192.0.2.1:8080") {
			t.Errorf("fwd log -f: %s", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("fwd log -f printed nothing within 5 s")
	}

	out, errOut, code := d.Fwd(t, "log", "-j", "logged")
	if code != 0 || !strings.Contains(out, `"rule":"web-in"`) || !strings.Contains(out, `"dport":8080`) {
		t.Errorf("fwd log -j: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := d.Fwd(t, "log", "nosuch"); code == 0 || !strings.Contains(errOut, `no tenant "nosuch"`) {
		t.Errorf("fwd log nosuch: exit %d: %s", code, errOut)
	}
}
