package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fwdproject/fwd/bgp"
)

func init() {
	register(&command{name: bgp.SpeakerCommand, args: "-tenant NAME -socket PATH -table N [-log-format text|json] [-log-level LEVEL]", hidden: true,
		summary: "run one tenant's BGP speaker (started by the daemon inside the tenant's namespace)",
		run:     bgp.SpeakerMain})

	c := &command{name: "bgp", args: "show [-j] [TENANT] | routes [-j] TENANT [PREFIX|ADDRESS]",
		summary: "show BGP neighbours and routes of the tenants' speakers"}
	c.run = func(args []string) int {
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
			fmt.Fprintf(os.Stderr, "Usage: fwd bgp %s\n\n%s\n", c.args, c.summary)
			if len(args) == 0 {
				return exitUsage
			}
			return exitOK
		}
		switch args[0] {
		case "show":
			return bgpShow(c, args[1:])
		case "routes":
			return bgpRoutes(c, args[1:])
		}
		fmt.Fprintf(os.Stderr, "fwd bgp: unknown subcommand %q (show, routes)\n", args[0])
		return exitUsage
	}
	register(c)
}

func bgpTenants(runDir string) []string {
	socks, _ := filepath.Glob(filepath.Join(runDir, "*", "gobgp.sock"))
	var out []string
	for _, s := range socks {
		out = append(out, filepath.Base(filepath.Dir(s)))
	}
	sort.Strings(out)
	return out
}

func bgpShow(c *command, args []string) int {
	fs := flags(c, nil)
	asJSON := fs.Bool("j", false, "JSON output")
	runDir := fs.String("run-dir", bgp.DefaultRunDir, "speakers' run `directory`")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	tenants := bgpTenants(*runDir)
	if fs.NArg() > 0 {
		t := fs.Arg(0)
		if _, err := os.Stat(bgp.SocketPath(*runDir, t)); err != nil {
			return fail("tenant %q has no running BGP speaker (%s)", t, bgp.SocketPath(*runDir, t))
		}
		tenants = []string{t}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all := []bgp.Neighbor{}
	code := exitOK
	for _, t := range tenants {
		ns, err := bgp.QueryNeighbors(ctx, *runDir, t)
		if err != nil {
			fmt.Fprintf(os.Stderr, "fwd: tenant %q: %v\n", t, err)
			code = exitFailure
			continue
		}
		all = append(all, ns...)
	}
	if *asJSON {
		printJSON(all)
		return code
	}
	if len(tenants) == 0 {
		fmt.Println("No BGP speakers.")
		return code
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tNEIGHBOR\tAS\tSTATE\tUP/DOWN\tRECEIVED\tACCEPTED\tADVERTISED\tDESCRIPTION")
	for _, n := range all {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%d\t%d\t%s\n", n.Tenant, n.Address, n.ASN, n.State, since(n.Since),
			n.Received, n.Accepted, n.Advertised, n.Description)
	}
	tw.Flush()
	// The same FIB figure status and metrics report.
	for _, t := range tenants {
		if st, err := bgp.ReadFIBStatus(filepath.Dir(bgp.SocketPath(*runDir, t))); err == nil {
			fmt.Printf("tenant %s: %d routes in the kernel (%d stale), %d refused\n", t, st.Routes, st.Stale, st.Failures)
		}
	}
	return code
}

func since(t time.Time) string {
	if t.IsZero() || t.Unix() <= 0 {
		return "never"
	}
	return time.Since(t).Round(time.Second).String()
}

func bgpRoutes(c *command, args []string) int {
	fs := flags(c, nil)
	asJSON := fs.Bool("j", false, "JSON output")
	runDir := fs.String("run-dir", bgp.DefaultRunDir, "speakers' run `directory`")
	limit := fs.Int("n", 1000, "show at most this many prefixes (0: all)")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		return exitUsage
	}
	t := fs.Arg(0)
	cl, err := bgp.Dial(bgp.SocketPath(*runDir, t))
	if err != nil {
		return fail("%v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rs, err := cl.Routes(ctx, fs.Arg(1), *limit)
	if err != nil {
		return fail("tenant %q: %v", t, err)
	}
	if *asJSON {
		if rs == nil {
			rs = []bgp.Route{}
		}
		printJSON(rs)
		return exitOK
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, " \tPREFIX\tNEXT HOP\tAS PATH\tFROM\tAGE")
	for _, r := range rs {
		best := " "
		if r.Best {
			best = "*"
		}
		var path []string
		for _, a := range r.ASPath {
			path = append(path, fmt.Sprint(a))
		}
		from := r.Neighbor
		if from == "" {
			from = "local"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", best, r.Prefix, r.NextHop, strings.Join(path, " "), from, time.Duration(r.Age*float64(time.Second)))
	}
	tw.Flush()
	return exitOK
}
