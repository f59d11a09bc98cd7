package policy

import (
	"slices"
	"testing"
)

func TestCountersFromAState(t *testing.T) {
	rs := Compile(loadTenant(t, "testdata/merge.toml", "m"))
	st := stateOf(rs)
	var group string
	for i := range st.Chains {
		for j := range st.Chains[i].Rules {
			r := &st.Chains[i].Rules[j]
			if r.Counter != nil {
				r.Counter = &Counter{Packets: 2, Bytes: 100}
			}
			if isMerged(r.ID()) && group == "" {
				group = r.ID()
			}
		}
	}
	if group == "" {
		t.Fatal("testdata/merge.toml compiled to no merged group")
	}
	var want []string
	for _, ch := range rs.Chains {
		for _, r := range ch.Rules {
			if r.ID == group {
				want = r.Members
			}
		}
	}
	byID := func(cs []RuleCounter) map[string]RuleCounter {
		m := map[string]RuleCounter{}
		for _, c := range cs {
			m[c.ID] = c
		}
		return m
	}

	// With the index of the ruleset the kernel holds: members known.
	got := byID(Counters(st, NewRuleIndex(rs)))
	g := got[group]
	if !slices.Equal(g.Members, want) || g.ConfigRules != len(want) {
		t.Fatalf("merged group %s: %+v, want members %v", group, g, want)
	}
	// The group counts in its verdict chains, once per kernel rule.
	if g.Packets == 0 || g.Packets%2 != 0 || len(g.Chains) < 2 {
		t.Fatalf("merged group counters: %+v", g)
	}
	if d := got["_default/fw_lan_wan"]; d.ConfigRules != 0 || d.Packets != 2 || !slices.Equal(d.Chains, []string{"fw_lan_wan"}) {
		t.Fatalf("default verdict: %+v", d)
	}

	// Without an index, or with the index of another ruleset: no
	// members, but the count survives (from the kernel comment).
	other := NewRuleIndex(rs)
	other.Hash = "another ruleset"
	for _, idx := range []*RuleIndex{nil, other} {
		g := byID(Counters(st, idx))[group]
		if g.Members != nil || g.ConfigRules != len(want) {
			t.Fatalf("index %v: merged group %+v", idx, g)
		}
	}
	if cs := Counters(&State{}, nil); cs != nil {
		t.Fatalf("no table, counters %v", cs)
	}
}

// A named rule counts once however many kernel rules and chains it
// compiled to; its comment is recovered from the kernel comment.
func TestCountersNamedRule(t *testing.T) {
	rs := edge(t)
	st := stateOf(rs)
	for i := range st.Chains {
		for j := range st.Chains[i].Rules {
			if st.Chains[i].Rules[j].Counter != nil {
				st.Chains[i].Rules[j].Counter = &Counter{Packets: 1, Bytes: 60}
			}
		}
	}
	for _, c := range Counters(st, NewRuleIndex(rs)) {
		if c.ID != "ssh-wan" {
			continue
		}
		if c.ConfigRules != 1 || c.Comment != "no SSH from the internet" || !slices.Equal(c.Chains, []string{"fw_wan_lan", "in_wan"}) || c.Packets != 2 {
			t.Fatalf("ssh-wan: %+v", c)
		}
		return
	}
	t.Fatal("no ssh-wan counter")
}
