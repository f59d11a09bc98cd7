package policy

import (
	"encoding/binary"
	"net/netip"
	"strings"

	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/config"
)

// Transaction is what one Apply sends to fwd's table in one namespace: a
// single nftables batch, committed atomically. Plan computes it without
// kernel access; an empty transaction sends nothing.
//
// A reload is incremental: only the chains whose rules changed are
// touched, and in them only the rules that changed (deleted by handle,
// inserted at their position); address sets are patched element by
// element. Untouched rules keep their handles and counters. Packets see
// the old or the new ruleset, never a mix, and conntrack entries
// (established flows, NAT mappings) are untouched.
type Transaction struct {
	// DeleteTable: the tenant has no policy any more; the batch deletes
	// fwd's table and nothing else.
	DeleteTable bool
	// Ruleset is the table to write; nil when nothing is written.
	Ruleset *Ruleset
	// CreateTable: the table does not exist yet (nothing to flush or delete).
	CreateTable bool
	// AddChains are the chains that do not exist yet. They are created
	// empty, before any rule or map element refers to them.
	AddChains []*Chain
	// Sets are the address sets created, re-created, refilled or patched.
	Sets []SetUpdate
	// IfSets are the interface sets and maps created or refilled.
	IfSets []IfSetUpdate
	// Chains are the rule changes, per chain that has any.
	Chains []ChainUpdate
	// DeleteSets and DeleteChains are no longer wanted; they go after the
	// rules and map elements that refer to them.
	DeleteSets   []string
	DeleteChains []string

	observedState bool // the state set exists (it is replaced)
	changes       []change.Change

	// gen is the generation of the state the transaction was planned
	// from (0: unknown); Apply sends the batch on that condition.
	gen uint32
	// staleCounters: planned from a remembered state, whose counters
	// Apply must read before carrying them.
	staleCounters bool
	// kept is, per chain of Ruleset (same index), the handle of the
	// observed rule kept for each desired rule (0: the rule is added),
	// so that Apply can describe the table its commit leaves.
	kept [][]uint64
	// Set by Memory.Plan, for Memory.Apply: what was planned, for whom,
	// and from which state (to plan again, or to remember).
	tenant  string
	desired *Ruleset
	from    *State
}

// SetOp is how a set is brought to its desired content.
type SetOp int

const (
	// SetCreate adds a set that does not exist, with its elements.
	SetCreate SetOp = iota
	// SetRecreate deletes and re-adds a set whose declaration changed
	// (hash ↔ interval, static ↔ dynamic, timeout); the rules that refer
	// to it are re-added around it in the same batch.
	SetRecreate
	// SetRefill flushes the set and adds every element in the same batch
	// (atomic: no packet sees it empty). Used when the elements the
	// kernel holds are not known (no previous ruleset, e.g. after a
	// daemon restart).
	SetRefill
	// SetPatch deletes and adds only the changed elements.
	SetPatch
)

func (o SetOp) String() string {
	return [...]string{"create", "recreate", "refill", "patch"}[o]
}

// SetUpdate is one address set's part of a transaction.
type SetUpdate struct {
	Set *NamedSet
	Op  SetOp
	// Add and Del are the ranges a SetPatch adds and deletes.
	Add, Del []config.AddrRange
}

// Ranges is the number of address ranges the update sends.
func (u SetUpdate) Ranges() int {
	if u.Op == SetPatch {
		return len(u.Add) + len(u.Del)
	}
	if u.Set.Dynamic && u.Op != SetCreate && u.Op != SetRecreate {
		return 0
	}
	return len(u.Set.Elems)
}

// IfSetUpdate creates an interface set or map, or flushes and refills it.
type IfSetUpdate struct {
	Set    *IfSet
	Create bool
}

// ChainUpdate is one chain's rule changes, applied in order: deletions
// (or a flush), then additions.
type ChainUpdate struct {
	Name string
	// Flush removes every rule of the chain (none is kept): cheaper than
	// deleting each by handle.
	Flush  bool
	Delete []uint64 // handles
	Add    []RuleAdd
}

// RuleAdd is one rule added to a chain, with the counter it inherits.
type RuleAdd struct {
	Rule    *Rule
	Counter Counter // seeds the rule's counter (carried from the rule it replaces)
	// Position is the handle of the kept rule the new rule goes after
	// (or, with Before, before); 0 appends.
	Position uint64
	Before   bool

	index int     // of Rule in its chain
	from  ruleRef // the rule whose counter Counter carries (handle 0: none)
}

// ruleRef names a kernel rule of fwd's table.
type ruleRef struct {
	Chain  string
	Handle uint64
}

// Empty reports whether the transaction sends nothing.
func (tx *Transaction) Empty() bool { return !tx.DeleteTable && tx.Ruleset == nil }

// Changes describes, per chain and set, what the transaction changes (for
// `fwd plan` and the engine's "changed" lines).
func (tx *Transaction) Changes() []change.Change { return tx.changes }

// Rules is the number of rules the transaction adds and deletes (a
// flushed chain counts its rules as observed).
func (tx *Transaction) Rules() (added, deleted int) {
	for _, cu := range tx.Chains {
		added += len(cu.Add)
		deleted += len(cu.Delete)
	}
	return added, deleted
}

// Plan computes the transaction that brings the observed table to the
// desired ruleset (nil: the tenant has no policy, so fwd owns no table).
// tenant only labels the changes. It is PlanFrom without a previous
// ruleset: changed static sets are refilled rather than patched.
func Plan(tenant string, desired *Ruleset, observed *State) *Transaction {
	return PlanFrom(tenant, desired, nil, observed)
}

// PlanFrom is Plan with the ruleset the caller applied last to this
// namespace (nil if unknown, e.g. after a restart). A static set whose
// kernel content is recorded as previous's content of that set is
// patched element by element; otherwise a changed set is refilled
// (flush and add in the same batch). previous is trusted only through
// that hash check, so a stale or foreign previous is harmless.
//
// An unchanged ruleset (same hash; every chain holding the same rules in
// the same order, by content hash; the same sets) gives an empty
// transaction. Rules added or removed behind fwd's back are drift: the
// foreign rules are deleted and the missing ones re-added.
func PlanFrom(tenant string, desired, previous *Ruleset, observed *State) *Transaction {
	st := observed
	if st == nil {
		st = &State{}
	}
	tx := &Transaction{gen: st.Gen, staleCounters: st.remembered}
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
	if st.remembered && st.Exists && st.Hash == desired.Hash {
		// The table is exactly what fwd's last commit wrote, and that
		// was this ruleset: nothing to compare.
		return &Transaction{gen: st.Gen}
	}
	tx.CreateTable = !st.Exists
	recreated := planSets(tx, desired, previous, st)
	planIfSets(tx, desired, st)
	planChains(tx, desired, st, recreated)
	_, tx.observedState = st.sets()[stateSet]
	if !tx.CreateTable && st.Hash == desired.Hash && tx.nothingToDo() {
		return &Transaction{gen: st.Gen}
	}
	tx.Ruleset = desired
	tx.changes = describe(mk, tx, st)
	return tx
}

func (tx *Transaction) nothingToDo() bool {
	return len(tx.AddChains)+len(tx.Sets)+len(tx.IfSets)+len(tx.Chains)+len(tx.DeleteSets)+len(tx.DeleteChains) == 0
}

// stateElem is one element of the state set: a static address set's
// name and element hash, keyed by a counter (the key carries no meaning).
type stateElem struct {
	key     netip.Addr
	comment string
}

func stateElems(rs *Ruleset) []stateElem {
	var out []stateElem
	for _, s := range rs.Sets {
		if s.Dynamic {
			continue
		}
		var k [4]byte
		binary.BigEndian.PutUint32(k[:], uint32(len(out)+1))
		out = append(out, stateElem{key: netip.AddrFrom4(k), comment: s.Name + " " + s.Hash})
	}
	return out
}

// setHashes parses the state set's element comments: set name → hash.
func setHashes(comments []string) map[string]string {
	out := map[string]string{}
	for _, c := range comments {
		if name, hash, ok := strings.Cut(c, " "); ok {
			out[name] = hash
		}
	}
	return out
}
