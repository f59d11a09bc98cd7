// Command bgp benchmarks a tenant's BGP speaker end to end inside a
// sandbox: a BIRD 2 peer announces N IPv6 prefixes (static blackhole
// routes under 2001:db8::/32, so any N up to 16M stays in the
// documentation range), fwd's speaker installs them into the tenant's
// kernel table, then BIRD shuts the session down and the speaker removes
// them. Run: go run ./bench/bgp -n 1000000 (root; bird2 installed).
// The last lines are `NAME VALUE UNIT`.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fwdproject/fwd/bgp"
	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/rtnl"
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
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long per phase")
	verbose := flag.Bool("v", false, "speaker and progress logs")
	flag.Parse()
	if err := sandbox.Enter(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/bgp:", err)
		os.Exit(1)
	}
	if err := run(*n, *timeout, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "bench/bgp:", err)
		os.Exit(1)
	}
}

func sh(argv ...string) error {
	_, err := testnet.Cmd("", argv...)
	return err
}

// routeCount counts the IPv6 routes carrying the speaker's protocol in a
// namespace with one rtnl dump, filtered by protocol in the kernel and
// counted without decoding next hops (reading /proc/net/ipv6_route is
// quadratic and would steal the CPU being measured).
func routeCount(nsName string) (int, error) {
	h, err := ns.Open(nsName)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	c, err := rtnl.Open(h)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.CountRoutes(rtnl.Filter{Family: 6, Protocol: bgp.Protocol})
}

var lastDump time.Duration

// pollCount is routeCount, timed: dumping a large IPv6 table costs the
// kernel real CPU, charged to whoever asks, so pollPause spaces the
// benchmark's full counts by at least their own duration.
func pollCount(ns string) (int, error) {
	t := time.Now()
	n, err := routeCount(ns)
	lastDump = time.Since(t)
	return n, err
}

func pollPause() { time.Sleep(max(250*time.Millisecond, lastDump)) }

func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func run(n int, timeout time.Duration, verbose bool) error {
	if n < 1 || n > 1<<24 {
		return fmt.Errorf("-n must be 1-16777216")
	}
	for _, h := range []string{"tbench", "pbench"} {
		if err := testnet.AddHost(h); err != nil {
			return err
		}
	}
	for _, argv := range [][]string{
		{"ip", "link", "add", "t0", "netns", "tbench", "type", "veth", "peer", "name", "p0", "netns", "pbench"},
		{"ip", "-n", "tbench", "addr", "add", "2001:db8:ffff::1/64", "dev", "t0", "nodad"},
		{"ip", "-n", "pbench", "addr", "add", "2001:db8:ffff::2/64", "dev", "p0", "nodad"},
		{"ip", "-n", "tbench", "link", "set", "t0", "up"},
		{"ip", "-n", "pbench", "link", "set", "p0", "up"},
	} {
		if err := sh(argv...); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "fwd-bench-bgp")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// BIRD: N static blackhole routes exported over BGP.
	var conf bytes.Buffer
	fmt.Fprintf(&conf, "router id 198.51.100.2;\nprotocol device {}\nprotocol static bench { ipv6;\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&conf, "  route 2001:db8:%x:%x00::/56 blackhole;\n", i>>8, i&0xff)
	}
	fmt.Fprintf(&conf, `};
protocol bgp fwd {
	local 2001:db8:ffff::2 as 64513;
	neighbor 2001:db8:ffff::1 as 64512;
	hold time 90;
	connect delay time 1;
	ipv6 { import none; export all; };
}
`)
	birdConf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(birdConf, conf.Bytes(), 0o644); err != nil {
		return err
	}
	birdSock := filepath.Join(dir, "bird.ctl")
	t0 := time.Now()
	bird := exec.Command("ip", "netns", "exec", "pbench", "bird", "-f", "-c", birdConf, "-s", birdSock, "-P", filepath.Join(dir, "bird.pid"))
	bird.Stderr = os.Stderr
	if err := bird.Start(); err != nil {
		return fmt.Errorf("bird: %w", err)
	}
	defer func() {
		// BIRD is normally told to stop below; this only cleans up.
		_ = bird.Process.Kill()
		_ = bird.Wait()
	}()
	for {
		if out, err := exec.Command("birdc", "-s", birdSock, "show", "protocols", "bench").CombinedOutput(); err == nil && strings.Contains(string(out), "up") {
			break
		}
		if time.Since(t0) > timeout {
			return fmt.Errorf("BIRD did not start")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if verbose {
		fmt.Fprintf(os.Stderr, "BIRD loaded %d routes in %v\n", n, time.Since(t0).Round(time.Millisecond))
	}

	base, err := routeCount("tbench")
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
	sup.WatchParent = true
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := sup.Shutdown(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "bench: speaker shutdown: %v\n", err)
		}
	}()
	cfg, err := config.Parse("bench.toml", []byte(`
[tenant.tbench.interface.t0]
device = "t0"
addresses = ["2001:db8:ffff::1/64"]
[tenant.tbench.bgp]
asn = 64512
router_id = "198.51.100.1"
[[tenant.tbench.bgp.neighbor]]
address = "2001:db8:ffff::2"
asn = 64513
`))
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
	th, err := ns.Open("tbench")
	if err != nil {
		return err
	}
	probe, err := rtnl.Open(th)
	th.Close()
	if err != nil {
		return err
	}
	defer probe.Close()
	// Cheap progress probe: point lookups of 256 prefixes spread over the
	// set; the full (expensive) count runs only once they all agree.
	samples := func(present bool) bool {
		for k := 0; k < 256; k++ {
			i := k * (n - 1) / 255
			ip := netip.MustParseAddr(fmt.Sprintf("2001:db8:%x:%x00::1", i>>8, i&0xff))
			r, err := probe.Lookup(ip)
			got := err == nil && len(r.NextHops) > 0 && r.NextHops[0].Gw.IsValid()
			if got != present {
				return false
			}
		}
		return true
	}
	var installTime time.Duration
	last := -1
	for {
		if !samples(true) {
			if time.Now().After(deadline) {
				return fmt.Errorf("routes not in the kernel after %v", timeout)
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		at := time.Now()
		c, err := pollCount("tbench")
		if err != nil {
			return err
		}
		if c-base >= n {
			installTime = at.Sub(established)
			break
		}
		if verbose && c != last {
			fmt.Fprintf(os.Stderr, "%6.1fs %d routes\n", time.Since(established).Seconds(), c-base)
		}
		last = c
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d routes in the kernel after %v", c-base, n, timeout)
		}
		pollPause()
	}

	// BIRD stops: a Cease notification, the speaker withdraws everything.
	down := time.Now()
	if out, err := exec.Command("birdc", "-s", birdSock, "down").CombinedOutput(); err != nil {
		return fmt.Errorf("birdc down: %v: %s", err, out)
	}
	deadline = time.Now().Add(timeout)
	var withdrawTime time.Duration
	for {
		if !samples(false) {
			if time.Now().After(deadline) {
				return fmt.Errorf("routes still in the kernel after %v", timeout)
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		at := time.Now()
		c, err := pollCount("tbench")
		if err != nil {
			return err
		}
		if c <= base {
			withdrawTime = at.Sub(down)
			break
		}
		if verbose && c != last {
			fmt.Fprintf(os.Stderr, "%6.1fs %d routes left\n", time.Since(down).Seconds(), c-base)
		}
		last = c
		if time.Now().After(deadline) {
			return fmt.Errorf("%d routes left after %v", c-base, timeout)
		}
		pollPause()
	}
	if err := bird.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop bird: %w", err)
	}

	fmt.Printf("prefixes %d count\n", n)
	fmt.Printf("install_time %.2f s\n", installTime.Seconds())
	fmt.Printf("install_rate %.0f routes/s\n", float64(n)/installTime.Seconds())
	fmt.Printf("speaker_peak_rss %.1f MiB\n", float64(peakRSS(speakerPID))/(1<<20))
	fmt.Printf("daemon_peak_rss %.1f MiB\n", float64(peakRSS(os.Getpid()))/(1<<20))
	fmt.Printf("withdraw_time %.2f s\n", withdrawTime.Seconds())
	return nil
}
