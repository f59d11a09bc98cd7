package explain

import (
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// Where renders a reference's position: "fwd.toml:12 (tenant.fw.rule[3])".
func (r *RuleRef) Where() string {
	if r == nil {
		return ""
	}
	var pos string
	if r.Line > 0 {
		pos = fmt.Sprintf("%s:%d", filepath.Base(r.File), r.Line)
	}
	switch {
	case pos != "" && r.Key != "":
		return pos + " (" + r.Key + ")"
	case r.Key != "":
		return r.Key
	}
	return pos
}

func (t Tuple) String() string {
	host := func(a netip.Addr, p uint16) string {
		if p == 0 {
			return a.String()
		}
		return netip.AddrPortFrom(a, p).String()
	}
	return host(t.Src, t.SPort) + " → " + host(t.Dst, t.DPort)
}

// WriteText renders the trace for a terminal: one line per rule tested,
// grouped by hook and chain, then NAT, route and the verdict.
func (tr *Trace) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "packet\t%s\n", tr.Query)
	var hook, chain string
	natDone := 0
	flushNAT := func(upTo string) {
		for natDone < len(tr.NAT) && tr.NAT[natDone].Hook == upTo {
			n := tr.NAT[natDone]
			fmt.Fprintf(tw, "  %s\t%s ⇒ %s\t%s\n", n.Kind, n.Before, n.After, n.Rule.Where())
			natDone++
		}
	}
	routeShown := tr.Route == nil
	for _, s := range tr.Steps {
		if s.Hook != hook {
			flushNAT(hook)
			if !routeShown && s.Hook != "prerouting" {
				tr.writeRoute(tw)
				routeShown = true
			}
			hook, chain = s.Hook, ""
		}
		if s.Chain != chain {
			fmt.Fprintf(tw, "%s\t%s\n", s.Hook, s.Chain)
			chain = s.Chain
		}
		mark, detail := "  -", s.Reason
		if s.Matched {
			mark, detail = "  ✓", "match"
			if !strings.HasSuffix(s.Text, s.Action) {
				detail = "match: " + s.Action
			}
		}
		id := s.Rule
		if s.Ref != nil && s.Ref.Member != "" {
			id = s.Ref.Member + " (" + s.Rule + ")"
		}
		if id == "" {
			id = s.Kind
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\n", mark, id, s.Text, detail, s.Ref.Where())
	}
	flushNAT(hook)
	if !routeShown {
		tr.writeRoute(tw)
	}
	if tr.OutIf != "" {
		fmt.Fprintf(tw, "leaves\t%s on %s\n", tr.After, tr.OutIf)
	}
	for _, n := range tr.Notes {
		fmt.Fprintf(tw, "note\t%s\n", n)
	}
	v := strings.ToUpper(tr.Verdict)
	if tr.RejectWith != "" {
		v += " (" + tr.RejectWith + ")"
	}
	fmt.Fprintf(tw, "verdict\t%s\t%s\t%s\n", v, tr.Reason, tr.Rule.Where())
	return tw.Flush()
}

func (tr *Trace) writeRoute(w io.Writer) {
	r := tr.Route
	if r == nil {
		return
	}
	fmt.Fprintf(w, "route\t%s", tr.routeLine())
	if where := r.Ref.Where(); where != "" {
		fmt.Fprintf(w, "\t%s", where)
	}
	fmt.Fprintln(w)
}

func (tr *Trace) routeLine() string {
	r := tr.Route
	var b strings.Builder
	switch r.Type {
	case "none":
		return "no route: " + r.Rule
	case "local":
		b.WriteString("local delivery")
	default:
		if r.Type != "unicast" {
			b.WriteString(r.Type + " ")
		}
		b.WriteString(r.Dst.String())
		if r.Via.IsValid() {
			b.WriteString(" via " + r.Via.String())
		}
		if r.Dev != "" {
			b.WriteString(" dev " + r.Dev)
		}
	}
	fmt.Fprintf(&b, " table %s (rule %s, %s)", r.Table, r.Rule, r.Origin)
	if len(r.Alternatives) > 0 {
		b.WriteString("; ECMP, also " + strings.Join(r.Alternatives, ", "))
	}
	return b.String()
}
