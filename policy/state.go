package policy

import (
	"strings"
	"time"
)

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
	// Gen is the namespace's nftables ruleset generation the state was
	// read at (or, for a remembered state, that fwd's commit produced);
	// 0: unknown. Apply sends its batch on condition that the generation
	// is still Gen (see Apply).
	Gen uint32

	// remembered: built from fwd's last commit (afterCommit), not read
	// from the kernel. Its rule counters are placeholders: Apply reads
	// the counters a transaction carries before sending it.
	remembered bool
}

// ObservedChain is one chain of fwd's table and its rules in order.
type ObservedChain struct {
	Name  string
	Rules []ObservedRule
}

// ObservedRule is one kernel rule: its handle, its comment (which carries
// the rule's identity: "id" or "id: comment"), its content hash and, for
// a merged group's counting rule, the hash of its members (both from the
// rule's userdata; "" for a rule fwd did not write), and its counter.
type ObservedRule struct {
	Handle  uint64
	Comment string
	Hash    string
	Members string
	Counter *Counter // nil: the rule has no counter
}

// ID is the rule's identity, recovered from its comment.
func (r ObservedRule) ID() string { return IDFromComment(r.Comment) }

// ObservedSet is one named set or map. The elements of address sets are
// not read: the state set records the hash of the elements each static
// set holds (Hash), which Apply verified when it sent them. Interface
// sets and maps are small and read in full (Elems).
type ObservedSet struct {
	Name    string
	Comment string
	// Kernel declaration: interval and timeout flags, default timeout.
	Interval, Timeout bool
	DefaultTimeout    time.Duration
	// Hash of the elements of a static address set, as recorded in the
	// state set by the last apply ("" if unknown).
	Hash string
	// Elems of interface sets and maps, rendered by ifElemText.
	Elems []string
}

func (s ObservedSet) kind() setKind {
	return setKind{Interval: s.Interval, Timeout: s.Timeout, DefaultTimeout: s.DefaultTimeout}
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
func (st *State) sets() map[string]*ObservedSet {
	m := make(map[string]*ObservedSet, len(st.Sets))
	for i := range st.Sets {
		m[st.Sets[i].Name] = &st.Sets[i]
	}
	return m
}

// hashFromComment recovers the ruleset hash from the state set's comment.
func hashFromComment(c string) string { return strings.TrimPrefix(c, "sha256:") }
