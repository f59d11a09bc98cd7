package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/mgmt"
)

// The management commands talk to the running daemon's API.

func socketFlag(fs *flag.FlagSet) *string {
	return fs.String("socket", config.DefaultSocket, "the daemon's API `socket`")
}

// parseArgs is parse for commands with positional arguments: flags may
// come before or after them (`fwd diff 3 --socket S`). It returns the
// positional arguments.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, int) {
	var pos []string
	for {
		if code := parse(fs, args); code >= 0 {
			return nil, code
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, -1
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), -1
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// printResult prints a reload/rollback outcome; the exit code says
// whether the requested configuration runs.
func printResult(res *mgmt.Result, asJSON bool) int {
	if asJSON {
		printJSON(res)
		if res.OK() && res.StoreError == "" {
			return exitOK
		}
		return exitFailure
	}
	printRemovals(os.Stdout, res.Removals, res.Result != mgmt.ResultRejected)
	printReloadChecks(res) // flows_cmd.go
	switch res.Result {
	case mgmt.ResultRejected:
		for _, e := range res.Errors {
			fmt.Fprintln(os.Stderr, e)
		}
		fmt.Fprintf(os.Stderr, "fwd: configuration rejected; revision %d still runs, nothing changed\n", res.Revision)
		return exitFailure
	case mgmt.ResultFailed:
		for _, c := range res.Changes {
			fmt.Println(c.String())
		}
		fmt.Fprintln(os.Stderr, "fwd: apply failed:")
		for _, e := range res.Errors {
			fmt.Fprintln(os.Stderr, "  "+e)
		}
		if r := res.Restore; r != nil {
			if r.Error != "" {
				fmt.Fprintf(os.Stderr, "fwd: restoring revision %d failed too: %s\n", r.Revision, r.Error)
			} else {
				fmt.Fprintf(os.Stderr, "fwd: revision %d restored on every tenant (%d changes)\n", r.Revision, len(r.Changes))
			}
		}
		return exitFailure
	}
	for _, c := range res.Changes {
		fmt.Println(c.String())
	}
	code := exitOK
	if res.StoreError != "" {
		// It runs, but it is no revision: history, rollback and a restart
		// after a failed apply do not know it.
		fmt.Printf("applied: %d changes in %s\n", len(res.Changes), res.Duration.Round(time.Millisecond))
		fmt.Fprintf(os.Stderr, "fwd: the configuration runs but was NOT stored as a revision: %s\n", res.StoreError)
		code = exitFailure
	} else {
		fmt.Printf("applied revision %d: %d changes in %s\n", res.Revision, len(res.Changes), res.Duration.Round(time.Millisecond))
	}
	if len(res.Waiting) > 0 {
		fmt.Printf("waiting for: %s\n", strings.Join(res.Waiting, ", "))
	}
	if p := res.PendingConfirm; p != nil {
		fmt.Printf("run 'fwd confirm' before %s or revision %d is restored\n", p.Deadline.Local().Format("15:04:05"), p.Previous)
	}
	return code
}

// printRemovals prints, before anything else, the tenants a change
// removes and the NICs it hands back (done: they were; else: they would
// have been).
func printRemovals(w io.Writer, r *mgmt.Removals, done bool) {
	lines := r.Lines()
	if len(lines) == 0 {
		return
	}
	bar := strings.Repeat("!", 60)
	fmt.Fprintln(w, bar)
	for _, l := range lines {
		if !done {
			l = "would have: " + l
		}
		fmt.Fprintln(w, "!! "+l)
	}
	fmt.Fprintln(w, bar)
}

func init() {
	st := &command{name: "status", args: "[-j] [--socket PATH]", summary: "show the daemon's configuration revision, last reload and a per-tenant summary"}
	st.run = func(args []string) int {
		fs := flags(st, nil)
		socket := socketFlag(fs)
		asJSON := fs.Bool("j", false, "JSON output")
		if code := parse(fs, args); code >= 0 {
			return code
		}
		s, err := mgmt.Dial(*socket).Status(context.Background())
		if err != nil {
			return fail("no running daemon: %v", err)
		}
		if *asJSON {
			printJSON(s)
			return exitOK
		}
		fmt.Printf("config:    %s (revision %d)\n", s.ConfigFile, s.Revision)
		fmt.Printf("daemon:    pid %d, up since %s\n", s.PID, s.Started.Local().Format(time.RFC3339))
		if r := s.LastReload; r != nil {
			fmt.Printf("last load: %s %s (%s, %d changes)\n", r.Result, r.Time.Local().Format(time.RFC3339), r.Reason, len(r.Changes))
			for _, e := range r.Errors {
				fmt.Printf("  error: %s\n", e)
			}
			if r.Restore != nil {
				fmt.Printf("  restored revision %d %s\n", r.Restore.Revision, r.Restore.Error)
			}
		}
		if s.Store != nil && !s.Store.OK {
			fmt.Printf("STORE:     revisions cannot be written: %s\n", s.Store.Error)
		}
		if p := s.PendingConfirm; p != nil {
			fmt.Printf("PENDING:   revision %d must be confirmed ('fwd confirm') before %s, else revision %d is restored\n", p.Revision, p.Deadline.Local().Format(time.RFC3339), p.Previous)
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "\nTENANT\tINTERFACES UP\tRULES\tROUTES\tBGP UP")
		n := func(v int) string {
			if v < 0 {
				return "?"
			}
			return strconv.Itoa(v)
		}
		for _, t := range s.Tenants {
			fmt.Fprintf(w, "%s\t%d/%d\t%s\t%s\t%s/%s\n", t.Name, t.InterfacesUp, t.Interfaces, n(t.Rules), n(t.Routes), n(t.BGPUp), n(t.BGPTotal))
		}
		w.Flush()
		printEdgeStatus(s) // ha_cmd.go
		return exitOK
	}
	register(st)

	h := &command{name: "history", args: "[-j] [--socket PATH]", summary: "list the stored configuration revisions"}
	h.run = func(args []string) int {
		fs := flags(h, nil)
		socket := socketFlag(fs)
		asJSON := fs.Bool("j", false, "JSON output")
		if code := parse(fs, args); code >= 0 {
			return code
		}
		c := mgmt.Dial(*socket)
		revs, err := c.Revisions(context.Background())
		if err != nil {
			return fail("revisions: %v", err)
		}
		if *asJSON {
			if revs == nil {
				revs = []mgmt.Revision{}
			}
			printJSON(revs)
			return exitOK
		}
		cur := 0
		if s, err := c.Status(context.Background()); err == nil {
			cur = s.Revision
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "REV\tTIME\tSHA256\tSIZE\tREASON")
		for i := len(revs) - 1; i >= 0; i-- {
			r := revs[i]
			mark := " "
			if r.Number == cur {
				mark = "*"
			}
			fmt.Fprintf(w, "%d%s\t%s\t%s\t%d\t%s\n", r.Number, mark, r.Time.Local().Format(time.RFC3339), r.SHA256[:12], r.Size, r.Reason)
		}
		w.Flush()
		return exitOK
	}
	register(h)

	df := &command{name: "diff", args: "REV [REV2] [--socket PATH]", summary: "show the configuration diff from revision REV to REV2 (default: the running one)"}
	df.run = func(args []string) int {
		fs := flags(df, nil)
		socket := socketFlag(fs)
		pos, code := parseArgs(fs, args)
		if code >= 0 {
			return code
		}
		if len(pos) < 1 || len(pos) > 2 {
			fs.Usage()
			return exitUsage
		}
		a, err := strconv.Atoi(pos[0])
		if err != nil {
			return fail("revision %q is not a number", pos[0])
		}
		c := mgmt.Dial(*socket)
		ctx := context.Background()
		b := 0
		if len(pos) == 2 {
			if b, err = strconv.Atoi(pos[1]); err != nil {
				return fail("revision %q is not a number", pos[1])
			}
		} else {
			s, err := c.Status(ctx)
			if err != nil {
				return fail("no running daemon: %v", err)
			}
			b = s.Revision
		}
		da, err := c.RevisionFile(ctx, a)
		if err != nil {
			return fail("%v", err)
		}
		db, err := c.RevisionFile(ctx, b)
		if err != nil {
			return fail("%v", err)
		}
		fmt.Print(mgmt.UnifiedDiff(fmt.Sprintf("revision %d", a), fmt.Sprintf("revision %d", b), da, db))
		return exitOK
	}
	register(df)

	rb := &command{name: "rollback", args: "REV [--confirm DURATION] [-j] [--socket PATH]", summary: "apply a stored revision (and write it to the config file)"}
	rb.run = func(args []string) int {
		fs := flags(rb, nil)
		socket := socketFlag(fs)
		confirm := fs.Duration("confirm", 0, "roll back again unless 'fwd confirm' arrives within this `duration`")
		asJSON := fs.Bool("j", false, "JSON output")
		pos, code := parseArgs(fs, args)
		if code >= 0 {
			return code
		}
		if len(pos) != 1 {
			fs.Usage()
			return exitUsage
		}
		n, err := strconv.Atoi(pos[0])
		if err != nil {
			return fail("revision %q is not a number", pos[0])
		}
		res, err := mgmt.Dial(*socket).Rollback(context.Background(), mgmt.RollbackRequest{Revision: n, ConfirmSeconds: int((*confirm + time.Second - 1) / time.Second)})
		if err != nil {
			return fail("rollback: %v", err)
		}
		return printResult(res, *asJSON)
	}
	register(rb)

	cf := &command{name: "confirm", args: "[--socket PATH]", summary: "keep a change made with --confirm (otherwise it is rolled back at its deadline)"}
	cf.run = func(args []string) int {
		fs := flags(cf, nil)
		socket := socketFlag(fs)
		if code := parse(fs, args); code >= 0 {
			return code
		}
		p, err := mgmt.Dial(*socket).Confirm(context.Background())
		if err != nil {
			return fail("confirm: %v", err)
		}
		fmt.Printf("revision %d confirmed\n", p.Revision)
		return exitOK
	}
	register(cf)
}
