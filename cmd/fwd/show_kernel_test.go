//go:build kernel

package main

import (
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
)

func TestShowPolicyAndRoutes(t *testing.T) {
	testkit.Require(t)
	testnet.Host(t, "show-host")
	testnet.NIC(t, "eth6", "show-host", "p0", netip.Addr{}, "203.0.113.1/24")
	t.Cleanup(func() { testkit.Fwd(t, "teardown", "-y") })
	cfg := filepath.Join(t.TempDir(), "fwd.toml")
	writeFile(t, cfg, testkit.Fixture(t, "show.toml"))
	d := testkit.StartDaemon(t, cfg, testkit.DaemonOptions{Name: "show"})
	d.Log.Wait(t, 0, "msg=applied", "reason=start")
	defer d.Stop(t)
	if !testnet.WaitPing("show-host", "203.0.113.2", 5*time.Second) {
		t.Fatal("ping to the gateway not accepted by rule ping-in")
	}

	out, _, code := testkit.Fwd(t, "show", "rules", "-c", cfg, "-j", "gw")
	var rules map[string][]struct {
		ID      string `json:"id"`
		Packets uint64 `json:"packets"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rules) != nil {
		t.Fatalf("show rules -j: %d\n%s", code, out)
	}
	found := false
	for _, r := range rules["gw"] {
		if r.ID == "ping-in" {
			found = r.Packets > 0
		}
	}
	if !found {
		t.Fatalf("rule ping-in has no packets in show rules:\n%s", out)
	}

	out, _, code = testkit.Fwd(t, "show", "routes", "-c", cfg, "--table", "isp", "-j")
	var routes map[string][]struct {
		Dst   string `json:"dst"`
		Owned bool   `json:"fwd"`
		Table uint32 `json:"table"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &routes) != nil || len(routes["gw"]) != 1 ||
		routes["gw"][0].Dst != "198.18.5.0/24" || !routes["gw"][0].Owned || routes["gw"][0].Table != 100 {
		t.Fatalf("show routes --table isp -j: %d\n%s", code, out)
	}

	out, _, code = testkit.Fwd(t, "show", "ruleset", "-c", cfg, "gw")
	if code != 0 || !strings.Contains(out, "table inet fwd_policy") {
		t.Fatalf("show ruleset: %d\n%s", code, out)
	}
	out, _, code = testkit.Fwd(t, "show", "nat", "-c", cfg)
	if code != 0 || !strings.Contains(out, "masquerade") {
		t.Fatalf("show nat: %d\n%s", code, out)
	}
	if _, errOut, code := testkit.Fwd(t, "show", "ruleset", "-c", cfg, "nosuch"); code != exitFailure || !strings.Contains(errOut, `no tenant "nosuch"`) {
		t.Fatalf("show ruleset of an unknown tenant: %d %s", code, errOut)
	}
}
