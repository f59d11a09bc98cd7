package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/policy"
	"github.com/fwdproject/fwd/routing"
	"github.com/vishvananda/netns"
)

// showSubcommands are `fwd show WHAT …`. They read the kernel; the config
// file (-c) supplies names (tables, merged rule groups) and the generated
// ruleset.
var showSubcommands = map[string]func(s *command, args []string) int{
	"interfaces":  func(s *command, args []string) int { return showInterfaces(s, args) },
	"ruleset":     showRuleset,
	"rules":       showRules,
	"nat":         showNAT,
	"routes":      showRoutes,
	"route-rules": showRouteRules,
}

type showOpts struct {
	fs      *flag.FlagSet
	path    string
	asJSON  *bool
	table   *string
	cfg     *config.Config
	tenants []*config.Tenant
}

// showSetup parses the common flags, loads the config and selects tenants
// (the one named, or all). needConfig: the view cannot work without it.
func showSetup(s *command, what string, args []string, needConfig bool) (*showOpts, int) {
	o := &showOpts{}
	o.fs = flag.NewFlagSet("fwd show "+what, flag.ContinueOnError)
	o.fs.StringVar(&o.path, "c", config.DefaultPath, "configuration `file`")
	o.asJSON = o.fs.Bool("j", false, "JSON output")
	if what == "routes" {
		o.table = o.fs.String("table", "all", "table: main, local, a declared name, a number, or all")
	}
	if code := parse(o.fs, args); code >= 0 {
		return nil, code
	}
	cfg, err := config.Load(o.path)
	if err != nil {
		if needConfig {
			return nil, fail("show %s needs the configuration: %v", what, err)
		}
		fmt.Fprintf(os.Stderr, "fwd: warning: %s not loaded (%v); showing the kernel only\n", o.path, firstLine(err))
		cfg = &config.Config{}
	}
	o.cfg = cfg
	if o.fs.NArg() > 0 {
		t := cfg.Tenant(o.fs.Arg(0))
		if t == nil {
			if needConfig || !ns.Exists(o.fs.Arg(0)) {
				return nil, fail("no tenant %q", o.fs.Arg(0))
			}
			t = &config.Tenant{Name: o.fs.Arg(0)}
		}
		o.tenants = []*config.Tenant{t}
	} else {
		o.tenants = cfg.Tenants
	}
	return o, -1
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// eachNS runs fn with an open handle for every selected tenant that exists.
func (o *showOpts) eachNS(fn func(t *config.Tenant, h netns.NsHandle) error) int {
	code := exitOK
	for _, t := range o.tenants {
		h, err := ns.Open(t.Name)
		if err != nil {
			fmt.Fprintf(os.Stderr, "fwd: tenant %s: %v\n", t.Name, err)
			code = exitFailure
			continue
		}
		err = fn(t, h)
		h.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "fwd: tenant %s: %v\n", t.Name, err)
			code = exitFailure
		}
	}
	return code
}

func showRuleset(s *command, args []string) int {
	o, code := showSetup(s, "ruleset", args, true)
	if code >= 0 {
		return code
	}
	out := map[string]string{}
	for _, t := range o.tenants {
		text, err := policy.RenderRuleset(t)
		if err != nil {
			return fail("tenant %s: %v", t.Name, err)
		}
		out[t.Name] = text
		if !*o.asJSON {
			fmt.Printf("# tenant %s\n", t.Name)
			if text == "" {
				fmt.Println("# (no policy: no fwd table in this namespace)")
			}
			fmt.Print(text)
		}
	}
	if *o.asJSON {
		printJSON(out)
	}
	return exitOK
}

func showRules(s *command, args []string) int {
	o, code := showSetup(s, "rules", args, false)
	if code >= 0 {
		return code
	}
	all := map[string][]policy.RuleCounter{}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	code = o.eachNS(func(t *config.Tenant, h netns.NsHandle) error {
		// The CLI has no applied state to keep an index in: it compiles
		// the config once per call to name merged groups' members.
		cs, err := policy.ReadCounters(h, policy.NewRuleIndex(policy.Compile(t)))
		if err != nil {
			return err
		}
		all[t.Name] = cs
		if !*o.asJSON {
			fmt.Fprintf(tw, "tenant %s\tpackets\tbytes\tchains\n", t.Name)
			for _, c := range cs {
				id := c.ID
				if len(c.Members) > 0 {
					id += " (" + strings.Join(c.Members, ",") + ")"
				}
				fmt.Fprintf(tw, "  %s\t%d\t%d\t%s\n", id, c.Packets, c.Bytes, strings.Join(c.Chains, ","))
			}
		}
		return nil
	})
	tw.Flush()
	if *o.asJSON {
		printJSON(all)
	}
	return code
}

func showNAT(s *command, args []string) int {
	o, code := showSetup(s, "nat", args, true)
	if code >= 0 {
		return code
	}
	all := map[string][]string{}
	for _, t := range o.tenants {
		lines := policy.DescribeNAT(t)
		if lines == nil {
			lines = []string{}
		}
		all[t.Name] = lines
		if !*o.asJSON {
			fmt.Printf("tenant %s\n", t.Name)
			for _, l := range lines {
				fmt.Printf("  %s\n", l)
			}
		}
	}
	if *o.asJSON {
		printJSON(all)
	}
	return exitOK
}

// showPerTenant prints, for each selected tenant, what read returns, one
// line per item (or all tenants as one JSON object).
func showPerTenant[T any](o *showOpts, read func(t *config.Tenant, h netns.NsHandle) ([]T, error), line func(T) string) int {
	all := map[string][]T{}
	code := o.eachNS(func(t *config.Tenant, h netns.NsHandle) error {
		items, err := read(t, h)
		if err != nil {
			return err
		}
		if items == nil {
			items = []T{}
		}
		all[t.Name] = items
		if !*o.asJSON {
			fmt.Printf("tenant %s\n", t.Name)
			for _, it := range items {
				fmt.Printf("  %s\n", line(it))
			}
		}
		return nil
	})
	if *o.asJSON {
		printJSON(all)
	}
	return code
}

func showRoutes(s *command, args []string) int {
	o, code := showSetup(s, "routes", args, false)
	if code >= 0 {
		return code
	}
	return showPerTenant(o, func(t *config.Tenant, h netns.NsHandle) ([]routing.RouteView, error) {
		table, err := routing.TableID(t, *o.table)
		if err != nil {
			return nil, err
		}
		return routing.ReadRoutes(h, t, table)
	}, func(r routing.RouteView) string { return r.Text })
}

func showRouteRules(s *command, args []string) int {
	o, code := showSetup(s, "route-rules", args, false)
	if code >= 0 {
		return code
	}
	return showPerTenant(o, func(t *config.Tenant, h netns.NsHandle) ([]routing.RuleView, error) {
		return routing.ReadRules(h, t)
	}, func(r routing.RuleView) string { return r.Text })
}
