//go:build kernel

package ha

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fwdproject/fwd/internal/testkit/twobox"
	"github.com/fwdproject/fwd/internal/testnet"
)

// twoBoxes builds the two-box topology: LAN host and WAN host namespaces each
// holding a bridge both boxes plug into, a sync segment (a bridge, as a
// switch would be), and in each box the tenant with its HA pair, A
// (priority 150) master and B (100) backup.
//
//	lanhost br0 192.0.2.10 ── a/lan 192.0.2.2, b/lan 192.0.2.3   (VIP .1)
//	wanhost br0 203.0.113.10 ─ a/wan 203.0.113.2, b/wan .3       (VIP .1)
//	syncseg br0 ────────────── a/sync 198.18.9.1, b/sync 198.18.9.2
func twoBoxes(t *testing.T) (a, b *twobox.Box) {
	for _, h := range []string{"lanhost", "wanhost", "syncseg"} {
		testnet.Host(t, h)
	}
	twobox.Bridge(t, "lanhost", "br0", lanHost+"/24")
	twobox.Bridge(t, "wanhost", "br0", wanHost+"/24")
	twobox.Bridge(t, "syncseg", "br0")
	testnet.MustCmd(t, "", "ip", "-n", "lanhost", "route", "add", "default", "via", lanVIP)
	a, b = twobox.Start(t, "a"), twobox.Start(t, "b")
	for _, x := range []*twobox.Box{a, b} {
		for _, ifc := range []struct{ name, host string }{{"wan", "wanhost"}, {"lan", "lanhost"}, {"sync", "syncseg"}} {
			x.Link(t, ifc.name, ifc.host, x.Name+"-"+ifc.name, "br0")
		}
	}
	t.Cleanup(func() {
		// Every keepalived and conntrackd this test started is gone: the
		// supervisor stopped them, or they died with their box.
		_, _ = a.Call("ha-stop")
		_, _ = b.Call("ha-stop")
		for _, x := range []*twobox.Box{a, b} {
			if out, err := x.Call("sh", "pgrep -l -x keepalived; pgrep -l -x conntrackd; true"); err == nil && strings.TrimSpace(out) != "" {
				t.Errorf("box %s: left running after stop:\n%s", x.Name, out)
			}
		}
		a.Kill()
		b.Kill()
		if l := twobox.Leftovers("keepalived", "conntrackd"); len(l) > 0 {
			t.Errorf("left running: %v", l)
		}
	})
	bringUp(t, a, 1)
	waitVIP(t, a, true, 6*time.Second)
	bringUp(t, b, 2)
	waitBoxState(t, b, StateBackup, 5*time.Second)
	if !testnet.WaitPing("lanhost", wanHost, 3*time.Second) {
		t.Fatal("LAN host does not reach the WAN host through the pair")
	}
	return a, b
}

func bringUp(t *testing.T, x *twobox.Box, idx int) {
	t.Helper()
	x.MustCall(t, "tenant", strconv.Itoa(idx))
	x.MustCall(t, "ha-up", strconv.Itoa(idx))
}

func status(t *testing.T, x *twobox.Box) Status {
	t.Helper()
	var st Status
	if err := json.Unmarshal([]byte(x.MustCall(t, "ha-status")), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func waitBoxState(t *testing.T, x *twobox.Box, want State, timeout time.Duration) Status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := status(t, x)
		if st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("box %s: state %s, want %s after %s", x.Name, st.State, want, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitVIP waits for the WAN VIP to be present (or absent) on box x and
// returns when it was seen so.
func waitVIP(t *testing.T, x *twobox.Box, present bool, timeout time.Duration) time.Time {
	t.Helper()
	want := "absent"
	if present {
		want = "present"
	}
	out, err := x.Call("wait-vip", want, strconv.Itoa(int(timeout/time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	ns, _ := strconv.ParseInt(out, 10, 64)
	return time.Unix(0, ns)
}

// outcome is what one failover scenario measured.
type outcome struct {
	vipMove     time.Duration   // event → VIP on B
	pingGaps    []time.Duration // runs of lost echoes, in order
	pingSilence time.Duration   // longest time without an echo reply (lost or late)
	sent        int
	tcpGap      time.Duration // longest silence of the TCP stream
}

// failover runs traffic, fires event (A fails somehow), measures the VIP
// move to B, then runs restore (A comes back) and waits for failback.
func failover(t *testing.T, a, b *twobox.Box, event, restore func()) outcome {
	t.Helper()
	ping, tcp := startPing(t), startStream(t)
	time.Sleep(1500 * time.Millisecond) // the stream's flow reaches B's external cache
	if st := status(t, b); st.Sync.ExternalFlows == 0 {
		t.Errorf("B holds no flow from A before the failover: %+v", st.Sync)
	}
	moved := make(chan time.Time, 1)
	go func() {
		out, err := b.Call("wait-vip", "present", "6000")
		ns, _ := strconv.ParseInt(out, 10, 64)
		if err != nil {
			ns = 0
		}
		moved <- time.Unix(0, ns)
	}()
	time.Sleep(50 * time.Millisecond) // the wait is polling
	t0 := time.Now()
	event()
	at := <-moved
	if at.Unix() == 0 {
		t.Fatal("the VIP did not move to B within 6 s")
	}
	o := outcome{vipMove: at.Sub(t0)}
	if o.vipMove > 3*time.Second {
		t.Errorf("VIP moved in %s, want ≤ 3 s", o.vipMove)
	}
	time.Sleep(time.Second)
	snap, _ := b.Call("sh", "ip netns exec edge conntrack -L 2>&1; ip netns exec edge nft list table inet hatest; ip -n edge neigh; ip -n edge -br addr; ip netns exec edge conntrackd -C /run/fwd/edge/ha/conntrackd.conf -e 2>&1 | head; tail -5 /run/fwd/edge/ha/notify.log")
	snapL, _ := testnet.Cmd("", "sh", "-c", "ip -n lanhost neigh; ip -n wanhost neigh; bridge -n lanhost fdb show br br0 | grep -v permanent")
	restore()
	waitVIP(t, a, true, 15*time.Second)
	waitVIP(t, b, false, 5*time.Second)
	time.Sleep(time.Second)
	var lost int
	o.pingGaps, o.sent, lost, o.pingSilence = ping.stop()
	var survived bool
	var detail string
	o.tcpGap, survived, detail = tcp.stop(t)
	t.Logf("VIP move %s; ping: %d sent, %d lost, outages %v, longest silence %s; TCP stream: longest silence %s, survived %v (%s)",
		o.vipMove.Round(time.Millisecond), o.sent, lost, o.pingGaps, o.pingSilence.Round(time.Millisecond), o.tcpGap.Round(time.Millisecond), survived, detail)
	if o.pingSilence > 3500*time.Millisecond {
		t.Errorf("traffic stopped for %s, want ≤ 3.5 s; B one second after the move:\n%s\nhosts:\n%s", o.pingSilence, snap, snapL)
	}
	if !survived {
		t.Errorf("the TCP stream did not survive: %s", detail)
	}
	if len(o.pingGaps) > 1 {
		first, rest := o.pingGaps[0], sortedDurations(o.pingGaps[1:])[0]
		if rest > first+2*pingInterval {
			t.Errorf("failback outage %s is longer than the failover's %s", rest, first)
		}
	}
	return o
}

func TestFailover(t *testing.T) {
	a, b := twoBoxes(t)
	a.MustCall(t, "ka-test")

	t.Run("vip-change-reloads", func(t *testing.T) {
		pid := a.MustCall(t, "ka-pid")
		a.MustCall(t, "ha-up", "1", "extra")
		if !testnet.WaitPing("lanhost", "192.0.2.100", 3*time.Second) {
			t.Error("new VIP not held after reload")
		}
		a.MustCall(t, "ha-up", "1")
		if got := a.MustCall(t, "ka-pid"); got != pid {
			t.Errorf("keepalived restarted (pid %s → %s), want a SIGHUP reload", pid, got)
		}
		waitBoxState(t, a, StateMaster, 3*time.Second)
	})

	t.Run("keepalived-stopped", func(t *testing.T) {
		// SIGTERM: keepalived leaves with a priority-0 advert; the
		// supervisor restarts it and A preempts after its delay.
		failover(t, a, b, func() { a.MustCall(t, "ka-term") }, func() {})
	})

	t.Run("wan-link-down", func(t *testing.T) {
		// The cable of A's WAN port is pulled: track_interface puts A in
		// FAULT.
		failover(t, a, b,
			func() { testnet.MustCmd(t, "", "ip", "-n", "wanhost", "link", "set", "a-wan", "down") },
			func() { testnet.MustCmd(t, "", "ip", "-n", "wanhost", "link", "set", "a-wan", "up") })
		if st := status(t, a); st.State != StateMaster {
			t.Errorf("A after failback: %s", st.State)
		}
	})

	t.Run("box-killed", func(t *testing.T) {
		// kill -9 of box A's whole process tree: no advert at all, B
		// takes over after the master-down timer.
		failover(t, a, b, func() {
			a.Kill()
			for _, l := range twobox.Leftovers("keepalived", "conntrackd") {
				if !strings.HasSuffix(l, "in box b") {
					t.Errorf("after kill -9 of box A: %s", l)
				}
			}
		}, func() {
			if err := a.Restart(); err != nil {
				t.Fatal(err)
			}
			bringUp(t, a, 1)
		})
	})

	t.Run("graceful-failover", func(t *testing.T) {
		// fwd ha failover: A steps down at once and stays backup until
		// Resume; then it takes mastership back after the preempt delay.
		failover(t, a, b, func() { a.MustCall(t, "failover") }, func() {
			if st := status(t, a); st.State != StateBackup || !st.FailoverHeld || st.Priority != 1 {
				t.Errorf("A after Failover: state %s held %v priority %d, want backup, held, 1", st.State, st.FailoverHeld, st.Priority)
			}
			a.MustCall(t, "resume")
		})
	})

	t.Run("split-brain", func(t *testing.T) {
		// The sync link fails on A's side while both boxes live: neither
		// hears the other, both are master (dont_track_primary: see
		// docs/ha.md). fwd flags A (master, sync link down); B cannot tell
		// a dead peer from a cut link. When the link returns, the higher
		// priority wins and B steps back.
		ping := startPing(t)
		testnet.MustCmd(t, "", "ip", "-n", "syncseg", "link", "set", "a-sync", "down")
		waitVIP(t, b, true, 4*time.Second)
		waitBoxState(t, b, StateMaster, time.Second) // the notify script runs after the VIPs are set
		sa, sb := status(t, a), status(t, b)
		t.Logf("sync link down: A %s (sync link up %v, split-brain risk %v), B %s (sync link up %v, split-brain risk %v)",
			sa.State, sa.SyncLinkUp, sa.SplitBrainRisk, sb.State, sb.SyncLinkUp, sb.SplitBrainRisk)
		if sa.State != StateMaster || sb.State != StateMaster || !sa.SplitBrainRisk || sa.SyncLinkUp || sb.SplitBrainRisk {
			t.Errorf("want both master, A flagged: A %+v B %+v", sa, sb)
		}
		time.Sleep(time.Second)
		testnet.MustCmd(t, "", "ip", "-n", "syncseg", "link", "set", "a-sync", "up")
		healed := time.Now()
		waitVIP(t, b, false, 5*time.Second)
		t.Logf("healed: B back to backup in %s", time.Since(healed).Round(time.Millisecond))
		waitBoxState(t, a, StateMaster, time.Second)
		time.Sleep(time.Second)
		gaps, sent, lost, silence := ping.stop()
		t.Logf("split brain: ping %d sent, %d lost, outages %v, longest silence %s", sent, lost, gaps, silence.Round(time.Millisecond))
	})
}
