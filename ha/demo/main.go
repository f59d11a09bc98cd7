// Command demo is `make ha-demo`: an HA pair (keepalived + conntrackd,
// driven by package ha) on two boxes, each in its own network, mount and
// PID namespaces (internal/testkit/twobox), inside a private sandbox. A
// LAN host pings a WAN host and streams TCP through the VIP; the demo
// stops box A's keepalived and narrates the failover to B and the
// failback: which box is master, the VIP move time, the ping loss, the
// stream's survival. It never touches the machine's own network
// namespace, and it leaves nothing behind, on Ctrl-C too: every process
// and namespace it made is stopped or dies with the sandbox.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fwdproject/fwd/ha"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/sandbox"
	"github.com/fwdproject/fwd/internal/testkit/twobox"
	"github.com/fwdproject/fwd/internal/testnet"
)

func main() {
	if twobox.Name() != "" {
		// A box: Ctrl-C reaches the whole process group, but a box is
		// stopped by the demo (or dies with it), never by the terminal.
		signal.Notify(make(chan os.Signal, 1), os.Interrupt)
		twobox.Serve()
	}
	// The process outside the sandbox waits for the one inside, which
	// handles Ctrl-C itself: this one must not die of it first. A SIGTERM
	// to it kills it, and everything inside dies with it (Pdeathsig).
	signal.Notify(make(chan os.Signal, 1), os.Interrupt)
	if err := sandbox.Enter(); err != nil {
		fmt.Fprintf(os.Stderr, "ha-demo: needs root and network namespaces: %v\n", err)
		os.Exit(1)
	}
	d := &demo{start: time.Now()}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d.run() }()
	select {
	case err := <-done:
		if err != nil {
			fmt.Fprintf(os.Stderr, "ha-demo: %v\n", err)
			d.showLogs()
		}
		d.cleanup(true)
		if err != nil {
			os.Exit(1)
		}
	case s := <-sigs:
		fmt.Printf("\n== %s: stopping\n", s)
		d.cleanup(false)
		os.Exit(130)
	}
}

type demo struct {
	start time.Time
	logs  string

	mu    sync.Mutex
	boxes []*twobox.Box
	pids  []int // the boxes' pids, known without asking the box
	ping  *pinger
	tcp   *stream
	hosts []string
}

func (d *demo) say(format string, args ...any) { fmt.Printf(format+"\n", args...) }

func (d *demo) run() error {
	logs, err := os.MkdirTemp("", "fwd-ha-demo")
	if err != nil {
		return err
	}
	d.logs = logs
	d.say("fwd ha-demo: an HA pair (keepalived + conntrackd) on two boxes, each in its own")
	d.say("network, mount and PID namespaces, in a private sandbox: the machine's network is not touched.")
	d.say("")
	d.say("  lanhost 192.0.2.10 ──┬── box A  lan 192.0.2.2   wan 203.0.113.2 ──┬── wanhost 203.0.113.10")
	d.say("                       └── box B  lan 192.0.2.3   wan 203.0.113.3 ──┘")
	d.say("  VIPs %s (the LAN's gateway) and %s (SNAT source); sync link 198.18.9.0/24", lanVIP, wanVIP)
	d.say("  A priority 150, B 100; VRRP advert every 0.5 s; failback after a %s preempt delay", dur(preemptDelay))
	d.say("")

	d.say("== 1. building the hosts and the two boxes")
	if err := d.build(); err != nil {
		return err
	}
	a, b := d.boxes[0], d.boxes[1]

	d.say("== 2. box A: tenant %q, keepalived + conntrackd started by ha.Manager", tenant)
	t0 := time.Now()
	if err := up(a, 1); err != nil {
		return err
	}
	if _, err := waitVIP(a, true, 6*time.Second); err != nil {
		return err
	}
	d.say("   A is master after %s: it holds the VIPs", since(t0))
	d.say("== 3. box B: the same tenant, priority 100")
	if err := up(b, 2); err != nil {
		return err
	}
	if err := waitState(b, ha.StateBackup, 6*time.Second); err != nil {
		return err
	}
	d.say("   %s", d.masters())
	if !testnet.WaitPing("lanhost", wanHost, 3*time.Second) {
		return errors.New("the LAN host does not reach the WAN host through the VIP")
	}

	d.say("== 4. traffic from the LAN host to the WAN host through the VIP")
	p, err := startPing()
	if err != nil {
		return err
	}
	s, err := startStream()
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.ping, d.tcp = p, s
	d.mu.Unlock()
	d.say("   ping every %s; a TCP stream of 256 bytes every 10 ms", dur(pingInterval))
	time.Sleep(2 * time.Second)
	if st, err := status(b); err == nil {
		d.say("   B's conntrackd holds %d of A's flows (external cache), ready to commit them on takeover", st.Sync.ExternalFlows)
	}
	before := p.stats()
	d.say("   ping so far: %d sent, %d lost", before.sent, before.lost)

	d.say("== 5. stopping box A's keepalived (SIGTERM, as a service stop would)")
	moved := make(chan time.Time, 1)
	go func() {
		at, err := waitVIP(b, true, 6*time.Second)
		if err != nil {
			at = time.Time{}
		}
		moved <- at
	}()
	time.Sleep(50 * time.Millisecond) // the wait is polling
	t0 = time.Now()
	if _, err := a.Call("ka-term"); err != nil {
		return err
	}
	at := <-moved
	if at.IsZero() {
		return errors.New("the VIP did not move to B within 6 s")
	}
	vipMove := at.Sub(t0)
	d.say("   +%s  the VIPs are on box B (A left with a priority-0 advert: B took over at once)", dur(vipMove))
	d.say("   %s", d.masters())
	time.Sleep(time.Second)
	mid := p.stats()
	d.say("   +%s  %s (A's supervisor restarted keepalived; A waits for its preempt delay)", since(t0), d.masters())
	d.say("   ping during the failover: %d lost; TCP stream still running (B committed A's flows)", mid.lost-before.lost)

	d.say("== 6. failback: A, back as backup with the higher priority, takes mastership back after its preempt delay")
	if _, err := waitVIP(a, true, 15*time.Second); err != nil {
		return err
	}
	back := time.Since(t0)
	if _, err := waitVIP(b, false, 5*time.Second); err != nil {
		return err
	}
	d.say("   +%s  the VIPs are back on box A", dur(back))
	time.Sleep(time.Second)
	end := p.stats()
	d.say("   %s", d.masters())
	d.say("   ping during the failback: %d lost", end.lost-mid.lost)

	p.stop()
	sent, received, gap, survived := s.stop()
	end = p.stats()
	d.say("== result")
	d.say("   VIP move        %s (the issue's limit: 3 s)", dur(vipMove))
	d.say("   ping            %d sent, %d lost, longest silence %s", end.sent, end.lost, dur(end.silence))
	verdict := "survived"
	if !survived {
		verdict = "BROKEN"
	}
	d.say("   TCP stream      %s: %d bytes sent, %d received, longest silence %s", verdict, sent, received, dur(gap))
	d.say("   failback        %s after the stop, %d echoes lost", dur(back), end.lost-mid.lost)
	if !survived {
		return errors.New("the TCP stream did not survive the failover")
	}
	return nil
}

// build makes the LAN, WAN and sync segments (a bridge each, as a switch
// would be) and the two boxes plugged into them.
func (d *demo) build() error {
	for _, h := range []string{"lanhost", "wanhost", "syncseg"} {
		if err := testnet.AddHost(h); err != nil {
			return err
		}
		d.mu.Lock()
		d.hosts = append(d.hosts, h)
		d.mu.Unlock()
	}
	for _, br := range []struct{ host, addr string }{{"lanhost", lanHost + "/24"}, {"wanhost", wanHost + "/24"}, {"syncseg", ""}} {
		var addrs []string
		if br.addr != "" {
			addrs = append(addrs, br.addr)
		}
		if err := twobox.AddBridge(br.host, "br0", addrs...); err != nil {
			return err
		}
	}
	if _, err := testnet.Cmd("", "ip", "-n", "lanhost", "route", "add", "default", "via", lanVIP); err != nil {
		return err
	}
	for _, name := range []string{"a", "b"} {
		b, err := twobox.New(name, filepath.Join(d.logs, "box-"+name+".log"))
		if err != nil {
			return err
		}
		d.mu.Lock()
		d.boxes = append(d.boxes, b)
		d.pids = append(d.pids, b.Pid())
		d.mu.Unlock()
		for _, ifc := range []struct{ name, host string }{{"wan", "wanhost"}, {"lan", "lanhost"}, {"sync", "syncseg"}} {
			if err := b.AddLink(ifc.name, ifc.host, name+"-"+ifc.name, "br0"); err != nil {
				return err
			}
		}
	}
	d.say("   hosts lanhost, wanhost, switch syncseg; boxes A and B (pids %d, %d), each PID 1 of its own namespaces",
		d.boxes[0].Pid(), d.boxes[1].Pid())
	return nil
}

// cleanup stops what the demo started. After a normal end the pairs are
// stopped properly (keepalived releases the VIPs); after Ctrl-C the boxes
// are killed at once, which takes every process in them along.
func (d *demo) cleanup(graceful bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !graceful {
		// A box busy with a call (a wait for the VIP) cannot be asked
		// anything: SIGKILL its init first, which ends the call too.
		for _, pid := range d.pids {
			_ = syscall.Kill(pid, syscall.SIGKILL) // gone already is as good
		}
	}
	if d.ping != nil {
		d.ping.stop()
	}
	if d.tcp != nil && graceful {
		d.tcp.stop()
	}
	for _, b := range d.boxes {
		if graceful {
			if _, err := b.Call("ha-stop"); err != nil {
				fmt.Fprintf(os.Stderr, "ha-demo: box %s: %v\n", b.Name, err)
			}
		}
		b.Kill()
	}
	for _, h := range d.hosts {
		_ = ns.Delete(h) // the sandbox takes it along anyway
	}
	if l := twobox.Leftovers("keepalived", "conntrackd"); len(l) > 0 {
		fmt.Printf("== cleanup: still running: %s\n", strings.Join(l, ", "))
		return
	}
	if graceful {
		fmt.Println("== cleanup: keepalived and conntrackd stopped, boxes and namespaces removed; nothing left running")
	} else {
		fmt.Println("== cleanup: boxes killed with everything in them, namespaces removed; nothing left running")
	}
	if d.logs != "" {
		_ = os.RemoveAll(d.logs)
	}
}

// showLogs prints the end of each box's log (keepalived's and the
// Manager's messages) after a failure.
func (d *demo) showLogs() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, b := range d.boxes {
		out, err := os.ReadFile(filepath.Join(d.logs, "box-"+b.Name+".log"))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		fmt.Fprintf(os.Stderr, "--- box %s log (last lines):\n%s\n", b.Name, strings.Join(lines[max(0, len(lines)-30):], "\n"))
		if tail, err := b.Call("sh", "tail -n 20 /run/fwd/edge/ha/keepalived.log"); err == nil {
			fmt.Fprintf(os.Stderr, "--- box %s keepalived.log:\n%s", b.Name, tail)
		}
	}
}

// masters says which box is master, from each box's own report.
func (d *demo) masters() string {
	var parts []string
	for _, b := range d.boxes {
		st, err := status(b)
		s := string(st.State)
		if err != nil {
			s = "unreachable"
		}
		if st.State == ha.StateMaster {
			s = "MASTER"
		}
		parts = append(parts, fmt.Sprintf("box %s: %s", strings.ToUpper(b.Name), s))
	}
	return strings.Join(parts, ", ")
}

func up(b *twobox.Box, idx int) error {
	if _, err := b.Call("tenant", strconv.Itoa(idx)); err != nil {
		return err
	}
	_, err := b.Call("ha-up", strconv.Itoa(idx))
	return err
}

func status(b *twobox.Box) (ha.Status, error) {
	var st ha.Status
	out, err := b.Call("ha-status")
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal([]byte(out), &st)
}

func waitState(b *twobox.Box, want ha.State, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := status(b)
		if err == nil && st.State == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("box %s: state %s, want %s after %s (%v)", b.Name, st.State, want, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitVIP waits for the WAN VIP to be present (or absent) on box b and
// returns when the box saw it so.
func waitVIP(b *twobox.Box, present bool, timeout time.Duration) (time.Time, error) {
	want := "absent"
	if present {
		want = "present"
	}
	out, err := b.Call("wait-vip", want, strconv.Itoa(int(timeout/time.Millisecond)))
	if err != nil {
		return time.Time{}, err
	}
	n, err := strconv.ParseInt(out, 10, 64)
	return time.Unix(0, n), err
}

func since(t time.Time) string { return dur(time.Since(t)) }

func dur(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
