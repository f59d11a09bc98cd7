// Command bgp-failover benchmarks dual-upstream failover (BGP PIC edge
// through kernel nexthop objects) inside a sandbox: two BIRD 2 peers
// announce the same N prefixes with different next hops (the backup's
// with a longer AS path, so every best path is via the primary); once all
// are in the tenant's table the primary dies (BIRD killed, and the
// address a ping goes to removed from its namespace, so traffic through
// it stops too). It reports the time until every route points at the
// backup, the pings lost meanwhile (a ping every 10 ms to an address in
// a routed prefix, answered by whichever peer the route points at) and
// the speaker's peak RSS with two full tables. Run: go run
// ./bench/bgp-failover -n 1000000 (root; bird2 installed). The last
// lines are `NAME VALUE UNIT`.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/fwdproject/fwd/bench/bgp/lab"
	"github.com/fwdproject/fwd/bgp"
	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/sandbox"
	"github.com/fwdproject/fwd/internal/testnet"
)

const envSpeaker = "FWD_BGP_BENCH_SPEAKER"

func main() {
	if os.Getenv(envSpeaker) == "1" {
		os.Exit(bgp.SpeakerMain(os.Args[1:]))
	}
	n := flag.Int("n", 1000000, "prefixes each BIRD announces")
	family := flag.Int("family", 6, "address family: 4 or 6")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long per phase")
	verbose := flag.Bool("v", false, "speaker and progress logs")
	flag.Parse()
	if err := sandbox.Enter(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/bgp-failover:", err)
		os.Exit(1)
	}
	if err := run(*n, *family, *timeout, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "bench/bgp-failover:", err)
		os.Exit(1)
	}
}

type link struct{ ten, peer, plen string }

func links(family int) (a, b link, target string) {
	if family == 4 {
		return link{"192.0.2.1", "192.0.2.2", "25"}, link{"192.0.2.129", "192.0.2.130", "25"}, "198.18.0.1"
	}
	return link{"2001:db8:fffa::1", "2001:db8:fffa::2", "64"}, link{"2001:db8:fffb::1", "2001:db8:fffb::2", "64"}, "2001:db8::1"
}

func sh(argv ...string) error {
	_, err := testnet.Cmd("", argv...)
	return err
}

func run(n, family int, timeout time.Duration, verbose bool) error {
	if family != 4 && family != 6 {
		return fmt.Errorf("-family must be 4 or 6")
	}
	if n < 1 || n > lab.MaxPrefixes(family) {
		return fmt.Errorf("-n must be 1-%d for IPv%d (documentation space)", lab.MaxPrefixes(family), family)
	}
	la, lb, target := links(family)
	tlen := "/128"
	if family == 4 {
		tlen = "/32"
	}
	for _, h := range []string{"tfail", "pa", "pb"} {
		if err := testnet.AddHost(h); err != nil {
			return err
		}
	}
	cmds := [][]string{
		{"ip", "link", "add", "ta", "netns", "tfail", "type", "veth", "peer", "name", "pa0", "netns", "pa"},
		{"ip", "link", "add", "tb", "netns", "tfail", "type", "veth", "peer", "name", "pb0", "netns", "pb"},
		{"ip", "-n", "tfail", "addr", "add", la.ten + "/" + la.plen, "dev", "ta"},
		{"ip", "-n", "tfail", "addr", "add", lb.ten + "/" + lb.plen, "dev", "tb"},
		{"ip", "-n", "pa", "addr", "add", la.peer + "/" + la.plen, "dev", "pa0"},
		{"ip", "-n", "pb", "addr", "add", lb.peer + "/" + lb.plen, "dev", "pb0"},
		// The ping target lives in both peers, in the first routed prefix.
		{"ip", "-n", "pa", "addr", "add", target + tlen, "dev", "lo"},
		{"ip", "-n", "pb", "addr", "add", target + tlen, "dev", "lo"},
	}
	for _, c := range cmds {
		if family == 6 && c[3] == "addr" {
			c = append(c, "nodad")
		}
		if err := sh(c...); err != nil {
			return err
		}
	}
	for _, c := range [][]string{{"tfail", "ta"}, {"tfail", "tb"}, {"pa", "pa0"}, {"pb", "pb0"}} {
		if err := sh("ip", "-n", c[0], "link", "set", c[1], "up"); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "fwd-bench-bgp-failover")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	birdA, err := lab.StartBIRD(dir, lab.Peer{Name: "a", NS: "pa", RouterID: "198.51.100.2", Local: la.peer, Neighbor: la.ten,
		AS: 64513, TenAS: 64512, Family: family, N: n}, timeout)
	if err != nil {
		return err
	}
	defer birdA.Kill()
	birdB, err := lab.StartBIRD(dir, lab.Peer{Name: "b", NS: "pb", RouterID: "198.51.100.3", Local: lb.peer, Neighbor: lb.ten,
		AS: 64514, TenAS: 64512, Family: family, N: n, Prepend: 2}, timeout)
	if err != nil {
		return err
	}
	defer birdB.Kill()

	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	sup := bgp.NewSupervisor(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})), filepath.Join(dir, "run"))
	sup.SpeakerArgv = []string{os.Args[0]}
	sup.SpeakerEnv = []string{envSpeaker + "=1"}
	sup.WatchParent = true
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := sup.Shutdown(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "bench: speaker shutdown: %v\n", err)
		}
	}()
	cfg, err := config.Parse("bench.toml", []byte(fmt.Sprintf(`
[tenant.tfail.interface.ta]
device = "ta"
addresses = ["%s/%s"]
[tenant.tfail.interface.tb]
device = "tb"
addresses = ["%s/%s"]
[tenant.tfail.bgp]
asn = 64512
router_id = "198.51.100.1"
[[tenant.tfail.bgp.neighbor]]
address = "%s"
asn = 64513
description = "primary"
[[tenant.tfail.bgp.neighbor]]
address = "%s"
asn = 64514
description = "backup"
`, la.ten, la.plen, lb.ten, lb.plen, la.peer, lb.peer)))
	if err != nil {
		return err
	}
	ctx := context.Background()
	plan, err := sup.Plan(ctx, cfg)
	if err != nil {
		return err
	}
	if err := plan.Apply(ctx); err != nil {
		return err
	}
	speakerPID := sup.Speakers()[0].PID
	probe, err := lab.OpenProbe("tfail")
	if err != nil {
		return err
	}
	defer probe.Close()
	primary, backup := netip.MustParseAddr(la.peer), netip.MustParseAddr(lb.peer)

	// All N via the primary, both tables received.
	deadline := time.Now().Add(timeout)
	for {
		by, err := probe.ByGateway(family)
		if err != nil {
			return err
		}
		ns, _ := sup.Neighbors(ctx, "tfail")
		full := len(ns) == 2
		for _, nb := range ns {
			full = full && nb.State == "established" && nb.Accepted >= uint64(n)
		}
		if by[primary] == n && full {
			break
		}
		if verbose {
			fmt.Fprintf(os.Stderr, "via primary %d, neighbours %+v\n", by[primary], ns)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("routes not all via the primary after %v: %v", timeout, by)
		}
		time.Sleep(time.Second)
	}
	// The speaker refreshes the neighbours' prefix counts every 3 s (the
	// backup's qualification).
	time.Sleep(4 * time.Second)

	ping := exec.Command("ip", "netns", "exec", "tfail", "ping", "-n", "-q", "-i", "0.01", "-W", "1", target)
	var pingOut bytes.Buffer
	ping.Stdout = &pingOut
	if err := ping.Start(); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)

	// The primary dies: its session and its forwarding.
	kill := time.Now()
	birdA.Kill()
	if err := sh("ip", "-n", "pa", "addr", "del", target+tlen, "dev", "lo"); err != nil {
		return err
	}
	samples := func() bool {
		objs, _ := probe.Objects()
		for k := 0; k < 256; k++ {
			if probe.Gateway(lab.ProbeAddr(family, k*(n-1)/255), objs) != backup {
				return false
			}
		}
		return true
	}
	var failover time.Duration
	deadline = time.Now().Add(timeout)
	for {
		if samples() {
			at := time.Now()
			by, err := probe.ByGateway(family)
			if err != nil {
				return err
			}
			if by[backup] == n {
				failover = at.Sub(kill)
				break
			}
			if verbose {
				fmt.Fprintf(os.Stderr, "%6.2fs %v\n", time.Since(kill).Seconds(), by)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("routes not all via the backup after %v", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(time.Second)
	_ = ping.Process.Signal(syscall.SIGINT)
	_ = ping.Wait()
	sent, recv := pingStats(pingOut.String())

	fmt.Printf("family %d ipv\n", family)
	fmt.Printf("prefixes %d count\n", n)
	fmt.Printf("failover_time %.3f s\n", failover.Seconds())
	fmt.Printf("ping_lost %d packets\n", sent-recv)
	fmt.Printf("ping_loss_time %.2f s\n", float64(sent-recv)*0.01)
	fmt.Printf("speaker_peak_rss %s\n", lab.MiB(lab.PeakRSS(speakerPID)))
	fmt.Printf("daemon_peak_rss %s\n", lab.MiB(lab.PeakRSS(os.Getpid())))
	return nil
}

var pingRe = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

func pingStats(out string) (sent, recv int) {
	m := pingRe.FindStringSubmatch(out)
	if m == nil {
		return 0, 0
	}
	sent, _ = strconv.Atoi(m[1])
	recv, _ = strconv.Atoi(m[2])
	return sent, recv
}
