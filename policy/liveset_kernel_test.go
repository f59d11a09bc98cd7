//go:build kernel

package policy

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/fwdproject/fwd/config"
)

// liveConf drops lan → wan traffic from sources in set "ban"; the set is
// declared static here and made dynamic on the compiled ruleset (the
// config key is decoded by the config package).
const liveConf = labBase + `
[tenant.fw.set.ban]
elements = ["198.51.100.1"]
[tenant.fw.set.fixed]
elements = ["198.51.100.2"]
[[tenant.fw.rule]]
name = "banned"
from = "lan"
to = "wan"
saddr = "@ban"
action = "drop"
[[tenant.fw.rule]]
name = "fixed"
from = "lan"
to = "wan"
saddr = "@fixed"
action = "drop"
`

func liveRuleset(t *testing.T, extra string, timeout time.Duration) *Ruleset {
	t.Helper()
	rs := Compile(tenantFrom(t, liveConf+extra))
	for _, s := range rs.Sets {
		if s.Name == "ban_v4" || s.Name == "ban_v6" {
			s.Dynamic, s.Timeout, s.Interval, s.Hash = true, timeout, true, ""
		}
	}
	rs.Hash = hashOf(rs)
	return rs
}

func ranges(t *testing.T, s ...string) []config.AddrRange {
	t.Helper()
	var out []config.AddrRange
	for _, x := range s {
		r, err := config.ParseAddrRange(x)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// TestLiveSet: elements of a dynamic set change without a reload, in a
// few milliseconds; reloads keep them; timeouts expire them; static sets
// are read-only.
func TestLiveSet(t *testing.T) {
	l := newLab(t)
	serve(t, l.wan, "203.0.113.2:80")
	route(t, l.wan, "192.0.2.0/24", "203.0.113.1")
	rs := liveRuleset(t, "", 0)
	applyFrom(t, rs, nil, l.fw)
	if _, err := connect(l.lan, "203.0.113.2:80"); err != nil {
		t.Fatalf("before ban: %v", err)
	}
	lan := ranges(t, "192.0.2.10")
	var took []time.Duration
	for i := 0; i < 20; i++ {
		t0 := time.Now()
		if err := SetAdd(l.fw, "ban", lan, 0); err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(t0))
		t0 = time.Now()
		if err := SetDel(l.fw, "ban", lan); err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(t0))
	}
	slices.Sort(took)
	t.Logf("SetAdd/SetDel: best %v, median %v, worst %v", took[0], took[len(took)/2], took[len(took)-1])
	// The figure is the best of 40: the machine running the tests is
	// shared, and one change is well under a millisecond of work.
	if took[0] > 5*time.Millisecond {
		t.Errorf("fastest live-set change %v, want ≤ 5ms", took[0])
	}
	if err := SetAdd(l.fw, "ban", append(lan, ranges(t, "2001:db8:bad::/48", "198.51.100.16/28")...), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := connect(l.lan, "203.0.113.2:80"); !isTimeout(err) {
		t.Fatalf("banned source: want timeout, got %v", err)
	}
	els, err := SetList(l.fw, "ban")
	// The config element seeded the set when it was created.
	var got []string
	for _, e := range els {
		got = append(got, rangeText(e.Range))
	}
	if err != nil || !slices.Equal(got, []string{"192.0.2.10", "198.51.100.1", "198.51.100.16/28", "2001:db8:bad::/48"}) {
		t.Fatalf("SetList: %+v %v", els, err)
	}
	// A reload, unchanged or with a changed rule, keeps the elements.
	applyFrom(t, rs, rs, l.fw)
	rs2 := liveRuleset(t, "[[tenant.fw.rule]]\nname = \"extra\"\nfrom = \"wan\"\nto = \"lan\"\nproto = \"udp\"\ndport = 7\naction = \"drop\"\n", 0)
	applyFrom(t, rs2, rs, l.fw)
	applyFrom(t, rs2, nil, l.fw) // as after a restart
	if els, _ := SetList(l.fw, "ban"); len(els) != 4 {
		t.Fatalf("after reloads the live set holds %+v", els)
	}
	cs, err := SetCounts(l.fw, rs2)
	if err != nil || !slices.Equal(cs, []SetCount{{Set: "ban", Dynamic: true, Elements: 4}, {Set: "fixed", Elements: 1}}) {
		t.Fatalf("SetCounts: %+v %v", cs, err)
	}
	if err := SetDel(l.fw, "ban", lan); err != nil {
		t.Fatal(err)
	}
	if _, err := connect(l.lan, "203.0.113.2:80"); err != nil {
		t.Fatalf("unbanned: %v", err)
	}
	// Timeouts: per element, and the set's default.
	if err := SetAdd(l.fw, "ban", lan, time.Second); err != nil {
		t.Fatal(err)
	}
	els, _ = SetList(l.fw, "ban")
	if i := slices.IndexFunc(els, func(e SetElem) bool { return e.Range == lan[0] }); i < 0 || els[i].Expires <= 0 || els[i].Expires > time.Second {
		t.Fatalf("element with a timeout: %+v", els)
	}
	time.Sleep(1500 * time.Millisecond)
	if els, _ := SetList(l.fw, "ban"); slices.IndexFunc(els, func(e SetElem) bool { return e.Range == lan[0] }) >= 0 {
		t.Fatalf("element did not expire: %+v", els)
	}
	if err := SetFlush(l.fw, "ban"); err != nil {
		t.Fatal(err)
	}
	if els, _ := SetList(l.fw, "ban"); len(els) != 0 {
		t.Fatalf("after flush: %+v", els)
	}
	// A default timeout change re-creates the set (and the rules using it).
	rs3 := liveRuleset(t, "", time.Hour)
	applyFrom(t, rs3, rs2, l.fw)
	if err := SetAdd(l.fw, "ban", lan, 0); err != nil {
		t.Fatal(err)
	}
	// (re-created: seeded again from the config, elements given the default timeout)
	if els, _ := SetList(l.fw, "ban"); len(els) != 2 || els[0].Expires <= 59*time.Minute || els[1].Expires <= 59*time.Minute {
		t.Fatalf("default timeout: %+v", els)
	}
	if _, err := connect(l.lan, "203.0.113.2:80"); !isTimeout(err) {
		t.Fatalf("re-created set does not ban: %v", err)
	}
	// Static sets are read-only through the live-set API.
	if err := SetAdd(l.fw, "fixed", lan, 0); !errors.Is(err, ErrStaticSet) {
		t.Fatalf("SetAdd on a static set: %v", err)
	}
	if err := SetFlush(l.fw, "nope"); !errors.Is(err, ErrNoSet) {
		t.Fatalf("SetFlush on a missing set: %v", err)
	}
}
