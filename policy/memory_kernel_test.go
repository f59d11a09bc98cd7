//go:build kernel

package policy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/vishvananda/netns"
)

// memoryConf is namedRulesConf (10k named rules in lan -> wan) plus a
// set read from block.txt, dropped from any zone.
func memoryConf(n, changed int) string {
	return namedRulesConf(n, changed) + `
[tenant.fw.set.block]
file = "block.txt"
[[tenant.fw.rule]]
name = "blocklist"
from = "any"
to = "any"
saddr = "@block"
action = "drop"
`
}

func sendUDP(t *testing.T, h netns.NsHandle, addr string) {
	t.Helper()
	if err := ns.Do(h, func() error {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("x"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// sameTable fails unless the remembered state holds the same chains,
// rules (handle, identity, hash) and sets as a fresh Observe.
func sameTable(t *testing.T, remembered *State, h netns.NsHandle) {
	t.Helper()
	if remembered == nil {
		t.Fatal("the commit left no remembered state (rule handles not confirmed)")
	}
	obs, err := Observe(h)
	if err != nil {
		t.Fatal(err)
	}
	if obs.Gen != remembered.Gen || obs.Hash != remembered.Hash || obs.Exists != remembered.Exists {
		t.Fatalf("remembered gen %d hash %s exists %v, observed %d %s %v", remembered.Gen, remembered.Hash, remembered.Exists, obs.Gen, obs.Hash, obs.Exists)
	}
	if len(obs.Chains) != len(remembered.Chains) {
		t.Fatalf("remembered %d chains, observed %d", len(remembered.Chains), len(obs.Chains))
	}
	for i, oc := range obs.Chains {
		rc := remembered.Chains[i]
		if rc.Name != oc.Name || len(rc.Rules) != len(oc.Rules) {
			t.Fatalf("chain %s (%d rules) remembered as %s (%d rules)", oc.Name, len(oc.Rules), rc.Name, len(rc.Rules))
		}
		for j, o := range oc.Rules {
			r := rc.Rules[j]
			if r.Handle != o.Handle || r.Comment != o.Comment || r.Hash != o.Hash || r.Members != o.Members || (r.Counter == nil) != (o.Counter == nil) {
				t.Fatalf("chain %s rule %d: remembered %+v, observed %+v", oc.Name, j, r, o)
			}
		}
	}
	var rn, on []string
	for _, s := range remembered.Sets {
		rn = append(rn, fmt.Sprintf("%s %v %v %s %v", s.Name, s.Interval, s.Timeout, s.Hash, s.Elems))
	}
	for _, s := range obs.Sets {
		on = append(on, fmt.Sprintf("%s %v %v %s %v", s.Name, s.Interval, s.Timeout, s.Hash, s.Elems))
	}
	if strings.Join(rn, "\n") != strings.Join(on, "\n") {
		t.Fatalf("sets: remembered\n%s\nobserved\n%s", strings.Join(rn, "\n"), strings.Join(on, "\n"))
	}
}

// TestMemoryReloads: 10k named rules and a 20k-element set. After the
// first apply, fwd remembers its table (the handles it predicted for the
// added rules equal what the kernel reports). An unchanged reload then
// compiles nothing, dumps nothing and sends nothing; a one-rule change
// dumps nothing and sends that rule's delete and add only, carrying the
// counter the kernel holds now; a rule added by `nft` into fwd's table
// changes the generation, so the next reload observes and removes it;
// and a commit by another writer between plan and apply makes the kernel
// refuse the stale batch, which Memory.Apply plans again and applies.
func TestMemoryReloads(t *testing.T) {
	l := newLab(t)
	const n, setSize = 10000, 20000
	dir := t.TempDir()
	var b strings.Builder
	a := netip.MustParseAddr("198.18.0.0")
	for i := 0; i < setSize; i++ {
		fmt.Fprintf(&b, "%s\n", a)
		a = a.Next().Next()
	}
	if err := os.WriteFile(filepath.Join(dir, "block.txt"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := &config.SetCache{}
	load := func(changed int) (*config.Tenant, time.Duration) {
		t.Helper()
		t0 := time.Now()
		p := filepath.Join(dir, "fwd.toml")
		if err := os.WriteFile(p, []byte(memoryConf(n, changed)), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.LoadWith(p, cache)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Tenants[0], time.Since(t0)
	}
	m := &Memory{}
	reload := func(what string, changed int) (*Transaction, ApplyStats, int64) {
		t.Helper()
		tn, loaded := load(changed)
		dumps := ruleDumps.Load()
		t0 := time.Now()
		tx, err := m.Plan(tn, l.fw)
		if err != nil {
			t.Fatal(err)
		}
		planned := time.Since(t0)
		stats, err := m.Apply(l.fw, tx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s (indicative, loaded machine): load %v, plan %v, apply %v (commit %v), %d messages, %d rule operations",
			what, loaded, planned, time.Since(t0)-planned, stats.Commit, stats.Messages, stats.Rules)
		return tx, stats, ruleDumps.Load() - dumps
	}

	_, stats, _ := reload("first apply", -1)
	sameTable(t, stats.After, l.fw)
	compiled := m.compiled

	tx, stats, dumps := reload("unchanged reload", -1)
	if !tx.Empty() || stats.Messages != 0 || dumps != 0 {
		t.Fatalf("unchanged reload: empty %v, %d messages, %d rule dumps; want empty, 0, 0", tx.Empty(), stats.Messages, dumps)
	}
	if m.compiled != compiled {
		t.Fatal("unchanged reload compiled the policy again")
	}

	// r5000 drops UDP to port 15000: make it count, then change it.
	for i := 0; i < 3; i++ {
		sendUDP(t, l.lan, "203.0.113.2:15000")
	}
	before := counterOf(t, l.fw, "r5000")
	if before == 0 {
		t.Fatal("r5000 did not count")
	}
	tx, stats, dumps = reload("one rule changed", 5000)
	if dumps != 0 || stats.Rules != 2 || len(tx.Chains) != 1 || tx.Chains[0].Name != "fw_lan_wan" || stats.Elements != 0 {
		t.Fatalf("one rule changed: %d rule dumps, %d rule operations in %d chains, %d elements; want 0, 2 in fw_lan_wan, 0",
			dumps, stats.Rules, len(tx.Chains), stats.Elements)
	}
	sameTable(t, stats.After, l.fw)
	if got := counterOf(t, l.fw, "r5000"); got < before {
		t.Fatalf("r5000's counter went from %d to %d: the carried counter was not read from the kernel", before, got)
	}
	if _, _, dumps = reload("unchanged after the change", 5000); dumps != 0 {
		t.Fatal("an unchanged reload after a change dumped the rules")
	}

	// Drift: a rule added behind fwd's back, in fwd's own chain.
	nft(t, l.fwN, "add", "rule", "inet", TableName, "fw_lan_wan", "udp", "dport", "7", "accept")
	tx, stats, dumps = reload("after an external nft add rule", 5000)
	if dumps != 1 || tx.Empty() {
		t.Fatalf("external change: %d rule dumps, empty plan %v; want 1 dump and a repair", dumps, tx.Empty())
	}
	sameTable(t, stats.After, l.fw)
	if out := nft(t, l.fwN, "list", "chain", "inet", TableName, "fw_lan_wan"); strings.Contains(out, "dport 7 ") {
		t.Fatal("the foreign rule is still there")
	}

	// Another writer commits between plan and apply: the kernel refuses
	// the stale batch as a whole.
	tn, _ := load(4000)
	stale, err := m.Plan(tn, l.fw)
	if err != nil {
		t.Fatal(err)
	}
	nft(t, l.fwN, "add", "table", "inet", "runtime_other")
	if _, err := Apply(l.fw, stale); !errors.Is(err, ErrGenerationChanged) {
		t.Fatalf("a batch planned before another commit: %v, want ErrGenerationChanged", err)
	}
	if _, err := m.Apply(l.fw, stale); err != nil {
		t.Fatalf("Memory.Apply after another commit: %v", err)
	}
	if len(stale.Changes()) == 0 {
		t.Fatal("the retried transaction reports no change")
	}
	sameTable(t, m.state, l.fw)
	if out := nft(t, l.fwN, "list", "tables"); !strings.Contains(out, "runtime_other") {
		t.Fatal("the other writer's table is gone")
	}
}
