package policy

import (
	"fmt"
	"sort"
	"strings"

	"github.com/fwdproject/fwd/change"
)

// describe lists, per chain, rule and set, what tx changes in st.
func describe(mk func(action, obj, detail string) change.Change, tx *Transaction, st *State) []change.Change {
	rs := tx.Ruleset
	if tx.CreateTable {
		n, el := 0, 0
		for _, ch := range rs.Chains {
			n += len(ch.Rules)
		}
		for _, s := range rs.Sets {
			el += len(s.Elems)
		}
		return []change.Change{mk("create-table", "inet "+TableName, fmt.Sprintf("%d chains, %d rules, %d sets, %d set elements", len(rs.Chains), n, len(rs.Sets), el))}
	}
	var out []change.Change
	added := map[string]bool{}
	for _, ch := range tx.AddChains {
		added[ch.Name] = true
		out = append(out, mk("add-chain", ch.Name, fmt.Sprintf("%d rules", len(ch.Rules))))
	}
	have := st.chains()
	for _, cu := range tx.Chains {
		if added[cu.Name] {
			continue
		}
		gone := map[uint64]bool{}
		for _, h := range cu.Delete {
			gone[h] = true
		}
		del := map[string]int{}
		var order []string
		for _, r := range have[cu.Name].Rules {
			if cu.Flush || gone[r.Handle] {
				id := r.ID()
				if del[id] == 0 {
					order = append(order, id)
				}
				del[id]++
			}
		}
		add := map[string]*Rule{}
		for _, a := range cu.Add {
			if add[a.Rule.ID] == nil {
				add[a.Rule.ID] = a.Rule
				if del[a.Rule.ID] == 0 {
					order = append(order, a.Rule.ID)
				}
			}
		}
		for _, id := range order {
			obj := cu.Name + " " + id
			switch r := add[id]; {
			case r != nil && del[id] > 0:
				out = append(out, mk("update-rule", obj, ruleSummary(r)))
			case r != nil:
				out = append(out, mk("add-rule", obj, ruleSummary(r)))
			default:
				out = append(out, mk("delete-rule", obj, ""))
			}
		}
	}
	for _, name := range tx.DeleteChains {
		out = append(out, mk("delete-chain", name, ""))
	}
	for _, u := range tx.Sets {
		switch u.Op {
		case SetCreate:
			out = append(out, mk("add-set", u.Set.Name, fmt.Sprintf("%d elements", len(u.Set.Elems))))
		case SetRecreate:
			out = append(out, mk("recreate-set", u.Set.Name, fmt.Sprintf("declaration changed; %d elements", len(u.Set.Elems))))
		case SetRefill:
			out = append(out, mk("update-set", u.Set.Name, fmt.Sprintf("%d elements (refilled)", len(u.Set.Elems))))
		case SetPatch:
			out = append(out, mk("update-set", u.Set.Name, fmt.Sprintf("%d elements: +%d -%d", len(u.Set.Elems), len(u.Add), len(u.Del))))
		}
	}
	for _, u := range tx.IfSets {
		if u.Create {
			out = append(out, mk("add-set", u.Set.Name, strings.Join(u.Set.elemTexts(), ", ")))
		} else {
			out = append(out, mk("update-set", u.Set.Name, strings.Join(u.Set.elemTexts(), ", ")))
		}
	}
	for _, name := range tx.DeleteSets {
		out = append(out, mk("delete-set", name, ""))
	}
	if len(out) == 0 {
		out = append(out, mk("update-table", "inet "+TableName, "state hash"))
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
