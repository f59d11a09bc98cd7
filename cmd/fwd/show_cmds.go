package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"text/tabwriter"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/daemon"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/mgmt"
	"github.com/fwdproject/fwd/zones"
)

func human(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func printJSON(v any) {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(os.Stderr, "fwd: %v\n", err)
	}
}

func init() {
	s := &command{name: "show", args: "[interfaces|ruleset|rules|nat|routes|route-rules|leases] [-j] [-c FILE] [TENANT]",
		summary: "show tenants and their interfaces (state, addresses, counters), rulesets, rule counters, NAT, routes, DHCP leases"}
	s.run = func(args []string) int {
		if len(args) > 0 {
			if sub, ok := showSubcommands[args[0]]; ok {
				return sub(s, args[1:])
			}
		}
		return showInterfaces(s, args)
	}
	register(s)

	e := &command{name: "exec", args: "TENANT -- COMMAND [ARG…]", summary: "run a command inside a tenant's namespace"}
	e.run = runExec(e)
	register(e)
}

func showInterfaces(s *command, args []string) int {
	{
		fs := flags(s, nil)
		asJSON := fs.Bool("j", false, "JSON output")
		socket := fs.String("socket", config.DefaultSocket, "daemon API `socket` (the kernel is read directly when no daemon answers)")
		if code := parse(fs, args); code >= 0 {
			return code
		}
		tenants, err := daemon.ReadTenants(context.Background(), *socket)
		if err != nil {
			return fail("read kernel state: %v", err)
		}
		list := []mgmt.Namespace{}
		for _, n := range tenants {
			if fs.NArg() == 0 || fs.Arg(0) == n.Name {
				list = append(list, n)
			}
		}
		if fs.NArg() > 0 && len(list) == 0 {
			return fail("no fwd tenant %q", fs.Arg(0))
		}
		if *asJSON {
			printJSON(list)
			return exitOK
		}
		if len(list) == 0 {
			fmt.Println("No fwd tenants.")
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		for _, n := range list {
			fmt.Fprintf(tw, "tenant %s\tipv4 forwarding %s, ipv6 forwarding %s\n", n.Name, onOff(n.Forwarding4), onOff(n.Forwarding6))
			for _, l := range n.Interfaces {
				var addrs []string
				for _, a := range l.Addrs {
					addrs = append(addrs, a.String())
				}
				origin := ""
				if m, ok := zones.ParseMark(l.Alias); ok {
					if m.Origin == zones.OriginMoved {
						origin = "nic " + m.Device
					} else {
						origin = m.Kind
						if m.Peer != "" {
							origin += " peer " + m.Peer
						}
						if m.Parent != "" {
							origin += " on " + m.Parent
						}
					}
				} else {
					origin = "not fwd's"
				}
				fmt.Fprintf(tw, "  %s\t%s\tmtu %d\t%s\trx %s/%d pkts\ttx %s/%d pkts\t%s\n", l.Name, strings.ToUpper(l.Oper), l.MTU,
					strings.Join(addrs, ","), human(l.RxBytes), l.RxPkts, human(l.TxBytes), l.TxPkts, origin)
			}
		}
		tw.Flush()
		return exitOK
	}
}

func runExec(e *command) func(args []string) int {
	return func(args []string) int {
		fs := flags(e, nil)
		if code := parse(fs, args); code >= 0 {
			return code
		}
		rest := fs.Args()
		if len(rest) > 1 && rest[1] == "--" {
			rest = append(rest[:1], rest[2:]...)
		}
		if len(rest) < 2 {
			fs.Usage()
			return exitUsage
		}
		bin, err := exec.LookPath(rest[1])
		if err != nil {
			return fail("%v", err)
		}
		argv := append([]string{bin}, rest[2:]...)
		err = ns.Exec(rest[0], argv, os.Environ())
		return fail("exec in %s: %v", rest[0], err)
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
