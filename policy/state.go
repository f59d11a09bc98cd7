package policy

import "strings"

// State is fwd's table in one namespace as Observe read it: a plain
// value, so that Plan and Counters can be tested with hand-built states.
type State struct {
	// Exists is false when the namespace holds no fwd table, or does not
	// exist yet.
	Exists bool
	// Hash is the hash of the last ruleset applied, kept in the comment
	// of the state set ("" if there is none).
	Hash   string
	Chains []ObservedChain // in name order
	Sets   []ObservedSet   // named sets and maps (not anonymous ones), in name order
}

// ObservedChain is one chain of fwd's table and its rules in order.
type ObservedChain struct {
	Name  string
	Rules []ObservedRule
}

// ObservedRule is one kernel rule: its handle, its comment (which carries
// the rule's identity: "id" or "id: comment") and its counter.
type ObservedRule struct {
	Handle  uint64
	Comment string
	Counter *Counter // nil: the rule has no counter
}

// ID is the rule's identity, recovered from its comment.
func (r ObservedRule) ID() string { return IDFromComment(r.Comment) }

// ObservedSet is one named set or map. Address sets carry the hash of
// their elements in their comment, so a set whose comment matches the
// desired one holds the desired elements (Apply verified the element
// count when it sent them); its elements are therefore not read.
type ObservedSet struct {
	Name    string
	Comment string
}

// chains indexes the observed chains by name.
func (st *State) chains() map[string]*ObservedChain {
	m := make(map[string]*ObservedChain, len(st.Chains))
	for i := range st.Chains {
		m[st.Chains[i].Name] = &st.Chains[i]
	}
	return m
}

// sets indexes the observed sets by name.
func (st *State) sets() map[string]ObservedSet {
	m := make(map[string]ObservedSet, len(st.Sets))
	for _, s := range st.Sets {
		m[s.Name] = s
	}
	return m
}

// hashFromComment recovers the ruleset hash from the state set's comment.
func hashFromComment(c string) string { return strings.TrimPrefix(c, "sha256:") }
