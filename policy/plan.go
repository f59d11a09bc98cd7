package policy

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/fwdproject/fwd/change"
)

// Transaction is what one Apply sends to fwd's table in one namespace: a
// single nftables batch, committed atomically. Plan computes it without
// kernel access; an empty transaction sends nothing.
//
// A rewrite does not delete the table: it flushes every chain, replaces
// only the address sets whose content changed (plus the state set and the
// small interface sets), deletes the chains no longer wanted and re-adds
// every rule. Packets see the old or the new ruleset, never a mix, and
// conntrack entries (established flows, NAT mappings) are untouched.
type Transaction struct {
	// DeleteTable: the tenant has no policy any more; the batch deletes
	// fwd's table and nothing else.
	DeleteTable bool
	// Ruleset is the table to write; nil when nothing is written.
	Ruleset *Ruleset
	// CreateTable: the table does not exist yet (nothing to flush or delete).
	CreateTable bool
	// FlushChains lists every existing chain: all rules are re-added.
	FlushChains []string
	// DeleteSets lists the sets removed before the new ones are added:
	// address sets whose content changed or that are no longer wanted,
	// the state set and the interface sets (rebuilt on every write).
	DeleteSets []string
	// DeleteChains lists the chains no longer wanted.
	DeleteChains []string
	// SendSets are the address sets sent with their elements; Apply reads
	// back their element counts after the commit. Unchanged sets, however
	// large, are neither resent nor re-read.
	SendSets []*NamedSet
	// Counters carries the packet and byte counts of rules whose identity
	// survives the rewrite.
	Counters map[RuleKey]Counter

	changes []change.Change
}

// RuleKey identifies a kernel rule across reloads: its chain, its
// identity and the occurrence of that identity in the chain (one config
// rule may compile to several kernel rules).
type RuleKey struct {
	Chain, ID string
	N         int
}

// Empty reports whether the transaction sends nothing.
func (tx *Transaction) Empty() bool { return !tx.DeleteTable && tx.Ruleset == nil }

// Changes describes, per chain and set, what the transaction changes (for
// `fwd plan` and the engine's "changed" lines).
func (tx *Transaction) Changes() []change.Change { return tx.changes }

// Plan computes the transaction that brings the observed table to the
// desired ruleset (nil: the tenant has no policy, so fwd owns no table).
// tenant only labels the changes. An unchanged ruleset (same hash, same
// chains, the same rules in every chain and the same sets) gives an empty
// transaction; rules added or removed behind fwd's back are drift and
// give a rewrite.
func Plan(tenant string, desired *Ruleset, observed *State) *Transaction {
	tx := &Transaction{}
	st := observed
	if st == nil {
		st = &State{}
	}
	mk := func(action, obj, detail string) change.Change {
		return change.Change{Tenant: tenant, Subsystem: "policy", Action: action, Object: obj, Detail: detail}
	}
	if desired == nil {
		if st.Exists {
			tx.DeleteTable = true
			tx.changes = []change.Change{mk("delete-table", "inet "+TableName, "no policy configured")}
		}
		return tx
	}
	if upToDate(st, desired) {
		return tx
	}
	tx.Ruleset = desired
	tx.changes = diff(mk, st, desired)
	tx.CreateTable = !st.Exists
	have := st.sets()
	if st.Exists {
		wantChain := map[string]bool{}
		for _, ch := range desired.Chains {
			wantChain[ch.Name] = true
		}
		wantSet := map[string]string{}
		for _, s := range desired.Sets {
			wantSet[s.Name] = s.comment()
		}
		for _, ch := range st.Chains {
			tx.FlushChains = append(tx.FlushChains, ch.Name)
			if !wantChain[ch.Name] {
				tx.DeleteChains = append(tx.DeleteChains, ch.Name)
			}
		}
		for _, ks := range st.Sets {
			if cm, ok := wantSet[ks.Name]; !ok || cm != ks.Comment || ks.Name == stateSet {
				tx.DeleteSets = append(tx.DeleteSets, ks.Name)
			}
		}
	}
	for _, s := range desired.Sets {
		if ks, ok := have[s.Name]; ok && ks.Comment == s.comment() {
			continue
		}
		tx.SendSets = append(tx.SendSets, s)
	}
	tx.Counters = carriedCounters(st)
	return tx
}

// upToDate reports whether the observed table already is rs.
func upToDate(st *State, rs *Ruleset) bool {
	if !st.Exists || st.Hash != rs.Hash || len(st.Chains) != len(rs.Chains) {
		return false
	}
	have := make([]string, len(st.Chains))
	for i, ch := range st.Chains {
		have[i] = ch.Name
	}
	want := make([]string, len(rs.Chains))
	for i, ch := range rs.Chains {
		want[i] = ch.Name
	}
	sort.Strings(have)
	sort.Strings(want)
	if !slices.Equal(have, want) {
		return false
	}
	// Rules added or deleted behind fwd's back: compare each chain's rule
	// comments (cheap once rules are merged; sets are trusted by hash).
	chains := st.chains()
	for _, ch := range rs.Chains {
		got := chains[ch.Name]
		if len(got.Rules) != len(ch.Rules) {
			return false
		}
		for i, r := range ch.Rules {
			if got.Rules[i].Comment != r.comment() {
				return false
			}
		}
	}
	sets := st.sets()
	for _, s := range rs.Sets {
		if ks, ok := sets[s.Name]; !ok || ks.Comment != s.comment() {
			return false
		}
	}
	return true
}

// carriedCounters indexes the observed counters by rule key.
func carriedCounters(st *State) map[RuleKey]Counter {
	out := map[RuleKey]Counter{}
	for _, ch := range st.Chains {
		seen := map[string]int{}
		for _, r := range ch.Rules {
			id := r.ID()
			k := RuleKey{ch.Name, id, seen[id]}
			seen[id]++
			if r.Counter != nil {
				out[k] = *r.Counter
			}
		}
	}
	return out
}

// diff describes, per chain and set, what rewriting st into rs changes.
func diff(mk func(action, obj, detail string) change.Change, st *State, rs *Ruleset) []change.Change {
	if !st.Exists {
		n := 0
		for _, ch := range rs.Chains {
			n += len(ch.Rules)
		}
		el := 0
		for _, s := range rs.Sets {
			el += len(s.Elems)
		}
		return []change.Change{mk("create-table", "inet "+TableName, fmt.Sprintf("%d chains, %d rules, %d sets, %d set elements", len(rs.Chains), n, len(rs.Sets), el))}
	}
	var out []change.Change
	want := map[string]bool{}
	chains := st.chains()
	for _, ch := range rs.Chains {
		want[ch.Name] = true
		old := chains[ch.Name]
		if old == nil {
			out = append(out, mk("add-chain", ch.Name, fmt.Sprintf("%d rules", len(ch.Rules))))
			continue
		}
		// Compare by full comment: it carries the identity, and for merged
		// groups the member list, so a changed group shows up too.
		oldC := map[string]int{}
		for _, r := range old.Rules {
			oldC[r.Comment]++
		}
		newC := map[string]int{}
		for _, r := range ch.Rules {
			newC[r.comment()]++
		}
		reported := map[string]bool{}
		for _, r := range ch.Rules {
			cm := r.comment()
			if newC[cm] > oldC[cm] && !reported[cm] {
				reported[cm] = true
				out = append(out, mk("add-rule", ch.Name+" "+r.ID, ruleSummary(r)))
			}
		}
		for cm, n := range oldC {
			if newC[cm] < n {
				out = append(out, mk("delete-rule", ch.Name+" "+IDFromComment(cm), ""))
			}
		}
	}
	for _, ch := range st.Chains {
		if !want[ch.Name] {
			out = append(out, mk("delete-chain", ch.Name, ""))
		}
	}
	wantSet := map[string]bool{stateSet: true}
	for _, s := range rs.Sets {
		wantSet[s.Name] = true
	}
	for _, s := range rs.IfSets {
		wantSet[s.Name] = true
	}
	have := st.sets()
	for _, ks := range st.Sets {
		if !wantSet[ks.Name] {
			out = append(out, mk("delete-set", ks.Name, ""))
		}
	}
	for _, s := range rs.Sets {
		ks, ok := have[s.Name]
		switch {
		case !ok:
			out = append(out, mk("add-set", s.Name, fmt.Sprintf("%d elements", len(s.Elems))))
		case ks.Comment != s.comment():
			out = append(out, mk("update-set", s.Name, fmt.Sprintf("%d elements", len(s.Elems))))
		}
	}
	if len(out) == 0 {
		out = append(out, mk("update-table", "inet "+TableName, "rule contents changed"))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Object < out[j].Object })
	return out
}

// ruleSummary is the rule in nft syntax, shortened for plan output.
func ruleSummary(r *Rule) string {
	parts := make([]string, len(r.Stmts))
	for i, s := range r.Stmts {
		parts[i] = s.text()
	}
	t := strings.Join(parts, " ")
	if len(t) > 200 {
		t = t[:200] + "…"
	}
	return t
}
