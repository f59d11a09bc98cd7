package policy

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/testkit"
)

// stateOf is what the kernel holds after applying rs: the observed state
// of an up-to-date table, built by hand from the ruleset.
func stateOf(rs *Ruleset) *State {
	st := &State{}
	return applyTx(st, Plan("t", rs, st))
}

// applyTx is a model of what the kernel does with tx: it returns the state
// Observe would read after Apply(tx) on st. Handles are allocated like
// the kernel's (increasing per table); a position that names no rule
// panics, as the kernel would refuse the batch.
func applyTx(st *State, tx *Transaction) *State {
	if tx.Empty() {
		return st
	}
	out := &State{}
	if tx.DeleteTable {
		return out
	}
	rs := tx.Ruleset
	out.Exists, out.Hash = true, rs.Hash
	next := uint64(1)
	for _, ch := range st.Chains {
		for _, r := range ch.Rules {
			next = max(next, r.Handle+1)
		}
	}
	chains := map[string][]ObservedRule{}
	for _, ch := range st.Chains {
		chains[ch.Name] = slices.Clone(ch.Rules)
	}
	for _, ch := range tx.AddChains {
		chains[ch.Name] = nil
	}
	for _, cu := range tx.Chains {
		rules := chains[cu.Name]
		if cu.Flush {
			rules = nil
		}
		rules = slices.DeleteFunc(rules, func(r ObservedRule) bool { return slices.Contains(cu.Delete, r.Handle) })
		for _, a := range cu.Add {
			or := ObservedRule{Handle: next, Comment: a.Rule.comment(), Hash: a.Rule.key(), Members: a.Rule.membersKey()}
			next++
			if hasCounter(a.Rule) {
				c := a.Counter
				or.Counter = &c
			}
			at := len(rules)
			if a.Position != 0 {
				at = slices.IndexFunc(rules, func(r ObservedRule) bool { return r.Handle == a.Position })
				if at < 0 {
					panic(fmt.Sprintf("chain %s: position %d names no rule", cu.Name, a.Position))
				}
				if !a.Before {
					at++
				}
			}
			rules = slices.Insert(rules, at, or)
		}
		chains[cu.Name] = rules
	}
	for _, name := range tx.DeleteChains {
		delete(chains, name)
	}
	for name, rules := range chains {
		out.Chains = append(out.Chains, ObservedChain{Name: name, Rules: rules})
	}
	slices.SortFunc(out.Chains, func(a, b ObservedChain) int { return strings.Compare(a.Name, b.Name) })

	sets := map[string]ObservedSet{}
	for _, s := range st.Sets {
		sets[s.Name] = s
	}
	for _, name := range tx.DeleteSets {
		delete(sets, name)
	}
	for _, u := range tx.Sets {
		k := u.Set.kind()
		sets[u.Set.Name] = ObservedSet{Name: u.Set.Name, Interval: k.Interval, Timeout: k.Timeout, DefaultTimeout: k.DefaultTimeout, Hash: u.Set.Hash}
	}
	for _, u := range tx.IfSets {
		sets[u.Set.Name] = ObservedSet{Name: u.Set.Name, Elems: u.Set.elemTexts()}
	}
	sets[stateSet] = ObservedSet{Name: stateSet, Comment: "sha256:" + rs.Hash}
	for _, s := range sets {
		out.Sets = append(out.Sets, s)
	}
	slices.SortFunc(out.Sets, func(a, b ObservedSet) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// converges applies tx to st in the model and checks that the result is
// exactly rs: every chain holds rs's rules in order and a new plan is
// empty.
func converges(t *testing.T, rs *Ruleset, st *State, tx *Transaction) *State {
	t.Helper()
	got := applyTx(st, tx)
	chains := got.chains()
	for _, ch := range rs.Chains {
		oc := chains[ch.Name]
		if oc == nil || len(oc.Rules) != len(ch.Rules) {
			t.Fatalf("chain %s: not as desired after apply", ch.Name)
		}
		for i, r := range ch.Rules {
			if oc.Rules[i].Hash != r.key() {
				t.Fatalf("chain %s rule %d: got %s, want %s (%s)", ch.Name, i, oc.Rules[i].Comment, r.comment(), r.key())
			}
		}
	}
	if len(got.Chains) != len(rs.Chains) {
		t.Fatalf("%d chains after apply, want %d", len(got.Chains), len(rs.Chains))
	}
	if again := Plan("t", rs, got); !again.Empty() {
		t.Fatalf("a second plan is not empty: %v", again.Changes())
	}
	return got
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
		if len(tx.DeleteSets)+len(tx.DeleteChains) != 0 || len(tx.AddChains) != len(rs.Chains) {
			t.Fatalf("an empty namespace: nothing to delete, every chain to add: %+v", tx)
		}
		if len(tx.Sets) != len(rs.Sets) {
			t.Fatalf("sends %d sets, want all %d", len(tx.Sets), len(rs.Sets))
		}
		cs := tx.Changes()
		if len(cs) != 1 || cs[0].Action != "create-table" || cs[0].Tenant != "edge" || cs[0].Subsystem != "policy" {
			t.Fatalf("changes: %+v", cs)
		}
		converges(t, rs, &State{}, tx)
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

func chainOf(st *State, name string) *ObservedChain { return st.chains()[name] }

// A rule inserted behind fwd's back is drift: it alone is deleted.
func TestPlanRepairsDrift(t *testing.T) {
	rs := edge(t)
	st := stateOf(rs)
	ch := chainOf(st, "in_wan")
	ch.Rules = append([]ObservedRule{{Handle: 999}}, ch.Rules...)
	tx := Plan("edge", rs, st)
	if tx.Empty() || tx.CreateTable || len(tx.Chains) != 1 || !slices.Equal(tx.Chains[0].Delete, []uint64{999}) || len(tx.Chains[0].Add) != 0 {
		t.Fatalf("drift: %+v", tx.Chains)
	}
	if len(tx.Sets) != 0 || len(tx.DeleteChains) != 0 || len(tx.AddChains) != 0 {
		t.Fatalf("drift in a chain must not resend sets or touch chains: %+v", tx)
	}
	if got := actions(tx.Changes()); !slices.Equal(got, []string{"delete-rule in_wan "}) {
		t.Fatalf("changes: %v", got)
	}
	converges(t, rs, st, tx)
	// A rule deleted behind fwd's back is drift too: it is re-added in
	// its place.
	st = stateOf(rs)
	ch = chainOf(st, "in_wan")
	ch.Rules = slices.Delete(ch.Rules, 1, 2)
	tx = Plan("edge", rs, st)
	if len(tx.Chains) != 1 || len(tx.Chains[0].Add) != 1 || tx.Chains[0].Add[0].Position != ch.Rules[0].Handle {
		t.Fatalf("a deleted rule was not planned back after its predecessor: %+v", tx.Chains)
	}
	converges(t, rs, st, tx)
	// A state hash that does not match (a table written by another
	// version of fwd, or an interrupted apply) rewrites the state set.
	st = stateOf(rs)
	st.Hash = "other"
	if tx := Plan("edge", rs, st); tx.Empty() || len(tx.Chains) != 0 {
		t.Fatalf("a foreign hash: %+v", tx)
	}
	// Rules without fwd's hash (written by an older fwd) are replaced.
	st = stateOf(rs)
	for i := range st.Chains {
		for j := range st.Chains[i].Rules {
			st.Chains[i].Rules[j].Hash = ""
		}
	}
	converges(t, rs, st, Plan("edge", rs, st))
}

// Counters of rules that keep their identity are carried over, per
// occurrence of the identity in its chain, when the rule's content
// changes; rules that do not change are not touched at all.
func TestPlanCarriesCounters(t *testing.T) {
	tn := loadTenant(t, "testdata/edge.toml", "edge")
	st := stateOf(Compile(tn))
	ch := chainOf(st, "in_wan")
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
	for _, r := range tn.Policy.Rules {
		if r.ID == "ssh-wan" {
			r.Dport[0].From, r.Dport[0].To = 2200, 2200
		}
	}
	rs := Compile(tn)
	tx := Plan("edge", rs, st)
	i := 0
	for _, cu := range tx.Chains {
		if cu.Name != "in_wan" {
			continue
		}
		for _, a := range cu.Add {
			if a.Rule.ID == "ssh-wan" {
				if a.Counter.Packets != uint64(10+i) || a.Counter.Bytes != uint64(1000+i) {
					t.Fatalf("ssh-wan #%d counter carried as %+v", i, a.Counter)
				}
				i++
			} else {
				t.Fatalf("rule %s re-added although unchanged", a.Rule.ID)
			}
		}
	}
	if i != n {
		t.Fatalf("%d ssh-wan rules re-added in in_wan, want %d", i, n)
	}
	if got := actions(tx.Changes()); !slices.Contains(got, "update-rule in_wan ssh-wan") {
		t.Fatalf("changes: %v", got)
	}
	converges(t, rs, st, tx)
}

func TestPlanSetsAndChains(t *testing.T) {
	rs := edge(t)
	st := stateOf(rs)
	// A set whose content changed, one no longer wanted, a chain no
	// longer wanted.
	for i := range st.Sets {
		if st.Sets[i].Name == "blocklist_v4" {
			st.Sets[i].Hash = "old"
		}
	}
	st.Sets = append(st.Sets, ObservedSet{Name: "gone_v4", Interval: true, Hash: "x"})
	st.Chains = append(st.Chains, ObservedChain{Name: "in_old", Rules: []ObservedRule{{Handle: 5000, Comment: "old-rule", Hash: "h"}}})
	tx := Plan("edge", rs, st)
	if len(tx.Sets) != 1 || tx.Sets[0].Set.Name != "blocklist_v4" || tx.Sets[0].Op != SetRefill {
		t.Fatalf("sends %+v, want only a refill of blocklist_v4", tx.Sets)
	}
	if !slices.Equal(tx.DeleteSets, []string{"gone_v4"}) {
		t.Errorf("deleted sets %v, want gone_v4", tx.DeleteSets)
	}
	if !slices.Equal(tx.DeleteChains, []string{"in_old"}) || len(tx.Chains) != 0 {
		t.Fatalf("chains: update %v, delete %v", tx.Chains, tx.DeleteChains)
	}
	got := actions(tx.Changes())
	for _, want := range []string{"update-set blocklist_v4", "delete-set gone_v4", "delete-chain in_old"} {
		if !slices.Contains(got, want) {
			t.Errorf("changes %v lack %q", got, want)
		}
	}
	converges(t, rs, st, tx)
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
	converges(t, before, st, tx)
}

// namedRules is a tenant with n named rules in wan -> lan (nothing
// merges), rule i dropping tcp port 1000+i; edit rewrites rule k.
func namedRules(t *testing.T, n int, edit func(i int) string) *Ruleset {
	t.Helper()
	return Compile(namedTenant(t, n, edit))
}

func namedTenant(t *testing.T, n int, edit func(i int) string) *config.Tenant {
	t.Helper()
	var b strings.Builder
	b.WriteString(`
[tenant.t.interface.lan0]
device = "x1"
[tenant.t.interface.wan0]
device = "x2"
[tenant.t.zone.lan]
interfaces = ["lan0"]
[tenant.t.zone.wan]
interfaces = ["wan0"]
`)
	for i := 0; i < n; i++ {
		r := fmt.Sprintf("[[tenant.t.rule]]\nname = \"r%d\"\nfrom = \"wan\"\nto = \"lan\"\nproto = \"tcp\"\ndport = %d\naction = \"drop\"\n", i, 1000+i)
		if edit != nil {
			if e := edit(i); e != "" {
				r = e
			}
		}
		b.WriteString(r)
	}
	return testkit.Config(t, b.String()).Tenants[0]
}

// A one-rule change among 10k named rules deletes one rule by handle and
// adds one after its predecessor; nothing else is sent.
func TestPlanOneRuleChangeIsOneRule(t *testing.T) {
	before := namedRules(t, 10000, nil)
	st := stateOf(before)
	after := namedRules(t, 10000, func(i int) string {
		if i == 5000 {
			return "[[tenant.t.rule]]\nname = \"r5000\"\nfrom = \"wan\"\nto = \"lan\"\nproto = \"udp\"\ndport = 6000\naction = \"drop\"\n"
		}
		return ""
	})
	tx := Plan("t", after, st)
	if len(tx.Chains) != 1 || tx.Chains[0].Name != "fw_wan_lan" || tx.Chains[0].Flush {
		t.Fatalf("chain updates: %+v", tx.Chains)
	}
	cu := tx.Chains[0]
	prev := chainOf(st, "fw_wan_lan").Rules[4999].Handle
	if len(cu.Delete) != 1 || len(cu.Add) != 1 || cu.Add[0].Position != prev || cu.Add[0].Before {
		t.Fatalf("fw_wan_lan: delete %v, add %+v; want one rule after handle %d", cu.Delete, cu.Add, prev)
	}
	if len(tx.Sets)+len(tx.IfSets)+len(tx.AddChains)+len(tx.DeleteChains)+len(tx.DeleteSets) != 0 {
		t.Fatalf("a one-rule change touches more: %+v", tx)
	}
	if got := actions(tx.Changes()); !slices.Equal(got, []string{"update-rule fw_wan_lan r5000"}) {
		t.Fatalf("changes: %v", got)
	}
	converges(t, after, st, tx)
}

// Random edits (insertions, deletions, moves, changes) converge: the
// model kernel holds the desired rules in order after one transaction,
// and rules that did not move are kept.
func TestPlanEditsConverge(t *testing.T) {
	base := make([]int, 60)
	for i := range base {
		base[i] = i
	}
	mk := func(order []int, changed map[int]bool) *Ruleset {
		return namedRules(t, len(order), func(i int) string {
			port := 1000 + order[i]
			if changed[order[i]] {
				port += 10000
			}
			return fmt.Sprintf("[[tenant.t.rule]]\nname = \"r%d\"\nfrom = \"wan\"\nto = \"lan\"\nproto = \"tcp\"\ndport = %d\naction = \"drop\"\n", order[i], port)
		})
	}
	st := stateOf(mk(base, nil))
	cases := map[string]struct {
		order   []int
		changed map[int]bool
	}{
		"insert first":  {append([]int{100}, base...), nil},
		"insert middle": {slices.Insert(slices.Clone(base), 30, 101, 102, 103), nil},
		"append":        {append(slices.Clone(base), 104, 105), nil},
		"delete first":  {base[1:], nil},
		"delete last":   {base[:59], nil},
		"move":          {append(append([]int{59}, base[:30]...), base[30:59]...), nil},
		"change two":    {base, map[int]bool{3: true, 40: true}},
		"change all": {base, func() map[int]bool {
			m := map[int]bool{}
			for _, i := range base {
				m[i] = true
			}
			return m
		}()},
		"reverse":          {func() []int { r := slices.Clone(base); slices.Reverse(r); return r }(), nil},
		"insert and trunc": {append([]int{200}, base[:10]...), nil},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			rs := mk(c.order, c.changed)
			tx := Plan("t", rs, st)
			converges(t, rs, st, tx)
		})
	}
}

// A merged group's counter goes to the group with the same members, not
// to the group that now has its number.
func TestPlanMergedCountersFollowMembers(t *testing.T) {
	group := func(from, n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "[[tenant.t.rule]]\nfrom = \"wan\"\nto = \"lan\"\nproto = \"tcp\"\ndaddr = \"192.0.2.%d\"\ndport = 80\naction = \"drop\"\n", from+i)
		}
		return b.String()
	}
	// A named rule overlapping everything separates two groups.
	sep := func(n int) string {
		return fmt.Sprintf("[[tenant.t.rule]]\nname = \"sep%d\"\nfrom = \"wan\"\nto = \"lan\"\nproto = \"tcp\"\naction = \"accept\"\nlimit = \"1/second\"\n", n)
	}
	head := `
[tenant.t.interface.lan0]
device = "x1"
[tenant.t.interface.wan0]
device = "x2"
[tenant.t.zone.lan]
interfaces = ["lan0"]
[tenant.t.zone.wan]
interfaces = ["wan0"]
`
	before := Compile(testkit.Config(t, head+group(10, 3)+sep(1)+group(20, 3)).Tenants[0])
	st := stateOf(before)
	// Group 1 = .10-.12, group 2 = .20-.22; count each differently.
	for i := range st.Chains {
		for j := range st.Chains[i].Rules {
			r := &st.Chains[i].Rules[j]
			switch {
			case r.Counter == nil || !isMerged(r.ID()):
			case strings.HasSuffix(r.ID(), "/1"):
				r.Counter = &Counter{Packets: 111}
			case strings.HasSuffix(r.ID(), "/2"):
				r.Counter = &Counter{Packets: 222}
			}
		}
	}
	// A new group in front: .20-.22 becomes group 3, .10-.12 group 2.
	after := Compile(testkit.Config(t, head+group(30, 3)+sep(0)+group(10, 3)+sep(1)+group(20, 3)).Tenants[0])
	tx := Plan("t", after, st)
	got := map[string]uint64{}
	for _, cu := range tx.Chains {
		for _, a := range cu.Add {
			if isMerged(a.Rule.ID) && hasCounter(a.Rule) {
				got[a.Rule.ID+" "+strings.Join(a.Rule.Members, ",")] = a.Counter.Packets
			}
		}
	}
	ids := func(rs *Ruleset, n int) string {
		for _, ch := range rs.Chains {
			for _, r := range ch.Rules {
				if r.ID == fmt.Sprintf("_merged/fw_wan_lan/%d", n) {
					return r.ID + " " + strings.Join(r.Members, ",")
				}
			}
		}
		t.Fatalf("no merged group %d", n)
		return ""
	}
	if got[ids(after, 1)] != 0 || got[ids(after, 2)] != 111 || got[ids(after, 3)] != 222 {
		t.Fatalf("merged counters after renumbering: %v", got)
	}
	converges(t, after, st, tx)
}
