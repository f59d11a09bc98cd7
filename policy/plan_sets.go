package policy

import (
	"slices"

	"github.com/fwdproject/fwd/config"
)

// planSets plans the address sets and returns the names of the sets
// re-created (the rules referring to them must be re-added around them).
func planSets(tx *Transaction, rs, previous *Ruleset, st *State) map[string]bool {
	have := st.sets()
	prev := map[string]*NamedSet{}
	if previous != nil {
		for _, s := range previous.Sets {
			prev[s.Name] = s
		}
	}
	recreated := map[string]bool{}
	want := map[string]bool{stateSet: true}
	for _, s := range rs.IfSets {
		want[s.Name] = true
	}
	for _, s := range rs.Sets {
		want[s.Name] = true
		ks, ok := have[s.Name]
		switch {
		case !ok:
			tx.Sets = append(tx.Sets, SetUpdate{Set: s, Op: SetCreate})
		case ks.kind() != s.kind():
			tx.Sets = append(tx.Sets, SetUpdate{Set: s, Op: SetRecreate})
			recreated[s.Name] = true
		case s.Dynamic:
			// A live set's elements belong to automation: a reload
			// never touches them.
		case ks.Hash == s.Hash:
		case prev[s.Name] != nil && ks.Hash != "" && prev[s.Name].Hash == ks.Hash:
			add, del := diffRanges(prev[s.Name].Elems, s.Elems)
			tx.Sets = append(tx.Sets, SetUpdate{Set: s, Op: SetPatch, Add: add, Del: del})
		default:
			tx.Sets = append(tx.Sets, SetUpdate{Set: s, Op: SetRefill})
		}
	}
	for _, ks := range st.Sets {
		if !want[ks.Name] {
			tx.DeleteSets = append(tx.DeleteSets, ks.Name)
		}
	}
	return recreated
}

// diffRanges returns the ranges of want missing from have (to add) and
// those of have missing from want (to delete). Both are sorted and
// merged (MergeRanges), so a range is an exact kernel element pair: an
// interval set stays consistent when both ends of every changed range
// are deleted and added in the same batch, even where an added range
// starts where a deleted one ended.
func diffRanges(have, want []config.AddrRange) (add, del []config.AddrRange) {
	i, j := 0, 0
	for i < len(have) || j < len(want) {
		switch {
		case j == len(want):
			del = append(del, have[i])
			i++
		case i == len(have):
			add = append(add, want[j])
			j++
		case have[i] == want[j]:
			i++
			j++
		case have[i].From.Less(want[j].From) || (have[i].From == want[j].From && have[i].To.Less(want[j].To)):
			del = append(del, have[i])
			i++
		default:
			add = append(add, want[j])
			j++
		}
	}
	return add, del
}

// planIfSets plans the interface sets and dispatch maps: small, read in
// full by Observe, refilled when their elements differ.
func planIfSets(tx *Transaction, rs *Ruleset, st *State) {
	have := st.sets()
	for _, s := range rs.IfSets {
		ks, ok := have[s.Name]
		switch {
		case !ok:
			tx.IfSets = append(tx.IfSets, IfSetUpdate{Set: s, Create: true})
		case !slices.Equal(ks.Elems, s.elemTexts()):
			tx.IfSets = append(tx.IfSets, IfSetUpdate{Set: s})
		}
	}
}

// elemTexts renders the elements as Observe reports them.
func (s *IfSet) elemTexts() []string {
	var out []string
	if s.Map {
		for _, e := range s.Elems {
			out = append(out, ifElemText(e.Key, e.Chain))
		}
	} else {
		for _, n := range s.Names {
			out = append(out, ifElemText(n, ""))
		}
	}
	slices.Sort(out)
	return out
}

// ifElemText is one interface set or map element: the name, and the goto
// target of a map element.
func ifElemText(name, chain string) string {
	if chain == "" {
		return name
	}
	return name + " : goto " + chain
}
