//go:build kernel

package rehearse

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/policy"
	"github.com/fwdproject/fwd/routing"
)

const good = `
[tenant.rh.interface.lan]
device = "eth1"
addresses = ["192.0.2.1/24", "2001:db8::1/64"]
mtu = 1400
[tenant.rh.interface.wan]
device = "eth2"
addresses = ["203.0.113.1/24"]
[tenant.rh.zone.lan]
interfaces = ["lan"]
[tenant.rh.zone.wan]
interfaces = ["wan"]
[[tenant.rh.policy]]
from = "lan"
to = "wan"
action = "accept"
[[tenant.rh.nat]]
type = "masquerade"
out = "wan"
[[tenant.rh.route]]
to = "0.0.0.0/0"
via = "203.0.113.254"
[[tenant.rh.route]]
to = "2001:db8:1::/48"
via = "2001:db8::2"
`

var log = slog.New(slog.DiscardHandler)

// leftovers lists the scratch namespaces still pinned.
func leftovers(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(ns.RunDir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), scratchPrefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// A valid configuration rehearses without touching anything live: no
// tenant namespace appears, the scratch namespace is gone afterwards.
func TestRehearseAccepts(t *testing.T) {
	testkit.Require(t)
	rep, err := Run(context.Background(), log, testkit.Config(t, good))
	if err != nil {
		t.Fatalf("rehearsal of a valid configuration: %v", err)
	}
	if len(rep.Tenants) != 1 || rep.Tenants[0] != "rh" || rep.Changes == 0 || rep.Duration <= 0 {
		t.Fatalf("report %+v", rep)
	}
	if ns.Exists("rh") {
		t.Fatal("the rehearsal created the live namespace")
	}
	if l := leftovers(t); len(l) != 0 {
		t.Fatalf("scratch namespaces left: %v", l)
	}
}

// A tenant whose live namespace already holds its policy and routes is
// not rehearsed again.
func TestRehearseSkipsUnchanged(t *testing.T) {
	testkit.Require(t)
	cfg := testkit.Config(t, good)
	h, err := ns.Create("rh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(); _ = ns.Delete("rh") })
	tn := cfg.Tenants[0]
	if err := standIns(h, tn); err != nil {
		t.Fatal(err)
	}
	if _, err := tenantInto(h, tn); err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), log, cfg)
	if err != nil || len(rep.Tenants) != 0 || len(rep.Unchanged) != 1 {
		t.Fatalf("rehearsal of an applied configuration: %+v %v", rep, err)
	}
}

// A route the kernel refuses (via a gateway on no interface: the
// validator refuses that in a configuration, so it is injected) is found
// in rehearsal and named; live, it would only have been skipped.
func TestRehearseRefusedRoute(t *testing.T) {
	testkit.Require(t)
	cfg := testkit.Config(t, good)
	alterRoutes = func(d *routing.Desired) {
		d.Routes = append(d.Routes, routing.Route{Table: config.TableMain, Dst: netip.MustParsePrefix("198.18.0.0/24"),
			NextHops: []routing.NextHop{{Gw: netip.MustParseAddr("198.51.100.7")}}})
	}
	t.Cleanup(func() { alterRoutes = nil })
	_, err := Run(context.Background(), log, cfg)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "198.18.0.0/24") {
		t.Fatalf("want a refusal naming the route, got %v", err)
	}
	t.Log(err)
	if ns.Exists("rh") {
		t.Fatal("the rehearsal created the live namespace")
	}
	if l := leftovers(t); len(l) != 0 {
		t.Fatalf("scratch namespaces left: %v", l)
	}
}

// A ruleset the kernel refuses (a NAT statement in a filter chain,
// injected: the compiler never builds one) is found in rehearsal, and
// the live tenant keeps its ruleset.
func TestRehearseRefusedRuleset(t *testing.T) {
	testkit.Require(t)
	cfg := testkit.Config(t, good)
	h, err := ns.Create("rh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(); _ = ns.Delete("rh") })
	if err := standIns(h, cfg.Tenants[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := tenantInto(h, cfg.Tenants[0]); err != nil {
		t.Fatal(err)
	}
	before, err := policy.Observe(h)
	if err != nil {
		t.Fatal(err)
	}
	changed := testkit.Config(t, strings.Replace(good, `action = "accept"`, `action = "drop"`, 1))
	alterRuleset = func(rs *policy.Ruleset) {
		for _, ch := range rs.Chains {
			if ch.Name == "hook_forward" {
				ch.Rules = append(ch.Rules, &policy.Rule{ID: "bogus", Stmts: []policy.Stmt{
					policy.NATStmt{Kind: "dnat", Addr: netip.MustParseAddr("192.0.2.9")}}})
			}
		}
	}
	t.Cleanup(func() { alterRuleset = nil })
	rep, err := Run(context.Background(), log, changed)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "policy") {
		t.Fatalf("want a policy refusal, got %v", err)
	}
	t.Log(err)
	if len(rep.Tenants) != 1 {
		t.Fatalf("report %+v", rep)
	}
	after, err := policy.Observe(h)
	if err != nil {
		t.Fatal(err)
	}
	if after.Hash != before.Hash {
		t.Fatal("the live ruleset changed")
	}
	if l := leftovers(t); len(l) != 0 {
		t.Fatalf("scratch namespaces left: %v", l)
	}
}
