package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/fwdproject/fwd/mgmt"
)

// newSetCommand is `fwd set`: the elements of a dynamic address set,
// changed through the daemon without a reload.
func newSetCommand() *command {
	c := &command{name: "set",
		args:    "add|del|list|flush TENANT SET [ELEMENT…] [--timeout D] [-j] [--socket PATH]",
		summary: "add, delete, list or flush the elements of a dynamic address set at once, without a reload"}
	c.run = func(args []string) int { return runSet(c, args, os.Stdout) }
	return c
}

func runSet(c *command, args []string, stdout io.Writer) int {
	fs := flags(c, nil)
	socket := socketFlag(fs)
	timeout := fs.Duration("timeout", 0, "add: the elements expire after this `duration` (default: the set's timeout, if any)")
	asJSON := fs.Bool("j", false, "JSON output")
	pos, code := parseArgs(fs, args)
	if code >= 0 {
		return code
	}
	if len(pos) < 3 {
		fs.Usage()
		return exitUsage
	}
	op, tenant, set, elems := pos[0], pos[1], pos[2], pos[3:]
	switch {
	case op != "add" && op != "del" && op != "list" && op != "flush":
		return usageError("set: unknown operation %q: want add, del, list or flush", op)
	case (op == "add" || op == "del") && len(elems) == 0:
		return usageError("set %s: give at least one element (address, prefix or range a-b)", op)
	case (op == "list" || op == "flush") && len(elems) > 0:
		return usageError("set %s takes no elements", op)
	case *timeout < 0 || (*timeout > 0 && op != "add"):
		return usageError("--timeout is a positive duration, for add only")
	}
	cl := mgmt.Dial(*socket)
	ctx := context.Background()
	if op == "list" {
		v, err := cl.SetList(ctx, tenant, set)
		if err != nil {
			return fail("set list: %v", err)
		}
		if *asJSON {
			return writeJSONOut(stdout, v)
		}
		if len(v.Elements) == 0 {
			fmt.Fprintf(stdout, "Set %s of tenant %s is empty.\n", set, tenant)
			return exitOK
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ELEMENT\tEXPIRES IN")
		for _, e := range v.Elements {
			exp := "never"
			if e.Expires > 0 {
				exp = e.Expires.Round(time.Second).String()
			}
			fmt.Fprintf(tw, "%s\t%s\n", e.Element, exp)
		}
		if err := tw.Flush(); err != nil {
			return fail("%v", err)
		}
		return exitOK
	}
	req := mgmt.SetRequest{Elements: elems}
	if *timeout > 0 {
		req.Timeout = timeout.String()
	}
	res, err := cl.SetChange(ctx, tenant, set, op, req)
	if err != nil {
		return fail("set %s: %v", op, err)
	}
	if *asJSON {
		return writeJSONOut(stdout, res)
	}
	what := fmt.Sprintf("%d elements", res.Elements)
	if op == "flush" {
		what = "all elements"
	}
	verb := map[string]string{"add": "added to", "del": "deleted from", "flush": "flushed from"}[op]
	fmt.Fprintf(stdout, "%s %s set %s of tenant %s (%s)\n", what, verb, set, tenant, res.Duration.Round(time.Microsecond))
	return exitOK
}

func writeJSONOut(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fail("%v", err)
	}
	return exitOK
}

func init() { register(newSetCommand()) }
