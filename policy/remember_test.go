package policy

import (
	"fmt"
	"slices"
	"testing"
)

// TestAfterCommitIsTheTable: the state afterCommit remembers equals the
// table the commit left (the model kernel of applyTx, which numbers
// added rules in batch order as nf_tables does), and plans made from it
// are those made from that table: nothing for the same ruleset, the same
// one-rule update for a change.
func TestAfterCommitIsTheTable(t *testing.T) {
	before := namedRules(t, 200, nil)
	tx := Plan("t", before, &State{})
	kernel := applyTx(&State{}, tx)
	added, _ := tx.Rules()
	handles := make([]uint64, added)
	for i := range handles {
		handles[i] = uint64(i + 1) // applyTx numbers from 1
	}
	mem := afterCommit(tx, handles, 7)
	if mem == nil || mem.Gen != 7 || !mem.remembered {
		t.Fatalf("afterCommit: %+v", mem)
	}
	describe := func(st *State) string {
		var s string
		for _, ch := range st.Chains {
			s += ch.Name + ":"
			for _, r := range ch.Rules {
				s += fmt.Sprintf(" %d/%s/%s/%v", r.Handle, r.Comment, r.Hash, r.Counter != nil)
			}
			s += "\n"
		}
		return s
	}
	if got, want := describe(mem), describe(kernel); got != want {
		t.Fatalf("remembered:\n%s\nkernel:\n%s", got, want)
	}
	if tx := PlanFrom("t", before, before, mem); !tx.Empty() {
		t.Fatalf("same ruleset from memory: %v", tx.Changes())
	}
	after := namedRules(t, 200, func(i int) string {
		if i == 100 {
			return "[[tenant.t.rule]]\nname = \"r100\"\nfrom = \"wan\"\nto = \"lan\"\nproto = \"udp\"\ndport = 6000\naction = \"drop\"\n"
		}
		return ""
	})
	fromMem, fromKernel := PlanFrom("t", after, before, mem), PlanFrom("t", after, before, kernel)
	if !fromMem.staleCounters || fromKernel.staleCounters {
		t.Fatal("only a plan from memory has counters to read")
	}
	if len(fromMem.Chains) != 1 || len(fromKernel.Chains) != 1 ||
		!slices.Equal(fromMem.Chains[0].Delete, fromKernel.Chains[0].Delete) ||
		fromMem.Chains[0].Add[0].Position != fromKernel.Chains[0].Add[0].Position {
		t.Fatalf("from memory %+v, from the table %+v", fromMem.Chains, fromKernel.Chains)
	}
	refs := fromMem.carriedRules()
	if len(refs) != 1 || refs[0].Handle != fromMem.Chains[0].Delete[0] {
		t.Fatalf("carried rules %v, deleted %v", refs, fromMem.Chains[0].Delete)
	}
	fromMem.setCarried(map[ruleRef]Counter{refs[0]: {Packets: 42, Bytes: 4200}})
	if c := fromMem.Chains[0].Add[0].Counter; c.Packets != 42 {
		t.Fatalf("carried counter %+v, want the one read", c)
	}
	// Handles that do not add up are not trusted.
	if afterCommit(tx, handles[1:], 7) != nil || afterCommit(tx, append(handles, 999), 7) != nil {
		t.Fatal("afterCommit accepted a wrong number of handles")
	}
}
