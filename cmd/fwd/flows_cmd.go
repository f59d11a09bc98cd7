package main

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fwdproject/fwd/flows"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/mgmt"
)

// newFlowsCommand is `fwd flows`: a tenant's conntrack table, read
// directly from the kernel (root, like `fwd show`).
func newFlowsCommand() *command {
	c := &command{name: "flows",
		args:    "TENANT [--src PREFIX] [--dst PREFIX] [--proto P] [--sport N] [--dport N] [-j]",
		summary: "list a tenant's tracked connections (original and reply tuples, NAT, state, age, counters)"}
	c.run = func(args []string) int { return runFlows(c, args, os.Stdout) }
	return c
}

func runFlows(c *command, args []string, stdout io.Writer) int {
	fs := flags(c, nil)
	src := fs.String("src", "", "original source `address or prefix`")
	dst := fs.String("dst", "", "original destination `address or prefix`")
	proto := fs.String("proto", "", "`protocol`: tcp, udp, icmp, icmpv6, … or a number")
	sport := fs.Uint("sport", 0, "original source `port`")
	dport := fs.Uint("dport", 0, "original destination `port`")
	asJSON := fs.Bool("j", false, "JSON output")
	pos, code := parseInterspersed(fs, args)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitUsage
	}
	var f flows.Filter
	var err error
	if f.Src, err = prefixFlag(*src); err != nil {
		return usageError("--src: %v", err)
	}
	if f.Dst, err = prefixFlag(*dst); err != nil {
		return usageError("--dst: %v", err)
	}
	if *proto != "" {
		if _, ok := flows.ProtoNumber(*proto); !ok {
			return usageError("--proto: unknown protocol %q", *proto)
		}
		f.Proto = *proto
	}
	if f.SPort, err = portFlag(*sport); err != nil {
		return usageError("--sport: %v", err)
	}
	if f.DPort, err = portFlag(*dport); err != nil {
		return usageError("--dport: %v", err)
	}
	h, err := ns.Open(pos[0])
	if err != nil {
		return fail("tenant %q: %v", pos[0], err)
	}
	defer h.Close()
	list, err := flows.List(h, f)
	if err != nil {
		return fail("tenant %q: %v", pos[0], err)
	}
	if *asJSON {
		if list == nil {
			list = []flows.Flow{}
		}
		return writeJSONOut(stdout, list) // set_cmd.go
	}
	if err := writeFlows(stdout, list); err != nil {
		return fail("%v", err)
	}
	return exitOK
}

// writeFlows prints flows as a table: the original tuple, the reply
// tuple only where NAT made it differ from the swapped original.
func writeFlows(w io.Writer, list []flows.Flow) error {
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "No tracked connections.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROTO\tSOURCE\tDESTINATION\tNAT\tSTATE\tAGE\tTIMEOUT\tPACKETS\tBYTES")
	for _, fl := range list {
		nat := "-"
		if fl.SNAT || fl.DNAT {
			// The reply comes from where the original was sent to after
			// DNAT, and goes to what SNAT made the source.
			nat = fmt.Sprintf("reply %s → %s", endpoint(fl.Reply.Src, fl.Reply.SPort), endpoint(fl.Reply.Dst, fl.Reply.DPort))
		}
		state := fl.State
		if state == "" {
			state = "-"
			if fl.SeenReply {
				state = "replied"
			}
		}
		if fl.Assured {
			state += " [assured]"
		}
		age, pk, by := "-", "-", "-"
		if fl.Age > 0 {
			age = fl.Age.Round(time.Second).String()
		}
		if fl.Packets > 0 || fl.Bytes > 0 {
			pk, by = fmt.Sprint(fl.Packets), human(fl.Bytes)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", fl.Proto, endpoint(fl.Orig.Src, fl.Orig.SPort),
			endpoint(fl.Orig.Dst, fl.Orig.DPort), nat, state, age, fl.Timeout.Round(time.Second), pk, by)
	}
	return tw.Flush()
}

func endpoint(a netip.Addr, port uint16) string {
	if port == 0 {
		return a.String()
	}
	return netip.AddrPortFrom(a, port).String()
}

func init() { register(newFlowsCommand()) }

// reloadOpts are the reload options of this file's concern.
type reloadOpts struct{ KillDenied, Rehearse bool }

// reloadFlags adds --kill-denied and --rehearse to `fwd reload`.
func reloadFlags(fs *flag.FlagSet) *reloadOpts {
	o := &reloadOpts{}
	fs.BoolVar(&o.KillDenied, "kill-denied", false, "delete the established flows the new policy would not admit (they are always counted and logged)")
	fs.BoolVar(&o.Rehearse, "rehearse", false, "apply the new ruleset and routes to throwaway namespaces first; a kernel refusal rejects the reload")
	return o
}

// printReloadChecks prints (to stderr, before the outcome) what the
// rehearsal and the check of established flows found.
func printReloadChecks(res *mgmt.Result) {
	if r := res.Rehearsal; r != nil {
		switch {
		case r.Error != "":
			fmt.Fprintf(os.Stderr, "rehearsal: the kernel REFUSED the configuration (tenants %s, %s)\n", strings.Join(r.Tenants, ", "), r.Duration.Round(time.Microsecond))
		case len(r.Tenants) == 0:
			fmt.Fprintf(os.Stderr, "rehearsal: no tenant's policy or routes change, nothing to rehearse (%s)\n", r.Duration.Round(time.Microsecond))
		default:
			fmt.Fprintf(os.Stderr, "rehearsal: tenants %s accepted by the kernel in scratch namespaces (%d changes, %s)\n", strings.Join(r.Tenants, ", "), r.Changes, r.Duration.Round(time.Microsecond))
		}
	}
	f := res.Flows
	if f == nil {
		return
	}
	fmt.Fprintf(os.Stderr, "flows: %d established checked, %d no longer admitted by the new policy, %d killed", f.Checked, len(f.Denied), f.Killed)
	if f.Unknown > 0 {
		fmt.Fprintf(os.Stderr, ", %d not checkable (no route back to their source)", f.Unknown)
	}
	fmt.Fprintln(os.Stderr)
	for _, d := range f.Denied {
		mark := "  "
		if d.Killed {
			mark = "✗ "
		}
		by := d.Reason
		if d.Where != "" {
			by += " at " + d.Where
		}
		fmt.Fprintf(os.Stderr, "  %s%s %s %s → %s (in %s): %s, %s\n", mark, d.Tenant, d.Proto, endpoint(d.Src, d.SPort), endpoint(d.Dst, d.DPort), d.In, d.Verdict, by)
	}
	for _, e := range f.Errors {
		fmt.Fprintf(os.Stderr, "  error: %s\n", e)
	}
	if len(f.Denied) > f.Killed && f.Killed == 0 {
		fmt.Fprintln(os.Stderr, "  (run 'fwd reload --kill-denied' to delete them)")
	}
}
