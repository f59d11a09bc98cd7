package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/explain"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/trace"
)

// newTraceCommand is `fwd trace`: the decision for live packets, observed
// with nftables tracing in the tenant's namespace.
func newTraceCommand() *command {
	c := &command{name: "trace",
		args:    "[-c FILE] TENANT [--in IF] [--src ADDR[/LEN]] [--dst ADDR[/LEN]] [--proto P] [--sport N] [--dport N] [--count N] [--timeout D] [-j]",
		summary: "trace matching packets through a tenant's ruleset in the kernel, naming fwd's rules and their TOML lines"}
	c.run = func(args []string) int { return runTrace(c, args, os.Stdout) }
	return c
}

func prefixFlag(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func runTrace(c *command, args []string, stdout io.Writer) int {
	var path string
	fs := flags(c, &path)
	var m trace.Match
	fs.StringVar(&m.In, "in", "", "input `interface` (then only forwarded and incoming packets are traced)")
	src := fs.String("src", "", "source address or prefix")
	dst := fs.String("dst", "", "destination address or prefix")
	proto := fs.String("proto", "", "protocol: tcp, udp, icmp, … or a number")
	sport := fs.Uint("sport", 0, "source port")
	dport := fs.Uint("dport", 0, "destination port")
	count := fs.Int("count", 10, "stop after this many packets (0: no limit)")
	timeout := fs.Duration("timeout", time.Minute, "stop after this long (0: until interrupted)")
	asJSON := fs.Bool("j", false, "JSON output: one event per line")
	pos, code := parseInterspersed(fs, args)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitUsage
	}
	tenant := pos[0]
	var err error
	if m.Src, err = prefixFlag(*src); err != nil {
		return usageError("--src: %v", err)
	}
	if m.Dst, err = prefixFlag(*dst); err != nil {
		return usageError("--dst: %v", err)
	}
	if *proto != "" {
		if m.Proto, err = explain.ParseProto(*proto); err != nil {
			return usageError("--proto: %v", err)
		}
	}
	if m.SPort, err = portFlag(*sport); err != nil {
		return usageError("--sport: %v", err)
	}
	if m.DPort, err = portFlag(*dport); err != nil {
		return usageError("--dport: %v", err)
	}
	// The configuration only names rules' positions: trace works without it.
	var loc *explain.Locator
	if cfg, err := config.Load(path); err == nil {
		if t := cfg.Tenant(tenant); t != nil {
			loc = explain.NewLocator(cfg, t)
		}
	} else {
		fmt.Fprintf(os.Stderr, "fwd: warning: %s not loaded (%v); rules are shown without their TOML lines\n", path, firstLine(err))
	}
	h, err := ns.Open(tenant)
	if err != nil {
		return fail("tenant %q: %v", tenant, err)
	}
	defer h.Close()
	// Ctrl-C and kill (TERM) end the trace through ctx: Run removes its
	// chains before returning. After kill -9, the next trace or policy
	// apply removes them.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	if !*asJSON {
		fmt.Fprintf(os.Stderr, "tracing %s in tenant %s (count %d, timeout %v); Ctrl-C stops\n", m, tenant, *count, *timeout)
	}
	enc := json.NewEncoder(stdout)
	var lastPkt int
	var lastHook string
	emit := func(e trace.Event) {
		var ref *explain.RuleRef
		if loc != nil && e.RuleID != "" {
			ref = loc.Locate(e.RuleID, e.Comment)
		}
		if *asJSON {
			_ = enc.Encode(struct {
				trace.Event
				Where *explain.RuleRef `json:"where,omitempty"`
			}{e, ref})
			return
		}
		if hook := e.In + ">" + e.Out + e.Src.String() + e.Dst.String(); e.Packet != lastPkt || hook != lastHook {
			fmt.Fprintf(stdout, "packet %d: %s %s in %s out %s\n", e.Packet, e.Family, tuple(e), dashIfEmpty(e.In), dashIfEmpty(e.Out))
			lastPkt, lastHook = e.Packet, hook
		}
		name := e.RuleID
		if name == "" && e.Type != "rule" {
			name = "(" + e.Type + ")"
		}
		where := ""
		if ref != nil {
			where = ref.Where()
			if ref.Comment != "" && strings.HasPrefix(e.RuleID, "_default/") {
				where = strings.TrimSpace(where + " " + ref.Comment)
			}
		}
		fmt.Fprintf(stdout, "  %-10s %-22s %-20s %-18s %s\n", e.Table, e.Chain, name, e.Verdict, where)
	}
	if err := trace.Run(ctx, h, m, *count, *timeout, emit); err != nil {
		return fail("trace: %v", err)
	}
	return exitOK
}

func tuple(e trace.Event) string {
	if !e.Src.IsValid() {
		return "?"
	}
	p := explainProto(e.Proto)
	if e.SPort != 0 || e.DPort != 0 {
		return fmt.Sprintf("%s %s → %s", p, netip.AddrPortFrom(e.Src, e.SPort), netip.AddrPortFrom(e.Dst, e.DPort))
	}
	return fmt.Sprintf("%s %s → %s", p, e.Src, e.Dst)
}

func explainProto(p uint8) string {
	if p == 58 {
		return "icmpv6"
	}
	return config.ProtoName(p)
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func init() { register(newTraceCommand()) }
