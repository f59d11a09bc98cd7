package mgmt

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fwdproject/fwd/change"
)

// UnifiedDiff returns a unified diff (3 lines of context) from a to b, or
// "" when they are equal.
func UnifiedDiff(nameA, nameB string, a, b []byte) string {
	la, lb := splitLines(string(a)), splitLines(string(b))
	ops := diffLines(la, lb)
	const ctx = 3
	var out strings.Builder
	// Group ops into hunks.
	type op struct {
		kind byte // ' ', '-', '+'
		text string
		ai   int // line index in a (for ' ' and '-'), next a line for '+'
		bi   int
	}
	var all []op
	ai, bi := 0, 0
	for _, o := range ops {
		switch o {
		case ' ':
			all = append(all, op{' ', la[ai], ai, bi})
			ai++
			bi++
		case '-':
			all = append(all, op{'-', la[ai], ai, bi})
			ai++
		case '+':
			all = append(all, op{'+', lb[bi], ai, bi})
			bi++
		}
	}
	changed := false
	for i := 0; i < len(all); {
		if all[i].kind == ' ' {
			i++
			continue
		}
		if !changed {
			fmt.Fprintf(&out, "--- %s\n+++ %s\n", nameA, nameB)
			changed = true
		}
		start := max(i-ctx, 0)
		end := i
		// Extend while the next change is within 2*ctx equal lines.
		for {
			for end < len(all) && all[end].kind != ' ' {
				end++
			}
			j := end
			for j < len(all) && all[j].kind == ' ' && j-end < 2*ctx {
				j++
			}
			if j < len(all) && all[j].kind != ' ' {
				end = j
				continue
			}
			end = min(end+ctx, len(all))
			break
		}
		h := all[start:end]
		na, nb := 0, 0
		for _, o := range h {
			if o.kind != '+' {
				na++
			}
			if o.kind != '-' {
				nb++
			}
		}
		fmt.Fprintf(&out, "@@ -%s +%s @@\n", hunkRange(h[0].ai, na), hunkRange(h[0].bi, nb))
		for _, o := range h {
			out.WriteByte(o.kind)
			out.WriteString(o.text)
			out.WriteByte('\n')
		}
		i = end
	}
	return out.String()
}

func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	if n == 1 {
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// diffLines returns an edit script of ' ', '-', '+' turning a into b:
// common prefix and suffix are trimmed, the middle is an LCS (or, when it
// is too large for a quadratic table, a plain replacement).
func diffLines(a, b []string) []byte {
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	s := 0
	for s < len(a)-p && s < len(b)-p && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	ma, mb := a[p:len(a)-s], b[p:len(b)-s]
	ops := make([]byte, 0, len(a)+len(b))
	for range p {
		ops = append(ops, ' ')
	}
	if len(ma)*len(mb) > 16_000_000 {
		for range ma {
			ops = append(ops, '-')
		}
		for range mb {
			ops = append(ops, '+')
		}
	} else {
		n, m := len(ma), len(mb)
		l := make([][]int32, n+1)
		for i := range l {
			l[i] = make([]int32, m+1)
		}
		for i := n - 1; i >= 0; i-- {
			for j := m - 1; j >= 0; j-- {
				if ma[i] == mb[j] {
					l[i][j] = l[i+1][j+1] + 1
				} else {
					l[i][j] = max(l[i+1][j], l[i][j+1])
				}
			}
		}
		i, j := 0, 0
		for i < n || j < m {
			switch {
			case i < n && j < m && ma[i] == mb[j]:
				ops = append(ops, ' ')
				i++
				j++
			case i < n && (j == m || l[i+1][j] >= l[i][j+1]):
				ops = append(ops, '-')
				i++
			default:
				ops = append(ops, '+')
				j++
			}
		}
	}
	for range s {
		ops = append(ops, ' ')
	}
	return ops
}

// RemovalsOf picks out of a change list what an operator must not miss:
// the tenants whose namespace is deleted and the NICs handed back to the
// default namespace (a NIC moved on to another tenant in the same
// changes is not handed back). Names are sorted.
func RemovalsOf(cs []change.Change) *Removals {
	r := &Removals{}
	moved := map[string]bool{}
	for _, c := range cs {
		if c.Subsystem == "zones" && c.Action == "move-link" {
			dev, _, _ := strings.Cut(c.Object, " -> ")
			moved[dev] = true
		}
	}
	for _, c := range cs {
		if c.Subsystem != "zones" {
			continue
		}
		switch c.Action {
		case "delete-namespace":
			r.Tenants = append(r.Tenants, c.Object)
		case "return-link":
			if _, dev, ok := strings.Cut(c.Object, " -> "); ok && !moved[dev] {
				r.NICs = append(r.NICs, dev)
			}
		}
	}
	slices.Sort(r.Tenants)
	slices.Sort(r.NICs)
	return r
}

// Lines are the removals as a block to print before anything else, one
// line each ("REMOVES tenant edge", "HANDS BACK eth1").
func (r *Removals) Lines() []string {
	if r == nil {
		return nil
	}
	var out []string
	for _, t := range r.Tenants {
		out = append(out, "REMOVES tenant "+t)
	}
	for _, n := range r.NICs {
		out = append(out, "HANDS BACK "+n)
	}
	return out
}
