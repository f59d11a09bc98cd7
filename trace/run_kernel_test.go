//go:build kernel

package trace

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fwdproject/fwd/config"
	"github.com/fwdproject/fwd/engine"
	"github.com/fwdproject/fwd/internal/ns"
	"github.com/fwdproject/fwd/internal/testkit"
	"github.com/fwdproject/fwd/internal/testnet"
	"github.com/fwdproject/fwd/policy"
	"github.com/vishvananda/netns"
)

const traceConfig = `
[tenant.tr.interface.lan0]
device = "y1"
addresses = ["192.0.2.1/24"]
[tenant.tr.interface.wan0]
device = "y2"
addresses = ["203.0.113.1/24"]
[tenant.tr.zone.lan]
interfaces = ["lan0"]
[tenant.tr.zone.wan]
interfaces = ["wan0"]
[[tenant.tr.rule]]
name = "web-in"
from = "wan"
to = "lan"
proto = "tcp"
dport = 80
action = "accept"
[[tenant.tr.rule]]
name = "no-81"
from = "wan"
to = "lan"
proto = "tcp"
dport = 81
action = "reject"
`

func setup(t *testing.T) netns.NsHandle {
	t.Helper()
	testkit.Require(t)
	testnet.Host(t, "thwan")
	testnet.Host(t, "thlan")
	testnet.NIC(t, "y2", "thwan", "eth0", netip.MustParseAddr("203.0.113.1"), "203.0.113.2/24")
	testnet.NIC(t, "y1", "thlan", "eth0", netip.MustParseAddr("192.0.2.1"), "192.0.2.10/24")
	eng, err := engine.New(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = eng.Apply(context.Background(), &config.Config{}, false)
		eng.Close()
	})
	if _, err := eng.Apply(context.Background(), testkit.Config(t, traceConfig), false); err != nil {
		t.Fatal(err)
	}
	for _, port := range []int{80, 81} {
		var l net.Listener
		if err := ns.DoNamed("thlan", func() (err error) { l, err = net.Listen("tcp", fmt.Sprintf(":%d", port)); return }); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	h, err := ns.Open("tr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func dial(t *testing.T, addr string) {
	t.Helper()
	_ = ns.DoNamed("thwan", func() error {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return nil
	})
}

func traceChains(t *testing.T, h netns.NsHandle) []string {
	t.Helper()
	st, err := policy.Observe(h)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range st.Chains {
		if strings.HasPrefix(c.Name, ChainPrefix) {
			out = append(out, c.Name)
		}
	}
	return out
}

// One traced SYN walks prerouting → forward and is accepted by web-in;
// a packet the match excludes is not traced; nothing is left afterwards.
func TestTraceAcceptedPacket(t *testing.T) {
	h := setup(t)
	var mu sync.Mutex
	var evs []Event
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), h, Match{Dst: netip.MustParsePrefix("192.0.2.10/32"), Proto: 6, DPort: 80}, 1, 5*time.Second,
			func(e Event) { mu.Lock(); evs = append(evs, e); mu.Unlock() })
	}()
	deadline := time.Now().Add(2 * time.Second)
	for len(traceChains(t, h)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	dial(t, "192.0.2.10:81") // not matched: never traced
	dial(t, "192.0.2.10:80")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var walk []string
	accepted := false
	for _, e := range evs {
		walk = append(walk, fmt.Sprintf("%d %s %s %s %s", e.Packet, e.Chain, e.Type, e.RuleID, e.Verdict))
		if e.Packet != 1 || e.DPort != 80 {
			t.Errorf("event of another packet: %+v", e)
		}
		if e.RuleID == "web-in" && e.Verdict == "accept" && e.Chain == "fw_wan_lan" && e.In == "wan0" && e.Out == "lan0" {
			accepted = true
		}
	}
	if !accepted {
		t.Fatalf("no accept by web-in in the walk:\n%s", strings.Join(walk, "\n"))
	}
	if left := traceChains(t, h); len(left) != 0 {
		t.Fatalf("trace chains left: %v", left)
	}
}

// A rejected packet shows the reject chain; a cancelled trace (Ctrl-C)
// removes its chain; a chain of a dead process is removed by the next
// trace.
func TestTraceRejectCancelAndStale(t *testing.T) {
	h := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan Event, 64)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, h, Match{In: "wan0", Proto: 6, DPort: 81}, 0, 0, func(e Event) { got <- e })
	}()
	deadline := time.Now().Add(2 * time.Second)
	for len(traceChains(t, h)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	dial(t, "192.0.2.10:81")
	// A reject statement ends the packet: the kernel reports it as drop.
	rejected := false
	timeout := time.After(3 * time.Second)
	var walk []string
	for !rejected {
		select {
		case e := <-got:
			walk = append(walk, fmt.Sprintf("%d %s %s %s %s", e.Packet, e.Chain, e.Type, e.RuleID, e.Verdict))
			rejected = e.RuleID == "no-81" && e.Verdict == "drop" && e.In == "wan0"
		case <-timeout:
			t.Fatalf("no drop by no-81:\n%s", strings.Join(walk, "\n"))
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if left := traceChains(t, h); len(left) != 0 {
		t.Fatalf("trace chains left after cancel: %v", left)
	}
	// A killed trace leaves its chain; pid 1 of this sandbox is alive, so
	// use a pid that cannot exist.
	testnet.MustCmd(t, "tr", "nft", "add chain inet fwd_policy trace_4194304_1_pre { type filter hook prerouting priority -350; }")
	if gone, err := RemoveStale(h); err != nil || len(gone) != 1 {
		t.Fatalf("stale: %v %v", gone, err)
	}
	if left := traceChains(t, h); len(left) != 0 {
		t.Fatalf("stale chain left: %v", left)
	}
}
