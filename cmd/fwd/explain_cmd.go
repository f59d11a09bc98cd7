package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/explain"
)

// newExplainCommand is `fwd explain`: the decision for a described
// packet, computed from the configuration (no packet is sent).
func newExplainCommand() *command {
	c := &command{name: "explain",
		args:    "[-c FILE] TENANT --in IF|self [--out IF] --src ADDR --dst ADDR [--proto P] [--sport N] [--dport N] [--icmp-type T] [--state S] [-j]",
		summary: "show the path and verdict of a packet through a tenant's policy and routes, computed from the configuration"}
	c.run = func(args []string) int { return runExplain(c, args, os.Stdout) }
	return c
}

// parseInterspersed parses flags placed before and after positional
// arguments (`fwd explain TENANT --in lan0 …`) and returns the latter.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, int) {
	var pos []string
	for {
		if code := parse(fs, args); code >= 0 {
			return nil, code
		}
		if fs.NArg() == 0 {
			return pos, -1
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func runExplain(c *command, args []string, stdout io.Writer) int {
	var path string
	fs := flags(c, &path)
	in := fs.String("in", "", "interface the packet arrives on (or \"self\": sent by the tenant itself)")
	out := fs.String("out", "", "output `interface` (default: the route lookup decides)")
	src := fs.String("src", "", "source `address`")
	dst := fs.String("dst", "", "destination `address`")
	proto := fs.String("proto", "tcp", "protocol: tcp, udp, icmp, icmpv6, … or a number")
	sport := fs.Uint("sport", 0, "source port (default: an ephemeral port)")
	dport := fs.Uint("dport", 0, "destination port (tcp, udp, sctp, udplite)")
	icmpType := fs.String("icmp-type", "", "ICMP type name or number (default echo-request)")
	state := fs.String("state", "new", "conntrack state: new, established, related, invalid, untracked")
	asJSON := fs.Bool("j", false, "JSON output")
	pos, code := parseInterspersed(fs, args)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitUsage
	}
	q := explain.Query{Tenant: pos[0], In: *in, Out: *out, State: *state}
	var err error
	if q.Src, err = netip.ParseAddr(*src); err != nil {
		return usageError("--src: %v", err)
	}
	if q.Dst, err = netip.ParseAddr(*dst); err != nil {
		return usageError("--dst: %v", err)
	}
	if q.Proto, err = explain.ParseProto(*proto); err != nil {
		return usageError("--proto: %v", err)
	}
	if q.SPort, err = portFlag(*sport); err != nil {
		return usageError("--sport: %v", err)
	}
	if q.DPort, err = portFlag(*dport); err != nil {
		return usageError("--dport: %v", err)
	}
	if *icmpType != "" {
		t, err := explain.ParseICMPType(*icmpType, q.Proto == 58 || q.Dst.Is6())
		if err != nil {
			return usageError("--icmp-type: %v", err)
		}
		q.ICMPType = &t
	}
	cfg, err := config.Load(path)
	if err != nil {
		return fail("%v", err)
	}
	tr, err := explain.Explain(cfg, q)
	if err != nil {
		return fail("explain: %v", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(tr); err != nil {
			return fail("%v", err)
		}
		return exitOK
	}
	if err := tr.WriteText(stdout); err != nil {
		return fail("%v", err)
	}
	return exitOK
}

func usageError(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "fwd: "+format+"\n", args...)
	return exitUsage
}

func portFlag(v uint) (uint16, error) {
	if v > 65535 {
		return 0, fmt.Errorf("port %s out of range", strconv.FormatUint(uint64(v), 10))
	}
	return uint16(v), nil
}

func init() { register(newExplainCommand()) }
