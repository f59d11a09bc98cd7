package policy

import (
	"fmt"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/vishvananda/netns"
)

// ApplyStats times the phases of one Apply.
type ApplyStats struct {
	Commit time.Duration // build the batch, send it, kernel commit
	Verify time.Duration // read back the element counts of the sets sent
}

// Apply sends tx to fwd's table in namespace h in one nftables batch and
// one commit, then checks that the kernel holds every element of the
// sets it sent. It is the only code in policy that writes to the kernel,
// and it touches no table but fwd's. If building the batch fails,
// nothing is sent. An empty transaction does nothing.
func Apply(h netns.NsHandle, tx *Transaction) (ApplyStats, error) {
	var stats ApplyStats
	if tx.Empty() {
		return stats, nil
	}
	if !h.IsOpen() {
		return stats, errNoNamespace
	}
	c, err := dial(h)
	if err != nil {
		return stats, err
	}
	t0 := time.Now()
	if tx.DeleteTable {
		c.DelTable(table)
		if err := c.Flush(); err != nil {
			return stats, fmt.Errorf("delete table: %w", err)
		}
		stats.Commit = time.Since(t0)
		return stats, nil
	}
	// On a build error the queued messages are dropped with c: a partial
	// batch is never flushed.
	if err := queue(c, tx); err != nil {
		return stats, err
	}
	if err := c.Flush(); err != nil {
		return stats, fmt.Errorf("commit: %w", err)
	}
	stats.Commit = time.Since(t0)
	t0 = time.Now()
	err = verifySets(c, tx.SendSets)
	stats.Verify = time.Since(t0)
	return stats, err
}

// queue builds the whole batch of a rewrite on c without sending it.
func queue(c *nftables.Conn, tx *Transaction) error {
	rs := tx.Ruleset
	if tx.CreateTable {
		c.AddTable(table)
	}
	for _, name := range tx.FlushChains {
		c.FlushChain(&nftables.Chain{Name: name, Table: table})
	}
	for _, name := range tx.DeleteSets {
		c.DelSet(&nftables.Set{Name: name, Table: table})
	}
	for _, name := range tx.DeleteChains {
		c.DelChain(&nftables.Chain{Name: name, Table: table})
	}
	b := &builder{c: c, t: table}
	if err := c.AddSet(&nftables.Set{Table: table, Name: stateSet, KeyType: nftables.TypeIPAddr, Comment: "sha256:" + rs.Hash}, nil); err != nil {
		return fmt.Errorf("set %s: %w", stateSet, err)
	}
	for _, s := range tx.SendSets {
		kt := nftables.TypeIPAddr
		if s.V6 {
			kt = nftables.TypeIP6Addr
		}
		ks := &nftables.Set{Table: table, Name: s.Name, KeyType: kt, Interval: true, Comment: s.comment()}
		if err := c.AddSet(ks, addrIntervals(s.Elems)); err != nil {
			return fmt.Errorf("set %s: %w", s.Name, err)
		}
	}
	chains := map[string]*nftables.Chain{}
	for _, ch := range rs.Chains {
		kc := &nftables.Chain{Name: ch.Name, Table: table}
		chains[ch.Name] = kc
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
		c.AddChain(kc)
	}
	// Maps hold "goto chain" verdicts: the chains must exist first.
	for _, s := range rs.IfSets {
		if err := addIfSet(c, s); err != nil {
			return fmt.Errorf("set %s: %w", s.Name, err)
		}
	}
	for _, ch := range rs.Chains {
		seen := map[string]int{}
		for _, r := range ch.Rules {
			k := RuleKey{ch.Name, r.ID, seen[r.ID]}
			seen[r.ID]++
			var exprs []expr.Any
			for _, s := range r.Stmts {
				if _, ok := s.(Counter); ok {
					if prev, ok := tx.Counters[k]; ok {
						s = prev
					}
				}
				exprs = append(exprs, b.exprs(s)...)
			}
			if b.err != nil {
				return fmt.Errorf("chain %s rule %s: %w", ch.Name, r.ID, b.err)
			}
			c.AddRule(&nftables.Rule{Table: table, Chain: chains[ch.Name], Exprs: exprs,
				UserData: userdata.AppendString(nil, userdata.TypeComment, r.comment())})
		}
	}
	return nil
}

var hooks = map[string]*nftables.ChainHook{
	"input": nftables.ChainHookInput, "forward": nftables.ChainHookForward, "output": nftables.ChainHookOutput,
	"prerouting": nftables.ChainHookPrerouting, "postrouting": nftables.ChainHookPostrouting,
}

// verifySets reads back every set sent and checks that the kernel holds
// all its elements: a truncated batch must not pass silently.
func verifySets(c *nftables.Conn, sets []*NamedSet) error {
	for _, s := range sets {
		want := len(addrIntervals(s.Elems))
		got, err := c.GetSetElements(&nftables.Set{Table: table, Name: s.Name})
		if err != nil {
			return fmt.Errorf("read back set %s: %w", s.Name, err)
		}
		if len(got) != want {
			return fmt.Errorf("set %s: kernel holds %d interval elements, want %d", s.Name, len(got), want)
		}
	}
	return nil
}
