package policy

import (
	"errors"

	"github.com/fwdproject/fwd/config"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Memory is what fwd remembers of one tenant's table between reloads:
// the ruleset compiled last (an unchanged tenant compiles nothing), the
// ruleset applied last (changed sets are patched from it), and the table
// as fwd's last commit left it, with the ruleset generation that commit
// produced. The engine keeps one per tenant; the zero value remembers
// nothing. It is not safe for concurrent use.
//
// Why a generation says the table is unchanged: nf_tables increments a
// namespace's generation on every commit, whoever makes it and whatever
// table it touches (counters and conntrack do not commit). If the
// generation is still the one fwd's commit produced, nothing was
// committed in the namespace since, so fwd's table is exactly what that
// commit left: Plan skips Observe (a dump of every rule) and plans from
// memory. If it differs (another tool, `nft add rule` into fwd's table, a
// live-set change, a daemon restart), Plan observes, as without memory.
//
// The race, between reading the generation and committing: Apply sends
// the batch on condition of the generation the plan was made from
// (NFNL_BATCH_GENID). The kernel compares it under the commit mutex,
// before running any of the batch, and refuses the whole batch
// (ErrGenerationChanged) if a commit came in between; nothing is then
// changed, and Memory.Apply observes, plans again and retries once. So a
// plan made from a stale memory is never applied, and a committed batch
// produced exactly the next generation: the memory it records cannot
// hide another writer's commit. Reads are not protected (an Observe that
// overlaps a commit is refused at Apply the same way).
//
// The namespace is identified by its inode too: a namespace deleted and
// re-created gets a new generation counter, which could coincide with the
// remembered one.
type Memory struct {
	compiled *Ruleset
	index    *RuleIndex
	applied  *Ruleset // last committed; nil: unknown
	state    *State   // the table as the last commit left it; nil: unknown
	ns       nsID
	// gen and hash: generation and ruleset hash after the last commit,
	// even when state is unknown (an unchanged reload needs no handles).
	gen  uint32
	hash string
}

type nsID struct{ dev, ino uint64 }

func namespaceID(h netns.NsHandle) nsID {
	var st unix.Stat_t
	if err := unix.Fstat(int(h), &st); err != nil {
		return nsID{}
	}
	return nsID{uint64(st.Dev), st.Ino}
}

// Index is the RuleIndex of the ruleset compiled last (nil: no policy).
func (m *Memory) Index() *RuleIndex { return m.index }

// Plan compiles t (nothing when t's policy is unchanged) and plans it
// against fwd's table in h: from memory when the ruleset generation says
// nothing committed in the namespace since fwd's last commit, from
// Observe otherwise. An unchanged tenant costs one GETGEN.
func (m *Memory) Plan(t *config.Tenant, h netns.NsHandle) (*Transaction, error) {
	rs := CompileFrom(t, m.compiled)
	if rs != m.compiled || m.index == nil {
		m.compiled, m.index = rs, NewRuleIndex(rs)
	}
	st, err := m.current(h)
	if err != nil {
		return nil, err
	}
	if st == nil { // generation unchanged and the same ruleset
		return &Transaction{gen: m.gen}, nil
	}
	tx := PlanFrom(t.Name, rs, m.applied, st)
	tx.tenant, tx.desired, tx.from = t.Name, rs, st
	return tx, nil
}

// current is fwd's table in h: the remembered state if nothing committed
// since, else a fresh Observe; nil if the table is known to hold the
// ruleset compiled last.
func (m *Memory) current(h netns.NsHandle) (*State, error) {
	if !h.IsOpen() {
		return &State{}, nil
	}
	if m.gen != 0 && m.ns == namespaceID(h) {
		gen, err := Generation(h)
		if err != nil {
			return nil, err
		}
		if gen == m.gen {
			hash := ""
			if m.compiled != nil {
				hash = m.compiled.Hash
			}
			if hash == m.hash && (m.state == nil || m.state.Exists == (m.compiled != nil)) {
				return nil, nil
			}
			if m.state != nil {
				return m.state, nil
			}
		}
	}
	return Observe(h)
}

// Apply applies tx (from m.Plan for the same tenant) to h and remembers
// what the commit left. If another writer committed since the plan, it
// observes, plans again and applies once more; tx is then replaced by
// the transaction actually sent, so tx.Changes() says what was done.
func (m *Memory) Apply(h netns.NsHandle, tx *Transaction) (ApplyStats, error) {
	if tx.Empty() {
		m.remember(h, tx, nil)
		return ApplyStats{}, nil
	}
	stats, err := Apply(h, tx)
	if errors.Is(err, ErrGenerationChanged) {
		m.forget()
		st, oerr := Observe(h)
		if oerr != nil {
			return stats, oerr
		}
		tenant, desired := tx.tenant, tx.desired
		*tx = *PlanFrom(tenant, desired, m.applied, st)
		tx.tenant, tx.desired, tx.from = tenant, desired, st
		if tx.Empty() {
			m.remember(h, tx, nil)
			return ApplyStats{}, nil
		}
		stats, err = Apply(h, tx)
	}
	if err != nil {
		m.forget() // the kernel state is unknown
		return stats, err
	}
	m.remember(h, tx, stats.After)
	return stats, nil
}

// remember records a successful apply of tx; after is the state its
// commit left (nil for an empty transaction: the table is the state tx
// was planned from, unless that is unknown).
func (m *Memory) remember(h netns.NsHandle, tx *Transaction, after *State) {
	m.applied = tx.desired
	if tx.desired == nil && tx.from == nil && tx.Empty() {
		// An unchanged reload that did not look: memory stays as it is.
		m.applied = m.compiled
		return
	}
	m.ns = namespaceID(h)
	switch {
	case after != nil:
		m.state, m.gen = after, after.Gen
	case tx.Empty() && tx.from != nil && tx.from.Gen != 0:
		st := *tx.from
		st.remembered = true // its counters get stale
		m.state, m.gen = &st, st.Gen
	default:
		m.state, m.gen = nil, 0
	}
	m.hash = ""
	if m.applied != nil {
		m.hash = m.applied.Hash
	}
}

// forget drops what is known of the kernel (not the compile cache).
func (m *Memory) forget() {
	m.applied, m.state, m.gen, m.hash = nil, nil, 0, ""
}
