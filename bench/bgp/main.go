// Command bgp benchmarks a tenant's BGP speaker end to end inside a
// sandbox: a BIRD 2 peer announces N prefixes (static blackhole routes in
// documentation space: IPv6 /56s under 2001:db8::/32, or with -family 4
// every prefix of 198.18.0.0/15, at most 262,143), fwd's speaker installs
// them into the tenant's kernel table, then BIRD shuts the session down
// and the speaker removes them. Run: go run ./bench/bgp -n 1000000 (root;
// bird2 installed). The last lines are `NAME VALUE UNIT`.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
	// This binary is also the speaker the supervisor starts.
	if os.Getenv(envSpeaker) == "1" {
		os.Exit(bgp.SpeakerMain(os.Args[1:]))
	}
	n := flag.Int("n", 1000000, "prefixes BIRD announces")
	family := flag.Int("family", 6, "address family of the prefixes and the session: 4 or 6")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long per phase")
	heap := flag.String("heapprofile", "", "write the speaker's heap profile, taken once all routes are in, to this `file`")
	verbose := flag.Bool("v", false, "speaker and progress logs")
	flag.Parse()
	if err := sandbox.Enter(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/bgp:", err)
		os.Exit(1)
	}
	if err := run(*n, *family, *timeout, *heap, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "bench/bgp:", err)
		os.Exit(1)
	}
}

func sh(argv ...string) error {
	_, err := testnet.Cmd("", argv...)
	return err
}

// pollPause spaces full counts by at least their own duration: dumping a
// large table costs the kernel real CPU, charged to whoever asks.
func pollPause(last time.Duration) { time.Sleep(max(250*time.Millisecond, last)) }

// addrs of the benchmark's link: tenant, BIRD, prefix length.
func addrs(family int) (string, string, string) {
	if family == 4 {
		return "192.0.2.1", "192.0.2.2", "24"
	}
	return "2001:db8:ffff::1", "2001:db8:ffff::2", "64"
}

func run(n, family int, timeout time.Duration, heap string, verbose bool) error {
	if family != 4 && family != 6 {
		return fmt.Errorf("-family must be 4 or 6")
	}
	if n < 1 || n > lab.MaxPrefixes(family) {
		return fmt.Errorf("-n must be 1-%d for IPv%d (documentation space)", lab.MaxPrefixes(family), family)
	}
	ten, peer, plen := addrs(family)
	for _, h := range []string{"tbench", "pbench"} {
		if err := testnet.AddHost(h); err != nil {
			return err
		}
	}
	for _, argv := range [][]string{
		{"ip", "link", "add", "t0", "netns", "tbench", "type", "veth", "peer", "name", "p0", "netns", "pbench"},
		{"ip", "-n", "tbench", "addr", "add", ten + "/" + plen, "dev", "t0", "nodad"},
		{"ip", "-n", "pbench", "addr", "add", peer + "/" + plen, "dev", "p0", "nodad"},
		{"ip", "-n", "tbench", "link", "set", "t0", "up"},
		{"ip", "-n", "pbench", "link", "set", "p0", "up"},
	} {
		if family == 4 && len(argv) > 6 && argv[len(argv)-1] == "nodad" {
			argv = argv[:len(argv)-1]
		}
		if err := sh(argv...); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "fwd-bench-bgp")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	t0 := time.Now()
	bird, err := lab.StartBIRD(dir, lab.Peer{Name: "bird", NS: "pbench", RouterID: "198.51.100.2", Local: peer, Neighbor: ten,
		AS: 64513, TenAS: 64512, Family: family, N: n}, timeout)
	if err != nil {
		return err
	}
	defer bird.Kill()
	if verbose {
		fmt.Fprintf(os.Stderr, "BIRD loaded %d routes in %v\n", n, time.Since(t0).Round(time.Millisecond))
	}
	probe, err := lab.OpenProbe("tbench")
	if err != nil {
		return err
	}
	defer probe.Close()
	base, err := probe.Count(family)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	sup := bgp.NewSupervisor(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})), filepath.Join(dir, "run"))
	sup.SpeakerArgv = []string{os.Args[0]}
	sup.SpeakerEnv = []string{envSpeaker + "=1"}
	if heap != "" {
		abs, err := filepath.Abs(heap)
		if err != nil {
			return err
		}
		sup.SpeakerEnv = append(sup.SpeakerEnv, "FWD_BGP_HEAPPROFILE="+abs)
	}
	sup.WatchParent = true
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := sup.Shutdown(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "bench: speaker shutdown: %v\n", err)
		}
	}()
	cfg, err := config.Parse("bench.toml", []byte(fmt.Sprintf(`
[tenant.tbench.interface.t0]
device = "t0"
addresses = ["%s/%s"]
[tenant.tbench.bgp]
asn = 64512
router_id = "198.51.100.1"
[[tenant.tbench.bgp.neighbor]]
address = "%s"
asn = 64513
`, ten, plen, peer)))
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

	// Session establishment.
	deadline := time.Now().Add(timeout)
	for {
		ns, err := sup.Neighbors(ctx, "tbench")
		if err == nil && len(ns) == 1 && ns[0].State == "established" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("session not established")
		}
		time.Sleep(20 * time.Millisecond)
	}
	established := time.Now()
	if verbose {
		fmt.Fprintln(os.Stderr, "session established")
	}
	// Cheap progress probe: point lookups of 256 prefixes spread over the
	// set; the full (expensive) count runs only once they all agree.
	samples := func(present bool) bool {
		objs, _ := probe.Objects()
		for k := 0; k < 256; k++ {
			if probe.Gateway(lab.ProbeAddr(family, k*(n-1)/255), objs).IsValid() != present {
				return false
			}
		}
		return true
	}
	wait := func(present bool, since time.Time) (time.Duration, error) {
		deadline := time.Now().Add(timeout)
		last := -1
		for {
			if !samples(present) {
				if time.Now().After(deadline) {
					return 0, fmt.Errorf("routes not all %s after %v", map[bool]string{true: "in", false: "out"}[present], timeout)
				}
				time.Sleep(20 * time.Millisecond)
				continue
			}
			at := time.Now()
			c, err := probe.Count(family)
			dump := time.Since(at)
			if err != nil {
				return 0, err
			}
			if (present && c-base >= n) || (!present && c <= base) {
				return at.Sub(since), nil
			}
			if verbose && c != last {
				fmt.Fprintf(os.Stderr, "%6.1fs %d routes\n", time.Since(since).Seconds(), c-base)
			}
			last = c
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("%d of %d routes in the kernel after %v", c-base, n, timeout)
			}
			pollPause(dump)
		}
	}
	installTime, err := wait(true, established)
	if err != nil {
		return err
	}
	if heap != "" {
		if err := syscall.Kill(speakerPID, syscall.SIGUSR1); err != nil {
			return fmt.Errorf("heap profile: %w", err)
		}
		time.Sleep(2 * time.Second)
	}
	// BIRD stops: a Cease notification, the speaker withdraws everything.
	down := time.Now()
	if err := bird.Down(); err != nil {
		return err
	}
	withdrawTime, err := wait(false, down)
	if err != nil {
		return err
	}
	fmt.Printf("family %d ipv\n", family)
	fmt.Printf("prefixes %d count\n", n)
	fmt.Printf("install_time %.2f s\n", installTime.Seconds())
	fmt.Printf("install_rate %.0f routes/s\n", float64(n)/installTime.Seconds())
	fmt.Printf("speaker_peak_rss %s\n", lab.MiB(lab.PeakRSS(speakerPID)))
	fmt.Printf("daemon_peak_rss %s\n", lab.MiB(lab.PeakRSS(os.Getpid())))
	fmt.Printf("withdraw_time %.2f s\n", withdrawTime.Seconds())
	return nil
}
