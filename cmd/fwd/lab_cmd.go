package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fwdproject/fwd/configs"
	"github.com/fwdproject/fwd/daemon"
	"github.com/fwdproject/fwd/engine"
	"github.com/fwdproject/fwd/internal/sandbox"
	"github.com/fwdproject/fwd/internal/testnet"
)

// labHost is a simulated machine attached to one simulated NIC.
type labHost struct {
	ns, nic, hostIf, gw string
	addrs               []string
}

var labHosts = []labHost{
	{"mgmt-host", "eth0", "mgmt0", "", []string{"198.51.100.10/24"}},
	// No route back to the LAN: its traffic can only come back through NAT.
	// 198.18.100.1 sits behind the "ISP": edge reaches it only by the route
	// it learns over BGP.
	{"wan-host", "eth1", "wan0", "", []string{"203.0.113.1/24", "2001:db8:ffff::1/64", "198.18.100.1/24"}},
	{"lan-host", "eth2", "lan0", "192.0.2.1", []string{"192.0.2.10/24", "2001:db8:1::10/64"}},
}

// labCheck is one connectivity probe: ping (port "") or a TCP connect.
type labCheck struct {
	what, from, to, port string
	want                 bool
	expect               string // TCP: substring of the server's answer
	// fn, when set, replaces ping/TCP: it says whether the check holds.
	fn func() (bool, string)
	// needs names a program the check depends on; without it, it is skipped.
	needs string
}

var labChecks = []labCheck{
	{what: "LAN host -> gateway (edge/lan)", from: "lan-host", to: "192.0.2.1", want: true},
	{what: "LAN host -> gateway over IPv6", from: "lan-host", to: "2001:db8:1::1", want: true},
	{what: "LAN host -> WAN host, masqueraded (the WAN host has no route to the LAN)", from: "lan-host", to: "203.0.113.1", want: true},
	{what: "LAN host -> WAN web server sees the public address", from: "lan-host", to: "203.0.113.1", port: "80", want: true, expect: "wan-web 203.0.113.2:"},
	{what: "WAN host -> port-forward 203.0.113.2:8080 -> LAN server", from: "wan-host", to: "203.0.113.2", port: "8080", want: true, expect: "lan-web 203.0.113.1:"},
	{what: "WAN host -> LAN server directly (no route, no forward)", from: "wan-host", to: "192.0.2.10", port: "80", want: false},
	{what: "WAN host -> SSH on the gateway (rejected)", from: "wan-host", to: "203.0.113.2", port: "22", want: false},
	{what: "blue -> edge over the veth pair", from: "blue", to: "198.18.0.0", want: true},
	{what: "blue -> WAN host through edge (static default route + NAT)", from: "blue", to: "203.0.113.1", want: true},
	{what: "WAN host -> management NIC (stays in the default namespace)", from: "wan-host", to: "198.51.100.1", want: false},
	{what: "edge learned 198.18.100.0/24 from the ISP over BGP (kernel route, proto bgp)", want: true, needs: "bird", fn: func() (bool, string) {
		return waitFor(20*time.Second, func() (bool, string) {
			out, _ := testnet.Cmd("", "ip", "-n", "edge", "route", "show", "198.18.100.0/24")
			return strings.Contains(out, "proto bgp"), strings.TrimSpace(out)
		})
	}},
	{what: "the ISP learned the LAN 192.0.2.0/24 from edge", want: true, needs: "bird", fn: func() (bool, string) {
		return waitFor(10*time.Second, func() (bool, string) {
			out, _ := testnet.Cmd("", "birdc", "-s", labBirdSock, "show", "route", "for", "192.0.2.1")
			return strings.Contains(out, "192.0.2.0/24"), ""
		})
	}},
	{what: "LAN host -> 198.18.100.1 via the BGP route", from: "lan-host", to: "198.18.100.1", want: true, needs: "bird"},
}

const labBirdSock = "/run/fwd/lab-bird.ctl"

// labBird is the ISP's router in the lab: BIRD 2 in wan-host announcing
// 198.18.100.0/24 to edge.
const labBird = `router id 203.0.113.1;
protocol device {}
protocol static isp { ipv4; route 198.18.100.0/24 blackhole; }
protocol bgp edge {
	local 203.0.113.1 as 64600;
	neighbor 203.0.113.2 as 64512;
	hold time 6;
	connect delay time 1;
	connect retry time 2;
	error wait time 1, 2;
	ipv4 { import all; export all; };
}
`

func startLabBird() (func(), error) {
	if err := os.WriteFile("/run/fwd/lab-bird.conf", []byte(labBird), 0o644); err != nil {
		return nil, err
	}
	c := exec.Command("ip", "netns", "exec", "wan-host", "bird", "-f", "-c", "/run/fwd/lab-bird.conf", "-s", labBirdSock, "-P", "/run/fwd/lab-bird.pid")
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.Start(); err != nil {
		return nil, err
	}
	return func() { c.Process.Kill(); c.Wait() }, nil
}

func waitFor(timeout time.Duration, cond func() (bool, string)) (bool, string) {
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok || time.Now().After(deadline) {
			return ok, detail
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (c labCheck) run() (bool, string) {
	if c.fn != nil {
		return c.fn()
	}
	if c.port == "" {
		if c.want {
			return testnet.WaitPing(c.from, c.to, 3*time.Second), ""
		}
		return testnet.Ping(c.from, c.to), ""
	}
	out, err := testnet.DialTCP(c.from, net.JoinHostPort(c.to, c.port), 2*time.Second)
	if err != nil {
		return false, err.Error()
	}
	out = strings.TrimSpace(out)
	return strings.Contains(out, c.expect), "answer: " + out
}

func init() {
	l := &command{name: "lab", args: "[-c FILE] [--check] [--shell]", summary: "build a self-contained lab in a private sandbox and run the daemon in it"}
	l.run = func(args []string) int {
		fs := flags(l, nil)
		cfgPath := fs.String("c", "", "lab configuration `file` (default: the embedded configs/lab.toml)")
		check := fs.Bool("check", false, "run the connectivity checks and exit (0 if all pass)")
		shell := fs.Bool("shell", false, "open a shell inside the sandbox once the lab is up")
		if code := parse(fs, args); code >= 0 {
			return code
		}
		if !sandbox.Inside() {
			fmt.Println("fwd lab: entering a private network+mount namespace; the machine's network is not touched")
		}
		if err := sandbox.Enter(); err != nil {
			return fail("lab needs root and network namespaces: %v", err)
		}
		return runLab(*cfgPath, *check, *shell)
	}
	register(l)
}

func runLab(cfgPath string, check, shell bool) int {
	if cfgPath == "" {
		data, err := configs.FS.ReadFile("lab.toml")
		if err != nil {
			return fail("%v", err)
		}
		cfgPath = "/run/fwd/lab.toml"
		if err := os.WriteFile(cfgPath, data, 0o644); err != nil {
			return fail("%v", err)
		}
	}
	fmt.Println("== building simulated hosts and NICs")
	for _, h := range labHosts {
		if err := testnet.AddHost(h.ns); err != nil {
			return fail("%v", err)
		}
		var gw netip.Addr
		if h.gw != "" {
			gw = netip.MustParseAddr(h.gw)
		}
		if err := testnet.AddNIC(h.nic, "", h.ns, h.hostIf, gw, h.addrs...); err != nil {
			return fail("%v", err)
		}
		fmt.Printf("   NIC %-5s <-> %s (%s)\n", h.nic, h.ns, h.addrs[0])
	}
	testnet.Cmd("", "ip", "addr", "add", "198.51.100.1/24", "dev", "eth0")
	testnet.Cmd("", "ip", "link", "set", "eth0", "up")

	_, birdErr := exec.LookPath("bird")
	if birdErr == nil {
		stop, err := startLabBird()
		if err != nil {
			return fail("start BIRD: %v", err)
		}
		defer stop()
		fmt.Println("   BIRD 2 in wan-host plays the ISP (AS 64600, announces 198.18.100.0/24)")
	} else {
		fmt.Println("   bird not installed (apt-get install bird2): the BGP checks are skipped")
	}
	// Whatever happens, the lab leaves nothing running: BGP speakers are
	// designed to outlive the daemon, so the lab tears down explicitly.
	self, _ := os.Executable()
	defer func() {
		td := exec.Command(self, "teardown", "-y")
		td.Run()
	}()

	fmt.Printf("== starting the fwd daemon with %s\n", cfgPath)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	applied := make(chan error, 8)
	log := newLogger("text", slog.LevelInfo)
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{ConfigPath: cfgPath, PidFile: "/run/fwd/fwd.pid", Log: log,
			Applied: func(rep *engine.Report, err error) { applied <- err }})
	}()
	select {
	case err := <-applied:
		if err != nil {
			return fail("apply: %v", err)
		}
	case err := <-done:
		return fail("daemon: %v", err)
	case <-time.After(30 * time.Second):
		return fail("daemon did not apply within 30s")
	}
	fmt.Println("== connectivity")
	for _, srv := range []struct{ ns, addr, reply string }{
		{"lan-host", "192.0.2.10:80", "lan-web"},
		{"wan-host", "203.0.113.1:80", "wan-web"},
	} {
		l, err := testnet.ServeTCP(srv.ns, srv.addr, srv.reply)
		if err != nil {
			return fail("%v", err)
		}
		defer l.Close()
	}
	failed := 0
	for _, c := range labChecks {
		if c.needs != "" {
			if _, err := exec.LookPath(c.needs); err != nil {
				fmt.Printf("   skip %s: %s is not installed\n", c.what, c.needs)
				continue
			}
		}
		got, detail := c.run()
		mark := "ok  "
		if got != c.want {
			mark, failed = "FAIL", failed+1
		}
		verb := "reaches"
		if !got {
			verb = "does not reach"
		}
		to := c.to
		if c.port != "" {
			to = net.JoinHostPort(c.to, c.port) + "/tcp"
		}
		if detail != "" {
			detail = " (" + detail + ")"
		}
		if c.fn != nil {
			fmt.Printf("   %s %s%s\n", mark, c.what, detail)
			continue
		}
		fmt.Printf("   %s %s: %s %s %s%s\n", mark, c.what, c.from, verb, to, detail)
	}
	for _, args := range [][]string{{"show"}, {"show", "rules", "-c", cfgPath, "edge"}, {"show", "routes", "-c", cfgPath, "--table", "main"}, {"bgp", "show", "edge"}} {
		show := exec.Command(self, args...)
		show.Stdout, show.Stderr = os.Stdout, os.Stderr
		fmt.Printf("== fwd %s\n", strings.Join(args, " "))
		show.Run()
	}
	if failed > 0 {
		fmt.Printf("== %d checks failed\n", failed)
	} else {
		fmt.Println("== all checks passed")
	}
	if check {
		cancel()
		<-done
		if failed > 0 {
			return exitFailure
		}
		return exitOK
	}
	if shell {
		sh := os.Getenv("SHELL")
		if sh == "" {
			sh = "/bin/sh"
		}
		fmt.Println("== shell inside the lab sandbox: try 'fwd show', 'ip netns exec lan-host ping 203.0.113.1', 'kill -HUP $(cat /run/fwd/fwd.pid)'; exit to stop")
		c := exec.Command(sh)
		c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
		c.Env = append(os.Environ(), "PS1=fwd-lab# ")
		c.Run()
		cancel()
		<-done
		return exitOK
	}
	fmt.Println("== lab running; Ctrl-C stops it and removes everything")
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sigs:
	case <-done:
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	fmt.Println("== lab stopped; the sandbox and everything in it are gone")
	return exitOK
}
