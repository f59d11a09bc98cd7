//go:build kernel

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
	"github.com/fwdproject/fwd/mgmt"
)

// The local-user faults of issue 12: a connection flood must not crash
// the daemon, and no secret leaves it.

const securityToken = "0123456789abcdef0123456789abcdef0123456789abcdef"

// withTCPAPI adds the TCP API listener (127.0.0.1:19642) with a token
// file of mode 0600 to a fixture whose first table is [mgmt].
func withTCPAPI(t *testing.T, dir, fixture string) string {
	t.Helper()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte(securityToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(fixture, "[mgmt]\n") {
		t.Fatal("fixture does not start with [mgmt]")
	}
	return strings.Replace(fixture, "[mgmt]\n", "[mgmt]\napi_listen = \"127.0.0.1:19642\"\napi_token_file = \""+token+"\"\n", 1)
}

// openFDs returns how many descriptors pid has open and the highest.
func openFDs(t *testing.T, pid int) (n, highest int) {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil {
			n++
			highest = max(highest, fd)
		}
	}
	return n, highest
}

// TestConnectionFlood: 5,000 connections to the metrics and TCP API
// listeners, which any local user may open, neither crash the daemon nor
// stop it applying; fwd status answers during and after the flood.
func TestConnectionFlood(t *testing.T) {
	testkit.Require(t)
	edgeLab(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fwd.toml")
	writeFile(t, cfg, withTCPAPI(t, dir, testkit.Fixture(t, "edge-accept.toml")))
	d := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "flood", Metrics: mgmtMetrics})
	_, n := d.Log.Wait(t, 0, "msg=applied", "reason=start")
	pid := d.Cmd.Process.Pid

	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(limits), "\n") {
		if f := strings.Fields(l); strings.HasPrefix(l, "Max open files") && (len(f) < 4 || f[3] != "1024") {
			t.Fatalf("soft RLIMIT_NOFILE: %q", l)
		}
	}

	// The flood: every other connection sends one request and keeps the
	// connection alive; the rest send nothing.
	const total = 5000
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	sem := make(chan struct{}, 256)
	for i := range total {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			addr := mgmtMetrics
			if i%2 == 1 {
				addr = "127.0.0.1:19642"
			}
			c, err := net.DialTimeout("tcp", addr, 3*time.Second)
			if err != nil {
				return // the backlog is full: that is the point
			}
			if i%4 < 2 {
				_, _ = io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if len(conns) < total/2 {
		t.Fatalf("only %d of %d connections opened", len(conns), total)
	}
	t.Logf("%d connections open", len(conns))

	// The daemon keeps applying: a SIGHUP reload of a changed file.
	writeFile(t, cfg, withTCPAPI(t, dir, testkit.Fixture(t, "edge-drop.toml")))
	d.Signal(t, syscall.SIGHUP)
	d.Log.Wait(t, n, "msg=applied", "reason=reload")
	if testnet.Ping("lan-host", "203.0.113.1") {
		t.Fatal("the reload during the flood was not applied")
	}
	if out, errOut, code := d.Fwd(t, "status"); code != 0 || !strings.Contains(out, "revision 2") {
		t.Fatalf("status during the flood: %d %s %s", code, out, errOut)
	}
	if fds, highest := openFDs(t, pid); highest >= 1024 {
		t.Fatalf("daemon descriptors: %d open, highest %d", fds, highest)
	} else {
		t.Logf("daemon: %d descriptors open, highest %d", fds, highest)
	}
	if d.Cmd.ProcessState != nil {
		t.Fatal("the daemon exited")
	}

	// After the flood, every listener serves again.
	for _, c := range conns {
		c.Close()
	}
	if out, errOut, code := d.Fwd(t, "status"); code != 0 || !strings.Contains(out, "revision 2") {
		t.Fatalf("status after the flood: %d %s %s", code, out, errOut)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := mgmt.DialTCP("127.0.0.1:19642", securityToken).Status(ctx)
		cancel()
		if err == nil && st.Revision == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("TCP API after the flood: %+v %v", st, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Get("http://" + mgmtMetrics + "/metrics")
	if err != nil {
		t.Fatalf("metrics after the flood: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("metrics after the flood: %s", resp.Status)
	}
	d.Stop(t)
}

// TestSecretsNeverShown: BGP passwords, inline or from password_file,
// appear in no output: not in revisions served by the API, the speakers'
// run directory (applied.json), the log, fwd show/status/history/diff/
// plan/bgp, nor the API's other answers.
func TestSecretsNeverShown(t *testing.T) {
	testkit.Require(t)
	edgeLab(t)
	const inline, fromFile = "Inline-MD5-Key-7f3a", "File-MD5-Key-91c2"
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "bgp.key")
	if err := os.WriteFile(pwFile, []byte(fromFile+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bgpConf := func(desc string) string {
		return withTCPAPI(t, dir, testkit.Fixture(t, "edge-accept.toml")) + `
[tenant.edge.bgp]
asn = 64512

[[tenant.edge.bgp.neighbor]]
address = "203.0.113.1"
asn = 64513
description = "` + desc + `"
password = "` + inline + `"

[[tenant.edge.bgp.neighbor]]
address = "203.0.113.5"
asn = 64514
password_file = "` + pwFile + `"
`
	}
	cfg := filepath.Join(dir, "fwd.toml")
	writeFile(t, cfg, bgpConf("upstream"))
	d := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "secrets", Metrics: mgmtMetrics})
	_, n := d.Log.Wait(t, 0, "msg=applied", "reason=start")

	// The speaker records its configuration.
	applied := "/run/fwd/edge/applied.json"
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(applied)
		if err == nil && strings.Contains(string(b), "203.0.113.5") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no applied.json with both neighbours: %s %v", b, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A second revision, so that there is something to diff.
	writeFile(t, cfg, bgpConf("upstream, renamed"))
	if out, errOut, code := d.Fwd(t, "reload"); code != 0 {
		t.Fatalf("reload: %d %s %s", code, out, errOut)
	}
	d.Log.Wait(t, n, "msg=applied", "reason=reload")

	outputs := map[string]string{}
	run := func(args ...string) {
		out, errOut, _ := testkit.Fwd(t, args...)
		outputs["fwd "+strings.Join(args, " ")] = out + errOut
	}
	for _, args := range [][]string{{"status"}, {"status", "-j"}, {"history"}, {"history", "-j"}, {"diff", "1"}, {"diff", "1", "2"}} {
		run(append(args, "--socket", d.Socket)...)
	}
	for _, sub := range []string{"", "interfaces", "ruleset", "rules", "nat", "routes", "route-rules"} {
		for _, j := range []string{"", "-j"} {
			args := []string{"show"}
			if sub != "" {
				args = append(args, sub)
			}
			if j != "" {
				args = append(args, j)
			}
			run(append(args, "-c", cfg)...)
		}
	}
	run("bgp", "show")
	run("bgp", "show", "-j")
	run("check", "-c", cfg)
	run("plan", "-c", cfg)
	run("plan", "-j", "-c", cfg)
	// A plan that changes the keys names the reset, not the keys.
	changed := filepath.Join(dir, "changed.toml")
	writeFile(t, changed, strings.Replace(bgpConf("upstream, renamed"), inline, inline+"-new", 1))
	run("plan", "-c", changed)

	// The API, on both listeners.
	rev, err := mgmt.DialTCP("127.0.0.1:19642", securityToken).RevisionFile(context.Background(), 1)
	if err != nil || !strings.Contains(string(rev), `password = "<redacted>"`) || !strings.Contains(string(rev), pwFile) {
		t.Fatalf("revision 1 over TCP: %v\n%s", err, rev)
	}
	outputs["GET /v1/revisions/1 (tcp)"] = string(rev)
	for _, path := range []string{"/v1/revisions/1", "/v1/revisions/2", "/v1/status", "/v1/show", "/v1/revisions"} {
		c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", d.Socket)
		}}}
		resp, err := c.Get("http://fwd" + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		outputs["GET "+path+" (unix)"] = string(b)
	}
	resp, err := http.Get("http://" + mgmtMetrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	outputs["GET /metrics"] = string(b)

	// Every file the speakers and the daemon keep in /run/fwd.
	_ = filepath.WalkDir("/run/fwd", func(path string, e os.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err == nil {
			outputs[path] = string(b)
		}
		return nil
	})
	if outputs[applied] == "" {
		t.Fatal("applied.json not read")
	}

	d.Stop(t)
	outputs["daemon log"] = strings.Join(d.Log.Lines(), "\n")
	for what, text := range outputs {
		for _, secret := range []string{inline, fromFile} {
			if strings.Contains(text, secret) {
				t.Errorf("%s shows the password %q:\n%s", what, secret, text)
			}
		}
	}
	t.Logf("%d outputs checked", len(outputs))
}
