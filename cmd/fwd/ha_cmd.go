package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fwdproject/fwd/mgmt"
)

// fwd ha failover|resume TENANT, and the HA and services lines of
// `fwd status`.

func init() {
	c := &command{name: "ha", args: "failover|resume [-j] [--socket PATH] TENANT",
		summary: "hand a tenant's HA mastership to the peer for maintenance (failover), or take it back (resume)"}
	c.run = func(args []string) int {
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
			fmt.Fprintf(os.Stderr, "Usage: fwd ha %s\n\n%s\n", c.args, c.summary)
			if len(args) == 0 {
				return exitUsage
			}
			return exitOK
		}
		sub := args[0]
		if sub != "failover" && sub != "resume" {
			fmt.Fprintf(os.Stderr, "fwd ha: unknown subcommand %q (failover, resume)\n", sub)
			return exitUsage
		}
		fs := flags(c, nil)
		socket := socketFlag(fs)
		asJSON := fs.Bool("j", false, "JSON output")
		pos, code := parseArgs(fs, args[1:])
		if code >= 0 {
			return code
		}
		if len(pos) != 1 {
			fmt.Fprintf(os.Stderr, "Usage: fwd ha %s\n", c.args)
			return exitUsage
		}
		cl := mgmt.Dial(*socket)
		op := cl.HAFailover
		if sub == "resume" {
			op = cl.HAResume
		}
		res, err := op(context.Background(), pos[0])
		if err != nil {
			return fail("ha %s %s: %v", sub, pos[0], err)
		}
		if *asJSON {
			printJSON(res)
			return exitOK
		}
		h := res.HA
		fmt.Printf("%s: %s, priority %d", res.Tenant, h.State, h.Priority)
		if h.FailoverHeld {
			fmt.Printf(", held backup until 'fwd ha resume %s'", res.Tenant)
		}
		fmt.Println()
		return exitOK
	}
	register(c)
}

// printEdgeStatus prints the HA pairs and edge services of `fwd status`.
func printEdgeStatus(s *mgmt.Status) {
	var haRows, svcRows []string
	for _, t := range s.Tenants {
		if h := t.HA; h != nil {
			since := "-"
			if !h.Since.IsZero() {
				since = h.Since.Local().Format(time.RFC3339)
			}
			var notes []string
			if h.FailoverHeld {
				notes = append(notes, "failover held")
			}
			if !h.SyncLinkUp {
				notes = append(notes, "SYNC LINK DOWN")
			}
			if h.SplitBrainRisk {
				notes = append(notes, "SPLIT BRAIN RISK")
			}
			if h.Error != "" {
				notes = append(notes, h.Error)
			}
			haRows = append(haRows, fmt.Sprintf("%s\t%s\t%s\t%d\t%d/%d\t%s", t.Name, h.State, since, h.Priority,
				h.Sync.InternalFlows, h.Sync.ExternalFlows, strings.Join(notes, ", ")))
		}
		if sv := t.Services; sv != nil {
			for _, l := range sv.DHCP {
				svcRows = append(svcRows, fmt.Sprintf("%s\t%s %s\t%s\t%s", t.Name, clientName(l.Family), l.Interface, l.State, leaseSummary(l)))
			}
			if p := sv.DNSMasq; p != nil {
				state := "running"
				if !p.Running {
					state = "NOT RUNNING " + p.LastExit
				}
				svcRows = append(svcRows, fmt.Sprintf("%s\tdnsmasq\t%s\t%d leases, %d restarts", t.Name, state, sv.Leases, p.Restarts))
			}
		}
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	if len(haRows) > 0 {
		fmt.Fprintln(w, "\nHA TENANT\tSTATE\tSINCE\tPRIORITY\tFLOWS (OWN/PEER)\tNOTES")
		for _, r := range haRows {
			fmt.Fprintln(w, r)
		}
	}
	if len(svcRows) > 0 {
		fmt.Fprintln(w, "\nSERVICES\tWHAT\tSTATE\tDETAIL")
		for _, r := range svcRows {
			fmt.Fprintln(w, r)
		}
	}
	w.Flush()
}
