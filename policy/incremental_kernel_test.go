//go:build kernel

package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/mdlayher/netlink"
	"github.com/vishvananda/netns"
)

// applyFrom observes h, plans rs against it (patching sets from prev) and
// applies.
func applyFrom(t *testing.T, rs, prev *Ruleset, h netns.NsHandle) ApplyStats {
	t.Helper()
	st, err := Observe(h)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := Apply(h, PlanFrom("fw", rs, prev, st))
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return stats
}

// handles maps every rule of fwd's table to its handle, by chain and
// comment (and occurrence).
func handles(t *testing.T, h netns.NsHandle) map[string]uint64 {
	t.Helper()
	st, err := Observe(h)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, ch := range st.Chains {
		seen := map[string]int{}
		for _, r := range ch.Rules {
			out[fmt.Sprintf("%s %s #%d", ch.Name, r.Comment, seen[r.Comment])] = r.Handle
			seen[r.Comment]++
		}
	}
	return out
}

func namedRulesConf(n, changed int) string {
	var b strings.Builder
	b.WriteString(labBase)
	b.WriteString("[[tenant.fw.rule]]\nname = \"web\"\nfrom = \"lan\"\nto = \"wan\"\nproto = \"tcp\"\ndport = 80\naction = \"accept\"\n")
	for i := 0; i < n; i++ {
		port := 10000 + i
		if i == changed {
			port = 9999
		}
		fmt.Fprintf(&b, "[[tenant.fw.rule]]\nname = \"r%d\"\nfrom = \"lan\"\nto = \"wan\"\nproto = \"udp\"\ndport = %d\naction = \"drop\"\n", i, port)
	}
	return b.String()
}

// TestOneRuleChangeRewritesOneRule: 10k named rules (nothing merges);
// changing one deletes and re-adds that rule only. Every other rule keeps
// its handle, and the counter of an untouched rule that saw traffic is
// not reset.
func TestOneRuleChangeRewritesOneRule(t *testing.T) {
	l := newLab(t)
	serve(t, l.wan, "203.0.113.2:80")
	route(t, l.wan, "192.0.2.0/24", "203.0.113.1")
	const n = 10000
	before := Compile(tenantFrom(t, namedRulesConf(n, -1)))
	applyFrom(t, before, nil, l.fw)
	for i := 0; i < 3; i++ {
		if _, err := connect(l.lan, "203.0.113.2:80"); err != nil {
			t.Fatal(err)
		}
	}
	web := counterOf(t, l.fw, "web")
	if web == 0 {
		t.Fatal("web did not count")
	}
	h0 := handles(t, l.fw)
	after := Compile(tenantFrom(t, namedRulesConf(n, 5000)))
	t0 := time.Now()
	if _, err := Observe(l.fw); err != nil {
		t.Fatal(err)
	}
	t.Logf("observe: %v", time.Since(t0))
	t0 = time.Now()
	stats := applyFrom(t, after, before, l.fw)
	t.Logf("one-rule change among %d named rules: %v (commit %v, %d messages, %d rules)", n, time.Since(t0), stats.Commit, stats.Messages, stats.Rules)
	if stats.Rules != 2 || stats.Elements != 0 {
		t.Fatalf("a one-rule change sent %d rule operations and %d set elements, want 2 and 0", stats.Rules, stats.Elements)
	}
	h1 := handles(t, l.fw)
	changed := 0
	for k, h := range h0 {
		if strings.Contains(k, " r5000 ") || strings.HasPrefix(k, "fw_lan_wan r5000 ") {
			continue
		}
		if h1[k] != h {
			changed++
			if changed < 5 {
				t.Errorf("rule %q: handle %d became %d", k, h, h1[k])
			}
		}
	}
	if changed > 0 {
		t.Fatalf("%d untouched rules were rewritten", changed)
	}
	if _, ok := h1["fw_lan_wan r5000 #0"]; !ok {
		t.Fatal("r5000 is gone")
	}
	if got := counterOf(t, l.fw, "web"); got < web {
		t.Fatalf("web counter went from %d to %d", web, got)
	}
	out := nft(t, l.fwN, "list", "chain", "inet", TableName, "fw_lan_wan")
	if !strings.Contains(out, "udp dport 9999") || strings.Contains(out, "udp dport 15000 ") {
		t.Fatalf("r5000 not changed in the kernel")
	}
	// The new rule sits where r5000 was: between r4999 and r5001.
	i, j, k := strings.Index(out, `"r4999"`), strings.Index(out, "udp dport 9999"), strings.Index(out, `"r5001"`)
	if i >= j || j >= k {
		t.Fatalf("r5000 is not between r4999 and r5001 (%d %d %d)", i, j, k)
	}
	if tx := plan(t, tenantFrom(t, namedRulesConf(n, 5000)), l.fw); !tx.Empty() {
		t.Fatalf("after the change, a new plan is not empty: %v", tx.Changes())
	}
}

// allowConf lets lan reach wan only for destinations in set "allow",
// whose file has the given lines.
const allowConf = `
[tenant.fw.interface.lan0]
device = "x1"
addresses = ["192.0.2.1/24"]
[tenant.fw.interface.wan0]
device = "x2"
addresses = ["203.0.113.1/24"]
[tenant.fw.zone.lan]
interfaces = ["lan0"]
[tenant.fw.zone.wan]
interfaces = ["wan0"]
[tenant.fw.set.allow]
elements = [%s]
[[tenant.fw.rule]]
name = "allowed"
from = "lan"
to = "wan"
daddr = "@allow"
action = "accept"
`

func allowSet(t *testing.T, elems []string) *Ruleset {
	t.Helper()
	q := make([]string, len(elems))
	for i, e := range elems {
		q[i] = fmt.Sprintf("%q", e)
	}
	return Compile(tenantFrom(t, fmt.Sprintf(allowConf, strings.Join(q, ", "))))
}

// kernelRanges reads a set's elements back as ranges.
func kernelRanges(t *testing.T, h netns.NsHandle, set string, v6 bool) []config.AddrRange {
	t.Helper()
	c, err := dial(h)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.GetSetByName(table, set)
	if err != nil {
		t.Fatal(err)
	}
	s.Table = table
	el, err := c.GetSetElements(s)
	if err != nil {
		t.Fatal(err)
	}
	var out []config.AddrRange
	if !s.Interval {
		for _, e := range el {
			a, _ := netip.AddrFromSlice(e.Key)
			out = append(out, config.AddrRange{From: a, To: a})
		}
		return MergeRanges(out)
	}
	for _, e := range intervalsOf(el, v6) {
		out = append(out, e.Range)
	}
	return out
}

func sameRanges(a, b []config.AddrRange) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// hammer opens TCP connections from lan to addr until stop is closed and
// counts the failures: each is a new flow, so each walks the policy and
// looks the set up.
func hammer(l *lab, addr string, stop chan struct{}) (wait func() (ok, failed int64)) {
	var okN, failN atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := connect(l.lan, addr); err != nil {
				failN.Add(1)
			} else {
				okN.Add(1)
			}
		}
	}()
	return func() (int64, int64) { wg.Wait(); return okN.Load(), failN.Load() }
}

// TestSetPatchKeepsTraffic changes 10 lines of a 20k-element set five
// times while new connections to an address in an unchanged element are
// opened back to back: each update sends only the changed elements, and
// no connection fails.
func TestSetPatchKeepsTraffic(t *testing.T) {
	l := newLab(t)
	serve(t, l.wan, "203.0.113.2:80")
	route(t, l.wan, "192.0.2.0/24", "203.0.113.1")
	base := []string{"203.0.113.2"}
	for i := 0; i < 20000; i++ {
		base = append(base, fmt.Sprintf("198.18.%d.%d", i/100, 1+2*(i%100))) // none adjacent: a hash set
	}
	prev := allowSet(t, base)
	st := applyFrom(t, prev, nil, l.fw)
	if st.Elements != 20001 {
		t.Fatalf("first apply sent %d elements, want 20001", st.Elements)
	}
	if _, err := connect(l.lan, "203.0.113.2:80"); err != nil {
		t.Fatalf("allowed destination: %v", err)
	}
	stop := make(chan struct{})
	wait := hammer(l, "203.0.113.2:80", stop)
	elems := append([]string(nil), base...)
	for round := 0; round < 5; round++ {
		elems = append([]string(nil), elems...)
		for k := 0; k < 10; k++ {
			elems[1+round*1000+k] = fmt.Sprintf("198.19.%d.%d", round, 2*k+1)
		}
		rs := allowSet(t, elems)
		stats := applyFrom(t, rs, prev, l.fw)
		if stats.Elements != 20 {
			t.Fatalf("round %d: a 10-line change sent %d elements, want 20 (10 deleted, 10 added)", round, stats.Elements)
		}
		t.Logf("round %d: commit %v, %d messages", round, stats.Commit, stats.Messages)
		if got := kernelRanges(t, l.fw, "allow_v4", false); !sameRanges(got, rs.Sets[0].Elems) {
			t.Fatalf("round %d: the kernel set differs from the desired one (%d vs %d ranges)", round, len(got), len(rs.Sets[0].Elems))
		}
		prev = rs
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	ok, failed := wait()
	t.Logf("%d connections during the updates, %d failed", ok, failed)
	if failed != 0 || ok == 0 {
		t.Fatalf("%d of %d connections failed during set updates", failed, ok+failed)
	}
	// Without the previous ruleset (a restarted daemon), a changed set is
	// refilled in one batch: still no gap, all elements sent.
	stop = make(chan struct{})
	wait = hammer(l, "203.0.113.2:80", stop)
	stats := applyFrom(t, allowSet(t, base), nil, l.fw)
	close(stop)
	if ok, failed := wait(); failed != 0 {
		t.Fatalf("refill: %d of %d connections failed", failed, ok+failed)
	}
	if stats.Elements != 20001 {
		t.Fatalf("refill sent %d elements, want 20001", stats.Elements)
	}
}

// TestIntervalSetPatch patches an interval set with ranges that become
// adjacent (merged), split, and start where a deleted range ended; the
// kernel set always equals the desired one, and traffic to an address in
// an unchanged range never stops.
func TestIntervalSetPatch(t *testing.T) {
	l := newLab(t)
	serve(t, l.wan, "203.0.113.2:80")
	route(t, l.wan, "192.0.2.0/24", "203.0.113.1")
	steps := [][]string{
		{"203.0.113.0/28", "198.18.0.0/24", "198.18.2.0/24", "198.18.4.0-198.18.4.9"},
		{"203.0.113.0/28", "198.18.0.0/24", "198.18.1.0/24", "198.18.2.0/24", "198.18.4.0-198.18.4.9"}, // three merge into one
		{"203.0.113.0/28", "198.18.0.0/24", "198.18.1.128/25", "198.18.4.10-198.18.4.20"},              // split; a range starts where one ended
		{"203.0.113.0/28", "198.18.0.0/23", "198.18.4.0-198.18.4.20"},                                  // overlapping input, merged
		{"203.0.113.0/28", "198.18.0.0/24", "2001:db8::/64"},
		{"203.0.113.0/28"},
	}
	stop := make(chan struct{})
	var wait func() (int64, int64)
	var prev *Ruleset
	for i, s := range steps {
		rs := allowSet(t, s)
		stats := applyFrom(t, rs, prev, l.fw)
		for _, ns := range rs.Sets {
			if got := kernelRanges(t, l.fw, ns.Name, ns.V6); !sameRanges(got, ns.Elems) {
				t.Fatalf("step %d: %s holds %v, want %v", i, ns.Name, got, ns.Elems)
			}
		}
		t.Logf("step %d: %d elements sent", i, stats.Elements)
		if i == 0 {
			if _, err := connect(l.lan, "203.0.113.2:80"); err != nil {
				t.Fatal(err)
			}
			wait = hammer(l, "203.0.113.2:80", stop)
		}
		prev = rs
		time.Sleep(30 * time.Millisecond)
	}
	close(stop)
	if ok, failed := wait(); failed != 0 || ok == 0 {
		t.Fatalf("%d of %d connections failed during interval set patches", failed, ok+failed)
	}
}

// TestTruncatedBatchSendsNothing: a batch that lost an element message
// fails Apply before anything reaches the kernel.
func TestTruncatedBatchSendsNothing(t *testing.T) {
	l := newLab(t)
	batchHook = func(msgs []netlink.Message) []netlink.Message {
		for i := len(msgs) - 1; i >= 0; i-- {
			if elemsOf(msgs[i], "allow_v4") {
				return append(msgs[:i:i], msgs[i+1:]...)
			}
		}
		return msgs
	}
	defer func() { batchHook = nil }()
	rs := allowSet(t, []string{"203.0.113.2", "198.18.0.0/24"})
	st, _ := Observe(l.fw)
	if _, err := Apply(l.fw, Plan("fw", rs, st)); err == nil || !strings.Contains(err.Error(), "nothing sent") {
		t.Fatalf("a truncated batch: %v", err)
	}
	if st, _ := Observe(l.fw); st.Exists {
		t.Fatal("a truncated batch reached the kernel")
	}
}
