package policy

import (
	"errors"
	"sort"
)

// Remembering the table between reloads.
//
// After a commit, fwd knows what its table holds without reading it: the
// ruleset it sent, the handles of the rules it kept, and the handles the
// kernel gave the rules it added (Apply learns them from the commit, see
// batch_linux.go). afterCommit builds that State; the next plan can use
// it instead of Observe as long as nothing else changed the namespace's
// ruleset since, which the nftables generation id tells (every commit in
// a namespace, by anyone, increments it; see Memory).

// ErrGenerationChanged: the namespace's ruleset changed (another writer
// committed) between the state a transaction was planned from and its
// commit. The kernel refused the batch as a whole, so nothing was
// changed; plan again from a fresh Observe.
var ErrGenerationChanged = errors.New("the ruleset changed since it was read (another writer committed)")

// afterCommit is the table as tx's commit left it: tx's ruleset, with
// the handles of the rules tx kept and, for the rules it added, added[i]
// (in the order Apply sends them). gen is the generation the commit
// produced. It returns nil when the handles do not add up.
func afterCommit(tx *Transaction, added []uint64, gen uint32) *State {
	st := &State{Gen: gen, remembered: true}
	if tx.DeleteTable {
		return st
	}
	rs := tx.Ruleset
	if rs == nil || len(tx.kept) != len(rs.Chains) {
		return nil
	}
	st.Exists, st.Hash = true, rs.Hash
	index := make(map[string]int, len(rs.Chains))
	handles := make([][]uint64, len(rs.Chains))
	for i, ch := range rs.Chains {
		index[ch.Name] = i
		handles[i] = append([]uint64(nil), tx.kept[i]...)
	}
	n := 0
	for _, cu := range tx.Chains {
		i, ok := index[cu.Name]
		if !ok {
			return nil
		}
		for _, a := range cu.Add {
			if n == len(added) || a.index >= len(handles[i]) || handles[i][a.index] != 0 {
				return nil
			}
			handles[i][a.index] = added[n]
			n++
		}
	}
	if n != len(added) {
		return nil
	}
	for _, s := range rs.Sets {
		k := s.kind()
		o := ObservedSet{Name: s.Name, Interval: k.Interval, Timeout: k.Timeout, DefaultTimeout: k.DefaultTimeout}
		if !s.Dynamic {
			o.Hash = s.Hash
		}
		st.Sets = append(st.Sets, o)
	}
	for _, s := range rs.IfSets {
		st.Sets = append(st.Sets, ObservedSet{Name: s.Name, Elems: s.elemTexts()})
	}
	st.Sets = append(st.Sets, ObservedSet{Name: stateSet, Comment: "sha256:" + rs.Hash})
	sort.Slice(st.Sets, func(i, j int) bool { return st.Sets[i].Name < st.Sets[j].Name })
	for i, ch := range rs.Chains {
		oc := ObservedChain{Name: ch.Name, Rules: make([]ObservedRule, len(ch.Rules))}
		counters := make([]Counter, len(ch.Rules)) // placeholders: Apply reads the ones it carries
		for k, r := range ch.Rules {
			if handles[i][k] == 0 {
				return nil
			}
			o := ObservedRule{Handle: handles[i][k], Comment: r.comment(), Hash: r.key(), Members: r.membersKey()}
			if hasCounter(r) {
				o.Counter = &counters[k]
			}
			oc.Rules[k] = o
		}
		st.Chains = append(st.Chains, oc)
	}
	sort.Slice(st.Chains, func(i, j int) bool { return st.Chains[i].Name < st.Chains[j].Name })
	return st
}

// carriedRules lists the rules whose counters tx carries to new rules.
func (tx *Transaction) carriedRules() []ruleRef {
	var out []ruleRef
	for _, cu := range tx.Chains {
		for _, a := range cu.Add {
			if a.from.Handle != 0 {
				out = append(out, a.from)
			}
		}
	}
	return out
}

// setCarried replaces the counters tx carries with those read from the
// kernel (by rule); a rule missing from read keeps its placeholder.
func (tx *Transaction) setCarried(read map[ruleRef]Counter) {
	for ci := range tx.Chains {
		adds := tx.Chains[ci].Add
		for i := range adds {
			if c, ok := read[adds[i].from]; ok && adds[i].from.Handle != 0 {
				adds[i].Counter = c
			}
		}
	}
}
