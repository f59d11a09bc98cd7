package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/fwdproject/fwd/change"
)

// stateOf is what the kernel holds after applying rs: the observed state
// of an up-to-date table, built by hand from the ruleset.
func stateOf(rs *Ruleset) *State {
	st := &State{Exists: true, Hash: rs.Hash}
	st.Sets = append(st.Sets, ObservedSet{Name: stateSet, Comment: "sha256:" + rs.Hash})
	for _, s := range rs.Sets {
		st.Sets = append(st.Sets, ObservedSet{Name: s.Name, Comment: s.comment()})
	}
	for _, s := range rs.IfSets {
		st.Sets = append(st.Sets, ObservedSet{Name: s.Name})
	}
	slices.SortFunc(st.Sets, func(a, b ObservedSet) int { return strings.Compare(a.Name, b.Name) })
	h := uint64(1)
	for _, ch := range rs.Chains {
		oc := ObservedChain{Name: ch.Name}
		for _, r := range ch.Rules {
			or := ObservedRule{Handle: h, Comment: r.comment()}
			h++
			for _, s := range r.Stmts {
				if c, ok := s.(Counter); ok {
					or.Counter = &c
				}
			}
			oc.Rules = append(oc.Rules, or)
		}
		st.Chains = append(st.Chains, oc)
	}
	slices.SortFunc(st.Chains, func(a, b ObservedChain) int { return strings.Compare(a.Name, b.Name) })
	return st
}

func edge(t *testing.T) *Ruleset {
	t.Helper()
	return Compile(loadTenant(t, "testdata/edge.toml", "edge"))
}

func actions(cs []change.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Action+" "+c.Object)
	}
	return out
}

func TestPlanEmptyNamespaceCreatesTable(t *testing.T) {
	rs := edge(t)
	for _, st := range []*State{nil, {}} {
		tx := Plan("edge", rs, st)
		if tx.Empty() || !tx.CreateTable || tx.Ruleset != rs {
			t.Fatalf("plan on an empty namespace: %+v", tx)
		}
		if len(tx.FlushChains)+len(tx.DeleteSets)+len(tx.DeleteChains) != 0 {
			t.Fatalf("nothing to flush or delete in an empty namespace: %+v", tx)
		}
		if len(tx.SendSets) != len(rs.Sets) {
			t.Fatalf("sends %d sets, want all %d", len(tx.SendSets), len(rs.Sets))
		}
		cs := tx.Changes()
		if len(cs) != 1 || cs[0].Action != "create-table" || cs[0].Tenant != "edge" || cs[0].Subsystem != "policy" {
			t.Fatalf("changes: %+v", cs)
		}
	}
}

func TestPlanUnchangedSendsNothing(t *testing.T) {
	rs := edge(t)
	tx := Plan("edge", rs, stateOf(rs))
	if !tx.Empty() || len(tx.Changes()) != 0 {
		t.Fatalf("unchanged ruleset planned %+v %v", tx, tx.Changes())
	}
}

func TestPlanNoPolicy(t *testing.T) {
	if tx := Plan("edge", nil, &State{}); !tx.Empty() || len(tx.Changes()) != 0 {
		t.Fatalf("no policy, no table: %+v", tx)
	}
	tx := Plan("edge", nil, stateOf(edge(t)))
	if !tx.DeleteTable || tx.Ruleset != nil || tx.Empty() {
		t.Fatalf("no policy, table present: %+v", tx)
	}
	if got := actions(tx.Changes()); !slices.Equal(got, []string{"delete-table inet " + TableName}) {
		t.Fatalf("changes: %v", got)
	}
}

// A rule inserted behind fwd's back is drift: the whole table is
// rewritten (every chain flushed) and the foreign rule reported.
func TestPlanRepairsDrift(t *testing.T) {
	rs := edge(t)
	st := stateOf(rs)
	for i := range st.Chains {
		if st.Chains[i].Name == "in_wan" {
			st.Chains[i].Rules = append([]ObservedRule{{Handle: 999}}, st.Chains[i].Rules...)
		}
	}
	tx := Plan("edge", rs, st)
	if tx.Empty() || tx.CreateTable || len(tx.FlushChains) != len(rs.Chains) {
		t.Fatalf("drift: %+v", tx)
	}
	if len(tx.SendSets) != 0 || len(tx.DeleteChains) != 0 {
		t.Fatalf("drift in a chain must not resend sets or delete chains: %+v", tx)
	}
	if got := actions(tx.Changes()); !slices.Equal(got, []string{"delete-rule in_wan "}) {
		t.Fatalf("changes: %v", got)
	}
	// A rule deleted behind fwd's back is drift too.
	st = stateOf(rs)
	for i := range st.Chains {
		if st.Chains[i].Name == "in_wan" {
			st.Chains[i].Rules = st.Chains[i].Rules[1:]
		}
	}
	if tx := Plan("edge", rs, st); tx.Empty() {
		t.Fatal("a deleted rule was not planned back")
	}
	// So is a state hash that does not match (a table written by another
	// version of fwd, or an interrupted apply).
	st = stateOf(rs)
	st.Hash = "other"
	if tx := Plan("edge", rs, st); tx.Empty() {
		t.Fatal("a foreign hash was trusted")
	}
}

// Counters of rules that keep their identity are carried over, per
// occurrence of the identity in its chain.
func TestPlanCarriesCounters(t *testing.T) {
	rs := edge(t)
	st := stateOf(rs)
	st.Hash = "previous"
	var ch *ObservedChain
	for i := range st.Chains {
		if st.Chains[i].Name == "in_wan" {
			ch = &st.Chains[i]
		}
	}
	n := 0
	for i, r := range ch.Rules {
		if r.ID() == "ssh-wan" && r.Counter != nil {
			ch.Rules[i].Counter = &Counter{Packets: uint64(10 + n), Bytes: uint64(1000 + n)}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no ssh-wan rule with a counter in in_wan")
	}
	tx := Plan("edge", rs, st)
	for i := 0; i < n; i++ {
		got, ok := tx.Counters[RuleKey{"in_wan", "ssh-wan", i}]
		if !ok || got.Packets != uint64(10+i) || got.Bytes != uint64(1000+i) {
			t.Fatalf("ssh-wan #%d counter carried as %+v (%v)", i, got, ok)
		}
	}
}

func TestPlanSetsAndChains(t *testing.T) {
	rs := edge(t)
	st := stateOf(rs)
	// A set whose content changed, one no longer wanted, a chain no
	// longer wanted.
	for i := range st.Sets {
		if st.Sets[i].Name == "blocklist_v4" {
			st.Sets[i].Comment = "sha256:old"
		}
	}
	st.Sets = append(st.Sets, ObservedSet{Name: "gone_v4", Comment: "sha256:x"})
	st.Chains = append(st.Chains, ObservedChain{Name: "in_old", Rules: []ObservedRule{{Comment: "old-rule"}}})
	tx := Plan("edge", rs, st)
	if len(tx.SendSets) != 1 || tx.SendSets[0].Name != "blocklist_v4" {
		t.Fatalf("sends %v, want only blocklist_v4", tx.SendSets)
	}
	for _, name := range []string{"blocklist_v4", "gone_v4", stateSet, "dispatch_input"} {
		if !slices.Contains(tx.DeleteSets, name) {
			t.Errorf("set %s is not deleted: %v", name, tx.DeleteSets)
		}
	}
	if slices.Contains(tx.DeleteSets, "blocklist_v6") {
		t.Error("the unchanged blocklist_v6 is deleted")
	}
	if !slices.Equal(tx.DeleteChains, []string{"in_old"}) || !slices.Contains(tx.FlushChains, "in_old") {
		t.Fatalf("chains: flush %v, delete %v", tx.FlushChains, tx.DeleteChains)
	}
	got := actions(tx.Changes())
	for _, want := range []string{"update-set blocklist_v4", "delete-set gone_v4", "delete-chain in_old"} {
		if !slices.Contains(got, want) {
			t.Errorf("changes %v lack %q", got, want)
		}
	}
}

// Adding a config rule reports it, with its nft text, in each chain it
// lands in.
func TestPlanAddedRule(t *testing.T) {
	before := edge(t)
	tn := loadTenant(t, "testdata/edge.toml", "edge")
	tn.Policy.Rules = tn.Policy.Rules[1:] // drop "blocklist"
	st := stateOf(Compile(tn))
	tx := Plan("edge", before, st)
	var added []change.Change
	for _, c := range tx.Changes() {
		if c.Action == "add-rule" && strings.HasSuffix(c.Object, " blocklist") {
			added = append(added, c)
		}
	}
	if len(added) == 0 || !strings.Contains(added[0].Detail, "@blocklist_v4") {
		t.Fatalf("added rule not reported: %v", tx.Changes())
	}
}
