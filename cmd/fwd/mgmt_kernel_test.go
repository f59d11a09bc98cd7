//go:build kernel

package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/daemon"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
	"github.com/fwdproject/fwd/mgmt"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads the daemon's metrics endpoint.
func scrape(t *testing.T, d *testkit.Daemon) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + d.Metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	return fams
}

// mgmtMetrics is the metrics address of the tests' daemons.
const mgmtMetrics = "127.0.0.1:19641"

// metric returns the value of the sample of family name whose labels
// include all of want ("k=v"), or -1.
func metric(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for _, w := range want {
			k, v, _ := strings.Cut(w, "=")
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func edgeLab(t *testing.T) {
	t.Helper()
	testnet.Host(t, "wan-host")
	testnet.Host(t, "lan-host")
	testnet.NIC(t, "eth1", "wan-host", "wan0", netip.MustParseAddr("203.0.113.2"), "203.0.113.1/24")
	testnet.NIC(t, "eth2", "lan-host", "lan0", netip.MustParseAddr("192.0.2.1"), "192.0.2.10/24")
	t.Cleanup(func() { testkit.Fwd(t, "teardown", "-y") })
}

func TestMgmtAPIAndMetrics(t *testing.T) {
	testkit.Require(t)
	edgeLab(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fwd.toml")
	writeFile(t, cfg, testkit.Fixture(t, "edge-accept.toml"))
	d := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "api", Metrics: mgmtMetrics})
	d.Log.Wait(t, 0, "msg=applied", "reason=start")
	if !testnet.WaitPing("lan-host", "203.0.113.1", 5*time.Second) {
		t.Fatal("no traffic through the tenant")
	}

	// The socket is root-only.
	if st, err := os.Stat(d.Socket); err != nil || st.Mode().Perm() != 0o600 || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket: %v %v", st.Mode(), err)
	}
	out, errOut, code := d.Fwd(t, "status", "-j")
	var st mgmt.Status
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status -j: %d %s %s", code, out, errOut)
	}
	if st.Revision != 1 || st.ConfigFile != cfg || len(st.Tenants) != 1 || st.Tenants[0].Interfaces != 2 ||
		st.Tenants[0].InterfacesUp < 1 || st.Tenants[0].Rules != 1 || st.Tenants[0].Routes != 1 || st.LastReload == nil || st.LastReload.Result != "applied" {
		links, _ := testnet.Cmd("", "ip", "-n", "edge", "-d", "link")
		t.Fatalf("status: %s\n%s", out, links)
	}
	if out, _, code := d.Fwd(t, "status"); code != 0 || !strings.Contains(out, "revision 1") || !strings.Contains(out, "edge") {
		t.Fatalf("status: %d %s", code, out)
	}

	// show through the API: the daemon's view of the kernel.
	if list, err := mgmt.Dial(d.Socket).Show(context.Background()); err != nil || len(list) != 1 || list[0].Name != "edge" || len(list[0].Interfaces) != 2 {
		t.Fatalf("API show: %+v %v", list, err)
	}

	// Traffic matching the rule moves its counters.
	before := scrape(t, d)
	if !testnet.WaitPing("lan-host", "203.0.113.1", 5*time.Second) {
		t.Fatal("no traffic through the tenant")
	}
	for range 3 {
		testnet.Ping("lan-host", "203.0.113.1")
	}
	after := scrape(t, d)
	p0 := metric(before, "fwd_rule_packets_total", "tenant=edge", "rule=ping-out")
	p1 := metric(after, "fwd_rule_packets_total", "tenant=edge", "rule=ping-out")
	if p0 < 0 || p1 < p0+3 {
		t.Fatalf("rule counter did not move: %v -> %v", p0, p1)
	}
	if b := metric(after, "fwd_rule_bytes_total", "tenant=edge", "rule=ping-out"); b <= 0 {
		t.Fatalf("rule bytes: %v", b)
	}
	if v := metric(after, "fwd_interface_up", "tenant=edge", "interface=lan"); v != 1 {
		t.Fatalf("fwd_interface_up lan: %v", v)
	}
	if v := metric(after, "fwd_interface_rx_bytes_total", "tenant=edge", "interface=lan"); v <= metric(before, "fwd_interface_rx_bytes_total", "tenant=edge", "interface=lan") {
		t.Fatalf("rx bytes did not grow: %v", v)
	}
	if v := metric(after, "fwd_conntrack_entries_limit", "tenant=edge"); v <= 0 {
		t.Fatalf("conntrack limit: %v", v)
	}
	if v := metric(after, "fwd_conntrack_entries", "tenant=edge"); v < 1 {
		t.Fatalf("conntrack entries: %v", v)
	}
	// fwd's one static route, counted from the apply, not a dump.
	if v := metric(after, "fwd_routes", "tenant=edge", "table=main", "owner=static"); v != 1 {
		t.Fatalf("routes: %v", v)
	}
	if v := metric(after, "fwd_config_revision"); v != 1 {
		t.Fatalf("revision metric: %v", v)
	}
	if v := metric(after, "fwd_apply_duration_seconds"); v < 1 {
		t.Fatalf("apply histogram count: %v", v)
	}

	// Invalid reload: errors printed, exit 1, nothing changes, counted.
	writeFile(t, cfg, testkit.Fixture(t, "edge-accept.toml")+"\n[tenant.edge.interface.dmz]\ndevice = \"eth1\"\n")
	_, errOut, code = d.Fwd(t, "reload", "-c", cfg)
	if code != exitFailure || !strings.Contains(errOut, "is already claimed") || !strings.Contains(errOut, "revision 1 still runs") {
		t.Fatalf("invalid reload: %d %s", code, errOut)
	}
	if !testnet.Ping("lan-host", "203.0.113.1") {
		t.Fatal("traffic broken by a rejected reload")
	}
	// Valid reload: the rule now drops pings.
	writeFile(t, cfg, testkit.Fixture(t, "edge-drop.toml"))
	out, errOut, code = d.Fwd(t, "reload")
	if code != 0 || !strings.Contains(out, "applied revision 2") || !strings.Contains(out, "[edge]") {
		t.Fatalf("reload: %d %s %s", code, out, errOut)
	}
	if testnet.Ping("lan-host", "203.0.113.1") {
		t.Fatal("ping passes after the rule became drop")
	}
	m := scrape(t, d)
	if metric(m, "fwd_config_reloads_total", "result=rejected") != 1 || metric(m, "fwd_config_reloads_total", "result=applied") != 2 ||
		metric(m, "fwd_config_revision") != 2 || metric(m, "fwd_config_last_reload_successful") != 1 {
		t.Fatalf("reload metrics wrong")
	}
	// -c of another file is refused.
	if _, errOut, code := d.Fwd(t, "reload", "-c", filepath.Join(dir, "other.toml")); code != exitFailure || !strings.Contains(errOut, "the daemon runs with") {
		t.Fatalf("reload of another file: %d %s", code, errOut)
	}

	// History, diff, rollback.
	out, _, code = d.Fwd(t, "history", "-j")
	var revs []mgmt.Revision
	if code != 0 || json.Unmarshal([]byte(out), &revs) != nil || len(revs) != 2 || revs[1].Number != 2 || len(revs[1].SHA256) != 64 {
		t.Fatalf("history: %s", out)
	}
	if out, _, code := d.Fwd(t, "history"); code != 0 || !strings.Contains(out, "2*") {
		t.Fatalf("history: %s", out)
	}
	out, _, code = d.Fwd(t, "diff", "1")
	if code != 0 || !strings.Contains(out, "-action = \"accept\"\n+action = \"drop\"\n") || !strings.HasPrefix(out, "--- revision 1\n+++ revision 2\n") {
		t.Fatalf("diff: %s", out)
	}
	out, errOut, code = d.Fwd(t, "rollback", "1")
	if code != 0 || !strings.Contains(out, "applied revision 3") {
		t.Fatalf("rollback: %d %s %s", code, out, errOut)
	}
	if !testnet.WaitPing("lan-host", "203.0.113.1", 5*time.Second) {
		t.Fatal("rollback did not restore the accept rule")
	}
	if b, _ := os.ReadFile(cfg); string(b) != testkit.Fixture(t, "edge-accept.toml") {
		t.Fatal("rollback did not write the config file")
	}
	if _, errOut, code := d.Fwd(t, "rollback", "42"); code != exitFailure || !strings.Contains(errOut, "not found") {
		t.Fatalf("rollback to missing: %d %s", code, errOut)
	}
	if _, errOut, code := d.Fwd(t, "confirm"); code != exitFailure || !strings.Contains(errOut, "no change awaits confirmation") {
		t.Fatalf("confirm with nothing pending: %d %s", code, errOut)
	}
	d.Stop(t)
	if _, err := os.Stat(d.Socket); err == nil {
		// A stale socket is fine (replaced at start), but the API must be gone.
		if c, err := net.Dial("unix", d.Socket); err == nil {
			c.Close()
			t.Fatal("API still answers after stop")
		}
	}
}

func TestCommitConfirm(t *testing.T) {
	testkit.Require(t)
	edgeLab(t)
	cfg := filepath.Join(t.TempDir(), "fwd.toml")
	writeFile(t, cfg, testkit.Fixture(t, "edge-accept.toml"))
	d := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "confirm", Metrics: mgmtMetrics})
	_, n := d.Log.Wait(t, 0, "msg=applied", "reason=start")
	if !testnet.WaitPing("lan-host", "203.0.113.1", 5*time.Second) {
		t.Fatal("no traffic after start")
	}

	// Not confirmed: the accept rule comes back by itself.
	writeFile(t, cfg, testkit.Fixture(t, "edge-drop.toml"))
	out, errOut, code := d.Fwd(t, "reload", "--confirm", "3s")
	if code != 0 || !strings.Contains(out, "run 'fwd confirm' before") {
		t.Fatalf("reload --confirm: %d %s %s", code, out, errOut)
	}
	if testnet.Ping("lan-host", "203.0.113.1") {
		t.Fatal("new config not applied")
	}
	out, _, _ = d.Fwd(t, "status", "-j")
	var st mgmt.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status -j: %v\n%s", err, out)
	}
	if st.PendingConfirm == nil || st.PendingConfirm.Previous != 1 || st.PendingConfirm.Revision != 2 || time.Until(st.PendingConfirm.Deadline) > 3*time.Second {
		t.Fatalf("status pending: %s", out)
	}
	d.Log.Wait(t, n, "msg=applied", "confirm timeout")
	if !testnet.WaitPing("lan-host", "203.0.113.1", 3*time.Second) {
		t.Fatal("old rules not back after the confirm deadline")
	}
	out, _, _ = d.Fwd(t, "history", "-j")
	var revs []mgmt.Revision
	if err := json.Unmarshal([]byte(out), &revs); err != nil {
		t.Fatalf("history -j: %v\n%s", err, out)
	}
	if len(revs) != 3 || !strings.HasPrefix(revs[2].Reason, "confirm timeout") || revs[2].SHA256 != revs[0].SHA256 {
		t.Fatalf("history after timeout: %s", out)
	}
	d.Log.Wait(t, n, "config file restored") // written after the apply is logged
	if b, _ := os.ReadFile(cfg); string(b) != testkit.Fixture(t, "edge-accept.toml") {
		t.Fatal("config file not restored")
	}

	// Confirmed: the new config stays.
	writeFile(t, cfg, testkit.Fixture(t, "edge-drop.toml"))
	if out, errOut, code := d.Fwd(t, "reload", "--confirm", "3s"); code != 0 {
		t.Fatalf("reload --confirm: %d %s %s", code, out, errOut)
	}
	if out, errOut, code := d.Fwd(t, "confirm"); code != 0 || !strings.Contains(out, "revision 4 confirmed") {
		t.Fatalf("confirm: %d %s %s", code, out, errOut)
	}
	time.Sleep(4 * time.Second)
	if testnet.Ping("lan-host", "203.0.113.1") {
		t.Fatal("confirmed config was rolled back")
	}
	out, _, _ = d.Fwd(t, "status", "-j")
	st = mgmt.Status{}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status -j: %v\n%s", err, out)
	}
	if st.PendingConfirm != nil || st.Revision != 4 {
		t.Fatalf("status after confirm: %s", out)
	}
	d.Stop(t)
}

func TestFailedApplyRestoresEveryTenant(t *testing.T) {
	testkit.Require(t)
	edgeLab(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fwd.toml")
	fp := filepath.Join(dir, "failpoint")
	writeFile(t, cfg, testkit.Fixture(t, "two-tenants.toml"))
	d := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "fail", Metrics: mgmtMetrics, Env: []string{daemon.FailpointEnv + "=" + fp}})
	d.Log.Wait(t, 0, "msg=applied", "reason=start")
	if !testnet.WaitPing("lan-host", "192.0.2.1", 5*time.Second) || !testnet.WaitPing("wan-host", "203.0.113.2", 5*time.Second) {
		t.Fatal("tenants not reachable after start")
	}

	// Both tenants change; the second (zz) fails.
	writeFile(t, fp, "zz")
	writeFile(t, cfg, testkit.Fixture(t, "two-tenants-renumbered.toml"))
	out, errOut, code := d.Fwd(t, "reload", "-j")
	var res mgmt.Result
	if code != exitFailure || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("failing reload: %d %s %s", code, out, errOut)
	}
	if res.Result != "failed" || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], `tenant "zz"`) ||
		res.Restore == nil || res.Restore.Revision != 1 || res.Restore.Error != "" || res.Revision != 1 {
		t.Fatalf("result: %s", out)
	}
	os.Remove(fp)
	// Both tenants are at revision 1 again.
	for _, c := range []struct{ tenant, dev, want, gone string }{
		{"edge", "lan", "192.0.2.1/24", "192.0.2.2/24"},
		{"zz", "wan", "203.0.113.2/24", "203.0.113.3/24"},
	} {
		a := testnet.Addrs(t, c.tenant)[c.dev]
		got := strings.Join(a.GlobalAddrs(), " ")
		if !strings.Contains(got, c.want) || strings.Contains(got, c.gone) {
			t.Errorf("%s/%s addresses %q, want %s only", c.tenant, c.dev, got, c.want)
		}
	}
	if !testnet.WaitPing("lan-host", "192.0.2.1", 3*time.Second) || !testnet.WaitPing("wan-host", "203.0.113.2", 3*time.Second) {
		t.Fatal("tenants not reachable at the previous revision")
	}
	out, _, _ = d.Fwd(t, "history", "-j")
	var revs []mgmt.Revision
	if err := json.Unmarshal([]byte(out), &revs); err != nil || len(revs) != 1 {
		t.Fatalf("failed config stored as a revision: %s", out)
	}
	// Human output names the failure and the restore.
	writeFile(t, fp, "zz")
	_, errOut, code = d.Fwd(t, "reload")
	if code != exitFailure || !strings.Contains(errOut, "apply failed:\n  tenant \"zz\": failpoint: injected failure") ||
		!strings.Contains(errOut, "revision 1 restored on every tenant") {
		t.Fatalf("failing reload, human output: %d %s", code, errOut)
	}
	out, _, _ = d.Fwd(t, "status")
	if !strings.Contains(out, "last load: failed") || !strings.Contains(out, "restored revision 1") {
		t.Fatalf("status after a failed reload:\n%s", out)
	}
	// Without the failpoint the same file applies.
	if out, errOut, code := d.Fwd(t, "reload"); code != 0 || !strings.Contains(out, "applied revision 2") {
		t.Fatalf("reload without failpoint: %d %s %s", code, out, errOut)
	}
	d.Stop(t)
}

// TestMgmtIsolation: tenants cannot reach the management plane, and the
// default namespace cannot reach tenant addresses.
func TestMgmtIsolation(t *testing.T) {
	testkit.Require(t)
	edgeLab(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fwd.toml")
	token := filepath.Join(dir, "token")
	const secret = "0123456789abcdef0123456789abcdef"
	writeFile(t, token, secret+"\n")
	if err := os.Chmod(token, 0o600); err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfg, strings.Replace(testkit.Fixture(t, "isolation.toml"), "TOKEN_FILE", token, 1))
	d := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "iso", Metrics: mgmtMetrics})
	d.Log.Wait(t, 0, "msg=applied", "reason=start")
	// Reachable from the default namespace…
	for _, addr := range []string{"127.0.0.1:19641", "127.0.0.1:19642"} {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatalf("%s not listening in the default namespace: %v", addr, err)
		}
		c.Close()
	}
	// The TCP API wants the token.
	if _, err := mgmt.DialTCP("127.0.0.1:19642", "wrong").Status(context.Background()); err == nil || !strings.Contains(err.Error(), "bearer token") {
		t.Fatalf("TCP API without the right token: %v", err)
	}
	if st, err := mgmt.DialTCP("127.0.0.1:19642", secret).Status(context.Background()); err != nil || st.ConfigFile != cfg {
		t.Fatalf("TCP API with token: %+v %v", st, err)
	}
	// …from no tenant namespace nor host behind it, on any of its addresses.
	for _, nsName := range []string{"edge", "lan-host", "wan-host"} {
		for _, target := range []string{"127.0.0.1", "192.0.2.1", "203.0.113.2", "203.0.113.1", "192.0.2.10"} {
			for _, port := range []string{"19641", "19642"} {
				if _, err := testnet.DialTCP(nsName, net.JoinHostPort(target, port), 500*time.Millisecond); err == nil {
					t.Errorf("%s reaches the management plane at %s:%s", nsName, target, port)
				}
			}
		}
	}
	// The default namespace reaches no tenant address.
	for _, a := range []string{"192.0.2.1", "203.0.113.2"} {
		if testnet.Ping("", a) {
			t.Errorf("default namespace reaches tenant address %s", a)
		}
	}
	d.Stop(t)
}
