package policy

import (
	"strconv"
	"strings"
)

// RuleCounter is the packet and byte count of one rule identity, summed
// over the kernel rules it compiled to.
type RuleCounter struct {
	ID      string   `json:"id"`
	Comment string   `json:"comment,omitempty"`
	Chains  []string `json:"chains"`
	Packets uint64   `json:"packets"`
	Bytes   uint64   `json:"bytes"`
	// ConfigRules is how many entries of the config this counter stands
	// for: 1 for a rule or NAT entry, the number of rules merged into a
	// merged group, 0 for fwd's built-in rules (hygiene, dispatch,
	// default verdicts). Summed over a tenant, it is its rule count.
	ConfigRules int `json:"config_rules"`
	// Members lists, for a merged group, the identities of the config
	// rules it holds. Known only from the RuleIndex of the ruleset the
	// kernel holds; nil otherwise.
	Members []string `json:"members,omitempty"`
}

// RuleIndex is what a dump of the kernel cannot give back cheaply: the
// members of every merged group (a kernel comment holds at most 127
// bytes, a group thousands of identities). It is computed once per
// compiled ruleset (NewRuleIndex), kept by the caller next to the config
// it applied, and passed to ReadCounters, so a counter read needs one
// dump of fwd's table and no compilation. It is bound to its ruleset's
// hash: against a table holding another ruleset it gives no members.
type RuleIndex struct {
	Hash    string
	members map[string][]string // merged group identity → members
}

// NewRuleIndex indexes rs; nil for a tenant without policy.
func NewRuleIndex(rs *Ruleset) *RuleIndex {
	if rs == nil {
		return nil
	}
	idx := &RuleIndex{Hash: rs.Hash, members: map[string][]string{}}
	for _, ch := range rs.Chains {
		for _, r := range ch.Rules {
			if len(r.Members) > 0 {
				idx.members[r.ID] = r.Members
			}
		}
	}
	return idx
}

// Counters sums the observed counters per rule identity, in chain order
// (chains by name, rules in order), with the members of merged groups
// when idx describes the ruleset st holds. idx may be nil.
func Counters(st *State, idx *RuleIndex) []RuleCounter {
	if st == nil || !st.Exists {
		return nil
	}
	var members map[string][]string
	if idx != nil && idx.Hash == st.Hash {
		members = idx.members
	}
	byID := map[string]*RuleCounter{}
	var order []string
	for _, ch := range st.Chains {
		for _, r := range ch.Rules {
			id := r.ID()
			rc, ok := byID[id]
			if !ok {
				rc = &RuleCounter{ID: id, Members: members[id]}
				if i := strings.Index(r.Comment, ": "); i >= 0 {
					rc.Comment = r.Comment[i+2:]
				}
				rc.ConfigRules = configRules(id, rc.Comment, rc.Members)
				byID[id] = rc
				order = append(order, id)
			}
			if len(rc.Chains) == 0 || rc.Chains[len(rc.Chains)-1] != ch.Name {
				rc.Chains = append(rc.Chains, ch.Name)
			}
			if r.Counter != nil {
				rc.Packets += r.Counter.Packets
				rc.Bytes += r.Counter.Bytes
			}
		}
	}
	out := make([]RuleCounter, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out
}

// configRules counts the config entries behind one identity. A merged
// group's comment starts with its member count ("3 rules: ..."), which
// survives the comment's truncation, so the count is known without the
// index.
func configRules(id, comment string, members []string) int {
	switch {
	case isMerged(id):
		if members != nil {
			return len(members)
		}
		if f := strings.Fields(comment); len(f) > 0 {
			n, _ := strconv.Atoi(f[0])
			return n
		}
		return 0
	case strings.HasPrefix(id, "_"):
		return 0
	}
	return 1
}
