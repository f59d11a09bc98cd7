package policy

import (
	"sort"
)

// planChains plans the chains: new ones are created, unwanted ones
// deleted, and in every other chain the observed rules are aligned with
// the desired ones by content hash. The longest run of rules that can
// stay in order is kept (handles and counters untouched); the other
// observed rules are deleted by handle and the missing desired rules
// inserted next to the kept ones. Rules that refer to a re-created set
// are never kept. A new rule inherits the counter of the rule it
// replaces (see carryKey).
func planChains(tx *Transaction, rs *Ruleset, st *State, recreated map[string]bool) {
	have := st.chains()
	want := map[string]bool{}
	carried := map[carryKey]carriedCounter{}
	drop := func(chain string, rules []ObservedRule, gone func(j int) bool) {
		for j, k := range observedCarryKeys(chain, rules) {
			if gone(j) && rules[j].Counter != nil {
				carried[k] = carriedCounter{*rules[j].Counter, ruleRef{chain, rules[j].Handle}}
			}
		}
	}
	type pending struct {
		ch   *Chain
		cu   ChainUpdate
		kept []int // per desired rule: index of the observed rule kept, or -1
		obs  []ObservedRule
	}
	var work []pending
	for _, ch := range rs.Chains {
		want[ch.Name] = true
		oc := have[ch.Name]
		if oc == nil {
			tx.AddChains = append(tx.AddChains, ch)
			work = append(work, pending{ch: ch, cu: ChainUpdate{Name: ch.Name}, kept: minusOnes(len(ch.Rules))})
			continue
		}
		never := func(r *Rule) bool { return refersTo(r, recreated) }
		kept, keepObs := sameRules(ch.Rules, oc.Rules, never)
		if kept == nil {
			kept, keepObs = alignChain(ch.Rules, oc.Rules, never)
		}
		p := pending{ch: ch, cu: ChainUpdate{Name: ch.Name}, kept: kept, obs: oc.Rules}
		nKept := 0
		for j, k := range keepObs {
			if k {
				nKept++
			} else {
				p.cu.Delete = append(p.cu.Delete, oc.Rules[j].Handle)
			}
		}
		if nKept == 0 && len(oc.Rules) > 0 {
			p.cu.Flush, p.cu.Delete = true, nil
		}
		drop(ch.Name, oc.Rules, func(j int) bool { return !keepObs[j] })
		work = append(work, p)
	}
	for _, oc := range st.Chains {
		if !want[oc.Name] {
			tx.DeleteChains = append(tx.DeleteChains, oc.Name)
			drop(oc.Name, oc.Rules, func(int) bool { return true })
		}
	}
	tx.kept = make([][]uint64, len(work))
	for i, p := range work {
		p.cu.Add = placeRules(p.ch, p.kept, p.obs, carried)
		if p.cu.Flush || len(p.cu.Delete) > 0 || len(p.cu.Add) > 0 {
			tx.Chains = append(tx.Chains, p.cu)
		}
		hs := make([]uint64, len(p.kept))
		for k, j := range p.kept {
			if j >= 0 {
				hs[k] = p.obs[j].Handle
			}
		}
		tx.kept[i] = hs
	}
}

// carriedCounter is the counter of a rule deleted by the plan, and which
// rule it was.
type carriedCounter struct {
	Counter Counter
	from    ruleRef
}

// sameRules is the common case of alignChain, in one pass without maps:
// the chain holds exactly the desired rules in order, so all are kept.
// It returns nil otherwise.
func sameRules(want []*Rule, have []ObservedRule, never func(*Rule) bool) (kept []int, keepObs []bool) {
	if len(want) != len(have) {
		return nil, nil
	}
	for i, r := range want {
		if have[i].Hash == "" || have[i].Hash != r.key() || never(r) {
			return nil, nil
		}
	}
	kept = make([]int, len(want))
	keepObs = make([]bool, len(have))
	for i := range kept {
		kept[i], keepObs[i] = i, true
	}
	return kept, keepObs
}

func minusOnes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = -1
	}
	return out
}

// refersTo reports whether r looks up one of the named sets.
func refersTo(r *Rule, sets map[string]bool) bool {
	if len(sets) == 0 {
		return false
	}
	for _, s := range r.Stmts {
		if a, ok := s.(Addr); ok && sets[a.Set] {
			return true
		}
	}
	return false
}

// alignChain matches desired rules with observed ones by content hash
// (and occurrence of that hash, so duplicates pair up in order) and keeps
// the longest subsequence that is in the same order in both: kept[i] is
// the observed index kept for desired rule i (-1: to add), keepObs[j]
// whether observed rule j stays.
func alignChain(want []*Rule, have []ObservedRule, never func(*Rule) bool) (kept []int, keepObs []bool) {
	// A hash and its occurrence, as a struct key: no string built per rule.
	type occKey struct {
		hash string
		n    int
	}
	idx := make(map[occKey]int, len(have))
	occ := make(map[string]int, len(have))
	for j, r := range have {
		if r.Hash == "" {
			continue // not written by fwd: drift
		}
		idx[occKey{r.Hash, occ[r.Hash]}] = j
		occ[r.Hash]++
	}
	clear(occ)
	kept = minusOnes(len(want))
	var seq, pos []int // observed indices of matched desired rules, and their desired index
	for i, r := range want {
		h := r.key()
		k := occKey{h, occ[h]}
		occ[h]++
		if j, ok := idx[k]; ok && !never(r) {
			seq = append(seq, j)
			pos = append(pos, i)
		}
	}
	keepObs = make([]bool, len(have))
	for p, keep := range increasing(seq) {
		if keep {
			kept[pos[p]] = seq[p]
			keepObs[seq[p]] = true
		}
	}
	return kept, keepObs
}

// increasing marks a longest strictly increasing subsequence of seq
// (distinct values), in O(n log n): for a one-rule change it keeps every
// other rule.
func increasing(seq []int) []bool {
	keep := make([]bool, len(seq))
	if len(seq) == 0 {
		return keep
	}
	var tails []int // positions in seq
	prev := make([]int, len(seq))
	for p, v := range seq {
		k := sort.Search(len(tails), func(x int) bool { return seq[tails[x]] >= v })
		prev[p] = -1
		if k > 0 {
			prev[p] = tails[k-1]
		}
		if k == len(tails) {
			tails = append(tails, p)
		} else {
			tails[k] = p
		}
	}
	for p := tails[len(tails)-1]; p >= 0; p = prev[p] {
		keep[p] = true
	}
	return keep
}

// placeRules lists the additions that put the desired rules not kept
// around the kept ones: a run before the first kept rule is inserted
// before it, a run after a kept rule goes after it (added in reverse, so
// that the run ends up in order), a run after the last kept rule is
// appended (the observed rules after it are deleted first).
func placeRules(ch *Chain, kept []int, obs []ObservedRule, carried map[carryKey]carriedCounter) []RuleAdd {
	keys := desiredCarryKeys(ch)
	var out, run []RuleAdd
	var last uint64 // handle of the last kept rule so far
	flush := func(next uint64, end bool) {
		switch {
		case len(run) == 0:
		case last == 0 && !end:
			for _, a := range run {
				a.Position, a.Before = next, true
				out = append(out, a)
			}
		case last != 0 && !end:
			for i := len(run) - 1; i >= 0; i-- {
				a := run[i]
				a.Position = last
				out = append(out, a)
			}
		default:
			out = append(out, run...)
		}
		run = run[:0]
	}
	for i, r := range ch.Rules {
		if kept[i] >= 0 {
			h := obs[kept[i]].Handle
			flush(h, false)
			last = h
			continue
		}
		a := RuleAdd{Rule: r, index: i}
		if c, ok := carried[keys[i]]; ok {
			a.Counter, a.from = c.Counter, c.from
			delete(carried, keys[i])
		}
		run = append(run, a)
	}
	flush(0, true)
	return out
}

// desiredCarryKeys computes the carry key of every rule of ch.
func desiredCarryKeys(ch *Chain) []carryKey {
	out := make([]carryKey, len(ch.Rules))
	seen := map[string]int{}
	for i, r := range ch.Rules {
		if isMerged(r.ID) && r.membersKey() != "" && hasCounter(r) {
			out[i] = mergedCarryKey(ch.Name, r.ID, r.membersKey())
			continue
		}
		out[i] = carryKey{ch.Name, r.ID, seen[r.ID]}
		seen[r.ID]++
	}
	return out
}

func observedCarryKeys(chain string, rules []ObservedRule) []carryKey {
	out := make([]carryKey, len(rules))
	seen := map[string]int{}
	for i, r := range rules {
		id := r.ID()
		if isMerged(id) && r.Members != "" && r.Counter != nil {
			out[i] = mergedCarryKey(chain, id, r.Members)
			continue
		}
		out[i] = carryKey{chain, id, seen[id]}
		seen[id]++
	}
	return out
}

func hasCounter(r *Rule) bool {
	for _, s := range r.Stmts {
		if _, ok := s.(Counter); ok {
			return true
		}
	}
	return false
}
