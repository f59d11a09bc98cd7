// Command policy benchmarks fwd's firewall compiler and applier inside a
// private sandbox (it never touches the host's network): a policy of 10k
// individually written TOML rules plus a 100k-element address set.
//
// It prints, as `NAME VALUE UNIT` lines at the end:
//
//	(a) full apply time vs `nft -f` of the same ruleset rendered as text;
//	(b) reload time for a one-rule change and for an unchanged config, as
//	    the daemon reloads on SIGHUP: config load (with one SetCache kept
//	    across loads) + the engine's policy stage (policy.Memory: compile,
//	    plan from memory or Observe, apply), split into load, plan and
//	    commit;
//	(c) new TCP connections per second from a LAN namespace to a WAN server
//	    through the firewall, with the policy vs with no ruleset (the
//	    connections traverse the zone pair that holds the 10k rules);
//	(d) iperf3 TCP throughput with the policy vs none;
//	(e) a one-rule change in a policy of 10k named rules (nothing merges);
//	(f) a 10-line change of the 100k-line set file (elements sent).
//
// Usage: go run ./bench/policy [-rules 10000] [-set 100000] [-t 3s]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fwdproject/fwd/change"
	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/sandbox"
	"github.com/fwdproject/fwd/internal/testnet"
	"github.com/fwdproject/fwd/policy"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

var (
	nRules      = flag.Int("rules", 10000, "number of TOML rules in the lan -> wan zone pair")
	nSet        = flag.Int("set", 100000, "elements of the address set")
	dur         = flag.Duration("t", 3*time.Second, "duration of each traffic measurement")
	workers     = flag.Int("c", 4, "concurrent connection workers")
	cpuProfile  = flag.String("cpuprofile", "", "write a CPU profile of the reloads to this file")
	rounds      = flag.Int("rounds", 3, "alternating measurement rounds (medians are reported)")
	onlyCompile = flag.Bool("compile-only", false, "print the compiled chain sizes and exit")
)

type result struct {
	name  string
	value float64
	unit  string
}

var results []result

func report(name string, v float64, unit string) {
	results = append(results, result{name, v, unit})
	fmt.Printf("  %-40s %12.3f %s\n", name, v, unit)
}

func main() {
	flag.Parse()
	if err := sandbox.Enter(); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(1)
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-policy:", err)
		os.Exit(1)
	}
	fmt.Println()
	for _, r := range results {
		fmt.Printf("%s %.3f %s\n", r.name, r.value, r.unit)
	}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func newNS(name string) netns.NsHandle {
	h, err := ns.Create(name)
	must(err)
	must(ns.Do(h, func() error {
		_ = os.WriteFile("/proc/sys/net/ipv6/conf/all/accept_dad", []byte("0"), 0o644)
		return os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", []byte("1024 65000"), 0o644)
	}))
	return h
}

func link(a netns.NsHandle, aName string, b netns.NsHandle, bName string) {
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "tmp" + aName + bName, Namespace: netlink.NsFd(int(a))},
		PeerName: "tmq" + aName + bName, PeerNamespace: netlink.NsFd(int(b))}
	must(netlink.LinkAdd(v))
	for _, x := range []struct {
		h        netns.NsHandle
		from, to string
	}{{a, v.Name, aName}, {b, v.PeerName, bName}} {
		nh, err := netlink.NewHandleAt(x.h)
		must(err)
		l, err := nh.LinkByName(x.from)
		must(err)
		must(nh.LinkSetName(l, x.to))
		nh.Close()
	}
}

func up(h netns.NsHandle, name, addr string) {
	nh, err := netlink.NewHandleAt(h)
	must(err)
	defer nh.Close()
	l, err := nh.LinkByName(name)
	must(err)
	a, err := netlink.ParseAddr(addr)
	must(err)
	must(nh.AddrAdd(l, a))
	must(nh.LinkSetUp(l))
	lo, _ := nh.LinkByName("lo")
	_ = nh.LinkSetUp(lo)
}

func route(h netns.NsHandle, dst, gw string) {
	must(testnet.AddRoute(h, dst, gw))
}

const base = `
[tenant.fw.interface.lan0]
device = "x1"
addresses = ["192.0.2.1/24"]
[tenant.fw.interface.wan0]
device = "x2"
addresses = ["203.0.113.1/24"]
[tenant.fw.zone.lan]
interfaces = ["lan0"]
[tenant.fw.zone.wan]
interfaces = ["wan0"]
[[tenant.fw.policy]]
from = "lan"
to = "wan"
action = "accept"
[tenant.fw.set.block]
file = "block.txt"
[[tenant.fw.rule]]
name = "blocklist"
from = "any"
to = "any"
saddr = "@block"
action = "drop"
`

// writeConfig writes a policy with n rules in lan -> wan, none of which
// matches the benchmark traffic (destinations are in 198.18.0.0/15), in
// the shapes real configs have: single hosts and prefixes, single ports,
// lists and ranges, tcp and udp, drop and reject.
func writeConfig(dir string, n int, extra string) string {
	r := rand.New(rand.NewSource(1))
	var b strings.Builder
	b.WriteString(base)
	for i := 0; i < n; i++ {
		a := netip.AddrFrom4([4]byte{198, 18 + byte(r.Intn(2)), byte(r.Intn(256)), byte(r.Intn(256))})
		daddr := fmt.Sprintf("%q", a)
		if i%5 == 0 {
			daddr = fmt.Sprintf("%q", netip.PrefixFrom(a, 24).Masked())
		}
		proto := []string{"tcp", "udp"}[i%2]
		var dport string
		switch i % 3 {
		case 0:
			dport = fmt.Sprint(1024 + r.Intn(60000))
		case 1:
			p := 1024 + r.Intn(60000)
			dport = fmt.Sprintf("[%d, %d]", p, p+7)
		default:
			p := 1024 + r.Intn(60000)
			dport = fmt.Sprintf("%q", fmt.Sprintf("%d-%d", p, p+100))
		}
		action := []string{"drop", "reject", "drop", "accept"}[i%4]
		fmt.Fprintf(&b, "[[tenant.fw.rule]]\nfrom = \"lan\"\nto = \"wan\"\nproto = %q\ndaddr = %s\ndport = %s\naction = %q\n", proto, daddr, dport, action)
	}
	b.WriteString(extra)
	path := filepath.Join(dir, "fwd.toml")
	must(os.WriteFile(path, []byte(b.String()), 0o644))
	return path
}

func writeSet(dir string, n int) {
	var b strings.Builder
	a := netip.MustParseAddr("198.18.0.0")
	for i := 0; i < n && i < 65536; i++ {
		fmt.Fprintf(&b, "%s\n", a)
		a = a.Next().Next()
	}
	for i := 65536; i < n; i++ {
		fmt.Fprintf(&b, "2001:db8:%x:%x::/64\n", (2*i)>>16, (2*i)&0xffff)
	}
	must(os.WriteFile(filepath.Join(dir, "block.txt"), []byte(b.String()), 0o644))
}

// setCache is kept across loads, as the daemon keeps one for its config
// file: unchanged set files are read and hashed, not parsed again.
var setCache = &config.SetCache{}

func load(path string) *config.Tenant {
	cfg, err := config.LoadWith(path, setCache)
	must(err)
	return cfg.Tenants[0]
}

func nftIn(nsName string, args ...string) error {
	out, err := exec.Command("ip", append([]string{"netns", "exec", nsName, "nft"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("nft %v: %v: %s", args, err, out)
	}
	return nil
}

func run() error {
	dir, err := os.MkdirTemp("", "fwd-bench-policy")
	must(err)
	defer os.RemoveAll(dir)
	writeSet(dir, *nSet)
	cfgPath := writeConfig(dir, *nRules, "")
	t0 := time.Now()
	tn := load(cfgPath)
	loadTime := time.Since(t0)
	t0 = time.Now()
	rs := policy.Compile(tn)
	compileTime := time.Since(t0)
	text := rs.String()
	textPath := filepath.Join(dir, "ruleset.nft")
	must(os.WriteFile(textPath, []byte(text), 0o644))
	nrules := 0
	for _, ch := range rs.Chains {
		nrules += len(ch.Rules)
	}
	if *onlyCompile {
		for _, ch := range rs.Chains {
			fmt.Printf("chain %s: %d rules\n", ch.Name, len(ch.Rules))
		}
		return nil
	}
	fmt.Printf("policy: %d TOML rules, %d set elements -> %d kernel rules in %d chains (load %v, compile %v)\n",
		*nRules, *nSet, nrules, len(rs.Chains), loadTime.Round(time.Millisecond), compileTime.Round(time.Millisecond))

	// (a) apply vs nft -f, each into a fresh namespace.
	fmt.Println("(a) full apply")
	hA := newNS("applya")
	t0 = time.Now()
	stA, err := policy.Observe(hA)
	if err != nil {
		return err
	}
	stats, err := policy.Apply(hA, policy.Plan("applya", policy.Compile(tn), stA))
	if err != nil {
		return err
	}
	applyTime := time.Since(t0) // compile + commit + verify
	hB := newNS("applyb")
	_ = hB
	t0 = time.Now()
	if err := nftIn("applyb", "-f", textPath); err != nil {
		return err
	}
	nftTime := time.Since(t0)
	report("policy_apply_ms", ms(applyTime), "ms")
	report("policy_apply_commit_ms", ms(stats.Commit), "ms")
	report("policy_apply_verify_ms", ms(stats.Verify), "ms")
	report("policy_nft_f_ms", ms(nftTime), "ms")
	report("policy_apply_vs_nft_ratio", applyTime.Seconds()/nftTime.Seconds(), "x")
	report("policy_apply_commit_vs_nft_ratio", stats.Commit.Seconds()/nftTime.Seconds(), "x")

	// Traffic topology: lan -- fw -- wan.
	fw, lan, wan := newNS("fw"), newNS("lan"), newNS("wan")
	link(fw, "lan0", lan, "eth0")
	link(fw, "wan0", wan, "eth0")
	up(fw, "lan0", "192.0.2.1/24")
	up(fw, "wan0", "203.0.113.1/24")
	up(lan, "eth0", "192.0.2.10/24")
	up(wan, "eth0", "203.0.113.2/24")
	route(lan, "0.0.0.0/0", "192.0.2.1")
	route(wan, "192.0.2.0/24", "203.0.113.1")
	must(ns.Do(fw, func() error { return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644) }))
	stop := serveTCP(wan, "203.0.113.2:80")
	defer stop()
	iperf := exec.Command("ip", "netns", "exec", "wan", "iperf3", "-s", "-B", "203.0.113.2")
	must(iperf.Start())
	defer func() { _ = iperf.Process.Kill() }()
	time.Sleep(300 * time.Millisecond)

	// Reference: the same zones with no rules, to separate the cost of
	// conntrack (which any stateful firewall pays) from the rules'.
	minCfg := filepath.Join(dir, "min.toml")
	must(os.WriteFile(minCfg, []byte(strings.Replace(base, "file = \"block.txt\"", "elements = [\"198.18.0.1\"]", 1)), 0o644))
	noneCfg := filepath.Join(dir, "none.toml")
	must(os.WriteFile(noneCfg, []byte("[tenant.fw.interface.lan0]\ndevice = \"x1\"\n"), 0o644))
	setMode := func(path string) {
		_, err := reconcile(load(path), fw)
		must(err)
	}

	fmt.Println("(b) reloads")
	setMode(cfgPath)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		must(err)
		must(pprof.StartCPUProfile(f))
	}
	t0 = time.Now()
	tnU := load(cfgPath)
	loadU := time.Since(t0)
	ru, err := reconcile(tnU, fw)
	must(err)
	if len(ru.changes) != 0 {
		return fmt.Errorf("unchanged reload changed %v", ru.changes)
	}
	cfg2 := filepath.Join(dir, "fwd2.toml")
	data, _ := os.ReadFile(cfgPath)
	must(os.WriteFile(cfg2, append(data, `
[[tenant.fw.rule]]
from = "wan"
to = "lan"
proto = "tcp"
dport = 4242
action = "drop"
`...), 0o644))
	t0 = time.Now()
	tn2 := load(cfg2)
	load2 := time.Since(t0)
	r2, err := reconcile(tn2, fw)
	must(err)
	if len(r2.changes) == 0 {
		return fmt.Errorf("one-rule change reported no change")
	}
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	reportReload("policy_reload_unchanged", loadU, ru)
	reportReload("policy_reload_one_rule", load2, r2)
	if err := incremental(dir); err != nil {
		return err
	}

	// Veth figures are noisy: alternate the modes over several rounds and
	// keep the median of each.
	fmt.Println("(c, d) traffic: no ruleset / zones without rules / full policy, alternating")
	var baseR, minR, polR, baseB, polB []float64
	for round := 0; round < *rounds; round++ {
		setMode(noneCfg)
		baseR = append(baseR, connRate(lan, "203.0.113.2:80"))
		baseB = append(baseB, iperfOnce())
		setMode(minCfg)
		minR = append(minR, connRate(lan, "203.0.113.2:80"))
		setMode(cfgPath)
		polR = append(polR, connRate(lan, "203.0.113.2:80"))
		polB = append(polB, iperfOnce())
		fmt.Printf("  round %d: %.0f / %.0f / %.0f conn/s, %.2f / - / %.2f Gbit/s\n", round+1,
			baseR[round], minR[round], polR[round], baseB[round]/1e9, polB[round]/1e9)
	}
	baseRate, minRate, polRate, baseBW, polBW := median(baseR), median(minR), median(polR), median(baseB), median(polB)
	cs, err := policy.ReadCounters(fw, nil)
	must(err)
	for _, c := range cs {
		if strings.HasPrefix(c.ID, "_merged/fw_lan_wan") || c.ID == "_default/fw_lan_wan" {
			fmt.Printf("  %s: %d packets\n", c.ID, c.Packets)
		}
	}
	report("policy_newconn_base_per_s", baseRate, "conn/s")
	report("policy_newconn_policy_per_s", polRate, "conn/s")
	report("policy_newconn_ratio", polRate/baseRate, "x")
	report("policy_newconn_norules_per_s", minRate, "conn/s")
	report("policy_newconn_vs_norules_ratio", polRate/minRate, "x")
	report("policy_iperf3_base_gbps", baseBW/1e9, "Gbit/s")
	report("policy_iperf3_policy_gbps", polBW/1e9, "Gbit/s")
	report("policy_iperf3_ratio", polBW/baseBW, "x")
	return nil
}

// memories is the engine's per-tenant policy.Memory, per namespace.
var memories = map[netns.NsHandle]*policy.Memory{}

// reloaded is one reconcile: its changes, stats and time split.
type reloaded struct {
	changes []change.Change
	stats   policy.ApplyStats
	plan    time.Duration // compile (nothing if unchanged) + generation check or Observe + plan
	apply   time.Duration // counters carried + batch + commit + acknowledgements
}

// reconcile is the engine's policy stage (engine/policy_linux.go):
// Memory.Plan, then Memory.Apply.
func reconcile(tn *config.Tenant, h netns.NsHandle) (reloaded, error) {
	m := memories[h]
	if m == nil {
		m = &policy.Memory{}
		memories[h] = m
	}
	var r reloaded
	t0 := time.Now()
	tx, err := m.Plan(tn, h)
	if err != nil {
		return r, err
	}
	r.plan = time.Since(t0)
	t0 = time.Now()
	r.stats, err = m.Apply(h, tx)
	r.apply = time.Since(t0)
	if err != nil {
		return r, err
	}
	r.changes = tx.Changes()
	return r, nil
}

// reportReload prints a reload's total (SIGHUP → committed, less the
// signal) and its split: config load, plan, apply.
func reportReload(name string, loaded time.Duration, r reloaded) {
	report(name+"_ms", ms(loaded+r.plan+r.apply), "ms")
	report(name+"_reconcile_ms", ms(r.plan+r.apply), "ms")
	report(name+"_load_ms", ms(loaded), "ms")
	report(name+"_plan_ms", ms(r.plan), "ms")
	report(name+"_commit_ms", ms(r.apply), "ms")
	report(name+"_messages", float64(r.stats.Messages), "messages")
}

// writeNamedConfig writes a policy of n named rules in lan -> wan (named
// rules never merge), rule changed getting another port.
func writeNamedConfig(dir, name string, n, changed int) string {
	var b strings.Builder
	b.WriteString(base)
	for i := 0; i < n; i++ {
		port := 1024 + i
		if i == changed {
			port = 65000
		}
		fmt.Fprintf(&b, "[[tenant.fw.rule]]\nname = \"n%d\"\nfrom = \"lan\"\nto = \"wan\"\nproto = \"udp\"\ndport = %d\naction = \"drop\"\n", i, port)
	}
	path := filepath.Join(dir, name)
	must(os.WriteFile(path, []byte(b.String()), 0o644))
	return path
}

// incremental measures (e) a one-rule change among n named rules and (f)
// a 10-line change of the set file, each as load + reconcile, in a
// namespace of its own.
func incremental(dir string) error {
	fmt.Println("(e, f) incremental reloads")
	h := newNS("incr")
	named := writeNamedConfig(dir, "named.toml", *nRules, -1)
	if _, err := reconcile(load(named), h); err != nil {
		return err
	}
	named2 := writeNamedConfig(dir, "named2.toml", *nRules, *nRules/2)
	t0 := time.Now()
	tn := load(named2)
	loaded := time.Since(t0)
	r, err := reconcile(tn, h)
	if err != nil {
		return err
	}
	if len(r.changes) == 0 {
		return fmt.Errorf("named one-rule change reported no change")
	}
	reportReload("policy_reload_named_one_rule", loaded, r)
	report("policy_reload_named_one_rule_rules_sent", float64(r.stats.Rules), "rules")

	// (f) 10 lines of the 100k-line set file change.
	data, err := os.ReadFile(filepath.Join(dir, "block.txt"))
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	for i := 0; i < 10 && i < len(lines); i++ {
		lines[i*len(lines)/10] = fmt.Sprintf("203.0.113.%d", 100+2*i)
	}
	must(os.WriteFile(filepath.Join(dir, "block.txt"), []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	defer writeSet(dir, *nSet)
	t0 = time.Now()
	tn = load(named2)
	loaded = time.Since(t0)
	if r, err = reconcile(tn, h); err != nil {
		return err
	}
	reportReload("policy_reload_set_10_lines", loaded, r)
	report("policy_reload_set_10_lines_elements_sent", float64(r.stats.Elements), "elements")
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func serveTCP(h netns.NsHandle, addr string) func() {
	var ln net.Listener
	must(ns.Do(h, func() (err error) { ln, err = net.Listen("tcp", addr); return }))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return func() { ln.Close() }
}

// connRate opens and closes (with RST, so no TIME_WAIT piles up) short
// TCP connections from namespace h for the configured duration.
func connRate(h netns.NsHandle, addr string) float64 {
	var n atomic.Int64
	deadline := time.Now().Add(*dur)
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = ns.Do(h, func() error {
				d := net.Dialer{Timeout: time.Second}
				for time.Now().Before(deadline) {
					c, err := d.Dial("tcp", addr)
					if err != nil {
						continue
					}
					_ = c.(*net.TCPConn).SetLinger(0)
					c.Close()
					n.Add(1)
				}
				return nil
			})
		}()
	}
	wg.Wait()
	return float64(n.Load()) / dur.Seconds()
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func iperfOnce() float64 {
	out, err := exec.Command("ip", "netns", "exec", "lan", "iperf3", "-c", "203.0.113.2", "-t", fmt.Sprint(int(dur.Seconds())), "-J").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "iperf3:", err, string(out))
		return 0
	}
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	must(json.Unmarshal(out, &r))
	return r.End.SumReceived.BitsPerSecond
}
