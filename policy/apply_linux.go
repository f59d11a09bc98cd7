package policy

import (
	"fmt"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/vishvananda/netns"
)

// ApplyStats describes one Apply.
type ApplyStats struct {
	Commit time.Duration // build the batch, send it, kernel commit and acknowledgements
	Verify time.Duration // count the elements in the encoded batch
	// Messages is the number of netlink messages in the batch, each
	// acknowledged by the kernel.
	Messages int
	// Rules is the number of rules added and deleted (a flushed chain
	// counts as one deletion).
	Rules int
	// Elements is the number of address-set elements the batch sends
	// (added and deleted; an interval is two kernel elements, its start
	// and its end). A 10-line change of a 100k set sends about 20.
	Elements int
	// After is fwd's table as the commit left it (with every rule's
	// handle; counters are placeholders) and the generation the commit
	// produced, for Memory; nil when not known (no generation in the
	// plan, or the kernel did not confirm the rule handles).
	After *State
}

// Apply sends tx to fwd's table in namespace h in one nftables batch and
// one commit. It is the only code in policy that writes to the kernel,
// and it touches no table but fwd's. If building the batch fails, or the
// encoded batch does not hold every element the plan sends, nothing is
// sent; every message is acknowledged by the kernel, so a batch the
// kernel did not take in full fails. An empty transaction does nothing.
//
// The batch is sent on condition that the namespace's ruleset generation
// is still the one tx was planned from (State.Gen): if anything committed
// since, the kernel refuses it whole and Apply returns
// ErrGenerationChanged (plan again from a fresh Observe; Memory.Apply
// does). A plan from a remembered state has its carried counters read
// just before the batch is built.
func Apply(h netns.NsHandle, tx *Transaction) (ApplyStats, error) {
	var stats ApplyStats
	if tx.Empty() {
		return stats, nil
	}
	if !h.IsOpen() {
		return stats, errNoNamespace
	}
	if tx.DeleteTable {
		bs, err := sendBatch(h, func(c *nftables.Conn) error { c.DelTable(table); return nil }, nil, tx.gen)
		stats.Commit, stats.Messages = bs.commit, bs.messages
		if err != nil {
			return stats, fmt.Errorf("delete table: %w", err)
		}
		if tx.gen != 0 {
			stats.After = afterCommit(tx, nil, nextGen(tx.gen))
		}
		return stats, nil
	}
	if tx.staleCounters {
		// Planned from a remembered state: read the counters the
		// transaction carries now (a few rules), not at the last commit.
		read, err := readCounters(h, tx.carriedRules())
		if err != nil {
			return stats, err
		}
		tx.setCarried(read)
	}
	want := wantElements(tx)
	for _, u := range tx.Sets {
		stats.Elements += want[u.Set.Name]
	}
	for _, cu := range tx.Chains {
		stats.Rules += len(cu.Add) + len(cu.Delete)
		if cu.Flush {
			stats.Rules++
		}
	}
	bs, err := sendBatch(h, func(c *nftables.Conn) error { return queue(c, tx) }, want, tx.gen)
	stats.Commit, stats.Verify, stats.Messages = bs.commit, bs.verify, bs.messages
	if err == nil && tx.gen != 0 && bs.added != nil {
		stats.After = afterCommit(tx, bs.added, nextGen(tx.gen))
	}
	return stats, err
}

// nextGen is the generation a commit made at generation g produces (the
// kernel skips 0).
func nextGen(g uint32) uint32 {
	if g++; g == 0 {
		g = 1
	}
	return g
}

// wantElements is the number of kernel elements tx sends, per set.
func wantElements(tx *Transaction) map[string]int {
	want := map[string]int{stateSet: len(stateElems(tx.Ruleset))}
	for _, u := range tx.IfSets {
		want[u.Set.Name] = len(u.Set.Elems) + len(u.Set.Names)
	}
	for _, u := range tx.Sets {
		n := 0
		if u.Op == SetPatch {
			n = len(kernelElems(u.Set, u.Add)) + len(kernelElems(u.Set, u.Del))
		} else if !u.Set.Dynamic || u.Op == SetCreate || u.Op == SetRecreate {
			n = len(kernelElems(u.Set, u.Set.Elems))
		}
		want[u.Set.Name] += n
	}
	return want
}

// kernelElems encodes address ranges as the kernel elements of s: start
// and end elements for an interval set, single keys for a hash set.
func kernelElems(s *NamedSet, rs []config.AddrRange) []nftables.SetElement {
	if s.kind().Interval {
		return addrIntervals(rs)
	}
	out := make([]nftables.SetElement, len(rs))
	for i, r := range rs {
		out[i] = nftables.SetElement{Key: addrBytes(r.From)}
	}
	return out
}

func kernelSet(s *NamedSet) *nftables.Set {
	kt := nftables.TypeIPAddr
	if s.V6 {
		kt = nftables.TypeIP6Addr
	}
	k := s.kind()
	return &nftables.Set{Table: table, Name: s.Name, KeyType: kt, Interval: k.Interval, HasTimeout: k.Timeout, Timeout: k.DefaultTimeout}
}

func kernelChain(ch *Chain) *nftables.Chain {
	kc := &nftables.Chain{Name: ch.Name, Table: table}
	if ch.Hook != "" {
		kc.Type = nftables.ChainType(ch.Type)
		kc.Hooknum = hooks[ch.Hook]
		prio := nftables.ChainPriority(ch.Priority)
		kc.Priority = &prio
		pol := nftables.ChainPolicyAccept
		if ch.Policy == "drop" {
			pol = nftables.ChainPolicyDrop
		}
		kc.Policy = &pol
	}
	return kc
}

// queue builds the whole batch on c without sending it. The order makes
// every reference valid when the kernel reaches it: chains before the
// rules and map elements that jump to them, sets before the rules that
// look them up, and deletions of rules before the sets and chains they
// referred to.
func queue(c *nftables.Conn, tx *Transaction) error {
	rs := tx.Ruleset
	if tx.CreateTable {
		c.AddTable(table)
	}
	// The state set first: it refers to nothing, and so it is listed
	// first, as the rendered text declares it.
	if tx.observedState {
		c.DelSet(&nftables.Set{Table: table, Name: stateSet})
	}
	var el []nftables.SetElement
	for _, e := range stateElems(rs) {
		el = append(el, nftables.SetElement{Key: e.key.AsSlice(), Comment: e.comment})
	}
	if err := c.AddSet(&nftables.Set{Table: table, Name: stateSet, KeyType: nftables.TypeIPAddr, Comment: "sha256:" + rs.Hash}, el); err != nil {
		return fmt.Errorf("set %s: %w", stateSet, err)
	}
	for _, ch := range tx.AddChains {
		c.AddChain(kernelChain(ch))
	}
	for _, u := range tx.Sets {
		ks := kernelSet(u.Set)
		var err error
		switch u.Op {
		case SetCreate:
			err = c.AddSet(ks, kernelElems(u.Set, u.Set.Elems))
		case SetRefill:
			c.FlushSet(ks)
			err = c.SetAddElements(ks, kernelElems(u.Set, u.Set.Elems))
		case SetPatch:
			// Deletions first: an added range may start where a deleted
			// one ended (the same key as the deleted end element).
			if err = c.SetDeleteElements(ks, kernelElems(u.Set, u.Del)); err == nil {
				err = c.SetAddElements(ks, kernelElems(u.Set, u.Add))
			}
		}
		if err != nil {
			return fmt.Errorf("set %s: %w", u.Set.Name, err)
		}
	}
	for _, u := range tx.IfSets {
		if err := addIfSet(c, u.Set, !u.Create); err != nil {
			return fmt.Errorf("set %s: %w", u.Set.Name, err)
		}
	}
	chains := map[string]*nftables.Chain{}
	chainOf := func(name string) *nftables.Chain {
		if chains[name] == nil {
			chains[name] = &nftables.Chain{Name: name, Table: table}
		}
		return chains[name]
	}
	for _, cu := range tx.Chains {
		if cu.Flush {
			c.FlushChain(chainOf(cu.Name))
		}
		for _, h := range cu.Delete {
			if err := c.DelRule(&nftables.Rule{Table: table, Chain: chainOf(cu.Name), Handle: h}); err != nil {
				return fmt.Errorf("chain %s: delete rule %d: %w", cu.Name, h, err)
			}
		}
	}
	for _, name := range tx.DeleteChains {
		c.FlushChain(chainOf(name)) // drops its references to sets and chains
	}
	for _, u := range tx.Sets {
		if u.Op == SetRecreate {
			ks := kernelSet(u.Set)
			c.DelSet(ks)
			if err := c.AddSet(ks, kernelElems(u.Set, u.Set.Elems)); err != nil {
				return fmt.Errorf("set %s: %w", u.Set.Name, err)
			}
		}
	}
	b := &builder{c: c, t: table}
	for _, cu := range tx.Chains {
		for _, a := range cu.Add {
			var exprs []expr.Any
			for _, s := range a.Rule.Stmts {
				if _, ok := s.(Counter); ok {
					s = a.Counter
				}
				exprs = append(exprs, b.exprs(s)...)
			}
			if b.err != nil {
				return fmt.Errorf("chain %s rule %s: %w", cu.Name, a.Rule.ID, b.err)
			}
			kr := &nftables.Rule{Table: table, Chain: chainOf(cu.Name), Exprs: exprs, Position: a.Position, UserData: ruleUserData(a.Rule)}
			if a.Before {
				c.InsertRule(kr)
			} else {
				c.AddRule(kr)
			}
		}
	}
	for _, name := range tx.DeleteSets {
		c.DelSet(&nftables.Set{Table: table, Name: name})
	}
	for _, name := range tx.DeleteChains {
		c.DelChain(chainOf(name))
	}
	return nil
}

// ruleUserData is the rule's comment (what nft shows) followed by fwd's
// identity TLVs (which nft ignores).
func ruleUserData(r *Rule) []byte {
	ud := userdata.AppendString(nil, userdata.TypeComment, r.comment())
	ud = userdata.AppendString(ud, udataHash, r.key())
	if m := r.membersKey(); m != "" {
		ud = userdata.AppendString(ud, udataMembers, m)
	}
	return ud
}

var hooks = map[string]*nftables.ChainHook{
	"input": nftables.ChainHookInput, "forward": nftables.ChainHookForward, "output": nftables.ChainHookOutput,
	"prerouting": nftables.ChainHookPrerouting, "postrouting": nftables.ChainHookPostrouting,
}
